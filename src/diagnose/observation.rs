//! What the refresh could not see: apiserver-credentials-rejected (reads answered 401, or the
//! auth plugin failed), apiserver-overloaded (reads shed with 429), observation-incomplete
//! (sources answered 403, something that is not Kubernetes, too much, or nothing). A source
//! that could not be read is a finding, never silence: a verdict of "no findings" is only
//! given on a complete observation. Pure: reads the Snapshot, nothing else.

use std::collections::BTreeSet;

use super::{Context, Finding, Severity, Subject};
use crate::cluster::error::{AccessError, ErrorKind, secs};
use crate::cluster::probe::{ProbeState, WriteFailure};
use crate::cluster::snapshot::{Credential, FIXED_SOURCES, Snapshot, SourceState};

/// Webhook findings: every one of them needs the webhook configurations.
const WEBHOOK_FINDINGS: &[&str] = &[
    "webhook-blocking-writes",
    "webhook-backend-unavailable",
    "webhook-intercepts-control-plane",
    "webhook-long-timeout",
    "webhook-backend-single-replica",
    "webhook-backend-no-liveness",
    "webhook-self-deadlock",
    "writes-denied-by-policy",
];

/// The findings that cannot be raised while the source named `source` (a name from
/// [`Snapshot::source_states`]) is not read. Empty: no rule needs it (the screen shows it).
pub fn hidden_by(source: &str) -> &'static [&'static str] {
    let kind = source.split_once(' ').map_or(source, |(kind, _)| kind);
    match (kind, source.contains(' ')) {
        ("livez" | "readyz", false) => &["apiserver-not-ready"],
        ("metrics", false) => &["webhook-blocking-writes", "apiserver-overloaded"],
        ("validatingwebhookconfigurations" | "mutatingwebhookconfigurations", false) => {
            WEBHOOK_FINDINGS
        }
        ("namespaces", false) => &["webhook-intercepts-control-plane", "webhook-self-deadlock"],
        ("nodes", false) => &[
            "nodes-not-ready",
            "nodes-repair-loop",
            "node-heartbeats-stale",
        ],
        ("leases", false) => &["node-heartbeats-stale"],
        ("events", false) => &["webhook-blocking-writes"],
        ("node", true) => &["nodes-repair-loop"],
        ("apiservices", false) => &["aggregated-api-unavailable"],
        ("service" | "endpointslices" | "pods", true) => &["webhook-backend-unavailable"],
        ("deployments", true) => &[
            "webhook-backend-single-replica",
            "webhook-backend-no-liveness",
        ],
        ("write", true) => &[
            "webhook-blocking-writes",
            "writes-denied-by-policy",
            "apiserver-slow",
        ],
        _ => &[],
    }
}

/// Sources no finding needs that the screen shows (the apiserver's own endpoints): a 403 on
/// them is still named, so that the read-only role is seen to be complete.
fn shown_only(source: &str) -> bool {
    matches!(source, "endpoints/kubernetes" | "endpointslices/kubernetes")
}

/// The health endpoints: every apiserver serves them to anyone, so they say nothing about
/// whether the rest could be observed.
fn public(source: &str) -> bool {
    matches!(source, "version" | "livez" | "readyz")
}

/// What one refresh could and could not observe.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    /// Reads answered 401, or failed in the auth plugin: (source, error).
    pub rejected: Vec<(String, AccessError)>,
    /// Cluster-wide reads answered 429.
    pub shed: Vec<(String, AccessError)>,
    /// Sources a rule needs that could not be read, for a reason no other finding names.
    pub blind: Vec<Blind>,
    /// Cluster-wide reads in all.
    pub fixed: usize,
    /// Reads of this refresh in all, webhook backends' included.
    pub reads: usize,
    /// Whether every cluster-wide source a rule needs is unobserved.
    pub nothing_observed: bool,
}

/// A source that could not be read, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Blind {
    pub source: String,
    /// None: a webhook backend that was never read.
    pub error: Option<AccessError>,
}

impl Blind {
    /// The reason in a few words: `403`, `not Kubernetes`, `too large`, `timeout`.
    fn reason(&self) -> String {
        let Some(e) = &self.error else {
            return "not read".into();
        };
        match e.kind {
            ErrorKind::Forbidden => "403".into(),
            ErrorKind::BadResponse => "not a Kubernetes answer".into(),
            ErrorKind::TooLarge => "answer too large".into(),
            ErrorKind::Timeout => "no answer".into(),
            ErrorKind::ServerError => e.code.map_or("5xx".into(), |c| c.to_string()),
            ErrorKind::NotFound => "404".into(),
            ErrorKind::Refused | ErrorKind::Disconnected => "connection lost".into(),
            _ => e
                .code
                .map_or_else(|| format!("{:?}", e.kind), |c| c.to_string()),
        }
    }
}

/// Whether a failed source counts as blind: a failure no other finding explains, on a
/// source a rule needs. A transient failure (timeout, dropped connection, 5xx) of a source
/// whose earlier value still shows is staleness, which the screen marks, not blindness.
fn is_blind(state: &SourceState<'_>, fixed: bool, unreachable: bool) -> bool {
    if hidden_by(&state.name).is_empty() && !shown_only(&state.name) {
        return false;
    }
    let Some(error) = state.error else {
        return false;
    };
    // Rejected credentials are their own finding; so are cluster-wide reads shed with 429
    // (a webhook backend's read shed is a blind spot of its own).
    if error.kind.rejects_credentials() || (error.kind == ErrorKind::TooManyRequests && fixed) {
        return false;
    }
    if error.kind.is_unreachable() || error.kind == ErrorKind::ServerError {
        return !unreachable && !state.has_value;
    }
    // A webhook's Service or its pods missing is what webhook-backend-unavailable reports;
    // the apiserver's own endpoints missing is what the screen shows.
    if error.kind == ErrorKind::NotFound && (state.backend.is_some() || shown_only(&state.name)) {
        return false;
    }
    true
}

impl Observation {
    /// Reads the sources of a snapshot. `unreachable`: apiserver-unreachable is raised, so
    /// what nothing answered is its business.
    pub fn of(snapshot: &Snapshot, unreachable: bool) -> Observation {
        let states = snapshot.source_states();
        let mut out = Observation {
            fixed: FIXED_SOURCES.min(states.len()),
            reads: states.len(),
            ..Observation::default()
        };
        for (i, state) in states.iter().enumerate() {
            if let Some(error) = state.error {
                if error.kind.rejects_credentials() {
                    out.rejected.push((state.name.clone(), error.clone()));
                } else if error.kind == ErrorKind::TooManyRequests && i < FIXED_SOURCES {
                    out.shed.push((state.name.clone(), error.clone()));
                }
            }
            if is_blind(state, i < FIXED_SOURCES, unreachable) {
                out.blind.push(Blind {
                    source: state.name.clone(),
                    error: state.error.cloned(),
                });
            } else if state.unread
                && state.error.is_none()
                && !snapshot.backends_take_turns
                && !hidden_by(&state.name).is_empty()
            {
                out.blind.push(Blind {
                    source: state.name.clone(),
                    error: None,
                });
            }
        }
        if let Some(probe) = &snapshot.write_probe {
            if probe.gave_up && probe.cut_by_restart() {
                out.blind.push(Blind {
                    source: "write probe".into(),
                    error: Some(AccessError::new(
                        ErrorKind::Disconnected,
                        format!(
                            "no verdict: the apiserver restarted during the probe (every try for {} s was cut)",
                            crate::cluster::probe::RESTART_RETRY_FOR.as_secs()
                        ),
                    )),
                });
            }
            for n in &probe.namespaces {
                let ProbeState::Failed {
                    failure: WriteFailure::Access { error },
                    ..
                } = &n.state
                else {
                    continue;
                };
                let source = format!("write probe in {}", n.namespace);
                if error.kind.rejects_credentials() {
                    out.rejected.push((source, error.clone()));
                } else if !error.kind.is_unreachable() {
                    // Refused, shed or not understood: whether writes pass is not known. (A
                    // probe with no answer is the webhook rules' and the apiserver's business.)
                    out.blind.push(Blind {
                        source,
                        error: Some(error.clone()),
                    });
                }
            }
        }
        // "No rule could run": every source a rule needs is unobserved, the health endpoints
        // aside (any apiserver answers them, even to a user RBAC allows nothing).
        let needed: Vec<&SourceState<'_>> = states[..out.fixed]
            .iter()
            .filter(|s| !hidden_by(&s.name).is_empty() && !public(&s.name))
            .collect();
        out.nothing_observed = !needed.is_empty() && needed.iter().all(|s| s.error.is_some());
        out
    }

    /// One short note for the screen's header: `credentials rejected (401)`, `shedding load
    /// (429)`, `blind: events, leases (403)`.
    pub fn note(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some((_, e)) = self.rejected.first() {
            parts.push(match e.kind {
                ErrorKind::AuthPlugin => "credentials failed (auth plugin)".to_string(),
                _ => "credentials rejected (401)".to_string(),
            });
        }
        if !self.shed.is_empty() {
            parts.push(format!(
                "shedding load (429 on {} of {})",
                self.shed.len(),
                self.fixed
            ));
        }
        if !self.blind.is_empty() {
            // Grouped by reason, so that "events, leases (403)" reads as one.
            let mut reasons: Vec<(String, Vec<String>)> = Vec::new();
            for b in &self.blind {
                let reason = b.reason();
                let name = short_name(&b.source);
                match reasons.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, names)) => {
                        if !names.contains(&name) {
                            names.push(name)
                        }
                    }
                    None => reasons.push((reason, vec![name])),
                }
            }
            let text = reasons
                .iter()
                .map(|(r, names)| format!("{} ({r})", names.join(", ")))
                .collect::<Vec<_>>()
                .join("; ");
            parts.push(format!("blind: {text}"));
        }
        (!parts.is_empty()).then(|| parts.join(" · "))
    }
}

/// A source's name for a short note: a webhook backend's sources as `backend NS/NAME`.
fn short_name(source: &str) -> String {
    if source.starts_with("write probe") {
        return "write probe".into();
    }
    match source.split_once(' ') {
        Some(("node", _)) => "node events".into(),
        Some((_, id)) => format!("backend {id}"),
        None => source.to_string(),
    }
}

pub fn findings(context: &Context<'_>, unreachable: bool) -> Vec<Finding> {
    let Some(snapshot) = context.live else {
        return Vec::new();
    };
    let observation = Observation::of(snapshot, unreachable);
    let subject = super::apiserver::apiserver_subject(snapshot);
    let mut out = Vec::new();
    out.extend(credentials_rejected(snapshot, &observation, &subject));
    out.extend(overloaded(snapshot, &observation, &subject));
    out.extend(incomplete(&observation, &subject));
    out
}

fn credentials_rejected(
    snapshot: &Snapshot,
    observation: &Observation,
    subject: &Subject,
) -> Option<Finding> {
    let (_, first) = observation.rejected.first()?;
    let plugin_failed = observation
        .rejected
        .iter()
        .any(|(_, e)| e.kind == ErrorKind::AuthPlugin);
    let answered_401 = observation
        .rejected
        .iter()
        .filter(|(_, e)| e.kind == ErrorKind::Unauthorized)
        .count();
    let mut evidence = Vec::new();
    if answered_401 > 0 {
        evidence.push(format!(
            "{answered_401} of {} reads answered 401 Unauthorized",
            observation.reads
        ));
    }
    evidence.push(first.message.clone());
    let credential = &snapshot.credential;
    evidence.push(describe(credential, snapshot.taken_at));
    evidence.push(renewal(credential));
    let title = if plugin_failed {
        "The credentials could not be obtained: the auth plugin fails".to_string()
    } else {
        "The apiserver rejects the credentials (401 Unauthorized)".to_string()
    };
    Some(Finding {
        id: "apiserver-credentials-rejected".into(),
        severity: Severity::Critical,
        subject: subject.clone(),
        title,
        evidence,
        runbook: "apiserver-credentials".into(),
        actions: Vec::new(),
        caused_by: None,
    })
}

/// Which credential, in words that reveal nothing of it.
fn describe(credential: &Credential, now: Option<jiff::Timestamp>) -> String {
    let user = if credential.user.is_empty() {
        "the kubeconfig's user".to_string()
    } else {
        format!("user \"{}\"", credential.user)
    };
    match credential.kind.as_str() {
        "client-certificate" => match (credential.certificate_expires, now) {
            (Some(at), Some(now)) if at < now => format!(
                "credential: {user}'s client certificate, which EXPIRED at {}",
                super::apiserver::time(at)
            ),
            (Some(at), _) => format!(
                "credential: {user}'s client certificate (valid until {})",
                super::apiserver::time(at)
            ),
            _ => format!("credential: {user}'s client certificate"),
        },
        "exec" => format!(
            "credential: a token from the exec plugin {}",
            credential.plugin.as_deref().unwrap_or("(unnamed)")
        ),
        "auth-provider" => format!(
            "credential: a token from the auth provider {}",
            credential.plugin.as_deref().unwrap_or("(unnamed)")
        ),
        "token" => format!("credential: {user}'s bearer token in the kubeconfig"),
        "token-file" => format!("credential: {user}'s bearer token file"),
        "basic" => format!("credential: {user}'s username and password"),
        "none" => format!("credential: none ({user} has no credentials)"),
        _ => format!("credential: {user}'s"),
    }
}

/// What to do to get credentials the apiserver accepts.
fn renewal(credential: &Credential) -> String {
    let plugin = credential.plugin.as_deref().unwrap_or("");
    let how = if plugin.contains("gke-gcloud-auth-plugin") || plugin == "gcp" {
        "log in again (`gcloud auth login`) and refresh the kubeconfig: `gcloud container clusters get-credentials CLUSTER --region REGION`".to_string()
    } else if plugin == "aws" || plugin.contains("aws-iam-authenticator") {
        "check `aws sts get-caller-identity`, then `aws eks update-kubeconfig --name CLUSTER --region REGION`".to_string()
    } else if plugin.contains("kubelogin") || plugin == "azure" {
        "log in again (`az login`), then `az aks get-credentials --resource-group GROUP --name CLUSTER`".to_string()
    } else {
        match credential.kind.as_str() {
            "client-certificate" => "renew the client certificate (`kubeadm certs renew admin.conf` on a kubeadm cluster, or ask for a new kubeconfig)".to_string(),
            "exec" | "auth-provider" => {
                format!("run {plugin} by hand to see why it fails, log in again, and refresh the kubeconfig")
            }
            "token" | "token-file" => "the token is expired or revoked: get a new one (e.g. `kubectl create token NAME -n NS` with working credentials) and update the kubeconfig".to_string(),
            _ => "get credentials this cluster accepts and update the kubeconfig".to_string(),
        }
    };
    format!("what to do: {how}; until then kube-rescue sees nothing of the cluster")
}

fn overloaded(
    snapshot: &Snapshot,
    observation: &Observation,
    subject: &Subject,
) -> Option<Finding> {
    if observation.shed.is_empty() {
        return None;
    }
    let shed = observation.shed.len();
    let severity = if shed * 2 > observation.fixed {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut first = format!(
        "{shed} of {} cluster-wide reads answered 429 Too Many Requests",
        observation.fixed
    );
    if let Some(wait) = snapshot.retry_after {
        first.push_str(&format!(" (Retry-After {})", secs(wait)));
    }
    let mut evidence = vec![first];
    evidence.push(format!(
        "shed: {}",
        observation
            .shed
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if let Some(metrics) = snapshot.metrics.value.as_ref() {
        let mut rejected: Vec<(&String, &f64)> = metrics
            .flowcontrol_rejected
            .iter()
            .filter(|(_, n)| **n > 0.0)
            .collect();
        rejected.sort_by(|a, b| b.1.total_cmp(a.1));
        if !rejected.is_empty() {
            evidence.push(format!(
                "API Priority and Fairness rejections (apiserver_flowcontrol_rejected_requests_total, priority level and reason): {}",
                rejected
                    .iter()
                    .take(5)
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    evidence.push(if severity == Severity::Critical {
        "the screen backs off while most reads are shed (what it shows may be old)".into()
    } else {
        "what could not be read is shown as it was last read".into()
    });
    Some(Finding {
        id: "apiserver-overloaded".into(),
        severity,
        subject: subject.clone(),
        title: format!(
            "The apiserver sheds load: {shed} of {} reads refused with 429",
            observation.fixed
        ),
        evidence,
        runbook: "apiserver-overloaded".into(),
        actions: Vec::new(),
        caused_by: None,
    })
}

fn incomplete(observation: &Observation, subject: &Subject) -> Option<Finding> {
    if observation.blind.is_empty() {
        return None;
    }
    let severity = if observation.nothing_observed {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut hidden: BTreeSet<&str> = BTreeSet::new();
    let mut evidence = Vec::new();
    for blind in &observation.blind {
        let hides = hidden_by(&blind.source);
        hidden.extend(hides.iter().copied());
        let why = match &blind.error {
            Some(e) => e.message.clone(),
            None => {
                "not read: kube-rescue check reads a limited number of webhook Services".to_string()
            }
        };
        let what = if hides.is_empty() {
            "no finding needs it (the screen shows it)".to_string()
        } else {
            format!("cannot raise {}", hides.join(", "))
        };
        let mut line = format!("{}: {why}; {what}", blind.source);
        let forbidden = blind
            .error
            .as_ref()
            .is_some_and(|e| e.kind == ErrorKind::Forbidden);
        if forbidden && let Some(namespace) = blind.source.strip_prefix("write probe in ") {
            line.push_str(&format!(
                "; missing RBAC rule (in namespace {namespace}): {{apiGroups: [\"\"], resources: [\"configmaps\"], verbs: [\"create\"]}} (in `kube-rescue rbac --responder`; or run with --read-only, which sends no probe)"
            ));
        } else if let Some(rule) = forbidden
            .then(|| crate::cluster::rbac::rule_for_source(&blind.source))
            .flatten()
        {
            line.push_str(&format!(
                "; missing RBAC rule ({}): {}",
                rule.scope(),
                rule.yaml()
            ));
        }
        evidence.push(line);
    }
    if observation.blind.iter().any(|b| {
        b.error
            .as_ref()
            .is_some_and(|e| e.kind == ErrorKind::Forbidden)
    }) {
        evidence.push(
            "the read-only ClusterRole kube-rescue needs: `kube-rescue rbac` (apply it and bind it to your on-call group)"
                .into(),
        );
    }
    let names: Vec<String> = observation
        .blind
        .iter()
        .map(|b| short_name(&b.source))
        .fold(Vec::new(), |mut acc, n| {
            if !acc.contains(&n) {
                acc.push(n);
            }
            acc
        });
    let title = if observation.nothing_observed {
        "Nothing could be observed: no finding can be trusted, including their absence".to_string()
    } else {
        format!(
            "Blind spots: {} could not be read, so {} finding kinds cannot be raised",
            names.join(", "),
            hidden.len()
        )
    };
    Some(Finding {
        id: "observation-incomplete".into(),
        severity,
        subject: subject.clone(),
        title,
        evidence,
        runbook: "observation-incomplete".into(),
        actions: Vec::new(),
        caused_by: None,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jiff::Timestamp;

    use super::*;
    use crate::cluster::snapshot::{Health, Source, WebhookBackend};
    use crate::diagnose::Inventory;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn ok<T: Clone>(value: T) -> Source<T> {
        Source::fresh(value, at(0), Duration::from_millis(3))
    }

    /// A snapshot where every cluster-wide source was read.
    fn complete() -> Snapshot {
        Snapshot {
            server: "https://10.0.0.1".into(),
            apiserver_version: ok(Default::default()),
            livez: ok(Health::parse(200, "[+]ping ok\nlivez check passed\n")),
            readyz: ok(Health::parse(200, "[+]ping ok\nreadyz check passed\n")),
            metrics: ok(Default::default()),
            validating_webhooks: ok(Vec::new()),
            mutating_webhooks: ok(Vec::new()),
            namespaces: ok(Vec::new()),
            nodes: ok(Vec::new()),
            node_leases: ok(Vec::new()),
            warning_events: ok(Vec::new()),
            node_events: ok(Vec::new()),
            api_services: ok(Vec::new()),
            control_plane_endpoints: ok(Default::default()),
            control_plane_endpoint_slices: ok(Vec::new()),
            ..Snapshot::default()
        }
    }

    fn run(snapshot: &Snapshot) -> Vec<Finding> {
        let inventory = Inventory::default();
        findings(
            &Context {
                inventory: &inventory,
                live: Some(snapshot),
                now: at(0),
            },
            false,
        )
    }

    fn forbidden(what: &str) -> AccessError {
        AccessError::from_status(what, 403, "Forbidden", &format!("{what} is forbidden"))
    }

    #[test]
    fn every_source_is_needed_by_a_rule_or_shown() {
        // A source renamed or added without a place here would never be a blind spot.
        let mut s = complete();
        s.webhook_backends.push(WebhookBackend {
            namespace: "opa".into(),
            name: "opa".into(),
            ..WebhookBackend::default()
        });
        for state in s.source_states() {
            assert!(
                !hidden_by(&state.name).is_empty()
                    || shown_only(&state.name)
                    || state.name == "version",
                "{} is in no table",
                state.name
            );
        }
        assert!(!hidden_by("write probe in kube-system").is_empty());
    }

    #[test]
    fn a_probe_cut_by_restarts_until_it_gave_up_is_no_verdict_and_says_so() {
        use crate::cluster::probe::{NamespaceProbe, ProbeReport};
        let mut report = ProbeReport {
            namespaces: vec![NamespaceProbe {
                namespace: "default".into(),
                started_at: None,
                deadline: Duration::from_secs(12),
                fail_closed_webhooks: Vec::new(),
                matching_webhooks: Vec::new(),
                state: ProbeState::Failed {
                    took: Duration::from_millis(3),
                    failure: WriteFailure::Access {
                        error: AccessError::new(ErrorKind::Refused, "connection refused"),
                    },
                },
            }],
            gave_up: false,
        };
        // One cut try is the apiserver's business (it is tried again), not a blind spot...
        let mut s = complete();
        s.write_probe = Some(report.clone());
        assert_eq!(run(&s), []);
        // ...but a probe that never got through is no verdict on writes: never an all-clear.
        report.gave_up = true;
        s.write_probe = Some(report);
        let f = run(&s);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].id, "observation-incomplete");
        assert!(
            f[0].evidence[0].starts_with(
                "write probe: no verdict: the apiserver restarted during the probe (every try for 20 s was cut); cannot raise webhook-blocking-writes"
            ),
            "{:?}",
            f[0].evidence
        );
    }

    #[test]
    fn a_complete_observation_raises_nothing() {
        assert_eq!(run(&complete()), []);
        assert_eq!(Observation::of(&complete(), false).note(), None);
    }

    #[test]
    fn a_forbidden_source_is_a_blind_spot_naming_what_it_hides() {
        let mut s = complete();
        s.warning_events = Source::failed(forbidden("list events"), Duration::ZERO, None, at(0));
        s.node_leases = Source::failed(forbidden("list leases"), Duration::ZERO, None, at(0));
        let f = run(&s);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].id, "observation-incomplete");
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[0].title.contains("leases, events"), "{}", f[0].title);
        let events = f[0]
            .evidence
            .iter()
            .find(|e| e.starts_with("events:"))
            .expect("events named");
        assert!(
            events.contains("cannot raise webhook-blocking-writes"),
            "{events}"
        );
        assert!(
            events.contains(r#"missing RBAC rule (cluster-wide): {apiGroups: [""], resources: ["events"], verbs: ["list"]}"#),
            "{events}"
        );
        assert_eq!(
            Observation::of(&s, false).note().as_deref(),
            Some("blind: leases, events (403)")
        );
    }

    #[test]
    fn sources_no_rule_needs_are_not_blind_spots() {
        let mut s = complete();
        s.apiserver_version =
            Source::failed(forbidden("get /version"), Duration::ZERO, None, at(0));
        assert_eq!(run(&s), []);
    }

    #[test]
    fn a_stale_value_after_a_timeout_is_staleness_but_nothing_at_all_is_blind() {
        let mut s = complete();
        let timeout = AccessError::timeout("list nodes", Duration::from_secs(3));
        s.nodes = Source::failed(
            timeout.clone(),
            Duration::from_secs(3),
            Some(&ok(Vec::new())),
            at(9),
        );
        assert_eq!(run(&s), []);
        s.nodes = Source::failed(timeout, Duration::from_secs(3), None, at(9));
        let f = run(&s);
        assert_eq!(f[0].id, "observation-incomplete");
        // While the apiserver is unreachable, that finding says it all.
        let inventory = Inventory::default();
        let context = Context {
            inventory: &inventory,
            live: Some(&s),
            now: at(0),
        };
        assert_eq!(findings(&context, true), []);
    }

    #[test]
    fn nothing_observed_is_critical() {
        let mut s = Snapshot::default();
        let e = AccessError::new(ErrorKind::BadResponse, "the answer is not JSON");
        s.apiserver_version.error = Some(e.clone());
        s.livez.error = Some(e.clone());
        s.readyz.error = Some(e.clone());
        s.metrics.error = Some(e.clone());
        s.validating_webhooks.error = Some(e.clone());
        s.mutating_webhooks.error = Some(e.clone());
        s.namespaces.error = Some(e.clone());
        s.nodes.error = Some(e.clone());
        s.node_leases.error = Some(e.clone());
        s.warning_events.error = Some(e.clone());
        s.node_events.error = Some(e.clone());
        s.api_services.error = Some(e.clone());
        s.control_plane_endpoints.error = Some(e.clone());
        s.control_plane_endpoint_slices.error = Some(e);
        let f = run(&s);
        assert_eq!(f[0].id, "observation-incomplete");
        assert_eq!(f[0].severity, Severity::Critical);
        assert!(
            f[0].title.starts_with("Nothing could be observed"),
            "{}",
            f[0].title
        );
    }

    #[test]
    fn a_missing_webhook_service_is_a_finding_elsewhere_but_an_unread_one_is_blind() {
        let missing = AccessError::from_status("get service opa/opa", 404, "NotFound", "not found");
        let mut s = complete();
        s.webhook_backends.push(WebhookBackend {
            namespace: "opa".into(),
            name: "opa".into(),
            service: Source::failed(missing, Duration::ZERO, None, at(0)),
            endpoint_slices: ok(Vec::new()),
            pods: ok(Vec::new()),
            deployments: ok(Vec::new()),
            read_at: Some(at(0)),
            ..WebhookBackend::default()
        });
        assert_eq!(run(&s), []);
        s.webhook_backends[0] = WebhookBackend {
            namespace: "opa".into(),
            name: "opa".into(),
            ..WebhookBackend::default()
        };
        // The screen's refreshes take turns: not read yet is not blind.
        s.backends_take_turns = true;
        assert_eq!(run(&s), []);
        // A one-shot check meant to read it.
        s.backends_take_turns = false;
        let f = run(&s);
        assert_eq!(f[0].id, "observation-incomplete");
        assert!(
            f[0].evidence[0].starts_with("service opa/opa: not read"),
            "{:?}",
            f[0].evidence
        );
    }

    #[test]
    fn rejected_credentials_and_shed_reads_are_their_own_findings() {
        let mut s = complete();
        s.credential = Credential {
            user: "admin".into(),
            kind: "client-certificate".into(),
            plugin: None,
            certificate_expires: Some(at(-86_400)),
        };
        s.taken_at = Some(at(0));
        s.nodes = Source::failed(
            AccessError::from_status("list nodes", 401, "Unauthorized", ""),
            Duration::ZERO,
            None,
            at(0),
        );
        for i in 0..8 {
            let e = AccessError::from_status("x", 429, "TooManyRequests", "");
            match i {
                0 => s.livez.error = Some(e),
                1 => s.readyz.error = Some(e),
                2 => s.metrics.error = Some(e),
                3 => s.namespaces.error = Some(e),
                4 => s.node_leases.error = Some(e),
                5 => s.warning_events.error = Some(e),
                6 => s.node_events.error = Some(e),
                _ => s.api_services.error = Some(e),
            }
        }
        s.retry_after = Some(Duration::from_secs(4));
        let f = run(&s);
        let ids: Vec<&str> = f.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            ["apiserver-credentials-rejected", "apiserver-overloaded"],
            "{f:#?}"
        );
        assert!(
            f[0].evidence.iter().any(|e| e.contains("EXPIRED")),
            "{:?}",
            f[0].evidence
        );
        assert!(
            f[0].evidence
                .iter()
                .any(|e| e.contains("kubeadm certs renew"))
        );
        assert_eq!(f[1].severity, Severity::Critical, "8 of 14 shed");
        assert!(
            f[1].evidence[0].contains("(Retry-After 4 s)"),
            "{:?}",
            f[1].evidence
        );
        assert_eq!(
            Observation::of(&s, false).note().as_deref(),
            Some("credentials rejected (401) · shedding load (429 on 8 of 14)")
        );
    }
}
