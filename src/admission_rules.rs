//! Which admission webhooks a request is sent to, as the apiserver decides it from a webhook's
//! rules: operations, apiGroups, apiVersions, resources and subresources (`*` vs `*/*`), scope,
//! and matchPolicy Equivalent. Also the defaults the apiserver gives unset webhook fields.
//! Pure data and functions: the simulator, the write probe and the diagnosis all use this one
//! implementation. Selectors are evaluated by [`crate::selector`].

use k8s_openapi::api::admissionregistration::v1::RuleWithOperations;
use serde::Deserialize;

/// One rule of a webhook, as written (unset lists are empty and match nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Rule {
    pub operations: Vec<String>,
    pub api_groups: Vec<String>,
    pub api_versions: Vec<String>,
    pub resources: Vec<String>,
    /// `Namespaced`, `Cluster` or `*`; unset means `*`.
    pub scope: Option<String>,
}

impl From<&RuleWithOperations> for Rule {
    fn from(rule: &RuleWithOperations) -> Self {
        Rule {
            operations: rule.operations.clone().unwrap_or_default(),
            api_groups: rule.api_groups.clone().unwrap_or_default(),
            api_versions: rule.api_versions.clone().unwrap_or_default(),
            resources: rule.resources.clone().unwrap_or_default(),
            scope: rule.scope.clone(),
        }
    }
}

impl std::fmt::Display for Rule {
    /// `operations [CREATE, UPDATE] apiGroups [*] apiVersions [*] resources [*]` (and the
    /// scope when set); the core group shows as `""`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |l: &[String]| {
            l.iter()
                .map(|s| if s.is_empty() { "\"\"" } else { s.as_str() })
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "operations [{}] apiGroups [{}] apiVersions [{}] resources [{}]",
            list(&self.operations),
            list(&self.api_groups),
            list(&self.api_versions),
            list(&self.resources)
        )?;
        if let Some(scope) = &self.scope {
            write!(f, " scope {scope}")?;
        }
        Ok(())
    }
}

/// A group/version/resource a rule is checked against: the request's own, or an equivalent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gvr {
    pub group: String,
    pub version: String,
    pub resource: String,
}

impl Gvr {
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        Gvr {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
        }
    }

    /// The core/v1 Namespace resource, which is cluster-scoped and matched by its own labels.
    pub fn is_namespace_object(&self) -> bool {
        self.group.is_empty() && self.version == "v1" && self.resource == "namespaces"
    }
}

/// The shape of one request, as far as rules look at it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: &'a str,
    pub group: &'a str,
    pub version: &'a str,
    pub resource: &'a str,
    /// "" when none.
    pub subresource: &'a str,
    /// Whether the object lives in a namespace (false for Nodes, Namespaces, reviews, ...).
    pub namespaced: bool,
}

impl Request<'_> {
    pub fn gvr(&self) -> Gvr {
        Gvr::new(self.group, self.version, self.resource)
    }
}

/// (group, version) pairs serving one resource.
type GroupVersions = &'static [(&'static str, &'static str)];

/// Resources served under several group/versions; each row lists the (group, version) pairs
/// that hold the same objects, with the resource name and kind.
const EQUIVALENT_RESOURCES: &[(&str, &str, GroupVersions)] = &[
    (
        "deployments",
        "Deployment",
        &[
            ("apps", "v1"),
            ("apps", "v1beta2"),
            ("apps", "v1beta1"),
            ("extensions", "v1beta1"),
        ],
    ),
    (
        "daemonsets",
        "DaemonSet",
        &[
            ("apps", "v1"),
            ("apps", "v1beta2"),
            ("extensions", "v1beta1"),
        ],
    ),
    (
        "replicasets",
        "ReplicaSet",
        &[
            ("apps", "v1"),
            ("apps", "v1beta2"),
            ("extensions", "v1beta1"),
        ],
    ),
    (
        "statefulsets",
        "StatefulSet",
        &[("apps", "v1"), ("apps", "v1beta2"), ("apps", "v1beta1")],
    ),
    (
        "events",
        "Event",
        &[
            ("", "v1"),
            ("events.k8s.io", "v1"),
            ("events.k8s.io", "v1beta1"),
        ],
    ),
    (
        "ingresses",
        "Ingress",
        &[
            ("networking.k8s.io", "v1"),
            ("networking.k8s.io", "v1beta1"),
            ("extensions", "v1beta1"),
        ],
    ),
    (
        "networkpolicies",
        "NetworkPolicy",
        &[("networking.k8s.io", "v1"), ("extensions", "v1beta1")],
    ),
    (
        "cronjobs",
        "CronJob",
        &[("batch", "v1"), ("batch", "v1beta1")],
    ),
    (
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        &[("policy", "v1"), ("policy", "v1beta1")],
    ),
    (
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        &[
            ("autoscaling", "v2"),
            ("autoscaling", "v1"),
            ("autoscaling", "v2beta2"),
        ],
    ),
    (
        "leases",
        "Lease",
        &[
            ("coordination.k8s.io", "v1"),
            ("coordination.k8s.io", "v1beta1"),
        ],
    ),
];

/// Equivalent group/version/resources of a request, other than itself, with their kind.
pub fn equivalents(group: &str, version: &str, resource: &str) -> Vec<(Gvr, &'static str)> {
    for (res, kind, gvs) in EQUIVALENT_RESOURCES {
        if *res == resource && gvs.iter().any(|(g, v)| *g == group && *v == version) {
            return gvs
                .iter()
                .filter(|(g, v)| !(*g == group && *v == version))
                .map(|(g, v)| (Gvr::new(g, v, res), *kind))
                .collect();
        }
    }
    Vec::new()
}

/// Whether `rule` matches the request when its resource is taken as `gvr` (the request's own,
/// or an equivalent). `*` matches every resource but no subresource; `pods/*` every
/// subresource of pods; `*/scale` that subresource of every resource; `*/*` everything.
pub fn rule_matches(rule: &Rule, request: &Request<'_>, gvr: &Gvr) -> bool {
    let any_or = |list: &[String], want: &str| list.iter().any(|x| x == "*" || x == want);
    let scope = match rule.scope.as_deref() {
        None | Some("*") => true,
        Some("Namespaced") => !gvr.is_namespace_object() && request.namespaced,
        Some("Cluster") => gvr.is_namespace_object() || !request.namespaced,
        Some(_) => false,
    };
    let resource = rule.resources.iter().any(|r| {
        let (res, sub) = r.split_once('/').unwrap_or((r.as_str(), ""));
        (res == "*" || res == gvr.resource) && (sub == "*" || sub == request.subresource)
    });
    scope
        && any_or(&rule.operations, request.operation)
        && any_or(&rule.api_groups, &gvr.group)
        && any_or(&rule.api_versions, &gvr.version)
        && resource
}

/// A rule that matched, and the resource it matched as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleMatch {
    /// Index of the matching rule.
    pub rule: usize,
    /// The request's own resource, or the equivalent one it matched as.
    pub resource: Gvr,
    /// The equivalent resource's kind; None when the request's own resource matched.
    pub equivalent_kind: Option<&'static str>,
}

/// The first rule that matches the request: its own resource first, then (unless matchPolicy
/// is Exact) an equivalent resource served under another group/version.
pub fn match_rules(rules: &[Rule], exact: bool, request: &Request<'_>) -> Option<RuleMatch> {
    let own = request.gvr();
    if let Some(i) = rules.iter().position(|r| rule_matches(r, request, &own)) {
        return Some(RuleMatch {
            rule: i,
            resource: own,
            equivalent_kind: None,
        });
    }
    if exact {
        return None;
    }
    let equivalent = equivalents(request.group, request.version, request.resource);
    for (i, rule) in rules.iter().enumerate() {
        for (gvr, kind) in &equivalent {
            if rule_matches(rule, request, gvr) {
                return Some(RuleMatch {
                    rule: i,
                    resource: gvr.clone(),
                    equivalent_kind: Some(kind),
                });
            }
        }
    }
    None
}

/// The admissionregistration.k8s.io version a configuration was written for: unset fields
/// default differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    V1beta1,
}

/// What the apiserver fills in for unset webhook fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Defaults {
    pub failure_policy: &'static str,
    pub timeout_seconds: i32,
    pub match_policy: &'static str,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V1beta1 => "v1beta1",
        }
    }

    /// v1: Fail, 10 s, Equivalent. v1beta1: Ignore, 30 s, Exact.
    pub fn defaults(self) -> Defaults {
        match self {
            ApiVersion::V1 => Defaults {
                failure_policy: "Fail",
                timeout_seconds: 10,
                match_policy: "Equivalent",
            },
            ApiVersion::V1beta1 => Defaults {
                failure_policy: "Ignore",
                timeout_seconds: 30,
                match_policy: "Exact",
            },
        }
    }
}

/// The port a service reference uses when unset.
pub const DEFAULT_SERVICE_PORT: i32 = 443;

/// Resources the apiserver never sends to webhooks, so that a broken webhook can be removed.
pub fn exempt(group: &str, resource: &str) -> bool {
    group == "admissionregistration.k8s.io"
        && matches!(
            resource,
            "validatingwebhookconfigurations"
                | "mutatingwebhookconfigurations"
                | "validatingadmissionpolicies"
                | "validatingadmissionpolicybindings"
                | "mutatingadmissionpolicies"
                | "mutatingadmissionpolicybindings"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(ops: &[&str], groups: &[&str], versions: &[&str], resources: &[&str]) -> Rule {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        Rule {
            operations: v(ops),
            api_groups: v(groups),
            api_versions: v(versions),
            resources: v(resources),
            scope: None,
        }
    }

    fn req<'a>(op: &'a str, g: &'a str, v: &'a str, r: &'a str, sub: &'a str) -> Request<'a> {
        Request {
            operation: op,
            group: g,
            version: v,
            resource: r,
            subresource: sub,
            namespaced: true,
        }
    }

    #[test]
    fn star_is_not_star_slash_star() {
        let all = rule(&["*"], &["*"], &["*"], &["*"]);
        let everything = rule(&["*"], &["*"], &["*"], &["*/*"]);
        let status = req("UPDATE", "", "v1", "nodes", "status");
        assert!(match_rules(std::slice::from_ref(&all), false, &status).is_none());
        assert!(match_rules(&[everything], false, &status).is_some());
        assert!(match_rules(&[all], false, &req("UPDATE", "", "v1", "nodes", "")).is_some());
    }

    #[test]
    fn equivalent_unless_exact() {
        let r = [rule(
            &["CREATE"],
            &["coordination.k8s.io"],
            &["v1beta1"],
            &["leases"],
        )];
        let lease = req("CREATE", "coordination.k8s.io", "v1", "leases", "");
        let m = match_rules(&r, false, &lease).expect("equivalent");
        assert_eq!(m.resource.version, "v1beta1");
        assert_eq!(m.equivalent_kind, Some("Lease"));
        assert!(match_rules(&r, true, &lease).is_none());
    }

    #[test]
    fn defaults_per_version() {
        assert_eq!(ApiVersion::V1.defaults().failure_policy, "Fail");
        assert_eq!(ApiVersion::V1.defaults().timeout_seconds, 10);
        assert_eq!(ApiVersion::V1beta1.defaults().timeout_seconds, 30);
        assert_eq!(ApiVersion::V1beta1.defaults().match_policy, "Exact");
    }

    #[test]
    fn rules_print_as_written() {
        let r = rule(&["CREATE"], &[""], &["v1"], &["pods"]);
        assert_eq!(
            r.to_string(),
            "operations [CREATE] apiGroups [\"\"] apiVersions [v1] resources [pods]"
        );
    }
}
