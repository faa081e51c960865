//! The resource types kubesim serves, as discovery describes them.

/// One served resource type (a REST collection).
#[derive(Debug)]
pub(crate) struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Has a `/status` subresource (main-resource writes keep the old status).
    pub status: bool,
    /// Discovery categories (`kubectl get all` lists the `all` category).
    pub categories: &'static [&'static str],
    /// Map-type lists of a custom type (`x-kubernetes-list-type: map` with one
    /// `x-kubernetes-list-map-keys` key): dotted path from the root, merge key.
    pub merge_keys: &'static [(&'static str, &'static str)],
    /// Defined by a CustomResourceDefinition (served only while it is established).
    pub custom: bool,
}

impl ResourceType {
    /// `v1` or `group/version`, as `apiVersion` spells it.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Index of namespaces in [`RESOURCES`].
pub(crate) const NAMESPACES: usize = 0;
/// Index of services in [`RESOURCES`].
pub(crate) const SERVICES: usize = 1;
/// Index of endpoints in [`RESOURCES`].
pub(crate) const ENDPOINTS: usize = 2;
/// Index of secrets in [`RESOURCES`].
pub(crate) const SECRETS: usize = 3;

/// Index of service accounts in [`RESOURCES`].
pub(crate) const SERVICE_ACCOUNTS: usize = 6;
/// Index of RBAC roles in [`RESOURCES`] (cluster roles, role bindings and cluster role bindings
/// follow).
pub(crate) const ROLES: usize = 9;
/// Index of RBAC cluster roles in [`RESOURCES`].
pub(crate) const CLUSTER_ROLES: usize = 10;
/// Index of RBAC role bindings in [`RESOURCES`].
pub(crate) const ROLE_BINDINGS: usize = 11;
/// Index of RBAC cluster role bindings in [`RESOURCES`].
pub(crate) const CLUSTER_ROLE_BINDINGS: usize = 12;

/// The RBAC API group.
pub(crate) const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Index of CustomResourceDefinitions in [`RESOURCES`].
pub(crate) const CRDS: usize = 13;

/// The group of CustomResourceDefinitions.
pub(crate) const APIEXTENSIONS_GROUP: &str = "apiextensions.k8s.io";

/// The built-in resource types; the index is the store's table number. Types defined by
/// CustomResourceDefinitions follow them (see [`register`]).
pub(crate) static RESOURCES: &[ResourceType] = &[
    ResourceType {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        singular: "namespace",
        namespaced: false,
        short_names: &["ns"],
        status: true,
        categories: &[],
        merge_keys: &[],
        custom: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        singular: "service",
        namespaced: true,
        short_names: &["svc"],
        status: true,
        categories: &["all"],
        merge_keys: &[],
        custom: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Endpoints",
        plural: "endpoints",
        singular: "endpoints",
        namespaced: true,
        short_names: &["ep"],
        status: false,
        categories: &[],
        merge_keys: &[],
        custom: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        singular: "secret",
        namespaced: true,
        short_names: &[],
        status: false,
        categories: &[],
        merge_keys: &[],
        custom: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        singular: "configmap",
        namespaced: true,
        short_names: &["cm"],
        status: false,
        categories: &[],
        merge_keys: &[],
        custom: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        status: false,
        categories: &[],
        merge_keys: &[],
        custom: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        namespaced: true,
        short_names: &["sa"],
        status: false,
        categories: &[],
        merge_keys: &[],
        custom: false,
    },
    ResourceType {
        group: "discovery.k8s.io",
        version: "v1",
        kind: "EndpointSlice",
        plural: "endpointslices",
        singular: "endpointslice",
        namespaced: true,
        short_names: &[],
        status: false,
        categories: &[],
        merge_keys: &[],
        custom: false,
    },
    ResourceType {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        singular: "lease",
        namespaced: true,
        short_names: &[],
        status: false,
        categories: &[],
        merge_keys: &[],
        custom: false,
    },
    ResourceType {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "Role",
        plural: "roles",
        singular: "role",
        namespaced: true,
        short_names: &[],
        status: false,
        categories: &[],
        merge_keys: &[],
        custom: false,
    },
    ResourceType {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRole",
        plural: "clusterroles",
        singular: "clusterrole",
        namespaced: false,
        short_names: &[],
        status: false,
        categories: &[],
        merge_keys: &[],
        custom: false,
    },
    ResourceType {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "RoleBinding",
        plural: "rolebindings",
        singular: "rolebinding",
        namespaced: true,
        short_names: &[],
        status: false,
        categories: &[],
        merge_keys: &[],
        custom: false,
    },
    ResourceType {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRoleBinding",
        plural: "clusterrolebindings",
        singular: "clusterrolebinding",
        namespaced: false,
        short_names: &[],
        status: false,
        categories: &[],
        merge_keys: &[],
        custom: false,
    },
    ResourceType {
        group: APIEXTENSIONS_GROUP,
        version: "v1",
        kind: "CustomResourceDefinition",
        plural: "customresourcedefinitions",
        singular: "customresourcedefinition",
        namespaced: false,
        short_names: &["crd", "crds"],
        status: true,
        categories: &["api-extensions"],
        merge_keys: &[],
        custom: false,
    },
];

/// Custom resource types of every simulated cluster, numbered after [`RESOURCES`]. A type is
/// registered once per distinct shape (process-wide, so that indices stay stable) and leaked:
/// a test process defines a handful. Whether a cluster serves it is the cluster store's
/// business ([`crate::store::Store::find`]).
static CUSTOM: std::sync::RwLock<Vec<&'static ResourceType>> = std::sync::RwLock::new(Vec::new());

/// The resource type with table number `r`.
pub(crate) fn rt(r: usize) -> &'static ResourceType {
    if let Some(t) = RESOURCES.get(r) {
        return t;
    }
    let custom = CUSTOM.read().unwrap_or_else(|p| p.into_inner());
    // Indices only come from `register`, so this is always present.
    custom
        .get(r - RESOURCES.len())
        .copied()
        .unwrap_or(&RESOURCES[0])
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn leak_list(items: &[String]) -> &'static [&'static str] {
    Box::leak(
        items
            .iter()
            .map(|s| leak(s))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
}

/// What a CustomResourceDefinition version defines, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CustomType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub status: bool,
    pub categories: Vec<String>,
    pub merge_keys: Vec<(String, String)>,
}

/// The table number of a custom type, registering it on first sight.
pub(crate) fn register(t: &CustomType) -> usize {
    let same = |r: &ResourceType| {
        r.custom
            && r.group == t.group
            && r.version == t.version
            && r.kind == t.kind
            && r.plural == t.plural
            && r.singular == t.singular
            && r.namespaced == t.namespaced
            && r.status == t.status
            && r.short_names
                .iter()
                .copied()
                .eq(t.short_names.iter().map(String::as_str))
            && r.categories
                .iter()
                .copied()
                .eq(t.categories.iter().map(String::as_str))
            && r.merge_keys
                .iter()
                .copied()
                .eq(t.merge_keys.iter().map(|(a, b)| (a.as_str(), b.as_str())))
    };
    let mut custom = CUSTOM.write().unwrap_or_else(|p| p.into_inner());
    if let Some(i) = custom.iter().position(|r| same(r)) {
        return RESOURCES.len() + i;
    }
    let merge_keys: Vec<(&'static str, &'static str)> = t
        .merge_keys
        .iter()
        .map(|(a, b)| (leak(a), leak(b)))
        .collect();
    let leaked: &'static ResourceType = Box::leak(Box::new(ResourceType {
        group: leak(&t.group),
        version: leak(&t.version),
        kind: leak(&t.kind),
        plural: leak(&t.plural),
        singular: leak(&t.singular),
        namespaced: t.namespaced,
        short_names: leak_list(&t.short_names),
        status: t.status,
        categories: leak_list(&t.categories),
        merge_keys: Box::leak(merge_keys.into_boxed_slice()),
        custom: true,
    }));
    custom.push(leaked);
    RESOURCES.len() + custom.len() - 1
}

/// Finds a built-in resource type by group, version and plural (custom types are found
/// through the store that serves them).
pub(crate) fn find(group: &str, version: &str, plural: &str) -> Option<usize> {
    RESOURCES
        .iter()
        .position(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The merge key of a list field (strategic merge patch and server-side apply), by path of
/// field names from the object root. Lists without one are atomic (replaced as a whole).
pub(crate) fn list_merge_key(resource: usize, path: &[&str]) -> Option<&'static str> {
    match path {
        ["metadata", "ownerReferences"] => Some("uid"),
        ["spec", "ports"] if resource == SERVICES => Some("port"),
        _ if resource >= RESOURCES.len() => {
            let dotted = path.join(".");
            rt(resource)
                .merge_keys
                .iter()
                .find(|(p, _)| *p == dotted)
                .map(|(_, k)| *k)
        }
        _ => None,
    }
}

/// Index of configmaps in [`RESOURCES`] (tests pick a kind without merge keys).
#[cfg(test)]
pub(crate) const CONFIGMAPS_FOR_TESTS: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_name_their_types() {
        for (i, kind) in [
            (NAMESPACES, "Namespace"),
            (SERVICES, "Service"),
            (ENDPOINTS, "Endpoints"),
            (SECRETS, "Secret"),
            (SERVICE_ACCOUNTS, "ServiceAccount"),
            (ROLES, "Role"),
            (CLUSTER_ROLES, "ClusterRole"),
            (ROLE_BINDINGS, "RoleBinding"),
            (CLUSTER_ROLE_BINDINGS, "ClusterRoleBinding"),
            (CRDS, "CustomResourceDefinition"),
        ] {
            assert_eq!(RESOURCES[i].kind, kind);
        }
    }
}
