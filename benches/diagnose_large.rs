//! Diagnosing the `large` scenario's snapshot (5,000 nodes, 300 webhooks, 50,000 events):
//! CPU time of Inventory::from_snapshot + diagnose, over repeated runs. Prints figures;
//! asserts nothing. Target: under 20 ms.
//!
//! Run: `cargo bench --bench diagnose_large`.

use std::time::{Duration, Instant};

use kube_rescue::diagnose::{self, Inventory};

mod common;

#[tokio::main]
async fn main() {
    let (_, snapshot) = common::large_snapshots().await;
    println!("snapshot: {}", common::describe(&snapshot));

    let runs = 50;
    let mut times = Vec::with_capacity(runs);
    let mut count = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let inventory = Inventory::from_snapshot(&snapshot);
        let context = diagnose::Context {
            inventory: &inventory,
            live: Some(&snapshot),
            now: jiff::Timestamp::now(),
        };
        let findings = diagnose::diagnose(&context);
        times.push(started.elapsed());
        count = findings.len();
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    // Where the time goes, one part at a time.
    let mut parts: Vec<(&str, Duration)> = Vec::new();
    let started = Instant::now();
    let inventory = Inventory::from_snapshot(&snapshot);
    parts.push(("inventory", started.elapsed()));
    let context = diagnose::Context {
        inventory: &inventory,
        live: Some(&snapshot),
        now: jiff::Timestamp::now(),
    };
    let started = Instant::now();
    let _ = diagnose::webhooks::findings(&context);
    parts.push(("webhook rules", started.elapsed()));
    let started = Instant::now();
    let _ = diagnose::apiserver::findings(&context);
    parts.push(("apiserver rules", started.elapsed()));
    let started = Instant::now();
    let _ = diagnose::nodes::findings(&context);
    parts.push(("node rules", started.elapsed()));
    let parts: Vec<String> = parts
        .iter()
        .map(|(n, d)| format!("{n} {:.2} ms", ms(*d)))
        .collect();
    println!("one run by part: {}", parts.join(", "));
    let median = times[runs / 2];
    println!(
        "diagnose (inventory + rules): median {:.2} ms, min {:.2} ms, max {:.2} ms over {runs} runs; {count} findings",
        ms(median),
        ms(times[0]),
        ms(times[runs - 1]),
    );
    println!(
        "target < 20 ms: {}",
        if median < Duration::from_millis(20) {
            "met"
        } else {
            "MISSED"
        }
    );
}
