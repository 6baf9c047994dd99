//! What the screen reports to the incident journal: the changes between one refresh and the
//! next (findings appearing and clearing, the apiserver's status, the write probe's verdict,
//! the nodes' readiness). Pure: the background work writes the entries.

use std::collections::{BTreeMap, BTreeSet};

use super::rows::{self, NodeRow};
use crate::cluster::Snapshot;
use crate::cluster::probe::ProbeState;
use crate::diagnose::Finding;
use crate::journal::Event;

/// What the previous refresh showed, to tell what changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tracker {
    /// Raised findings by `id subject`, with their title.
    findings: BTreeMap<String, (String, String, String)>,
    apiserver: Option<String>,
    writes: Option<bool>,
    nodes_all_ready: Option<bool>,
}

/// `ValidatingWebhookConfiguration opa-validating-webhook / webhook w`.
pub fn subject(f: &Finding) -> String {
    let mut s = format!("{} {}", f.subject.kind, f.subject.name);
    if let Some(w) = &f.subject.webhook {
        s.push_str(&format!(" / webhook {w}"));
    }
    s
}

/// `ready`, `not ready` (with the failing checks) or `unreachable` (with why).
fn apiserver_status(snapshot: &Snapshot) -> (String, String) {
    if rows::unreachable(snapshot) {
        let why = snapshot
            .readyz
            .error
            .as_ref()
            .map(|e| e.message.clone())
            .unwrap_or_default();
        return ("unreachable".into(), why);
    }
    match &snapshot.readyz.value {
        Some(h) if h.passed() => ("ready".into(), String::new()),
        Some(h) => (
            "not ready".into(),
            format!("failing: {}", h.failing().collect::<Vec<_>>().join(", ")),
        ),
        None => ("unknown".into(), String::new()),
    }
}

/// The write probe's verdict when it has one: all namespaces passed, or one failed.
fn writes(snapshot: &Snapshot) -> Option<(bool, String)> {
    let report = snapshot.write_probe.as_ref()?;
    if let Some(n) = report
        .namespaces
        .iter()
        .find(|n| matches!(n.state, ProbeState::Failed { .. }))
    {
        return Some((false, format!("{}: {}", n.namespace, n.describe())));
    }
    report.all_pass().then(|| {
        let each: Vec<String> = report
            .namespaces
            .iter()
            .map(|n| format!("{}: {}", n.namespace, n.describe()))
            .collect();
        (true, each.join("; "))
    })
}

impl Tracker {
    /// A write probe run outside the refreshes (a change's verification): an event when its
    /// verdict differs from the last one.
    pub fn writes_probed(&mut self, passing: bool, detail: &str) -> Option<Event> {
        (self.writes != Some(passing)).then(|| {
            self.writes = Some(passing);
            Event::WriteProbe {
                passing,
                detail: detail.to_string(),
            }
        })
    }

    /// The events between the previous refresh and this one.
    pub fn observe(
        &mut self,
        findings: &[Finding],
        snapshot: &Snapshot,
        nodes: &[NodeRow],
    ) -> Vec<Event> {
        let mut events = Vec::new();
        let (status, detail) = apiserver_status(snapshot);
        if self.apiserver.as_ref() != Some(&status) {
            events.push(Event::Apiserver {
                status: status.clone(),
                detail,
            });
            self.apiserver = Some(status);
        }
        // Each finding's key and subject, worked out once, in the findings' (ranked) order.
        let keyed: Vec<(String, String, &Finding)> = findings
            .iter()
            .map(|f| {
                let subject = subject(f);
                (format!("{} {subject}", f.id), subject, f)
            })
            .collect();
        let now: BTreeSet<&str> = keyed.iter().map(|(key, ..)| key.as_str()).collect();
        for (key, (id, subject, title)) in &self.findings {
            if !now.contains(key.as_str()) {
                events.push(Event::FindingCleared {
                    id: id.clone(),
                    subject: subject.clone(),
                    title: title.clone(),
                });
            }
        }
        for (key, subject, f) in &keyed {
            if !self.findings.contains_key(key) {
                events.push(Event::FindingAppeared {
                    id: f.id.clone(),
                    severity: f.severity.as_str().into(),
                    subject: subject.clone(),
                    title: f.title.clone(),
                });
            }
        }
        self.findings = keyed
            .into_iter()
            .map(|(key, subject, f)| (key, (f.id.clone(), subject, f.title.clone())))
            .collect();
        if let Some((passing, detail)) = writes(snapshot)
            && self.writes != Some(passing)
        {
            events.push(Event::WriteProbe { passing, detail });
            self.writes = Some(passing);
        }
        if snapshot.nodes.value.is_some() && !snapshot.nodes.stale {
            let ready = nodes.iter().filter(|n| n.ready == "True").count();
            // No node at all (auto-repair deleted them) is not "all Ready".
            let all_ready = !nodes.is_empty() && ready == nodes.len();
            if self.nodes_all_ready != Some(all_ready) {
                events.push(Event::Nodes {
                    ready,
                    total: nodes.len(),
                    all_ready,
                });
                self.nodes_all_ready = Some(all_ready);
            }
        }
        events
    }
}
