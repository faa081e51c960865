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

/// Every served resource type; the index is the store's table number.
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
    },
];

/// Finds a resource type by group, version and plural.
pub(crate) fn find(group: &str, version: &str, plural: &str) -> Option<usize> {
    RESOURCES
        .iter()
        .position(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The API groups (other than core) with their single version each.
pub(crate) fn groups() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !out.contains(&r.group) {
            out.push(r.group);
        }
    }
    out
}

/// The merge key of a list field (strategic merge patch and server-side apply), by path of
/// field names from the object root. Lists without one are atomic (replaced as a whole).
pub(crate) fn list_merge_key(resource: usize, path: &[&str]) -> Option<&'static str> {
    match path {
        ["metadata", "ownerReferences"] => Some("uid"),
        ["spec", "ports"] if resource == SERVICES => Some("port"),
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
        ] {
            assert_eq!(RESOURCES[i].kind, kind);
        }
    }
}
