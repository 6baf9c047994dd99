//! The generated `large` scenario: how long the simulator takes to start with it, and how
//! long a full node list takes through kube-rs (paginated, from etcd; and from the watch
//! cache with resourceVersion=0). Prints figures; asserts nothing.
//!
//! Run: `cargo bench --bench sim_large` (parameters: `KUBE_RESCUE_LARGE=nodes=5000,webhooks=300,events=50000`).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_rescue::sim::Simulator;
use kube_rescue::sim::scenario::Scenario;

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let params = std::env::var("KUBE_RESCUE_LARGE").unwrap_or_default();
    let name = if params.is_empty() {
        "large".to_string()
    } else {
        format!("large:{params}")
    };
    let rss_before = rss_mib();

    let started = Instant::now();
    let scenario = Scenario::load(&name).expect("the large scenario generates");
    let generated = started.elapsed();
    let objects = scenario.objects.len();
    let sim = Simulator::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("the simulator starts");
    let ready = started.elapsed();

    let dir = std::env::temp_dir().join(format!("kube-rescue-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kubeconfig");
    sim.write_kubeconfig(&path).unwrap();
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let nodes: Api<Node> = Api::all(client);

    // Paginated, 500 per page, as kubectl does.
    let list_started = Instant::now();
    let mut count = 0;
    let mut pages = 0;
    let mut params = ListParams::default().limit(500);
    loop {
        let page = nodes.list_metadata(&params).await.expect("node list");
        count += page.items.len();
        pages += 1;
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    let paginated = list_started.elapsed();

    // One request from the watch cache.
    let cache_started = Instant::now();
    let cached = nodes
        .list_metadata(&ListParams::default().match_any())
        .await
        .expect("node list from the cache");
    let from_cache = cache_started.elapsed();

    let full_started = Instant::now();
    let full = nodes
        .list(&ListParams::default())
        .await
        .expect("full node list");
    let full_list = full_started.elapsed();

    // kube-rescue's own refresh: every list decoded as it streams in, under its caps.
    let cluster = kube_rescue::cluster::Cluster::connect(&kube_rescue::cluster::ConnectOptions {
        kubeconfig: Some(path.clone()),
        timeout: Duration::from_secs(10),
        read_only: true,
        ..Default::default()
    })
    .await
    .expect("kube-rescue connects");
    let _warm = kube_rescue::cluster::refresh(&cluster, None).await;
    let refresh_started = Instant::now();
    let refreshed = kube_rescue::cluster::refresh(&cluster, None).await;
    let refresh_took = refresh_started.elapsed();
    let refreshed_nodes = refreshed.nodes.value.as_ref().map_or(0, Vec::len);

    println!("scenario                         {name} ({objects} objects)");
    println!("generate the scenario            {}", ms(generated));
    println!(
        "start (generate, load, listen)   {}   target < 10 s: {}",
        ms(ready),
        if ready < Duration::from_secs(10) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "node list, metadata, 500/page    {} ({count} nodes, {pages} pages)",
        ms(paginated)
    );
    println!(
        "node list, metadata, rv=0        {} ({} nodes, one request)",
        ms(from_cache),
        cached.items.len()
    );
    println!(
        "node list, full objects          {} ({} nodes)",
        ms(full_list),
        full.items.len()
    );
    println!(
        "kube-rescue refresh, streamed    {} ({refreshed_nodes} nodes, {} requests; {:.2}x the full node list alone)",
        ms(refresh_took),
        refreshed.requests,
        refresh_took.as_secs_f64() / full_list.as_secs_f64().max(1e-9)
    );
    println!(
        "resident memory                  {:.0} MiB (before start {:.0} MiB)",
        rss_mib(),
        rss_before
    );
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
