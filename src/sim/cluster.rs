//! The living cluster: virtual kubelets that renew their Lease and post node status through
//! the API (so through admission), the node lifecycle controller that marks silent nodes
//! Unknown and taints them, auto-repair that deletes and recreates nodes that stay NotReady,
//! and apiserver restarts that run the ca-registration post-start hook. Everything is driven
//! by the scenario's timings; nothing here bypasses admission except event recording.
//!
//! One simplification: a kubelet posts its node status when its own view changes (it starts,
//! its heartbeat comes back after failing) or every `nodeStatusReportSeconds`, not whenever the
//! stored status differs from its own.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::api::{PatchType, Preconditions, User, WriteOptions};
use super::health::Endpoint;
use super::kinds::{self, Kind};
use super::scenario::ClusterTimings;
use super::server::Apiserver;
use super::store::now_rfc3339;

const CA_REGISTRATION: &str = "poststarthook/ca-registration";
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

fn kind(group: &str, plural: &str) -> &'static Kind {
    kinds::KINDS
        .iter()
        .find(|k| k.group == group && k.plural == plural)
        .expect("the simulator serves this kind")
}

fn nodes() -> &'static Kind {
    kind("", "nodes")
}

fn leases() -> &'static Kind {
    kind("coordination.k8s.io", "leases")
}

fn configmaps() -> &'static Kind {
    kind("", "configmaps")
}

fn events_kind() -> &'static Kind {
    kind("", "events")
}

/// Microsecond timestamps, as Lease renewTime carries them.
fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn seconds_since(timestamp: &Value) -> Option<f64> {
    let t: jiff::Timestamp = timestamp.as_str()?.parse().ok()?;
    let now = jiff::Timestamp::now();
    Some((now.as_millisecond() - t.as_millisecond()) as f64 / 1000.0)
}

fn ready_condition(node: &Value) -> Option<&Value> {
    node["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
}

/// The Ready condition's status: "True", "False", "Unknown", or "" without one.
pub fn ready_status(node: &Value) -> &str {
    ready_condition(node)
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
}

#[derive(Debug, Default)]
struct Kubelet {
    /// The node's VM is being recreated; the kubelet registers again after this.
    booting_until: Option<Instant>,
    /// The last heartbeat failed, so the next good one posts node status too.
    heartbeat_failed: bool,
    last_status_post: Option<Instant>,
    /// The node as first seen: what a recreated VM registers again.
    template: Value,
    running: bool,
}

#[derive(Default)]
struct State {
    kubelets: BTreeMap<String, Kubelet>,
    /// Node uid -> when it was first seen not Ready.
    not_ready_since: HashMap<String, Instant>,
    restarting: bool,
}

/// The controllers of the simulated cluster, shared by their tasks and the timeline.
#[derive(Clone)]
pub struct ControlPlane {
    inner: Arc<Inner>,
}

struct Inner {
    api: Arc<Apiserver>,
    timings: ClusterTimings,
    state: Mutex<State>,
    shutdown: CancellationToken,
}

impl ControlPlane {
    pub fn new(api: Arc<Apiserver>, timings: ClusterTimings, shutdown: CancellationToken) -> Self {
        let mut state = State::default();
        for (_, node) in api.store().list("nodes", None) {
            let name = node["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            state.kubelets.insert(
                name,
                Kubelet {
                    template: node.clone(),
                    ..Default::default()
                },
            );
        }
        ControlPlane {
            inner: Arc::new(Inner {
                api,
                timings,
                state: Mutex::new(state),
                shutdown,
            }),
        }
    }

    /// Cancelled when the simulator stops.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    pub fn api(&self) -> &Arc<Apiserver> {
        &self.inner.api
    }

    pub fn timings(&self) -> &ClusterTimings {
        &self.inner.timings
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A period from the scenario, never zero (a zero interval would spin).
    fn secs(d: Duration) -> Duration {
        d.max(Duration::from_millis(50))
    }

    /// Records an event about a node, as the node controller does. Events are written
    /// straight to the store so the evidence survives a webhook that blocks writes.
    pub fn record_node_event(
        &self,
        node: &str,
        uid: &str,
        reason: &str,
        message: &str,
        kind_of: &str,
    ) {
        let now = now_rfc3339();
        let suffix = format!("{:x}", uuid::Uuid::new_v4().as_u128() & 0xffff_ffff_ffff);
        let event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{node}.{suffix}"), "namespace": "default"},
            "involvedObject": {"kind": "Node", "name": node, "uid": uid, "apiVersion": "v1"},
            "reason": reason, "message": message, "type": kind_of,
            "source": {"component": "node-controller"},
            "reportingComponent": "node-controller", "reportingInstance": "",
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        });
        if let Err(e) = self.api().seed(event) {
            tracing::warn!(%e, "could not record an event");
        }
    }

    fn node_user(node: &str) -> WriteOptions {
        WriteOptions::as_user(User {
            username: format!("system:node:{node}"),
            groups: vec!["system:nodes".into(), "system:authenticated".into()],
        })
    }

    fn controller_user() -> WriteOptions {
        WriteOptions::as_user(User::component(
            "system:serviceaccount:kube-system:node-controller",
        ))
    }

    /// One kubelet heartbeat: register the node if it is missing, renew the Lease, and post
    /// node status when the kubelet's view changed.
    async fn kubelet_tick(&self, name: &str) {
        let api = self.api().clone();
        let template = {
            let mut state = self.state();
            let Some(k) = state.kubelets.get_mut(name) else {
                return;
            };
            if let Some(until) = k.booting_until {
                if until > Instant::now() {
                    return;
                }
                k.booting_until = None;
            }
            if !api.is_up() {
                k.heartbeat_failed = true;
                return;
            }
            k.template.clone()
        };
        let existing = api.get_object(nodes(), "", name).ok();
        let node = match existing {
            Some(node) => node,
            None => match self.register(name, &template).await {
                Some(node) => node,
                None => return,
            },
        };
        // Status goes out on its own schedule, whatever the Lease does (a kubelet posts status
        // and renews its Lease on separate loops: a renewal stuck in admission does not hold
        // the status back)...
        let due = {
            let state = self.state();
            let report = Self::secs(self.timings().node_status_report_seconds);
            state
                .kubelets
                .get(name)
                .is_some_and(|k| k.last_status_post.is_none_or(|t| t.elapsed() >= report))
        };
        if due {
            self.post_status(name, &node).await;
        }
        let renewed = self.renew_lease(name, &node).await;
        // ...and at once when the heartbeat recovers.
        let recovered = {
            let mut state = self.state();
            let Some(k) = state.kubelets.get_mut(name) else {
                return;
            };
            let recovered = renewed && k.heartbeat_failed;
            k.heartbeat_failed = !renewed;
            recovered
        };
        if recovered {
            self.post_status(name, &node).await;
        }
    }

    /// Posts the kubelet's Ready status and notes when.
    async fn post_status(&self, name: &str, node: &Value) {
        if self.post_ready(name, node).await
            && let Some(k) = self.state().kubelets.get_mut(name)
        {
            k.last_status_post = Some(Instant::now());
        }
    }

    /// Creates the Node object, as a kubelet registers itself (through admission).
    async fn register(&self, name: &str, template: &Value) -> Option<Value> {
        let mut node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": template["metadata"]["labels"].clone(),
                         "annotations": template["metadata"]["annotations"].clone()},
            "spec": template["spec"].clone(),
            "status": template["status"].clone(),
        });
        if let Some(spec) = node["spec"].as_object_mut() {
            spec.remove("taints");
            spec.remove("unschedulable");
        }
        if node["metadata"]["annotations"].is_null() {
            node["metadata"].as_object_mut()?.remove("annotations");
        }
        node["status"]["conditions"] = json!(Self::conditions(None, "True"));
        match self
            .api()
            .create(nodes(), "", node, &Self::node_user(name))
            .await
        {
            Ok(created) => {
                let uid = created["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                self.record_node_event(
                    name,
                    &uid,
                    "RegisteredNode",
                    &format!("Registered Node {name} in Controller"),
                    "Normal",
                );
                if let Some(k) = self.state().kubelets.get_mut(name) {
                    k.last_status_post = Some(Instant::now());
                }
                tracing::info!(node = name, "node registered");
                Some(created)
            }
            Err(e) => {
                tracing::info!(node = name, error = %e.message, "node registration failed");
                if let Some(k) = self.state().kubelets.get_mut(name) {
                    k.heartbeat_failed = true;
                }
                None
            }
        }
    }

    /// The node conditions a kubelet posts, keeping transition times that did not change.
    fn conditions(old: Option<&Value>, ready: &str) -> Vec<Value> {
        let now = now_rfc3339();
        let previous = |t: &str| -> Option<Value> {
            old?["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == t)
                .cloned()
        };
        let condition = |t: &str, status: &str, reason: &str, message: &str| {
            let transition = previous(t)
                .filter(|c| c["status"] == status)
                .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_string))
                .unwrap_or_else(|| now.clone());
            json!({"type": t, "status": status, "lastHeartbeatTime": now,
                   "lastTransitionTime": transition, "reason": reason, "message": message})
        };
        vec![
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            condition(
                "Ready",
                ready,
                "KubeletReady",
                "kubelet is posting ready status",
            ),
        ]
    }

    async fn renew_lease(&self, name: &str, node: &Value) -> bool {
        let api = self.api();
        let options = Self::node_user(name);
        let duration = self.timings().lease_duration_seconds.as_secs().max(1) as i64;
        match api.get_object(leases(), NODE_LEASE_NAMESPACE, name) {
            Ok(lease) => {
                let mut renewed = lease.clone();
                renewed["spec"]["renewTime"] = json!(now_micro());
                renewed["spec"]["holderIdentity"] = json!(name);
                renewed["spec"]["leaseDurationSeconds"] = json!(duration);
                match api
                    .update(leases(), NODE_LEASE_NAMESPACE, name, "", renewed, &options)
                    .await
                {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::info!(node = name, error = %e.message, "lease renewal failed");
                        false
                    }
                }
            }
            Err(_) => {
                let lease = json!({
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": name, "namespace": NODE_LEASE_NAMESPACE,
                        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name,
                            "uid": node["metadata"]["uid"], "controller": false, "blockOwnerDeletion": false}]},
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": duration, "renewTime": now_micro()},
                });
                match api
                    .create(leases(), NODE_LEASE_NAMESPACE, lease, &options)
                    .await
                {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::info!(node = name, error = %e.message, "lease creation failed");
                        false
                    }
                }
            }
        }
    }

    async fn post_ready(&self, name: &str, node: &Value) -> bool {
        let patch = json!({"status": {"conditions": Self::conditions(Some(node), "True")}});
        match self
            .api()
            .patch(
                nodes(),
                "",
                name,
                "status",
                PatchType::StrategicMerge,
                patch,
                &Self::node_user(name),
            )
            .await
        {
            Ok(_) => true,
            Err(e) => {
                tracing::info!(node = name, error = %e.message, "node status update failed");
                false
            }
        }
    }

    /// The node lifecycle controller's pass: silent nodes become Unknown and tainted,
    /// recovered nodes lose the taint, and auto-repair recreates nodes NotReady too long.
    async fn lifecycle_tick(&self) {
        let api = self.api().clone();
        if !api.is_up() {
            return;
        }
        let grace = self
            .timings()
            .node_monitor_grace_period_seconds
            .as_secs_f64();
        let all: Vec<Value> = api
            .store()
            .list("nodes", None)
            .map(|(_, n)| n.clone())
            .collect();
        let mut seen = Vec::new();
        for node in all {
            let name = node["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let uid = node["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            seen.push(uid.clone());
            let lease_age = api
                .store()
                .get("leases", NODE_LEASE_NAMESPACE, &name)
                .and_then(|l| seconds_since(&l["spec"]["renewTime"]));
            let status_age =
                ready_condition(&node).and_then(|c| seconds_since(&c["lastHeartbeatTime"]));
            // A node never heard from is given the grace period from its creation, as the
            // node lifecycle controller probes it from creationTimestamp.
            let age = match (lease_age, status_age) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a
                    .or(b)
                    .or_else(|| seconds_since(&node["metadata"]["creationTimestamp"]))
                    .unwrap_or(f64::MAX),
            };
            let ready = ready_status(&node).to_string();
            if age > grace && ready != "Unknown" {
                self.mark_unknown(&name, &uid, &node).await;
            } else if ready == "True" && has_unreachable_taint(&node) {
                self.set_unreachable_taint(&name, &node, false).await;
            }
            let ready_now = api
                .store()
                .get("nodes", "", &name)
                .map(|n| ready_status(n) == "True")
                .unwrap_or(true);
            let repair_after = self.timings().auto_repair_after_seconds;
            let due = {
                let mut state = self.state();
                if ready_now {
                    state.not_ready_since.remove(&uid);
                    false
                } else {
                    let since = *state
                        .not_ready_since
                        .entry(uid.clone())
                        .or_insert_with(Instant::now);
                    !repair_after.is_zero() && since.elapsed() >= repair_after
                }
            };
            if due {
                self.repair(&name, Some(&uid)).await;
            }
        }
        self.state()
            .not_ready_since
            .retain(|uid, _| seen.contains(uid));
    }

    async fn mark_unknown(&self, name: &str, uid: &str, node: &Value) {
        let now = now_rfc3339();
        let mut conditions: Vec<Value> = node["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|mut c| {
                if c["status"] != "Unknown" {
                    c["lastTransitionTime"] = json!(now);
                }
                c["status"] = json!("Unknown");
                c["reason"] = json!("NodeStatusUnknown");
                c["message"] = json!("Kubelet stopped posting node status.");
                c
            })
            .collect();
        for t in ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"] {
            if !conditions.iter().any(|c| c["type"] == t) {
                conditions.push(
                    json!({"type": t, "status": "Unknown", "lastHeartbeatTime": now,
                    "lastTransitionTime": now, "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status."}),
                );
            }
        }
        let patch = json!({"status": {"conditions": conditions}});
        let result = self
            .api()
            .patch(
                nodes(),
                "",
                name,
                "status",
                PatchType::StrategicMerge,
                patch,
                &Self::controller_user(),
            )
            .await;
        match result {
            Ok(updated) => {
                self.record_node_event(
                    name,
                    uid,
                    "NodeNotReady",
                    &format!("Node {name} status is now: NodeNotReady"),
                    "Normal",
                );
                tracing::info!(node = name, "node marked Unknown");
                self.set_unreachable_taint(name, &updated, true).await;
            }
            Err(e) => {
                tracing::info!(node = name, error = %e.message, "could not mark the node Unknown")
            }
        }
    }

    async fn set_unreachable_taint(&self, name: &str, node: &Value, present: bool) {
        let mut taints: Vec<Value> = node["spec"]["taints"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t["key"] != "node.kubernetes.io/unreachable")
            .collect();
        if present {
            let now = now_rfc3339();
            taints.push(json!({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}));
            taints.push(json!({"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": now}));
        }
        let patch = json!({"spec": {"taints": if taints.is_empty() { Value::Null } else { json!(taints) }}});
        if let Err(e) = self
            .api()
            .patch(
                nodes(),
                "",
                name,
                "",
                PatchType::Merge,
                patch,
                &Self::controller_user(),
            )
            .await
        {
            tracing::info!(node = name, error = %e.message, "could not change the node's taints");
        }
    }

    /// Deletes a node and lets its VM come back: the kubelet registers the same name again
    /// after `autoRepairDownSeconds`, so the new Node has a new uid.
    pub async fn repair(&self, name: &str, uid: Option<&str>) {
        let api = self.api().clone();
        let current = api.get_object(nodes(), "", name).ok();
        let preconditions = Preconditions {
            uid: uid.map(str::to_string),
            resource_version: None,
        };
        {
            let mut state = self.state();
            let template = current.clone().unwrap_or_else(|| {
                let mut t = state
                    .kubelets
                    .values()
                    .next()
                    .map(|k| k.template.clone())
                    .unwrap_or_else(|| json!({"metadata": {}}));
                t["metadata"]["name"] = json!(name);
                if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
                    labels.insert("kubernetes.io/hostname".into(), json!(name));
                }
                t
            });
            let kubelet = state
                .kubelets
                .entry(name.to_string())
                .or_insert_with(|| Kubelet {
                    template,
                    ..Default::default()
                });
            kubelet.booting_until =
                Some(Instant::now() + Self::secs(self.timings().auto_repair_down_seconds));
            kubelet.heartbeat_failed = true;
        }
        if let Some(node) = current {
            let uid = node["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match api
                .delete(nodes(), "", name, &preconditions, &Self::controller_user())
                .await
            {
                Ok(_) => {
                    let _ = api.delete_unadmitted(leases(), NODE_LEASE_NAMESPACE, name);
                    self.state().not_ready_since.remove(&uid);
                    self.record_node_event(
                        name,
                        &uid,
                        "RemovingNode",
                        &format!("Removing Node {name} from Controller"),
                        "Normal",
                    );
                    tracing::info!(node = name, "node deleted for repair");
                }
                Err(e) => {
                    tracing::info!(node = name, error = %e.message, "auto-repair could not delete the node")
                }
            }
        }
        self.ensure_kubelet(name);
    }

    /// Starts the kubelet loop for a node that has none yet.
    fn ensure_kubelet(&self, name: &str) {
        let start = {
            let mut state = self.state();
            match state.kubelets.get_mut(name) {
                Some(k) if !k.running && self.timings().kubelets => {
                    k.running = true;
                    true
                }
                _ => false,
            }
        };
        if start {
            let shutdown = self.inner.shutdown.clone();
            let plane = self.clone();
            let name = name.to_string();
            tokio::spawn(async move { plane.kubelet_loop(name, shutdown).await });
        }
    }

    async fn kubelet_loop(self, name: String, shutdown: CancellationToken) {
        let period = Self::secs(self.timings().lease_renew_seconds);
        // Spread the kubelets over the period so they do not all write at once.
        let offset = (name.bytes().map(u64::from).sum::<u64>() % 1000) as f64 / 1000.0;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(period.mul_f64(offset)) => {}
        }
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.kubelet_tick(&name) => {}
            }
        }
    }

    /// An apiserver restart: refused connections for a while, then the post-start hooks. The
    /// ca-registration hook updates kube-system/extension-apiserver-authentication through
    /// admission, retrying until its deadline; when it fails, /livez and /readyz report it and,
    /// with `crashLoopOnHookFailure`, the apiserver exits and restarts again.
    pub async fn restart_apiserver(&self) {
        let shutdown = self.inner.shutdown.clone();
        {
            let mut state = self.state();
            if state.restarting {
                return;
            }
            state.restarting = true;
        }
        let api = self.api().clone();
        loop {
            let down = Self::secs(self.timings().apiserver_restart_down_seconds);
            tracing::info!("apiserver restarting");
            api.go_down(down);
            {
                let mut health = api.health();
                health.fail(Endpoint::Livez, CA_REGISTRATION, "not finished");
                health.fail(Endpoint::Readyz, CA_REGISTRATION, "not finished");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(down) => {}
            }
            let deadline =
                Instant::now() + Self::secs(self.timings().ca_registration_timeout_seconds);
            let mut registered = false;
            while Instant::now() < deadline && !shutdown.is_cancelled() {
                match self.register_client_ca().await {
                    Ok(()) => {
                        registered = true;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "unable to initialize client CA configmap");
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
            if registered {
                let mut health = api.health();
                health.pass(Endpoint::Livez, CA_REGISTRATION);
                health.pass(Endpoint::Readyz, CA_REGISTRATION);
                tracing::info!("apiserver started; ca-registration done");
                break;
            }
            tracing::error!(
                "PostStartHook \"ca-registration\" failed: unable to initialize client CA configmap: timed out waiting for the condition"
            );
            if !self.timings().crash_loop_on_hook_failure || shutdown.is_cancelled() {
                break;
            }
        }
        self.state().restarting = false;
    }

    async fn register_client_ca(&self) -> Result<(), String> {
        let api = self.api();
        let options = WriteOptions::as_user(User {
            username: "system:apiserver".into(),
            groups: vec!["system:masters".into()],
        });
        let name = "extension-apiserver-authentication";
        let ca = "-----BEGIN CERTIFICATE-----\n(simulated client CA)\n-----END CERTIFICATE-----\n";
        match api.get_object(configmaps(), "kube-system", name) {
            Ok(mut cm) => {
                cm["data"]["client-ca-file"] = json!(ca);
                api.update(configmaps(), "kube-system", name, "", cm, &options)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.message)
            }
            Err(_) => {
                let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": "kube-system"},
                    "data": {"client-ca-file": ca}});
                api.create(configmaps(), "kube-system", cm, &options)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.message)
            }
        }
    }

    /// Deletes and recreates the named nodes now (the timeline's `recreateNodes`).
    pub async fn recreate_nodes(&self, names: &[String]) {
        for name in names {
            self.repair(name, None).await;
        }
    }

    /// How many events the simulated controllers have recorded so far (tests).
    pub fn event_count(&self) -> usize {
        self.api().store().count(events_kind().storage)
    }
}

fn has_unreachable_taint(node: &Value) -> bool {
    node["spec"]["taints"].as_array().is_some_and(|ts| {
        ts.iter()
            .any(|t| t["key"] == "node.kubernetes.io/unreachable")
    })
}

/// Starts the kubelets and the node lifecycle controller. They stop with `shutdown`.
pub fn start(plane: ControlPlane) -> Vec<JoinHandle<()>> {
    let shutdown = plane.inner.shutdown.clone();
    let mut tasks = Vec::new();
    let names: Vec<String> = plane.state().kubelets.keys().cloned().collect();
    for name in names {
        plane.ensure_kubelet(&name);
    }
    if plane.timings().node_lifecycle {
        let plane = plane.clone();
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(ControlPlane::secs(
                plane.timings().node_monitor_period_seconds,
            ));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {}
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = plane.lifecycle_tick() => {}
                }
            }
        }));
    }
    tasks
}
