//! The generic worker loop both work queues run (mirrors in `apply`, federated Services in
//! `federation::reconcile`): take a key, reconcile it in isolation, retry failures with the
//! key's backoff (kept inside the queue, by [`Error::retry_class`]), and keep the cluster's
//! write health, which makes its reconciler `Degraded` while writes keep failing transiently.

use std::{future::Future, hash::Hash, panic::AssertUnwindSafe};

use futures::FutureExt as _;
use linkplane_store::reconcilers::ReconcilerState;

use crate::{
    Metrics,
    backoff::Retry,
    cluster::{ClusterRuntime, HealthChange},
    error::Error,
    queue::WorkQueue,
    shared::Shared,
    status::set_reconciler,
};

/// Runs `reconcile` on this queue's keys forever: one worker of a cluster's pool, for mirrors
/// and federated services alike. Failures are counted by kind and retried with the key's
/// backoff; a panicking reconcile is contained (logged, counted as `panic`, retried like a
/// transient failure) so one bad key never takes a worker, or the process, down.
pub(crate) async fn run_worker<K, F, Fut>(
    queue: &WorkQueue<K>,
    rt: &ClusterRuntime,
    shared: &Shared,
    what: &'static str,
    mut reconcile: F,
) where
    K: Clone + Eq + Hash + Send + std::fmt::Debug + 'static,
    F: FnMut(K) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let cluster = rt.cluster.name.as_str();
    let metrics = &shared.metrics;
    loop {
        let key = queue.next().await;
        // Boxed: a reconcile's state machine (kube requests, decoding, store writes) is ~15 KB,
        // and inline it would be part of every idle worker's task for good: 64 workers per
        // cluster held ~1 MB per cluster at rest (heap profile, issue 19). Boxed, it lives only
        // while a key is being reconciled.
        let res = AssertUnwindSafe(Box::pin(reconcile(key.clone())))
            .catch_unwind()
            .await;
        queue.done(&key);
        let (kind, class, message) = match res {
            Ok(Ok(())) => {
                queue.forget(&key);
                let change = rt.writes.success();
                // Boxed for the same reason: a store write's state machine.
                Box::pin(record_health(rt, shared, change)).await;
                continue;
            }
            Ok(Err(e)) => {
                if e.is_transient() {
                    let change = rt.writes.transient_failure(
                        &e.chain(),
                        shared.options.degraded_after,
                        std::time::Instant::now(),
                    );
                    Box::pin(record_health(rt, shared, change)).await;
                }
                (e.kind(), e.retry_class(), e.chain())
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                tracing::error!(cluster, ?key, panic = %message, what, "reconcile panicked");
                ("panic", Retry::Transient, message)
            }
        };
        metrics
            .mirror_errors
            .get_or_create(&Metrics::cluster_kind(cluster, kind))
            .inc();
        let delay = queue.retry(key, class);
        tracing::debug!(cluster, error = %message, ?delay, ?class, what, "reconcile failed; retrying");
    }
}

/// Records a change of `rt`'s write health as its reconciler state, unless its watches failed
/// meanwhile (`Failed` says more than `Degraded`, and its recovery sets `Running` itself).
async fn record_health(rt: &ClusterRuntime, shared: &Shared, change: Option<HealthChange>) {
    let Some(change) = change else {
        return;
    };
    if rt.is_failing() {
        return;
    }
    let name = &rt.cluster.name;
    let gauge = shared
        .metrics
        .writes_degraded
        .get_or_create(&Metrics::cluster(name))
        .clone();
    match change {
        HealthChange::Degraded(message) => {
            tracing::warn!(cluster = %name, error = %message, "writes keep failing: degraded");
            gauge.set(1);
            set_reconciler(
                &shared.store,
                name,
                ReconcilerState::Degraded,
                &message,
                rt.is_synced(),
            )
            .await;
        }
        HealthChange::Recovered => {
            tracing::info!(cluster = %name, "writes succeed again");
            gauge.set(0);
            set_reconciler(
                &shared.store,
                name,
                ReconcilerState::Running,
                "",
                rt.is_synced(),
            )
            .await;
        }
    }
}
