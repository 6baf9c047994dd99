//! Probes of the apiserver's health as a client feels it: latency per verb (a short history
//! for sparklines, filled by every refresh and probe) and the write-path probe, a server-side
//! dry-run create of a ConfigMap in kube-system and in default that goes through admission like
//! any write and so names the webhook that blocks writes. Nothing is ever persisted
//! (`dryRun=All`), and nothing is sent in read-only mode.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams, PostParams};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::connect::Cluster;
use super::error::AccessError;
use super::snapshot::{Snapshot, Source, millis};
use crate::admission_rules;

/// How many samples are kept per verb.
pub const LATENCY_HISTORY: usize = 60;

/// One latency sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencySample {
    pub at: Timestamp,
    #[serde(rename = "tookMs", with = "millis")]
    pub took: Duration,
    /// Whether the apiserver answered (any answer but a timeout or a broken connection).
    pub answered: bool,
}

/// Recent latency per verb (`get`, `list`, `create` for the dry-run probe), oldest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyHistory {
    pub verbs: BTreeMap<String, VecDeque<LatencySample>>,
}

impl LatencyHistory {
    /// Appends one sample, dropping the oldest beyond [`LATENCY_HISTORY`].
    pub fn record(&mut self, verb: &str, took: Duration, answered: bool, at: Timestamp) {
        let ring = self.verbs.entry(verb.to_string()).or_default();
        ring.push_back(LatencySample { at, took, answered });
        while ring.len() > LATENCY_HISTORY {
            ring.pop_front();
        }
    }

    /// The samples of one verb, oldest first.
    pub fn samples(&self, verb: &str) -> impl Iterator<Item = &LatencySample> {
        self.verbs.get(verb).into_iter().flatten()
    }

    /// The latest sample of one verb.
    pub fn latest(&self, verb: &str) -> Option<&LatencySample> {
        self.verbs.get(verb).and_then(|r| r.back())
    }
}

/// Why a dry-run write failed, as the apiserver worded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum WriteFailure {
    /// `failed calling webhook "NAME": failed to call webhook: Post "URL": CAUSE`.
    WebhookCall {
        webhook: String,
        url: Option<String>,
        /// e.g. `context deadline exceeded`, `connection refused`,
        /// `no endpoints available for service "S"`.
        cause: String,
        message: String,
    },
    /// `admission webhook "NAME" denied the request: MSG`.
    WebhookDenied {
        webhook: String,
        reason: String,
        message: String,
    },
    /// Anything else: no answer, refused, forbidden, ...
    Access { error: AccessError },
}

impl WriteFailure {
    /// The webhook to blame, if the failure names one.
    pub fn webhook(&self) -> Option<&str> {
        match self {
            WriteFailure::WebhookCall { webhook, .. }
            | WriteFailure::WebhookDenied { webhook, .. } => Some(webhook),
            WriteFailure::Access { .. } => None,
        }
    }
}

/// Parses the apiserver's message of a failed write for the admission webhook it names, in
/// the wording of any Kubernetes since 1.9 (see [`crate::failure`]).
pub fn parse_webhook_failure(message: &str) -> Option<WriteFailure> {
    match crate::failure::parse(message, None) {
        crate::failure::Cause::WebhookCall {
            webhook: Some(webhook),
            url,
            detail,
            ..
        } => Some(WriteFailure::WebhookCall {
            webhook,
            url,
            cause: detail,
            message: message.to_string(),
        }),
        crate::failure::Cause::WebhookDenied {
            webhook,
            message: said,
        } => Some(WriteFailure::WebhookDenied {
            webhook,
            reason: said.unwrap_or_else(|| "denied the request without explanation".into()),
            message: message.to_string(),
        }),
        _ => None,
    }
}

/// Where the probe of one namespace stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum ProbeState {
    /// Not sent, and why (e.g. `read-only`).
    Skipped { reason: String },
    /// Sent, no answer yet.
    Waiting {
        #[serde(rename = "waitedMs", with = "millis")]
        waited: Duration,
    },
    /// The dry-run create was admitted.
    Passed {
        #[serde(rename = "tookMs", with = "millis")]
        took: Duration,
    },
    /// The dry-run create failed.
    Failed {
        #[serde(rename = "tookMs", with = "millis")]
        took: Duration,
        failure: WriteFailure,
    },
}

/// The write probe in one namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceProbe {
    pub namespace: String,
    pub started_at: Option<Timestamp>,
    /// The probe's own deadline: the largest timeoutSeconds of the matching webhooks plus a
    /// margin.
    #[serde(rename = "deadlineMs", with = "millis")]
    pub deadline: Duration,
    /// Fail-closed webhooks whose rules and selectors match this write.
    pub fail_closed_webhooks: Vec<String>,
    /// All webhooks (fail-open too) that match this write.
    pub matching_webhooks: Vec<String>,
    pub state: ProbeState,
}

impl NamespaceProbe {
    /// One line for a person: "no answer after 4 s (fail-closed webhooks that match: ...)".
    pub fn describe(&self) -> String {
        match &self.state {
            ProbeState::Skipped { reason } => format!("skipped: {reason}"),
            ProbeState::Waiting { waited } => {
                let mut s = format!("no answer after {} s", waited.as_secs());
                if !self.fail_closed_webhooks.is_empty() {
                    s.push_str(&format!(
                        " (fail-closed webhooks that match: {})",
                        self.fail_closed_webhooks.join(", ")
                    ));
                }
                s
            }
            ProbeState::Passed { took } if *took < Duration::from_secs(1) => {
                format!("passed in {} ms", took.as_millis())
            }
            ProbeState::Passed { took } => format!("passed in {:.1} s", took.as_secs_f64()),
            ProbeState::Failed { took, failure } => {
                let what = match failure {
                    WriteFailure::WebhookCall { webhook, cause, .. } => {
                        format!("webhook {webhook}: {cause}")
                    }
                    WriteFailure::WebhookDenied {
                        webhook, reason, ..
                    } => format!("webhook {webhook} denied: {reason}"),
                    WriteFailure::Access { error } => error.message.clone(),
                };
                format!("failed after {:.1} s: {what}", took.as_secs_f64())
            }
        }
    }
}

/// The latest write-path probe: one entry per probed namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeReport {
    pub namespaces: Vec<NamespaceProbe>,
    /// Set by [`through_restarts`] when it gave up: every try within [`RESTART_RETRY_FOR`] was
    /// cut by an apiserver restart, so this report is no verdict on writes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gave_up: bool,
}

impl ProbeReport {
    pub fn namespace(&self, namespace: &str) -> Option<&NamespaceProbe> {
        self.namespaces.iter().find(|n| n.namespace == namespace)
    }

    /// Whether writes pass: at least one namespace was probed, and every one passed.
    pub fn all_pass(&self) -> bool {
        !self.namespaces.is_empty()
            && self
                .namespaces
                .iter()
                .all(|n| matches!(n.state, ProbeState::Passed { .. }))
    }

    /// Whether the probe failed only because the apiserver went away in the middle of it
    /// (connections refused or dropped: a restart): no namespace failed for any other reason.
    /// Such a probe says nothing of how writes are handled.
    pub fn cut_by_restart(&self) -> bool {
        let mut cut = false;
        for n in &self.namespaces {
            match &n.state {
                ProbeState::Failed {
                    failure: WriteFailure::Access { error },
                    ..
                } if error.apiserver_gone() => cut = true,
                ProbeState::Failed { .. } | ProbeState::Waiting { .. } => return false,
                ProbeState::Passed { .. } | ProbeState::Skipped { .. } => {}
            }
        }
        cut
    }

    /// What to show of this report, a round still running, after `last`, the latest finished
    /// round: a namespace that has waited no longer than its last answer took shows that
    /// answer, so that a new round never hides the last verdict behind "no answer after 0 s".
    /// A wait longer than the last answer took is news, and shows.
    pub fn over(mut self, last: Option<&ProbeReport>) -> ProbeReport {
        let Some(last) = last else {
            return self;
        };
        for n in &mut self.namespaces {
            let ProbeState::Waiting { waited } = n.state else {
                continue;
            };
            let Some(before) = last.namespace(&n.namespace) else {
                continue;
            };
            let took = match before.state {
                ProbeState::Passed { took } | ProbeState::Failed { took, .. } => took,
                ProbeState::Waiting { .. } | ProbeState::Skipped { .. } => continue,
            };
            if waited <= took {
                *n = before.clone();
            }
        }
        self
    }

    /// Whether every namespace has an outcome (none is waiting).
    pub fn is_finished(&self) -> bool {
        !self
            .namespaces
            .iter()
            .any(|n| matches!(n.state, ProbeState::Waiting { .. }))
    }
}

// ---------------------------------------------------------------------------------------------
// Which webhooks a probe write meets

/// Namespaces the write probe creates its ConfigMap in.
pub const PROBE_NAMESPACES: [&str; 2] = ["kube-system", "default"];
/// The probe ConfigMap's name (never persisted: dryRun=All).
pub const PROBE_NAME: &str = "kube-rescue-probe";
/// Labels of the probe ConfigMap (objectSelectors are evaluated against them).
pub const PROBE_LABELS: [(&str, &str); 1] = [("app.kubernetes.io/managed-by", "kube-rescue")];
/// Added to the matching webhooks' timeouts: the apiserver answers a little after them.
pub const PROBE_MARGIN: Duration = Duration::from_secs(2);
/// The longest the probe ever waits.
pub const PROBE_MAX_DEADLINE: Duration = Duration::from_secs(75);
/// timeoutSeconds when unset (admissionregistration.k8s.io/v1).
pub const DEFAULT_WEBHOOK_TIMEOUT_SECONDS: i32 = 10;

/// A webhook that a probe write would be sent to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchedWebhook {
    pub name: String,
    pub configuration: String,
    pub mutating: bool,
    /// failurePolicy Fail (or unset, v1).
    pub fail_closed: bool,
    pub timeout_seconds: i32,
}

/// Whether a rule matches CREATE of a core/v1 ConfigMap (namespaced, no subresource).
fn rule_matches_configmap_create(rule: &RuleWithOperations) -> bool {
    let request = admission_rules::Request {
        operation: "CREATE",
        group: "",
        version: "v1",
        resource: "configmaps",
        subresource: "",
        namespaced: true,
    };
    admission_rules::rule_matches(&rule.into(), &request, &request.gvr())
}

/// Whether a metav1.LabelSelector selects `labels`. A selector that cannot be parsed counts
/// as matching: the apiserver then fails the call, which blocks the write all the same.
fn selects(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    let Ok(value) = serde_json::to_value(selector) else {
        return true;
    };
    match crate::selector::LabelSelector::from_json(&value) {
        Ok(parsed) => parsed.is_empty() || parsed.matches(labels),
        Err(_) => true,
    }
}

/// Labels a namespace is known to carry without reading it: `kubernetes.io/metadata.name`.
pub fn automatic_namespace_labels(namespace: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(
        "kubernetes.io/metadata.name".to_string(),
        namespace.to_string(),
    )])
}

/// The webhooks that a CREATE of a ConfigMap labelled `object_labels` in a namespace labelled
/// `namespace_labels` is sent to: rules (operations, apiGroups, apiVersions, resources, scope),
/// namespaceSelector and objectSelector, as the apiserver evaluates them.
pub fn webhooks_matching_configmap_create(
    validating: &[ValidatingWebhookConfiguration],
    mutating: &[MutatingWebhookConfiguration],
    namespace_labels: &BTreeMap<String, String>,
    object_labels: &BTreeMap<String, String>,
) -> Vec<MatchedWebhook> {
    let mut out = Vec::new();
    let mut consider = |configuration: &str,
                        name: &str,
                        mutating: bool,
                        rules: Option<&Vec<RuleWithOperations>>,
                        ns: Option<&LabelSelector>,
                        obj: Option<&LabelSelector>,
                        policy: Option<&str>,
                        timeout: Option<i32>| {
        let matches = rules
            .into_iter()
            .flatten()
            .any(rule_matches_configmap_create)
            && selects(ns, namespace_labels)
            && selects(obj, object_labels);
        if matches {
            out.push(MatchedWebhook {
                name: name.to_string(),
                configuration: configuration.to_string(),
                mutating,
                fail_closed: policy != Some("Ignore"),
                timeout_seconds: timeout
                    .unwrap_or(DEFAULT_WEBHOOK_TIMEOUT_SECONDS)
                    .clamp(1, 30),
            });
        }
    };
    for config in mutating {
        let cname = config.metadata.name.as_deref().unwrap_or_default();
        for h in config.webhooks.iter().flatten() {
            consider(
                cname,
                &h.name,
                true,
                h.rules.as_ref(),
                h.namespace_selector.as_ref(),
                h.object_selector.as_ref(),
                h.failure_policy.as_deref(),
                h.timeout_seconds,
            );
        }
    }
    for config in validating {
        let cname = config.metadata.name.as_deref().unwrap_or_default();
        for h in config.webhooks.iter().flatten() {
            consider(
                cname,
                &h.name,
                false,
                h.rules.as_ref(),
                h.namespace_selector.as_ref(),
                h.object_selector.as_ref(),
                h.failure_policy.as_deref(),
                h.timeout_seconds,
            );
        }
    }
    out
}

/// How long the probe waits for an answer: mutating webhooks run one after the other (their
/// timeouts add up), validating ones in parallel (the largest counts), plus [`PROBE_MARGIN`];
/// never less than the request deadline, never more than [`PROBE_MAX_DEADLINE`].
pub fn probe_deadline(matched: &[MatchedWebhook], request_deadline: Duration) -> Duration {
    let mutating: i64 = matched
        .iter()
        .filter(|m| m.mutating)
        .map(|m| i64::from(m.timeout_seconds))
        .sum();
    let validating = matched
        .iter()
        .filter(|m| !m.mutating)
        .map(|m| i64::from(m.timeout_seconds))
        .max()
        .unwrap_or(0);
    let webhooks = Duration::from_secs(u64::try_from(mutating + validating).unwrap_or(0));
    (webhooks + PROBE_MARGIN)
        .max(request_deadline)
        .min(PROBE_MAX_DEADLINE)
}

// ---------------------------------------------------------------------------------------------
// The write probe

fn probe_configmap(namespace: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(PROBE_NAME.to_string());
    cm.metadata.namespace = Some(namespace.to_string());
    cm.metadata.labels = Some(
        PROBE_LABELS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    cm.data = Some(BTreeMap::from([(
        "purpose".to_string(),
        "server-side dry run: checks that writes pass admission; never stored".to_string(),
    )]));
    cm
}

/// What the probe of one namespace is about to do.
fn plan(snapshot: &Snapshot, namespace: &str, request_deadline: Duration) -> NamespaceProbe {
    let validating = snapshot
        .validating_webhooks
        .value
        .as_deref()
        .unwrap_or_default();
    let mutating = snapshot
        .mutating_webhooks
        .value
        .as_deref()
        .unwrap_or_default();
    let object_labels: BTreeMap<String, String> = PROBE_LABELS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let matched = webhooks_matching_configmap_create(
        validating,
        mutating,
        &automatic_namespace_labels(namespace),
        &object_labels,
    );
    NamespaceProbe {
        namespace: namespace.to_string(),
        started_at: None,
        deadline: probe_deadline(&matched, request_deadline),
        fail_closed_webhooks: matched
            .iter()
            .filter(|m| m.fail_closed)
            .map(|m| m.name.clone())
            .collect(),
        matching_webhooks: matched.iter().map(|m| m.name.clone()).collect(),
        state: ProbeState::Waiting {
            waited: Duration::ZERO,
        },
    }
}

/// Sends one dry-run create and says how it went.
async fn probe_one(cluster: &Cluster, namespace: &str, deadline: Duration) -> ProbeState {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), namespace);
    let params = PostParams {
        dry_run: true,
        field_manager: Some("kube-rescue".into()),
    };
    let cm = probe_configmap(namespace);
    let what = format!("dry-run create configmap {namespace}/{PROBE_NAME}");
    let started = Instant::now();
    let result = cluster
        .call_within(&what, deadline, api.create(&params, &cm))
        .await;
    let took = started.elapsed();
    match result {
        Ok(_) => ProbeState::Passed { took },
        Err(error) => {
            let failure =
                parse_webhook_failure(&error.message).unwrap_or(WriteFailure::Access { error });
            ProbeState::Failed { took, failure }
        }
    }
}

/// A write probe running in the background. Its report is readable at any time: a namespace
/// without an answer yet says how long it has waited and which fail-closed webhooks match.
pub struct WriteProbe {
    report: watch::Receiver<ProbeReport>,
    task: JoinHandle<()>,
}

impl WriteProbe {
    /// Starts the probe beside whatever else runs; it never blocks the caller. In read-only mode
    /// nothing is sent and every namespace reports `skipped: read-only`.
    pub fn start(cluster: &Cluster, snapshot: &Snapshot) -> WriteProbe {
        let request_deadline = cluster.timeout();
        let mut report = ProbeReport {
            namespaces: PROBE_NAMESPACES
                .iter()
                .map(|ns| plan(snapshot, ns, request_deadline))
                .collect(),
            gave_up: false,
        };
        if cluster.is_read_only() {
            for n in &mut report.namespaces {
                n.state = ProbeState::Skipped {
                    reason: "read-only".into(),
                };
            }
            let (_tx, rx) = watch::channel(report);
            return WriteProbe {
                report: rx,
                task: tokio::spawn(async {}),
            };
        }
        let now = Timestamp::now();
        for n in &mut report.namespaces {
            n.started_at = Some(now);
        }
        let (tx, rx) = watch::channel(report.clone());
        let cluster = cluster.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let probes = report.namespaces.iter().enumerate().map(|(i, n)| {
                let cluster = cluster.clone();
                let tx = tx.clone();
                let namespace = n.namespace.clone();
                let deadline = n.deadline;
                async move {
                    let state = probe_one(&cluster, &namespace, deadline).await;
                    tracing::info!(%namespace, ?state, "write probe");
                    tx.send_modify(|r| {
                        if let Some(slot) = r.namespaces.get_mut(i) {
                            slot.state = state;
                        }
                    });
                }
            });
            let all = futures::future::join_all(probes);
            tokio::pin!(all);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = &mut all => break,
                    _ = tick.tick() => {
                        let waited = started.elapsed();
                        tx.send_modify(|r| {
                            for n in &mut r.namespaces {
                                if let ProbeState::Waiting { waited: w } = &mut n.state {
                                    *w = waited;
                                }
                            }
                        });
                    }
                }
            }
        });
        WriteProbe { report: rx, task }
    }

    /// The report as it stands now.
    pub fn report(&self) -> ProbeReport {
        self.report.borrow().clone()
    }

    /// Whether every namespace has an outcome.
    pub fn is_finished(&self) -> bool {
        self.report.borrow().is_finished()
    }

    /// Waits until every namespace has an outcome (each has its own deadline) and returns the
    /// report.
    pub async fn finished(&mut self) -> ProbeReport {
        let _ = self.report.wait_for(ProbeReport::is_finished).await;
        self.report()
    }
}

impl Drop for WriteProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs the write probe to its end (each namespace under its own deadline).
pub async fn write_probe(cluster: &Cluster, snapshot: &Snapshot) -> ProbeReport {
    WriteProbe::start(cluster, snapshot).finished().await
}

/// How long a write probe cut by an apiserver restart (connections refused or dropped under
/// it) is tried again, and how long [`through_restarts`] waits between tries.
pub const RESTART_RETRY_FOR: Duration = Duration::from_secs(20);
pub const RESTART_RETRY_EVERY: Duration = Duration::from_secs(2);

/// Runs `probe`, and again while an apiserver restart cuts it, for up to
/// [`RESTART_RETRY_FOR`]: returns the first answer that is a verdict on writes, else the last
/// one, still cut and marked [`ProbeReport::gave_up`] (no verdict).
pub async fn through_restarts<F, Fut>(mut probe: F) -> Result<ProbeReport, AccessError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<ProbeReport, AccessError>>,
{
    let give_up = tokio::time::Instant::now() + RESTART_RETRY_FOR;
    loop {
        let mut answer = probe().await;
        let restarting = match &answer {
            Ok(report) => report.cut_by_restart(),
            Err(e) => e.apiserver_gone(),
        };
        if !restarting {
            return answer;
        }
        if tokio::time::Instant::now() + RESTART_RETRY_EVERY >= give_up {
            if let Ok(report) = &mut answer {
                report.gave_up = true;
            }
            return answer;
        }
        tokio::time::sleep(RESTART_RETRY_EVERY).await;
    }
}

/// Reads the webhook configurations as they are now and runs the write probe against them:
/// whether writes pass right after a change.
pub async fn write_probe_now(cluster: &Cluster) -> Result<ProbeReport, AccessError> {
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(cluster.client());
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(cluster.client());
    let params = ListParams::default();
    let (validating, mutating) = tokio::join!(
        cluster.call(
            "list validatingwebhookconfigurations",
            validating.list(&params)
        ),
        cluster.call("list mutatingwebhookconfigurations", mutating.list(&params)),
    );
    let now = Timestamp::now();
    let snapshot = Snapshot {
        validating_webhooks: Source::fresh(validating?.items, now, Duration::ZERO),
        mutating_webhooks: Source::fresh(mutating?.items, now, Duration::ZERO),
        ..Snapshot::default()
    };
    Ok(write_probe(cluster, &snapshot).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_says_how_long_it_took_in_units_that_read() {
        let mut probe = NamespaceProbe {
            namespace: "kube-system".into(),
            started_at: None,
            deadline: Duration::from_secs(12),
            fail_closed_webhooks: Vec::new(),
            matching_webhooks: Vec::new(),
            state: ProbeState::Passed {
                took: Duration::from_millis(4),
            },
        };
        assert_eq!(probe.describe(), "passed in 4 ms");
        // A write that waited out a fail-open webhook's timeout.
        probe.state = ProbeState::Passed {
            took: Duration::from_millis(10_040),
        };
        assert_eq!(probe.describe(), "passed in 10.0 s");
    }

    #[test]
    fn webhook_call_failures_parse() {
        let m = r#"Internal error occurred: failed calling webhook "validating-webhook.openpolicyagent.org": failed to call webhook: Post "https://opa.opa.svc:443/v0/data?timeout=10s": context deadline exceeded"#;
        let Some(WriteFailure::WebhookCall {
            webhook,
            url,
            cause,
            ..
        }) = parse_webhook_failure(m)
        else {
            panic!("not parsed: {m}");
        };
        assert_eq!(webhook, "validating-webhook.openpolicyagent.org");
        assert_eq!(
            url.as_deref(),
            Some("https://opa.opa.svc:443/v0/data?timeout=10s")
        );
        assert_eq!(cause, "context deadline exceeded");

        let m = r#"Internal error occurred: failed calling webhook "a.b": failed to call webhook: Post "https://s.n.svc:443/x?timeout=3s": no endpoints available for service "s""#;
        let Some(WriteFailure::WebhookCall { cause, .. }) = parse_webhook_failure(m) else {
            panic!("not parsed");
        };
        assert_eq!(cause, r#"no endpoints available for service "s""#);

        let m = r#"configmaps "p" is forbidden: admission webhook "deny.example.com" denied the request: no configmaps here"#;
        let Some(WriteFailure::WebhookDenied {
            webhook, reason, ..
        }) = parse_webhook_failure(m)
        else {
            panic!("not parsed");
        };
        assert_eq!(webhook, "deny.example.com");
        assert_eq!(reason, "no configmaps here");
        assert!(parse_webhook_failure("etcdserver: request timed out").is_none());
    }

    #[test]
    fn older_apiservers_wordings_of_a_call_failure_parse() {
        // Kubernetes 1.9-1.12 said `failed calling admission webhook`: a call failure, not a
        // denial; Go before 1.14 printed the URL unquoted: it is not part of the cause.
        let m = "Internal error occurred: failed calling admission webhook \"w.example.com\": Post https://svc.ns.svc:443/v?timeout=30s: context deadline exceeded";
        let Some(WriteFailure::WebhookCall {
            webhook,
            url,
            cause,
            ..
        }) = parse_webhook_failure(m)
        else {
            panic!("not a call failure: {:?}", parse_webhook_failure(m));
        };
        assert_eq!(webhook, "w.example.com");
        assert_eq!(url.as_deref(), Some("https://svc.ns.svc:443/v?timeout=30s"));
        assert_eq!(cause, "context deadline exceeded");
    }

    #[test]
    fn latency_history_is_bounded() {
        let mut h = LatencyHistory::default();
        for i in 0..(LATENCY_HISTORY + 5) {
            h.record(
                "get",
                Duration::from_millis(i as u64),
                true,
                Timestamp::UNIX_EPOCH,
            );
        }
        assert_eq!(h.samples("get").count(), LATENCY_HISTORY);
        assert_eq!(
            h.latest("get").map(|s| s.took),
            Some(Duration::from_millis(LATENCY_HISTORY as u64 + 4))
        );
    }

    #[test]
    fn a_new_round_shows_the_last_answer_until_it_has_waited_longer() {
        let ns = |namespace: &str, state| NamespaceProbe {
            namespace: namespace.into(),
            started_at: None,
            deadline: Duration::from_secs(12),
            fail_closed_webhooks: Vec::new(),
            matching_webhooks: Vec::new(),
            state,
        };
        let failed = ProbeState::Failed {
            took: Duration::from_secs(10),
            failure: WriteFailure::Access {
                error: AccessError::new(crate::cluster::ErrorKind::Timeout, "no answer"),
            },
        };
        let last = ProbeReport {
            namespaces: vec![
                ns("kube-system", failed.clone()),
                ns(
                    "default",
                    ProbeState::Passed {
                        took: Duration::from_millis(5),
                    },
                ),
            ],
            gave_up: false,
        };
        let waiting = |secs| ProbeState::Waiting {
            waited: Duration::from_secs(secs),
        };
        let running = |a, b| ProbeReport {
            namespaces: vec![ns("kube-system", waiting(a)), ns("default", waiting(b))],
            gave_up: false,
        };
        // 3 s into the round: kube-system's last answer took 10 s, so it still shows; default
        // answered in 5 ms last time, so waiting 3 s is news.
        let shown = running(3, 3).over(Some(&last));
        assert_eq!(shown.namespaces[0].state, failed);
        assert_eq!(shown.namespaces[1].state, waiting(3));
        // Past the last answer's time, the wait shows; with no earlier round, it always does.
        assert_eq!(
            running(11, 0).over(Some(&last)).namespaces[0].state,
            waiting(11)
        );
        assert_eq!(running(0, 0).over(None), running(0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_cut_by_a_restart_is_tried_again_until_it_gives_a_verdict() {
        use crate::cluster::ErrorKind;
        let state = |state| NamespaceProbe {
            namespace: "default".into(),
            started_at: None,
            deadline: Duration::from_secs(12),
            fail_closed_webhooks: Vec::new(),
            matching_webhooks: Vec::new(),
            state,
        };
        let cut = || ProbeReport {
            namespaces: vec![state(ProbeState::Failed {
                took: Duration::from_millis(3),
                failure: WriteFailure::Access {
                    error: AccessError::new(ErrorKind::Refused, "connection refused"),
                },
            })],
            gave_up: false,
        };
        let passed = ProbeReport {
            namespaces: vec![state(ProbeState::Passed {
                took: Duration::from_millis(4),
            })],
            gave_up: false,
        };
        // Cut twice, then an answer: the answer is the verdict, 4 s later.
        let started = tokio::time::Instant::now();
        let mut tries = 0;
        let report = through_restarts(|| {
            tries += 1;
            let answer = if tries < 3 { cut() } else { passed.clone() };
            async move { Ok(answer) }
        })
        .await
        .unwrap();
        assert_eq!((tries, report.all_pass(), report.gave_up), (3, true, false));
        assert_eq!(started.elapsed(), RESTART_RETRY_EVERY * 2);
        // Never an answer: the last cut report, within the bound.
        let started = tokio::time::Instant::now();
        let mut tries = 0;
        let report = through_restarts(|| {
            tries += 1;
            async { Ok(cut()) }
        })
        .await
        .unwrap();
        assert!(report.cut_by_restart() && report.gave_up);
        assert!(
            started.elapsed() < RESTART_RETRY_FOR,
            "{:?}",
            started.elapsed()
        );
        assert_eq!(tries, 10);
    }
}
