//! Rows of the list views, derived once per Snapshot (not per frame), and the small words
//! every view uses for ages and states.

use std::time::Duration;

use jiff::Timestamp;

use crate::cluster::Snapshot;
use crate::cluster::probe::ProbeState;
use crate::cluster::snapshot::{HealthCheck, WebhookMetrics, age_between, event_time};
use crate::diagnose::effective::EffectiveWebhook;
use crate::diagnose::webhooks::events_by_webhook;
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
    /// What it intercepts: operations on resources, and their scope.
    pub intercepts: String,
    /// Whether writes in kube-system reach it (its namespaceSelector matches kube-system and
    /// a rule covers namespaced resources).
    pub intercepts_kube_system: bool,
    /// The namespaceSelector and objectSelector, when they narrow anything.
    pub selectors: Vec<String>,
    /// The latest failure of a call to it: from the write probe, else from Warning events.
    pub last_error: Option<(String, Option<Timestamp>)>,
    /// Its admission metrics, when /metrics was read.
    pub metrics: Option<WebhookMetrics>,
}

/// One Warning event.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub last_seen: Option<Timestamp>,
    pub namespace: String,
    /// `Kind/name` of the object the event is about.
    pub object: String,
    pub reason: String,
    pub count: i32,
    pub message: String,
    /// The component that reported it.
    pub source: String,
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
    let events = events_by_webhook(Some(snapshot));
    let kube_system = inventory.namespace_labels("kube-system");
    let metrics = snapshot.metrics.value.as_ref();
    let mut rows: Vec<WebhookRow> = effective::webhooks(inventory)
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
                intercepts: intercepts(&w),
                intercepts_kube_system: w.namespace_selector.matches(&kube_system)
                    && w.rules
                        .iter()
                        .any(|r| r.scope.as_deref().unwrap_or("*") != "Cluster"),
                selectors: [
                    ("namespaceSelector", &w.namespace_selector),
                    ("objectSelector", &w.object_selector),
                ]
                .into_iter()
                .filter(|(_, s)| !s.is_everything())
                .map(|(name, s)| format!("{name} {}", s.describe()))
                .collect(),
                last_error: last_webhook_error(snapshot, w.name, &events),
                metrics: metrics.and_then(|m| m.webhooks.get(w.name)).cloned(),
            }
        })
        .collect();
    // The ones failing now first, then the fail-closed ones: what can block writes.
    rows.sort_by_key(|w| (w.last_error.is_none(), !w.fail_closed));
    rows
}

/// `CREATE,UPDATE */* (namespaced)`: each rule's operations, resources and scope.
fn intercepts(w: &EffectiveWebhook<'_>) -> String {
    if w.rules.is_empty() {
        return "nothing (no rules)".into();
    }
    w.rules
        .iter()
        .map(|r| {
            let resources: Vec<String> = r
                .resources
                .iter()
                .flat_map(|res| {
                    r.api_groups.iter().map(move |g| match g.as_str() {
                        "" => res.clone(),
                        "*" if res == "*" => "*/*".into(),
                        g => format!("{res}.{g}"),
                    })
                })
                .collect();
            let scope = match r.scope.as_deref().unwrap_or("*") {
                "Namespaced" => " (namespaced)",
                "Cluster" => " (cluster-scoped)",
                _ => "",
            };
            format!("{} {}{scope}", r.operations.join(","), resources.join(" "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn last_webhook_error(
    snapshot: &Snapshot,
    name: &str,
    events: &std::collections::BTreeMap<&str, Vec<&k8s_openapi::api::core::v1::Event>>,
) -> Option<(String, Option<Timestamp>)> {
    let probed = snapshot.write_probe.as_ref().and_then(|p| {
        p.namespaces.iter().find_map(|n| match &n.state {
            ProbeState::Failed { failure, .. } if failure.webhook() == Some(name) => {
                Some((format!("write probe: {}", n.describe()), n.started_at))
            }
            _ => None,
        })
    });
    probed.or_else(|| {
        let event = events.get(name)?.first()?;
        Some((
            format!(
                "{}: {}",
                event.reason.as_deref().unwrap_or("Warning"),
                event.message.as_deref().unwrap_or_default()
            ),
            event_time(event),
        ))
    })
}

pub fn event_rows(snapshot: &Snapshot) -> Vec<EventRow> {
    let Some(events) = snapshot.warning_events.value.as_ref() else {
        return Vec::new();
    };
    let mut rows: Vec<EventRow> = events
        .iter()
        .map(|e| {
            let o = &e.involved_object;
            EventRow {
                last_seen: event_time(e),
                namespace: e
                    .metadata
                    .namespace
                    .clone()
                    .or_else(|| o.namespace.clone())
                    .unwrap_or_default(),
                object: format!(
                    "{}/{}",
                    o.kind.as_deref().unwrap_or("?"),
                    o.name.as_deref().unwrap_or("?")
                ),
                reason: e.reason.clone().unwrap_or_default(),
                count: e
                    .series
                    .as_ref()
                    .and_then(|s| s.count)
                    .or(e.count)
                    .unwrap_or(1)
                    .max(1),
                message: e.message.clone().unwrap_or_default().trim().to_string(),
                source: e
                    .reporting_component
                    .clone()
                    .filter(|c| !c.is_empty())
                    .or_else(|| e.source.as_ref().and_then(|s| s.component.clone()))
                    .unwrap_or_default(),
            }
        })
        .collect();
    // Newest first; an event without any time goes last.
    rows.sort_by_key(|r| std::cmp::Reverse(r.last_seen));
    rows
}

/// When nodes registered: RegisteredNode events, and every identity of a node name seen
/// across refreshes (one per uid, so an event and an observation of the same node count
/// once). Sorted.
pub fn node_registrations(snapshot: &Snapshot) -> Vec<Timestamp> {
    let mut by_uid: std::collections::BTreeMap<String, Timestamp> = Default::default();
    for e in snapshot.node_events.value.iter().flatten() {
        if e.reason.as_deref() != Some("RegisteredNode") {
            continue;
        }
        let (Some(when), Some(uid)) = (event_time(e), e.involved_object.uid.clone()) else {
            continue;
        };
        by_uid.entry(uid).or_insert(when);
    }
    for identity in snapshot.node_identities.nodes.values().flatten() {
        by_uid
            .entry(identity.uid.clone())
            .or_insert(identity.created.unwrap_or(identity.first_seen));
    }
    let mut times: Vec<Timestamp> = by_uid.into_values().collect();
    times.sort();
    times
}

/// How many registrations fell in each of `buckets` intervals of `width` ending at `now`,
/// oldest first.
pub fn churn(
    registrations: &[Timestamp],
    now: Timestamp,
    buckets: usize,
    width: Duration,
) -> Vec<u64> {
    let mut counts = vec![0u64; buckets];
    let span = width.saturating_mul(buckets as u32);
    for t in registrations {
        if *t > now {
            continue;
        }
        let back = age_between(*t, now);
        if back >= span {
            continue;
        }
        let from_end = (back.as_nanos() / width.as_nanos().max(1)) as usize;
        counts[buckets - 1 - from_end] += 1;
    }
    counts
}

/// Each webhook's admission metrics' increase since the previous refresh (they are
/// counters). A counter that went down means the apiserver restarted: its new value is the
/// increase.
pub fn webhook_metric_deltas(
    previous: Option<&Snapshot>,
    current: &Snapshot,
) -> std::collections::BTreeMap<String, WebhookMetrics> {
    let Some(now) = current.metrics.value.as_ref() else {
        return Default::default();
    };
    let before = previous.and_then(|p| p.metrics.value.as_ref());
    let increase = |now: f64, then: f64| if now >= then { now - then } else { now };
    now.webhooks
        .iter()
        .filter_map(|(name, m)| {
            let then = before.and_then(|b| b.webhooks.get(name))?;
            Some((
                name.clone(),
                WebhookMetrics {
                    requests: increase(m.requests, then.requests),
                    rejections: increase(m.rejections, then.rejections),
                    calling_errors: increase(m.calling_errors, then.calling_errors),
                    fail_open: increase(m.fail_open, then.fail_open),
                    duration_count: increase(m.duration_count, then.duration_count),
                    duration_sum_seconds: increase(
                        m.duration_sum_seconds,
                        then.duration_sum_seconds,
                    ),
                },
            ))
        })
        .collect()
}

/// Window in which node recreations are counted.
pub const RECREATION_WINDOW: Duration = Duration::from_secs(6 * 3600);

pub fn node_rows(snapshot: &Snapshot, now: Timestamp) -> Vec<NodeRow> {
    let Some(nodes) = snapshot.nodes.value.as_ref() else {
        return Vec::new();
    };
    // renewTime by node name, looked up once per node (not a scan of every lease per node).
    let renewed: std::collections::HashMap<&str, Timestamp> = snapshot
        .node_leases
        .value
        .iter()
        .flatten()
        .filter_map(|l| {
            let renewed = l.spec.as_ref()?.renew_time.as_ref()?.0;
            Some((l.metadata.name.as_deref()?, renewed))
        })
        .collect();
    let mut rows: Vec<NodeRow> = nodes
        .iter()
        .map(|node| {
            let name = node.metadata.name.clone().unwrap_or_default();
            let ready = crate::diagnose::nodes::ready_condition(node)
                .map_or_else(|| "?".to_string(), |c| c.status.clone());
            let identities = snapshot.node_identities.nodes.get(&name);
            let recreations = snapshot
                .node_identities
                .recreations(&name, RECREATION_WINDOW, now);
            let last_recreated = identities
                .filter(|ids| ids.len() > 1)
                .and_then(|ids| ids.last())
                .map(|i| i.first_seen);
            let lease_renewed = renewed.get(name.as_str()).copied();
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
