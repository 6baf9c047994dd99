//! `metadata.managedFields` as the apiserver keeps it for Update operations: who set which
//! field. Pure functions of JSON objects, used by the simulator on every write and by anything
//! that needs to say who owns a field (who will undo a change).
//!
//! Fields are recorded in the FieldsV1 form: `{"f:spec": {"f:replicas": {}}}`. Lists of objects
//! keyed by name (webhooks, containers, env) are recorded per element under
//! `k:{"name":"x"}` keys; any other list is owned whole (`"f:args": {}`). Without the schema the
//! apiserver uses, this is an approximation: every list of objects that all have a string
//! `name` is taken as keyed by it.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// A path in FieldsV1 keys: `["f:webhooks", "k:{\"name\":\"a\"}", "f:failurePolicy"]`.
type Path = Vec<String>;

/// Metadata the apiserver sets itself, never owned by a manager.
const BOOKKEEPING: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

fn item_key(name: &str) -> String {
    format!("k:{}", json!({ "name": name }))
}

fn keyed_by_name(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|i| i["name"].is_string())
}

/// The leaf paths of an object with their values: scalars, lists owned whole, empty objects.
fn leaves(value: &Value, at: &mut Path, out: &mut Vec<(Path, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                if at.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "status") {
                    continue;
                }
                if at.len() == 1 && at[0] == "f:metadata" && BOOKKEEPING.contains(&k.as_str()) {
                    continue;
                }
                at.push(format!("f:{k}"));
                leaves(v, at, out);
                at.pop();
            }
        }
        Value::Array(items) if keyed_by_name(items) => {
            for item in items {
                at.push(item_key(item["name"].as_str().unwrap_or_default()));
                leaves(item, at, out);
                at.pop();
            }
        }
        other => {
            if !at.is_empty() {
                out.push((at.clone(), other.clone()));
            }
        }
    }
}

fn leaf_set(object: &Value) -> Vec<(Path, Value)> {
    let mut out = Vec::new();
    leaves(object, &mut Vec::new(), &mut out);
    out
}

/// A FieldsV1 tree from paths; list elements also own themselves (`".": {}`).
fn to_fields(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut node = &mut root;
        for key in path {
            let child = node
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let map = child.as_object_mut().expect("fields are objects");
            if key.starts_with("k:") {
                map.entry(".").or_insert_with(|| json!({}));
            }
            node = map;
        }
    }
    Value::Object(root)
}

/// The leaf paths of a FieldsV1 tree (`"."` entries left out).
fn from_fields(fields: &Value) -> BTreeSet<Path> {
    fn walk(node: &Value, at: &mut Path, out: &mut BTreeSet<Path>) {
        let children: Vec<(&String, &Value)> = node
            .as_object()
            .map(|m| m.iter().filter(|(k, _)| k.as_str() != ".").collect())
            .unwrap_or_default();
        if children.is_empty() {
            if !at.is_empty() {
                out.insert(at.clone());
            }
            return;
        }
        for (k, v) in children {
            at.push(k.clone());
            walk(v, at, out);
            at.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(fields, &mut Vec::new(), &mut out);
    out
}

fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Records a write by `manager` in `new`'s managedFields: the fields this write set or changed
/// (compared with `old`; on create, every field but the metadata the apiserver keeps) move to
/// `manager`'s Update entry and leave every other manager's entry; entries left empty are
/// dropped. `time` is the entry's RFC 3339 time.
pub fn record_update(old: Option<&Value>, new: &mut Value, manager: &str, time: &str) {
    if !new.is_object() {
        return;
    }
    let before: Vec<(Path, Value)> = old.map(leaf_set).unwrap_or_default();
    let after = leaf_set(new);
    let mut changed: BTreeSet<Path> = BTreeSet::new();
    for (path, value) in &after {
        if !before.iter().any(|(p, v)| p == path && v == value) {
            changed.insert(path.clone());
        }
    }
    for (path, _) in &before {
        if !after.iter().any(|(p, _)| p == path) {
            changed.insert(path.clone());
        }
    }
    let present: BTreeSet<Path> = after.iter().map(|(p, _)| p.clone()).collect();
    let api_version = new["apiVersion"].as_str().unwrap_or_default().to_string();
    let mut entries: Vec<Value> = match old {
        Some(old) => old["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        None => new["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    };
    if changed.is_empty() && old.is_some() {
        new["metadata"]["managedFields"] = Value::Array(entries);
        return;
    }
    let mut mine: BTreeSet<Path> = BTreeSet::new();
    for entry in entries.iter_mut() {
        let fields = from_fields(&entry["fieldsV1"]);
        let is_mine = entry["manager"] == manager && entry["operation"] == "Update";
        let kept: BTreeSet<Path> = fields
            .into_iter()
            .filter(|p| present.iter().any(|q| q.starts_with(p)))
            .filter(|p| is_mine || !changed.iter().any(|c| overlaps(c, p)))
            .collect();
        if is_mine {
            mine.extend(kept);
            entry["fieldsV1"] = json!({});
        } else {
            entry["fieldsV1"] = to_fields(&kept);
        }
    }
    entries.retain(|e| {
        !(e["manager"] == manager && e["operation"] == "Update")
            && e["fieldsV1"].as_object().is_some_and(|m| !m.is_empty())
    });
    mine.extend(changed.into_iter().filter(|p| present.contains(p)));
    if !mine.is_empty() {
        entries.push(json!({
            "manager": manager,
            "operation": "Update",
            "apiVersion": api_version,
            "time": time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields(&mine),
        }));
    }
    if !new["metadata"].is_object() {
        new["metadata"] = json!({});
    }
    if entries.is_empty() {
        if let Some(meta) = new["metadata"].as_object_mut() {
            meta.remove("managedFields");
        }
    } else {
        new["metadata"]["managedFields"] = Value::Array(entries);
    }
}

/// The manager that owns the field at a JSON pointer such as `/webhooks/0/failurePolicy`:
/// list indexes are resolved through the object to `k:{"name":...}` keys; a field inside a
/// list owned whole belongs to the list's owner. None when nobody owns it.
pub fn owner_of(object: &Value, pointer: &str) -> Option<String> {
    let mut path: Path = Vec::new();
    let mut node = object;
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        match node {
            Value::Array(items) => {
                if !keyed_by_name(items) {
                    break;
                }
                let item = items.get(token.parse::<usize>().ok()?)?;
                path.push(item_key(item["name"].as_str()?));
                node = item;
            }
            Value::Object(map) => {
                path.push(format!("f:{token}"));
                match map.get(&token) {
                    Some(child) => node = child,
                    None => break,
                }
            }
            _ => break,
        }
    }
    if path.is_empty() {
        return None;
    }
    let entries = object["metadata"]["managedFields"].as_array()?;
    entries.iter().find_map(|entry| {
        let owns = from_fields(&entry["fieldsV1"])
            .iter()
            .any(|p| path.starts_with(p) || p.starts_with(&path));
        owns.then(|| entry["manager"].as_str().unwrap_or_default().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-01-01T00:00:00Z";

    fn vwc() -> Value {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "gk", "uid": "u1", "resourceVersion": "5", "labels": {"app": "gk"}},
            "webhooks": [
                {"name": "a.gk.sh", "failurePolicy": "Fail", "rules": [{"operations": ["CREATE"]}]},
                {"name": "b.gk.sh", "failurePolicy": "Fail"}
            ]
        })
    }

    #[test]
    fn create_owns_every_field_but_bookkeeping() {
        let mut object = vwc();
        record_update(None, &mut object, "kubectl-create", T);
        let entries = object["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["manager"], "kubectl-create");
        assert_eq!(entries[0]["operation"], "Update");
        assert_eq!(entries[0]["apiVersion"], "admissionregistration.k8s.io/v1");
        assert_eq!(entries[0]["time"], T);
        assert_eq!(entries[0]["fieldsType"], "FieldsV1");
        assert_eq!(
            entries[0]["fieldsV1"],
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:webhooks": {
                    "k:{\"name\":\"a.gk.sh\"}": {".": {}, "f:name": {}, "f:failurePolicy": {}, "f:rules": {}},
                    "k:{\"name\":\"b.gk.sh\"}": {".": {}, "f:name": {}, "f:failurePolicy": {}}
                }
            })
        );
    }

    #[test]
    fn a_change_moves_the_field_to_its_writer() {
        let mut old = vwc();
        record_update(None, &mut old, "gatekeeper", T);
        let mut new = old.clone();
        new["webhooks"][1]["failurePolicy"] = json!("Ignore");
        record_update(Some(&old), &mut new, "kubectl-edit", T);
        assert_eq!(
            owner_of(&new, "/webhooks/1/failurePolicy").as_deref(),
            Some("kubectl-edit")
        );
        assert_eq!(
            owner_of(&new, "/webhooks/0/failurePolicy").as_deref(),
            Some("gatekeeper")
        );
        // A field inside a list owned whole belongs to the list's owner.
        assert_eq!(
            owner_of(&new, "/webhooks/0/rules/0/operations").as_deref(),
            Some("gatekeeper")
        );
        assert_eq!(
            owner_of(&new, "/metadata/labels/app").as_deref(),
            Some("gatekeeper")
        );
        assert_eq!(owner_of(&new, "/webhooks/5/name"), None);
        let entries = new["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[1]["fieldsV1"],
            json!({"f:webhooks": {"k:{\"name\":\"b.gk.sh\"}": {".": {}, "f:failurePolicy": {}}}})
        );

        // Taking back every field it owned empties the other manager's entry: it is dropped.
        let mut back = new.clone();
        back["webhooks"][1]["failurePolicy"] = json!("Fail");
        record_update(Some(&new), &mut back, "gatekeeper", T);
        let entries = back["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0]["manager"], "gatekeeper");
        assert_eq!(
            owner_of(&back, "/webhooks/1/failurePolicy").as_deref(),
            Some("gatekeeper")
        );
    }

    #[test]
    fn lists_without_names_are_owned_whole_and_removals_count() {
        let mut old = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "args": ["a"]}]}}}
        });
        record_update(None, &mut old, "helm", T);
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["a", "b"]);
        new["spec"].as_object_mut().unwrap().remove("replicas");
        record_update(Some(&old), &mut new, "kubectl-patch", T);
        assert_eq!(
            new["metadata"]["managedFields"][1]["fieldsV1"],
            json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:args": {}}}}}}})
        );
        assert_eq!(
            owner_of(&new, "/spec/template/spec/containers/0/args/1").as_deref(),
            Some("kubectl-patch")
        );
        assert_eq!(owner_of(&new, "/spec/replicas"), None);
        // A write that changes nothing leaves managedFields alone.
        let mut same = new.clone();
        record_update(Some(&new), &mut same, "other", T);
        assert_eq!(same, new);
    }
}
