//! `kube-rescue fix` and `kube-rescue restore` as a user runs them, against the simulator:
//! the plan alone changes nothing; a confirmed change is backed up, applied, verified and
//! audited; refusals (wrong confirmation, RBAC, read-only) leave the object untouched.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::cli::{Run, kube_rescue, log_position, writes_since};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube_rescue::remediate::audit;
use kube_rescue::remediate::change::without_server_fields;
use kube_rescue::sim::scenario::Scenario;
use serde_json::Value;

const WEBHOOK_CONFIG: &str = "opa-validating-webhook";

/// `fix ACTION vwc/opa-validating-webhook --confirm CONFIRM`.
async fn fix_webhook_config(
    running: &common::Running,
    state: &Path,
    action: &str,
    confirm: &str,
) -> Run {
    let target = format!("vwc/{WEBHOOK_CONFIG}");
    kube_rescue(
        running,
        state,
        &["fix", action, &target, "--confirm", confirm],
    )
    .await
}

/// [`fix_webhook_config`] confirmed with the right name, which must end with exit code 0.
async fn fix_confirmed(running: &common::Running, state: &Path, action: &str) -> Run {
    let run = fix_webhook_config(running, state, action, WEBHOOK_CONFIG).await;
    assert_eq!(run.code(), 0, "{action}\n{}\n{}", run.stdout, run.stderr);
    run
}

async fn webhook_config(running: &common::Running) -> Option<Value> {
    let api: Api<ValidatingWebhookConfiguration> =
        Api::all(common::client(&running.kubeconfig).await);
    api.get_opt(WEBHOOK_CONFIG)
        .await
        .unwrap()
        .map(|o| serde_json::to_value(o).unwrap())
}

fn assert_one_line_refusal(run: &Run, words: &str) {
    assert_eq!(
        run.code(),
        1,
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {}", run.stderr);
    assert!(
        lines[0].starts_with("kube-rescue: refused: ") && lines[0].contains(words),
        "{}",
        lines[0]
    );
}

/// Asserts that the run printed `text` on stdout.
fn says(run: &Run, text: impl AsRef<str>) {
    let text = text.as_ref();
    assert!(
        run.stdout.contains(text),
        "{text:?} not in stdout:\n{}\nstderr: {}",
        run.stdout,
        run.stderr
    );
}

fn backup_of(run: &Run) -> PathBuf {
    let line = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("- backup written: "))
        .unwrap_or_else(|| panic!("no backup line in:\n{}", run.stdout));
    PathBuf::from(line)
}

#[tokio::test]
async fn the_plan_alone_changes_nothing() {
    let running = common::start(common::outage_held_still()).await;
    let state = running.dir.path().join("state");
    let since = log_position(&running).await;
    let run = kube_rescue(
        &running,
        &state,
        &["fix", "delete", "vwc/opa-validating-webhook"],
    )
    .await;
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(
        out.starts_with("Plan: delete validatingwebhookconfiguration/opa-validating-webhook\n"),
        "{out}"
    );
    assert!(out.contains("dry run    passed"), "{out}");
    assert!(out.contains("RBAC       allowed"), "{out}");
    assert!(
        out.contains("kubectl --context kube-rescue-sim-opa-webhook-outage delete validatingwebhookconfiguration opa-validating-webhook"),
        "{out}"
    );
    assert!(
        out.contains("requests are admitted without its validation"),
        "{out}"
    );
    assert!(
        out.contains("--- before\n+++ /dev/null\n") && out.contains("-  failurePolicy: Fail"),
        "{out}"
    );
    assert!(
        out.contains("To apply: kube-rescue fix delete vwc/opa-validating-webhook --confirm opa-validating-webhook"),
        "{out}"
    );
    let (real, all) = writes_since(&running, since).await;
    assert!(
        real.is_empty(),
        "only dry runs and the access review: {real:?}"
    );
    assert!(
        all.iter().any(|r| r["method"] == "DELETE"),
        "the dry-run DELETE was sent: {all:?}"
    );
    assert!(webhook_config(&running).await.is_some(), "still there");
    assert!(!state.join("backups").exists(), "no backup for a plan");
    assert!(
        audit::read(&state).attempts.is_empty(),
        "a plan is not an attempt"
    );
}

#[tokio::test]
async fn delete_is_backed_up_audited_verified_and_restored() {
    let running = common::start(common::outage_held_still()).await;
    let state = running.dir.path().join("state");
    let original = webhook_config(&running).await.unwrap();
    let run = fix_confirmed(&running, &state, "delete").await;
    let backup = backup_of(&run);
    assert!(backup.starts_with(state.join("backups/kube-rescue-sim-opa-webhook-outage")));
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let saved: Value = kube_rescue_backup(&backup);
    assert_eq!(
        saved["metadata"]["uid"], original["metadata"]["uid"],
        "server fields kept"
    );
    says(&run, "- read back: gone (404)");
    says(&run, "- write probe: writes pass");
    says(&run, "done: writes pass now");
    assert!(webhook_config(&running).await.is_none());

    let records = audit::read(&state).attempts;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.result, "done");
    assert_eq!(record.action, "delete");
    assert_eq!(
        record.target,
        "validatingwebhookconfiguration/opa-validating-webhook"
    );
    assert_eq!(record.uid, original["metadata"]["uid"].as_str().unwrap());
    assert_eq!(record.backup.as_deref(), Some(backup.to_str().unwrap()));
    assert_eq!(record.user, "kube-rescue-sim-opa-webhook-outage-admin");
    assert!(
        record
            .verification
            .as_deref()
            .unwrap()
            .contains("writes pass"),
        "{record:?}"
    );
    let audit_file = state.join("audit.jsonl");
    assert_eq!(
        std::fs::metadata(&audit_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let token = running.sim.token().to_string();
    assert!(
        !std::fs::read_to_string(&audit_file)
            .unwrap()
            .contains(&token),
        "no credential"
    );

    // The plan of the restore, then the restore.
    let file = backup.to_str().unwrap();
    let plan = kube_rescue(&running, &state, &["restore", file]).await;
    assert_eq!(plan.code(), 0, "{}", plan.stderr);
    says(&plan, "does not exist: it will be created");
    assert!(
        webhook_config(&running).await.is_none(),
        "the plan restores nothing"
    );
    let run = kube_rescue(
        &running,
        &state,
        &["restore", file, "--confirm", WEBHOOK_CONFIG],
    )
    .await;
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    says(&run, "- backup: none needed");
    let restored = webhook_config(&running).await.expect("back");
    assert_ne!(
        restored["metadata"]["uid"], original["metadata"]["uid"],
        "a new object"
    );
    assert_eq!(
        without_server_fields(&restored),
        without_server_fields(&original)
    );
    let records = audit::read(&state).attempts;
    assert_eq!(records.len(), 2);
    assert_eq!(
        (records[1].action.as_str(), records[1].result.as_str()),
        ("restore", "done")
    );
}

fn kube_rescue_backup(path: &Path) -> Value {
    kube_rescue::remediate::backup::read(path).expect("the backup reads back")
}

#[tokio::test]
async fn fail_open_ends_the_write_failure_and_keeps_the_object() {
    let running = common::start(common::outage_held_still()).await;
    let state = running.dir.path().join("state");
    let original = webhook_config(&running).await.unwrap();
    let run = fix_confirmed(&running, &state, "fail-open").await;
    says(&run, "+  failurePolicy: Ignore");
    says(&run, "- write probe: writes pass");
    let now = webhook_config(&running).await.expect("not deleted");
    assert_eq!(now["metadata"]["uid"], original["metadata"]["uid"]);
    assert_eq!(now["webhooks"][0]["failurePolicy"], "Ignore");
}

#[tokio::test]
async fn exclude_system_namespaces_lets_kube_system_write() {
    let running = common::start(common::outage_held_still()).await;
    let state = running.dir.path().join("state");
    let run = fix_confirmed(&running, &state, "exclude-system-namespaces").await;
    assert!(
        run.stdout
            .contains("no longer enforced for kube-system, kube-node-lease, kube-public and opa"),
        "{}",
        run.stdout
    );
    says(&run, "kube-system: passed in");
    let now = webhook_config(&running).await.expect("not deleted");
    let expressions = now["webhooks"][0]["namespaceSelector"]["matchExpressions"]
        .as_array()
        .unwrap();
    assert_eq!(
        expressions.len(),
        2,
        "the OPA ignore label is kept: {expressions:?}"
    );
    assert_eq!(expressions[1]["key"], "kubernetes.io/metadata.name");
    assert_eq!(
        expressions[1]["values"],
        serde_json::json!(["kube-system", "kube-node-lease", "kube-public", "opa"])
    );
}

#[tokio::test]
async fn set_timeout_and_its_range() {
    let running = common::start(common::outage_held_still()).await;
    let state = running.dir.path().join("state");
    let bad = kube_rescue(
        &running,
        &state,
        &[
            "fix",
            "set-timeout",
            "vwc/opa-validating-webhook",
            "--seconds",
            "31",
        ],
    )
    .await;
    assert_eq!(bad.code(), 3);
    assert_eq!(
        bad.stderr.trim(),
        "kube-rescue: --seconds 31: timeoutSeconds must be between 1 and 30"
    );
    let run = kube_rescue(
        &running,
        &state,
        &[
            "fix",
            "set-timeout",
            "vwc/opa-validating-webhook",
            "--webhook",
            "validating-webhook.openpolicyagent.org",
            "--seconds",
            "3",
            "--confirm",
            WEBHOOK_CONFIG,
        ],
    )
    .await;
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        webhook_config(&running).await.unwrap()["webhooks"][0]["timeoutSeconds"],
        3
    );
    says(&run, "/webhooks/0/timeoutSeconds = 3");
}

#[tokio::test]
async fn restart_backend_restarts_the_deployment_behind_the_service() {
    let running = common::start(common::outage_held_still()).await;
    let state = running.dir.path().join("state");
    let deployments: Api<Deployment> =
        Api::namespaced(common::client(&running.kubeconfig).await, "opa");
    let before = deployments.get("opa").await.unwrap();
    let annotation = |d: &Deployment| {
        serde_json::to_value(d).unwrap()["spec"]["template"]["metadata"]["annotations"]
            ["kubectl.kubernetes.io/restartedAt"]
            .as_str()
            .map(str::to_string)
    };
    assert!(annotation(&before).is_none());
    let plan = kube_rescue(
        &running,
        &state,
        &["fix", "restart-backend", "vwc/opa-validating-webhook"],
    )
    .await;
    assert!(
        plan.stdout
            .contains("Service opa/opa (app=opa) -> deployment/opa/opa"),
        "{}",
        plan.stdout
    );
    says(
        &plan,
        "kubectl --context kube-rescue-sim-opa-webhook-outage -n opa rollout restart deployment opa",
    );
    assert!(
        plan.stdout.contains("--confirm opa\n"),
        "the Deployment's name confirms: {}",
        plan.stdout
    );
    let run = fix_webhook_config(&running, &state, "restart-backend", "opa").await;
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    let after = deployments.get("opa").await.unwrap();
    let stamp = annotation(&after).expect("restartedAt set");
    assert!(stamp.parse::<jiff::Timestamp>().is_ok(), "{stamp}");
    let records = audit::read(&state).attempts;
    assert_eq!(records[0].target, "deployment/opa/opa");
}

#[tokio::test]
async fn cordon_and_uncordon() {
    let running = common::start(Scenario::load("healthy").unwrap()).await;
    let state = running.dir.path().join("state");
    let node = "gke-small-pool-1-3e8b1d44-d7fs";
    let nodes: Api<Node> = Api::all(common::client(&running.kubeconfig).await);
    let unschedulable = |n: Node| n.spec.and_then(|s| s.unschedulable).unwrap_or(false);
    let target = format!("no/{node}");
    let run = kube_rescue(
        &running,
        &state,
        &["fix", "cordon", &target, "--confirm", node],
    )
    .await;
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    says(
        &run,
        format!("kubectl --context kube-rescue-sim-healthy cordon {node}"),
    );
    assert!(unschedulable(nodes.get(node).await.unwrap()));
    let again = kube_rescue(&running, &state, &["fix", "cordon", &target]).await;
    assert_eq!(again.code(), 0);
    assert_eq!(
        again.stdout.trim(),
        format!("nothing to change: node {node} is already cordoned")
    );
    let run = kube_rescue(
        &running,
        &state,
        &[
            "fix",
            "uncordon",
            &format!("node/{node}"),
            "--confirm",
            node,
        ],
    )
    .await;
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    assert!(!unschedulable(nodes.get(node).await.unwrap()));
}

#[tokio::test]
async fn a_wrong_confirmation_is_refused_and_audited() {
    let running = common::start(common::outage_held_still()).await;
    let state = running.dir.path().join("state");
    let original = webhook_config(&running).await.unwrap();
    let since = log_position(&running).await;
    let run = fix_webhook_config(&running, &state, "delete", "opa-validating").await;
    assert_one_line_refusal(
        &run,
        "the confirmation \"opa-validating\" is not the object's name",
    );
    assert_eq!(webhook_config(&running).await.unwrap(), original);
    let (real, _) = writes_since(&running, since).await;
    assert!(real.is_empty(), "{real:?}");
    let records = audit::read(&state).attempts;
    assert_eq!(records.len(), 1);
    assert!(
        records[0].result.starts_with("refused: the confirmation"),
        "{records:?}"
    );
    assert!(records[0].backup.is_none());
}

#[tokio::test]
async fn rbac_denial_is_shown_in_the_plan_and_refused() {
    let mut scenario = common::outage_held_still();
    common::deny_deleting_webhook_configurations(&mut scenario);
    let running = common::start(scenario).await;
    let state = running.dir.path().join("state");
    let since = log_position(&running).await;
    let run = fix_webhook_config(&running, &state, "delete", WEBHOOK_CONFIG).await;
    says(
        &run,
        "RBAC       DENIED: RBAC does not allow kube-rescue-sim-opa-webhook-outage-admin to delete validatingwebhookconfigurations opa-validating-webhook",
    );
    assert!(
        run.stdout.contains("dry run    FAILED"),
        "the dry run is refused too: {}",
        run.stdout
    );
    assert_one_line_refusal(&run, "RBAC does not allow");
    assert!(webhook_config(&running).await.is_some());
    let (real, _) = writes_since(&running, since).await;
    assert!(real.is_empty(), "{real:?}");
    let records = audit::read(&state).attempts;
    assert!(
        records[0]
            .result
            .starts_with("refused: RBAC does not allow"),
        "{records:?}"
    );
    // Other verbs stay allowed.
    let run = kube_rescue(
        &running,
        &state,
        &["fix", "fail-open", "vwc/opa-validating-webhook"],
    )
    .await;
    says(&run, "RBAC       allowed");
}

#[tokio::test]
async fn read_only_plans_and_refuses_without_a_single_write() {
    let running = common::start(common::outage_held_still()).await;
    let state = running.dir.path().join("state");
    let since = log_position(&running).await;
    let plan = kube_rescue(
        &running,
        &state,
        &[
            "fix",
            "fail-open",
            "vwc/opa-validating-webhook",
            "--read-only",
        ],
    )
    .await;
    assert_eq!(plan.code(), 0, "{}", plan.stderr);
    assert!(
        plan.stdout
            .contains("dry run    skipped (read-only: not sent)"),
        "{}",
        plan.stdout
    );
    says(&plan, "RBAC       not checked (read-only)");
    says(&plan, "+  failurePolicy: Ignore");
    let run = kube_rescue(
        &running,
        &state,
        &[
            "fix",
            "fail-open",
            "vwc/opa-validating-webhook",
            "--read-only",
            "--confirm",
            WEBHOOK_CONFIG,
        ],
    )
    .await;
    assert_one_line_refusal(&run, "read-only mode: nothing was sent");
    let (_, all) = writes_since(&running, since).await;
    assert!(
        all.is_empty(),
        "no POST, PUT, PATCH or DELETE at all: {all:?}"
    );
    assert_eq!(
        webhook_config(&running).await.unwrap()["webhooks"][0]["failurePolicy"],
        "Fail"
    );
    let records = audit::read(&state).attempts;
    assert_eq!(records.len(), 1);
    assert!(
        records[0].result.starts_with("refused: read-only"),
        "{records:?}"
    );
}

#[tokio::test]
async fn bad_input_is_one_line_naming_what_is_valid() {
    let running = common::start(common::outage_held_still()).await;
    let state = running.dir.path().join("state");
    let cases: [(&[&str], &str); 5] = [
        (
            &["fix", "nuke", "vwc/x"],
            "unknown action \"nuke\": use one of delete, fail-open",
        ),
        (
            &["fix", "delete", "pod/x"],
            "unknown kind \"pod\" in \"pod/x\"",
        ),
        (
            &["fix", "cordon", "vwc/x"],
            "cordon does not apply to validatingwebhookconfiguration/x: it takes node/NAME",
        ),
        (
            &["fix", "delete", "vwc/nope"],
            "validatingwebhookconfiguration/nope not found in context",
        ),
        (
            &["restore", "/nonexistent/backup.yaml"],
            "could not read the backup /nonexistent/backup.yaml",
        ),
    ];
    for (args, words) in cases {
        let run = kube_rescue(&running, &state, args).await;
        assert_eq!(run.code(), 3, "{args:?}: {}", run.stderr);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", run.stderr);
        assert!(lines[0].contains(words), "{args:?}: {}", lines[0]);
    }
}

#[tokio::test]
async fn the_kubectl_equivalent_does_the_same() {
    let Some(kubectl) = common::kubectl() else {
        return;
    };
    let running = common::start(common::outage_held_still()).await;
    let state = running.dir.path().join("state");
    let plan = kube_rescue(
        &running,
        &state,
        &["fix", "fail-open", "vwc/opa-validating-webhook"],
    )
    .await;
    let command = plan
        .stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("kubectl    "))
        .expect("a kubectl line")
        .to_string();
    assert!(command.starts_with("kubectl --context kube-rescue-sim-opa-webhook-outage patch validatingwebhookconfiguration opa-validating-webhook --type=json -p '[{\"op\":\"test\""), "{command}");
    let kubeconfig = running.kubeconfig.clone();
    let shell = format!(
        "{} {}",
        kubectl.display(),
        command.trim_start_matches("kubectl ")
    );
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(shell)
            .env("KUBECONFIG", kubeconfig)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        webhook_config(&running).await.unwrap()["webhooks"][0]["failurePolicy"],
        "Ignore"
    );
}

#[tokio::test]
async fn an_apiserver_that_does_not_answer_is_one_line_and_audited() {
    let mut scenario = common::outage_held_still();
    scenario.faults.push(kube_rescue::sim::scenario::Fault {
        matcher: kube_rescue::sim::scenario::FaultMatch {
            resource: Some("validatingwebhookconfigurations".into()),
            ..Default::default()
        },
        latency_ms: 0,
        status: None,
        message: None,
        hang: true,
        probability: None,
    });
    let running = common::start(scenario).await;
    let state = running.dir.path().join("state");
    let started = std::time::Instant::now();
    let target = format!("vwc/{WEBHOOK_CONFIG}");
    let args = [
        "fix",
        "delete",
        &target,
        "--confirm",
        WEBHOOK_CONFIG,
        "--timeout",
        "500ms",
    ];
    let run = kube_rescue(&running, &state, &args).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "a hang is caught"
    );
    assert_eq!(run.code(), 3, "{}", run.stderr);
    assert_eq!(
        run.stderr.trim(),
        "kube-rescue: get validatingwebhookconfigurations opa-validating-webhook: no answer within 0.5 s"
    );
    let records = audit::read(&state).attempts;
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].result,
        "failed: get validatingwebhookconfigurations opa-validating-webhook: no answer within 0.5 s"
    );
}

#[tokio::test]
async fn the_command_check_suggests_plans_the_fix() {
    let running = common::start(common::outage_held_still()).await;
    let state = running.dir.path().join("state");
    let check = kube_rescue(&running, &state, &["check", "--read-only"]).await;
    let suggested = check
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("plan it: kube-rescue "))
        .unwrap_or_else(|| panic!("no `plan it` line in:\n{}", check.stdout))
        .to_string();
    let args: Vec<&str> = suggested.split_whitespace().collect();
    assert_eq!(
        args[..3],
        ["fix", "fail-open", "vwc/opa-validating-webhook"],
        "{suggested}"
    );
    let plan = kube_rescue(&running, &state, &args).await;
    assert_eq!(plan.code(), 0, "{}", plan.stderr);
    says(
        &plan,
        "Plan: fail-open validatingwebhookconfiguration/opa-validating-webhook",
    );
    says(&plan, "+  failurePolicy: Ignore");
}

/// The exit code of `check --output json` and the finding ids it raises. A run that could not
/// check (exit 3) or printed no report fails the test: it is never an empty list.
async fn check_ids(running: &common::Running, state: &Path) -> (i32, Vec<String>) {
    let (code, report) = check_report(running, state).await;
    let ids = report["findings"]
        .as_array()
        .expect("a list of findings")
        .iter()
        .map(|f| {
            f["id"]
                .as_str()
                .expect("every finding has an id")
                .to_string()
        })
        .collect();
    (code, ids)
}

/// `check --output json`: its exit code and report. A run that could not check, or printed no
/// report, fails here: it never passes for an ended outage.
async fn check_report(running: &common::Running, state: &Path) -> (i32, Value) {
    let run = kube_rescue(running, state, &["check", "--output", "json"]).await;
    assert!(
        (0..=2).contains(&run.code()),
        "check could not run ({}): {}",
        run.code(),
        run.stderr
    );
    let report: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("check printed no JSON report ({e}):\n{}", run.stdout));
    assert!(report["findings"].is_array(), "{report:#}");
    (run.code(), report)
}

/// The findings of a report at warning or above: (id, severity, evidence).
fn raised(report: &Value) -> Vec<(String, String, Vec<String>)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["evidence"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

/// The findings of the control plane's outage: the apiserver crash-looping, heartbeats stale,
/// nodes down and recreated.
const CONTROL_PLANE_OUTAGE: [&str; 6] = [
    "node-heartbeats-stale",
    "nodes-not-ready",
    "nodes-repair-loop",
    "apiserver-not-ready",
    "apiserver-unreachable",
    "observation-incomplete",
];

/// The founding incident at five times its speed (every timing of the shipped outage, the
/// webhook's timeout included), played out until `check` sees it take hold, then ended with
/// `fix ACTION --confirm NAME` (tried again while the scenario's apiserver restart cuts it).
/// Returns the first `check` report for which `ended` holds, within two minutes.
async fn end_the_outage_with(
    action: &str,
    ended: impl Fn(i32, &Value) -> bool,
) -> (common::Running, PathBuf, Value) {
    let running = common::start(Scenario::load("opa-webhook-outage:speed=5").unwrap()).await;
    let state = running.dir.path().join("state");
    let started = std::time::Instant::now();
    loop {
        let (_, ids) = check_ids(&running, &state).await;
        if ids
            .iter()
            .any(|i| i == "node-heartbeats-stale" || i == "nodes-not-ready")
        {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the outage never took hold: {ids:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let mut done = None;
    for _ in 0..5 {
        let run = fix_webhook_config(&running, &state, action, WEBHOOK_CONFIG).await;
        if run.code() == 0 {
            done = Some(run);
            break;
        }
        eprintln!("{action} cut short ({}): {}", run.code(), run.stderr.trim());
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    let run = done.unwrap_or_else(|| panic!("{action} went through within 5 attempts"));
    assert!(
        run.stdout.lines().any(|l| l.starts_with("done")),
        "{}",
        run.stdout
    );
    let started = std::time::Instant::now();
    loop {
        let (code, report) = check_report(&running, &state).await;
        if ended(code, &report) {
            return (running, state, report);
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "not ended two minutes after {action} (exit {code}): {:#?}",
            raised(&report)
        );
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Whether the control plane's outage is over in a report: none of its findings is raised
/// (a repair loop that has stopped stays as info), and the report has every source (a check
/// that saw nothing raises observation-incomplete or apiserver-unreachable).
fn control_plane_recovered(report: &Value) -> bool {
    raised(report)
        .iter()
        .all(|(id, _, _)| !CONTROL_PLANE_OUTAGE.contains(&id.as_str()))
}

/// Deleting the webhook ends everything: a new `check` exits 0, with every node's heartbeat
/// back and the loop stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_the_webhook_ends_the_whole_outage_and_check_exits_0() {
    let (_running, _, report) = end_the_outage_with("delete", |code, _| code == 0).await;
    assert_eq!(raised(&report), []);
    let ids: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.iter().all(|id| *id == "nodes-repair-loop"),
        "only the stopped loop stays, as info: {report:#}"
    );
}

/// Failing open ends the control plane's outage (the apiserver ready, heartbeats back, the
/// loop stopped), and writes pass; they still wait out the hung webhook's timeout, which
/// `check` says. Restoring the backup gives back `failurePolicy: Fail`, and the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_open_ends_the_outage_and_restoring_brings_fail_back() {
    let (running, state, report) =
        end_the_outage_with("fail-open", |_, report| control_plane_recovered(report)).await;
    let left = raised(&report);
    assert!(
        left.iter()
            .all(|(id, severity, _)| id == "apiserver-slow" && severity == "warning"),
        "{left:#?}"
    );
    let config = webhook_config(&running).await.expect("kept");
    assert_eq!(config["webhooks"][0]["failurePolicy"], "Ignore");

    let log = audit::read(&state);
    let backup = log
        .attempts
        .iter()
        .filter(|a| a.action == "fail-open")
        .find_map(|a| a.backup.clone())
        .unwrap_or_else(|| panic!("the fail-open's backup is in the audit log: {log:#?}"));
    let run = kube_rescue(
        &running,
        &state,
        &["restore", &backup, "--confirm", WEBHOOK_CONFIG],
    )
    .await;
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    let config = webhook_config(&running).await.expect("kept");
    assert_eq!(config["webhooks"][0]["failurePolicy"], "Fail");
    let (code, ids) = check_ids(&running, &state).await;
    assert_eq!(
        (code, ids.first().map(String::as_str)),
        (2, Some("webhook-blocking-writes")),
        "{ids:?}"
    );
}

/// Excluding the system namespaces ends the control plane's outage: kube-system writes pass,
/// so the apiserver's ca-registration and the kubelets' Lease renewals go through. Writes in
/// the other namespaces still hang on the webhook, and `check` still says so, for them alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn excluding_system_namespaces_ends_the_control_plane_outage() {
    let (_running, _, report) = end_the_outage_with("exclude-system-namespaces", |_, report| {
        control_plane_recovered(report)
    })
    .await;
    let left = raised(&report);
    let blocking = left
        .iter()
        .find(|(id, _, _)| id == "webhook-blocking-writes")
        .expect("writes outside the system namespaces still fail");
    let probes: Vec<&String> = blocking
        .2
        .iter()
        .filter(|e| e.starts_with("write probe:"))
        .collect();
    assert!(
        !probes.is_empty() && probes.iter().all(|e| !e.contains(" in kube-system ")),
        "{blocking:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_changes_at_once_from_one_state_folder_one_applies_the_other_names_it() {
    let running = common::start(common::outage_held_still()).await;
    let state = running.dir.path().join("state");
    let target = format!("vwc/{WEBHOOK_CONFIG}");
    // The first change waits out the webhook's 10 s timeout while it verifies: the second
    // comes in meanwhile.
    let first = {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kube-rescue"));
        command
            .args(["fix", "fail-open", &target, "--confirm", WEBHOOK_CONFIG])
            .arg("--kubeconfig")
            .arg(&running.kubeconfig)
            .arg("--state-dir")
            .arg(&state)
            .env_remove("KUBECONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command.spawn().expect("kube-rescue runs")
    };
    let lock = state.join(kube_rescue::remediate::lock::LOCK_FILE);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("fail-open")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the first change never took the lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let second = kube_rescue(
        &running,
        &state,
        &[
            "fix",
            "set-timeout",
            &target,
            "--seconds",
            "3",
            "--confirm",
            WEBHOOK_CONFIG,
        ],
    )
    .await;
    let first = tokio::task::spawn_blocking(move || first.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(second.code(), 1, "{}{}", second.stdout, second.stderr);
    let said = format!("{}{}", second.stdout, second.stderr);
    assert!(
        said.contains("another kube-rescue change is in progress (pid ")
            && said.contains("fail-open validatingwebhookconfiguration/opa-validating-webhook"),
        "{said}"
    );
    let now = webhook_config(&running).await.expect("not deleted");
    assert_eq!(now["webhooks"][0]["failurePolicy"], "Ignore");
    assert_ne!(
        now["webhooks"][0]["timeoutSeconds"], 3,
        "the second changed nothing"
    );
}
