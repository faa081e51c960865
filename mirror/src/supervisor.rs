//! The supervisor: reads clusters, links and export policies from Postgres, follows the store's
//! LISTEN/NOTIFY feed, and starts, restarts and stops the per-cluster runtimes and the
//! per-target gateway probers to match. A slow periodic full resync is the safety net.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, RwLock},
    time::Duration,
};

use futures::StreamExt;
use linkplane_core::GatewaySpec;
use linkplane_store::{
    Store,
    changes::CONFIG_CHANNEL,
    link_cleanups::{self, LinkCleanup},
    reconcilers::ReconcilerState,
};
use tokio::{sync::oneshot, task::JoinHandle};
use tracing::Instrument;

use crate::{
    Metrics,
    apply::cleanup,
    backoff::Backoff,
    cluster::{ClusterRuntime, WatchScope},
    config::{LinkEntry, Options, Snapshot},
    error::Result,
    federation::{FederationRoute, state::Federation},
    gateway,
    mcs::McsRoute,
    mirroring::MirrorRoute,
    remote_access::RemoteAccessRoute,
    routing::Route,
    shared::Shared,
    status::{self, set_reconciler},
};

/// Entry point of the mirror: see [`Supervisor::start`].
#[derive(Debug)]
pub struct Supervisor;

/// A running supervisor. Dropping it leaves the tasks running; call [`shutdown`](Self::shutdown).
pub struct SupervisorHandle {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    stop_now: Arc<tokio::sync::Notify>,
    task: JoinHandle<()>,
    status_task: JoinHandle<()>,
}

impl std::fmt::Debug for SupervisorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorHandle").finish_non_exhaustive()
    }
}

impl Supervisor {
    /// Loads the configuration, subscribes to changes and starts every needed cluster runtime.
    /// Fails only if the change feed cannot be subscribed; cluster failures are per cluster.
    pub async fn start(
        store: Store,
        options: Options,
        metrics: Metrics,
    ) -> Result<SupervisorHandle> {
        install_crypto_provider();
        let feed = store.listen(&[CONFIG_CHANNEL]).await?;
        let (sink, status_task) = status::spawn(store.clone(), options.status_flush);
        let federation = Federation::start(&store, options.status_flush).await;
        let events = Arc::new(crate::events::Recorder::new(options.event_interval));
        let leases = Arc::new(crate::lease::LeaseTable::new(options.lease.is_some()));
        // Leases renew through connections of their own: behind a fleet's bulk state writes
        // in the shared pool they would lapse.
        let manager = options
            .lease
            .clone()
            .map(|o| crate::lease::LeaseManager::new(store.dedicated(2), o, leases.clone()));
        let shared = Arc::new(Shared {
            store,
            options,
            metrics,
            status: sink,
            config: RwLock::new(Arc::new(Snapshot::default())),
            clusters: RwLock::new(HashMap::new()),
            gateways: RwLock::new(HashMap::new()),
            federation,
            mcs: Default::default(),
            events,
            cleanups: Default::default(),
            remote_access: Default::default(),
            leases,
            // Every reconciler plugs in here, and only here.
            routes: vec![
                Arc::new(MirrorRoute) as Arc<dyn Route<Shared>>,
                Arc::new(FederationRoute),
                Arc::new(McsRoute),
                Arc::new(RemoteAccessRoute),
            ],
            lists: Default::default(),
        });
        let (stop, stop_rx) = oneshot::channel();
        let stop_now = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(run(
            shared.clone(),
            Box::pin(feed),
            (stop_rx, stop_now.clone()),
            manager,
        ));
        Ok(SupervisorHandle {
            shared,
            stop: Some(stop),
            stop_now,
            task,
            status_task,
        })
    }
}

/// Makes `ring` the process's rustls provider unless one is installed already: the Kubernetes and
/// probe clients need one, and the dependency graph enables more than one, so rustls cannot pick.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl SupervisorHandle {
    /// Stops every watch, writer and probe, then the supervisor itself.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        // Let the last mirror states reach the database.
        tokio::time::sleep(self.shared.options.status_flush * 2).await;
        self.status_task.abort();
    }

    /// Notifying this stops every writer and hands the leases over at once, without waiting for
    /// [`shutdown`](Self::shutdown) (the server calls it on SIGTERM, before draining HTTP).
    pub fn stopper(&self) -> Arc<tokio::sync::Notify> {
        self.stop_now.clone()
    }

    /// The runtime (client, index) of `cluster`, if running. Federation reads the indexes.
    pub fn runtime(&self, cluster: &str) -> Option<Arc<ClusterRuntime>> {
        self.shared.runtime(cluster)
    }

    /// Federated services waiting or being written, over every cluster.
    pub fn federation_pending(&self) -> usize {
        crate::federation::pending(&self.shared)
    }

    /// The recent probes of every target gateway this process probes (the API's
    /// `Gateway.latency` percentiles).
    pub fn probe_windows(&self) -> linkplane_core::probes::ProbeWindows {
        self.shared.metrics.probe_windows.clone()
    }

    /// The leases this replica holds (every cluster allowed when leases are off).
    pub fn leases(&self) -> Arc<crate::lease::LeaseTable> {
        self.shared.leases.clone()
    }

    /// Keys waiting or being written, over every cluster (benchmarks wait for zero).
    pub fn pending(&self) -> usize {
        self.shared.runtimes().iter().map(|r| r.queue.len()).sum()
    }
}

type Feed = std::pin::Pin<
    Box<
        dyn futures::Stream<Item = linkplane_store::Result<linkplane_store::changes::Change>>
            + Send,
    >,
>;

/// The gateway prober of each target cluster, with the gateway it probes.
#[derive(Default)]
struct Probes {
    running: HashMap<String, (JoinHandle<()>, GatewaySpec)>,
}

/// Starts, restarts and stops the per-target probers to match `snap`: one per target cluster
/// that a link points at and that has a gateway, however many links share it (Linkerd runs one
/// per link, so two links into `east` double its probe counters). A target's metrics are
/// removed only when no link uses its gateway any more. Returns the targets whose prober
/// (re)started: their links need a full pass with the fresh view.
fn sync_probes(shared: &Arc<Shared>, probes: &mut Probes, snap: &Snapshot) -> BTreeSet<String> {
    let wanted: HashMap<&str, &GatewaySpec> = snap
        .links
        .values()
        // With leases, a target is probed where the mirrors that use its gateway are written.
        .filter(|l| shared.leases.may_write(&l.link.spec.source))
        .filter_map(|l| {
            let target = l.link.spec.target.as_str();
            let gw = snap.clusters.get(target)?.spec.gateway.as_ref()?;
            Some((target, gw))
        })
        .collect();
    let stale: Vec<String> = probes
        .running
        .iter()
        .filter(|(t, (_, g))| wanted.get(t.as_str()).is_none_or(|w| *w != g))
        .map(|(t, _)| t.clone())
        .collect();
    for target in stale {
        if let Some((task, _)) = probes.running.remove(&target) {
            task.abort();
        }
        if !wanted.contains_key(target.as_str()) {
            shared.remove_gateway(&target);
            shared.metrics.remove_gateway(&target);
        }
    }
    let mut started = BTreeSet::new();
    for (target, gw) in wanted {
        if probes.running.contains_key(target) {
            continue;
        }
        shared.set_gateway(target, gateway::initial_view(Some(gw)));
        let task = tokio::spawn(gateway::run(shared.clone(), target.to_string(), gw.clone()));
        probes
            .running
            .insert(target.to_string(), (task, gw.clone()));
        started.insert(target.to_string());
    }
    // Targets without a gateway (or no longer used) have the empty view.
    for l in snap.links.values() {
        let target = &l.link.spec.target;
        if !probes.running.contains_key(target) && shared.has_gateway(target) {
            shared.remove_gateway(target);
            started.insert(target.clone());
        }
    }
    started
}

/// Clusters some link needs (each gets a lease when leases are on).
fn needed_clusters(snap: &Snapshot) -> BTreeSet<String> {
    snap.links
        .values()
        .flat_map(|l| [&l.link.spec.source, &l.link.spec.target])
        .filter(|c| snap.clusters.contains_key(*c))
        .cloned()
        .collect()
}

/// The lease rounds' thread: its own single-threaded runtime and database pool, so renewal
/// waits neither for the supervisor's work nor for CPU held by other tasks (a reload or full
/// pass over a fleet's links, thousands of TLS handshakes: at 100 clusters they outlast a lease
/// on two cores, and the replica would lose every lease it holds, again and again).
struct LeaseThread {
    stop: Arc<tokio::sync::Notify>,
    handle: std::thread::JoinHandle<()>,
}

impl LeaseThread {
    fn spawn(
        shared: Arc<Shared>,
        manager: crate::lease::LeaseManager,
        changes: tokio::sync::mpsc::UnboundedSender<crate::lease::RoundOutcome>,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let handle = std::thread::Builder::new()
            .name("linkplane-leases".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start the lease runtime: no cluster will be owned here");
                        return;
                    }
                };
                let manager = Arc::new(manager);
                rt.block_on(async {
                    tokio::select! {
                        () = lease_rounds(shared, manager.clone(), changes) => {}
                        () = stopped.notified() => {}
                    }
                    // Through this runtime's own connections: writes stop now and peers may
                    // take over on their next round.
                    manager.release_all().await;
                });
            })?;
        Ok(Self { stop, handle })
    }

    /// Stops the rounds, releases every lease and waits for both.
    async fn stop(self) {
        self.stop.notify_one();
        let handle = self.handle;
        let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    }
}

/// Lease rounds every renew interval. The table is updated by the round itself, so writes stop
/// as soon as a lease is lost; changes of ownership are sent to the supervisor loop, which
/// re-plans the runtimes.
async fn lease_rounds(
    shared: Arc<Shared>,
    manager: Arc<crate::lease::LeaseManager>,
    changes: tokio::sync::mpsc::UnboundedSender<crate::lease::RoundOutcome>,
) {
    let mut renew = tokio::time::interval(manager.options().renew_interval);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        renew.tick().await;
        let out = manager.round(&needed_clusters(&shared.snapshot())).await;
        shared
            .metrics
            .record_leases(&shared.leases.snapshot(), &out.lost, out.alive);
        if (!out.gained.is_empty() || !out.lost.is_empty()) && changes.send(out).is_err() {
            return;
        }
    }
}

/// On a change of ownership, re-plan which runtimes run here and give every link into a newly
/// owned cluster a full pass (its previous owner may have left work undone).
async fn ownership_changed(
    shared: &Arc<Shared>,
    probes: &mut Probes,
    out: crate::lease::RoundOutcome,
) {
    tracing::info!(gained = ?out.gained, lost = ?out.lost, "cluster ownership changed");
    // The configuration did not change (its changes arrive through the feed): re-plan on the
    // snapshot at hand instead of reading 10,000 links again, which at 100 clusters delayed a
    // takeover by more than a second.
    replan(shared, probes, shared.snapshot()).await;
    let snap = shared.snapshot();
    let links: Vec<&str> = snap
        .links
        .values()
        .filter(|e| out.gained.contains(&e.link.spec.source))
        .map(|e| e.link.name.as_str())
        .collect();
    shared.enqueue_links(&links);
}

async fn run(
    shared: Arc<Shared>,
    mut feed: Feed,
    (mut stop, stop_now): (oneshot::Receiver<()>, Arc<tokio::sync::Notify>),
    manager: Option<crate::lease::LeaseManager>,
) {
    let mut probes = Probes::default();
    reload(&shared, &mut probes).await;
    let mcs = tokio::spawn(crate::mcs::run(shared.clone()));
    let passes = tokio::spawn(crate::federation::run_passes(shared.clone()));
    let (changes_tx, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let leases = manager.and_then(|m| {
        LeaseThread::spawn(shared.clone(), m, changes_tx)
            .inspect_err(|e| tracing::error!(error = %e, "cannot start the lease thread: no cluster will be owned here"))
            .ok()
    });
    let mut resync = tokio::time::interval(shared.options.resync_interval);
    resync.tick().await;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = stop_now.notified() => break,
            Some(out) = changes.recv() => ownership_changed(&shared, &mut probes, out).await,
            change = feed.next() => match change {
                Some(Ok(_)) => {
                    // Coalesce a burst (a Git sync writes many rows) into one reload.
                    let deadline = tokio::time::sleep(Duration::from_millis(50));
                    tokio::pin!(deadline);
                    loop {
                        tokio::select! {
                            _ = &mut deadline => break,
                            more = feed.next() => if more.is_none() { break },
                        }
                    }
                    reload(&shared, &mut probes).await;
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "change feed interrupted; re-reading configuration");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    reload(&shared, &mut probes).await;
                }
                None => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    match shared.store.listen(&[CONFIG_CHANNEL]).await {
                        Ok(f) => feed = Box::pin(f),
                        Err(e) => tracing::warn!(error = %e, "re-subscribing to configuration changes"),
                    }
                    reload(&shared, &mut probes).await;
                }
            },
            _ = resync.tick() => {
                reload(&shared, &mut probes).await;
                let snap = shared.snapshot();
                let names: Vec<&str> = snap.links.keys().map(String::as_str).collect();
                shared.enqueue_links(&names);
            }
        }
    }
    mcs.abort();
    passes.abort();
    if let Some(l) = leases {
        l.stop().await;
    }
    for (_, (t, _)) in probes.running.drain() {
        t.abort();
    }
    shared.remote_access.stop_all();
    for rt in shared.runtimes() {
        rt.stop();
        shared.remove_runtime(&rt.cluster.name);
    }
}

async fn load(store: &Store) -> linkplane_store::Result<Snapshot> {
    let mut conn = store.acquire().await?;
    let clusters = linkplane_store::clusters::list(&mut conn).await?;
    let links = linkplane_store::links::list(&mut conn).await?;
    let policies = linkplane_store::policies::list(&mut conn).await?;
    Ok(Snapshot {
        clusters: clusters
            .into_iter()
            .map(|c| (c.value.name.clone(), c.value))
            .collect(),
        links: links
            .into_iter()
            .map(|l| {
                (
                    l.stored.value.name.clone(),
                    LinkEntry {
                        link: l.stored.value,
                        paused: l.paused,
                    },
                )
            })
            .collect(),
        policies: policies.into_iter().map(|p| p.value).collect(),
    })
}

async fn reload(shared: &Arc<Shared>, probes: &mut Probes) {
    let new = match load(&shared.store).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "reading configuration; keeping the previous one");
            return;
        }
    };
    replan(shared, probes, Arc::new(new)).await;
}

/// Makes `new` the configuration and re-plans around it: runtimes, probes, clean-ups, remote
/// access (every route's `on_reload`) and full passes over what changed. With the current
/// snapshot it re-plans for a change of ownership alone.
async fn replan(shared: &Arc<Shared>, probes: &mut Probes, new: Arc<Snapshot>) {
    let old = shared.snapshot();
    shared.metrics.link_cache_size.set(new.links.len() as i64);

    // Links gone (or re-pointed): stop their probes and forget their states. Their mirrors are
    // deleted by `start_cleanups` below, from the request the store recorded with the delete.
    for (name, entry) in &old.links {
        let spec = &entry.link.spec;
        let gone = match new.links.get(name) {
            None => true,
            Some(n) => n.link.spec.source != spec.source || n.link.spec.target != spec.target,
        };
        if !gone {
            continue;
        }
        // Its state rows went with the link row (ON DELETE CASCADE): forget them in the writer's
        // cache too, or a link re-created under the same name would find its states "already
        // written" and never record them.
        shared.status.send(crate::status::StatusMsg::Retain {
            link: name.clone(),
            keep: Vec::new(),
        });
    }

    shared.on_reload(&old, new.clone());

    // Cluster runtimes: one per cluster some link touches. With leases, only those this replica
    // owns, and the targets of links into them (their watches feed the plans; nothing is
    // written there unless owned too).
    let owned = shared.leases.owned();
    let needed: BTreeSet<&str> = new
        .links
        .values()
        .filter(|l| !shared.leases.enabled() || owned.contains(&l.link.spec.source))
        .flat_map(|l| [l.link.spec.source.as_str(), l.link.spec.target.as_str()])
        .filter(|c| new.clusters.contains_key(*c))
        .filter(|c| {
            !shared.leases.enabled()
                || owned.contains(*c)
                || new
                    .links
                    .values()
                    .any(|l| l.link.spec.target == *c && owned.contains(&l.link.spec.source))
        })
        .collect();
    let all_needed = needed_clusters(&new);
    let mut restarted = BTreeSet::new();
    for name in &needed {
        let Some(cluster) = new.clusters.get(*name) else {
            continue;
        };
        // Clusters another replica writes are watched for their exports alone.
        let writes_here = !shared.leases.enabled() || owned.contains(*name);
        let current = shared.runtime(name).filter(|rt| {
            rt.cluster.spec.api_server == cluster.spec.api_server
                && rt.cluster.spec.credentials == cluster.spec.credentials
        });
        if let Some(rt) = &current {
            if rt.watches_mirrors() == writes_here {
                continue;
            }
            if writes_here {
                // Gained: its exports stay indexed (links into it keep going), and a watch of
                // the mirrors alone is added; once it lists, the links writing into the
                // cluster get their full pass (`on_gained`).
                tracing::info!(cluster = %name, "ownership gained: watching the mirrors in the cluster too");
                if rt.want_mirrors() {
                    crate::watch::start_mirrors(rt, shared);
                }
                continue;
            }
        }
        let scope = if writes_here {
            WatchScope::Full
        } else {
            WatchScope::Exports
        };
        let rt = ClusterRuntime::new(cluster.clone(), scope);
        if let Some(old_rt) = shared.insert_runtime(rt.clone()) {
            if current.is_some() {
                // Lost: re-listed for its exports alone (few objects); on sync the links into
                // it from clusters this replica writes get a full pass (`on_synced`).
                tracing::info!(cluster = %name, "ownership lost: watching the cluster's exports only");
            } else {
                tracing::info!(cluster = %name, "cluster connection changed: restarting its reconciler");
            }
            old_rt.stop();
        } else {
            tracing::info!(cluster = %name, "starting reconciler");
        }
        crate::watch::start(&rt, shared.clone());
        restarted.insert(name.to_string());
    }
    for rt in shared.runtimes() {
        if !needed.contains(rt.cluster.name.as_str()) {
            rt.stop();
            shared.remove_runtime(&rt.cluster.name);
            if all_needed.contains(&rt.cluster.name) {
                tracing::info!(cluster = %rt.cluster.name, "another replica owns this cluster: stopping its reconciler here");
                continue;
            }
            tracing::info!(cluster = %rt.cluster.name, "no link uses this cluster: stopping its reconciler");
            set_reconciler(
                &shared.store,
                &rt.cluster.name,
                ReconcilerState::Stopped,
                "no link uses this cluster",
                false,
            )
            .await;
        }
    }

    // Mirrors of removed links (recorded durably by the store, also while we were down).
    start_cleanups(shared).await;

    // Gateway probers: one per target cluster some link points at, shared by all of them.
    let reprobed = sync_probes(shared, probes, &new);

    // A full pass over each link whose inputs changed.
    let policies_changed = old.policies != new.policies;
    let mut passes = Vec::new();
    for (name, entry) in &new.links {
        let spec = &entry.link.spec;
        let probe_current = !reprobed.contains(&spec.target);
        let clusters_changed = [&spec.source, &spec.target]
            .iter()
            .any(|c| old.clusters.get(*c) != new.clusters.get(*c) && !restarted.contains(*c));
        if old.links.get(name) != Some(entry)
            || policies_changed
            || clusters_changed
            || !probe_current
        {
            passes.push(name.as_str());
        }
    }
    shared.enqueue_links(&passes);
}

/// Starts a task for each pending clean-up of a removed link that is not running yet. A
/// request whose cluster pair has a link again is obsolete (the new link owns those mirrors and
/// its full pass collects any extra): it is completed without deleting anything.
async fn start_cleanups(shared: &Arc<Shared>) {
    let pending = async {
        let mut conn = shared.store.acquire().await?;
        link_cleanups::list(&mut conn).await
    }
    .await;
    let pending = match pending {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "reading pending link clean-ups; retried on the next change");
            return;
        }
    };
    for req in pending {
        if !shared.leases.may_write(&req.source_cluster) {
            continue; // the source's owner cleans up
        }
        let pair = (req.source_cluster.clone(), req.target_cluster.clone());
        if !shared.begin_cleanup(&pair) {
            continue;
        }
        let shared = shared.clone();
        let span = tracing::info_span!(
            "link_cleanup",
            link = %req.link,
            source = %req.source_cluster,
            target = %req.target_cluster
        );
        tokio::spawn(
            async move {
                run_cleanup(&shared, &req).await;
                shared.end_cleanup(&pair);
            }
            .instrument(span),
        );
    }
}

/// Deletes the mirrors of one removed link, retrying with backoff (while the source cluster is
/// unreachable) until it succeeds or the request becomes moot: the pair is linked again, or the
/// source cluster left the configuration as well.
async fn run_cleanup(shared: &Arc<Shared>, req: &LinkCleanup) {
    let mut backoff = Backoff::default();
    loop {
        if !shared.leases.may_write(&req.source_cluster) {
            tracing::info!("lease of the source cluster lost: its new owner cleans up");
            return;
        }
        // Read from the table, not the snapshot: a reload in progress can hold links loaded
        // just before the delete that recorded this request, and dropping the request on that
        // view would leave the mirrors behind for good (`sync --wait` saw no clean-up pending).
        let relinked = async {
            let mut conn = shared.store.acquire().await?;
            link_cleanups::pair_linked_again(&mut conn, req).await
        }
        .await;
        let relinked = match relinked {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "checking whether the pair is linked again; retrying");
                tokio::time::sleep(backoff.next()).await;
                continue;
            }
        };
        let snap = shared.snapshot();
        if relinked {
            tracing::info!("a link owns the pair again: nothing to clean up");
            complete_cleanup(shared, req).await;
            return;
        }
        let Some(cluster) = snap.clusters.get(&req.source_cluster) else {
            // Removed together with its links: linkplane no longer manages that cluster at all,
            // so there is no client to delete with and nothing that would ever provide one.
            tracing::info!("source cluster removed too: its mirrors are left as they are");
            complete_cleanup(shared, req).await;
            return;
        };
        // The running reconciler's client if the cluster has one, else a client for this alone.
        let client = match shared.runtime(&req.source_cluster).and_then(|r| r.client()) {
            Some(c) => Ok(c),
            None => shared
                .options
                .credentials
                .client(cluster)
                .await
                .map(|c| shared.wrap_client(c, &req.source_cluster))
                .map_err(|e| e.chain()),
        };
        let result = match client {
            Ok(client) => cleanup(
                client,
                &req.source_cluster,
                &req.target_cluster,
                req.adopt_linkerd_mirrors,
                &shared.metrics,
            )
            .await
            .map_err(|e| e.chain()),
            Err(e) => Err(e),
        };
        match result {
            Ok(n) => {
                tracing::info!(deleted = n, "link removed: mirrors cleaned up");
                // Then the pair's remote-discovery credentials (the Secret, the target-side
                // account); retried (mirrors again, idempotently) while they cannot be.
                if let Err(e) = crate::remote_access::delete_pair(
                    shared,
                    &req.source_cluster,
                    &req.target_cluster,
                )
                .await
                {
                    tracing::warn!(error = %e.chain(), "deleting remote-discovery credentials of a removed link; retrying");
                    tokio::time::sleep(backoff.next()).await;
                    continue;
                }
                complete_cleanup(shared, req).await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cleaning up mirrors of a removed link; retrying");
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
}

async fn complete_cleanup(shared: &Shared, req: &LinkCleanup) {
    let done = async {
        let mut conn = shared.store.acquire().await?;
        link_cleanups::complete(&mut conn, req).await
    }
    .await;
    if let Err(e) = done {
        // The row stays: the next reload runs the (idempotent) clean-up again.
        tracing::warn!(error = %e, "recording a finished link clean-up");
    }
}
