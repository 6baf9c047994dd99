//! The generated `large` scenario: thousands of nodes, hundreds of webhooks and tens of
//! thousands of events, healthy, to measure refresh cost. Deterministic apart from timestamps.

use std::time::Duration;

use serde_json::{Value, json};

use super::{
    ApiserverSpec, BackendSpec, Behavior, ClusterTimings, Result, Scenario, ScenarioError,
    format_micro_time, format_time,
};

/// Size of the generated cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LargeParams {
    pub nodes: usize,
    pub webhooks: usize,
    pub events: usize,
}

impl Default for LargeParams {
    fn default() -> Self {
        LargeParams {
            nodes: 5000,
            webhooks: 300,
            events: 50_000,
        }
    }
}

const MAX_NODES: usize = 100_000;
const MAX_WEBHOOKS: usize = 10_000;
const MAX_EVENTS: usize = 1_000_000;

impl LargeParams {
    /// `large` or `large:nodes=5000,webhooks=300,events=50000` (any subset, any order).
    pub fn parse(text: &str) -> Result<LargeParams> {
        let bad = |message: String| ScenarioError::LargeParams {
            text: text.to_owned(),
            message,
        };
        let mut params = LargeParams::default();
        let Some(rest) = text.strip_prefix("large") else {
            return Err(bad("does not start with `large`".to_owned()));
        };
        let rest = match rest {
            "" => return Ok(params),
            r => r
                .strip_prefix(':')
                .ok_or_else(|| bad("expected `:` after `large`".to_owned()))?,
        };
        for pair in rest.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("{pair:?} is not key=value")))?;
            let number: usize = value
                .trim()
                .parse()
                .map_err(|_| bad(format!("{value:?} is not a whole number")))?;
            let (slot, max) = match key.trim() {
                "nodes" => (&mut params.nodes, MAX_NODES),
                "webhooks" => (&mut params.webhooks, MAX_WEBHOOKS),
                "events" => (&mut params.events, MAX_EVENTS),
                other => {
                    return Err(bad(format!(
                        "unknown parameter {other:?}; known: nodes, webhooks, events"
                    )));
                }
            };
            if number > max {
                return Err(bad(format!("{key}={number} is above the limit of {max}")));
            }
            *slot = number;
        }
        Ok(params)
    }
}

/// A small deterministic generator (SplitMix64), so the same parameters give the same cluster.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items
            .get(self.below(items.len()))
            .copied()
            .unwrap_or_default()
    }
}

const ZONES: &[&str] = &[
    "us-central1-a",
    "us-central1-b",
    "us-central1-c",
    "us-central1-f",
];
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];
const APP_NAMESPACES: usize = 40;

const NORMAL: &[(&str, &str, &str)] = &[
    (
        "Scheduled",
        "Pod",
        "Successfully assigned {ns}/{obj} to {node}",
    ),
    (
        "Pulled",
        "Pod",
        "Container image \"registry.example.com/app:1.4.2\" already present on machine",
    ),
    ("Created", "Pod", "Created container app"),
    ("Started", "Pod", "Started container app"),
    ("Killing", "Pod", "Stopping container app"),
    (
        "SuccessfulCreate",
        "ReplicaSet",
        "Created pod: {obj}-7d9f8b6c5-x2x9k",
    ),
    (
        "ScalingReplicaSet",
        "Deployment",
        "Scaled up replica set {obj}-7d9f8b6c5 to 3",
    ),
    (
        "RegisteredNode",
        "Node",
        "Registered Node {node} in Controller",
    ),
    ("NodeReady", "Node", "Node {node} status is now: NodeReady"),
];
const WARNING: &[(&str, &str, &str)] = &[
    (
        "BackOff",
        "Pod",
        "Back-off restarting failed container app in pod {obj}_{ns}",
    ),
    (
        "FailedScheduling",
        "Pod",
        "0/{nodes} nodes are available: 3 Insufficient cpu. preemption: 0/{nodes} nodes are available: 3 No preemption victims found for incoming pod.",
    ),
    (
        "Unhealthy",
        "Pod",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
    ),
    (
        "FailedMount",
        "Pod",
        "MountVolume.SetUp failed for volume \"config\" : configmap \"{obj}-config\" not found",
    ),
    ("NodeNotReady", "Pod", "Node is not ready"),
];

/// Generate the large scenario. Takes well under a second for the default size in a release
/// build.
pub fn large(params: LargeParams) -> Scenario {
    let now = jiff::Timestamp::now();
    let stamp = |ago: i64| {
        let t = now
            .checked_sub(jiff::SignedDuration::from_secs(ago))
            .unwrap_or(now);
        format_time(t)
    };
    let created = stamp(86_400 * 30);
    let renew = format_micro_time(now);
    let mut rng = Rng(0x05EE_D0F1_A26E);
    let pods = params.nodes / 10;
    let configs = params.webhooks.div_ceil(3).min(100);
    let mut objects = Vec::with_capacity(
        SYSTEM_NAMESPACES.len()
            + APP_NAMESPACES
            + params.nodes * 2
            + pods
            + params.events
            + configs * 4
            + 4,
    );

    let app_namespaces: Vec<String> = (0..APP_NAMESPACES)
        .map(|i| format!("team-{i:02}"))
        .collect();
    for ns in SYSTEM_NAMESPACES
        .iter()
        .map(|s| (*s).to_owned())
        .chain(app_namespaces.iter().cloned())
    {
        objects.push(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "creationTimestamp": created,
                         "labels": {"kubernetes.io/metadata.name": ns}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}
        }));
    }

    let node_names: Vec<String> = (0..params.nodes)
        .map(|i| format!("gke-large-pool-{}-{:08x}", i % 8 + 1, rng.next() as u32))
        .collect();
    for (i, name) in node_names.iter().enumerate() {
        let zone = ZONES[i % ZONES.len()];
        let ip = format!("10.{}.{}.{}", 128 + i / 65_536 % 64, i / 256 % 256, i % 256);
        objects.push(node(name, zone, &ip, &created, &stamp(20)));
        objects.push(json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease", "creationTimestamp": created,
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name,
                                              "uid": format!("{:032x}", i)}]},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": renew}
        }));
    }

    for i in 0..pods {
        let ns = &app_namespaces[i % APP_NAMESPACES];
        let node = node_names
            .get(i * 10)
            .map(String::as_str)
            .unwrap_or_default();
        objects.push(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("app-{i:05}-7d9f8b6c5-{:05x}", rng.next() as u32 & 0xfffff),
                         "namespace": ns, "creationTimestamp": created,
                         "labels": {"app": format!("app-{i:05}")}},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "registry.example.com/app:1.4.2"}]},
            "status": {"phase": "Running", "podIP": format!("10.64.{}.{}", i / 256 % 256, i % 256),
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }));
    }

    let mut backends = Vec::with_capacity(configs);
    let mut remaining = params.webhooks;
    for c in 0..configs {
        let per = remaining.div_ceil(configs - c);
        remaining -= per;
        let ns = format!("webhooks-{c:03}");
        objects.push(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "creationTimestamp": created,
                         "labels": {"kubernetes.io/metadata.name": ns, "webhook-backend": "true"}},
            "status": {"phase": "Active"}
        }));
        let ip = format!("10.96.{}.{}", c / 256, c % 256 + 1);
        objects.push(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "webhook", "namespace": ns, "creationTimestamp": created},
            "spec": {"clusterIP": ip, "ports": [{"port": 443, "targetPort": 8443, "protocol": "TCP"}],
                     "selector": {"app": "webhook"}}
        }));
        objects.push(json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "webhook", "namespace": ns, "creationTimestamp": created},
            "subsets": [{"addresses": [{"ip": format!("10.65.{}.{}", c / 256, c % 256 + 1)}],
                         "ports": [{"port": 8443, "protocol": "TCP"}]}]
        }));
        backends.push(BackendSpec {
            service: Some(format!("{ns}/webhook")),
            url: None,
            webhook: None,
            behavior: Behavior::Allow,
            latency_ms: 0,
            message: None,
            forward: None,
        });
        let validating = c % 3 != 0;
        let hooks: Vec<Value> = (0..per)
            .map(|h| webhook(&mut rng, c, h, &ns, validating))
            .collect();
        let (kind, name) = if validating {
            ("ValidatingWebhookConfiguration", format!("policy-{c:03}"))
        } else {
            ("MutatingWebhookConfiguration", format!("inject-{c:03}"))
        };
        objects.push(json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": {"name": name, "creationTimestamp": created},
            "webhooks": hooks
        }));
    }

    objects.push(json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1beta1.metrics.k8s.io", "creationTimestamp": created},
        "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                 "versionPriority": 100, "insecureSkipTLSVerify": true,
                 "service": {"name": "metrics-server", "namespace": "kube-system", "port": 443}},
        "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Passed",
                                   "message": "all checks passed", "lastTransitionTime": created}]}
    }));

    let node_count = params.nodes.to_string();
    for _ in 0..params.events {
        let warning = rng.below(5) == 0;
        let (reason, kind, template) = if warning {
            WARNING[rng.below(WARNING.len())]
        } else {
            NORMAL[rng.below(NORMAL.len())]
        };
        let node = node_names
            .get(rng.below(node_names.len()))
            .map(String::as_str)
            .unwrap_or("gke-large-pool-1-00000000");
        let (ns, obj) = if kind == "Node" {
            ("default".to_owned(), node.to_owned())
        } else {
            (
                app_namespaces[rng.below(APP_NAMESPACES)].clone(),
                format!("app-{:05}", rng.below(pods.max(1))),
            )
        };
        let message = template
            .replace("{ns}", &ns)
            .replace("{obj}", &obj)
            .replace("{node}", node)
            .replace("{nodes}", &node_count);
        let component = match kind {
            "Node" => "node-controller",
            "ReplicaSet" => "replicaset-controller",
            "Deployment" => "deployment-controller",
            _ if reason == "Scheduled" || reason == "FailedScheduling" => "default-scheduler",
            _ => "kubelet",
        };
        let last = stamp(rng.below(3600) as i64);
        objects.push(json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{obj}.{:016x}", rng.next()), "namespace": ns,
                         "creationTimestamp": last},
            "involvedObject": {"kind": kind, "name": obj, "namespace": if kind == "Node" { Value::Null } else { Value::String(ns.clone()) }},
            "reason": reason, "message": message,
            "type": if warning { "Warning" } else { "Normal" },
            "count": 1 + rng.below(if warning { 40 } else { 3 }),
            "firstTimestamp": last, "lastTimestamp": last,
            "source": {"component": component},
            "reportingComponent": component, "reportingInstance": ""
        }));
    }
    // Events for Nodes carry no namespace in involvedObject.
    for object in &mut objects {
        if let Some(Value::Object(involved)) = object.get_mut("involvedObject") {
            involved.retain(|_, v| !v.is_null());
        }
    }

    Scenario {
        name: "large".to_owned(),
        description: format!(
            "Generated: {} nodes, {} webhooks in {} configurations, {} events.",
            params.nodes, params.webhooks, configs, params.events
        ),
        apiserver: ApiserverSpec {
            git_version: "v1.31.4-gke.1000".to_owned(),
        },
        // A still picture for benchmarks: no kubelets writing, no controllers reacting.
        cluster: ClusterTimings {
            auto_repair_after_seconds: Duration::ZERO,
            kubelets: false,
            node_lifecycle: false,
            ..ClusterTimings::default()
        },
        objects,
        backends,
        faults: Vec::new(),
        deny: Vec::new(),
        users: Vec::new(),
        reconcile: Vec::new(),
        timeline: Vec::new(),
    }
}

fn node(name: &str, zone: &str, ip: &str, created: &str, heartbeat: &str) -> Value {
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": heartbeat, "lastTransitionTime": created})
    };
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "creationTimestamp": created,
                     "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64",
                                "node.kubernetes.io/instance-type": "e2-standard-4",
                                "topology.kubernetes.io/zone": zone,
                                "topology.kubernetes.io/region": "us-central1",
                                "cloud.google.com/gke-nodepool": "pool"}},
        "spec": {"providerID": format!("gce://example-project/{zone}/{name}"),
                 "podCIDR": "10.64.0.0/24"},
        "status": {
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "capacity": {"cpu": "4", "memory": "16393220Ki", "pods": "110", "ephemeral-storage": "98831908Ki"},
            "allocatable": {"cpu": "3920m", "memory": "13477380Ki", "pods": "110", "ephemeral-storage": "47060071478"},
            "nodeInfo": {"kubeletVersion": "v1.31.4-gke.1000", "kubeProxyVersion": "v1.31.4-gke.1000",
                         "containerRuntimeVersion": "containerd://1.7.24", "osImage": "Container-Optimized OS from Google",
                         "kernelVersion": "6.1.112+", "operatingSystem": "linux", "architecture": "amd64"}
        }
    })
}

fn webhook(rng: &mut Rng, config: usize, index: usize, ns: &str, validating: bool) -> Value {
    let resources: &[&[&str]] = &[
        &["pods"],
        &["deployments", "statefulsets"],
        &["configmaps"],
        &["services"],
        &["ingresses"],
        &["*"],
        &["pods/exec"],
        &["secrets"],
    ];
    let groups: &[&str] = &["", "apps", "networking.k8s.io", "*"];
    let picked = resources[rng.below(resources.len())];
    let group = rng.pick(groups);
    let fail = rng.below(4) != 0;
    let timeout = [1, 2, 3, 5, 10, 30][rng.below(6)];
    let mut hook = json!({
        "name": format!("{}-{index}.{}.example.com", if validating { "validate" } else { "mutate" }, format!("c{config:03}")),
        "clientConfig": {"service": {"name": "webhook", "namespace": ns, "path": format!("/hook/{index}"), "port": 443}},
        "rules": [{"operations": if rng.below(2) == 0 { json!(["CREATE", "UPDATE"]) } else { json!(["CREATE"]) },
                   "apiGroups": [group], "apiVersions": ["*"], "resources": picked,
                   "scope": if rng.below(3) == 0 { "*" } else { "Namespaced" }}],
        "failurePolicy": if fail { "Fail" } else { "Ignore" },
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": timeout,
        "namespaceSelector": match rng.below(3) {
            0 => json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                               "values": ["kube-system", "kube-node-lease", "kube-public", ns]}]}),
            1 => json!({"matchLabels": {"policy": "enforced"}}),
            _ => json!({}),
        },
        "objectSelector": if rng.below(4) == 0 { json!({"matchLabels": {"inject": "true"}}) } else { json!({}) },
    });
    if !validating && let Value::Object(map) = &mut hook {
        map.insert("reinvocationPolicy".into(), json!("Never"));
    }
    hook
}
