//! `kube-rescue check` against apiservers that misbehave as real ones do: it never says "no
//! findings" when it could not see, it ends within the deadline plus half a second, and its
//! memory stays bounded whatever the server sends (measured from /proc while it runs).

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::hostile::{Behaviour, peak_memory, serve};
use serde_json::Value;

/// One request's deadline given to `check`.
const DEADLINE: Duration = Duration::from_secs(3);
/// `check` must have ended this long after the deadline.
const MARGIN: Duration = Duration::from_millis(500);
/// The most memory `check` may use whatever the server sends.
const MEMORY_BOUND: u64 = 150 * 1024 * 1024;

struct Outcome {
    code: Option<i32>,
    took: Duration,
    peak: u64,
    json: Value,
    stderr: String,
}

/// Runs `check --output json` against `kubeconfig`, watching its memory.
fn check(kubeconfig: &std::path::Path) -> Outcome {
    let state = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-rescue"))
        .args(["--state-dir"])
        .arg(state.path())
        .args([
            "check",
            "--timeout",
            "3s",
            "--output",
            "json",
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kube-rescue starts");
    let pid = child.id();
    let mut peak = 0;
    // A generous bound that catches a hang; the contract is checked below.
    let hang = started + Duration::from_secs(60);
    let status = loop {
        if let Some(bytes) = peak_memory(pid) {
            peak = peak.max(bytes);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > hang {
            let _ = child.kill();
            panic!("check did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    let output = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    Outcome {
        code: status.code(),
        took,
        peak,
        json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// [`check`] off the async runtime, which serves the hostile server meanwhile.
async fn check_async(kubeconfig: std::path::PathBuf) -> Outcome {
    tokio::task::spawn_blocking(move || check(&kubeconfig))
        .await
        .unwrap()
}

fn ids(json: &Value) -> Vec<String> {
    json["findings"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|f| f["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The finding each behaviour must raise, and its severity.
fn expected(behaviour: Behaviour) -> (&'static str, &'static str) {
    match behaviour {
        Behaviour::Unauthorized => ("apiserver-credentials-rejected", "critical"),
        Behaviour::TooManyRequests => ("apiserver-overloaded", "critical"),
        // Answers that are not Kubernetes: a refusal, a page, a body cut short, one that
        // never ends or declares 2 GB.
        Behaviour::Forbidden
        | Behaviour::Html
        | Behaviour::Truncated
        | Behaviour::EndlessChunked
        | Behaviour::EndlessString
        | Behaviour::HugeSlow => ("observation-incomplete", "critical"),
        Behaviour::TlsHang | Behaviour::CloseOnAccept => ("apiserver-unreachable", "critical"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_server_is_a_finding_in_time_and_in_bounded_memory() {
    let mut failures = Vec::new();
    // One at a time, so that the timings measure kube-rescue, not its neighbours.
    for behaviour in Behaviour::ALL {
        let server = serve(behaviour).await;
        let outcome = check_async(server.kubeconfig.clone()).await;
        let found = ids(&outcome.json);
        let (id, severity) = expected(behaviour);
        let finding = outcome.json["findings"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["id"] == id));
        println!(
            "{behaviour:?}: exit {:?} in {:.2} s, peak {} MiB, findings {found:?}",
            outcome.code,
            outcome.took.as_secs_f64(),
            outcome.peak / (1024 * 1024)
        );
        if let Some(f) = finding {
            println!("  {}", f["title"]);
            for line in f["evidence"].as_array().into_iter().flatten().take(4) {
                println!("  - {line}");
            }
        }
        if outcome.code == Some(0) || outcome.code.is_none() {
            failures.push(format!("{behaviour:?}: exit {:?}", outcome.code));
        }
        if outcome.code != Some(2) {
            failures.push(format!(
                "{behaviour:?}: exit {:?}, not 2 (critical); stderr: {}",
                outcome.code, outcome.stderr
            ));
        }
        match finding {
            None => failures.push(format!("{behaviour:?}: no {id} in {found:?}")),
            Some(f) if f["severity"] != severity => failures.push(format!(
                "{behaviour:?}: {id} is {}, not {severity}",
                f["severity"]
            )),
            Some(_) => {}
        }
        if outcome.took > DEADLINE + MARGIN {
            failures.push(format!(
                "{behaviour:?}: took {:.2} s, more than the deadline plus {} ms",
                outcome.took.as_secs_f64(),
                MARGIN.as_millis()
            ));
        }
        if outcome.peak == 0 || outcome.peak > MEMORY_BOUND {
            failures.push(format!(
                "{behaviour:?}: peak memory {} MiB (bound {} MiB)",
                outcome.peak / (1024 * 1024),
                MEMORY_BOUND / (1024 * 1024)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn rejected_credentials_say_which_and_what_to_do() {
    let server = serve(Behaviour::Unauthorized).await;
    let outcome = check_async(server.kubeconfig.clone()).await;
    let findings = outcome.json["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        findings.first().and_then(|f| f["id"].as_str()),
        Some("apiserver-credentials-rejected"),
        "{findings:#?}"
    );
    let evidence = findings[0]["evidence"].to_string();
    assert!(evidence.contains("401"), "{evidence}");
    assert!(evidence.contains("bearer token"), "{evidence}");
    assert!(evidence.contains("what to do"), "{evidence}");
    assert!(
        ids(&outcome.json)
            .iter()
            .all(|id| id != "apiserver-unreachable"),
        "a 401 is an answer: {:?}",
        ids(&outcome.json)
    );
    // kube-rescue names itself in the apiserver's audit log.
    let heads = server.heads.lock().unwrap().clone();
    let agent = format!("user-agent: kube-rescue/{}", env!("CARGO_PKG_VERSION"));
    assert!(!heads.is_empty());
    assert!(
        heads
            .iter()
            .all(|h| h.to_ascii_lowercase().contains(&agent)),
        "{heads:#?}"
    );
}

#[tokio::test]
async fn shed_reads_name_the_retry_after() {
    let server = serve(Behaviour::TooManyRequests).await;
    let outcome = check_async(server.kubeconfig.clone()).await;
    let finding = outcome.json["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["id"] == "apiserver-overloaded"))
        .cloned()
        .expect("apiserver-overloaded");
    assert_eq!(finding["severity"], "critical");
    assert!(
        finding["evidence"][0]
            .as_str()
            .is_some_and(|e| e.contains("429") && e.contains("Retry-After 7 s")),
        "{finding:#}"
    );
}

#[tokio::test]
async fn an_html_proxy_is_named_as_such() {
    let server = serve(Behaviour::Html).await;
    let outcome = check_async(server.kubeconfig.clone()).await;
    let text = outcome.json.to_string();
    assert!(text.contains("not a Kubernetes answer"), "{text}");
    assert!(!text.contains("No findings"), "{text}");
}

/// A kubeconfig like the simulator's, with the server address replaced.
fn kubeconfig_with_server(dir: &std::path::Path, server: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: {server}
users:
- name: u
  user:
    token: secret-token-that-must-not-leave
contexts:
- name: c
  context: {{cluster: c, user: u}}
current-context: c
"
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_server_address_that_cannot_be_used_as_written_gets_no_credentials() {
    // Where a client that dropped an invalid port would connect instead: 443 on loopback.
    let fallback = std::net::TcpListener::bind("127.0.0.1:443");
    if fallback.is_err() {
        eprintln!(
            "NOTE: could not listen on 127.0.0.1:443 (not root?); the exit codes are still checked"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    for (server, says) in [
        ("https://127.0.0.1:99999", "invalid port"),
        ("https://127.0.0.1:6443/k8s/clusters/c-1", "has a path"),
        ("https://admin:pw@127.0.0.1:6443", "user name or password"),
        ("ftp://127.0.0.1:6443", "scheme \"ftp\""),
        ("127.0.0.1:6443", "no scheme"),
    ] {
        let kubeconfig = kubeconfig_with_server(dir.path(), server);
        let output = Command::new(env!("CARGO_BIN_EXE_kube-rescue"))
            .args(["--state-dir"])
            .arg(dir.path())
            .args(["check", "--timeout", "1s", "--kubeconfig"])
            .arg(&kubeconfig)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{server}: {stderr}");
        assert!(stderr.contains(says), "{server}: {stderr}");
        assert!(stderr.contains("nothing was sent"), "{server}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{server}: {stderr}");
    }
    // Plain http works when the kubeconfig says so, with a warning.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let kubeconfig = kubeconfig_with_server(dir.path(), &format!("http://127.0.0.1:{port}"));
    let output = Command::new(env!("CARGO_BIN_EXE_kube-rescue"))
        .args(["--state-dir"])
        .arg(dir.path())
        .args(["check", "--timeout", "1s", "--kubeconfig"])
        .arg(&kubeconfig)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("over plain http"), "{stderr}");
    assert_eq!(
        output.status.code(),
        Some(2),
        "refused: unreachable; {stderr}"
    );
    if let Ok(listener) = fallback {
        listener.set_nonblocking(true).unwrap();
        assert!(
            listener.accept().is_err(),
            "a connection reached the fallback port 443"
        );
    }
}

#[test]
fn a_closed_output_is_not_a_crash() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_kube-rescue"))
        .args([
            "check",
            "--file",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/manifests/opa-tutorial-v1.yaml"
            ),
        ])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The tutorial's manifests give warnings: exit 1, quietly.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outage_with_an_expired_token_says_so_first() {
    let running = common::start_yaml(include_str!(
        "../../assets/scenarios/opa-webhook-outage.yaml"
    ))
    .await;
    let text = std::fs::read_to_string(&running.kubeconfig).unwrap();
    let token = running.sim.token().to_string();
    let expired = running.dir.path().join("expired");
    std::fs::write(&expired, text.replace(&token, "expired-token")).unwrap();
    let outcome = check_async(expired).await;
    assert_eq!(outcome.code, Some(2), "{}", outcome.stderr);
    assert_eq!(
        ids(&outcome.json).first().map(String::as_str),
        Some("apiserver-credentials-rejected"),
        "{:#}",
        outcome.json
    );
}

#[tokio::test]
async fn an_auth_plugin_that_fails_is_rejected_credentials_and_sends_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let server = serve(Behaviour::Unauthorized).await;
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("gke-gcloud-auth-plugin");
    std::fs::write(
        &plugin,
        "#!/bin/sh\necho 'ERROR: gcloud crashed: there was a problem refreshing your current auth tokens' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = std::fs::read_to_string(&server.kubeconfig).unwrap();
    let exec = format!(
        "exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n      interactiveMode: Never",
        plugin.display()
    );
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, text.replace("token: expired-token", &exec)).unwrap();
    let outcome = check_async(kubeconfig).await;
    assert_eq!(outcome.code, Some(2), "{}", outcome.stderr);
    let first = &outcome.json["findings"][0];
    assert_eq!(
        first["id"], "apiserver-credentials-rejected",
        "{:#}",
        outcome.json
    );
    let evidence = first["evidence"].to_string();
    assert!(
        evidence.contains("problem refreshing your current auth tokens"),
        "{evidence}"
    );
    assert!(
        evidence.contains("gcloud container clusters get-credentials"),
        "{evidence}"
    );
    assert_eq!(
        server.connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a request went out without a credential"
    );
}
