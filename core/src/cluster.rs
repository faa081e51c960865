//! A cluster linkplane connects: where its API server is, how to reach it, and its gateway.

use std::collections::BTreeMap;

use crate::{
    duration::Duration,
    naming::CLUSTER_NAME_SELECTOR_LABEL,
    validation::{
        ValidationErrors, dns1123_label, dns1123_subdomain, http_url, label_key, label_value, port,
    },
};

/// A Kubernetes cluster known to linkplane. Its `name` is the suffix of every mirror it exports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cluster {
    /// DNS-1123 label, unique among clusters; used as `mirror.linkerd.io/cluster-name`.
    pub name: String,
    /// Everything else about the cluster.
    pub spec: ClusterSpec,
}

/// The declarative part of a [`Cluster`], as written under `spec:` in Git.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    /// API server URL, e.g. `https://10.0.0.1:6443`.
    pub api_server: String,
    /// Where the kubeconfig lives; the secret itself is never part of the model.
    pub credentials: CredentialsRef,
    /// DNS suffix of Services in this cluster, used in `remote-svc-fq-name`.
    #[serde(default = "default_cluster_domain")]
    pub cluster_domain: String,
    /// Linkerd's identity trust domain in this cluster (`identityTrustDomain`), copied to
    /// `multicluster.linkerd.io/trust-domain` on the remote-discovery credentials Secret that
    /// other clusters' Linkerd control planes use to reach this one.
    ///
    /// Omitted from the serialised spec when it is the default, so clusters stored before the
    /// field existed compare equal and are not rewritten.
    #[serde(
        default = "default_trust_domain",
        skip_serializing_if = "is_default_trust_domain"
    )]
    pub trust_domain: String,
    /// Namespace of this cluster's Linkerd control plane: where its destination controller reads
    /// `cluster-credentials-<target>` Secrets. linkplane writes them there, never creates it.
    #[serde(
        default = "default_linkerd_namespace",
        skip_serializing_if = "is_default_linkerd_namespace"
    )]
    pub linkerd_namespace: String,
    /// The multicluster gateway in front of this cluster; absent for flat-network-only clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewaySpec>,
    /// Free-form labels export policies select consumer/target clusters by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// How to obtain a kubeconfig for a cluster. Exactly one source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum CredentialsRef {
    /// A kubeconfig file on linkplane's filesystem (mounted Secret, or `scripts/dev`'s files).
    KubeconfigFile(String),
    /// A Secret in the cluster linkplane runs in (Linkerd's `cluster-credentials-<name>` shape).
    SecretRef(SecretRef),
    /// A kubeconfig set through the API's `setClusterCredentials`, stored encrypted in Postgres.
    Stored,
}

/// A key of a Kubernetes Secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    /// Secret name.
    pub name: String,
    /// Namespace; defaults to the one linkplane runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Data key holding the kubeconfig; Linkerd uses `kubeconfig`.
    #[serde(default = "default_secret_key")]
    pub key: String,
}

/// The target-side gateway that gateway-mode mirrors route through.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySpec {
    /// IPs or DNS names; names are resolved to all their addresses when Endpoints are written.
    pub addresses: Vec<String>,
    /// Port every mirror Endpoints uses (Linkerd's `mc-gateway`, 4143).
    #[serde(default = "default_gateway_port")]
    pub port: u32,
    /// Gateway TLS identity, copied to `mirror.linkerd.io/remote-gateway-identity`.
    #[serde(default)]
    pub identity: String,
    /// Liveness probe of the gateway.
    #[serde(default)]
    pub probe: ProbeSpec,
}

/// Gateway probe settings with Linkerd's defaults (`/ready` on 4191 every 3s, 30s timeout, 3 failures).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeSpec {
    /// HTTP path; an empty path disables probing (the gateway is then always considered alive).
    #[serde(default = "default_probe_path")]
    pub path: String,
    /// Probe port (Linkerd's `mc-probe`, 4191).
    #[serde(default = "default_probe_port")]
    pub port: u32,
    /// Interval between probes; jitter of up to a tenth is added.
    #[serde(default = "default_probe_period")]
    pub period: Duration,
    /// Per-request timeout.
    #[serde(default = "default_probe_timeout")]
    pub timeout: Duration,
    /// Consecutive failures before the gateway is marked dead.
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
}

impl Default for ProbeSpec {
    fn default() -> Self {
        Self {
            path: default_probe_path(),
            port: default_probe_port(),
            period: default_probe_period(),
            timeout: default_probe_timeout(),
            failure_threshold: default_failure_threshold(),
        }
    }
}

/// Kubernetes' default cluster domain.
pub fn default_cluster_domain() -> String {
    "cluster.local".into()
}
/// Linkerd's default identity trust domain.
pub fn default_trust_domain() -> String {
    "cluster.local".into()
}
/// The namespace Linkerd's control plane is installed in by default.
pub fn default_linkerd_namespace() -> String {
    "linkerd".into()
}
fn is_default_trust_domain(v: &str) -> bool {
    v == "cluster.local"
}
fn is_default_linkerd_namespace(v: &str) -> bool {
    v == "linkerd"
}
fn default_secret_key() -> String {
    "kubeconfig".into()
}
/// Linkerd's gateway port (`mc-gateway`).
pub const fn default_gateway_port() -> u32 {
    4143
}
fn default_probe_path() -> String {
    "/ready".into()
}
const fn default_probe_port() -> u32 {
    4191
}
const fn default_probe_period() -> Duration {
    Duration::from_secs(3)
}
const fn default_probe_timeout() -> Duration {
    Duration::from_secs(30)
}
const fn default_failure_threshold() -> u32 {
    3
}

impl Cluster {
    /// A cluster with defaults for everything but name, API server and credentials.
    pub fn new(
        name: impl Into<String>,
        api_server: impl Into<String>,
        credentials: CredentialsRef,
    ) -> Self {
        Self {
            name: name.into(),
            spec: ClusterSpec {
                api_server: api_server.into(),
                credentials,
                cluster_domain: default_cluster_domain(),
                trust_domain: default_trust_domain(),
                linkerd_namespace: default_linkerd_namespace(),
                gateway: None,
                labels: BTreeMap::new(),
            },
        }
    }

    /// Labels for policy selection, including the implicit `linkplane.io/cluster-name`.
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.spec.labels.clone();
        labels.insert(CLUSTER_NAME_SELECTOR_LABEL.to_string(), self.name.clone());
        labels
    }

    /// Checks every field; paths are `metadata.name` / `spec.…` as in the Git manifest.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        errs.check("metadata.name", dns1123_label(&self.name));
        let spec = &self.spec;
        errs.check("spec.apiServer", http_url(&spec.api_server));
        errs.check(
            "spec.clusterDomain",
            dns1123_subdomain(&spec.cluster_domain),
        );
        errs.check("spec.trustDomain", dns1123_subdomain(&spec.trust_domain));
        errs.check(
            "spec.linkerdNamespace",
            dns1123_label(&spec.linkerd_namespace),
        );
        match &spec.credentials {
            CredentialsRef::KubeconfigFile(path) if path.trim().is_empty() => {
                errs.push("spec.credentials.kubeconfigFile", "must not be empty")
            }
            CredentialsRef::SecretRef(r) => {
                errs.check(
                    "spec.credentials.secretRef.name",
                    crate::validation::dns1123_subdomain(&r.name),
                );
                if let Some(ns) = &r.namespace {
                    errs.check("spec.credentials.secretRef.namespace", dns1123_label(ns));
                }
                if r.key.is_empty() {
                    errs.push("spec.credentials.secretRef.key", "must not be empty");
                }
            }
            _ => {}
        }
        for (k, v) in &spec.labels {
            errs.check(&format!("spec.labels[{k}]"), label_key(k));
            errs.check(&format!("spec.labels[{k}]"), label_value(v));
        }
        if let Some(gw) = &spec.gateway {
            if gw.addresses.is_empty() {
                errs.push(
                    "spec.gateway.addresses",
                    "must list at least one IP or DNS name",
                );
            }
            for (i, a) in gw.addresses.iter().enumerate() {
                if a.parse::<std::net::IpAddr>().is_err() {
                    errs.check(
                        &format!("spec.gateway.addresses[{i}]"),
                        dns1123_subdomain(a),
                    );
                }
            }
            errs.check("spec.gateway.port", port(gw.port));
            let p = &gw.probe;
            if !p.path.is_empty() && !p.path.starts_with('/') {
                errs.push(
                    "spec.gateway.probe.path",
                    format!("{:?} must start with '/'", p.path),
                );
            }
            errs.check("spec.gateway.probe.port", port(p.port));
            if p.period.as_std().is_zero() {
                errs.push("spec.gateway.probe.period", "must be greater than zero");
            }
            if p.timeout.as_std().is_zero() {
                errs.push("spec.gateway.probe.timeout", "must be greater than zero");
            }
            if p.failure_threshold == 0 {
                errs.push("spec.gateway.probe.failureThreshold", "must be at least 1");
            }
        }
        errs.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> Cluster {
        let mut c = Cluster::new(
            "east",
            "https://127.0.0.1:6443",
            CredentialsRef::KubeconfigFile("/k/east".into()),
        );
        c.spec.gateway = Some(GatewaySpec {
            addresses: vec!["10.0.0.1".into(), "gw.east.example.com".into()],
            port: 4143,
            identity:
                "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.cluster.local"
                    .into(),
            probe: ProbeSpec::default(),
        });
        c
    }

    fn errors(c: &Cluster) -> Vec<String> {
        c.validate()
            .err()
            .map(|e| e.0.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    #[test]
    fn valid_cluster_passes() {
        assert_eq!(errors(&cluster()), Vec::<String>::new());
    }

    #[test]
    fn defaults_follow_linkerd() {
        let spec: ClusterSpec = serde_json::from_value(serde_json::json!({
            "apiServer": "https://a", "credentials": {"kubeconfigFile": "/x"},
            "gateway": {"addresses": ["1.2.3.4"]}
        }))
        .unwrap();
        assert_eq!(spec.cluster_domain, "cluster.local");
        assert_eq!(spec.trust_domain, "cluster.local");
        assert_eq!(spec.linkerd_namespace, "linkerd");
        let gw = spec.gateway.unwrap();
        assert_eq!(gw.port, 4143);
        assert_eq!(gw.probe, ProbeSpec::default());
        assert_eq!(gw.probe.path, "/ready");
        assert_eq!(gw.probe.port, 4191);
        assert_eq!(gw.probe.period.to_string(), "3s");
        assert_eq!(gw.probe.timeout.to_string(), "30s");
        assert_eq!(gw.probe.failure_threshold, 3);
    }

    #[test]
    fn bad_name_port_and_probe_are_reported_with_paths() {
        let mut c = cluster();
        c.name = "East_1".into();
        let gw = c.spec.gateway.as_mut().unwrap();
        gw.port = 0;
        gw.probe.port = 70000;
        gw.probe.failure_threshold = 0;
        gw.probe.path = "ready".into();
        assert_eq!(
            errors(&c),
            vec![
                "metadata.name: \"East_1\" is not a lowercase RFC 1123 label: it must consist of lower \
                 case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                "spec.gateway.port: must be between 1 and 65535 (got 0)",
                "spec.gateway.probe.path: \"ready\" must start with '/'",
                "spec.gateway.probe.port: must be between 1 and 65535 (got 70000)",
                "spec.gateway.probe.failureThreshold: must be at least 1",
            ]
        );
    }

    #[test]
    fn gateway_address_must_be_ip_or_dns_name() {
        let mut c = cluster();
        c.spec.gateway.as_mut().unwrap().addresses = vec!["not a host".into()];
        assert_eq!(
            errors(&c),
            vec![
                "spec.gateway.addresses[0]: \"not a host\" is not a lowercase RFC 1123 subdomain: it must \
                 consist of lower case alphanumeric characters, '-' or '.', and must start and end with \
                 an alphanumeric character"
            ]
        );
    }

    #[test]
    fn default_linkerd_fields_are_not_serialised() {
        let mut c = cluster();
        let json = serde_json::to_value(&c.spec).unwrap();
        assert!(json.get("trustDomain").is_none(), "{json}");
        assert!(json.get("linkerdNamespace").is_none(), "{json}");
        c.spec.trust_domain = "east.example".into();
        c.spec.linkerd_namespace = "l5d".into();
        let json = serde_json::to_value(&c.spec).unwrap();
        assert_eq!(json["trustDomain"], "east.example");
        assert_eq!(json["linkerdNamespace"], "l5d");
        let back: ClusterSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, c.spec);
    }

    #[test]
    fn trust_domain_and_linkerd_namespace_are_checked() {
        let mut c = cluster();
        c.spec.trust_domain = "Bad Domain".into();
        c.spec.linkerd_namespace = "a.b".into();
        let errs = errors(&c);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("spec.trustDomain: "), "{errs:?}");
        assert!(errs[1].starts_with("spec.linkerdNamespace: "), "{errs:?}");
    }

    #[test]
    fn api_server_must_be_a_url() {
        let mut c = cluster();
        c.spec.api_server = "127.0.0.1:6443".into();
        assert_eq!(
            errors(&c),
            vec!["spec.apiServer: \"127.0.0.1:6443\" must be an http:// or https:// URL"]
        );
    }

    #[test]
    fn bare_integer_probe_period_fails_to_parse() {
        let err =
            serde_json::from_value::<ProbeSpec>(serde_json::json!({"period": "3"})).unwrap_err();
        assert!(err.to_string().contains("missing unit"), "{err}");
    }

    #[test]
    fn selector_labels_include_the_cluster_name() {
        let c = cluster();
        assert_eq!(
            c.selector_labels()
                .get("linkplane.io/cluster-name")
                .map(String::as_str),
            Some("east")
        );
    }
}
