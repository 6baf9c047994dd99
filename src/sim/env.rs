//! What admission needs from the rest of the simulator: the webhook configurations and
//! namespaces in the store, how a webhook's Service resolves to endpoints, the scenario's
//! backends, and the admission metrics.

use std::collections::BTreeMap;

use serde_json::Value;

use super::admission::{AdmissionEnv, BackendTarget, ServiceResolution, WebhookCallRecord};
use super::metrics::{WebhookKind, WebhookRecord};
use super::server::Apiserver;

pub struct AdmissionContext<'a> {
    api: &'a Apiserver,
}

impl<'a> AdmissionContext<'a> {
    pub fn new(api: &'a Apiserver) -> Self {
        AdmissionContext { api }
    }
}

/// The first ready endpoint address of a Service: EndpointSlices first (as the apiserver's
/// service resolver uses), then the Endpoints object.
pub fn ready_endpoint(api: &Apiserver, namespace: &str, name: &str) -> Option<String> {
    let store = api.store();
    for (_, slice) in store.list("endpointslices", Some(namespace)) {
        if slice["metadata"]["labels"]["kubernetes.io/service-name"] != name {
            continue;
        }
        let ready = slice["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| {
                e["conditions"]["ready"] != false
                    && e["addresses"].as_array().is_some_and(|a| !a.is_empty())
            });
        if let Some(ip) = ready.and_then(|e| e["addresses"][0].as_str()) {
            return Some(ip.to_string());
        }
    }
    store
        .get("endpoints", namespace, name)?
        .get("subsets")?
        .as_array()?
        .iter()
        .find_map(|s| {
            s["addresses"].as_array()?.first()?["ip"]
                .as_str()
                .map(str::to_string)
        })
}

impl AdmissionEnv for AdmissionContext<'_> {
    fn webhook_configurations(&self) -> (Vec<Value>, Vec<Value>) {
        let store = self.api.store();
        let all = |storage: &str| store.list(storage, None).map(|(_, o)| o.clone()).collect();
        (
            all("mutatingwebhookconfigurations"),
            all("validatingwebhookconfigurations"),
        )
    }

    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.api.namespace_labels(namespace)
    }

    fn resolve_service(&self, namespace: &str, name: &str, _port: i32) -> ServiceResolution {
        if self.api.store().get("services", namespace, name).is_none() {
            return ServiceResolution::NotFound;
        }
        match ready_endpoint(self.api, namespace, name) {
            Some(ip) => ServiceResolution::Endpoint { ip },
            None => ServiceResolution::NoEndpoints,
        }
    }

    fn backend(
        &self,
        webhook: &str,
        service: Option<(&str, &str)>,
        url: Option<&str>,
    ) -> Option<BackendTarget> {
        self.api.backends.target_for(webhook, service, url)
    }

    fn record(&self, call: &WebhookCallRecord) {
        let kind = match call.webhook_type {
            super::admission::WebhookType::Mutating => WebhookKind::Mutating,
            super::admission::WebhookType::Validating => WebhookKind::Validating,
        };
        self.api.metrics.record_webhook(&WebhookRecord {
            name: &call.name,
            kind,
            operation: call.operation.as_str(),
            rejected: call.rejected,
            duration: call.duration,
            code: (call.code != 0).then_some(call.code),
            error_type: call.rejection.map(|(t, _)| t.as_str()),
            rejection_code: call.rejection.map(|(_, c)| c),
            fail_open: call.fail_open,
        });
    }
}
