//! Server-side printing: the `Table` answer kubectl asks for (`as=Table;g=meta.k8s.io;v=v1`),
//! with the columns the apiserver prints for each kind.

use serde_json::{Value, json};

use super::kinds::Kind;

/// kubectl's human duration: 45s, 5m3s, 42m, 3h5m, 20h, 3d4h, 200d, 3y45d.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        let rem = s % 60;
        if rem == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{rem}s")
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        let rem = m % 60;
        if rem == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{rem}m")
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        let rem = h % 24;
        if rem == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{rem}h")
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else {
        let y = d / 365;
        let rem = d % 365;
        if rem == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{rem}d")
        }
    }
}

fn age(timestamp: &Value) -> String {
    let Some(t) = timestamp.as_str() else {
        return "<unknown>".into();
    };
    match t.parse::<jiff::Timestamp>() {
        Ok(t) => human_duration(jiff::Timestamp::now().as_second() - t.as_second()),
        Err(_) => "<invalid>".into(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

fn node_status(node: &Value) -> String {
    let ready = node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .map(|c| c["status"].as_str().unwrap_or("Unknown").to_string());
    let mut status = match ready.as_deref() {
        Some("True") => "Ready".to_string(),
        Some("False") => "NotReady".to_string(),
        _ => "NotReady".to_string(),
    };
    if ready.as_deref() == Some("Unknown") {
        status = "NotReady".into();
    }
    if node["spec"]["unschedulable"] == true {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_roles(node: &Value) -> String {
    let roles: Vec<&str> = node["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .collect()
        })
        .unwrap_or_default();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

fn pod_columns(pod: &Value) -> Vec<Value> {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = pod["spec"]["containers"]
        .as_array()
        .map_or(statuses.len(), Vec::len);
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let restarts: i64 = statuses
        .iter()
        .filter_map(|c| c["restartCount"].as_i64())
        .sum();
    let waiting = statuses
        .iter()
        .find_map(|c| c["state"]["waiting"]["reason"].as_str())
        .map(str::to_string);
    let status = if !pod["metadata"]["deletionTimestamp"].is_null() {
        "Terminating".to_string()
    } else {
        waiting
            .or_else(|| pod["status"]["reason"].as_str().map(str::to_string))
            .unwrap_or_else(|| {
                pod["status"]["phase"]
                    .as_str()
                    .unwrap_or("Pending")
                    .to_string()
            })
    };
    vec![
        json!(format!("{ready}/{total}")),
        json!(status),
        json!(restarts),
    ]
}

struct Column {
    name: &'static str,
    kind: &'static str,
    description: &'static str,
}

const fn col(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind,
        description,
    }
}

fn columns(kind: &Kind) -> Vec<Column> {
    let name = col("Name", "string", "Name must be unique within a namespace.");
    let age = col(
        "Age",
        "string",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    );
    match kind.storage {
        "nodes" => vec![
            name,
            col("Status", "string", "The status of the node"),
            col("Roles", "string", "The roles of the node"),
            age,
            col("Version", "string", "Kubelet Version reported by the node."),
        ],
        "pods" => vec![
            name,
            col(
                "Ready",
                "string",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "integer",
                "The number of times the containers in this pod have been restarted.",
            ),
            age,
        ],
        "namespaces" => vec![
            name,
            col("Status", "string", "The status of the namespace"),
            age,
        ],
        "deployments" => vec![
            name,
            col("Ready", "string", "Number of the pod with ready state"),
            col(
                "Up-to-date",
                "integer",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            col(
                "Available",
                "integer",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            age,
        ],
        "replicasets" => vec![
            name,
            col("Desired", "integer", "Number of desired pods"),
            col("Current", "integer", "Number of actually running pods"),
            col("Ready", "integer", "Number of ready pods"),
            age,
        ],
        "services" => vec![
            name,
            col("Type", "string", "The type of the service"),
            col("Cluster-IP", "string", "The cluster IP of the service"),
            col("External-IP", "string", "The external IP of the service"),
            col("Port(s)", "string", "The ports of the service"),
            age,
        ],
        "configmaps" => vec![
            name,
            col("Data", "integer", "The number of data entries"),
            age,
        ],
        "secrets" => vec![
            name,
            col("Type", "string", "The type of the secret"),
            col("Data", "integer", "The number of data entries"),
            age,
        ],
        "leases" => vec![
            name,
            col("Holder", "string", "The holder of the lease"),
            age,
        ],
        "endpoints" => vec![
            name,
            col("Endpoints", "string", "The addresses of the endpoints"),
            age,
        ],
        "events" => vec![
            col("Last Seen", "string", "When the event was last seen"),
            col("Type", "string", "The type of the event"),
            col("Reason", "string", "The reason of the event"),
            col("Object", "string", "The object the event is about"),
            col("Message", "string", "The message of the event"),
        ],
        "apiservices" => vec![
            name,
            col("Service", "string", "The service backing the API"),
            col("Available", "string", "Whether the API is available"),
            age,
        ],
        "validatingwebhookconfigurations" | "mutatingwebhookconfigurations" => vec![
            name,
            col("Webhooks", "integer", "The number of webhooks"),
            age,
        ],
        _ => vec![name, age],
    }
}

fn cells(kind: &Kind, o: &Value) -> Vec<Value> {
    let name = json!(o["metadata"]["name"]);
    let age = json!(age(&o["metadata"]["creationTimestamp"]));
    let count =
        |v: &Value| json!(v.as_object().map_or(0, |m| m.len()) + v.as_array().map_or(0, Vec::len));
    match kind.storage {
        "nodes" => vec![
            name,
            json!(node_status(o)),
            json!(node_roles(o)),
            age,
            json!(text(&o["status"]["nodeInfo"]["kubeletVersion"])),
        ],
        "pods" => {
            let mut c = vec![name];
            c.extend(pod_columns(o));
            c.push(age);
            c
        }
        "namespaces" => vec![
            name,
            json!(o["status"]["phase"].as_str().unwrap_or("Active")),
            age,
        ],
        "replicasets" => {
            let s = &o["status"];
            vec![
                name,
                json!(o["spec"]["replicas"].as_i64().unwrap_or(1)),
                json!(s["replicas"].as_i64().unwrap_or(0)),
                json!(s["readyReplicas"].as_i64().unwrap_or(0)),
                age,
            ]
        }
        "deployments" => {
            let s = &o["status"];
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    s["readyReplicas"].as_i64().unwrap_or(0),
                    o["spec"]["replicas"].as_i64().unwrap_or(1)
                )),
                json!(s["updatedReplicas"].as_i64().unwrap_or(0)),
                json!(s["availableReplicas"].as_i64().unwrap_or(0)),
                age,
            ]
        }
        "services" => {
            let ports: Vec<String> = o["spec"]["ports"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            vec![
                name,
                json!(o["spec"]["type"].as_str().unwrap_or("ClusterIP")),
                json!(o["spec"]["clusterIP"].as_str().unwrap_or("<none>")),
                json!("<none>"),
                json!(if ports.is_empty() {
                    "<none>".into()
                } else {
                    ports.join(",")
                }),
                age,
            ]
        }
        "configmaps" => vec![name, count(&o["data"]), age],
        "secrets" => vec![
            name,
            json!(o["type"].as_str().unwrap_or("Opaque")),
            count(&o["data"]),
            age,
        ],
        "leases" => vec![
            name,
            json!(o["spec"]["holderIdentity"].as_str().unwrap_or("")),
            age,
        ],
        "endpoints" => {
            let addrs: Vec<String> = o["subsets"]
                .as_array()
                .map(|ss| {
                    ss.iter()
                        .flat_map(|s| {
                            let ports: Vec<i64> = s["ports"]
                                .as_array()
                                .map(|p| p.iter().filter_map(|p| p["port"].as_i64()).collect())
                                .unwrap_or_default();
                            s["addresses"]
                                .as_array()
                                .cloned()
                                .unwrap_or_default()
                                .into_iter()
                                .flat_map(move |a| {
                                    let ip = a["ip"].as_str().unwrap_or_default().to_string();
                                    ports.clone().into_iter().map(move |p| format!("{ip}:{p}"))
                                })
                        })
                        .collect()
                })
                .unwrap_or_default();
            vec![
                name,
                json!(if addrs.is_empty() {
                    "<none>".into()
                } else {
                    addrs.join(",")
                }),
                age,
            ]
        }
        "events" => {
            let last = if o["lastTimestamp"].is_null() {
                &o["eventTime"]
            } else {
                &o["lastTimestamp"]
            };
            let obj = format!(
                "{}/{}",
                o["involvedObject"]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase(),
                o["involvedObject"]["name"].as_str().unwrap_or_default()
            );
            vec![
                json!(age_or_unknown(last)),
                json!(text(&o["type"])),
                json!(text(&o["reason"])),
                json!(obj),
                json!(text(&o["message"])),
            ]
        }
        "apiservices" => {
            let svc = &o["spec"]["service"];
            let service = if svc.is_null() {
                "Local".to_string()
            } else {
                format!("{}/{}", text(&svc["namespace"]), text(&svc["name"]))
            };
            let available = o["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Available"))
                .map(|c| {
                    if c["status"] == "True" {
                        "True".to_string()
                    } else {
                        format!("False ({})", c["reason"].as_str().unwrap_or(""))
                    }
                })
                .unwrap_or_else(|| "Unknown".into());
            vec![name, json!(service), json!(available), age]
        }
        "validatingwebhookconfigurations" | "mutatingwebhookconfigurations" => {
            vec![name, count(&o["webhooks"]), age]
        }
        _ => vec![name, age],
    }
}

fn age_or_unknown(v: &Value) -> String {
    if v.is_null() {
        "<unknown>".into()
    } else {
        age(v)
    }
}

/// The metadata-only form of an object (`PartialObjectMetadata`).
pub fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object["metadata"],
    })
}

/// A `Table` of `objects` of one kind; `table_version` is `v1` or `v1beta1`.
pub fn to_table(
    kind: &Kind,
    objects: &[Value],
    resource_version: u64,
    continue_token: Option<&str>,
    table_version: &str,
) -> Value {
    let column_definitions: Vec<Value> = columns(kind)
        .iter()
        .map(|c| json!({"name": c.name, "type": c.kind, "format": if c.name == "Name" { "name" } else { "" }, "description": c.description, "priority": 0}))
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| json!({"cells": cells(kind, o), "object": partial_metadata(o)}))
        .collect();
    let mut metadata = json!({"resourceVersion": resource_version.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{table_version}"),
        "metadata": metadata,
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kinds::by_resource;

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(303), "5m3s");
        assert_eq!(human_duration(42 * 60), "42m");
        assert_eq!(human_duration(3 * 3600 + 300), "3h5m");
        assert_eq!(human_duration(20 * 3600), "20h");
        assert_eq!(human_duration(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(human_duration(200 * 86400), "200d");
    }

    #[test]
    fn node_table_has_status_and_version() {
        let kind = by_resource("", "v1", "nodes").unwrap();
        let node = json!({"metadata": {"name": "n1", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}], "nodeInfo": {"kubeletVersion": "v1.31.4"}}});
        let table = to_table(kind, &[node], 7, None, "v1");
        assert_eq!(table["rows"][0]["cells"][1], "NotReady,SchedulingDisabled");
        assert_eq!(table["rows"][0]["cells"][4], "v1.31.4");
        assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(table["metadata"]["resourceVersion"], "7");
    }
}
