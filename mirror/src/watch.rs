//! The cluster watch loop: connects a [`ClusterRuntime`] (retrying with backoff), runs one
//! watch per [`Indexed`] type into its index, routes every change through [`Shared`], and tracks
//! the API server's liveness (a failed watch marks the cluster `Failed`; a poller notices
//! recovery, which a watcher resuming from its last resourceVersion would not).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, watcher},
};
use linkplane_store::reconcilers::ReconcilerState;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::{
    Metrics,
    backoff::Backoff,
    cluster::{ClusterRuntime, WatchScope},
    convert::Indexed,
    index::Kind,
    shared::Shared,
    slim::{SlimEndpoints, SlimNamespace, SlimService},
    status::set_reconciler,
};

/// Connects (retrying with backoff and jitter), then starts the watches and every route's
/// workers. The tasks belong to `rt` and end with it.
pub(crate) fn start(rt: &Arc<ClusterRuntime>, shared: Arc<Shared>) {
    let rt2 = rt.clone();
    let task = tokio::spawn(async move {
        let rt = rt2;
        let name = rt.cluster.name.clone();
        set_reconciler(&shared.store, &name, ReconcilerState::Starting, "", false).await;
        let mut backoff = Backoff::default();
        let client = loop {
            match shared.options.credentials.client(&rt.cluster).await {
                Ok(c) => break c,
                Err(e) => {
                    let msg = e.chain();
                    tracing::warn!(cluster = %name, error = %msg, "cannot build client");
                    set_reconciler(&shared.store, &name, ReconcilerState::Failed, &msg, false)
                        .await;
                    shared.on_failed(&name, &msg);
                    tokio::time::sleep(backoff.next()).await;
                }
            }
        };
        let client = shared.wrap_client(client, &name);
        rt.set_client(client.clone());
        for task in [
            tokio::spawn(watch::<SlimService>(
                rt.clone(),
                shared.clone(),
                client.clone(),
                rt.scope,
            )),
            tokio::spawn(watch::<SlimEndpoints>(
                rt.clone(),
                shared.clone(),
                client.clone(),
                rt.scope,
            )),
            tokio::spawn(watch::<SlimNamespace>(
                rt.clone(),
                shared.clone(),
                client,
                WatchScope::Full,
            )),
        ] {
            rt.push_task(task);
        }
        // Gained while connecting: the mirrors' watches were asked for before there was a client.
        if rt.claim_mirrors_start() {
            start_mirrors(&rt, &shared);
        }
        shared.start_workers(&rt);
    });
    rt.push_task(task);
}

/// Adds the `Mirrors` watch set to an `Exports` runtime whose cluster this replica gained:
/// only the mirrors are listed; the exports already in the index stay and keep serving the
/// links that target the cluster. Started once, by whoever [`ClusterRuntime::claim_mirrors_start`]s.
pub(crate) fn start_mirrors(rt: &Arc<ClusterRuntime>, shared: &Arc<Shared>) {
    let Some(client) = rt.client() else {
        return;
    };
    rt.push_task(tokio::spawn(watch::<SlimService>(
        rt.clone(),
        shared.clone(),
        client.clone(),
        WatchScope::Mirrors,
    )));
    rt.push_task(tokio::spawn(watch::<SlimEndpoints>(
        rt.clone(),
        shared.clone(),
        client,
        WatchScope::Mirrors,
    )));
}

fn update_cache_metrics(rt: &ClusterRuntime, m: &Metrics) {
    let idx = rt.index();
    let l = Metrics::cluster(&rt.cluster.name);
    m.service_cache_size
        .get_or_create(&l)
        .set(idx.services.len() as i64);
    m.endpoints_cache_size
        .get_or_create(&l)
        .set(idx.endpoints.len() as i64);
    m.namespace_cache_size
        .get_or_create(&l)
        .set(idx.namespaces.len() as i64);
}

/// Watches the `K`s of the cluster that `scope` selects into its index, routing each change.
async fn watch<K: Indexed>(
    rt: Arc<ClusterRuntime>,
    shared: Arc<Shared>,
    client: Client,
    scope: WatchScope,
) {
    let name = rt.cluster.name.clone();
    let kind = K::KIND;
    let api: Api<K> = Api::all(client.clone());
    let mut config = watcher::Config::default();
    if let Some(selector) = scope.label_selector() {
        config = config.labels(&selector);
    }
    let stream = watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    // A re-list in progress: swapped into the index at once when it completes.
    let mut listing = BTreeMap::new();
    let mut slot = None;
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(watcher::Event::Init) => {
                listing.clear();
                // Before the first page is requested (the watcher lists when polled next).
                if kind != Kind::Namespace {
                    slot = shared.lists.take().await;
                }
            }
            Ok(watcher::Event::InitApply(o)) => {
                listing.insert(o.key(), o.entry());
            }
            Ok(watcher::Event::InitDone) => {
                drop(slot.take()); // frees the list slot
                rt.replace_listed::<K>(scope, std::mem::take(&mut listing));
                update_cache_metrics(&rt, &shared.metrics);
                if scope == WatchScope::Mirrors {
                    if rt.mark_mirrors_listed(kind) {
                        tracing::info!(cluster = %name, "mirrors listed: planning what is written into the cluster");
                        shared.on_gained(&name);
                    }
                    continue;
                }
                if let Some(first) = rt.mark_listed(kind) {
                    let recovered = rt.set_failing(false);
                    if first || recovered {
                        set_reconciler(&shared.store, &name, ReconcilerState::Running, "", true)
                            .await;
                    }
                    tracing::info!(cluster = %name, ?kind, "watch synced");
                    shared.on_synced(&name);
                }
            }
            Ok(watcher::Event::Apply(o)) => {
                if rt.apply(&o) {
                    let (ns, n) = o.key();
                    shared.on_change(&name, kind, &ns, &n, &o.labels());
                }
            }
            Ok(watcher::Event::Delete(o)) => {
                if rt.delete(scope, &o) {
                    let (ns, n) = o.key();
                    shared.on_change(&name, kind, &ns, &n, &o.labels());
                }
            }
            Err(e) => {
                drop(slot.take()); // frees the list slot
                // The API server's URL and the innermost cause (`Connection refused`, a TLS or
                // DNS failure): kube's own message stops at "client error (Connect)".
                let msg = format!(
                    "watching {kind:?} at {}: {}",
                    rt.cluster.spec.api_server,
                    with_causes(&e)
                );
                tracing::warn!(cluster = %name, error = %msg, "watch failed; backing off");
                if !rt.set_failing(true) {
                    // `Failed` replaces `Degraded`; write health starts afresh on recovery.
                    rt.writes.reset();
                    shared
                        .metrics
                        .writes_degraded
                        .get_or_create(&Metrics::cluster(&name))
                        .set(0);
                    set_reconciler(
                        &shared.store,
                        &name,
                        ReconcilerState::Failed,
                        &msg,
                        rt.is_synced(),
                    )
                    .await;
                    shared.on_failed(&name, &msg);
                    rt.push_task(tokio::spawn(poll_until_reachable(
                        rt.clone(),
                        shared.clone(),
                        client.clone(),
                    )));
                }
            }
        }
    }
}

/// How many Services or Endpoints lists run at once, process-wide. Lists are what a start or a
/// takeover waits for, and CPU-bound on both ends: 100 lists at once finish together, after all
/// of them, while a few at a time let the first clusters' writers start within a fraction of
/// that (a takeover at 100 clusters, BENCHMARKS.md), and hold fewer half-decoded lists in memory.
const LIST_SLOTS: usize = 4;
/// How long a list waits for a slot before it runs anyway: an API server that answers slowly
/// keeps its slot, and must never hold back the other clusters' lists for longer than this.
const LIST_WAIT: Duration = Duration::from_secs(2);

/// The list slots (see [`LIST_SLOTS`]).
pub(crate) struct ListSlots(Semaphore);

impl Default for ListSlots {
    fn default() -> Self {
        Self(Semaphore::new(LIST_SLOTS))
    }
}

impl ListSlots {
    /// A slot, or `None` once [`LIST_WAIT`] passed without one (the list then runs anyway).
    async fn take(&self) -> Option<SemaphorePermit<'_>> {
        tokio::time::timeout(LIST_WAIT, self.0.acquire())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// Cluster liveness after a failed watch. The watcher resumes from its last resourceVersion
/// without re-listing, so recovery would go unnoticed while nothing changes: poll until the API
/// answers, then mark the cluster healthy and resync its links.
async fn poll_until_reachable(rt: Arc<ClusterRuntime>, shared: Arc<Shared>, client: Client) {
    let api: Api<Namespace> = Api::all(client);
    let mut backoff = Backoff::default();
    loop {
        tokio::time::sleep(backoff.next()).await;
        if !rt.is_failing() {
            return;
        }
        let lp = kube::api::ListParams::default().limit(1);
        if api.list(&lp).await.is_ok() {
            break;
        }
    }
    if rt.set_failing(false) {
        let name = &rt.cluster.name;
        tracing::info!(cluster = %name, "API server reachable again");
        set_reconciler(
            &shared.store,
            name,
            ReconcilerState::Running,
            "",
            rt.is_synced(),
        )
        .await;
        shared.on_synced(name);
    }
}

/// `e` and each of its causes once: kube and hyper errors often repeat their source in their own
/// message, and the innermost one is the one a person can act on.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !m.is_empty() && !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // A list waits for a slot at most LIST_WAIT, then runs without one: a cluster whose lists
    // hang never holds the others back for longer.
    #[tokio::test(start_paused = true)]
    async fn a_list_runs_without_a_slot_once_the_wait_is_over() {
        let slots = ListSlots::default();
        let held: Vec<_> = futures::future::join_all((0..LIST_SLOTS).map(|_| slots.take()))
            .await
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(held.len(), LIST_SLOTS);
        let t0 = tokio::time::Instant::now();
        assert!(slots.take().await.is_none());
        assert_eq!(t0.elapsed(), LIST_WAIT);
        drop(held);
        assert!(
            slots.take().await.is_some(),
            "a freed slot is taken at once"
        );
        assert_eq!(t0.elapsed(), LIST_WAIT);
    }
}
