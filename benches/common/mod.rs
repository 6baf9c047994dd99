//! Shared pieces of the benchmarks: the hung-apiserver scenario and two refreshes of `large`.
#![allow(dead_code)]

use std::time::Duration;

use kube_rescue::cluster::{Cluster, ConnectOptions, Snapshot, collect};
use kube_rescue::sim::Simulator;
use kube_rescue::sim::scenario::Scenario;

/// Every request is accepted and never answered.
pub const HUNG: &str = r#"
name: hung-apiserver
description: Every request is accepted and never answered.
objects:
  - {apiVersion: v1, kind: Node, metadata: {name: node-1}}
faults:
  - match: {}
    hang: true
"#;

/// Two refreshes of the `large` scenario (5,000 nodes, 300 webhooks, 50,000 events), the
/// second carrying over what the first saw, as on a running screen. The simulator is stopped
/// before this returns.
pub async fn large_snapshots() -> (Snapshot, Snapshot) {
    let scenario = Scenario::load("large").expect("the large scenario generates");
    let sim = Simulator::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("the simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&path).unwrap();
    let cluster = Cluster::connect(&ConnectOptions {
        kubeconfig: Some(path),
        timeout: Duration::from_secs(30),
        ..Default::default()
    })
    .await
    .expect("connect");
    let first = collect::refresh(&cluster, None).await;
    let second = collect::refresh(&cluster, Some(&first)).await;
    sim.stop().await;
    (first, second)
}

/// `5000 nodes, 5000 leases, 500 warning events, 66 + 34 webhook configurations, 18 requests`.
pub fn describe(s: &Snapshot) -> String {
    let len = |n: Option<usize>| n.unwrap_or(0);
    format!(
        "{} nodes, {} leases, {} warning events, {} + {} webhook configurations, {} requests, refresh took {:.0} ms",
        len(s.nodes.value.as_ref().map(Vec::len)),
        len(s.node_leases.value.as_ref().map(Vec::len)),
        len(s.warning_events.value.as_ref().map(Vec::len)),
        len(s.validating_webhooks.value.as_ref().map(Vec::len)),
        len(s.mutating_webhooks.value.as_ref().map(Vec::len)),
        s.requests,
        s.took.as_secs_f64() * 1000.0,
    )
}
