//! What one refresh observed, per source: the value, when it was fetched, how long the call
//! took, or the classified error. A source that fails keeps its last value, marked stale with
//! its age, so the screen never goes blank while the apiserver flaps. A Snapshot is plain data
//! (Serialize + Deserialize): `kube-rescue snapshot --output json` prints it and a diagnosis can
//! be replayed from it. Nothing here performs I/O.

use std::collections::BTreeMap;
use std::time::Duration;

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
use serde::{Deserialize, Serialize};

use super::error::AccessError;
use super::probe::{LatencyHistory, ProbeReport};

/// Durations in JSON: whole milliseconds.
pub mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }

    /// The same for an optional duration.
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Option::<u64>::deserialize(d).map(|v| v.map(Duration::from_millis))
        }
    }
}

/// One observed source: its value (the latest good one), when that value was fetched, how long
/// the latest attempt took, and the latest attempt's error. When the latest attempt failed and
/// an earlier one succeeded, `value` is the earlier one, `stale` is true and `age` says how old
/// it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source<T> {
    pub value: Option<T>,
    /// When `value` was fetched; None when no attempt ever succeeded.
    pub fetched_at: Option<Timestamp>,
    /// How long the latest attempt took.
    #[serde(rename = "tookMs", with = "millis")]
    pub took: Duration,
    /// The latest attempt's error, if it failed.
    pub error: Option<AccessError>,
    /// The value is from an earlier refresh (the latest attempt failed).
    pub stale: bool,
    /// Age of `value` when this refresh finished (zero when fresh).
    #[serde(rename = "ageMs", with = "millis")]
    pub age: Duration,
}

impl<T> Default for Source<T> {
    fn default() -> Self {
        Source {
            value: None,
            fetched_at: None,
            took: Duration::ZERO,
            error: None,
            stale: false,
            age: Duration::ZERO,
        }
    }
}

impl<T: Clone> Source<T> {
    /// A source that was fetched now.
    pub fn fresh(value: T, fetched_at: Timestamp, took: Duration) -> Self {
        Source {
            value: Some(value),
            fetched_at: Some(fetched_at),
            took,
            error: None,
            stale: false,
            age: Duration::ZERO,
        }
    }

    /// A failed attempt, keeping the previous value (if any) as stale with its age at `now`.
    pub fn failed(
        error: AccessError,
        took: Duration,
        previous: Option<&Source<T>>,
        now: Timestamp,
    ) -> Self {
        match previous.and_then(|p| Some((p.value.clone()?, p.fetched_at?))) {
            Some((value, fetched_at)) => Source {
                value: Some(value),
                fetched_at: Some(fetched_at),
                took,
                error: Some(error),
                stale: true,
                age: age_between(fetched_at, now),
            },
            None => Source {
                took,
                error: Some(error),
                ..Source::default()
            },
        }
    }

    /// The outcome of one attempt that ended at `now` and took `took`.
    pub fn from_result(
        result: Result<T, AccessError>,
        took: Duration,
        previous: Option<&Source<T>>,
        now: Timestamp,
    ) -> Self {
        match result {
            Ok(value) => Source::fresh(value, now, took),
            Err(error) => Source::failed(error, took, previous, now),
        }
    }
}

impl<T> Source<T> {
    /// Whether the latest attempt succeeded.
    pub fn is_ok(&self) -> bool {
        self.error.is_none() && self.value.is_some()
    }

    /// The latest attempt's error kind, if it failed.
    pub fn error_kind(&self) -> Option<super::error::ErrorKind> {
        self.error.as_ref().map(|e| e.kind)
    }
}

/// How long ago `then` was, seen from `now` (zero if `then` is later).
/// When an Event last happened: lastTimestamp, else eventTime, else when it was created.
pub fn event_time(event: &Event) -> Option<Timestamp> {
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

pub fn age_between(then: Timestamp, now: Timestamp) -> Duration {
    let nanos = now.as_nanosecond() - then.as_nanosecond();
    if nanos <= 0 {
        Duration::ZERO
    } else {
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// One `[+]name ok` / `[-]name failed: reason` line of `/livez?verbose` or `/readyz?verbose`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub name: String,
    pub ok: bool,
    /// What follows the name: `ok`, `excluded: ok`, `failed: reason withheld`.
    pub detail: String,
}

/// The answer of a verbose health endpoint: HTTP status and its check lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub code: u16,
    pub checks: Vec<HealthCheck>,
    /// The last line, e.g. `readyz check failed`.
    pub summary: String,
}

impl Health {
    /// Parses a verbose health body.
    pub fn parse(code: u16, body: &str) -> Health {
        let mut checks = Vec::new();
        let mut summary = String::new();
        for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (ok, rest) = if let Some(rest) = line.strip_prefix("[+]") {
                (true, rest)
            } else if let Some(rest) = line.strip_prefix("[-]") {
                (false, rest)
            } else {
                summary = line.to_string();
                continue;
            };
            let (name, detail) = rest.split_once(' ').unwrap_or((rest, ""));
            checks.push(HealthCheck {
                name: name.to_string(),
                ok,
                detail: detail.to_string(),
            });
        }
        Health {
            code,
            checks,
            summary,
        }
    }

    /// Whether the endpoint answered 200.
    pub fn passed(&self) -> bool {
        self.code == 200
    }

    /// Names of the failing checks.
    pub fn failing(&self) -> impl Iterator<Item = &str> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
    }
}

/// Admission webhook metrics of one webhook, summed over type and operation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMetrics {
    /// `apiserver_admission_webhook_request_total`.
    pub requests: f64,
    /// `apiserver_admission_webhook_rejection_count`, all error types.
    pub rejections: f64,
    /// Rejections with error_type `calling_webhook_error` (timeouts, refused, no endpoints).
    pub calling_errors: f64,
    /// `apiserver_admission_webhook_fail_open_count`.
    pub fail_open: f64,
    /// `apiserver_admission_webhook_admission_duration_seconds` count and sum.
    pub duration_count: f64,
    pub duration_sum_seconds: f64,
}

impl WebhookMetrics {
    /// Mean admission duration, if any call was measured.
    pub fn mean_seconds(&self) -> Option<f64> {
        (self.duration_count > 0.0).then(|| self.duration_sum_seconds / self.duration_count)
    }
}

/// Request metrics of one verb.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetrics {
    /// `apiserver_request_total`.
    pub total: f64,
    /// Of which answered 429.
    pub throttled: f64,
    /// Of which answered 5xx.
    pub server_errors: f64,
    /// `apiserver_request_duration_seconds` count and sum.
    pub duration_count: f64,
    pub duration_sum_seconds: f64,
}

impl RequestMetrics {
    pub fn mean_seconds(&self) -> Option<f64> {
        (self.duration_count > 0.0).then(|| self.duration_sum_seconds / self.duration_count)
    }
}

/// The compact part of `/metrics` the diagnosis uses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiserverMetrics {
    /// Per webhook name.
    pub webhooks: BTreeMap<String, WebhookMetrics>,
    /// Per request verb (get, list, create, ...).
    pub requests: BTreeMap<String, RequestMetrics>,
    /// `apiserver_flowcontrol_rejected_requests_total` (API Priority and Fairness), per
    /// `priority_level` and `reason` joined by a space: `workload-low queue-full`.
    #[serde(default)]
    pub flowcontrol_rejected: BTreeMap<String, f64>,
}

impl ApiserverMetrics {
    /// Parses the Prometheus text format, keeping only the admission webhook and request
    /// metrics. Unknown or malformed lines are skipped.
    pub fn parse(text: &str) -> ApiserverMetrics {
        let mut out = ApiserverMetrics::default();
        for line in text.lines() {
            out.feed_line(line);
        }
        out
    }

    /// Takes in one line of the Prometheus text format; returns whether it was a sample
    /// (of any metric), so that a caller can tell metrics from something else.
    pub fn feed_line(&mut self, line: &str) -> bool {
        let out = self;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return false;
        }
        let Some((name, labels, value)) = parse_sample(line) else {
            return false;
        };
        {
            let label = |key: &str| {
                labels
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or("")
            };
            match name {
                "apiserver_admission_webhook_request_total" => {
                    out.webhook(label("name")).requests += value;
                }
                "apiserver_admission_webhook_rejection_count" => {
                    let w = out.webhook(label("name"));
                    w.rejections += value;
                    if label("error_type") == "calling_webhook_error" {
                        w.calling_errors += value;
                    }
                }
                "apiserver_admission_webhook_fail_open_count" => {
                    out.webhook(label("name")).fail_open += value;
                }
                "apiserver_admission_webhook_admission_duration_seconds_count" => {
                    out.webhook(label("name")).duration_count += value;
                }
                "apiserver_admission_webhook_admission_duration_seconds_sum" => {
                    out.webhook(label("name")).duration_sum_seconds += value;
                }
                "apiserver_request_total" => {
                    let r = out.requests.entry(label("verb").to_string()).or_default();
                    r.total += value;
                    let code = label("code");
                    if code == "429" {
                        r.throttled += value;
                    } else if code.starts_with('5') {
                        r.server_errors += value;
                    }
                }
                "apiserver_flowcontrol_rejected_requests_total" => {
                    let key = format!("{} {}", label("priority_level"), label("reason"));
                    *out.flowcontrol_rejected.entry(key).or_default() += value;
                }
                "apiserver_request_duration_seconds_count" => {
                    out.requests
                        .entry(label("verb").to_string())
                        .or_default()
                        .duration_count += value;
                }
                "apiserver_request_duration_seconds_sum" => {
                    out.requests
                        .entry(label("verb").to_string())
                        .or_default()
                        .duration_sum_seconds += value;
                }
                _ => {}
            }
        }
        true
    }

    fn webhook(&mut self, name: &str) -> &mut WebhookMetrics {
        self.webhooks.entry(name.to_string()).or_default()
    }
}

/// One Prometheus sample: metric name, labels, value.
type Sample<'a> = (&'a str, Vec<(String, String)>, f64);

/// `name{k="v",...} value` -> (name, labels, value).
fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let Some(open) = line.find('{') else {
        let (name, value) = line.split_once(' ')?;
        let value = value.split_whitespace().next()?.parse().ok()?;
        return Some((name, Vec::new(), value));
    };
    let name = &line[..open];
    let mut labels = Vec::new();
    let mut rest = &line[open + 1..];
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            let value = after.split_whitespace().next()?.parse().ok()?;
            return Some((name, labels, value));
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_string();
        let after = rest[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut escaped = false;
        let mut consumed = None;
        for (i, ch) in after.char_indices() {
            if escaped {
                value.push(if ch == 'n' { '\n' } else { ch });
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                consumed = Some(i + 1);
                break;
            } else {
                value.push(ch);
            }
        }
        labels.push((key, value));
        rest = &after[consumed?..];
    }
}

/// The backend of one webhook Service, read with targeted calls in its namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookBackend {
    pub namespace: String,
    pub name: String,
    /// Webhooks (by name) that call this Service.
    pub webhooks: Vec<String>,
    pub service: Source<Service>,
    /// EndpointSlices labelled `kubernetes.io/service-name=<name>`.
    pub endpoint_slices: Source<Vec<EndpointSlice>>,
    /// Pods selected by the Service's selector (empty when it has none).
    pub pods: Source<Vec<Pod>>,
    /// Deployments of the namespace whose pods the Service selects.
    pub deployments: Source<Vec<Deployment>>,
    /// When a refresh last read this backend (None: not yet; Services take turns).
    #[serde(default)]
    pub read_at: Option<Timestamp>,
}

/// One identity (uid) a node name was seen with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeIdentity {
    pub uid: String,
    /// The node object's creationTimestamp, when it had one.
    pub created: Option<Timestamp>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// Per node name, the uids seen across refreshes, oldest first. A name seen with a new uid is
/// a node deleted and recreated: the mark of a repair loop.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeIdentities {
    pub nodes: BTreeMap<String, Vec<NodeIdentity>>,
}

/// How many identities are kept per node name.
const IDENTITIES_PER_NODE: usize = 32;
/// Names not seen for this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(6 * 3600);

impl NodeIdentities {
    /// Records the nodes of one successful list at `now`.
    pub fn observe(&mut self, nodes: &[Node], now: Timestamp) {
        for node in nodes {
            let (Some(name), Some(uid)) = (&node.metadata.name, &node.metadata.uid) else {
                continue;
            };
            let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0);
            let seen = self.nodes.entry(name.clone()).or_default();
            match seen.iter_mut().find(|i| &i.uid == uid) {
                Some(identity) => identity.last_seen = now,
                None => seen.push(NodeIdentity {
                    uid: uid.clone(),
                    created,
                    first_seen: now,
                    last_seen: now,
                }),
            }
            if seen.len() > IDENTITIES_PER_NODE {
                let extra = seen.len() - IDENTITIES_PER_NODE;
                seen.drain(..extra);
            }
        }
        self.nodes.retain(|_, ids| {
            ids.last()
                .is_some_and(|i| age_between(i.last_seen, now) < FORGET_AFTER)
        });
    }

    /// How many times `name` came back with a new uid whose first sighting is within `window`
    /// of `now`.
    pub fn recreations(&self, name: &str, window: Duration, now: Timestamp) -> usize {
        self.nodes.get(name).map_or(0, |ids| {
            ids.iter()
                .skip(1)
                .filter(|i| age_between(i.first_seen, now) <= window)
                .count()
        })
    }

    /// Names recreated at least once within `window`, with their count.
    pub fn recreated(&self, window: Duration, now: Timestamp) -> Vec<(String, usize)> {
        self.nodes
            .keys()
            .filter_map(|name| {
                let n = self.recreations(name, window, now);
                (n > 0).then(|| (name.clone(), n))
            })
            .collect()
    }
}

/// Everything one refresh observed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Format version of this document.
    pub version: u32,
    pub context: String,
    pub server: String,
    /// When the refresh finished.
    pub taken_at: Option<Timestamp>,
    /// How long the whole refresh took.
    #[serde(rename = "tookMs", with = "millis")]
    pub took: Duration,
    /// One request's deadline during this refresh.
    #[serde(rename = "deadlineMs", with = "millis")]
    pub deadline: Duration,
    /// Requests sent during this refresh.
    pub requests: usize,
    /// Counts this refresh (1 for the first).
    pub sequence: u64,
    /// The wait before the next refresh when the Refresher backs off (None at the normal
    /// interval, or outside a Refresher).
    #[serde(rename = "backoffMs", with = "millis::option")]
    pub backoff: Option<Duration>,

    pub apiserver_version: Source<Info>,
    pub livez: Source<Health>,
    pub readyz: Source<Health>,
    pub metrics: Source<ApiserverMetrics>,
    pub validating_webhooks: Source<Vec<ValidatingWebhookConfiguration>>,
    pub mutating_webhooks: Source<Vec<MutatingWebhookConfiguration>>,
    /// One per distinct webhook Service: read this refresh, or the last reading.
    pub webhook_backends: Vec<WebhookBackend>,
    /// Distinct webhook Services not read this refresh (waiting for their turn).
    pub webhook_services_skipped: usize,
    /// Namespaces: their labels decide what webhook namespaceSelectors match.
    #[serde(default)]
    pub namespaces: Source<Vec<Namespace>>,
    /// Nodes, metadata and status (status.images dropped).
    pub nodes: Source<Vec<Node>>,
    /// Leases in kube-node-lease.
    pub node_leases: Source<Vec<Lease>>,
    /// Warning events, newest first, bounded.
    pub warning_events: Source<Vec<Event>>,
    /// Events about Nodes (RegisteredNode, RemovingNode, NodeNotReady, ...), newest first,
    /// bounded: the trail of a repair loop.
    #[serde(default)]
    pub node_events: Source<Vec<Event>>,
    pub api_services: Source<Vec<APIService>>,
    /// Endpoints default/kubernetes: the apiservers themselves.
    pub control_plane_endpoints: Source<Endpoints>,
    pub control_plane_endpoint_slices: Source<Vec<EndpointSlice>>,
    /// Node names and the uids seen for them across refreshes.
    pub node_identities: NodeIdentities,
    /// Latency per verb over recent refreshes and probes.
    pub latency: LatencyHistory,
    /// The latest write-path probe, when one ran beside the refreshes.
    pub write_probe: Option<ProbeReport>,
    /// The credential presented, as far as it can be described without revealing it.
    #[serde(default)]
    pub credential: Credential,
    /// The longest Retry-After of the 429 answers of this refresh.
    #[serde(default, rename = "retryAfterMs", with = "millis::option")]
    pub retry_after: Option<Duration>,
    /// Webhook Services not read this refresh wait for a later one (the screen's refreshes
    /// take turns); false when this refresh meant to read them all (`check`), so an unread
    /// one is a blind spot.
    #[serde(default)]
    pub backends_take_turns: bool,
}

/// The current format version of [`Snapshot`].
pub const SNAPSHOT_VERSION: u32 = 1;

/// How one source of a refresh fared, without its value: for counting failures and naming
/// blind spots.
#[derive(Clone, Debug)]
pub struct SourceState<'a> {
    /// The source's name: `nodes`, `events`, `service NS/NAME`, ...
    pub name: String,
    /// The latest attempt's error, if it failed.
    pub error: Option<&'a AccessError>,
    /// Whether a value from an earlier refresh is still shown.
    pub has_value: bool,
    /// For a webhook backend's source: the Service's namespace and name.
    pub backend: Option<(&'a str, &'a str)>,
    /// A webhook backend not read yet (its turn has not come).
    pub unread: bool,
}

impl Snapshot {
    /// All sources of this snapshot as (name, error) pairs, for counting failures.
    pub fn source_errors(&self) -> Vec<(String, Option<&AccessError>)> {
        self.source_states()
            .into_iter()
            .map(|s| (s.name, s.error))
            .collect()
    }

    /// Every source of this snapshot: the [`FIXED_SOURCES`] cluster-wide ones first, in that
    /// order, then four per webhook backend.
    pub fn source_states(&self) -> Vec<SourceState<'_>> {
        fn state<'a, T>(name: &str, source: &'a Source<T>) -> SourceState<'a> {
            SourceState {
                name: name.to_string(),
                error: source.error.as_ref(),
                has_value: source.value.is_some(),
                backend: None,
                unread: false,
            }
        }
        let mut out = vec![
            state("version", &self.apiserver_version),
            state("livez", &self.livez),
            state("readyz", &self.readyz),
            state("metrics", &self.metrics),
            state("validatingwebhookconfigurations", &self.validating_webhooks),
            state("mutatingwebhookconfigurations", &self.mutating_webhooks),
            state("namespaces", &self.namespaces),
            state("nodes", &self.nodes),
            state("leases", &self.node_leases),
            state("events", &self.warning_events),
            state("node events", &self.node_events),
            state("apiservices", &self.api_services),
            state("endpoints/kubernetes", &self.control_plane_endpoints),
            state(
                "endpointslices/kubernetes",
                &self.control_plane_endpoint_slices,
            ),
        ];
        for b in &self.webhook_backends {
            let id = format!("{}/{}", b.namespace, b.name);
            let unread = b.read_at.is_none();
            for (what, mut s) in [
                ("service", state("", &b.service)),
                ("endpointslices", state("", &b.endpoint_slices)),
                ("pods", state("", &b.pods)),
                ("deployments", state("", &b.deployments)),
            ] {
                s.name = format!("{what} {id}");
                s.backend = Some((&b.namespace, &b.name));
                s.unread = unread;
                out.push(s);
            }
        }
        out
    }
}

/// How many cluster-wide sources every refresh reads (webhook backends come after them in
/// [`Snapshot::source_states`]).
pub const FIXED_SOURCES: usize = super::collect::FIXED_REQUESTS;

/// The credential the kubeconfig's user presents: what kind, and what can be said of it
/// without revealing it (never the token or key).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    /// The kubeconfig user's name.
    pub user: String,
    /// `token`, `token-file`, `client-certificate`, `exec`, `auth-provider`, `basic`, `none`.
    pub kind: String,
    /// The exec plugin's command (its file name) or the auth provider's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// When the client certificate expires (notAfter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_expires: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_lines_parse() {
        let h = Health::parse(
            500,
            "[+]ping ok\n[+]etcd ok\n[-]poststarthook/ca-registration failed: reason withheld\nreadyz check failed\n",
        );
        assert_eq!(h.checks.len(), 3);
        assert!(!h.passed());
        assert_eq!(
            h.failing().collect::<Vec<_>>(),
            ["poststarthook/ca-registration"]
        );
        assert_eq!(h.checks[2].detail, "failed: reason withheld");
        assert_eq!(h.summary, "readyz check failed");
    }

    #[test]
    fn metrics_keep_webhooks_and_requests() {
        let text = r#"# HELP x
apiserver_admission_webhook_rejection_count{error_type="calling_webhook_error",name="a.b",operation="CREATE",rejection_code="500",type="validating"} 3
apiserver_admission_webhook_rejection_count{error_type="no_error",name="a.b",operation="UPDATE",rejection_code="403",type="validating"} 1
apiserver_admission_webhook_fail_open_count{name="c.d",type="admit"} 2
apiserver_admission_webhook_admission_duration_seconds_sum{name="a.b",operation="CREATE",rejected="true",type="validating"} 20
apiserver_admission_webhook_admission_duration_seconds_count{name="a.b",operation="CREATE",rejected="true",type="validating"} 2
apiserver_request_total{code="429",component="apiserver",verb="LIST"} 4
apiserver_request_total{code="200",component="apiserver",verb="LIST"} 6
apiserver_request_duration_seconds_sum{verb="LIST"} 1.5
apiserver_request_duration_seconds_count{verb="LIST"} 10
apiserver_flowcontrol_rejected_requests_total{flow_schema="service-accounts",priority_level="workload-low",reason="queue-full"} 12
apiserver_flowcontrol_rejected_requests_total{flow_schema="global-default",priority_level="workload-low",reason="queue-full"} 3
other_metric 7
"#;
        let m = ApiserverMetrics::parse(text);
        let ab = &m.webhooks["a.b"];
        assert_eq!(ab.rejections, 4.0);
        assert_eq!(ab.calling_errors, 3.0);
        assert_eq!(ab.mean_seconds(), Some(10.0));
        assert_eq!(m.webhooks["c.d"].fail_open, 2.0);
        let list = &m.requests["LIST"];
        assert_eq!((list.total, list.throttled), (10.0, 4.0));
        assert_eq!(list.mean_seconds(), Some(0.15));
        assert_eq!(m.flowcontrol_rejected["workload-low queue-full"], 15.0);
    }

    #[test]
    fn failed_sources_keep_their_last_value() {
        let t0 = Timestamp::from_second(1_000).unwrap_or_default();
        let t1 = Timestamp::from_second(1_030).unwrap_or_default();
        let good = Source::fresh(5u32, t0, Duration::from_millis(3));
        let err = AccessError::timeout("x", Duration::from_secs(1));
        let bad = Source::failed(err.clone(), Duration::from_secs(1), Some(&good), t1);
        assert_eq!(bad.value, Some(5));
        assert!(bad.stale);
        assert_eq!(bad.age, Duration::from_secs(30));
        assert_eq!(bad.error, Some(err.clone()));
        let never = Source::<u32>::failed(err, Duration::from_secs(1), None, t1);
        assert!(never.value.is_none() && !never.stale);
    }
}
