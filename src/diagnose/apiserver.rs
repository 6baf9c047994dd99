//! Apiserver findings: apiserver-unreachable, apiserver-not-ready, apiserver-slow,
//! aggregated-api-unavailable.

use super::{Context, Finding};

pub fn findings(_context: &Context<'_>) -> Vec<Finding> {
    Vec::new()
}
