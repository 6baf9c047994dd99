//! `kube-rescue audit`: the attempted changes of a state folder, newest first, as text or
//! JSON, with what could not be read of the log said first.

use std::fmt::Write as _;

use serde::Serialize;

use crate::remediate::audit::{Attempt, Log};

/// The name `--confirm` wants for a target shown as `kind/name` or `kind/namespace/name`.
fn name_of(target: &str) -> &str {
    target.rsplit('/').next().unwrap_or(target)
}

/// The log as text: one block per attempt, newest first.
pub fn text(log: &Log) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "audit log {}: {} attempt{}",
        log.path.display(),
        log.attempts.len(),
        if log.attempts.len() == 1 { "" } else { "s" }
    );
    for problem in log.problems() {
        let _ = writeln!(out, "! {problem}");
    }
    for a in log.attempts.iter().rev() {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}  {} {}  {}", a.time, a.action, a.target, a.result);
        let _ = writeln!(
            out,
            "    by {} on context {} ({})",
            a.user, a.context, a.server
        );
        if a.interrupted {
            let _ = writeln!(
                out,
                "    the run stopped after the attempt was recorded and before its outcome: the change may or may not have been made"
            );
        }
        match &a.verification {
            Some(v) => {
                let _ = writeln!(out, "    verification: {v}");
            }
            None if a.result == "done" => {
                let _ = writeln!(
                    out,
                    "    verification: none recorded (the run stopped before its checks ended: run `kube-rescue check`)"
                );
            }
            None => {}
        }
        if let Some(backup) = &a.backup {
            let sha = a
                .backup_sha256
                .as_deref()
                .map(|s| format!(" (sha256 {})", s.get(..12).unwrap_or(s)))
                .unwrap_or_default();
            let _ = writeln!(out, "    backup: {backup}{sha}");
            if a.may_have_changed() {
                let _ = writeln!(
                    out,
                    "    undo: kube-rescue restore {backup} --confirm {}",
                    name_of(&a.target)
                );
            }
        }
    }
    out
}

#[derive(Serialize)]
struct JsonLog<'a> {
    version: u32,
    log: String,
    /// Newest first.
    attempts: Vec<&'a Attempt>,
    problems: Vec<String>,
    left_out: usize,
}

/// The log as JSON: `{version, log, attempts (newest first), problems, left_out}`.
pub fn json(log: &Log) -> String {
    let report = JsonLog {
        version: 1,
        log: log.path.display().to_string(),
        attempts: log.attempts.iter().rev().collect(),
        problems: log.problems(),
        left_out: log.left_out,
    };
    serde_json::to_string_pretty(&report).unwrap_or_default()
}
