//! The objects the rules look at, from a live Snapshot or from manifests read offline.
//! Offline, a namespace carries only the automatic `kubernetes.io/metadata.name` label unless
//! its Namespace object is in the input.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;

use crate::cluster::Snapshot;

/// Webhook configurations and what stands behind them.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub validating: Vec<ValidatingWebhookConfiguration>,
    pub mutating: Vec<MutatingWebhookConfiguration>,
    pub namespaces: Vec<Namespace>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub pods: Vec<Pod>,
    pub deployments: Vec<Deployment>,
    /// Objects of kinds the rules do not look at (offline input), by kind.
    pub ignored: BTreeMap<String, usize>,
    /// `Kind/name` of webhook configurations given as admissionregistration.k8s.io/v1beta1:
    /// their unset fields default as v1beta1 did (failurePolicy Ignore, timeoutSeconds 30,
    /// matchPolicy Exact).
    pub v1beta1: Vec<String>,
}

/// A manifest that has a kind the rules read but does not fit its schema.
#[derive(Debug, thiserror::Error)]
#[error("object {index} ({kind} {name}): {reason}")]
pub struct ManifestError {
    pub index: usize,
    pub kind: String,
    pub name: String,
    pub reason: String,
}

fn typed<T: serde::de::DeserializeOwned>(index: usize, object: Value) -> Result<T, ManifestError> {
    let kind = object["kind"].as_str().unwrap_or("?").to_string();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    serde_json::from_value(object).map_err(|e| ManifestError {
        index,
        kind,
        name,
        reason: e.to_string(),
    })
}

impl Inventory {
    /// What a live refresh saw. Backends that were not read (yet) contribute nothing.
    pub fn from_snapshot(snapshot: &Snapshot) -> Self {
        let mut inventory = Inventory {
            validating: snapshot
                .validating_webhooks
                .value
                .clone()
                .unwrap_or_default(),
            mutating: snapshot.mutating_webhooks.value.clone().unwrap_or_default(),
            namespaces: snapshot.namespaces.value.clone().unwrap_or_default(),
            ..Default::default()
        };
        for backend in &snapshot.webhook_backends {
            if let Some(service) = &backend.service.value {
                inventory.services.push(service.clone());
            }
            inventory
                .endpoint_slices
                .extend(backend.endpoint_slices.value.clone().unwrap_or_default());
            inventory
                .pods
                .extend(backend.pods.value.clone().unwrap_or_default());
            for d in backend.deployments.value.clone().unwrap_or_default() {
                let same = |x: &Deployment| {
                    x.metadata.namespace == d.metadata.namespace
                        && x.metadata.name == d.metadata.name
                };
                if !inventory.deployments.iter().any(same) {
                    inventory.deployments.push(d);
                }
            }
        }
        inventory
    }

    /// Manifests as `kubectl apply` takes them (Lists already flattened). Kinds the rules do not
    /// read are counted and otherwise ignored.
    pub fn from_manifests(objects: Vec<Value>) -> Result<Self, ManifestError> {
        let mut inventory = Inventory::default();
        for (index, object) in objects.into_iter().enumerate() {
            let api_version = object["apiVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let kind = object["kind"].as_str().unwrap_or_default().to_string();
            if api_version == "admissionregistration.k8s.io/v1beta1" {
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                inventory.v1beta1.push(format!("{kind}/{name}"));
            }
            match (api_version.as_str(), kind.as_str()) {
                (
                    "admissionregistration.k8s.io/v1" | "admissionregistration.k8s.io/v1beta1",
                    "ValidatingWebhookConfiguration",
                ) => inventory.validating.push(typed(
                    index,
                    with_api_version(object, "admissionregistration.k8s.io/v1"),
                )?),
                (
                    "admissionregistration.k8s.io/v1" | "admissionregistration.k8s.io/v1beta1",
                    "MutatingWebhookConfiguration",
                ) => inventory.mutating.push(typed(
                    index,
                    with_api_version(object, "admissionregistration.k8s.io/v1"),
                )?),
                ("v1", "Namespace") => inventory.namespaces.push(typed(index, object)?),
                ("v1", "Service") => inventory.services.push(typed(index, object)?),
                ("v1", "Pod") => inventory.pods.push(typed(index, object)?),
                ("discovery.k8s.io/v1", "EndpointSlice") => {
                    inventory.endpoint_slices.push(typed(index, object)?)
                }
                ("apps/v1", "Deployment") => inventory.deployments.push(typed(index, object)?),
                _ => {
                    *inventory
                        .ignored
                        .entry(format!("{api_version} {kind}"))
                        .or_default() += 1
                }
            }
        }
        Ok(inventory)
    }

    /// A namespace's labels: its Namespace object's, if known, and always the automatic
    /// `kubernetes.io/metadata.name`.
    pub fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        let mut labels: BTreeMap<String, String> = self
            .namespaces
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(namespace))
            .and_then(|n| n.metadata.labels.clone())
            .unwrap_or_default();
        labels.insert("kubernetes.io/metadata.name".into(), namespace.into());
        labels
    }
}

/// v1beta1 webhook configurations read as v1 (their defaults differ: see the webhook rules).
/// Fields v1 requires but v1beta1 defaulted get v1beta1's defaults: sideEffects `Unknown`,
/// admissionReviewVersions `[v1beta1]`.
fn with_api_version(mut object: Value, api_version: &str) -> Value {
    if object["apiVersion"] == "admissionregistration.k8s.io/v1beta1"
        && let Some(webhooks) = object.get_mut("webhooks").and_then(Value::as_array_mut)
    {
        for webhook in webhooks.iter_mut().filter_map(Value::as_object_mut) {
            webhook
                .entry("sideEffects")
                .or_insert_with(|| Value::String("Unknown".into()));
            webhook
                .entry("admissionReviewVersions")
                .or_insert_with(|| Value::Array(vec![Value::String("v1beta1".into())]));
        }
    }
    object["apiVersion"] = Value::String(api_version.into());
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn manifests_sort_into_kinds_and_namespaces_get_the_automatic_label() {
        let inventory = Inventory::from_manifests(vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "opa", "labels": {"openpolicyagent.org/webhook": "ignore"}}}),
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "v"}, "webhooks": []}),
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
        ])
        .unwrap();
        assert_eq!(inventory.validating.len(), 1);
        assert_eq!(inventory.ignored.get("example.com/v1 Widget"), Some(&1));
        let opa = inventory.namespace_labels("opa");
        assert_eq!(
            opa.get("openpolicyagent.org/webhook").map(String::as_str),
            Some("ignore")
        );
        assert_eq!(
            opa.get("kubernetes.io/metadata.name").map(String::as_str),
            Some("opa")
        );
        let ks = inventory.namespace_labels("kube-system");
        assert_eq!(ks.len(), 1);
    }

    #[test]
    fn a_known_kind_that_does_not_fit_is_named() {
        let error = Inventory::from_manifests(vec![json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": "two"}})]).unwrap_err();
        assert_eq!(error.index, 0);
        assert_eq!(error.name, "d");
        assert!(
            error.to_string().starts_with("object 0 (Deployment d): "),
            "{error}"
        );
    }
}
