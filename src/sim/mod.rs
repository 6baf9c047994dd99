//! The Kubernetes API simulator: selectors, real admission webhooks and scenario backends.
pub mod admission;
pub mod backends;
pub mod selector;
