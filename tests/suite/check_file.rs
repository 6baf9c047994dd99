//! `kube-rescue check --file` on manifests as real installs ship them: duplicates, autoscalers,
//! older workload apiVersions, typed Lists, values the apiserver refuses, empty and oversized
//! input, and the words of every error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const OPA: &str = "validating-webhook.openpolicyagent.org";

const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: opa\n";

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: opa
  namespace: opa
spec:
  selector:
    app: opa
  ports:
  - name: https
    port: 443
    targetPort: 443
";

/// The OPA backend as a workload of `kind` in `api_version`, with `replicas` unless None.
fn workload(api_version: &str, kind: &str, replicas: Option<u32>) -> String {
    let replicas = replicas.map_or(String::new(), |n| format!("  replicas: {n}\n"));
    format!(
        "apiVersion: {api_version}
kind: {kind}
metadata:
  name: opa
  namespace: opa
spec:
{replicas}  template:
    metadata:
      labels:
        app: opa
    spec:
      containers:
      - name: opa
        image: openpolicyagent/opa:0.10.5
        ports:
        - containerPort: 443
"
    )
}

fn deployment(replicas: u32) -> String {
    workload("apps/v1", "Deployment", Some(replicas)).replace(
        "spec:\n  replicas",
        "spec:\n  selector:\n    matchLabels:\n      app: opa\n  replicas",
    )
}

/// The OPA tutorial's webhook, with `extra` lines added to the webhook (indented 4) and the
/// caBundle given.
fn webhook_configuration(ca_bundle: &str, extra: &str) -> String {
    format!(
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: opa-validating-webhook
webhooks:
  - name: {OPA}
    rules:
      - operations: [\"CREATE\", \"UPDATE\"]
        apiGroups: [\"*\"]
        apiVersions: [\"*\"]
        resources: [\"*\"]
    clientConfig:
      caBundle: {ca_bundle}
      service:
        namespace: opa
        name: opa
    sideEffects: None
    admissionReviewVersions: [\"v1\"]
{extra}"
    )
}

fn webhook() -> String {
    webhook_configuration("Cg==", "")
}

fn documents(docs: &[&str]) -> String {
    docs.join("---\n")
}

fn run(args: &[&str], stdin: Option<&[u8]>, dir: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-rescue"))
        .arg("check")
        .args(args)
        .arg("--log-file")
        .arg(dir.join("kube-rescue.log"))
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kube-rescue runs");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        // kube-rescue may stop reading early (a size limit): a broken pipe is its answer.
        let _ = pipe.write_all(bytes);
    }
    child.wait_with_output().expect("kube-rescue exits")
}

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// `check --file F... --output json`: the exit code, the report and stderr.
fn check_json(files: &[&Path], dir: &Path) -> (Option<i32>, Value, String) {
    let mut args = Vec::new();
    for f in files {
        args.push("--file".to_string());
        args.push(f.to_string_lossy().into_owned());
    }
    args.extend(["--output".to_string(), "json".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&args, None, dir);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    (output.status.code(), report, stderr)
}

/// Exit code and stderr of a run that must not print findings.
fn check_fails(files: &[&Path], dir: &Path) -> (Option<i32>, String) {
    let mut args = Vec::new();
    for f in files {
        args.push("--file".to_string());
        args.push(f.to_string_lossy().into_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&args, None, dir);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ids(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["id"].as_str().expect("id").to_string())
        .collect()
}

fn has(report: &Value, id: &str) -> bool {
    ids(report).iter().any(|i| i == id)
}

fn one_line(stderr: &str) {
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

// ---------------------------------------------------------------------------------------------
// 1. duplicates

#[test]
fn an_object_listed_twice_counts_once_and_both_places_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = write(
        d,
        "opa.yaml",
        documents(&[NAMESPACE, SERVICE, &deployment(1), &webhook()]),
    );
    let again = write(d, "again.yaml", documents(&[NAMESPACE, &deployment(1)]));
    let (code, report, stderr) = check_json(&[&base, &again], d);
    assert_eq!(code, Some(1), "{report:#}");
    assert!(
        has(&report, "webhook-backend-single-replica"),
        "1 + 1 is still one Deployment of 1 replica: {report:#}"
    );
    let line = stderr
        .lines()
        .find(|l| l.contains("Deployment opa/opa"))
        .unwrap_or_else(|| panic!("the duplicate is named: {stderr}"));
    assert!(
        line.contains("opa.yaml document 3") && line.contains("again.yaml document 2"),
        "{line}"
    );
    assert_eq!(
        stderr.matches("Deployment opa/opa").count(),
        1,
        "once: {stderr}"
    );
    assert!(
        stderr.contains("Namespace opa"),
        "every duplicate: {stderr}"
    );

    // In the same file.
    let same = write(
        d,
        "same.yaml",
        documents(&[
            NAMESPACE,
            SERVICE,
            &deployment(1),
            &webhook(),
            &deployment(1),
        ]),
    );
    let (_, report, stderr) = check_json(&[&same], d);
    assert!(has(&report, "webhook-backend-single-replica"), "{report:#}");
    assert!(
        stderr.contains("same.yaml document 3") && stderr.contains("same.yaml document 5"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. HorizontalPodAutoscaler

fn hpa(api_version: &str, min_replicas: Option<u32>) -> String {
    let min = min_replicas.map_or(String::new(), |n| format!("  minReplicas: {n}\n"));
    format!(
        "apiVersion: {api_version}
kind: HorizontalPodAutoscaler
metadata:
  name: opa
  namespace: opa
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: opa
{min}  maxReplicas: 5
"
    )
}

#[test]
fn an_autoscaler_s_min_replicas_decides_single_replica() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        // (deployment replicas, hpa, single-replica expected)
        (3, hpa("autoscaling/v2", Some(1)), true),
        (3, hpa("autoscaling/v1", None), true),
        (1, hpa("autoscaling/v2", Some(2)), false),
        (1, hpa("autoscaling/v1", Some(3)), false),
        (1, hpa("autoscaling/v2beta2", Some(2)), false),
    ];
    for (n, (replicas, hpa, expected)) in cases.iter().enumerate() {
        let file = write(
            d,
            &format!("hpa-{n}.yaml"),
            documents(&[NAMESPACE, SERVICE, &deployment(*replicas), &webhook(), hpa]),
        );
        let (_, report, _) = check_json(&[&file], d);
        assert_eq!(
            has(&report, "webhook-backend-single-replica"),
            *expected,
            "replicas {replicas}, {hpa}: {report:#}"
        );
        if *expected {
            let f = report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["id"] == "webhook-backend-single-replica")
                .unwrap();
            assert!(
                f.to_string().contains("HorizontalPodAutoscaler opa/opa"),
                "the evidence names the autoscaler: {f:#}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. older Deployments, StatefulSets and DaemonSets

#[test]
fn backends_in_every_workload_kind_and_older_api_version_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (api_version, kind) in [
        ("apps/v1beta1", "Deployment"),
        ("apps/v1beta2", "Deployment"),
        ("extensions/v1beta1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1beta1", "StatefulSet"),
    ] {
        let file = write(
            d,
            "old.yaml",
            documents(&[
                NAMESPACE,
                SERVICE,
                &workload(api_version, kind, Some(1)),
                &webhook(),
            ]),
        );
        let (code, report, stderr) = check_json(&[&file], d);
        assert_eq!(code, Some(1), "{api_version} {kind}: {stderr}");
        for id in [
            "webhook-backend-single-replica",
            "webhook-backend-no-liveness",
        ] {
            assert!(has(&report, id), "{api_version} {kind}: {id} in {report:#}");
        }
        assert!(
            report.to_string().contains(&format!("{kind} opa/opa")),
            "{report:#}"
        );
    }
    for api_version in ["apps/v1", "extensions/v1beta1"] {
        let file = write(
            d,
            "ds.yaml",
            documents(&[
                NAMESPACE,
                SERVICE,
                &workload(api_version, "DaemonSet", None),
                &webhook(),
            ]),
        );
        let (_, report, _) = check_json(&[&file], d);
        assert!(
            has(&report, "webhook-backend-no-liveness"),
            "a DaemonSet backend is read: {report:#}"
        );
        assert!(
            !has(&report, "webhook-backend-single-replica"),
            "a DaemonSet runs one pod per node: {report:#}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. typed Lists

#[test]
fn a_typed_list_gives_its_items_their_kind_and_api_version() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let list = r#"{"kind":"ValidatingWebhookConfigurationList","apiVersion":"admissionregistration.k8s.io/v1","metadata":{"resourceVersion":"1"},
      "items":[{"metadata":{"name":"opa-validating-webhook"},"webhooks":[{"name":"validating-webhook.openpolicyagent.org",
        "rules":[{"operations":["CREATE","UPDATE"],"apiGroups":["*"],"apiVersions":["*"],"resources":["*"],"scope":"*"}],
        "clientConfig":{"service":{"namespace":"opa","name":"opa","port":443}},
        "failurePolicy":"Fail","sideEffects":"None","admissionReviewVersions":["v1"],"timeoutSeconds":10}]}]}"#;
    let webhooks = write(d, "vwc.json", list);
    let deployments = r#"{"kind":"DeploymentList","apiVersion":"apps/v1","items":[{"metadata":{"name":"opa","namespace":"opa"},
      "spec":{"replicas":1,"selector":{"matchLabels":{"app":"opa"}},"template":{"metadata":{"labels":{"app":"opa"}},
      "spec":{"containers":[{"name":"opa","image":"opa"}]}}}}]}"#;
    let deployments = write(d, "deploy.json", deployments);
    let services = write(
        d,
        "svc.yaml",
        format!(
            "apiVersion: v1\nkind: ServiceList\nitems:\n- {}",
            SERVICE.lines().skip(2).collect::<Vec<_>>().join("\n  ")
        ),
    );
    let (code, report, stderr) = check_json(&[&webhooks, &deployments, &services], d);
    assert_eq!(code, Some(1), "{stderr}");
    for id in [
        "webhook-intercepts-control-plane",
        "webhook-long-timeout",
        "webhook-backend-single-replica",
        "webhook-self-deadlock",
    ] {
        assert!(has(&report, id), "{id} in {report:#}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. values the apiserver refuses

#[test]
fn an_unknown_enum_value_names_file_object_webhook_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        ("    failurePolicy: Fial\n", "failurePolicy", "Fial"),
        ("    matchPolicy: Exactly\n", "matchPolicy", "Exactly"),
        (
            "    timeoutSeconds: 5\n    failurePolicy: fail\n",
            "failurePolicy",
            "fail",
        ),
    ];
    for (n, (extra, field, value)) in cases.iter().enumerate() {
        let name = format!("enum-{n}.yaml");
        let file = write(
            d,
            &name,
            documents(&[NAMESPACE, &webhook_configuration("Cg==", extra)]),
        );
        let (code, stderr) = check_fails(&[&file], d);
        assert_eq!(code, Some(3), "{extra}: {stderr}");
        one_line(&stderr);
        for part in [
            name.as_str(),
            "ValidatingWebhookConfiguration opa-validating-webhook",
            OPA,
            field,
            value,
        ] {
            assert!(stderr.contains(part), "{part} in {stderr}");
        }
    }
    let replaced = [
        ("sideEffects: None", "sideEffects: Sometimes", "sideEffects"),
        (
            "\"CREATE\", \"UPDATE\"",
            "\"CREATE\", \"UPDAET\"",
            "operations",
        ),
        (
            "resources: [\"*\"]",
            "resources: [\"*\"]\n        scope: Namespace",
            "scope",
        ),
    ];
    for (n, (from, to, field)) in replaced.iter().enumerate() {
        let name = format!("replaced-{n}.yaml");
        let text = webhook().replace(from, to);
        assert_ne!(text, webhook());
        let file = write(d, &name, text);
        let (code, stderr) = check_fails(&[&file], d);
        assert_eq!(code, Some(3), "{to}: {stderr}");
        one_line(&stderr);
        for part in [name.as_str(), OPA, field] {
            assert!(stderr.contains(part), "{part} in {stderr}");
        }
    }
    // Mutating webhooks too, and v1beta1's own values stay valid there.
    let mutating = webhook_configuration("Cg==", "    reinvocationPolicy: Sometimes\n")
        .replace("ValidatingWebhook", "MutatingWebhook");
    let file = write(d, "mutating.yaml", mutating);
    let (code, stderr) = check_fails(&[&file], d);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("reinvocationPolicy"), "{stderr}");
    let beta = webhook()
        .replace("/v1\n", "/v1beta1\n")
        .replace("sideEffects: None", "sideEffects: Unknown");
    let file = write(d, "beta.yaml", beta);
    let (code, report, stderr) = check_json(&[&file], d);
    assert_eq!(
        code,
        Some(1),
        "v1beta1 allows sideEffects Unknown: {stderr}"
    );
    assert!(
        has(&report, "webhook-long-timeout"),
        "v1beta1's 30 s: {report:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. caBundle

#[test]
fn an_invalid_ca_bundle_is_a_warning_on_its_webhook_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for bundle in ["XYZ", "${CA_BUNDLE}", "\"not base64!\"", "12345"] {
        let file = write(
            d,
            "ca.yaml",
            documents(&[
                NAMESPACE,
                SERVICE,
                &deployment(1),
                &webhook_configuration(bundle, ""),
            ]),
        );
        let (code, report, stderr) = check_json(&[&file], d);
        assert_eq!(code, Some(1), "{bundle}: {stderr}");
        let f = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == "webhook-ca-bundle-invalid")
            .unwrap_or_else(|| panic!("{bundle}: {report:#}"));
        assert_eq!(f["severity"], "warning");
        assert_eq!(f["subject"]["webhook"], OPA);
        assert!(
            f.to_string().contains("not valid base64"),
            "{bundle}: {f:#}"
        );
        assert!(
            has(&report, "webhook-backend-single-replica"),
            "the rest is still checked: {report:#}"
        );
    }
    // Base64 that is no certificate is the apiserver's business, not a manifest error; Go
    // accepts line breaks in base64.
    for bundle in ["Cg==", "\"\"", "|\n        Q2c9\n        PQ=="] {
        let file = write(
            d,
            "ok.yaml",
            documents(&[NAMESPACE, &webhook_configuration(bundle, "")]),
        );
        let (_, report, stderr) = check_json(&[&file], d);
        assert!(
            !has(&report, "webhook-ca-bundle-invalid"),
            "{bundle}: {report:#} {stderr}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 7. empty input

#[test]
fn empty_input_could_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, text) in [
        ("empty.yaml", ""),
        ("comments.yaml", "# nothing here\n# at all\n"),
        ("dashes.yaml", "---\n---\n# x\n---\n"),
        ("empty.json", "[]"),
        ("nolist.yaml", "apiVersion: v1\nkind: List\nitems: []\n"),
    ] {
        let file = write(d, name, text);
        let (code, stderr) = check_fails(&[&file], d);
        assert_eq!(code, Some(3), "{name}: {stderr}");
        one_line(&stderr);
        assert!(
            stderr.contains(&format!("no Kubernetes objects in {}", file.display())),
            "{stderr}"
        );
    }
    let output = run(&["--file", "-"], Some(b""), d);
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no Kubernetes objects in standard input"),
        "{stderr}"
    );
    // An empty file among others in a folder is no error.
    let folder = d.join("folder");
    std::fs::create_dir(&folder).unwrap();
    write(&folder, "a.yaml", "");
    write(&folder, "b.yaml", NAMESPACE);
    let (code, _, stderr) = check_json(&[&folder], d);
    assert_eq!(code, Some(0), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// 8. errors in typed fields

#[test]
fn a_field_that_does_not_fit_names_file_document_object_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = write(d, "first.yaml", documents(&[NAMESPACE, SERVICE]));
    let bad = deployment(1).replace("replicas: 1", "replicas: two");
    let second = write(
        d,
        "second.yaml",
        format!(
            "# a comment\n{}",
            documents(&[NAMESPACE, SERVICE, &bad, &webhook()])
        ),
    );
    let (code, stderr) = check_fails(&[&first, &second], d);
    assert_eq!(code, Some(3), "{stderr}");
    one_line(&stderr);
    for part in [
        "second.yaml",
        "document 3",
        "line 20",
        "Deployment opa/opa",
        "spec.replicas",
    ] {
        assert!(stderr.contains(part), "{part} in {stderr}");
    }
    assert!(!stderr.contains("object "), "{stderr}");

    // Deep in a webhook, in JSON.
    let json = r#"[{"apiVersion":"admissionregistration.k8s.io/v1","kind":"ValidatingWebhookConfiguration","metadata":{"name":"x"},
      "webhooks":[{"name":"a","clientConfig":{"url":"https://a"},"sideEffects":"None","admissionReviewVersions":["v1"]},
                  {"name":"b","clientConfig":{"url":"https://b"},"sideEffects":"None","admissionReviewVersions":["v1"],"timeoutSeconds":"ten"}]}]"#;
    let file = write(d, "deep.json", json);
    let (code, stderr) = check_fails(&[&file], d);
    assert_eq!(code, Some(3), "{stderr}");
    for part in [
        "deep.json",
        "item 1",
        "ValidatingWebhookConfiguration x",
        "webhooks[1].timeoutSeconds",
    ] {
        assert!(stderr.contains(part), "{part} in {stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// 9. limits

#[test]
fn a_large_manifest_loads_and_limits_speak_the_product_s_words() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 2,000 documents, about 2 MB.
    let mut big = String::new();
    for n in 0..2_000 {
        big.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{n}\n  namespace: default\ndata:\n"
        ));
        for k in 0..20 {
            big.push_str(&format!("  key{k}: \"{}\"\n", "x".repeat(40)));
        }
    }
    assert!(big.len() > 2_000_000, "{}", big.len());
    let file = write(d, "big.yaml", &big);
    let (code, _, stderr) = check_json(&[&file], d);
    assert_eq!(code, Some(0), "{stderr}");

    // More documents than the limit.
    let many = "---\na: 1\n".repeat(100_001);
    let file = write(d, "many.yaml", many);
    let (code, stderr) = check_fails(&[&file], d);
    assert_eq!(code, Some(3), "{stderr}");
    one_line(&stderr);
    assert!(
        stderr.contains("many.yaml")
            && stderr.contains("more than 100000 YAML documents")
            && stderr.contains("the limit of kube-rescue check --file"),
        "{stderr}"
    );
    assert!(!stderr.contains("budget"), "{stderr}");

    // A file over the size limit, and the same on standard input.
    let huge = vec![b'#'; 64 * 1024 * 1024 + 1];
    let file = write(d, "huge.yaml", &huge);
    let (code, stderr) = check_fails(&[&file], d);
    assert_eq!(code, Some(3), "{stderr}");
    one_line(&stderr);
    assert!(
        stderr.contains("huge.yaml") && stderr.contains("64 MiB"),
        "{stderr}"
    );
    let output = run(&["--file", "-"], Some(&huge), d);
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("standard input") && stderr.contains("64 MiB"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// 10. the words of read errors

#[test]
fn a_file_that_is_not_utf8_is_one_clean_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = write(
        d,
        "latin1.yaml",
        b"apiVersion: v1\nkind: ConfigMap\ndata:\n  a: caf\xe9\n",
    );
    let (code, stderr) = check_fails(&[&file], d);
    assert_eq!(code, Some(3), "{stderr}");
    one_line(&stderr);
    assert!(stderr.contains("latin1.yaml"), "{stderr}");
    assert!(stderr.contains("UTF-8"), "{stderr}");
    assert_eq!(
        stderr.matches("not UTF-8").count(),
        1,
        "said once: {stderr}"
    );
    assert!(stderr.contains("line 4"), "{stderr}");

    // UTF-16 with a byte-order mark (what some Windows shells write) is read.
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(NAMESPACE.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let file = write(d, "utf16.yaml", utf16);
    let (code, _, stderr) = check_json(&[&file], d);
    assert_eq!(code, Some(0), "{stderr}");
}
