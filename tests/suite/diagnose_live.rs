//! Live-only findings (apiserver, nodes, aggregated APIs) and their correlation with the
//! webhook that blocks writes, from Snapshots built by hand: no network.

use std::time::Duration;

use jiff::Timestamp;
use kube_rescue::cluster::Snapshot;
use kube_rescue::cluster::snapshot::{Health, Source};
use kube_rescue::diagnose::{
    Context, Finding, Inventory, Severity, Subject, apiserver, nodes, rank,
};
use serde_json::json;

fn at(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).unwrap()
}

fn diagnose_live(snapshot: &Snapshot, webhook_findings: Vec<Finding>) -> Vec<Finding> {
    let inventory = Inventory::default();
    let context = Context {
        inventory: &inventory,
        live: Some(snapshot),
        now: at(0),
    };
    let mut findings = webhook_findings;
    findings.extend(apiserver::findings(&context));
    findings.extend(nodes::findings(&context));
    nodes::correlate(&mut findings);
    rank(&mut findings);
    findings
}

fn node(name: &str, uid: &str, ready: &str, created: i64) -> serde_json::Value {
    let reason = if ready == "True" {
        "KubeletReady"
    } else {
        "NodeStatusUnknown"
    };
    let mut n = json!({
        "metadata": {"name": name, "uid": uid, "creationTimestamp": at(created).to_string()},
        "spec": {},
        "status": {"conditions": [{"type": "Ready", "status": ready, "reason": reason,
            "message": "Kubelet stopped posting node status.",
            "lastTransitionTime": at(-50).to_string()}]}
    });
    if ready != "True" {
        n["spec"]["taints"] = json!([
            {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
        ]);
    }
    n
}

fn lease(name: &str, renewed: i64) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 8,
            "renewTime": at(renewed).to_string()}
    })
}

fn source(value: serde_json::Value) -> serde_json::Value {
    json!({"value": value, "fetchedAt": at(0).to_string(), "tookMs": 4, "error": null,
        "stale": false, "ageMs": 0})
}

/// The opa-webhook-outage at its worst: /readyz fails ca-registration, two of three nodes
/// Unknown with stale Leases (one recreated), metrics-server's APIService down.
fn outage() -> Snapshot {
    let readyz = "[+]ping ok\n[+]etcd ok\n[-]poststarthook/ca-registration failed: reason withheld\nreadyz check failed\n";
    let mut snapshot: Snapshot = serde_json::from_value(json!({
        "version": 1, "context": "gke_acme-prod", "server": "https://127.0.0.1:6443",
        "takenAt": at(0).to_string(), "tookMs": 800, "deadlineMs": 3000, "requests": 16,
        "sequence": 5, "backoffMs": null,
        "apiserverVersion": {"value": null, "fetchedAt": null, "tookMs": 0, "error": null, "stale": false, "ageMs": 0},
        "livez": source(json!(Health::parse(200, "[+]ping ok\nlivez check passed\n"))),
        "readyz": source(json!(Health::parse(500, readyz))),
        "metrics": source(json!({"webhooks": {}, "requests": {}})),
        "validatingWebhooks": source(json!([])),
        "mutatingWebhooks": source(json!([])),
        "webhookBackends": [],
        "webhookServicesSkipped": 0,
        "nodes": source(json!([
            node("gke-dev-pool-1-a1b2", "uid-a-3", "Unknown", -100),
            node("gke-dev-pool-1-c3d4", "uid-c-1", "Unknown", -3600),
            node("gke-dev-pool-1-e5f6", "uid-e-1", "True", -3600),
        ])),
        "nodeLeases": source(json!([
            lease("gke-dev-pool-1-c3d4", -60),
            lease("gke-dev-pool-1-e5f6", -2),
        ])),
        "warningEvents": source(json!([])),
        "apiServices": source(json!([{
            "metadata": {"name": "v1beta1.metrics.k8s.io"},
            "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"},
                "group": "metrics.k8s.io", "version": "v1beta1",
                "groupPriorityMinimum": 100, "versionPriority": 100},
            "status": {"conditions": [{"type": "Available", "status": "False",
                "reason": "FailedDiscoveryCheck",
                "message": "failing or missing response from https://10.8.0.12:443/apis/metrics.k8s.io/v1beta1: context deadline exceeded",
                "lastTransitionTime": at(-300).to_string()}]}
        }])),
        "controlPlaneEndpoints": {"value": null, "fetchedAt": null, "tookMs": 0, "error": null, "stale": false, "ageMs": 0},
        "controlPlaneEndpointSlices": {"value": null, "fetchedAt": null, "tookMs": 0, "error": null, "stale": false, "ageMs": 0},
        "nodeIdentities": {"nodes": {}},
        "latency": {"verbs": {}},
        "writeProbe": null,
    }))
    .expect("an outage-shaped snapshot");
    // gke-dev-pool-1-a1b2 came back with a new uid twice in the last 10 minutes.
    for (uid, seen) in [("uid-a-1", -600), ("uid-a-2", -300), ("uid-a-3", -100)] {
        let n: k8s_openapi::api::core::v1::Node =
            serde_json::from_value(node("gke-dev-pool-1-a1b2", uid, "Unknown", seen)).unwrap();
        snapshot.node_identities.observe(&[n], at(seen));
    }
    snapshot
}

const OPA: &str = "validating-webhook.openpolicyagent.org";

fn blocking_writes() -> Finding {
    Finding {
        id: "webhook-blocking-writes".into(),
        severity: Severity::Critical,
        subject: Subject::webhook(
            "ValidatingWebhookConfiguration",
            "opa-validating-webhook",
            OPA,
        ),
        title: format!("Writes fail: webhook {OPA} does not answer"),
        evidence: vec![format!(
            "dry-run create of a ConfigMap in kube-system failed after 12 s: webhook {OPA}: context deadline exceeded"
        )],
        runbook: "webhook-outage".into(),
        actions: vec![
            "fail-open".into(),
            "exclude-system-namespaces".into(),
            "delete".into(),
        ],
        caused_by: None,
    }
}

fn intercepts() -> Finding {
    Finding {
        id: "webhook-intercepts-control-plane".into(),
        severity: Severity::Warning,
        subject: Subject::webhook(
            "ValidatingWebhookConfiguration",
            "opa-validating-webhook",
            OPA,
        ),
        title: format!("Fail-closed webhook {OPA} intercepts control-plane writes"),
        evidence: vec![
            "matches UPDATE leases in kube-node-lease".into(),
            "matches UPDATE configmaps in kube-system".into(),
        ],
        runbook: "webhook-outage".into(),
        actions: vec!["exclude-system-namespaces".into(), "fail-open".into()],
        caused_by: None,
    }
}

fn ids(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.id.as_str()).collect()
}

fn get<'a>(findings: &'a [Finding], id: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("{id} not raised: {:?}", ids(findings)))
}

#[test]
fn the_outage_points_every_symptom_at_the_webhook_and_ranks_it_first() {
    let findings = diagnose_live(&outage(), vec![intercepts(), blocking_writes()]);
    assert_eq!(
        findings[0].id,
        "webhook-blocking-writes",
        "{:?}",
        ids(&findings)
    );
    let cause = format!("webhook-blocking-writes {OPA}");
    for id in [
        "apiserver-not-ready",
        "nodes-repair-loop",
        "node-heartbeats-stale",
        "nodes-not-ready",
    ] {
        let f = get(&findings, id);
        assert_eq!(f.caused_by.as_deref(), Some(cause.as_str()), "{id}");
        assert!(
            f.evidence
                .last()
                .unwrap()
                .starts_with(&format!("likely cause: webhook {OPA} blocks writes")),
            "{id}: {:?}",
            f.evidence
        );
    }
    assert_eq!(
        get(&findings, "nodes-repair-loop").evidence.last().unwrap(),
        &format!("likely cause: webhook {OPA} blocks writes (Lease renewals in kube-node-lease)")
    );
    assert!(
        get(&findings, "apiserver-not-ready")
            .evidence
            .last()
            .unwrap()
            .contains("kube-system/extension-apiserver-authentication")
    );
    // Aggregated APIs are not blamed on the webhook.
    assert_eq!(get(&findings, "aggregated-api-unavailable").caused_by, None);
    // Every symptom comes after its cause, the critical ones before the warnings.
    let position = |id: &str| findings.iter().position(|f| f.id == id).unwrap();
    assert!(position("webhook-blocking-writes") < position("apiserver-not-ready"));
    assert!(position("nodes-repair-loop") < position("node-heartbeats-stale"));
    assert!(position("nodes-not-ready") < position("aggregated-api-unavailable"));
}

#[test]
fn outage_findings_quote_what_was_observed() {
    let findings = diagnose_live(&outage(), Vec::new());
    assert_eq!(
        ids(&findings),
        [
            "apiserver-not-ready",
            "nodes-repair-loop",
            "node-heartbeats-stale",
            "nodes-not-ready",
            "aggregated-api-unavailable"
        ]
    );
    assert!(findings.iter().all(|f| f.caused_by.is_none()));
    let ready = get(&findings, "apiserver-not-ready");
    assert_eq!(
        ready.subject,
        Subject::new("Apiserver", "https://127.0.0.1:6443")
    );
    assert!(
        ready
            .evidence
            .contains(&"[-]poststarthook/ca-registration failed: reason withheld".to_string())
    );
    let repair = get(&findings, "nodes-repair-loop");
    assert_eq!(repair.severity, Severity::Critical);
    assert_eq!(repair.subject, Subject::new("Node", "gke-dev-pool-1-a1b2"));
    assert!(
        repair.evidence[1].starts_with("gke-dev-pool-1-a1b2: 3 uids seen, recreated 2 time(s)"),
        "{:?}",
        repair.evidence
    );
    let stale = get(&findings, "node-heartbeats-stale");
    assert_eq!(stale.severity, Severity::Critical, "2 of 3 nodes");
    assert_eq!(stale.subject.name, "2 nodes");
    assert!(
        stale
            .evidence
            .iter()
            .any(|e| e.starts_with("gke-dev-pool-1-c3d4: renewed 60 s ago"))
    );
    let not_ready = get(&findings, "nodes-not-ready");
    assert_eq!(not_ready.severity, Severity::Critical);
    assert!(
        not_ready
            .evidence
            .iter()
            .any(|e| e.contains("taints node.kubernetes.io/unreachable:NoSchedule"))
    );
    let api = get(&findings, "aggregated-api-unavailable");
    assert_eq!(api.severity, Severity::Warning);
    assert_eq!(
        api.subject,
        Subject::new("APIService", "v1beta1.metrics.k8s.io")
    );
    assert_eq!(api.runbook, "aggregated-api");
    assert!(api.evidence[0].ends_with(": FailedDiscoveryCheck"));
    assert!(api.evidence[1].starts_with("failing or missing response from"));
    assert!(
        api.evidence
            .contains(&"served by Service kube-system/metrics-server".to_string())
    );
}

#[test]
fn a_webhook_that_only_intercepts_leases_is_still_named_and_ranked_first() {
    let findings = diagnose_live(&outage(), vec![intercepts()]);
    assert_eq!(
        findings[0].id,
        "webhook-intercepts-control-plane",
        "{:?}",
        ids(&findings)
    );
    let repair = get(&findings, "nodes-repair-loop");
    assert_eq!(
        repair.caused_by.as_deref(),
        Some(format!("webhook-intercepts-control-plane {OPA}").as_str())
    );
    assert!(
        repair
            .evidence
            .last()
            .unwrap()
            .contains("intercepts Lease renewals")
    );
}

#[test]
fn a_webhook_that_does_not_touch_leases_is_not_blamed_for_nodes() {
    let mut other = intercepts();
    other.evidence = vec!["matches CREATE pods in kube-system".into()];
    let findings = diagnose_live(&outage(), vec![other]);
    assert!(findings.iter().all(|f| f.caused_by.is_none()));
}

#[test]
fn a_healthy_cluster_raises_nothing() {
    let mut s = outage();
    s.readyz = Source::fresh(
        Health::parse(200, "[+]ping ok\n[+]etcd ok\nreadyz check passed\n"),
        at(0),
        Duration::from_millis(3),
    );
    let mut nodes = s.nodes.value.take().unwrap();
    let leases: Vec<_> = nodes
        .iter_mut()
        .map(|n| {
            let name = n.metadata.name.clone().unwrap();
            let mut fixed: k8s_openapi::api::core::v1::Node =
                serde_json::from_value(node(&name, "x", "True", -3600)).unwrap();
            fixed.metadata.uid = n.metadata.uid.clone();
            *n = fixed;
            serde_json::from_value(lease(&name, -7)).unwrap()
        })
        .collect();
    s.nodes = Source::fresh(nodes, at(0), Duration::ZERO);
    s.node_leases = Source::fresh(leases, at(0), Duration::ZERO);
    s.node_identities = Default::default();
    let mut services = s.api_services.value.take().unwrap();
    let available = &mut services[0]
        .status
        .as_mut()
        .unwrap()
        .conditions
        .as_mut()
        .unwrap()[0];
    available.status = "True".into();
    available.reason = Some("Passed".into());
    s.api_services = Source::fresh(services, at(0), Duration::ZERO);
    let findings = diagnose_live(&s, vec![blocking_writes()]);
    assert_eq!(ids(&findings), ["webhook-blocking-writes"]);
}

#[test]
fn an_apiserver_down_mid_loop_keeps_what_it_last_said() {
    let mut s = outage();
    let down = kube_rescue::cluster::AccessError::new(
        kube_rescue::cluster::ErrorKind::Refused,
        "get /readyz: connection refused: nothing listens there (apiserver down or restarting?)",
    );
    let previous = s.clone();
    macro_rules! fail {
        ($($field:ident),*) => {$(
            s.$field = Source::failed(down.clone(), Duration::from_millis(2), Some(&previous.$field), at(5));
        )*};
    }
    fail!(
        apiserver_version,
        livez,
        readyz,
        metrics,
        validating_webhooks,
        mutating_webhooks,
        namespaces,
        nodes,
        node_leases,
        warning_events,
        api_services,
        control_plane_endpoints,
        control_plane_endpoint_slices
    );
    let inventory = Inventory::default();
    let context = Context {
        inventory: &inventory,
        live: Some(&s),
        now: at(5),
    };
    let mut findings = vec![blocking_writes()];
    findings.extend(apiserver::findings(&context));
    findings.extend(nodes::findings(&context));
    nodes::correlate(&mut findings);
    rank(&mut findings);
    let down = get(&findings, "apiserver-unreachable");
    assert!(down.title.contains("refuses connections"));
    assert!(down.evidence[0].contains("connection refused"));
    assert!(
        down.evidence
            .iter()
            .any(|e| e.contains("failing: poststarthook/ca-registration"))
    );
    assert_eq!(
        down.caused_by.as_deref(),
        Some(format!("webhook-blocking-writes {OPA}").as_str())
    );
    assert_eq!(
        findings[0].id,
        "webhook-blocking-writes",
        "{:?}",
        ids(&findings)
    );
    // Heartbeat ages are as of the last reading, not made older by the outage.
    let stale = get(&findings, "node-heartbeats-stale");
    assert!(
        stale
            .evidence
            .iter()
            .any(|e| e.starts_with("gke-dev-pool-1-c3d4: renewed 60 s ago"))
    );
    assert!(
        stale
            .evidence
            .iter()
            .any(|e| e.starts_with("leases as read 5 s ago"))
    );
}

fn node_event(node: &str, reason: &str, seconds: i64, count: i32) -> serde_json::Value {
    json!({
        "metadata": {"name": format!("{node}.{reason}.{seconds}"), "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": node},
        "reason": reason, "message": format!("{reason} {node}"), "type": "Normal",
        "lastTimestamp": at(seconds).to_string(), "count": count,
    })
}

#[test]
fn one_reading_of_node_events_shows_a_repair_loop() {
    let mut snapshot = outage();
    snapshot.node_identities = Default::default();
    snapshot.node_events = serde_json::from_value(source(json!([
        node_event("gke-dev-pool-1-c3d4", "RegisteredNode", -3600, 1),
        node_event("gke-dev-pool-1-c3d4", "RemovingNode", -120, 2),
        node_event("gke-dev-pool-1-c3d4", "RegisteredNode", -100, 1),
        // Removed and not back yet: not (yet) a recreation.
        node_event("gke-dev-pool-1-e5f6", "RegisteredNode", -3600, 1),
        node_event("gke-dev-pool-1-e5f6", "RemovingNode", -10, 1),
    ])))
    .unwrap();
    let findings = diagnose_live(&snapshot, vec![blocking_writes()]);
    let loop_ = get(&findings, "nodes-repair-loop");
    assert!(
        loop_.evidence[0].contains("gke-dev-pool-1-c3d4"),
        "{:?}",
        loop_.evidence
    );
    assert!(
        !loop_.evidence[0].contains("gke-dev-pool-1-e5f6"),
        "{:?}",
        loop_.evidence
    );
    assert!(
        loop_.evidence.iter().any(|e| e.contains("RemovingNode x2")),
        "{:?}",
        loop_.evidence
    );
    assert!(loop_.caused_by.is_some());

    // Only old events: no loop.
    snapshot.node_events = serde_json::from_value(source(json!([
        node_event("gke-dev-pool-1-c3d4", "RemovingNode", -7200, 1),
        node_event("gke-dev-pool-1-c3d4", "RegisteredNode", -7100, 1),
    ])))
    .unwrap();
    let findings = diagnose_live(&snapshot, vec![]);
    assert!(
        !ids(&findings).contains(&"nodes-repair-loop"),
        "{:?}",
        ids(&findings)
    );
}
