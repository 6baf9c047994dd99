//! Events are stored once, in their core/v1 form, and served both as core/v1 and as
//! events.k8s.io/v1, converting field names the way the apiserver does.

use serde_json::{Map, Value, json};

use super::kinds::Kind;

/// (core/v1 field, events.k8s.io/v1 field) pairs that only change name.
const RENAMED: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("related", "related"),
    ("message", "note"),
    ("reason", "reason"),
    ("type", "type"),
    ("action", "action"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn rename(object: &Value, api_version: &str, to_new: bool) -> Value {
    let Some(map) = object.as_object() else {
        return object.clone();
    };
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!("Event"));
    if let Some(meta) = map.get("metadata") {
        out.insert("metadata".into(), meta.clone());
    }
    for (core, new) in RENAMED {
        let (from, to) = if to_new { (core, new) } else { (new, core) };
        if let Some(v) = map.get(*from).filter(|v| !v.is_null()) {
            out.insert((*to).to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// The representation of a stored object for `kind` (identity but for events.k8s.io Events).
pub fn from_storage(kind: &Kind, stored: &Value) -> Value {
    if kind.is_events_k8s_io() {
        rename(stored, "events.k8s.io/v1", true)
    } else {
        stored.clone()
    }
}

/// The stored (core/v1) form of an object written through `kind`.
pub fn to_storage(kind: &Kind, object: Value) -> Value {
    if kind.is_events_k8s_io() {
        rename(&object, "v1", false)
    } else {
        object
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kinds::by_resource;

    #[test]
    fn converts_both_ways() {
        let new_kind = by_resource("events.k8s.io", "v1", "events").unwrap();
        let core = json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "involvedObject": {"kind": "Node", "name": "n1"}, "reason": "RegisteredNode",
            "message": "Registered Node n1 in Controller", "type": "Normal",
            "source": {"component": "node-controller"}, "count": 3});
        let served = from_storage(new_kind, &core);
        assert_eq!(served["apiVersion"], "events.k8s.io/v1");
        assert_eq!(served["regarding"]["name"], "n1");
        assert_eq!(served["note"], "Registered Node n1 in Controller");
        assert_eq!(served["deprecatedCount"], 3);
        assert_eq!(to_storage(new_kind, served), core);
        let core_kind = by_resource("", "v1", "events").unwrap();
        assert_eq!(from_storage(core_kind, &core), core);
    }
}
