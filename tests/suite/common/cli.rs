//! Running the kube-rescue binary against a simulator as a user does, and reading what it
//! wrote to the simulator from its request log.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

pub struct Run {
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            output,
        }
    }
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
}

/// Runs kube-rescue with `args`, the simulator's kubeconfig and a state folder of its own.
pub async fn kube_rescue(running: &super::Running, state: &Path, args: &[&str]) -> Run {
    let mut args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
    args.extend([
        "--kubeconfig".into(),
        running.kubeconfig.clone().into_os_string(),
    ]);
    run_with_state(state, args).await
}

/// Runs a command of kube-rescue that reads no cluster (`audit`, `report`).
pub async fn kube_rescue_offline(state: &Path, args: &[&str]) -> Run {
    run_with_state(state, args.iter().map(Into::into).collect()).await
}

async fn run_with_state(state: &Path, args: Vec<std::ffi::OsString>) -> Run {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kube-rescue"));
    command
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1");
    let output = tokio::task::spawn_blocking(move || command.output().expect("kube-rescue runs"))
        .await
        .unwrap();
    Run::from(output)
}

/// Writes (POST, PUT, PATCH, DELETE) in the request log that were not dry runs, and every
/// write, after `since`.
pub async fn writes_since(running: &super::Running, since: u64) -> (Vec<Value>, Vec<Value>) {
    let (log, _) = super::request_log(running, since).await;
    let writes: Vec<Value> = log
        .into_iter()
        .filter(|r| r["method"] != "GET" && r["method"] != "HEAD")
        .collect();
    let real = writes
        .iter()
        .filter(|r| {
            !r["query"]
                .as_str()
                .unwrap_or_default()
                .contains("dryRun=All")
        })
        .filter(|r| {
            !r["path"]
                .as_str()
                .unwrap_or_default()
                .ends_with("selfsubjectaccessreviews")
        })
        .cloned()
        .collect();
    (real, writes)
}

pub async fn log_position(running: &super::Running) -> u64 {
    super::request_log(running, 0).await.1
}
