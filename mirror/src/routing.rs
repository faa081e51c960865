//! Event routing: what the runtime tells the reconcilers, and the one trait they receive it
//! through. Mirroring (`mirroring`), federation (`federation`), Multi-Cluster Services (`mcs`)
//! and remote-discovery credentials (`remote_access`) each implement [`Route`]; the runtime
//! (`shared`, `watch`, `supervisor`) calls every route in turn without naming any of them, and
//! each route turns an event into keys on its own queues.
//!
//! The trait is generic over the context `C` it is called with (always `shared::Shared`) so that
//! this module depends on neither the state nor the routes: no module circle.

use std::{collections::BTreeMap, sync::Arc};

use crate::{
    cluster::ClusterRuntime,
    config::{LinkEntry, Snapshot},
    index::Kind,
};

/// A watched object that changed (the index already holds its new state).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Change<'a> {
    /// The cluster it is in.
    pub cluster: &'a str,
    /// Its kind.
    pub kind: Kind,
    /// Its namespace (empty for a Namespace).
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its labels (a mirror's tell which link owns it).
    pub labels: &'a BTreeMap<String, String>,
}

/// A reconciler plugged into the runtime. Every method has a no-op default: a route implements
/// the events it cares about. Methods only queue work (or wake a task); none may block.
pub(crate) trait Route<C>: Send + Sync {
    /// A watched object changed.
    fn on_change(&self, cx: &C, change: &Change<'_>);

    /// Every watch of `cluster` (re)listed, or its API server answers again.
    fn on_synced(&self, _cx: &C, _cluster: &str) {}

    /// This replica gained `cluster` and its mirrors are now in the index (they were not
    /// watched while another replica owned it): plan what is written into it. Its exports were
    /// indexed all along, so what only reads them needs nothing.
    fn on_gained(&self, _cx: &C, _cluster: &str) {}

    /// `cluster` cannot be watched.
    fn on_failed(&self, _cx: &C, _cluster: &str, _message: &str) {}

    /// `link` needs a full pass (it came or changed, a gateway view or the lease of its source
    /// moved, or the periodic resync). Called only where this replica may write its source.
    fn on_link(&self, _cx: &C, _link: &LinkEntry) {}

    /// [`on_link`](Self::on_link) for each of `links`; a route that can share work between
    /// them (one read of a source's index for all its links) overrides it.
    fn on_links(&self, cx: &C, links: &[&LinkEntry]) {
        for l in links {
            self.on_link(cx, l);
        }
    }

    /// The configuration was reloaded (`new` is already current).
    fn on_reload(&self, _cx: &Arc<C>, _old: &Snapshot, _new: &Snapshot) {}

    /// `rt` connected: start this route's workers on it (they live as long as the runtime).
    fn start(&self, _cx: &Arc<C>, _rt: &Arc<ClusterRuntime>) {}
}
