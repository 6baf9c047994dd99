//! kubectl, an independent client, against `kube-rescue sim --scenario opa-webhook-outage`:
//! the outage as kubectl sees it, the fix, and the recovery.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{apiserver_was_down, kubectl, run_kubectl};

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs kubectl until it gets an answer from a running apiserver (the outage scenario
/// restarts it), up to `attempts` times.
fn kubectl_answer(
    kubectl: &Path,
    kubeconfig: &Path,
    args: &[&str],
    attempts: usize,
) -> (bool, String, String, Duration) {
    let mut last = None;
    for _ in 0..attempts {
        let result = run_kubectl(kubectl, kubeconfig, args);
        if result.0 || !apiserver_was_down(&result.2) {
            return result;
        }
        eprintln!(
            "kubectl {args:?}: apiserver down, retrying: {}",
            result.2.trim()
        );
        last = Some(result);
        std::thread::sleep(Duration::from_secs(1));
    }
    last.expect("at least one attempt")
}

#[test]
fn kubectl_sees_the_outage_and_the_fix() {
    let Some(kubectl) = kubectl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let child = Command::new(env!("CARGO_BIN_EXE_kube-rescue"))
        .args([
            "sim",
            "--scenario",
            "opa-webhook-outage",
            "--kubeconfig-out",
        ])
        .arg(&kubeconfig)
        .arg("--log-file")
        .arg(dir.path().join("sim.log"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kube-rescue sim starts");
    let mut sim = Sim(child);
    let stdout = sim.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("sim prints").unwrap();
    assert!(first.contains("listening on https://127.0.0.1:"), "{first}");
    let written = lines.next().expect("sim prints").unwrap();
    assert!(written.contains("kubeconfig written to"), "{written}");
    assert!(kubeconfig.is_file());
    std::thread::spawn(move || for _ in lines {});

    // Reads.
    let (ok, out, err, _) = kubectl_answer(
        &kubectl,
        &kubeconfig,
        &["get", "nodes,namespaces", "-o", "name"],
        20,
    );
    assert!(ok, "get nodes,namespaces: {err}");
    assert!(out.lines().any(|l| l.starts_with("node/gke-")), "{out}");
    assert!(out.contains("namespace/kube-system"), "{out}");
    assert!(out.contains("namespace/opa"), "{out}");

    let (ok, out, err, _) = kubectl_answer(&kubectl, &kubeconfig, &["get", "pods", "-A"], 20);
    assert!(ok, "get pods -A: {err}");
    assert!(out.starts_with("NAMESPACE"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("opa ")), "{out}");

    let (ok, out, err, _) = kubectl_answer(
        &kubectl,
        &kubeconfig,
        &["get", "validatingwebhookconfigurations", "-o", "yaml"],
        20,
    );
    assert!(ok, "get vwc -o yaml: {err}");
    assert!(
        out.contains("name: validating-webhook.openpolicyagent.org"),
        "{out}"
    );
    assert!(out.contains("failurePolicy: Fail"), "{out}");
    assert!(out.contains("timeoutSeconds: 10"), "{out}");

    let (_, out, err, _) = kubectl_answer(
        &kubectl,
        &kubeconfig,
        &["get", "--raw", "/readyz?verbose"],
        20,
    );
    let text = format!("{out}{err}");
    assert!(text.contains("[+]ping ok"), "{text}");
    assert!(text.contains("readyz check"), "{text}");

    let (ok, out, err, _) =
        kubectl_answer(&kubectl, &kubeconfig, &["get", "--raw", "/metrics"], 20);
    assert!(ok, "get --raw /metrics: {err}");
    assert!(out.contains("apiserver_request_total{"), "{out}");

    // A server-side dry-run write hangs on the webhook, then fails with the apiserver's words.
    let mut failed_on_webhook = false;
    let give_up = Instant::now() + Duration::from_secs(120);
    while Instant::now() < give_up {
        let (ok, _, err, elapsed) = run_kubectl(
            &kubectl,
            &kubeconfig,
            &[
                "create",
                "configmap",
                "probe",
                "-n",
                "kube-system",
                "--dry-run=server",
            ],
        );
        assert!(!ok, "the write must not pass the hanging webhook");
        if apiserver_was_down(&err) {
            eprintln!(
                "dry-run create interrupted by an apiserver restart, retrying: {}",
                err.trim()
            );
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        assert!(
            err.contains("failed calling webhook \"validating-webhook.openpolicyagent.org\": failed to call webhook: Post \"https://opa.opa.svc:443/"),
            "{err}"
        );
        assert!(err.contains("context deadline exceeded"), "{err}");
        assert!(
            elapsed >= Duration::from_secs(9),
            "failed after {elapsed:?}, before the webhook's 10 s timeout"
        );
        assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
        failed_on_webhook = true;
        break;
    }
    assert!(
        failed_on_webhook,
        "the dry-run write never reached the webhook"
    );

    // The fix.
    let (ok, out, err, _) = kubectl_answer(
        &kubectl,
        &kubeconfig,
        &[
            "delete",
            "validatingwebhookconfiguration",
            "opa-validating-webhook",
        ],
        20,
    );
    assert!(ok, "delete: {err}");
    assert!(out.contains("deleted"), "{out}");

    let (ok, out, err, elapsed) = kubectl_answer(
        &kubectl,
        &kubeconfig,
        &[
            "create",
            "configmap",
            "probe",
            "-n",
            "kube-system",
            "--dry-run=server",
        ],
        20,
    );
    assert!(ok, "dry-run create after the fix: {err}");
    assert!(
        out.contains("configmap/probe created (server dry run)"),
        "{out}"
    );
    assert!(elapsed < Duration::from_secs(9), "took {elapsed:?}");
    let (ok, _, err, _) = kubectl_answer(
        &kubectl,
        &kubeconfig,
        &["get", "configmap", "probe", "-n", "kube-system"],
        20,
    );
    assert!(
        !ok && err.contains("not found"),
        "a dry run must not persist: {err}"
    );

    // Recovery: every node Ready and /readyz passing, within the scenario's repair period.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = String::new();
    loop {
        let (nodes_ok, nodes, err, _) =
            run_kubectl(&kubectl, &kubeconfig, &["get", "nodes", "--no-headers"]);
        let (ready_ok, readyz, readyz_err, _) =
            run_kubectl(&kubectl, &kubeconfig, &["get", "--raw", "/readyz"]);
        let all_ready = nodes_ok
            && nodes.lines().count() >= 3
            && nodes
                .lines()
                .all(|l| l.split_whitespace().nth(1) == Some("Ready"));
        if all_ready && ready_ok && readyz.trim() == "ok" {
            break;
        }
        last = format!("nodes:\n{nodes}{err}\nreadyz: {readyz}{readyz_err}");
        assert!(
            Instant::now() < deadline,
            "the cluster did not recover within 120 s:\n{last}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    drop(last);
}

const BOGUS_POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: opa-validating-webhook}
webhooks:
  - name: validating-webhook.openpolicyagent.org
    rules: [{operations: [CREATE, UPDATE], apiGroups: ["*"], apiVersions: ["*"], resources: ["*"]}]
    clientConfig: {service: {namespace: opa, name: opa, path: /}}
    failurePolicy: Bogus
    sideEffects: None
    admissionReviewVersions: [v1]
"#;

/// kubectl apply, replace and create of an invalid webhook configuration: the apiserver's 422
/// as kubectl prints it, a failed exit, and the stored object unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_prints_the_apiservers_validation_errors() {
    let Some(kubectl) = kubectl() else { return };
    let running = common::start_yaml(common::WEBHOOK_SCENARIO).await;
    let bogus = running.dir.path().join("bogus.yaml");
    std::fs::write(&bogus, BOGUS_POLICY).unwrap();
    let empty = running.dir.path().join("empty.yaml");
    std::fs::write(
        &empty,
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: x}\nwebhooks: [null]\n",
    )
    .unwrap();
    let kubeconfig = running.kubeconfig.clone();
    let run = move |args: Vec<String>| {
        let (kubectl, kubeconfig) = (kubectl.clone(), kubeconfig.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                run_kubectl(&kubectl, &kubeconfig, &args)
            })
            .await
            .unwrap()
        }
    };
    let file = |p: &Path| p.to_str().unwrap().to_string();
    let unsupported = "The ValidatingWebhookConfiguration \"opa-validating-webhook\" is invalid: webhooks[0].failurePolicy: Unsupported value: \"Bogus\": supported values: \"Fail\", \"Ignore\"";
    for verb in ["apply", "replace"] {
        // The simulator serves no OpenAPI documents, so kubectl's own schema check is off; the
        // apiserver's validation is what answers.
        let (ok, out, err, _) = run(vec![
            verb.into(),
            "--validate=false".into(),
            "-f".into(),
            file(&bogus),
        ])
        .await;
        assert!(!ok, "kubectl {verb} must fail: {out}{err}");
        assert!(err.contains(unsupported), "kubectl {verb}: {err}");
    }
    let (ok, out, err, _) = run(vec![
        "create".into(),
        "--validate=false".into(),
        "-f".into(),
        file(&empty),
    ])
    .await;
    assert!(!ok, "kubectl create must fail: {out}{err}");
    assert!(
        err.contains("The ValidatingWebhookConfiguration \"x\" is invalid: \n* webhooks[0].name: Required value\n* webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun\n* webhooks[0].clientConfig: Required value: exactly one of url or service is required\n* webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1"),
        "kubectl create: {err}"
    );
    let (ok, out, err, _) = run([
        "get",
        "validatingwebhookconfiguration",
        "opa-validating-webhook",
        "-o",
        "jsonpath={.webhooks[0].failurePolicy}",
    ]
    .map(String::from)
    .to_vec())
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "Fail", "nothing was stored");
}

/// kubectl's writes are recorded in managedFields under its field manager: `kubectl patch`
/// as kubectl-patch, `--field-manager=kubectl-edit` as kubectl-edit, field by field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_writes_are_recorded_in_managed_fields() {
    let Some(kubectl) = kubectl() else { return };
    let running = common::start_yaml(common::WEBHOOK_SCENARIO).await;
    let kubeconfig = running.kubeconfig.clone();
    let run = move |args: &'static [&'static str]| {
        let (kubectl, kubeconfig) = (kubectl.clone(), kubeconfig.clone());
        async move {
            tokio::task::spawn_blocking(move || run_kubectl(&kubectl, &kubeconfig, args))
                .await
                .unwrap()
        }
    };
    let (ok, _, err, _) = run(&[
        "patch",
        "validatingwebhookconfiguration",
        "opa-validating-webhook",
        "--type=json",
        "-p",
        r#"[{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}]"#,
    ])
    .await;
    assert!(ok, "{err}");
    let (ok, _, err, _) = run(&[
        "patch",
        "validatingwebhookconfiguration",
        "opa-validating-webhook",
        "--field-manager=kubectl-edit",
        "--type=json",
        "-p",
        r#"[{"op": "replace", "path": "/webhooks/0/timeoutSeconds", "value": 5}]"#,
    ])
    .await;
    assert!(ok, "{err}");
    let (ok, out, err, _) = run(&[
        "get",
        "validatingwebhookconfiguration",
        "opa-validating-webhook",
        "--show-managed-fields",
        "-o",
        "json",
    ])
    .await;
    assert!(ok, "{err}");
    let object: serde_json::Value = serde_json::from_str(&out).unwrap();
    let owner = |pointer| kube_rescue::managed_fields::owner_of(&object, pointer);
    assert_eq!(
        owner("/webhooks/0/failurePolicy").as_deref(),
        Some("kubectl-patch"),
        "{out}"
    );
    assert_eq!(
        owner("/webhooks/0/timeoutSeconds").as_deref(),
        Some("kubectl-edit"),
        "{out}"
    );
    assert_eq!(owner("/webhooks/0/sideEffects"), None, "{out}");
}
