//! The RBAC kube-rescue ships, proved against the simulator's RBAC: a user bound to the
//! read-only ClusterRole sees every source of a refresh and can plan every change; without any
//! one grant of that role, a refresh source or a plan is answered 403, and the rule table names
//! that grant for the source. kubectl sees the simulator's RBAC as it sees a real apiserver's.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube_rescue::cluster::rbac::{READ_ONLY_ROLE, rule_for_source};
use kube_rescue::cluster::{Cluster, ConnectOptions, ErrorKind, Snapshot};
use kube_rescue::remediate::{self, Action, Request, Target};
use kube_rescue::sim::scenario::{Scenario, ScenarioUser};
use serde_json::{Value, json};

const USER: &str = "alice@example.com";
const GROUP: &str = "kube-rescue-oncall";

fn kube_rescue(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kube-rescue"))
        .args(args)
        .output()
        .expect("kube-rescue runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The documents `kube-rescue rbac [--responder]` prints.
fn printed(args: &[&str]) -> Vec<Value> {
    let (code, out, err) = kube_rescue(args);
    assert_eq!(code, 0, "kube-rescue {args:?}: {err}");
    serde_saphyr::from_multiple::<Value>(&out).expect("the printed YAML parses")
}

#[test]
fn rbac_prints_the_cluster_roles_as_yaml() {
    let read_only = printed(&["rbac"]);
    let kinds: Vec<&Value> = read_only.iter().map(|d| &d["kind"]).collect();
    assert_eq!(kinds, ["ClusterRole", "ClusterRoleBinding"]);
    let role: ClusterRole = serde_json::from_value(read_only[0].clone()).expect("a ClusterRole");
    assert_eq!(role.metadata.name.as_deref(), Some(READ_ONLY_ROLE));
    let rules = role.rules.unwrap_or_default();
    assert!(rules.len() > 5);
    assert!(
        rules
            .iter()
            .all(|r| r.verbs.iter().all(|v| v == "get" || v == "list")),
        "the read-only role only reads"
    );

    let responder = printed(&["rbac", "--responder"]);
    let role: ClusterRole =
        serde_json::from_value(responder[0].clone()).expect("the responder ClusterRole");
    assert_eq!(role.metadata.name.as_deref(), Some("kube-rescue-responder"));
    assert!(
        responder[1..]
            .iter()
            .all(|d| d["kind"] == "ClusterRoleBinding" && d["subjects"][0]["kind"] == "Group")
    );
}

/// The healthy cluster with one on-call user in the group the shipped binding names.
fn scenario_with_oncall_user() -> Scenario {
    let mut scenario = Scenario::load("healthy").expect("the shipped healthy scenario");
    scenario.users.push(ScenarioUser {
        name: USER.into(),
        token: "alice-token".into(),
        groups: vec![GROUP.into()],
    });
    // Every apiserver keeps these; the healthy scenario does not list them.
    scenario.objects.extend([
        json!({"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": "kubernetes", "namespace": "default"},
               "subsets": [{"addresses": [{"ip": "10.0.0.2"}],
                            "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}]}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "kubernetes", "namespace": "default",
                            "labels": {"kubernetes.io/service-name": "kubernetes"}},
               "addressType": "IPv4",
               "endpoints": [{"addresses": ["10.0.0.2"], "conditions": {"ready": true}}],
               "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}),
    ]);
    scenario
}

fn dynamic_api(client: &kube::Client, object: &Value) -> Api<DynamicObject> {
    let (group, version) = object["apiVersion"]
        .as_str()
        .and_then(|v| v.split_once('/'))
        .expect("an rbac apiVersion");
    let kind = object["kind"].as_str().expect("kind");
    let plural = format!("{}s", kind.to_lowercase());
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), &plural);
    Api::all_with(client.clone(), &resource)
}

/// Creates what `kube-rescue rbac` prints, as the admin, through the API.
async fn apply_printed(running: &common::Running) {
    let admin = common::client(&running.kubeconfig).await;
    for document in printed(&["rbac"]) {
        let object: DynamicObject = serde_json::from_value(document.clone()).expect("object");
        dynamic_api(&admin, &document)
            .create(&PostParams::default(), &object)
            .await
            .expect("the admin creates the shipped RBAC");
    }
}

async fn user_kubeconfig(running: &common::Running) -> PathBuf {
    let path = running.dir.path().join("alice.kubeconfig");
    let text = running
        .sim
        .user_kubeconfig(USER)
        .expect("the scenario user");
    std::fs::write(&path, text).unwrap();
    path
}

async fn connect_as_user(kubeconfig: &Path) -> Cluster {
    Cluster::connect(&ConnectOptions {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: None,
        timeout: Duration::from_secs(5),
        read_only: true,
        exec_timeout: Duration::from_secs(5),
        warn_on_stderr: false,
    })
    .await
    .expect("the user's kubeconfig connects")
}

/// The findings of one snapshot.
fn findings_of(snapshot: &Snapshot) -> Vec<kube_rescue::diagnose::Finding> {
    let inventory = kube_rescue::diagnose::Inventory::from_snapshot(snapshot);
    kube_rescue::diagnose::diagnose(&kube_rescue::diagnose::Context {
        inventory: &inventory,
        live: Some(snapshot),
        now: jiff::Timestamp::now(),
    })
}

fn failed_sources(snapshot: &Snapshot) -> Vec<(String, ErrorKind, Option<u16>)> {
    snapshot
        .source_errors()
        .into_iter()
        .filter_map(|(name, e)| e.map(|e| (name, e.kind, e.code)))
        .collect()
}

/// The plans a responder makes on the healthy cluster, each only reading in read-only mode.
fn plans() -> Vec<(Action, &'static str)> {
    vec![
        (
            Action::Delete,
            "vwc/gatekeeper-validating-webhook-configuration",
        ),
        (
            Action::Delete,
            "mwc/gatekeeper-mutating-webhook-configuration",
        ),
        (Action::Cordon, "node/gke-small-pool-1-3e8b1d44-d7fs"),
        (
            Action::RestartBackend { webhook: None },
            "deployment/gatekeeper-system/gatekeeper-controller-manager",
        ),
        (
            Action::RestartBackend { webhook: None },
            "vwc/gatekeeper-validating-webhook-configuration",
        ),
    ]
}

/// The plans refused with 403, as (target, message).
async fn forbidden_plans(cluster: &Cluster) -> Vec<(String, String)> {
    let mut forbidden = Vec::new();
    for (action, target) in plans() {
        let request = Request::Fix {
            action,
            target: Target::parse(target).unwrap(),
        };
        match remediate::plan(cluster, &request).await {
            Ok(plan) => assert!(plan.read_only, "a read-only plan"),
            Err(remediate::Error::Access(e)) if e.kind == ErrorKind::Forbidden => {
                assert_eq!(e.code, Some(403), "{e:?}");
                forbidden.push((target.to_string(), e.message));
            }
            Err(e) => panic!("plan of {target}: {e}"),
        }
    }
    forbidden
}

/// One grant of a role: (rule index, resource or non-resource URL, verb).
type Grant = (usize, String, String);

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn grants(rules: &[Value]) -> Vec<Grant> {
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let targets = if rule["nonResourceURLs"].is_array() {
            strings(&rule["nonResourceURLs"])
        } else {
            strings(&rule["resources"])
        };
        for target in targets {
            for verb in strings(&rule["verbs"]) {
                out.push((i, target.clone(), verb));
            }
        }
    }
    out
}

/// The rules with one grant taken out: the rule without that resource (or URL), plus a rule
/// for it with the other verbs.
fn without(rules: &[Value], (index, target, verb): &Grant) -> Vec<Value> {
    let key = if rules[*index]["nonResourceURLs"].is_array() {
        "nonResourceURLs"
    } else {
        "resources"
    };
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        if i != *index {
            out.push(rule.clone());
            continue;
        }
        let others: Vec<String> = strings(&rule[key])
            .into_iter()
            .filter(|t| t != target)
            .collect();
        if !others.is_empty() {
            let mut r = rule.clone();
            r[key] = json!(others);
            out.push(r);
        }
        let verbs: Vec<String> = strings(&rule["verbs"])
            .into_iter()
            .filter(|v| v != verb)
            .collect();
        if !verbs.is_empty() {
            let mut r = rule.clone();
            r[key] = json!([target]);
            r["verbs"] = json!(verbs);
            out.push(r);
        }
    }
    out
}

async fn set_rules(roles: &Api<ClusterRole>, rules: &[Value]) {
    let mut role = roles.get(READ_ONLY_ROLE).await.expect("the role exists");
    role.rules = Some(serde_json::from_value(json!(rules)).expect("rules"));
    roles
        .replace(READ_ONLY_ROLE, &PostParams::default(), &role)
        .await
        .expect("the admin replaces the role");
}

/// The table's rule for a source, as a grant of the shipped role: (resource or URL, verb).
fn table_grant(source: &str) -> Option<(String, String)> {
    let rule = rule_for_source(source)?;
    let target = rule
        .need
        .non_resource_url
        .unwrap_or(rule.need.resource)
        .to_string();
    Some((target, rule.need.verb.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_only_role_is_all_a_refresh_and_a_plan_need_and_each_grant_is_needed() {
    let running = common::start(scenario_with_oncall_user()).await;
    apply_printed(&running).await;
    let cluster = connect_as_user(&user_kubeconfig(&running).await).await;

    // With the shipped role: every source, the webhook backend's included, and every plan.
    let snapshot = kube_rescue::cluster::refresh(&cluster, None).await;
    assert_eq!(failed_sources(&snapshot), [], "every source is readable");
    assert!(
        snapshot
            .webhook_backends
            .iter()
            .any(|b| b.read_at.is_some() && b.pods.is_ok() && b.deployments.is_ok()),
        "the refresh read a webhook backend: {:?}",
        snapshot.webhook_backends
    );
    assert_eq!(
        forbidden_plans(&cluster).await,
        Vec::<(String, String)>::new()
    );
    let complete = kube_rescue::cluster::collect::refresh_complete(&cluster).await;
    assert_eq!(failed_sources(&complete), [], "every source is readable");
    assert!(
        findings_of(&complete)
            .iter()
            .all(|f| f.id != "observation-incomplete"),
        "{:#?}",
        findings_of(&complete)
    );

    // Without any one grant, something is answered 403.
    let admin = common::client(&running.kubeconfig).await;
    let roles: Api<ClusterRole> = Api::all(admin);
    let shipped = printed(&["rbac"]);
    let rules: Vec<Value> = shipped[0]["rules"].as_array().expect("rules").clone();
    let public: BTreeSet<&str> = ["/version", "/livez", "/readyz"].into();
    let mut checked = 0;
    for grant in grants(&rules) {
        set_rules(&roles, &without(&rules, &grant)).await;
        let snapshot = kube_rescue::cluster::refresh(&cluster, None).await;
        let failed = failed_sources(&snapshot);
        if public.contains(grant.1.as_str()) {
            // Every user has these through system:public-info-viewer.
            assert_eq!(failed, [], "without {grant:?}");
            continue;
        }
        // Only 403s (and a source not sent because another was refused, without a code of
        // its own: the pods of a Service that could not be read).
        assert!(
            failed
                .iter()
                .all(|(_, kind, code)| *kind == ErrorKind::Forbidden || code.is_none()),
            "without {grant:?}, only 403s: {failed:?}"
        );
        if failed.is_empty() {
            // A read of a plan only.
            let forbidden = forbidden_plans(&cluster).await;
            assert!(
                !forbidden.is_empty(),
                "without {grant:?} nothing was refused: the grant is not needed"
            );
            let what = format!("\"{}\"", grant.1);
            assert!(
                forbidden.iter().all(|(_, m)| m.contains(&what)
                    && m.contains(&format!("User \"{USER}\" cannot {}", grant.2))),
                "{forbidden:?}"
            );
        } else {
            // The table names the removed grant for a source it blinded.
            let removed = (grant.1.clone(), grant.2.clone());
            assert!(
                failed.iter().any(|(source, _, code)| *code == Some(403)
                    && table_grant(source).as_ref() == Some(&removed)),
                "without {grant:?}, the table names another rule for each of {failed:?}"
            );
            // And the diagnosis says so: a blind spot, with the rule that is missing.
            let findings = findings_of(&snapshot);
            let blind = findings
                .iter()
                .find(|f| f.id == "observation-incomplete")
                .unwrap_or_else(|| panic!("without {grant:?}: no observation-incomplete"));
            let (what, verb) = (format!("\"{}\"", grant.1), format!("\"{}\"", grant.2));
            assert!(
                blind
                    .evidence
                    .iter()
                    .any(|e| e.contains("missing RBAC rule")
                        && e.contains(&what)
                        && e.contains(&verb)),
                "without {grant:?}: {:#?}",
                blind.evidence
            );
        }
        checked += 1;
    }
    assert!(checked >= 15, "{checked} grants checked");
    running.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_a_binding_sees_403s_worded_as_the_apiserver_words_them() {
    let mut scenario = scenario_with_oncall_user();
    scenario.users[0].groups.clear();
    let running = common::start(scenario).await;
    let cluster = connect_as_user(&user_kubeconfig(&running).await).await;
    let snapshot = kube_rescue::cluster::refresh(&cluster, None).await;
    let errors = snapshot.source_errors();
    let message = |source: &str| {
        errors
            .iter()
            .find(|(name, _)| name == source)
            .and_then(|(_, e)| *e)
            .map(|e| (e.kind, e.message.clone()))
    };
    assert_eq!(message("version"), None, "version is public");
    assert_eq!(message("readyz"), None, "readyz is public");
    let (kind, text) = message("nodes").expect("nodes are refused");
    assert_eq!(kind, ErrorKind::Forbidden);
    assert!(
        text.contains(&format!(
            "nodes is forbidden: User \"{USER}\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
        )),
        "{text}"
    );
    let (_, text) = message("leases").expect("leases are refused");
    assert!(
        text.contains("cannot list resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"kube-node-lease\""),
        "{text}"
    );
    let (kind, text) = message("metrics").expect("metrics are refused");
    assert_eq!(kind, ErrorKind::Forbidden);
    assert!(
        text.contains(&format!(
            "forbidden: User \"{USER}\" cannot get path \"/metrics\""
        )),
        "{text}"
    );
    // Health answers anyone, yet nothing a rule needs could be read: critical, not a warning.
    let findings = findings_of(&snapshot);
    let blind = findings
        .iter()
        .find(|f| f.id == "observation-incomplete")
        .expect("observation-incomplete");
    assert_eq!(
        blind.severity,
        kube_rescue::diagnose::Severity::Critical,
        "{blind:#?}"
    );
    assert_eq!(findings[0].id, "observation-incomplete", "{findings:#?}");
    running.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_manages_rbac_and_sees_its_answers() {
    let Some(kubectl) = common::kubectl() else {
        return;
    };
    let mut scenario = scenario_with_oncall_user();
    scenario.users[0].groups.clear();
    let running = common::start(scenario).await;
    let admin = running.kubeconfig.clone();
    let alice = user_kubeconfig(&running).await;
    let asset =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/rbac/kube-rescue-read-only.yaml");
    let run = move |kubeconfig: PathBuf, args: Vec<String>| {
        let kubectl = kubectl.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                common::run_kubectl(&kubectl, &kubeconfig, &args)
            })
            .await
            .expect("kubectl ran")
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // Before any binding: kubectl prints the apiserver's 403.
    let (ok, _, err, _) = run(alice.clone(), args(&["get", "nodes"])).await;
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "Error from server (Forbidden): nodes is forbidden: User \"{USER}\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
        )),
        "{err}"
    );
    let (ok, out, _, _) = run(alice.clone(), args(&["auth", "can-i", "list", "nodes"])).await;
    assert!(!ok, "can-i exits 1 for no");
    assert_eq!(out.trim(), "no");

    // The admin applies the shipped role and binds the user by name (as a team would bind a
    // group), with kubectl.
    let (ok, out, err, _) = run(
        admin.clone(),
        // The simulator serves no OpenAPI documents, which kubectl's client-side validation
        // downloads; the apiserver validates the objects anyway.
        vec![
            "apply".into(),
            "--validate=false".into(),
            "-f".into(),
            asset.display().to_string(),
        ],
    )
    .await;
    assert!(ok, "apply: {err}");
    assert!(
        out.contains("clusterrole.rbac.authorization.k8s.io/kube-rescue-read-only created"),
        "{out}"
    );
    let binding = running.dir.path().join("alice-reads.yaml");
    std::fs::write(
        &binding,
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: alice-reads}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kube-rescue-read-only}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: \"{USER}\"}}]
"
        ),
    )
    .unwrap();
    let (ok, _, err, _) = run(
        admin.clone(),
        vec![
            "apply".into(),
            "--validate=false".into(),
            "-f".into(),
            binding.display().to_string(),
        ],
    )
    .await;
    assert!(ok, "apply the binding: {err}");
    let (ok, out, err, _) = run(admin.clone(), args(&["get", "clusterroles", "-o", "name"])).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("clusterrole.rbac.authorization.k8s.io/kube-rescue-read-only"),
        "{out}"
    );

    let (ok, out, err, _) = run(alice.clone(), args(&["auth", "can-i", "list", "nodes"])).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "yes");
    let (ok, out, _, _) = run(alice.clone(), args(&["auth", "can-i", "delete", "nodes"])).await;
    assert!(!ok);
    assert_eq!(out.trim(), "no");
    let (ok, out, _, _) = run(
        alice.clone(),
        args(&[
            "auth",
            "can-i",
            "get",
            "endpoints/kubernetes",
            "-n",
            "default",
        ]),
    )
    .await;
    assert!(ok, "resourceNames: {out}");
    let (ok, out, _, _) = run(
        alice.clone(),
        args(&["auth", "can-i", "get", "endpoints/other", "-n", "default"]),
    )
    .await;
    assert!(!ok, "another Endpoints is not granted: {out}");
    let (ok, out, _, _) = run(alice.clone(), args(&["auth", "can-i", "get", "/metrics"])).await;
    assert!(ok, "/metrics: {out}");
    let (ok, out, err, _) = run(alice.clone(), args(&["get", "nodes", "-o", "name"])).await;
    assert!(ok, "{err}");
    assert!(out.contains("node/gke-small-pool-1-3e8b1d44-d7fs"), "{out}");
    let (ok, _, err, _) = run(
        alice.clone(),
        args(&["get", "secrets", "-n", "kube-system"]),
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "Error from server (Forbidden): secrets is forbidden: User \"{USER}\" cannot list resource \"secrets\" in API group \"\" in the namespace \"kube-system\""
        )),
        "{err}"
    );
    let (ok, _, err, _) = run(
        alice.clone(),
        args(&[
            "delete",
            "validatingwebhookconfiguration",
            "gatekeeper-validating-webhook-configuration",
        ]),
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("validatingwebhookconfigurations.admissionregistration.k8s.io \"gatekeeper-validating-webhook-configuration\" is forbidden: User"),
        "{err}"
    );
    running.sim.stop().await;
}
