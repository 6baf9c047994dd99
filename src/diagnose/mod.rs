//! Diagnosis: pure functions from what was observed (a live Snapshot, or manifests read from
//! files) to findings, one file per subject. No I/O, no UI, no clock but the one passed in.
//! Finding ids, severities and actions are contracts (DESIGN.md); other tools depend on them.

pub mod apiserver;
pub mod effective;
pub mod inventory;
pub mod nodes;
pub mod observation;
pub mod webhooks;

use serde::{Deserialize, Serialize};

pub use inventory::Inventory;

use crate::cluster::Snapshot;

/// How bad a finding is. The order is explicit: Info < Warning < Critical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info = 0,
    Warning = 1,
    Critical = 2,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What a finding is about: a webhook configuration (and the webhook in it), a node, an
/// APIService, the apiserver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub webhook: Option<String>,
}

impl Subject {
    pub fn new(kind: &str, name: &str) -> Self {
        Subject {
            kind: kind.into(),
            name: name.into(),
            namespace: None,
            webhook: None,
        }
    }

    pub fn webhook(kind: &str, configuration: &str, webhook: &str) -> Self {
        Subject {
            webhook: Some(webhook.into()),
            ..Subject::new(kind, configuration)
        }
    }
}

/// One problem, with what was observed to show it and what can be done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// A stable id from DESIGN.md (`webhook-blocking-writes`, `nodes-repair-loop`, ...).
    pub id: String,
    pub severity: Severity,
    pub subject: Subject,
    /// One line saying what is wrong.
    pub title: String,
    /// What was observed: field values, error text, counts and times, quoted.
    pub evidence: Vec<String>,
    /// The runbook that handles it.
    pub runbook: String,
    /// Remediation actions that apply (DESIGN.md action names), the first one to consider first.
    pub actions: Vec<String>,
    /// When another finding is the likely cause: its id and subject, e.g.
    /// `webhook-blocking-writes validating-webhook.openpolicyagent.org`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub caused_by: Option<String>,
}

/// Everything the rules may look at. `live` is None offline (`check --file`): live-only
/// findings are then not raised.
pub struct Context<'a> {
    pub inventory: &'a Inventory,
    pub live: Option<&'a Snapshot>,
    /// "Now", for ages (the snapshot's time when replaying one).
    pub now: jiff::Timestamp,
}

/// All findings, causes before their symptoms, most severe first.
pub fn diagnose(context: &Context<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(webhooks::findings(context));
    let apiserver = apiserver::findings(context);
    let unreachable = apiserver.iter().any(|f| f.id == "apiserver-unreachable");
    findings.extend(apiserver);
    findings.extend(observation::findings(context, unreachable));
    findings.extend(nodes::findings(context));
    nodes::correlate(&mut findings);
    rank(&mut findings);
    findings
}

/// How early an id sorts among findings of the same severity: causes (webhooks blocking
/// writes, their backends) before what they cause (apiserver, nodes).
pub fn cause_rank(id: &str) -> u8 {
    match id {
        "apiserver-credentials-rejected" => 0,
        "apiserver-unreachable" => 1,
        "apiserver-overloaded" => 2,
        "observation-incomplete" => 3,
        "webhook-blocking-writes" => 4,
        "writes-denied-by-policy" => 5,
        "webhook-backend-unavailable" => 6,
        "apiserver-not-ready" => 7,
        "nodes-repair-loop" => 8,
        "node-heartbeats-stale" => 9,
        "nodes-not-ready" => 10,
        "aggregated-api-unavailable" => 11,
        "apiserver-slow" => 12,
        "webhook-intercepts-control-plane" => 13,
        "webhook-self-deadlock" => 14,
        "webhook-long-timeout" => 15,
        "webhook-backend-single-replica" => 16,
        "webhook-backend-no-liveness" => 17,
        "webhook-ca-bundle-invalid" => 18,
        _ => 20,
    }
}

/// Most severe first; within a severity, causes before symptoms; then by subject. A finding
/// that other findings name as their cause sorts with the severity of its worst symptom, so a
/// warning-level webhook comes before the critical node findings it explains.
pub fn rank(findings: &mut [Finding]) {
    let mut worst_symptom: std::collections::HashMap<&str, Severity> =
        std::collections::HashMap::new();
    for f in findings.iter() {
        if let Some(cause) = f.caused_by.as_deref() {
            let slot = worst_symptom.entry(cause).or_insert(f.severity);
            *slot = (*slot).max(f.severity);
        }
    }
    let sort_severity: Vec<Severity> = findings
        .iter()
        .map(|f| {
            let own = f.severity;
            worst_symptom
                .get(nodes::cause_key(f).as_str())
                .map_or(own, |s| own.max(*s))
        })
        .collect();
    let mut order: Vec<usize> = (0..findings.len()).collect();
    order.sort_by(|&i, &j| {
        let (a, b) = (&findings[i], &findings[j]);
        sort_severity[j]
            .cmp(&sort_severity[i])
            .then(a.caused_by.is_some().cmp(&b.caused_by.is_some()))
            .then(cause_rank(&a.id).cmp(&cause_rank(&b.id)))
            .then(a.subject.name.cmp(&b.subject.name))
            .then(a.subject.webhook.cmp(&b.subject.webhook))
    });
    let sorted: Vec<Finding> = order.iter().map(|&i| findings[i].clone()).collect();
    findings.clone_from_slice(&sorted);
}

/// Counts per severity, as `check --output json` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub critical: usize,
    pub warning: usize,
    pub info: usize,
}

impl Summary {
    pub fn of(findings: &[Finding]) -> Self {
        let mut s = Summary::default();
        for f in findings {
            match f.severity {
                Severity::Critical => s.critical += 1,
                Severity::Warning => s.warning += 1,
                Severity::Info => s.info += 1,
            }
        }
        s
    }
}
