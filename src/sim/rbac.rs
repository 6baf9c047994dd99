//! RBAC as the apiserver's authorizer applies it, for the simulator's scenario users: the rules
//! of the ClusterRoles and Roles that ClusterRoleBindings and RoleBindings grant a user, matched
//! against a request (resource or non-resource), and the bootstrap policy every cluster starts
//! with (cluster-admin, system:discovery, system:basic-user, system:public-info-viewer). Pure:
//! it reads the store it is given and changes nothing.

use serde::Deserialize;
use serde_json::{Value, json};

use super::api::User;
use super::store::Store;

/// The group whose members every authorizer lets through (the privileged group authorizer
/// runs before RBAC).
pub const SUPERUSER_GROUP: &str = "system:masters";
/// The group of every authenticated user.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// What a request asks, as the authorizer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    Resource {
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        subresource: &'a str,
        /// `""` for cluster-scoped requests; a Namespace object's own name for a request about
        /// one Namespace (as the apiserver's RequestInfo sets it).
        namespace: &'a str,
        name: &'a str,
    },
    NonResource {
        /// The HTTP method, lowercased (`get`, `post`, ...).
        verb: &'a str,
        path: &'a str,
    },
}

/// One rule of a Role or ClusterRole (rbac.authorization.k8s.io/v1 PolicyRule).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    #[serde(rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

/// The authorizer's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// With the apiserver's reason, e.g. `RBAC: allowed by ClusterRoleBinding "x" of
    /// ClusterRole "y" to User "alice"` (empty for a superuser).
    Allowed(String),
    /// RBAC has no rule that allows it (it never gives a reason for that).
    Denied,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed(_))
    }
}

fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == "*" || v == verb)
}

fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    rule.api_groups.iter().any(|g| g == "*" || g == group)
}

/// `*` matches every resource and subresource; `pods/log` only that subresource; `*/log` the
/// `log` subresource of any resource.
fn resource_matches(rule: &PolicyRule, resource: &str, subresource: &str) -> bool {
    let combined = if subresource.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}/{subresource}")
    };
    rule.resources.iter().any(|r| {
        r == "*"
            || *r == combined
            || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource))
    })
}

/// No resourceNames: every name. Otherwise only those (so never a list or a create).
fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    rule.resource_names.is_empty() || rule.resource_names.iter().any(|n| n == name)
}

/// Exact, `*`, or a prefix ending in `*`.
fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    rule.non_resource_urls.iter().any(|u| {
        u == "*"
            || u == path
            || u.strip_suffix('*')
                .is_some_and(|prefix| path.starts_with(prefix))
    })
}

/// Whether one rule allows the request.
pub fn rule_allows(rule: &PolicyRule, request: &Request<'_>) -> bool {
    match request {
        Request::Resource {
            verb,
            group,
            resource,
            subresource,
            name,
            ..
        } => {
            verb_matches(rule, verb)
                && api_group_matches(rule, group)
                && resource_matches(rule, resource, subresource)
                && resource_name_matches(rule, name)
        }
        Request::NonResource { verb, path } => {
            verb_matches(rule, verb) && non_resource_url_matches(rule, path)
        }
    }
}

/// The rules of a stored role object; a malformed rule is skipped, as it grants nothing.
pub fn rules_of(role: &Value) -> Vec<PolicyRule> {
    role["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| serde_json::from_value(r.clone()).ok())
        .collect()
}

/// The first subject of a binding that names this user: (kind, shown name).
fn subject_for(user: &User, binding: &Value, binding_namespace: &str) -> Option<(String, String)> {
    binding["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|s| {
            let kind = s["kind"].as_str().unwrap_or_default();
            let name = s["name"].as_str().unwrap_or_default();
            let applies = match kind {
                "User" => user.username == name,
                "Group" => user.groups.iter().any(|g| g == name),
                "ServiceAccount" => {
                    let ns = s["namespace"]
                        .as_str()
                        .filter(|n| !n.is_empty())
                        .unwrap_or(binding_namespace);
                    user.username == format!("system:serviceaccount:{ns}:{name}")
                }
                _ => false,
            };
            applies.then(|| {
                let shown = if kind == "ServiceAccount" {
                    let ns = s["namespace"]
                        .as_str()
                        .filter(|n| !n.is_empty())
                        .unwrap_or(binding_namespace);
                    format!("{name}/{ns}")
                } else {
                    name.to_string()
                };
                (kind.to_string(), shown)
            })
        })
}

/// Decides a request as the privileged-group authorizer and then RBAC do.
pub fn authorize(store: &Store, user: &User, request: &Request<'_>) -> Decision {
    if user.groups.iter().any(|g| g == SUPERUSER_GROUP) {
        return Decision::Allowed(String::new());
    }
    for (_, binding) in store.list("clusterrolebindings", None) {
        let Some((kind, subject)) = subject_for(user, binding, "") else {
            continue;
        };
        let role_ref = &binding["roleRef"];
        if role_ref["kind"] != "ClusterRole" {
            continue;
        }
        let role_name = role_ref["name"].as_str().unwrap_or_default();
        let Some(role) = store.get("clusterroles", "", role_name) else {
            continue;
        };
        if rules_of(role).iter().any(|r| rule_allows(r, request)) {
            return Decision::Allowed(format!(
                "RBAC: allowed by ClusterRoleBinding \"{}\" of ClusterRole \"{role_name}\" to {kind} \"{subject}\"",
                binding["metadata"]["name"].as_str().unwrap_or_default()
            ));
        }
    }
    let namespace = match request {
        Request::Resource { namespace, .. } if !namespace.is_empty() => *namespace,
        _ => return Decision::Denied,
    };
    for (_, binding) in store.list("rolebindings", Some(namespace)) {
        let Some((kind, subject)) = subject_for(user, binding, namespace) else {
            continue;
        };
        let role_ref = &binding["roleRef"];
        let role_name = role_ref["name"].as_str().unwrap_or_default();
        let (role_kind, role) = match role_ref["kind"].as_str() {
            Some("Role") => ("Role", store.get("roles", namespace, role_name)),
            Some("ClusterRole") => ("ClusterRole", store.get("clusterroles", "", role_name)),
            _ => continue,
        };
        let Some(role) = role else { continue };
        if rules_of(role).iter().any(|r| rule_allows(r, request)) {
            return Decision::Allowed(format!(
                "RBAC: allowed by RoleBinding \"{}/{namespace}\" of {role_kind} \"{role_name}\" to {kind} \"{subject}\"",
                binding["metadata"]["name"].as_str().unwrap_or_default()
            ));
        }
    }
    Decision::Denied
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "rules": rules,
    })
}

fn cluster_role_binding(name: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}))
        .collect();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": subjects,
    })
}

/// The part of the apiserver's bootstrap policy that decides what any user may do: discovery,
/// health and version for everyone, access reviews of oneself for every authenticated user,
/// and cluster-admin for system:masters.
pub fn bootstrap_policy() -> Vec<Value> {
    vec![
        cluster_role(
            "cluster-admin",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                   {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        ),
        cluster_role_binding("cluster-admin", &[SUPERUSER_GROUP]),
        cluster_role(
            "system:discovery",
            json!([{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                        "/openapi", "/openapi/*", "/readyz", "/version", "/version/"],
                    "verbs": ["get"]}]),
        ),
        cluster_role_binding("system:discovery", &[AUTHENTICATED_GROUP]),
        cluster_role(
            "system:basic-user",
            json!([{"apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"]},
                   {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"],
                    "verbs": ["create"]}]),
        ),
        cluster_role_binding("system:basic-user", &[AUTHENTICATED_GROUP]),
        cluster_role(
            "system:public-info-viewer",
            json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                    "verbs": ["get"]}]),
        ),
        cluster_role_binding(
            "system:public-info-viewer",
            &[AUTHENTICATED_GROUP, "system:unauthenticated"],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kinds::by_api_version;

    fn rule(v: Value) -> PolicyRule {
        serde_json::from_value(v).unwrap()
    }

    fn res<'a>(verb: &'a str, group: &'a str, resource: &'a str) -> Request<'a> {
        Request::Resource {
            verb,
            group,
            resource,
            subresource: "",
            namespace: "",
            name: "",
        }
    }

    #[test]
    fn rules_match_verbs_groups_resources_and_names() {
        let r = rule(json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}));
        assert!(rule_allows(&r, &res("list", "", "pods")));
        assert!(!rule_allows(&r, &res("delete", "", "pods")));
        assert!(!rule_allows(&r, &res("list", "apps", "pods")));
        assert!(!rule_allows(&r, &res("list", "", "services")));
        let log = Request::Resource {
            verb: "get",
            group: "",
            resource: "pods",
            subresource: "log",
            namespace: "ns",
            name: "p",
        };
        assert!(!rule_allows(&r, &log), "pods does not cover pods/log");
        let sub = rule(json!({"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}));
        assert!(rule_allows(&sub, &log));
        assert!(!rule_allows(&sub, &res("get", "", "pods")));
        let any_log = rule(json!({"apiGroups": [""], "resources": ["*/log"], "verbs": ["get"]}));
        assert!(rule_allows(&any_log, &log));
        let all = rule(json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}));
        assert!(rule_allows(&all, &log), "* covers subresources in RBAC");
        assert!(rule_allows(
            &all,
            &res("deletecollection", "apps", "deployments")
        ));
        assert!(!rule_allows(
            &all,
            &Request::NonResource {
                verb: "get",
                path: "/metrics"
            }
        ));
        let named = rule(
            json!({"apiGroups": [""], "resources": ["endpoints"], "resourceNames": ["kubernetes"], "verbs": ["get", "list"]}),
        );
        let get = |name| Request::Resource {
            verb: "get",
            group: "",
            resource: "endpoints",
            subresource: "",
            namespace: "default",
            name,
        };
        assert!(rule_allows(&named, &get("kubernetes")));
        assert!(!rule_allows(&named, &get("other")));
        assert!(
            !rule_allows(&named, &res("list", "", "endpoints")),
            "resourceNames never allow a list"
        );
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_a_trailing_star() {
        let r = rule(json!({"nonResourceURLs": ["/metrics", "/logs/*"], "verbs": ["get"]}));
        let path = |p| Request::NonResource {
            verb: "get",
            path: p,
        };
        assert!(rule_allows(&r, &path("/metrics")));
        assert!(!rule_allows(&r, &path("/metrics/slis")));
        assert!(rule_allows(&r, &path("/logs/kube-apiserver.log")));
        assert!(!rule_allows(&r, &path("/logs")));
        assert!(!rule_allows(
            &r,
            &Request::NonResource {
                verb: "post",
                path: "/metrics"
            }
        ));
        assert!(
            !rule_allows(&r, &res("get", "", "metrics")),
            "a non-resource rule grants no resource"
        );
    }

    fn store_with(objects: Vec<Value>) -> Store {
        let mut store = Store::new();
        for object in objects.into_iter().chain(bootstrap_policy()) {
            let kind = by_api_version(
                object["apiVersion"].as_str().unwrap(),
                object["kind"].as_str().unwrap(),
            )
            .unwrap();
            store.create(kind, object).unwrap();
        }
        store
    }

    fn user(name: &str, groups: &[&str]) -> User {
        let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        groups.push(AUTHENTICATED_GROUP.into());
        User {
            username: name.into(),
            groups,
        }
    }

    fn in_ns<'a>(verb: &'a str, resource: &'a str, namespace: &'a str) -> Request<'a> {
        Request::Resource {
            verb,
            group: "",
            resource,
            subresource: "",
            namespace,
            name: "",
        }
    }

    #[test]
    fn bindings_grant_roles_to_users_and_groups_in_their_scope() {
        let store = store_with(vec![
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "pod-reader"},
                   "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "cm-writer", "namespace": "team"},
                   "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]}),
            // A ClusterRole bound by a RoleBinding applies in that namespace only.
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "read-pods", "namespace": "team"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pod-reader"},
                   "subjects": [{"kind": "User", "name": "alice"}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "write-cm", "namespace": "team"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-writer"},
                   "subjects": [{"kind": "Group", "name": "oncall"}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": "everyone-reads-pods"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pod-reader"},
                   "subjects": [{"kind": "Group", "name": "sre"}]}),
        ]);
        let alice = user("alice", &[]);
        let bob = user("bob", &["oncall"]);
        let carol = user("carol", &["sre"]);
        assert_eq!(
            authorize(&store, &alice, &in_ns("list", "pods", "team")),
            Decision::Allowed(
                "RBAC: allowed by RoleBinding \"read-pods/team\" of ClusterRole \"pod-reader\" to User \"alice\"".into()
            )
        );
        assert_eq!(
            authorize(&store, &alice, &in_ns("list", "pods", "other")),
            Decision::Denied
        );
        assert_eq!(
            authorize(&store, &alice, &in_ns("list", "pods", "")),
            Decision::Denied,
            "a RoleBinding grants nothing at the cluster scope"
        );
        assert!(authorize(&store, &bob, &in_ns("create", "configmaps", "team")).is_allowed());
        assert!(!authorize(&store, &bob, &in_ns("create", "configmaps", "other")).is_allowed());
        assert!(!authorize(&store, &alice, &in_ns("create", "configmaps", "team")).is_allowed());
        assert_eq!(
            authorize(&store, &carol, &in_ns("list", "pods", "")),
            Decision::Allowed(
                "RBAC: allowed by ClusterRoleBinding \"everyone-reads-pods\" of ClusterRole \"pod-reader\" to Group \"sre\"".into()
            )
        );
        assert!(authorize(&store, &carol, &in_ns("list", "pods", "any")).is_allowed());
        assert!(!authorize(&store, &carol, &in_ns("delete", "pods", "any")).is_allowed());
        let admin = User::admin();
        assert_eq!(
            authorize(&store, &admin, &in_ns("delete", "nodes", "")),
            Decision::Allowed(String::new())
        );
    }

    #[test]
    fn the_bootstrap_policy_gives_everyone_discovery_health_and_self_reviews() {
        let store = store_with(Vec::new());
        let nobody = user("nobody", &[]);
        let path = |p| Request::NonResource {
            verb: "get",
            path: p,
        };
        for allowed in [
            "/version",
            "/livez",
            "/readyz",
            "/healthz",
            "/api",
            "/apis/apps/v1",
        ] {
            assert!(
                authorize(&store, &nobody, &path(allowed)).is_allowed(),
                "{allowed}"
            );
        }
        assert_eq!(
            authorize(&store, &nobody, &path("/metrics")),
            Decision::Denied
        );
        let review = Request::Resource {
            verb: "create",
            group: "authorization.k8s.io",
            resource: "selfsubjectaccessreviews",
            subresource: "",
            namespace: "",
            name: "",
        };
        assert!(authorize(&store, &nobody, &review).is_allowed());
        assert!(!authorize(&store, &nobody, &res("list", "", "nodes")).is_allowed());
    }
}
