//! How long each client takes to say that an apiserver which accepts connections and never
//! answers is not answering: `kube-rescue snapshot`, and kubectl with its defaults and with
//! --request-timeout=3s, side by side in one run. Prints figures and ratios; asserts nothing.
//!
//! Run: `cargo bench --bench hung_apiserver`. kubectl with its defaults takes minutes here;
//! set KUBE_RESCUE_BENCH_QUICK=1 to leave that one run out.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube_rescue::sim::Simulator;
use kube_rescue::sim::scenario::Scenario;

mod common;

fn timed(program: &str, args: &[&str]) -> (Duration, bool, String) {
    let started = Instant::now();
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output();
    let took = started.elapsed();
    match output {
        Ok(o) => {
            // kube-rescue prints a snapshot: what it says about /readyz is its verdict.
            let verdict = serde_json::from_slice::<serde_json::Value>(&o.stdout)
                .ok()
                .and_then(|v| v["readyz"]["error"]["message"].as_str().map(str::to_string));
            let text = String::from_utf8_lossy(&o.stderr);
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_string();
            (took, o.status.success(), verdict.unwrap_or(last))
        }
        Err(e) => (took, false, format!("could not run {program}: {e}")),
    }
}

fn shorten(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() > 110 {
        format!("{}…", text.chars().take(110).collect::<String>())
    } else {
        text.to_string()
    }
}

#[tokio::main]
async fn main() {
    let scenario = Scenario::from_yaml(common::HUNG, "hung-apiserver").expect("valid scenario");
    let sim = Simulator::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("the simulator starts");
    let dir = std::env::temp_dir().join(format!("kube-rescue-hung-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let kubeconfig = kubeconfig.to_string_lossy().into_owned();
    let log = dir.join("kube-rescue.log").to_string_lossy().into_owned();

    let binary = env!("CARGO_BIN_EXE_kube-rescue");
    let runs: Vec<(&str, String, Vec<String>)> = {
        let mut runs = vec![(
            "kube-rescue snapshot (--timeout 3s)",
            binary.to_string(),
            vec!["snapshot", "--kubeconfig", &kubeconfig, "--log-file", &log]
                .into_iter()
                .map(String::from)
                .collect(),
        )];
        runs.push((
            "kubectl get nodes --request-timeout=3s",
            "kubectl".to_string(),
            vec![
                "--kubeconfig",
                &kubeconfig,
                "get",
                "nodes",
                "--request-timeout=3s",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        ));
        if std::env::var("KUBE_RESCUE_BENCH_QUICK").is_err() {
            runs.push((
                "kubectl get nodes (defaults)",
                "kubectl".to_string(),
                vec!["--kubeconfig", &kubeconfig, "get", "nodes"]
                    .into_iter()
                    .map(String::from)
                    .collect(),
            ));
        }
        runs
    };

    let mut results = Vec::new();
    for (label, program, args) in &runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        eprintln!("running: {label} …");
        let (took, ok, said) = timed(program, &args);
        results.push((label, took, ok, said));
    }

    println!("hung apiserver (accepts connections, never answers)");
    let base = results[0].1.as_secs_f64();
    for (label, took, ok, said) in &results {
        println!(
            "{label:<40} {:>8.2} s   x{:<6.1} exit {}   {}",
            took.as_secs_f64(),
            took.as_secs_f64() / base,
            if *ok { "ok" } else { "failed" },
            shorten(said)
        );
    }
    println!("target: kube-rescue names the hung apiserver within the deadline + 0.5 s (3.5 s)");
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
