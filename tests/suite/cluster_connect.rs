//! Cluster access against the simulator: the kubeconfig read as kubectl reads it, exec auth
//! plugins under a deadline, the read-only gate, and real failures classified the way an
//! on-call engineer acts on them. No test touches the process environment: the kubeconfig's
//! environment (KUBECONFIG, HOME) is passed in.

use crate::common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube_rescue::cluster::connect::{KubeconfigEnv, load_kubeconfig_in};
use kube_rescue::cluster::{AccessError, Cluster, ConnectOptions, ErrorKind};
use serde_json::{Value, json};

use common::{Running, start_yaml};

const SCENARIO: &str = r#"
name: connect
cluster: {kubelets: false, nodeLifecycle: false}
objects:
  - {apiVersion: v1, kind: Namespace, metadata: {name: team-a}}
  - {apiVersion: v1, kind: Node, metadata: {name: n1}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: settings, namespace: default}, data: {k: v}}
"#;

/// A server nothing answers on: a name under `.invalid` never resolves.
const NOWHERE: &str = "https://kube-rescue-does-not-exist.invalid:6443";

// ---------------------------------------------------------------------------------------------
// Kubeconfig text

fn cluster_entry(name: &str, server: &str, ca_pem: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "- name: {name}\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\n"
    )
}

fn token_user(name: &str, token: &str) -> String {
    format!("- name: {name}\n  user:\n    token: {token}\n")
}

fn exec_user(name: &str, command: &Path, install_hint: &str) -> String {
    format!(
        "- name: {name}\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n      args: [--flag, value]\n      env: [{{name: PLUGIN_SETTING, value: from-kubeconfig}}]\n      interactiveMode: IfAvailable\n      installHint: \"{install_hint}\"\n      provideClusterInfo: false\n",
        command.display()
    )
}

fn context_entry(name: &str, cluster: &str, user: &str, namespace: Option<&str>) -> String {
    let ns = namespace
        .map(|n| format!("    namespace: {n}\n"))
        .unwrap_or_default();
    format!("- name: {name}\n  context:\n    cluster: {cluster}\n    user: {user}\n{ns}")
}

fn kubeconfig(
    clusters: &[String],
    users: &[String],
    contexts: &[String],
    current: Option<&str>,
) -> String {
    let list = |items: &[String]| {
        if items.is_empty() {
            " []\n".to_string()
        } else {
            format!("\n{}", items.concat())
        }
    };
    let current = current
        .map(|c| format!("current-context: {c}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:{}users:{}contexts:{}{current}",
        list(clusters),
        list(users),
        list(contexts)
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The simulator as one context of a kubeconfig.
fn sim_kubeconfig(running: &Running, namespace: Option<&str>) -> String {
    kubeconfig(
        &[cluster_entry(
            "sim",
            &running.sim.url(),
            running.sim.ca_pem(),
        )],
        &[token_user("admin", running.sim.token())],
        &[context_entry("sim", "sim", "admin", namespace)],
        Some("sim"),
    )
}

fn no_env() -> KubeconfigEnv {
    KubeconfigEnv {
        kubeconfig: None,
        home: None,
    }
}

fn env_with(files: &[&Path]) -> KubeconfigEnv {
    KubeconfigEnv {
        kubeconfig: Some(std::env::join_paths(files).unwrap()),
        home: None,
    }
}

fn options(kubeconfig: Option<&Path>) -> ConnectOptions {
    ConnectOptions {
        kubeconfig: kubeconfig.map(Path::to_path_buf),
        ..ConnectOptions::default()
    }
}

async fn connect(options: &ConnectOptions, env: &KubeconfigEnv) -> Result<Cluster, AccessError> {
    // No connect may hang, whatever it is given.
    tokio::time::timeout(Duration::from_secs(30), Cluster::connect_with(options, env))
        .await
        .expect("connecting finished within 30 s")
}

async fn connected(options: &ConnectOptions, env: &KubeconfigEnv) -> Cluster {
    match connect(options, env).await {
        Ok(cluster) => cluster,
        Err(e) => panic!("connect failed: {e} ({:?})", e.kind),
    }
}

async fn connect_error(options: &ConnectOptions, env: &KubeconfigEnv) -> AccessError {
    match connect(options, env).await {
        Ok(cluster) => panic!("connect succeeded to {}", cluster.server()),
        Err(e) => e,
    }
}

/// Connects with a kubeconfig whose auth plugin fails: the connection opens (a plugin that
/// fails is a finding, not a stop) and a request answers with the plugin's failure.
async fn plugin_error(options: &ConnectOptions) -> AccessError {
    let cluster = connect(options, &no_env())
        .await
        .expect("a failing plugin does not stop the connection");
    list_nodes(&cluster)
        .await
        .expect_err("without a credential no request succeeds")
}

async fn list_nodes(cluster: &Cluster) -> Result<Vec<String>, AccessError> {
    let nodes: Api<Node> = Api::all(cluster.client());
    let list = cluster
        .call("list nodes", nodes.list(&ListParams::default()))
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect())
}

/// One short line, without a YAML parser's drawn excerpt of the input.
fn assert_one_line(e: &AccessError) {
    assert!(
        !e.message.contains('\n') && !e.message.is_empty() && e.message.len() < 300,
        "not one short line: {:?}",
        e.message
    );
    assert!(!e.message.contains("-->"), "{:?}", e.message);
}

// ---------------------------------------------------------------------------------------------
// The simulator's request log

async fn last_seq(running: &Running) -> u64 {
    common::request_log(running, u64::MAX).await.1
}

// ---------------------------------------------------------------------------------------------
// 1. The kubeconfig as kubectl reads it

#[tokio::test]
async fn kubeconfig_flag_wins_over_the_environment() {
    let running = start_yaml(SCENARIO).await;
    let dir = tempfile::tempdir().unwrap();
    let flag = write(dir.path(), "flag", &sim_kubeconfig(&running, None));
    let elsewhere = write(
        dir.path(),
        "env",
        &kubeconfig(
            &[cluster_entry("other", NOWHERE, running.sim.ca_pem())],
            &[token_user("u", "t")],
            &[context_entry("other", "other", "u", None)],
            Some("other"),
        ),
    );
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".kube")).unwrap();
    std::fs::copy(&elsewhere, home.path().join(".kube/config")).unwrap();
    let env = KubeconfigEnv {
        kubeconfig: Some(elsewhere.clone().into_os_string()),
        home: Some(home.path().to_path_buf()),
    };
    let cluster = connected(&options(Some(&flag)), &env).await;
    assert_eq!(cluster.context(), "sim");
    assert_eq!(cluster.server(), running.sim.url());
    assert_eq!(list_nodes(&cluster).await.unwrap(), vec!["n1".to_string()]);

    // Without the flag, KUBECONFIG is read; without either, ~/.kube/config.
    let (_, source) = load_kubeconfig_in(None, &env).unwrap();
    assert!(source.contains("env"), "{source}");
    let home_only = KubeconfigEnv {
        kubeconfig: None,
        home: env.home.clone(),
    };
    let (kc, source) = load_kubeconfig_in(None, &home_only).unwrap();
    assert_eq!(kc.current_context.as_deref(), Some("other"));
    assert!(source.ends_with(".kube/config"), "{source}");
}

#[tokio::test]
async fn kubeconfig_files_merge_first_file_wins() {
    let running = start_yaml(SCENARIO).await;
    let dir = tempfile::tempdir().unwrap();
    // The first file holds the context (and which one is current); the second holds its
    // cluster and user, and a context of the same name that must lose.
    let first = write(
        dir.path(),
        "contexts",
        &kubeconfig(
            &[],
            &[],
            &[context_entry("work", "sim", "admin", Some("team-a"))],
            Some("work"),
        ),
    );
    let second = write(
        dir.path(),
        "credentials",
        &kubeconfig(
            &[
                cluster_entry("sim", &running.sim.url(), running.sim.ca_pem()),
                cluster_entry("far", NOWHERE, running.sim.ca_pem()),
            ],
            &[token_user("admin", running.sim.token())],
            &[
                context_entry("work", "far", "admin", Some("elsewhere")),
                context_entry("far", "far", "admin", None),
            ],
            Some("far"),
        ),
    );
    // kubectl skips a file of the list that does not exist.
    let missing = dir.path().join("not-there");
    let env = env_with(&[&first, &missing, &second]);
    let cluster = connected(&options(None), &env).await;
    assert_eq!(cluster.context(), "work");
    assert_eq!(cluster.server(), running.sim.url());
    assert_eq!(cluster.namespace(), "team-a");
    assert_eq!(list_nodes(&cluster).await.unwrap(), vec!["n1".to_string()]);

    // The other order: the second file's current-context and its "work" win.
    let reversed = connected(&options(None), &env_with(&[&second, &first])).await;
    assert_eq!(reversed.context(), "far");
    assert_eq!(reversed.server(), NOWHERE);
    let work = ConnectOptions {
        context: Some("work".into()),
        ..options(None)
    };
    let reversed_work = connected(&work, &env_with(&[&second, &first])).await;
    assert_eq!(reversed_work.namespace(), "elsewhere");
}

#[tokio::test]
async fn context_flag_picks_a_non_current_context() {
    let running = start_yaml(SCENARIO).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "config",
        &kubeconfig(
            &[
                cluster_entry("sim", &running.sim.url(), running.sim.ca_pem()),
                cluster_entry("far", NOWHERE, running.sim.ca_pem()),
            ],
            &[token_user("admin", running.sim.token())],
            &[
                context_entry("far", "far", "admin", Some("far-ns")),
                context_entry("sim", "sim", "admin", None),
            ],
            Some("far"),
        ),
    );
    let current = connected(&options(Some(&path)), &no_env()).await;
    assert_eq!(current.context(), "far");
    assert_eq!(current.server(), NOWHERE);
    assert_eq!(current.namespace(), "far-ns");

    let empty_flag = ConnectOptions {
        context: Some(String::new()),
        ..options(Some(&path))
    };
    assert_eq!(connected(&empty_flag, &no_env()).await.context(), "far");

    let picked = ConnectOptions {
        context: Some("sim".into()),
        ..options(Some(&path))
    };
    let cluster = connected(&picked, &no_env()).await;
    assert_eq!(cluster.context(), "sim");
    assert_eq!(cluster.server(), running.sim.url());
    // A context without a namespace works in "default", as kubectl does.
    assert_eq!(cluster.namespace(), "default");
    assert_eq!(list_nodes(&cluster).await.unwrap(), vec!["n1".to_string()]);
    // The context's namespace is where namespaced calls go by default.
    let namespaced = write(dir.path(), "ns", &sim_kubeconfig(&running, Some("team-a")));
    let cluster = connected(&options(Some(&namespaced)), &no_env()).await;
    assert_eq!(cluster.namespace(), "team-a");
    let configmaps: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    let list = cluster
        .call("list configmaps", configmaps.list(&ListParams::default()))
        .await
        .unwrap();
    assert!(list.items.is_empty(), "team-a has no configmaps");
    let (log, _) = common::request_log(&running, 0).await;
    assert!(
        log.iter()
            .any(|r| r["path"] == "/api/v1/namespaces/team-a/configmaps"),
        "{log:?}"
    );
}

#[tokio::test]
async fn kubeconfig_errors_name_the_file_or_context() {
    let dir = tempfile::tempdir().unwrap();
    let ca = "not a real CA";

    let missing = dir.path().join("no-such-kubeconfig");
    let e = connect_error(&options(Some(&missing)), &no_env()).await;
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(
        e.message,
        format!("the kubeconfig {} does not exist", missing.display())
    );
    assert_one_line(&e);

    let missing_b = dir.path().join("also-missing");
    let e = connect_error(&options(None), &env_with(&[&missing, &missing_b])).await;
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.message.contains("no-such-kubeconfig") && e.message.contains("also-missing"),
        "{}",
        e.message
    );
    assert_one_line(&e);

    let e = connect_error(&options(None), &no_env()).await;
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(e.message.contains("--kubeconfig"), "{}", e.message);
    assert_one_line(&e);

    let two = write(
        dir.path(),
        "two-contexts",
        &kubeconfig(
            &[cluster_entry("c", NOWHERE, ca)],
            &[token_user("u", "t")],
            &[
                context_entry("alpha", "c", "u", None),
                context_entry("beta", "c", "u", None),
            ],
            None,
        ),
    );
    let e = connect_error(&options(Some(&two)), &no_env()).await;
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.message.contains("current-context")
            && e.message.contains("two-contexts")
            && e.message.contains("alpha"),
        "{}",
        e.message
    );
    assert_one_line(&e);

    let wrong = ConnectOptions {
        context: Some("gamma".into()),
        ..options(Some(&two))
    };
    let e = connect_error(&wrong, &no_env()).await;
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.message.contains("\"gamma\"")
            && e.message.contains("two-contexts")
            && e.message.contains("alpha, beta"),
        "{}",
        e.message
    );
    assert_one_line(&e);

    // A context whose cluster is not in the file.
    let dangling = write(
        dir.path(),
        "dangling",
        &kubeconfig(
            &[],
            &[token_user("u", "t")],
            &[context_entry("lost", "gone", "u", None)],
            Some("lost"),
        ),
    );
    let e = connect_error(&options(Some(&dangling)), &no_env()).await;
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.message.contains("\"lost\"")
            && e.message.contains("\"gone\"")
            && e.message.contains("dangling"),
        "{}",
        e.message
    );
    assert_one_line(&e);
    // And one whose user is not.
    let userless = write(
        dir.path(),
        "userless",
        &kubeconfig(
            &[cluster_entry("c", NOWHERE, ca)],
            &[token_user("u", "t")],
            &[context_entry("nobody", "c", "ghost", None)],
            Some("nobody"),
        ),
    );
    let e = connect_error(&options(Some(&userless)), &no_env()).await;
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.message.contains("\"ghost\"") && e.message.contains("userless"),
        "{}",
        e.message
    );
    assert_one_line(&e);

    for (name, text) in [
        ("garbage", "clusters: [unclosed\n  - {{{\n: : :\n"),
        ("tabs", "apiVersion: v1\nclusters:\n\t- name: x\n"),
        (
            "wrong-shape",
            "apiVersion: v1\nkind: Config\nclusters: 42\n",
        ),
    ] {
        let path = write(dir.path(), name, text);
        let e = connect_error(&options(Some(&path)), &no_env()).await;
        assert_eq!(e.kind, ErrorKind::Config, "{name}: {}", e.message);
        assert!(e.message.contains(name), "{name}: {}", e.message);
        assert!(e.message.contains("line "), "{name}: {}", e.message);
        assert_one_line(&e);
        // The same file as one of KUBECONFIG's: the message names it, not only the list.
        let good = write(
            dir.path(),
            "good",
            &kubeconfig(
                &[cluster_entry("c", NOWHERE, ca)],
                &[token_user("u", "t")],
                &[context_entry("alpha", "c", "u", None)],
                Some("alpha"),
            ),
        );
        let e = connect_error(&options(None), &env_with(&[&good, &path])).await;
        assert_eq!(e.kind, ErrorKind::Config, "{name}: {}", e.message);
        assert!(
            e.message.contains(&path.display().to_string()),
            "{name}: {}",
            e.message
        );
        assert_one_line(&e);
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Exec auth plugins

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn plugin_kubeconfig(running: &Running, dir: &Path, command: &Path, hint: &str) -> PathBuf {
    write(
        dir,
        "kubeconfig",
        &kubeconfig(
            &[cluster_entry(
                "sim",
                &running.sim.url(),
                running.sim.ca_pem(),
            )],
            &[exec_user("plugin-user", command, hint)],
            &[context_entry("sim", "sim", "plugin-user", None)],
            Some("sim"),
        ),
    )
}

/// Whether a process is gone (or only a zombie waiting to be reaped).
fn is_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn exec_plugin_credential_reaches_the_apiserver() {
    let running = start_yaml(SCENARIO).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let plugin = script(
        dir.path(),
        "token-plugin",
        &format!(
            r#"printf '%s' "$KUBERNETES_EXEC_INFO" > "{out}/exec-info"
readlink /proc/self/fd/0 > "{out}/stdin"
if [ -t 0 ]; then echo terminal > "{out}/stdin-kind"; else echo no-terminal > "{out}/stdin-kind"; fi
printf '%s\n' "$*" > "{out}/args"
printf '%s\n' "$PLUGIN_SETTING" > "{out}/env"
cat <<EOF
{{"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
  "status": {{"token": "{token}"}}}}
EOF
"#,
            token = running.sim.token()
        ),
    );
    let path = plugin_kubeconfig(&running, dir.path(), &plugin, "unused");
    let cluster = connected(&options(Some(&path)), &no_env()).await;
    assert_eq!(list_nodes(&cluster).await.unwrap(), vec!["n1".to_string()]);

    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    let info: Value = serde_json::from_str(&read("exec-info")).unwrap();
    assert_eq!(info["kind"], "ExecCredential", "{info}");
    assert_eq!(
        info["apiVersion"], "client.authentication.k8s.io/v1beta1",
        "{info}"
    );
    assert_eq!(info["spec"]["interactive"], false, "{info}");
    assert_eq!(read("stdin").trim(), "/dev/null");
    assert_eq!(read("stdin-kind").trim(), "no-terminal");
    assert_eq!(read("args").trim(), "--flag value");
    assert_eq!(read("env").trim(), "from-kubeconfig");
}

#[tokio::test]
async fn exec_plugin_token_is_renewed_before_it_expires() {
    let running = start_yaml(SCENARIO).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let expires = jiff::Timestamp::now() + Duration::from_secs(2);
    // The first run's token expires in 2 s; the renewal gives a token the apiserver refuses,
    // which shows that the renewed token is the one sent.
    let plugin = script(
        dir.path(),
        "short-lived-plugin",
        &format!(
            r#"n=$(cat "{out}/count" 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > "{out}/count"
if [ "$n" = 1 ]; then
  printf '{{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{{"token":"{token}","expirationTimestamp":"{expires}"}}}}\n'
else
  printf '{{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{{"token":"renewed-token"}}}}\n'
fi
"#,
            token = running.sim.token(),
            expires = expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ),
    );
    let path = plugin_kubeconfig(&running, dir.path(), &plugin, "unused");
    let cluster = connected(&options(Some(&path)), &no_env()).await;
    assert_eq!(list_nodes(&cluster).await.unwrap(), vec!["n1".to_string()]);
    let count = || {
        std::fs::read_to_string(dir.path().join("count"))
            .map(|c| c.trim().to_string())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while count() != "2" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count(),
        "2",
        "the plugin ran again before its token expired"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e = list_nodes(&cluster).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized, "{}", e.message);
    // No expiry given the second time: no third run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(), "2");
}

#[tokio::test]
async fn hung_exec_plugin_is_stopped_at_its_deadline() {
    let running = start_yaml(SCENARIO).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    // Like a login helper waiting for a browser: it and the program it started both wait.
    let plugin = script(
        dir.path(),
        "hang-plugin",
        &format!("echo $$ > \"{out}/pid\"\nsleep 60 &\necho $! > \"{out}/child\"\nwait\n"),
    );
    let path = plugin_kubeconfig(&running, dir.path(), &plugin, "unused");
    let opts = ConnectOptions {
        exec_timeout: Duration::from_secs(1),
        ..options(Some(&path))
    };
    let started = Instant::now();
    let e = plugin_error(&opts).await;
    let took = started.elapsed();
    assert_eq!(e.kind, ErrorKind::AuthPlugin, "{}", e.message);
    assert!(
        e.message
            .contains("hang-plugin\" did not answer within 1 s"),
        "{}",
        e.message
    );
    assert_one_line(&e);
    assert!(
        took < common::bound(Duration::from_secs(1)),
        "took {took:?} for a 1 s deadline"
    );

    let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap();
    let child = std::fs::read_to_string(dir.path().join("child")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(is_gone(&pid) && is_gone(&child)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(is_gone(&pid), "the plugin {} still runs", pid.trim());
    assert!(
        is_gone(&child),
        "the plugin's own child {} still runs",
        child.trim()
    );
}

#[tokio::test]
async fn failing_exec_plugin_keeps_its_own_words() {
    let running = start_yaml(SCENARIO).await;
    let dir = tempfile::tempdir().unwrap();
    let plugin = script(
        dir.path(),
        "gke-gcloud-auth-plugin",
        "echo 'starting' >&2\necho 'error: gcloud login required' >&2\nexit 1\n",
    );
    let path = plugin_kubeconfig(&running, dir.path(), &plugin, "unused");
    let e = plugin_error(&options(Some(&path))).await;
    assert_eq!(e.kind, ErrorKind::AuthPlugin, "{}", e.message);
    assert!(
        e.message.contains("gke-gcloud-auth-plugin")
            && e.message.contains("error: gcloud login required"),
        "{}",
        e.message
    );
    assert_one_line(&e);

    // A plugin that answers with something else than a credential.
    let plugin = script(dir.path(), "chatty-plugin", "echo 'Welcome!'\n");
    let path = plugin_kubeconfig(&running, dir.path(), &plugin, "unused");
    let e = plugin_error(&options(Some(&path))).await;
    assert_eq!(e.kind, ErrorKind::AuthPlugin, "{}", e.message);
    assert!(e.message.contains("chatty-plugin"), "{}", e.message);
    assert_one_line(&e);
}

#[tokio::test]
async fn missing_exec_plugin_gives_the_install_hint() {
    let running = start_yaml(SCENARIO).await;
    let dir = tempfile::tempdir().unwrap();
    let hint =
        "Install gke-gcloud-auth-plugin with: gcloud components install gke-gcloud-auth-plugin";
    let path = plugin_kubeconfig(
        &running,
        dir.path(),
        Path::new("kube-rescue-no-such-auth-plugin"),
        hint,
    );
    let e = plugin_error(&options(Some(&path))).await;
    assert_eq!(e.kind, ErrorKind::AuthPlugin, "{}", e.message);
    assert!(
        e.message.contains("kube-rescue-no-such-auth-plugin") && e.message.contains(hint),
        "{}",
        e.message
    );
    assert_one_line(&e);
}

// ---------------------------------------------------------------------------------------------
// 3. The read-only gate

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "namespace": "default"}, "data": {"k": "v"}}),
    )
    .unwrap()
}

#[tokio::test]
async fn read_only_sends_no_write_at_all() {
    let running = start_yaml(SCENARIO).await;
    let opts = ConnectOptions {
        read_only: true,
        ..options(Some(&running.kubeconfig))
    };
    let cluster = connected(&opts, &no_env()).await;
    assert!(cluster.is_read_only());
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let before = last_seq(&running).await;

    let dry = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let mut refusals = Vec::new();
    refusals.push(
        cluster
            .call(
                "create configmap",
                configmaps.create(&dry, &config_map("probe")),
            )
            .await
            .map(|_| ()),
    );
    refusals.push(
        cluster
            .call(
                "patch configmap",
                configmaps.patch(
                    "settings",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"k": "changed"}})),
                ),
            )
            .await
            .map(|_| ()),
    );
    refusals.push(
        cluster
            .call(
                "replace configmap",
                configmaps.replace("settings", &PostParams::default(), &config_map("settings")),
            )
            .await
            .map(|_| ()),
    );
    refusals.push(
        cluster
            .call(
                "delete configmap",
                configmaps.delete("settings", &DeleteParams::default()),
            )
            .await
            .map(|_| ()),
    );
    refusals.push(
        cluster
            .call(
                "delete configmaps",
                configmaps.delete_collection(&DeleteParams::default(), &ListParams::default()),
            )
            .await
            .map(|_| ()),
    );
    let methods = ["POST", "PATCH", "PUT", "DELETE", "DELETE"];
    for (refusal, method) in refusals.into_iter().zip(methods) {
        let e = refusal.expect_err("a write in read-only mode must fail");
        assert_eq!(e.kind, ErrorKind::ReadOnly, "{method}: {}", e.message);
        assert!(
            e.message.contains(&format!(
                "read-only mode refused {method} /api/v1/namespaces/default/configmaps"
            )),
            "{}",
            e.message
        );
        assert_one_line(&e);
    }
    assert_eq!(cluster.gate().refused(), 5);

    // A write sent as a raw request is refused the same way, whatever its method's spelling.
    for method in ["POST", "OPTIONS-WRITE", "post"] {
        let request = http::Request::builder()
            .method(method)
            .uri("/api/v1/namespaces/default/configmaps?dryRun=All")
            .body(serde_json::to_vec(&config_map("raw")).unwrap())
            .unwrap();
        let e = cluster
            .call("raw write", cluster.client().request::<Value>(request))
            .await
            .expect_err("a raw write in read-only mode must fail");
        assert_eq!(e.kind, ErrorKind::ReadOnly, "{method}: {}", e.message);
    }
    assert_eq!(cluster.gate().refused(), 8);

    // Reads still work.
    let settings = cluster
        .call("get configmap", configmaps.get("settings"))
        .await
        .unwrap();
    assert_eq!(
        settings.data.unwrap().get("k").map(String::as_str),
        Some("v")
    );
    assert_eq!(list_nodes(&cluster).await.unwrap(), vec!["n1".to_string()]);

    let (log, _) = common::request_log(&running, before).await;
    assert_eq!(log.len(), 2, "only the two reads arrived: {log:?}");
    assert!(log.iter().all(|r| r["method"] == "GET"), "{log:?}");
    assert_eq!(cluster.gate().refused(), 8);
}

#[tokio::test]
async fn without_read_only_a_dry_run_reaches_the_apiserver() {
    let running = start_yaml(SCENARIO).await;
    let cluster = connected(&options(Some(&running.kubeconfig)), &no_env()).await;
    assert!(!cluster.is_read_only());
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let before = last_seq(&running).await;
    let dry = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let created = cluster
        .call(
            "create configmap",
            configmaps.create(&dry, &config_map("probe")),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("probe"));
    assert_eq!(cluster.gate().refused(), 0);
    let (log, _) = common::request_log(&running, before).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["method"], "POST");
    assert!(
        log[0]["query"].as_str().unwrap().contains("dryRun=All"),
        "{log:?}"
    );
    // Nothing was persisted, and the answer says so in its own kind.
    let e = cluster
        .call("get configmap", configmaps.get("probe"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{}", e.message);
    assert_eq!(e.code, Some(404));
}

// ---------------------------------------------------------------------------------------------
// 4. Real failures, classified

#[tokio::test]
async fn refused_connection_is_refused_fast() {
    let running = start_yaml(SCENARIO).await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "down",
        &kubeconfig(
            &[cluster_entry(
                "down",
                &format!("https://127.0.0.1:{port}"),
                running.sim.ca_pem(),
            )],
            &[token_user("u", running.sim.token())],
            &[context_entry("down", "down", "u", None)],
            Some("down"),
        ),
    );
    let cluster = connected(&options(Some(&path)), &no_env()).await;
    let started = Instant::now();
    let e = list_nodes(&cluster).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind, ErrorKind::Refused, "{}", e.message);
    assert!(e.message.starts_with("list nodes: "), "{}", e.message);
    assert_one_line(&e);
    assert!(
        took < common::bound(Duration::from_secs(1)),
        "took {took:?}"
    );
}

/// A kubeconfig for a server at `address`, trusting the simulator's CA.
fn kubeconfig_for(running: &Running, dir: &Path, address: std::net::SocketAddr) -> PathBuf {
    write(
        dir,
        "kubeconfig",
        &kubeconfig(
            &[cluster_entry(
                "there",
                &format!("https://{address}"),
                running.sim.ca_pem(),
            )],
            &[token_user("u", running.sim.token())],
            &[context_entry("there", "there", "u", None)],
            Some("there"),
        ),
    )
}

#[tokio::test]
async fn server_that_accepts_and_never_answers_times_out() {
    // What kubectl waits 165 s for: the TCP connection opens, and nothing else ever comes.
    let running = start_yaml(SCENARIO).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let opts = ConnectOptions {
        timeout: Duration::from_secs(1),
        ..options(Some(&kubeconfig_for(&running, dir.path(), address)))
    };
    let cluster = connected(&opts, &no_env()).await;
    let started = Instant::now();
    let e = list_nodes(&cluster).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind, ErrorKind::Timeout, "{}", e.message);
    assert_eq!(e.message, "list nodes: no answer within 1 s");
    assert!(
        took < common::bound(Duration::from_secs(1)),
        "took {took:?}"
    );
    held.abort();
}

#[tokio::test]
async fn server_that_closes_the_connection_is_disconnected() {
    // An apiserver going down mid-handshake: the connection opens and is closed at once.
    let running = start_yaml(SCENARIO).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let closing = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = kubeconfig_for(&running, dir.path(), address);
    let cluster = connected(&options(Some(&path)), &no_env()).await;
    let started = Instant::now();
    let e = list_nodes(&cluster).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind, ErrorKind::Disconnected, "{}", e.message);
    assert!(e.kind.is_unreachable() && e.kind.is_overload());
    assert_one_line(&e);
    assert!(
        took < common::bound(Duration::from_secs(1)),
        "took {took:?}"
    );
    closing.abort();
}

#[tokio::test]
async fn hung_apiserver_times_out_at_the_deadline() {
    let running = start_yaml(&format!(
        "{SCENARIO}faults:\n  - {{match: {{}}, hang: true}}\n"
    ))
    .await;
    let opts = ConnectOptions {
        timeout: Duration::from_secs(1),
        ..options(Some(&running.kubeconfig))
    };
    let cluster = connected(&opts, &no_env()).await;
    let started = Instant::now();
    let e = list_nodes(&cluster).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind, ErrorKind::Timeout, "{}", e.message);
    assert_eq!(e.message, "list nodes: no answer within 1 s");
    assert!(took >= Duration::from_millis(900), "took {took:?}");
    assert!(
        took < common::bound(Duration::from_secs(1)),
        "took {took:?}"
    );
}

#[tokio::test]
async fn wrong_certificate_authority_is_tls() {
    let running = start_yaml(SCENARIO).await;
    let other = start_yaml(SCENARIO).await;
    assert_ne!(running.sim.ca_pem(), other.sim.ca_pem());
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "wrong-ca",
        &kubeconfig(
            &[cluster_entry("sim", &running.sim.url(), other.sim.ca_pem())],
            &[token_user("u", running.sim.token())],
            &[context_entry("sim", "sim", "u", None)],
            Some("sim"),
        ),
    );
    let cluster = connected(&options(Some(&path)), &no_env()).await;
    let e = list_nodes(&cluster).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{}", e.message);
    assert!(e.message.contains("certificate-authority"), "{}", e.message);
    assert!(e.kind.is_unreachable());
    assert_one_line(&e);
}

#[tokio::test]
async fn wrong_token_is_unauthorized() {
    let running = start_yaml(SCENARIO).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "wrong-token",
        &kubeconfig(
            &[cluster_entry(
                "sim",
                &running.sim.url(),
                running.sim.ca_pem(),
            )],
            &[token_user("u", "not-the-token")],
            &[context_entry("sim", "sim", "u", None)],
            Some("sim"),
        ),
    );
    let cluster = connected(&options(Some(&path)), &no_env()).await;
    let e = list_nodes(&cluster).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized, "{}", e.message);
    assert_eq!(e.code, Some(401));
    assert!(e.message.starts_with("list nodes: 401"), "{}", e.message);
    assert_one_line(&e);
}

#[tokio::test]
async fn error_answers_are_classified_and_never_retried() {
    let running = start_yaml(&format!(
        "{SCENARIO}faults:\n  - {{match: {{resource: events}}, status: 403}}\n  - {{match: {{resource: configmaps}}, status: 429}}\n  - {{match: {{resource: nodes}}, status: 503}}\n"
    ))
    .await;
    let cluster = connected(&options(Some(&running.kubeconfig)), &no_env()).await;

    let events: Api<Event> = Api::all(cluster.client());
    let e = cluster
        .call("list events", events.list(&ListParams::default()))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{}", e.message);
    assert_eq!(e.code, Some(403));
    assert_one_line(&e);

    for (kind, code, path) in [
        (
            ErrorKind::TooManyRequests,
            429,
            "/api/v1/namespaces/default/configmaps",
        ),
        (ErrorKind::ServerError, 503, "/api/v1/nodes"),
    ] {
        let before = last_seq(&running).await;
        let e = if code == 429 {
            let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
            cluster
                .call("list configmaps", configmaps.list(&ListParams::default()))
                .await
                .map(|_| ())
                .unwrap_err()
        } else {
            list_nodes(&cluster).await.map(|_| ()).unwrap_err()
        };
        assert_eq!(e.kind, kind, "{}", e.message);
        assert_eq!(e.code, Some(code));
        assert!(e.kind.is_overload());
        assert_one_line(&e);
        // Give a retry, were there one, the time to arrive.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (log, _) = common::request_log(&running, before).await;
        assert_eq!(log.len(), 1, "exactly one request, no retry: {log:?}");
        assert_eq!(log[0]["path"], path);
        assert_eq!(log[0]["status"], code);
    }
}

#[tokio::test]
async fn unresolvable_server_is_dns() {
    let running = start_yaml(SCENARIO).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "nowhere",
        &kubeconfig(
            &[cluster_entry("nowhere", NOWHERE, running.sim.ca_pem())],
            &[token_user("u", "t")],
            &[context_entry("nowhere", "nowhere", "u", None)],
            Some("nowhere"),
        ),
    );
    let opts = ConnectOptions {
        timeout: Duration::from_secs(5),
        ..options(Some(&path))
    };
    let cluster = connected(&opts, &no_env()).await;
    let started = Instant::now();
    let e = list_nodes(&cluster).await.unwrap_err();
    let took = started.elapsed();
    eprintln!(
        "an unresolvable server gave {:?} after {took:?}: {}",
        e.kind, e.message
    );
    // `.invalid` never resolves (RFC 6761): the answer is a DNS failure, not a wait.
    assert_eq!(
        e.kind,
        ErrorKind::Dns,
        "{}: this machine's resolver did not answer NXDOMAIN for a .invalid name",
        e.message
    );
    assert!(e.kind.is_unreachable());
    assert_one_line(&e);
    assert!(
        took < common::bound(Duration::from_secs(5)),
        "took {took:?}"
    );
}

#[test]
fn kubeconfig_env_is_read_from_the_process_by_the_thin_wrapper() {
    // Only reads the process environment; never sets it.
    let env = KubeconfigEnv::from_process();
    assert_eq!(
        env.kubeconfig,
        std::env::var_os("KUBECONFIG").filter(|v: &OsString| !v.is_empty())
    );
    assert_eq!(env.home, std::env::var_os("HOME").map(PathBuf::from));
}
