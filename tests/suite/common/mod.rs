//! Shared pieces of the integration tests: a simulator started in-process from scenario
//! YAML, kube clients built from the kubeconfig it writes, and kubectl.
#![allow(dead_code)]

pub mod cli;
pub mod hostile;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_rescue::sim::Simulator;
use kube_rescue::sim::scenario::Scenario;

/// The one allowance every timing bound of the tests makes for this machine: two cores, the
/// suite's tests running eight at a time, and debug builds. A promise of "within `d`" is
/// checked as "within `d` + MARGIN" ([`bound`]); waits for a condition that has no promised
/// time use a bound of their own that only catches a hang.
pub const MARGIN: Duration = Duration::from_secs(1);

/// The bound a test checks a timing promise against: the promise plus [`MARGIN`].
pub fn bound(promise: Duration) -> Duration {
    promise + MARGIN
}

pub struct Running {
    pub sim: Simulator,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

/// Starts the simulator on loopback with a scenario given as YAML and writes its kubeconfig.
pub async fn start_yaml(yaml: &str) -> Running {
    let scenario = Scenario::from_yaml(yaml, "test scenario").expect("valid test scenario");
    start(scenario).await
}

pub async fn start(scenario: Scenario) -> Running {
    let sim = Simulator::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    Running {
        sim,
        dir,
        kubeconfig,
    }
}

/// A kube client from a kubeconfig file, TLS verified against the simulator's CA.
pub async fn client(kubeconfig: &Path) -> kube::Client {
    let kc = Kubeconfig::read_from(kubeconfig).expect("kubeconfig reads");
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is valid");
    kube::Client::try_from(config).expect("client builds")
}

/// A kube client that does not retry 429/503/504 answers (kube-rs does by default), for
/// looking at those answers themselves.
pub async fn client_without_retry(kubeconfig: &Path) -> kube::Client {
    let kc = Kubeconfig::read_from(kubeconfig).expect("kubeconfig reads");
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is valid");
    config.default_retry = false;
    kube::Client::try_from(config).expect("client builds")
}

/// The path of kubectl, or None. With KUBE_RESCUE_REQUIRE_KUBECTL=1 (set by .ci/run) a
/// missing kubectl fails the test instead of skipping it.
pub fn kubectl() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let required = std::env::var("KUBE_RESCUE_REQUIRE_KUBECTL").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "kubectl is required (KUBE_RESCUE_REQUIRE_KUBECTL=1) but is not on PATH"
        );
        eprintln!(
            "\n##########\n# SKIPPED: kubectl is not on PATH, so the kubectl compatibility test did not run.\n##########\n"
        );
    }
    found
}

/// Runs kubectl against a kubeconfig; returns (success, stdout, stderr, elapsed).
pub fn run_kubectl(
    kubectl: &Path,
    kubeconfig: &Path,
    args: &[&str],
) -> (bool, String, String, Duration) {
    let started = Instant::now();
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=40s")
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl runs");
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
        started.elapsed(),
    )
}

/// Whether kubectl failed only because the apiserver was restarting (the outage scenario
/// takes it down on purpose).
pub fn apiserver_was_down(stderr: &str) -> bool {
    [
        "connection refused",
        "EOF",
        "connection reset",
        "Unable to connect",
        "broken pipe",
        "TLS handshake",
    ]
    .iter()
    .any(|s| stderr.contains(s))
}

/// A Cluster connected to the simulator as `kube-rescue` connects to any cluster.
pub async fn connect(
    running: &Running,
    timeout: Duration,
    read_only: bool,
) -> kube_rescue::cluster::Cluster {
    kube_rescue::cluster::Cluster::connect(&kube_rescue::cluster::ConnectOptions {
        kubeconfig: Some(running.kubeconfig.clone()),
        context: None,
        timeout,
        read_only,
        exec_timeout: Duration::from_secs(5),
        warn_on_stderr: false,
    })
    .await
    .expect("the simulator's kubeconfig connects")
}

/// The simulator's request log after `since`: (records, last sequence number).
pub async fn request_log(running: &Running, since: u64) -> (Vec<serde_json::Value>, u64) {
    request_log_at(&running.kubeconfig, since).await
}

/// [`request_log`] of the simulator a kubeconfig points at (a demo's, started by the binary).
pub async fn request_log_at(kubeconfig: &Path, since: u64) -> (Vec<serde_json::Value>, u64) {
    use http_body_util::BodyExt;
    let client = client_without_retry(kubeconfig).await;
    let request = http::Request::get(format!("/sim/requests?since={since}"))
        .body(kube::client::Body::from(Vec::new()))
        .expect("request");
    let response = tokio::time::timeout(Duration::from_secs(10), client.send(request))
        .await
        .expect("the request log answers")
        .expect("the request log answers");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let log: serde_json::Value = serde_json::from_slice(&body).expect("json");
    (
        log["requests"]
            .as_array()
            .expect("a list of requests")
            .clone(),
        log["last"].as_u64().expect("the last sequence number"),
    )
}

/// Polls `check` every 100 ms until it returns Some; panics after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {secs} s waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The shipped outage without its timeline: the webhook hangs and writes fail, but the
/// apiserver does not restart under a test's feet.
pub fn outage_held_still() -> Scenario {
    let mut scenario = Scenario::load("opa-webhook-outage").expect("the shipped outage loads");
    scenario.timeline.clear();
    scenario
}

/// A namespace and one fail-closed validating webhook configuration (calling a Service with no
/// backend), for the tests of how writes of webhook configurations are validated.
pub const WEBHOOK_SCENARIO: &str = r#"
name: validation
cluster: {kubelets: false, nodeLifecycle: false}
objects:
  - {apiVersion: v1, kind: Namespace, metadata: {name: opa}}
  - apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingWebhookConfiguration
    metadata: {name: opa-validating-webhook}
    webhooks:
      - name: validating-webhook.openpolicyagent.org
        rules: [{operations: [CREATE, UPDATE], apiGroups: ["*"], apiVersions: ["*"], resources: ["*"]}]
        clientConfig: {service: {namespace: opa, name: opa, path: /}}
        failurePolicy: Fail
        sideEffects: None
        admissionReviewVersions: [v1]
"#;

/// Makes the simulator's RBAC refuse deleting webhook configurations.
pub fn deny_deleting_webhook_configurations(scenario: &mut Scenario) {
    use kube_rescue::sim::scenario::{FaultMatch, Verb};
    scenario.deny.push(FaultMatch {
        verb: Some(Verb::Delete),
        resource: Some("validatingwebhookconfigurations".into()),
        ..FaultMatch::default()
    });
}
