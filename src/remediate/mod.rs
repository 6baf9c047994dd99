//! Remediation: typed actions on one object, as a plan (diff, server-side dry run, equivalent
//! kubectl command, what the change gives up, RBAC) -> typed confirmation -> backup on disk ->
//! apply with optimistic concurrency -> verify -> audit line. Nothing here prints: a caller
//! (the command line, the screen) shows the plan and the progress it is handed.
//!
//! ```text
//! let plan = remediate::plan(&cluster, &request).await?;    // show plan.diff, plan.kubectl, ...
//! let outcome = remediate::apply(&cluster, &plan, typed, &options, |step| show(step)).await;
//! ```

pub mod action;
pub mod apply;
pub mod audit;
pub mod backup;
pub mod change;
pub mod fault;
pub mod lock;
pub mod plan;

pub use action::{Action, Target, TargetKind};
pub use apply::{ApplyOptions, Outcome, Step, Verdict, Verification, apply};
pub use plan::{Change, DryRun, Plan, Rbac, Request, plan};

use crate::cluster::AccessError;

/// What stops a remediation before anything is changed, or a file that cannot be handled.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The action, target or flags do not make sense together.
    #[error("{0}")]
    Input(String),
    /// The target does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The object is already as the action would make it.
    #[error("nothing to change: {0}")]
    NoChange(String),
    /// The apiserver could not be asked.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// A backup or the audit log could not be read or written.
    #[error("{0}")]
    File(String),
    /// Another change from the same state folder is in progress.
    #[error("{0}")]
    Busy(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
