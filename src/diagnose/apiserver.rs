//! Apiserver findings: apiserver-unreachable, apiserver-not-ready, apiserver-slow,
//! aggregated-api-unavailable. Live only: offline (no Snapshot) they raise nothing. Pure: the
//! rules read the Snapshot and the time passed in, nothing else.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use super::{Context, Finding, Severity, Subject};
use crate::cluster::error::{AccessError, ErrorKind, secs};
use crate::cluster::probe::ProbeState;
use crate::cluster::snapshot::{Health, Snapshot, Source, age_between};

/// apiserver-slow: a refresh's slowest get or list took longer than this.
pub const SLOW_READ: Duration = Duration::from_secs(1);
/// apiserver-slow: a dry-run write probe that passed took longer than this.
pub const SLOW_WRITE: Duration = Duration::from_secs(2);
/// apiserver-unreachable: at most this many cluster-wide sources may still have answered.
pub const UNREACHABLE_ANSWERED_AT_MOST: usize = 1;
/// Cluster-wide sources in [`Snapshot::source_errors`] (webhook backends follow them).
const CLUSTER_WIDE_SOURCES: usize = crate::cluster::collect::FIXED_REQUESTS;

/// The ConfigMap that the `ca-registration` post-start hook must update.
pub const CA_REGISTRATION_CONFIGMAP: &str = "kube-system/extension-apiserver-authentication";

pub fn findings(context: &Context<'_>) -> Vec<Finding> {
    let Some(snapshot) = context.live else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let unreachable = unreachable(snapshot, context.now);
    let is_unreachable = unreachable.is_some();
    out.extend(unreachable);
    out.extend(not_ready(snapshot));
    if !is_unreachable {
        out.extend(slow(snapshot));
    }
    out.extend(aggregated_api_unavailable(snapshot, context.now));
    out
}

/// The subject of apiserver findings: the server URL, else the context.
pub(crate) fn apiserver_subject(snapshot: &Snapshot) -> Subject {
    let name = if snapshot.server.is_empty() {
        snapshot.context.as_str()
    } else {
        snapshot.server.as_str()
    };
    Subject::new("Apiserver", name)
}

/// Whether an error means the apiserver could not be reached. A 401 is an answer: rejected
/// credentials are apiserver-credentials-rejected.
fn blocks_access(kind: ErrorKind) -> bool {
    kind.is_unreachable()
}

fn kind_words(kind: ErrorKind, deadline: Duration) -> String {
    match kind {
        ErrorKind::Timeout => format!("no answer within the deadline ({})", secs(deadline)),
        ErrorKind::Refused => "connection refused".into(),
        ErrorKind::Dns => "the server name does not resolve".into(),
        ErrorKind::Tls => "TLS failure".into(),
        ErrorKind::Disconnected => "connection closed before an answer".into(),
        other => format!("{other:?}"),
    }
}

fn title_for(kind: ErrorKind, deadline: Duration) -> String {
    match kind {
        ErrorKind::Timeout => format!(
            "The apiserver does not answer within the {} deadline",
            secs(deadline)
        ),
        ErrorKind::Refused => "The apiserver refuses connections: nothing listens there".into(),
        ErrorKind::Dns => "The apiserver's name does not resolve".into(),
        ErrorKind::Tls => "TLS to the apiserver fails".into(),
        ErrorKind::Disconnected => "The apiserver closes connections before answering".into(),
        _ => "The apiserver cannot be reached".into(),
    }
}

fn unreachable(snapshot: &Snapshot, now: Timestamp) -> Option<Finding> {
    let errors = snapshot.source_errors();
    let cluster_wide = &errors[..CLUSTER_WIDE_SOURCES.min(errors.len())];
    let failing: Vec<&AccessError> = cluster_wide
        .iter()
        .filter_map(|(_, e)| *e)
        .filter(|e| blocks_access(e.kind))
        .collect();
    let total = cluster_wide.len();
    if failing.is_empty() || failing.len() + UNREACHABLE_ANSWERED_AT_MOST < total {
        return None;
    }
    let mut by_kind: BTreeMap<String, (ErrorKind, usize)> = BTreeMap::new();
    for e in &failing {
        by_kind
            .entry(format!("{:?}", e.kind))
            .or_insert((e.kind, 0))
            .1 += 1;
    }
    let mut kinds: Vec<(ErrorKind, usize)> = by_kind.into_values().collect();
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    let dominant = kinds[0].0;
    let counts = kinds
        .iter()
        .map(|(k, n)| format!("{n} {}", kind_words(*k, snapshot.deadline)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut evidence = vec![format!(
        "{} of {total} cluster-wide reads failed: {counts}",
        failing.len()
    )];
    // The errors themselves, readyz first: they say which call and what happened.
    let mut quoted = Vec::new();
    for e in snapshot.readyz.error.iter().chain(failing.iter().copied()) {
        if !quoted.contains(&e.message) && quoted.len() < 3 {
            quoted.push(e.message.clone());
        }
    }
    evidence.extend(quoted);
    let last_good = [
        snapshot.readyz.fetched_at,
        snapshot.livez.fetched_at,
        snapshot.apiserver_version.fetched_at,
        snapshot.nodes.fetched_at,
    ]
    .into_iter()
    .flatten()
    .max();
    match last_good {
        Some(t) => evidence.push(format!(
            "last answer {} ago ({}); the values shown are from then",
            ago(age_between(t, now)),
            time(t)
        )),
        None => evidence.push("no answer since kube-rescue started".into()),
    }
    // What the apiserver said last time it answered /readyz: a failing post-start hook explains
    // a crash loop.
    if let Some(health) = &snapshot.readyz.value {
        let failing: Vec<&str> = health.failing().collect();
        if !failing.is_empty() {
            evidence.push(format!(
                "last /readyz answer was HTTP {}, failing: {}",
                health.code,
                failing.join(", ")
            ));
        }
    }
    Some(Finding {
        id: "apiserver-unreachable".into(),
        severity: Severity::Critical,
        subject: apiserver_subject(snapshot),
        title: title_for(dominant, snapshot.deadline),
        evidence,
        runbook: "apiserver-down".into(),
        actions: Vec::new(),
        caused_by: None,
    })
}

/// The lines of a failing health endpoint, or None when it passed or did not answer.
fn health_failure(path: &str, source: &Source<Health>) -> Option<Vec<String>> {
    if let Some(error) = &source.error {
        // An answer other than 200/500 (e.g. 503) is a failing endpoint too; no answer is
        // apiserver-unreachable's business.
        return (!error.kind.is_unreachable() && error.code.is_some_and(|c| c >= 500))
            .then(|| vec![error.message.clone()]);
    }
    let health = source.value.as_ref()?;
    let failing: Vec<_> = health.checks.iter().filter(|c| !c.ok).collect();
    if health.passed() && failing.is_empty() {
        return None;
    }
    let summary = if health.summary.is_empty() {
        String::new()
    } else {
        format!(", {}", health.summary)
    };
    let mut lines = vec![format!("get {path}?verbose: HTTP {}{summary}", health.code)];
    lines.extend(
        failing
            .iter()
            .map(|c| format!("[-]{} {}", c.name, c.detail).trim_end().to_string()),
    );
    Some(lines)
}

fn not_ready(snapshot: &Snapshot) -> Option<Finding> {
    let readyz = health_failure("/readyz", &snapshot.readyz);
    let livez = health_failure("/livez", &snapshot.livez);
    if readyz.is_none() && livez.is_none() {
        return None;
    }
    let mut evidence: Vec<String> = Vec::new();
    for line in readyz.into_iter().chain(livez).flatten() {
        if !evidence.contains(&line) {
            evidence.push(line);
        }
    }
    let hooks: Vec<String> = [&snapshot.readyz, &snapshot.livez]
        .iter()
        .filter(|s| s.error.is_none())
        .filter_map(|s| s.value.as_ref())
        .flat_map(|h| h.failing().map(str::to_string).collect::<Vec<_>>())
        .filter(|c| c.starts_with("poststarthook/"))
        .collect();
    if hooks.iter().any(|h| h == "poststarthook/ca-registration") {
        evidence.push(format!(
            "poststarthook/ca-registration must update ConfigMap {CA_REGISTRATION_CONFIGMAP}: \
             a write that admission webhooks can block"
        ));
    }
    let title = match hooks.first() {
        Some(hook) => format!("The apiserver is not ready: {hook} fails"),
        None => "The apiserver reports itself not ready".into(),
    };
    Some(Finding {
        id: "apiserver-not-ready".into(),
        severity: Severity::Critical,
        subject: apiserver_subject(snapshot),
        title,
        evidence,
        runbook: "apiserver-not-ready".into(),
        actions: Vec::new(),
        caused_by: None,
    })
}

fn slow(snapshot: &Snapshot) -> Option<Finding> {
    let mut evidence = Vec::new();
    for verb in ["get", "list"] {
        let Some(sample) = snapshot.latency.latest(verb) else {
            continue;
        };
        if sample.took > SLOW_READ {
            let what = if sample.answered {
                format!("took {}", secs(sample.took))
            } else {
                format!("no answer after {}", secs(sample.took))
            };
            evidence.push(format!(
                "slowest {verb} of the latest refresh {what} (threshold {})",
                secs(SLOW_READ)
            ));
        }
    }
    if let Some(probe) = &snapshot.write_probe {
        for n in &probe.namespaces {
            if let ProbeState::Passed { took } = n.state
                && took > SLOW_WRITE
            {
                evidence.push(format!(
                    "dry-run create of a ConfigMap in {} passed in {} (threshold {})",
                    n.namespace,
                    secs(took),
                    secs(SLOW_WRITE)
                ));
            }
        }
    }
    if evidence.is_empty() {
        return None;
    }
    Some(Finding {
        id: "apiserver-slow".into(),
        severity: Severity::Warning,
        subject: apiserver_subject(snapshot),
        title: "The apiserver answers slowly".into(),
        evidence,
        runbook: "apiserver-slow".into(),
        actions: Vec::new(),
        caused_by: None,
    })
}

fn aggregated_api_unavailable(snapshot: &Snapshot, now: Timestamp) -> Vec<Finding> {
    let Some(services) = &snapshot.api_services.value else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for service in services {
        let Some(name) = service.metadata.name.as_deref() else {
            continue;
        };
        let Some(available) = service
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Available"))
        else {
            continue;
        };
        if available.status != "False" {
            continue;
        }
        let mut line = "Available False".to_string();
        if let Some(t) = &available.last_transition_time {
            line.push_str(&format!(
                " since {} ({} ago)",
                time(t.0),
                ago(age_between(t.0, now))
            ));
        }
        if let Some(reason) = &available.reason {
            line.push_str(&format!(": {reason}"));
        }
        let mut evidence = vec![line];
        if let Some(message) = &available.message {
            evidence.push(message.clone());
        }
        if let Some(backend) = service.spec.as_ref().and_then(|s| s.service.as_ref()) {
            evidence.push(format!(
                "served by Service {}/{}",
                backend.namespace.as_deref().unwrap_or("?"),
                backend.name.as_deref().unwrap_or("?")
            ));
        }
        if snapshot.api_services.stale {
            evidence.push(format!(
                "as read {} ago (the latest read failed)",
                ago(snapshot.api_services.age)
            ));
        }
        out.push(Finding {
            id: "aggregated-api-unavailable".into(),
            severity: Severity::Warning,
            subject: Subject::new("APIService", name),
            title: format!("Aggregated API {name} is unavailable"),
            evidence,
            runbook: "aggregated-api".into(),
            actions: Vec::new(),
            caused_by: None,
        });
    }
    out
}

/// An age as a person reads it: "45 s", "3 min", "2 h 5 min".
pub(crate) fn ago(d: Duration) -> String {
    let s = d.as_secs();
    if s < 120 {
        format!("{s} s")
    } else if s < 7200 {
        format!("{} min", s / 60)
    } else {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    }
}

/// A time to the second, RFC 3339.
pub(crate) fn time(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::probe::{LatencyHistory, NamespaceProbe, ProbeReport};
    use crate::diagnose::Inventory;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn run(snapshot: &Snapshot) -> Vec<Finding> {
        let inventory = Inventory::default();
        findings(&Context {
            inventory: &inventory,
            live: Some(snapshot),
            now: at(0),
        })
    }

    fn ok_health() -> Source<Health> {
        Source::fresh(
            Health::parse(200, "[+]ping ok\n[+]etcd ok\nreadyz check passed\n"),
            at(0),
            Duration::from_millis(5),
        )
    }

    fn fail_all(snapshot: &mut Snapshot, error: &AccessError) {
        let e = Some(error.clone());
        snapshot.apiserver_version.error = e.clone();
        snapshot.livez.error = e.clone();
        snapshot.readyz.error = e.clone();
        snapshot.metrics.error = e.clone();
        snapshot.validating_webhooks.error = e.clone();
        snapshot.mutating_webhooks.error = e.clone();
        snapshot.namespaces.error = e.clone();
        snapshot.nodes.error = e.clone();
        snapshot.node_leases.error = e.clone();
        snapshot.warning_events.error = e.clone();
        snapshot.node_events.error = e.clone();
        snapshot.api_services.error = e.clone();
        snapshot.control_plane_endpoints.error = e.clone();
        snapshot.control_plane_endpoint_slices.error = e;
    }

    #[test]
    fn offline_raises_nothing() {
        let inventory = Inventory::default();
        let f = findings(&Context {
            inventory: &inventory,
            live: None,
            now: at(0),
        });
        assert!(f.is_empty());
    }

    #[test]
    fn a_hung_apiserver_is_unreachable_and_says_so() {
        let mut s = Snapshot {
            server: "https://10.0.0.1".into(),
            deadline: Duration::from_secs(3),
            ..Snapshot::default()
        };
        fail_all(
            &mut s,
            &AccessError::timeout("get /readyz", Duration::from_secs(3)),
        );
        let f = run(&s);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].id, "apiserver-unreachable");
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].subject, Subject::new("Apiserver", "https://10.0.0.1"));
        assert!(f[0].title.contains("3 s"));
        assert!(f[0].evidence[0].starts_with("14 of 14 cluster-wide reads failed"));
        assert!(
            f[0].evidence
                .iter()
                .any(|e| e == "get /readyz: no answer within 3 s")
        );
        assert_eq!(f[0].runbook, "apiserver-down");
    }

    #[test]
    fn refused_and_unauthorized_are_named() {
        let mut s = Snapshot::default();
        fail_all(
            &mut s,
            &AccessError::new(ErrorKind::Refused, "get /version: connection refused"),
        );
        let f = run(&s);
        assert!(f[0].evidence[0].contains("connection refused"));
        // A 401 is an answer: apiserver-credentials-rejected, not unreachable.
        let mut s = Snapshot::default();
        fail_all(
            &mut s,
            &AccessError::from_status("get /version", 401, "Unauthorized", ""),
        );
        assert!(run(&s).iter().all(|f| f.id != "apiserver-unreachable"));
    }

    #[test]
    fn one_source_failing_is_not_unreachable() {
        let mut s = Snapshot {
            readyz: ok_health(),
            ..Snapshot::default()
        };
        s.nodes.error = Some(AccessError::timeout("list nodes", Duration::from_secs(3)));
        assert!(run(&s).iter().all(|f| f.id != "apiserver-unreachable"));
        // Forbidden everywhere is an RBAC problem, not an unreachable apiserver.
        let mut s = Snapshot::default();
        fail_all(
            &mut s,
            &AccessError::from_status("list nodes", 403, "Forbidden", ""),
        );
        assert!(run(&s).is_empty());
    }

    #[test]
    fn failing_readyz_lists_the_failing_checks() {
        let s = Snapshot {
            readyz: Source::fresh(
                Health::parse(
                    500,
                    "[+]ping ok\n[+]etcd ok\n[-]poststarthook/ca-registration failed: reason withheld\nreadyz check failed\n",
                ),
                at(0),
                Duration::from_millis(5),
            ),
            livez: ok_health(),
            ..Snapshot::default()
        };
        let f = run(&s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].id, "apiserver-not-ready");
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(
            f[0].evidence[0],
            "get /readyz?verbose: HTTP 500, readyz check failed"
        );
        assert_eq!(
            f[0].evidence[1],
            "[-]poststarthook/ca-registration failed: reason withheld"
        );
        assert!(f[0].evidence[2].contains(CA_REGISTRATION_CONFIGMAP));
        assert!(f[0].title.contains("poststarthook/ca-registration"));
    }

    #[test]
    fn passing_health_raises_nothing() {
        let s = Snapshot {
            readyz: ok_health(),
            livez: ok_health(),
            ..Snapshot::default()
        };
        assert!(run(&s).is_empty());
    }

    #[test]
    fn slow_reads_and_writes_against_the_thresholds() {
        let mut latency = LatencyHistory::default();
        latency.record("get", Duration::from_millis(300), true, at(0));
        latency.record("list", Duration::from_millis(1_000), true, at(0));
        let mut s = Snapshot {
            latency,
            ..Snapshot::default()
        };
        assert!(run(&s).is_empty(), "exactly at the threshold is not slow");
        s.latency
            .record("list", Duration::from_millis(2_500), true, at(1));
        s.write_probe = Some(ProbeReport {
            namespaces: vec![NamespaceProbe {
                namespace: "kube-system".into(),
                started_at: Some(at(0)),
                deadline: Duration::from_secs(12),
                fail_closed_webhooks: Vec::new(),
                matching_webhooks: Vec::new(),
                state: ProbeState::Passed {
                    took: Duration::from_millis(2_500),
                },
            }],
            gave_up: false,
        });
        let f = run(&s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].id, "apiserver-slow");
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(
            f[0].evidence,
            [
                "slowest list of the latest refresh took 2.5 s (threshold 1 s)",
                "dry-run create of a ConfigMap in kube-system passed in 2.5 s (threshold 2 s)"
            ]
        );
    }
}
