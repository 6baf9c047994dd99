//! `kube-rescue sim` as a process: a bad scenario file is refused with its file, line and
//! field; a running simulator stops cleanly on SIGTERM and frees its port.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kube-rescue");

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fixture(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scenarios")
        .join(path)
        .to_string_lossy()
        .into_owned()
}

/// Waits for a child with a bound, so a hang fails the test instead of blocking it.
fn wait_bounded(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "still running after {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_invalid_scenario_names_the_file_the_line_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    for (file, line_col, field) in [
        ("invalid/wrong-type.yaml", ":5:16:", "faults[0].latencyMs"),
        (
            "invalid/unknown-field.yaml",
            ":5:5:",
            "backends[0].behaviour",
        ),
        (
            "invalid/cluster-zero.yaml",
            ":4:3:",
            "cluster.leaseRenewSeconds",
        ),
    ] {
        let path = fixture(file);
        let mut child = Command::new(BIN)
            .arg("--log-file")
            .arg(dir.path().join("sim.log"))
            .args(["sim", "--scenario", &path, "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kube-rescue runs");
        let status = wait_bounded(&mut child, 30);
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(!status.success(), "{file}: exit {status:?}");
        assert!(
            stderr.contains(&format!("{path}{line_col}")),
            "{file}: {stderr}"
        );
        assert!(stderr.contains(field), "{file}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
}

#[test]
fn sim_stops_cleanly_on_sigterm_and_frees_its_port() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let child = Command::new(BIN)
        .arg("--log-file")
        .arg(dir.path().join("sim.log"))
        .args([
            "sim",
            "--scenario",
            &fixture("valid/minimal.yaml"),
            "--listen",
            "127.0.0.1:0",
            "--kubeconfig-out",
        ])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kube-rescue sim starts");
    let mut sim = Sim(child);
    let mut lines = BufReader::new(sim.0.stdout.take().unwrap()).lines();
    let first = lines.next().expect("sim prints").unwrap();
    let url = first
        .split("listening on https://")
        .nth(1)
        .unwrap_or_else(|| panic!("{first}"));
    let addr: SocketAddr = url.trim().parse().unwrap();
    let written = lines.next().expect("sim prints").unwrap();
    assert!(written.contains("kubeconfig written to"), "{written}");
    let text = std::fs::read_to_string(&kubeconfig).expect("kubeconfig written before");
    assert!(text.contains(&format!("server: https://{addr}")), "{text}");
    TcpStream::connect(addr).expect("the apiserver accepts connections");
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());

    let killed = Command::new("kill")
        .args(["-TERM", &sim.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = wait_bounded(&mut sim.0, 15);
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status:?}");
    let rest = rest.join().unwrap();
    assert!(rest.iter().any(|l| l == "stopping"), "{rest:?}");

    let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
    assert!(refused.is_err(), "still accepting after exit");
    TcpListener::bind(addr).expect("the port is free again");
}
