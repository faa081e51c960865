//! Names, labels and annotations shared with Linkerd's multicluster extension.
//!
//! The strings here are a wire contract: a Linkerd control plane reads them off the mirrors we
//! write. They are quoted exactly from `shared/spec/linkerd-compat.md` §0.

use sha2::{Digest, Sha256};

use crate::validation::DNS1123_LABEL_MAX;

/// Label on every mirror Service/Endpoints, federated Service and namespace created by a mirror.
pub const MIRRORED_SERVICE_LABEL: &str = "mirror.linkerd.io/mirrored-service";
/// Label carrying the target cluster's name on mirrors.
pub const CLUSTER_NAME_LABEL: &str = "mirror.linkerd.io/cluster-name";
/// Label on probe Services.
pub const MIRRORED_GATEWAY_LABEL: &str = "mirror.linkerd.io/mirrored-gateway";
/// Label tying a headless endpoint mirror to its root mirror Service.
pub const HEADLESS_MIRROR_SVC_NAME_LABEL: &str = "mirror.linkerd.io/headless-mirror-svc-name";
/// Flat-mode label (value: target cluster name); also the federated member-list annotation key.
pub const REMOTE_DISCOVERY_KEY: &str = "multicluster.linkerd.io/remote-discovery";
/// Flat-mode label naming the remote Service.
pub const REMOTE_SERVICE_LABEL: &str = "multicluster.linkerd.io/remote-service";
/// Federated annotation naming the local member Service.
pub const LOCAL_DISCOVERY_ANNOTATION: &str = "multicluster.linkerd.io/local-discovery";
/// Last mirrored remote resourceVersion.
pub const REMOTE_RESOURCE_VERSION_ANNOTATION: &str = "mirror.linkerd.io/remote-resource-version";
/// `<svc>.<ns>.svc.<domain>` of the remote Service, used as the gateway authority.
pub const REMOTE_SVC_FQ_NAME_ANNOTATION: &str = "mirror.linkerd.io/remote-svc-fq-name";
/// TLS identity of the target gateway, on mirror Endpoints.
pub const REMOTE_GATEWAY_IDENTITY_ANNOTATION: &str = "mirror.linkerd.io/remote-gateway-identity";
/// Opaque-ports annotation, always copied even when excluded.
pub const OPAQUE_PORTS_ANNOTATION: &str = "config.linkerd.io/opaque-ports";
/// Set by Kubernetes on Endpoints of headless Services.
pub const HEADLESS_ENDPOINTS_LABEL: &str = "service.kubernetes.io/headless";
/// Label prefix of the service mirror; never copied from a remote Service.
pub const MIRROR_PREFIX: &str = "mirror.linkerd.io";
/// Annotations never copied: topology hints are not multicluster-aware.
pub const NEVER_COPIED_ANNOTATIONS: [&str; 2] = [
    "service.kubernetes.io/topology-aware-hints",
    "service.kubernetes.io/topology-mode",
];

/// Linkerd CLI default `selector` (gateway mode).
pub const DEFAULT_EXPORT_KEY: &str = "mirror.linkerd.io/exported";
/// Value of [`DEFAULT_EXPORT_KEY`] selecting gateway mode.
pub const DEFAULT_EXPORT_GATEWAY_VALUE: &str = "true";
/// Value of [`DEFAULT_EXPORT_KEY`] selecting remote-discovery mode.
pub const DEFAULT_EXPORT_REMOTE_DISCOVERY_VALUE: &str = "remote-discovery";
/// Linkerd CLI default federated selector key.
pub const DEFAULT_FEDERATED_KEY: &str = "mirror.linkerd.io/federated";
/// Value of [`DEFAULT_FEDERATED_KEY`] for members.
pub const DEFAULT_FEDERATED_VALUE: &str = "member";

/// linkplane's own annotation holding a mirror's full name when it had to be shortened.
pub const FULL_NAME_ANNOTATION: &str = "linkplane.io/full-name";
/// linkplane's own label naming the remote Service a mirror stands for (reverse mapping for GC,
/// which cannot strip a suffix from a shortened name).
pub const LINKPLANE_REMOTE_SERVICE_LABEL: &str = "linkplane.io/remote-service";
/// linkplane's own annotation on a headless endpoint mirror: the remote pod address it stands
/// for, so its `remote-resource-version` moves only when that address does.
pub const REMOTE_ADDRESS_ANNOTATION: &str = "linkplane.io/remote-address";
/// Label prefix reserved for linkplane; never copied from remote objects.
pub const LINKPLANE_PREFIX: &str = "linkplane.io";
/// Implicit cluster label, so export policies can select consumer clusters by name.
pub const CLUSTER_NAME_SELECTOR_LABEL: &str = "linkplane.io/cluster-name";

/// Length of the hash suffix on shortened names: 10 hex chars = 40 bits, collision-free in
/// practice for the handful of long names one namespace holds.
const HASH_LEN: usize = 10;

/// A Kubernetes object name we generate, with the full name kept when it had to be shortened.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GeneratedName {
    /// The name written to Kubernetes: at most 63 characters.
    pub name: String,
    /// The untruncated name, when it differs from `name`.
    pub full_name: Option<String>,
}

impl GeneratedName {
    /// Fits `full` into a DNS-1123 label: unchanged when short enough, else a prefix plus a hash
    /// of the full name (deterministic, so every reconciler derives the same name).
    pub fn fit(full: String) -> Self {
        if full.len() <= DNS1123_LABEL_MAX {
            return Self {
                name: full,
                full_name: None,
            };
        }
        let digest = Sha256::digest(full.as_bytes());
        let hash = &hex::encode(digest)[..HASH_LEN];
        let keep = DNS1123_LABEL_MAX - HASH_LEN - 1;
        let prefix = full[..keep].trim_end_matches(['-', '.']);
        Self {
            name: format!("{prefix}-{hash}"),
            full_name: Some(full),
        }
    }
}

/// `<svc>-<targetCluster>`: the name of a gateway or remote-discovery mirror.
pub fn mirror_service_name(remote_service: &str, target_cluster: &str) -> GeneratedName {
    GeneratedName::fit(format!("{remote_service}-{target_cluster}"))
}

/// `<svc>-federated`: the federated Service's name.
pub fn federated_service_name(service: &str) -> GeneratedName {
    GeneratedName::fit(format!("{service}-federated"))
}

/// `<podHostname>-<targetCluster>`: a headless per-host endpoint mirror.
pub fn endpoint_mirror_name(hostname: &str, target_cluster: &str) -> GeneratedName {
    GeneratedName::fit(format!("{hostname}-{target_cluster}"))
}

/// `<svc>.<ns>.svc.<domain>`: the authority the gateway routes on.
pub fn remote_fq_name(service: &str, namespace: &str, cluster_domain: &str) -> String {
    format!("{service}.{namespace}.svc.{cluster_domain}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::dns1123_label;

    #[test]
    fn short_names_are_unchanged() {
        let n = mirror_service_name("web", "east");
        assert_eq!(n.name, "web-east");
        assert_eq!(n.full_name, None);
        assert_eq!(federated_service_name("web").name, "web-federated");
    }

    #[test]
    fn long_names_are_shortened_deterministically_with_a_hash() {
        let svc = "a-very-long-service-name-that-is-close-to-the-limit-of-sixty";
        let n = mirror_service_name(svc, "production-east");
        assert!(n.name.len() <= 63 && n.name.len() >= 60, "{}", n.name);
        assert!(dns1123_label(&n.name).is_ok(), "{}", n.name);
        assert_eq!(
            n.full_name.as_deref(),
            Some(format!("{svc}-production-east").as_str())
        );
        assert_eq!(n, mirror_service_name(svc, "production-east"));
        assert_ne!(n.name, mirror_service_name(svc, "production-west").name);
    }

    #[test]
    fn shortening_never_leaves_a_dash_before_the_hash_prefix() {
        // The cut lands right after a dash: the trailing dash must be trimmed.
        let full = format!("{}-{}", "a".repeat(51), "b".repeat(20));
        let n = GeneratedName::fit(full);
        assert!(dns1123_label(&n.name).is_ok(), "{}", n.name);
        assert!(!n.name.contains("--"));
    }

    #[test]
    fn fq_name_uses_cluster_domain() {
        assert_eq!(
            remote_fq_name("web", "shop", "cluster.local"),
            "web.shop.svc.cluster.local"
        );
    }
}
