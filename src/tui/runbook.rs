//! The runbook beside a finding: which runbook, each step's state (done by its check, done by
//! hand, pending), and the step's action as a remediation request. Pure.

use std::collections::{BTreeMap, BTreeSet};

use super::dialog::{self, Choice};
use crate::diagnose::Finding;
use crate::runbook::{Check, Runbook, Step};

/// The finding and runbook the detail pane shows. The finding is kept as it was when opened:
/// once a fix clears it, its runbook stays on screen to show the steps done.
#[derive(Clone, Debug, PartialEq)]
pub struct Pinned {
    pub finding: Finding,
    /// The runbook's id (the finding's own first, else the first that answers its id).
    pub runbook: Option<String>,
    pub step: usize,
}

/// Where a step stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepState {
    /// Its check passes now.
    DoneByCheck(String),
    /// Marked done by the engineer.
    DoneByHand,
    /// Its check does not pass yet (why), or it has no check and is not marked.
    Pending(Option<String>),
    /// Nothing calls for it now, but nobody did it either: it waits for a finding to go that
    /// has not been raised since the screen opened, or that went by another step's action.
    NotNeeded(String),
}

impl StepState {
    pub fn is_done(&self) -> bool {
        matches!(self, StepState::DoneByCheck(_) | StepState::DoneByHand)
    }
}

/// What the session knows that a step's state depends on.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// The findings raised now.
    pub findings: &'a [Finding],
    /// The id of every finding raised at any refresh since the screen opened: a finding that
    /// never came up has not "gone".
    pub seen: &'a BTreeSet<String>,
    /// The actions applied (and done) since the screen opened: of several steps that clear the
    /// same finding, the one whose action ran is the one done.
    pub applied: &'a BTreeSet<String>,
}

/// A step's state.
pub fn step_state(step: &Step, progress: &Progress<'_>, by_hand: bool) -> StepState {
    let raised = |id: &str| progress.findings.iter().any(|f| f.id == id);
    let action_not_run = step
        .action
        .as_ref()
        .is_some_and(|a| !progress.applied.contains(&a.name));
    match &step.check {
        Some(Check::Present(id)) if raised(id) => {
            StepState::DoneByCheck(format!("{id} is reported"))
        }
        // A diagnosis once confirmed stays confirmed after the fix clears it.
        Some(Check::Present(id)) if progress.seen.contains(id) => {
            StepState::DoneByCheck(format!("{id} was reported"))
        }
        _ if by_hand => StepState::DoneByHand,
        Some(Check::Gone(id)) if !raised(id) && !progress.seen.contains(id) => {
            StepState::NotNeeded(format!(
                "{id} has not been reported since kube-rescue opened"
            ))
        }
        Some(Check::Gone(id)) if !raised(id) && action_not_run => StepState::NotNeeded(format!(
            "{id} is gone, but not by this step's action (m marks it done if you did it)"
        )),
        Some(Check::Gone(id)) if !raised(id) => StepState::DoneByCheck(format!("{id} is gone")),
        Some(Check::Gone(id)) => StepState::Pending(Some(format!("{id} is still reported"))),
        Some(Check::Present(id)) => StepState::Pending(Some(format!("{id} is not reported"))),
        None => StepState::Pending(None),
    }
}

/// Every step's state; `marks` holds (runbook id, step index) marked done by hand.
pub fn states(
    runbook: &Runbook,
    progress: &Progress<'_>,
    marks: &BTreeSet<(String, usize)>,
) -> Vec<StepState> {
    runbook
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let by_hand = marks.contains(&(runbook.id.clone(), i));
            step_state(s, progress, by_hand)
        })
        .collect()
}

/// The steps whose check passes now, by index, with why (marks by hand aside).
pub fn passing_checks(runbook: &Runbook, progress: &Progress<'_>) -> BTreeMap<usize, String> {
    runbook
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, step)| match step_state(step, progress, false) {
            StepState::DoneByCheck(why) => Some((i, why)),
            _ => None,
        })
        .collect()
}

/// The remediation a step's action stands for, on the finding's subject; an error in words
/// when the action does not fit that subject.
pub fn step_choice(step: &Step, finding: &Finding) -> Result<Choice, String> {
    let Some(action) = &step.action else {
        return Err(format!(
            "step \"{}\" has no action: do it by hand, then m marks it done",
            step.title
        ));
    };
    dialog::subject_choice(
        &action.name,
        &finding.subject,
        action.seconds.map(|s| s as i32),
    )
    .ok_or_else(|| {
        format!(
            "{} does not apply to {} {}",
            action.name, finding.subject.kind, finding.subject.name
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::{Severity, Subject};
    use crate::runbook::ActionRef;

    fn step(check: Check, action: Option<&str>) -> Step {
        Step {
            title: "a step".into(),
            line: 1,
            body: Vec::new(),
            check: Some(check),
            action: action.map(|name| ActionRef {
                name: name.into(),
                seconds: None,
            }),
        }
    }

    fn finding(id: &str) -> Finding {
        Finding {
            id: id.into(),
            severity: Severity::Critical,
            subject: Subject::new("Node", "n1"),
            title: "t".into(),
            evidence: Vec::new(),
            runbook: "r".into(),
            actions: Vec::new(),
            caused_by: None,
        }
    }

    fn state(step: &Step, raised: &[&str], seen: &[&str], applied: &[&str]) -> StepState {
        let findings: Vec<Finding> = raised.iter().map(|id| finding(id)).collect();
        let seen = seen.iter().map(|s| s.to_string()).collect();
        let applied = applied.iter().map(|s| s.to_string()).collect();
        let progress = Progress {
            findings: &findings,
            seen: &seen,
            applied: &applied,
        };
        step_state(step, &progress, false)
    }

    #[test]
    fn a_gone_check_is_done_only_for_a_finding_that_was_reported() {
        let gone = step(Check::Gone("nodes-repair-loop".into()), None);
        // Never reported: nothing calls for the step, but the cluster does not say it was done.
        let never = state(&gone, &[], &[], &[]);
        assert!(
            matches!(&never, StepState::NotNeeded(why) if why.contains("has not been reported")),
            "{never:?}"
        );
        assert!(!never.is_done(), "not needed is not done");
        // Reported now: pending.
        let loop_ = ["nodes-repair-loop"];
        assert!(matches!(
            state(&gone, &loop_, &loop_, &[]),
            StepState::Pending(Some(_))
        ));
        // Reported earlier and gone now: done by its check.
        assert_eq!(
            state(&gone, &[], &loop_, &[]),
            StepState::DoneByCheck("nodes-repair-loop is gone".into())
        );
    }

    #[test]
    fn of_steps_that_clear_the_same_finding_the_one_whose_action_ran_is_done() {
        let id = "webhook-blocking-writes";
        let fail_open = step(Check::Gone(id.into()), Some("fail-open"));
        let delete = step(Check::Gone(id.into()), Some("delete"));
        let seen = [id];
        assert_eq!(
            state(&fail_open, &[], &seen, &["fail-open"]),
            StepState::DoneByCheck(format!("{id} is gone"))
        );
        assert!(matches!(
            state(&delete, &[], &seen, &["fail-open"]),
            StepState::NotNeeded(why) if why.contains("not by this step's action")
        ));
        // Marked by hand, it is done whatever ran.
        let findings = Vec::new();
        let seen = BTreeSet::from([id.to_string()]);
        let applied = BTreeSet::new();
        let progress = Progress {
            findings: &findings,
            seen: &seen,
            applied: &applied,
        };
        assert_eq!(step_state(&delete, &progress, true), StepState::DoneByHand);
    }

    #[test]
    fn a_present_check_stays_done_once_its_finding_was_reported() {
        let id = "webhook-blocking-writes";
        let present = step(Check::Present(id.into()), None);
        assert!(state(&present, &[id], &[id], &[]).is_done());
        // The fix cleared it: the diagnosis was still confirmed.
        assert_eq!(
            state(&present, &[], &[id], &[]),
            StepState::DoneByCheck(format!("{id} was reported"))
        );
        assert!(matches!(
            state(&present, &[], &[], &[]),
            StepState::Pending(Some(_))
        ));
    }
}
