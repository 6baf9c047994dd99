//! A webhook's effective values, as the apiserver defaults them (v1: failurePolicy Fail,
//! timeoutSeconds 10, matchPolicy Equivalent; v1beta1: Ignore, 30, Exact; unset selectors
//! match everything), and whether it intercepts a given request. Each value remembers whether
//! it was set, so that evidence can say "failurePolicy unset (v1 default Fail)". Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, RuleWithOperations, ValidatingWebhook, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as MetaSelector;

use super::Inventory;
use crate::admission_rules::{self, ApiVersion, DEFAULT_SERVICE_PORT, Request, Rule};
use crate::selector::LabelSelector;

pub const VALIDATING: &str = "ValidatingWebhookConfiguration";
pub const MUTATING: &str = "MutatingWebhookConfiguration";

/// The Service a webhook calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
    pub port: i32,
    pub path: Option<String>,
}

/// A namespaceSelector or objectSelector as written and as parsed. One that cannot be parsed
/// counts as matching: the apiserver fails the call, which blocks the write all the same.
#[derive(Clone, Debug)]
pub struct Selector {
    /// Compact JSON as written; None when unset.
    pub written: Option<String>,
    pub parsed: Option<LabelSelector>,
}

impl Selector {
    fn of(selector: Option<&MetaSelector>) -> Selector {
        let value = selector.and_then(|s| serde_json::to_value(s).ok());
        let written = value.as_ref().map(|v| v.to_string());
        let parsed = match &value {
            None => Some(LabelSelector::everything()),
            Some(v) => LabelSelector::from_json(v).ok(),
        };
        Selector { written, parsed }
    }

    /// Whether it selects everything (unset or `{}`).
    pub fn is_everything(&self) -> bool {
        self.parsed.as_ref().is_some_and(LabelSelector::is_empty)
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.parsed
            .as_ref()
            .is_none_or(|s| s.is_empty() || s.matches(labels))
    }

    /// `{...}` as written, `unset` or `{}`, with a note when it cannot be parsed.
    pub fn describe(&self) -> String {
        match (&self.written, &self.parsed) {
            (None, _) => "unset (matches everything)".into(),
            (Some(w), Some(p)) if p.is_empty() => format!("{w} (matches everything)"),
            (Some(w), Some(_)) => w.clone(),
            (Some(w), None) => format!("{w} (invalid: the apiserver fails every call)"),
        }
    }
}

/// One webhook with its defaults applied.
#[derive(Clone, Debug)]
pub struct EffectiveWebhook<'a> {
    /// `ValidatingWebhookConfiguration` or `MutatingWebhookConfiguration`.
    pub kind: &'static str,
    pub configuration: &'a str,
    pub name: &'a str,
    pub api_version: ApiVersion,
    pub failure_policy: String,
    pub failure_policy_set: bool,
    pub timeout_seconds: i32,
    pub timeout_set: bool,
    pub match_policy: String,
    pub rules: Vec<Rule>,
    pub namespace_selector: Selector,
    pub object_selector: Selector,
    pub service: Option<ServiceRef>,
    pub url: Option<String>,
}

impl EffectiveWebhook<'_> {
    /// failurePolicy Fail (or unset in v1): a failed call fails the request.
    pub fn fail_closed(&self) -> bool {
        self.failure_policy != "Ignore"
    }

    /// `failurePolicy Fail` or `failurePolicy unset (v1 default Fail)`.
    pub fn describe_failure_policy(&self) -> String {
        if self.failure_policy_set {
            format!("failurePolicy {}", self.failure_policy)
        } else {
            format!(
                "failurePolicy unset ({} default {})",
                self.api_version.as_str(),
                self.failure_policy
            )
        }
    }

    /// `timeoutSeconds 30` or `timeoutSeconds unset (v1 default 10)`.
    pub fn describe_timeout(&self) -> String {
        if self.timeout_set {
            format!("timeoutSeconds {}", self.timeout_seconds)
        } else {
            format!(
                "timeoutSeconds unset ({} default {})",
                self.api_version.as_str(),
                self.timeout_seconds
            )
        }
    }

    /// The rule that sends this request to the webhook, if any (selectors aside).
    pub fn matching_rule(&self, request: &Request<'_>) -> Option<&Rule> {
        if admission_rules::exempt(request.group, request.resource) {
            return None;
        }
        admission_rules::match_rules(&self.rules, self.match_policy == "Exact", request)
            .map(|m| &self.rules[m.rule])
    }

    /// `opa/opa` for a service webhook, the URL otherwise.
    pub fn destination(&self) -> String {
        match (&self.service, &self.url) {
            (Some(s), _) => format!("Service {}/{}", s.namespace, s.name),
            (None, Some(url)) => format!("URL {url}"),
            (None, None) => "no clientConfig".into(),
        }
    }
}

/// The fields both webhook kinds share.
struct Fields<'a> {
    name: &'a str,
    client: &'a WebhookClientConfig,
    failure_policy: Option<&'a String>,
    match_policy: Option<&'a String>,
    timeout_seconds: Option<i32>,
    rules: Vec<Rule>,
    namespace_selector: Option<&'a MetaSelector>,
    object_selector: Option<&'a MetaSelector>,
}

fn build<'a>(
    kind: &'static str,
    configuration: &'a str,
    api_version: ApiVersion,
    f: Fields<'a>,
) -> EffectiveWebhook<'a> {
    let defaults = api_version.defaults();
    EffectiveWebhook {
        kind,
        configuration,
        name: f.name,
        api_version,
        failure_policy: f
            .failure_policy
            .cloned()
            .unwrap_or_else(|| defaults.failure_policy.into()),
        failure_policy_set: f.failure_policy.is_some(),
        timeout_seconds: f.timeout_seconds.unwrap_or(defaults.timeout_seconds),
        timeout_set: f.timeout_seconds.is_some(),
        match_policy: f
            .match_policy
            .cloned()
            .unwrap_or_else(|| defaults.match_policy.into()),
        rules: f.rules,
        namespace_selector: Selector::of(f.namespace_selector),
        object_selector: Selector::of(f.object_selector),
        service: f.client.service.as_ref().map(|s| ServiceRef {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            port: s.port.unwrap_or(DEFAULT_SERVICE_PORT),
            path: s.path.clone(),
        }),
        url: f.client.url.clone(),
    }
}

fn rules_of(rules: Option<&Vec<RuleWithOperations>>) -> Vec<Rule> {
    rules.into_iter().flatten().map(Rule::from).collect()
}

fn validating(h: &ValidatingWebhook) -> Fields<'_> {
    Fields {
        name: &h.name,
        client: &h.client_config,
        failure_policy: h.failure_policy.as_ref(),
        match_policy: h.match_policy.as_ref(),
        timeout_seconds: h.timeout_seconds,
        rules: rules_of(h.rules.as_ref()),
        namespace_selector: h.namespace_selector.as_ref(),
        object_selector: h.object_selector.as_ref(),
    }
}

fn mutating(h: &MutatingWebhook) -> Fields<'_> {
    Fields {
        name: &h.name,
        client: &h.client_config,
        failure_policy: h.failure_policy.as_ref(),
        match_policy: h.match_policy.as_ref(),
        timeout_seconds: h.timeout_seconds,
        rules: rules_of(h.rules.as_ref()),
        namespace_selector: h.namespace_selector.as_ref(),
        object_selector: h.object_selector.as_ref(),
    }
}

fn api_version_of(inventory: &Inventory, kind: &str, name: &str) -> ApiVersion {
    let key = format!("{kind}/{name}");
    if inventory.v1beta1.contains(&key) {
        ApiVersion::V1beta1
    } else {
        ApiVersion::V1
    }
}

/// Every webhook of every configuration, mutating first, with its defaults applied.
pub fn webhooks(inventory: &Inventory) -> Vec<EffectiveWebhook<'_>> {
    let mut out = Vec::new();
    for config in &inventory.mutating {
        let name = config.metadata.name.as_deref().unwrap_or_default();
        let api = api_version_of(inventory, MUTATING, name);
        for h in config.webhooks.iter().flatten() {
            out.push(build(MUTATING, name, api, mutating(h)));
        }
    }
    for config in &inventory.validating {
        let name = config.metadata.name.as_deref().unwrap_or_default();
        let api = api_version_of(inventory, VALIDATING, name);
        for h in config.webhooks.iter().flatten() {
            out.push(build(VALIDATING, name, api, validating(h)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inventory(api_version: &str, webhook: serde_json::Value) -> Inventory {
        Inventory::from_manifests(vec![json!({
            "apiVersion": api_version,
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "cfg"},
            "webhooks": [webhook],
        })])
        .expect("valid")
    }

    #[test]
    fn v1_and_v1beta1_defaults_and_whether_they_were_set() {
        let bare = json!({"name": "h", "clientConfig": {"service": {"namespace": "n", "name": "s"}},
                          "sideEffects": "None", "admissionReviewVersions": ["v1"]});
        let v1 = inventory("admissionregistration.k8s.io/v1", bare.clone());
        let h = &webhooks(&v1)[0];
        assert!(h.fail_closed());
        assert_eq!(h.timeout_seconds, 10);
        assert_eq!(h.match_policy, "Equivalent");
        assert_eq!(h.service.as_ref().map(|s| s.port), Some(443));
        assert!(h.namespace_selector.is_everything() && h.object_selector.is_everything());
        assert_eq!(
            h.describe_failure_policy(),
            "failurePolicy unset (v1 default Fail)"
        );

        let beta = inventory("admissionregistration.k8s.io/v1beta1", bare);
        let h = &webhooks(&beta)[0];
        assert!(!h.fail_closed());
        assert_eq!(h.timeout_seconds, 30);
        assert_eq!(h.match_policy, "Exact");
        assert_eq!(
            h.describe_timeout(),
            "timeoutSeconds unset (v1beta1 default 30)"
        );

        let set = inventory(
            "admissionregistration.k8s.io/v1",
            json!({"name": "h", "clientConfig": {"url": "https://x"}, "sideEffects": "None",
                   "admissionReviewVersions": ["v1"], "failurePolicy": "Ignore", "timeoutSeconds": 3}),
        );
        let h = &webhooks(&set)[0];
        assert_eq!(h.describe_failure_policy(), "failurePolicy Ignore");
        assert_eq!(h.describe_timeout(), "timeoutSeconds 3");
        assert_eq!(h.destination(), "URL https://x");
    }

    #[test]
    fn an_invalid_selector_counts_as_matching() {
        let v1 = inventory(
            "admissionregistration.k8s.io/v1",
            json!({"name": "h", "clientConfig": {"url": "https://x"}, "sideEffects": "None",
                   "admissionReviewVersions": ["v1"],
                   "namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}}),
        );
        let h = &webhooks(&v1)[0];
        assert!(h.namespace_selector.matches(&BTreeMap::new()));
        assert!(h.namespace_selector.describe().contains("invalid"));
    }
}
