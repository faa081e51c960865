//! One cluster as the reconcilers hold it: a value with a lifetime ([`ClusterRuntime`]), made
//! when a link needs the cluster and stopped (its tasks aborted) when none does. It owns the
//! client, the index its watches fill, the write queues of what is written *into* it, and the
//! health of its watches and writes. The watch loop that fills it is `watch`; what is queued
//! is decided by the routes (`routing`).

use std::{
    fmt::Debug,
    sync::{
        Mutex, OnceLock, RwLock,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
    time::{Duration, Instant},
};

use kube::Client;
use linkplane_core::Cluster;
use tokio::task::JoinHandle;

use crate::{
    config::MirrorKey,
    convert::Indexed,
    federation::state::FedKey,
    index::{ClusterIndex, Kind},
    queue::WorkQueue,
};

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}
fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn kind_bit(kind: Kind) -> u8 {
    match kind {
        Kind::Service => 1,
        Kind::Endpoints => 2,
        Kind::Namespace => 4,
    }
}

const SYNCED_ALL: u8 = 0b111;
/// Services and Endpoints: what a `Mirrors` watch set lists.
const MIRRORS_ALL: u8 = 0b011;

/// What one Services or Endpoints watch of a runtime sees (its label selector). With leases, a
/// replica also runs the runtimes of clusters it does not own, because they are targets of links
/// into clusters it does own; there it needs their exported Services and Endpoints, never the
/// mirrors written into them (their owner plans those). In a full mesh of N clusters a cluster
/// holds N−1 mirrors for each Service it exports, so watching them in every replica multiplied
/// the index by the replica count and kept 2 replicas from converging at 100 clusters
/// (BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchScope {
    /// Every Service and Endpoints object: a cluster this replica writes (or leases are off).
    Full,
    /// Objects without the `mirror.linkerd.io/mirrored-service` label only (label selector
    /// `!mirror.linkerd.io/mirrored-service`): a cluster another replica writes.
    Exports,
    /// The objects an `Exports` watch leaves out (selector `mirror.linkerd.io/mirrored-service`):
    /// added beside it when this replica gains the cluster, so a takeover lists only the
    /// mirrors it now writes and the cluster stays a synced target throughout.
    Mirrors,
}

impl WatchScope {
    /// The label selector of the Services and Endpoints watches (`None`: everything).
    pub(crate) fn label_selector(self) -> Option<String> {
        let label = linkplane_core::naming::MIRRORED_SERVICE_LABEL;
        match self {
            WatchScope::Full => None,
            WatchScope::Exports => Some(format!("!{label}")),
            WatchScope::Mirrors => Some(label.to_string()),
        }
    }

    /// Whether a watch of this scope lists an object (`is_mirror`: it carries the label).
    pub(crate) fn lists(self, is_mirror: bool) -> bool {
        match self {
            WatchScope::Full => true,
            WatchScope::Exports => !is_mirror,
            WatchScope::Mirrors => is_mirror,
        }
    }
}

/// One cluster's client, watch set, index and write queues: a value with a lifetime, started
/// when a link needs the cluster and stopped (its tasks aborted) when none does.
pub struct ClusterRuntime {
    /// The cluster as configured when this runtime started.
    pub cluster: Cluster,
    /// What its first watch set sees: `Full` or `Exports`. Gaining the cluster adds a
    /// `Mirrors` set to an `Exports` runtime ([`want_mirrors`](Self::want_mirrors)); losing it
    /// replaces the runtime with an `Exports` one.
    pub scope: WatchScope,
    client: OnceLock<Client>,
    index: RwLock<ClusterIndex>,
    synced: AtomicU8,
    ever_synced: AtomicBool,
    /// Set once a `Mirrors` watch set was asked for; `mirrors_started` once it was spawned.
    mirrors_wanted: AtomicBool,
    mirrors_started: AtomicBool,
    /// Kinds (`kind_bit`) the `Mirrors` watch set has listed.
    mirrors_listed: AtomicU8,
    failing: AtomicBool,
    /// Work queue of mirrors to write into this cluster (when it is a source).
    pub(crate) queue: WorkQueue<MirrorKey>,
    /// Work queue of `<svc>-federated` Services to write into this cluster.
    pub(crate) federation: WorkQueue<FedKey>,
    /// Whether writes into this cluster keep failing (see [`WriteHealth`]).
    pub(crate) writes: WriteHealth,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Debug for ClusterRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterRuntime")
            .field("cluster", &self.cluster.name)
            .finish()
    }
}

impl ClusterRuntime {
    pub(crate) fn new(cluster: Cluster, scope: WatchScope) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            cluster,
            scope,
            client: OnceLock::new(),
            index: RwLock::new(ClusterIndex::default()),
            synced: AtomicU8::new(0),
            ever_synced: AtomicBool::new(false),
            mirrors_wanted: AtomicBool::new(false),
            mirrors_started: AtomicBool::new(false),
            mirrors_listed: AtomicU8::new(0),
            failing: AtomicBool::new(false),
            queue: WorkQueue::new(),
            federation: WorkQueue::new(),
            writes: WriteHealth::default(),
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Read access to the index.
    pub fn index(&self) -> std::sync::RwLockReadGuard<'_, ClusterIndex> {
        read(&self.index)
    }

    /// The client, once credentials resolved.
    pub fn client(&self) -> Option<Client> {
        self.client.get().cloned()
    }

    /// Sets the client (once, when credentials resolved).
    pub(crate) fn set_client(&self, client: Client) {
        let _ = self.client.set(client);
    }

    /// True once every watch listed at least once.
    pub fn is_synced(&self) -> bool {
        self.ever_synced.load(Ordering::Acquire)
    }

    /// True once the objects written into this cluster (mirrors, federated Services) are in
    /// the index: a `Full` runtime that synced, or an `Exports` one whose `Mirrors` watches
    /// listed. Until then nothing is planned *into* it (an index without its mirrors would
    /// create what exists and never collect an orphan); as a target it only needs
    /// [`is_synced`](Self::is_synced).
    pub fn knows_mirrors(&self) -> bool {
        match self.scope {
            WatchScope::Full => self.is_synced(),
            _ => self.is_synced() && self.mirrors_listed.load(Ordering::Acquire) == MIRRORS_ALL,
        }
    }

    /// True when this runtime watches (or is about to watch) the mirrors in its cluster: what a
    /// runtime of a cluster this replica owns must do.
    pub(crate) fn watches_mirrors(&self) -> bool {
        self.scope == WatchScope::Full || self.mirrors_wanted.load(Ordering::Acquire)
    }

    /// Asks for the `Mirrors` watch set of an `Exports` runtime (this replica gained the
    /// cluster). Returns true when it should be started now: the client is there and no one
    /// started it yet. [`watch::start`](crate::watch) starts it after connecting otherwise.
    pub(crate) fn want_mirrors(&self) -> bool {
        if self.scope != WatchScope::Exports {
            return false;
        }
        self.mirrors_wanted.store(true, Ordering::Release);
        self.client.get().is_some() && self.claim_mirrors_start()
    }

    /// True exactly once, for whoever starts the `Mirrors` watch set.
    pub(crate) fn claim_mirrors_start(&self) -> bool {
        self.mirrors_wanted.load(Ordering::Acquire)
            && !self.mirrors_started.swap(true, Ordering::AcqRel)
    }

    /// Records that the `Mirrors` watch of `kind` listed; true once both have (on every
    /// later re-list too, as [`mark_listed`](Self::mark_listed)).
    pub(crate) fn mark_mirrors_listed(&self, kind: Kind) -> bool {
        self.mirrors_listed
            .fetch_or(kind_bit(kind), Ordering::AcqRel)
            | kind_bit(kind)
            == MIRRORS_ALL
    }

    /// True while its API server cannot be watched (mirrors of its links are held as they are).
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// Marks the API server failing (`true`) or answering again; returns the previous value.
    pub(crate) fn set_failing(&self, failing: bool) -> bool {
        self.failing.swap(failing, Ordering::AcqRel)
    }

    /// Records that the watch of `kind` listed. Returns `Some(first)` once every kind has
    /// listed (`first`: for the first time), `None` while some kind has not.
    pub(crate) fn mark_listed(&self, kind: Kind) -> Option<bool> {
        let all = self.synced.fetch_or(kind_bit(kind), Ordering::AcqRel) | kind_bit(kind);
        (all == SYNCED_ALL).then(|| !self.ever_synced.swap(true, Ordering::AcqRel))
    }

    pub(crate) fn push_task(&self, t: JoinHandle<()>) {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(t);
    }

    /// Aborts every task of this runtime.
    pub(crate) fn stop(&self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }

    /// A watch event: applies `obj` to the index; true when the index changed.
    pub(crate) fn apply<K: Indexed>(&self, obj: &K) -> bool {
        K::slot_mut(&mut write(&self.index)).apply(obj.key(), obj.entry())
    }

    /// A watch event of a watch of `scope`: removes `obj` from the index if that watch lists
    /// the indexed copy (see [`KindIndex::delete_if`](crate::index::KindIndex::delete_if));
    /// true when removed.
    pub(crate) fn delete<K: Indexed>(&self, scope: WatchScope, obj: &K) -> bool {
        K::slot_mut(&mut write(&self.index)).delete_if(&obj.key(), |e| scope.lists(K::is_mirror(e)))
    }

    /// A re-list by a watch of `scope` completed: `listed` replaces what that watch lists.
    pub(crate) fn replace_listed<K: Indexed>(
        &self,
        scope: WatchScope,
        listed: std::collections::BTreeMap<crate::index::ObjectKey, K::Entry>,
    ) {
        // What changed is not routed key by key: the re-list's sync gives every link touching
        // the cluster a full pass (`on_synced`, `on_gained`).
        K::slot_mut(&mut write(&self.index))
            .replace_listed(listed, |e| scope.lists(K::is_mirror(e)));
    }

    /// Records an object this process just wrote, as the API server returned it. Its watch
    /// event then finds the index unchanged and triggers no re-plan: our own writes are not
    /// echoed back into the queue (each would cost a full no-op reconcile), and the next
    /// reconcile of the key already sees the new resourceVersion instead of a stale one.
    pub(crate) fn remember<K: Indexed>(&self, obj: &K) -> K::Entry {
        let entry = obj.entry();
        K::slot_mut(&mut write(&self.index)).apply(obj.key(), entry.clone());
        entry
    }

    /// Forgets an object this process just deleted, so its delete event is not re-planned.
    pub(crate) fn forget<K: Indexed>(&self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        K::slot_mut(&mut write(&self.index)).delete(&key);
    }
}

/// Whether a cluster's writes keep failing for reasons outside the objects (5xx, 429,
/// timeouts, refused connections: [`Error::is_transient`](crate::Error::is_transient)) while its
/// watches run: the meaning of `ReconcilerState::Degraded`. A streak starts at the first such
/// failure and ends at the first reconcile that succeeds; stale views (409, 404) and refusals
/// (4xx) neither start nor end it, as they say nothing about the API server's health.
#[derive(Debug, Default)]
pub(crate) struct WriteHealth {
    state: Mutex<Streak>,
}

#[derive(Debug, Default)]
struct Streak {
    since: Option<Instant>,
    failures: u64,
    last_error: String,
    degraded: bool,
}

/// A change of a cluster's write health, for its reconciler state.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HealthChange {
    /// Writes have failed transiently for the threshold: `Degraded`, with a message.
    Degraded(String),
    /// A reconcile succeeded after a degraded streak: `Running` again.
    Recovered,
}

impl WriteHealth {
    /// A reconcile succeeded.
    pub(crate) fn success(&self) -> Option<HealthChange> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let was = s.degraded;
        *s = Streak::default();
        was.then_some(HealthChange::Recovered)
    }

    /// A reconcile failed transiently with `error`; degraded once the streak is older than
    /// `after`.
    pub(crate) fn transient_failure(
        &self,
        error: &str,
        after: Duration,
        now: Instant,
    ) -> Option<HealthChange> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let since = *s.since.get_or_insert(now);
        s.failures += 1;
        s.last_error = error.to_string();
        if s.degraded || now.duration_since(since) < after {
            return None;
        }
        s.degraded = true;
        Some(HealthChange::Degraded(format!(
            "writes failing for {}s ({} failed reconciles, none succeeded): {}",
            now.duration_since(since).as_secs(),
            s.failures,
            s.last_error
        )))
    }

    /// The watches failed: `Failed` replaces `Degraded`, and a new streak starts after recovery.
    pub(crate) fn reset(&self) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Streak::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_failing_past_the_threshold_degrade_until_one_succeeds() {
        let h = WriteHealth::default();
        let t0 = Instant::now();
        let after = Duration::from_secs(30);
        assert_eq!(h.transient_failure("500", after, t0), None);
        assert_eq!(
            h.transient_failure("500", after, t0 + Duration::from_secs(29)),
            None
        );
        let Some(HealthChange::Degraded(msg)) =
            h.transient_failure("503 busy", after, t0 + Duration::from_secs(31))
        else {
            panic!("a 31 s streak degrades");
        };
        assert!(
            msg.contains("3 failed reconciles") && msg.ends_with("503 busy"),
            "{msg}"
        );
        // Reported once per streak.
        assert_eq!(
            h.transient_failure("500", after, t0 + Duration::from_secs(40)),
            None
        );
        assert_eq!(h.success(), Some(HealthChange::Recovered));
        assert_eq!(h.success(), None);
        // A success resets the streak: the clock starts again.
        assert_eq!(
            h.transient_failure("500", after, t0 + Duration::from_secs(100)),
            None
        );
    }

    #[test]
    fn a_success_within_the_threshold_keeps_the_cluster_running() {
        let h = WriteHealth::default();
        let t0 = Instant::now();
        let after = Duration::from_secs(30);
        h.transient_failure("500", after, t0);
        assert_eq!(h.success(), None);
        assert_eq!(
            h.transient_failure("500", after, t0 + Duration::from_secs(31)),
            None,
            "a new streak"
        );
    }
}
