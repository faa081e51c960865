//! The `reconciler_status` table: each cluster's reconciler health.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::{Result, StoreError, error::vocabulary};

pub use linkplane_core::status::ReconcilerState;

/// A stored reconciler status row.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconcilerStatus {
    /// Cluster name.
    pub cluster: String,
    /// Lifecycle state.
    pub state: ReconcilerState,
    /// Detail, e.g. the connection error.
    pub message: String,
    /// True once every watch listed once.
    pub watches_synced: bool,
    /// Last time the watches (re)listed.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// Last write.
    pub updated_at: DateTime<Utc>,
}

/// Records a reconciler's state.
pub async fn set(
    conn: &mut PgConnection,
    cluster: &str,
    state: ReconcilerState,
    message: &str,
    watches_synced: bool,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO reconciler_status (cluster, state, message, watches_synced, last_sync_at)
         VALUES ($1, $2, $3, $4, CASE WHEN $4 THEN now() END)
         ON CONFLICT (cluster) DO UPDATE SET state = EXCLUDED.state, message = EXCLUDED.message,
             watches_synced = EXCLUDED.watches_synced,
             last_sync_at = COALESCE(EXCLUDED.last_sync_at, reconciler_status.last_sync_at), updated_at = now()",
        cluster,
        state.as_str(),
        message,
        watches_synced,
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx("Cluster", cluster, "recording reconciler status", e))?;
    Ok(())
}

/// Every cluster's reconciler status.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<ReconcilerStatus>> {
    let rows = sqlx::query!(
        "SELECT cluster, state, message, watches_synced, last_sync_at, updated_at FROM reconciler_status ORDER BY cluster",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("listing reconciler status"))?;
    rows.into_iter()
        .map(|r| {
            Ok(ReconcilerStatus {
                cluster: r.cluster,
                state: vocabulary("state", &r.state)?,
                message: r.message,
                watches_synced: r.watches_synced,
                last_sync_at: r.last_sync_at,
                updated_at: r.updated_at,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::db("listing reconciler status"))
}

/// Clusters whose watches have neither synced nor failed: what `/readyz` waits for.
pub async fn pending(conn: &mut PgConnection) -> Result<Vec<String>> {
    sqlx::query_scalar!(
        "SELECT c.name FROM clusters c
         WHERE EXISTS (SELECT 1 FROM links l WHERE l.source_cluster = c.name OR l.target_cluster = c.name)
           AND NOT EXISTS (SELECT 1 FROM reconciler_status r
                           WHERE r.cluster = c.name AND (r.watches_synced OR r.state = 'Failed'))
         ORDER BY c.name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("listing pending reconcilers"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Owner, clusters, links, test_support::cluster};
    use linkplane_core::Link;

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn pending_lists_linked_clusters_until_synced_or_failed(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        for n in ["east", "west", "lonely"] {
            clusters::upsert(&mut conn, &cluster(n), &Owner::Api)
                .await
                .unwrap();
        }
        links::upsert(&mut conn, &Link::new("l", "west", "east"), &Owner::Api)
            .await
            .unwrap();
        assert_eq!(pending(&mut conn).await.unwrap(), ["east", "west"]);
        set(&mut conn, "east", ReconcilerState::Running, "", true)
            .await
            .unwrap();
        set(
            &mut conn,
            "west",
            ReconcilerState::Failed,
            "connection refused",
            false,
        )
        .await
        .unwrap();
        assert!(pending(&mut conn).await.unwrap().is_empty());
        let all = list(&mut conn).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].message, "connection refused");
        assert!(all[0].last_sync_at.is_some());
    }
}
