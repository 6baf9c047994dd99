//! The objects the rules look at, from a live Snapshot or from manifests read offline.
//! Offline, a namespace carries only the automatic `kubernetes.io/metadata.name` label unless
//! its Namespace object is in the input.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;

use crate::cluster::Snapshot;
use crate::manifests::{Manifest, Place};

const ADMISSION_V1: &str = "admissionregistration.k8s.io/v1";
const ADMISSION_V1BETA1: &str = "admissionregistration.k8s.io/v1beta1";
const VALIDATING: &str = "ValidatingWebhookConfiguration";
const MUTATING: &str = "MutatingWebhookConfiguration";

/// Webhook configurations and what stands behind them.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub validating: Vec<ValidatingWebhookConfiguration>,
    pub mutating: Vec<MutatingWebhookConfiguration>,
    pub namespaces: Vec<Namespace>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub pods: Vec<Pod>,
    /// Deployments, older apiVersions (apps/v1beta1, apps/v1beta2, extensions/v1beta1) read
    /// as apps/v1.
    pub deployments: Vec<Deployment>,
    /// StatefulSets (apps/v1beta1 and apps/v1beta2 read as apps/v1), offline.
    pub stateful_sets: Vec<StatefulSet>,
    /// DaemonSets (apps/v1beta2 and extensions/v1beta1 read as apps/v1), offline.
    pub daemon_sets: Vec<DaemonSet>,
    /// HorizontalPodAutoscalers (autoscaling/v1, v2, v2beta1, v2beta2), offline.
    pub autoscalers: Vec<Autoscaler>,
    /// Objects of kinds the rules do not look at (offline input), by kind.
    pub ignored: BTreeMap<String, usize>,
    /// `Kind/name` of webhook configurations given as admissionregistration.k8s.io/v1beta1:
    /// their unset fields default as v1beta1 did (failurePolicy Ignore, timeoutSeconds 30,
    /// matchPolicy Exact).
    pub v1beta1: Vec<String>,
    /// Offline: webhooks whose caBundle the apiserver would refuse. The field is left out so
    /// that the rest of the configuration is still checked.
    pub invalid_ca_bundles: Vec<InvalidCaBundle>,
    /// Offline: objects given more than once. The last one given is the one checked, as
    /// `kubectl apply` would leave it.
    pub duplicates: Vec<Duplicate>,
}

/// A HorizontalPodAutoscaler, as far as the rules need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Autoscaler {
    pub namespace: String,
    pub name: String,
    /// scaleTargetRef: `Deployment`, `StatefulSet`, ...
    pub target_kind: String,
    pub target_name: String,
    /// Unset means 1.
    pub min_replicas: Option<i32>,
    pub max_replicas: Option<i32>,
}

impl Autoscaler {
    /// Whether it scales the workload `kind` `namespace/name`.
    pub fn scales(&self, kind: &str, namespace: &str, name: &str) -> bool {
        self.namespace == namespace && self.target_kind == kind && self.target_name == name
    }
}

/// A webhook whose clientConfig.caBundle is not base64 (or not a string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidCaBundle {
    /// `ValidatingWebhookConfiguration` or `MutatingWebhookConfiguration`.
    pub kind: String,
    pub configuration: String,
    pub webhook: String,
    /// `webhooks[0].clientConfig.caBundle`
    pub field: String,
    /// The value as written (cut to 60 characters).
    pub value: String,
    /// Why it cannot be decoded, in words.
    pub reason: String,
    pub place: Place,
}

/// One object given more than once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// `Deployment opa/opa`
    pub object: String,
    /// Every place it was given, in reading order.
    pub places: Vec<Place>,
}

impl std::fmt::Display for Duplicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut places: Vec<String> = self.places.iter().map(Place::to_string).collect();
        let last = places.pop().unwrap_or_default();
        write!(
            f,
            "{} appears {} times: {} and {last}; the last one is checked (kubectl apply would leave that one)",
            self.object,
            self.places.len(),
            places.join(", ")
        )
    }
}

/// A manifest that has a kind the rules read but does not fit its schema, or that holds a
/// value the apiserver refuses. Names the place, the object and the field.
#[derive(Debug, thiserror::Error)]
#[error("{place}: {object}: {reason}")]
pub struct ManifestError {
    pub place: Place,
    /// `Deployment opa/opa`, `ValidatingWebhookConfiguration x, webhook w`.
    pub object: String,
    /// `spec.replicas: invalid type: string "two", expected i32`.
    pub reason: String,
}

/// `Kind namespace/name` or `Kind name`.
fn describe(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or("object");
    let name = object["metadata"]["name"].as_str().unwrap_or("(no name)");
    match object["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

fn typed<T: serde::de::DeserializeOwned>(place: &Place, object: Value) -> Result<T, ManifestError> {
    let described = describe(&object);
    serde_path_to_error::deserialize(object).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        ManifestError {
            place: place.clone(),
            object: described,
            reason: if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            },
        }
    })
}

/// The API group, with the workloads of `extensions` counted as `apps` (the same objects).
fn identity(object: &Value) -> Option<(String, String, String, String)> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str()?;
    let group = match api_version.rsplit_once('/') {
        Some(("extensions", _))
            if matches!(
                kind,
                "Deployment" | "DaemonSet" | "ReplicaSet" | "StatefulSet"
            ) =>
        {
            "apps"
        }
        Some((group, _)) => group,
        None => "",
    };
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
    Some((group.into(), kind.into(), namespace.into(), name.into()))
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
    /// read are counted and otherwise ignored. An object given twice counts once (the last
    /// one); the duplicates are listed.
    pub fn from_manifests<M: Into<Manifest>>(
        objects: impl IntoIterator<Item = M>,
    ) -> Result<Self, ManifestError> {
        let mut inventory = Inventory::default();
        let mut kept: Vec<Manifest> = Vec::new();
        let mut seen: HashMap<(String, String, String, String), usize> = HashMap::new();
        let mut places: Vec<Vec<Place>> = Vec::new();
        for (index, object) in objects.into_iter().enumerate() {
            let mut manifest: Manifest = object.into();
            if manifest.place == Place::default() {
                manifest.place.document = Some(index + 1);
            }
            let Some(key) = identity(&manifest.object) else {
                kept.push(manifest);
                places.push(Vec::new());
                continue;
            };
            match seen.get(&key) {
                Some(&at) => {
                    places[at].push(manifest.place.clone());
                    kept[at] = manifest;
                }
                None => {
                    seen.insert(key, kept.len());
                    places.push(vec![manifest.place.clone()]);
                    kept.push(manifest);
                }
            }
        }
        for (manifest, places) in kept.iter().zip(places) {
            if places.len() > 1 {
                inventory.duplicates.push(Duplicate {
                    object: describe(&manifest.object),
                    places,
                });
            }
        }
        for manifest in kept {
            inventory.add(manifest)?;
        }
        Ok(inventory)
    }

    fn add(&mut self, manifest: Manifest) -> Result<(), ManifestError> {
        let Manifest { object, place } = manifest;
        let api_version = object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        match (api_version.as_str(), kind.as_str()) {
            (ADMISSION_V1 | ADMISSION_V1BETA1, VALIDATING | MUTATING) => {
                check_webhook_values(&place, &object)?;
                let mut object = object;
                self.invalid_ca_bundles
                    .extend(take_invalid_ca_bundles(&place, &mut object));
                if api_version == ADMISSION_V1BETA1 {
                    let name = object["metadata"]["name"].as_str().unwrap_or_default();
                    self.v1beta1.push(format!("{kind}/{name}"));
                }
                let object = with_api_version(object, ADMISSION_V1);
                if kind == VALIDATING {
                    self.validating.push(typed(&place, object)?);
                } else {
                    self.mutating.push(typed(&place, object)?);
                }
            }
            ("v1", "Namespace") => self.namespaces.push(typed(&place, object)?),
            ("v1", "Service") => self.services.push(typed(&place, object)?),
            ("v1", "Pod") => self.pods.push(typed(&place, object)?),
            ("discovery.k8s.io/v1", "EndpointSlice") => {
                self.endpoint_slices.push(typed(&place, object)?)
            }
            ("apps/v1" | "apps/v1beta1" | "apps/v1beta2" | "extensions/v1beta1", "Deployment") => {
                self.deployments.push(typed(&place, as_apps_v1(object))?)
            }
            ("apps/v1" | "apps/v1beta1" | "apps/v1beta2", "StatefulSet") => {
                self.stateful_sets.push(typed(&place, as_apps_v1(object))?)
            }
            ("apps/v1" | "apps/v1beta2" | "extensions/v1beta1", "DaemonSet") => {
                self.daemon_sets.push(typed(&place, as_apps_v1(object))?)
            }
            (
                "autoscaling/v1" | "autoscaling/v2" | "autoscaling/v2beta1" | "autoscaling/v2beta2",
                "HorizontalPodAutoscaler",
            ) => self.autoscalers.push(autoscaler(&place, object)?),
            _ => {
                *self
                    .ignored
                    .entry(format!("{api_version} {kind}"))
                    .or_default() += 1
            }
        }
        Ok(())
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

/// An older workload apiVersion read as apps/v1: the fields the rules read (replicas, the
/// pod template) kept their meaning; a missing selector defaulted to the template's labels.
fn as_apps_v1(mut object: Value) -> Value {
    object["apiVersion"] = Value::String("apps/v1".into());
    let labels = object["spec"]["template"]["metadata"]["labels"].clone();
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut)
        && !spec.contains_key("selector")
        && labels.is_object()
    {
        spec.insert(
            "selector".into(),
            serde_json::json!({ "matchLabels": labels }),
        );
    }
    object
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AutoscalerObject {
    metadata: AutoscalerMetadata,
    spec: AutoscalerSpec,
}

#[derive(serde::Deserialize)]
struct AutoscalerMetadata {
    name: String,
    namespace: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AutoscalerSpec {
    scale_target_ref: ScaleTargetRef,
    min_replicas: Option<i32>,
    max_replicas: Option<i32>,
}

#[derive(serde::Deserialize)]
struct ScaleTargetRef {
    kind: String,
    name: String,
}

fn autoscaler(place: &Place, object: Value) -> Result<Autoscaler, ManifestError> {
    let hpa: AutoscalerObject = typed(place, object)?;
    Ok(Autoscaler {
        namespace: hpa.metadata.namespace.unwrap_or_default(),
        name: hpa.metadata.name,
        target_kind: hpa.spec.scale_target_ref.kind,
        target_name: hpa.spec.scale_target_ref.name,
        min_replicas: hpa.spec.min_replicas,
        max_replicas: hpa.spec.max_replicas,
    })
}

/// The values each enum field of a webhook may take, as the apiserver validates them.
const FAILURE_POLICIES: &[&str] = &["Fail", "Ignore"];
const MATCH_POLICIES: &[&str] = &["Exact", "Equivalent"];
const SIDE_EFFECTS_V1: &[&str] = &["None", "NoneOnDryRun"];
const SIDE_EFFECTS_V1BETA1: &[&str] = &["None", "NoneOnDryRun", "Some", "Unknown"];
const REINVOCATION_POLICIES: &[&str] = &["Never", "IfNeeded"];
const SCOPES: &[&str] = &["*", "Cluster", "Namespaced"];
const OPERATIONS: &[&str] = &["*", "CREATE", "UPDATE", "DELETE", "CONNECT"];

/// Refuses a webhook configuration with a value the apiserver refuses (`failurePolicy: Fial`):
/// read as anything, it would change what the rules conclude. Types are left to the schema.
fn check_webhook_values(place: &Place, object: &Value) -> Result<(), ManifestError> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let beta = object["apiVersion"] == ADMISSION_V1BETA1;
    let configuration = object["metadata"]["name"].as_str().unwrap_or("(no name)");
    let Some(webhooks) = object["webhooks"].as_array() else {
        return Ok(());
    };
    for (i, webhook) in webhooks.iter().enumerate() {
        let name = webhook["name"].as_str().unwrap_or("(no name)");
        let refuse = |field: String, value: &str, allowed: &[&str]| {
            let version = if beta {
                ADMISSION_V1BETA1
            } else {
                ADMISSION_V1
            };
            ManifestError {
                place: place.clone(),
                object: format!("{kind} {configuration}, webhook {name}"),
                reason: format!(
                    "{field} {value:?} is not one of {} in {version}: the apiserver refuses this configuration",
                    allowed.join(", ")
                ),
            }
        };
        let one_of = |field: &str, value: &Value, allowed: &[&str]| match value.as_str() {
            Some(v) if !allowed.contains(&v) => Err(refuse(field.to_string(), v, allowed)),
            _ => Ok(()),
        };
        one_of(
            &format!("webhooks[{i}].failurePolicy"),
            &webhook["failurePolicy"],
            FAILURE_POLICIES,
        )?;
        one_of(
            &format!("webhooks[{i}].matchPolicy"),
            &webhook["matchPolicy"],
            MATCH_POLICIES,
        )?;
        one_of(
            &format!("webhooks[{i}].sideEffects"),
            &webhook["sideEffects"],
            if beta {
                SIDE_EFFECTS_V1BETA1
            } else {
                SIDE_EFFECTS_V1
            },
        )?;
        if kind == MUTATING {
            one_of(
                &format!("webhooks[{i}].reinvocationPolicy"),
                &webhook["reinvocationPolicy"],
                REINVOCATION_POLICIES,
            )?;
        }
        if let Some(t) = webhook["timeoutSeconds"].as_i64()
            && !(1..=30).contains(&t)
        {
            return Err(ManifestError {
                place: place.clone(),
                object: format!("{kind} {configuration}, webhook {name}"),
                reason: format!(
                    "webhooks[{i}].timeoutSeconds {t} is not between 1 and 30: the apiserver refuses this configuration"
                ),
            });
        }
        for (j, rule) in webhook["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            one_of(
                &format!("webhooks[{i}].rules[{j}].scope"),
                &rule["scope"],
                SCOPES,
            )?;
            for (k, op) in rule["operations"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                one_of(
                    &format!("webhooks[{i}].rules[{j}].operations[{k}]"),
                    op,
                    OPERATIONS,
                )?;
            }
        }
    }
    Ok(())
}

/// Takes out every caBundle that is not base64 and says why. Base64 as Go reads it: standard
/// alphabet, padded, line breaks ignored (a valid one is kept without them).
fn take_invalid_ca_bundles(place: &Place, object: &mut Value) -> Vec<InvalidCaBundle> {
    use base64::Engine;
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let configuration = object["metadata"]["name"]
        .as_str()
        .unwrap_or("(no name)")
        .to_string();
    let mut out = Vec::new();
    let Some(webhooks) = object.get_mut("webhooks").and_then(Value::as_array_mut) else {
        return out;
    };
    for (i, webhook) in webhooks.iter_mut().enumerate() {
        let name = webhook["name"].as_str().unwrap_or("(no name)").to_string();
        let Some(client) = webhook
            .get_mut("clientConfig")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let (value, reason) = match client.get("caBundle") {
            None | Some(Value::Null) => continue,
            Some(Value::String(written)) => {
                let compact: String = written
                    .chars()
                    .filter(|c| !matches!(c, '\r' | '\n'))
                    .collect();
                match base64::engine::general_purpose::STANDARD.decode(&compact) {
                    Ok(_) => {
                        client.insert("caBundle".into(), Value::String(compact));
                        continue;
                    }
                    Err(e) => (written.clone(), base64_reason(&e, written)),
                }
            }
            Some(other) => (other.to_string(), "it is not a string".to_string()),
        };
        client.remove("caBundle");
        out.push(InvalidCaBundle {
            kind: kind.clone(),
            configuration: configuration.clone(),
            webhook: name,
            field: format!("webhooks[{i}].clientConfig.caBundle"),
            value: value.chars().take(60).collect(),
            reason,
            place: place.clone(),
        });
    }
    out
}

fn base64_reason(error: &base64::DecodeError, written: &str) -> String {
    use base64::DecodeError;
    let mut reason = match error {
        DecodeError::InvalidByte(offset, byte) | DecodeError::InvalidLastSymbol(offset, byte) => {
            format!(
                "character {:?} at offset {offset} is not in the base64 alphabet",
                char::from(*byte)
            )
        }
        DecodeError::InvalidLength(_) | DecodeError::InvalidPadding => {
            "its length or `=` padding is wrong (base64 comes in groups of 4 characters)".into()
        }
    };
    if written.contains("${") || written.contains("{{") || written.contains("<") {
        reason.push_str("; it looks like a template placeholder that was never filled in");
    }
    reason
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
        assert_eq!(error.place.document, Some(1));
        assert_eq!(error.object, "Deployment d");
        assert!(
            error
                .to_string()
                .starts_with("document 1: Deployment d: spec.replicas: invalid type"),
            "{error}"
        );
    }

    fn webhook_configuration(webhook: Value) -> Value {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
               "metadata": {"name": "cfg"}, "webhooks": [
                   {"name": "first", "clientConfig": {"url": "https://a"}, "sideEffects": "None", "admissionReviewVersions": ["v1"]},
                   webhook]})
    }

    #[test]
    fn an_object_given_twice_counts_once_and_the_last_one_is_kept() {
        let deployment = |replicas: i32| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n"},
                   "spec": {"replicas": replicas}})
        };
        let mut old = deployment(3);
        old["apiVersion"] = json!("extensions/v1beta1");
        let place = |file: &str, document| Place {
            file: file.into(),
            document: Some(document),
            item: None,
            line: None,
        };
        let inventory = Inventory::from_manifests(vec![
            Manifest {
                object: old,
                place: place("a.yaml", 1),
            },
            Manifest {
                object: deployment(1),
                place: place("b.yaml", 2),
            },
            Manifest {
                object: json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}),
                place: place("b.yaml", 3),
            },
        ])
        .unwrap();
        assert_eq!(inventory.deployments.len(), 1);
        assert_eq!(inventory.deployments[0].spec.replicas, Some(1));
        assert_eq!(inventory.duplicates.len(), 1);
        assert_eq!(
            inventory.duplicates[0].to_string(),
            "Deployment n/d appears 2 times: a.yaml document 1 and b.yaml document 2; the last one is checked (kubectl apply would leave that one)"
        );
    }

    #[test]
    fn values_the_apiserver_refuses_are_errors_naming_the_webhook_and_field() {
        for (field, value, path) in [
            (
                "failurePolicy",
                json!("Fial"),
                "webhooks[1].failurePolicy \"Fial\" is not one of Fail, Ignore",
            ),
            ("matchPolicy", json!("exact"), "webhooks[1].matchPolicy"),
            (
                "sideEffects",
                json!("Unknown"),
                "webhooks[1].sideEffects \"Unknown\" is not one of None, NoneOnDryRun in admissionregistration.k8s.io/v1",
            ),
            (
                "rules",
                json!([{"operations": ["CREATE"], "scope": "Namespace"}]),
                "webhooks[1].rules[0].scope",
            ),
            (
                "rules",
                json!([{"operations": ["CREATE", "PATCH"]}]),
                "webhooks[1].rules[0].operations[1] \"PATCH\"",
            ),
            (
                "timeoutSeconds",
                json!(60),
                "webhooks[1].timeoutSeconds 60 is not between 1 and 30",
            ),
        ] {
            let mut webhook = json!({"name": "second", "clientConfig": {"url": "https://b"}, "sideEffects": "None", "admissionReviewVersions": ["v1"]});
            webhook[field] = value;
            let e = Inventory::from_manifests(vec![webhook_configuration(webhook)]).unwrap_err();
            assert_eq!(
                e.object,
                "ValidatingWebhookConfiguration cfg, webhook second"
            );
            assert!(e.reason.starts_with(path), "{e}");
            assert!(
                e.reason
                    .ends_with("the apiserver refuses this configuration"),
                "{e}"
            );
        }
    }

    #[test]
    fn an_invalid_ca_bundle_is_set_aside_and_the_rest_is_read() {
        for (bundle, reason) in [
            (json!("XYZ"), "groups of 4"),
            (json!("${CA_BUNDLE}"), "template placeholder"),
            (json!("Cg="), "padding"),
            (json!(12345), "not a string"),
        ] {
            let webhook = json!({"name": "second", "clientConfig": {"url": "https://b", "caBundle": bundle},
                                 "sideEffects": "None", "admissionReviewVersions": ["v1"]});
            let inventory =
                Inventory::from_manifests(vec![webhook_configuration(webhook)]).unwrap();
            assert_eq!(inventory.validating.len(), 1);
            let invalid = &inventory.invalid_ca_bundles;
            assert_eq!(invalid.len(), 1, "{bundle}");
            assert_eq!(invalid[0].webhook, "second");
            assert_eq!(invalid[0].field, "webhooks[1].clientConfig.caBundle");
            assert!(
                invalid[0].reason.contains(reason),
                "{bundle}: {}",
                invalid[0].reason
            );
        }
        let webhook = json!({"name": "second", "clientConfig": {"url": "https://b", "caBundle": "Q2c9\nPQ==\n"},
                             "sideEffects": "None", "admissionReviewVersions": ["v1"]});
        let inventory = Inventory::from_manifests(vec![webhook_configuration(webhook)]).unwrap();
        assert!(inventory.invalid_ca_bundles.is_empty());
    }

    #[test]
    fn workloads_of_older_api_versions_and_autoscalers_are_read() {
        let inventory = Inventory::from_manifests(vec![
            json!({"apiVersion": "apps/v1beta2", "kind": "StatefulSet", "metadata": {"name": "s", "namespace": "n"},
                   "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "s"}}}}}),
            json!({"apiVersion": "extensions/v1beta1", "kind": "DaemonSet", "metadata": {"name": "d", "namespace": "n"},
                   "spec": {"template": {"metadata": {"labels": {"app": "d"}}}}}),
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "n"},
                   "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "s"}, "maxReplicas": 4}}),
        ])
        .unwrap();
        assert_eq!(inventory.stateful_sets[0].spec.replicas, Some(2));
        let selector = inventory.daemon_sets[0].spec.selector.match_labels.clone();
        assert_eq!(selector.unwrap().get("app").map(String::as_str), Some("d"));
        assert!(inventory.autoscalers[0].scales("StatefulSet", "n", "s"));
        assert_eq!(inventory.autoscalers[0].min_replicas, None);
        let e = Inventory::from_manifests(vec![
            json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "n"},
                   "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "minReplicas": "one"}}),
        ])
        .unwrap_err();
        assert!(
            e.to_string().contains("spec.minReplicas: invalid type"),
            "{e}"
        );
    }
}
