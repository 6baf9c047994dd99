//! Runbooks: Markdown files with YAML front matter that tell an engineer, step by step, how to
//! confirm and fix what a finding reports. This module parses and lints them, keeps the
//! catalog (shipped runbooks, then each `--runbooks DIR`), finds the runbooks for a finding and
//! renders one as terminal text. It never changes a cluster: a step's action only names what
//! `remediate` may do. A broken runbook is kept with its problems; it never stops anything.
//!
//! The format (documented for users in the README, "Runbooks"):
//!
//! ````markdown
//! ---
//! id: webhook-outage                 # required, kebab-case
//! title: A webhook blocks writes     # required
//! findings: [webhook-blocking-writes] # required: finding ids it answers
//! severity: critical                 # required: critical | warning | info
//! applies-to: [gke, eks]             # optional: gke | eks | aks | self-managed | any (default)
//! ---
//! Introduction: everything before the first step.
//!
//! ## Fail open                       <- each level-2 heading is a step, in order
//!
//! ```step
//! action: fail-open                  # optional: an action of `kube-rescue fix`
//! check: {gone: webhook-blocking-writes}   # optional: gone | present, with a finding id
//! ```
//! ````

mod catalog;
pub mod markdown;
mod parse;
pub mod render;

use std::fmt;
use std::path::PathBuf;

pub use catalog::{Catalog, Entry, LintReport, Source, lint_dir, load_dir, shipped_files};
pub use markdown::{Block, Span};
pub use parse::{ActionRef, Check, Parsed, Platform, Runbook, Step, parse};
pub use render::Layout;
pub use render::{list_text, render_text};

/// The finding ids of DESIGN.md, which runbooks may name in `findings` and in checks.
pub const FINDING_IDS: &[&str] = &[
    "webhook-intercepts-control-plane",
    "webhook-long-timeout",
    "webhook-backend-single-replica",
    "webhook-backend-no-liveness",
    "webhook-self-deadlock",
    "webhook-ca-bundle-invalid",
    "webhook-backend-unavailable",
    "webhook-blocking-writes",
    "writes-denied-by-policy",
    "apiserver-unreachable",
    "apiserver-not-ready",
    "apiserver-slow",
    "nodes-repair-loop",
    "nodes-not-ready",
    "node-heartbeats-stale",
    "aggregated-api-unavailable",
    "apiserver-credentials-rejected",
    "apiserver-overloaded",
    "observation-incomplete",
];

/// The remediation actions of DESIGN.md whose target a finding names, which a step may carry.
pub const ACTIONS: &[&str] = &crate::remediate::action::ACTION_NAMES;

/// The most of one runbook file that is read (1 MiB); what follows is left out and the runbook
/// is broken. A runbook is read by people at 3 a.m.: long material belongs in a linked page.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// How deep lists and block quotes may nest (16 levels); deeper levels are read flattened
/// into the 16th and the runbook is broken.
pub const MAX_NESTING: usize = 16;

/// The most steps a runbook may have (100); the steps after them are left out and the runbook
/// is broken.
pub const MAX_STEPS: usize = 100;

/// The info string of the fenced block that holds a step's action and check.
pub const STEP_BLOCK: &str = "step";

/// What is wrong with a runbook, and where: `FILE:LINE: reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based; None when the problem is about the whole file or folder.
    pub line: Option<usize>,
    pub reason: String,
}

impl Problem {
    pub fn at(file: &std::path::Path, line: usize, reason: impl Into<String>) -> Self {
        Problem {
            file: file.to_path_buf(),
            line: Some(line),
            reason: reason.into(),
        }
    }

    /// A problem with the whole file or folder.
    pub fn whole(file: &std::path::Path, reason: impl Into<String>) -> Self {
        Problem {
            file: file.to_path_buf(),
            line: None,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}

/// A folder of runbooks that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not read the runbook folder {}: {source}", path.display())]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_known_finding_ids_are_the_ones_diagnosis_ranks() {
        for id in FINDING_IDS {
            assert!(crate::diagnose::cause_rank(id) < 20, "{id} is not ranked");
        }
        let ranked = (0..20)
            .filter(|rank| {
                FINDING_IDS
                    .iter()
                    .any(|id| crate::diagnose::cause_rank(id) == *rank)
            })
            .count();
        assert_eq!(ranked, FINDING_IDS.len(), "one rank per finding id");
    }

    #[test]
    fn every_known_action_is_described_by_the_report() {
        let subject = crate::diagnose::Subject::new("Node", "n");
        for action in ACTIONS {
            let text = crate::report::describe_action(action, &subject);
            assert_ne!(&text, action, "the report does not describe {action}");
        }
        assert_eq!(crate::report::describe_action("reboot", &subject), "reboot");
    }

    #[test]
    fn problems_print_as_file_line_reason() {
        let p = Problem::at(std::path::Path::new("runbooks/x.md"), 3, "unknown action");
        assert_eq!(p.to_string(), "runbooks/x.md:3: unknown action");
        let whole = Problem { line: None, ..p };
        assert_eq!(whole.to_string(), "runbooks/x.md: unknown action");
    }
}
