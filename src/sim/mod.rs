//! A Kubernetes API simulator that real clients (kubectl, kube-rs) accept as Kubernetes:
//! served over HTTPS with a CA of its own and a bearer token, with real admission webhook
//! calls, a living cluster (kubelets, node lifecycle, auto-repair, apiserver restarts) and
//! scripted faults. `demo`, `sim` and the tests run on it; nothing here is used against a
//! real cluster.

pub mod admission;
pub mod api;
pub mod backends;
pub mod cluster;
pub mod errors;
pub mod events;
pub mod health;
pub mod kinds;
pub mod metrics;
pub mod rbac;
pub mod reconcile;
pub mod requestlog;
pub mod scenario;
/// Selectors are shared with the product code; the simulator keeps its path to them.
pub use crate::selector;
pub mod server;
pub mod store;
pub mod table;
pub mod timeline;
pub mod tls;

mod env;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use scenario::Scenario;
use server::Apiserver;

pub use api::{User, WriteOptions};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Scenario(#[from] scenario::ScenarioError),
    #[error("scenario {scenario}: object {index} ({kind} {name}): {reason}")]
    Object {
        scenario: String,
        index: usize,
        kind: String,
        name: String,
        reason: String,
    },
    #[error("could not listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("could not start the webhook backends: {0}")]
    Backends(std::io::Error),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("could not write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A running simulator. Dropping it without [`Simulator::stop`] leaves its tasks to end with
/// the runtime.
pub struct Simulator {
    api: Arc<Apiserver>,
    address: SocketAddr,
    ca_pem: String,
    context: String,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Simulator {
    /// Loads the scenario's objects, starts its webhook backends, the HTTPS listener, the
    /// living cluster and the timeline. Returns once connections are accepted.
    pub async fn start(mut scenario: Scenario, listen: SocketAddr) -> Result<Simulator> {
        let backends = backends::BackendServers::start(&scenario.backends)
            .await
            .map_err(Error::Backends)?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        let api = Arc::new(Apiserver::new(
            token,
            scenario.apiserver.git_version.clone(),
            backends,
        ));
        seed(&api, &mut scenario)?;
        *api.faults() = scenario.faults.clone();
        *api.deny() = scenario.deny.clone();
        *api.users() = scenario.users.clone();

        let listener = server::listen(listen).map_err(|source| Error::Listen {
            addr: listen,
            source,
        })?;
        let address = listener.local_addr().map_err(|source| Error::Listen {
            addr: listen,
            source,
        })?;
        let identity = tls::ServerIdentity::generate("kube-rescue-sim", Some(address.ip()))?;
        let tls_config = identity.server_config()?;
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        {
            let api = api.clone();
            let shutdown = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = server::serve(api, listener, tls_config, shutdown).await {
                    tracing::error!(%e, "the simulated apiserver stopped");
                }
            }));
        }
        let control_plane =
            cluster::ControlPlane::new(api.clone(), scenario.cluster.clone(), shutdown.clone());
        tasks.extend(cluster::start(control_plane.clone()));
        tasks.push(timeline::start(control_plane, scenario.timeline.clone()));
        tasks.extend(reconcile::start(&api, &scenario.reconcile, &shutdown));
        tracing::info!(scenario = %scenario.name, %address, "simulator started");
        Ok(Simulator {
            api,
            address,
            ca_pem: identity.ca_pem,
            context: format!("kube-rescue-sim-{}", scenario.name),
            shutdown,
            tasks,
        })
    }

    /// Where the apiserver listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// The CA that signed the apiserver's certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The bearer token the apiserver accepts.
    pub fn token(&self) -> &str {
        self.api.token()
    }

    /// The simulated apiserver, for tests and the demo.
    pub fn apiserver(&self) -> &Arc<Apiserver> {
        &self.api
    }

    /// A kubeconfig for this simulator (TLS verified against its CA).
    pub fn kubeconfig(&self) -> String {
        tls::kubeconfig_yaml(&self.context, self.address, &self.ca_pem, self.api.token())
    }

    /// A kubeconfig that authenticates as the scenario user `name` (None: no such user). Its
    /// context is named after the simulator's with `-<name>` appended.
    pub fn user_kubeconfig(&self, name: &str) -> Option<String> {
        let token = self
            .api
            .users()
            .iter()
            .find(|u| u.name == name)
            .map(|u| u.token.clone())?;
        let context = format!("{}-{}", self.context, dns_safe(name));
        Some(tls::kubeconfig_yaml(
            &context,
            self.address,
            &self.ca_pem,
            &token,
        ))
    }

    /// Writes the kubeconfig atomically, mode 0600.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<()> {
        tls::write_atomically(path, &self.kubeconfig()).map_err(|source| Error::Write {
            path: path.display().to_string(),
            source,
        })
    }

    /// Stops serving and ends every task of the simulator.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
        }
    }
}

/// A user name as a kubeconfig name part: `alice@example.com` -> `alice-example-com`.
fn dns_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// Namespaces first, then everything else in the scenario's order, straight into the store
/// (a scenario describes the cluster as it is; its objects are not admitted).
fn seed(api: &Apiserver, scenario: &mut Scenario) -> Result<()> {
    let is_namespace = |o: &Value| o["kind"] == "Namespace" && o["apiVersion"] == "v1";
    let objects = std::mem::take(&mut scenario.objects);
    // An apiserver always has its system namespaces, whatever the scenario lists.
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let listed = objects
            .iter()
            .any(|o| is_namespace(o) && o["metadata"]["name"] == name);
        if !listed {
            let namespace = serde_json::json!({
                "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
            });
            api.seed(namespace).map_err(|reason| Error::Object {
                scenario: scenario.name.clone(),
                index: 0,
                kind: "Namespace".into(),
                name: name.into(),
                reason,
            })?;
        }
    }
    let (namespaces, rest): (Vec<_>, Vec<_>) = objects
        .into_iter()
        .enumerate()
        .partition(|(_, o)| is_namespace(o));
    for (index, object) in namespaces.into_iter().chain(rest) {
        let kind = object["kind"].as_str().unwrap_or("?").to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("?")
            .to_string();
        api.seed(object).map_err(|reason| Error::Object {
            scenario: scenario.name.clone(),
            index,
            kind,
            name,
            reason,
        })?;
    }
    // The bootstrap RBAC policy, unless the scenario describes those objects itself.
    for object in rbac::bootstrap_policy() {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let storage = if kind == "ClusterRole" {
            "clusterroles"
        } else {
            "clusterrolebindings"
        };
        if api.store().get(storage, "", name).is_some() {
            continue;
        }
        api.seed(object.clone()).map_err(|reason| Error::Object {
            scenario: scenario.name.clone(),
            index: 0,
            kind: kind.into(),
            name: name.into(),
            reason,
        })?;
    }
    api.link_owner_references();
    Ok(())
}
