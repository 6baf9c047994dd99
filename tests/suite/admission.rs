//! Admission against real webhook servers: HTTPS servers with their own CA in caBundle, plain
//! HTTP servers, and the scenario backends. Only the store is faked (namespaces, services).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use kube_rescue::sim::admission::{
    AdmissionEnv, AdmissionError, Attributes, CallResult, Operation, RejectionErrorType,
    ServiceResolution, UserInfo, WebhookCallRecord, admit,
};
use kube_rescue::sim::backends::{BackendServers, BackendSpec, BackendTarget, Behavior};
use serde_json::{Value, json};
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------------------------
// A fake store

#[derive(Default)]
struct Env {
    mutating: Vec<Value>,
    validating: Vec<Value>,
    services: BTreeMap<(String, String), ServiceResolution>,
    backends: Option<BackendServers>,
    records: Mutex<Vec<WebhookCallRecord>>,
}

impl Env {
    fn records(&self) -> Vec<WebhookCallRecord> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn service(mut self, ns: &str, name: &str, r: ServiceResolution) -> Self {
        self.services.insert((ns.into(), name.into()), r);
        self
    }
}

impl AdmissionEnv for Env {
    fn webhook_configurations(&self) -> (Vec<Value>, Vec<Value>) {
        (self.mutating.clone(), self.validating.clone())
    }
    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        let mut labels = BTreeMap::new();
        labels.insert("kubernetes.io/metadata.name".into(), namespace.into());
        Some(labels)
    }
    fn resolve_service(&self, namespace: &str, name: &str, _port: i32) -> ServiceResolution {
        self.services
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
            .unwrap_or(ServiceResolution::NotFound)
    }
    fn backend(
        &self,
        webhook: &str,
        service: Option<(&str, &str)>,
        url: Option<&str>,
    ) -> Option<BackendTarget> {
        self.backends.as_ref()?.target_for(webhook, service, url)
    }
    fn record(&self, call: &WebhookCallRecord) {
        if let Ok(mut r) = self.records.lock() {
            r.push(call.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Real webhook servers

type Handler = Arc<dyn Fn(&Value) -> (u16, &'static str, String) + Send + Sync>;

struct WebhookServer {
    url: String,
    ca_bundle: Option<String>,
    seen: Arc<Mutex<Vec<Value>>>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebhookServer {
    fn seen(&self) -> Vec<Value> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn tls_material() -> (rustls::ServerConfig, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &*ca)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca.pem());
    (config, bundle)
}

async fn serve(tls: bool, path: &str, handler: Handler) -> WebhookServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (acceptor, ca_bundle) = if tls {
        let (config, bundle) = tls_material();
        (
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
            Some(bundle),
        )
    } else {
        (None, None)
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hits = Arc::new(AtomicUsize::new(0));
    let (seen2, hits2) = (seen.clone(), hits.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (handler, seen, hits, acceptor) = (
                handler.clone(),
                seen2.clone(),
                hits2.clone(),
                acceptor.clone(),
            );
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<_>| {
                    let (handler, seen, hits) = (handler.clone(), seen.clone(), hits.clone());
                    async move {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let query = req.uri().query().unwrap_or_default().to_string();
                        let body: hyper::body::Incoming = req.into_body();
                        let bytes = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let mut review: Value =
                            serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        review["query"] = json!(query);
                        if let Ok(mut s) = seen.lock() {
                            s.push(review.clone());
                        }
                        let (status, ctype, body) = handler(&review);
                        let mut resp = http::Response::new(Full::new(Bytes::from(body)));
                        *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
                        resp.headers_mut()
                            .insert("content-type", http::HeaderValue::from_static(ctype));
                        Ok::<_, Infallible>(resp)
                    }
                });
                let builder = hyper::server::conn::http1::Builder::new();
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(stream).await {
                            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                        }
                    }
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    let scheme = if tls { "https" } else { "http" };
    WebhookServer {
        url: format!("{scheme}://127.0.0.1:{}{path}", addr.port()),
        ca_bundle,
        seen,
        hits,
        task,
    }
}

fn review_answer(review: &Value, response: Value) -> (u16, &'static str, String) {
    let mut response = response;
    response["uid"] = review["request"]["uid"].clone();
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
    (200, "application/json", body.to_string())
}

fn allow_handler() -> Handler {
    Arc::new(|r| review_answer(r, json!({"allowed": true})))
}

fn patch_handler(ops: Value) -> Handler {
    Arc::new(move |r| {
        let patch = base64::engine::general_purpose::STANDARD.encode(ops.to_string());
        review_answer(
            r,
            json!({"allowed": true, "patchType": "JSONPatch", "patch": patch}),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Configurations and requests

fn url_webhook(name: &str, server: &WebhookServer, extra: Value) -> Value {
    let mut client = json!({"url": server.url});
    if let Some(ca) = &server.ca_bundle {
        client["caBundle"] = json!(ca);
    }
    webhook(name, client, extra)
}

fn service_webhook(name: &str, ns: &str, svc: &str, path: &str, extra: Value) -> Value {
    webhook(
        name,
        json!({"service": {"namespace": ns, "name": svc, "path": path}}),
        extra,
    )
}

fn webhook(name: &str, client: Value, extra: Value) -> Value {
    let mut hook = json!({
        "name": name,
        "clientConfig": client,
        "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    });
    if let (Some(h), Some(extra)) = (hook.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            h.insert(k.clone(), v.clone());
        }
    }
    hook
}

fn config(name: &str, hooks: Vec<Value>) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "metadata": {"name": name},
        "webhooks": hooks,
    })
}

fn configmap() -> Attributes {
    Attributes {
        operation: Operation::Create,
        group: String::new(),
        version: "v1".into(),
        resource: "configmaps".into(),
        subresource: String::new(),
        kind: "ConfigMap".into(),
        namespaced: true,
        namespace: "default".into(),
        name: "cm".into(),
        object: Some(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "default", "labels": {"app": "web"}},
            "data": {"k": "v"}
        })),
        old_object: None,
        dry_run: false,
        user: UserInfo {
            username: "alice".into(),
            groups: vec!["system:authenticated".into()],
        },
    }
}

async fn backends(specs: Vec<BackendSpec>) -> BackendServers {
    BackendServers::start(&specs).await.unwrap()
}

fn spec(service: &str, behavior: Behavior) -> BackendSpec {
    BackendSpec {
        service: Some(service.into()),
        url: None,
        webhook: None,
        behavior,
        latency_ms: 0,
        message: None,
        forward: None,
    }
}

async fn opa_env(behavior: Behavior, extra: Value) -> Env {
    let mut env = Env::default().service(
        "opa",
        "opa",
        ServiceResolution::Endpoint {
            ip: "10.0.0.7".into(),
        },
    );
    env.validating = vec![config(
        "opa",
        vec![service_webhook(
            "validating.opa.example.com",
            "opa",
            "opa",
            "/v1/admit",
            extra,
        )],
    )];
    env.backends = Some(backends(vec![spec("opa/opa", behavior)]).await);
    env
}

async fn expect_err(env: &Env, attrs: &mut Attributes) -> AdmissionError {
    match admit(env, attrs).await {
        Err(e) => e,
        Ok(outcome) => panic!("admitted: {outcome:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn https_url_webhook_allows_and_receives_a_full_review() {
    let server = serve(true, "/validate", allow_handler()).await;
    let env = Env {
        validating: vec![config(
            "v",
            vec![url_webhook("allow.example.com", &server, json!({}))],
        )],
        ..Env::default()
    };
    let mut attrs = configmap();
    let outcome = admit(&env, &mut attrs).await.unwrap();
    assert_eq!(
        outcome.called().collect::<Vec<_>>(),
        vec!["allow.example.com"]
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(r["kind"], "AdmissionReview");
    assert_eq!(r["query"], "timeout=10s");
    let req = &r["request"];
    assert!(!req["uid"].as_str().unwrap_or_default().is_empty());
    assert_eq!(req["operation"], "CREATE");
    assert_eq!(
        req["kind"],
        json!({"group": "", "version": "v1", "kind": "ConfigMap"})
    );
    assert_eq!(
        req["resource"],
        json!({"group": "", "version": "v1", "resource": "configmaps"})
    );
    assert_eq!(req["requestKind"], req["kind"]);
    assert_eq!(req["namespace"], "default");
    assert_eq!(req["name"], "cm");
    assert_eq!(req["userInfo"]["username"], "alice");
    assert_eq!(req["object"]["data"]["k"], "v");
    assert_eq!(req["dryRun"], false);
    assert_eq!(req["options"]["kind"], "CreateOptions");
    let records = env.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].code, 200);
    assert!(!records[0].rejected);
    assert_eq!(records[0].webhook_type.as_str(), "validating");
}

#[tokio::test]
async fn https_with_the_wrong_ca_fails_verification() {
    let server = serve(true, "/validate", allow_handler()).await;
    let other = serve(true, "/", allow_handler()).await;
    let mut hook = url_webhook("strict.example.com", &server, json!({}));
    hook["clientConfig"]["caBundle"] = json!(other.ca_bundle);
    let env = Env {
        validating: vec![config("v", vec![hook])],
        ..Env::default()
    };
    let err = expect_err(&env, &mut configmap()).await;
    assert_eq!(err.code, 500);
    assert_eq!(
        err.message,
        format!(
            "Internal error occurred: failed calling webhook \"strict.example.com\": failed to call webhook: Post \"{}?timeout=10s\": tls: failed to verify certificate: x509: certificate signed by unknown authority",
            server.url
        )
    );
    assert_eq!(server.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn denial_carries_message_and_code() {
    let server = serve(
        false,
        "/deny",
        Arc::new(|r| {
            review_answer(
                r,
                json!({"allowed": false, "status": {"code": 403, "reason": "Forbidden", "message": "configmaps must have an owner"}}),
            )
        }),
    )
    .await;
    let env = Env {
        validating: vec![config(
            "v",
            vec![url_webhook("deny.example.com", &server, json!({}))],
        )],
        ..Env::default()
    };
    let err = expect_err(&env, &mut configmap()).await;
    assert_eq!(err.code, 403);
    assert_eq!(err.reason, "Forbidden");
    assert_eq!(err.webhook, "deny.example.com");
    assert_eq!(
        err.message,
        "admission webhook \"deny.example.com\" denied the request: configmaps must have an owner"
    );
    let status = err.to_status();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["code"], 403);
    let records = env.records();
    assert_eq!(
        records[0].rejection,
        Some((RejectionErrorType::NoError, 403))
    );

    // No status at all: 400 without explanation.
    let bare = serve(
        false,
        "/",
        Arc::new(|r| review_answer(r, json!({"allowed": false}))),
    )
    .await;
    let env = Env {
        validating: vec![config(
            "v",
            vec![url_webhook("bare.example.com", &bare, json!({}))],
        )],
        ..Env::default()
    };
    let err = expect_err(&env, &mut configmap()).await;
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "admission webhook \"bare.example.com\" denied the request without explanation"
    );
}

#[tokio::test]
async fn mutating_patch_is_applied_and_seen_by_validating() {
    let mutator = serve(
        true,
        "/mutate",
        patch_handler(json!([{"op": "add", "path": "/metadata/labels/injected", "value": "yes"}])),
    )
    .await;
    let validator = serve(false, "/validate", allow_handler()).await;
    let env = Env {
        mutating: vec![config(
            "m",
            vec![url_webhook("m.example.com", &mutator, json!({}))],
        )],
        validating: vec![config(
            "v",
            vec![url_webhook("v.example.com", &validator, json!({}))],
        )],
        ..Env::default()
    };
    let mut attrs = configmap();
    let outcome = admit(&env, &mut attrs).await.unwrap();
    assert!(outcome.patched());
    assert_eq!(
        attrs.object.as_ref().unwrap()["metadata"]["labels"]["injected"],
        "yes"
    );
    let seen = validator.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0]["request"]["object"]["metadata"]["labels"]["injected"],
        "yes"
    );
    let types: Vec<_> = env
        .records()
        .iter()
        .map(|r| r.webhook_type.as_str())
        .collect();
    assert_eq!(types, vec!["admit", "validating"]);
}

/// A mutating webhook that adds label `adds`, saying whether it saw label `after` already set.
fn chain_handler(after: &'static str, adds: &'static str) -> Handler {
    Arc::new(move |r| {
        let saw = !r["request"]["object"]["metadata"]["labels"][after].is_null();
        let value = if saw {
            format!("saw-{after}")
        } else {
            "alone".to_string()
        };
        let ops =
            json!([{"op": "add", "path": format!("/metadata/labels/{adds}"), "value": value}]);
        let patch = base64::engine::general_purpose::STANDARD.encode(ops.to_string());
        review_answer(
            r,
            json!({"allowed": true, "patchType": "JSONPatch", "patch": patch}),
        )
    })
}

#[tokio::test]
async fn mutating_webhooks_run_in_configuration_name_order() {
    let first = serve(false, "/", chain_handler("none", "first")).await;
    let second = serve(false, "/", chain_handler("first", "second")).await;
    let third = serve(false, "/", chain_handler("second", "third")).await;
    let env = Env {
        // Listed neither sorted nor reverse sorted: the apiserver sorts configurations by name.
        mutating: vec![
            config(
                "c",
                vec![url_webhook("third.example.com", &third, json!({}))],
            ),
            config(
                "a",
                vec![url_webhook("first.example.com", &first, json!({}))],
            ),
            config(
                "b",
                vec![url_webhook("second.example.com", &second, json!({}))],
            ),
        ],
        ..Env::default()
    };
    let mut attrs = configmap();
    let outcome = admit(&env, &mut attrs).await.unwrap();
    assert_eq!(
        outcome.called().collect::<Vec<_>>(),
        vec![
            "first.example.com",
            "second.example.com",
            "third.example.com"
        ]
    );
    let labels = &attrs.object.as_ref().unwrap()["metadata"]["labels"];
    assert_eq!(labels["first"], "alone");
    assert_eq!(labels["second"], "saw-first");
    assert_eq!(labels["third"], "saw-second");
}

#[tokio::test]
async fn hanging_backend_times_out_with_failure_policy_fail() {
    let env = opa_env(Behavior::Hang, json!({"timeoutSeconds": 1})).await;
    let started = Instant::now();
    let err = expect_err(&env, &mut configmap()).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(err.code, 500);
    assert_eq!(err.reason, "InternalError");
    assert_eq!(
        err.message,
        "Internal error occurred: failed calling webhook \"validating.opa.example.com\": failed to call webhook: Post \"https://opa.opa.svc:443/v1/admit?timeout=1s\": context deadline exceeded"
    );
    let records = env.records();
    assert_eq!(records.len(), 1);
    assert!(records[0].rejected);
    assert_eq!(
        records[0].rejection.map(|r| r.0),
        Some(RejectionErrorType::CallingWebhookError)
    );
}

#[tokio::test]
async fn hanging_backend_with_failure_policy_ignore_fails_open() {
    let env = opa_env(
        Behavior::Hang,
        json!({"timeoutSeconds": 1, "failurePolicy": "Ignore"}),
    )
    .await;
    let started = Instant::now();
    let outcome = admit(&env, &mut configmap()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        outcome.ignored().collect::<Vec<_>>(),
        vec!["validating.opa.example.com"]
    );
    match &outcome.calls[0].result {
        CallResult::FailedOpen { error } => assert!(error.ends_with("context deadline exceeded")),
        other => panic!("{other:?}"),
    }
    let records = env.records();
    assert!(records[0].fail_open);
    assert!(!records[0].rejected);
}

#[tokio::test]
async fn refused_backend_names_the_endpoint() {
    let env = opa_env(Behavior::Refuse, json!({})).await;
    let err = expect_err(&env, &mut configmap()).await;
    assert_eq!(
        err.message,
        "Internal error occurred: failed calling webhook \"validating.opa.example.com\": failed to call webhook: Post \"https://opa.opa.svc:443/v1/admit?timeout=10s\": dial tcp 10.0.0.7:443: connect: connection refused"
    );
}

#[tokio::test]
async fn service_without_endpoints_or_missing() {
    let mut env = opa_env(Behavior::Allow, json!({})).await;
    env.services
        .insert(("opa".into(), "opa".into()), ServiceResolution::NoEndpoints);
    let err = expect_err(&env, &mut configmap()).await;
    assert_eq!(
        err.message,
        "Internal error occurred: failed calling webhook \"validating.opa.example.com\": failed to call webhook: Post \"https://opa.opa.svc:443/v1/admit?timeout=10s\": no endpoints available for service \"opa\""
    );
    env.services.clear();
    let err = expect_err(&env, &mut configmap()).await;
    assert!(
        err.message.ends_with(
            "Post \"https://opa.opa.svc:443/v1/admit?timeout=10s\": service \"opa\" not found"
        ),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn dry_run_with_side_effects_is_refused_without_calling() {
    let server = serve(false, "/", allow_handler()).await;
    let env = Env {
        validating: vec![config(
            "v",
            vec![url_webhook(
                "effects.example.com",
                &server,
                json!({"sideEffects": "Some"}),
            )],
        )],
        ..Env::default()
    };
    let mut attrs = configmap();
    attrs.dry_run = true;
    let err = expect_err(&env, &mut attrs).await;
    assert_eq!(err.code, 400);
    assert_eq!(err.reason, "BadRequest");
    assert_eq!(
        err.message,
        "admission webhook \"effects.example.com\" does not support dry run"
    );
    assert_eq!(server.hits.load(Ordering::SeqCst), 0);

    // NoneOnDryRun is called, and sees dryRun.
    let env = Env {
        validating: vec![config(
            "v",
            vec![url_webhook(
                "ok.example.com",
                &server,
                json!({"sideEffects": "NoneOnDryRun"}),
            )],
        )],
        ..Env::default()
    };
    admit(&env, &mut attrs).await.unwrap();
    assert_eq!(server.seen()[0]["request"]["dryRun"], true);
    assert_eq!(
        server.seen()[0]["request"]["options"]["dryRun"],
        json!(["All"])
    );
}

#[tokio::test]
async fn webhook_configurations_are_never_sent_to_webhooks() {
    let server = serve(
        false,
        "/",
        Arc::new(|r| review_answer(r, json!({"allowed": false}))),
    )
    .await;
    let mut hook = url_webhook("everything.example.com", &server, json!({}));
    hook["rules"] = json!([{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}]);
    let env = Env {
        validating: vec![config("v", vec![hook])],
        ..Env::default()
    };
    let mut attrs = configmap();
    attrs.operation = Operation::Delete;
    attrs.group = "admissionregistration.k8s.io".into();
    attrs.resource = "validatingwebhookconfigurations".into();
    attrs.kind = "ValidatingWebhookConfiguration".into();
    attrs.namespaced = false;
    attrs.namespace = String::new();
    attrs.old_object = attrs.object.take();
    admit(&env, &mut attrs).await.unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), 0);
    // The same webhook does refuse a ConfigMap.
    assert!(admit(&env, &mut configmap()).await.is_err());
}

#[tokio::test]
async fn validating_webhooks_run_in_parallel_and_the_first_in_order_wins() {
    let mut env = Env::default().service(
        "opa",
        "opa",
        ServiceResolution::Endpoint {
            ip: "10.0.0.7".into(),
        },
    );
    let hooks = |n: &str| service_webhook(n, "opa", "opa", "/", json!({"timeoutSeconds": 1}));
    env.validating = vec![
        config("c", vec![hooks("c.example.com")]),
        config("a", vec![hooks("a.example.com")]),
        config("b", vec![hooks("b.example.com")]),
    ];
    env.backends = Some(backends(vec![spec("opa/opa", Behavior::Hang)]).await);
    let started = Instant::now();
    let err = expect_err(&env, &mut configmap()).await;
    // Three 1 s timeouts in sequence would take 3 s.
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(err.webhook, "a.example.com");
    assert_eq!(env.records().len(), 3);
}

#[tokio::test]
async fn service_webhook_without_a_backend_is_allowed() {
    let mut env = Env::default().service(
        "sys",
        "hook",
        ServiceResolution::Endpoint {
            ip: "10.0.0.9".into(),
        },
    );
    env.validating = vec![config(
        "v",
        vec![service_webhook(
            "quiet.example.com",
            "sys",
            "hook",
            "/",
            json!({}),
        )],
    )];
    let outcome = admit(&env, &mut configmap()).await.unwrap();
    assert_eq!(outcome.calls[0].result, CallResult::NoBackend);
}

#[tokio::test]
async fn unusable_answers_get_the_apiservers_wording() {
    let cases: Vec<(Handler, &str)> = vec![
        (
            Arc::new(|_| (500, "text/plain", "boom".to_string())),
            "failed to call webhook: an error on the server (\"boom\") has prevented the request from succeeding",
        ),
        (
            Arc::new(|_| (200, "application/json", "not json".to_string())),
            "failed to call webhook: couldn't get version/kind; json parse error: ",
        ),
        (
            Arc::new(|_| {
                let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "other", "allowed": true}});
                (200, "application/json", body.to_string())
            }),
            "received invalid webhook response: expected response.uid=",
        ),
    ];
    for (handler, want) in cases {
        let server = serve(false, "/", handler).await;
        let env = Env {
            validating: vec![config(
                "v",
                vec![url_webhook("odd.example.com", &server, json!({}))],
            )],
            ..Env::default()
        };
        let err = expect_err(&env, &mut configmap()).await;
        let prefix = "Internal error occurred: failed calling webhook \"odd.example.com\": ";
        assert!(
            err.message.starts_with(&format!("{prefix}{want}")),
            "{} does not start with {want}",
            err.message
        );
    }
}

#[tokio::test]
async fn backend_behaviours() {
    // allow
    let env = opa_env(Behavior::Allow, json!({})).await;
    let outcome = admit(&env, &mut configmap()).await.unwrap();
    assert_eq!(
        outcome.calls[0].result,
        CallResult::Allowed { patched: false }
    );

    // deny: 403 Forbidden with the message
    let mut env = opa_env(Behavior::Deny, json!({})).await;
    let mut deny = spec("opa/opa", Behavior::Deny);
    deny.message = Some("policy says no".into());
    env.backends = Some(backends(vec![deny]).await);
    let err = expect_err(&env, &mut configmap()).await;
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "admission webhook \"validating.opa.example.com\" denied the request: policy says no"
    );

    // error: HTTP 500 with a body
    let mut env = opa_env(Behavior::Error, json!({})).await;
    let mut error = spec("opa/opa", Behavior::Error);
    error.message = Some("opa is down".into());
    env.backends = Some(backends(vec![error]).await);
    let err = expect_err(&env, &mut configmap()).await;
    assert!(
        err.message.ends_with(
            "failed to call webhook: an error on the server (\"opa is down\") has prevented the request from succeeding"
        ),
        "{}",
        err.message
    );
    assert_eq!(env.records()[0].code, 500);

    // slow within the timeout: allowed; slower than the timeout: deadline exceeded
    let mut env = opa_env(Behavior::Slow, json!({"timeoutSeconds": 1})).await;
    let mut slow = spec("opa/opa", Behavior::Slow);
    slow.latency_ms = 200;
    env.backends = Some(backends(vec![slow.clone()]).await);
    admit(&env, &mut configmap()).await.unwrap();
    slow.latency_ms = 1500;
    env.backends.as_ref().unwrap().set(slow).await.unwrap();
    let err = expect_err(&env, &mut configmap()).await;
    assert!(
        err.message.ends_with("context deadline exceeded"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn backend_set_switches_behaviour_at_runtime() {
    let env = opa_env(Behavior::Allow, json!({"timeoutSeconds": 1})).await;
    admit(&env, &mut configmap()).await.unwrap();
    let servers = env.backends.as_ref().unwrap();
    servers
        .set(spec("opa/opa", Behavior::Refuse))
        .await
        .unwrap();
    assert_eq!(servers.specs().len(), 1, "replaced, not added");
    let err = expect_err(&env, &mut configmap()).await;
    assert!(
        err.message.ends_with("connect: connection refused"),
        "{}",
        err.message
    );
    servers.set(spec("opa/opa", Behavior::Hang)).await.unwrap();
    let err = expect_err(&env, &mut configmap()).await;
    assert!(
        err.message.ends_with("context deadline exceeded"),
        "{}",
        err.message
    );
    servers.set(spec("opa/opa", Behavior::Allow)).await.unwrap();
    admit(&env, &mut configmap()).await.unwrap();
}

#[tokio::test]
async fn backend_forward_reaches_a_real_https_server() {
    let real = serve(true, "/real", allow_handler()).await;
    let mut env = Env::default().service(
        "opa",
        "opa",
        ServiceResolution::Endpoint {
            ip: "10.0.0.7".into(),
        },
    );
    let mut hook = service_webhook("fwd.example.com", "opa", "opa", "/v1/admit", json!({}));
    hook["clientConfig"]["caBundle"] = json!(real.ca_bundle);
    env.validating = vec![config("v", vec![hook])];
    let mut fwd = spec("opa/opa", Behavior::Allow);
    fwd.forward = Some(real.url.clone());
    env.backends = Some(backends(vec![fwd]).await);
    admit(&env, &mut configmap()).await.unwrap();
    assert_eq!(real.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn backend_matching_priority() {
    let mut by_webhook = spec("opa/opa", Behavior::Deny);
    by_webhook.service = None;
    by_webhook.webhook = Some("named.example.com".into());
    let mut by_url = spec("x/x", Behavior::Hang);
    by_url.service = None;
    by_url.url = Some("https://hooks.example.com/admit".into());
    let servers = backends(vec![spec("opa/opa", Behavior::Allow), by_webhook, by_url]).await;
    let svc = servers.target_for("other", Some(("opa", "opa")), None);
    let named = servers.target_for("named.example.com", Some(("opa", "opa")), None);
    assert!(svc.is_some() && named.is_some());
    assert_ne!(svc, named, "webhook name wins over service");
    assert!(
        servers
            .target_for("other", None, Some("https://hooks.example.com/admit"))
            .is_some()
    );
    assert!(
        servers
            .target_for("other", Some(("no", "pe")), None)
            .is_none()
    );

    let parsed: BackendSpec =
        serde_json::from_value(json!({"service": "opa/opa", "behavior": "slow", "latencyMs": 5}))
            .unwrap();
    assert_eq!(parsed.behavior, Behavior::Slow);
    assert_eq!(parsed.latency_ms, 5);
}
