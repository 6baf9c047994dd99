//! `kube-rescue check` as a user runs it: live against the simulator's scenarios, offline
//! against manifests, and when it cannot run.

use crate::common;

use kube_rescue::cluster::probe;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

fn check(args: &[&str], log_dir: &Path) -> (Output, Duration) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_kube-rescue"))
        .arg("check")
        .args(args)
        .arg("--log-file")
        .arg(log_dir.join("kube-rescue.log"))
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("kube-rescue runs");
    (output, started.elapsed())
}

async fn check_async(args: Vec<String>, log_dir: std::path::PathBuf) -> (Output, Duration) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        check(&args, &log_dir)
    })
    .await
    .unwrap()
}

fn ids(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/manifests")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[tokio::test]
async fn the_outage_is_critical_and_the_webhook_comes_first() {
    let started = Instant::now();
    // The shipped outage at five times its speed: the webhook's timeout is 2 s, the apiserver
    // restarts 1 s in, for 0.6 s, and nodes are recreated within about 10 s.
    let running = common::start(
        kube_rescue::sim::scenario::Scenario::load("opa-webhook-outage:speed=5").unwrap(),
    )
    .await;
    let kubeconfig = running.kubeconfig.to_string_lossy().into_owned();
    let dir = running.dir.path().to_path_buf();
    let args = vec![
        "--kubeconfig".to_string(),
        kubeconfig.clone(),
        "--output".into(),
        "json".into(),
    ];
    let (output, _) = check_async(args.clone(), dir.clone()).await;
    // A write probe cut by a restart is tried again for up to RESTART_RETRY_FOR; a try waits
    // out the webhook's 2 s timeout plus the probe's 2 s margin.
    assert!(
        started.elapsed() < common::bound(probe::RESTART_RETRY_FOR + Duration::from_secs(4)),
        "took {:?} from the simulator's start",
        started.elapsed()
    );
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json_of(&output);
    let first = &report["findings"][0];
    assert_eq!(first["id"], "webhook-blocking-writes", "{report:#}");
    assert_eq!(
        first["subject"]["webhook"],
        "validating-webhook.openpolicyagent.org"
    );
    assert_eq!(report["source"]["kind"], "cluster");

    // Once the loop has run: nodes recreated, heartbeats stale, and both point at the webhook.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (output, _) = check_async(args.clone(), dir.clone()).await;
        let report = json_of(&output);
        let found = ids(&report);
        let points_at_webhook = |id: &str| {
            report["findings"].as_array().unwrap().iter().any(|f| {
                f["id"] == id
                    && f["evidence"].as_array().unwrap().iter().any(|e| {
                        e.as_str()
                            .unwrap_or("")
                            .contains("validating-webhook.openpolicyagent.org")
                    })
            })
        };
        if points_at_webhook("nodes-repair-loop") && points_at_webhook("node-heartbeats-stale") {
            assert_eq!(found[0], "webhook-blocking-writes", "{found:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no repair loop pointing at the webhook: {report:#}"
        );
    }
    running.sim.stop().await;
}

#[tokio::test]
async fn a_healthy_cluster_passes() {
    let running =
        common::start(kube_rescue::sim::scenario::Scenario::load("healthy").unwrap()).await;
    let args = vec![
        "--kubeconfig".to_string(),
        running.kubeconfig.to_string_lossy().into_owned(),
    ];
    let (output, _) = check_async(args, running.dir.path().to_path_buf()).await;
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("summary: 0 critical, 0 warning"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no colour with NO_COLOR or off a terminal"
    );
    running.sim.stop().await;
}

/// A webhook that denies kube-system writes is a policy, with its own finding and remedy:
/// never fail-open, never the RBAC hint; and the apiserver it keeps from being ready says so.
#[tokio::test]
async fn a_policy_denying_system_writes_is_a_denial_not_an_outage() {
    let running = common::start(
        kube_rescue::sim::scenario::Scenario::load("policy-denies-system-writes").unwrap(),
    )
    .await;
    let args = vec![
        "--kubeconfig".to_string(),
        running.kubeconfig.to_string_lossy().into_owned(),
        "--output".into(),
        "json".into(),
    ];
    let dir = running.dir.path().to_path_buf();
    // The scenario restarts its apiserver 3 s in; its ca-registration is then denied.
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        let (output, _) = check_async(args.clone(), dir.clone()).await;
        let report = json_of(&output);
        let found = ids(&report);
        if found.iter().any(|i| i == "apiserver-not-ready") {
            assert_eq!(output.status.code(), Some(2), "{report:#}");
            break report;
        }
        assert!(Instant::now() < deadline, "never not ready: {report:#}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let found = ids(&report);
    assert!(
        !found.iter().any(|i| i == "webhook-blocking-writes"),
        "{found:?}"
    );
    let denied = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "writes-denied-by-policy")
        .unwrap_or_else(|| panic!("no denial finding: {report:#}"));
    assert_eq!(denied["severity"], "critical");
    assert_eq!(
        denied["subject"]["webhook"],
        "system-guard.policy.example.com"
    );
    assert_eq!(denied["runbook"], "policy-denial");
    assert_eq!(
        denied["actions"],
        serde_json::json!(["exclude-system-namespaces"])
    );
    let evidence = denied["evidence"].to_string();
    assert!(
        evidence.contains("changes need ticket CHG-1042"),
        "{evidence}"
    );
    assert!(!evidence.contains("RBAC"), "{evidence}");
    for finding in report["findings"].as_array().unwrap() {
        assert!(
            !finding["actions"].to_string().contains("fail-open")
                || finding["subject"]["webhook"] != "system-guard.policy.example.com",
            "fail-open offered for a denial: {finding:#}"
        );
    }
    running.sim.stop().await;
}

#[tokio::test]
async fn an_unavailable_aggregated_api_is_raised() {
    let running =
        common::start(kube_rescue::sim::scenario::Scenario::load("apiservice-down").unwrap()).await;
    let args = vec![
        "--kubeconfig".to_string(),
        running.kubeconfig.to_string_lossy().into_owned(),
        "--output".into(),
        "json".into(),
    ];
    let (output, _) = check_async(args, running.dir.path().to_path_buf()).await;
    let report = json_of(&output);
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "aggregated-api-unavailable")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(f["subject"]["name"], "v1beta1.metrics.k8s.io");
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    running.sim.stop().await;
}

#[tokio::test]
async fn a_hung_apiserver_is_unreachable_within_the_deadline() {
    let running = common::start_yaml(
        "name: hung\ndescription: every request hangs\nfaults:\n  - match: {}\n    hang: true\n",
    )
    .await;
    let args = vec![
        "--kubeconfig".to_string(),
        running.kubeconfig.to_string_lossy().into_owned(),
        "--timeout".into(),
        "1s".into(),
        "--output".into(),
        "json".into(),
    ];
    let (output, took) = check_async(args, running.dir.path().to_path_buf()).await;
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The deadline plus 1 s, with room for a loaded machine; the figure is in the benchmarks.
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let report = json_of(&output);
    assert_eq!(
        report["findings"][0]["id"], "apiserver-unreachable",
        "{report:#}"
    );
    running.sim.stop().await;
}

#[test]
fn the_opa_tutorial_manifests_warn_and_nothing_is_critical() {
    let dir = tempfile::tempdir().unwrap();
    let (output, _) = check(
        &[
            "--file",
            &fixture("opa-tutorial-v1.yaml"),
            "--output",
            "json",
        ],
        dir.path(),
    );
    let report = json_of(&output);
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let found = ids(&report);
    for id in [
        "webhook-intercepts-control-plane",
        "webhook-long-timeout",
        "webhook-backend-single-replica",
        "webhook-backend-no-liveness",
        "webhook-self-deadlock",
    ] {
        assert!(found.iter().any(|f| f == id), "{id} missing from {found:?}");
    }
    assert_eq!(report["summary"]["critical"], 0);
    assert_eq!(report["source"]["kind"], "files");
}

#[test]
fn manifests_from_standard_input_and_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("opa-tutorial-v1.yaml")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-rescue"))
        .args(["check", "--file", "-", "--output", "markdown", "--log-file"])
        .arg(dir.path().join("log"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let md = String::from_utf8_lossy(&output.stdout);
    assert!(md.starts_with("# kube-rescue check"), "{md}");
    assert!(md.contains("## Warning"), "{md}");
}

#[test]
fn what_cannot_run_exits_3_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let (output, _) = check(&["--file", &missing.to_string_lossy()], dir.path());
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("missing.yaml"), "{stderr}");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: v1\nkind: [unclosed\n").unwrap();
    let (output, _) = check(&["--file", &bad.to_string_lossy()], dir.path());
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("bad.yaml"));

    let (output, _) = check(
        &["--kubeconfig", &dir.path().join("nope").to_string_lossy()],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let (output, _) = check(&["--output", "yaml"], dir.path());
    assert_eq!(output.status.code(), Some(3), "a bad flag could not run");
}
