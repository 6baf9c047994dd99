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
}

impl StepState {
    pub fn is_done(&self) -> bool {
        !matches!(self, StepState::Pending(_))
    }
}

/// A step's state against the findings raised now.
pub fn step_state(step: &Step, findings: &[Finding], by_hand: bool) -> StepState {
    let raised = |id: &str| findings.iter().any(|f| f.id == id);
    match &step.check {
        Some(Check::Gone(id)) if !raised(id) => StepState::DoneByCheck(format!("{id} is gone")),
        Some(Check::Present(id)) if raised(id) => {
            StepState::DoneByCheck(format!("{id} is reported"))
        }
        _ if by_hand => StepState::DoneByHand,
        Some(Check::Gone(id)) => StepState::Pending(Some(format!("{id} is still reported"))),
        Some(Check::Present(id)) => StepState::Pending(Some(format!("{id} is not reported"))),
        None => StepState::Pending(None),
    }
}

/// Every step's state; `marks` holds (runbook id, step index) marked done by hand.
pub fn states(
    runbook: &Runbook,
    findings: &[Finding],
    marks: &BTreeSet<(String, usize)>,
) -> Vec<StepState> {
    runbook
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| step_state(s, findings, marks.contains(&(runbook.id.clone(), i))))
        .collect()
}

/// The steps whose check passes now, by index, with why (marks by hand aside).
pub fn passing_checks(runbook: &Runbook, findings: &[Finding]) -> BTreeMap<usize, String> {
    runbook
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, step)| match step_state(step, findings, false) {
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
