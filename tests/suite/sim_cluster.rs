//! The living cluster behind the simulated apiserver, watched through kube-rs: kubelets
//! renewing Leases through admission, the node lifecycle controller, auto-repair, and
//! apiserver restarts with the ca-registration post-start hook.

use crate::common;

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node};
use kube::api::{Api, DeleteParams, ListParams};

use common::{client, eventually, start_yaml};

fn ready(node: &Node) -> String {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

fn unreachable_effects(node: &Node) -> Vec<String> {
    let mut effects: Vec<String> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.key == "node.kubernetes.io/unreachable")
        .map(|t| t.effect.clone())
        .collect();
    effects.sort();
    effects
}

const BACKEND: &str = r#"
  - {apiVersion: v1, kind: Namespace, metadata: {name: opa}}
  - apiVersion: v1
    kind: Service
    metadata: {name: opa, namespace: opa}
    spec: {clusterIP: 10.0.0.17, ports: [{port: 443, targetPort: 8443}], selector: {app: opa}}
  - apiVersion: v1
    kind: Endpoints
    metadata: {name: opa, namespace: opa}
    subsets: [{addresses: [{ip: 10.4.0.9}], ports: [{port: 8443}]}]
"#;

const NODES: &str = r#"
  - {apiVersion: v1, kind: Node, metadata: {name: node-a, labels: {kubernetes.io/hostname: node-a}}}
  - {apiVersion: v1, kind: Node, metadata: {name: node-b, labels: {kubernetes.io/hostname: node-b}}}
"#;

const TIMINGS: &str = r#"
cluster:
  leaseRenewSeconds: 1
  leaseDurationSeconds: 3
  nodeMonitorGracePeriodSeconds: 3
  nodeMonitorPeriodSeconds: 300ms
  autoRepairAfterSeconds: 3
  autoRepairDownSeconds: 1
"#;

fn blocking_leases_scenario() -> String {
    format!(
        r#"
name: leases-blocked
{TIMINGS}
backends:
  - service: opa/opa
    behavior: hang
objects:
{BACKEND}
{NODES}
  - apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingWebhookConfiguration
    metadata: {{name: lease-blocker}}
    webhooks:
      - name: leases.blocker.example.com
        clientConfig: {{service: {{namespace: opa, name: opa, path: /validate}}}}
        rules:
          - {{apiGroups: [coordination.k8s.io], apiVersions: ["*"], operations: [CREATE, UPDATE], resources: [leases]}}
        namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: kube-node-lease}}}}
        failurePolicy: Fail
        timeoutSeconds: 1
        sideEffects: None
        admissionReviewVersions: [v1]
"#
    )
}

fn node_events(events: &[Event], node: &str, reason: &str) -> Vec<Event> {
    events
        .iter()
        .filter(|e| {
            e.involved_object.name.as_deref() == Some(node) && e.reason.as_deref() == Some(reason)
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn blocked_lease_renewals_lead_to_unknown_taints_and_repair_until_the_webhook_goes() {
    let running = start_yaml(&blocking_leases_scenario()).await;
    let client = client(&running.kubeconfig).await;
    let nodes = Api::<Node>::all(client.clone());
    let events = Api::<Event>::all(client.clone());

    let original = nodes.get("node-a").await.unwrap();
    let original_uid = original.metadata.uid.clone().unwrap();
    let original_created = original.metadata.creation_timestamp.clone().unwrap();

    // The lease is never renewed, so the node controller marks the node Unknown and taints it.
    let unknown = eventually(30, "node-a Ready Unknown with unreachable taints", || {
        let nodes = nodes.clone();
        let uid = original_uid.clone();
        async move {
            let n = nodes.get("node-a").await.ok()?;
            (n.metadata.uid.as_deref() == Some(uid.as_str())
                && ready(&n) == "Unknown"
                && unreachable_effects(&n) == ["NoExecute", "NoSchedule"])
            .then_some(n)
        }
    })
    .await;
    let condition = unknown
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(condition.reason.as_deref(), Some("NodeStatusUnknown"));
    let not_ready = eventually(10, "a NodeNotReady event for node-a", || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.ok()?;
            node_events(&list.items, "node-a", "NodeNotReady")
                .into_iter()
                .next()
        }
    })
    .await;
    assert_eq!(
        not_ready.message.as_deref(),
        Some("Node node-a status is now: NodeNotReady")
    );
    assert_eq!(
        not_ready
            .source
            .as_ref()
            .and_then(|s| s.component.as_deref()),
        Some("node-controller")
    );
    assert_eq!(not_ready.involved_object.kind.as_deref(), Some("Node"));

    // Auto-repair: deleted and registered again under the same name with a new identity.
    let recreated = eventually(40, "node-a recreated with a new uid", || {
        let nodes = nodes.clone();
        let uid = original_uid.clone();
        async move {
            let n = nodes.get("node-a").await.ok()?;
            (n.metadata.uid.as_deref() != Some(uid.as_str())).then_some(n)
        }
    })
    .await;
    assert_eq!(recreated.metadata.name.as_deref(), Some("node-a"));
    assert!(
        recreated.metadata.creation_timestamp.clone().unwrap().0 > original_created.0,
        "the new node must be younger than the old one"
    );
    let new_uid = recreated.metadata.uid.clone().unwrap();
    let (removing, registered) = eventually(10, "RemovingNode and RegisteredNode events", || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.ok()?;
            let removing = node_events(&list.items, "node-a", "RemovingNode");
            let registered = node_events(&list.items, "node-a", "RegisteredNode");
            (!removing.is_empty() && !registered.is_empty()).then_some((removing, registered))
        }
    })
    .await;
    let removed_old = removing
        .iter()
        .find(|e| e.involved_object.uid.as_deref() == Some(original_uid.as_str()))
        .expect("RemovingNode names the old uid");
    assert_eq!(
        removed_old.message.as_deref(),
        Some("Removing Node node-a from Controller")
    );
    assert_eq!(
        removed_old
            .source
            .as_ref()
            .and_then(|s| s.component.as_deref()),
        Some("node-controller")
    );
    assert_eq!(removed_old.type_.as_deref(), Some("Normal"));
    let registered_new = registered
        .iter()
        .find(|e| e.involved_object.uid.as_deref() == Some(new_uid.as_str()))
        .expect("RegisteredNode names the new uid");
    assert_eq!(
        registered_new.message.as_deref(),
        Some("Registered Node node-a in Controller")
    );
    assert_eq!(
        registered_new
            .source
            .as_ref()
            .and_then(|s| s.component.as_deref()),
        Some("node-controller")
    );

    // The fix: delete the webhook configuration through the API. Nodes come back Ready and
    // the taint goes.
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .delete("lease-blocker", &DeleteParams::default())
        .await
        .unwrap();
    for name in ["node-a", "node-b"] {
        eventually(
            30,
            &format!("{name} Ready without the unreachable taint"),
            || {
                let nodes = nodes.clone();
                async move {
                    let n = nodes.get(name).await.ok()?;
                    (ready(&n) == "True" && unreachable_effects(&n).is_empty()).then_some(())
                }
            },
        )
        .await;
    }
    // And they stay that way: no repair after the fix.
    let settled = nodes.get("node-a").await.unwrap().metadata.uid;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let later = nodes.get("node-a").await.unwrap();
    assert_eq!(later.metadata.uid, settled, "repaired again after the fix");
    assert_eq!(ready(&later), "True");
    running.sim.stop().await;
}

#[tokio::test]
async fn a_healthy_cluster_keeps_its_nodes_ready_and_renews_leases() {
    let yaml = format!("name: healthy\n{TIMINGS}\nobjects:\n{NODES}");
    let running = start_yaml(&yaml).await;
    let client = client(&running.kubeconfig).await;
    let nodes = Api::<Node>::all(client.clone());
    let leases = Api::<Lease>::namespaced(client.clone(), "kube-node-lease");

    let first = eventually(10, "a lease for node-a", || {
        let leases = leases.clone();
        async move { leases.get("node-a").await.ok()?.spec?.renew_time }
    })
    .await;
    let uids: Vec<Option<String>> = nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| n.metadata.uid)
        .collect();
    eventually(10, "the lease renewTime moving", || {
        let leases = leases.clone();
        let first = first.clone();
        async move {
            let now = leases.get("node-a").await.ok()?.spec?.renew_time?;
            (now.0 > first.0).then_some(())
        }
    })
    .await;
    let lease = leases.get("node-a").await.unwrap();
    assert_eq!(
        lease.spec.as_ref().unwrap().holder_identity.as_deref(),
        Some("node-a")
    );
    // Longer than grace + auto-repair: nothing happens to healthy nodes.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let list = nodes.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(list.len(), 2);
    for n in &list {
        assert_eq!(ready(n), "True", "{:?}", n.metadata.name);
        assert!(unreachable_effects(n).is_empty());
    }
    let after: Vec<Option<String>> = list.into_iter().map(|n| n.metadata.uid).collect();
    assert_eq!(after, uids, "healthy nodes were recreated");
    let events = Api::<Event>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert!(
        events
            .iter()
            .all(|e| !matches!(e.reason.as_deref(), Some("NodeNotReady" | "RemovingNode"))),
        "{events:?}"
    );
    running.sim.stop().await;
}

async fn refused(addr: std::net::SocketAddr) -> bool {
    matches!(
        tokio::net::TcpStream::connect(addr).await,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// `(status, body)` of an HTTPS GET, or None when the apiserver does not answer.
async fn get(client: &kube::Client, path: &str) -> Option<(u16, String)> {
    use http_body_util::BodyExt;
    let request = http::Request::get(path)
        .body(kube::client::Body::from(Vec::new()))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), client.send(request))
        .await
        .ok()?
        .ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test]
async fn apiserver_restart_fails_ca_registration_until_the_webhook_is_deleted() {
    let yaml = format!(
        r#"
name: restart
cluster:
  kubelets: false
  nodeLifecycle: false
  apiserverRestartDownSeconds: 2
  caRegistrationTimeoutSeconds: 3
  crashLoopOnHookFailure: true
backends:
  - service: opa/opa
    behavior: hang
timeline:
  - at: 1
    restartApiserver: true
objects:
{BACKEND}
  - apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingWebhookConfiguration
    metadata: {{name: configmap-blocker}}
    webhooks:
      - name: configmaps.blocker.example.com
        clientConfig: {{service: {{namespace: opa, name: opa, path: /validate}}}}
        rules:
          - {{apiGroups: [""], apiVersions: ["*"], operations: [CREATE, UPDATE], resources: [configmaps]}}
        namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: kube-system}}}}
        failurePolicy: Fail
        timeoutSeconds: 1
        sideEffects: None
        admissionReviewVersions: [v1]
"#
    );
    let running = start_yaml(&yaml).await;
    let addr = running.sim.address();
    let client = client(&running.kubeconfig).await;
    let (code, body) = get(&client, "/readyz?verbose").await.unwrap();
    assert_eq!(code, 200, "{body}");

    // Down: connections refused.
    eventually(
        15,
        "connections refused while the apiserver restarts",
        || async move { refused(addr).await.then_some(()) },
    )
    .await;

    // Up again, but the post-start hook cannot write its ConfigMap.
    let body = eventually(30, "readyz failing on ca-registration", || {
        let client = client.clone();
        async move {
            let (code, body) = get(&client, "/readyz?verbose").await?;
            (code == 500
                && body.contains("[-]poststarthook/ca-registration failed: reason withheld"))
            .then_some(body)
        }
    })
    .await;
    assert!(body.contains("[+]ping ok"), "{body}");
    assert!(body.contains("readyz check failed"), "{body}");
    // The single check says the same, as the apiserver's per-check endpoint does (asked again
    // if the crash loop took the apiserver down in between: no answer is not an answer).
    let body = eventually(30, "/readyz/poststarthook/ca-registration failing", || {
        let client = client.clone();
        async move {
            let (code, body) = get(&client, "/readyz/poststarthook/ca-registration").await?;
            (code == 500).then_some(body)
        }
    })
    .await;
    assert!(body.starts_with("internal server error: "), "{body}");

    // The hook gives up and the apiserver restarts again: refused once more.
    eventually(
        20,
        "connections refused again after the hook failed",
        || async move { refused(addr).await.then_some(()) },
    )
    .await;

    // The fix, sent whenever the apiserver is up.
    let webhooks = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    eventually(30, "the webhook configuration deleted", || {
        let webhooks = webhooks.clone();
        async move {
            match webhooks
                .delete("configmap-blocker", &DeleteParams::default())
                .await
            {
                Ok(_) => Some(()),
                Err(kube::Error::Api(s)) if s.code == 404 => Some(()),
                Err(_) => None,
            }
        }
    })
    .await;

    let body = eventually(40, "readyz ok after the next hook attempt", || {
        let client = client.clone();
        async move {
            let (code, body) = get(&client, "/readyz").await?;
            (code == 200).then_some(body)
        }
    })
    .await;
    assert_eq!(body.trim(), "ok");
    let (code, verbose) = get(&client, "/readyz?verbose").await.unwrap();
    assert_eq!(code, 200, "{verbose}");
    assert!(
        verbose.contains("[+]poststarthook/ca-registration ok"),
        "{verbose}"
    );
    assert!(verbose.contains("readyz check passed"), "{verbose}");
    // The hook wrote its ConfigMap.
    let cm = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client, "kube-system")
        .get("extension-apiserver-authentication")
        .await
        .unwrap();
    assert!(cm.data.unwrap().contains_key("client-ca-file"));
    running.sim.stop().await;
}
