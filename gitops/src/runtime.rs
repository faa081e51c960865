//! The sync runtime: one worker per source (poll loop + trigger queue), and the
//! [`SyncHandle`] the HTTP layer and the API use to ask for a sync.
//!
//! Coalescing: each worker has a single pending slot. While a sync runs, any number of
//! triggers collapse into that one pending sync (the most deliberate trigger wins its
//! `sync_history.trigger`: pin > manual > webhook > startup > poll), and every
//! `sync_now` caller waiting on it gets its outcome. So a burst of webhooks costs at most one
//! running and one queued sync per source.
//!
//! The supervisor also listens on `linkplane_config`: a change to clusters, links or policies
//! runs a drift check (and self-heal) on every source; a new `git_sources` row starts a
//! worker, a removed one stops it, a changed pin queues a `Pin` sync and a changed spec a
//! `Manual` one.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use linkplane_store::{Store, changes::CONFIG_CHANNEL, git_sources};
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    Error,
    git::Cache,
    sync::{SyncOutcome, Syncer, Trigger},
};

/// What a worker does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    /// A full sync (fetch, maybe apply) with this trigger.
    Sync(Trigger),
    /// Only compare the database with the applied revision.
    Drift,
}

fn rank(job: Job) -> u8 {
    match job {
        Job::Drift => 0,
        Job::Sync(Trigger::Poll) => 1,
        Job::Sync(Trigger::SelfHeal) => 2,
        Job::Sync(Trigger::Startup) => 3,
        Job::Sync(Trigger::Webhook) => 4,
        Job::Sync(Trigger::Manual) => 5,
        Job::Sync(Trigger::Pin) => 6,
    }
}

type Waiter = oneshot::Sender<Result<SyncOutcome, Error>>;

#[derive(Default)]
struct Pending {
    job: Option<Job>,
    waiters: Vec<Waiter>,
}

struct Worker {
    pending: Mutex<Pending>,
    wake: Notify,
    stop: CancellationToken,
    /// Spec, pin and suspension last seen, to tell a pin, spec or resume from a status update.
    seen: Mutex<(String, Option<String>, bool)>,
}

impl Worker {
    fn push(&self, job: Job, waiter: Option<Waiter>) {
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.job = Some(match p.job {
                Some(old) if rank(old) >= rank(job) => old,
                _ => job,
            });
            if let Some(w) = waiter {
                p.waiters.push(w);
            }
        }
        self.wake.notify_one();
    }

    fn take(&self) -> Option<(Job, Vec<Waiter>)> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let job = p.job.take()?;
        Some((job, std::mem::take(&mut p.waiters)))
    }
}

struct Inner {
    syncer: Syncer,
    workers: Mutex<HashMap<String, Arc<Worker>>>,
    stop: CancellationToken,
    /// Total syncs run, for tests and metrics.
    runs: std::sync::atomic::AtomicU64,
    metrics: crate::metrics::Metrics,
}

/// A cheap, cloneable handle on the sync runtime.
#[derive(Clone)]
pub struct SyncHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SyncHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncHandle").finish_non_exhaustive()
    }
}

impl SyncHandle {
    /// Starts a worker for every `git_sources` row (each begins with a `Startup` sync) and the
    /// supervisor that follows `linkplane_config`. Stops when `stop` is cancelled.
    pub async fn start(store: Store, cache: Cache, stop: CancellationToken) -> Result<Self, Error> {
        let handle = Self {
            inner: Arc::new(Inner {
                syncer: Syncer::new(store.clone(), cache),
                workers: Mutex::new(HashMap::new()),
                stop,
                runs: std::sync::atomic::AtomicU64::new(0),
                metrics: crate::metrics::Metrics::default(),
            }),
        };
        // Subscribe before the first listing so no source added in between is missed.
        let feed = store.listen(&[CONFIG_CHANNEL]).await?;
        let sources = {
            let mut conn = store.acquire().await?;
            git_sources::list(&mut conn).await?
        };
        for s in sources {
            handle.ensure_worker(&s, Some(Job::Sync(Trigger::Startup)));
        }
        let sup = handle.clone();
        tokio::spawn(async move { sup.supervise(Box::pin(feed)).await });
        Ok(handle)
    }

    /// Queues a sync of `source`; returns once queued. Concurrent triggers coalesce.
    pub async fn trigger(&self, source: &str, trigger: Trigger) -> Result<(), Error> {
        let worker = self.worker(source).await?;
        worker.push(Job::Sync(trigger), None);
        Ok(())
    }

    /// Queues a sync of `source` and waits for its outcome.
    pub async fn sync_now(&self, source: &str) -> Result<SyncOutcome, Error> {
        self.sync_with(source, Trigger::Manual).await
    }

    /// Like [`Self::sync_now`] with an explicit trigger (e.g. `Pin` after setting a pin).
    pub async fn sync_with(&self, source: &str, trigger: Trigger) -> Result<SyncOutcome, Error> {
        let worker = self.worker(source).await?;
        let (tx, rx) = oneshot::channel();
        worker.push(Job::Sync(trigger), Some(tx));
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Queues a sync of every known source (a webhook whose payload names no repository).
    pub async fn trigger_all(&self, trigger: Trigger) -> Result<usize, Error> {
        let names = self.sources().await?;
        for n in &names {
            self.trigger(n, trigger).await?;
        }
        Ok(names.len())
    }

    /// Every source in the database with its spec, for webhook matching.
    pub async fn sources(&self) -> Result<Vec<String>, Error> {
        let mut conn = self.inner.syncer.store().acquire().await?;
        Ok(git_sources::list(&mut conn)
            .await?
            .into_iter()
            .map(|s| s.source.name)
            .collect())
    }

    /// The syncer, for one-off operations (plan previews).
    pub fn syncer(&self) -> &Syncer {
        &self.inner.syncer
    }

    /// Registers the runtime's Prometheus metrics on `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.inner.metrics.register(registry);
    }

    /// Number of syncs run since start (coalescing makes this smaller than triggers sent).
    pub fn runs(&self) -> u64 {
        self.inner.runs.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn worker(&self, source: &str) -> Result<Arc<Worker>, Error> {
        if let Some(w) = self.lookup(source) {
            return Ok(w);
        }
        let state = {
            let mut conn = self.inner.syncer.store().acquire().await?;
            git_sources::get(&mut conn, source).await?
        };
        match state {
            Some(s) => Ok(self.ensure_worker(&s, None)),
            None => Err(Error::UnknownSource(source.to_string())),
        }
    }

    fn lookup(&self, source: &str) -> Option<Arc<Worker>> {
        self.inner
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(source)
            .cloned()
    }

    fn ensure_worker(&self, state: &git_sources::SourceState, first: Option<Job>) -> Arc<Worker> {
        let name = state.source.name.clone();
        let mut workers = self.inner.workers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = workers.get(&name) {
            return w.clone();
        }
        let worker = Arc::new(Worker {
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
            stop: self.inner.stop.child_token(),
            seen: Mutex::new((
                spec_key(state),
                state.pinned_revision.clone(),
                state.suspended,
            )),
        });
        if let Some(job) = first {
            worker.push(job, None);
        }
        workers.insert(name.clone(), worker.clone());
        let me = self.clone();
        let w = worker.clone();
        let interval = state.source.spec.poll_interval.as_std();
        tokio::spawn(async move { me.run_worker(name, w, interval).await });
        worker
    }

    async fn run_worker(self, name: String, worker: Arc<Worker>, mut interval: Duration) {
        let mut next_poll = tokio::time::Instant::now() + interval;
        loop {
            if let Some((job, waiters)) = worker.take() {
                let result = match job {
                    Job::Sync(t) => self.inner.syncer.sync(&name, t).await,
                    Job::Drift => self.inner.syncer.on_config_change(&name).await,
                };
                self.inner
                    .runs
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Err(e) = &result {
                    tracing::warn!(source = %name, error = %e, "sync failed");
                    if matches!(e, Error::UnknownSource(_)) {
                        self.remove_worker(&name);
                        for w in waiters {
                            let _ = w.send(Err(Error::UnknownSource(name.clone())));
                        }
                        return;
                    }
                }
                if let Ok(outcome) = &result {
                    self.inner.metrics.observe(&name, outcome);
                }
                for w in waiters {
                    let _ = w.send(result.clone());
                }
                // The poll interval may have changed with the spec.
                if let Some(i) = self.current_interval(&name).await {
                    interval = i;
                }
                if matches!(job, Job::Sync(_)) {
                    next_poll = tokio::time::Instant::now() + interval;
                }
                continue;
            }
            tokio::select! {
                () = worker.stop.cancelled() => return,
                () = worker.wake.notified() => {}
                () = tokio::time::sleep_until(next_poll) => {
                    worker.push(Job::Sync(Trigger::Poll), None);
                    next_poll = tokio::time::Instant::now() + interval;
                }
            }
        }
    }

    async fn current_interval(&self, name: &str) -> Option<Duration> {
        let mut conn = self.inner.syncer.store().acquire().await.ok()?;
        let s = git_sources::get(&mut conn, name).await.ok()??;
        Some(s.source.spec.poll_interval.as_std())
    }

    fn remove_worker(&self, name: &str) {
        if let Some(w) = self
            .inner
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
        {
            w.stop.cancel();
        }
    }

    async fn supervise(
        self,
        mut feed: std::pin::Pin<
            Box<
                dyn futures::Stream<
                        Item = linkplane_store::Result<linkplane_store::changes::Change>,
                    > + Send,
            >,
        >,
    ) {
        loop {
            let change = tokio::select! {
                () = self.inner.stop.cancelled() => return,
                c = feed.next() => c,
            };
            let Some(change) = change else { return };
            let change = match change {
                Ok(c) => c,
                Err(e) => {
                    // Notifications may have been lost: re-check everything.
                    tracing::warn!(error = %e, "config feed interrupted; rechecking every source");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    self.rescan().await;
                    continue;
                }
            };
            let table = change
                .payload
                .get("table")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            let name = change
                .payload
                .get("name")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            match table {
                "git_sources" => self.on_source_change(name).await,
                "clusters" | "links" | "export_policies" => {
                    // Drift jobs coalesce in each worker's pending slot, so a burst of API
                    // writes costs one comparison per source.
                    let workers: Vec<Arc<Worker>> = self
                        .inner
                        .workers
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .values()
                        .cloned()
                        .collect();
                    for w in workers {
                        w.push(Job::Drift, None);
                    }
                }
                _ => {}
            }
        }
    }

    async fn rescan(&self) {
        let Ok(mut conn) = self.inner.syncer.store().acquire().await else {
            return;
        };
        let Ok(sources) = git_sources::list(&mut conn).await else {
            return;
        };
        let names: Vec<String> = sources.iter().map(|s| s.source.name.clone()).collect();
        for s in &sources {
            self.ensure_worker(s, Some(Job::Drift));
        }
        let stale: Vec<String> = self
            .inner
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .filter(|k| !names.contains(k))
            .cloned()
            .collect();
        for n in stale {
            self.remove_worker(&n);
        }
    }

    async fn on_source_change(&self, name: &str) {
        let state = {
            let Ok(mut conn) = self.inner.syncer.store().acquire().await else {
                return;
            };
            git_sources::get(&mut conn, name).await
        };
        match state {
            Ok(None) => self.remove_worker(name),
            Ok(Some(s)) => match self.lookup(name) {
                None => {
                    self.ensure_worker(&s, Some(Job::Sync(Trigger::Startup)));
                }
                Some(w) => {
                    let key = spec_key(&s);
                    let job = {
                        let mut seen = w.seen.lock().unwrap_or_else(|e| e.into_inner());
                        let job = if seen.1 != s.pinned_revision {
                            Some(Job::Sync(Trigger::Pin))
                        } else if seen.0 != key || (seen.2 && !s.suspended) {
                            // A new spec, or resumed: catch up now.
                            Some(Job::Sync(Trigger::Manual))
                        } else {
                            None
                        };
                        *seen = (key, s.pinned_revision.clone(), s.suspended);
                        job
                    };
                    if let Some(job) = job {
                        w.push(job, None);
                    }
                }
            },
            Err(e) => tracing::warn!(source = %name, error = %e, "reading a changed source failed"),
        }
    }
}

fn spec_key(state: &git_sources::SourceState) -> String {
    serde_json::to_string(&state.source.spec).unwrap_or_default()
}

/// Summaries for logs: `Cluster: +1 ~0 -2`.
pub fn describe_counts(
    counts: &BTreeMap<String, linkplane_store::sync_history::KindCounts>,
) -> String {
    counts
        .iter()
        .map(|(k, c)| format!("{k}: +{} ~{} -{}", c.created, c.updated, c.deleted))
        .collect::<Vec<_>>()
        .join(", ")
}
