//! Faults of the simulated apiserver as a client meets them: standing faults, the scenario
//! timeline, the request log at /sim/requests, and the apiserver's metrics.

use crate::common;

use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Pod, Secret};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

use common::{client, client_without_retry, eventually, start_yaml};

/// `(status, headers, body)` of a GET, or None when nothing answers within 10 s.
async fn get(client: &kube::Client, path: &str) -> Option<(u16, http::HeaderMap, String)> {
    let request = http::Request::get(path)
        .body(kube::client::Body::from(Vec::new()))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), client.send(request))
        .await
        .ok()?
        .ok()?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, headers, String::from_utf8_lossy(&body).into_owned()))
}

fn api_status(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected a Status from the apiserver, got {other:?}"),
    }
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

const DRY: PostParams = PostParams {
    dry_run: true,
    field_manager: None,
};

#[tokio::test]
async fn standing_faults() {
    let running = start_yaml(
        r#"
name: faults
cluster: {kubelets: false, nodeLifecycle: false}
objects:
  - {apiVersion: v1, kind: Node, metadata: {name: n1}}
  - {apiVersion: v1, kind: Namespace, metadata: {name: busy}}
faults:
  - match: {verb: list, resource: nodes}
    latencyMs: 700
  - match: {resource: events}
    status: 403
  - match: {resource: configmaps, namespace: busy}
    status: 429
  - match: {resource: secrets}
    status: 503
  - match: {resource: pods}
    hang: true
  - match: {verb: get, resource: namespaces}
    status: 500
    probability: 0.05
"#,
    )
    .await;
    let client = client_without_retry(&running.kubeconfig).await;

    // Latency on list, not on get.
    let nodes = Api::<Node>::all(client.clone());
    let started = Instant::now();
    let list = nodes.list(&ListParams::default()).await.unwrap();
    let took = started.elapsed();
    assert_eq!(list.items.len(), 1);
    assert!(took >= Duration::from_millis(700), "list took {took:?}");
    assert!(took < Duration::from_secs(10), "list took {took:?}");
    nodes.get("n1").await.unwrap();

    // 403 with a Status body.
    let status = api_status(
        Api::<Event>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 403);
    assert_eq!(status.reason, "Forbidden");
    assert!(status.message.contains("forbidden"), "{}", status.message);

    // 429 and 503 say when to come back.
    for (path, code, reason) in [
        ("/api/v1/namespaces/busy/configmaps", 429, "TooManyRequests"),
        ("/api/v1/secrets", 503, "ServiceUnavailable"),
    ] {
        let (got, headers, body) = get(&client, path).await.expect("an answer");
        assert_eq!(got, code, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["kind"], "Status");
        assert_eq!(body["reason"], reason);
        assert_eq!(body["details"]["retryAfterSeconds"], 1, "{body}");
        assert_eq!(
            headers.get("retry-after").and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }
    let status = api_status(
        Api::<Secret>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 503);
    // Other namespaces are not hit.
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap();

    // A hang: only the client's deadline ends it.
    let started = Instant::now();
    let hung = tokio::time::timeout(
        Duration::from_secs(1),
        Api::<Pod>::all(client.clone()).list(&ListParams::default()),
    )
    .await;
    assert!(hung.is_err(), "the hanging request answered: {hung:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A fault with a small probability does not hit every request.
    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
    let mut answered = 0;
    for _ in 0..40 {
        if namespaces.get("busy").await.is_ok() {
            answered += 1;
        }
    }
    assert!(answered >= 20, "only {answered} of 40 answered");
    running.sim.stop().await;
}

#[tokio::test]
async fn timeline_readyz_failing_then_cleared() {
    let running = start_yaml(
        r#"
name: readyz
cluster: {kubelets: false, nodeLifecycle: false}
timeline:
  - at: 1
    readyzFailing: [etcd]
  - at: 3
    readyzFailing: []
"#,
    )
    .await;
    let client = client(&running.kubeconfig).await;
    let (code, _, body) = get(&client, "/readyz?verbose").await.unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("readyz check passed"), "{body}");
    let body = eventually(10, "readyz failing on etcd", || {
        let client = client.clone();
        async move {
            let (code, _, body) = get(&client, "/readyz?verbose").await?;
            (code == 500).then_some(body)
        }
    })
    .await;
    assert!(body.contains("[-]etcd failed: reason withheld"), "{body}");
    assert!(body.contains("[+]ping ok"), "{body}");
    assert!(body.contains("readyz check failed"), "{body}");
    let (code, _, excluded) = get(&client, "/readyz?verbose&exclude=etcd").await.unwrap();
    assert_eq!(code, 200, "{excluded}");
    assert!(excluded.contains("[+]etcd excluded: ok"), "{excluded}");
    eventually(10, "readyz passing again", || {
        let client = client.clone();
        async move {
            let (code, _, _) = get(&client, "/readyz").await?;
            (code == 200).then_some(())
        }
    })
    .await;
    running.sim.stop().await;
}

#[tokio::test]
async fn timeline_apiserver_down_refuses_then_comes_back() {
    let running = start_yaml(
        r#"
name: down
cluster: {kubelets: false, nodeLifecycle: false}
timeline:
  - at: 1
    apiserverDown: 2s
"#,
    )
    .await;
    let addr = running.sim.address();
    let client = client(&running.kubeconfig).await;
    let nodes = Api::<Node>::all(client.clone());
    nodes.list(&ListParams::default()).await.unwrap();
    let down_at = eventually(10, "connections refused", || async move {
        match tokio::net::TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(Instant::now()),
            _ => None,
        }
    })
    .await;
    let err = nodes.list(&ListParams::default()).await.unwrap_err();
    assert!(!matches!(err, kube::Error::Api(_)), "{err:?}");
    eventually(10, "the apiserver back", || {
        let nodes = nodes.clone();
        async move { nodes.list(&ListParams::default()).await.ok() }
    })
    .await;
    assert!(down_at.elapsed() >= Duration::from_millis(500));
    running.sim.stop().await;
}

#[tokio::test]
async fn timeline_add_fault_then_clear_faults() {
    let running = start_yaml(
        r#"
name: add-fault
cluster: {kubelets: false, nodeLifecycle: false}
timeline:
  - at: 1
    addFault: {match: {verb: create, resource: configmaps}, status: 500, message: broken on purpose}
  - at: 3
    clearFaults: true
"#,
    )
    .await;
    let client = client(&running.kubeconfig).await;
    let cms = Api::<ConfigMap>::namespaced(client, "default");
    cms.create(&DRY, &cm("probe")).await.unwrap();
    let status = eventually(10, "creates failing", || {
        let cms = cms.clone();
        async move {
            match cms.create(&DRY, &cm("probe")).await {
                Err(kube::Error::Api(s)) => Some(*s),
                _ => None,
            }
        }
    })
    .await;
    assert_eq!(status.code, 500);
    assert_eq!(status.message, "broken on purpose");
    // Reads are not hit.
    cms.list(&ListParams::default()).await.unwrap();
    eventually(10, "creates working again", || {
        let cms = cms.clone();
        async move { cms.create(&DRY, &cm("probe")).await.ok() }
    })
    .await;
    running.sim.stop().await;
}

const GUARDED: &str = r#"
  - {apiVersion: v1, kind: Namespace, metadata: {name: opa}}
  - {apiVersion: v1, kind: Namespace, metadata: {name: guarded}}
  - apiVersion: v1
    kind: Service
    metadata: {name: opa, namespace: opa}
    spec: {clusterIP: 10.0.0.17, ports: [{port: 443, targetPort: 8443}], selector: {app: opa}}
  - apiVersion: v1
    kind: Endpoints
    metadata: {name: opa, namespace: opa}
    subsets: [{addresses: [{ip: 10.4.0.9}], ports: [{port: 8443}]}]
  - apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingWebhookConfiguration
    metadata: {name: guard}
    webhooks:
      - name: guard.example.com
        clientConfig: {service: {namespace: opa, name: opa, path: /validate}}
        rules:
          - {apiGroups: [""], apiVersions: ["*"], operations: [CREATE], resources: [configmaps]}
        namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: guarded}}
        failurePolicy: Fail
        timeoutSeconds: 2
        sideEffects: None
        admissionReviewVersions: [v1]
"#;

#[tokio::test]
async fn timeline_set_backend_switches_allow_to_deny() {
    let yaml = format!(
        r#"
name: set-backend
cluster: {{kubelets: false, nodeLifecycle: false}}
backends:
  - service: opa/opa
    behavior: allow
timeline:
  - at: 3
    setBackend: {{service: opa/opa, behavior: deny, message: "no way"}}
objects:
{GUARDED}
"#
    );
    let running = start_yaml(&yaml).await;
    let client = client(&running.kubeconfig).await;
    let cms = Api::<ConfigMap>::namespaced(client, "guarded");
    cms.create(&PostParams::default(), &cm("before"))
        .await
        .unwrap();
    let status = eventually(15, "the webhook denying", || {
        let cms = cms.clone();
        async move {
            match cms.create(&DRY, &cm("after")).await {
                Err(kube::Error::Api(s)) => Some(*s),
                _ => None,
            }
        }
    })
    .await;
    assert!(
        status
            .message
            .contains("admission webhook \"guard.example.com\" denied the request: no way"),
        "{}",
        status.message
    );
    assert_eq!(status.code, 403);
    assert!(cms.get_opt("after").await.unwrap().is_none());
    running.sim.stop().await;
}

#[tokio::test]
async fn timeline_apply_delete_recreate_and_every() {
    let running = start_yaml(
        r#"
name: objects
cluster:
  leaseRenewSeconds: 1
  nodeMonitorGracePeriodSeconds: 30
  autoRepairAfterSeconds: 0
  autoRepairDownSeconds: 1
objects:
  - {apiVersion: v1, kind: Node, metadata: {name: node-a}}
  - {apiVersion: v1, kind: Node, metadata: {name: node-b}}
timeline:
  - at: 1
    apply:
      - {apiVersion: v1, kind: ConfigMap, metadata: {name: late, namespace: default}, data: {x: "1"}}
  - at: 3
    delete:
      - {apiVersion: v1, kind: ConfigMap, namespace: default, name: late}
  - at: 1
    recreateNodes: [node-a]
  - at: 1
    every: 2
    count: 3
    recreateNodes: [node-b]
"#,
    )
    .await;
    let client = client(&running.kubeconfig).await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let nodes = Api::<Node>::all(client.clone());
    let uid = |n: &str| {
        let nodes = nodes.clone();
        let n = n.to_string();
        async move { nodes.get(&n).await.ok().and_then(|n| n.metadata.uid) }
    };
    let a0 = uid("node-a").await.unwrap();
    let b0 = uid("node-b").await.unwrap();

    let late = eventually(10, "the applied ConfigMap", || {
        let cms = cms.clone();
        async move { cms.get_opt("late").await.ok().flatten() }
    })
    .await;
    assert_eq!(late.data.unwrap()["x"], "1");
    eventually(10, "the ConfigMap deleted", || {
        let cms = cms.clone();
        async move { cms.get_opt("late").await.ok()?.is_none().then_some(()) }
    })
    .await;

    // node-a once, node-b three times (at 1, 3 and 5 s), each time registered again with a
    // new uid; the node controller's events tell every round.
    let events = Api::<Event>::namespaced(client.clone(), "default");
    let removed = |node: &'static str| {
        let events = events.clone();
        async move {
            events
                .list(
                    &ListParams::default()
                        .fields(&format!("involvedObject.name={node},reason=RemovingNode")),
                )
                .await
                .unwrap()
                .items
        }
    };
    eventually(20, "three rounds of node-b", || {
        let removed = removed("node-b");
        async move { (removed.await.len() >= 3).then_some(()) }
    })
    .await;
    // Nothing after the third.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let b_removed = removed("node-b").await;
    assert_eq!(b_removed.len(), 3, "{b_removed:#?}");
    let removed_uids: std::collections::BTreeSet<_> = b_removed
        .iter()
        .map(|e| e.involved_object.uid.clone().unwrap())
        .collect();
    assert_eq!(removed_uids.len(), 3, "each round removes a different node");
    assert!(removed_uids.contains(&b0));
    let b_now = eventually(10, "node-b registered again", || uid("node-b")).await;
    assert!(!removed_uids.contains(&b_now));
    assert_eq!(removed("node-a").await.len(), 1);
    let a1 = eventually(10, "node-a registered again", || uid("node-a")).await;
    assert_ne!(a0, a1);
    running.sim.stop().await;
}

fn requests(body: &str) -> (Vec<Value>, u64) {
    let v: Value = serde_json::from_str(body).unwrap();
    (
        v["requests"].as_array().unwrap().clone(),
        v["last"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn request_log_lists_what_a_client_asked() {
    let running = start_yaml(
        "name: log\ncluster: {kubelets: false, nodeLifecycle: false}\nobjects:\n  - {apiVersion: v1, kind: Node, metadata: {name: n1}}\n",
    )
    .await;
    let client = client(&running.kubeconfig).await;
    let (code, _, body) = get(&client, "/sim/requests").await.unwrap();
    assert_eq!(code, 200, "{body}");
    let (_, start) = requests(&body);

    let nodes = Api::<Node>::all(client.clone());
    nodes
        .list(&ListParams::default().labels("a=b"))
        .await
        .unwrap();
    nodes.get("n1").await.unwrap();
    let _ = nodes.get("missing").await.unwrap_err();

    let (_, _, body) = get(&client, &format!("/sim/requests?since={start}"))
        .await
        .unwrap();
    let (log, last) = requests(&body);
    assert_eq!(log.len(), 3, "{log:#?}");
    assert_eq!(log[0]["method"], "GET");
    assert_eq!(log[0]["path"], "/api/v1/nodes");
    assert!(
        log[0]["query"]
            .as_str()
            .unwrap()
            .contains("labelSelector=a%3Db"),
        "{}",
        log[0]
    );
    assert_eq!(log[0]["status"], 200);
    assert!(log[0]["latencyMs"].as_f64().is_some(), "{}", log[0]);
    assert_eq!(log[1]["path"], "/api/v1/nodes/n1");
    assert_eq!(log[2]["path"], "/api/v1/nodes/missing");
    assert_eq!(log[2]["status"], 404);
    assert!(log.iter().all(|r| r["seq"].as_u64().unwrap() > start));

    // Reading the log adds nothing to it.
    let (_, _, body) = get(&client, &format!("/sim/requests?since={last}"))
        .await
        .unwrap();
    let (log, again) = requests(&body);
    assert!(log.is_empty(), "{log:#?}");
    assert_eq!(again, last);

    // Without the token: refused.
    let wrong = running
        .sim
        .kubeconfig()
        .replace(running.sim.token(), "wrong");
    let path = running.dir.path().join("wrong");
    std::fs::write(&path, wrong).unwrap();
    let (code, _, _) = get(&client_without_retry(&path).await, "/sim/requests")
        .await
        .unwrap();
    assert_eq!(code, 401);
    running.sim.stop().await;
}

/// The value of the first sample of `name` whose labels include every one of `labels`.
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix('{')?;
        let (set, value) = rest.rsplit_once("} ")?;
        labels
            .iter()
            .all(|(k, v)| set.split(',').any(|l| l == format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

#[tokio::test]
async fn metrics_count_admission_and_requests() {
    let yaml = format!(
        r#"
name: metrics
cluster: {{kubelets: false, nodeLifecycle: false}}
backends:
  - service: opa/opa
    behavior: deny
    message: "not here"
objects:
{GUARDED}
"#
    );
    let running = start_yaml(&yaml).await;
    let client = client(&running.kubeconfig).await;
    let guarded = Api::<ConfigMap>::namespaced(client.clone(), "guarded");
    for i in 0..2 {
        let err = guarded
            .create(&PostParams::default(), &cm(&format!("c{i}")))
            .await
            .unwrap_err();
        assert_eq!(api_status(err).code, 403);
    }
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &cm("free"))
        .await
        .unwrap();
    let nodes = Api::<Node>::all(client.clone());
    for _ in 0..3 {
        nodes.list(&ListParams::default()).await.unwrap();
    }
    let _ = nodes.get("missing").await.unwrap_err();

    let (code, _, metrics) = get(&client, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    let webhook = [
        ("name", "guard.example.com"),
        ("type", "validating"),
        ("operation", "CREATE"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut l = webhook.to_vec();
        l.extend_from_slice(extra);
        l
    };
    assert_eq!(
        sample(
            &metrics,
            "apiserver_admission_webhook_request_total",
            &with(&[("code", "403"), ("rejected", "true")])
        ),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "apiserver_admission_webhook_rejection_count",
            &with(&[("error_type", "no_error"), ("rejection_code", "403")])
        ),
        Some(2.0),
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            "apiserver_admission_webhook_admission_duration_seconds_count",
            &with(&[("rejected", "true")])
        )
        .is_some_and(|c| c >= 2.0),
        "{metrics}"
    );
    let request = |verb: &'static str, resource: &'static str, code: &'static str| {
        sample(
            &metrics,
            "apiserver_request_total",
            &[("verb", verb), ("resource", resource), ("code", code)],
        )
    };
    assert_eq!(request("LIST", "nodes", "200"), Some(3.0), "{metrics}");
    assert_eq!(request("GET", "nodes", "404"), Some(1.0), "{metrics}");
    assert_eq!(request("POST", "configmaps", "403"), Some(2.0), "{metrics}");
    assert_eq!(request("POST", "configmaps", "201"), Some(1.0), "{metrics}");
    running.sim.stop().await;
}
