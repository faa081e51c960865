//! A directed link: the *source* cluster mirrors the *target* cluster's exported services.

use crate::{
    naming::{
        DEFAULT_EXPORT_GATEWAY_VALUE, DEFAULT_EXPORT_KEY, DEFAULT_EXPORT_REMOTE_DISCOVERY_VALUE,
        DEFAULT_FEDERATED_KEY, DEFAULT_FEDERATED_VALUE,
    },
    selector::LabelSelector,
    validation::{ValidationErrors, dns1123_label, label_key},
};

/// A link between two clusters. Field meanings follow Linkerd's Link CRD (v1alpha3).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Link {
    /// DNS-1123 label, unique among links.
    pub name: String,
    /// Everything else about the link.
    pub spec: LinkSpec,
}

/// The declarative part of a [`Link`], as written under `spec:` in Git.
///
/// Selectors default to Linkerd's CLI defaults; an explicitly empty selector (`{}`) or `null`
/// selects nothing, which is how a mode is switched off.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkSpec {
    /// The cluster that receives the mirrors.
    pub source: String,
    /// The cluster whose services are exported.
    pub target: String,
    /// Services mirrored in gateway (hierarchical) mode.
    #[serde(default = "default_selector")]
    pub selector: Option<LabelSelector>,
    /// Services mirrored in remote-discovery (flat) mode; wins when both selectors match.
    #[serde(default = "default_remote_discovery_selector")]
    pub remote_discovery_selector: Option<LabelSelector>,
    /// Services that join `<svc>-federated`.
    #[serde(default = "default_federated_selector")]
    pub federated_service_selector: Option<LabelSelector>,
    /// Label keys (or `prefix/*`) not copied onto mirrors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_labels: Vec<String>,
    /// Annotation keys (or `prefix/*`) not copied onto mirrors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_annotations: Vec<String>,
    /// Create a missing namespace in the source cluster instead of skipping the service.
    #[serde(default)]
    pub create_namespaces: bool,
    /// Mirror headless services with per-host endpoint mirrors.
    #[serde(default)]
    pub enable_headless_services: bool,
    /// Delete this link's mirrors when the link is removed (Linkerd leaves them behind).
    #[serde(default = "default_true")]
    pub cleanup_on_unlink: bool,
    /// Mirrors written by Linkerd's service mirror for this target (its two labels, without
    /// linkplane's) are adopted: updated and garbage-collected like linkplane's own. `false`
    /// leaves them untouched, e.g. while Linkerd still runs during a migration.
    #[serde(default = "default_true")]
    pub adopt_linkerd_mirrors: bool,
    /// Kubernetes Multi-Cluster Services (KEP-1645): a `ServiceExport` in the target exports
    /// the Service of its name, and the source gets `ServiceImport`s and EndpointSlices next to
    /// the mirrors. Absent: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcs: Option<McsSpec>,
}

/// The MCS settings of a link (`spec.mcs`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McsSpec {
    /// Serve MCS for this link.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// linkplane installs the `multicluster.x-k8s.io` CRDs into both clusters; `false`
    /// expects them to be installed.
    #[serde(default = "default_true")]
    pub install: bool,
    /// The mode of the Linkerd mirror of a `ServiceExport`-exported Service (MCS assumes a
    /// flat network: remote discovery).
    #[serde(default = "default_mcs_mode")]
    pub export_mode: crate::MirrorMode,
}

fn default_mcs_mode() -> crate::MirrorMode {
    crate::MirrorMode::RemoteDiscovery
}

impl Default for McsSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            install: true,
            export_mode: default_mcs_mode(),
        }
    }
}

impl LinkSpec {
    /// The MCS settings when MCS is on for this link.
    pub fn mcs_enabled(&self) -> Option<&McsSpec> {
        self.mcs.as_ref().filter(|m| m.enabled)
    }
}

fn default_true() -> bool {
    true
}
/// `mirror.linkerd.io/exported=true`.
pub fn default_selector() -> Option<LabelSelector> {
    Some(LabelSelector::label(
        DEFAULT_EXPORT_KEY,
        DEFAULT_EXPORT_GATEWAY_VALUE,
    ))
}
/// `mirror.linkerd.io/exported=remote-discovery`.
pub fn default_remote_discovery_selector() -> Option<LabelSelector> {
    Some(LabelSelector::label(
        DEFAULT_EXPORT_KEY,
        DEFAULT_EXPORT_REMOTE_DISCOVERY_VALUE,
    ))
}
/// `mirror.linkerd.io/federated=member`.
pub fn default_federated_selector() -> Option<LabelSelector> {
    Some(LabelSelector::label(
        DEFAULT_FEDERATED_KEY,
        DEFAULT_FEDERATED_VALUE,
    ))
}

impl LinkSpec {
    /// A link with Linkerd's CLI defaults.
    pub fn new(source: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            target: target.into(),
            selector: default_selector(),
            remote_discovery_selector: default_remote_discovery_selector(),
            federated_service_selector: default_federated_selector(),
            excluded_labels: vec![],
            excluded_annotations: vec![],
            create_namespaces: false,
            enable_headless_services: false,
            cleanup_on_unlink: true,
            adopt_linkerd_mirrors: true,
            mcs: None,
        }
    }
}

impl Link {
    /// A link named `name` from `source` to `target` with Linkerd's CLI defaults.
    pub fn new(
        name: impl Into<String>,
        source: impl Into<String>,
        target: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            spec: LinkSpec::new(source, target),
        }
    }

    /// Checks every field; paths are `metadata.name` / `spec.…` as in the Git manifest.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        errs.check("metadata.name", dns1123_label(&self.name));
        let spec = &self.spec;
        errs.check("spec.source", dns1123_label(&spec.source));
        errs.check("spec.target", dns1123_label(&spec.target));
        if spec.source == spec.target {
            errs.push(
                "spec.target",
                format!("must differ from spec.source (both are {:?})", spec.source),
            );
        }
        for (field, selector) in [
            ("spec.selector", &spec.selector),
            (
                "spec.remoteDiscoverySelector",
                &spec.remote_discovery_selector,
            ),
            (
                "spec.federatedServiceSelector",
                &spec.federated_service_selector,
            ),
        ] {
            if let Some(Err(e)) = selector.as_ref().map(LabelSelector::validate) {
                errs.extend_prefixed(field, e);
            }
        }
        for (field, patterns) in [
            ("spec.excludedLabels", &spec.excluded_labels),
            ("spec.excludedAnnotations", &spec.excluded_annotations),
        ] {
            for (i, p) in patterns.iter().enumerate() {
                errs.check(&format!("{field}[{i}]"), validate_exclusion(p));
            }
        }
        if let Some(mcs) = &spec.mcs
            && mcs.export_mode == crate::MirrorMode::Federated
        {
            errs.push(
                "spec.mcs.exportMode",
                "must be gateway or remote-discovery (a ServiceExport is not a federation member)",
            );
        }
        errs.into_result()
    }
}

/// An exclusion is an exact key, or `prefix/*` matching every key that starts with `prefix`.
fn validate_exclusion(pattern: &str) -> Result<(), String> {
    match pattern.strip_suffix("/*") {
        Some("") => Err(format!("{pattern:?} has an empty prefix")),
        Some(_) => Ok(()),
        None => label_key(pattern),
    }
}

/// True when `key` matches any Linkerd exclusion pattern (exact, or `prefix/*` string prefix).
pub fn is_excluded(key: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| match p.strip_suffix("/*") {
        Some(prefix) => key.starts_with(prefix),
        None => key == p,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(l: &Link) -> Vec<String> {
        l.validate()
            .err()
            .map(|e| e.0.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    #[test]
    fn defaults_are_linkerd_cli_defaults() {
        let spec: LinkSpec =
            serde_json::from_value(serde_json::json!({"source": "west", "target": "east"}))
                .unwrap();
        assert_eq!(spec, LinkSpec::new("west", "east"));
        assert!(spec.cleanup_on_unlink);
        assert!(spec.adopt_linkerd_mirrors);
        assert!(!spec.create_namespaces && !spec.enable_headless_services);
        assert_eq!(
            spec.selector,
            Some(LabelSelector::label("mirror.linkerd.io/exported", "true"))
        );
    }

    #[test]
    fn null_selector_disables_a_mode() {
        let spec: LinkSpec = serde_json::from_value(
            serde_json::json!({"source": "w", "target": "e", "selector": null}),
        )
        .unwrap();
        assert_eq!(spec.selector, None);
    }

    #[test]
    fn source_must_differ_from_target() {
        assert_eq!(
            errors(&Link::new("loop", "east", "east")),
            vec!["spec.target: must differ from spec.source (both are \"east\")"]
        );
    }

    #[test]
    fn selector_errors_are_prefixed_with_the_field() {
        let mut l = Link::new("l", "a", "b");
        l.spec.remote_discovery_selector = Some(LabelSelector::label("x", "bad value"));
        assert_eq!(
            errors(&l),
            vec![
                "spec.remoteDiscoverySelector.matchLabels[x]: label value \"bad value\" must consist of \
             alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
            ]
        );
    }

    #[test]
    fn exclusion_patterns_are_exact_or_prefix() {
        let patterns = vec!["evil.linkerd/*".to_string(), "evil".to_string()];
        assert!(is_excluded("evil.linkerd/a", &patterns));
        assert!(is_excluded("evil", &patterns));
        assert!(!is_excluded("good", &patterns));
        assert!(!is_excluded("good.linkerd/c", &patterns));
        let mut l = Link::new("l", "a", "b");
        l.spec.excluded_labels = vec!["/*".into(), "bad key".into()];
        assert_eq!(errors(&l).len(), 2);
        assert_eq!(
            errors(&l)[0],
            "spec.excludedLabels[0]: \"/*\" has an empty prefix"
        );
    }
}
