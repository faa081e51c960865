//! The `topologyEvents` subscription: mirror state changes, cluster health (reconciler state)
//! changes, gateway liveness changes, sync results and federation changes, fed by Postgres
//! LISTEN/NOTIFY. Every event that concerns a cluster names it (`cluster`).
//!
//! One LISTEN connection per server (started by the first subscriber) fans out to every
//! subscription through a broadcast channel, so subscribers do not each hold a connection.

use std::sync::Arc;

use async_graphql::{Context, Enum, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt as _};
use linkplane_core::status;
use linkplane_store::{
    Store,
    changes::{Change, EVENTS_CHANNEL},
};
use serde_json::Value;
use tokio::sync::{OnceCell, broadcast};

use crate::{
    ApiContext,
    auth::{Role, RoleGuard},
    domain::{
        cluster::ReconcilerState, federation::FederationState, git::SyncResult, mirror::MirrorState,
    },
    error::{ApiError, ApiResult},
};

/// Events buffered per subscriber before a slow one starts missing events (it is told via a
/// log line; events are hints, a client re-queries what it shows).
const BUFFER: usize = 1024;

/// What changed.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A mirror's state changed (or it was deleted: `deleted`).
    Mirror,
    /// A cluster's reconciler changed state (its health follows: re-query `Cluster.health`).
    Cluster,
    /// A gateway became alive or dead.
    Gateway,
    /// A Git sync finished.
    Sync,
    /// A federated service changed.
    Federated,
}

/// One event. Fields not relevant to the kind are null.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct TopologyEvent {
    /// What changed.
    pub kind: EventKind,
    /// The cluster concerned: the one holding the mirror (mirror events), the one whose
    /// reconciler changed (cluster events), the one the gateway fronts (gateway events), the
    /// federated service's source (federation events). Null for sync events.
    pub cluster: Option<String>,
    /// Link (mirror and gateway events).
    pub link: Option<String>,
    /// Namespace (mirror and federation events).
    pub namespace: Option<String>,
    /// Service name (mirror and federation events).
    pub name: Option<String>,
    /// The mirror's new state (mirror events; null when it was deleted).
    pub state: Option<MirrorState>,
    /// The federated service's new state (federation events; null when it was deleted).
    pub federation_state: Option<FederationState>,
    /// The reconciler's new state (cluster events).
    pub reconciler_state: Option<ReconcilerState>,
    /// The mirror or federated service was deleted.
    pub deleted: bool,
    /// Detail.
    pub message: Option<String>,
    /// Gateway liveness (gateway events).
    pub alive: Option<bool>,
    /// Git source (sync events).
    pub source: Option<String>,
    /// Revision (sync events).
    pub revision: Option<String>,
    /// What the sync did (sync events).
    pub result: Option<SyncResult>,
    /// When the server received the notification.
    pub received_at: DateTime<Utc>,
}

/// A payload value of the core set `C`, as the API's enum `T`; `None` when absent or unknown.
fn column<C, T>(value: Option<&str>) -> Option<T>
where
    C: std::str::FromStr,
    T: From<C>,
{
    value?.parse::<C>().ok().map(T::from)
}

/// Decodes a `linkplane_events` payload; `None` for payloads of unknown kinds.
pub(crate) fn decode(payload: &Value) -> Option<TopologyEvent> {
    let s = |k: &str| payload.get(k).and_then(Value::as_str).map(String::from);
    let kind = match payload.get("kind")?.as_str()? {
        "mirror" => EventKind::Mirror,
        "cluster" => EventKind::Cluster,
        "gateway" => EventKind::Gateway,
        "sync" => EventKind::Sync,
        "federated" => EventKind::Federated,
        _ => return None,
    };
    let state = s("state");
    let deleted = state.as_deref().map(str::parse) == Some(Ok(status::RowEvent::Deleted));
    let state = state.as_deref();
    Some(TopologyEvent {
        kind,
        cluster: s("cluster"),
        link: s("link"),
        namespace: s("namespace"),
        name: s("name"),
        state: (kind == EventKind::Mirror)
            .then(|| column::<status::MirrorState, MirrorState>(state))
            .flatten(),
        federation_state: (kind == EventKind::Federated)
            .then(|| column::<status::FederatedState, FederationState>(state))
            .flatten(),
        reconciler_state: (kind == EventKind::Cluster)
            .then(|| column::<status::ReconcilerState, ReconcilerState>(state))
            .flatten(),
        deleted,
        message: s("message"),
        alive: payload.get("alive").and_then(Value::as_bool),
        source: s("source"),
        revision: s("revision"),
        result: column::<status::SyncResult, SyncResult>(s("result").as_deref()),
        received_at: Utc::now(),
    })
}

/// The shared LISTEN connection and its fan-out.
pub struct EventHub {
    store: Store,
    tx: OnceCell<broadcast::Sender<Arc<TopologyEvent>>>,
}

impl EventHub {
    /// A hub that starts listening on its first subscriber.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            tx: OnceCell::new(),
        }
    }

    /// A receiver of every event from now on. Returns once the LISTEN is in place, so a change
    /// made after this returns is delivered.
    pub async fn subscribe(&self) -> ApiResult<broadcast::Receiver<Arc<TopologyEvent>>> {
        let tx = self
            .tx
            .get_or_try_init(|| async {
                let feed = self.store.listen(&[EVENTS_CHANNEL]).await?;
                let (tx, _) = broadcast::channel(BUFFER);
                tokio::spawn(pump(Box::pin(feed), tx.clone()));
                Ok::<_, ApiError>(tx)
            })
            .await?;
        Ok(tx.subscribe())
    }
}

async fn pump(
    mut feed: std::pin::Pin<Box<dyn Stream<Item = linkplane_store::Result<Change>> + Send>>,
    tx: broadcast::Sender<Arc<TopologyEvent>>,
) {
    while let Some(item) = feed.next().await {
        match item {
            Ok(change) => {
                if let Some(ev) = decode(&change.payload) {
                    // No subscriber right now is fine.
                    let _ = tx.send(Arc::new(ev));
                }
            }
            Err(e) => tracing::warn!(error = %e, "event feed interrupted; reconnecting"),
        }
    }
    tracing::warn!("event feed ended");
}

/// Subscriptions.
#[derive(Default)]
pub struct EventSubscription;

#[Subscription]
impl EventSubscription {
    /// Topology changes as they happen, optionally only of some kinds.
    #[graphql(guard = "RoleGuard(Role::Viewer)")]
    async fn topology_events(
        &self,
        ctx: &Context<'_>,
        kinds: Option<Vec<EventKind>>,
    ) -> Result<impl Stream<Item = TopologyEvent> + use<>, ApiError> {
        let hub = ctx
            .data_opt::<ApiContext>()
            .map(|c| c.events.clone())
            .ok_or(ApiError::Internal)?;
        let rx = hub.subscribe().await?;
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => return Some(((*ev).clone(), rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "slow subscriber missed topology events");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(stream.filter(move |ev| {
            let keep = kinds.as_ref().is_none_or(|k| k.contains(&ev.kind));
            async move { keep }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_decode_into_their_enums() {
        let ev =
            decode(&serde_json::json!({"kind": "mirror", "cluster": "west", "state": "Conflict"}))
                .unwrap();
        assert_eq!(ev.state, Some(MirrorState::Conflict));
        assert!(!ev.deleted);
        let ev = decode(&serde_json::json!({"kind": "mirror", "state": "Deleted"})).unwrap();
        assert_eq!(ev.state, None);
        assert!(ev.deleted);
        let ev =
            decode(&serde_json::json!({"kind": "cluster", "cluster": "east", "state": "Failed"}))
                .unwrap();
        assert_eq!(ev.reconciler_state, Some(ReconcilerState::Failed));
        assert_eq!(ev.cluster.as_deref(), Some("east"));
        let ev = decode(&serde_json::json!({"kind": "sync", "result": "Applied"})).unwrap();
        assert_eq!(ev.result, Some(SyncResult::Applied));
    }

    #[test]
    fn payloads_decode_by_kind() {
        let ev =
            decode(&serde_json::json!({"kind": "gateway", "link": "w-e", "alive": false})).unwrap();
        assert_eq!(ev.kind, EventKind::Gateway);
        assert_eq!(ev.alive, Some(false));
        assert_eq!(ev.link.as_deref(), Some("w-e"));
        assert!(decode(&serde_json::json!({"kind": "other"})).is_none());
        assert!(decode(&Value::Null).is_none());
    }
}
