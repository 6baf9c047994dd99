//! Rows of the list views, derived once per Snapshot (not per frame), and the small words
//! every view uses for ages and states.

use std::time::Duration;

use jiff::Timestamp;

use crate::cluster::Snapshot;
use crate::cluster::snapshot::{HealthCheck, age_between};
use crate::diagnose::{Inventory, effective};

/// One webhook of one configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookRow {
    /// `validating` or `mutating`.
    pub kind: &'static str,
    pub configuration: String,
    pub name: String,
    /// `Fail`, `Ignore`; `(default)` when unset.
    pub failure_policy: String,
    pub fail_closed: bool,
    pub timeout: String,
    /// `Service ns/name` or the URL.
    pub destination: String,
    /// Ready and total endpoints of the backend Service, when it was read.
    pub endpoints: Option<(usize, usize)>,
    /// Why the backend could not be read, if it could not.
    pub backend_error: Option<String>,
}

/// One node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRow {
    pub name: String,
    /// The Ready condition's status: `True`, `False`, `Unknown`, or `?` when absent.
    pub ready: String,
    pub created: Option<Timestamp>,
    /// Times this name came back with a new uid while watched.
    pub recreations: usize,
    /// When the latest identity was first seen, if it was a recreation.
    pub last_recreated: Option<Timestamp>,
    /// The Lease's renewTime.
    pub lease_renewed: Option<Timestamp>,
    pub taints: Vec<String>,
}

/// Whether nothing answered at all in this refresh.
pub fn unreachable(snapshot: &Snapshot) -> bool {
    [
        &snapshot.apiserver_version.error,
        &snapshot.readyz.error,
        &snapshot.livez.error,
    ]
    .iter()
    .all(|e| e.as_ref().is_some_and(|e| e.kind.is_unreachable()))
}

pub fn webhook_rows(inventory: &Inventory, snapshot: &Snapshot) -> Vec<WebhookRow> {
    effective::webhooks(inventory)
        .into_iter()
        .map(|w| {
            let backend = snapshot
                .webhook_backends
                .iter()
                .find(|b| b.webhooks.iter().any(|n| n == w.name));
            let endpoints = backend.and_then(|b| {
                let slices = b.endpoint_slices.value.as_ref()?;
                let mut ready = 0;
                let mut total = 0;
                for e in slices.iter().flat_map(|s| s.endpoints.iter().flatten()) {
                    total += 1;
                    if e.conditions.as_ref().and_then(|c| c.ready) != Some(false) {
                        ready += 1;
                    }
                }
                Some((ready, total))
            });
            let backend_error = backend.and_then(|b| {
                [
                    b.service.error.as_ref(),
                    b.endpoint_slices.error.as_ref(),
                    b.pods.error.as_ref(),
                ]
                .into_iter()
                .flatten()
                .next()
                .map(|e| e.message.clone())
            });
            WebhookRow {
                kind: if w.kind.starts_with("Mutating") {
                    "mutating"
                } else {
                    "validating"
                },
                configuration: w.configuration.to_string(),
                name: w.name.to_string(),
                failure_policy: if w.failure_policy_set {
                    w.failure_policy.clone()
                } else {
                    format!("{} (default)", w.failure_policy)
                },
                fail_closed: w.fail_closed(),
                timeout: if w.timeout_set {
                    format!("{}s", w.timeout_seconds)
                } else {
                    format!("{}s (default)", w.timeout_seconds)
                },
                destination: w.destination(),
                endpoints,
                backend_error,
            }
        })
        .collect()
}

/// Window in which node recreations are counted.
pub const RECREATION_WINDOW: Duration = Duration::from_secs(6 * 3600);

pub fn node_rows(snapshot: &Snapshot, now: Timestamp) -> Vec<NodeRow> {
    let Some(nodes) = snapshot.nodes.value.as_ref() else {
        return Vec::new();
    };
    let leases = snapshot.node_leases.value.as_deref().unwrap_or_default();
    let mut rows: Vec<NodeRow> = nodes
        .iter()
        .map(|node| {
            let name = node.metadata.name.clone().unwrap_or_default();
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .map_or_else(|| "?".to_string(), |c| c.status.clone());
            let identities = snapshot.node_identities.nodes.get(&name);
            let recreations = snapshot
                .node_identities
                .recreations(&name, RECREATION_WINDOW, now);
            let last_recreated = identities
                .filter(|ids| ids.len() > 1)
                .and_then(|ids| ids.last())
                .map(|i| i.first_seen);
            let lease_renewed = leases
                .iter()
                .find(|l| l.metadata.name.as_deref() == Some(name.as_str()))
                .and_then(|l| l.spec.as_ref())
                .and_then(|s| s.renew_time.as_ref())
                .map(|t| t.0);
            let taints = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .map(|ts| {
                    ts.iter()
                        .map(|t| match &t.value {
                            Some(v) if !v.is_empty() => format!("{}={v}:{}", t.key, t.effect),
                            _ => format!("{}:{}", t.key, t.effect),
                        })
                        .collect()
                })
                .unwrap_or_default();
            NodeRow {
                name,
                ready,
                created: node.metadata.creation_timestamp.as_ref().map(|t| t.0),
                recreations,
                last_recreated,
                lease_renewed,
                taints,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// Health check lines: (endpoint, check), failing checks first, then livez before readyz.
pub fn health_rows(snapshot: Option<&Snapshot>) -> Vec<(&'static str, &HealthCheck)> {
    let Some(s) = snapshot else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (endpoint, source) in [("livez", &s.livez), ("readyz", &s.readyz)] {
        if let Some(h) = &source.value {
            out.extend(h.checks.iter().map(|c| (endpoint, c)));
        }
    }
    out.sort_by_key(|(_, c)| c.ok);
    out
}

/// An age as a person reads it at a glance: `4s`, `3m`, `2h10m`, `5d`.
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

/// How long ago `then` was, seen from `now`.
pub fn ago(then: Timestamp, now: Timestamp) -> String {
    age(age_between(then, now))
}

/// A latency: `12ms`, `3.1s`.
pub fn latency(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A wall-clock time in UTC, `14:03:22Z`.
pub fn clock(t: Timestamp) -> String {
    t.strftime("%H:%M:%SZ").to_string()
}
