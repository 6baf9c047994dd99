//! Real admission for the simulator: picks the mutating and validating webhooks that match a
//! write, POSTs AdmissionReview v1 to them over real HTTP(S), applies JSON patches, and fails
//! with the apiserver's own wording. It reads the store only through [`AdmissionEnv`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub use super::backends::BackendTarget;
use super::selector::{LabelSelector, SelectorError};
use crate::admission_rules::{self, Gvr, Rule};

/// An admission operation, worded as AdmissionReview words it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }

    fn options_kind(self) -> &'static str {
        match self {
            Operation::Create => "CreateOptions",
            Operation::Update => "UpdateOptions",
            Operation::Delete => "DeleteOptions",
            Operation::Connect => "",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The requesting user, as sent in AdmissionReview `userInfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub groups: Vec<String>,
}

/// Everything admission needs to know about one write.
#[derive(Clone, Debug)]
pub struct Attributes {
    pub operation: Operation,
    pub group: String,
    pub version: String,
    pub resource: String,
    /// "" when none.
    pub subresource: String,
    /// e.g. "ConfigMap"; group/version are the resource's.
    pub kind: String,
    pub namespaced: bool,
    /// "" for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
    /// The new object (None for delete); mutating webhooks' patches are applied to it.
    pub object: Option<Value>,
    /// The stored object, for update and delete.
    pub old_object: Option<Value>,
    pub dry_run: bool,
    pub user: UserInfo,
}

/// What admission reads from the simulated apiserver.
pub trait AdmissionEnv: Send + Sync {
    /// All MutatingWebhookConfiguration and ValidatingWebhookConfiguration objects, as stored.
    fn webhook_configurations(&self) -> (Vec<Value>, Vec<Value>);
    /// Labels of a namespace as stored (including kubernetes.io/metadata.name), or None.
    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>>;
    /// Resolves a webhook's service reference the way the apiserver does.
    fn resolve_service(&self, namespace: &str, name: &str, port: i32) -> ServiceResolution;
    /// The scenario's backend for this call, if any.
    fn backend(
        &self,
        webhook: &str,
        service: Option<(&str, &str)>,
        url: Option<&str>,
    ) -> Option<BackendTarget>;
    /// Called once per webhook call, with what the apiserver's admission metrics need.
    fn record(&self, call: &WebhookCallRecord);
}

/// How a webhook Service resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceResolution {
    NotFound,
    NoEndpoints,
    Endpoint { ip: String },
}

/// Mutating or validating; `as_str` gives the metrics label (`admit` / `validating`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WebhookType {
    Mutating,
    Validating,
}

impl WebhookType {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookType::Mutating => "admit",
            WebhookType::Validating => "validating",
        }
    }
}

/// The `error_type` label of `apiserver_admission_webhook_rejection_count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectionErrorType {
    CallingWebhookError,
    ApiserverInternalError,
    NoError,
}

impl RejectionErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionErrorType::CallingWebhookError => "calling_webhook_error",
            RejectionErrorType::ApiserverInternalError => "apiserver_internal_error",
            RejectionErrorType::NoError => "no_error",
        }
    }
}

/// One webhook call, for the admission metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookCallRecord {
    pub name: String,
    pub configuration: String,
    pub webhook_type: WebhookType,
    pub operation: Operation,
    pub duration: Duration,
    /// Whether the call rejected the request (label `rejected`).
    pub rejected: bool,
    /// The `code` label of `apiserver_admission_webhook_request_total`: 200 on success, the
    /// denial's code, the failed call's status code, or 0 for apiserver-side errors.
    pub code: u16,
    /// For `apiserver_admission_webhook_rejection_count`: error type and rejection code.
    pub rejection: Option<(RejectionErrorType, u16)>,
    /// Failed and ignored (failurePolicy Ignore): counts in `..._fail_open_count`.
    pub fail_open: bool,
}

/// What became of one matching webhook.
#[derive(Clone, Debug, PartialEq)]
pub enum CallResult {
    /// Answered allowed (with or without a patch).
    Allowed { patched: bool },
    /// The call failed and failurePolicy Ignore let the request through.
    FailedOpen { error: String },
    /// A service webhook with endpoints but no backend in the scenario: allowed unseen.
    NoBackend,
}

/// One matching webhook and what it did.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookCall {
    pub name: String,
    pub configuration: String,
    pub webhook_type: WebhookType,
    pub result: CallResult,
    pub duration: Duration,
}

/// The webhooks a write went through, in order (mutating first).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdmissionOutcome {
    pub calls: Vec<WebhookCall>,
}

impl AdmissionOutcome {
    /// Webhooks that answered (or were allowed without a backend).
    pub fn called(&self) -> impl Iterator<Item = &str> {
        self.calls
            .iter()
            .filter(|c| !matches!(c.result, CallResult::FailedOpen { .. }))
            .map(|c| c.name.as_str())
    }

    /// Webhooks that failed and were ignored (fail open).
    pub fn ignored(&self) -> impl Iterator<Item = &str> {
        self.calls
            .iter()
            .filter(|c| matches!(c.result, CallResult::FailedOpen { .. }))
            .map(|c| c.name.as_str())
    }

    /// Whether a mutating webhook changed the object.
    pub fn patched(&self) -> bool {
        self.calls
            .iter()
            .any(|c| c.result == CallResult::Allowed { patched: true })
    }
}

/// A write refused by admission: what the server needs to write a Status.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct AdmissionError {
    /// HTTP status code.
    pub code: u16,
    /// Status reason (`InternalError`, `BadRequest`, `NotFound`, or what a webhook sent).
    pub reason: String,
    /// The exact message.
    pub message: String,
    /// The webhook responsible ("" when none).
    pub webhook: String,
    /// Status `details`, when the apiserver would send some.
    pub details: Option<Value>,
}

pub type Result<T, E = AdmissionError> = std::result::Result<T, E>;

impl AdmissionError {
    /// A metav1.Status object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        });
        if !self.reason.is_empty() {
            status["reason"] = Value::String(self.reason.clone());
        }
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }

    fn internal(webhook: &str, inner: &str) -> AdmissionError {
        AdmissionError {
            code: 500,
            reason: "InternalError".into(),
            message: format!("Internal error occurred: {inner}"),
            webhook: webhook.into(),
            details: Some(json!({"causes": [{"message": inner}]})),
        }
    }

    fn bad_request(webhook: &str, message: String) -> AdmissionError {
        AdmissionError {
            code: 400,
            reason: "BadRequest".into(),
            message,
            webhook: webhook.into(),
            details: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook configurations, with v1 defaults applied

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawService {
    namespace: String,
    name: String,
    path: Option<String>,
    port: Option<i32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawClientConfig {
    url: Option<String>,
    service: Option<RawService>,
    ca_bundle: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawWebhook {
    name: String,
    client_config: RawClientConfig,
    rules: Vec<Rule>,
    failure_policy: Option<String>,
    match_policy: Option<String>,
    namespace_selector: Option<Value>,
    object_selector: Option<Value>,
    side_effects: Option<String>,
    timeout_seconds: Option<i64>,
}

#[derive(Debug)]
struct Webhook {
    name: String,
    configuration: String,
    webhook_type: WebhookType,
    rules: Vec<Rule>,
    fail_open: bool,
    exact: bool,
    namespace_selector: Result<LabelSelector, SelectorError>,
    object_selector: Result<LabelSelector, SelectorError>,
    side_effects: Option<String>,
    timeout_seconds: u64,
    client: RawClientConfig,
}

fn parse_configurations(configs: Vec<Value>, webhook_type: WebhookType) -> Vec<Webhook> {
    let mut configs: Vec<(String, Value)> = configs
        .into_iter()
        .map(|c| {
            let name = c
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (name, c)
        })
        .collect();
    // The apiserver sorts configurations by name; webhooks keep their order within one.
    configs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hooks = Vec::new();
    for (configuration, config) in configs {
        let Some(list) = config.get("webhooks").and_then(Value::as_array) else {
            continue;
        };
        for raw in list {
            let raw: RawWebhook = match serde_json::from_value(raw.clone()) {
                Ok(r) => r,
                Err(err) => {
                    tracing::warn!(%configuration, %err, "skipping unreadable webhook");
                    continue;
                }
            };
            let selector = |v: &Option<Value>| match v {
                None => Ok(LabelSelector::everything()),
                Some(v) => LabelSelector::from_json(v),
            };
            hooks.push(Webhook {
                namespace_selector: selector(&raw.namespace_selector),
                object_selector: selector(&raw.object_selector),
                name: raw.name,
                configuration: configuration.clone(),
                webhook_type,
                rules: raw.rules,
                fail_open: raw.failure_policy.as_deref() == Some("Ignore"),
                exact: raw.match_policy.as_deref() == Some("Exact"),
                side_effects: raw.side_effects,
                timeout_seconds: raw
                    .timeout_seconds
                    .unwrap_or(
                        admission_rules::ApiVersion::V1
                            .defaults()
                            .timeout_seconds
                            .into(),
                    )
                    .clamp(1, 30) as u64,
                client: raw.client_config,
            });
        }
    }
    hooks
}

// ---------------------------------------------------------------------------------------------
// Matching

fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn namespace_not_found(name: &str) -> AdmissionError {
    AdmissionError {
        code: 404,
        reason: "NotFound".into(),
        message: format!("namespaces {name:?} not found"),
        webhook: String::new(),
        details: Some(json!({"name": name, "kind": "namespaces"})),
    }
}

/// namespaceSelector: never excludes cluster-scoped objects; a Namespace is matched by its own
/// labels (new object, old for delete).
fn match_namespace(
    env: &dyn AdmissionEnv,
    hook: &Webhook,
    attrs: &Attributes,
) -> Result<bool, AdmissionError> {
    let namespace_object = attrs.group.is_empty() && attrs.resource == "namespaces";
    if attrs.namespace.is_empty() && !namespace_object {
        return Ok(true);
    }
    let selector = hook
        .namespace_selector
        .as_ref()
        .map_err(|e| AdmissionError::internal(&hook.name, &e.to_string()))?;
    if selector.is_empty() {
        return Ok(true);
    }
    let labels = if namespace_object && attrs.subresource.is_empty() {
        let name = if attrs.name.is_empty() {
            attrs.namespace.as_str()
        } else {
            attrs.name.as_str()
        };
        let own_object = match attrs.operation {
            Operation::Create | Operation::Update => attrs.object.as_ref(),
            Operation::Delete => attrs.old_object.as_ref(),
            Operation::Connect => None,
        };
        match own_object {
            Some(obj) => {
                let mut labels = labels_of(obj);
                labels.insert("kubernetes.io/metadata.name".into(), name.to_string());
                labels
            }
            None => env
                .namespace_labels(name)
                .ok_or_else(|| namespace_not_found(name))?,
        }
    } else {
        let ns = if namespace_object && attrs.namespace.is_empty() {
            attrs.name.as_str()
        } else {
            attrs.namespace.as_str()
        };
        env.namespace_labels(ns)
            .ok_or_else(|| namespace_not_found(ns))?
    };
    Ok(selector.matches(&labels))
}

/// objectSelector: matches when the new or the old object matches.
fn match_object(hook: &Webhook, attrs: &Attributes) -> Result<bool, AdmissionError> {
    let selector = hook
        .object_selector
        .as_ref()
        .map_err(|e| AdmissionError::internal(&hook.name, &e.to_string()))?;
    if selector.is_empty() {
        return Ok(true);
    }
    let hit = |o: &Option<Value>| o.as_ref().is_some_and(|o| selector.matches(&labels_of(o)));
    Ok(hit(&attrs.object) || hit(&attrs.old_object))
}

/// A webhook to call, and the resource/kind it is called for (the request's own, or an
/// equivalent one under matchPolicy Equivalent).
#[derive(Debug)]
struct Invocation<'a> {
    hook: &'a Webhook,
    resource: Gvr,
    kind: (String, String, String),
}

/// Resources the apiserver never sends to webhooks, so that a broken webhook can be removed.
fn exempt(attrs: &Attributes) -> bool {
    admission_rules::exempt(&attrs.group, &attrs.resource)
}

fn should_call<'a>(
    env: &dyn AdmissionEnv,
    hook: &'a Webhook,
    attrs: &Attributes,
) -> Result<Option<Invocation<'a>>, AdmissionError> {
    let ns = match_namespace(env, hook, attrs);
    if let Ok(false) = ns {
        return Ok(None);
    }
    let obj = match_object(hook, attrs);
    if let Ok(false) = obj {
        return Ok(None);
    }
    let request = admission_rules::Request {
        operation: attrs.operation.as_str(),
        group: &attrs.group,
        version: &attrs.version,
        resource: &attrs.resource,
        subresource: &attrs.subresource,
        namespaced: !attrs.namespace.is_empty(),
    };
    let invocation = admission_rules::match_rules(&hook.rules, hook.exact, &request).map(|m| {
        let kind = match m.equivalent_kind {
            Some(kind) if attrs.subresource.is_empty() => kind.to_string(),
            _ => attrs.kind.clone(),
        };
        Invocation {
            hook,
            kind: (m.resource.group.clone(), m.resource.version.clone(), kind),
            resource: m.resource,
        }
    });
    if invocation.is_none() {
        return Ok(None);
    }
    ns?;
    obj?;
    Ok(invocation)
}

// ---------------------------------------------------------------------------------------------
// Calling

/// Why a call did not end in an answer, in the apiserver's terms.
#[derive(Debug)]
enum HookError {
    /// ErrCallingWebhook: subject to failurePolicy. `reason` follows `failed calling webhook "X": `.
    Calling { reason: String, status_code: u16 },
    /// The webhook said no.
    Rejected(AdmissionError),
    /// An error on the apiserver's side (dry run unsupported, patch failure); not subject to
    /// failurePolicy.
    Internal(AdmissionError),
}

impl HookError {
    fn calling(reason: String) -> HookError {
        HookError::Calling {
            reason,
            status_code: 503,
        }
    }
}

fn review_request(inv: &Invocation<'_>, attrs: &Attributes, uid: &str) -> Value {
    let mut request = json!({
        "uid": uid,
        "kind": {"group": inv.kind.0, "version": inv.kind.1, "kind": inv.kind.2},
        "resource": {
            "group": inv.resource.group,
            "version": inv.resource.version,
            "resource": inv.resource.resource,
        },
        "requestKind": {"group": attrs.group, "version": attrs.version, "kind": attrs.kind},
        "requestResource": {
            "group": attrs.group,
            "version": attrs.version,
            "resource": attrs.resource,
        },
        "operation": attrs.operation.as_str(),
        "userInfo": {"username": attrs.user.username, "groups": attrs.user.groups},
        "object": attrs.object.clone().unwrap_or(Value::Null),
        "oldObject": attrs.old_object.clone().unwrap_or(Value::Null),
        "dryRun": attrs.dry_run,
    });
    if !attrs.subresource.is_empty() {
        request["subResource"] = json!(attrs.subresource);
        request["requestSubResource"] = json!(attrs.subresource);
    }
    if !attrs.name.is_empty() {
        request["name"] = json!(attrs.name);
    }
    if !attrs.namespace.is_empty() {
        request["namespace"] = json!(attrs.namespace);
    }
    let options_kind = attrs.operation.options_kind();
    if !options_kind.is_empty() {
        let mut options = json!({"kind": options_kind, "apiVersion": "meta.k8s.io/v1"});
        if attrs.dry_run {
            options["dryRun"] = json!(["All"]);
        }
        if attrs.operation == Operation::Delete {
            options["propagationPolicy"] = json!("Background");
        }
        request["options"] = options;
    }
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request,
    })
}

/// Where one call goes and how the apiserver would name it in errors.
struct Destination {
    /// The URL as shown in errors (`https://svc.ns.svc:443/path?timeout=10s`).
    display_url: String,
    /// The address shown in `dial tcp ADDR` errors.
    dial_display: String,
    /// Host header.
    host: String,
    /// Request path and query.
    path_and_query: String,
    connect: Connect,
}

enum Connect {
    Plain(SocketAddr),
    Resolve { host: String, port: u16, tls: bool },
    NoBackend,
}

fn with_timeout_query(url: &str, secs: u64) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}timeout={secs}s")
}

fn destination(env: &dyn AdmissionEnv, hook: &Webhook) -> Result<Destination, HookError> {
    let secs = hook.timeout_seconds;
    if let Some(svc) = &hook.client.service {
        let port = svc.port.unwrap_or(443);
        let path = match svc.path.as_deref() {
            None | Some("") => "/".to_string(),
            Some(p) if p.starts_with('/') => p.to_string(),
            Some(p) => format!("/{p}"),
        };
        let host = format!("{}.{}.svc:{port}", svc.name, svc.namespace);
        let display_url = with_timeout_query(&format!("https://{host}{path}"), secs);
        let ip = match env.resolve_service(&svc.namespace, &svc.name, port) {
            ServiceResolution::NotFound => {
                return Err(HookError::calling(format!(
                    "failed to call webhook: Post {display_url:?}: service {:?} not found",
                    svc.name
                )));
            }
            ServiceResolution::NoEndpoints => {
                return Err(HookError::calling(format!(
                    "failed to call webhook: Post {display_url:?}: no endpoints available for service {:?}",
                    svc.name
                )));
            }
            ServiceResolution::Endpoint { ip } => ip,
        };
        let dial_display = if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        };
        let target = env.backend(&hook.name, Some((&svc.namespace, &svc.name)), None);
        let path_and_query = with_timeout_query(&path, secs);
        return Ok(match target {
            None => Destination {
                display_url,
                dial_display,
                host,
                path_and_query,
                connect: Connect::NoBackend,
            },
            Some(BackendTarget::Local { addr }) => Destination {
                display_url,
                dial_display,
                host,
                path_and_query,
                connect: Connect::Plain(addr),
            },
            Some(BackendTarget::Forward { url }) => {
                let mut d = url_destination(&url, secs)?;
                d.display_url = display_url;
                d.dial_display = dial_display;
                d
            }
        });
    }
    let Some(url) = &hook.client.url else {
        return Err(HookError::calling(
            "failed to call webhook: webhook has no clientConfig url or service".into(),
        ));
    };
    let mut d = match env.backend(&hook.name, None, Some(url)) {
        Some(BackendTarget::Local { addr }) => {
            let mut d = url_destination(url, secs)?;
            d.connect = Connect::Plain(addr);
            d
        }
        Some(BackendTarget::Forward { url: forward }) => url_destination(&forward, secs)?,
        None => url_destination(url, secs)?,
    };
    d.display_url = with_timeout_query(url, secs);
    Ok(d)
}

fn url_destination(raw: &str, secs: u64) -> Result<Destination, HookError> {
    let parsed = url::Url::parse(raw)
        .map_err(|e| HookError::calling(format!("failed to call webhook: parse {raw:?}: {e}")))?;
    let tls = match parsed.scheme() {
        "https" => true,
        "http" => false,
        other => {
            return Err(HookError::calling(format!(
                "failed to call webhook: Post {raw:?}: unsupported protocol scheme {other:?}"
            )));
        }
    };
    let host = parsed.host_str().unwrap_or_default().to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let mut path = parsed.path().to_string();
    if path.is_empty() {
        path.push('/');
    }
    if let Some(q) = parsed.query() {
        path = format!("{path}?{q}");
    }
    let bare_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok(Destination {
        display_url: with_timeout_query(raw, secs),
        dial_display: format!("{host}:{port}"),
        host: match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        },
        path_and_query: with_timeout_query(&path, secs),
        connect: Connect::Resolve {
            host: bare_host,
            port,
            tls,
        },
    })
}

fn tls_config(ca_bundle: Option<&str>) -> std::result::Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(bundle) = ca_bundle.filter(|b| !b.is_empty()) {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(bundle.trim())
            .map_err(|e| format!("invalid caBundle: {e}"))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| format!("invalid caBundle: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("invalid caBundle: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn describe_tls_error(err: &std::io::Error) -> String {
    use rustls::{CertificateError, Error as TlsError};
    match err.get_ref().and_then(|e| e.downcast_ref::<TlsError>()) {
        // A CA with the same name but another key fails as a bad signature; Go reports both
        // as an unknown authority.
        Some(TlsError::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        )) => {
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
                .into()
        }
        Some(TlsError::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => "tls: failed to verify certificate: x509: certificate is not valid for the requested name".into(),
        Some(TlsError::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. })) => {
            "tls: failed to verify certificate: x509: certificate has expired or is not yet valid".into()
        }
        Some(other) => format!("tls: {other}"),
        None if err.kind() == std::io::ErrorKind::UnexpectedEof => "EOF".into(),
        None => err.to_string(),
    }
}

fn describe_dial_error(dial: &str, err: &std::io::Error) -> String {
    let what = match err.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        std::io::ErrorKind::ConnectionReset => "connection reset by peer".to_string(),
        _ => {
            let s = err.to_string();
            // io::Error text carries " (os error N)"; the apiserver shows the bare errno text.
            let s = s.split(" (os error").next().unwrap_or(&s).to_string();
            s.to_lowercase()
        }
    };
    format!("dial tcp {dial}: connect: {what}")
}

struct HttpAnswer {
    status: u16,
    content_type: String,
    body: Bytes,
}

async fn exchange<S>(stream: S, request: http::Request<Full<Bytes>>) -> Result<HttpAnswer, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = async {
        let resp = sender
            .send_request(request)
            .await
            .map_err(|e| describe_hyper_error(&e))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| describe_hyper_error(&e))?
            .to_bytes();
        Ok(HttpAnswer {
            status,
            content_type,
            body,
        })
    }
    .await;
    conn.abort();
    result
}

fn describe_hyper_error(err: &hyper::Error) -> String {
    if err.is_incomplete_message() || err.is_closed() || err.is_canceled() {
        "EOF".into()
    } else {
        err.to_string()
    }
}

async fn send(
    dest: &Destination,
    ca_bundle: Option<&str>,
    body: Bytes,
) -> Result<HttpAnswer, String> {
    let request = http::Request::post(dest.path_and_query.as_str())
        .header(http::header::HOST, dest.host.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json, */*")
        .header(http::header::USER_AGENT, "kube-apiserver-admission")
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let post = |e: String| format!("Post {:?}: {e}", dest.display_url);
    match &dest.connect {
        Connect::NoBackend => Err("no backend".into()),
        Connect::Plain(addr) => {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|e| post(describe_dial_error(&dest.dial_display, &e)))?;
            exchange(stream, request).await.map_err(post)
        }
        Connect::Resolve { host, port, tls } => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), *port))
                .await
                .map_err(|_| post(format!("dial tcp: lookup {host}: no such host")))?
                .collect();
            let Some(addr) = addrs.first() else {
                return Err(post(format!("dial tcp: lookup {host}: no such host")));
            };
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|e| post(describe_dial_error(&dest.dial_display, &e)))?;
            if !tls {
                return exchange(stream, request).await.map_err(post);
            }
            let config = tls_config(ca_bundle).map_err(post)?;
            let server_name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| post(e.to_string()))?;
            let tls_stream = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(server_name, stream)
                .await
                .map_err(|e| post(describe_tls_error(&e)))?;
            exchange(tls_stream, request).await.map_err(post)
        }
    }
}

/// The client-go rest client's error for a non-2xx answer that is not a Status object.
fn generic_server_response(code: u16, server_message: &str) -> (String, String) {
    let (reason, message) = match code {
        409 => ("Conflict", "the server reported a conflict".to_string()),
        404 => (
            "NotFound",
            "the server could not find the requested resource".to_string(),
        ),
        400 => (
            "BadRequest",
            "the server rejected our request for an unknown reason".to_string(),
        ),
        401 => (
            "Unauthorized",
            "the server has asked for the client to provide credentials".to_string(),
        ),
        403 => ("Forbidden", server_message.to_string()),
        405 => (
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".to_string(),
        ),
        422 => (
            "Invalid",
            "the server rejected our request due to an error in our request".to_string(),
        ),
        429 => (
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later"
                .to_string(),
        ),
        503 => (
            "ServiceUnavailable",
            "the server is currently unable to handle the request".to_string(),
        ),
        504 => (
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be processing the request".to_string(),
        ),
        c if c >= 500 => (
            "InternalError",
            format!(
                "an error on the server ({server_message:?}) has prevented the request from succeeding"
            ),
        ),
        c => (
            "",
            format!("the server responded with the status code {c} but did not return more information"),
        ),
    };
    (reason.to_string(), message)
}

/// What a successful call returned.
struct Answer {
    patch: Option<json_patch::Patch>,
}

fn interpret(hook: &Webhook, uid: &str, answer: HttpAnswer) -> Result<Answer, HookError> {
    if !(200..=206).contains(&answer.status) {
        // A Status object in the body is taken as the error, as client-go does.
        if let Ok(status) = serde_json::from_slice::<Value>(&answer.body)
            && status.get("kind").and_then(Value::as_str) == Some("Status")
        {
            let message = status
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let code = status
                .get("code")
                .and_then(Value::as_u64)
                .map(|c| c as u16)
                .unwrap_or(answer.status);
            return Err(HookError::Calling {
                reason: format!("failed to call webhook: {message}"),
                status_code: code,
            });
        }
        let server_message = if answer.content_type.starts_with("text/") {
            let cut = &answer.body[..answer.body.len().min(2048)];
            String::from_utf8_lossy(cut).trim().to_string()
        } else {
            "unknown".into()
        };
        let (_, message) = generic_server_response(answer.status, &server_message);
        return Err(HookError::Calling {
            reason: format!("failed to call webhook: {message}"),
            status_code: answer.status,
        });
    }
    let review: Value = serde_json::from_slice(&answer.body).map_err(|e| {
        HookError::calling(format!(
            "failed to call webhook: couldn't get version/kind; json parse error: {e}"
        ))
    })?;
    let invalid = |m: String| HookError::Calling {
        reason: format!("received invalid webhook response: {m}"),
        status_code: 503,
    };
    let kind = review.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = review
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind.is_empty() {
        return Err(HookError::calling(format!(
            "failed to call webhook: Object 'Kind' is missing in '{}'",
            String::from_utf8_lossy(&answer.body)
        )));
    }
    let Some(response) = review.get("response").filter(|r| !r.is_null()) else {
        return Err(invalid("webhook response was absent".into()));
    };
    let got_uid = response.get("uid").and_then(Value::as_str).unwrap_or("");
    if got_uid != uid {
        return Err(invalid(format!(
            "expected response.uid={uid:?}, got {got_uid:?}"
        )));
    }
    if api_version != "admission.k8s.io/v1" || kind != "AdmissionReview" {
        return Err(invalid(format!(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {api_version}, Kind={kind}"
        )));
    }
    let allowed = response
        .get("allowed")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let patch = response.get("patch").and_then(Value::as_str).unwrap_or("");
    let patch_type = response.get("patchType").and_then(Value::as_str);
    if hook.webhook_type == WebhookType::Validating {
        if !patch.is_empty() {
            return Err(invalid(
                "validating webhook may not return response.patch".into(),
            ));
        }
        if patch_type.is_some() {
            return Err(invalid(
                "validating webhook may not return response.patchType".into(),
            ));
        }
    }
    if !allowed {
        return Err(HookError::Rejected(denial(
            &hook.name,
            response.get("status"),
        )));
    }
    if hook.webhook_type == WebhookType::Validating || patch.is_empty() {
        return Ok(Answer { patch: None });
    }
    match patch_type {
        None => {
            return Err(invalid(
                "webhook returned response.patch but not response.patchType".into(),
            ));
        }
        Some("JSONPatch") => {}
        Some(other) => {
            return Err(invalid(format!(
                "webhook returned invalid response.patchType of {other:?}"
            )));
        }
    }
    let undecodable = |m: String| HookError::Calling {
        reason: format!("received undecodable patch in webhook response: {m}"),
        status_code: 503,
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .map_err(|e| undecodable(e.to_string()))?;
    let patch: json_patch::Patch =
        serde_json::from_slice(&raw).map_err(|e| undecodable(e.to_string()))?;
    Ok(Answer {
        patch: (!patch.0.is_empty()).then_some(patch),
    })
}

/// The apiserver's Status for a denial: the webhook's status, with the message prefixed by
/// `admission webhook "NAME" denied the request`, a code of at least 400 and the webhook's
/// reason kept as sent.
fn denial(webhook: &str, status: Option<&Value>) -> AdmissionError {
    let status = status.cloned().unwrap_or(Value::Null);
    let code = status
        .get("code")
        .and_then(Value::as_u64)
        .map(|c| c.min(u16::MAX as u64) as u16)
        .unwrap_or(0);
    let code = if code < 400 { 400 } else { code };
    let reason = status
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let message = status
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let denied_by = format!("admission webhook {webhook:?} denied the request");
    let message = if !message.is_empty() {
        format!("{denied_by}: {message}")
    } else if !reason.is_empty() {
        format!("{denied_by}: {reason}")
    } else {
        format!("{denied_by} without explanation")
    };
    AdmissionError {
        code,
        reason,
        message,
        webhook: webhook.into(),
        details: status.get("details").filter(|d| !d.is_null()).cloned(),
    }
}

enum CallOk {
    Answered(Option<json_patch::Patch>),
    NoBackend,
}

async fn call_hook(
    env: &dyn AdmissionEnv,
    inv: &Invocation<'_>,
    attrs: &Attributes,
) -> Result<CallOk, HookError> {
    let hook = inv.hook;
    if attrs.dry_run {
        match hook.side_effects.as_deref() {
            Some("None" | "NoneOnDryRun") => {}
            None => {
                return Err(HookError::Calling {
                    reason: "Webhook SideEffects is nil".into(),
                    status_code: 400,
                });
            }
            Some(_) => {
                return Err(HookError::Internal(AdmissionError::bad_request(
                    &hook.name,
                    format!("admission webhook {:?} does not support dry run", hook.name),
                )));
            }
        }
    }
    let dest = destination(env, hook)?;
    if matches!(dest.connect, Connect::NoBackend) {
        return Ok(CallOk::NoBackend);
    }
    let uid = uuid::Uuid::new_v4().to_string();
    let body = Bytes::from(review_request(inv, attrs, &uid).to_string());
    let timeout = Duration::from_secs(hook.timeout_seconds);
    let answer =
        match tokio::time::timeout(timeout, send(&dest, hook.client.ca_bundle.as_deref(), body))
            .await
        {
            Err(_) => {
                return Err(HookError::calling(format!(
                    "failed to call webhook: Post {:?}: context deadline exceeded",
                    dest.display_url
                )));
            }
            Ok(Err(e)) => return Err(HookError::calling(format!("failed to call webhook: {e}"))),
            Ok(Ok(a)) => a,
        };
    let answer = interpret(hook, &uid, answer)?;
    Ok(CallOk::Answered(answer.patch))
}

/// Turns one call's result into metrics, an outcome entry, and possibly the request's error.
fn settle(
    env: &dyn AdmissionEnv,
    inv: &Invocation<'_>,
    attrs: &Attributes,
    started: Instant,
    result: &Result<CallOk, HookError>,
    patched: bool,
    outcome: &mut AdmissionOutcome,
) -> Option<AdmissionError> {
    let hook = inv.hook;
    let duration = started.elapsed();
    let mut record = WebhookCallRecord {
        name: hook.name.clone(),
        configuration: hook.configuration.clone(),
        webhook_type: hook.webhook_type,
        operation: attrs.operation,
        duration,
        rejected: false,
        code: 200,
        rejection: None,
        fail_open: false,
    };
    let mut call = WebhookCall {
        name: hook.name.clone(),
        configuration: hook.configuration.clone(),
        webhook_type: hook.webhook_type,
        result: CallResult::Allowed { patched },
        duration,
    };
    let error = match result {
        Ok(CallOk::Answered(_)) => None,
        Ok(CallOk::NoBackend) => {
            call.result = CallResult::NoBackend;
            None
        }
        Err(HookError::Calling {
            reason,
            status_code,
        }) => {
            let message = format!("failed calling webhook {:?}: {reason}", hook.name);
            record.code = *status_code;
            if hook.fail_open {
                tracing::warn!(webhook = %hook.name, %message, "failed calling webhook, failing open");
                record.fail_open = true;
                call.result = CallResult::FailedOpen { error: message };
                None
            } else {
                record.rejected = true;
                record.rejection = Some((RejectionErrorType::CallingWebhookError, *status_code));
                Some(AdmissionError::internal(&hook.name, &message))
            }
        }
        Err(HookError::Rejected(err)) => {
            record.rejected = true;
            record.code = err.code;
            record.rejection = Some((RejectionErrorType::NoError, err.code));
            Some(err.clone())
        }
        Err(HookError::Internal(err)) => {
            record.rejected = true;
            record.code = 0;
            record.rejection = Some((RejectionErrorType::ApiserverInternalError, 0));
            Some(err.clone())
        }
    };
    env.record(&record);
    if error.is_none() {
        outcome.calls.push(call);
    }
    error
}

/// Runs the matching mutating webhooks in order (applying their patches to `attrs.object`),
/// then the matching validating webhooks in parallel. The first failure, in configuration
/// order, is the request's error.
pub async fn admit(env: &dyn AdmissionEnv, attrs: &mut Attributes) -> Result<AdmissionOutcome> {
    let mut outcome = AdmissionOutcome::default();
    if exempt(attrs) {
        return Ok(outcome);
    }
    let (mutating, validating) = env.webhook_configurations();
    let mutating = parse_configurations(mutating, WebhookType::Mutating);
    let validating = parse_configurations(validating, WebhookType::Validating);

    for hook in &mutating {
        let Some(inv) = should_call(env, hook, attrs)? else {
            continue;
        };
        let started = Instant::now();
        let mut result = call_hook(env, &inv, attrs).await;
        let mut patched = false;
        if let Ok(CallOk::Answered(Some(patch))) = &result {
            match attrs.object.as_mut() {
                None => {
                    result = Err(HookError::Internal(AdmissionError::internal(
                        &hook.name,
                        &format!(
                            "admission webhook {:?} attempted to modify the object, which is not supported for this operation",
                            hook.name
                        ),
                    )));
                }
                Some(object) => {
                    let mut candidate = object.clone();
                    match json_patch::patch(&mut candidate, patch) {
                        Ok(()) => {
                            patched = candidate != *object;
                            *object = candidate;
                        }
                        Err(e) => {
                            result = Err(HookError::Internal(AdmissionError::internal(
                                &hook.name,
                                &e.to_string(),
                            )));
                        }
                    }
                }
            }
        }
        if let Some(err) = settle(env, &inv, attrs, started, &result, patched, &mut outcome) {
            return Err(err);
        }
    }

    let attrs: &Attributes = attrs;
    let mut invocations = Vec::new();
    for hook in &validating {
        if let Some(inv) = should_call(env, hook, attrs)? {
            invocations.push(inv);
        }
    }
    let calls = invocations.iter().map(|inv| async move {
        let started = Instant::now();
        let result = call_hook(env, inv, attrs).await;
        (started, result)
    });
    let results = futures::future::join_all(calls).await;
    let mut first_error = None;
    for (inv, (started, result)) in invocations.iter().zip(results) {
        if let Some(err) = settle(env, inv, attrs, started, &result, false, &mut outcome)
            && first_error.is_none()
        {
            first_error = Some(err);
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(outcome),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Env {
        mutating: Vec<Value>,
        validating: Vec<Value>,
        namespaces: BTreeMap<String, BTreeMap<String, String>>,
        records: Mutex<Vec<WebhookCallRecord>>,
    }

    impl AdmissionEnv for Env {
        fn webhook_configurations(&self) -> (Vec<Value>, Vec<Value>) {
            (self.mutating.clone(), self.validating.clone())
        }
        fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
            self.namespaces.get(namespace).cloned()
        }
        fn resolve_service(&self, _: &str, _: &str, _: i32) -> ServiceResolution {
            ServiceResolution::Endpoint {
                ip: "10.0.0.1".into(),
            }
        }
        fn backend(
            &self,
            _: &str,
            _: Option<(&str, &str)>,
            _: Option<&str>,
        ) -> Option<BackendTarget> {
            None
        }
        fn record(&self, call: &WebhookCallRecord) {
            if let Ok(mut r) = self.records.lock() {
                r.push(call.clone());
            }
        }
    }

    fn env() -> Env {
        let mut env = Env::default();
        for (ns, extra) in [
            ("default", None),
            ("prod", Some(("env", "prod"))),
            ("kube-system", None),
        ] {
            let mut labels = BTreeMap::new();
            labels.insert("kubernetes.io/metadata.name".to_string(), ns.to_string());
            if let Some((k, v)) = extra {
                labels.insert(k.to_string(), v.to_string());
            }
            env.namespaces.insert(ns.into(), labels);
        }
        env
    }

    fn attrs(op: Operation, group: &str, version: &str, resource: &str, ns: &str) -> Attributes {
        Attributes {
            operation: op,
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
            subresource: String::new(),
            kind: "Thing".into(),
            namespaced: !ns.is_empty(),
            namespace: ns.into(),
            name: "x".into(),
            object: Some(json!({"metadata": {"name": "x", "labels": {"app": "web"}}})),
            old_object: None,
            dry_run: false,
            user: UserInfo::default(),
        }
    }

    fn hook(extra: Value) -> Webhook {
        let mut raw = json!({
            "name": "h.example.com",
            "clientConfig": {"url": "https://example.invalid/"},
            "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}],
            "sideEffects": "None",
        });
        if let (Some(raw), Some(extra)) = (raw.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                raw.insert(k.clone(), v.clone());
            }
        }
        let cfg = json!({"metadata": {"name": "cfg"}, "webhooks": [raw]});
        parse_configurations(vec![cfg], WebhookType::Validating)
            .pop()
            .expect("one webhook")
    }

    fn calls(env: &Env, h: &Webhook, a: &Attributes) -> bool {
        should_call(env, h, a).expect("no error").is_some()
    }

    fn rule(ops: &[&str], groups: &[&str], versions: &[&str], resources: &[&str]) -> Value {
        json!({"rules": [{"operations": ops, "apiGroups": groups, "apiVersions": versions, "resources": resources}]})
    }

    #[test]
    fn defaults_are_v1() {
        let h = hook(json!({}));
        assert_eq!(h.timeout_seconds, 10);
        assert!(!h.fail_open);
        assert!(!h.exact);
        assert!(hook(json!({"failurePolicy": "Ignore"})).fail_open);
        assert!(hook(json!({"matchPolicy": "Exact"})).exact);
        assert_eq!(hook(json!({"timeoutSeconds": 3})).timeout_seconds, 3);
    }

    #[test]
    fn operations_groups_versions() {
        let e = env();
        let a = attrs(Operation::Create, "", "v1", "configmaps", "default");
        assert!(calls(
            &e,
            &hook(rule(&["CREATE"], &[""], &["v1"], &["configmaps"])),
            &a
        ));
        assert!(!calls(
            &e,
            &hook(rule(&["UPDATE"], &[""], &["v1"], &["configmaps"])),
            &a
        ));
        assert!(calls(
            &e,
            &hook(rule(&["UPDATE", "*"], &[""], &["v1"], &["configmaps"])),
            &a
        ));
        assert!(!calls(
            &e,
            &hook(rule(&["*"], &["apps"], &["v1"], &["configmaps"])),
            &a
        ));
        assert!(calls(
            &e,
            &hook(rule(&["*"], &["*"], &["v1"], &["configmaps"])),
            &a
        ));
        assert!(!calls(
            &e,
            &hook(rule(&["*"], &[""], &["v2"], &["configmaps"])),
            &a
        ));
        assert!(calls(
            &e,
            &hook(rule(&["*"], &[""], &["*"], &["configmaps"])),
            &a
        ));
        assert!(!calls(
            &e,
            &hook(rule(&["*"], &[""], &["v1"], &["secrets"])),
            &a
        ));
        assert!(!calls(&e, &hook(json!({"rules": []})), &a));
    }

    #[test]
    fn resources_and_subresources() {
        let e = env();
        let pod = attrs(Operation::Create, "", "v1", "pods", "default");
        let mut log = pod.clone();
        log.subresource = "log".into();
        log.operation = Operation::Connect;
        let mut scale = attrs(Operation::Update, "apps", "v1", "deployments", "default");
        scale.subresource = "scale".into();
        let h = |r: &[&str]| hook(rule(&["*"], &["*"], &["*"], r));
        assert!(calls(&e, &h(&["pods"]), &pod));
        assert!(!calls(&e, &h(&["pods"]), &log));
        assert!(calls(&e, &h(&["pods/log"]), &log));
        assert!(!calls(&e, &h(&["pods/log"]), &pod));
        assert!(calls(&e, &h(&["*"]), &pod));
        assert!(!calls(&e, &h(&["*"]), &log), "* excludes subresources");
        assert!(calls(&e, &h(&["pods/*"]), &log));
        assert!(!calls(&e, &h(&["pods/*"]), &scale));
        assert!(calls(&e, &h(&["*/scale"]), &scale));
        assert!(!calls(&e, &h(&["*/scale"]), &log));
        assert!(calls(&e, &h(&["*/*"]), &log));
        assert!(calls(&e, &h(&["*/*"]), &pod));
    }

    #[test]
    fn scope() {
        let e = env();
        let namespaced = attrs(Operation::Create, "", "v1", "configmaps", "default");
        let cluster = attrs(Operation::Create, "", "v1", "nodes", "");
        let mut namespace = attrs(Operation::Create, "", "v1", "namespaces", "");
        namespace.name = "new".into();
        let h = |scope: &str| {
            hook(
                json!({"rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "scope": scope}]}),
            )
        };
        assert!(calls(&e, &h("Namespaced"), &namespaced));
        assert!(!calls(&e, &h("Namespaced"), &cluster));
        assert!(
            !calls(&e, &h("Namespaced"), &namespace),
            "namespaces are cluster-scoped"
        );
        assert!(!calls(&e, &h("Cluster"), &namespaced));
        assert!(calls(&e, &h("Cluster"), &cluster));
        assert!(calls(&e, &h("Cluster"), &namespace));
        for a in [&namespaced, &cluster, &namespace] {
            assert!(calls(&e, &h("*"), a));
        }
    }

    #[test]
    fn namespace_selector() {
        let e = env();
        let h = hook(json!({"namespaceSelector": {"matchLabels": {"env": "prod"}}}));
        assert!(calls(
            &e,
            &h,
            &attrs(Operation::Create, "", "v1", "configmaps", "prod")
        ));
        assert!(!calls(
            &e,
            &h,
            &attrs(Operation::Create, "", "v1", "configmaps", "default")
        ));
        // cluster-scoped objects are never excluded
        assert!(calls(
            &e,
            &h,
            &attrs(Operation::Create, "", "v1", "nodes", "")
        ));
        // the automatic kubernetes.io/metadata.name label
        let not_system = hook(json!({"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}
        ]}}));
        assert!(!calls(
            &e,
            &not_system,
            &attrs(Operation::Create, "", "v1", "pods", "kube-system")
        ));
        assert!(calls(
            &e,
            &not_system,
            &attrs(Operation::Create, "", "v1", "pods", "default")
        ));
        // a namespace that does not exist: 404 when the rules match
        let err =
            should_call(&e, &h, &attrs(Operation::Create, "", "v1", "pods", "ghost")).unwrap_err();
        assert_eq!(err.code, 404);
        assert_eq!(err.message, "namespaces \"ghost\" not found");
    }

    #[test]
    fn namespace_object_matches_its_own_labels() {
        let e = env();
        let h = hook(json!({"namespaceSelector": {"matchLabels": {"env": "prod"}}}));
        let mut ns = attrs(Operation::Create, "", "v1", "namespaces", "");
        ns.name = "new".into();
        ns.object = Some(json!({"metadata": {"name": "new", "labels": {"env": "prod"}}}));
        assert!(calls(&e, &h, &ns));
        ns.object = Some(json!({"metadata": {"name": "new"}}));
        assert!(!calls(&e, &h, &ns));
        // its own name label
        let by_name = hook(
            json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "new"}}}),
        );
        assert!(calls(&e, &by_name, &ns));
        // delete: the old object's labels
        let mut del = ns.clone();
        del.operation = Operation::Delete;
        del.object = None;
        del.old_object = Some(json!({"metadata": {"name": "new", "labels": {"env": "prod"}}}));
        assert!(calls(&e, &h, &del));
        del.old_object = Some(json!({"metadata": {"name": "new", "labels": {"env": "dev"}}}));
        assert!(!calls(&e, &h, &del));
    }

    #[test]
    fn object_selector_old_or_new() {
        let e = env();
        let h = hook(json!({"objectSelector": {"matchLabels": {"app": "db"}}}));
        let mut a = attrs(Operation::Update, "", "v1", "configmaps", "default");
        a.object = Some(json!({"metadata": {"labels": {"app": "web"}}}));
        a.old_object = Some(json!({"metadata": {"labels": {"app": "web"}}}));
        assert!(!calls(&e, &h, &a));
        a.old_object = Some(json!({"metadata": {"labels": {"app": "db"}}}));
        assert!(calls(&e, &h, &a), "old object matches");
        a.old_object = None;
        a.object = Some(json!({"metadata": {"labels": {"app": "db"}}}));
        assert!(calls(&e, &h, &a), "new object matches");
        let mut del = attrs(Operation::Delete, "", "v1", "configmaps", "default");
        del.object = None;
        del.old_object = Some(json!({"metadata": {"labels": {"app": "db"}}}));
        assert!(calls(&e, &h, &del));
    }

    #[test]
    fn match_policy_equivalent_and_exact() {
        let e = env();
        let apps_rule = rule(&["*"], &["apps"], &["v1"], &["deployments"]);
        let mut req = attrs(
            Operation::Create,
            "extensions",
            "v1beta1",
            "deployments",
            "default",
        );
        req.kind = "Deployment".into();
        let equivalent = hook(apps_rule.clone());
        let inv = should_call(&e, &equivalent, &req)
            .unwrap()
            .expect("matched by equivalence");
        assert_eq!(inv.resource.group, "apps");
        assert_eq!(inv.kind, ("apps".into(), "v1".into(), "Deployment".into()));
        let review = review_request(&inv, &req, "u");
        assert_eq!(review["request"]["kind"]["group"], "apps");
        assert_eq!(review["request"]["requestKind"]["group"], "extensions");
        assert_eq!(review["request"]["requestResource"]["version"], "v1beta1");

        let mut exact_rule = apps_rule;
        exact_rule["matchPolicy"] = json!("Exact");
        assert!(!calls(&e, &hook(exact_rule), &req));

        // events: core/v1 <-> events.k8s.io/v1
        let ev = hook(rule(&["*"], &["events.k8s.io"], &["v1"], &["events"]));
        assert!(calls(
            &e,
            &ev,
            &attrs(Operation::Create, "", "v1", "events", "default")
        ));
        // unrelated resources are not equivalent
        assert!(!calls(
            &e,
            &ev,
            &attrs(Operation::Create, "", "v1", "configmaps", "default")
        ));
    }

    #[test]
    fn webhook_configurations_are_never_intercepted() {
        let e = env();
        let h = hook(rule(&["*"], &["*"], &["*"], &["*"]));
        for res in [
            "validatingwebhookconfigurations",
            "mutatingwebhookconfigurations",
        ] {
            let a = attrs(
                Operation::Delete,
                "admissionregistration.k8s.io",
                "v1",
                res,
                "",
            );
            assert!(exempt(&a));
            assert!(calls(&e, &h, &a), "the rule alone would match");
        }
        assert!(!exempt(&attrs(
            Operation::Delete,
            "",
            "v1",
            "configmaps",
            "default"
        )));
    }

    #[test]
    fn denial_wording() {
        let d = denial(
            "opa",
            Some(&json!({"code": 403, "reason": "Forbidden", "message": "no"})),
        );
        assert_eq!(d.code, 403);
        assert_eq!(d.reason, "Forbidden");
        assert_eq!(
            d.message,
            "admission webhook \"opa\" denied the request: no"
        );
        let d = denial("opa", None);
        assert_eq!(d.code, 400);
        assert_eq!(
            d.message,
            "admission webhook \"opa\" denied the request without explanation"
        );
        let d = denial("opa", Some(&json!({"code": 200, "reason": "Nope"})));
        assert_eq!(d.code, 400);
        assert_eq!(
            d.message,
            "admission webhook \"opa\" denied the request: Nope"
        );
    }

    #[test]
    fn service_url_in_messages() {
        let h = hook(
            json!({"clientConfig": {"service": {"namespace": "opa", "name": "opa", "path": "/v1/admit"}}}),
        );
        struct NoSvc;
        impl AdmissionEnv for NoSvc {
            fn webhook_configurations(&self) -> (Vec<Value>, Vec<Value>) {
                (vec![], vec![])
            }
            fn namespace_labels(&self, _: &str) -> Option<BTreeMap<String, String>> {
                None
            }
            fn resolve_service(&self, _: &str, _: &str, _: i32) -> ServiceResolution {
                ServiceResolution::NotFound
            }
            fn backend(
                &self,
                _: &str,
                _: Option<(&str, &str)>,
                _: Option<&str>,
            ) -> Option<BackendTarget> {
                None
            }
            fn record(&self, _: &WebhookCallRecord) {}
        }
        match destination(&NoSvc, &h) {
            Err(HookError::Calling { reason, .. }) => assert_eq!(
                reason,
                "failed to call webhook: Post \"https://opa.opa.svc:443/v1/admit?timeout=10s\": service \"opa\" not found"
            ),
            _ => panic!("expected a calling error"),
        }
    }
}
