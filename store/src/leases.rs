//! The `replicas` and `cluster_leases` tables: which server process runs which cluster.
//!
//! Every expiry is computed with the database's clock (`now()`), so replicas with skewed clocks
//! still agree on who holds a lease. A lease is taken only when it is free (no holder, or
//! expired) and its `epoch` (the fencing token) goes up on every change of holder; renewing
//! succeeds only for the current holder at the current epoch, so a replica that lost its lease
//! while paused learns it on its next renewal and never extends someone else's term.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::{Result, StoreError};

/// A running server process.
#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    /// Unique per process start.
    pub id: String,
    /// Host or pod name.
    pub name: String,
    /// When the process registered.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
    /// True when the heartbeat is younger than the replica's lease duration.
    pub alive: bool,
}

/// One cluster's lease.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterLease {
    /// Cluster name.
    pub cluster: String,
    /// Holding replica, if any.
    pub holder: Option<String>,
    /// Fencing token.
    pub epoch: i64,
    /// When the current holder took it.
    pub acquired_at: Option<DateTime<Utc>>,
    /// Free after this instant unless renewed.
    pub expires_at: DateTime<Utc>,
    /// True while `holder` is set and `expires_at` has not passed (database clock).
    pub valid: bool,
}

fn interval(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Registers `id` or refreshes its heartbeat; it counts as alive for `lease` from now.
pub async fn heartbeat(
    conn: &mut PgConnection,
    id: &str,
    name: &str,
    lease: Duration,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO replicas (id, name, lease_ms) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), lease_ms = EXCLUDED.lease_ms",
        id,
        name,
        i64::try_from(lease.as_millis()).unwrap_or(i64::MAX).max(1),
    )
    .execute(conn)
    .await
    .map_err(StoreError::db("recording a replica heartbeat"))?;
    Ok(())
}

/// Removes `id` (graceful shutdown) and frees every lease it holds, so peers take over at once.
pub async fn deregister(conn: &mut PgConnection, id: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE cluster_leases SET holder = NULL, expires_at = now() WHERE holder = $1",
        id,
    )
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("releasing a replica's leases"))?;
    sqlx::query!("DELETE FROM replicas WHERE id = $1", id)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db("deregistering a replica"))?;
    Ok(())
}

/// Deletes the rows of replicas silent for ten lease durations (crashed processes).
pub async fn prune(conn: &mut PgConnection) -> Result<()> {
    sqlx::query!(
        "DELETE FROM replicas WHERE heartbeat_at < now() - make_interval(secs => lease_ms / 100.0)",
    )
    .execute(conn)
    .await
    .map_err(StoreError::db("pruning dead replicas"))?;
    Ok(())
}

/// Every replica, oldest first; `alive` when its heartbeat is younger than its lease.
pub async fn list_replicas(conn: &mut PgConnection) -> Result<Vec<Replica>> {
    sqlx::query_as!(
        Replica,
        r#"SELECT id, name, started_at, heartbeat_at,
                heartbeat_at > now() - make_interval(secs => lease_ms / 1000.0) AS "alive!"
         FROM replicas ORDER BY started_at, id"#,
    )
    .fetch_all(conn)
    .await
    .map_err(StoreError::db("listing replicas"))
}

/// Every lease.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<ClusterLease>> {
    sqlx::query_as!(
        ClusterLease,
        r#"SELECT cluster, holder, epoch, acquired_at, expires_at,
                (holder IS NOT NULL AND expires_at > now()) AS "valid!"
         FROM cluster_leases ORDER BY cluster"#,
    )
    .fetch_all(conn)
    .await
    .map_err(StoreError::db("listing cluster leases"))
}

/// Takes or renews `cluster`'s lease for `replica` for `duration`. Succeeds when the lease is
/// free, expired, or already held by `replica`; the epoch goes up only when the holder changes.
/// Returns the epoch held, or `None` when another replica holds a valid lease.
///
/// A replica that held the lease, lost it (expired and taken) and asks again gets `None`; one
/// whose lease expired but that nobody took keeps it under a *new* epoch, so any write it
/// prepared under the old epoch is still rejected by its own fence.
pub async fn acquire(
    conn: &mut PgConnection,
    cluster: &str,
    replica: &str,
    duration: Duration,
) -> Result<Option<i64>> {
    let epoch: Option<i64> = sqlx::query_scalar!(
        "INSERT INTO cluster_leases AS l (cluster, holder, epoch, acquired_at, expires_at)
         VALUES ($1, $2, 1, now(), now() + make_interval(secs => $3))
         ON CONFLICT (cluster) DO UPDATE SET
             holder = EXCLUDED.holder,
             epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now()
                          THEN l.epoch ELSE l.epoch + 1 END,
             acquired_at = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now()
                                THEN l.acquired_at ELSE now() END,
             expires_at = EXCLUDED.expires_at
         WHERE l.holder = EXCLUDED.holder OR l.holder IS NULL OR l.expires_at <= now()
         RETURNING l.epoch",
        cluster,
        replica,
        interval(duration),
    )
    .fetch_optional(conn)
    .await
    .map_err(StoreError::db("acquiring a cluster lease"))?;
    Ok(epoch)
}

/// Renews a lease `replica` holds at `epoch`. False when it is no longer the holder at that
/// epoch, or the lease already expired (then it must [`acquire`] again, under a new epoch).
pub async fn renew(
    conn: &mut PgConnection,
    cluster: &str,
    replica: &str,
    epoch: i64,
    duration: Duration,
) -> Result<bool> {
    let done = sqlx::query!(
        "UPDATE cluster_leases SET expires_at = now() + make_interval(secs => $4)
         WHERE cluster = $1 AND holder = $2 AND epoch = $3 AND expires_at > now()",
        cluster,
        replica,
        epoch,
        interval(duration),
    )
    .execute(conn)
    .await
    .map_err(StoreError::db("renewing a cluster lease"))?;
    Ok(done.rows_affected() == 1)
}

/// Gives up a lease `replica` holds (rebalancing, shutdown): a peer may take it at once.
pub async fn release(conn: &mut PgConnection, cluster: &str, replica: &str) -> Result<bool> {
    let done = sqlx::query!(
        "UPDATE cluster_leases SET holder = NULL, expires_at = now()
         WHERE cluster = $1 AND holder = $2",
        cluster,
        replica,
    )
    .execute(conn)
    .await
    .map_err(StoreError::db("releasing a cluster lease"))?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(30);

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn a_held_lease_is_refused_to_others_and_renewed_without_new_epoch(pool: sqlx::PgPool) {
        let mut c = pool.acquire().await.unwrap();
        assert_eq!(acquire(&mut c, "east", "a", D).await.unwrap(), Some(1));
        assert_eq!(acquire(&mut c, "east", "b", D).await.unwrap(), None);
        assert_eq!(acquire(&mut c, "east", "a", D).await.unwrap(), Some(1));
        assert!(renew(&mut c, "east", "a", 1, D).await.unwrap());
        assert!(!renew(&mut c, "east", "b", 1, D).await.unwrap());
        let l = list(&mut c).await.unwrap();
        assert_eq!(l[0].holder.as_deref(), Some("a"));
        assert!(l[0].valid);
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn an_expired_lease_is_taken_under_a_new_epoch_and_the_old_holder_cannot_renew(
        pool: sqlx::PgPool,
    ) {
        let mut c = pool.acquire().await.unwrap();
        let short = Duration::from_millis(200);
        assert_eq!(acquire(&mut c, "east", "a", short).await.unwrap(), Some(1));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(acquire(&mut c, "east", "b", D).await.unwrap(), Some(2));
        assert!(!renew(&mut c, "east", "a", 1, D).await.unwrap());
        assert_eq!(acquire(&mut c, "east", "a", D).await.unwrap(), None);
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn an_expired_lease_reacquired_by_its_holder_gets_a_new_epoch(pool: sqlx::PgPool) {
        let mut c = pool.acquire().await.unwrap();
        let short = Duration::from_millis(100);
        assert_eq!(acquire(&mut c, "east", "a", short).await.unwrap(), Some(1));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!renew(&mut c, "east", "a", 1, D).await.unwrap());
        assert_eq!(acquire(&mut c, "east", "a", D).await.unwrap(), Some(2));
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn deregistering_frees_every_lease_at_once(pool: sqlx::PgPool) {
        let mut c = pool.acquire().await.unwrap();
        heartbeat(&mut c, "a", "pod-a", D).await.unwrap();
        heartbeat(&mut c, "b", "pod-b", D).await.unwrap();
        acquire(&mut c, "east", "a", D).await.unwrap();
        acquire(&mut c, "west", "a", D).await.unwrap();
        deregister(&mut c, "a").await.unwrap();
        assert_eq!(acquire(&mut c, "east", "b", D).await.unwrap(), Some(2));
        assert_eq!(acquire(&mut c, "west", "b", D).await.unwrap(), Some(2));
        prune(&mut c).await.unwrap();
        let r = list_replicas(&mut c).await.unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].id, "b");
        assert!(r[0].alive);
    }
}
