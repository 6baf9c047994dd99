//! Webhook findings from the manifests under tests/fixtures/manifests (each states in its header
//! which findings it must and must not raise) and from hand-built live snapshots.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube_rescue::cluster::probe::{NamespaceProbe, ProbeReport, ProbeState};
use kube_rescue::cluster::snapshot::{ApiserverMetrics, WebhookBackend, WebhookMetrics};
use kube_rescue::cluster::{AccessError, ErrorKind, Snapshot, Source};
use kube_rescue::diagnose::{Context, Finding, Inventory, Severity, webhooks};
use serde_json::{Value, json};

const OPA: &str = "validating-webhook.openpolicyagent.org";

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests")
}

/// Every document of a multi-document YAML file, `kind: List` flattened, empty ones skipped.
fn load_objects(text: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).expect("valid YAML");
    let mut out = Vec::new();
    for doc in docs {
        if doc.is_null() {
            continue;
        }
        if doc["kind"] == "List" {
            out.extend(doc["items"].as_array().cloned().unwrap_or_default());
        } else {
            out.push(doc);
        }
    }
    out
}

fn load(name: &str) -> Inventory {
    let text = std::fs::read_to_string(fixtures_dir().join(name)).expect("fixture");
    Inventory::from_manifests(load_objects(&text)).expect("manifests fit their schemas")
}

fn offline(inventory: &Inventory) -> Vec<Finding> {
    webhooks::findings(&Context {
        inventory,
        live: None,
        now: jiff::Timestamp::now(),
    })
}

fn live(inventory: &Inventory, snapshot: &Snapshot) -> Vec<Finding> {
    webhooks::findings(&Context {
        inventory,
        live: Some(snapshot),
        now: jiff::Timestamp::now(),
    })
}

/// `id vwc/config webhook`, as the fixture headers write it.
fn key(f: &Finding) -> String {
    let kind = match f.subject.kind.as_str() {
        "ValidatingWebhookConfiguration" => "vwc",
        "MutatingWebhookConfiguration" => "mwc",
        other => other,
    };
    format!(
        "{} {kind}/{} {}",
        f.id,
        f.subject.name,
        f.subject.webhook.as_deref().unwrap_or("")
    )
}

fn ids(findings: &[Finding]) -> BTreeSet<&str> {
    findings.iter().map(|f| f.id.as_str()).collect()
}

fn only<'a>(findings: &'a [Finding], id: &str) -> &'a Finding {
    let hits: Vec<&Finding> = findings.iter().filter(|f| f.id == id).collect();
    assert_eq!(hits.len(), 1, "one {id} in {findings:#?}");
    hits[0]
}

struct Expectations {
    raises: BTreeSet<String>,
    /// (id, optional `kind/config webhook`).
    not: Vec<(String, Option<String>)>,
}

fn expectations(text: &str) -> Expectations {
    let mut raises = BTreeSet::new();
    let mut not = Vec::new();
    let mut stated = false;
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(rest) = line.strip_prefix("# raises:") {
            stated = true;
            let rest = rest.trim();
            if rest != "nothing" {
                raises.insert(rest.to_string());
            }
        } else if let Some(rest) = line.strip_prefix("# not:") {
            let rest = rest.split('(').next().unwrap_or_default().trim();
            let mut words = rest.split_whitespace();
            let id = words.next().expect("an id").to_string();
            let subject: Vec<&str> = words.collect();
            not.push((id, (!subject.is_empty()).then(|| subject.join(" "))));
        }
    }
    assert!(stated, "the header states what it raises");
    Expectations { raises, not }
}

#[test]
fn every_fixture_raises_exactly_what_its_header_states() {
    let mut names: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 9, "{names:?}");
    for path in names {
        let text = std::fs::read_to_string(&path).expect("fixture");
        let want = expectations(&text);
        let inventory = Inventory::from_manifests(load_objects(&text))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let findings = offline(&inventory);
        let got: BTreeSet<String> = findings.iter().map(key).collect();
        assert_eq!(got, want.raises, "{}: {findings:#?}", path.display());
        for (id, subject) in &want.not {
            let hit = findings.iter().any(|f| {
                &f.id == id
                    && subject
                        .as_ref()
                        .is_none_or(|s| key(f) == format!("{id} {s}"))
            });
            assert!(!hit, "{}: must not raise {id} {subject:?}", path.display());
        }
        for f in &findings {
            assert!(!f.evidence.is_empty(), "{f:#?}");
            assert!(!f.actions.is_empty(), "{f:#?}");
            assert!(!f.title.is_empty(), "{f:#?}");
            assert_eq!(f.runbook, "webhook-hardening", "{f:#?}");
            assert_eq!(f.severity, Severity::Warning, "offline: {f:#?}");
        }
    }
}

#[test]
fn opa_tutorial_applied_as_v1_is_the_incident_configuration() {
    let findings = offline(&load("opa-tutorial-v1.yaml"));
    assert_eq!(
        ids(&findings),
        BTreeSet::from([
            "webhook-intercepts-control-plane",
            "webhook-long-timeout",
            "webhook-backend-single-replica",
            "webhook-backend-no-liveness",
            "webhook-self-deadlock",
        ])
    );
    assert!(findings.iter().all(|f| f.severity < Severity::Critical));
    for f in &findings {
        assert_eq!(f.subject.kind, "ValidatingWebhookConfiguration");
        assert_eq!(f.subject.name, "opa-validating-webhook");
        assert_eq!(f.subject.webhook.as_deref(), Some(OPA));
    }

    let intercepts = only(&findings, "webhook-intercepts-control-plane");
    let text = intercepts.evidence.join("\n");
    assert!(
        text.contains("failurePolicy unset (v1 default Fail)"),
        "{text}"
    );
    for what in [
        "Leases in kube-node-lease",
        "ConfigMaps in kube-system",
        "Pods in kube-system",
        "Nodes",
        "TokenReviews",
        "SubjectAccessReviews",
        "CertificateSigningRequests",
    ] {
        assert!(text.contains(what), "{what} in {text}");
    }
    assert!(
        text.contains("cluster-scoped, so no namespaceSelector can exclude them: Nodes, TokenReviews, SubjectAccessReviews, CertificateSigningRequests"),
        "{text}"
    );
    assert!(text.contains("openpolicyagent.org/webhook"), "{text}");
    // `*` matches no subresource: nodes/status is not listed.
    assert!(!text.contains("Node status"), "{text}");
    assert_eq!(
        intercepts.actions,
        ["exclude-system-namespaces", "fail-open"]
    );

    let timeout = only(&findings, "webhook-long-timeout");
    assert!(
        timeout
            .evidence
            .iter()
            .any(|e| e == "timeoutSeconds unset (v1 default 10)"),
        "{:?}",
        timeout.evidence
    );
    assert_eq!(timeout.actions, ["set-timeout"]);

    let replicas = only(&findings, "webhook-backend-single-replica");
    assert!(
        replicas
            .evidence
            .iter()
            .any(|e| e.contains("Deployment opa/opa: spec.replicas 1")),
        "{:?}",
        replicas.evidence
    );
    let liveness = only(&findings, "webhook-backend-no-liveness");
    let text = liveness.evidence.join("\n");
    assert!(text.contains("container opa: no livenessProbe"), "{text}");
    assert_eq!(liveness.actions[0], "restart-backend");
    let deadlock = only(&findings, "webhook-self-deadlock");
    assert!(
        deadlock.evidence[0].contains("Pod CREATE in opa"),
        "{:?}",
        deadlock.evidence
    );
    assert_eq!(deadlock.actions[0], "exclude-system-namespaces");
}

#[test]
fn labelling_the_opa_namespace_ends_the_self_deadlock_only() {
    let mut inventory = load("opa-tutorial-v1.yaml");
    let ns = inventory
        .namespaces
        .iter_mut()
        .find(|n| n.metadata.name.as_deref() == Some("opa"))
        .expect("opa namespace");
    ns.metadata.labels = Some(
        [(
            "openpolicyagent.org/webhook".to_string(),
            "ignore".to_string(),
        )]
        .into_iter()
        .collect(),
    );
    let findings = offline(&inventory);
    assert!(!ids(&findings).contains("webhook-self-deadlock"));
    assert!(ids(&findings).contains("webhook-intercepts-control-plane"));
}

#[test]
fn a_well_run_policy_engine_raises_nothing_at_warning_or_above() {
    let findings = offline(&load("gatekeeper-well-run.yaml"));
    assert!(
        findings.iter().all(|f| f.severity < Severity::Warning),
        "{findings:#?}"
    );
}

#[test]
fn v1beta1_defaults_fail_open_with_thirty_seconds() {
    let findings = offline(&load("opa-v1beta1.yaml"));
    let f = only(&findings, "webhook-long-timeout");
    assert!(
        f.evidence
            .iter()
            .any(|e| e == "timeoutSeconds unset (v1beta1 default 30)"),
        "{:?}",
        f.evidence
    );
    assert!(
        f.evidence
            .iter()
            .any(|e| e == "failurePolicy unset (v1beta1 default Ignore)"),
        "{:?}",
        f.evidence
    );
}

#[test]
fn cluster_scoped_objects_are_intercepted_whatever_the_namespace_selector() {
    let findings = offline(&load("near-miss-cluster-scoped.yaml"));
    let nodes = findings
        .iter()
        .find(|f| f.subject.webhook.as_deref() == Some("nodes.policy.example.com"))
        .expect("nodes webhook");
    let text = nodes.evidence.join("\n");
    assert!(text.contains("Node status"), "{text}");
    assert!(!text.contains("kube-system"), "{text}");
    assert_eq!(
        nodes.actions,
        ["fail-open"],
        "excluding namespaces cannot help"
    );
}

// ---------------------------------------------------------------------------------------------
// Live: webhook-blocking-writes

fn at() -> jiff::Timestamp {
    "2026-01-01T00:00:00Z".parse().expect("timestamp")
}

fn probe(namespace: &str, state: ProbeState, fail_closed: &[&str]) -> NamespaceProbe {
    NamespaceProbe {
        namespace: namespace.into(),
        started_at: Some(at()),
        deadline: Duration::from_secs(12),
        fail_closed_webhooks: fail_closed.iter().map(|s| s.to_string()).collect(),
        matching_webhooks: fail_closed.iter().map(|s| s.to_string()).collect(),
        state,
    }
}

const TIMEOUT_MESSAGE: &str = "Internal error occurred: failed calling webhook \"validating-webhook.openpolicyagent.org\": failed to call webhook: Post \"https://opa.opa.svc:443/?timeout=10s\": context deadline exceeded";

#[test]
fn a_failed_write_probe_names_the_webhook() {
    let inventory = load("opa-tutorial-v1.yaml");
    assert!(!ids(&offline(&inventory)).contains("webhook-blocking-writes"));
    let failure = kube_rescue::cluster::probe::parse_webhook_failure(TIMEOUT_MESSAGE)
        .expect("a webhook failure");
    let snapshot = Snapshot {
        write_probe: Some(ProbeReport {
            gave_up: false,
            namespaces: vec![
                probe(
                    "kube-system",
                    ProbeState::Failed {
                        took: Duration::from_millis(10_040),
                        failure,
                    },
                    &[OPA],
                ),
                probe(
                    "default",
                    ProbeState::Passed {
                        took: Duration::from_millis(20),
                    },
                    &[],
                ),
            ],
        }),
        ..Snapshot::default()
    };
    let findings = live(&inventory, &snapshot);
    let f = only(&findings, "webhook-blocking-writes");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.subject.webhook.as_deref(), Some(OPA));
    assert_eq!(f.runbook, "webhook-outage");
    assert_eq!(
        f.actions,
        [
            "fail-open",
            "exclude-system-namespaces",
            "delete",
            "restart-backend"
        ]
    );
    let text = f.evidence.join("\n");
    assert!(text.contains("kube-system failed after 10.0 s"), "{text}");
    assert!(text.contains("context deadline exceeded"), "{text}");
    assert!(
        !text.contains("create in default"),
        "the passing namespace is not evidence: {text}"
    );
}

/// A webhook that answers "no" is a policy, not an outage: its own finding, with the policy's
/// words and no fail-open (failurePolicy only governs calls that fail).
#[test]
fn a_denial_is_a_policy_not_an_outage() {
    let inventory = load("opa-tutorial-v1.yaml");
    let denied = |namespace: &str| {
        let message = format!(
            "configmaps \"kube-rescue-probe\" is forbidden: admission webhook \"{OPA}\" denied the request: [denied by system-guard] changes in {namespace} need a ticket"
        );
        probe(
            namespace,
            ProbeState::Failed {
                took: Duration::from_millis(30),
                failure: kube_rescue::cluster::probe::parse_webhook_failure(&message)
                    .expect("a denial"),
            },
            &[OPA],
        )
    };
    let snapshot = |namespaces: Vec<NamespaceProbe>| Snapshot {
        write_probe: Some(ProbeReport {
            gave_up: false,
            namespaces,
        }),
        ..Snapshot::default()
    };
    let passed = probe(
        "default",
        ProbeState::Passed {
            took: Duration::from_millis(20),
        },
        &[],
    );
    let findings = live(&inventory, &snapshot(vec![denied("kube-system"), passed]));
    assert!(
        !ids(&findings).contains("webhook-blocking-writes"),
        "{findings:#?}"
    );
    let f = only(&findings, "writes-denied-by-policy");
    // The control plane's own namespace: critical, and the one change that helps is keeping
    // the system namespaces out of the webhook's reach.
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.subject.webhook.as_deref(), Some(OPA));
    assert_eq!(f.runbook, "policy-denial");
    assert_eq!(f.actions, ["exclude-system-namespaces"]);
    let text = f.evidence.join("\n");
    assert!(
        text.contains("[denied by system-guard] changes in kube-system need a ticket"),
        "{text}"
    );
    assert!(text.contains("failurePolicy does not apply"), "{text}");
    assert!(!text.contains("fail-open"), "{text}");
    // Elsewhere: a warning, with nothing to change from here.
    let findings = live(&inventory, &snapshot(vec![denied("default")]));
    let f = only(&findings, "writes-denied-by-policy");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.actions.is_empty(), "{:?}", f.actions);
}

#[test]
fn a_write_waiting_past_the_timeout_of_a_matching_fail_closed_webhook() {
    let inventory = load("opa-tutorial-v1.yaml");
    let waiting = |secs| Snapshot {
        write_probe: Some(ProbeReport {
            gave_up: false,
            namespaces: vec![probe(
                "kube-system",
                ProbeState::Waiting {
                    waited: Duration::from_secs(secs),
                },
                &[OPA],
            )],
        }),
        ..Snapshot::default()
    };
    assert!(!ids(&live(&inventory, &waiting(4))).contains("webhook-blocking-writes"));
    let findings = live(&inventory, &waiting(11));
    let f = only(&findings, "webhook-blocking-writes");
    assert!(f.title.contains("stall"), "{}", f.title);
    assert!(
        f.evidence[0].contains("no answer for 11 s"),
        "{:?}",
        f.evidence
    );
    // A fail-open webhook that matches does not block: the same wait names nothing.
    let v1beta1 = load("opa-v1beta1.yaml");
    assert!(!ids(&live(&v1beta1, &waiting(40))).contains("webhook-blocking-writes"));
}

fn event(reason: &str, kind: &str, ns: &str, name: &str, count: i32, message: &str) -> Event {
    serde_json::from_value(json!({
        "metadata": {"name": format!("{name}.1"), "namespace": ns},
        "type": "Warning",
        "reason": reason,
        "count": count,
        "message": message,
        "involvedObject": {"kind": kind, "namespace": ns, "name": name},
    }))
    .expect("event")
}

#[test]
fn warning_events_and_metrics_name_the_webhook() {
    let inventory = load("opa-tutorial-v1.yaml");
    let message = format!("Error creating: {TIMEOUT_MESSAGE}");
    let snapshot = Snapshot {
        warning_events: Source::fresh(
            vec![
                event(
                    "FailedCreate",
                    "ReplicaSet",
                    "kube-system",
                    "coredns-5d78c9869d",
                    7,
                    &message,
                ),
                event(
                    "FailedCreate",
                    "ReplicaSet",
                    "default",
                    "web-7c9f",
                    3,
                    &message,
                ),
                event(
                    "BackOff",
                    "Pod",
                    "default",
                    "web-1",
                    40,
                    "Back-off restarting failed container",
                ),
            ],
            at(),
            Duration::from_millis(30),
        ),
        ..Snapshot::default()
    };
    let findings = live(&inventory, &snapshot);
    let f = only(&findings, "webhook-blocking-writes");
    let text = f.evidence.join("\n");
    assert!(
        text.contains("10 Warning events (FailedCreate) on 2 objects"),
        "{text}"
    );
    assert!(
        text.contains("ReplicaSet kube-system/coredns-5d78c9869d"),
        "{text}"
    );
    assert!(text.contains("context deadline exceeded"), "{text}");

    let mut metrics = ApiserverMetrics::default();
    metrics.webhooks.insert(
        OPA.into(),
        WebhookMetrics {
            requests: 52.0,
            rejections: 48.0,
            calling_errors: 48.0,
            ..WebhookMetrics::default()
        },
    );
    let snapshot = Snapshot {
        metrics: Source::fresh(metrics, at(), Duration::from_millis(40)),
        ..Snapshot::default()
    };
    let findings = live(&inventory, &snapshot);
    let f = only(&findings, "webhook-blocking-writes");
    assert!(
        f.evidence[0].contains("error_type=\"calling_webhook_error\"} = 48 (of 52 calls)"),
        "{:?}",
        f.evidence
    );
    // Denials alone (a policy doing its job) are not a blocked write path.
    let mut denials = ApiserverMetrics::default();
    denials.webhooks.insert(
        OPA.into(),
        WebhookMetrics {
            requests: 10.0,
            rejections: 10.0,
            ..WebhookMetrics::default()
        },
    );
    let snapshot = Snapshot {
        metrics: Source::fresh(denials, at(), Duration::from_millis(40)),
        ..Snapshot::default()
    };
    assert!(!ids(&live(&inventory, &snapshot)).contains("webhook-blocking-writes"));
}

// ---------------------------------------------------------------------------------------------
// webhook-backend-unavailable

fn opa_service() -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "opa", "namespace": "opa"},
        "spec": {"selector": {"app": "opa"}, "ports": [{"port": 443, "targetPort": 443}]},
    }))
    .expect("service")
}

fn slice(ready: &[bool]) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": "opa-abcde", "namespace": "opa",
                     "labels": {"kubernetes.io/service-name": "opa"}},
        "addressType": "IPv4",
        "endpoints": ready.iter().enumerate().map(|(i, r)| json!({
            "addresses": [format!("10.4.0.{i}")], "conditions": {"ready": r}
        })).collect::<Vec<_>>(),
    }))
    .expect("slice")
}

fn backend(service: Source<Service>, slices: Vec<EndpointSlice>, read: bool) -> WebhookBackend {
    WebhookBackend {
        namespace: "opa".into(),
        name: "opa".into(),
        webhooks: vec![OPA.into()],
        service,
        endpoint_slices: Source::fresh(slices, at(), Duration::ZERO),
        pods: Source::fresh(Vec::new(), at(), Duration::ZERO),
        deployments: Source::default(),
        read_at: read.then(at),
    }
}

#[test]
fn no_ready_endpoints_is_critical_for_fail_and_a_warning_for_ignore() {
    let snapshot = Snapshot {
        webhook_backends: vec![backend(
            Source::fresh(opa_service(), at(), Duration::ZERO),
            vec![slice(&[false])],
            true,
        )],
        ..Snapshot::default()
    };
    let findings = live(&load("opa-tutorial-v1.yaml"), &snapshot);
    let f = only(&findings, "webhook-backend-unavailable");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.runbook, "webhook-outage");
    assert_eq!(f.actions, ["restart-backend", "fail-open"]);
    let text = f.evidence.join("\n");
    assert!(
        text.contains("Service opa/opa has no ready endpoints"),
        "{text}"
    );
    assert!(
        text.contains("no pods match the Service's selector app=opa"),
        "{text}"
    );

    let findings = live(&load("opa-v1beta1.yaml"), &snapshot);
    assert_eq!(
        only(&findings, "webhook-backend-unavailable").severity,
        Severity::Warning
    );

    // A ready endpoint (and a running pod) is fine.
    let mut healthy = snapshot.clone();
    healthy.webhook_backends[0].endpoint_slices =
        Source::fresh(vec![slice(&[false, true])], at(), Duration::ZERO);
    healthy.webhook_backends[0].pods = Source::fresh(
        vec![
            serde_json::from_value(json!({
                "metadata": {"name": "opa-1", "namespace": "opa", "labels": {"app": "opa"}},
                "status": {"phase": "Running"},
            }))
            .expect("pod"),
        ],
        at(),
        Duration::ZERO,
    );
    assert!(
        !ids(&live(&load("opa-tutorial-v1.yaml"), &healthy))
            .contains("webhook-backend-unavailable")
    );
}

#[test]
fn a_missing_service_is_named_live_and_unknown_offline() {
    let missing = Source::failed(
        AccessError {
            kind: ErrorKind::NotFound,
            message: "services \"opa\" not found".into(),
            code: Some(404),
        },
        Duration::from_millis(5),
        None,
        at(),
    );
    let snapshot = Snapshot {
        webhook_backends: vec![backend(missing, Vec::new(), true)],
        ..Snapshot::default()
    };
    // The live inventory holds no Service for it.
    let mut inventory = load("opa-tutorial-v1.yaml");
    inventory.services.clear();
    let findings = live(&inventory, &snapshot);
    let f = only(&findings, "webhook-backend-unavailable");
    assert_eq!(f.severity, Severity::Critical);
    assert!(
        f.evidence[0].contains("Service opa/opa not found"),
        "{:?}",
        f.evidence
    );
    assert_eq!(f.actions, ["fail-open", "delete"]);

    // Offline, a Service absent from the input is unknown, not missing.
    assert!(!ids(&offline(&inventory)).contains("webhook-backend-unavailable"));

    // Live, a backend not read yet says nothing.
    let mut unread = snapshot.clone();
    unread.webhook_backends[0].read_at = None;
    assert!(!ids(&live(&inventory, &unread)).contains("webhook-backend-unavailable"));
    unread.webhook_backends.clear();
    assert!(!ids(&live(&inventory, &unread)).contains("webhook-backend-unavailable"));
}

#[test]
fn offline_endpoint_slices_with_nothing_ready_are_unavailable() {
    let mut inventory = load("opa-tutorial-v1.yaml");
    inventory.endpoint_slices.push(slice(&[false, false]));
    let findings = offline(&inventory);
    let f = only(&findings, "webhook-backend-unavailable");
    assert_eq!(f.severity, Severity::Critical);
    assert!(
        f.evidence[0].contains("2 endpoints, 0 ready"),
        "{:?}",
        f.evidence
    );
    inventory.endpoint_slices = vec![slice(&[false, true])];
    assert!(!ids(&offline(&inventory)).contains("webhook-backend-unavailable"));
}

/// The shipped outage as the screen saw it (tests/fixtures/snapshots), with its webhook's
/// failurePolicy changed, and the write probe passed or taken out (what the events and the
/// apiserver's counters say alone).
fn outage_snapshot(policy: &str, probe_passed: bool) -> Snapshot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/snapshots/opa-webhook-outage-not-ready.json");
    let mut snapshot: Snapshot =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for config in snapshot.validating_webhooks.value.iter_mut().flatten() {
        for hook in config.webhooks.iter_mut().flatten() {
            if hook.name == OPA {
                hook.failure_policy = Some(policy.into());
            }
        }
    }
    snapshot.write_probe = None;
    if probe_passed {
        snapshot.write_probe = Some(ProbeReport {
            gave_up: false,
            namespaces: vec![NamespaceProbe {
                namespace: "kube-system".into(),
                started_at: snapshot.taken_at,
                deadline: Duration::from_secs(12),
                fail_closed_webhooks: if policy == "Fail" {
                    vec![OPA.into()]
                } else {
                    vec![]
                },
                matching_webhooks: vec![OPA.into()],
                state: ProbeState::Passed {
                    took: Duration::from_millis(3),
                },
            }],
        });
    }
    snapshot
}

fn blocking(snapshot: &Snapshot) -> bool {
    let inventory = Inventory::from_snapshot(snapshot);
    live(&inventory, snapshot)
        .iter()
        .any(|f| f.id == webhooks::BLOCKING_WRITES)
}

#[test]
fn old_events_do_not_keep_blocking_writes_raised_once_writes_pass() {
    // As seen in the outage: Warning events and the apiserver's counters name the webhook.
    assert!(blocking(&outage_snapshot("Fail", false)));
    // After fail-open, a failed call no longer fails a write: the events are history.
    assert!(!blocking(&outage_snapshot("Ignore", false)));
    // A probe write that the fail-closed webhook intercepts passed: the backend answers now.
    assert!(!blocking(&outage_snapshot("Fail", true)));
}
