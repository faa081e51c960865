//! LISTEN/NOTIFY change feeds, so reconcilers and subscriptions react instead of polling.
//!
//! Notifications are hints, not data: on any notification (or after a reconnect, when some may
//! have been missed) a consumer re-reads what it needs from the tables.

use futures::{Stream, StreamExt};
use sqlx::postgres::PgListener;

use crate::{Result, Store, StoreError};

/// Channel fired on every insert/update/delete of clusters, links, export policies, Git sources.
pub const CONFIG_CHANNEL: &str = "linkplane_config";
/// Channel fired on mirror state changes, gateway liveness changes and sync results.
pub const EVENTS_CHANNEL: &str = "linkplane_events";

/// One notification: which channel and its JSON payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Channel name.
    pub channel: String,
    /// Decoded payload; `Null` when the payload was not JSON.
    pub payload: serde_json::Value,
}

impl Store {
    /// Subscribes to `channels`. The stream yields `Err` on connection loss; sqlx reconnects
    /// on the next poll, and the consumer should then re-read state it may have missed.
    pub async fn listen(
        &self,
        channels: &[&str],
    ) -> Result<impl Stream<Item = Result<Change>> + Send + 'static> {
        let mut listener = PgListener::connect_with(self.pool())
            .await
            .map_err(StoreError::db("connecting a listener"))?;
        listener
            .listen_all(channels.iter().copied())
            .await
            .map_err(StoreError::db("subscribing to notifications"))?;
        Ok(listener.into_stream().map(|item| {
            item.map(|n| Change {
                channel: n.channel().to_string(),
                payload: serde_json::from_str(n.payload()).unwrap_or(serde_json::Value::Null),
            })
            .map_err(StoreError::db("receiving notifications"))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Owner, clusters, test_support::cluster};
    use std::time::Duration;

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn cluster_change_is_notified(pool: sqlx::PgPool) {
        let store = Store::from_pool(pool);
        let mut feed = Box::pin(store.listen(&[CONFIG_CHANNEL]).await.unwrap());
        let mut conn = store.acquire().await.unwrap();
        clusters::upsert(&mut conn, &cluster("east"), &Owner::Api)
            .await
            .unwrap();
        let change = tokio::time::timeout(Duration::from_secs(5), feed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(change.channel, CONFIG_CHANNEL);
        assert_eq!(
            change.payload,
            serde_json::json!({"table": "clusters", "op": "INSERT", "name": "east"})
        );
    }
    async fn next(feed: &mut (impl Stream<Item = Result<Change>> + Unpin)) -> Option<Change> {
        tokio::time::timeout(Duration::from_millis(500), feed.next())
            .await
            .ok()
            .flatten()
            .map(|c| c.unwrap())
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn a_bulk_write_is_one_notification_per_statement(pool: sqlx::PgPool) {
        let store = Store::from_pool(pool);
        let mut feed = Box::pin(store.listen(&[CONFIG_CHANNEL]).await.unwrap());
        let mut conn = store.acquire().await.unwrap();
        let git = Owner::Git("fleet".into());
        let cs: Vec<_> = ["a", "b", "c"].map(cluster).into_iter().collect();
        let refs: Vec<_> = cs.iter().collect();
        clusters::upsert_many(&mut conn, &refs, &git).await.unwrap();
        assert_eq!(
            next(&mut feed).await.unwrap().payload,
            serde_json::json!({"table": "clusters", "op": "INSERT", "count": 3})
        );
        // Identical rows are not rewritten, so nothing is notified; a delete of two is one.
        clusters::upsert_many(&mut conn, &refs, &git).await.unwrap();
        clusters::delete_many(&mut conn, &["a", "b"], &git)
            .await
            .unwrap();
        assert_eq!(
            next(&mut feed).await.unwrap().payload,
            serde_json::json!({"table": "clusters", "op": "DELETE", "count": 2})
        );
        let mut c = cluster("c");
        c.spec.cluster_domain = "c.local".into();
        clusters::upsert(&mut conn, &c, &Owner::Api).await.unwrap();
        assert_eq!(
            next(&mut feed).await.unwrap().payload,
            serde_json::json!({"table": "clusters", "op": "UPDATE", "name": "c"})
        );
        assert_eq!(next(&mut feed).await, None);
    }
}
