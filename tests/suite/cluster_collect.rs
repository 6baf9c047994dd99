//! One refresh against the simulator: concurrency under per-source deadlines, classified
//! errors, stale values, node identity, and the number of requests a refresh sends.

use crate::common;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, PostParams};
use kube_rescue::cluster::collect::{self, requests_per_refresh};
use kube_rescue::cluster::probe::ProbeState;
use kube_rescue::cluster::{ErrorKind, Snapshot};
use kube_rescue::sim::scenario::{Fault, Scenario};
use serde_json::{Value, json};

use common::{Running, connect, request_log, start, start_yaml};

/// A small cluster: two nodes with leases, one fail-closed webhook with its Service, pods and
/// Deployment, the control plane's endpoints, and one Warning event.
const BASE: &str = r#"
name: collect
cluster: {kubelets: false, nodeLifecycle: false}
objects:
  - {apiVersion: v1, kind: Namespace, metadata: {name: guard, labels: {kubernetes.io/metadata.name: guard}}}
  - {apiVersion: v1, kind: Node, metadata: {name: n1}, status: {conditions: [{type: Ready, status: "True"}]}}
  - {apiVersion: v1, kind: Node, metadata: {name: n2}, status: {conditions: [{type: Ready, status: "True"}]}}
  - {apiVersion: coordination.k8s.io/v1, kind: Lease, metadata: {name: n1, namespace: kube-node-lease}, spec: {holderIdentity: n1, leaseDurationSeconds: 40}}
  - {apiVersion: v1, kind: Endpoints, metadata: {name: kubernetes, namespace: default}, subsets: [{addresses: [{ip: 10.0.0.1}], ports: [{name: https, port: 443}]}]}
  - {apiVersion: v1, kind: Service, metadata: {name: guard, namespace: guard}, spec: {selector: {app: guard}, ports: [{port: 443, targetPort: 8443}]}}
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: guard, namespace: guard}
    spec:
      replicas: 1
      selector: {matchLabels: {app: guard}}
      template:
        metadata: {labels: {app: guard}}
        spec: {containers: [{name: guard, image: guard:1}]}
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: other, namespace: guard}
    spec:
      selector: {matchLabels: {app: other}}
      template:
        metadata: {labels: {app: other}}
        spec: {containers: [{name: other, image: other:1}]}
  - {apiVersion: v1, kind: Pod, metadata: {name: guard-1, namespace: guard, labels: {app: guard}}, spec: {containers: [{name: guard, image: guard:1}]}, status: {phase: Running}}
  - {apiVersion: v1, kind: Pod, metadata: {name: other-1, namespace: guard, labels: {app: other}}, spec: {containers: [{name: other, image: other:1}]}, status: {phase: Running}}
  - apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingWebhookConfiguration
    metadata: {name: guard}
    webhooks:
      - name: guard.example.com
        admissionReviewVersions: [v1]
        sideEffects: None
        clientConfig: {service: {namespace: guard, name: guard, path: /validate}}
        rules: [{operations: [CREATE], apiGroups: ["apps"], apiVersions: ["v1"], resources: [deployments]}]
  - apiVersion: v1
    kind: Event
    metadata: {name: e1, namespace: default}
    type: Warning
    reason: FailedCreate
    message: something failed
    involvedObject: {kind: Pod, name: p, namespace: default}
"#;

fn with_faults(faults: &str) -> String {
    format!("{BASE}faults:\n{faults}")
}

/// Every top-level source's error kind, by name.
fn kinds(s: &Snapshot) -> Vec<(String, Option<ErrorKind>)> {
    s.source_errors()
        .into_iter()
        .map(|(name, e)| (name, e.map(|e| e.kind)))
        .collect()
}

#[tokio::test]
async fn a_hung_apiserver_times_out_every_source_within_the_deadline() {
    let running = start_yaml(&with_faults("  - {hang: true}\n")).await;
    let cluster = connect(&running, Duration::from_secs(1), false).await;
    let started = Instant::now();
    let snapshot = collect::refresh(&cluster, None).await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "refresh took {took:?}");
    let all = kinds(&snapshot);
    assert_eq!(all.len(), collect::FIXED_REQUESTS, "{all:?}");
    for (name, kind) in &all {
        assert_eq!(*kind, Some(ErrorKind::Timeout), "{name}");
    }
    assert!(snapshot.nodes.value.is_none());
}

#[tokio::test]
async fn a_refusing_apiserver_is_named_within_a_second() {
    let running = start_yaml(BASE).await;
    let cluster = connect(&running, Duration::from_secs(3), false).await;
    running.sim.apiserver().go_down(Duration::from_secs(30));
    let started = Instant::now();
    let snapshot = collect::refresh(&cluster, None).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "refresh took {took:?}");
    for (name, kind) in kinds(&snapshot) {
        assert_eq!(kind, Some(ErrorKind::Refused), "{name}");
    }
}

#[tokio::test]
async fn forbidden_events_leave_everything_else_present() {
    let running = start_yaml(&with_faults(
        "  - {match: {resource: events}, status: 403}\n",
    ))
    .await;
    let cluster = connect(&running, Duration::from_secs(3), false).await;
    let snapshot = collect::refresh(&cluster, None).await;
    assert_eq!(
        snapshot.warning_events.error_kind(),
        Some(ErrorKind::Forbidden)
    );
    assert_eq!(
        snapshot.node_events.error_kind(),
        Some(ErrorKind::Forbidden)
    );
    for (name, kind) in kinds(&snapshot) {
        if name != "events" && name != "node events" {
            assert_eq!(kind, None, "{name}");
        }
    }
    assert_eq!(snapshot.nodes.value.as_ref().map(Vec::len), Some(2));
    assert_eq!(snapshot.node_leases.value.as_ref().map(Vec::len), Some(1));
    assert_eq!(
        snapshot.validating_webhooks.value.as_ref().map(Vec::len),
        Some(1)
    );
    assert!(snapshot.readyz.value.as_ref().is_some_and(|h| h.passed()));
    assert!(snapshot.apiserver_version.value.is_some());
    // The webhook's backend, read with targeted calls.
    assert_eq!(snapshot.webhook_backends.len(), 1);
    let backend = &snapshot.webhook_backends[0];
    assert_eq!(
        (backend.namespace.as_str(), backend.name.as_str()),
        ("guard", "guard")
    );
    assert_eq!(backend.webhooks, ["guard.example.com"]);
    assert!(backend.service.value.is_some());
    let pods: Vec<_> = backend
        .pods
        .value
        .iter()
        .flatten()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(pods, ["guard-1"]);
    let deployments: Vec<_> = backend
        .deployments
        .value
        .iter()
        .flatten()
        .filter_map(|d| d.metadata.name.clone())
        .collect();
    assert_eq!(deployments, ["guard"]);
    assert!(
        snapshot
            .control_plane_endpoints
            .value
            .as_ref()
            .is_some_and(|e| e.subsets.is_some())
    );
    // Round trip through JSON.
    let json = serde_json::to_string(&snapshot).expect("serializes");
    let back: Snapshot = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back.nodes.value, snapshot.nodes.value);
    assert_eq!(back.warning_events.error, snapshot.warning_events.error);
    assert_eq!(
        serde_json::to_value(&back).expect("serializes"),
        serde_json::to_value(&snapshot).expect("serializes")
    );
}

#[tokio::test]
async fn a_slow_node_list_times_out_alone() {
    let running = start_yaml(&with_faults(
        "  - {match: {verb: list, resource: nodes}, latencyMs: 1500}\n",
    ))
    .await;
    let cluster = connect(&running, Duration::from_secs(1), false).await;
    let started = Instant::now();
    let snapshot = collect::refresh(&cluster, None).await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "refresh took {took:?}");
    assert_eq!(snapshot.nodes.error_kind(), Some(ErrorKind::Timeout));
    for (name, kind) in kinds(&snapshot) {
        if name != "nodes" {
            assert_eq!(kind, None, "{name}");
        }
    }
    assert!(
        snapshot
            .warning_events
            .value
            .as_ref()
            .is_some_and(|e| !e.is_empty())
    );
}

#[tokio::test]
async fn a_failed_source_keeps_its_last_value_marked_stale() {
    let running = start_yaml(BASE).await;
    let cluster = connect(&running, Duration::from_secs(1), false).await;
    let first = collect::refresh(&cluster, None).await;
    assert!(first.nodes.is_ok() && !first.nodes.stale);
    running.sim.apiserver().faults().push(
        serde_json::from_value::<Fault>(json!({"match": {"resource": "nodes"}, "status": 503}))
            .expect("fault"),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = collect::refresh(&cluster, Some(&first)).await;
    assert_eq!(second.nodes.error_kind(), Some(ErrorKind::ServerError));
    assert!(second.nodes.stale);
    assert_eq!(second.nodes.value, first.nodes.value);
    assert_eq!(second.nodes.fetched_at, first.nodes.fetched_at);
    assert!(
        second.nodes.age >= Duration::from_millis(200),
        "{:?}",
        second.nodes.age
    );
    assert!(!second.node_leases.stale && second.node_leases.is_ok());
    assert_eq!(second.sequence, 2);
}

#[tokio::test]
async fn node_recreation_is_tracked_across_refreshes() {
    let running = start_yaml(BASE).await;
    let cluster = connect(&running, Duration::from_secs(3), false).await;
    let first = collect::refresh(&cluster, None).await;
    let nodes: Api<Node> = Api::all(common::client(&running.kubeconfig).await);
    for round in 0..2 {
        nodes
            .delete("n1", &DeleteParams::default())
            .await
            .expect("delete");
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}})).expect("node");
        nodes
            .create(&PostParams::default(), &node)
            .await
            .unwrap_or_else(|e| panic!("create round {round}: {e}"));
    }
    let second = collect::refresh(&cluster, Some(&first)).await;
    let now = jiff::Timestamp::now();
    let window = Duration::from_secs(600);
    // Two recreations, but one refresh saw only the latest uid: one new identity.
    assert_eq!(second.node_identities.recreations("n1", window, now), 1);
    assert_eq!(second.node_identities.recreations("n2", window, now), 0);
    nodes
        .delete("n1", &DeleteParams::default())
        .await
        .expect("delete");
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}})).expect("node");
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create");
    let third = collect::refresh(&cluster, Some(&second)).await;
    assert_eq!(third.node_identities.recreations("n1", window, now), 2);
    assert_eq!(
        third.node_identities.recreated(window, now),
        [("n1".to_string(), 2)]
    );
    assert_eq!(third.node_identities.nodes["n1"].len(), 3);
}

/// Requests of one refresh as the simulator logged them.
async fn requests_of_one_refresh(running: &Running) -> (Snapshot, Vec<Value>) {
    let cluster = connect(running, Duration::from_secs(10), false).await;
    let (_, since) = request_log(running, 0).await;
    let snapshot = collect::refresh(&cluster, None).await;
    let (log, _) = request_log(running, since).await;
    (snapshot, log)
}

#[tokio::test]
async fn requests_per_refresh_do_not_grow_with_the_cluster() {
    let healthy = start(Scenario::load("healthy").expect("healthy")).await;
    let (snapshot, log) = requests_of_one_refresh(&healthy).await;
    let services = snapshot.webhook_backends.len() + snapshot.webhook_services_skipped;
    assert_eq!(log.len(), snapshot.requests, "{log:#?}");
    assert_eq!(log.len(), requests_per_refresh(services), "{log:#?}");
    assert!(log.iter().all(|r| r["method"] == "GET"));
    // Lists are served from the watch cache.
    for r in log.iter().filter(|r| {
        let path = r["path"].as_str().unwrap_or("");
        !path.starts_with("/version")
            && !path.ends_with("z")
            && path != "/metrics"
            && !path.ends_with("/kubernetes")
            && !path.contains("/services/")
    }) {
        assert!(
            r["query"]
                .as_str()
                .unwrap_or("")
                .contains("resourceVersion=0"),
            "{r}"
        );
    }
    healthy.sim.stop().await;

    let small =
        start(Scenario::load("large:nodes=20,webhooks=100,events=20").expect("large")).await;
    let (small_snapshot, small_log) = requests_of_one_refresh(&small).await;
    small.sim.stop().await;
    let large =
        start(Scenario::load("large:nodes=2000,webhooks=100,events=5000").expect("large")).await;
    let (large_snapshot, large_log) = requests_of_one_refresh(&large).await;
    assert!(
        large_snapshot
            .nodes
            .value
            .as_ref()
            .is_some_and(|n| n.len() == 2000)
    );
    assert_eq!(
        large_snapshot.warning_events.value.as_ref().map(Vec::len),
        Some(collect::WARNING_EVENTS_LIMIT.min(5000))
    );
    assert_eq!(small_log.len(), large_log.len());
    assert_eq!(large_log.len(), collect::MAX_REQUESTS_PER_REFRESH);
    assert_eq!(small_snapshot.requests, large_snapshot.requests);
    // The same on the small healthy cluster as on the large one.
    assert_eq!(log.len(), large_log.len());
}

#[tokio::test]
async fn webhook_services_take_turns() {
    let large = start(Scenario::load("large:nodes=20,webhooks=12,events=20").expect("large")).await;
    let cluster = connect(&large, Duration::from_secs(10), false).await;
    let first = collect::refresh(&cluster, None).await;
    let services = first.webhook_backends.len();
    assert!(
        services >= 3,
        "the scenario has several webhook services: {services}"
    );
    let read = |s: &Snapshot| -> Vec<String> {
        s.webhook_backends
            .iter()
            .filter(|b| b.read_at.is_some())
            .map(|b| format!("{}/{}", b.namespace, b.name))
            .collect()
    };
    assert_eq!(read(&first).len(), 1);
    let mut previous = first;
    let mut seen = std::collections::BTreeSet::new();
    seen.extend(read(&previous));
    for _ in 1..services {
        let next = collect::refresh(&cluster, Some(&previous)).await;
        assert_eq!(
            next.webhook_backends.len(),
            services,
            "every service keeps a place"
        );
        let newly: Vec<String> = next
            .webhook_backends
            .iter()
            .filter(|b| {
                let before = previous
                    .webhook_backends
                    .iter()
                    .find(|p| p.namespace == b.namespace && p.name == b.name)
                    .and_then(|p| p.read_at);
                b.read_at.is_some() && b.read_at != before
            })
            .map(|b| format!("{}/{}", b.namespace, b.name))
            .collect();
        assert_eq!(newly.len(), 1, "one service read per refresh: {newly:?}");
        seen.extend(newly);
        previous = next;
    }
    assert_eq!(seen.len(), services, "every service had its turn");
    large.sim.stop().await;
}

#[tokio::test]
async fn overload_answers_are_asked_once_per_refresh() {
    let running = start_yaml(&with_faults(
        "  - {match: {verb: list}, status: 429}\n  - {match: {verb: get}, status: 503}\n",
    ))
    .await;
    let cluster = connect(&running, Duration::from_secs(3), false).await;
    let (_, since) = request_log(&running, 0).await;
    let started = Instant::now();
    let snapshot = collect::refresh(&cluster, None).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let (log, _) = request_log(&running, since).await;
    assert_eq!(log.len(), collect::FIXED_REQUESTS, "{log:#?}");
    let mut asked: Vec<String> = log
        .iter()
        .map(|r| {
            format!(
                "{}?{}",
                r["path"].as_str().unwrap_or(""),
                r["query"].as_str().unwrap_or("")
            )
        })
        .collect();
    let n = asked.len();
    asked.sort();
    asked.dedup();
    assert_eq!(asked.len(), n, "a request was sent twice: {log:#?}");
    assert_eq!(
        snapshot.nodes.error_kind(),
        Some(ErrorKind::TooManyRequests)
    );
    assert!(
        kinds(&snapshot)
            .iter()
            .all(|(_, k)| k.is_some_and(|k| k.is_overload())),
        "{:?}",
        kinds(&snapshot)
    );
}

fn quick_policy(interval_ms: u64, max_ms: u64) -> collect::RefreshPolicy {
    collect::RefreshPolicy {
        interval: Duration::from_millis(interval_ms),
        max_backoff: Duration::from_millis(max_ms),
        jitter: 0.0,
        probe_interval: None,
    }
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<std::sync::Arc<Snapshot>>) -> Snapshot {
    let snapshot = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a snapshot within 10 s")
        .expect("the refresher runs");
    std::sync::Arc::unwrap_or_clone(snapshot)
}

#[tokio::test]
async fn the_refresher_backs_off_in_a_429_storm_and_recovers() {
    let running = start_yaml(&with_faults(
        "  - {match: {verb: list}, status: 429}\n  - {match: {verb: get}, status: 503}\n",
    ))
    .await;
    let cluster = connect(&running, Duration::from_secs(2), false).await;
    let (_, since) = request_log(&running, 0).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let handle = collect::Refresher::new(cluster, quick_policy(200, 800)).spawn(tx);
    let ms = Duration::from_millis;
    let mut backoffs = Vec::new();
    let mut arrivals = Vec::new();
    for _ in 0..4 {
        let s = next(&mut rx).await;
        assert!(collect::is_overloaded(&s));
        backoffs.push(s.backoff);
        arrivals.push(Instant::now());
    }
    // The 429s carry Retry-After: 1, as the apiserver's do: waited out from the first
    // (capped at the longest wait, 800 ms here), not the doubling's 400 ms.
    assert_eq!(
        backoffs,
        [Some(ms(800)), Some(ms(800)), Some(ms(800)), Some(ms(800))]
    );
    // The waits were taken: the second gap is the 800 ms backoff, not the 200 ms interval.
    let gap = arrivals[2] - arrivals[1];
    assert!(gap >= ms(750), "{gap:?}");
    // Exactly one request per source per refresh: no retries.
    let (log, _) = request_log(&running, since).await;
    let refreshes = log.iter().filter(|r| r["path"] == "/version").count();
    assert!(refreshes >= 4);
    assert!(
        log.len() <= refreshes * collect::FIXED_REQUESTS,
        "{} requests for {refreshes} refreshes",
        log.len()
    );
    // Recovery: back to the normal interval.
    running.sim.apiserver().faults().clear();
    let mut recovered = None;
    for _ in 0..4 {
        let s = next(&mut rx).await;
        if !collect::is_overloaded(&s) {
            recovered = Some(s);
            break;
        }
    }
    let recovered = recovered.expect("the refresher sees the recovery");
    assert_eq!(recovered.backoff, None);
    assert!(recovered.nodes.is_ok());
    handle.stop().await;
}

#[tokio::test]
async fn refreshes_never_overlap() {
    let running = start_yaml(&with_faults("  - {hang: true}\n")).await;
    let cluster = connect(&running, Duration::from_millis(500), false).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let handle = collect::Refresher::new(cluster, quick_policy(10, 10)).spawn(tx);
    let started = Instant::now();
    let mut sequences = Vec::new();
    while started.elapsed() < Duration::from_millis(1700) {
        if let Ok(Some(s)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            assert_eq!(s.nodes.error_kind(), Some(ErrorKind::Timeout));
            sequences.push(s.sequence);
        }
    }
    handle.stop().await;
    // Each refresh waits for its 500 ms deadline: at most 4 in 1.7 s, one after the other.
    assert!((2..=4).contains(&sequences.len()), "{sequences:?}");
    let expected: Vec<u64> = (1..=sequences.len() as u64).collect();
    assert_eq!(sequences, expected);
}

/// A fail-closed webhook whose backend hangs, 1 s timeout, matching ConfigMaps everywhere.
const HANGING_WEBHOOK: &str = r#"
name: hanging-webhook
backends:
  - service: opa/opa
    behavior: hang
objects:
  - {apiVersion: v1, kind: Namespace, metadata: {name: default, labels: {kubernetes.io/metadata.name: default}}}
  - {apiVersion: v1, kind: Namespace, metadata: {name: kube-system, labels: {kubernetes.io/metadata.name: kube-system}}}
  - {apiVersion: v1, kind: Namespace, metadata: {name: opa, labels: {kubernetes.io/metadata.name: opa}}}
  - {apiVersion: v1, kind: Service, metadata: {name: opa, namespace: opa}, spec: {ports: [{port: 443}]}}
  - apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingWebhookConfiguration
    metadata: {name: blocker}
    webhooks:
      - name: blocker.example.com
        clientConfig: {service: {namespace: opa, name: opa, path: /validate}}
        rules:
          - {apiGroups: [""], apiVersions: ["*"], operations: [CREATE, UPDATE], resources: [configmaps]}
        failurePolicy: Fail
        timeoutSeconds: 1
        sideEffects: None
        admissionReviewVersions: [v1]
"#;

/// The write probe's verdict reaches the screen and stays there while the next round runs,
/// even when rounds follow each other back to back: a new round never hides the last answer
/// behind "no answer after 0 s".
#[tokio::test]
async fn the_probes_verdict_stays_shown_while_the_next_round_runs() {
    let running = start_yaml(HANGING_WEBHOOK).await;
    let cluster = connect(&running, Duration::from_secs(3), false).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let policy = collect::RefreshPolicy {
        probe_interval: Some(Duration::from_millis(200)),
        ..quick_policy(200, 800)
    };
    let handle = collect::Refresher::new(cluster, policy).spawn(tx);
    let failed_on_webhook = |n: &kube_rescue::cluster::probe::NamespaceProbe| {
        matches!(&n.state, ProbeState::Failed { failure, .. }
            if failure.webhook() == Some("blocker.example.com"))
    };
    let started = Instant::now();
    let mut seen = false;
    let mut after = Vec::new();
    while started.elapsed() < Duration::from_secs(6) {
        let s = next(&mut rx).await;
        let Some(report) = s.write_probe else {
            continue;
        };
        if seen {
            after.push(report);
        } else {
            seen = report.namespaces.iter().all(failed_on_webhook);
        }
    }
    handle.stop().await;
    assert!(seen, "no snapshot ever showed the probe's verdict");
    assert!(after.len() >= 5, "{after:#?}");
    for report in &after {
        assert!(
            report.namespaces.iter().all(|n| failed_on_webhook(n)
                || matches!(n.state, ProbeState::Waiting { waited } if waited >= Duration::from_secs(1))),
            "a later snapshot hid the verdict: {report:#?}"
        );
    }
}
