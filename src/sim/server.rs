//! The simulated apiserver's HTTP side: the TLS listener that can go down and come back
//! (connection refused while down), bearer-token authentication, standing faults, the request
//! log and metrics around every request, and the routing of paths to discovery, health,
//! metrics and the REST handlers in `api.rs`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::api::{
    DEFAULT_WATCH_TIMEOUT, ListParams, PatchType, Preconditions, User, WriteOptions,
    change_matches, to_table,
};
use super::backends::BackendServers;
use super::errors::{ApiError, json_response};
use super::health::{Endpoint, HealthChecks};
use super::kinds::{self, KINDS, Kind};
use super::metrics::{self, Metrics};
use super::rbac;
use super::requestlog::{RequestLog, RequestRecord};
use super::scenario::{Fault, FaultMatch, FaultRequest, ScenarioUser};
use super::selector::{FieldSelector, LabelSelector};
use super::store::Store;
use super::table::partial_metadata;
use super::{events, tls};

/// Largest request body accepted.
const MAX_BODY: usize = 64 << 20;

/// The simulated apiserver's shared state.
pub struct Apiserver {
    store: Mutex<Store>,
    token: String,
    pub(crate) requests: RequestLog,
    pub(crate) metrics: Metrics,
    pub(crate) health: Mutex<HealthChecks>,
    pub(crate) faults: Mutex<Vec<Fault>>,
    /// What RBAC refuses the simulator's user (the scenario's `deny`).
    pub(crate) deny: Mutex<Vec<FaultMatch>>,
    /// Scenario users, authenticated by their own bearer tokens and authorized by RBAC.
    users: Mutex<Vec<ScenarioUser>>,
    pub(crate) backends: BackendServers,
    git_version: String,
    address: OnceLock<SocketAddr>,
    /// `Some(t)`: down (connections refused) until `t`.
    down_until: watch::Sender<Option<Instant>>,
}

/// What a request is about, parsed from its path as the apiserver's RequestInfo does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestInfo {
    pub verb: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

impl Apiserver {
    pub fn new(token: String, git_version: String, backends: BackendServers) -> Self {
        let (down_until, _) = watch::channel(None);
        Apiserver {
            store: Mutex::new(Store::new()),
            token,
            requests: RequestLog::default(),
            metrics: Metrics::new(),
            health: Mutex::new(HealthChecks::new()),
            faults: Mutex::new(Vec::new()),
            deny: Mutex::new(Vec::new()),
            users: Mutex::new(Vec::new()),
            backends,
            git_version,
            address: OnceLock::new(),
            down_until,
        }
    }

    /// The object store. Never held across an await.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn health(&self) -> MutexGuard<'_, HealthChecks> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn faults(&self) -> MutexGuard<'_, Vec<Fault>> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What RBAC refuses the simulator's user; a test may change it while the simulator runs.
    pub fn deny(&self) -> MutexGuard<'_, Vec<FaultMatch>> {
        self.deny.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether RBAC refuses this resource request.
    pub fn denies(&self, request: &FaultRequest<'_>) -> bool {
        self.deny().iter().any(|rule| rule.matches(request))
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The scenario users (a test may add some while the simulator runs).
    pub fn users(&self) -> MutexGuard<'_, Vec<ScenarioUser>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Who a bearer token belongs to: the admin, a scenario user, or nobody.
    pub fn authenticate(&self, token: &str) -> Option<User> {
        if token == self.token {
            return Some(User::admin());
        }
        self.users()
            .iter()
            .find(|u| u.token == token)
            .map(User::from_scenario)
    }

    pub fn address(&self) -> Option<SocketAddr> {
        self.address.get().copied()
    }

    /// Refuses connections (and drops open ones) for `duration`, as a crashed apiserver does.
    pub fn go_down(&self, duration: Duration) {
        let until = Instant::now() + duration;
        self.down_until.send_modify(|d| {
            *d = Some(d.map_or(until, |old| old.max(until)));
        });
    }

    /// Whether the apiserver currently answers.
    pub fn is_up(&self) -> bool {
        self.down_until.borrow().is_none_or(|t| t <= Instant::now())
    }

    pub fn version_info(&self) -> Value {
        let v = self.git_version.trim_start_matches('v');
        let mut parts = v.split(['.', '-', '+']);
        let major = parts.next().unwrap_or("1").to_string();
        let minor = parts.next().unwrap_or("0").to_string();
        let minor = if self.git_version.contains("-gke") || self.git_version.contains("-eks") {
            format!("{minor}+")
        } else {
            minor
        };
        json!({
            "major": major, "minor": minor, "gitVersion": self.git_version,
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
            "platform": "linux/amd64",
        })
    }

    /// The router serving every path.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }
}

/// Binds `addr` with SO_REUSEADDR so the same port can be bound again after a restart.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Binds the listening socket; the address it returns has the real port.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    bind(addr)
}

/// Serves HTTPS on `listener` until `shutdown`, going down and coming back up as
/// [`Apiserver::go_down`] says.
pub async fn serve(
    api: Arc<Apiserver>,
    listener: TcpListener,
    tls_config: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let _ = api.address.set(addr);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls_config);
    let router = api.router();
    let mut down = api.down_until.subscribe();
    let mut listener = Some(listener);
    loop {
        let until = *down.borrow_and_update();
        if let Some(until) = until.filter(|t| *t > Instant::now()) {
            listener = None;
            tracing::info!(?addr, "apiserver down");
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep_until(until.into()) => {}
                _ = down.changed() => {}
            }
            continue;
        }
        let current = match listener.take() {
            Some(l) => l,
            None => {
                let mut attempt = 0;
                loop {
                    match bind(addr) {
                        Ok(l) => break l,
                        Err(e) if attempt < 50 => {
                            attempt += 1;
                            tracing::warn!(%e, "rebinding the apiserver port");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        tracing::info!(?addr, "apiserver up");
        let connections = shutdown.child_token();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                changed = down.changed() => {
                    if changed.is_err() || !api.is_up() {
                        break;
                    }
                }
                accepted = current.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    let acceptor = acceptor.clone();
                    let router = router.clone();
                    let token = connections.clone();
                    tokio::spawn(async move {
                        let _ = tcp.set_nodelay(true);
                        let tls = tokio::select! {
                            _ = token.cancelled() => return,
                            r = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)) => match r {
                                Ok(Ok(s)) => s,
                                _ => return,
                            },
                        };
                        let service = hyper_util::service::TowerToHyperService::new(router);
                        let conn = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(tls), service);
                        tokio::select! {
                            _ = token.cancelled() => {}
                            _ = conn => {}
                        }
                    });
                }
            }
        }
        connections.cancel();
        drop(current);
    }
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Parses a resource path (`/api/v1/namespaces/ns/pods/x/status`) as the apiserver does.
pub fn request_info(
    method: &Method,
    path: &str,
    query: &[(String, String)],
) -> Option<RequestInfo> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    if rest.is_empty() {
        return None;
    }
    let mut info = RequestInfo {
        group: group.into(),
        version: version.into(),
        ..Default::default()
    };
    let mut rest = rest;
    if rest[0] == "namespaces" && rest.len() > 1 {
        info.namespace = rest[1].to_string();
        if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
            rest = &rest[2..];
        } else {
            // The namespace object itself (or its status).
            info.name = rest[1].to_string();
            info.resource = "namespaces".into();
            info.subresource = rest.get(2).copied().unwrap_or_default().into();
            info.namespace.clear();
            info.verb = verb_of(method, true, query);
            return Some(info);
        }
    }
    info.resource = rest[0].into();
    info.name = rest.get(1).copied().unwrap_or_default().into();
    info.subresource = rest.get(2).copied().unwrap_or_default().into();
    if rest.len() > 3 {
        return None;
    }
    info.verb = verb_of(method, !info.name.is_empty(), query);
    Some(info)
}

fn verb_of(method: &Method, named: bool, query: &[(String, String)]) -> String {
    let watch = matches!(param(query, "watch"), Some("true" | "1"));
    match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if named => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
    .into()
}

/// The answer format a client asked for in its Accept header.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    Json,
    Table(&'static str),
    Metadata,
}

fn negotiate(headers: &HeaderMap) -> Option<Format> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.trim().is_empty() {
        return Some(Format::Json);
    }
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let params: BTreeMap<&str, &str> = parts.filter_map(|p| p.split_once('=')).collect();
        if !matches!(media, "application/json" | "*/*" | "application/*") {
            continue;
        }
        match (params.get("as"), params.get("g"), params.get("v")) {
            (None, _, _) => return Some(Format::Json),
            (Some(&"Table"), Some(&"meta.k8s.io"), Some(&"v1")) => {
                return Some(Format::Table("v1"));
            }
            (Some(&"Table"), Some(&"meta.k8s.io"), Some(&"v1beta1")) => {
                return Some(Format::Table("v1beta1"));
            }
            (
                Some(&("PartialObjectMetadataList" | "PartialObjectMetadata")),
                Some(&"meta.k8s.io"),
                Some(&"v1"),
            ) => {
                return Some(Format::Metadata);
            }
            _ => continue,
        }
    }
    None
}

fn not_acceptable() -> ApiError {
    ApiError::new(
        406,
        "NotAcceptable",
        "only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io, application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
    )
}

/// Every request passes here: authentication, faults, dispatch, then the log and metrics.
async fn handle(State(api): State<Arc<Apiserver>>, request: Request) -> Response {
    let started = Instant::now();
    let time = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let pairs = query_pairs(&query);
    let info = request_info(&method, &path, &pairs);

    if path == "/sim/requests" || path.starts_with("/sim/") {
        if authenticated(&api, request.headers()).is_none() {
            return ApiError::unauthorized().into_response();
        }
        let since = param(&pairs, "since")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let requests = api.requests.since(since);
        return json_response(
            StatusCode::OK,
            &json!({"requests": requests, "last": api.requests.last_seq()}),
        );
    }

    let response = respond(&api, request, &method, &path, &query, &pairs, info.as_ref()).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    api.requests.push(RequestRecord {
        seq: 0,
        time,
        method: method.to_string(),
        path: path.clone(),
        query,
        status,
        latency_ms: elapsed.as_secs_f64() * 1000.0,
        user_agent,
        accept,
    });
    record_request_metric(&api, &method, info.as_ref(), &pairs, status, elapsed);
    response
}

fn record_request_metric(
    api: &Apiserver,
    method: &Method,
    info: Option<&RequestInfo>,
    pairs: &[(String, String)],
    code: u16,
    duration: Duration,
) {
    let method_verb = method.as_str().to_lowercase();
    let (verb, group, version, resource, subresource, scope) = match info {
        Some(i) => {
            let scope = if !i.name.is_empty() || i.verb == "create" {
                "resource"
            } else if !i.namespace.is_empty() {
                "namespace"
            } else {
                "cluster"
            };
            (
                i.verb.as_str(),
                i.group.as_str(),
                i.version.as_str(),
                i.resource.as_str(),
                i.subresource.as_str(),
                scope,
            )
        }
        None => (method_verb.as_str(), "", "", "", "", ""),
    };
    let dry_run = param(pairs, "dryRun").is_some();
    api.metrics.record_request(&metrics::RequestRecord {
        verb,
        dry_run,
        group,
        version,
        resource,
        subresource,
        scope,
        component: "apiserver",
        code,
        duration,
    });
}

/// The user the request's bearer token belongs to, if any.
fn authenticated(api: &Apiserver, headers: &HeaderMap) -> Option<User> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| api.authenticate(t.trim()))
}

/// Health and version are readable without credentials, as on a real cluster
/// (system:public-info-viewer).
fn is_public(path: &str) -> bool {
    path == "/version"
        || ["/livez", "/readyz", "/healthz"]
            .iter()
            .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

async fn respond(
    api: &Arc<Apiserver>,
    request: Request,
    method: &Method,
    path: &str,
    query: &str,
    pairs: &[(String, String)],
    info: Option<&RequestInfo>,
) -> Response {
    // Health and version are public to anonymous requests only: credentials that are
    // presented and invalid are refused everywhere, as the apiserver's authenticator does.
    let user = authenticated(api, request.headers());
    let public = is_public(path);
    let presented = request.headers().contains_key(header::AUTHORIZATION);
    if (presented || !public) && user.is_none() {
        return ApiError::unauthorized().into_response();
    }
    let user = user.unwrap_or_else(User::anonymous);
    if let Some(response) = apply_faults(api, path, info).await {
        return response;
    }
    if !public && let Some(response) = refuse(api, &user, method, path, info) {
        return response;
    }
    match dispatch(api, request, method, path, query, pairs, info, &user).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Applies the first matching standing fault: added latency, a forced error, or a hang.
async fn apply_faults(api: &Apiserver, path: &str, info: Option<&RequestInfo>) -> Option<Response> {
    let request = FaultRequest {
        verb: info.map_or("get", |i| i.verb.as_str()),
        resource: info.map_or("", |i| i.resource.as_str()),
        subresource: info.map_or("", |i| i.subresource.as_str()),
        namespace: info.map(|i| i.namespace.as_str()).filter(|n| !n.is_empty()),
        name: info.map(|i| i.name.as_str()).filter(|n| !n.is_empty()),
        path,
    };
    let fault = api
        .faults()
        .iter()
        .find(|f| f.hits(&request, roll()))
        .cloned()?;
    if fault.hang {
        // Never answers; the client's deadline (or a dropped connection) ends it.
        std::future::pending::<()>().await;
    }
    if fault.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
    }
    let code = fault.status?;
    let reason = match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    };
    let message = fault.message.clone().unwrap_or_else(|| match code {
        429 => "the server has received too many requests and has asked us to try again later".into(),
        403 => format!(
            "{} is forbidden: User \"kube-rescue-admin\" cannot {} resource \"{}\"",
            request.resource, request.verb, request.resource
        ),
        503 => "the server is currently unable to handle the request".into(),
        504 => "the server was unable to return a response in the time allotted, but may still be processing the request".into(),
        _ => format!("simulated fault ({code})"),
    });
    let mut error = ApiError::new(code, reason, message);
    if matches!(code, 429 | 503 | 504) {
        error = error.with_details(json!({"retryAfterSeconds": 1}));
    }
    Some(error.into_response())
}

/// The 403 the authorizer gives: for the admin, what the scenario's `deny` names; for a
/// scenario user, whatever RBAC does not grant.
fn refuse(
    api: &Apiserver,
    user: &User,
    method: &Method,
    path: &str,
    info: Option<&RequestInfo>,
) -> Option<Response> {
    if user.is_superuser() {
        return info.and_then(|i| refuse_by_rbac(api, path, i));
    }
    let verb = method.as_str().to_lowercase();
    let request = match info {
        Some(i) => rbac::Request::Resource {
            verb: &i.verb,
            group: &i.group,
            resource: &i.resource,
            subresource: &i.subresource,
            // The apiserver's RequestInfo puts a Namespace's own name in its namespace.
            namespace: if i.resource == "namespaces" && i.namespace.is_empty() {
                &i.name
            } else {
                &i.namespace
            },
            name: &i.name,
        },
        None => rbac::Request::NonResource { verb: &verb, path },
    };
    if rbac::authorize(&api.store(), user, &request).is_allowed() {
        return None;
    }
    Some(ApiError::forbidden(&user.username, &request).into_response())
}

/// The 403 that RBAC gives a request the scenario's `deny` names.
fn refuse_by_rbac(api: &Apiserver, path: &str, info: &RequestInfo) -> Option<Response> {
    let request = FaultRequest {
        verb: &info.verb,
        resource: &info.resource,
        subresource: &info.subresource,
        namespace: Some(info.namespace.as_str()).filter(|n| !n.is_empty()),
        name: Some(info.name.as_str()).filter(|n| !n.is_empty()),
        path,
    };
    if !api.denies(&request) {
        return None;
    }
    let kind = kinds::by_resource(&info.group, &info.version, &info.resource)?;
    let user = super::api::User::admin();
    let access = super::errors::Access {
        user: &user.username,
        verb: &info.verb,
        namespace: &info.namespace,
        name: &info.name,
        subresource: &info.subresource,
    };
    Some(ApiError::forbidden_by_rbac(kind, &access).into_response())
}

/// A uniform random number in 0..1 (from the 48 random bits that lead a v4 uuid).
fn roll() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 80) as f64 / (1u64 << 48) as f64
}

async fn read_body(request: Request) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
    })
}

/// The manager a write is recorded under: `fieldManager`, else the User-Agent up to its first
/// `/` (`kubectl-edit/v1.32.0 (linux/amd64) ...` is `kubectl-edit`), as the apiserver does.
fn field_manager(pairs: &[(String, String)], user_agent: &str) -> String {
    match param(pairs, "fieldManager") {
        Some(manager) if !manager.is_empty() => manager.to_string(),
        _ => user_agent.split('/').next().unwrap_or_default().to_string(),
    }
}

fn dry_run(pairs: &[(String, String)]) -> Result<bool, ApiError> {
    match param(pairs, "dryRun") {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: \"{other}\": supported values: \"All\""
        ))),
    }
}

#[allow(clippy::too_many_arguments)]
async fn dispatch(
    api: &Arc<Apiserver>,
    request: Request,
    method: &Method,
    path: &str,
    query: &str,
    pairs: &[(String, String)],
    info: Option<&RequestInfo>,
    user: &User,
) -> Result<Response, ApiError> {
    if let Some(response) = non_resource(api, method, path, query) {
        return Ok(response);
    }
    let Some(info) = info else {
        return discovery(api, path).ok_or_else(ApiError::no_such_path);
    };
    let kind = kinds::by_resource(&info.group, &info.version, &info.resource)
        .ok_or_else(ApiError::no_such_path)?;
    if !kind.namespaced && !info.namespace.is_empty() {
        return Err(ApiError::no_such_path());
    }
    if !kind.verbs.contains(&info.verb.as_str()) {
        return Err(ApiError::method_not_allowed(&info.verb, kind));
    }
    let format = negotiate(request.headers());
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let ns = info.namespace.as_str();
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let options = WriteOptions {
        dry_run: dry_run(pairs)?,
        user: user.clone(),
        field_manager: Some(field_manager(pairs, user_agent)),
    };
    match info.verb.as_str() {
        "get" => {
            let format = format.ok_or_else(not_acceptable)?;
            if !info.subresource.is_empty()
                && info.subresource != "status"
                && info.subresource != "scale"
            {
                return Err(ApiError::no_such_path());
            }
            let object = api.get_object(kind, ns, &info.name)?;
            Ok(render_object(
                kind,
                &object,
                format,
                api.store().resource_version(),
            ))
        }
        "list" => {
            let format = format.ok_or_else(not_acceptable)?;
            let params = list_params(pairs)?;
            let namespace = (!ns.is_empty()).then_some(ns);
            let page = api.list_objects(kind, namespace, &params)?;
            Ok(render_list(kind, page, format))
        }
        "watch" => watch(api, kind, ns, pairs, format.ok_or_else(not_acceptable)?),
        "create" => {
            let body = parse_json(&read_body(request).await?)?;
            if !info.name.is_empty() && info.subresource.is_empty() {
                return Err(ApiError::method_not_allowed("create", kind));
            }
            let created = api.create(kind, ns, body, &options).await?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        "update" => {
            let body = parse_json(&read_body(request).await?)?;
            let updated = api
                .update(kind, ns, &info.name, &info.subresource, body, &options)
                .await?;
            Ok(json_response(StatusCode::OK, &updated))
        }
        "patch" => {
            let patch_type = PatchType::from_content_type(&content_type).ok_or_else(|| {
                ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {content_type}; server-side apply is not simulated)"),
                )
            })?;
            let body = parse_json(&read_body(request).await?)?;
            let patched = api
                .patch(
                    kind,
                    ns,
                    &info.name,
                    &info.subresource,
                    patch_type,
                    body,
                    &options,
                )
                .await?;
            Ok(json_response(StatusCode::OK, &patched))
        }
        "delete" => {
            let body = read_body(request).await?;
            let (preconditions, body_dry_run) = delete_options(&body)?;
            let options = WriteOptions {
                dry_run: options.dry_run || body_dry_run,
                ..options
            };
            let deleted = api
                .delete(kind, ns, &info.name, &preconditions, &options)
                .await?;
            Ok(json_response(StatusCode::OK, &deleted))
        }
        "deletecollection" => {
            let body = read_body(request).await?;
            let (_, body_dry_run) = delete_options(&body)?;
            let options = WriteOptions {
                dry_run: options.dry_run || body_dry_run,
                ..options
            };
            let params = list_params(pairs)?;
            let namespace = (!ns.is_empty()).then_some(ns);
            let deleted = api
                .delete_collection(kind, namespace, &params, &options)
                .await?;
            let resource_version = api.store().resource_version();
            Ok(json_response(
                StatusCode::OK,
                &list_body(kind, deleted, resource_version, None, None),
            ))
        }
        other => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{other} is not supported"),
        )),
    }
}

fn delete_options(body: &[u8]) -> Result<(Preconditions, bool), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((Preconditions::default(), false));
    }
    let options = parse_json(body)?;
    let pre = &options["preconditions"];
    let preconditions = Preconditions {
        uid: pre["uid"].as_str().map(str::to_string),
        resource_version: pre["resourceVersion"].as_str().map(str::to_string),
    };
    let dry_run = options["dryRun"]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v == "All"));
    Ok((preconditions, dry_run))
}

fn list_params(pairs: &[(String, String)]) -> Result<ListParams, ApiError> {
    let limit = match param(pairs, "limit") {
        None | Some("") => None,
        Some(l) => Some(
            l.parse::<i64>()
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "limit: Invalid value: \"{l}\": must be a non-negative integer"
                    ))
                })?
                .max(0) as usize,
        ),
    };
    let own = |k: &str| {
        param(pairs, k)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Ok(ListParams {
        label_selector: own("labelSelector"),
        field_selector: own("fieldSelector"),
        limit,
        continue_token: own("continue"),
        resource_version: param(pairs, "resourceVersion")
            .map(str::to_string)
            .filter(|v| !v.is_empty()),
        resource_version_match: own("resourceVersionMatch"),
    })
}

fn render_object(
    kind: &'static Kind,
    object: &Value,
    format: Format,
    resource_version: u64,
) -> Response {
    match format {
        Format::Json => json_response(StatusCode::OK, object),
        Format::Metadata => json_response(StatusCode::OK, &partial_metadata(object)),
        Format::Table(v) => json_response(
            StatusCode::OK,
            &to_table(
                kind,
                std::slice::from_ref(object),
                resource_version,
                None,
                v,
            ),
        ),
    }
}

fn list_body(
    kind: &Kind,
    items: Vec<Value>,
    resource_version: u64,
    continue_token: Option<&str>,
    remaining: Option<usize>,
) -> Value {
    let mut metadata = json!({"resourceVersion": resource_version.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(remaining) = remaining {
        metadata["remainingItemCount"] = json!(remaining);
    }
    json!({
        "kind": format!("{}List", kind.kind),
        "apiVersion": kind.api_version(),
        "metadata": metadata,
        "items": items,
    })
}

fn render_list(kind: &'static Kind, page: super::api::ListPage, format: Format) -> Response {
    match format {
        Format::Json => json_response(
            StatusCode::OK,
            &list_body(
                kind,
                page.items,
                page.resource_version,
                page.continue_token.as_deref(),
                page.remaining,
            ),
        ),
        Format::Metadata => {
            let mut metadata = json!({"resourceVersion": page.resource_version.to_string()});
            if let Some(token) = &page.continue_token {
                metadata["continue"] = json!(token);
            }
            if let Some(remaining) = page.remaining {
                metadata["remainingItemCount"] = json!(remaining);
            }
            let items: Vec<Value> = page.items.iter().map(partial_metadata).collect();
            json_response(
                StatusCode::OK,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "items": items}),
            )
        }
        Format::Table(v) => json_response(
            StatusCode::OK,
            &to_table(
                kind,
                &page.items,
                page.resource_version,
                page.continue_token.as_deref(),
                v,
            ),
        ),
    }
}

/// A watch: newline-delimited `{"type", "object"}` events until timeoutSeconds.
fn watch(
    api: &Arc<Apiserver>,
    kind: &'static Kind,
    namespace: &str,
    pairs: &[(String, String)],
    format: Format,
) -> Result<Response, ApiError> {
    let labels = match param(pairs, "labelSelector") {
        Some(s) => LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
        None => LabelSelector::everything(),
    };
    let fields = param(pairs, "fieldSelector")
        .filter(|s| !s.is_empty())
        .map(FieldSelector::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let since = match param(pairs, "resourceVersion") {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
        ),
    };
    let timeout = param(pairs, "timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_WATCH_TIMEOUT);
    let (initial, mut changes) = api.watch_start(kind, since)?;
    let namespace = (!namespace.is_empty()).then(|| namespace.to_string());
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let event = move |change: &super::store::Change| -> Option<Bytes> {
        if change.storage != kind.storage
            || !change_matches(
                kind,
                namespace.as_deref(),
                &labels,
                fields.as_ref(),
                &change.object,
            )
        {
            return None;
        }
        let object = events::from_storage(kind, &change.object);
        // kubectl get -w asks for Tables: each event then carries a one-row Table.
        let object = match format {
            Format::Json => object,
            Format::Metadata => partial_metadata(&object),
            Format::Table(v) => to_table(
                kind,
                std::slice::from_ref(&object),
                change.resource_version,
                None,
                v,
            ),
        };
        let mut line = serde_json::to_vec(&json!({
            "type": change.change.as_str(),
            "object": object,
        }))
        .ok()?;
        line.push(b'\n');
        Some(Bytes::from(line))
    };
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        for change in &initial {
            if let Some(line) = event(change)
                && tx.send(line).await.is_err()
            {
                return;
            }
        }
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                received = changes.recv() => match received {
                    Ok(change) => {
                        if let Some(line) = event(&change)
                            && tx.send(line).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let gone = ApiError::new(410, "Expired", "the watch fell too far behind");
                        let mut line = serde_json::to_vec(&json!({"type": "ERROR", "object": gone.status()})).unwrap_or_default();
                        line.push(b'\n');
                        let _ = tx.send(Bytes::from(line)).await;
                        return;
                    }
                    Err(_) => return,
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Paths that are not resources: version, health, metrics, OpenAPI.
fn non_resource(api: &Apiserver, method: &Method, path: &str, query: &str) -> Option<Response> {
    if *method != Method::GET && *method != Method::HEAD {
        return None;
    }
    if path == "/version" || path == "/version/" {
        return Some(json_response(StatusCode::OK, &api.version_info()));
    }
    if path == "/metrics" {
        return Some(
            (
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                api.metrics.render(),
            )
                .into_response(),
        );
    }
    if let Some((endpoint, rest)) = Endpoint::from_path(path) {
        let (code, body) = api.health().render(endpoint, rest, query);
        return Some(
            (
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (
                        header::HeaderName::from_static("x-content-type-options"),
                        "nosniff",
                    ),
                ],
                body,
            )
                .into_response(),
        );
    }
    if path.starts_with("/openapi/") || path == "/swagger.json" {
        return Some((StatusCode::NOT_FOUND, "404 page not found\n").into_response());
    }
    None
}

fn resource_list(group: &str, version: &str) -> Value {
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut resources = Vec::new();
    for kind in kinds::in_group_version(group, version) {
        let mut r = json!({
            "name": kind.plural, "singularName": kind.singular, "namespaced": kind.namespaced,
            "kind": kind.kind, "verbs": kind.verbs,
        });
        if !kind.short_names.is_empty() {
            r["shortNames"] = json!(kind.short_names);
        }
        if matches!(
            kind.storage,
            "pods" | "deployments" | "replicasets" | "services"
        ) {
            r["categories"] = json!(["all"]);
        }
        resources.push(r);
        for sub in kind.subresources {
            let (sub_kind, sub_group, sub_version) = if *sub == "scale" {
                ("Scale", "autoscaling", "v1")
            } else {
                (kind.kind, kind.group, kind.version)
            };
            let mut s = json!({
                "name": format!("{}/{sub}", kind.plural), "singularName": "", "namespaced": kind.namespaced,
                "kind": sub_kind, "verbs": ["get", "patch", "update"],
            });
            if *sub == "scale" {
                s["group"] = json!(sub_group);
                s["version"] = json!(sub_version);
            }
            resources.push(s);
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

fn api_group(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({"name": group, "versions": [gv], "preferredVersion": gv})
}

/// Legacy discovery: /api, /apis, /api/v1, /apis/GROUP, /apis/GROUP/VERSION. Clients asking
/// for aggregated discovery get the legacy documents (Content-Type application/json) and fall
/// back, as they do against older apiservers.
fn discovery(api: &Apiserver, path: &str) -> Option<Response> {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let body = match parts.as_slice() {
        ["api"] => {
            let address = api
                .address()
                .map(|a| a.to_string())
                .unwrap_or_else(|| "127.0.0.1:6443".into());
            json!({"kind": "APIVersions", "versions": ["v1"],
                   "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]})
        }
        ["api", "v1"] => resource_list("", "v1"),
        ["apis"] => {
            let groups: Vec<Value> = kinds::groups()
                .into_iter()
                .map(|(g, v)| api_group(g, v))
                .collect();
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        }
        ["apis", group] => {
            let (g, v) = kinds::groups().into_iter().find(|(g, _)| g == group)?;
            let mut body = api_group(g, v);
            body["kind"] = json!("APIGroup");
            body["apiVersion"] = json!("v1");
            body
        }
        ["apis", group, version] => {
            kinds::groups()
                .into_iter()
                .find(|(g, v)| g == group && v == version)?;
            resource_list(group, version)
        }
        _ => return None,
    };
    Some(json_response(StatusCode::OK, &body))
}

/// The kinds the simulator serves, for scenario validation.
pub fn served_kinds() -> &'static [Kind] {
    KINDS
}

/// Writes the kubeconfig for this apiserver.
pub fn kubeconfig_for(api: &Apiserver, context: &str, ca_pem: &str) -> Option<String> {
    Some(tls::kubeconfig_yaml(
        context,
        api.address()?,
        ca_pem,
        api.token(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: Method, path: &str) -> Option<RequestInfo> {
        request_info(&method, path, &[])
    }

    #[test]
    fn parses_request_paths() {
        let i = parse(Method::GET, "/api/v1/namespaces/kube-system/configmaps/x").unwrap();
        assert_eq!(
            (
                i.verb.as_str(),
                i.resource.as_str(),
                i.namespace.as_str(),
                i.name.as_str()
            ),
            ("get", "configmaps", "kube-system", "x")
        );
        let i = parse(Method::PATCH, "/api/v1/nodes/n1/status").unwrap();
        assert_eq!(
            (i.verb.as_str(), i.resource.as_str(), i.subresource.as_str()),
            ("patch", "nodes", "status")
        );
        let i = parse(Method::GET, "/api/v1/namespaces/opa").unwrap();
        assert_eq!(
            (
                i.verb.as_str(),
                i.resource.as_str(),
                i.name.as_str(),
                i.namespace.as_str()
            ),
            ("get", "namespaces", "opa", "")
        );
        let i = parse(
            Method::GET,
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        )
        .unwrap();
        assert_eq!(
            (i.verb.as_str(), i.group.as_str()),
            ("list", "admissionregistration.k8s.io")
        );
        let i = request_info(
            &Method::GET,
            "/api/v1/pods",
            &[("watch".into(), "true".into())],
        )
        .unwrap();
        assert_eq!(i.verb, "watch");
        assert!(parse(Method::GET, "/api").is_none());
        assert!(parse(Method::GET, "/api/v1").is_none());
    }

    #[test]
    fn negotiates_like_kubectl_and_kube_rs() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json".parse().unwrap());
        assert_eq!(negotiate(&h), Some(Format::Table("v1")));
        h.insert(
            header::ACCEPT,
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
                .parse()
                .unwrap(),
        );
        assert_eq!(negotiate(&h), Some(Format::Metadata));
        h.insert(
            header::ACCEPT,
            "application/vnd.kubernetes.protobuf, */*".parse().unwrap(),
        );
        assert_eq!(negotiate(&h), Some(Format::Json));
        h.insert(
            header::ACCEPT,
            "application/vnd.kubernetes.protobuf".parse().unwrap(),
        );
        assert_eq!(negotiate(&h), None);
    }
}
