//! The change path when things go wrong, with the release binary's own code on a simulator:
//! `fix` killed at ten points of its run, a full disk while backing up and while auditing,
//! damaged or edited backups handed to `restore`, and a restore after someone else changed
//! the object since kube-rescue's change.

use crate::common;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::cli::{Run, kube_rescue, kube_rescue_offline, log_position, writes_since};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::Api;
use kube_rescue::remediate::audit;
use kube_rescue::remediate::change::without_server_fields;
use kube_rescue::sim::scenario::Scenario;
use serde_json::Value;

const CONFIG: &str = "gatekeeper-validating-webhook-configuration";
const POLICY: &str = "/webhooks/0/failurePolicy";

/// The healthy cluster held still: its webhook answers, so a change verifies in seconds.
async fn start() -> common::Running {
    let mut scenario = Scenario::load("healthy").expect("the shipped scenario loads");
    scenario.timeline.clear();
    common::start(scenario).await
}

async fn config(running: &common::Running) -> Value {
    let api: Api<ValidatingWebhookConfiguration> =
        Api::all(common::client(&running.kubeconfig).await);
    serde_json::to_value(api.get(CONFIG).await.expect("the configuration reads")).unwrap()
}

/// Starts `fix fail-open` confirmed, with `env` set, its output piped.
fn spawn_fix(running: &common::Running, state: &Path, env: &[(&str, &str)]) -> Child {
    spawn_action(running, state, "fail-open", env)
}

/// Starts `fix ACTION` on the webhook configuration, confirmed.
fn spawn_action(
    running: &common::Running,
    state: &Path,
    action: &str,
    env: &[(&str, &str)],
) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kube-rescue"));
    command
        .args(["fix", action, &format!("vwc/{CONFIG}"), "--confirm", CONFIG])
        .arg("--kubeconfig")
        .arg(&running.kubeconfig)
        .arg("--state-dir")
        .arg(state)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().expect("kube-rescue starts")
}

/// Where to kill a run of `fix`.
#[derive(Clone, Copy, Debug)]
enum Point {
    /// At a line of output that starts with this.
    Line(&'static str),
    /// Where the run waits when told to (the test seam `KUBE_RESCUE_TEST_PAUSE_AT`).
    Pause(&'static str),
    /// This long after the start.
    After(Duration),
}

/// Runs `fix` and kills it with SIGKILL at `point`; returns everything it printed.
async fn kill_at(running: &common::Running, state: &Path, point: Point) -> String {
    let env: Vec<(&str, &str)> = match point {
        Point::Pause(p) => vec![("KUBE_RESCUE_TEST_PAUSE_AT", p)],
        _ => vec![],
    };
    let mut child = spawn_fix(running, state, &env);
    let (send, lines) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    for stream in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr),
    ] {
        let send = send.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                let _ = send.send(line);
            }
        });
    }
    drop(send);
    tokio::task::spawn_blocking(move || {
        let mut seen = String::new();
        // A generous bound that only catches a hang.
        let give_up = std::time::Instant::now()
            + match point {
                Point::After(d) => d,
                _ => Duration::from_secs(90),
            };
        loop {
            let wait = give_up.saturating_duration_since(std::time::Instant::now());
            match lines.recv_timeout(wait) {
                Ok(line) => {
                    let hit = match point {
                        Point::Line(start) => line.starts_with(start),
                        Point::Pause(p) => line == format!("paused at {p}"),
                        Point::After(_) => false,
                    };
                    seen.push_str(&line);
                    seen.push('\n');
                    if hit {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    assert!(
                        matches!(point, Point::After(_)),
                        "{point:?} never came:\n{seen}"
                    );
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("the run ended before {point:?}:\n{seen}")
                }
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        seen
    })
    .await
    .unwrap()
}

/// Every file under `dir`, hidden ones too.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// What must hold after any kill: the log has no torn line, no backup is empty or partial;
/// and either nothing changed and no attempt says done, or the attempt is on record with its
/// backup and restoring that backup brings the object back.
async fn after_a_kill(running: &common::Running, state: &Path, original: &Value, seen: &str) {
    let log = audit::read(state);
    assert!(log.problems().is_empty(), "{:?}\n{seen}", log.problems());
    for file in files_under(&state.join("backups")) {
        let size = std::fs::metadata(&file).unwrap().len();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(size > 0, "an empty file {file:?}\n{seen}");
        assert!(
            !name.ends_with(".partial"),
            "a partial backup {file:?}\n{seen}"
        );
    }
    let now = config(running).await;
    if now.pointer(POLICY) == original.pointer(POLICY) {
        assert!(
            log.attempts.iter().all(|a| a.result != "done"),
            "nothing changed, yet an attempt says done: {:?}\n{seen}",
            log.attempts
        );
        return;
    }
    assert_eq!(now.pointer(POLICY), Some(&Value::from("Ignore")), "{seen}");
    let attempt = log
        .attempts
        .iter()
        .rev()
        .find(|a| a.action == "fail-open" && a.may_have_changed())
        .unwrap_or_else(|| panic!("the change is not on record: {:?}\n{seen}", log.attempts));
    let backup = attempt.backup.clone().expect("a backup on record");
    // `kube-rescue audit` shows it, with its backup.
    let listed = kube_rescue_offline(state, &["audit", "--output", "json"]).await;
    assert_eq!(listed.code(), 0, "{}", listed.stderr);
    let json: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(json["attempts"][0]["backup"], Value::from(backup.clone()));
    assert_eq!(
        json["attempts"][0]["result"],
        Value::from(attempt.result.clone())
    );
    let restored = kube_rescue(running, state, &["restore", &backup, "--confirm", CONFIG]).await;
    assert_eq!(
        restored.code(),
        0,
        "{}\n{}\n{seen}",
        restored.stdout,
        restored.stderr
    );
    assert_eq!(
        without_server_fields(&config(running).await),
        without_server_fields(original),
        "{seen}"
    );
}

#[tokio::test]
async fn fix_killed_at_ten_points_leaves_a_record_and_a_way_back() {
    let points = [
        Point::Line("Plan: fail-open"),
        Point::After(Duration::from_millis(300)),
        Point::Pause("lock-taken"),
        Point::Pause("backup-written"),
        Point::Pause("attempt-recorded"),
        Point::Pause("request-answered"),
        Point::Pause("outcome-recorded"),
        Point::Line("- read back:"),
        Point::Line("- write probe:"),
        Point::Pause("verified"),
    ];
    let runs = points.iter().map(|&point| async move {
        let running = start().await;
        let state = running.dir.path().join("state");
        let original = config(&running).await;
        let seen = kill_at(&running, &state, point).await;
        if matches!(point, Point::Pause("outcome-recorded")) {
            // Done on record, its checks cut short: the log says so.
            let listed = kube_rescue_offline(&state, &["audit"]).await;
            assert!(
                listed.stdout.contains("  done\n")
                    && listed.stdout.contains("verification: none recorded"),
                "{}",
                listed.stdout
            );
        }
        after_a_kill(&running, &state, &original, &seen).await;
        // The killed run's lock went with it: the next change goes ahead.
        let next = kube_rescue(
            &running,
            &state,
            &[
                "fix",
                "fail-open",
                &format!("vwc/{CONFIG}"),
                "--confirm",
                CONFIG,
            ],
        )
        .await;
        assert_eq!(
            next.code(),
            0,
            "after {point:?}: {}\n{}",
            next.stdout,
            next.stderr
        );
        // Killed after the outcome was written, the change is done on record, not interrupted.
        let log = audit::read(&state);
        if matches!(point, Point::Pause("outcome-recorded" | "verified")) {
            assert_eq!(log.attempts[0].result, "done", "{point:?}");
        }
        if matches!(point, Point::Pause("attempt-recorded" | "request-answered")) {
            assert!(log.attempts[0].interrupted, "{point:?}: {:?}", log.attempts);
        }
    });
    futures::future::join_all(runs).await;
}

fn no_space(point: &str) -> [(&str, &str); 1] {
    [("KUBE_RESCUE_TEST_NO_SPACE", point)]
}

async fn fix_with(running: &common::Running, state: &Path, env: &[(&str, &str)]) -> Run {
    run_action(running, state, "fail-open", env).await
}

async fn run_action(
    running: &common::Running,
    state: &Path,
    action: &str,
    env: &[(&str, &str)],
) -> Run {
    let child = spawn_action(running, state, action, env);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    Run::from(output)
}

#[tokio::test]
async fn a_full_disk_while_backing_up_changes_nothing() {
    let running = start().await;
    let state = running.dir.path().join("state");
    let original = config(&running).await;
    let since = log_position(&running).await;
    let run = fix_with(&running, &state, &no_space("backup")).await;
    assert_eq!(run.code(), 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("No space left on device")
            && run.stderr.contains("nothing was changed"),
        "{}",
        run.stderr
    );
    let (real, _) = writes_since(&running, since).await;
    assert!(real.is_empty(), "{real:?}");
    assert_eq!(config(&running).await, original);
    assert!(files_under(&state.join("backups")).is_empty());
    let log = audit::read(&state);
    assert_eq!(log.attempts.len(), 1);
    assert!(
        log.attempts[0].result.starts_with("failed: "),
        "{:?}",
        log.attempts
    );
}

#[tokio::test]
async fn a_full_disk_at_the_attempt_record_sends_nothing() {
    let running = start().await;
    let state = running.dir.path().join("state");
    let original = config(&running).await;
    let since = log_position(&running).await;
    let run = fix_with(&running, &state, &no_space("audit-attempt")).await;
    assert_eq!(run.code(), 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("the attempt record of fail-open validatingwebhookconfiguration/gatekeeper-validating-webhook-configuration could not be written")
            && run.stderr.contains("No space left on device")
            && run.stderr.contains("nothing was changed"),
        "{}",
        run.stderr
    );
    let (real, _) = writes_since(&running, since).await;
    assert!(real.is_empty(), "{real:?}");
    assert_eq!(config(&running).await, original);
}

#[tokio::test]
async fn a_full_disk_at_the_outcome_record_is_a_failure_that_names_it() {
    let running = start().await;
    let state = running.dir.path().join("state");
    let original = config(&running).await;
    let run = fix_with(&running, &state, &no_space("audit-outcome")).await;
    assert_eq!(run.code(), 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("the change was made, but the outcome record of fail-open")
            && run.stderr.contains("No space left on device"),
        "{}",
        run.stderr
    );
    // Never "done" while the record of it is missing.
    assert!(
        run.stdout.contains("changed, NOT AUDITED")
            && !run.stdout.lines().any(|l| l.starts_with("done")),
        "{}",
        run.stdout
    );
    // The attempt was written ahead: the change is on record as interrupted, with its backup.
    let log = audit::read(&state);
    assert_eq!(log.attempts.len(), 1);
    assert!(log.attempts[0].interrupted);
    let listed = kube_rescue_offline(&state, &["audit"]).await;
    assert!(
        listed.stdout.contains("outcome unknown: interrupted")
            && listed.stdout.contains("undo: kube-rescue restore "),
        "{}",
        listed.stdout
    );
    let backup = log.attempts[0].backup.clone().unwrap();
    let restored = kube_rescue(&running, &state, &["restore", &backup, "--confirm", CONFIG]).await;
    assert_eq!(
        restored.code(),
        0,
        "{}\n{}",
        restored.stdout,
        restored.stderr
    );
    assert_eq!(
        without_server_fields(&config(&running).await),
        without_server_fields(&original)
    );
}

#[tokio::test]
async fn damaged_edited_and_invalid_backups_are_refused_before_anything_is_sent() {
    let running = start().await;
    let state = running.dir.path().join("state");
    let run = fix_with(&running, &state, &[]).await;
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    let log = audit::read(&state);
    let backup = PathBuf::from(log.attempts[0].backup.clone().unwrap());
    let text = std::fs::read_to_string(&backup).unwrap();
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let object: Value = kube_rescue::remediate::backup::read(&backup).unwrap();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut o = object.clone();
        edit(&mut o);
        serde_saphyr::to_string(&o).unwrap()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "cut in half",
            text[..text.len() / 2].to_string(),
            "cut short or edited",
        ),
        (
            "cut before webhooks",
            text[..text.find("webhooks:").unwrap()].to_string(),
            "cut short or edited",
        ),
        (
            "edited",
            text.replace("failurePolicy: Fail", "failurePolicy: Ignore"),
            "cut short or edited",
        ),
        ("emptied", String::new(), "the file is empty"),
        ("not YAML", "{{{{ [".into(), "not a YAML object"),
        (
            "wrong kind",
            body.replace("kind: ValidatingWebhookConfiguration", "kind: ConfigMap")
                .replace(
                    "apiVersion: admissionregistration.k8s.io/v1",
                    "apiVersion: v1",
                ),
            "holds a ConfigMap",
        ),
        (
            "bogus enum",
            with(&|o| o["webhooks"][0]["failurePolicy"] = "Bogus".into()),
            "webhooks[0].failurePolicy: Unsupported value: \"Bogus\": supported values: \"Fail\", \"Ignore\"",
        ),
        (
            "a null webhook",
            with(&|o| o["webhooks"] = serde_json::json!([null])),
            "webhooks[0].name: Required value",
        ),
        (
            "no sideEffects",
            with(&|o| {
                o["webhooks"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("sideEffects");
            }),
            "webhooks[0].sideEffects: Required value",
        ),
        (
            "no name",
            with(&|o| {
                o["metadata"].as_object_mut().unwrap().remove("name");
            }),
            "metadata.name is missing",
        ),
    ];
    let since = log_position(&running).await;
    for (what, content, reason) in &cases {
        let file = running
            .dir
            .path()
            .join(format!("{}.yaml", what.replace(' ', "-")));
        std::fs::write(&file, content).unwrap();
        let run = kube_rescue(
            &running,
            &state,
            &["restore", file.to_str().unwrap(), "--confirm", CONFIG],
        )
        .await;
        assert_eq!(run.code(), 3, "{what}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(reason) && run.stderr.contains("nothing was sent"),
            "{what}: {reason:?} not in {}",
            run.stderr
        );
    }
    let (real, all) = writes_since(&running, since).await;
    assert!(
        real.is_empty() && all.is_empty(),
        "no write, not even a dry run: {all:?}"
    );
    // The real backup still restores.
    let run = kube_rescue(&running, &state, &["restore", backup.to_str().unwrap()]).await;
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("sha256 matches the audit log"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_keeps_what_a_colleague_changed_since_unless_told_to_overwrite_it() {
    let running = start().await;
    let state = running.dir.path().join("state");
    let original = config(&running).await;
    let Some(kubectl) = common::kubectl() else {
        return;
    };
    let edit = |timeout: &str, team: &str| {
        let patch = format!(
            r#"[{{"op":"replace","path":"/webhooks/0/timeoutSeconds","value":{timeout}}},{{"op":"add","path":"/metadata/labels/team","value":"{team}"}}]"#
        );
        let (ok, out, err, _) = common::run_kubectl(
            &kubectl,
            &running.kubeconfig,
            &[
                "patch",
                "validatingwebhookconfiguration",
                CONFIG,
                "--type=json",
                "--field-manager=kubectl-edit",
                "-p",
                &patch,
            ],
        );
        assert!(ok, "{out}\n{err}");
    };
    for (overwrite, timeout) in [(false, 7), (true, 5)] {
        let run = fix_with(&running, &state, &[]).await;
        assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
        let backup = audit::read(&state)
            .attempts
            .last()
            .unwrap()
            .backup
            .clone()
            .unwrap();
        edit(&timeout.to_string(), if overwrite { "b" } else { "a" });
        let mut args = vec!["restore", backup.as_str()];
        if overwrite {
            args.push("--overwrite-later-changes");
        }
        let plan = kube_rescue(&running, &state, &args).await;
        assert_eq!(plan.code(), 0, "{}\n{}", plan.stdout, plan.stderr);
        for words in [
            "CHANGED    since kube-rescue's change, by kubectl-edit",
            "/webhooks/0/timeoutSeconds",
            "/metadata/labels/team",
            "after the change",
        ] {
            assert!(
                plan.stdout.contains(words),
                "{words:?} not in\n{}",
                plan.stdout
            );
        }
        args.extend(["--confirm", CONFIG]);
        let run = kube_rescue(&running, &state, &args).await;
        assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
        let now = config(&running).await;
        assert_eq!(now.pointer(POLICY), original.pointer(POLICY));
        if overwrite {
            let saved = kube_rescue::remediate::backup::read(Path::new(&backup)).unwrap();
            assert_eq!(without_server_fields(&now), without_server_fields(&saved));
            assert_eq!(
                now.pointer("/metadata/labels/team"),
                Some(&Value::from("a"))
            );
        } else {
            // The colleague's edit survives; only kube-rescue's field was put back.
            assert_eq!(
                now.pointer("/webhooks/0/timeoutSeconds"),
                Some(&Value::from(7))
            );
            assert_eq!(
                now.pointer("/metadata/labels/team"),
                Some(&Value::from("a"))
            );
        }
    }
}

/// Replaces the webhook configuration as a colleague would, with field manager `manager`.
async fn replace_config(running: &common::Running, object: &Value, manager: &str) {
    let api: Api<ValidatingWebhookConfiguration> =
        Api::all(common::client(&running.kubeconfig).await);
    let typed: ValidatingWebhookConfiguration = serde_json::from_value(object.clone()).unwrap();
    let params = kube::api::PostParams {
        field_manager: Some(manager.into()),
        ..Default::default()
    };
    api.replace(CONFIG, &params, &typed)
        .await
        .expect("the edit is accepted");
}

#[tokio::test]
async fn a_restore_of_a_list_change_puts_the_list_back_and_keeps_a_later_edit() {
    let running = start().await;
    let state = running.dir.path().join("state");
    // A configuration that does not leave out the system namespaces yet.
    let mut bare = config(&running).await;
    bare["webhooks"][0]["namespaceSelector"]["matchExpressions"] =
        serde_json::json!([{"key": "admission.gatekeeper.sh/ignore", "operator": "DoesNotExist"}]);
    replace_config(&running, &bare, "helm").await;
    let before = config(&running).await;
    let run = run_action(&running, &state, "exclude-system-namespaces", &[]).await;
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    let mut edited = config(&running).await;
    assert_eq!(
        edited["webhooks"][0]["namespaceSelector"]["matchExpressions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    edited["webhooks"][0]["timeoutSeconds"] = 7.into();
    replace_config(&running, &edited, "kubectl-edit").await;
    let backup = audit::read(&state).attempts[0].backup.clone().unwrap();
    let run = kube_rescue(&running, &state, &["restore", &backup, "--confirm", CONFIG]).await;
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("/webhooks/0/namespaceSelector/matchExpressions")
            && run.stdout.contains("by kubectl-edit"),
        "{}",
        run.stdout
    );
    let now = config(&running).await;
    assert_eq!(
        now["webhooks"][0]["namespaceSelector"],
        before["webhooks"][0]["namespaceSelector"]
    );
    assert_eq!(now["webhooks"][0]["timeoutSeconds"], 7);
}

#[tokio::test]
async fn an_object_created_again_since_a_delete_is_replaced_only_when_told() {
    let running = start().await;
    let state = running.dir.path().join("state");
    let run = run_action(&running, &state, "delete", &[]).await;
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    let backup = audit::read(&state).attempts[0].backup.clone().unwrap();
    // Someone (a GitOps controller) creates it again, with their own settings.
    let mut theirs =
        without_server_fields(&kube_rescue::remediate::backup::read(Path::new(&backup)).unwrap());
    theirs["webhooks"][0]["timeoutSeconds"] = 9.into();
    let api: Api<ValidatingWebhookConfiguration> =
        Api::all(common::client(&running.kubeconfig).await);
    let typed: ValidatingWebhookConfiguration = serde_json::from_value(theirs).unwrap();
    let params = kube::api::PostParams {
        field_manager: Some("argocd-controller".into()),
        ..Default::default()
    };
    api.create(&params, &typed).await.unwrap();
    let since = log_position(&running).await;
    let run = kube_rescue(&running, &state, &["restore", &backup, "--confirm", CONFIG]).await;
    assert_eq!(run.code(), 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("was deleted and created again since kube-rescue's delete")
            && run.stderr.contains("--overwrite-later-changes"),
        "{}",
        run.stderr
    );
    let (real, _) = writes_since(&running, since).await;
    assert!(real.is_empty(), "{real:?}");
    assert_eq!(config(&running).await["webhooks"][0]["timeoutSeconds"], 9);
    let run = kube_rescue(
        &running,
        &state,
        &[
            "restore",
            &backup,
            "--overwrite-later-changes",
            "--confirm",
            CONFIG,
        ],
    )
    .await;
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(config(&running).await["webhooks"][0]["timeoutSeconds"], 3);
}
