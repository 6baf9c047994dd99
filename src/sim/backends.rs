//! The scenario's webhook backends as real local servers: the simulated apiserver's admission
//! client connects to them over TCP exactly as it would to a webhook Service, so hangs, refused
//! connections and slow answers are real. They answer AdmissionReview requests and nothing else.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// How one webhook backend behaves, as a scenario file states it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendSpec {
    /// `namespace/name` of the webhook's Service.
    #[serde(default)]
    pub service: Option<String>,
    /// The webhook's `clientConfig.url`.
    #[serde(default)]
    pub url: Option<String>,
    /// The webhook's name.
    #[serde(default)]
    pub webhook: Option<String>,
    pub behavior: Behavior,
    #[serde(default)]
    pub latency_ms: u64,
    /// The denial message (deny) or the error body (error).
    #[serde(default)]
    pub message: Option<String>,
    /// Send the AdmissionReview to this real URL instead of a local server.
    #[serde(default)]
    pub forward: Option<String>,
}

/// What a backend does with an AdmissionReview.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Behavior {
    /// Answers `allowed: true`.
    Allow,
    /// Answers `allowed: false` with status code 403, reason Forbidden and the message, as
    /// Gatekeeper and controller-runtime webhooks do.
    Deny,
    /// Accepts the connection, reads the request, never answers.
    Hang,
    /// Nothing listens: connecting is refused.
    Refuse,
    /// Answers HTTP 500 with a plain-text body.
    Error,
    /// Answers `allowed: true` after `latencyMs`.
    Slow,
}

/// Where the admission client really connects for a webhook call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendTarget {
    /// A local scenario server, plain HTTP.
    Local { addr: SocketAddr },
    /// A real server: `http://` as is, `https://` verified with the webhook's caBundle.
    Forward { url: String },
}

/// Denial message used when a deny backend has none.
pub const DEFAULT_DENY_MESSAGE: &str = "request denied by policy";
/// Error body used when an error backend has no message.
pub const DEFAULT_ERROR_MESSAGE: &str = "internal webhook error";

struct Entry {
    spec: BackendSpec,
    target: BackendTarget,
    server: Option<tokio::task::AbortHandle>,
}

/// The running backends of one scenario. Dropping it stops every server.
pub struct BackendServers {
    entries: RwLock<Vec<Entry>>,
}

impl std::fmt::Debug for BackendServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let specs: Vec<(BackendSpec, BackendTarget)> = self
            .entries
            .read()
            .map(|e| {
                e.iter()
                    .map(|e| (e.spec.clone(), e.target.clone()))
                    .collect()
            })
            .unwrap_or_default();
        f.debug_struct("BackendServers")
            .field("backends", &specs)
            .finish()
    }
}

fn same_key(a: &BackendSpec, b: &BackendSpec) -> bool {
    a.service == b.service && a.url == b.url && a.webhook == b.webhook
}

impl BackendServers {
    /// Starts one real server per spec on 127.0.0.1 (none for `refuse` and `forward`).
    pub async fn start(specs: &[BackendSpec]) -> std::io::Result<BackendServers> {
        let servers = BackendServers {
            entries: RwLock::new(Vec::new()),
        };
        for spec in specs {
            servers.set(spec.clone()).await?;
        }
        Ok(servers)
    }

    /// The backend for a webhook call: matched by webhook name first, then service
    /// (`namespace/name`), then url.
    pub fn target_for(
        &self,
        webhook: &str,
        service: Option<(&str, &str)>,
        url: Option<&str>,
    ) -> Option<BackendTarget> {
        let entries = self.entries.read().ok()?;
        let by_webhook = entries
            .iter()
            .find(|e| e.spec.webhook.as_deref() == Some(webhook));
        let by_service = || {
            let (ns, name) = service?;
            let key = format!("{ns}/{name}");
            entries
                .iter()
                .find(|e| e.spec.service.as_deref() == Some(key.as_str()))
        };
        let by_url = || {
            let url = url?;
            entries.iter().find(|e| {
                e.spec
                    .url
                    .as_deref()
                    .is_some_and(|u| u.trim_end_matches('/') == url.trim_end_matches('/'))
            })
        };
        by_webhook
            .or_else(by_service)
            .or_else(by_url)
            .map(|e| e.target.clone())
    }

    /// Adds a backend, or replaces the one with the same service/url/webhook keys (its old
    /// server stops; connections it holds are dropped).
    pub async fn set(&self, spec: BackendSpec) -> std::io::Result<()> {
        let (target, server) = launch(&spec).await?;
        let old = {
            let mut entries = self
                .entries
                .write()
                .map_err(|_| std::io::Error::other("backend table poisoned"))?;
            let entry = Entry {
                spec: spec.clone(),
                target,
                server,
            };
            match entries.iter_mut().find(|e| same_key(&e.spec, &spec)) {
                Some(existing) => Some(std::mem::replace(existing, entry)),
                None => {
                    entries.push(entry);
                    None
                }
            }
        };
        if let Some(old) = old
            && let Some(server) = old.server
        {
            server.abort();
        }
        Ok(())
    }

    /// The specs currently in force.
    pub fn specs(&self) -> Vec<BackendSpec> {
        self.entries
            .read()
            .map(|e| e.iter().map(|e| e.spec.clone()).collect())
            .unwrap_or_default()
    }
}

impl Drop for BackendServers {
    fn drop(&mut self) {
        if let Ok(entries) = self.entries.get_mut() {
            for e in entries.iter() {
                if let Some(server) = &e.server {
                    server.abort();
                }
            }
        }
    }
}

async fn launch(
    spec: &BackendSpec,
) -> std::io::Result<(BackendTarget, Option<tokio::task::AbortHandle>)> {
    if let Some(url) = &spec.forward {
        return Ok((BackendTarget::Forward { url: url.clone() }, None));
    }
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let target = BackendTarget::Local { addr };
    match spec.behavior {
        Behavior::Refuse => {
            // The port was just free; with the listener closed, connecting is refused.
            drop(listener);
            Ok((target, None))
        }
        Behavior::Hang => {
            let task = tokio::spawn(serve_hang(listener));
            Ok((target, Some(task.abort_handle())))
        }
        _ => {
            let task = tokio::spawn(serve_reviews(listener, Arc::new(spec.clone())));
            Ok((target, Some(task.abort_handle())))
        }
    }
}

/// Reads whatever the client sends and never answers; a connection ends when the client gives
/// up. Aborting the accept task drops the JoinSet and with it every held connection.
async fn serve_hang(listener: TcpListener) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((mut stream, _)) = accepted else { continue };
                conns.spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve_reviews(listener: TcpListener, spec: Arc<BackendSpec>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let spec = spec.clone();
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let spec = spec.clone();
                        async move { Ok::<_, Infallible>(answer(&spec, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn review_response(request: &Value, response: Value) -> Response<Full<Bytes>> {
    let api_version = request
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("admission.k8s.io/v1");
    let body = json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "response": response,
    });
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

async fn answer(spec: &BackendSpec, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return text(StatusCode::BAD_REQUEST, "could not read request body"),
    };
    if spec.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(spec.latency_ms)).await;
    }
    let review: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return text(StatusCode::BAD_REQUEST, "malformed AdmissionReview"),
    };
    let Some(uid) = review.pointer("/request/uid").and_then(Value::as_str) else {
        return text(
            StatusCode::BAD_REQUEST,
            "AdmissionReview without request.uid",
        );
    };
    match spec.behavior {
        Behavior::Allow | Behavior::Slow => {
            review_response(&review, json!({"uid": uid, "allowed": true}))
        }
        Behavior::Deny => {
            let message = spec.message.as_deref().unwrap_or(DEFAULT_DENY_MESSAGE);
            review_response(
                &review,
                json!({
                    "uid": uid,
                    "allowed": false,
                    "status": {"code": 403, "reason": "Forbidden", "message": message},
                }),
            )
        }
        Behavior::Error => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            spec.message.as_deref().unwrap_or(DEFAULT_ERROR_MESSAGE),
        ),
        // Neither reaches here: hang and refuse have no answering server.
        Behavior::Hang | Behavior::Refuse => {
            std::future::pending::<()>().await;
            text(StatusCode::SERVICE_UNAVAILABLE, "")
        }
    }
}
