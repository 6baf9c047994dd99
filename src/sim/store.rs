//! The simulated apiserver's object store: objects as JSON by storage, namespace and name, with
//! the bookkeeping the apiserver does on every write (uid, resourceVersion, creationTimestamp,
//! generation) and a feed of changes for watches. It does no admission and no validation.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::kinds::Kind;

/// Namespace ("" for cluster-scoped objects) and name.
pub type ObjectKey = (String, String);

/// How many past changes a watch from an older resourceVersion can still replay.
const HISTORY: usize = 4096;

/// Kinds whose metadata.generation counts changes to everything but metadata and status.
const GENERATION_KINDS: &[&str] = &[
    "deployments",
    "replicasets",
    "poddisruptionbudgets",
    "validatingwebhookconfigurations",
    "mutatingwebhookconfigurations",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One committed write, as a watch reports it.
#[derive(Clone, Debug)]
pub struct Change {
    pub resource_version: u64,
    pub storage: &'static str,
    pub change: ChangeType,
    pub object: Value,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("{0} \"{1}\" already exists")]
    AlreadyExists(&'static str, String),
    #[error("{0} \"{1}\" not found")]
    NotFound(&'static str, String),
    #[error(
        "Operation cannot be fulfilled on {0} \"{1}\": the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict(&'static str, String),
    #[error("{0}")]
    Invalid(String),
}

pub struct Store {
    objects: HashMap<&'static str, BTreeMap<ObjectKey, Value>>,
    resource_version: u64,
    history: VecDeque<Arc<Change>>,
    changes: broadcast::Sender<Arc<Change>>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

/// The current time as the apiserver writes it in metadata (RFC 3339, whole seconds, UTC).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Namespace and name of a manifest ("" when absent).
pub fn key_of(object: &Value) -> ObjectKey {
    let meta = &object["metadata"];
    (
        meta["namespace"].as_str().unwrap_or_default().to_string(),
        meta["name"].as_str().unwrap_or_default().to_string(),
    )
}

/// Everything in an object but metadata and status: what a spec change is measured on.
fn spec_part(object: &Value) -> Value {
    match object {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

impl Store {
    pub fn new() -> Self {
        let (changes, _) = broadcast::channel(1024);
        Store {
            objects: HashMap::new(),
            resource_version: 1,
            history: VecDeque::new(),
            changes,
        }
    }

    /// The latest resourceVersion handed out.
    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    /// A feed of every committed change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    /// Changes after `since`, if the history still holds all of them.
    pub fn changes_since(&self, since: u64) -> Option<Vec<Arc<Change>>> {
        if since >= self.resource_version {
            return Some(Vec::new());
        }
        let oldest = self.history.front()?.resource_version;
        (oldest <= since + 1).then(|| {
            self.history
                .iter()
                .filter(|c| c.resource_version > since)
                .cloned()
                .collect()
        })
    }

    pub fn get(&self, storage: &str, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(storage)?
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// Objects of one storage, ordered by namespace then name; `namespace` None means all.
    pub fn list<'a>(
        &'a self,
        storage: &str,
        namespace: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = (&'a ObjectKey, &'a Value)> + 'a> {
        let Some(objects) = self.objects.get(storage) else {
            return Box::new(std::iter::empty());
        };
        match namespace {
            None => Box::new(objects.iter()),
            Some(ns) => Box::new(
                objects
                    .range((ns.to_string(), String::new())..)
                    .take_while(move |((n, _), _)| n == ns),
            ),
        }
    }

    pub fn count(&self, storage: &str) -> usize {
        self.objects.get(storage).map_or(0, BTreeMap::len)
    }

    fn next_version(&mut self) -> u64 {
        self.resource_version += 1;
        self.resource_version
    }

    fn publish(&mut self, storage: &'static str, change: ChangeType, object: Value) {
        let change = Arc::new(Change {
            resource_version: self.resource_version,
            storage,
            change,
            object,
        });
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(change.clone());
        // Nobody watching is fine.
        let _ = self.changes.send(change);
    }

    /// Fills what the apiserver sets on create, without storing: uid, creationTimestamp,
    /// generation, apiVersion and kind. Used for dry runs too.
    pub fn prepare_new(kind: &Kind, object: &mut Value) -> Result<(), StoreError> {
        let Some(map) = object.as_object_mut() else {
            return Err(StoreError::Invalid(
                "the object must be a JSON object".into(),
            ));
        };
        map.insert("apiVersion".into(), Value::String(kind.api_version()));
        map.insert("kind".into(), Value::String(kind.kind.into()));
        let meta = map
            .entry("metadata")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| StoreError::Invalid("metadata must be an object".into()))?;
        meta.insert(
            "uid".into(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        meta.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
        meta.remove("resourceVersion");
        meta.remove("deletionTimestamp");
        if GENERATION_KINDS.contains(&kind.storage) {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        Ok(())
    }

    /// Stores a new object prepared by [`Store::prepare_new`] and returns it as stored.
    pub fn create(&mut self, kind: &Kind, mut object: Value) -> Result<Value, StoreError> {
        let key = key_of(&object);
        if key.1.is_empty() {
            return Err(StoreError::Invalid("metadata.name: Required value".into()));
        }
        if self
            .objects
            .get(kind.storage)
            .is_some_and(|m| m.contains_key(&key))
        {
            return Err(StoreError::AlreadyExists(kind.plural, key.1));
        }
        if object["metadata"]["uid"].as_str().is_none_or(str::is_empty) {
            Self::prepare_new(kind, &mut object)?;
        }
        let rv = self.next_version();
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        self.objects
            .entry(kind.storage)
            .or_default()
            .insert(key, object.clone());
        self.publish(kind.storage, ChangeType::Added, object.clone());
        Ok(object)
    }

    /// Replaces a stored object. `expected` is the resourceVersion the writer based its change
    /// on; a different stored version is a conflict. uid and creationTimestamp are kept, and
    /// generation moves when anything but metadata and status changed.
    pub fn update(
        &mut self,
        kind: &Kind,
        mut object: Value,
        expected: Option<&str>,
    ) -> Result<Value, StoreError> {
        let key = key_of(&object);
        let storage = kind.storage;
        let Some(old) = self.objects.get(storage).and_then(|m| m.get(&key)) else {
            return Err(StoreError::NotFound(kind.plural, key.1));
        };
        let old_rv = old["metadata"]["resourceVersion"].as_str().unwrap_or("");
        if let Some(expected) = expected.filter(|e| !e.is_empty())
            && expected != old_rv
        {
            return Err(StoreError::Conflict(kind.plural, key.1));
        }
        let old_meta = old["metadata"].clone();
        let spec_changed = spec_part(old) != spec_part(&object);
        object["apiVersion"] = Value::String(kind.api_version());
        object["kind"] = Value::String(kind.kind.into());
        let meta = &mut object["metadata"];
        meta["uid"] = old_meta["uid"].clone();
        meta["creationTimestamp"] = old_meta["creationTimestamp"].clone();
        if GENERATION_KINDS.contains(&storage) {
            let generation = old_meta["generation"].as_i64().unwrap_or(1);
            meta["generation"] = json!(if spec_changed {
                generation + 1
            } else {
                generation
            });
        }
        let rv = self.next_version();
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        self.objects
            .entry(storage)
            .or_default()
            .insert(key, object.clone());
        self.publish(storage, ChangeType::Modified, object.clone());
        Ok(object)
    }

    /// Removes an object and returns it as it was last stored.
    pub fn delete(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Value, StoreError> {
        let removed = self
            .objects
            .get_mut(kind.storage)
            .and_then(|m| m.remove(&(namespace.to_string(), name.to_string())));
        let Some(mut object) = removed else {
            return Err(StoreError::NotFound(kind.plural, name.to_string()));
        };
        let rv = self.next_version();
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        self.publish(kind.storage, ChangeType::Deleted, object.clone());
        Ok(object)
    }

    /// Removes every object in a namespace (when the namespace goes away).
    pub fn delete_namespace_contents(&mut self, kinds: &[Kind], namespace: &str) {
        for kind in kinds.iter().filter(|k| k.namespaced && k.is_stored()) {
            let names: Vec<String> = self
                .list(kind.storage, Some(namespace))
                .map(|((_, n), _)| n.clone())
                .collect();
            for name in names {
                let _ = self.delete(kind, namespace, &name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kinds::by_resource;

    fn cm(ns: &str, name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": ns, "name": name}, "data": {"a": "1"}})
    }

    #[test]
    fn create_sets_bookkeeping_and_refuses_duplicates() {
        let kind = by_resource("", "v1", "configmaps").unwrap();
        let mut store = Store::new();
        let created = store.create(kind, cm("default", "a")).unwrap();
        assert!(created["metadata"]["uid"].as_str().unwrap().len() >= 32);
        assert!(
            created["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap()
                .ends_with('Z')
        );
        assert_eq!(created["metadata"]["resourceVersion"], "2");
        assert!(created["metadata"].get("generation").is_none());
        assert_eq!(
            store.create(kind, cm("default", "a")).unwrap_err(),
            StoreError::AlreadyExists("configmaps", "a".into())
        );
    }

    #[test]
    fn update_checks_resource_version_and_counts_generation() {
        let kind = by_resource("apps", "v1", "deployments").unwrap();
        let mut store = Store::new();
        let d = json!({"metadata": {"namespace": "ns", "name": "d"}, "spec": {"replicas": 1}});
        let created = store.create(kind, d).unwrap();
        assert_eq!(created["metadata"]["generation"], 1);
        let mut changed = created.clone();
        changed["spec"]["replicas"] = json!(2);
        let updated = store.update(kind, changed.clone(), Some("2")).unwrap();
        assert_eq!(updated["metadata"]["generation"], 2);
        assert_eq!(updated["metadata"]["uid"], created["metadata"]["uid"]);
        assert_eq!(
            store.update(kind, changed, Some("2")).unwrap_err(),
            StoreError::Conflict("deployments", "d".into())
        );
        let mut status_only = updated.clone();
        status_only["status"] = json!({"readyReplicas": 2});
        let updated = store.update(kind, status_only, None).unwrap();
        assert_eq!(updated["metadata"]["generation"], 2);
    }

    #[test]
    fn list_by_namespace_and_history() {
        let kind = by_resource("", "v1", "configmaps").unwrap();
        let mut store = Store::new();
        for (ns, n) in [("a", "1"), ("b", "1"), ("b", "2"), ("c", "1")] {
            store.create(kind, cm(ns, n)).unwrap();
        }
        let in_b: Vec<_> = store
            .list("configmaps", Some("b"))
            .map(|(k, _)| k.1.clone())
            .collect();
        assert_eq!(in_b, ["1", "2"]);
        assert_eq!(store.list("configmaps", None).count(), 4);
        let since = store.changes_since(3).unwrap();
        assert_eq!(since.len(), 2);
        store.delete(kind, "b", "1").unwrap();
        assert_eq!(store.list("configmaps", Some("b")).count(), 1);
        assert!(matches!(
            store.delete(kind, "b", "1"),
            Err(StoreError::NotFound(..))
        ));
    }
}
