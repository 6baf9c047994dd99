//! The triage screen against the simulator, in a real terminal (tmux): read-only mode sends no
//! write at all, and a hung apiserver neither freezes the keys nor hides that it is hung.
//! Skipped, loudly, when tmux is not installed.

use crate::common;

use std::time::{Duration, Instant};

use common::tmux::Tmux;
use kube_rescue::sim::scenario::Scenario;

/// Opens the screen on the simulator in a new tmux session called `demo`.
fn open_screen(tmux: &Tmux, kubeconfig: &std::path::Path, state: &std::path::Path, flags: &str) {
    assert!(
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "demo",
            "-x",
            "100",
            "-y",
            "30",
            "env",
            "PS1=$ ",
            "sh"
        ])
        .status
        .success()
    );
    let command = format!(
        "'{}' --kubeconfig '{}' --state-dir '{}' {flags}; echo EXIT=$?",
        env!("CARGO_BIN_EXE_kube-rescue"),
        kubeconfig.display(),
        state.display()
    );
    tmux.keys(&[&command, "Enter"]);
}

async fn request_methods(running: &common::Running, since: u64) -> (Vec<String>, u64) {
    let (log, last) = common::request_log(running, since).await;
    let methods = log
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap()
            )
        })
        .collect();
    (methods, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_only_screen_sends_no_write() {
    if !common::tmux::available("read_only_screen_sends_no_write") {
        return;
    }
    // The outage at five times its speed, refreshed every second and probed every two: in 15 s
    // the screen lives through two apiserver restarts and seven write-probe rounds.
    let running = common::start(Scenario::load("opa-webhook-outage:speed=5").unwrap()).await;
    let (_, since) = request_methods(&running, 0).await;
    let tmux = Tmux {
        socket: format!("kube-rescue-ro-{}", std::process::id()),
    };
    open_screen(
        &tmux,
        &running.kubeconfig,
        running.dir.path(),
        "--read-only --refresh 1s --probe-every 2s",
    );
    tmux.wait_for(
        "the read-only screen with its finding",
        Duration::from_secs(15),
        |s| s.contains("READ-ONLY") && s.contains("validating-webhook.openpolicyagent.org"),
    );
    // Use it: every view, moves, a detail, refresh-now.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        for keys in [
            ["2"],
            ["3"],
            ["4"],
            ["5"],
            ["r"],
            ["1"],
            ["j"],
            ["Enter"],
            ["Escape"],
            ["k"],
        ] {
            tmux.keys(&keys);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    tmux.keys(&["q"]);
    tmux.wait_for("the shell after quitting", Duration::from_secs(10), |s| {
        s.contains("EXIT=0")
    });
    let (requests, _) = request_methods(&running, since).await;
    // Refreshes every second read the nodes many times (a restart cuts some, and the screen
    // backs off while the apiserver struggles).
    let node_lists = requests
        .iter()
        .filter(|r| r.starts_with("GET /api/v1/nodes"))
        .count();
    assert!(node_lists >= 5, "the screen read the cluster: {requests:?}");
    let writes: Vec<&String> = requests.iter().filter(|r| !r.starts_with("GET ")).collect();
    assert!(writes.is_empty(), "read-only mode sent writes: {writes:?}");
    running.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_apiserver_neither_freezes_the_keys_nor_hides() {
    if !common::tmux::available("a_hung_apiserver_neither_freezes_the_keys_nor_hides") {
        return;
    }
    let running = common::start_yaml(
        "name: hung\ndescription: every request hangs\nfaults:\n  - match: {}\n    hang: true\n",
    )
    .await;
    let tmux = Tmux {
        socket: format!("kube-rescue-hung-{}", std::process::id()),
    };
    let opened = Instant::now();
    open_screen(
        &tmux,
        &running.kubeconfig,
        running.dir.path(),
        "--timeout 1s",
    );
    tmux.wait_for(
        "the apiserver named unreachable",
        Duration::from_secs(6),
        |s| s.contains("UNREACHABLE"),
    );
    let named = opened.elapsed();
    // Keys are answered while every request hangs: a generous bound that catches a freeze.
    // The body (below the header, whose ages tick) must change after each view key.
    let body = |screen: &str| screen.lines().skip(5).collect::<Vec<_>>().join("\n");
    let mut slowest = Duration::ZERO;
    for key in ["3", "4", "5", "1"] {
        let before = body(&tmux.screen());
        let pressed = Instant::now();
        tmux.keys(&[key]);
        tmux.wait_for(&format!("view {key}"), Duration::from_secs(2), |s| {
            body(s) != before
        });
        slowest = slowest.max(pressed.elapsed());
    }
    eprintln!(
        "unreachable named {named:?} after opening (deadline 1 s); slowest key {slowest:?} (tmux round trips included)"
    );
    assert!(slowest < Duration::from_secs(1), "a key took {slowest:?}");
    tmux.keys(&["q"]);
    tmux.wait_for("the shell after quitting", Duration::from_secs(10), |s| {
        s.contains("EXIT=0")
    });
    running.sim.stop().await;
}
