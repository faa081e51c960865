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
pub(crate) mod state;

use std::{collections::BTreeSet, sync::Arc};

use crate::{
    cluster::ClusterRuntime,
    config::{LinkEntry, Snapshot},
    index::{IndexedService, Kind},
    ownership::{is_generated, is_owned_federated},
    routing::{Change, Route},
    shared::Shared,
};
use linkplane_core::{naming::FULL_NAME_ANNOTATION, selector::selects};
use state::{FedKey, SUFFIX};

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

/// Federation's route: Service and Namespace events, cluster (re)syncs and failures, link
/// passes and reloads become [`FedKey`]s on the source clusters' federation queues.
pub(crate) struct FederationRoute;

impl Route<Shared> for FederationRoute {
    fn on_change(&self, shared: &Shared, c: &Change<'_>) {
        match c.kind {
            Kind::Service => on_service(shared, c.cluster, c.namespace, c.name),
            Kind::Namespace => on_namespace(shared, c.cluster, c.name),
            Kind::Endpoints => {}
        }
    }

    fn on_synced(&self, shared: &Shared, cluster: &str) {
        on_cluster(shared, cluster);
    }

    fn on_gained(&self, shared: &Shared, cluster: &str) {
        // The federated Services it holds are labelled as mirrors: now indexed.
        full_pass(shared, cluster);
    }

    fn on_failed(&self, shared: &Shared, cluster: &str, _message: &str) {
        on_cluster(shared, cluster);
    }

    fn on_link(&self, shared: &Shared, link: &LinkEntry) {
        full_pass(shared, &link.link.spec.source);
    }

    fn on_reload(&self, shared: &Arc<Shared>, old: &Snapshot, new: &Snapshot) {
        on_reload(shared, old, new);
    }

    /// One worker per unit of write concurrency.
    fn start(&self, shared: &Arc<Shared>, rt: &Arc<ClusterRuntime>) {
        for _ in 0..shared.options.concurrency.max(1) {
            rt.push_task(tokio::spawn(reconcile::worker(rt.clone(), shared.clone())));
        }
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
fn on_service(shared: &Shared, cluster: &str, namespace: &str, name: &str) {
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
fn on_namespace(shared: &Shared, cluster: &str, namespace: &str) {
    full_pass_in(shared, cluster, Some(namespace));
}

/// `cluster` (re)synced, failed or recovered: every key of `cluster` as a source, and of every
/// source cluster linked to it.
fn on_cluster(shared: &Shared, cluster: &str) {
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
fn on_reload(shared: &Shared, old: &Snapshot, new: &Snapshot) {
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
