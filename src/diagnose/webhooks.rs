//! Webhook findings: webhook-intercepts-control-plane, webhook-long-timeout,
//! webhook-backend-single-replica, webhook-backend-no-liveness, webhook-self-deadlock,
//! webhook-backend-unavailable, webhook-blocking-writes.

use super::{Context, Finding};

pub fn findings(_context: &Context<'_>) -> Vec<Finding> {
    Vec::new()
}
