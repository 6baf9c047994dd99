//! Simulator scenarios: the YAML format (objects, webhook backends, standing faults, a timeline
//! and the timings of the living cluster), its parsing with errors that name the file, line,
//! column and field, the shipped scenarios and the generated `large` one. No I/O beyond reading
//! a scenario file; no clock except in [`Scenario::stamp`].

mod large;

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::sim::health::{self, Endpoint};

pub use large::{LargeParams, large};

/// Errors of loading a scenario. Each names where the problem is and what would fix it.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A problem at a known place in a scenario file.
    #[error("{origin}:{line}:{column}: {}", with_path(path, message))]
    Invalid {
        origin: String,
        line: u32,
        column: u32,
        /// The field, e.g. `timeline[2].apiserverDown`; empty for the document itself.
        path: String,
        message: String,
    },
    /// A problem the YAML parser could not place.
    #[error("{origin}: {}", with_path(path, message))]
    Unplaced {
        origin: String,
        path: String,
        message: String,
    },
    #[error("cannot read scenario file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "unknown scenario {name:?}: not a shipped scenario ({known}) and no such file; give a shipped name or the path of a YAML file"
    )]
    Unknown { name: String, known: String },
    #[error(
        "bad parameters for the large scenario {text:?}: {message} (write e.g. large:nodes=5000,webhooks=300,events=50000)"
    )]
    LargeParams { text: String, message: String },
    #[error(
        "bad parameters for scenario {text:?}: {message} (write e.g. opa-webhook-outage:speed=5, a whole number from 1 to {MAX_SPEED})"
    )]
    Speed { text: String, message: String },
}

pub type Result<T, E = ScenarioError> = std::result::Result<T, E>;

fn with_path(path: &str, message: &str) -> String {
    if path.is_empty() {
        message.to_owned()
    } else {
        format!("{path}: {message}")
    }
}

// ---------------------------------------------------------------------------------------------
// Durations

pub use crate::duration::parse_duration;
use crate::duration::seconds;

struct DurationVisitor;

impl de::Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration: seconds, or e.g. 8s, 500ms, 2m")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v)
            .map(Duration::from_secs)
            .map_err(|_| E::custom(format!("invalid duration {v}: it cannot be negative")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        seconds(v).ok_or_else(|| E::custom(format!("invalid duration {v}")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v)
            .ok_or_else(|| E::custom(format!("invalid duration {v:?} (use e.g. 8s, 500ms)")))
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(DurationVisitor).map(Some)
}

// ---------------------------------------------------------------------------------------------
// Public scenario types

/// What `/version` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiserverSpec {
    #[serde(default = "default_git_version")]
    pub git_version: String,
}

fn default_git_version() -> String {
    "v1.31.4".to_owned()
}

impl Default for ApiserverSpec {
    fn default() -> Self {
        ApiserverSpec {
            git_version: default_git_version(),
        }
    }
}

impl ApiserverSpec {
    fn numbers(&self) -> Option<(String, String)> {
        let rest = self.git_version.strip_prefix('v')?;
        let mut parts = rest.splitn(3, '.');
        let major = parts.next()?;
        let minor = parts.next()?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let patch = parts.next()?;
        let patch_digits: String = patch.chars().take_while(char::is_ascii_digit).collect();
        (digits(major) && digits(minor) && !patch_digits.is_empty())
            .then(|| (major.to_owned(), minor.to_owned()))
    }

    /// `1` for `v1.31.4-gke.1000`.
    pub fn major(&self) -> String {
        self.numbers().map(|(m, _)| m).unwrap_or_default()
    }

    /// `31` for `v1.31.4-gke.1000`.
    pub fn minor(&self) -> String {
        self.numbers().map(|(_, m)| m).unwrap_or_default()
    }

    /// The body of `GET /version`, as a real apiserver answers it.
    pub fn version_info(&self) -> Value {
        serde_json::json!({
            "major": self.major(),
            "minor": self.minor(),
            "gitVersion": self.git_version,
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2024-12-10T08:42:00Z",
            "goVersion": "go1.22.9",
            "compiler": "gc",
            "platform": "linux/amd64",
        })
    }
}

/// Timings of the living cluster (kubelets, node lifecycle controller, auto-repair, apiserver
/// restarts). Defaults are a real cluster's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ClusterTimings {
    /// Kubelets renew their Lease in kube-node-lease this often.
    #[serde(deserialize_with = "de_duration")]
    pub lease_renew_seconds: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub lease_duration_seconds: Duration,
    /// A Lease older than this makes the node Ready Unknown with the unreachable taint.
    #[serde(deserialize_with = "de_duration")]
    pub node_monitor_grace_period_seconds: Duration,
    /// How often the node lifecycle controller looks.
    #[serde(deserialize_with = "de_duration")]
    pub node_monitor_period_seconds: Duration,
    /// NotReady this long and the node is deleted and recreated (same name, new uid); zero is off.
    #[serde(deserialize_with = "de_duration")]
    pub auto_repair_after_seconds: Duration,
    /// Between RemovingNode and the new node registering.
    #[serde(deserialize_with = "de_duration")]
    pub auto_repair_down_seconds: Duration,
    /// Connections are refused this long while the apiserver restarts.
    #[serde(deserialize_with = "de_duration")]
    pub apiserver_restart_down_seconds: Duration,
    /// A failed ca-registration post-start hook makes the apiserver exit and restart again.
    pub crash_loop_on_hook_failure: bool,
    /// How long the ca-registration post-start hook keeps retrying its write before it fails.
    #[serde(deserialize_with = "de_duration")]
    pub ca_registration_timeout_seconds: Duration,
    /// A kubelet posts node status at least this often (and whenever its heartbeat recovers).
    #[serde(deserialize_with = "de_duration")]
    pub node_status_report_seconds: Duration,
    /// Run a virtual kubelet per node (off for very large generated clusters).
    pub kubelets: bool,
    /// Run the node lifecycle controller and auto-repair.
    pub node_lifecycle: bool,
}

impl Default for ClusterTimings {
    fn default() -> Self {
        ClusterTimings {
            lease_renew_seconds: Duration::from_secs(10),
            lease_duration_seconds: Duration::from_secs(40),
            node_monitor_grace_period_seconds: Duration::from_secs(50),
            node_monitor_period_seconds: Duration::from_secs(5),
            auto_repair_after_seconds: Duration::from_secs(600),
            auto_repair_down_seconds: Duration::from_secs(5),
            apiserver_restart_down_seconds: Duration::from_secs(3),
            crash_loop_on_hook_failure: true,
            ca_registration_timeout_seconds: Duration::from_secs(30),
            node_status_report_seconds: Duration::from_secs(300),
            kubelets: true,
            node_lifecycle: true,
        }
    }
}

impl ClusterTimings {
    /// Whether NotReady nodes get recreated at all.
    pub fn auto_repair(&self) -> bool {
        !self.auto_repair_after_seconds.is_zero()
    }

    fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        let positive = [
            ("leaseRenewSeconds", self.lease_renew_seconds),
            ("leaseDurationSeconds", self.lease_duration_seconds),
            (
                "nodeMonitorGracePeriodSeconds",
                self.node_monitor_grace_period_seconds,
            ),
            ("nodeMonitorPeriodSeconds", self.node_monitor_period_seconds),
        ];
        for (field, value) in positive {
            if value.is_zero() {
                return Err((field, "must be more than zero".to_owned()));
            }
        }
        if self.lease_renew_seconds > self.node_monitor_grace_period_seconds {
            return Err((
                "leaseRenewSeconds",
                format!(
                    "{}s is longer than nodeMonitorGracePeriodSeconds ({}s): every node would flap",
                    self.lease_renew_seconds.as_secs_f64(),
                    self.node_monitor_grace_period_seconds.as_secs_f64()
                ),
            ));
        }
        Ok(())
    }
}

// A scenario's `backends` entries are the backend servers' own spec; checked here.
pub use super::backends::{BackendSpec, Behavior};

impl BackendSpec {
    /// Check the spec; on error, the field at fault and what is wrong.
    pub fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        let targets = [
            self.service.is_some(),
            self.url.is_some(),
            self.webhook.is_some(),
        ];
        match targets.iter().filter(|t| **t).count() {
            0 => {
                return Err((
                    "",
                    "give one of service (ns/name), url or webhook to say which backend this is"
                        .to_owned(),
                ));
            }
            1 => {}
            _ => {
                return Err(("", "give only one of service, url and webhook".to_owned()));
            }
        }
        if let Some(service) = &self.service {
            let ok = service
                .split_once('/')
                .is_some_and(|(ns, name)| is_dns_label(ns) && is_dns_label(name));
            if !ok {
                return Err((
                    "service",
                    format!("{service:?} is not namespace/name (e.g. opa/opa)"),
                ));
            }
        }
        if let Some(url) = &self.url
            && !url.starts_with("https://")
        {
            return Err(("url", format!("{url:?}: webhook URLs must be https://")));
        }
        if let Some(forward) = &self.forward
            && !(forward.starts_with("https://") || forward.starts_with("http://"))
        {
            return Err((
                "forward",
                format!("{forward:?} is not an http:// or https:// URL"),
            ));
        }
        if self.message.is_some() && self.behavior != Behavior::Deny {
            return Err((
                "message",
                "only used with behavior deny; remove it or set behavior: deny".to_owned(),
            ));
        }
        match (self.behavior, self.latency_ms) {
            (Behavior::Slow, 0) => Err((
                "latencyMs",
                "behavior slow needs latencyMs above 0".to_owned(),
            )),
            (Behavior::Slow, _) | (_, 0) => Ok(()),
            _ => Err((
                "latencyMs",
                "only used with behavior slow; remove it or set behavior: slow".to_owned(),
            )),
        }
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An apiserver verb a fault can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    Deletecollection,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::Deletecollection => "deletecollection",
        }
    }
}

/// Which requests a fault applies to; every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultMatch {
    pub verb: Option<Verb>,
    /// Plural resource: `nodes`; `pods/status` for a subresource, `pods/*` for any of them.
    pub resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// A path prefix, e.g. `/readyz`.
    pub path: Option<String>,
}

/// A request as a fault sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultRequest<'a> {
    /// Apiserver verb (`get`, `list`, `watch`, `create`, ...); `get` for non-resource paths.
    pub verb: &'a str,
    /// Plural resource, `""` for non-resource paths such as `/readyz`.
    pub resource: &'a str,
    /// `""` when none.
    pub subresource: &'a str,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    /// The URL path, without the query.
    pub path: &'a str,
}

/// A standing fault of the simulated apiserver: delay, error status, or no answer at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Fault {
    #[serde(rename = "match", default)]
    pub matcher: FaultMatch,
    #[serde(default)]
    pub latency_ms: u64,
    /// HTTP status to answer with (a Status object with the matching reason).
    pub status: Option<u16>,
    pub message: Option<String>,
    /// Never answer.
    #[serde(default)]
    pub hang: bool,
    /// Chance (0..1) that a matching request is hit; 1 when unset.
    pub probability: Option<f64>,
}

impl FaultMatch {
    /// Whether `req` is one of the requests this describes.
    pub fn matches(&self, req: &FaultRequest<'_>) -> bool {
        let m = self;
        if let Some(verb) = m.verb
            && verb.as_str() != req.verb
        {
            return false;
        }
        if let Some(resource) = &m.resource {
            let (want_res, want_sub) = resource
                .split_once('/')
                .map_or((resource.as_str(), None), |(r, s)| (r, Some(s)));
            if want_res != req.resource {
                return false;
            }
            match want_sub {
                None if !req.subresource.is_empty() => return false,
                Some("*") if req.subresource.is_empty() => return false,
                Some(sub) if sub != "*" && sub != req.subresource => return false,
                _ => {}
            }
        }
        if let Some(namespace) = &m.namespace
            && req.namespace != Some(namespace.as_str())
        {
            return false;
        }
        if let Some(name) = &m.name
            && req.name != Some(name.as_str())
        {
            return false;
        }
        if let Some(path) = &m.path
            && !req.path.starts_with(path.as_str())
        {
            return false;
        }
        true
    }
}

impl Fault {
    /// Whether `req` is one this fault is about (probability aside).
    pub fn matches(&self, req: &FaultRequest<'_>) -> bool {
        self.matcher.matches(req)
    }

    /// Whether the fault hits `req`, given a uniform random `roll` in 0..1.
    pub fn hits(&self, req: &FaultRequest<'_>, roll: f64) -> bool {
        self.matches(req) && roll < self.probability.unwrap_or(1.0)
    }

    /// The latency to add.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }

    fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        if let Some(p) = self.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(("probability", format!("{p} is not between 0 and 1")));
        }
        if let Some(status) = self.status
            && !(100..=599).contains(&status)
        {
            return Err(("status", format!("{status} is not an HTTP status code")));
        }
        if let Some(path) = &self.matcher.path
            && !path.starts_with('/')
        {
            return Err(("match.path", format!("{path:?} must start with /")));
        }
        if self.latency_ms == 0 && self.status.is_none() && !self.hang {
            return Err((
                "",
                "the fault does nothing: give latencyMs, status or hang: true".to_owned(),
            ));
        }
        if self.message.is_some() && self.status.is_none() {
            return Err(("message", "only used with status".to_owned()));
        }
        Ok(())
    }
}

/// A uniform random number in 0..1 for [`Fault::hits`].
pub fn roll() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

/// The `reason` of a Status object for an HTTP code, as the apiserver sets it.
pub fn status_reason(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ if code >= 500 => "InternalError",
        _ => "Unknown",
    }
}

/// Which object a `delete` action removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// What a timeline entry does.
#[derive(Debug, Clone, PartialEq)]
pub enum TimelineAction {
    /// These `/readyz` checks fail from now on (`[]` clears).
    ReadyzFailing(Vec<String>),
    /// These `/livez` checks fail from now on (`[]` clears).
    LivezFailing(Vec<String>),
    /// Refuse connections for this long.
    ApiserverDown(Duration),
    /// Restart the apiserver: down for `apiserverRestartDownSeconds`, then run the post-start
    /// hooks, including the ca-registration UPDATE of
    /// kube-system/extension-apiserver-authentication through admission.
    RestartApiserver,
    /// Delete these nodes and register them again (same name, new uid).
    RecreateNodes(Vec<String>),
    /// Replace (or add) the behaviour of one backend.
    SetBackend(BackendSpec),
    AddFault(Fault),
    ClearFaults,
    /// Create or replace these objects.
    Apply(Vec<Value>),
    Delete(Vec<ObjectRef>),
}

impl TimelineAction {
    /// The YAML key of the action.
    pub fn key(&self) -> &'static str {
        match self {
            TimelineAction::ReadyzFailing(_) => "readyzFailing",
            TimelineAction::LivezFailing(_) => "livezFailing",
            TimelineAction::ApiserverDown(_) => "apiserverDown",
            TimelineAction::RestartApiserver => "restartApiserver",
            TimelineAction::RecreateNodes(_) => "recreateNodes",
            TimelineAction::SetBackend(_) => "setBackend",
            TimelineAction::AddFault(_) => "addFault",
            TimelineAction::ClearFaults => "clearFaults",
            TimelineAction::Apply(_) => "apply",
            TimelineAction::Delete(_) => "delete",
        }
    }
}

/// One timeline entry: an action at `at`, repeated every `every` until `until` (inclusive) or
/// `count` times.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub at: Duration,
    pub every: Option<Duration>,
    pub until: Option<Duration>,
    pub count: Option<u32>,
    pub action: TimelineAction,
}

impl TimelineEntry {
    /// The times in `[from, to)` at which this entry fires.
    pub fn firings(&self, from: Duration, to: Duration) -> Vec<Duration> {
        let mut out = Vec::new();
        if to <= from {
            return out;
        }
        let Some(every) = self.every.filter(|e| !e.is_zero()) else {
            if self.at >= from && self.at < to {
                out.push(self.at);
            }
            return out;
        };
        let first = if from <= self.at {
            0
        } else {
            let behind = (from - self.at).as_nanos();
            behind.div_ceil(every.as_nanos())
        };
        let mut k = first;
        loop {
            if self.count.is_some_and(|c| k >= u128::from(c)) {
                break;
            }
            let Some(offset) = u32::try_from(k).ok().and_then(|k| every.checked_mul(k)) else {
                break;
            };
            let Some(t) = self.at.checked_add(offset) else {
                break;
            };
            if t >= to || self.until.is_some_and(|u| t > u) {
                break;
            }
            out.push(t);
            k += 1;
        }
        out
    }
}

/// A whole scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub apiserver: ApiserverSpec,
    pub cluster: ClusterTimings,
    /// Kubernetes objects, `List` kinds flattened.
    pub objects: Vec<Value>,
    pub backends: Vec<BackendSpec>,
    pub faults: Vec<Fault>,
    pub timeline: Vec<TimelineEntry>,
    /// Requests the simulator's user is not allowed to make, as RBAC would refuse them: the
    /// request is answered 403 and a SelfSubjectAccessReview for it says `allowed: false`.
    pub deny: Vec<FaultMatch>,
    /// Objects a controller keeps as the scenario describes them (as Gatekeeper keeps its
    /// webhook configuration): deleted, it comes back with a new uid; changed, it is put back.
    pub reconcile: Vec<Reconciled>,
    /// Users besides the simulator's admin, each with a bearer token of its own. Their requests
    /// are authorized by RBAC from the Roles, ClusterRoles and bindings the simulator stores.
    pub users: Vec<ScenarioUser>,
}

/// A user the simulated apiserver authenticates by bearer token and authorizes by RBAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScenarioUser {
    /// The user name RBAC subjects of kind User name (e.g. `alice@example.com`).
    pub name: String,
    /// The bearer token that authenticates this user.
    pub token: String,
    /// Groups (`system:authenticated` is added for every user).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// An object a simulated controller keeps in its described state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Reconciled {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// The controller's name, written into the object's managedFields as its manager.
    pub manager: String,
    /// How long the controller takes to notice and put the object back.
    #[serde(default = "Reconciled::default_delay_ms")]
    pub delay_ms: u64,
}

impl Reconciled {
    fn default_delay_ms() -> u64 {
        500
    }
}

// ---------------------------------------------------------------------------------------------
// Raw (as written) forms

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    apiserver: Option<Spanned<ApiserverSpec>>,
    #[serde(default)]
    cluster: Option<Spanned<ClusterTimings>>,
    #[serde(default)]
    objects: Vec<Spanned<Value>>,
    #[serde(default)]
    backends: Vec<Spanned<BackendSpec>>,
    #[serde(default)]
    faults: Vec<Spanned<Fault>>,
    #[serde(default)]
    timeline: Vec<Spanned<RawTimelineEntry>>,
    #[serde(default)]
    deny: Vec<Spanned<FaultMatch>>,
    #[serde(default)]
    reconcile: Vec<Spanned<Reconciled>>,
    #[serde(default)]
    users: Vec<Spanned<ScenarioUser>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTimelineEntry {
    #[serde(deserialize_with = "de_duration")]
    at: Duration,
    #[serde(default, deserialize_with = "de_opt_duration")]
    every: Option<Duration>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    until: Option<Duration>,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    readyz_failing: Option<Vec<String>>,
    #[serde(default)]
    livez_failing: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    apiserver_down: Option<Duration>,
    #[serde(default)]
    restart_apiserver: Option<bool>,
    #[serde(default)]
    recreate_nodes: Option<Vec<String>>,
    #[serde(default)]
    set_backend: Option<Spanned<BackendSpec>>,
    #[serde(default)]
    add_fault: Option<Spanned<Fault>>,
    #[serde(default)]
    clear_faults: Option<bool>,
    #[serde(default)]
    apply: Option<Vec<Spanned<Value>>>,
    #[serde(default)]
    delete: Option<Vec<ObjectRef>>,
}

/// Where a message belongs: line, column, field path.
struct Place<'a> {
    origin: &'a str,
    line: u32,
    column: u32,
}

impl Place<'_> {
    fn of<'o, T>(origin: &'o str, spanned: &Spanned<T>) -> Place<'o> {
        Place {
            origin,
            line: spanned.referenced.line() as u32,
            column: spanned.referenced.column() as u32,
        }
    }

    fn error(&self, path: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            origin: self.origin.to_owned(),
            line: self.line,
            column: self.column,
            path: path.into(),
            message: message.into(),
        }
    }
}

fn join(base: &str, field: &str) -> String {
    if field.is_empty() {
        base.to_owned()
    } else {
        format!("{base}.{field}")
    }
}

/// Keys whose list elements are `Spanned` (their path shows an extra `value` segment).
const SPANNED_LISTS: &[&str] = &[
    "objects",
    "backends",
    "faults",
    "timeline",
    "apply",
    "deny",
    "reconcile",
    "users",
];
/// Keys whose value is `Spanned` directly.
const SPANNED_FIELDS: &[&str] = &["apiserver", "cluster", "setBackend", "addFault"];

/// The field path as written in the file, without the `value` segments `Spanned` adds.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    let mut spanned_next = false;
    let mut list_of_spanned = false;
    for segment in path.iter() {
        match segment {
            Segment::Map { key } => {
                if spanned_next && key == "value" {
                    spanned_next = false;
                    continue;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
                spanned_next = SPANNED_FIELDS.contains(&key.as_str());
                list_of_spanned = SPANNED_LISTS.contains(&key.as_str());
            }
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                spanned_next = list_of_spanned;
                list_of_spanned = false;
            }
            Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
                spanned_next = false;
            }
            Segment::Unknown => {
                spanned_next = false;
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Loading

struct Shipped {
    name: &'static str,
    description: &'static str,
    yaml: &'static str,
}

const SHIPPED: &[Shipped] = &[
    Shipped {
        name: "opa-webhook-outage",
        description: "The GKE master upgrade stalled by a hanging OPA webhook: the apiserver crash-loops, node leases go stale and auto-repair recreates nodes in a loop.",
        yaml: include_str!("../../assets/scenarios/opa-webhook-outage.yaml"),
    },
    Shipped {
        name: "healthy",
        description: "A small, well-configured cluster: scoped webhooks with short timeouts and redundant backends, everything ready.",
        yaml: include_str!("../../assets/scenarios/healthy.yaml"),
    },
    Shipped {
        name: "policy-denies-system-writes",
        description: "A freeze policy webhook denies every write in kube-system, the apiserver's own ca-registration included: a denial, not an outage of the webhook.",
        yaml: include_str!("../../assets/scenarios/policy-denies-system-writes.yaml"),
    },
    Shipped {
        name: "apiservice-down",
        description: "The metrics-server APIService is unavailable (FailedDiscoveryCheck) because metrics-server crash-loops.",
        yaml: include_str!("../../assets/scenarios/apiservice-down.yaml"),
    },
];

/// The fastest clock `NAME:speed=N` runs a shipped scenario at.
pub const MAX_SPEED: u32 = 20;

/// `speed=N` after a shipped scenario's name and a colon.
fn parse_speed(text: &str, params: &str) -> Result<u32> {
    let bad = |message: String| ScenarioError::Speed {
        text: text.to_owned(),
        message,
    };
    let (key, value) = params
        .split_once('=')
        .ok_or_else(|| bad(format!("{params:?} is not key=value")))?;
    if key.trim() != "speed" {
        return Err(bad(format!(
            "unknown parameter {:?}; known: speed",
            key.trim()
        )));
    }
    match value.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_SPEED).contains(&n) => Ok(n),
        _ => Err(bad(format!("speed {:?} is out of range", value.trim()))),
    }
}

/// A webhook's `timeoutSeconds` when unset, by the configuration's apiVersion.
fn default_webhook_timeout(object: &Value) -> u64 {
    if object["apiVersion"] == "admissionregistration.k8s.io/v1beta1" {
        30
    } else {
        10
    }
}

/// Divides the `timeoutSeconds` of every webhook of a webhook configuration (unset ones from
/// their default), rounding up, never below the API's minimum of 1 s.
fn speed_up_webhook_timeouts(object: &mut Value, factor: u32) {
    let kind = object["kind"].as_str().unwrap_or_default();
    if !matches!(
        kind,
        "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration"
    ) {
        return;
    }
    let default = default_webhook_timeout(object);
    if let Some(hooks) = object.get_mut("webhooks").and_then(Value::as_array_mut) {
        for hook in hooks.iter_mut().filter(|h| h.is_object()) {
            let timeout = hook
                .get("timeoutSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(default);
            hook["timeoutSeconds"] = Value::from(timeout.div_ceil(u64::from(factor)).max(1));
        }
    }
}

const LARGE_DESCRIPTION: &str = "Generated: 5000 nodes, 300 webhooks in 100 configurations, 50000 events (large:nodes=N,webhooks=N,events=N).";

impl Scenario {
    /// Parse a scenario. `origin` (a file path or `builtin:NAME`) starts every error message.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Scenario> {
        let mut failed_at = None;
        // YAML 1.2 booleans only: `n`, `no`, `off` stay strings (a node may well be called `n`).
        let mut options = serde_saphyr::Options::default();
        options.strict_booleans = true;
        let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
            serde_path_to_error::deserialize::<_, RawScenario>(de).map_err(|e| {
                failed_at = Some(field_path(e.path()));
                e.into_inner()
            })
        });
        match parsed {
            Ok(raw) => Self::from_raw(raw, origin),
            Err(e) => Err(yaml_error(&e, origin, failed_at.unwrap_or_default())),
        }
    }

    /// A shipped scenario by name, `large` / `large:nodes=5000,webhooks=300,events=50000`, or
    /// a file path. Missing timestamps are filled in with the current time (see [`Scenario::stamp`]).
    pub fn load(name_or_path: &str) -> Result<Scenario> {
        let mut scenario = Self::load_unstamped(name_or_path)?;
        scenario.stamp(jiff::Timestamp::now());
        Ok(scenario)
    }

    fn load_unstamped(name_or_path: &str) -> Result<Scenario> {
        if let Some(shipped) = SHIPPED.iter().find(|s| s.name == name_or_path) {
            return Self::from_yaml(shipped.yaml, &format!("builtin:{}", shipped.name));
        }
        if let Some((name, params)) = name_or_path.split_once(':')
            && let Some(shipped) = SHIPPED.iter().find(|s| s.name == name)
        {
            let factor = parse_speed(name_or_path, params)?;
            let mut scenario = Self::from_yaml(shipped.yaml, &format!("builtin:{}", shipped.name))?;
            scenario.speed_up(factor);
            return Ok(scenario);
        }
        if name_or_path == "large" || name_or_path.starts_with("large:") {
            return Ok(large(LargeParams::parse(name_or_path)?));
        }
        let path = std::path::Path::new(name_or_path);
        let looks_like_path = name_or_path.contains('/')
            || name_or_path.ends_with(".yaml")
            || name_or_path.ends_with(".yml")
            || path.exists();
        if !looks_like_path {
            let mut known: Vec<&str> = SHIPPED.iter().map(|s| s.name).collect();
            known.push("large");
            return Err(ScenarioError::Unknown {
                name: name_or_path.to_owned(),
                known: known.join(", "),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: name_or_path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text, name_or_path)
    }

    /// Runs every clock of the scenario `factor` times faster: the cluster's timings, the
    /// timeline, backend and fault latencies, and the webhooks' timeouts (which the API counts
    /// in whole seconds: rounded up, at least 1 s). Objects keep their contents otherwise.
    pub fn speed_up(&mut self, factor: u32) {
        let factor = factor.max(1);
        if factor == 1 {
            return;
        }
        let c = &mut self.cluster;
        for timing in [
            &mut c.lease_renew_seconds,
            &mut c.lease_duration_seconds,
            &mut c.node_monitor_grace_period_seconds,
            &mut c.node_monitor_period_seconds,
            &mut c.auto_repair_after_seconds,
            &mut c.auto_repair_down_seconds,
            &mut c.apiserver_restart_down_seconds,
            &mut c.ca_registration_timeout_seconds,
            &mut c.node_status_report_seconds,
        ] {
            *timing /= factor;
        }
        let factor_ms = u64::from(factor);
        for object in &mut self.objects {
            speed_up_webhook_timeouts(object, factor);
        }
        for backend in &mut self.backends {
            backend.latency_ms /= factor_ms;
        }
        for fault in &mut self.faults {
            fault.latency_ms /= factor_ms;
        }
        for entry in &mut self.timeline {
            entry.at /= factor;
            entry.every = entry.every.map(|d| d / factor);
            entry.until = entry.until.map(|d| d / factor);
            match &mut entry.action {
                TimelineAction::ApiserverDown(down) => *down /= factor,
                TimelineAction::SetBackend(backend) => backend.latency_ms /= factor_ms,
                TimelineAction::AddFault(fault) => fault.latency_ms /= factor_ms,
                TimelineAction::Apply(objects) => {
                    for object in objects {
                        speed_up_webhook_timeouts(object, factor);
                    }
                }
                _ => {}
            }
        }
        self.description = format!("{} (clocks {factor} times faster)", self.description);
    }

    /// The shipped scenarios (including the generated `large`): name and description.
    pub fn shipped() -> Vec<(&'static str, &'static str)> {
        let mut out: Vec<_> = SHIPPED.iter().map(|s| (s.name, s.description)).collect();
        out.push(("large", LARGE_DESCRIPTION));
        out
    }

    /// The YAML text of a shipped scenario file.
    pub fn shipped_yaml(name: &str) -> Option<&'static str> {
        SHIPPED.iter().find(|s| s.name == name).map(|s| s.yaml)
    }

    /// The actions due in `[from, to)` (seconds since start), in the order they fire; an entry
    /// with `every` fires at `at`, `at + every`, ... Feeding consecutive windows fires each
    /// occurrence exactly once.
    pub fn due(&self, from: Duration, to: Duration) -> Vec<&TimelineAction> {
        self.due_at(from, to).into_iter().map(|(_, a)| a).collect()
    }

    /// Like [`Scenario::due`], with the time each action is due.
    pub fn due_at(&self, from: Duration, to: Duration) -> Vec<(Duration, &TimelineAction)> {
        let mut out: Vec<(Duration, usize, &TimelineAction)> = Vec::new();
        for (i, entry) in self.timeline.iter().enumerate() {
            for t in entry.firings(from, to) {
                out.push((t, i, &entry.action));
            }
        }
        out.sort_by_key(|(t, i, _)| (*t, *i));
        out.into_iter().map(|(t, _, a)| (t, a)).collect()
    }

    /// Fill in the timestamps a real cluster's objects carry and the file leaves out:
    /// `metadata.creationTimestamp`, Lease `spec.renewTime`/`acquireTime`, Event
    /// `firstTimestamp`/`lastTimestamp`, Node condition heartbeat and transition times. Values
    /// already given are kept.
    pub fn stamp(&mut self, now: jiff::Timestamp) {
        let seconds = format_time(now);
        let micros = format_micro_time(now);
        for object in &mut self.objects {
            stamp_object(object, &seconds, &micros);
        }
        for entry in &mut self.timeline {
            if let TimelineAction::Apply(objects) = &mut entry.action {
                for object in objects {
                    stamp_object(object, &seconds, &micros);
                }
            }
        }
    }

    fn from_raw(raw: RawScenario, origin: &str) -> Result<Scenario> {
        let apiserver = match raw.apiserver {
            Some(spanned) => {
                if spanned.value.numbers().is_none() {
                    return Err(Place::of(origin, &spanned).error(
                        "apiserver.gitVersion",
                        format!(
                            "{:?} is not a Kubernetes version (e.g. v1.31.4-gke.1000)",
                            spanned.value.git_version
                        ),
                    ));
                }
                spanned.value
            }
            None => ApiserverSpec::default(),
        };
        let cluster = match raw.cluster {
            Some(spanned) => {
                if let Err((field, message)) = spanned.value.check() {
                    return Err(Place::of(origin, &spanned).error(join("cluster", field), message));
                }
                spanned.value
            }
            None => ClusterTimings::default(),
        };
        let objects = objects(origin, "objects", raw.objects)?;
        let mut backends = Vec::with_capacity(raw.backends.len());
        for (i, spanned) in raw.backends.into_iter().enumerate() {
            if let Err((field, message)) = spanned.value.check() {
                return Err(Place::of(origin, &spanned)
                    .error(join(&format!("backends[{i}]"), field), message));
            }
            backends.push(spanned.value);
        }
        let mut faults = Vec::with_capacity(raw.faults.len());
        for (i, spanned) in raw.faults.into_iter().enumerate() {
            if let Err((field, message)) = spanned.value.check() {
                return Err(Place::of(origin, &spanned)
                    .error(join(&format!("faults[{i}]"), field), message));
            }
            faults.push(spanned.value);
        }
        let mut timeline = Vec::with_capacity(raw.timeline.len());
        for (i, spanned) in raw.timeline.into_iter().enumerate() {
            timeline.push(timeline_entry(origin, i, spanned)?);
        }
        let mut deny = Vec::with_capacity(raw.deny.len());
        for (i, spanned) in raw.deny.into_iter().enumerate() {
            if spanned.value.path.is_some() {
                return Err(Place::of(origin, &spanned).error(
                    format!("deny[{i}].path"),
                    "RBAC denies resources, not paths: give verb, resource, namespace or name",
                ));
            }
            deny.push(spanned.value);
        }
        let mut reconcile = Vec::with_capacity(raw.reconcile.len());
        for (i, spanned) in raw.reconcile.into_iter().enumerate() {
            let r = &spanned.value;
            let described = objects.iter().any(|o| {
                o["apiVersion"] == r.api_version.as_str()
                    && o["kind"] == r.kind.as_str()
                    && o["metadata"]["name"] == r.name.as_str()
                    && o["metadata"]["namespace"].as_str() == r.namespace.as_deref()
            });
            if !described {
                return Err(Place::of(origin, &spanned).error(
                    format!("reconcile[{i}]"),
                    format!(
                        "{} {} is not among the scenario's objects (the controller keeps an object as described there)",
                        r.kind, r.name
                    ),
                ));
            }
            reconcile.push(spanned.value);
        }
        let mut users: Vec<ScenarioUser> = Vec::with_capacity(raw.users.len());
        for (i, spanned) in raw.users.into_iter().enumerate() {
            let u = &spanned.value;
            let problem = if u.name.trim().is_empty() {
                Some(("name", "a user needs a name".to_owned()))
            } else if u.token.trim().is_empty() || u.token.contains(char::is_whitespace) {
                Some((
                    "token",
                    "a bearer token cannot be empty or contain spaces".to_owned(),
                ))
            } else {
                users
                    .iter()
                    .find(|o| o.token == u.token || o.name == u.name)
                    .map(|other| {
                        (
                            "",
                            format!(
                                "{} has the name or the token of {} already: each user needs its own",
                                u.name, other.name
                            ),
                        )
                    })
            };
            if let Some((field, message)) = problem {
                return Err(
                    Place::of(origin, &spanned).error(join(&format!("users[{i}]"), field), message)
                );
            }
            users.push(spanned.value);
        }
        Ok(Scenario {
            name: raw.name,
            description: raw.description,
            apiserver,
            cluster,
            objects,
            backends,
            faults,
            timeline,
            deny,
            reconcile,
            users,
        })
    }
}

fn yaml_error(e: &serde_saphyr::Error, origin: &str, path: String) -> ScenarioError {
    let plain = e.without_snippet().to_string();
    match e.location() {
        Some(loc) => {
            let (line, column) = (loc.line() as u32, loc.column() as u32);
            let suffix = format!(" at line {line}, column {column}");
            let message = plain.strip_suffix(&suffix).unwrap_or(&plain).to_owned();
            ScenarioError::Invalid {
                origin: origin.to_owned(),
                line,
                column,
                path,
                message,
            }
        }
        None => ScenarioError::Unplaced {
            origin: origin.to_owned(),
            path,
            message: plain,
        },
    }
}

/// Check and flatten objects: each needs apiVersion, kind and metadata.name; `List`s are
/// replaced by their items.
fn objects(origin: &str, base: &str, raw: Vec<Spanned<Value>>) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, spanned) in raw.into_iter().enumerate() {
        let place = Place::of(origin, &spanned);
        let path = format!("{base}[{i}]");
        let value = spanned.value;
        let is_list = value
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
            && value.get("items").is_some_and(Value::is_array);
        if is_list {
            let Value::Object(mut map) = value else {
                continue;
            };
            let Some(Value::Array(items)) = map.remove("items") else {
                continue;
            };
            for (j, item) in items.into_iter().enumerate() {
                check_object(&place, &format!("{path}.items[{j}]"), &item)?;
                out.push(item);
            }
        } else {
            check_object(&place, &path, &value)?;
            out.push(value);
        }
    }
    Ok(out)
}

fn check_object(place: &Place<'_>, path: &str, object: &Value) -> Result<()> {
    if !object.is_object() {
        return Err(place.error(
            path,
            "not a Kubernetes object (a mapping with apiVersion, kind and metadata.name)",
        ));
    }
    let text = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    let mut missing = Vec::new();
    if !text(object.get("apiVersion")) {
        missing.push("apiVersion");
    }
    if !text(object.get("kind")) {
        missing.push("kind");
    }
    if !text(object.get("metadata").and_then(|m| m.get("name"))) {
        missing.push("metadata.name");
    }
    if missing.is_empty() {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let served = super::kinds::by_api_version(api_version, kind).is_some_and(|k| k.is_stored());
        if !served {
            let known: Vec<String> = super::kinds::KINDS
                .iter()
                .filter(|k| k.is_stored())
                .map(|k| format!("{} {}", k.api_version(), k.kind))
                .collect();
            return Err(place.error(
                path,
                format!(
                    "the simulator does not serve {kind} in {api_version} (it serves: {})",
                    known.join(", ")
                ),
            ));
        }
        return Ok(());
    }
    let what = object
        .get("kind")
        .and_then(Value::as_str)
        .map(|k| format!("the {k}"))
        .unwrap_or_else(|| "the object".to_owned());
    Err(place.error(
        path,
        format!(
            "{what} has no {} (every object needs apiVersion, kind and metadata.name)",
            missing.join(", ")
        ),
    ))
}

fn timeline_entry(
    origin: &str,
    i: usize,
    spanned: Spanned<RawTimelineEntry>,
) -> Result<TimelineEntry> {
    let place = Place::of(origin, &spanned);
    let base = format!("timeline[{i}]");
    let raw = spanned.value;
    let present: Vec<&str> = [
        ("readyzFailing", raw.readyz_failing.is_some()),
        ("livezFailing", raw.livez_failing.is_some()),
        ("apiserverDown", raw.apiserver_down.is_some()),
        ("restartApiserver", raw.restart_apiserver.is_some()),
        ("recreateNodes", raw.recreate_nodes.is_some()),
        ("setBackend", raw.set_backend.is_some()),
        ("addFault", raw.add_fault.is_some()),
        ("clearFaults", raw.clear_faults.is_some()),
        ("apply", raw.apply.is_some()),
        ("delete", raw.delete.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
    .collect();
    match present.len() {
        0 => {
            return Err(place.error(
                base,
                "no action; give one of readyzFailing, livezFailing, apiserverDown, restartApiserver, recreateNodes, setBackend, addFault, clearFaults, apply, delete",
            ));
        }
        1 => {}
        _ => {
            return Err(place.error(
                base,
                format!(
                    "more than one action ({}); give one per entry",
                    present.join(", ")
                ),
            ));
        }
    }
    if let Some(every) = raw.every
        && every < Duration::from_millis(100)
    {
        return Err(place.error(join(&base, "every"), "must be at least 100ms"));
    }
    if raw.every.is_none() {
        if raw.until.is_some() {
            return Err(place.error(join(&base, "until"), "only used with every"));
        }
        if raw.count.is_some() {
            return Err(place.error(join(&base, "count"), "only used with every"));
        }
    }
    if let Some(until) = raw.until
        && until < raw.at
    {
        return Err(place.error(join(&base, "until"), "is before at"));
    }
    if raw.count == Some(0) {
        return Err(place.error(join(&base, "count"), "must be at least 1"));
    }
    let check_names = |field: &str, endpoint: Endpoint, names: &[String]| -> Result<()> {
        for name in names {
            if !health::is_check(endpoint, name) {
                return Err(place.error(
                    join(&base, field),
                    format!(
                        "{name:?} is not a /{} check; known: {}",
                        endpoint.name(),
                        health::check_names(endpoint).join(", ")
                    ),
                ));
            }
        }
        Ok(())
    };
    let action = if let Some(checks) = raw.readyz_failing {
        check_names("readyzFailing", Endpoint::Readyz, &checks)?;
        TimelineAction::ReadyzFailing(checks)
    } else if let Some(checks) = raw.livez_failing {
        check_names("livezFailing", Endpoint::Livez, &checks)?;
        TimelineAction::LivezFailing(checks)
    } else if let Some(down) = raw.apiserver_down {
        if down.is_zero() {
            return Err(place.error(join(&base, "apiserverDown"), "must be longer than zero"));
        }
        TimelineAction::ApiserverDown(down)
    } else if let Some(restart) = raw.restart_apiserver {
        if !restart {
            return Err(place.error(
                join(&base, "restartApiserver"),
                "false does nothing; write true or remove the entry",
            ));
        }
        TimelineAction::RestartApiserver
    } else if let Some(nodes) = raw.recreate_nodes {
        if nodes.is_empty() {
            return Err(place.error(join(&base, "recreateNodes"), "names no node"));
        }
        TimelineAction::RecreateNodes(nodes)
    } else if let Some(backend) = raw.set_backend {
        if let Err((field, message)) = backend.value.check() {
            return Err(
                Place::of(origin, &backend).error(join(&join(&base, "setBackend"), field), message)
            );
        }
        TimelineAction::SetBackend(backend.value)
    } else if let Some(fault) = raw.add_fault {
        if let Err((field, message)) = fault.value.check() {
            return Err(
                Place::of(origin, &fault).error(join(&join(&base, "addFault"), field), message)
            );
        }
        TimelineAction::AddFault(fault.value)
    } else if let Some(clear) = raw.clear_faults {
        if !clear {
            return Err(place.error(
                join(&base, "clearFaults"),
                "false does nothing; write true or remove the entry",
            ));
        }
        TimelineAction::ClearFaults
    } else if let Some(apply) = raw.apply {
        TimelineAction::Apply(objects(origin, &join(&base, "apply"), apply)?)
    } else if let Some(delete) = raw.delete {
        TimelineAction::Delete(delete)
    } else {
        return Err(place.error(base, "no action"));
    };
    Ok(TimelineEntry {
        at: raw.at,
        every: raw.every,
        until: raw.until,
        count: raw.count,
        action,
    })
}

// ---------------------------------------------------------------------------------------------
// Timestamps

/// `2025-01-31T12:00:00Z` (metav1.Time).
pub fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `2025-01-31T12:00:00.123456Z` (metav1.MicroTime).
pub fn format_micro_time(t: jiff::Timestamp) -> String {
    let micros = t.subsec_microsecond();
    format!("{}.{micros:06}Z", t.strftime("%Y-%m-%dT%H:%M:%S"))
}

fn stamp_object(object: &mut Value, seconds: &str, micros: &str) {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    fill(object, &["metadata", "creationTimestamp"], seconds);
    match kind.as_str() {
        "Lease" => {
            fill(object, &["spec", "renewTime"], micros);
            fill(object, &["spec", "acquireTime"], micros);
        }
        "Event" => {
            fill(object, &["firstTimestamp"], seconds);
            fill(object, &["lastTimestamp"], seconds);
        }
        "Node" => {
            if let Some(conditions) = object
                .pointer_mut("/status/conditions")
                .and_then(Value::as_array_mut)
            {
                for condition in conditions {
                    fill(condition, &["lastHeartbeatTime"], seconds);
                    fill(condition, &["lastTransitionTime"], seconds);
                }
            }
        }
        "Pod" if object.pointer("/status/phase").is_some() => {
            fill(object, &["status", "startTime"], seconds);
        }
        _ => {}
    }
}

/// Set `path` to `value` unless it is already there; creates missing parent mappings.
fn fill(object: &mut Value, path: &[&str], value: &str) {
    let mut here = object;
    for (i, key) in path.iter().enumerate() {
        let Value::Object(map) = here else {
            return;
        };
        if i + 1 == path.len() {
            map.entry(*key)
                .or_insert_with(|| Value::String(value.to_owned()));
            return;
        }
        here = map
            .entry(*key)
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("8s"), Some(secs(8)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(secs(120)));
        assert_eq!(parse_duration("1m30s"), Some(secs(90)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("12"), Some(secs(12)));
        assert_eq!(parse_duration("1h"), Some(secs(3600)));
        for bad in ["", "8 seconds", "s", "-1s", "5d", "1..2s", "ms"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    fn entry(at: u64, every: Option<u64>, until: Option<u64>, count: Option<u32>) -> TimelineEntry {
        TimelineEntry {
            at: secs(at),
            every: every.map(secs),
            until: until.map(secs),
            count,
            action: TimelineAction::ClearFaults,
        }
    }

    #[test]
    fn one_shot_fires_once_across_windows() {
        let e = entry(5, None, None, None);
        assert!(e.firings(secs(0), secs(5)).is_empty());
        assert_eq!(e.firings(secs(5), secs(6)), vec![secs(5)]);
        assert!(e.firings(secs(6), secs(100)).is_empty());
    }

    #[test]
    fn repeated_entries_fire_at_every_period() {
        let e = entry(5, Some(10), None, None);
        assert_eq!(
            e.firings(secs(0), secs(30)),
            vec![secs(5), secs(15), secs(25)]
        );
        assert_eq!(e.firings(secs(16), secs(36)), vec![secs(25), secs(35)]);
        assert_eq!(e.firings(secs(15), secs(16)), vec![secs(15)]);
        let total: usize = (0..100)
            .map(|t| e.firings(secs(t), secs(t + 1)).len())
            .sum();
        assert_eq!(total, 10, "5, 15, ..., 95 each exactly once");
        let until = entry(5, Some(10), Some(25), None);
        assert_eq!(
            until.firings(secs(0), secs(100)),
            vec![secs(5), secs(15), secs(25)]
        );
        let count = entry(5, Some(10), None, Some(2));
        assert_eq!(count.firings(secs(0), secs(100)), vec![secs(5), secs(15)]);
        assert!(count.firings(secs(16), secs(100)).is_empty());
    }

    #[test]
    fn due_orders_by_time() {
        let text = "name: t\ntimeline:\n  - at: 10\n    clearFaults: true\n  - at: 2\n    every: 5\n    restartApiserver: true\n";
        let s = Scenario::from_yaml(text, "t.yaml").expect("valid");
        let due: Vec<&str> = s.due(secs(0), secs(13)).iter().map(|a| a.key()).collect();
        assert_eq!(
            due,
            [
                "restartApiserver",
                "restartApiserver",
                "clearFaults",
                "restartApiserver"
            ]
        );
        let at: Vec<Duration> = s
            .due_at(secs(0), secs(13))
            .iter()
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(at, [secs(2), secs(7), secs(10), secs(12)]);
    }

    fn fault(yaml: &str) -> Fault {
        let text = format!("name: f\nfaults:\n  - {yaml}\n");
        let s = Scenario::from_yaml(&text, "f.yaml").expect("valid fault");
        s.faults.into_iter().next().expect("one fault")
    }

    #[test]
    fn faults_match_requests() {
        let list_nodes = FaultRequest {
            verb: "list",
            resource: "nodes",
            path: "/api/v1/nodes",
            ..FaultRequest::default()
        };
        let f = fault("{match: {verb: list, resource: nodes}, latencyMs: 4000}");
        assert!(f.matches(&list_nodes));
        assert_eq!(f.latency(), secs(4));
        assert!(!f.matches(&FaultRequest {
            verb: "get",
            ..list_nodes
        }));

        let status = fault("{match: {resource: pods/status}, status: 500}");
        let pod_status = FaultRequest {
            verb: "update",
            resource: "pods",
            subresource: "status",
            namespace: Some("prod"),
            name: Some("web-1"),
            path: "/api/v1/namespaces/prod/pods/web-1/status",
        };
        assert!(status.matches(&pod_status));
        assert!(!status.matches(&FaultRequest {
            subresource: "",
            ..pod_status
        }));
        let plain_pods = fault("{match: {resource: pods}, status: 500}");
        assert!(!plain_pods.matches(&pod_status));
        let any_sub = fault("{match: {resource: pods/*, namespace: prod}, status: 500}");
        assert!(any_sub.matches(&pod_status));
        assert!(!any_sub.matches(&FaultRequest {
            namespace: Some("dev"),
            ..pod_status
        }));

        let readyz = fault("{match: {path: /readyz}, hang: true, probability: 0.25}");
        let req = FaultRequest {
            verb: "get",
            path: "/readyz/etcd",
            ..FaultRequest::default()
        };
        assert!(readyz.matches(&req));
        assert!(readyz.hits(&req, 0.1));
        assert!(!readyz.hits(&req, 0.3));
        assert!(!readyz.matches(&list_nodes));
        let everything = fault("{hang: true}");
        assert!(everything.matches(&list_nodes) && everything.matches(&req));
        let r = roll();
        assert!((0.0..1.0).contains(&r));
    }

    #[test]
    fn version_numbers() {
        let gke = ApiserverSpec {
            git_version: "v1.31.4-gke.1000".into(),
        };
        assert_eq!((gke.major().as_str(), gke.minor().as_str()), ("1", "31"));
        assert_eq!(gke.version_info()["gitVersion"], "v1.31.4-gke.1000");
        assert_eq!(ApiserverSpec::default().minor(), "31");
    }

    #[test]
    fn status_reasons() {
        assert_eq!(status_reason(403), "Forbidden");
        assert_eq!(status_reason(504), "Timeout");
        assert_eq!(status_reason(502), "InternalError");
    }

    #[test]
    fn stamp_fills_only_missing_times() {
        let text = "name: s\nobjects:\n  - {apiVersion: coordination.k8s.io/v1, kind: Lease, metadata: {name: n, namespace: kube-node-lease}, spec: {holderIdentity: n}}\n  - {apiVersion: v1, kind: Event, metadata: {name: e, namespace: default, creationTimestamp: '2020-01-01T00:00:00Z'}, reason: X}\n";
        let mut s = Scenario::from_yaml(text, "s.yaml").expect("valid");
        let now: jiff::Timestamp = "2025-03-04T05:06:07.123456789Z".parse().expect("time");
        s.stamp(now);
        assert_eq!(
            s.objects[0]["spec"]["renewTime"],
            "2025-03-04T05:06:07.123456Z"
        );
        assert_eq!(
            s.objects[0]["metadata"]["creationTimestamp"],
            "2025-03-04T05:06:07Z"
        );
        assert_eq!(
            s.objects[1]["metadata"]["creationTimestamp"],
            "2020-01-01T00:00:00Z"
        );
        assert_eq!(s.objects[1]["lastTimestamp"], "2025-03-04T05:06:07Z");
    }

    #[test]
    fn users_parse_and_need_their_own_token() {
        let yaml = "name: t
users:
  - {name: alice@example.com, token: t-alice, groups: [oncall]}
  - {name: bob, token: t-bob}
";
        let scenario = Scenario::from_yaml(yaml, "t.yaml").expect("valid");
        assert_eq!(scenario.users.len(), 2);
        assert_eq!(scenario.users[0].groups, ["oncall"]);
        assert!(scenario.users[1].groups.is_empty());
        let twice = "name: t
users:
  - {name: alice, token: same}
  - {name: bob, token: same}
";
        let e = Scenario::from_yaml(twice, "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.yaml:4:") && e.contains("users[1]") && e.contains("its own"),
            "{e}"
        );
        let blank = "name: t\nusers:\n  - {name: carol, token: ''}\n";
        let e = Scenario::from_yaml(blank, "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("users[0].token"), "{e}");
    }

    #[test]
    fn deny_and_reconcile_parse_and_are_checked() {
        let yaml = "name: t
objects:
  - {apiVersion: admissionregistration.k8s.io/v1, kind: ValidatingWebhookConfiguration, metadata: {name: gk}}
deny:
  - {verb: delete, resource: validatingwebhookconfigurations}
reconcile:
  - {apiVersion: admissionregistration.k8s.io/v1, kind: ValidatingWebhookConfiguration, name: gk, manager: gatekeeper}
";
        let scenario = Scenario::from_yaml(yaml, "t.yaml").unwrap();
        assert_eq!(scenario.deny[0].verb, Some(Verb::Delete));
        assert_eq!(scenario.reconcile[0].manager, "gatekeeper");
        assert_eq!(scenario.reconcile[0].delay_ms, 500);
        let missing = yaml.replace("name: gk, manager", "name: other, manager");
        let e = Scenario::from_yaml(&missing, "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.yaml:7:")
                && e.contains("reconcile[0]")
                && e.contains(
                    "ValidatingWebhookConfiguration other is not among the scenario's objects"
                ),
            "{e}"
        );
        let by_path = yaml.replace("{verb: delete, resource", "{path: /readyz, resource");
        let e = Scenario::from_yaml(&by_path, "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("deny[0].path") && e.contains("RBAC denies resources, not paths"),
            "{e}"
        );
    }

    #[test]
    fn unknown_names_and_missing_files() {
        match Scenario::load("opa-outage") {
            Err(ScenarioError::Unknown { known, .. }) => {
                assert!(known.contains("opa-webhook-outage") && known.contains("large"));
            }
            other => panic!("{other:?}"),
        }
        match Scenario::load("/nonexistent/x.yaml") {
            Err(e @ ScenarioError::Read { .. }) => {
                assert!(
                    e.to_string()
                        .starts_with("cannot read scenario file /nonexistent/x.yaml")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn large_params() {
        assert_eq!(
            LargeParams::parse("large").expect("ok"),
            LargeParams::default()
        );
        assert_eq!(
            LargeParams::parse("large:nodes=10,events=7").expect("ok"),
            LargeParams {
                nodes: 10,
                webhooks: 300,
                events: 7
            }
        );
        for bad in [
            "large:nodes",
            "large:pods=3",
            "large:nodes=x",
            "large;nodes=1",
            "large:nodes=999999999",
        ] {
            let e = LargeParams::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("large:nodes=5000"), "{e}");
        }
    }

    #[test]
    fn large_small_instance_is_consistent() {
        let s = large(LargeParams {
            nodes: 50,
            webhooks: 10,
            events: 100,
        });
        let count = |kind: &str| s.objects.iter().filter(|o| o["kind"] == kind).count();
        assert_eq!(count("Node"), 50);
        assert_eq!(count("Lease"), 50);
        assert_eq!(count("Event"), 100);
        assert_eq!(count("Pod"), 5);
        let hooks: usize = s
            .objects
            .iter()
            .filter_map(|o| o.get("webhooks").and_then(Value::as_array))
            .map(Vec::len)
            .sum();
        assert_eq!(hooks, 10);
        assert_eq!(
            s.backends.len(),
            count("ValidatingWebhookConfiguration") + count("MutatingWebhookConfiguration")
        );
        for o in &s.objects {
            assert!(
                o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| !n.is_empty()),
                "{o}"
            );
        }
        let names: std::collections::BTreeSet<_> = s
            .objects
            .iter()
            .map(|o| {
                (
                    o["kind"].to_string(),
                    o["metadata"]["namespace"].to_string(),
                    o["metadata"]["name"].to_string(),
                )
            })
            .collect();
        assert_eq!(names.len(), s.objects.len(), "names are unique");
    }

    #[test]
    fn large_default_is_generated_quickly() {
        let started = std::time::Instant::now();
        let s = Scenario::load("large").expect("large");
        // A generous bound that catches a pathological slowdown even in a debug build.
        assert!(started.elapsed() < secs(20), "{:?}", started.elapsed());
        assert!(s.objects.len() > 60_000);
    }

    #[test]
    fn a_shipped_scenario_runs_faster_with_speed() {
        let real = Scenario::load("opa-webhook-outage").unwrap();
        let fast = Scenario::load("opa-webhook-outage:speed=5").unwrap();
        assert_eq!(fast.name, real.name);
        assert!(fast.description.ends_with("(clocks 5 times faster)"));
        let (c, r) = (&fast.cluster, &real.cluster);
        assert_eq!(c.lease_duration_seconds, r.lease_duration_seconds / 5);
        assert_eq!(c.ca_registration_timeout_seconds, Duration::from_secs(6));
        assert_eq!(c.apiserver_restart_down_seconds, Duration::from_millis(600));
        assert_eq!(fast.timeline[0].at, real.timeline[0].at / 5);
        // Webhook timeouts: the unset 10 s default becomes 2 s; 3 s rounds up to 1 s.
        let timeouts = |s: &Scenario| -> Vec<Option<u64>> {
            s.objects
                .iter()
                .filter(|o| o["kind"] == "ValidatingWebhookConfiguration")
                .flat_map(|o| o["webhooks"].as_array().cloned().unwrap_or_default())
                .map(|h| h["timeoutSeconds"].as_u64())
                .collect()
        };
        let (real_timeouts, fast_timeouts) = (timeouts(&real), timeouts(&fast));
        assert!(real_timeouts.contains(&None) && !fast_timeouts.contains(&None));
        for (r, f) in real_timeouts.iter().zip(&fast_timeouts) {
            assert_eq!(f.unwrap(), r.unwrap_or(10).div_ceil(5).max(1));
        }
        // Same objects otherwise.
        assert_eq!(fast.objects.len(), real.objects.len());
    }

    #[test]
    fn a_bad_speed_is_refused_with_what_to_write() {
        for bad in [
            "opa-webhook-outage:speed=0",
            "opa-webhook-outage:speed=21",
            "opa-webhook-outage:speed=fast",
            "opa-webhook-outage:pace=2",
            "healthy:5",
        ] {
            let e = Scenario::load(bad).unwrap_err().to_string();
            assert!(
                e.contains("bad parameters for scenario") && e.contains(":speed=5"),
                "{bad}: {e}"
            );
        }
    }
}
