//! Scenario files under tests/fixtures/scenarios: every valid one loads, and every invalid one
//! fails with a message naming the file, the line and column, and the field. Each invalid file
//! says what it expects on its first line: `# expect: LINE:COLUMN: FIELD: MESSAGE-PREFIX`.

use std::path::{Path, PathBuf};

use kube_rescue::sim::scenario::{Scenario, ScenarioError, TimelineAction};

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scenarios")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn valid_scenarios_load() {
    let files = files("valid");
    assert!(files.len() >= 2);
    for file in files {
        let path = file.to_string_lossy().into_owned();
        if let Err(e) = Scenario::load(&path) {
            panic!("{path}: {e}");
        }
    }
}

#[test]
fn everything_scenario_has_every_part() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scenarios/valid/everything.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    let s = Scenario::from_yaml(&text, "everything.yaml").expect("valid");
    assert_eq!(s.apiserver.minor(), "30");
    assert_eq!(s.cluster.node_monitor_period_seconds.as_millis(), 500);
    assert_eq!(s.cluster.auto_repair_after_seconds.as_secs(), 60);
    assert!(!s.cluster.crash_loop_on_hook_failure);
    // the List is flattened: Namespace, two ConfigMaps, Secret
    assert_eq!(s.objects.len(), 4);
    assert_eq!(s.backends.len(), 3);
    assert_eq!(s.faults.len(), 3);
    let keys: Vec<&str> = s.timeline.iter().map(|e| e.action.key()).collect();
    assert_eq!(
        keys,
        [
            "readyzFailing",
            "livezFailing",
            "recreateNodes",
            "apiserverDown",
            "restartApiserver",
            "setBackend",
            "addFault",
            "clearFaults",
            "apply",
            "delete"
        ]
    );
    assert!(matches!(
        s.timeline[3].action,
        TimelineAction::ApiserverDown(d) if d.as_secs() == 8
    ));
}

#[test]
fn invalid_scenarios_name_file_line_and_field() {
    let files = files("invalid");
    assert!(files.len() >= 15);
    let mut failures = Vec::new();
    for file in files {
        let path = file.to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).expect("read");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{path}: first line must be `# expect: ...`"));
        let err = match Scenario::load(&path) {
            Ok(_) => {
                failures.push(format!("{path}: loaded, expected an error"));
                continue;
            }
            Err(e) => e,
        };
        let message = err.to_string();
        let wanted = format!("{path}:{expect}");
        if !message.starts_with(&wanted) {
            failures.push(format!(
                "{path}\n  got:      {message}\n  expected: {wanted}..."
            ));
        }
        if !matches!(err, ScenarioError::Invalid { line, .. } if line > 1) {
            failures.push(format!("{path}: not placed: {err:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn shipped_scenarios_load_and_match_their_descriptions() {
    for (name, description) in Scenario::shipped() {
        if name == "large" {
            continue;
        }
        let s = Scenario::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.name, name);
        assert_eq!(s.description, description, "{name}");
        for o in &s.objects {
            assert!(
                o["metadata"]["creationTimestamp"].is_string(),
                "{name}: {o}"
            );
        }
    }
}

#[test]
fn opa_outage_has_the_causal_pieces() {
    use kube_rescue::sim::scenario::Behavior;
    let s = Scenario::load("opa-webhook-outage").expect("loads");
    let find = |kind: &str, name: &str| {
        s.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind}/{name} missing"))
    };
    let vwc = find("ValidatingWebhookConfiguration", "opa-validating-webhook");
    let hook = &vwc["webhooks"][0];
    assert_eq!(hook["name"], "validating-webhook.openpolicyagent.org");
    assert_eq!(hook["failurePolicy"], "Fail");
    assert!(hook.get("timeoutSeconds").is_none());
    assert_eq!(hook["rules"][0]["scope"], "Namespaced");
    assert_eq!(hook["clientConfig"]["service"]["name"], "opa");
    assert!(
        find("Namespace", "kube-system")["metadata"]["labels"]
            .get("openpolicyagent.org/webhook")
            .is_none()
    );
    assert_eq!(
        find("Namespace", "opa")["metadata"]["labels"]["openpolicyagent.org/webhook"],
        "ignore"
    );
    find("ConfigMap", "extension-apiserver-authentication");
    let opa = find("Deployment", "opa");
    assert_eq!(opa["spec"]["replicas"], 1);
    assert!(
        opa["spec"]["template"]["spec"]["containers"][0]
            .get("livenessProbe")
            .is_none()
    );
    let nodes = s.objects.iter().filter(|o| o["kind"] == "Node").count();
    let leases = s.objects.iter().filter(|o| o["kind"] == "Lease").count();
    assert_eq!((nodes, leases), (6, 6));
    assert!(
        s.backends
            .iter()
            .any(|b| b.service.as_deref() == Some("opa/opa") && b.behavior == Behavior::Hang)
    );
    assert!(s.objects.iter().any(|o| o["kind"] == "Event"
        && o["message"].as_str().is_some_and(|m| {
            m.contains("failed calling webhook \"validating-webhook.openpolicyagent.org\"")
        })));
    assert_eq!(s.timeline[0].action.key(), "restartApiserver");
    assert!(s.cluster.auto_repair_after_seconds.as_secs() <= 30);
    assert!(s.apiserver.git_version.contains("-gke."));
}
