//! Webhook findings: webhook-blocking-writes, webhook-backend-unavailable,
//! webhook-intercepts-control-plane, webhook-self-deadlock, webhook-long-timeout,
//! webhook-backend-single-replica, webhook-backend-no-liveness (meanings in DESIGN.md),
//! writes-denied-by-policy.
//! Pure: reads the inventory (and, live, the snapshot's probe, events and metrics); never
//! calls a cluster. Offline, what the input does not show is unknown, never "missing".

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, Event, Pod, PodTemplateSpec, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::effective::{self, EffectiveWebhook, ServiceRef};
use super::{Context, Finding, Severity, Subject};
use crate::admission_rules::Request;
use crate::cluster::ErrorKind;
use crate::cluster::probe::{ProbeState, WriteFailure};
use crate::cluster::snapshot::{Snapshot, WebhookBackend};

pub const BLOCKING_WRITES: &str = "webhook-blocking-writes";
pub const BACKEND_UNAVAILABLE: &str = "webhook-backend-unavailable";
pub const INTERCEPTS_CONTROL_PLANE: &str = "webhook-intercepts-control-plane";
pub const SELF_DEADLOCK: &str = "webhook-self-deadlock";
pub const LONG_TIMEOUT: &str = "webhook-long-timeout";
pub const SINGLE_REPLICA: &str = "webhook-backend-single-replica";
pub const NO_LIVENESS: &str = "webhook-backend-no-liveness";
pub const CA_BUNDLE_INVALID: &str = "webhook-ca-bundle-invalid";
pub const WRITES_DENIED: &str = "writes-denied-by-policy";

const OUTAGE_RUNBOOK: &str = "webhook-outage";
const HARDENING_RUNBOOK: &str = "webhook-hardening";
const POLICY_RUNBOOK: &str = "policy-denial";

/// Warning events that say `failed calling webhook "NAME"`, by NAME, in the snapshot's order
/// (newest first): read once, not once per webhook (a large cluster has hundreds of webhooks
/// and hundreds of events).
pub fn events_by_webhook(snapshot: Option<&Snapshot>) -> BTreeMap<&str, Vec<&Event>> {
    let mut by_webhook: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    let events = snapshot
        .and_then(|s| s.warning_events.value.as_ref())
        .into_iter()
        .flatten();
    for event in events {
        let Some(message) = event.message.as_deref() else {
            continue;
        };
        for needle in crate::failure::FAILED_CALLING {
            let mut rest = message;
            while let Some(at) = rest.find(needle) {
                rest = &rest[at + needle.len()..];
                if let Some(end) = rest.find('"') {
                    let list = by_webhook.entry(&rest[..end]).or_default();
                    if !list.iter().any(|e| std::ptr::eq(*e, event)) {
                        list.push(event);
                    }
                }
            }
        }
    }
    by_webhook
}

/// Every webhook finding, in the order the webhooks are listed (ranking happens later).
pub fn findings(context: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let events = events_by_webhook(context.live);
    for hook in effective::webhooks(context.inventory) {
        let backend = hook
            .service
            .as_ref()
            .map(|service| Backend::resolve(context, service));
        out.extend(blocking_writes(context, &hook, &events));
        let denied = denies_writes(context, &hook);
        let denying = denied.is_some();
        out.extend(denied);
        let first = out.len();
        out.extend(
            backend
                .as_ref()
                .and_then(|b| backend_unavailable(context, &hook, b)),
        );
        out.extend(intercepts_control_plane(context, &hook));
        out.extend(
            backend
                .as_ref()
                .and_then(|b| self_deadlock(context, &hook, b)),
        );
        out.extend(long_timeout(&hook));
        out.extend(
            backend
                .as_ref()
                .and_then(|b| single_replica(context, &hook, b)),
        );
        out.extend(backend.as_ref().and_then(|b| no_liveness(&hook, b)));
        out.extend(ca_bundle_invalid(context, &hook));
        // A webhook seen saying no is obeyed whatever its failurePolicy: failing it open is no
        // remedy anyone should be offered for it now.
        if denying {
            for f in &mut out[first..] {
                f.actions.retain(|a| a != "fail-open");
            }
        }
    }
    out
}

fn finding(
    id: &str,
    severity: Severity,
    hook: &EffectiveWebhook<'_>,
    title: String,
    evidence: Vec<String>,
    runbook: &str,
    actions: &[&str],
) -> Finding {
    Finding {
        id: id.into(),
        severity,
        subject: Subject::webhook(hook.kind, hook.configuration, hook.name),
        title,
        evidence,
        runbook: runbook.into(),
        actions: actions.iter().map(|a| a.to_string()).collect(),
        caused_by: None,
    }
}

fn describe_labels(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------------------------------------
// The backend behind a webhook's Service

/// What the input shows of the Service a webhook calls and what stands behind it.
struct Backend<'a> {
    service_ref: &'a ServiceRef,
    service: Option<&'a Service>,
    /// The Service's selector (empty when it has none or is unknown).
    selector: BTreeMap<String, String>,
    /// The Deployments, StatefulSets and DaemonSets whose pods the Service selects.
    workloads: Vec<Workload<'a>>,
    pods: Vec<&'a Pod>,
    slices: Vec<&'a EndpointSlice>,
    /// Live: the snapshot's record of this backend.
    live: Option<&'a WebhookBackend>,
}

fn contains_all(
    labels: Option<&BTreeMap<String, String>>,
    wanted: &BTreeMap<String, String>,
) -> bool {
    !wanted.is_empty() && labels.is_some_and(|l| wanted.iter().all(|(k, v)| l.get(k) == Some(v)))
}

impl<'a> Backend<'a> {
    fn resolve(context: &Context<'a>, service_ref: &'a ServiceRef) -> Backend<'a> {
        let inventory = context.inventory;
        let ns = service_ref.namespace.as_str();
        let in_ns = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            m.namespace.as_deref() == Some(ns)
        };
        let service = inventory.services.iter().find(|s| {
            in_ns(&s.metadata) && s.metadata.name.as_deref() == Some(service_ref.name.as_str())
        });
        let selector = service
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        let workloads = Workload::all(inventory)
            .into_iter()
            .filter(|w| w.namespace == ns)
            .filter(|w| {
                let template = w.template.metadata.as_ref().and_then(|m| m.labels.as_ref());
                contains_all(template, &selector)
            })
            .collect();
        let pods = inventory
            .pods
            .iter()
            .filter(|p| in_ns(&p.metadata) && contains_all(p.metadata.labels.as_ref(), &selector))
            .collect();
        let slices = inventory
            .endpoint_slices
            .iter()
            .filter(|s| {
                in_ns(&s.metadata)
                    && s.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get("kubernetes.io/service-name"))
                        == Some(&service_ref.name)
            })
            .collect();
        let live = context.live.and_then(|snapshot| {
            snapshot
                .webhook_backends
                .iter()
                .find(|b| b.namespace == ns && b.name == service_ref.name)
        });
        Backend {
            service_ref,
            service,
            selector,
            workloads,
            pods,
            slices,
            live,
        }
    }

    fn name(&self) -> String {
        format!("{}/{}", self.service_ref.namespace, self.service_ref.name)
    }

    /// Labels the backend's pods carry, as far as known: a workload's template labels, else
    /// the Service's selector.
    fn pod_labels(&self) -> BTreeMap<String, String> {
        self.workloads
            .iter()
            .find_map(|w| w.template.metadata.as_ref().and_then(|m| m.labels.clone()))
            .unwrap_or_else(|| self.selector.clone())
    }

    /// "Service opa/opa selects app=opa: Deployment opa/opa".
    fn describe_workloads(&self) -> String {
        let names: Vec<String> = self.workloads.iter().map(Workload::describe).collect();
        format!(
            "Service {} selects {}: {}",
            self.name(),
            describe_labels(&self.selector),
            names.join(", ")
        )
    }
}

/// A Deployment, StatefulSet or DaemonSet, as far as the backend rules need it.
struct Workload<'a> {
    kind: &'static str,
    namespace: &'a str,
    name: &'a str,
    /// spec.replicas (unset: 1); None for a DaemonSet, which runs one pod per node.
    replicas: Option<Option<i32>>,
    ready: Option<i32>,
    template: &'a PodTemplateSpec,
}

impl<'a> Workload<'a> {
    fn all(inventory: &'a super::Inventory) -> Vec<Workload<'a>> {
        let mut out = Vec::new();
        for d in &inventory.deployments {
            out.push(Workload {
                kind: "Deployment",
                namespace: d.metadata.namespace.as_deref().unwrap_or_default(),
                name: d.metadata.name.as_deref().unwrap_or_default(),
                replicas: Some(d.spec.replicas),
                ready: d.status.as_ref().map(|s| s.ready_replicas.unwrap_or(0)),
                template: &d.spec.template,
            });
        }
        for s in &inventory.stateful_sets {
            out.push(Workload {
                kind: "StatefulSet",
                namespace: s.metadata.namespace.as_deref().unwrap_or_default(),
                name: s.metadata.name.as_deref().unwrap_or_default(),
                replicas: Some(s.spec.replicas),
                ready: s.status.as_ref().map(|s| s.ready_replicas.unwrap_or(0)),
                template: &s.spec.template,
            });
        }
        for d in &inventory.daemon_sets {
            out.push(Workload {
                kind: "DaemonSet",
                namespace: d.metadata.namespace.as_deref().unwrap_or_default(),
                name: d.metadata.name.as_deref().unwrap_or_default(),
                replicas: None,
                ready: d.status.as_ref().map(|s| s.number_ready),
                template: &d.spec.template,
            });
        }
        out
    }

    /// `Deployment opa/opa`
    fn describe(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

// ---------------------------------------------------------------------------------------------
// webhook-blocking-writes (live only)

fn blocking_writes(
    context: &Context<'_>,
    hook: &EffectiveWebhook<'_>,
    events_by_webhook: &BTreeMap<&str, Vec<&Event>>,
) -> Option<Finding> {
    let snapshot = context.live?;
    let mut evidence = Vec::new();
    let mut stalled = false;

    if let Some(report) = &snapshot.write_probe {
        for probe in &report.namespaces {
            match &probe.state {
                ProbeState::Failed { took, failure } if failure.webhook() == Some(hook.name) => {
                    let what = match failure {
                        WriteFailure::WebhookCall { cause, .. } => format!("call failed: {cause}"),
                        // The webhook's answer, not a failure to get one: writes-denied-by-policy.
                        WriteFailure::WebhookDenied { .. } => continue,
                        WriteFailure::Access { error } => error.message.clone(),
                    };
                    evidence.push(format!(
                        "write probe: dry-run ConfigMap create in {} failed after {:.1} s; webhook {} {what}",
                        probe.namespace,
                        took.as_secs_f64(),
                        hook.name
                    ));
                }
                ProbeState::Waiting { waited }
                    if hook.fail_closed()
                        && probe.fail_closed_webhooks.iter().any(|w| w == hook.name)
                        && waited.as_secs() >= u64::try_from(hook.timeout_seconds).unwrap_or(0) =>
                {
                    stalled = true;
                    evidence.push(format!(
                        "write probe: dry-run ConfigMap create in {} has had no answer for {} s, past the {} s timeout of fail-closed webhook {} that matches it",
                        probe.namespace,
                        waited.as_secs(),
                        hook.timeout_seconds,
                        hook.name
                    ));
                }
                _ => {}
            }
        }
    }

    // Warning events and the apiserver's counters outlive the failure they tell of. They say
    // nothing of now once the webhook fails open (a failed call no longer fails a write), or
    // once a probe write that this webhook intercepts has passed: only the probe speaks then.
    let passed_through = snapshot.write_probe.as_ref().is_some_and(|r| {
        r.namespaces.iter().any(|n| {
            matches!(n.state, ProbeState::Passed { .. })
                && n.fail_closed_webhooks.iter().any(|w| w == hook.name)
        })
    });
    let history_counts = hook.fail_closed() && !passed_through;
    if history_counts && let Some(events) = events_by_webhook.get(hook.name) {
        let needle = format!("failed calling webhook \"{}\"", hook.name);
        let mut count: i64 = 0;
        let mut reasons = BTreeSet::new();
        let mut objects = BTreeSet::new();
        let mut sample: Option<&str> = None;
        for event in events {
            let Some(message) = event.message.as_deref() else {
                continue;
            };
            count += event
                .series
                .as_ref()
                .and_then(|s| s.count)
                .or(event.count)
                .unwrap_or(1)
                .max(1) as i64;
            if let Some(reason) = &event.reason {
                reasons.insert(reason.clone());
            }
            let o = &event.involved_object;
            objects.insert(match &o.namespace {
                Some(ns) => format!(
                    "{} {ns}/{}",
                    o.kind.as_deref().unwrap_or("?"),
                    o.name.as_deref().unwrap_or("?")
                ),
                None => format!(
                    "{} {}",
                    o.kind.as_deref().unwrap_or("?"),
                    o.name.as_deref().unwrap_or("?")
                ),
            });
            sample.get_or_insert(message);
        }
        if count > 0 {
            let shown: Vec<&String> = objects.iter().take(3).collect();
            let more = objects.len().saturating_sub(shown.len());
            let mut line = format!(
                "{count} Warning events ({}) on {} objects say {needle}: {}",
                reasons.into_iter().collect::<Vec<_>>().join(", "),
                objects.len(),
                shown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if more > 0 {
                line.push_str(&format!(" and {more} more"));
            }
            evidence.push(line);
            if let Some(message) = sample {
                let message: String = message.chars().take(240).collect();
                evidence.push(format!("event message: {message}"));
            }
        }
    }

    if let Some(metrics) = snapshot
        .metrics
        .value
        .as_ref()
        .and_then(|m| m.webhooks.get(hook.name))
        && metrics.calling_errors > 0.0
        && history_counts
    {
        evidence.push(format!(
            "apiserver metrics: apiserver_admission_webhook_rejection_count{{name=\"{}\",error_type=\"calling_webhook_error\"}} = {} (of {} calls)",
            hook.name, metrics.calling_errors, metrics.requests
        ));
    }

    if evidence.is_empty() {
        return None;
    }
    evidence.push(format!(
        "{}; {}; calls {}",
        hook.describe_failure_policy(),
        hook.describe_timeout(),
        hook.destination()
    ));
    let title = if stalled {
        format!("Writes stall at webhook {}: it does not answer", hook.name)
    } else {
        format!("Writes fail because of webhook {}", hook.name)
    };
    let mut actions = vec!["fail-open", "exclude-system-namespaces", "delete"];
    if hook.service.is_some() {
        actions.push("restart-backend");
    }
    Some(finding(
        BLOCKING_WRITES,
        Severity::Critical,
        hook,
        title,
        evidence,
        OUTAGE_RUNBOOK,
        &actions,
    ))
}

// ---------------------------------------------------------------------------------------------
// writes-denied-by-policy (live only)

/// A webhook that answers, and says no. failurePolicy governs only calls that fail, so
/// failing open (or restarting the backend) changes nothing: the remedy is the policy, or, for
/// the control plane's own namespaces, keeping them out of the webhook's reach.
fn denies_writes(context: &Context<'_>, hook: &EffectiveWebhook<'_>) -> Option<Finding> {
    let report = context.live?.write_probe.as_ref()?;
    let mut evidence = Vec::new();
    let mut namespaces = Vec::new();
    for probe in &report.namespaces {
        if let ProbeState::Failed {
            failure: WriteFailure::WebhookDenied {
                webhook, reason, ..
            },
            ..
        } = &probe.state
            && webhook == hook.name
        {
            namespaces.push(probe.namespace.as_str());
            evidence.push(format!(
                "write probe: dry-run ConfigMap create in {} denied by webhook {}: {reason}",
                probe.namespace, hook.name
            ));
        }
    }
    if namespaces.is_empty() {
        return None;
    }
    let system = namespaces
        .iter()
        .any(|n| crate::remediate::change::SYSTEM_NAMESPACES.contains(n));
    evidence.push(
        "failurePolicy does not apply: the webhook answers, and its answer is no; failing open or restarting its backend changes nothing"
            .into(),
    );
    evidence.push(format!(
        "the policy: the rules behind {} (kubectl get {} {} -o yaml; its constraint or policy objects say what it requires)",
        hook.destination(),
        hook.kind.to_lowercase(),
        hook.configuration
    ));
    if system {
        evidence.push(
            "it denies writes in a namespace the control plane writes to (Leases, the apiserver's own ConfigMaps): exclude the system namespaces from the webhook, or change the policy"
                .into(),
        );
    }
    let title = format!(
        "Webhook {} denies writes in {}",
        hook.name,
        namespaces.join(" and ")
    );
    let (severity, actions): (Severity, &[&str]) = if system {
        (Severity::Critical, &["exclude-system-namespaces"])
    } else {
        (Severity::Warning, &[])
    };
    Some(finding(
        WRITES_DENIED,
        severity,
        hook,
        title,
        evidence,
        POLICY_RUNBOOK,
        actions,
    ))
}

// ---------------------------------------------------------------------------------------------
// webhook-backend-unavailable

fn is_ready(slice: &EndpointSlice) -> usize {
    slice
        .endpoints
        .iter()
        .flatten()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        .count()
}

fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Unknown")
}

fn backend_unavailable(
    context: &Context<'_>,
    hook: &EffectiveWebhook<'_>,
    backend: &Backend<'_>,
) -> Option<Finding> {
    let mut problems = Vec::new();
    let mut missing = false;
    let (service, slices, pods): (
        Option<&Service>,
        Option<Vec<&EndpointSlice>>,
        Option<Vec<&Pod>>,
    ) = match (context.live, backend.live) {
        (Some(_), Some(record)) if record.read_at.is_some() => {
            if record.service.error_kind() == Some(ErrorKind::NotFound)
                && record.service.value.is_none()
            {
                missing = true;
                problems.push(format!("Service {} not found (404)", backend.name()));
            }
            (
                record.service.value.as_ref(),
                record
                    .endpoint_slices
                    .value
                    .as_ref()
                    .map(|v| v.iter().collect()),
                record.pods.value.as_ref().map(|v| v.iter().collect()),
            )
        }
        // Live but not read yet: unknown.
        (Some(_), _) => return None,
        // Offline: only what the input shows; absent objects are unknown.
        (None, _) => (
            backend.service,
            (!backend.slices.is_empty()).then(|| backend.slices.clone()),
            (!backend.pods.is_empty()).then(|| backend.pods.clone()),
        ),
    };
    if !missing && service.is_none() {
        return None;
    }
    if let Some(service) = service {
        let external =
            service.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName");
        if external {
            return None;
        }
        if let Some(slices) = &slices {
            let ready: usize = slices.iter().map(|s| is_ready(s)).sum();
            let total: usize = slices
                .iter()
                .map(|s| s.endpoints.as_ref().map_or(0, Vec::len))
                .sum();
            if ready == 0 {
                problems.push(format!(
                    "Service {} has no ready endpoints: {} EndpointSlices labelled kubernetes.io/service-name={}, {total} endpoints, 0 ready",
                    backend.name(),
                    slices.len(),
                    backend.service_ref.name
                ));
            }
        }
        if let Some(pods) = &pods
            && !backend.selector.is_empty()
        {
            let running = pods.iter().filter(|p| pod_phase(p) == "Running").count();
            if pods.is_empty() {
                problems.push(format!(
                    "no pods match the Service's selector {}",
                    describe_labels(&backend.selector)
                ));
            } else if running == 0 {
                let phases: Vec<String> = pods
                    .iter()
                    .take(5)
                    .map(|p| {
                        format!(
                            "{} {}",
                            p.metadata.name.as_deref().unwrap_or("?"),
                            pod_phase(p)
                        )
                    })
                    .collect();
                problems.push(format!(
                    "none of the {} pods selected by {} is Running: {}",
                    pods.len(),
                    describe_labels(&backend.selector),
                    phases.join(", ")
                ));
            }
        }
    }
    if problems.is_empty() {
        return None;
    }
    let severity = if hook.fail_closed() {
        Severity::Critical
    } else {
        Severity::Warning
    };
    problems.push(hook.describe_failure_policy());
    let title = if hook.fail_closed() {
        format!(
            "Backend of fail-closed webhook {} is unavailable: matching writes fail",
            hook.name
        )
    } else {
        format!(
            "Backend of webhook {} is unavailable (failurePolicy Ignore: writes pass unchecked)",
            hook.name
        )
    };
    let actions: &[&str] = match (hook.fail_closed(), missing) {
        (true, true) => &["fail-open", "delete"],
        (true, false) => &["restart-backend", "fail-open"],
        (false, true) => &["delete"],
        (false, false) => &["restart-backend"],
    };
    Some(finding(
        BACKEND_UNAVAILABLE,
        severity,
        hook,
        title,
        problems,
        OUTAGE_RUNBOOK,
        actions,
    ))
}

// ---------------------------------------------------------------------------------------------
// webhook-intercepts-control-plane

/// An object the control plane must write to stay alive.
struct ControlPlaneWrite {
    /// How a person names it: "Leases in kube-node-lease".
    what: &'static str,
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    subresource: &'static str,
    /// None: cluster-scoped.
    namespace: Option<&'static str>,
    operations: &'static [&'static str],
}

const CREATE_UPDATE: &[&str] = &["CREATE", "UPDATE"];

const fn in_kube_system(
    what: &'static str,
    group: &'static str,
    resource: &'static str,
) -> ControlPlaneWrite {
    ControlPlaneWrite {
        what,
        group,
        version: "v1",
        resource,
        subresource: "",
        namespace: Some("kube-system"),
        operations: CREATE_UPDATE,
    }
}

const fn cluster_scoped(
    what: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    operations: &'static [&'static str],
) -> ControlPlaneWrite {
    ControlPlaneWrite {
        what,
        group,
        version: "v1",
        resource,
        subresource,
        namespace: None,
        operations,
    }
}

const CONTROL_PLANE_WRITES: &[ControlPlaneWrite] = &[
    ControlPlaneWrite {
        what: "Leases in kube-node-lease",
        group: "coordination.k8s.io",
        version: "v1",
        resource: "leases",
        subresource: "",
        namespace: Some("kube-node-lease"),
        operations: CREATE_UPDATE,
    },
    in_kube_system("Leases in kube-system", "coordination.k8s.io", "leases"),
    in_kube_system("ConfigMaps in kube-system", "", "configmaps"),
    in_kube_system("Pods in kube-system", "", "pods"),
    in_kube_system("Endpoints in kube-system", "", "endpoints"),
    in_kube_system(
        "EndpointSlices in kube-system",
        "discovery.k8s.io",
        "endpointslices",
    ),
    in_kube_system("Secrets in kube-system", "", "secrets"),
    in_kube_system("ServiceAccounts in kube-system", "", "serviceaccounts"),
    cluster_scoped("Nodes", "", "nodes", "", CREATE_UPDATE),
    cluster_scoped("Node status", "", "nodes", "status", &["UPDATE"]),
    cluster_scoped(
        "TokenReviews",
        "authentication.k8s.io",
        "tokenreviews",
        "",
        &["CREATE"],
    ),
    cluster_scoped(
        "SubjectAccessReviews",
        "authorization.k8s.io",
        "subjectaccessreviews",
        "",
        &["CREATE"],
    ),
    cluster_scoped(
        "CertificateSigningRequests",
        "certificates.k8s.io",
        "certificatesigningrequests",
        "",
        CREATE_UPDATE,
    ),
];

fn intercepts_control_plane(context: &Context<'_>, hook: &EffectiveWebhook<'_>) -> Option<Finding> {
    if !hook.fail_closed() {
        return None;
    }
    let no_labels = BTreeMap::new();
    // The control plane's own objects mostly carry no labels: an objectSelector that needs a
    // label lets them through.
    if !hook.object_selector.matches(&no_labels) {
        return None;
    }
    let mut matched = Vec::new();
    // Per matching rule (as written), what it matches: "Leases in kube-node-lease (CREATE/UPDATE
    // leases.coordination.k8s.io)".
    let mut by_rule: Vec<(String, Vec<String>)> = Vec::new();
    let mut selected = Vec::new();
    let mut cluster_scoped = Vec::new();
    for write in CONTROL_PLANE_WRITES {
        let mut ops = Vec::new();
        let mut rule = None;
        for op in write.operations {
            let request = Request {
                operation: op,
                group: write.group,
                version: write.version,
                resource: write.resource,
                subresource: write.subresource,
                namespaced: write.namespace.is_some(),
            };
            if let Some(r) = hook.matching_rule(&request) {
                ops.push(*op);
                rule.get_or_insert(r);
            }
        }
        let Some(rule) = rule else {
            continue;
        };
        match write.namespace {
            Some(ns) => {
                let labels = context.inventory.namespace_labels(ns);
                if !hook.namespace_selector.matches(&labels) {
                    continue;
                }
                let verdict = format!("{ns} (labels {})", describe_labels(&labels));
                if !selected.contains(&verdict) {
                    selected.push(verdict);
                }
            }
            None => cluster_scoped.push(write.what),
        }
        matched.push(write.what);
        let resource = match (write.group, write.subresource) {
            ("", "") => write.resource.to_string(),
            ("", sub) => format!("{}/{sub}", write.resource),
            (g, "") => format!("{}.{g}", write.resource),
            (g, sub) => format!("{}.{g}/{sub}", write.resource),
        };
        let what = format!("{} ({} {resource})", write.what, ops.join("/"));
        let rule = rule.to_string();
        match by_rule.iter_mut().find(|(r, _)| *r == rule) {
            Some((_, whats)) => whats.push(what),
            None => by_rule.push((rule, vec![what])),
        }
    }
    if matched.is_empty() {
        return None;
    }
    let mut evidence = vec![format!(
        "{}; calls {}",
        hook.describe_failure_policy(),
        hook.destination()
    )];
    for (rule, whats) in &by_rule {
        evidence.push(format!("rule {{{rule}}} matches {}", whats.join(", ")));
    }
    if !selected.is_empty() {
        evidence.push(format!(
            "namespaceSelector {} selects {}",
            hook.namespace_selector.describe(),
            selected.join(", ")
        ));
    }
    if !cluster_scoped.is_empty() {
        evidence.push(format!(
            "cluster-scoped, so no namespaceSelector can exclude them: {}",
            cluster_scoped.join(", ")
        ));
    }
    if !hook.object_selector.is_everything() {
        evidence.push(format!(
            "objectSelector {} matches objects without labels",
            hook.object_selector.describe()
        ));
    }
    let actions: &[&str] = if selected.is_empty() {
        &["fail-open"]
    } else {
        &["exclude-system-namespaces", "fail-open"]
    };
    let shown = if matched.len() > 4 {
        format!("{} and {} more", matched[..3].join(", "), matched.len() - 3)
    } else {
        matched.join(", ")
    };
    Some(finding(
        INTERCEPTS_CONTROL_PLANE,
        Severity::Warning,
        hook,
        format!(
            "Fail-closed webhook {} intercepts writes the control plane needs: {shown}",
            hook.name
        ),
        evidence,
        HARDENING_RUNBOOK,
        actions,
    ))
}

// ---------------------------------------------------------------------------------------------
// webhook-self-deadlock

fn self_deadlock(
    context: &Context<'_>,
    hook: &EffectiveWebhook<'_>,
    backend: &Backend<'_>,
) -> Option<Finding> {
    if !hook.fail_closed() {
        return None;
    }
    let ns = backend.service_ref.namespace.as_str();
    let request = Request {
        operation: "CREATE",
        group: "",
        version: "v1",
        resource: "pods",
        subresource: "",
        namespaced: true,
    };
    let rule = hook.matching_rule(&request)?;
    let labels = context.inventory.namespace_labels(ns);
    if !hook.namespace_selector.matches(&labels) {
        return None;
    }
    let pod_labels = backend.pod_labels();
    if !hook.object_selector.matches(&pod_labels) {
        return None;
    }
    let mut evidence = vec![
        format!(
            "Pod CREATE in {ns}, the namespace of its backend Service {}: rule {{{rule}}}",
            backend.name()
        ),
        format!(
            "namespaceSelector {} selects {ns} (labels {})",
            hook.namespace_selector.describe(),
            describe_labels(&labels)
        ),
    ];
    if !hook.object_selector.is_everything() {
        evidence.push(format!(
            "objectSelector {} selects the backend's pod labels {}",
            hook.object_selector.describe(),
            describe_labels(&pod_labels)
        ));
    }
    evidence.push(format!(
        "{}: once every backend pod is gone, no new one can be created",
        hook.describe_failure_policy()
    ));
    Some(finding(
        SELF_DEADLOCK,
        Severity::Warning,
        hook,
        format!(
            "Fail-closed webhook {} must admit its own backend's pods in {ns}",
            hook.name
        ),
        evidence,
        HARDENING_RUNBOOK,
        &["exclude-system-namespaces", "fail-open"],
    ))
}

// ---------------------------------------------------------------------------------------------
// webhook-long-timeout

/// Above this, a fail-closed webhook holds writes too long.
pub const MAX_FAIL_CLOSED_TIMEOUT: i32 = 5;
/// From this on, even a fail-open webhook holds writes too long.
pub const MAX_FAIL_OPEN_TIMEOUT: i32 = 15;

fn long_timeout(hook: &EffectiveWebhook<'_>) -> Option<Finding> {
    let t = hook.timeout_seconds;
    let too_long = if hook.fail_closed() {
        t > MAX_FAIL_CLOSED_TIMEOUT
    } else {
        t >= MAX_FAIL_OPEN_TIMEOUT
    };
    if !too_long {
        return None;
    }
    let mut evidence = vec![
        hook.describe_timeout(),
        hook.describe_failure_policy(),
        if hook.fail_closed() {
            format!("a backend that hangs holds every matching write {t} s, then fails it")
        } else {
            format!(
                "a backend that hangs holds every matching write {t} s before letting it through"
            )
        },
    ];
    if hook.kind == effective::MUTATING {
        evidence.push("mutating webhooks run one after another: their timeouts add up".into());
    }
    let limit = if hook.fail_closed() {
        format!("over {MAX_FAIL_CLOSED_TIMEOUT} s")
    } else {
        format!("{MAX_FAIL_OPEN_TIMEOUT} s or more")
    };
    Some(finding(
        LONG_TIMEOUT,
        Severity::Warning,
        hook,
        format!(
            "Webhook {} waits {t} s for its backend ({limit})",
            hook.name
        ),
        evidence,
        HARDENING_RUNBOOK,
        &["set-timeout"],
    ))
}

// ---------------------------------------------------------------------------------------------
// webhook-backend-single-replica and webhook-backend-no-liveness

/// How many pods a workload keeps at the least: an autoscaler's minReplicas (unset: 1) when
/// one scales it, else spec.replicas (unset: 1). None for a DaemonSet (one per node).
fn least_replicas(
    workload: &Workload<'_>,
    autoscaler: Option<&super::inventory::Autoscaler>,
) -> Option<i32> {
    let spec = workload.replicas?;
    Some(match autoscaler {
        Some(a) => a.min_replicas.unwrap_or(1),
        None => spec.unwrap_or(1),
    })
}

fn single_replica(
    context: &Context<'_>,
    hook: &EffectiveWebhook<'_>,
    backend: &Backend<'_>,
) -> Option<Finding> {
    if !hook.fail_closed() || backend.workloads.is_empty() {
        return None;
    }
    let autoscaler_of = |w: &Workload<'_>| {
        context
            .inventory
            .autoscalers
            .iter()
            .find(|a| a.scales(w.kind, w.namespace, w.name))
    };
    let mut replicas: i32 = 0;
    for w in &backend.workloads {
        // A DaemonSet runs a pod on every node: how many is not in the manifests.
        replicas = replicas.saturating_add(least_replicas(w, autoscaler_of(w))?);
    }
    if replicas >= 2 {
        return None;
    }
    let mut autoscaled = false;
    let mut evidence = vec![backend.describe_workloads()];
    for w in &backend.workloads {
        let mut line = format!(
            "{}: {}",
            w.describe(),
            match w.replicas.flatten() {
                Some(n) => format!("spec.replicas {n}"),
                None => "spec.replicas unset (default 1)".into(),
            }
        );
        if let Some(ready) = w.ready {
            line.push_str(&format!(", {ready} ready"));
        }
        if let Some(a) = autoscaler_of(w) {
            autoscaled = true;
            line.push_str(&format!(
                "; HorizontalPodAutoscaler {}/{} scales it between {} and {}",
                a.namespace,
                a.name,
                match a.min_replicas {
                    Some(n) => format!("minReplicas {n}"),
                    None => "minReplicas unset (default 1)".into(),
                },
                a.max_replicas
                    .map_or("maxReplicas unset".into(), |n| format!("maxReplicas {n}"))
            ));
        }
        evidence.push(line);
    }
    evidence.push(format!(
        "{}: while that one pod restarts or is rescheduled, matching writes fail",
        hook.describe_failure_policy()
    ));
    let title = if autoscaled {
        format!(
            "Fail-closed webhook {} can be scaled down to {replicas} replica",
            hook.name
        )
    } else {
        format!(
            "Fail-closed webhook {} is served by {replicas} replica",
            hook.name
        )
    };
    Some(finding(
        SINGLE_REPLICA,
        Severity::Warning,
        hook,
        title,
        evidence,
        HARDENING_RUNBOOK,
        &["fail-open"],
    ))
}

/// The containers that serve the webhook: those exposing the Service port's targetPort (by
/// number or name); all containers when that cannot be told.
fn serving_containers<'a>(
    template: &'a PodTemplateSpec,
    service: Option<&Service>,
    port: i32,
) -> Vec<&'a Container> {
    let containers: Vec<&Container> = template
        .spec
        .as_ref()
        .map(|s| s.containers.iter().collect())
        .unwrap_or_default();
    let target = service
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.ports.as_ref())
        .and_then(|ports| ports.iter().find(|p| p.port == port))
        .map(|p| p.target_port.clone().unwrap_or(IntOrString::Int(p.port)));
    let Some(target) = target else {
        return containers;
    };
    let serving: Vec<&Container> = containers
        .iter()
        .copied()
        .filter(|c| {
            c.ports.iter().flatten().any(|p| match &target {
                IntOrString::Int(n) => p.container_port == *n,
                IntOrString::String(name) => p.name.as_deref() == Some(name.as_str()),
            })
        })
        .collect();
    if serving.is_empty() {
        containers
    } else {
        serving
    }
}

fn no_liveness(hook: &EffectiveWebhook<'_>, backend: &Backend<'_>) -> Option<Finding> {
    if !hook.fail_closed() || backend.workloads.is_empty() {
        return None;
    }
    let mut missing = Vec::new();
    for w in &backend.workloads {
        for c in serving_containers(w.template, backend.service, backend.service_ref.port) {
            if c.liveness_probe.is_none() {
                missing.push(format!(
                    "{} container {}: no livenessProbe",
                    w.describe(),
                    c.name
                ));
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let mut evidence = vec![backend.describe_workloads()];
    evidence.extend(missing);
    evidence.push(format!(
        "{}: a hung backend is never restarted and matching writes keep failing",
        hook.describe_failure_policy()
    ));
    Some(finding(
        NO_LIVENESS,
        Severity::Warning,
        hook,
        format!(
            "Backend of fail-closed webhook {} has no livenessProbe",
            hook.name
        ),
        evidence,
        HARDENING_RUNBOOK,
        &["restart-backend", "fail-open"],
    ))
}

// ---------------------------------------------------------------------------------------------
// webhook-ca-bundle-invalid (offline)

fn ca_bundle_invalid(context: &Context<'_>, hook: &EffectiveWebhook<'_>) -> Option<Finding> {
    let invalid = context.inventory.invalid_ca_bundles.iter().find(|c| {
        c.kind == hook.kind && c.configuration == hook.configuration && c.webhook == hook.name
    })?;
    Some(finding(
        CA_BUNDLE_INVALID,
        Severity::Warning,
        hook,
        format!(
            "Webhook {}: caBundle is not valid base64, so the apiserver refuses this configuration",
            hook.name
        ),
        vec![
            format!(
                "{}: {} {:?} is not valid base64: {}",
                invalid.place, invalid.field, invalid.value, invalid.reason
            ),
            format!(
                "kubectl apply of {} {} fails; whatever version the cluster has stays as it is",
                hook.kind, hook.configuration
            ),
            "the rest of this webhook was checked as if caBundle were unset".into(),
        ],
        HARDENING_RUNBOOK,
        &[],
    ))
}
