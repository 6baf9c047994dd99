//! Node findings: nodes-repair-loop, nodes-not-ready, node-heartbeats-stale; and the
//! correlation of node and apiserver symptoms with the webhook that causes them. Live only:
//! offline (no Snapshot) nothing is raised. Pure: no I/O, no clock but the one passed in.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, NodeCondition};

use super::apiserver::{CA_REGISTRATION_CONFIGMAP, ago, time};
use super::{Context, Finding, Severity, Subject};
use crate::cluster::snapshot::{Snapshot, Source, age_between, event_time};

/// nodes-repair-loop: recreations (same name, new uid) are counted within this window.
pub const REPAIR_LOOP_WINDOW: Duration = Duration::from_secs(15 * 60);
/// A repair loop has stopped once no node came back for this many lease durations (the
/// cluster's leaseDurationSeconds: 2 min with the kubelet's default of 40 s) and every node is
/// Ready with a fresh heartbeat: in a loop, a recreated node goes stale again within its lease.
pub const REPAIR_LOOP_SETTLED_LEASES: u32 = 3;
/// leaseDurationSeconds when a Lease does not say (the kubelet's default).
pub const DEFAULT_LEASE_DURATION_SECONDS: i64 = 40;
/// How many node names an evidence line lists before "and N more".
const NAMES_SHOWN: usize = 5;
/// How many per-node evidence lines a finding carries.
const DETAILS_SHOWN: usize = 5;

pub fn findings(context: &Context<'_>) -> Vec<Finding> {
    let Some(snapshot) = context.live else {
        return Vec::new();
    };
    let not_ready = not_ready(snapshot, context.now);
    let stale = heartbeats_stale(snapshot, context.now);
    // Every node read now, Ready, with a fresh heartbeat.
    let all_well = not_ready.is_none()
        && stale.is_none()
        && !snapshot.nodes.stale
        && snapshot
            .nodes
            .value
            .as_ref()
            .is_some_and(|nodes| !nodes.is_empty());
    let mut out = Vec::new();
    out.extend(repair_loop(snapshot, context.now, all_well));
    out.extend(not_ready);
    out.extend(stale);
    out
}

fn node_name(node: &Node) -> &str {
    node.metadata.name.as_deref().unwrap_or("?")
}

/// A node's Ready condition, if it reports one.
pub fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// `a, b, c and 4 more`.
fn names(list: &[&str]) -> String {
    let shown = list
        .iter()
        .take(NAMES_SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > NAMES_SHOWN {
        format!("{shown} and {} more", list.len() - NAMES_SHOWN)
    } else {
        shown
    }
}

/// The subject of a node finding: the node when there is one, else `<n> nodes`.
fn nodes_subject(list: &[&str]) -> Subject {
    match list {
        [one] => Subject::new("Node", one),
        _ => Subject::new("Node", &format!("{} nodes", list.len())),
    }
}

/// "(as read N ago: the latest read failed: ...)" for a stale source.
fn staleness<T>(what: &str, source: &Source<T>) -> Option<String> {
    source.stale.then(|| {
        let why = source
            .error
            .as_ref()
            .map(|e| format!(": {}", e.message))
            .unwrap_or_default();
        format!(
            "{what} as read {} ago (the latest read failed{why})",
            ago(source.age)
        )
    })
}

fn severity_of(affected: usize, total: usize) -> Severity {
    if affected * 2 > total {
        Severity::Critical
    } else {
        Severity::Warning
    }
}

/// The cluster's lease duration: the longest leaseDurationSeconds any node Lease shows, else
/// the kubelet's default.
fn lease_duration(snapshot: &Snapshot) -> Duration {
    let seconds = snapshot
        .node_leases
        .value
        .iter()
        .flatten()
        .filter_map(|l| l.spec.as_ref()?.lease_duration_seconds)
        .max()
        .map_or(DEFAULT_LEASE_DURATION_SECONDS, i64::from);
    Duration::from_secs(seconds.max(1) as u64)
}

fn repair_loop(snapshot: &Snapshot, now: Timestamp, all_well: bool) -> Option<Finding> {
    // Per name: how many times it came back with a new uid, and the latest identity.
    let mut recreated: BTreeMap<String, (usize, Option<Timestamp>)> = BTreeMap::new();
    for (name, count) in snapshot.node_identities.recreated(REPAIR_LOOP_WINDOW, now) {
        let latest = snapshot
            .node_identities
            .nodes
            .get(&name)
            .and_then(|ids| ids.last())
            .map(|i| i.created.unwrap_or(i.first_seen));
        recreated.insert(name, (count, latest));
    }
    // Within one reading: a Lease left by an earlier Node of the same name (its owner uid is not
    // the current Node's) shows the Node was deleted and registered again.
    if let (Some(nodes), Some(leases)) = (&snapshot.nodes.value, &snapshot.node_leases.value) {
        let by_name: std::collections::HashMap<&str, &k8s_openapi::api::coordination::v1::Lease> =
            leases
                .iter()
                .filter_map(|l| Some((l.metadata.name.as_deref()?, l)))
                .collect();
        for node in nodes {
            let (Some(name), Some(uid)) = (&node.metadata.name, &node.metadata.uid) else {
                continue;
            };
            let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0);
            if created.is_some_and(|c| age_between(c, now) > REPAIR_LOOP_WINDOW) {
                continue;
            }
            let orphaned = by_name
                .get(name.as_str())
                .into_iter()
                .flat_map(|l| l.metadata.owner_references.iter().flatten())
                .any(|o| o.kind == "Node" && &o.name == name && &o.uid != uid);
            if orphaned {
                recreated.entry(name.clone()).or_insert((1, created));
            }
        }
    }
    // The node controller's own trail: RemovingNode, then RegisteredNode for the same name.
    let trail = node_event_trail(snapshot, now);
    for (name, (removed, registered, latest)) in &trail {
        if let (Some(removed), Some(registered)) = (removed, registered)
            && registered.1 >= removed.1
        {
            let entry = recreated
                .entry(name.clone())
                .or_insert((0, Some(registered.1)));
            entry.0 = entry.0.max(removed.0);
            if entry.1.is_none() {
                entry.1 = Some(*latest);
            }
        }
    }
    if recreated.is_empty() {
        return None;
    }
    let list: Vec<&str> = recreated.keys().map(String::as_str).collect();
    let mut evidence = vec![format!(
        "{} node name(s) came back with a new uid within {} min: {}",
        list.len(),
        REPAIR_LOOP_WINDOW.as_secs() / 60,
        names(&list)
    )];
    for (name, (count, latest)) in recreated.iter().take(DETAILS_SHOWN) {
        let uids = snapshot
            .node_identities
            .nodes
            .get(name)
            .map_or(count + 1, |ids| ids.len().max(count + 1));
        let mut line = format!("{name}: {uids} uids seen, recreated {count} time(s)");
        if let Some(t) = latest {
            line.push_str(&format!(
                " in {} min, latest created {} ({} ago)",
                REPAIR_LOOP_WINDOW.as_secs() / 60,
                time(*t),
                ago(age_between(*t, now))
            ));
        }
        evidence.push(line);
        if let Some((Some(removed), Some(registered), _)) = trail.get(name) {
            evidence.push(format!(
                "{name}: events RemovingNode x{} (latest {}), RegisteredNode x{} (latest {})",
                removed.0,
                time(removed.1),
                registered.0,
                time(registered.1)
            ));
        }
    }
    // Stopped: nothing came back for a while and every node is well. Still worth knowing (what
    // ended it, what it cost), but no longer an emergency.
    let latest = recreated.values().filter_map(|(_, t)| *t).max();
    let settle = lease_duration(snapshot) * REPAIR_LOOP_SETTLED_LEASES;
    let settled = latest.filter(|t| all_well && age_between(*t, now) > settle);
    let title = match (list.as_slice(), settled) {
        ([one], None) => format!("Node {one} is being deleted and recreated (same name, new uid)"),
        (_, None) => format!(
            "{} nodes are being deleted and recreated (same name, new uid)",
            list.len()
        ),
        ([one], Some(t)) => format!(
            "Node {one} was deleted and recreated; the loop has stopped (none since {})",
            time(t)
        ),
        (_, Some(t)) => format!(
            "{} nodes were deleted and recreated; the loop has stopped (none since {})",
            list.len(),
            time(t)
        ),
    };
    if let Some(t) = settled {
        evidence.push(format!(
            "stopped: the latest came back {} ago, and every node is Ready with a fresh heartbeat",
            ago(age_between(t, now))
        ));
    }
    Some(Finding {
        id: "nodes-repair-loop".into(),
        severity: if settled.is_some() {
            Severity::Info
        } else {
            Severity::Critical
        },
        subject: nodes_subject(&list),
        title,
        evidence,
        runbook: "node-repair-loop".into(),
        actions: Vec::new(),
        caused_by: None,
    })
}

/// Per node name, from the events about Nodes within the repair-loop window:
/// (RemovingNode (count, latest), RegisteredNode (count, latest), latest of either).
type Trail = BTreeMap<
    String,
    (
        Option<(usize, Timestamp)>,
        Option<(usize, Timestamp)>,
        Timestamp,
    ),
>;

fn node_event_trail(snapshot: &Snapshot, now: Timestamp) -> Trail {
    let mut trail: Trail = BTreeMap::new();
    for event in snapshot.node_events.value.iter().flatten() {
        let Some(name) = event.involved_object.name.clone() else {
            continue;
        };
        let Some(when) = event_time(event) else {
            continue;
        };
        if age_between(when, now) > REPAIR_LOOP_WINDOW {
            continue;
        }
        let count = event.count.unwrap_or(1).max(1) as usize;
        let entry = trail.entry(name).or_insert((None, None, when));
        if when > entry.2 {
            entry.2 = when;
        }
        let slot = match event.reason.as_deref() {
            Some("RemovingNode") => &mut entry.0,
            Some("RegisteredNode") => &mut entry.1,
            _ => continue,
        };
        *slot = Some(match slot.take() {
            Some((n, latest)) => (n + count, latest.max(when)),
            None => (count, when),
        });
    }
    trail
}

fn not_ready(snapshot: &Snapshot, now: Timestamp) -> Option<Finding> {
    let nodes = snapshot.nodes.value.as_ref()?;
    let mut affected = Vec::new();
    for node in nodes {
        let Some(ready) = ready_condition(node) else {
            continue;
        };
        if ready.status == "False" || ready.status == "Unknown" {
            affected.push((node, ready));
        }
    }
    if affected.is_empty() {
        return None;
    }
    let list: Vec<&str> = affected.iter().map(|(n, _)| node_name(n)).collect();
    let mut evidence = vec![format!(
        "{} of {} nodes not Ready: {}",
        list.len(),
        nodes.len(),
        names(&list)
    )];
    for (node, ready) in affected.iter().take(DETAILS_SHOWN) {
        let mut line = format!("{}: Ready {}", node_name(node), ready.status);
        if let Some(t) = &ready.last_transition_time {
            line.push_str(&format!(
                " since {} ({} ago)",
                time(t.0),
                ago(age_between(t.0, now))
            ));
        }
        match (&ready.reason, &ready.message) {
            (Some(r), Some(m)) => line.push_str(&format!(": {r}: {m}")),
            (Some(r), None) => line.push_str(&format!(": {r}")),
            (None, Some(m)) => line.push_str(&format!(": {m}")),
            (None, None) => {}
        }
        let mut taints: Vec<String> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .filter(|t| {
                t.key == "node.kubernetes.io/unreachable" || t.key == "node.kubernetes.io/not-ready"
            })
            .map(|t| format!("{}:{}", t.key, t.effect))
            .collect();
        taints.dedup();
        if !taints.is_empty() {
            line.push_str(&format!("; taints {}", taints.join(", ")));
        }
        evidence.push(line);
    }
    evidence.extend(staleness("nodes", &snapshot.nodes));
    let severity = severity_of(list.len(), nodes.len());
    let title = match list.as_slice() {
        [one] => format!("Node {one} is not Ready"),
        _ => format!("{} of {} nodes are not Ready", list.len(), nodes.len()),
    };
    Some(Finding {
        id: "nodes-not-ready".into(),
        severity,
        subject: nodes_subject(&list),
        title,
        evidence,
        runbook: "node-repair-loop".into(),
        // Cordon targets one node; for many, the node controller's taints already keep pods off.
        actions: if list.len() == 1 {
            vec!["cordon".into()]
        } else {
            Vec::new()
        },
        caused_by: None,
    })
}

fn heartbeats_stale(snapshot: &Snapshot, now: Timestamp) -> Option<Finding> {
    let leases = snapshot.node_leases.value.as_ref()?;
    // Ages as of when the leases were read: a stale reading is not made older by the outage.
    let read_at = snapshot.node_leases.fetched_at.unwrap_or(now);
    let nodes = snapshot.nodes.value.as_ref();
    let node_names: Option<std::collections::HashSet<&str>> =
        nodes.map(|ns| ns.iter().map(node_name).collect());
    let lease_names: std::collections::HashSet<&str> = leases
        .iter()
        .filter_map(|l| l.metadata.name.as_deref())
        .collect();
    let mut stale: Vec<(String, String)> = Vec::new();
    for lease in leases {
        let Some(name) = lease.metadata.name.as_deref() else {
            continue;
        };
        // A Lease of a node that no longer exists is not a heartbeat anyone waits for.
        if let Some(names) = &node_names
            && !names.contains(name)
        {
            continue;
        }
        let spec = lease.spec.as_ref();
        let duration = spec
            .and_then(|s| s.lease_duration_seconds)
            .map_or(DEFAULT_LEASE_DURATION_SECONDS, i64::from);
        let duration = Duration::from_secs(duration.max(1) as u64);
        match spec.and_then(|s| s.renew_time.as_ref()) {
            Some(renewed) => {
                let age = age_between(renewed.0, read_at);
                if age > duration {
                    stale.push((
                        name.to_string(),
                        format!(
                            "{name}: renewed {} ago at {} (leaseDurationSeconds {})",
                            ago(age),
                            time(renewed.0),
                            duration.as_secs()
                        ),
                    ));
                }
            }
            None => stale.push((
                name.to_string(),
                format!("{name}: never renewed (no renewTime)"),
            )),
        }
    }
    // A Node without a Lease, old enough to have renewed one, or already declared silent by
    // the node controller (Ready Unknown): its kubelet could not create it.
    if let Some(nodes) = nodes {
        // The cluster's own lease duration when any Lease shows it, else the kubelet default.
        let grace = lease_duration(snapshot);
        for node in nodes {
            let name = node_name(node);
            if lease_names.contains(name) {
                continue;
            }
            let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0);
            let age = created.map_or(Duration::ZERO, |c| age_between(c, read_at));
            let silent = ready_condition(node).is_some_and(|c| c.status == "Unknown");
            if created.is_some() && age > grace {
                stale.push((
                    name.to_string(),
                    format!(
                        "{name}: no Lease in kube-node-lease, node created {} ago",
                        ago(age)
                    ),
                ));
            } else if silent {
                stale.push((
                    name.to_string(),
                    format!(
                        "{name}: no Lease in kube-node-lease and Ready Unknown (the kubelet could not create its Lease), node created {} ago",
                        ago(age)
                    ),
                ));
            }
        }
    }
    if stale.is_empty() {
        return None;
    }
    let total = nodes.map_or(leases.len(), Vec::len).max(stale.len());
    let list: Vec<&str> = stale.iter().map(|(n, _)| n.as_str()).collect();
    let mut evidence = vec![format!(
        "{} of {total} node heartbeats stale in kube-node-lease: {}",
        list.len(),
        names(&list)
    )];
    evidence.extend(stale.iter().take(DETAILS_SHOWN).map(|(_, l)| l.clone()));
    evidence.extend(staleness("leases", &snapshot.node_leases));
    let title = match list.as_slice() {
        [one] => format!("Node {one} has stopped renewing its Lease"),
        _ => format!(
            "{} of {total} nodes have stopped renewing their Lease",
            list.len()
        ),
    };
    Some(Finding {
        id: "node-heartbeats-stale".into(),
        severity: severity_of(list.len(), total),
        subject: nodes_subject(&list),
        title,
        evidence,
        runbook: "node-repair-loop".into(),
        actions: Vec::new(),
        caused_by: None,
    })
}

/// The key a symptom's `caused_by` names: the id and the webhook (or subject name).
pub fn cause_key(finding: &Finding) -> String {
    let name = finding
        .subject
        .webhook
        .as_deref()
        .unwrap_or(&finding.subject.name);
    format!("{} {name}", finding.id)
}

/// The webhook a cause finding is about.
fn webhook_of(finding: &Finding) -> &str {
    finding
        .subject
        .webhook
        .as_deref()
        .unwrap_or(&finding.subject.name)
}

fn mentions(finding: &Finding, word: &str) -> bool {
    finding
        .evidence
        .iter()
        .chain(std::iter::once(&finding.title))
        .any(|e| e.to_lowercase().contains(word))
}

/// A webhook finding that explains writes failing, and the line that says so.
struct Cause {
    key: String,
    line: String,
}

/// The likely cause of a symptom that needs the given writes: a webhook named by
/// webhook-blocking-writes first, else a fail-closed webhook that intercepts them.
fn find_cause(findings: &[Finding], word: &str, what: &str) -> Option<Cause> {
    let intercepts = |w: &str| {
        findings.iter().any(|f| {
            f.id == "webhook-intercepts-control-plane" && webhook_of(f) == w && mentions(f, word)
        })
    };
    if let Some(blocking) = findings
        .iter()
        .filter(|f| f.id == "webhook-blocking-writes" && f.subject.webhook.is_some())
        .max_by_key(|f| intercepts(webhook_of(f)))
    {
        return Some(Cause {
            key: cause_key(blocking),
            line: format!(
                "likely cause: webhook {} blocks writes ({what})",
                webhook_of(blocking)
            ),
        });
    }
    findings
        .iter()
        .find(|f| f.id == "webhook-intercepts-control-plane" && mentions(f, word))
        .map(|f| Cause {
            key: cause_key(f),
            line: format!(
                "likely cause: webhook {} intercepts {what} and fails closed",
                webhook_of(f)
            ),
        })
}

/// Points node and apiserver symptoms at the webhook that causes them: `caused_by` and an
/// evidence line. Node symptoms need Lease renewals in kube-node-lease; an apiserver whose
/// post-start hook fails (or whose last /readyz answer said so) needs its ca-registration write.
pub fn correlate(findings: &mut [Finding]) {
    let lease_cause = find_cause(findings, "lease", "Lease renewals in kube-node-lease");
    let hook_cause = find_cause(
        findings,
        "configmap",
        &format!("ca-registration must update ConfigMap {CA_REGISTRATION_CONFIGMAP}"),
    );
    for finding in findings.iter_mut() {
        if finding.caused_by.is_some() {
            continue;
        }
        let cause = match finding.id.as_str() {
            "nodes-repair-loop" | "node-heartbeats-stale" | "nodes-not-ready" => {
                lease_cause.as_ref()
            }
            "apiserver-not-ready" | "apiserver-unreachable"
                if finding
                    .evidence
                    .iter()
                    .any(|e| e.contains("poststarthook/")) =>
            {
                hook_cause.as_ref()
            }
            _ => None,
        };
        if let Some(cause) = cause {
            finding.caused_by = Some(cause.key.clone());
            finding.evidence.push(cause.line.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::Inventory;
    use k8s_openapi::api::coordination::v1::Lease;
    use serde_json::json;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn node(name: &str, uid: &str, ready: &str) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "uid": uid, "creationTimestamp": at(-3600).to_string()},
            "status": {"conditions": [{"type": "Ready", "status": ready,
                "reason": "NodeStatusUnknown", "message": "Kubelet stopped posting node status.",
                "lastTransitionTime": at(-120).to_string()}]}
        }))
        .unwrap()
    }

    fn lease(name: &str, renewed: i64, duration: i32) -> Lease {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": duration,
                "renewTime": at(renewed).to_string()}
        }))
        .unwrap()
    }

    fn run(snapshot: &Snapshot) -> Vec<Finding> {
        let inventory = Inventory::default();
        findings(&Context {
            inventory: &inventory,
            live: Some(snapshot),
            now: at(0),
        })
    }

    fn with_nodes(nodes: Vec<Node>, leases: Vec<Lease>) -> Snapshot {
        Snapshot {
            nodes: Source::fresh(nodes, at(0), Duration::ZERO),
            node_leases: Source::fresh(leases, at(0), Duration::ZERO),
            ..Snapshot::default()
        }
    }

    #[test]
    fn one_of_ten_not_ready_is_a_warning_six_is_critical() {
        let mut nodes: Vec<Node> = (0..10)
            .map(|i| node(&format!("n{i}"), &format!("u{i}"), "True"))
            .collect();
        let leases: Vec<Lease> = (0..10).map(|i| lease(&format!("n{i}"), -1, 40)).collect();
        assert!(run(&with_nodes(nodes.clone(), leases.clone())).is_empty());
        nodes[3] = node("n3", "u3", "Unknown");
        let f = run(&with_nodes(nodes.clone(), leases.clone()));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].id, "nodes-not-ready");
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].subject, Subject::new("Node", "n3"));
        assert_eq!(f[0].evidence[0], "1 of 10 nodes not Ready: n3");
        assert!(f[0].evidence[1].contains("Ready Unknown since"));
        assert!(f[0].evidence[1].contains("NodeStatusUnknown"));
        for (i, n) in nodes.iter_mut().enumerate().take(5) {
            *n = node(&format!("n{i}"), &format!("u{i}"), "False");
        }
        let f = run(&with_nodes(nodes.clone(), leases.clone()));
        assert_eq!(
            f[0].severity,
            Severity::Warning,
            "5 of 10 is half, not above"
        );
        nodes[5] = node("n5", "u5", "False");
        let f = run(&with_nodes(nodes, leases));
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].subject.name, "6 nodes");
    }

    #[test]
    fn offline_raises_nothing_and_correlation_keeps_an_earlier_cause() {
        let s = with_nodes(vec![node("a", "u1", "Unknown")], Vec::new());
        let inventory = Inventory::default();
        let offline = Context {
            inventory: &inventory,
            live: None,
            now: at(0),
        };
        assert!(findings(&offline).is_empty());
        let mut live = run(&s);
        assert_eq!(live[0].actions, ["cordon"]);
        live[0].caused_by = Some("something-else x".into());
        let before = live.clone();
        live.push(Finding {
            id: "webhook-blocking-writes".into(),
            severity: Severity::Critical,
            subject: Subject::webhook("ValidatingWebhookConfiguration", "c", "w.example.com"),
            title: String::new(),
            evidence: Vec::new(),
            runbook: "webhook-outage".into(),
            actions: Vec::new(),
            caused_by: None,
        });
        correlate(&mut live);
        assert_eq!(live[0], before[0], "an earlier cause is kept");
        assert_eq!(live[1].id, "node-heartbeats-stale");
        assert_eq!(
            live[1].caused_by.as_deref(),
            Some("webhook-blocking-writes w.example.com")
        );
    }

    #[test]
    fn a_lease_just_under_its_duration_is_fresh() {
        let nodes = vec![node("a", "u1", "True"), node("b", "u2", "True")];
        let s = with_nodes(nodes.clone(), vec![lease("a", -40, 40), lease("b", -8, 8)]);
        assert!(run(&s).is_empty());
        let s = with_nodes(nodes, vec![lease("a", -41, 40), lease("b", -9, 8)]);
        let f = run(&s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].id, "node-heartbeats-stale");
        assert_eq!(f[0].severity, Severity::Critical, "2 of 2");
        assert!(f[0].evidence[1].contains("leaseDurationSeconds 40"));
    }

    #[test]
    fn a_node_without_its_lease_is_stale() {
        let nodes = vec![node("a", "u1", "True"), node("b", "u2", "True"), {
            node("c", "u3", "True")
        }];
        let s = with_nodes(nodes, vec![lease("a", -1, 40), lease("b", -1, 40)]);
        let f = run(&s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[0].evidence[1].starts_with("c: no Lease in kube-node-lease"));
    }

    #[test]
    fn same_uid_seen_twice_is_not_a_recreation() {
        let mut s = with_nodes(vec![node("a", "u1", "True")], vec![lease("a", -1, 40)]);
        let nodes = s.nodes.value.clone().unwrap();
        s.node_identities.observe(&nodes, at(-60));
        s.node_identities.observe(&nodes, at(0));
        assert!(run(&s).is_empty());
        // Registered again a few seconds ago (a new uid is a new object: its creation time).
        let mut again = vec![node("a", "u2", "True")];
        again[0].metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(-5)));
        s.node_identities.observe(&again, at(0));
        let f = run(&s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].id, "nodes-repair-loop");
        assert_eq!(f[0].severity, Severity::Critical);
        assert!(f[0].evidence[1].starts_with("a: 2 uids seen, recreated 1 time(s)"));
    }

    #[test]
    fn a_recreation_older_than_the_window_is_forgotten() {
        let mut s = Snapshot::default();
        s.node_identities
            .observe(&[node("a", "u1", "True")], at(-3000));
        s.node_identities
            .observe(&[node("a", "u2", "True")], at(-2000));
        s.node_identities.observe(&[node("a", "u2", "True")], at(0));
        assert!(run(&s).is_empty());
    }

    #[test]
    fn a_lease_of_an_earlier_node_shows_a_recreation() {
        let mut n = node("a", "new", "True");
        n.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            at(-30),
        ));
        let mut l = lease("a", -1, 40);
        l.metadata.owner_references = Some(vec![
            serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Node", "name": "a", "uid": "old"
            }))
            .unwrap(),
        ]);
        let f = run(&with_nodes(vec![n], vec![l]));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].id, "nodes-repair-loop");
    }

    #[test]
    fn a_loop_that_has_stopped_is_no_longer_critical() {
        // `a` came back with a new uid `secs_ago` seconds ago; its lease renewed `renewed`.
        let case_with = |secs_ago: i64, ready: &str, renewed: i64, lease_seconds: i32| {
            let mut n = node("a", "new", ready);
            n.metadata.creation_timestamp = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(-secs_ago)),
            );
            let mut l = lease("a", renewed, lease_seconds);
            l.metadata.owner_references = Some(vec![
                serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Node", "name": "a", "uid": "old"
                }))
                .unwrap(),
            ]);
            run(&with_nodes(vec![n], vec![l]))
        };
        let case =
            |secs_ago: i64, ready: &str, renewed: i64| case_with(secs_ago, ready, renewed, 40);
        let loop_of = |f: &[Finding]| {
            f.iter()
                .find(|f| f.id == "nodes-repair-loop")
                .cloned()
                .expect("the repair loop is raised")
        };
        // Recreated a minute ago: too soon to call it over.
        let f = loop_of(&case(60, "True", -1));
        assert_eq!(f.severity, Severity::Critical);
        // Five minutes ago, Ready, heartbeat fresh: it has stopped.
        let f = loop_of(&case(300, "True", -1));
        assert_eq!(f.severity, Severity::Info, "{f:?}");
        assert!(
            f.title.contains("the loop has stopped (none since"),
            "{}",
            f.title
        );
        assert!(
            f.evidence
                .iter()
                .any(|e| e.starts_with("stopped: the latest came back 5 min ago")),
            "{:?}",
            f.evidence
        );
        // Five minutes ago, but the node is not Ready, or its heartbeat is stale: still on.
        assert_eq!(
            loop_of(&case(300, "Unknown", -1)).severity,
            Severity::Critical
        );
        assert_eq!(
            loop_of(&case(300, "True", -100)).severity,
            Severity::Critical
        );
        // The wait is three of the cluster's lease durations: 15 s with 5 s leases.
        assert_eq!(
            loop_of(&case_with(10, "True", -1, 5)).severity,
            Severity::Critical
        );
        assert_eq!(
            loop_of(&case_with(20, "True", -1, 5)).severity,
            Severity::Info
        );
    }
}
