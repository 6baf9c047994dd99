//! `kube-rescue snapshot` as a user runs it: a hung apiserver, a refused one, a bad kubeconfig.

use crate::common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

fn snapshot(args: &[&str], dir: &std::path::Path) -> (Output, Duration) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_kube-rescue"))
        .arg("snapshot")
        .args(args)
        .arg("--log-file")
        .arg(dir.join("kube-rescue.log"))
        .env_remove("KUBECONFIG")
        .output()
        .expect("kube-rescue runs");
    (output, started.elapsed())
}

/// Every source of the snapshot that carries an error, as (name, kind).
fn source_errors(snapshot: &Value) -> Vec<(String, String)> {
    snapshot
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| {
            v.get("fetchedAt").is_some() || v.get("error").is_some_and(|e| !e.is_null())
        })
        .filter_map(|(k, v)| Some((k.clone(), v["error"]["kind"].as_str()?.to_string())))
        .collect()
}

fn sources(snapshot: &Value) -> Vec<String> {
    snapshot
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v.get("stale").is_some())
        .map(|(k, _)| k.clone())
        .collect()
}

#[tokio::test]
async fn a_hung_apiserver_is_named_within_the_deadline() {
    let running = common::start_yaml(
        "name: hung\ndescription: every request hangs\nfaults:\n  - match: {}\n    hang: true\n",
    )
    .await;
    let kubeconfig = running.kubeconfig.to_string_lossy().into_owned();
    let dir = running.dir.path().to_path_buf();
    let (output, took) = tokio::task::spawn_blocking(move || {
        snapshot(&["--kubeconfig", &kubeconfig, "--timeout", "1s"], &dir)
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The promise: the deadline and half a second (the figure is in benches/hung_apiserver.rs).
    assert!(
        took < common::bound(Duration::from_millis(1500)),
        "took {took:?}"
    );
    let json: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let all = sources(&json);
    assert!(all.len() >= 10, "{all:?}");
    let errors = source_errors(&json);
    assert_eq!(
        errors.len(),
        all.len(),
        "every source failed: {errors:?} of {all:?}"
    );
    assert!(
        errors.iter().all(|(_, kind)| kind == "timeout"),
        "{errors:?}"
    );
    assert_eq!(
        json["readyz"]["error"]["message"],
        "get /readyz: no answer within 1 s"
    );
    running.sim.stop().await;
}

#[test]
fn a_refused_apiserver_is_named_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: 'https://127.0.0.1:{port}'}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    let (output, took) = snapshot(&["--kubeconfig", &kubeconfig.to_string_lossy()], dir.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The promise: a refused connection is named within a second.
    assert!(
        took < common::bound(Duration::from_secs(1)),
        "took {took:?}"
    );
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let errors = source_errors(&json);
    assert!(!errors.is_empty());
    assert!(
        errors.iter().all(|(_, kind)| kind == "refused"),
        "{errors:?}"
    );
}

#[test]
fn a_bad_kubeconfig_stops_with_one_line_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let (output, _) = snapshot(&["--kubeconfig", &missing.to_string_lossy()], dir.path());
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&*missing.to_string_lossy()), "{stderr}");
    assert!(output.stdout.is_empty());
}
