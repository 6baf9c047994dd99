//! The resource kinds the simulated apiserver serves: names, scope, verbs and short names, as
//! discovery reports them. Nothing here touches stored objects.

/// One served resource (a group/version/plural), as an APIResourceList entry describes it.
#[derive(Debug, PartialEq, Eq)]
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub verbs: &'static [&'static str],
    /// Subresources that can be written (`status`, `scale`).
    pub subresources: &'static [&'static str],
    /// Where the objects live: two kinds may share storage (core and events.k8s.io Events).
    pub storage: &'static str,
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

#[allow(clippy::too_many_arguments)]
const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    subresources: &'static [&'static str],
    storage: &'static str,
) -> Kind {
    Kind {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names,
        verbs: ALL_VERBS,
        subresources,
        storage,
    }
}

/// Every kind the simulator serves, in discovery order.
pub static KINDS: &[Kind] = &[
    kind(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        false,
        &["ns"],
        &["status"],
        "namespaces",
    ),
    kind(
        "",
        "v1",
        "Node",
        "nodes",
        "node",
        false,
        &["no"],
        &["status"],
        "nodes",
    ),
    kind(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        true,
        &["po"],
        &["status"],
        "pods",
    ),
    kind(
        "",
        "v1",
        "Service",
        "services",
        "service",
        true,
        &["svc"],
        &["status"],
        "services",
    ),
    kind(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        "endpoints",
        true,
        &["ep"],
        &[],
        "endpoints",
    ),
    kind(
        "",
        "v1",
        "Event",
        "events",
        "event",
        true,
        &["ev"],
        &[],
        "events",
    ),
    kind(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        true,
        &["cm"],
        &[],
        "configmaps",
    ),
    kind(
        "",
        "v1",
        "Secret",
        "secrets",
        "secret",
        true,
        &[],
        &[],
        "secrets",
    ),
    kind(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        true,
        &["sa"],
        &[],
        "serviceaccounts",
    ),
    kind(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        true,
        &["deploy"],
        &["status", "scale"],
        "deployments",
    ),
    kind(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        true,
        &["rs"],
        &["status", "scale"],
        "replicasets",
    ),
    kind(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        true,
        &[],
        &[],
        "leases",
    ),
    kind(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        true,
        &[],
        &[],
        "endpointslices",
    ),
    kind(
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        "event",
        true,
        &["ev"],
        &[],
        "events",
    ),
    kind(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        true,
        &["pdb"],
        &["status"],
        "poddisruptionbudgets",
    ),
    kind(
        "apiregistration.k8s.io",
        "v1",
        "APIService",
        "apiservices",
        "apiservice",
        false,
        &[],
        &["status"],
        "apiservices",
    ),
    kind(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        "validatingwebhookconfiguration",
        false,
        &[],
        &[],
        "validatingwebhookconfigurations",
    ),
    kind(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        false,
        &[],
        &[],
        "mutatingwebhookconfigurations",
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        false,
        &[],
        &[],
        "clusterroles",
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        false,
        &[],
        &[],
        "clusterrolebindings",
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        "role",
        true,
        &[],
        &[],
        "roles",
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        true,
        &[],
        &[],
        "rolebindings",
    ),
    Kind {
        group: "authorization.k8s.io",
        version: "v1",
        kind: "SelfSubjectAccessReview",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        namespaced: false,
        short_names: &[],
        verbs: &["create"],
        subresources: &[],
        storage: "",
    },
];

impl Kind {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether objects of this kind are stored (SelfSubjectAccessReview is not).
    pub fn is_stored(&self) -> bool {
        !self.storage.is_empty()
    }

    /// The events.k8s.io view of the shared Event storage.
    pub fn is_events_k8s_io(&self) -> bool {
        self.group == "events.k8s.io"
    }
}

/// The kind served at `group/version/plural`.
pub fn by_resource(group: &str, version: &str, plural: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
}

/// The kind of a manifest, from its `apiVersion` and `kind`.
pub fn by_api_version(api_version: &str, kind: &str) -> Option<&'static Kind> {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}

/// The served groups (without the core group), each with its only version, in discovery order.
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut groups: Vec<(&'static str, &'static str)> = Vec::new();
    for k in KINDS.iter().filter(|k| !k.group.is_empty()) {
        if !groups.iter().any(|(g, _)| *g == k.group) {
            groups.push((k.group, k.version));
        }
    }
    groups
}

/// The kinds served in one group/version.
pub fn in_group_version(group: &str, version: &str) -> impl Iterator<Item = &'static Kind> {
    let group = group.to_string();
    let version = version.to_string();
    KINDS
        .iter()
        .filter(move |k| k.group == group && k.version == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_by_resource_and_by_manifest() {
        let deploy = by_resource("apps", "v1", "deployments").expect("deployments");
        assert_eq!(deploy.kind, "Deployment");
        assert_eq!(deploy.api_version(), "apps/v1");
        assert!(by_api_version("v1", "ConfigMap").is_some_and(|k| k.plural == "configmaps"));
        assert!(by_api_version("apps/v1", "ConfigMap").is_none());
        assert!(by_resource("", "v1", "widgets").is_none());
    }

    #[test]
    fn groups_are_unique() {
        let groups = groups();
        assert!(
            groups
                .iter()
                .any(|(g, _)| *g == "admissionregistration.k8s.io")
        );
        let mut names: Vec<_> = groups.iter().map(|(g, _)| *g).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), groups.len());
    }
}
