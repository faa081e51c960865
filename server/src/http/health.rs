//! `/healthz` (the process is up) and `/readyz` (the database answers and every linked cluster's
//! watches listed once or were marked failed).
//!
//! Readiness is answered from a snapshot a background task refreshes every second, never by
//! querying on the request: during a database outage a probe answered only after the pool's
//! acquire timeout (over 2 s), longer than kubelet's default probe timeout of 1 s. The same
//! snapshot tells webhooks to answer 503 at once while the database is away.

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Json, extract::State, http::StatusCode};
use linkplane_store::Store;
use serde_json::json;

use super::AppState;

/// How often readiness is re-checked.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// A check slower than this counts as a failure (it must fit in the refresh period).
const CHECK_TIMEOUT: Duration = Duration::from_millis(800);
/// A snapshot older than this is not trusted: the checker itself is stuck.
const STALE_AFTER: Duration = Duration::from_secs(5);

/// The last readiness check, shared by `/readyz` and the webhooks.
#[derive(Debug)]
pub struct Health {
    /// When the last check finished and what it found; `None` before the first one.
    last: RwLock<Option<(Instant, StatusCode, serde_json::Value)>>,
    database_up: AtomicBool,
    /// A push webhook was refused while the database was away: sync every source when it
    /// returns, so the push is not lost.
    missed_push: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            last: RwLock::new(None),
            database_up: AtomicBool::new(true),
            missed_push: AtomicBool::new(false),
        }
    }
}

impl Health {
    /// Whether the database answered the last check.
    pub fn database_up(&self) -> bool {
        self.database_up.load(Ordering::Relaxed)
    }

    /// Remembers a push that could not be handled; the next healthy check syncs every source.
    pub fn remember_missed_push(&self) {
        self.missed_push.store(true, Ordering::Relaxed);
    }

    /// Whether a refused push still waits for the database to return.
    pub fn missed_push_pending(&self) -> bool {
        self.missed_push.load(Ordering::Relaxed)
    }

    /// The last check, or `None` before the first one finished.
    fn snapshot(&self) -> Option<(StatusCode, serde_json::Value)> {
        let last = self.last.read().unwrap_or_else(|e| e.into_inner());
        let (at, status, body) = last.as_ref()?;
        if at.elapsed() > STALE_AFTER {
            return Some((
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "unavailable", "reason": "readiness check is not running"}),
            ));
        }
        Some((*status, body.clone()))
    }

    fn record(&self, status: StatusCode, body: serde_json::Value) {
        *self.last.write().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), status, body));
    }

    /// Starts the task that refreshes the snapshot until the process ends.
    pub fn spawn_checker(
        self: &Arc<Self>,
        store: Store,
        sync: Option<linkplane_gitops::SyncHandle>,
    ) -> tokio::task::JoinHandle<()> {
        let health = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let (up, status, body) = timed_check(&store).await;
                let was_up = health.database_up.swap(up, Ordering::Relaxed);
                if was_up != up {
                    tracing::warn!(database_up = up, "readiness: database availability changed");
                }
                health.record(status, body);
                if up
                    && health.missed_push.swap(false, Ordering::Relaxed)
                    && let Some(sync) = &sync
                {
                    match sync.trigger_all(linkplane_gitops::Trigger::Webhook).await {
                        Ok(n) => tracing::info!(
                            sources = n,
                            "database back: syncing the sources of pushes refused meanwhile"
                        ),
                        Err(e) => {
                            tracing::warn!(error = %e, "re-syncing after missed pushes");
                            health.remember_missed_push();
                        }
                    }
                }
            }
        })
    }
}

/// One readiness check, bounded by [`CHECK_TIMEOUT`].
async fn timed_check(store: &Store) -> (bool, StatusCode, serde_json::Value) {
    match tokio::time::timeout(CHECK_TIMEOUT, check(store)).await {
        Ok(r) => r,
        Err(_) => (
            false,
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "reason": "database check timed out"}),
        ),
    }
}

/// One readiness check: `(database up, status, body)`.
async fn check(store: &Store) -> (bool, StatusCode, serde_json::Value) {
    if let Err(e) = store.ping().await {
        tracing::debug!(error = %e, "readiness: database unreachable");
        return (
            false,
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "reason": "database unreachable"}),
        );
    }
    let pending = match store.acquire().await {
        Ok(mut conn) => linkplane_store::reconcilers::pending(&mut conn).await,
        Err(e) => Err(e),
    };
    let leases = leases_detail(store).await;
    match pending {
        Ok(p) if p.is_empty() => (
            true,
            StatusCode::OK,
            json!({"status": "ready", "leases": leases}),
        ),
        Ok(p) => (
            true,
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "starting", "reason": "cluster watches not listed yet", "clusters": p, "leases": leases}),
        ),
        Err(e) => {
            tracing::debug!(error = %e, "readiness: cannot read reconciler status");
            (
                !e.is_unavailable(),
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "unavailable", "reason": "database error"}),
            )
        }
    }
}

/// Who runs which cluster (detail only: readiness is about serving the API, which every
/// replica does whether or not it owns clusters): the live replicas with their cluster counts,
/// and the clusters whose lease is currently free or expired (a takeover in progress).
async fn leases_detail(store: &Store) -> serde_json::Value {
    let read = async {
        let mut conn = store.acquire().await?;
        let replicas = linkplane_store::leases::list_replicas(&mut conn).await?;
        let leases = linkplane_store::leases::list(&mut conn).await?;
        Ok::<_, linkplane_store::StoreError>((replicas, leases))
    };
    match read.await {
        Ok((replicas, leases)) => {
            let owned = |id: &str| {
                leases
                    .iter()
                    .filter(|l| l.valid && l.holder.as_deref() == Some(id))
                    .count()
            };
            json!({
                "replicas": replicas.iter().filter(|r| r.alive).map(|r| json!({
                    "id": r.id, "name": r.name, "clusters": owned(&r.id),
                })).collect::<Vec<_>>(),
                "unowned": leases.iter().filter(|l| !l.valid).map(|l| &l.cluster).collect::<Vec<_>>(),
            })
        }
        Err(e) => {
            tracing::debug!(error = %e, "readiness: cannot read leases");
            serde_json::Value::Null
        }
    }
}

/// Liveness: never touches dependencies, so a slow database does not get the pod restarted.
pub async fn healthz() -> (StatusCode, Json<serde_json::Value>) {
    (StatusCode::OK, Json(json!({"status": "ok"})))
}

/// Readiness: 503 with the reason while not ready; answered from the last check.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    // Before the first background check finished (the first probe after start), check inline.
    let (status, body) = match state.health.snapshot() {
        Some(last) => last,
        None => {
            let (_, status, body) = timed_check(&state.store).await;
            (status, body)
        }
    };
    (status, Json(body))
}
