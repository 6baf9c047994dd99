//! The simulated apiserver as kube-rs sees it over HTTPS with the kubeconfig it writes:
//! authentication, discovery, reads with selectors and paging, the resourceVersion rules,
//! answer formats, writes with their conflicts and preconditions, dry runs, watches.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Node};
use k8s_openapi::api::events::v1::Event as NewEvent;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, WatchEvent,
    WatchParams,
};
use serde_json::{Value, json};

use common::{Running, client, start_yaml};

const SCENARIO: &str = r#"
name: api
cluster: {kubelets: false, nodeLifecycle: false}
objects:
  - {apiVersion: v1, kind: Namespace, metadata: {name: team-a, labels: {tier: gold}}}
  - {apiVersion: v1, kind: Namespace, metadata: {name: team-b}}
  - {apiVersion: v1, kind: Node, metadata: {name: n1, labels: {pool: a, zone: z1}}}
  - {apiVersion: v1, kind: Node, metadata: {name: n2, labels: {pool: b, zone: z1}}}
  - {apiVersion: v1, kind: Node, metadata: {name: n3, labels: {pool: a}}}
  - {apiVersion: v1, kind: Node, metadata: {name: n4, labels: {pool: c, gpu: "true"}}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: one, namespace: team-a}, data: {k: "1"}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: two, namespace: team-a}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: one, namespace: team-b}}
"#;

async fn sim() -> (Running, kube::Client) {
    let running = start_yaml(SCENARIO).await;
    let client = client(&running.kubeconfig).await;
    (running, client)
}

/// A request kube-rs cannot express; returns status, headers and body.
async fn raw(
    client: &kube::Client,
    method: &str,
    uri: &str,
    accept: Option<&str>,
    body: Option<Value>,
) -> (u16, http::HeaderMap, String) {
    raw_as(client, method, uri, accept, body, "application/json").await
}

async fn raw_as(
    client: &kube::Client,
    method: &str,
    uri: &str,
    accept: Option<&str>,
    body: Option<Value>,
    content_type: &str,
) -> (u16, http::HeaderMap, String) {
    let mut builder = http::Request::builder().method(method).uri(uri);
    if let Some(accept) = accept {
        builder = builder.header(http::header::ACCEPT, accept);
    }
    let bytes = match body {
        Some(b) => {
            builder = builder.header(http::header::CONTENT_TYPE, content_type);
            serde_json::to_vec(&b).unwrap()
        }
        None => Vec::new(),
    };
    let request = builder.body(kube::client::Body::from(bytes)).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), client.send(request))
        .await
        .expect("an answer in time")
        .expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn api_status(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected a Status from the apiserver, got {other:?}"),
    }
}

fn names<K: kube::Resource>(items: &[K]) -> Vec<String> {
    let mut names: Vec<String> = items
        .iter()
        .map(|o| o.meta().name.clone().unwrap_or_default())
        .collect();
    names.sort();
    names
}

fn cm(ns: &str, name: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns}, "data": {"k": "v"}
    }))
    .unwrap()
}

#[tokio::test]
async fn release_requirement_kube_client_from_written_kubeconfig_lists_nodes_metadata_only() {
    let (running, client) = sim().await;
    let text = std::fs::read_to_string(&running.kubeconfig).unwrap();
    assert!(
        text.contains("certificate-authority-data"),
        "the kubeconfig must carry the CA so TLS is verified: {text}"
    );
    assert!(!text.contains("insecure-skip-tls-verify: true"), "{text}");
    let nodes = Api::<Node>::all(client.clone());
    let list = nodes.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(names(&list.items), ["n1", "n2", "n3", "n4"]);
    assert!(list.items.iter().all(|n| n.metadata.uid.is_some()));
    assert!(
        list.metadata
            .resource_version
            .as_deref()
            .is_some_and(|rv| !rv.is_empty())
    );
    // The request went out asking for metadata only, and was answered so.
    let (_, _, log) = raw(&client, "GET", "/sim/requests", None, None).await;
    let log: Value = serde_json::from_str(&log).unwrap();
    let listed: Vec<&Value> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "/api/v1/nodes" && r["status"] == 200)
        .collect();
    assert_eq!(listed.len(), 1, "{log}");
    assert!(
        listed[0]["accept"]
            .as_str()
            .is_some_and(|a| a.contains("as=PartialObjectMetadataList")),
        "{log}"
    );
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_is_refused_by_tls() {
    let (running, _) = sim().await;
    let mut config = kube::Config::new(running.sim.url().parse().unwrap());
    config.root_cert = None;
    let client = kube::Client::try_from(config).unwrap();
    let err = Api::<Node>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "TLS must fail: {err:?}"
    );
}

#[tokio::test]
async fn wrong_token_is_401_with_an_unauthorized_status() {
    let (running, _) = sim().await;
    let text = running
        .sim
        .kubeconfig()
        .replace(running.sim.token(), "not-the-token");
    let path = running.dir.path().join("wrong");
    std::fs::write(&path, text).unwrap();
    let client = client(&path).await;
    let err = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap_err();
    let status = api_status(err);
    assert_eq!(status.code, 401);
    assert_eq!(status.reason, "Unauthorized");
    let (code, _, body) = raw(&client, "GET", "/api/v1/namespaces", None, None).await;
    assert_eq!(code, 401);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["status"], "Failure");
    assert_eq!(body["reason"], "Unauthorized");
    // Health is public to anonymous requests only: a token that is presented and invalid is
    // refused there too, as the apiserver's authenticator refuses it.
    let (code, _, _) = raw(&client, "GET", "/readyz", None, None).await;
    assert_eq!(code, 401);
}

#[tokio::test]
async fn kube_discovery_finds_webhooks_leases_and_events_k8s_io() {
    let (_running, client) = sim().await;
    let discovery = kube::discovery::Discovery::new(client).run().await.unwrap();
    let mut found = BTreeSet::new();
    for group in discovery.groups() {
        for (ar, _) in group.recommended_resources() {
            found.insert(format!("{}/{}", ar.group, ar.plural));
        }
    }
    for want in [
        "admissionregistration.k8s.io/validatingwebhookconfigurations",
        "admissionregistration.k8s.io/mutatingwebhookconfigurations",
        "coordination.k8s.io/leases",
        "events.k8s.io/events",
        "/nodes",
        "/events",
        "apps/deployments",
    ] {
        assert!(found.contains(want), "{want} missing from {found:?}");
    }
    assert!(discovery.has_group("events.k8s.io"));
}

#[tokio::test]
async fn get_and_list() {
    let (_running, client) = sim().await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "team-a");
    let one = cms.get("one").await.unwrap();
    assert_eq!(one.data.unwrap()["k"], "1");
    assert_eq!(one.metadata.namespace.as_deref(), Some("team-a"));
    assert_eq!(
        names(&cms.list(&ListParams::default()).await.unwrap().items),
        ["one", "two"]
    );
    let all = Api::<ConfigMap>::all(client.clone());
    let items = all.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(
        items
            .iter()
            .filter(|c| c.metadata.name.as_deref() == Some("one"))
            .count(),
        2
    );
    let status = api_status(cms.get("missing").await.unwrap_err());
    assert_eq!(status.code, 404);
    assert_eq!(status.reason, "NotFound");
    assert_eq!(status.message, "configmaps \"missing\" not found");
    let ns = Api::<Namespace>::all(client).get("team-a").await.unwrap();
    assert_eq!(
        ns.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
        "team-a"
    );
}

#[tokio::test]
async fn label_selectors() {
    let (_running, client) = sim().await;
    let nodes = Api::<Node>::all(client);
    let select = |s: &'static str| {
        let nodes = nodes.clone();
        async move {
            names(
                &nodes
                    .list_metadata(&ListParams::default().labels(s))
                    .await
                    .unwrap()
                    .items,
            )
        }
    };
    assert_eq!(select("pool=a").await, ["n1", "n3"]);
    assert_eq!(select("pool==a").await, ["n1", "n3"]);
    assert_eq!(select("pool!=a").await, ["n2", "n4"]);
    assert_eq!(select("pool in (b,c)").await, ["n2", "n4"]);
    assert_eq!(select("pool notin (b,c)").await, ["n1", "n3"]);
    assert_eq!(select("zone").await, ["n1", "n2"]);
    assert_eq!(select("!zone").await, ["n3", "n4"]);
    assert_eq!(select("pool=a,zone").await, ["n1"]);
    assert_eq!(select("zone!=z1").await, ["n3", "n4"]);
    let status = api_status(
        nodes
            .list(&ListParams::default().labels("pool in a"))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 400);
}

#[tokio::test]
async fn field_selectors() {
    let (_running, client) = sim().await;
    let all = Api::<ConfigMap>::all(client.clone());
    let list = all
        .list(&ListParams::default().fields("metadata.name=one"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 2);
    let list = all
        .list(&ListParams::default().fields("metadata.namespace=team-b"))
        .await
        .unwrap();
    assert_eq!(names(&list.items), ["one"]);
    let list = all
        .list(&ListParams::default().fields("metadata.namespace!=team-b,metadata.name!=one"))
        .await
        .unwrap();
    assert_eq!(names(&list.items), ["two"]);

    let events = Api::<Event>::namespaced(client.clone(), "default");
    for (name, kind, reason, type_) in [
        ("e1", "Node", "NodeNotReady", "Normal"),
        ("e2", "Node", "RegisteredNode", "Normal"),
        ("e3", "Pod", "FailedCreate", "Warning"),
    ] {
        let event: Event = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"kind": kind, "name": "x"},
            "reason": reason, "type": type_, "message": "m",
        }))
        .unwrap();
        events.create(&PostParams::default(), &event).await.unwrap();
    }
    let by = |f: &'static str| {
        let events = events.clone();
        async move {
            names(
                &events
                    .list(&ListParams::default().fields(f))
                    .await
                    .unwrap()
                    .items,
            )
        }
    };
    assert_eq!(by("involvedObject.kind=Node").await, ["e1", "e2"]);
    assert_eq!(by("reason=RegisteredNode").await, ["e2"]);
    assert_eq!(by("type=Warning").await, ["e3"]);
    assert_eq!(
        by("type!=Warning,involvedObject.kind=Node").await,
        ["e1", "e2"]
    );

    let status = api_status(
        all.list(&ListParams::default().fields("data.k=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 400);
    assert!(
        status.message.contains("field label not supported"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn limit_and_continue_page_through_everything_once() {
    let (_running, client) = sim().await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "team-b");
    for i in 0..57 {
        cms.create(
            &PostParams::default(),
            &cm("team-b", &format!("page-{i:03}")),
        )
        .await
        .unwrap();
    }
    let total = 58; // and the scenario's "one"
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(10);
    let mut pages = 0;
    loop {
        let page = cms.list_metadata(&params).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 10);
        seen.extend(page.items.iter().map(|c| c.metadata.name.clone().unwrap()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => {
                assert_eq!(
                    page.metadata.remaining_item_count,
                    Some((total - seen.len()) as i64),
                    "remainingItemCount after {} items",
                    seen.len()
                );
                params = params.continue_token(&token);
            }
            None => {
                assert_eq!(page.metadata.remaining_item_count, None);
                break;
            }
        }
        assert!(pages < 20, "paging does not end");
    }
    assert_eq!(pages, 6);
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates: {seen:?}");
    assert_eq!(seen.len(), total);

    let (code, _, body) = raw(
        &client,
        "GET",
        "/api/v1/namespaces/team-b/configmaps?limit=10&continue=garbage",
        None,
        None,
    )
    .await;
    assert_eq!(code, 400, "{body}");
}

#[tokio::test]
async fn resource_version_rules_of_a_list() {
    let (running, client) = sim().await;
    let cms = Api::<ConfigMap>::all(client.clone());
    // resourceVersion=0 comes from the watch cache, which does not page.
    // (kube-rs drops resourceVersion=0 when a limit is set, so this is asked for by hand.)
    let (code, _, body) = raw(
        &client,
        "GET",
        "/api/v1/configmaps?limit=1&resourceVersion=0",
        None,
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 3, "{list}");
    assert!(list["metadata"].get("continue").is_none(), "{list}");
    let current: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // Too large: the apiserver waits for it, then gives up with a Timeout.
    let once = common::client_without_retry(&running.kubeconfig).await;
    let (code, headers, body) = raw(
        &once,
        "GET",
        &format!("/api/v1/configmaps?resourceVersion={}", current + 1000),
        None,
        None,
    )
    .await;
    assert_eq!(code, 504, "{body}");
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["reason"], "Timeout");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Too large resource version"),
        "{body}"
    );

    // Exact at an old version: gone.
    Api::<ConfigMap>::namespaced(client.clone(), "team-a")
        .create(&PostParams::default(), &cm("team-a", "bump"))
        .await
        .unwrap();
    let status = api_status(
        cms.list(
            &ListParams::default()
                .at(&current.to_string())
                .matching(kube::api::VersionMatch::Exact),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(status.code, 410);
    assert_eq!(status.reason, "Expired");
    // NotOlderThan an old version is fine.
    let list = cms
        .list(
            &ListParams::default()
                .at(&current.to_string())
                .matching(kube::api::VersionMatch::NotOlderThan),
        )
        .await
        .unwrap();
    assert_eq!(list.items.len(), 4);
}

#[tokio::test]
async fn metadata_only_list_has_the_partial_object_metadata_shape() {
    let (_running, client) = sim().await;
    let (code, headers, body) = raw(
        &client,
        "GET",
        "/api/v1/namespaces/team-a/configmaps",
        Some("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(
        headers[http::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["kind"], "PartialObjectMetadataList");
    assert_eq!(body["apiVersion"], "meta.k8s.io/v1");
    assert!(body["metadata"]["resourceVersion"].is_string());
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(item["kind"], "PartialObjectMetadata", "{item}");
        assert_eq!(item["apiVersion"], "meta.k8s.io/v1", "{item}");
        assert!(item["metadata"]["uid"].is_string(), "{item}");
        assert!(item.get("data").is_none(), "metadata only: {item}");
    }
}

#[tokio::test]
async fn table_answer_has_columns_and_rows() {
    let (_running, client) = sim().await;
    let (code, _, body) = raw(
        &client,
        "GET",
        "/api/v1/nodes?limit=500",
        Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let table: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns[0], "Name", "{columns:?}");
    assert!(columns.contains(&"Status"), "{columns:?}");
    assert!(columns.contains(&"Age"), "{columns:?}");
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let first: Vec<&str> = rows
        .iter()
        .map(|r| r["cells"][0].as_str().unwrap())
        .collect();
    assert_eq!(first, ["n1", "n2", "n3", "n4"]);
    for row in rows {
        assert_eq!(row["cells"].as_array().unwrap().len(), columns.len());
        assert_eq!(row["object"]["kind"], "PartialObjectMetadata", "{row}");
    }
    // Something the server cannot produce: 406.
    let (code, _, _) = raw(
        &client,
        "GET",
        "/api/v1/nodes",
        Some("application/yaml"),
        None,
    )
    .await;
    assert_eq!(code, 406);
}

#[tokio::test]
async fn create_sets_identity_and_refuses_a_duplicate() {
    let (_running, client) = sim().await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "team-a");
    let before = Api::<ConfigMap>::all(client.clone())
        .list_metadata(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let created = cms
        .create(&PostParams::default(), &cm("team-a", "fresh"))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(
        meta.uid.as_deref().is_some_and(|u| u.len() == 36),
        "{meta:?}"
    );
    let rv = meta.resource_version.as_deref().unwrap();
    assert!(rv.parse::<u64>().unwrap() > before.parse::<u64>().unwrap());
    assert!(meta.creation_timestamp.is_some());
    let status = api_status(
        cms.create(&PostParams::default(), &cm("team-a", "fresh"))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "AlreadyExists");
    assert_eq!(status.message, "configmaps \"fresh\" already exists");
    // Into a namespace that does not exist.
    let status = api_status(
        Api::<ConfigMap>::namespaced(client, "nowhere")
            .create(&PostParams::default(), &cm("nowhere", "x"))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 404);
    assert_eq!(status.message, "namespaces \"nowhere\" not found");
}

#[tokio::test]
async fn update_with_a_stale_resource_version_conflicts() {
    let (_running, client) = sim().await;
    let cms = Api::<ConfigMap>::namespaced(client, "team-a");
    let stale = cms.get("one").await.unwrap();
    let mut fresh = stale.clone();
    fresh.data = Some([("k".to_string(), "2".to_string())].into());
    cms.replace("one", &PostParams::default(), &fresh)
        .await
        .unwrap();
    let mut late = stale.clone();
    late.data = Some([("k".to_string(), "3".to_string())].into());
    let status = api_status(
        cms.replace("one", &PostParams::default(), &late)
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert_eq!(
        status.message,
        "Operation cannot be fulfilled on configmaps \"one\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(cms.get("one").await.unwrap().data.unwrap()["k"], "2");
}

fn deployment() -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team-a"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn generation_and_the_status_subresource() {
    let (_running, client) = sim().await;
    let deployments = Api::<Deployment>::namespaced(client, "team-a");
    let created = deployments
        .create(&PostParams::default(), &deployment())
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    // Spec change through the main resource: generation moves; status in the body is ignored.
    let mut changed = created.clone();
    changed.spec.replicas = Some(3);
    changed.status = Some(serde_json::from_value(json!({"replicas": 7})).unwrap());
    let updated = deployments
        .replace("web", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(updated.metadata.generation, Some(2));
    assert_eq!(updated.spec.replicas, Some(3));
    assert!(
        updated
            .status
            .as_ref()
            .and_then(|s| s.replicas)
            .is_none_or(|r| r != 7),
        "PUT on the main resource must not write status: {:?}",
        updated.status
    );

    // Status through the status subresource: generation stays; spec in the body is ignored.
    let mut status_write = updated.clone();
    status_write.spec.replicas = Some(9);
    status_write.status =
        Some(serde_json::from_value(json!({"replicas": 3, "readyReplicas": 3})).unwrap());
    let after = deployments
        .replace_status("web", &PostParams::default(), &status_write)
        .await
        .unwrap();
    assert_eq!(after.metadata.generation, Some(2));
    assert_eq!(after.spec.replicas, Some(3));
    assert_eq!(after.status.as_ref().unwrap().ready_replicas, Some(3));

    // A metadata-only change does not move generation.
    let labelled = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(2));
    assert_eq!(labelled.status.unwrap().ready_replicas, Some(3));
}

#[tokio::test]
async fn merge_json_and_strategic_patches() {
    let (_running, client) = sim().await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "team-a");
    let patched = cms
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": "1", "k": null}})),
        )
        .await
        .unwrap();
    let data = patched.data.unwrap();
    assert_eq!(data.get("a").map(String::as_str), Some("1"));
    assert!(!data.contains_key("k"), "null removes a key: {data:?}");

    let json_patch = |ops: Value| {
        let client = client.clone();
        async move {
            raw_as(
                &client,
                "PATCH",
                "/api/v1/namespaces/team-a/configmaps/one",
                None,
                Some(ops),
                "application/json-patch+json",
            )
            .await
        }
    };
    let (code, _, body) = json_patch(json!([
        {"op": "add", "path": "/data/b", "value": "2"},
        {"op": "replace", "path": "/data/a", "value": "3"}
    ]))
    .await;
    assert_eq!(code, 200, "{body}");
    let patched: ConfigMap = serde_json::from_str(&body).unwrap();
    let data = patched.data.unwrap();
    assert_eq!(data["a"], "3");
    assert_eq!(data["b"], "2");

    // A JSON patch whose test fails changes nothing.
    let (code, _, body) = json_patch(json!([
        {"op": "test", "path": "/data/a", "value": "nope"},
        {"op": "remove", "path": "/data/a"}
    ]))
    .await;
    assert!(code >= 400, "{code} {body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["kind"],
        "Status"
    );
    assert_eq!(cms.get("one").await.unwrap().data.unwrap()["a"], "3");

    let nodes = Api::<Node>::all(client);
    let patched = nodes
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"unschedulable": true}, "metadata": {"labels": {"cordoned": "yes"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().unschedulable, Some(true));
    let labels = patched.metadata.labels.unwrap();
    assert_eq!(labels["cordoned"], "yes");
    assert_eq!(labels["pool"], "a", "other labels stay");
    let status = api_status(
        cms.patch(
            "missing",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(status.code, 404);
}

#[tokio::test]
async fn delete_preconditions_must_match() {
    let (_running, client) = sim().await;
    let cms = Api::<ConfigMap>::namespaced(client, "team-a");
    let current = cms.get("one").await.unwrap();
    let uid = current.metadata.uid.clone().unwrap();
    let rv = current.metadata.resource_version.clone().unwrap();

    let wrong_uid = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("00000000-0000-0000-0000-000000000000".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let status = api_status(cms.delete("one", &wrong_uid).await.unwrap_err());
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert!(
        status.message.contains(&format!(
            "Precondition failed: UID in precondition: 00000000-0000-0000-0000-000000000000, UID in object meta: {uid}"
        )),
        "{}",
        status.message
    );

    let wrong_rv = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid.clone()),
            resource_version: Some("1".into()),
        }),
        ..Default::default()
    };
    let status = api_status(cms.delete("one", &wrong_rv).await.unwrap_err());
    assert_eq!(status.code, 409);
    assert!(
        status.message.contains(&format!(
            "Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in object meta: {rv}"
        )),
        "{}",
        status.message
    );
    assert!(cms.get_opt("one").await.unwrap().is_some());

    let right = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid),
            resource_version: Some(rv),
        }),
        ..Default::default()
    };
    cms.delete("one", &right).await.unwrap();
    assert!(cms.get_opt("one").await.unwrap().is_none());
}

#[tokio::test]
async fn dry_run_writes_persist_nothing() {
    let (running, client) = sim().await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "team-a");
    let rv_before = running.sim.apiserver().store().resource_version();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let created = cms.create(&dry, &cm("team-a", "ghost")).await.unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("ghost"));
    assert!(created.metadata.uid.is_some());
    assert!(cms.get_opt("ghost").await.unwrap().is_none());

    let mut one = cms.get("one").await.unwrap();
    one.data = Some([("k".to_string(), "dry".to_string())].into());
    let replaced = cms.replace("one", &dry, &one).await.unwrap();
    assert_eq!(replaced.data.unwrap()["k"], "dry");

    let patch_params = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let patched = cms
        .patch(
            "one",
            &patch_params,
            &Patch::Merge(json!({"data": {"k": "patched"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["k"], "patched");

    let delete_params = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    cms.delete("two", &delete_params).await.unwrap();
    let ns_delete = Api::<Namespace>::all(client.clone())
        .delete("team-b", &delete_params)
        .await
        .unwrap();
    assert!(ns_delete.is_left());

    assert_eq!(cms.get("one").await.unwrap().data.unwrap()["k"], "1");
    assert!(cms.get_opt("two").await.unwrap().is_some());
    assert!(
        Api::<ConfigMap>::namespaced(client, "team-b")
            .get_opt("one")
            .await
            .unwrap()
            .is_some()
    );
    let store = running.sim.apiserver().store();
    assert_eq!(store.resource_version(), rv_before, "the store moved");
    assert!(store.get("configmaps", "team-a", "ghost").is_none());
    assert!(store.get("namespaces", "", "team-b").is_some());
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_contents() {
    let (_running, client) = sim().await;
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces
        .delete("team-a", &DeleteParams::default())
        .await
        .unwrap();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "team-a");
    let gone = async {
        loop {
            let left = cms.list(&ListParams::default()).await.unwrap().items.len();
            let ns = namespaces.get_opt("team-a").await.unwrap();
            if left == 0 && ns.is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), gone)
        .await
        .expect("the namespace and its contents go away");
    // Others are untouched.
    assert!(
        Api::<ConfigMap>::namespaced(client, "team-b")
            .get_opt("one")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn core_and_events_k8s_io_events_are_the_same_objects() {
    let (_running, client) = sim().await;
    let core = Api::<Event>::namespaced(client.clone(), "team-a");
    let event: Event = serde_json::from_value(json!({
        "metadata": {"name": "n1.abc", "namespace": "team-a"},
        "involvedObject": {"kind": "Node", "name": "n1", "apiVersion": "v1"},
        "reason": "NodeNotReady", "type": "Normal",
        "message": "Node n1 status is now: NodeNotReady",
        "source": {"component": "node-controller"},
    }))
    .unwrap();
    let created = core.create(&PostParams::default(), &event).await.unwrap();
    let new = Api::<NewEvent>::namespaced(client.clone(), "team-a");
    let seen = new.get("n1.abc").await.unwrap();
    assert_eq!(seen.metadata.uid, created.metadata.uid);
    assert_eq!(seen.reason.as_deref(), Some("NodeNotReady"));
    assert_eq!(
        seen.note.as_deref(),
        Some("Node n1 status is now: NodeNotReady")
    );
    assert_eq!(seen.regarding.as_ref().unwrap().name.as_deref(), Some("n1"));
    assert_eq!(seen.type_.as_deref(), Some("Normal"));

    // Written as events.k8s.io, read as core.
    let other: NewEvent = serde_json::from_value(json!({
        "metadata": {"name": "n2.def", "namespace": "team-a"},
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "reportingController": "node-controller", "reportingInstance": "x",
        "action": "Registered",
        "regarding": {"kind": "Node", "name": "n2"},
        "reason": "RegisteredNode", "type": "Normal",
        "note": "Registered Node n2 in Controller",
    }))
    .unwrap();
    new.create(&PostParams::default(), &other).await.unwrap();
    let back = core.get("n2.def").await.unwrap();
    assert_eq!(
        back.message.as_deref(),
        Some("Registered Node n2 in Controller")
    );
    assert_eq!(back.involved_object.name.as_deref(), Some("n2"));
    let both = names(&core.list(&ListParams::default()).await.unwrap().items);
    assert_eq!(both, ["n1.abc", "n2.def"]);
    assert_eq!(
        names(&new.list(&ListParams::default()).await.unwrap().items),
        both
    );
    new.delete("n1.abc", &DeleteParams::default())
        .await
        .unwrap();
    assert!(core.get_opt("n1.abc").await.unwrap().is_none());
}

#[tokio::test]
async fn watch_delivers_added_modified_deleted() {
    let (_running, client) = sim().await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "team-a");
    let stream = cms
        .watch(&WatchParams::default().timeout(20), "0")
        .await
        .unwrap();
    let mut stream = stream.boxed();
    let writer = {
        let cms = cms.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            cms.create(&PostParams::default(), &cm("team-a", "watched"))
                .await
                .unwrap();
            cms.patch(
                "watched",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"k": "2"}})),
            )
            .await
            .unwrap();
            cms.delete("watched", &DeleteParams::default())
                .await
                .unwrap();
        })
    };
    let mut seen = Vec::new();
    let collect = async {
        while let Some(event) = stream.try_next().await.unwrap() {
            let (kind, name) = match &event {
                WatchEvent::Added(o) => ("ADDED", o.metadata.name.clone()),
                WatchEvent::Modified(o) => ("MODIFIED", o.metadata.name.clone()),
                WatchEvent::Deleted(o) => ("DELETED", o.metadata.name.clone()),
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => panic!("watch error {e:?}"),
            };
            let name = name.unwrap_or_default();
            seen.push(format!("{kind} {name}"));
            if kind == "DELETED" && name == "watched" {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), collect)
        .await
        .expect("the watch delivers the delete");
    writer.await.unwrap();
    // resourceVersion 0 starts with the current objects.
    assert!(seen.contains(&"ADDED one".to_string()), "{seen:?}");
    assert!(seen.contains(&"ADDED two".to_string()), "{seen:?}");
    let tail: Vec<&str> = seen
        .iter()
        .filter(|s| s.ends_with(" watched"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        ["ADDED watched", "MODIFIED watched", "DELETED watched"]
    );
}

#[tokio::test]
async fn self_subject_access_review_is_allowed() {
    let (_running, client) = sim().await;
    let reviews = Api::<SelfSubjectAccessReview>::all(client);
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some("delete".into()),
                group: Some("admissionregistration.k8s.io".into()),
                resource: Some("validatingwebhookconfigurations".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = reviews
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    assert!(answer.status.unwrap().allowed);
}

const VWC_PATH: &str =
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/opa-validating-webhook";

/// PUTs `change(stored)` and returns the answer's status and body, and the object stored
/// before and after.
async fn put_webhook_change(change: impl Fn(&mut Value)) -> (u16, Value, Value, Value) {
    let running = start_yaml(common::WEBHOOK_SCENARIO).await;
    let client = client(&running.kubeconfig).await;
    let (_, _, before) = raw(&client, "GET", VWC_PATH, None, None).await;
    let before: Value = serde_json::from_str(&before).unwrap();
    let mut body = before.clone();
    change(&mut body);
    let (status, _, answer) = raw(&client, "PUT", VWC_PATH, None, Some(body.clone())).await;
    // A dry run is validated the same way.
    let (dry_status, _, dry_answer) = raw(
        &client,
        "PUT",
        &format!("{VWC_PATH}?dryRun=All"),
        None,
        Some(body),
    )
    .await;
    assert_eq!((dry_status, &dry_answer), (status, &answer));
    let (_, _, after) = raw(&client, "GET", VWC_PATH, None, None).await;
    (
        status,
        serde_json::from_str(&answer).unwrap(),
        before,
        serde_json::from_str(&after).unwrap(),
    )
}

#[tokio::test]
async fn an_unsupported_failure_policy_is_refused_with_the_apiservers_422() {
    let (status, answer, before, after) =
        put_webhook_change(|o| o["webhooks"][0]["failurePolicy"] = json!("Bogus")).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"opa-validating-webhook\" is invalid: webhooks[0].failurePolicy: Unsupported value: \"Bogus\": supported values: \"Fail\", \"Ignore\"",
            "reason": "Invalid",
            "details": {
                "name": "opa-validating-webhook",
                "group": "admissionregistration.k8s.io",
                "kind": "ValidatingWebhookConfiguration",
                "causes": [{
                    "reason": "FieldValueNotSupported",
                    "message": "Unsupported value: \"Bogus\": supported values: \"Fail\", \"Ignore\"",
                    "field": "webhooks[0].failurePolicy"
                }]
            },
            "code": 422
        })
    );
    assert_eq!(after, before, "nothing was stored");
    assert_eq!(after["webhooks"][0]["failurePolicy"], "Fail");
}

#[tokio::test]
async fn a_null_webhook_is_refused_as_an_empty_one() {
    let (status, answer, before, after) =
        put_webhook_change(|o| o["webhooks"] = json!([null])).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer["message"],
        "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"opa-validating-webhook\" is invalid: [webhooks[0].name: Required value, webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun, webhooks[0].clientConfig: Required value: exactly one of url or service is required, webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1]"
    );
    assert_eq!(answer["reason"], "Invalid");
    assert_eq!(
        answer["details"]["causes"],
        json!([
            {"reason": "FieldValueRequired", "message": "Required value", "field": "webhooks[0].name"},
            {"reason": "FieldValueRequired", "message": "Required value: must specify one of None, NoneOnDryRun", "field": "webhooks[0].sideEffects"},
            {"reason": "FieldValueRequired", "message": "Required value: exactly one of url or service is required", "field": "webhooks[0].clientConfig"},
            {"reason": "FieldValueRequired", "message": "Required value: must specify one of v1, v1beta1", "field": "webhooks[0].admissionReviewVersions"}
        ])
    );
    assert_eq!(after, before, "nothing was stored");
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_a_bad_request_and_patches_are_validated() {
    let (status, answer, before, after) =
        put_webhook_change(|o| o["webhooks"][0]["timeoutSeconds"] = json!("10")).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["message"],
        "ValidatingWebhookConfiguration in version \"v1\" cannot be handled as a ValidatingWebhookConfiguration: json: cannot unmarshal string into Go struct field ValidatingWebhook.webhooks.timeoutSeconds of type int32"
    );
    assert_eq!(after, before);

    let running = start_yaml(common::WEBHOOK_SCENARIO).await;
    let client = client(&running.kubeconfig).await;
    let (status, _, answer) = raw_as(
        &client,
        "PATCH",
        VWC_PATH,
        None,
        Some(json!([{"op": "replace", "path": "/webhooks/0/timeoutSeconds", "value": 31}])),
        "application/json-patch+json",
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        answer["message"],
        "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"opa-validating-webhook\" is invalid: webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds"
    );
    // A create is validated too, before it is stored.
    let (status, _, answer) = raw(
        &client,
        "POST",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        None,
        Some(json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "x"},
            "webhooks": [{"name": "x", "clientConfig": {"url": "https://h.example.com/"}, "sideEffects": "None", "admissionReviewVersions": ["v1"]}]
        })),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        answer["message"],
        "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"x\" is invalid: webhooks[0].name: Invalid value: \"x\": should be a domain with at least three segments separated by dots"
    );
    let (status, _, _) = raw(
        &client,
        "GET",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/x",
        None,
        None,
    )
    .await;
    assert_eq!(status, 404);
}
