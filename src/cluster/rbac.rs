//! The RBAC kube-rescue needs, in one place: the ClusterRoles it ships (`kube-rescue rbac`),
//! the rule each refresh source needs (so that a source answered 403 can name the rule that is
//! missing), and the reads a plan makes. Nothing here talks to a cluster.

/// `assets/rbac/kube-rescue-read-only.yaml`: the ClusterRole of what a refresh and a plan read,
/// and a ClusterRoleBinding to a group.
pub const READ_ONLY_YAML: &str = include_str!("../../assets/rbac/kube-rescue-read-only.yaml");
/// `assets/rbac/kube-rescue-responder.yaml`: the ClusterRole of what kube-rescue's changes
/// write, and ClusterRoleBindings of it and of the read-only role to a group.
pub const RESPONDER_YAML: &str = include_str!("../../assets/rbac/kube-rescue-responder.yaml");
/// The name of the read-only ClusterRole.
pub const READ_ONLY_ROLE: &str = "kube-rescue-read-only";
/// The name of the responder ClusterRole.
pub const RESPONDER_ROLE: &str = "kube-rescue-responder";

/// Where a request is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Cluster-scoped, or across all namespaces.
    Cluster,
    /// In this namespace.
    Namespace(&'static str),
    /// In the namespace of the webhook Service the source is about (`NS` of `pods NS/NAME`).
    WebhookNamespace,
}

/// What one request needs from RBAC: a verb on a resource (of an API group, maybe one object
/// by name), or a verb on a non-resource URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need {
    pub api_group: &'static str,
    /// Plural resource; empty for a non-resource URL.
    pub resource: &'static str,
    pub verb: &'static str,
    /// Only this object (`resourceNames`), when the request names one that is always the same.
    pub resource_name: Option<&'static str>,
    /// A path such as `/metrics`, for a non-resource request.
    pub non_resource_url: Option<&'static str>,
    pub scope: Scope,
}

impl Need {
    const fn resource(
        api_group: &'static str,
        resource: &'static str,
        verb: &'static str,
        scope: Scope,
    ) -> Need {
        Need {
            api_group,
            resource,
            verb,
            resource_name: None,
            non_resource_url: None,
            scope,
        }
    }

    const fn url(url: &'static str) -> Need {
        Need {
            api_group: "",
            resource: "",
            verb: "get",
            resource_name: None,
            non_resource_url: Some(url),
            scope: Scope::Cluster,
        }
    }

    const fn named(mut self, name: &'static str) -> Need {
        self.resource_name = Some(name);
        self
    }

    /// The rule as one line of YAML, as it goes into a ClusterRole's `rules`:
    /// `{apiGroups: [""], resources: ["events"], verbs: ["list"]}`.
    pub fn yaml(&self) -> String {
        render_rule(self)
    }
}

/// Renders a rule as a one-line YAML flow mapping, e.g.
/// `{apiGroups: [""], resources: ["endpoints"], resourceNames: ["kubernetes"], verbs: ["get"]}`
/// or `{nonResourceURLs: ["/metrics"], verbs: ["get"]}`.
pub fn render_rule(need: &Need) -> String {
    if let Some(url) = need.non_resource_url {
        return format!(
            "{{nonResourceURLs: [\"{url}\"], verbs: [\"{}\"]}}",
            need.verb
        );
    }
    let names = need
        .resource_name
        .map(|n| format!(", resourceNames: [\"{n}\"]"))
        .unwrap_or_default();
    format!(
        "{{apiGroups: [\"{}\"], resources: [\"{}\"]{names}, verbs: [\"{}\"]}}",
        need.api_group, need.resource, need.verb
    )
}

/// One refresh source and the rule its request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceNeed {
    /// The source's name as `Snapshot::source_errors()` gives it; the sources of a webhook
    /// backend end in `NS/NAME` there (`service opa/opa`) and here (`service NS/NAME`).
    pub source: &'static str,
    pub need: Need,
}

const fn source(source: &'static str, need: Need) -> SourceNeed {
    SourceNeed { source, need }
}

/// Every source of a refresh and the rule it needs (one request each; see
/// `collect::requests_per_refresh`).
pub const REFRESH_NEEDS: &[SourceNeed] = &[
    source("version", Need::url("/version")),
    source("livez", Need::url("/livez")),
    source("readyz", Need::url("/readyz")),
    source("metrics", Need::url("/metrics")),
    source(
        "validatingwebhookconfigurations",
        Need::resource(
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "list",
            Scope::Cluster,
        ),
    ),
    source(
        "mutatingwebhookconfigurations",
        Need::resource(
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            "list",
            Scope::Cluster,
        ),
    ),
    source(
        "namespaces",
        Need::resource("", "namespaces", "list", Scope::Cluster),
    ),
    source("nodes", Need::resource("", "nodes", "list", Scope::Cluster)),
    source(
        "leases",
        Need::resource(
            "coordination.k8s.io",
            "leases",
            "list",
            Scope::Namespace("kube-node-lease"),
        ),
    ),
    source(
        "events",
        Need::resource("", "events", "list", Scope::Cluster),
    ),
    source(
        "node events",
        Need::resource("", "events", "list", Scope::Cluster),
    ),
    source(
        "apiservices",
        Need::resource(
            "apiregistration.k8s.io",
            "apiservices",
            "list",
            Scope::Cluster,
        ),
    ),
    source(
        "endpoints/kubernetes",
        Need::resource("", "endpoints", "get", Scope::Namespace("default")).named("kubernetes"),
    ),
    source(
        "endpointslices/kubernetes",
        Need::resource(
            "discovery.k8s.io",
            "endpointslices",
            "list",
            Scope::Namespace("default"),
        ),
    ),
    source(
        "service NS/NAME",
        Need::resource("", "services", "get", Scope::WebhookNamespace),
    ),
    source(
        "endpointslices NS/NAME",
        Need::resource(
            "discovery.k8s.io",
            "endpointslices",
            "list",
            Scope::WebhookNamespace,
        ),
    ),
    source(
        "pods NS/NAME",
        Need::resource("", "pods", "list", Scope::WebhookNamespace),
    ),
    source(
        "deployments NS/NAME",
        Need::resource("apps", "deployments", "list", Scope::WebhookNamespace),
    ),
];

/// The reads of a plan (`fix` and `restore` without --confirm, and in read-only mode), beyond
/// what a refresh reads: (what reads it, the rule).
pub const PLAN_READS: &[(&str, Need)] = &[
    (
        "plan of a change to vwc/NAME: get the configuration",
        Need::resource(
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "get",
            Scope::Cluster,
        ),
    ),
    (
        "plan of a change to mwc/NAME: get the configuration",
        Need::resource(
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            "get",
            Scope::Cluster,
        ),
    ),
    (
        "plan of cordon, uncordon or restore of node/NAME: get the node",
        Need::resource("", "nodes", "get", Scope::Cluster),
    ),
    (
        "plan of restart-backend or restore of deployment/NS/NAME: get the Deployment",
        Need::resource("apps", "deployments", "get", Scope::Cluster),
    ),
    (
        "plan of restart-backend vwc/NAME: get the Service the webhook calls",
        Need::resource("", "services", "get", Scope::Cluster),
    ),
    (
        "plan of restart-backend vwc/NAME: list the Deployments of the Service's namespace",
        Need::resource("apps", "deployments", "list", Scope::Cluster),
    ),
];

/// A rule a source needs, with the namespace its request went to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingRule {
    pub need: Need,
    /// The namespace of the request; None when cluster-scoped or across all namespaces.
    pub namespace: Option<String>,
}

impl MissingRule {
    /// The rule as one line of YAML.
    pub fn yaml(&self) -> String {
        render_rule(&self.need)
    }

    /// Where it is needed: `in namespace kube-node-lease`, or `cluster-wide`.
    pub fn scope(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "cluster-wide".to_string(),
        }
    }
}

/// The rule the refresh source `source` (a name from `Snapshot::source_errors()`) needs, or
/// None for a name no refresh gives.
pub fn rule_for_source(source: &str) -> Option<MissingRule> {
    if let Some(entry) = REFRESH_NEEDS.iter().find(|e| e.source == source) {
        let namespace = match entry.need.scope {
            Scope::Namespace(ns) => Some(ns.to_string()),
            _ => None,
        };
        return Some(MissingRule {
            need: entry.need,
            namespace,
        });
    }
    let (prefix, service) = source.rsplit_once(' ')?;
    let (namespace, name) = service.split_once('/')?;
    if namespace.is_empty() || name.is_empty() {
        return None;
    }
    let entry = REFRESH_NEEDS.iter().find(|e| {
        e.need.scope == Scope::WebhookNamespace && e.source.strip_suffix(" NS/NAME") == Some(prefix)
    })?;
    Some(MissingRule {
        need: entry.need,
        namespace: Some(namespace.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;
    use crate::cluster::snapshot::{Snapshot, WebhookBackend};

    /// (apiGroup, resource, verb, resourceName) or ("", URL, verb, "") for every grant.
    type Grant = (String, String, String, String);

    fn documents(yaml: &str) -> Vec<Value> {
        serde_saphyr::from_multiple::<Value>(yaml).expect("the shipped YAML parses")
    }

    fn grants_of(role: &Value) -> BTreeSet<Grant> {
        let list = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        let mut out = BTreeSet::new();
        for rule in role["rules"].as_array().expect("rules") {
            let verbs = list(&rule["verbs"]);
            for url in list(&rule["nonResourceURLs"]) {
                for verb in &verbs {
                    out.insert((String::new(), url.clone(), verb.clone(), String::new()));
                }
            }
            let names = list(&rule["resourceNames"]);
            let names = if names.is_empty() {
                vec![String::new()]
            } else {
                names
            };
            for group in list(&rule["apiGroups"]) {
                for resource in list(&rule["resources"]) {
                    for verb in &verbs {
                        for name in &names {
                            out.insert((
                                group.clone(),
                                resource.clone(),
                                verb.clone(),
                                name.clone(),
                            ));
                        }
                    }
                }
            }
        }
        out
    }

    fn grant_of(need: &Need) -> Grant {
        match need.non_resource_url {
            Some(url) => (String::new(), url.into(), need.verb.into(), String::new()),
            None => (
                need.api_group.into(),
                need.resource.into(),
                need.verb.into(),
                need.resource_name.unwrap_or_default().into(),
            ),
        }
    }

    #[test]
    fn the_shipped_read_only_role_grants_exactly_what_refresh_and_plans_read() {
        let docs = documents(READ_ONLY_YAML);
        let role = docs
            .iter()
            .find(|d| d["kind"] == "ClusterRole")
            .expect("a ClusterRole");
        assert_eq!(role["metadata"]["name"], READ_ONLY_ROLE);
        let shipped = grants_of(role);
        let needed: BTreeSet<Grant> = REFRESH_NEEDS
            .iter()
            .map(|e| &e.need)
            .chain(PLAN_READS.iter().map(|(_, n)| n))
            .map(grant_of)
            .collect();
        let extra: Vec<_> = shipped.difference(&needed).collect();
        let missing: Vec<_> = needed.difference(&shipped).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "granted but not needed: {extra:?}; needed but not granted: {missing:?}"
        );
        let binding = docs
            .iter()
            .find(|d| d["kind"] == "ClusterRoleBinding")
            .expect("a ClusterRoleBinding");
        assert_eq!(binding["roleRef"]["name"], READ_ONLY_ROLE);
        assert_eq!(binding["subjects"][0]["kind"], "Group");
    }

    #[test]
    fn the_responder_role_writes_and_reads_nothing_a_refresh_reads() {
        let docs = documents(RESPONDER_YAML);
        let role = docs
            .iter()
            .find(|d| d["kind"] == "ClusterRole")
            .expect("a ClusterRole");
        assert_eq!(role["metadata"]["name"], RESPONDER_ROLE);
        let grants = grants_of(role);
        for (group, resource, verb) in [
            (
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
                "delete",
            ),
            (
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations",
                "update",
            ),
            ("apps", "deployments", "update"),
            ("", "nodes", "update"),
            ("apiregistration.k8s.io", "apiservices", "delete"),
            ("", "configmaps", "create"),
            ("authorization.k8s.io", "selfsubjectaccessreviews", "create"),
        ] {
            assert!(
                grants.contains(&(group.into(), resource.into(), verb.into(), String::new())),
                "{verb} {resource}"
            );
        }
        assert!(
            !grants
                .iter()
                .any(|(_, _, verb, _)| verb == "list" || verb == "*")
        );
        let bound: Vec<&Value> = docs
            .iter()
            .filter(|d| d["kind"] == "ClusterRoleBinding")
            .map(|d| &d["roleRef"]["name"])
            .collect();
        assert_eq!(bound, [RESPONDER_ROLE, READ_ONLY_ROLE]);
    }

    #[test]
    fn every_source_of_a_snapshot_has_its_rule() {
        let snapshot = Snapshot {
            webhook_backends: vec![WebhookBackend {
                namespace: "opa".into(),
                name: "opa".into(),
                ..WebhookBackend::default()
            }],
            ..Snapshot::default()
        };
        for (name, _) in snapshot.source_errors() {
            assert!(rule_for_source(&name).is_some(), "no rule for {name}");
        }
        let pods = rule_for_source("pods opa/opa").expect("pods of a backend");
        assert_eq!(pods.namespace.as_deref(), Some("opa"));
        assert_eq!(
            pods.yaml(),
            r#"{apiGroups: [""], resources: ["pods"], verbs: ["list"]}"#
        );
        assert_eq!(pods.scope(), "in namespace opa");
        let leases = rule_for_source("leases").expect("leases");
        assert_eq!(leases.scope(), "in namespace kube-node-lease");
        assert_eq!(
            rule_for_source("metrics").map(|r| r.yaml()).as_deref(),
            Some(r#"{nonResourceURLs: ["/metrics"], verbs: ["get"]}"#)
        );
        assert_eq!(
            rule_for_source("endpoints/kubernetes")
                .map(|r| r.yaml())
                .as_deref(),
            Some(
                r#"{apiGroups: [""], resources: ["endpoints"], resourceNames: ["kubernetes"], verbs: ["get"]}"#
            )
        );
        assert_eq!(
            rule_for_source("events").map(|r| r.scope()).as_deref(),
            Some("cluster-wide")
        );
        assert!(rule_for_source("widgets").is_none());
        assert!(rule_for_source("pods opa").is_none());
    }

    #[test]
    fn a_rendered_rule_is_yaml_a_role_accepts() {
        for need in REFRESH_NEEDS.iter().map(|e| &e.need) {
            let parsed: Value = serde_saphyr::from_str(&render_rule(need)).expect("flow YAML");
            let role = serde_json::json!({"rules": [parsed]});
            assert_eq!(grants_of(&role), BTreeSet::from([grant_of(need)]));
        }
    }
}
