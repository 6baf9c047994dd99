//! The remediation dialog: choose an action for the selected row, read its plan, type the
//! object's name to apply it, watch it being applied, read the result. Pure state; the plan and
//! the change are made by background work, asked through [`super::Request`]s.

use jiff::Timestamp;

use super::rows::{NodeRow, WebhookRow};
use crate::diagnose::{Finding, Subject};
use crate::remediate::{self, Action, Outcome, Plan, Target, TargetKind, Verdict};

/// The timeoutSeconds `set-timeout` offers on the screen (the command line takes any 1..30).
pub const SCREEN_TIMEOUT_SECONDS: i32 = 3;

/// One action the menu offers.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// `fail-open on validating-webhook.openpolicyagent.org`.
    pub label: String,
    pub request: remediate::Request,
}

/// The state of the dialog over the screen.
#[derive(Clone, Debug, PartialEq)]
pub enum Dialog {
    /// Which action, for what.
    Menu {
        title: String,
        choices: Vec<Choice>,
        selected: usize,
    },
    /// The plan is being made (reads, a dry run, an access review).
    Planning { what: String, since: Timestamp },
    /// The plan, waiting for the object's name to be typed.
    Confirm {
        plan: Box<Plan>,
        typed: String,
        /// First line of the plan shown.
        scroll: u16,
        /// Why Enter did not apply, when it did not.
        note: Option<String>,
        /// The name was typed once already (a plan that overwrites others' later changes
        /// asks twice).
        confirmed_once: bool,
    },
    /// The change is being made: its steps as they happen.
    Applying {
        plan: Box<Plan>,
        steps: Vec<String>,
        since: Timestamp,
    },
    /// How it ended.
    Finished {
        plan: Box<Plan>,
        steps: Vec<String>,
        outcome: Box<Outcome>,
    },
    /// No plan could be made.
    Failed { what: String, error: String },
}

impl Dialog {
    /// Whether keys go to a text field (every printable key is input, none a shortcut).
    pub fn takes_text(&self) -> bool {
        matches!(self, Dialog::Confirm { plan, .. } if !plan.read_only)
    }
}

fn webhook_kind(kind: &str) -> Option<TargetKind> {
    match kind {
        crate::diagnose::effective::VALIDATING | "validating" => {
            Some(TargetKind::ValidatingWebhookConfiguration)
        }
        crate::diagnose::effective::MUTATING | "mutating" => {
            Some(TargetKind::MutatingWebhookConfiguration)
        }
        _ => None,
    }
}

/// The action named `name` on a webhook configuration, for one webhook (or all when None);
/// set-timeout sets `seconds`, or [`SCREEN_TIMEOUT_SECONDS`].
fn webhook_action(name: &str, webhook: Option<&str>, seconds: Option<i32>) -> Option<Action> {
    let webhook = webhook.map(str::to_string);
    Some(match name {
        "delete" => Action::Delete,
        "fail-open" => Action::FailOpen { webhook },
        "exclude-system-namespaces" => Action::ExcludeSystemNamespaces { webhook },
        "set-timeout" => Action::SetTimeout {
            webhook,
            seconds: seconds.unwrap_or(SCREEN_TIMEOUT_SECONDS),
        },
        "restart-backend" => Action::RestartBackend { webhook },
        _ => return None,
    })
}

fn label(action: &Action, target: &Target) -> String {
    let on = match action.webhook() {
        Some(w) => format!(" on webhook {w}"),
        None => String::new(),
    };
    match action {
        Action::Delete => format!("delete {} (backed up first)", target.display()),
        Action::FailOpen { .. } => format!("fail-open: failurePolicy Ignore{on}"),
        Action::ExcludeSystemNamespaces { .. } => {
            format!(
                "exclude-system-namespaces: keep kube-system, kube-node-lease and kube-public out{on}"
            )
        }
        Action::SetTimeout { seconds, .. } => format!("set-timeout: timeoutSeconds {seconds}{on}"),
        Action::RestartBackend { .. } => {
            format!("restart-backend: rollout-restart the Deployment behind the webhook{on}")
        }
        Action::Cordon => format!("cordon {}: mark it unschedulable", target.name),
        Action::Uncordon => format!("uncordon {}: make it schedulable again", target.name),
    }
}

fn choice(action: Action, target: Target) -> Choice {
    Choice {
        label: label(&action, &target),
        request: remediate::Request::Fix { action, target },
    }
}

/// The action named `name` on a finding's subject (a webhook configuration, one of its
/// webhooks, or a node), if it applies to that kind of object.
pub fn subject_choice(name: &str, subject: &Subject, seconds: Option<i32>) -> Option<Choice> {
    match (name, subject.kind.as_str()) {
        ("cordon" | "uncordon", "Node") => {
            let target = Target::new(TargetKind::Node, None, &subject.name);
            let action = if name == "cordon" {
                Action::Cordon
            } else {
                Action::Uncordon
            };
            Some(choice(action, target))
        }
        (name, kind) => {
            let target = Target::new(webhook_kind(kind)?, None, &subject.name);
            let action = webhook_action(name, subject.webhook.as_deref(), seconds)?;
            Some(choice(action, target))
        }
    }
}

/// The actions a finding lists, as requests: its target is the finding's subject. Deleting
/// comes last, whatever the order of the list: it is the drastic one.
pub fn finding_choices(finding: &Finding) -> Vec<Choice> {
    let mut names: Vec<&String> = finding.actions.iter().collect();
    names.sort_by_key(|n| *n == "delete");
    names
        .into_iter()
        .filter_map(|name| subject_choice(name, &finding.subject, None))
        .collect()
}

/// Every action on one webhook, safest first, and deleting its configuration last.
pub fn webhook_choices(row: &WebhookRow) -> Vec<Choice> {
    let Some(kind) = webhook_kind(row.kind) else {
        return Vec::new();
    };
    let target = Target::new(kind, None, &row.configuration);
    [
        "fail-open",
        "exclude-system-namespaces",
        "set-timeout",
        "restart-backend",
        "delete",
    ]
    .into_iter()
    .filter_map(|name| {
        let webhook = (name != "delete").then_some(row.name.as_str());
        Some(choice(webhook_action(name, webhook, None)?, target.clone()))
    })
    .collect()
}

pub fn node_choices(row: &NodeRow) -> Vec<Choice> {
    let target = Target::new(TargetKind::Node, None, &row.name);
    vec![
        choice(Action::Cordon, target.clone()),
        choice(Action::Uncordon, target),
    ]
}

/// Undoing one audited change: restoring the backup it wrote.
/// Restoring the backup of an audited change (only kube-rescue's fields, if the object
/// changed since).
pub fn undo_choice(backup: &str, attempt: &remediate::audit::Attempt) -> Choice {
    Choice {
        label: format!("restore {} from {backup}", attempt.target),
        request: remediate::Request::Restore {
            file: backup.into(),
            recorded: Some(Box::new(attempt.clone())),
            overwrite_later_changes: false,
        },
    }
}

/// One line on how an attempt ended, for the dialog's title and the footer.
pub fn verdict_line(outcome: &Outcome) -> String {
    match &outcome.verdict {
        // Never "done" while the record of it is missing.
        Verdict::Done if outcome.audit.is_err() => format!(
            "changed, NOT AUDITED: {}",
            outcome
                .audit
                .as_ref()
                .err()
                .map(String::as_str)
                .unwrap_or_default()
        ),
        Verdict::Done => match &outcome.verification {
            Some(v) if v.put_back.is_some() => {
                format!("done, but {}", v.put_back.as_deref().unwrap_or_default())
            }
            Some(v) if v.writes_pass() => "done: writes pass again".into(),
            Some(_) => "done".into(),
            None => "done".into(),
        },
        other => other.describe(),
    }
}
