//! The triage screen's views, drawn with a fixed-size TestBackend from Snapshots saved under
//! tests/fixtures/snapshots/ (taken from the simulator's shipped scenarios; regenerate with
//! `cargo test --test suite -- --ignored tui_views::regenerate_fixtures`), at a fixed time, and
//! compared with insta snapshots.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use kube_rescue::cluster::collect::{RefreshPolicy, Refresher};
use kube_rescue::cluster::probe::ProbeState;
use kube_rescue::cluster::{Cluster, ConnectOptions, Snapshot};
use kube_rescue::remediate::audit::{self, AuditRecord, RecordKind};
use kube_rescue::remediate::plan::LaterChanges;
use kube_rescue::remediate::{
    self, Change, DryRun, Outcome, Plan, Rbac, Target, TargetKind, Verdict,
};
use kube_rescue::sim::Simulator;
use kube_rescue::sim::scenario::Scenario;
use kube_rescue::tui::dialog::Dialog;
use kube_rescue::tui::{Action, Connection, Model, Request, Update, View, update};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/snapshots")
        .join(format!("{name}.json"))
}

fn load(name: &str) -> Arc<Snapshot> {
    let text = std::fs::read_to_string(fixture_path(name)).expect("fixture exists");
    Arc::new(serde_json::from_str(&text).expect("fixture is a Snapshot"))
}

/// A model that received `snapshot`, seen 3 s after the refresh finished.
fn model_with(name: &str, read_only: bool) -> Model {
    let snapshot = load(name);
    let taken = snapshot.taken_at.expect("fixture has taken_at");
    let mut model = Model::new(
        Connection {
            context: String::new(),
            server: String::new(),
            read_only,
        },
        taken - SignedDuration::from_secs(20),
    );
    update(&mut model, Action::Update(Update::Snapshot(snapshot)));
    update(
        &mut model,
        Action::Tick(taken + SignedDuration::from_secs(3)),
    );
    model
}

fn draw(model: &Model, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| frame.render_widget(model, frame.area()))
        .unwrap();
    terminal.backend().to_string()
}

/// What the model asked background work to do, journal entries aside.
fn work(model: &mut Model) -> Vec<Request> {
    model
        .take_requests()
        .into_iter()
        .filter(|r| !matches!(r, Request::Journal(_)))
        .collect()
}

/// Snapshots of the Webhooks, Nodes, Health and Events views, named `PREFIX_view_80x24`.
fn snapshot_list_views(model: &mut Model, prefix: &str) {
    for view in [View::Webhooks, View::Nodes, View::Health, View::Events] {
        send(model, [Action::GoTo(view)]);
        insta::assert_snapshot!(
            format!("{prefix}_{}_80x24", view.title().to_lowercase()),
            draw(model, 80, 24)
        );
    }
}

fn send(model: &mut Model, actions: impl IntoIterator<Item = Action>) {
    for action in actions {
        let mut next = Some(action);
        while let Some(a) = next {
            next = update(model, a);
        }
    }
}

#[test]
fn outage_findings() {
    let model = model_with("opa-webhook-outage", false);
    let screen = draw(&model, 80, 24);
    assert!(
        screen.contains("validating-webhook.openpolicyagent.org"),
        "{screen}"
    );
    insta::assert_snapshot!("outage_findings_80x24", screen);
}

#[test]
fn outage_finding_detail_read_only() {
    let mut model = model_with("opa-webhook-outage", true);
    send(&mut model, [Action::Detail]);
    let screen = draw(&model, 80, 24);
    assert!(screen.contains("READ-ONLY"), "{screen}");
    insta::assert_snapshot!("outage_finding_detail_80x24", screen);
}

#[test]
fn outage_findings_large_terminal() {
    let model = model_with("opa-webhook-outage", true);
    insta::assert_snapshot!("outage_findings_120x40", draw(&model, 120, 40));
}

#[test]
fn outage_webhooks() {
    let mut model = model_with("opa-webhook-outage", false);
    send(&mut model, [Action::GoTo(View::Webhooks)]);
    insta::assert_snapshot!("outage_webhooks_80x24", draw(&model, 80, 24));
}

#[test]
fn outage_nodes() {
    let mut model = model_with("opa-webhook-outage", false);
    send(&mut model, [Action::GoTo(View::Nodes)]);
    insta::assert_snapshot!("outage_nodes_80x24", draw(&model, 80, 24));
}

#[test]
fn outage_health() {
    let mut model = model_with("opa-webhook-outage", false);
    send(&mut model, [Action::GoTo(View::Health)]);
    let screen = draw(&model, 80, 24);
    assert!(screen.contains("[+]"), "{screen}");
    insta::assert_snapshot!("outage_health_80x24", screen);
}

#[test]
fn outage_events() {
    let mut model = model_with("opa-webhook-outage", false);
    send(&mut model, [Action::GoTo(View::Events)]);
    let screen = draw(&model, 80, 24);
    assert!(screen.contains("FailedCreate"), "{screen}");
    insta::assert_snapshot!("outage_events_80x24", screen);
    // Newest first.
    let seen: Vec<_> = model.event_rows.iter().map(|e| e.last_seen).collect();
    assert!(seen.windows(2).all(|w| w[0] >= w[1]), "{seen:?}");
    // Filtered by what the message says.
    send(&mut model, [Action::StartFilter]);
    for c in "deadline".chars() {
        send(&mut model, [Action::FilterInput(c)]);
    }
    send(&mut model, [Action::FilterDone]);
    let visible = model.visible_events();
    assert!(!visible.is_empty());
    assert!(visible.iter().all(|e| e.message.contains("deadline")));
    insta::assert_snapshot!("outage_events_filtered_80x24", draw(&model, 80, 24));
}

#[test]
fn healthy_views() {
    let mut model = model_with("healthy", false);
    snapshot_list_views(&mut model, "healthy");
}

#[test]
fn jump_to_a_view_by_name() {
    let mut model = model_with("opa-webhook-outage", false);
    let type_command = |model: &mut Model, text: &str| {
        send(model, [Action::StartCommand]);
        for c in text.chars() {
            send(model, [Action::CommandInput(c)]);
        }
        send(model, [Action::CommandDone]);
    };
    for (text, view) in [
        ("no", View::Nodes),
        ("ev", View::Events),
        ("Webhooks", View::Webhooks),
        ("hooks", View::Webhooks),
        ("he", View::Health),
        ("f", View::Findings),
    ] {
        type_command(&mut model, text);
        assert_eq!(model.view, view, ":{text}");
        assert!(model.command.is_none());
    }
    // While typing, the prompt shows in the footer.
    send(
        &mut model,
        [Action::StartCommand, Action::CommandInput('x')],
    );
    let screen = draw(&model, 80, 24);
    assert!(screen.contains(" :x▏"), "{screen}");
    send(&mut model, [Action::Back]);
    assert!(model.command.is_none());
    assert_eq!(model.view, View::Findings);
    // An unknown name says what exists and stays where it is.
    type_command(&mut model, "pods");
    assert_eq!(model.view, View::Findings);
    let screen = draw(&model, 80, 24);
    assert!(screen.contains("no view named \"pods\""), "{screen}");
    type_command(&mut model, "q");
    assert!(!model.running);
}

#[test]
fn refresh_now_asks_the_background_once_per_press() {
    let mut model = model_with("opa-webhook-outage", false);
    assert!(work(&mut model).is_empty());
    // Not connected yet in this model: the snapshot connected it.
    send(&mut model, [Action::RefreshNow]);
    assert_eq!(work(&mut model), vec![Request::RefreshNow]);
    assert!(work(&mut model).is_empty());
    let screen = draw(&model, 80, 24);
    assert!(screen.contains("refreshing…"), "{screen}");
    // The next snapshot answers it.
    send(
        &mut model,
        [Action::Update(Update::Snapshot(load("opa-webhook-outage")))],
    );
    assert!(model.refresh_requested.is_none());
    // Before any connection, there is nothing to refresh.
    let mut fresh = Model::new(Connection::default(), Timestamp::UNIX_EPOCH);
    send(&mut fresh, [Action::RefreshNow]);
    assert!(work(&mut fresh).is_empty());
}

#[test]
fn webhook_rows_carry_scope_metrics_and_last_error() {
    let model = model_with("opa-webhook-outage", false);
    let opa = model
        .webhook_rows
        .iter()
        .find(|w| w.name == "validating-webhook.openpolicyagent.org")
        .expect("the opa webhook");
    assert!(opa.intercepts_kube_system);
    assert!(
        opa.intercepts.contains("CREATE,UPDATE"),
        "{}",
        opa.intercepts
    );
    let (error, _) = opa.last_error.as_ref().expect("a last error");
    assert!(error.contains("failed calling webhook"), "{error}");
    assert!(opa.metrics.as_ref().is_some_and(|m| m.calling_errors > 0.0));
    // Failing first.
    assert_eq!(model.webhook_rows[0].name, opa.name);
    let sidecar = model
        .webhook_rows
        .iter()
        .find(|w| w.name == "sidecar-injector.acme.io")
        .expect("the sidecar webhook");
    assert!(!sidecar.intercepts_kube_system);
    assert!(sidecar.last_error.is_none());
}

#[test]
fn help() {
    let mut model = model_with("healthy", false);
    send(&mut model, [Action::ToggleHelp]);
    insta::assert_snapshot!("help_80x24", draw(&model, 80, 24));
    send(&mut model, [Action::Back]);
    assert_eq!(model.view, View::Findings);
}

#[test]
fn healthy_cluster() {
    let model = model_with("healthy", false);
    insta::assert_snapshot!("healthy_findings_80x24", draw(&model, 80, 24));
}

#[test]
fn apiservice_down() {
    let mut model = model_with("apiservice-down", false);
    insta::assert_snapshot!("apiservice_down_findings_80x24", draw(&model, 80, 24));
    snapshot_list_views(&mut model, "apiservice_down");
}

#[test]
fn every_source_failed() {
    let model = model_with("unreachable", false);
    let screen = draw(&model, 80, 24);
    assert!(screen.contains("UNREACHABLE"), "{screen}");
    insta::assert_snapshot!("unreachable_findings_80x24", screen);
    let mut model = model;
    snapshot_list_views(&mut model, "unreachable");
}

#[test]
fn before_the_first_refresh() {
    let t0 = Timestamp::from_second(1_800_000_000).unwrap();
    let mut model = Model::new(
        Connection {
            context: "prod".into(),
            server: String::new(),
            read_only: false,
        },
        t0,
    );
    send(
        &mut model,
        [Action::Tick(t0 + SignedDuration::from_secs(2))],
    );
    let screen = draw(&model, 80, 24);
    assert!(screen.contains("connecting… 2s"), "{screen}");
    insta::assert_snapshot!("connecting_80x24", screen);
}

#[test]
fn too_small() {
    let model = model_with("opa-webhook-outage", false);
    let screen = draw(&model, 60, 20);
    assert!(screen.contains("too small"), "{screen}");
    insta::assert_snapshot!("too_small_60x20", screen);
}

#[test]
fn moving_and_filtering() {
    let mut model = model_with("opa-webhook-outage", false);
    let n = model.findings.len();
    assert!(n > 2);
    send(&mut model, [Action::Down, Action::Down]);
    assert_eq!(model.selection.findings, 2);
    send(&mut model, [Action::Bottom, Action::Down]);
    assert_eq!(model.selection.findings, n - 1);
    send(&mut model, [Action::NextView, Action::PrevView]);
    assert_eq!(model.view, View::Findings);
    send(&mut model, [Action::StartFilter]);
    for c in "timeout".chars() {
        send(&mut model, [Action::FilterInput(c)]);
    }
    send(&mut model, [Action::FilterDone]);
    let visible = model.visible_findings();
    assert!(!visible.is_empty() && visible.len() < n);
    assert!(
        visible
            .iter()
            .all(|f| f.title.to_lowercase().contains("timeout") || f.id.contains("timeout"))
    );
    insta::assert_snapshot!("outage_findings_filtered_80x24", draw(&model, 80, 24));
    send(&mut model, [Action::Back]);
    assert_eq!(model.visible_findings().len(), n);
    send(&mut model, [Action::Quit]);
    assert!(!model.running);
}

// ---------------------------------------------------------------------------------------------
// Fixture generation (run by hand; the fixtures are committed)

/// Ports vary from run to run; the fixtures carry a fixed one.
fn normalise(json: &str, port: u16) -> String {
    json.replace(&format!("127.0.0.1:{port}"), "127.0.0.1:6443")
}

fn quick_policy() -> RefreshPolicy {
    RefreshPolicy {
        interval: Duration::from_secs(1),
        max_backoff: Duration::from_secs(2),
        jitter: 0.0,
        probe_interval: Some(Duration::from_secs(2)),
    }
}

/// Runs a scenario until `good` accepts a snapshot (or `limit` passes, then the last one).
async fn collect(name: &str, limit: Duration, good: impl Fn(&Snapshot) -> bool) {
    let sim = Simulator::start(
        Scenario::load(name).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let cluster = Cluster::connect(&ConnectOptions {
        kubeconfig: Some(kubeconfig),
        ..Default::default()
    })
    .await
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let handle = Refresher::new(cluster, quick_policy()).spawn(tx);
    let start = Instant::now();
    let mut last = None;
    while let Ok(Some(s)) = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
        let done = good(&s) || start.elapsed() > limit;
        last = Some(s);
        if done {
            break;
        }
    }
    handle.stop().await;
    let port = sim.address().port();
    sim.stop().await;
    let json = serde_json::to_string_pretty(&*last.expect("a snapshot")).unwrap();
    std::fs::write(fixture_path(name), normalise(&json, port) + "\n").unwrap();
}

#[tokio::test]
#[ignore = "regenerates the committed fixtures from the simulator"]
async fn regenerate_fixtures() {
    let answered = |s: &Snapshot| s.readyz.error.is_none() && s.readyz.value.is_some();
    let probed = |s: &Snapshot| s.write_probe.as_ref().is_some_and(|p| p.is_finished());
    let webhook_failed = |s: &Snapshot| {
        s.write_probe.as_ref().is_some_and(|p| {
            p.namespaces.iter().any(|n| {
                matches!(&n.state, ProbeState::Failed { failure, .. } if failure.webhook().is_some())
            })
        })
    };
    collect("opa-webhook-outage", Duration::from_secs(150), |s| {
        answered(s)
            && webhook_failed(s)
            && !s
                .node_identities
                .recreated(Duration::from_secs(3600), s.taken_at.unwrap())
                .is_empty()
    })
    .await;
    collect("healthy", Duration::from_secs(20), |s| {
        answered(s) && probed(s)
    })
    .await;
    collect("apiservice-down", Duration::from_secs(20), |s| {
        answered(s) && probed(s)
    })
    .await;

    // Every source failed: a client for a simulator that is gone.
    let sim = Simulator::start(
        Scenario::load("healthy").unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let port = sim.address().port();
    sim.stop().await;
    let cluster = Cluster::connect(&ConnectOptions {
        kubeconfig: Some(kubeconfig),
        ..Default::default()
    })
    .await
    .unwrap();
    let snapshot = kube_rescue::cluster::refresh(&cluster, None).await;
    let json = serde_json::to_string_pretty(&snapshot).unwrap();
    std::fs::write(fixture_path("unreachable"), normalise(&json, port) + "\n").unwrap();
}

// ---------------------------------------------------------------------------------------------
// The remediation dialog

/// A change's outcome as the background work reports it: done, backed up, audited.
fn applied_and_done() -> Action {
    Action::Update(Update::Applied(Box::new(Outcome {
        verdict: Verdict::Done,
        backup: Some("/state/backups/prod/x.yaml".into()),
        verification: None,
        audit: Ok("/state/audit.jsonl".into()),
    })))
}

fn sample_plan(read_only: bool) -> Box<Plan> {
    let before = serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "opa-validating-webhook", "uid": "u-1", "resourceVersion": "42"},
        "webhooks": [{"name": "validating-webhook.openpolicyagent.org", "failurePolicy": "Fail"}]
    });
    let target = Target::new(
        TargetKind::ValidatingWebhookConfiguration,
        None,
        "opa-validating-webhook",
    );
    Box::new(Plan {
        action: "delete".into(),
        context: "prod".into(),
        server: "https://10.0.0.1".into(),
        user: "oncall".into(),
        target,
        via: None,
        uid: "u-1".into(),
        resource_version: "42".into(),
        before: Some(before),
        change: Change::Delete,
        diff: "--- validatingwebhookconfiguration/opa-validating-webhook (now)\n+++ (after)\n@@ -1,2 +0,0 @@\n-kind: ValidatingWebhookConfiguration\n-name: opa-validating-webhook\n".into(),
        kubectl: "kubectl --context prod delete validatingwebhookconfiguration opa-validating-webhook".into(),
        gives_up: "the policies of opa-validating-webhook are no longer enforced anywhere".into(),
        dry_run: if read_only {
            DryRun::Skipped("read-only".into())
        } else {
            DryRun::Passed
        },
        rbac: if read_only {
            Rbac::NotChecked("read-only".into())
        } else {
            Rbac::Allowed
        },
        read_only,
        restore_from: None,
        integrity: None,
        later: None,
    })
}

fn type_text(model: &mut Model, text: &str) {
    for c in text.chars() {
        send(model, [Action::Type(c)]);
    }
}

#[test]
fn a_finding_is_fixed_through_plan_and_typed_name() {
    let mut model = model_with("opa-webhook-outage", false);
    assert!(work(&mut model).is_empty());
    send(&mut model, [Action::OpenActions]);
    let Some(Dialog::Menu { choices, .. }) = &model.dialog else {
        panic!("a menu: {:?}", model.dialog);
    };
    let names: Vec<&str> = choices
        .iter()
        .map(|c| match &c.request {
            remediate::Request::Fix { action, .. } => action.name(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        [
            "fail-open",
            "exclude-system-namespaces",
            "restart-backend",
            "delete"
        ]
    );
    insta::assert_snapshot!("outage_action_menu_80x24", draw(&model, 80, 24));
    // Nothing is asked of the cluster until a choice is made; then only a plan.
    assert!(work(&mut model).is_empty());
    send(&mut model, [Action::Bottom, Action::Submit]);
    let requests = work(&mut model);
    match requests.as_slice() {
        [Request::Plan(remediate::Request::Fix { action, target })] => {
            assert_eq!(action.name(), "delete");
            assert_eq!(target.name, "opa-validating-webhook");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(model.dialog, Some(Dialog::Planning { .. })));
    send(
        &mut model,
        [Action::Update(Update::Planned(Ok(sample_plan(false))))],
    );
    assert!(matches!(model.dialog, Some(Dialog::Confirm { .. })));
    // Keys are text now: `q` does not quit, digits do not switch views.
    type_text(&mut model, "q1opa");
    assert!(model.running);
    assert_eq!(model.view, View::Findings);
    send(&mut model, [Action::Submit]);
    assert!(work(&mut model).is_empty(), "a wrong name applies nothing");
    let screen = draw(&model, 80, 24);
    assert!(
        screen.contains("is not \"opa-validating-webhook\""),
        "{screen}"
    );
    for _ in 0.."q1opa".len() {
        send(&mut model, [Action::TypeBackspace]);
    }
    type_text(&mut model, "opa-validating-webhook");
    insta::assert_snapshot!("outage_plan_confirm_80x24", draw(&model, 80, 24));
    send(&mut model, [Action::Submit]);
    match work(&mut model).as_slice() {
        [Request::Apply { confirmation, .. }] => assert_eq!(confirmation, "opa-validating-webhook"),
        other => panic!("{other:?}"),
    }
    // Esc does not walk away from a change in flight.
    send(&mut model, [Action::Back]);
    assert!(matches!(model.dialog, Some(Dialog::Applying { .. })));
    send(
        &mut model,
        [
            Action::Update(Update::ApplyStep(
                "backup written: /state/backups/prod/x.yaml".into(),
            )),
            Action::Update(Update::ApplyStep("deleted".into())),
        ],
    );
    send(&mut model, [applied_and_done()]);
    // The outcome shows, and the cluster and the audit log are read again at once.
    let requests = work(&mut model);
    assert!(requests.contains(&Request::RefreshNow), "{requests:?}");
    assert!(requests.contains(&Request::ReadAudit), "{requests:?}");
    insta::assert_snapshot!("outage_change_done_80x24", draw(&model, 80, 24));
    send(&mut model, [Action::Back]);
    assert!(model.dialog.is_none());
}

#[test]
fn read_only_shows_the_plan_and_cannot_apply() {
    let mut model = model_with("opa-webhook-outage", true);
    send(
        &mut model,
        [Action::GoTo(View::Webhooks), Action::OpenActions],
    );
    let Some(Dialog::Menu { choices, .. }) = &model.dialog else {
        panic!("a menu: {:?}", model.dialog);
    };
    assert_eq!(choices.len(), 5, "{choices:?}");
    send(&mut model, [Action::Submit]);
    assert!(matches!(work(&mut model).as_slice(), [Request::Plan(_)]));
    send(
        &mut model,
        [Action::Update(Update::Planned(Ok(sample_plan(true))))],
    );
    // Keys are not text here: nothing can be typed, Enter only explains.
    assert!(!model.dialog.as_ref().unwrap().takes_text());
    send(&mut model, [Action::Submit]);
    assert!(work(&mut model).is_empty());
    let screen = draw(&model, 80, 24);
    assert!(screen.contains("READ-ONLY"), "{screen}");
    insta::assert_snapshot!("outage_plan_read_only_80x24", screen);
}

#[test]
fn a_plan_that_cannot_be_made_says_why() {
    let mut model = model_with("opa-webhook-outage", false);
    send(
        &mut model,
        [
            Action::GoTo(View::Nodes),
            Action::OpenActions,
            Action::Submit,
        ],
    );
    assert!(matches!(model.dialog, Some(Dialog::Planning { .. })));
    send(
        &mut model,
        [Action::Update(Update::Planned(Err(
            "node \"gke-x\" not found".into(),
        )))],
    );
    let screen = draw(&model, 80, 24);
    assert!(screen.contains("not found"), "{screen}");
    assert!(screen.contains("nothing was changed"), "{screen}");
    send(&mut model, [Action::Back]);
    assert!(model.dialog.is_none());
}

#[test]
fn the_audit_view_undoes_a_change_by_restoring_its_backup() {
    let mut model = model_with("opa-webhook-outage", false);
    // Written and read back as the log is: a refusal, a change done, and a change whose run
    // was cut short after its attempt was recorded.
    let state = tempfile::tempdir().unwrap();
    let record = |kind: RecordKind, id: &str, result: &str, backup: Option<&str>| {
        let mut r = AuditRecord::new(
            kind,
            Some(id.to_string()),
            ("oncall", "prod", "https://10.0.0.1"),
            "delete",
            "validatingwebhookconfiguration/opa-validating-webhook",
            "u-1",
            result.into(),
        );
        r.time = "2026-11-26T10:02:03.000Z".into();
        r.backup = backup.map(str::to_string);
        r.verification = (result == "done").then(|| "read back: gone; write probe: passed".into());
        audit::append(state.path(), &r).unwrap();
    };
    record(
        RecordKind::Outcome,
        "a",
        "refused: wrong confirmation",
        None,
    );
    record(
        RecordKind::Attempt,
        "b",
        "attempted",
        Some("/state/backups/prod/opa.yaml"),
    );
    record(
        RecordKind::Outcome,
        "b",
        "done",
        Some("/state/backups/prod/opa.yaml"),
    );
    record(
        RecordKind::Attempt,
        "c",
        "attempted",
        Some("/state/backups/prod/opa-2.yaml"),
    );
    send(
        &mut model,
        [
            Action::Update(Update::Audit(audit::read(state.path()))),
            Action::GoTo(View::Audit),
        ],
    );
    // Newest first: the interrupted attempt, with its backup ready to restore.
    assert_eq!(model.audit[0].result, audit::INTERRUPTED);
    let screen = draw(&model, 100, 24);
    assert!(screen.contains("outcome unknown: interrupted"), "{screen}");
    assert!(
        screen.contains("the run stopped after the attempt was recorded"),
        "{screen}"
    );
    send(&mut model, [Action::Undo]);
    match work(&mut model).as_slice() {
        [Request::Plan(remediate::Request::Restore { file, recorded, .. })] => {
            assert_eq!(file.to_str(), Some("/state/backups/prod/opa-2.yaml"));
            assert!(recorded.as_ref().is_some_and(|r| r.interrupted));
        }
        other => panic!("{other:?}"),
    }
    send(&mut model, [Action::Back, Action::Down]);
    assert_eq!(model.audit[1].result, "done");
    insta::assert_snapshot!("audit_80x24", draw(&model, 80, 24));
    send(&mut model, [Action::Undo]);
    match work(&mut model).as_slice() {
        [Request::Plan(remediate::Request::Restore { file, .. })] => {
            assert_eq!(file.to_str(), Some("/state/backups/prod/opa.yaml"))
        }
        other => panic!("{other:?}"),
    }
    // A refused attempt wrote no backup: there is nothing to undo.
    send(&mut model, [Action::Back, Action::Down, Action::Undo]);
    assert!(work(&mut model).is_empty());
    assert!(
        model
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("no backup")
    );
}

#[test]
fn the_journal_hears_what_changed() {
    use kube_rescue::journal::Event;
    let snapshot = load("opa-webhook-outage");
    let taken = snapshot.taken_at.unwrap();
    let mut model = Model::new(Connection::default(), taken);
    send(
        &mut model,
        [Action::Update(Update::Connected(Connection {
            context: "prod".into(),
            server: "https://x".into(),
            read_only: false,
        }))],
    );
    send(
        &mut model,
        [Action::Update(Update::Snapshot(snapshot.clone()))],
    );
    let events = |model: &mut Model| -> Vec<Event> {
        model
            .take_requests()
            .into_iter()
            .filter_map(|r| match r {
                Request::Journal(e) => Some(e.event),
                _ => None,
            })
            .collect()
    };
    let first = events(&mut model);
    assert!(matches!(first[0], Event::Started { .. }), "{first:?}");
    assert!(
        first.iter().any(
            |e| matches!(e, Event::FindingAppeared { id, .. } if id == "webhook-blocking-writes")
        ),
        "{first:?}"
    );
    assert!(
        first
            .iter()
            .any(|e| matches!(e, Event::Apiserver { status, .. } if status == "unreachable")),
        "{first:?}"
    );
    // The same refresh again: nothing changed, nothing to say.
    send(&mut model, [Action::Update(Update::Snapshot(snapshot))]);
    assert_eq!(events(&mut model), []);
    // The healthy cluster: the outage's findings clear, the apiserver is ready, nodes Ready.
    send(
        &mut model,
        [Action::Update(Update::Snapshot(load("healthy")))],
    );
    let later = events(&mut model);
    assert!(
        later.iter().any(
            |e| matches!(e, Event::FindingCleared { id, .. } if id == "webhook-blocking-writes")
        ),
        "{later:?}"
    );
    assert!(
        later
            .iter()
            .any(|e| matches!(e, Event::Apiserver { status, .. } if status == "ready")),
        "{later:?}"
    );
    assert!(
        later.iter().any(|e| matches!(
            e,
            Event::Nodes {
                all_ready: true,
                ..
            }
        )),
        "{later:?}"
    );
    assert!(
        later
            .iter()
            .any(|e| matches!(e, Event::WriteProbe { passing: true, .. })),
        "{later:?}"
    );
    // Auto-repair deleted every node: no node is not "all Ready".
    let mut none = (*load("healthy")).clone();
    none.nodes.value = Some(Vec::new());
    send(
        &mut model,
        [Action::Update(Update::Snapshot(Arc::new(none)))],
    );
    assert!(events(&mut model).contains(&Event::Nodes {
        ready: 0,
        total: 0,
        all_ready: false
    }));
    send(&mut model, [Action::Quit]);
    assert_eq!(events(&mut model), [Event::Stopped]);
}

// ---------------------------------------------------------------------------------------------
// The runbook beside a finding

#[test]
fn the_webhook_outage_runbook_opens_with_its_finding_and_tracks_the_fix() {
    use kube_rescue::journal::Event;
    use kube_rescue::tui::runbook::StepState;
    let mut model = model_with("opa-webhook-outage", false);
    // The cause is the top finding; Enter opens it with its runbook.
    assert_eq!(model.findings[0].id, "webhook-blocking-writes");
    send(&mut model, [Action::Detail]);
    let pinned = model.pinned.clone().expect("the detail is open");
    assert_eq!(pinned.runbook.as_deref(), Some("webhook-outage"));
    let runbook = model.pinned_runbook().expect("it parses").clone();
    let screen = draw(&model, 80, 24);
    assert!(
        screen.contains(&format!("Runbook: {}", runbook.title)),
        "{screen}"
    );
    insta::assert_snapshot!("outage_finding_runbook_80x24", screen);
    insta::assert_snapshot!("outage_finding_runbook_120x40", draw(&model, 120, 40));
    let fail_open = runbook
        .steps
        .iter()
        .position(|s| s.action.as_ref().is_some_and(|a| a.name == "fail-open"))
        .expect("a fail-open step");
    let states = kube_rescue::tui::runbook::states(&runbook, &model.progress(), &model.marks);
    assert!(!states[fail_open].is_done(), "{states:?}");
    // Marking a step by hand is journalled.
    model.take_requests();
    send(&mut model, [Action::MarkStep]);
    let marked: Vec<Request> = model.take_requests();
    assert!(
        matches!(&marked[..], [Request::Journal(e)] if matches!(&e.event, Event::RunbookStep { how, .. } if how == "by hand")),
        "{marked:?}"
    );
    // The fail-open step's key plans fail-open on the finding's webhook.
    for _ in 0..fail_open {
        send(&mut model, [Action::Down]);
    }
    send(&mut model, [Action::RunStep]);
    match work(&mut model).as_slice() {
        [Request::Plan(remediate::Request::Fix { action, target })] => {
            assert_eq!(action.name(), "fail-open");
            assert_eq!(
                action.webhook(),
                Some("validating-webhook.openpolicyagent.org")
            );
            assert_eq!(target.name, "opa-validating-webhook");
        }
        other => panic!("{other:?}"),
    }
    // Planned, confirmed and applied.
    let mut plan = sample_plan(false);
    plan.action = "fail-open".into();
    send(&mut model, [Action::Update(Update::Planned(Ok(plan)))]);
    type_text(&mut model, "opa-validating-webhook");
    send(&mut model, [Action::Submit]);
    assert!(matches!(model.dialog, Some(Dialog::Applying { .. })));
    send(&mut model, [applied_and_done(), Action::Back]);
    assert!(model.dialog.is_none());
    // The fix worked: the next refresh no longer raises the finding. The runbook stays,
    // its finding says it is gone, and the step whose action ran and whose check passes is
    // done and journalled; the other ways to clear the same finding were not needed.
    send(
        &mut model,
        [Action::Update(Update::Snapshot(load("healthy")))],
    );
    let states = kube_rescue::tui::runbook::states(&runbook, &model.progress(), &model.marks);
    assert!(
        matches!(&states[fail_open], StepState::DoneByCheck(why) if why.contains("webhook-blocking-writes is gone")),
        "{states:?}"
    );
    let delete = runbook
        .steps
        .iter()
        .position(|s| s.action.as_ref().is_some_and(|a| a.name == "delete"))
        .expect("a delete step");
    assert!(
        matches!(&states[delete], StepState::NotNeeded(why) if why.contains("not by this step's action")),
        "{states:?}"
    );
    let journalled: Vec<String> = model
        .take_requests()
        .into_iter()
        .filter_map(|r| match r {
            Request::Journal(e) => match e.event {
                Event::RunbookStep { step, .. } => Some(step),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(
        journalled.contains(&runbook.steps[fail_open].title),
        "{journalled:?}"
    );
    let screen = draw(&model, 80, 24);
    assert!(screen.contains("no longer raised"), "{screen}");
    insta::assert_snapshot!("runbook_after_the_fix_80x24", screen);
}

#[test]
fn a_team_runbook_overrides_the_shipped_one_on_the_screen() {
    let team = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runbooks/team");
    let mut model = model_with("opa-webhook-outage", false);
    model.runbooks = Arc::new(kube_rescue::runbook::Catalog::load(&[team]));
    send(&mut model, [Action::Detail]);
    let screen = draw(&model, 120, 40);
    assert!(
        screen.contains("Runbook: Webhook outage (platform team edition)"),
        "{screen}"
    );
    assert!(screen.contains("from "), "{screen}");
}

#[test]
fn a_broken_runbook_is_shown_with_its_problems() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("webhook-outage.md"),
        "---\nid: webhook-outage\ntitle: Broken\nfindings: [no-such-finding]\nseverity: critical\n---\n## A step\n",
    )
    .unwrap();
    let mut model = model_with("opa-webhook-outage", false);
    model.runbooks = Arc::new(kube_rescue::runbook::Catalog::load(&[dir
        .path()
        .to_path_buf()]));
    send(&mut model, [Action::Detail]);
    let screen = draw(&model, 120, 40);
    assert!(screen.contains("is broken"), "{screen}");
    assert!(screen.contains("no-such-finding"), "{screen}");
    // The help lists it too, at the end.
    send(&mut model, [Action::ToggleHelp]);
    for _ in 0..14 {
        send(&mut model, [Action::Down]);
    }
    let screen = draw(&model, 80, 24);
    assert!(
        screen.contains("webhook-outage (broken)")
            && screen.contains("10 runbooks: 9 shipped, 1 from"),
        "{screen}"
    );
}

/// The healthy fixture as if `fail` had failed its sources in that refresh.
fn healthy_with(fail: impl Fn(&mut Snapshot)) -> Model {
    let mut snapshot = (*load("healthy")).clone();
    fail(&mut snapshot);
    let taken = snapshot.taken_at.expect("fixture has taken_at");
    let mut model = Model::new(
        Connection {
            context: String::new(),
            server: String::new(),
            read_only: false,
        },
        taken - SignedDuration::from_secs(20),
    );
    update(
        &mut model,
        Action::Update(Update::Snapshot(Arc::new(snapshot))),
    );
    update(
        &mut model,
        Action::Tick(taken + SignedDuration::from_secs(3)),
    );
    model
}

#[test]
fn the_header_says_what_could_not_be_seen() {
    use kube_rescue::cluster::AccessError;
    let forbidden = |what: &str| {
        Some(AccessError::from_status(
            what,
            403,
            "Forbidden",
            &format!("{what} is forbidden"),
        ))
    };
    let model = healthy_with(|s| {
        s.warning_events.value = None;
        s.warning_events.error = forbidden("list events");
        s.node_leases.value = None;
        s.node_leases.error = forbidden("list leases");
    });
    let screen = draw(&model, 140, 30);
    assert!(screen.contains("blind: leases, events (403)"), "{screen}");
    assert!(screen.contains("Blind spots: leases, events"), "{screen}");

    let model = healthy_with(|s| {
        let e = Some(AccessError::from_status(
            "get /readyz",
            401,
            "Unauthorized",
            "Unauthorized",
        ));
        s.readyz.error = e.clone();
        s.livez.error = e.clone();
        s.nodes.error = e.clone();
        s.apiserver_version.error = e;
    });
    let screen = draw(&model, 140, 30);
    assert!(screen.contains("CREDENTIALS REJECTED (401)"), "{screen}");
    assert!(
        screen.contains("The apiserver rejects the credentials"),
        "{screen}"
    );
}

/// A team's runbook for the outage's first finding, its first step's text as given.
fn team_runbook(dir: &std::path::Path, body: &str) -> Arc<kube_rescue::runbook::Catalog> {
    std::fs::write(
        dir.join("webhook-outage.md"),
        format!(
            "---\nid: webhook-outage\ntitle: Team outage\nfindings: [webhook-blocking-writes]\nseverity: critical\n---\n## Fail open\n\n{body}\n## Delete it\n"
        ),
    )
    .unwrap();
    Arc::new(kube_rescue::runbook::Catalog::load(&[dir.to_path_buf()]))
}

/// Draws `model` `n` times; panics when that takes longer than a bound that only a hang
/// (work per frame that grows with the runbook) can reach.
fn draw_often(model: &Model, n: usize) -> String {
    let started = Instant::now();
    let mut screen = String::new();
    for _ in 0..n {
        screen = draw(model, 120, 40);
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{n} frames took {:?}",
        started.elapsed()
    );
    screen
}

#[test]
fn the_team_runbooks_arrive_after_the_screen_opened_and_replace_the_open_one() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = team_runbook(dir.path(), "Page the team.\n");
    let mut model = model_with("opa-webhook-outage", false);
    model.runbooks_pending = true;
    send(&mut model, [Action::Detail, Action::Down]);
    let screen = draw(&model, 120, 40);
    assert!(
        screen.contains("Runbook: An admission webhook is blocking writes"),
        "{screen}"
    );
    send(&mut model, [Action::Update(Update::Runbooks(catalog))]);
    assert!(!model.runbooks_pending);
    assert_eq!(model.pinned.as_ref().unwrap().step, 0, "its own first step");
    let screen = draw(&model, 120, 40);
    assert!(
        screen.contains("Runbook: Team outage · 0/2 done"),
        "{screen}"
    );
    assert!(screen.contains("Page the team."), "{screen}");
}

#[test]
fn a_long_step_costs_a_frame_only_what_it_shows() {
    let dir = tempfile::tempdir().unwrap();
    // Within the limits: a 900 kB paragraph, a word as long, a long code block.
    let body = format!(
        "{}\n\n{}\n\n```sh\n{}```\n",
        "word ".repeat(150_000),
        "x".repeat(100_000),
        "kubectl get nodes\n".repeat(5_000)
    );
    let catalog = team_runbook(dir.path(), &body);
    assert!(!catalog.get("webhook-outage").unwrap().is_broken());
    let mut model = model_with("opa-webhook-outage", false);
    send(&mut model, [Action::Update(Update::Runbooks(catalog))]);
    send(&mut model, [Action::Detail]);
    let screen = draw_often(&model, 200);
    assert!(screen.contains("word word word"), "{screen}");
}

#[test]
fn a_runbook_past_the_limits_shows_its_errors_and_draws_quickly() {
    let dir = tempfile::tempdir().unwrap();
    // 9 MB: read up to 1 MiB.
    let catalog = team_runbook(dir.path(), &"Page the team now.\n".repeat(500_000));
    let entry = catalog.get("webhook-outage").unwrap();
    assert!(entry.problems[0].reason.starts_with("larger than 1 MiB"));
    let mut model = model_with("opa-webhook-outage", false);
    send(&mut model, [Action::Update(Update::Runbooks(catalog))]);
    send(&mut model, [Action::Detail]);
    let screen = draw_often(&model, 200);
    assert!(
        screen.contains("Runbook webhook-outage is broken"),
        "{screen}"
    );
    assert!(screen.contains("webhook-outage.md:"), "{screen}");
    // 10,000 levels of lists, and 10,000 errors.
    let nested = format!(
        "{}deep\n\n{}",
        "- ".repeat(10_000),
        "- ```step\n  ```\n".repeat(10_000)
    );
    let catalog = team_runbook(dir.path(), &nested);
    send(&mut model, [Action::Update(Update::Runbooks(catalog))]);
    let screen = draw_often(&model, 200);
    assert!(screen.contains("nested more than 16 deep"), "{screen}");
    assert!(
        screen.contains("more: kube-rescue runbooks lint lists them"),
        "{screen}"
    );
    send(&mut model, [Action::ToggleHelp, Action::Bottom]);
    let screen = draw_often(&model, 200);
    assert!(
        screen.contains("more errors: `kube-rescue runbooks lint"),
        "{screen}"
    );
}

#[test]
fn undoing_over_a_colleagues_later_edit_keeps_it_unless_the_name_is_typed_twice() {
    let mut model = model_with("opa-webhook-outage", false);
    let state = tempfile::tempdir().unwrap();
    for (kind, result) in [
        (RecordKind::Attempt, "attempted"),
        (RecordKind::Outcome, "done"),
    ] {
        let mut r = AuditRecord::new(
            kind,
            Some("a".into()),
            ("oncall", "prod", "https://10.0.0.1"),
            "fail-open",
            "validatingwebhookconfiguration/opa-validating-webhook",
            "u-1",
            result.into(),
        );
        r.backup = Some("/state/backups/prod/opa.yaml".into());
        audit::append(state.path(), &r).unwrap();
    }
    send(
        &mut model,
        [
            Action::Update(Update::Audit(audit::read(state.path()))),
            Action::GoTo(View::Audit),
            Action::Undo,
        ],
    );
    let attempt = model.audit[0].clone();
    work(&mut model);
    let restore_plan = |overwritten: bool| {
        let mut plan = sample_plan(false);
        plan.action = "restore".into();
        plan.restore_from = Some("/state/backups/prod/opa.yaml".into());
        plan.later = Some(LaterChanges {
            managers: vec!["kubectl-edit".into()],
            paths: vec!["/webhooks/0/timeoutSeconds".into()],
            three_way: vec![(
                "/webhooks/0/timeoutSeconds".into(),
                "10".into(),
                "10".into(),
                "7".into(),
            )],
            overwritten,
            contested: vec![],
            recorded: Box::new(attempt.clone()),
        });
        plan
    };
    send(
        &mut model,
        [Action::Update(Update::Planned(Ok(restore_plan(false))))],
    );
    let screen = draw(&model, 120, 40);
    assert!(screen.contains("by kubectl-edit"), "{screen}");
    assert!(
        screen.contains("Ctrl-O overwrite the later changes"),
        "{screen}"
    );
    // Ctrl-O plans again, over the later changes.
    send(&mut model, [Action::OverwriteLater]);
    match work(&mut model).as_slice() {
        [
            Request::Plan(remediate::Request::Restore {
                overwrite_later_changes: true,
                recorded: Some(recorded),
                ..
            }),
        ] => assert_eq!(recorded.id.as_deref(), Some("a")),
        other => panic!("{other:?}"),
    }
    send(
        &mut model,
        [Action::Update(Update::Planned(Ok(restore_plan(true))))],
    );
    type_text(&mut model, "opa-validating-webhook");
    send(&mut model, [Action::Submit]);
    assert!(work(&mut model).is_empty(), "one typed name is not enough");
    let screen = draw(&model, 120, 40);
    assert!(
        screen.contains(
            "this undoes the later changes by kubectl-edit: type opa-validating-webhook again"
        ),
        "{screen}"
    );
    type_text(&mut model, "opa-validating-webhook");
    send(&mut model, [Action::Submit]);
    match work(&mut model).as_slice() {
        [Request::Apply { plan, .. }] => assert!(plan.later.as_ref().unwrap().overwritten),
        other => panic!("{other:?}"),
    }
}
