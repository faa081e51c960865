//! Label and annotation copy rules (linkerd-compat §2.4), shared by every planner.

use std::collections::BTreeMap;

use crate::{
    link::is_excluded,
    naming::{LINKPLANE_PREFIX, MIRROR_PREFIX, NEVER_COPIED_ANNOTATIONS, OPAQUE_PORTS_ANNOTATION},
};

/// Remote labels that go onto a mirror: all but `mirror.linkerd.io*` keys (so export and
/// federated labels never propagate), linkplane's own `linkplane.io/*` keys, and the excluded.
pub fn copied_labels(
    remote: &BTreeMap<String, String>,
    excluded: &[String],
) -> BTreeMap<String, String> {
    remote
        .iter()
        .filter(|(k, _)| !k.starts_with(MIRROR_PREFIX) && !is_linkplane_key(k))
        .filter(|(k, _)| !is_excluded(k, excluded))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Remote annotations that go onto a mirror: all but topology hints, linkplane's own keys and
/// the excluded; `config.linkerd.io/opaque-ports` is kept even when excluded.
pub fn copied_annotations(
    remote: &BTreeMap<String, String>,
    excluded: &[String],
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = remote
        .iter()
        .filter(|(k, _)| !NEVER_COPIED_ANNOTATIONS.contains(&k.as_str()) && !is_linkplane_key(k))
        .filter(|(k, _)| !is_excluded(k, excluded))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(v) = remote.get(OPAQUE_PORTS_ANNOTATION) {
        out.insert(OPAQUE_PORTS_ANNOTATION.to_string(), v.clone());
    }
    out
}

fn is_linkplane_key(key: &str) -> bool {
    key.strip_prefix(LINKPLANE_PREFIX)
        .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn mirror_prefixed_and_linkplane_labels_are_never_copied() {
        let remote = map(&[
            ("app", "web"),
            ("mirror.linkerd.io/exported", "true"),
            ("mirror.linkerd.io.other", "x"),
            ("linkplane.io/remote-service", "evil"),
            ("linkplane.iox/keep", "y"),
        ]);
        assert_eq!(
            copied_labels(&remote, &[]),
            map(&[("app", "web"), ("linkplane.iox/keep", "y")])
        );
    }

    #[test]
    fn excluded_labels_support_exact_keys_and_prefix_patterns() {
        let remote = map(&[
            ("evil", "1"),
            ("evil.linkerd/a", "2"),
            ("good", "3"),
            ("good.linkerd/c", "4"),
        ]);
        let excluded = vec!["evil.linkerd/*".to_string(), "evil".to_string()];
        assert_eq!(
            copied_labels(&remote, &excluded),
            map(&[("good", "3"), ("good.linkerd/c", "4")])
        );
    }

    #[test]
    fn topology_annotations_are_never_copied_but_mirror_ones_are() {
        let remote = map(&[
            ("service.kubernetes.io/topology-aware-hints", "auto"),
            ("service.kubernetes.io/topology-mode", "auto"),
            ("mirror.linkerd.io/gateway-identity", "gw"),
            ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
        ]);
        assert_eq!(
            copied_annotations(&remote, &[]),
            map(&[
                ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
                ("mirror.linkerd.io/gateway-identity", "gw"),
            ])
        );
    }

    #[test]
    fn opaque_ports_survive_exclusion() {
        let remote = map(&[
            ("config.linkerd.io/opaque-ports", "3306"),
            ("config.linkerd.io/other", "x"),
            ("team", "a"),
        ]);
        let excluded = vec!["config.linkerd.io/*".to_string(), "team".to_string()];
        assert_eq!(
            copied_annotations(&remote, &excluded),
            map(&[("config.linkerd.io/opaque-ports", "3306")])
        );
    }

    #[test]
    fn linkplane_annotations_from_the_remote_are_dropped() {
        let remote = map(&[("linkplane.io/full-name", "spoofed"), ("a", "b")]);
        assert_eq!(copied_annotations(&remote, &[]), map(&[("a", "b")]));
    }
}
