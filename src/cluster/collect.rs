//! One refresh: every collector runs concurrently, each under its own deadline, and the
//! results fill a [`Snapshot`]. One hanging source never delays the others, and a refresh
//! returns within the request deadline plus a small margin whatever the apiserver does. Lists
//! are served from the apiserver's watch cache (`resourceVersion=0`); backends of webhooks are
//! read with targeted calls in their namespace, never with cluster-wide lists. The number of
//! requests is bounded and does not grow with the cluster: see [`requests_per_refresh`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Endpoints, Event, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::version::Info;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::connect::Cluster;
use super::error::{AccessError, ErrorKind};
use super::read;
use super::snapshot::{
    ApiserverMetrics, Health, SNAPSHOT_VERSION, Snapshot, Source, WebhookBackend,
};
use super::transport::{MAX_HEALTH_BYTES, MAX_LIST_BYTES, MAX_METRICS_BYTES, MAX_RESPONSE_BYTES};

/// Webhook Services whose backends are read per refresh. They take turns: the one read longest
/// ago goes first (one never read before all others; fail-closed before fail-open on a tie).
/// The others keep their last reading, with its age.
pub const WEBHOOK_SERVICES_PER_REFRESH: usize = 1;
/// Requests of a refresh that do not depend on the cluster: /version, /livez?verbose,
/// /readyz?verbose, /metrics, validating and mutating webhook configurations, namespaces,
/// nodes, Leases in kube-node-lease, Warning events, events about Nodes, APIServices, Endpoints
/// default/kubernetes and its EndpointSlices.
pub const FIXED_REQUESTS: usize = 14;
/// Requests per webhook Service: the Service, its EndpointSlices, its pods (by the Service's
/// selector) and the Deployments of its namespace.
pub const REQUESTS_PER_WEBHOOK_SERVICE: usize = 4;
/// Warning events kept per refresh (the newest); also the list's `limit`.
pub const WARNING_EVENTS_LIMIT: usize = 500;

/// Requests sent by one refresh when the webhook configurations name `services` distinct
/// Services:
///
/// `requests = 14 + 4 × min(services, 1)`: 18 on any cluster with a webhook Service, 14
/// without one.
///
/// The 14 are one request each for /version, /livez?verbose, /readyz?verbose, /metrics,
/// ValidatingWebhookConfigurations, MutatingWebhookConfigurations, Namespaces (their labels
/// decide what namespaceSelectors match), Nodes, Leases in
/// kube-node-lease, Warning events (one page of at most 500), events about Nodes (one page of at
/// most 500: RegisteredNode, RemovingNode, NodeNotReady show a repair loop), APIServices, Endpoints
/// default/kubernetes and EndpointSlices of default/kubernetes. The 4 are the Service, its
/// EndpointSlices, its pods and the Deployments of its namespace, for the one webhook Service
/// whose turn it is. Every list is a single request served from the watch cache
/// (`resourceVersion=0`), so the count does not grow with the number of nodes, events,
/// webhooks or webhook Services. It is lower when a source cannot be read (no pods list for a
/// Service that is missing or has no selector; no backend reads when the webhook
/// configurations used the whole deadline). No request is ever retried within a refresh.
pub const fn requests_per_refresh(services: usize) -> usize {
    let read = if services < WEBHOOK_SERVICES_PER_REFRESH {
        services
    } else {
        WEBHOOK_SERVICES_PER_REFRESH
    };
    FIXED_REQUESTS + REQUESTS_PER_WEBHOOK_SERVICE * read
}

/// The most requests one refresh sends.
pub const MAX_REQUESTS_PER_REFRESH: usize = requests_per_refresh(WEBHOOK_SERVICES_PER_REFRESH);

/// What the calls of one refresh share: the cluster, the request count and latencies.
struct Calls<'a> {
    cluster: &'a Cluster,
    sent: AtomicUsize,
    /// (verb, took, answered) of every call.
    latencies: Mutex<Vec<(&'static str, Duration, bool)>>,
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

impl<'a> Calls<'a> {
    fn new(cluster: &'a Cluster) -> Self {
        Calls {
            cluster,
            sent: AtomicUsize::new(0),
            latencies: Mutex::new(Vec::new()),
        }
    }

    fn note(&self, verb: &'static str, took: Duration, result: Result<(), ErrorKind>) {
        let answered = match result {
            Ok(()) => true,
            Err(kind) => !kind.is_unreachable(),
        };
        if let Ok(mut l) = self.latencies.lock() {
            l.push((verb, took, answered));
        }
    }

    /// GETs JSON under `within`, decoding it as it streams in (see [`super::read`]); returns
    /// the result and how long it took.
    async fn json<T: DeserializeOwned + Send + 'static>(
        &self,
        what: &str,
        verb: &'static str,
        path_and_query: &str,
        within: Duration,
    ) -> (Result<T, AccessError>, Duration) {
        self.timed(what, verb, within, async {
            let response =
                read::get(&self.cluster.client(), path_and_query, MAX_RESPONSE_BYTES).await?;
            read::json::<T>(response.into_body()).await
        })
        .await
    }

    /// Runs one read under `within`, counting it and its latency.
    async fn timed<T>(
        &self,
        what: &str,
        verb: &'static str,
        within: Duration,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> (Result<T, AccessError>, Duration) {
        let started = Instant::now();
        if within.is_zero() {
            return (
                Err(AccessError::new(
                    ErrorKind::Timeout,
                    format!("{what}: not sent, the refresh's deadline had passed"),
                )),
                Duration::ZERO,
            );
        }
        self.sent.fetch_add(1, Ordering::SeqCst);
        let result = self.cluster.call_within(what, within, call).await;
        let took = started.elapsed();
        self.note(verb, took, result.as_ref().map(|_| ()).map_err(|e| e.kind));
        tracing::debug!(
            what,
            took_ms = took.as_millis() as u64,
            ok = result.is_ok(),
            "read"
        );
        (result, took)
    }

    /// GETs a health endpoint: any HTTP status is an answer (they answer 500 when failing).
    async fn health(
        &self,
        what: &str,
        path_and_query: &str,
    ) -> (Result<Health, AccessError>, Duration) {
        let client = self.cluster.client();
        let (result, took) = self
            .timed(what, "get", self.cluster.timeout(), async move {
                let response = read::send_get(&client, path_and_query, MAX_HEALTH_BYTES).await?;
                let code = response.status().as_u16();
                let body = read::all(response.into_body()).await?;
                Ok((code, String::from_utf8_lossy(&body).into_owned()))
            })
            .await;
        let result = result.and_then(|(code, body)| health_answer(what, code, &body));
        (result, took)
    }

    /// GETs /metrics, parsed line by line as it streams in.
    async fn metrics(&self) -> (Result<ApiserverMetrics, AccessError>, Duration) {
        let what = "get /metrics";
        let client = self.cluster.client();
        let (result, took) = self
            .timed(what, "get", self.cluster.timeout(), async move {
                let response = read::get(&client, "/metrics", MAX_METRICS_BYTES).await?;
                let mut metrics = ApiserverMetrics::default();
                let mut samples = 0usize;
                let mut first = None;
                read::lines(response.into_body(), MAX_METRICS_LINE, |line| {
                    if first.is_none() && !line.trim().is_empty() {
                        first = Some(line.to_string());
                    }
                    samples += usize::from(metrics.feed_line(line));
                })
                .await?;
                Ok((metrics, samples, first))
            })
            .await;
        let result = result.and_then(|(metrics, samples, first)| {
            if samples == 0 && first.is_some() {
                return Err(AccessError::new(
                    ErrorKind::BadResponse,
                    format!(
                        "{what}: not Prometheus metrics: {}",
                        read::excerpt(first.as_deref().unwrap_or(""))
                    ),
                ));
            }
            Ok(metrics)
        });
        (result, took)
    }

    /// Lists `path` from the watch cache, decoding at most `max_items` items as they stream in.
    async fn list<K: DeserializeOwned + Send + 'static>(
        &self,
        what: &str,
        path: &str,
        extra: &[(&str, &str)],
        within: Duration,
        max_items: usize,
    ) -> (Result<Vec<K>, AccessError>, Duration) {
        let mut pairs = vec![("resourceVersion", "0")];
        pairs.extend_from_slice(extra);
        let url = format!("{path}?{}", query(&pairs));
        self.timed(what, "list", within, async {
            let response = read::get(&self.cluster.client(), &url, MAX_LIST_BYTES).await?;
            read::list::<K>(response.into_body(), path, max_items).await
        })
        .await
    }
}

/// The longest line `/metrics` may have.
const MAX_METRICS_LINE: usize = 64 * 1024;

/// Most items read from one list, per kind: far above what a real cluster holds (a list over
/// it is `too large`, never cut silently), low enough that a server sending endless items
/// cannot exhaust memory.
pub mod max_items {
    /// Nodes and their Leases (a list of 100,000 nodes fits).
    pub const NODES: usize = 120_000;
    /// Namespaces (Kubernetes is tested to 10,000).
    pub const NAMESPACES: usize = 20_000;
    /// Events: 500 are asked for.
    pub const EVENTS: usize = 2_000;
    /// Webhook configurations, APIServices, and a namespace's Deployments, pods, slices.
    pub const OTHER: usize = 5_000;
}

/// A verbose health answer: 200 (ready) or 500 (not ready) with `[+]`/`[-]` lines; any other
/// status is an error, and a body without check lines is not an apiserver's answer.
fn health_answer(what: &str, code: u16, body: &str) -> Result<Health, AccessError> {
    match code {
        200 | 500 => {
            let health = Health::parse(code, body);
            if health.checks.is_empty() {
                return Err(AccessError {
                    code: Some(code),
                    ..AccessError::new(
                        ErrorKind::BadResponse,
                        format!(
                            "{what}: HTTP {code} without health checks: {}",
                            read::excerpt(body)
                        ),
                    )
                });
            }
            Ok(health)
        }
        other => {
            let (reason, message) = read::status_parts(body.as_bytes());
            Err(AccessError::from_status(what, other, &reason, &message))
        }
    }
}

fn source<T: Clone>(
    (result, took): (Result<T, AccessError>, Duration),
    previous: Option<&Source<T>>,
) -> Source<T> {
    Source::from_result(result, took, previous, Timestamp::now())
}

/// A distinct webhook Service and the webhooks that call it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ServiceRef {
    namespace: String,
    name: String,
    webhooks: Vec<String>,
    fail_closed: bool,
}

/// The distinct Services of all webhooks: fail-closed first, then by namespace and name.
fn webhook_services(
    validating: Option<&Vec<ValidatingWebhookConfiguration>>,
    mutating: Option<&Vec<MutatingWebhookConfiguration>>,
) -> Vec<ServiceRef> {
    let mut by_service: BTreeMap<(String, String), ServiceRef> = BTreeMap::new();
    let mut add = |name: &str, svc: Option<(&str, &str)>, policy: Option<&str>| {
        let Some((ns, svc)) = svc else { return };
        let entry = by_service
            .entry((ns.to_string(), svc.to_string()))
            .or_insert_with(|| ServiceRef {
                namespace: ns.to_string(),
                name: svc.to_string(),
                webhooks: Vec::new(),
                fail_closed: false,
            });
        if !entry.webhooks.iter().any(|w| w == name) {
            entry.webhooks.push(name.to_string());
        }
        // v1: failurePolicy unset means Fail.
        entry.fail_closed |= policy != Some("Ignore");
    };
    for config in validating.into_iter().flatten() {
        for hook in config.webhooks.iter().flatten() {
            let svc = hook
                .client_config
                .service
                .as_ref()
                .map(|s| (s.namespace.as_str(), s.name.as_str()));
            add(&hook.name, svc, hook.failure_policy.as_deref());
        }
    }
    for config in mutating.into_iter().flatten() {
        for hook in config.webhooks.iter().flatten() {
            let svc = hook
                .client_config
                .service
                .as_ref()
                .map(|s| (s.namespace.as_str(), s.name.as_str()));
            add(&hook.name, svc, hook.failure_policy.as_deref());
        }
    }
    let mut services: Vec<ServiceRef> = by_service.into_values().collect();
    services.sort_by(|a, b| {
        b.fail_closed
            .cmp(&a.fail_closed)
            .then_with(|| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)))
    });
    services
}

/// Whether every pair of `selector` is among `labels`.
fn selects(selector: &BTreeMap<String, String>, labels: Option<&BTreeMap<String, String>>) -> bool {
    !selector.is_empty()
        && labels.is_some_and(|labels| selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

async fn read_backend(
    calls: &Calls<'_>,
    service: &ServiceRef,
    end: Instant,
    previous: Option<&WebhookBackend>,
) -> WebhookBackend {
    let ns = &service.namespace;
    let name = &service.name;
    let within = end.saturating_duration_since(Instant::now());
    let service_path = format!("/api/v1/namespaces/{ns}/services/{name}");
    let slices_path = format!("/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices");
    let deployments_path = format!("/apis/apps/v1/namespaces/{ns}/deployments");
    let service_label = format!("kubernetes.io/service-name={name}");
    let service_what = format!("get service {ns}/{name}");
    let slices_what = format!("list endpointslices of {ns}/{name}");
    let deployments_what = format!("list deployments in {ns}");
    let slices_query = [("labelSelector", service_label.as_str())];
    let (svc, slices, deployments) = tokio::join!(
        calls.json::<Service>(&service_what, "get", &service_path, within),
        calls.list::<EndpointSlice>(
            &slices_what,
            &slices_path,
            &slices_query,
            within,
            max_items::OTHER
        ),
        calls.list::<Deployment>(
            &deployments_what,
            &deployments_path,
            &[],
            within,
            max_items::OTHER
        ),
    );
    let svc = source(svc, previous.map(|p| &p.service));
    let selector: Option<BTreeMap<String, String>> = svc.value.as_ref().map(|s| {
        s.spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default()
    });
    let pods_what = format!("list pods of {ns}/{name}");
    let pods = match &selector {
        Some(sel) if !sel.is_empty() => {
            let label_selector = sel
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let within = end.saturating_duration_since(Instant::now());
            let read = calls
                .list::<Pod>(
                    &pods_what,
                    &format!("/api/v1/namespaces/{ns}/pods"),
                    &[("labelSelector", &label_selector)],
                    within,
                    max_items::OTHER,
                )
                .await;
            source(read, previous.map(|p| &p.pods))
        }
        Some(_) => Source::fresh(Vec::new(), Timestamp::now(), Duration::ZERO),
        None => {
            // Not sent: the Service's own error says why (its 403 or 401 is not this read's).
            let error = AccessError::new(
                ErrorKind::NotFound,
                format!("{pods_what}: not read, the Service could not be read"),
            );
            Source::failed(
                error,
                Duration::ZERO,
                previous.map(|p| &p.pods),
                Timestamp::now(),
            )
        }
    };
    let mut deployments = source(deployments, previous.map(|p| &p.deployments));
    if deployments.is_ok()
        && let Some(list) = deployments.value.as_mut()
    {
        let sel = selector.clone().unwrap_or_default();
        list.retain(|d| {
            let template = d
                .spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.as_ref());
            selects(&sel, template)
        });
    }
    WebhookBackend {
        namespace: ns.clone(),
        name: name.clone(),
        webhooks: service.webhooks.clone(),
        service: svc,
        endpoint_slices: source(slices, previous.map(|p| &p.endpoint_slices)),
        pods,
        deployments,
        read_at: Some(Timestamp::now()),
    }
}

struct Webhooks {
    validating: Source<Vec<ValidatingWebhookConfiguration>>,
    mutating: Source<Vec<MutatingWebhookConfiguration>>,
    backends: Vec<WebhookBackend>,
    skipped: usize,
}

async fn read_webhooks(
    calls: &Calls<'_>,
    previous: Option<&Snapshot>,
    end: Instant,
    per_refresh: usize,
) -> Webhooks {
    let within = calls.cluster.timeout();
    let (validating, mutating) = tokio::join!(
        calls.list::<ValidatingWebhookConfiguration>(
            "list validatingwebhookconfigurations",
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
            &[],
            within,
            max_items::OTHER,
        ),
        calls.list::<MutatingWebhookConfiguration>(
            "list mutatingwebhookconfigurations",
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
            &[],
            within,
            max_items::OTHER,
        ),
    );
    let validating = source(validating, previous.map(|p| &p.validating_webhooks));
    let mutating = source(mutating, previous.map(|p| &p.mutating_webhooks));
    let services = webhook_services(validating.value.as_ref(), mutating.value.as_ref());
    let previous_backend = |s: &ServiceRef| {
        previous.and_then(|p| {
            p.webhook_backends
                .iter()
                .find(|b| b.namespace == s.namespace && b.name == s.name)
        })
    };
    // Whose turn: read longest ago (never read first), fail-closed first on a tie.
    let mut turns: Vec<&ServiceRef> = services.iter().collect();
    turns.sort_by_key(|s| {
        (
            previous_backend(s).and_then(|b| b.read_at),
            !s.fail_closed,
            s.namespace.clone(),
            s.name.clone(),
        )
    });
    let chosen: Vec<&ServiceRef> = turns.into_iter().take(per_refresh).collect();
    let skipped = services.len() - chosen.len();
    let reads = services.iter().map(|s| {
        let prev = previous_backend(s);
        let read_now = chosen
            .iter()
            .any(|c| c.namespace == s.namespace && c.name == s.name);
        async move {
            if read_now {
                read_backend(calls, s, end, prev).await
            } else {
                // Not its turn: the last reading, or an empty one saying it was not read yet.
                let mut backend = prev.cloned().unwrap_or_default();
                backend.namespace = s.namespace.clone();
                backend.name = s.name.clone();
                backend.webhooks = s.webhooks.clone();
                backend
            }
        }
    });
    let backends = futures::future::join_all(reads).await;
    Webhooks {
        validating,
        mutating,
        backends,
        skipped,
    }
}

fn event_time(e: &Event) -> Option<Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Labels of a Node worth keeping: the node pool or group it belongs to (what auto-repair and
/// the runbooks speak of).
const NODE_LABELS_KEPT: [&str; 4] = [
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "kubernetes.azure.com/agentpool",
    "node.kubernetes.io/instance-type",
];

/// A Node as triage reads it: identity, pool labels, taints, unschedulable and conditions.
/// Only these fields are decoded from the list (the rest of each object is skipped while
/// parsing, never allocated): on a 5,000-node cluster managedFields, images, addresses,
/// capacity and nodeInfo are most of the bytes and would be most of the memory.
#[derive(Clone, Debug, Deserialize)]
struct TriageNode {
    metadata: TriageMeta,
    // Boxed: an item without them costs a pointer, not the whole struct.
    #[serde(default)]
    spec: Option<Box<TriageSpec>>,
    #[serde(default)]
    status: Option<Box<TriageStatus>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TriageMeta {
    name: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    creation_timestamp: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TriageSpec {
    provider_id: Option<String>,
    taints: Option<Vec<k8s_openapi::api::core::v1::Taint>>,
    unschedulable: Option<bool>,
}

#[derive(Clone, Debug, Deserialize)]
struct TriageStatus {
    conditions: Option<Vec<k8s_openapi::api::core::v1::NodeCondition>>,
}

impl From<TriageNode> for Node {
    fn from(n: TriageNode) -> Node {
        let labels = n.metadata.labels.map(|mut l| {
            l.retain(|k, _| NODE_LABELS_KEPT.contains(&k.as_str()));
            l
        });
        Node {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: n.metadata.name,
                uid: n.metadata.uid,
                resource_version: n.metadata.resource_version,
                creation_timestamp: n.metadata.creation_timestamp,
                labels,
                ..Default::default()
            },
            spec: n.spec.map(|s| k8s_openapi::api::core::v1::NodeSpec {
                provider_id: s.provider_id,
                taints: s.taints,
                unschedulable: s.unschedulable,
                ..Default::default()
            }),
            status: n.status.map(|s| k8s_openapi::api::core::v1::NodeStatus {
                conditions: s.conditions,
                ..Default::default()
            }),
        }
    }
}

/// A Lease as triage reads it: name, owner and spec, decoded as it streams in (see
/// [`TriageNode`]).
#[derive(Clone, Debug, Deserialize)]
struct TriageLease {
    metadata: TriageLeaseMeta,
    #[serde(default)]
    spec: Option<Box<k8s_openapi::api::coordination::v1::LeaseSpec>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TriageLeaseMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    #[serde(default)]
    owner_references: Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
}

impl From<TriageLease> for Lease {
    fn from(l: TriageLease) -> Lease {
        Lease {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: l.metadata.name,
                namespace: l.metadata.namespace,
                uid: l.metadata.uid,
                resource_version: l.metadata.resource_version,
                owner_references: l.metadata.owner_references,
                ..Default::default()
            },
            spec: l.spec.map(|s| *s),
        }
    }
}

/// One refresh of everything observed. Never fails: each source carries its own outcome, and a
/// failed source keeps the value of `previous`, marked stale. Returns within the request
/// deadline plus a small margin.
pub async fn refresh(cluster: &Cluster, previous: Option<&Snapshot>) -> Snapshot {
    refresh_reading(cluster, previous, WEBHOOK_SERVICES_PER_REFRESH).await
}

/// Webhook Services whose backends one complete refresh reads (`check`, `snapshot`); the
/// rest are named as not read.
pub const WEBHOOK_SERVICES_COMPLETE: usize = 16;

/// One refresh that reads the backends of every webhook Service (up to
/// [`WEBHOOK_SERVICES_COMPLETE`]) instead of taking turns: for a one-shot verdict, where a
/// backend left for a later refresh would be a blind spot.
pub async fn refresh_complete(cluster: &Cluster) -> Snapshot {
    refresh_reading(cluster, None, WEBHOOK_SERVICES_COMPLETE).await
}

async fn refresh_reading(
    cluster: &Cluster,
    previous: Option<&Snapshot>,
    services_per_refresh: usize,
) -> Snapshot {
    let started = Instant::now();
    let deadline = cluster.timeout();
    let end = started + deadline;
    let calls = Calls::new(cluster);
    let prev = previous;
    let events_limit = WARNING_EVENTS_LIMIT.to_string();
    let events_query = [
        ("fieldSelector", "type=Warning"),
        ("limit", events_limit.as_str()),
    ];
    let node_events_query = [
        ("fieldSelector", "involvedObject.kind=Node"),
        ("limit", events_limit.as_str()),
    ];

    let (
        version,
        livez,
        readyz,
        metrics,
        webhooks,
        namespaces,
        nodes,
        leases,
        events,
        node_events,
        api_services,
        ep,
        eps,
    ) = tokio::join!(
        calls.json::<Info>("get /version", "get", "/version", deadline),
        calls.health("get /livez", "/livez?verbose"),
        calls.health("get /readyz", "/readyz?verbose"),
        calls.metrics(),
        read_webhooks(&calls, prev, end, services_per_refresh),
        calls.list::<Namespace>(
            "list namespaces",
            "/api/v1/namespaces",
            &[],
            deadline,
            max_items::NAMESPACES
        ),
        calls.list::<TriageNode>(
            "list nodes",
            "/api/v1/nodes",
            &[],
            deadline,
            max_items::NODES
        ),
        calls.list::<TriageLease>(
            "list leases in kube-node-lease",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            &[],
            deadline,
            max_items::NODES,
        ),
        calls.list::<Event>(
            "list warning events",
            "/api/v1/events",
            &events_query,
            deadline,
            max_items::EVENTS,
        ),
        calls.list::<Event>(
            "list events about nodes",
            "/api/v1/events",
            &node_events_query,
            deadline,
            max_items::EVENTS,
        ),
        calls.list::<APIService>(
            "list apiservices",
            "/apis/apiregistration.k8s.io/v1/apiservices",
            &[],
            deadline,
            max_items::OTHER,
        ),
        calls.json::<Endpoints>(
            "get endpoints default/kubernetes",
            "get",
            "/api/v1/namespaces/default/endpoints/kubernetes",
            deadline,
        ),
        calls.list::<EndpointSlice>(
            "list endpointslices of default/kubernetes",
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            &[("labelSelector", "kubernetes.io/service-name=kubernetes")],
            deadline,
            max_items::OTHER,
        ),
    );

    let (nodes_result, nodes_took) = nodes;
    let nodes_result =
        nodes_result.map(|nodes| nodes.into_iter().map(Node::from).collect::<Vec<Node>>());
    let newest_first = |(result, took): (Result<Vec<Event>, AccessError>, Duration)| {
        let result = result.map(|mut events| {
            events.sort_by_key(|e| std::cmp::Reverse(event_time(e)));
            events.truncate(WARNING_EVENTS_LIMIT);
            events
        });
        (result, took)
    };
    let events = newest_first(events);
    let node_events = newest_first(node_events);

    let mut node_identities = prev.map(|p| p.node_identities.clone()).unwrap_or_default();
    let now = Timestamp::now();
    if let Ok(nodes) = &nodes_result {
        node_identities.observe(nodes, now);
    }

    let mut latency = prev.map(|p| p.latency.clone()).unwrap_or_default();
    if let Ok(samples) = calls.latencies.lock() {
        // One sample per verb per refresh: the slowest call of that verb.
        let mut worst: BTreeMap<&str, (Duration, bool)> = BTreeMap::new();
        for (verb, took, answered) in samples.iter() {
            let slot = worst.entry(verb).or_insert((Duration::ZERO, true));
            slot.0 = slot.0.max(*took);
            slot.1 &= *answered;
        }
        for (verb, (took, answered)) in worst {
            latency.record(verb, took, answered, now);
        }
    }

    let snapshot = Snapshot {
        version: SNAPSHOT_VERSION,
        context: cluster.context().to_string(),
        server: cluster.server().to_string(),
        taken_at: Some(now),
        took: started.elapsed(),
        deadline,
        requests: calls.sent.load(Ordering::SeqCst),
        sequence: prev.map_or(1, |p| p.sequence + 1),
        backoff: None,
        apiserver_version: source(version, prev.map(|p| &p.apiserver_version)),
        livez: source(livez, prev.map(|p| &p.livez)),
        readyz: source(readyz, prev.map(|p| &p.readyz)),
        metrics: source(metrics, prev.map(|p| &p.metrics)),
        validating_webhooks: webhooks.validating,
        mutating_webhooks: webhooks.mutating,
        webhook_backends: webhooks.backends,
        webhook_services_skipped: webhooks.skipped,
        namespaces: source(namespaces, prev.map(|p| &p.namespaces)),
        nodes: source((nodes_result, nodes_took), prev.map(|p| &p.nodes)),
        node_leases: source(
            (
                leases.0.map(|l| l.into_iter().map(Lease::from).collect()),
                leases.1,
            ),
            prev.map(|p| &p.node_leases),
        ),
        warning_events: source(events, prev.map(|p| &p.warning_events)),
        node_events: source(node_events, prev.map(|p| &p.node_events)),
        api_services: source(api_services, prev.map(|p| &p.api_services)),
        control_plane_endpoints: source(ep, prev.map(|p| &p.control_plane_endpoints)),
        control_plane_endpoint_slices: source(eps, prev.map(|p| &p.control_plane_endpoint_slices)),
        node_identities,
        latency,
        write_probe: prev.and_then(|p| p.write_probe.clone()),
        credential: cluster.credential().clone(),
        retry_after: cluster.take_retry_after(),
        backends_take_turns: services_per_refresh == WEBHOOK_SERVICES_PER_REFRESH,
    };
    tracing::debug!(
        took_ms = snapshot.took.as_millis() as u64,
        requests = snapshot.requests,
        "refresh done"
    );
    snapshot
}

// ---------------------------------------------------------------------------------------------
// Refreshing on an interval, with backoff

/// How a [`Refresher`] paces itself.
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshPolicy {
    /// The wait between refreshes while the apiserver copes.
    pub interval: Duration,
    /// The longest wait while backing off.
    pub max_backoff: Duration,
    /// Each wait is multiplied by a random factor in `1 ± jitter` (0 for none).
    pub jitter: f64,
    /// How often the write probe runs again once the previous one finished (None: never).
    pub probe_interval: Option<Duration>,
}

/// The normal wait between refreshes.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The longest wait while the apiserver struggles.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);
/// ±20 % on every wait.
pub const DEFAULT_JITTER: f64 = 0.2;
/// The write probe runs again at most this often.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(30);

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            interval: DEFAULT_INTERVAL,
            max_backoff: DEFAULT_MAX_BACKOFF,
            jitter: DEFAULT_JITTER,
            probe_interval: Some(DEFAULT_PROBE_INTERVAL),
        }
    }
}

/// Whether a refresh found the apiserver struggling: more than half of the cluster-wide
/// sources (the [`FIXED_REQUESTS`] ones) failed with a timeout, 429 or 5xx, or a dropped
/// connection.
pub fn is_overloaded(snapshot: &Snapshot) -> bool {
    let errors = snapshot.source_errors();
    let top: Vec<_> = errors.iter().take(FIXED_REQUESTS).collect();
    let overloaded = top
        .iter()
        .filter(|(_, e)| e.is_some_and(|e| e.kind.is_overload()))
        .count();
    overloaded * 2 > top.len()
}

/// The backoff after a refresh: None (the normal interval) when the apiserver copes; while it
/// struggles, twice the interval at first, then doubling, up to `max_backoff`.
pub fn next_backoff(
    policy: &RefreshPolicy,
    current: Option<Duration>,
    overloaded: bool,
) -> Option<Duration> {
    if !overloaded {
        return None;
    }
    let next = match current {
        None => policy.interval.saturating_mul(2),
        Some(b) => b.saturating_mul(2),
    };
    Some(next.min(policy.max_backoff))
}

/// `wait` times a random factor in `1 ± jitter`.
pub fn with_jitter(wait: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 {
        return wait;
    }
    // 53 random bits from a v4 uuid: a uniform number in [0, 1).
    let unit = (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64;
    let factor = 1.0 + jitter.min(1.0) * (2.0 * unit - 1.0);
    wait.mul_f64(factor.max(0.0))
}

/// Runs refreshes one after the other (never two at once) on the policy's interval, backs off
/// while the apiserver struggles, runs the write probe beside them, and sends every new
/// Snapshot over a channel. It never touches its consumer's state.
pub struct Refresher {
    cluster: Cluster,
    policy: RefreshPolicy,
}

/// A running [`Refresher`]; dropping it stops the refreshes.
pub struct RefresherHandle {
    cancel: tokio_util::sync::CancellationToken,
    now: std::sync::Arc<tokio::sync::Notify>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RefresherHandle {
    /// Brings the next refresh forward to now, backoff or not (one refresh is a bounded
    /// number of requests). A refresh in flight is not interrupted; asked during one, the
    /// next starts as soon as it ends.
    pub fn refresh_now(&self) {
        self.now.notify_one();
    }

    /// Stops refreshing and waits for the task to end (a refresh in flight is abandoned).
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RefresherHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Refresher {
    pub fn new(cluster: Cluster, policy: RefreshPolicy) -> Self {
        Refresher { cluster, policy }
    }

    /// Starts refreshing in a task; each Snapshot is sent over `updates`. Stops when the
    /// handle is stopped or dropped, or when the receiver is gone.
    pub fn spawn(self, updates: tokio::sync::mpsc::Sender<Arc<Snapshot>>) -> RefresherHandle {
        let cancel = tokio_util::sync::CancellationToken::new();
        let now = std::sync::Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(self.run(updates, cancel.clone(), now.clone()));
        RefresherHandle {
            cancel,
            now,
            task: Some(task),
        }
    }

    /// The refresh loop itself; `now` cuts the wait before the next refresh short.
    async fn run(
        self,
        updates: tokio::sync::mpsc::Sender<Arc<Snapshot>>,
        cancel: tokio_util::sync::CancellationToken,
        now: std::sync::Arc<tokio::sync::Notify>,
    ) {
        // Shared with the receiver: one copy of a large cluster's snapshot, not one per holder;
        // the last holder frees it, usually this task, off the screen's thread.
        let mut previous: Option<Arc<Snapshot>> = None;
        let mut backoff: Option<Duration> = None;
        let mut probe: Option<super::probe::WriteProbe> = None;
        let mut probe_started: Option<Instant> = None;
        let mut probe_recorded = false;
        // The latest finished round, shown while the next one has not waited longer.
        let mut last_probe: Option<super::probe::ProbeReport> = None;
        loop {
            let refreshed = tokio::select! {
                _ = cancel.cancelled() => break,
                s = refresh(&self.cluster, previous.as_deref()) => s,
            };
            let mut snapshot = refreshed;
            if let Some(p) = &probe {
                let report = p.report();
                if report.is_finished() && !probe_recorded {
                    probe_recorded = true;
                    last_probe = Some(report.clone());
                    let now = Timestamp::now();
                    for n in &report.namespaces {
                        match &n.state {
                            super::probe::ProbeState::Passed { took } => {
                                snapshot.latency.record("create", *took, true, now);
                            }
                            super::probe::ProbeState::Failed { took, failure } => {
                                let answered = !matches!(
                                    failure,
                                    super::probe::WriteFailure::Access { error }
                                        if error.kind.is_unreachable()
                                );
                                snapshot.latency.record("create", *took, answered, now);
                            }
                            _ => {}
                        }
                    }
                }
                snapshot.write_probe = Some(report.over(last_probe.as_ref()));
            }
            let overloaded = is_overloaded(&snapshot);
            backoff = next_backoff(&self.policy, backoff, overloaded);
            // The apiserver said when to come back: not sooner (within the longest wait).
            if let Some(wait) = snapshot.retry_after {
                let asked = wait.min(self.policy.max_backoff);
                backoff = Some(backoff.map_or(asked, |b| b.max(asked)))
                    .filter(|b| *b > self.policy.interval);
            }
            snapshot.backoff = backoff;
            if overloaded {
                tracing::warn!(
                    backoff_ms = backoff.map(|b| b.as_millis() as u64),
                    "the apiserver struggles: backing off"
                );
            }
            let probe_due = match (&probe, probe_started, self.policy.probe_interval) {
                (_, _, None) => false,
                (None, _, Some(_)) => true,
                (Some(p), Some(at), Some(every)) => p.is_finished() && at.elapsed() >= every,
                (Some(_), None, Some(_)) => false,
            };
            if probe_due && !overloaded {
                probe = Some(super::probe::WriteProbe::start(&self.cluster, &snapshot));
                probe_started = Some(Instant::now());
                probe_recorded = false;
                if let Some(p) = &probe {
                    snapshot.write_probe = Some(p.report().over(last_probe.as_ref()));
                }
            }
            let snapshot = Arc::new(snapshot);
            let sent = tokio::select! {
                _ = cancel.cancelled() => break,
                r = updates.send(snapshot.clone()) => r,
            };
            if sent.is_err() {
                break;
            }
            previous = Some(snapshot);
            let wait = with_jitter(backoff.unwrap_or(self.policy.interval), self.policy.jitter);
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                _ = now.notified() => tracing::info!("refresh asked for"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_formula_is_capped() {
        assert_eq!(requests_per_refresh(0), 14);
        assert_eq!(requests_per_refresh(1), 18);
        assert_eq!(requests_per_refresh(100), MAX_REQUESTS_PER_REFRESH);
        assert_eq!(MAX_REQUESTS_PER_REFRESH, 18);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let policy = RefreshPolicy::default();
        let s = Duration::from_secs;
        let mut b = None;
        let mut seen = Vec::new();
        for _ in 0..5 {
            b = next_backoff(&policy, b, true);
            seen.push(b);
        }
        assert_eq!(
            seen,
            [
                Some(s(10)),
                Some(s(20)),
                Some(s(40)),
                Some(s(60)),
                Some(s(60))
            ]
        );
        assert_eq!(next_backoff(&policy, b, false), None);
        for _ in 0..100 {
            let w = with_jitter(s(10), 0.2);
            assert!(
                w >= Duration::from_millis(7999) && w <= Duration::from_millis(12001),
                "{w:?}"
            );
        }
        assert_eq!(with_jitter(s(10), 0.0), s(10));
    }
}
