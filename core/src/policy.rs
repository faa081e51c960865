//! Export policies: which of a target cluster's services may be exported to which consumers.
//!
//! Policies are allow-lists, like Kubernetes NetworkPolicies: while no policy applies to a target
//! cluster, links alone decide; once one applies, a (service, mode, consumer) triple is mirrored
//! only if at least one applicable policy allows it. Within a policy, `deny` beats `allow`.

use std::collections::BTreeMap;

use crate::{
    cluster::Cluster,
    glob::{glob_match, validate_namespace_glob},
    selector::LabelSelector,
    validation::{ValidationErrors, dns1123_label},
};

crate::status::vocabulary! {
    /// How a service is mirrored; spelled as in manifests and the `mirrors.mode` column
    /// (`gateway`, `remote-discovery`, `federated`).
    pub enum MirrorMode {
        /// Hierarchical: mirror Endpoints point at the target's gateway.
        Gateway = "gateway",
        /// Flat: the mesh resolves pod addresses in the target directly.
        RemoteDiscovery = "remote-discovery",
        /// Member of `<svc>-federated`.
        Federated = "federated",
    }
}

/// A named export policy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportPolicy {
    /// DNS-1123 label, unique among policies.
    pub name: String,
    /// The rules.
    pub spec: ExportPolicySpec,
}

/// The declarative part of an [`ExportPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportPolicySpec {
    /// Target (exporting) clusters this policy governs, by cluster labels; absent = every cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_cluster_selector: Option<LabelSelector>,
    /// Namespaces whose services may be exported.
    #[serde(default)]
    pub namespaces: NamespaceFilter,
    /// Services this policy allows, by Service labels; absent = every service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_selector: Option<LabelSelector>,
    /// Modes this policy allows.
    #[serde(default = "all_modes")]
    pub modes: Vec<MirrorMode>,
    /// Consumer (source) clusters that may receive the mirrors, by cluster labels; absent = all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_cluster_selector: Option<LabelSelector>,
}

fn all_modes() -> Vec<MirrorMode> {
    MirrorMode::ALL.to_vec()
}

/// Namespace globs: allowed unless denied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceFilter {
    /// Globs of allowed namespaces (default `["*"]`).
    #[serde(default = "allow_all")]
    pub allow: Vec<String>,
    /// Globs of denied namespaces; deny wins over allow.
    #[serde(default)]
    pub deny: Vec<String>,
}

fn allow_all() -> Vec<String> {
    vec!["*".into()]
}

impl Default for NamespaceFilter {
    fn default() -> Self {
        Self {
            allow: allow_all(),
            deny: vec![],
        }
    }
}

impl NamespaceFilter {
    /// True when `namespace` matches an allow glob and no deny glob.
    pub fn allows(&self, namespace: &str) -> bool {
        self.allow.iter().any(|g| glob_match(g, namespace))
            && !self.deny.iter().any(|g| glob_match(g, namespace))
    }
}

/// One service export being decided.
#[derive(Debug, Clone, Copy)]
pub struct ExportRequest<'a> {
    /// The exporting cluster.
    pub target: &'a Cluster,
    /// The cluster that would receive the mirror.
    pub consumer: &'a Cluster,
    /// Namespace of the Service.
    pub namespace: &'a str,
    /// Labels of the Service.
    pub service_labels: &'a BTreeMap<String, String>,
    /// Mode the link would mirror it in.
    pub mode: MirrorMode,
}

/// Outcome of evaluating the policies for one export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyDecision {
    /// No policy governs the target cluster: the link decides alone.
    NoPolicy,
    /// Allowed by the named policy.
    Allowed(String),
    /// Policies govern the target but none allows this export; the names are the ones consulted.
    Denied(Vec<String>),
}

impl PolicyDecision {
    /// True unless denied.
    pub fn is_allowed(&self) -> bool {
        !matches!(self, PolicyDecision::Denied(_))
    }
}

impl ExportPolicy {
    /// True when this policy governs services of `target`.
    pub fn applies_to(&self, target: &Cluster) -> bool {
        self.spec
            .target_cluster_selector
            .as_ref()
            .is_none_or(|s| s.matches(&target.selector_labels()))
    }

    /// True when this policy allows the export (assuming it applies to the target).
    pub fn allows(&self, req: &ExportRequest<'_>) -> bool {
        let spec = &self.spec;
        spec.modes.contains(&req.mode)
            && spec.namespaces.allows(req.namespace)
            && spec
                .service_selector
                .as_ref()
                .is_none_or(|s| s.matches(req.service_labels))
            && spec
                .consumer_cluster_selector
                .as_ref()
                .is_none_or(|s| s.matches(&req.consumer.selector_labels()))
    }

    /// Checks every field; paths are `metadata.name` / `spec.…` as in the Git manifest.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        errs.check("metadata.name", dns1123_label(&self.name));
        let spec = &self.spec;
        for (field, selector) in [
            ("spec.targetClusterSelector", &spec.target_cluster_selector),
            ("spec.serviceSelector", &spec.service_selector),
            (
                "spec.consumerClusterSelector",
                &spec.consumer_cluster_selector,
            ),
        ] {
            if let Some(Err(e)) = selector.as_ref().map(LabelSelector::validate) {
                errs.extend_prefixed(field, e);
            }
        }
        if spec.namespaces.allow.is_empty() {
            errs.push(
                "spec.namespaces.allow",
                "must list at least one glob (use \"*\" for all namespaces)",
            );
        }
        for (field, globs) in [
            ("spec.namespaces.allow", &spec.namespaces.allow),
            ("spec.namespaces.deny", &spec.namespaces.deny),
        ] {
            for (i, g) in globs.iter().enumerate() {
                errs.check(&format!("{field}[{i}]"), validate_namespace_glob(g));
            }
        }
        for (i, g) in spec.namespaces.allow.iter().enumerate() {
            if spec.namespaces.deny.contains(g) {
                errs.push(
                    format!("spec.namespaces.allow[{i}]"),
                    format!("{g:?} is both allowed and denied; the policy could never allow it"),
                );
            }
        }
        if spec.modes.is_empty() {
            errs.push(
                "spec.modes",
                "must list at least one of gateway, remote-discovery, federated",
            );
        }
        errs.into_result()
    }
}

/// Evaluates every policy for one export.
pub fn evaluate(policies: &[ExportPolicy], req: &ExportRequest<'_>) -> PolicyDecision {
    let applicable: Vec<&ExportPolicy> = policies
        .iter()
        .filter(|p| p.applies_to(req.target))
        .collect();
    if applicable.is_empty() {
        return PolicyDecision::NoPolicy;
    }
    match applicable.iter().find(|p| p.allows(req)) {
        Some(p) => PolicyDecision::Allowed(p.name.clone()),
        None => PolicyDecision::Denied(applicable.iter().map(|p| p.name.clone()).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::CredentialsRef;

    #[test]
    fn modes_parse_from_their_wire_spelling() {
        for &m in MirrorMode::ALL {
            assert_eq!(MirrorMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(MirrorMode::parse("Gateway"), None);
    }

    fn cluster(name: &str, env: &str) -> Cluster {
        let mut c = Cluster::new(name, "https://x", CredentialsRef::Stored);
        c.spec.labels.insert("env".into(), env.into());
        c
    }

    fn policy(name: &str) -> ExportPolicy {
        ExportPolicy {
            name: name.into(),
            spec: serde_json::from_value(serde_json::json!({})).unwrap(),
        }
    }

    #[test]
    fn no_policy_lets_links_decide() {
        let (t, c) = (cluster("east", "prod"), cluster("west", "prod"));
        let labels = BTreeMap::new();
        let req = ExportRequest {
            target: &t,
            consumer: &c,
            namespace: "shop",
            service_labels: &labels,
            mode: MirrorMode::Gateway,
        };
        assert_eq!(evaluate(&[], &req), PolicyDecision::NoPolicy);
    }

    #[test]
    fn deny_glob_wins_and_other_targets_are_ungoverned() {
        let (east, west, dev) = (
            cluster("east", "prod"),
            cluster("west", "prod"),
            cluster("dev", "dev"),
        );
        let mut p = policy("prod-only");
        p.spec.target_cluster_selector = Some(LabelSelector::label("env", "prod"));
        p.spec.namespaces.deny = vec!["kube-*".into()];
        p.spec.modes = vec![MirrorMode::Gateway];
        p.spec.consumer_cluster_selector = Some(LabelSelector::label("env", "prod"));
        let labels = BTreeMap::new();
        let policies = [p];
        let req = |target, consumer, namespace, mode| ExportRequest {
            target,
            consumer,
            namespace,
            service_labels: &labels,
            mode,
        };
        assert_eq!(
            evaluate(&policies, &req(&east, &west, "shop", MirrorMode::Gateway)),
            PolicyDecision::Allowed("prod-only".into())
        );
        assert_eq!(
            evaluate(
                &policies,
                &req(&east, &west, "kube-system", MirrorMode::Gateway)
            ),
            PolicyDecision::Denied(vec!["prod-only".into()])
        );
        assert!(
            !evaluate(
                &policies,
                &req(&east, &west, "shop", MirrorMode::RemoteDiscovery)
            )
            .is_allowed()
        );
        assert!(!evaluate(&policies, &req(&east, &dev, "shop", MirrorMode::Gateway)).is_allowed());
        assert_eq!(
            evaluate(&policies, &req(&dev, &east, "shop", MirrorMode::Gateway)),
            PolicyDecision::NoPolicy
        );
    }

    #[test]
    fn consumer_can_be_selected_by_implicit_name_label() {
        let (east, west, north) = (
            cluster("east", "prod"),
            cluster("west", "prod"),
            cluster("north", "prod"),
        );
        let mut p = policy("to-west");
        p.spec.consumer_cluster_selector =
            Some(LabelSelector::label("linkplane.io/cluster-name", "west"));
        let labels = BTreeMap::new();
        let policies = [p];
        let mk = |consumer| ExportRequest {
            target: &east,
            consumer,
            namespace: "a",
            service_labels: &labels,
            mode: MirrorMode::Federated,
        };
        assert!(evaluate(&policies, &mk(&west)).is_allowed());
        assert!(!evaluate(&policies, &mk(&north)).is_allowed());
    }

    #[test]
    fn contradictory_and_empty_rules_are_invalid() {
        let mut p = policy("bad");
        p.spec.namespaces = NamespaceFilter {
            allow: vec!["shop".into()],
            deny: vec!["shop".into()],
        };
        p.spec.modes = vec![];
        let errs: Vec<String> = p
            .validate()
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "spec.namespaces.allow[0]: \"shop\" is both allowed and denied; the policy could never allow it",
                "spec.modes: must list at least one of gateway, remote-discovery, federated",
            ]
        );
    }

    #[test]
    fn modes_parse_in_kebab_case() {
        let m: Vec<MirrorMode> =
            serde_json::from_str(r#"["gateway","remote-discovery","federated"]"#).unwrap();
        assert_eq!(m, MirrorMode::ALL.to_vec());
    }
}
