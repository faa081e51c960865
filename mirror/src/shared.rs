//! State shared by every task of the reconcilers ([`Shared`]): the configuration snapshot, one
//! [`ClusterRuntime`] per cluster, gateway views, leases, the status writers, and the routes
//! that events are dispatched to. It names no reconciler: each route's state is a leaf type
//! (`federation::state`, `mcs::state`, `remote_access::state`) and the routes are trait objects.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, RwLock},
};

use kube::Client;
use linkplane_core::plan::GatewayView;
use linkplane_store::Store;

use crate::{
    Metrics,
    cluster::ClusterRuntime,
    config::{LinkEntry, Options, Snapshot},
    events::Recorder,
    federation::state::Federation,
    index::Kind,
    lease::{LeaseTable, fenced_client},
    mcs::state::Mcs,
    remote_access::state::RemoteAccess,
    routing::{Change, Route},
    status::StatusSink,
};

/// State shared by every task of the supervisor.
pub(crate) struct Shared {
    pub store: Store,
    pub options: Options,
    pub metrics: Metrics,
    pub status: StatusSink,
    pub config: RwLock<Arc<Snapshot>>,
    pub clusters: RwLock<HashMap<String, Arc<ClusterRuntime>>>,
    /// Gateway views by target cluster.
    pub gateways: RwLock<HashMap<String, GatewayView>>,
    pub federation: Federation,
    /// Multi-Cluster Services: exports seen, imports written.
    pub mcs: Mcs,
    /// Kubernetes Events, aggregated.
    pub events: Arc<Recorder>,
    /// `(source, target)` pairs whose removed-link clean-up is running.
    pub cleanups: std::sync::Mutex<BTreeSet<(String, String)>>,
    /// Remote-discovery credentials tasks, by `(source, target)`.
    pub remote_access: RemoteAccess,
    /// Leases this replica holds: checked before every write (see `lease`).
    pub leases: Arc<LeaseTable>,
    /// The reconcilers events are routed to, in order (see `routing`).
    pub routes: Vec<Arc<dyn Route<Shared>>>,
    /// Services and Endpoints lists run a few at a time (see `watch`).
    pub lists: crate::watch::ListSlots,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}
fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        read(&self.config).clone()
    }

    pub fn runtime(&self, cluster: &str) -> Option<Arc<ClusterRuntime>> {
        read(&self.clusters).get(cluster).cloned()
    }

    pub fn runtimes(&self) -> Vec<Arc<ClusterRuntime>> {
        read(&self.clusters).values().cloned().collect()
    }

    pub fn insert_runtime(&self, rt: Arc<ClusterRuntime>) -> Option<Arc<ClusterRuntime>> {
        write(&self.clusters).insert(rt.cluster.name.clone(), rt)
    }

    pub fn remove_runtime(&self, cluster: &str) -> Option<Arc<ClusterRuntime>> {
        write(&self.clusters).remove(cluster)
    }

    /// The gateway of target cluster `target` as last resolved and probed (shared by every link
    /// into it); no address and alive before the first probe or without a gateway.
    pub fn gateway(&self, target: &str) -> GatewayView {
        read(&self.gateways)
            .get(target)
            .cloned()
            .unwrap_or(GatewayView {
                addresses: vec![],
                alive: true,
            })
    }

    pub fn set_gateway(&self, target: &str, view: GatewayView) {
        write(&self.gateways).insert(target.to_string(), view);
    }

    pub fn has_gateway(&self, target: &str) -> bool {
        read(&self.gateways).contains_key(target)
    }

    pub fn remove_gateway(&self, target: &str) {
        write(&self.gateways).remove(target);
    }

    /// Claims a clean-up; false when one for the pair is already running.
    pub fn begin_cleanup(&self, pair: &(String, String)) -> bool {
        self.cleanups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pair.clone())
    }

    /// Releases a clean-up claimed by [`begin_cleanup`](Self::begin_cleanup).
    pub fn end_cleanup(&self, pair: &(String, String)) {
        self.cleanups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(pair);
    }

    /// `client` as this replica sends it: its user agent, and writes fenced by the lease of
    /// `cluster` (unchanged without leases).
    pub fn wrap_client(&self, client: Client, cluster: &str) -> Client {
        match &self.options.lease {
            Some(o) => fenced_client(client, cluster, &o.user_agent(), self.leases.clone()),
            None => client,
        }
    }

    /// Every route gives `link` a full pass (see [`Route::on_link`]), where this replica may
    /// write its source. Each route holds back until the indexes it reads are synced: an empty
    /// index must never look like "all deleted".
    pub fn enqueue_link(&self, link_name: &str) {
        self.enqueue_links(&[link_name]);
    }

    /// [`enqueue_link`](Self::enqueue_link) for many links at once (see [`Route::on_links`]).
    pub fn enqueue_links(&self, link_names: &[&str]) {
        let snap = self.snapshot();
        let entries: Vec<&LinkEntry> = link_names
            .iter()
            .filter_map(|n| snap.links.get(*n))
            // Another replica owns the source: it plans, writes and records these links.
            .filter(|e| self.leases.may_write(&e.link.spec.source))
            .collect();
        if entries.is_empty() {
            return;
        }
        for r in &self.routes {
            r.on_links(self, &entries);
        }
    }

    /// A watched object changed in `cluster`.
    pub fn on_change(
        &self,
        cluster: &str,
        kind: Kind,
        namespace: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) {
        let change = Change {
            cluster,
            kind,
            namespace,
            name,
            labels,
        };
        for r in &self.routes {
            r.on_change(self, &change);
        }
    }

    /// Every watch of `cluster` (re)listed, or its API server answers again.
    pub fn on_synced(&self, cluster: &str) {
        for r in &self.routes {
            r.on_synced(self, cluster);
        }
    }

    /// The mirrors of `cluster`, gained by this replica, are indexed.
    pub fn on_gained(&self, cluster: &str) {
        for r in &self.routes {
            r.on_gained(self, cluster);
        }
    }

    /// `cluster` cannot be watched.
    pub fn on_failed(&self, cluster: &str, message: &str) {
        for r in &self.routes {
            r.on_failed(self, cluster, message);
        }
    }

    /// The configuration was reloaded: `new` becomes current, then every route hears of it.
    pub fn on_reload(self: &Arc<Self>, old: &Snapshot, new: Arc<Snapshot>) {
        *write(&self.config) = new.clone();
        for r in &self.routes {
            r.on_reload(self, old, &new);
        }
    }

    /// `rt` connected: every route starts its workers on it.
    pub fn start_workers(self: &Arc<Self>, rt: &Arc<ClusterRuntime>) {
        for r in &self.routes {
            r.start(self, rt);
        }
    }
}
