//! Which local objects linkplane may write and delete: the ownership rule, in one place.
//!
//! A **mirror of target `T`** is a Service or Endpoints labelled
//! `mirror.linkerd.io/mirrored-service: "true"` and `mirror.linkerd.io/cluster-name: T`
//! (linkerd-compat §0). Linkerd's service mirror writes exactly these labels; linkplane adds its
//! own `linkplane.io/remote-service: <remote>`. A link into `T` owns every mirror of `T` in its
//! source cluster, whoever wrote it: mirrors Linkerd wrote are adopted (updated, and collected
//! when their remote Service is gone, at start-up and on every resync) like linkplane's own,
//! so migrating from `linkerd multicluster link` leaves no orphans. A link with
//! `adoptLinkerdMirrors: false` owns only the mirrors that carry linkplane's label and leaves
//! Linkerd-written ones untouched (reported as a conflict when they block a mirror).
//!
//! A **federated Service** (`<svc>-federated`) is labelled `mirrored-service: "true"` and has no
//! `cluster-name`; it belongs to the source cluster, not to one link, and is owned whoever wrote
//! it (Linkerd writes the same shape).
//!
//! Everything else (no labels, another cluster's name, a probe Service with only
//! `mirrored-gateway`) is never modified or deleted.

use std::collections::BTreeMap;

use linkplane_core::{
    LinkSpec,
    naming::{
        CLUSTER_NAME_LABEL, HEADLESS_MIRROR_SVC_NAME_LABEL, LINKPLANE_REMOTE_SERVICE_LABEL,
        LOCAL_DISCOVERY_ANNOTATION, MIRRORED_SERVICE_LABEL, REMOTE_DISCOVERY_KEY,
    },
};

use crate::index::{CompactMap, IndexedService};

/// Whose objects a writer may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ownership<'a> {
    /// Mirrors of `target` (a link's).
    Mirrors {
        /// Target cluster name (`mirror.linkerd.io/cluster-name`).
        target: &'a str,
        /// Also mirrors written by Linkerd (no `linkplane.io/remote-service` label).
        adopt_linkerd: bool,
    },
    /// Federated Services of a source cluster.
    Federated,
}

impl<'a> Ownership<'a> {
    /// The rule of a link.
    pub(crate) fn of_link(spec: &'a LinkSpec) -> Self {
        Ownership::Mirrors {
            target: &spec.target,
            adopt_linkerd: spec.adopt_linkerd_mirrors,
        }
    }

    /// True when an object with these labels may be written and deleted.
    pub(crate) fn owns(&self, labels: &(impl Labels + ?Sized)) -> bool {
        let mirrored = labels.label(MIRRORED_SERVICE_LABEL) == Some("true");
        let cluster = labels.label(CLUSTER_NAME_LABEL);
        match *self {
            Ownership::Federated => mirrored && cluster.is_none(),
            Ownership::Mirrors {
                target,
                adopt_linkerd,
            } => {
                mirrored
                    && cluster == Some(target)
                    && (adopt_linkerd || labels.label(LINKPLANE_REMOTE_SERVICE_LABEL).is_some())
            }
        }
    }

    /// Why an object with these labels named `what` (e.g. `a Service web-east`) is not ours.
    pub(crate) fn refusal(&self, what: &str, ns: &str, labels: &(impl Labels + ?Sized)) -> String {
        match *self {
            Ownership::Mirrors { target, .. } if is_linkerd_mirror_of(labels, target) => format!(
                "{what} exists in namespace {ns}, written by Linkerd's service mirror for cluster \
                 {target}; the link does not adopt Linkerd's mirrors (adoptLinkerdMirrors: false), \
                 so it is left untouched"
            ),
            Ownership::Mirrors { target, .. } => format!(
                "{what} exists in namespace {ns} and is not a mirror of cluster {target}; it is left untouched"
            ),
            Ownership::Federated => format!(
                "{what} exists in namespace {ns} and is not a federated Service; it is left untouched"
            ),
        }
    }

    /// The remote Service an owned mirror `name` (Service or Endpoints, a root or a headless
    /// endpoint mirror) stands for, or `None` when it is not ours. linkplane's label says it;
    /// for a mirror Linkerd wrote it is Linkerd's reverse mapping (§2.9): the name minus
    /// `-<target>`, or for an endpoint mirror its `headless-mirror-svc-name` minus `-<target>`.
    pub(crate) fn remote_of(&self, name: &str, labels: &(impl Labels + ?Sized)) -> Option<String> {
        let Ownership::Mirrors { target, .. } = *self else {
            return None;
        };
        if !self.owns(labels) {
            return None;
        }
        if let Some(remote) = labels.label(LINKPLANE_REMOTE_SERVICE_LABEL) {
            return Some(remote.to_string());
        }
        let local = labels.label(HEADLESS_MIRROR_SVC_NAME_LABEL).unwrap_or(name);
        local
            .strip_suffix(target)
            .and_then(|s| s.strip_suffix('-'))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
}

/// A mirror of `target` that Linkerd wrote (linkplane's label absent).
fn is_linkerd_mirror_of(labels: &(impl Labels + ?Sized), target: &str) -> bool {
    labels.label(MIRRORED_SERVICE_LABEL) == Some("true")
        && labels.label(CLUSTER_NAME_LABEL) == Some(target)
        && labels.label(LINKPLANE_REMOTE_SERVICE_LABEL).is_none()
}

/// A label lookup: what the ownership rule reads of an object's labels, whether they are held
/// as a `BTreeMap` (Services, objects from the API) or as the index's [`CompactMap`]
/// (Endpoints).
pub(crate) trait Labels {
    /// The value of label `key`.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl Labels for CompactMap {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key)
    }
}

/// True for Services linkplane (or Linkerd) wrote: mirrors and federated Services never join a
/// federation.
pub(crate) fn is_generated(svc: &IndexedService) -> bool {
    svc.service.labels.contains_key(MIRRORED_SERVICE_LABEL)
}

/// True when `svc` is a federated Service we own (and keep up to date).
pub(crate) fn is_owned_federated(svc: &IndexedService) -> bool {
    Ownership::Federated.owns(&svc.service.labels)
}

/// True when an owned federated Service may be deleted for having no member: it must also carry
/// a discovery annotation, so a bare `mirrored-service` Service is never garbage-collected.
pub(crate) fn is_collectable(svc: &IndexedService) -> bool {
    let a = &svc.service.annotations;
    is_owned_federated(svc)
        && (a.contains_key(REMOTE_DISCOVERY_KEY) || a.contains_key(LOCAL_DISCOVERY_ANNOTATION))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const OURS: &[(&str, &str)] = &[
        ("mirror.linkerd.io/mirrored-service", "true"),
        ("mirror.linkerd.io/cluster-name", "east"),
        ("linkplane.io/remote-service", "web"),
    ];
    const LINKERD: &[(&str, &str)] = &[
        ("mirror.linkerd.io/mirrored-service", "true"),
        ("mirror.linkerd.io/cluster-name", "east"),
    ];

    fn rule(adopt: bool) -> Ownership<'static> {
        Ownership::Mirrors {
            target: "east",
            adopt_linkerd: adopt,
        }
    }

    /// linkerd-compat §2.9: Linkerd's GC derives the remote name by stripping `-<target>`
    /// (endpoint mirrors: from `headless-mirror-svc-name`); linkplane's own label wins.
    #[test]
    fn linkerd_mirrors_are_adopted_with_linkerds_reverse_mapping() {
        let adopt = rule(true);
        assert_eq!(
            adopt.remote_of("web-east", &labels(OURS)).as_deref(),
            Some("web")
        );
        assert_eq!(
            adopt.remote_of("web-east", &labels(LINKERD)).as_deref(),
            Some("web")
        );
        assert_eq!(
            adopt.remote_of("a-east-east", &labels(LINKERD)).as_deref(),
            Some("a-east")
        );
        let mut host = labels(LINKERD);
        host.insert(
            "mirror.linkerd.io/headless-mirror-svc-name".into(),
            "pg-east".into(),
        );
        assert_eq!(adopt.remote_of("pg-0-east", &host).as_deref(), Some("pg"));
        // Not a mirror of east, or a name that cannot be one.
        assert_eq!(adopt.remote_of("east", &labels(LINKERD)), None);
        let mut north = labels(LINKERD);
        north.insert("mirror.linkerd.io/cluster-name".into(), "north".into());
        assert!(!adopt.owns(&north));
        assert_eq!(adopt.remote_of("web-north", &north), None);
        assert!(!adopt.owns(&labels(&[("app", "web")])));
    }

    #[test]
    fn without_adoption_linkerd_mirrors_are_left_alone_and_say_why() {
        let keep = rule(false);
        assert!(keep.owns(&labels(OURS)));
        assert!(!keep.owns(&labels(LINKERD)));
        assert_eq!(keep.remote_of("web-east", &labels(LINKERD)), None);
        let why = keep.refusal("a Service web-east", "shop", &labels(LINKERD));
        assert!(why.contains("adoptLinkerdMirrors: false"), "{why}");
        let foreign = keep.refusal("a Service web-east", "shop", &labels(&[]));
        assert!(
            foreign.contains("not a mirror of cluster east"),
            "{foreign}"
        );
    }

    #[test]
    fn federated_services_are_owned_without_a_cluster_name() {
        let fed = labels(&[("mirror.linkerd.io/mirrored-service", "true")]);
        assert!(Ownership::Federated.owns(&fed));
        assert!(!Ownership::Federated.owns(&labels(LINKERD)));
        assert!(!rule(true).owns(&fed));
    }
}
