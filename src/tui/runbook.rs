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
    /// It waits for a finding to go that has not been raised at all since the screen opened:
    /// the cluster does not say the step was done, only that nothing calls for it now.
    NotNeeded(String),
}

impl StepState {
    pub fn is_done(&self) -> bool {
        !matches!(self, StepState::Pending(_))
    }
}

/// A step's state against the findings raised now and the ids of those raised at any refresh
/// since the screen opened (`seen`): a finding that never came up has not "gone".
pub fn step_state(
    step: &Step,
    findings: &[Finding],
    seen: &BTreeSet<String>,
    by_hand: bool,
) -> StepState {
    let raised = |id: &str| findings.iter().any(|f| f.id == id);
    match &step.check {
        Some(Check::Gone(id)) if !raised(id) && seen.contains(id) => {
            StepState::DoneByCheck(format!("{id} is gone"))
        }
        Some(Check::Present(id)) if raised(id) => {
            StepState::DoneByCheck(format!("{id} is reported"))
        }
        _ if by_hand => StepState::DoneByHand,
        Some(Check::Gone(id)) if !raised(id) => StepState::NotNeeded(format!(
            "{id} has not been reported since kube-rescue opened"
        )),
        Some(Check::Gone(id)) => StepState::Pending(Some(format!("{id} is still reported"))),
        Some(Check::Present(id)) => StepState::Pending(Some(format!("{id} is not reported"))),
        None => StepState::Pending(None),
    }
}

/// Every step's state; `marks` holds (runbook id, step index) marked done by hand.
pub fn states(
    runbook: &Runbook,
    findings: &[Finding],
    seen: &BTreeSet<String>,
    marks: &BTreeSet<(String, usize)>,
) -> Vec<StepState> {
    runbook
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let by_hand = marks.contains(&(runbook.id.clone(), i));
            step_state(s, findings, seen, by_hand)
        })
        .collect()
}

/// The steps whose check passes now, by index, with why (marks by hand aside).
pub fn passing_checks(
    runbook: &Runbook,
    findings: &[Finding],
    seen: &BTreeSet<String>,
) -> BTreeMap<usize, String> {
    runbook
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, step)| match step_state(step, findings, seen, false) {
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

    fn step(check: Check) -> Step {
        Step {
            title: "a step".into(),
            line: 1,
            body: Vec::new(),
            check: Some(check),
            action: None,
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

    #[test]
    fn a_gone_check_is_done_only_for_a_finding_that_was_reported() {
        let gone = step(Check::Gone("nodes-repair-loop".into()));
        let mut seen = BTreeSet::new();
        // Never reported: nothing calls for the step, but the cluster does not say it was done.
        assert!(matches!(
            step_state(&gone, &[], &seen, false),
            StepState::NotNeeded(why) if why.contains("nodes-repair-loop")
        ));
        assert_eq!(step_state(&gone, &[], &seen, true), StepState::DoneByHand);
        // Reported now: pending.
        seen.insert("nodes-repair-loop".to_string());
        let raised = [finding("nodes-repair-loop")];
        assert!(matches!(
            step_state(&gone, &raised, &seen, false),
            StepState::Pending(Some(_))
        ));
        // Reported earlier and gone now: done by its check.
        assert_eq!(
            step_state(&gone, &[], &seen, false),
            StepState::DoneByCheck("nodes-repair-loop is gone".into())
        );
    }

    #[test]
    fn a_present_check_is_done_while_its_finding_is_reported() {
        let present = step(Check::Present("webhook-blocking-writes".into()));
        let seen = BTreeSet::from(["webhook-blocking-writes".to_string()]);
        let raised = [finding("webhook-blocking-writes")];
        assert!(step_state(&present, &raised, &seen, false).is_done());
        assert!(matches!(
            step_state(&present, &[], &seen, false),
            StepState::Pending(Some(_))
        ));
    }
}
