//! The write-path probe against the simulator: the blocking webhook named with its cause, a
//! quick pass on a healthy cluster, nothing sent in read-only mode, and a hung apiserver that
//! holds nothing up.

use crate::common;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube_rescue::cluster::probe::{self, ProbeState, WriteFailure, WriteProbe};
use kube_rescue::cluster::{ErrorKind, collect};
use kube_rescue::sim::scenario::{Fault, Scenario};
use serde_json::json;

use common::{connect, request_log, start, start_yaml};

const OPA: &str = "validating-webhook.openpolicyagent.org";

#[tokio::test]
async fn the_outage_probe_names_the_hanging_webhook() {
    let running = start(Scenario::load("opa-webhook-outage").expect("shipped")).await;
    let cluster = connect(&running, Duration::from_secs(3), false).await;
    // The scenario restarts the apiserver 5 s in (down 3 s); its post-start hook then keeps it
    // up for 30 s. Probe in that window: wait for the restart, then for the apiserver back.
    let started = Instant::now();
    while running.sim.apiserver().is_up() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the apiserver never restarted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while !running.sim.apiserver().is_up() {
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "the apiserver stays down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let snapshot = collect::refresh(&cluster, None).await;
    assert!(snapshot.validating_webhooks.is_ok());

    // While the webhook holds the write, the probe says how long it has waited, and for whom.
    let mut probe = WriteProbe::start(&cluster, &snapshot);
    let ks = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let waiting = probe.report();
        let ks = waiting
            .namespace("kube-system")
            .expect("kube-system probed")
            .clone();
        assert!(
            matches!(ks.state, ProbeState::Waiting { .. }),
            "{:?}",
            ks.state
        );
        // Whole seconds: past the first, it says how many.
        if !ks.describe().starts_with("no answer after 0 s") {
            break ks;
        }
    };
    assert!(
        ks.describe().starts_with("no answer after ") && ks.describe().contains(" s"),
        "{}",
        ks.describe()
    );
    assert!(ks.describe().contains(OPA), "{}", ks.describe());
    assert_eq!(ks.fail_closed_webhooks, [OPA]);
    // The webhook's 10 s timeout plus the margin.
    assert_eq!(ks.deadline, Duration::from_secs(12));

    let report = probe.finished().await;
    let ks = report.namespace("kube-system").expect("kube-system probed");
    let ProbeState::Failed { took, failure } = &ks.state else {
        panic!("expected a failure: {:?}", ks.state);
    };
    let WriteFailure::WebhookCall {
        webhook,
        cause,
        url,
        ..
    } = failure
    else {
        panic!("expected a webhook call failure: {failure:?}");
    };
    assert_eq!(webhook, OPA);
    assert_eq!(cause, "context deadline exceeded");
    assert!(
        url.as_deref().is_some_and(|u| u.starts_with("https://")),
        "{url:?}"
    );
    assert!(*took >= Duration::from_secs(9), "{took:?}");
}

#[tokio::test]
async fn the_probe_passes_quickly_on_a_healthy_cluster() {
    let running = start(Scenario::load("healthy").expect("shipped")).await;
    let cluster = connect(&running, Duration::from_secs(3), false).await;
    let snapshot = collect::refresh(&cluster, None).await;
    let (_, since) = request_log(&running, 0).await;
    let started = Instant::now();
    let report = probe::write_probe(&cluster, &snapshot).await;
    let took = started.elapsed();
    // The promise: well under a second.
    assert!(
        took < common::bound(Duration::from_secs(1)),
        "probe took {took:?}"
    );
    assert_eq!(report.namespaces.len(), 2);
    for n in &report.namespaces {
        assert!(
            matches!(n.state, ProbeState::Passed { .. }),
            "{}: {:?}",
            n.namespace,
            n.state
        );
    }
    let (log, _) = request_log(&running, since).await;
    let posts: Vec<_> = log.iter().filter(|r| r["method"] == "POST").collect();
    assert_eq!(posts.len(), 2, "{log:#?}");
    assert!(
        posts
            .iter()
            .all(|r| r["query"].as_str().unwrap_or("").contains("dryRun=All")),
        "{posts:#?}"
    );
}

#[tokio::test]
async fn read_only_sends_only_gets() {
    let running = start(Scenario::load("opa-webhook-outage").expect("shipped")).await;
    let cluster = connect(&running, Duration::from_secs(3), true).await;
    let (_, since) = request_log(&running, 0).await;
    let snapshot = collect::refresh(&cluster, None).await;
    assert!(snapshot.nodes.is_ok());
    let report = probe::write_probe(&cluster, &snapshot).await;
    for n in &report.namespaces {
        assert_eq!(
            n.state,
            ProbeState::Skipped {
                reason: "read-only".into()
            }
        );
        assert_eq!(n.describe(), "skipped: read-only");
    }
    // A write attempted through the cluster's client is refused before it leaves.
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "x"}})).expect("configmap");
    let refused = cluster
        .call(
            "dry-run create",
            api.create(
                &PostParams {
                    dry_run: true,
                    field_manager: None,
                },
                &cm,
            ),
        )
        .await
        .expect_err("read-only refuses writes");
    assert_eq!(refused.kind, ErrorKind::ReadOnly);
    let (log, _) = request_log(&running, since).await;
    assert!(!log.is_empty());
    for r in &log {
        assert_eq!(r["method"], "GET", "{r}");
    }
}

#[tokio::test]
async fn a_hung_apiserver_holds_nothing_up() {
    let running = start_yaml(
        r#"
name: hung-probe
cluster: {kubelets: false, nodeLifecycle: false}
objects:
  - apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingWebhookConfiguration
    metadata: {name: everything}
    webhooks:
      - name: everything.example.com
        admissionReviewVersions: [v1]
        sideEffects: None
        timeoutSeconds: 20
        clientConfig: {url: "https://127.0.0.1:1/x"}
        rules: [{operations: ["*"], apiGroups: ["*"], apiVersions: ["*"], resources: ["*"]}]
      - name: pods-only.example.com
        admissionReviewVersions: [v1]
        sideEffects: None
        clientConfig: {url: "https://127.0.0.1:1/y"}
        rules: [{operations: ["*"], apiGroups: [""], apiVersions: ["*"], resources: ["pods"]}]
      - name: open.example.com
        admissionReviewVersions: [v1]
        sideEffects: None
        failurePolicy: Ignore
        timeoutSeconds: 5
        clientConfig: {url: "https://127.0.0.1:1/z"}
        namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system]}]}
        rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: ["configmaps"]}]
"#,
    )
    .await;
    let cluster = connect(&running, Duration::from_secs(1), false).await;
    let first = collect::refresh(&cluster, None).await;
    assert!(first.validating_webhooks.is_ok());
    running
        .sim
        .apiserver()
        .faults()
        .push(serde_json::from_value::<Fault>(json!({"hang": true})).expect("fault"));
    let started = Instant::now();
    let probe = WriteProbe::start(&cluster, &first);
    assert!(started.elapsed() < Duration::from_millis(200));
    let second = collect::refresh(&cluster, Some(&first)).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(second.nodes.error_kind(), Some(ErrorKind::Timeout));
    let report = probe.report();
    let ks = report.namespace("kube-system").expect("probed");
    let default = report.namespace("default").expect("probed");
    assert!(matches!(ks.state, ProbeState::Waiting { .. }));
    assert_eq!(ks.fail_closed_webhooks, ["everything.example.com"]);
    assert_eq!(ks.matching_webhooks, ["everything.example.com"]);
    assert_eq!(
        default.matching_webhooks,
        ["everything.example.com", "open.example.com"]
    );
    // 20 s (the largest timeout) + the margin.
    assert_eq!(ks.deadline, Duration::from_secs(22));
    drop(probe);
}
