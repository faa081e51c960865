//! Federated services: one `<svc>-federated` Service per `(namespace, service)` in each source
//! cluster, over every member (Linkerd §4, rules in [`linkplane_core::plan::federation`]).
//!
//! Reading order: this module (keys and the routing of watch events, link changes and cluster
//! failures to keys) → `reconcile` (candidates from the indexes, plan, apply with the mirror's
//! applier, state) → `state` (batched writes to `federated_services` / `federated_members`).
//!
//! Each source cluster's [`ClusterRuntime`] has a federation queue of [`FedKey`]s next to its
//! mirror queue. For source cluster `S` and key `(ns, svc)` the candidates are:
//! - **the local member**: `S`'s own `ns/svc`, when it matches the `federatedServiceSelector` of
//!   *any* link whose source is `S` (the first such link by name lends its label/annotation
//!   exclusions; no export policy applies inside one cluster);
//! - **remote members**: for every link `S ← T`, `T`'s `ns/svc` when it matches that link's
//!   selector and the export policies allow mode `federated` from `T` to `S`.
//!
//! Mirrors and federated Services (label `mirror.linkerd.io/mirrored-service`) are never members.
//! A member cluster that is failing keeps its last known Service (the index is not cleared on
//! failure) and is listed as `Unreachable`. Nothing is planned while `S` or a linked member
//! cluster has never listed its Services: an empty index must never look like "every member left".

mod reconcile;
mod state;

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use linkplane_core::{naming::FULL_NAME_ANNOTATION, selector::selects};
use linkplane_store::{Store, federation::FederatedStatus};

use crate::{
    index::IndexedService,
    ownership::{is_generated, is_owned_federated},
    runtime::{ClusterRuntime, Shared, Snapshot},
};

pub(crate) use reconcile::worker;

/// Suffix of every federated Service's name.
const SUFFIX: &str = "-federated";

/// A unit of federation work in one source cluster: the federated service of `namespace/service`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FedKey {
    /// Namespace shared by every member.
    pub namespace: String,
    /// Base service name shared by every member (the Service written is `<service>-federated`).
    pub service: String,
}

type RowKey = (String, String, String);

/// Federation state shared by the supervisor's tasks: the state rows as last written (so
/// unchanged states are not rewritten and every key with a row is revisited by a full pass) and
/// the batched writer.
pub(crate) struct Federation {
    rows: Mutex<HashMap<RowKey, FederatedStatus>>,
    sink: state::Sink,
    /// Source clusters waiting for a full pass (see [`full_pass`]).
    passes: Mutex<BTreeSet<String>>,
    pass_wanted: tokio::sync::Notify,
}

impl Federation {
    /// Loads the existing state rows and starts the batched writer.
    pub(crate) async fn start(store: &Store, flush: std::time::Duration) -> Self {
        let rows = state::load(store).await;
        Self {
            rows: Mutex::new(rows),
            sink: state::spawn(store.clone(), flush),
            passes: Mutex::new(BTreeSet::new()),
            pass_wanted: tokio::sync::Notify::new(),
        }
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<RowKey, FederatedStatus>> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `status` unless it is the state already written.
    pub(crate) fn record(&self, mut status: FederatedStatus) {
        state::normalize(&mut status);
        let key = (
            status.source_cluster.clone(),
            status.namespace.clone(),
            status.service.clone(),
        );
        let mut rows = self.rows();
        if rows.get(&key) == Some(&status) {
            return;
        }
        rows.insert(key, status.clone());
        drop(rows);
        self.sink.send(state::Op::Upsert(status));
    }

    /// Forgets the state of `source`'s `ns/svc`, if it has one.
    pub(crate) fn forget(&self, source: &str, namespace: &str, service: &str) {
        let key = (
            source.to_string(),
            namespace.to_string(),
            service.to_string(),
        );
        if self.rows().remove(&key).is_some() {
            self.sink.send(state::Op::Delete(key));
        }
    }

    fn keys_with_rows(&self, source: &str) -> Vec<FedKey> {
        self.rows()
            .keys()
            .filter(|(s, _, _)| s == source)
            .map(|(_, ns, svc)| FedKey {
                namespace: ns.clone(),
                service: svc.clone(),
            })
            .collect()
    }
}

/// The base service name of a federated Service named `name` (its full name is kept in an
/// annotation when the name had to be shortened).
fn base_name(svc: &IndexedService) -> Option<String> {
    let full = svc
        .service
        .annotations
        .get(FULL_NAME_ANNOTATION)
        .unwrap_or(&svc.service.name);
    full.strip_suffix(SUFFIX)
        .filter(|b| !b.is_empty())
        .map(str::to_string)
}

/// Spawns the federation workers of a cluster runtime (one per unit of write concurrency).
pub(crate) fn spawn_workers(rt: &Arc<ClusterRuntime>, shared: &Arc<Shared>) {
    for _ in 0..shared.options.concurrency.max(1) {
        rt.push_task(tokio::spawn(worker(rt.clone(), shared.clone())));
    }
}

fn enqueue(shared: &Shared, source: &str, namespace: &str, service: &str) {
    if let Some(rt) = shared.runtime(source) {
        rt.federation.add(FedKey {
            namespace: namespace.to_string(),
            service: service.to_string(),
        });
    }
}

/// A Service changed in `cluster`: its key in `cluster` itself (local member, or our own
/// `<svc>-federated` edited or deleted by hand) and in every source cluster linked to it.
pub(crate) fn on_service(shared: &Shared, cluster: &str, namespace: &str, name: &str) {
    let snap = shared.snapshot();
    if snap.links_into(cluster).next().is_some() {
        enqueue(shared, cluster, namespace, name);
        if let Some(base) = name.strip_suffix(SUFFIX).filter(|b| !b.is_empty()) {
            enqueue(shared, cluster, namespace, base);
        }
    }
    for entry in snap.links_targeting(cluster) {
        enqueue(shared, &entry.link.spec.source, namespace, name);
    }
}

/// A Namespace appeared or vanished in `cluster`: re-plan its keys there.
pub(crate) fn on_namespace(shared: &Shared, cluster: &str, namespace: &str) {
    full_pass_in(shared, cluster, Some(namespace));
}

/// `cluster` (re)synced, failed or recovered: every key of `cluster` as a source, and of every
/// source cluster linked to it.
pub(crate) fn on_cluster(shared: &Shared, cluster: &str) {
    let snap = shared.snapshot();
    let mut sources: BTreeSet<&str> = snap
        .links_targeting(cluster)
        .map(|l| l.link.spec.source.as_str())
        .collect();
    sources.insert(cluster);
    for s in sources {
        full_pass(shared, s);
    }
}

/// The configuration was reloaded: full pass over every source cluster whose links came, went
/// or changed, or over all of them when export policies changed.
pub(crate) fn on_reload(shared: &Shared, old: &Snapshot, new: &Snapshot) {
    let mut sources = BTreeSet::new();
    for (name, entry) in &old.links {
        if new.links.get(name) != Some(entry) {
            sources.insert(entry.link.spec.source.clone());
        }
    }
    for (name, entry) in &new.links {
        if old.links.get(name) != Some(entry) || old.policies != new.policies {
            sources.insert(entry.link.spec.source.clone());
        }
    }
    for s in &sources {
        full_pass(shared, s);
    }
}

/// Asks for a pass queueing every key of `source`; [`run_passes`] runs it.
///
/// Requests are coalesced per source: a pass reads every linked target's index (99 targets ×
/// their Services in a 100-cluster mesh), and a fleet's start asks for one per link and per
/// synced cluster. Run inline, those passes cost O(links × targets × services) on the
/// supervisor's task, long enough at fleet scale to starve its lease renewals
/// (`scripts/bench fleet`).
pub(crate) fn full_pass(shared: &Shared, source: &str) {
    let f = &shared.federation;
    let new = f
        .passes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(source.to_string());
    if new {
        f.pass_wanted.notify_one();
    }
}

/// Runs the full passes [`full_pass`] asked for, each source once per batch, until aborted.
pub(crate) async fn run_passes(shared: Arc<Shared>) {
    loop {
        shared.federation.pass_wanted.notified().await;
        let sources = std::mem::take(
            &mut *shared
                .federation
                .passes
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for s in sources {
            full_pass_in(&shared, &s, None);
            // Let the workers and watches run between sources.
            tokio::task::yield_now().await;
        }
    }
}

/// Queues every key of `source` (in one namespace, or all): each Service that could be a
/// member, each federated Service we own (so orphans are deleted) and each key with a state row.
fn full_pass_in(shared: &Shared, source: &str, only_ns: Option<&str>) {
    let snap = shared.snapshot();
    let Some(rt) = shared.runtime(source) else {
        return;
    };
    let in_scope = |ns: &str| only_ns.is_none_or(|o| o == ns);
    let links: Vec<_> = snap.links_into(source).collect();
    let mut keys: BTreeSet<FedKey> = BTreeSet::new();
    {
        let idx = rt.index();
        for ((ns, name), s) in idx.services.iter() {
            if !in_scope(ns) {
                continue;
            }
            if is_owned_federated(s) {
                if let Some(base) = base_name(s) {
                    keys.insert(FedKey {
                        namespace: ns.clone(),
                        service: base,
                    });
                }
            } else if !is_generated(s)
                && links.iter().any(|l| {
                    selects(
                        l.link.spec.federated_service_selector.as_ref(),
                        &s.service.labels,
                    )
                })
            {
                keys.insert(FedKey {
                    namespace: ns.clone(),
                    service: name.clone(),
                });
            }
        }
    }
    for l in &links {
        let Some(target) = shared.runtime(&l.link.spec.target) else {
            continue;
        };
        let idx = target.index();
        for ((ns, name), s) in idx.services.iter() {
            if in_scope(ns)
                && !is_generated(s)
                && selects(
                    l.link.spec.federated_service_selector.as_ref(),
                    &s.service.labels,
                )
            {
                keys.insert(FedKey {
                    namespace: ns.clone(),
                    service: name.clone(),
                });
            }
        }
    }
    keys.extend(
        shared
            .federation
            .keys_with_rows(source)
            .into_iter()
            .filter(|k| in_scope(&k.namespace)),
    );
    for k in keys {
        rt.federation.add(k);
    }
}

/// Keys waiting or being reconciled in every cluster's federation queue.
pub(crate) fn pending(shared: &Shared) -> usize {
    shared.runtimes().iter().map(|r| r.federation.len()).sum()
}
