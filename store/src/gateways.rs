//! The `gateway_health` table: the latest probe result per link.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::{Result, StoreError};

/// Latest probe outcome for one link's view of its target gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayHealth {
    /// Link name.
    pub link: String,
    /// False once the failure threshold is reached; true again after one success.
    pub alive: bool,
    /// Latency of the last successful probe.
    pub latency_ms: Option<f64>,
    /// Failures since the last success.
    pub consecutive_failures: i32,
    /// Last failure reason.
    pub last_error: Option<String>,
    /// When the last probe finished.
    pub last_probe_at: Option<DateTime<Utc>>,
    /// When `alive` last changed.
    pub last_transition: DateTime<Utc>,
}

/// Records a probe result.
pub async fn record(
    conn: &mut PgConnection,
    link: &str,
    alive: bool,
    latency_ms: Option<f64>,
    consecutive_failures: i32,
    last_error: Option<&str>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO gateway_health (link, alive, latency_ms, consecutive_failures, last_error, last_probe_at)
         VALUES ($1, $2, $3, $4, $5, now())
         ON CONFLICT (link) DO UPDATE SET alive = EXCLUDED.alive,
             latency_ms = COALESCE(EXCLUDED.latency_ms, gateway_health.latency_ms),
             consecutive_failures = EXCLUDED.consecutive_failures, last_error = EXCLUDED.last_error,
             last_probe_at = now(),
             last_transition = CASE WHEN gateway_health.alive = EXCLUDED.alive
                                    THEN gateway_health.last_transition ELSE now() END",
        link,
        alive,
        latency_ms,
        consecutive_failures,
        last_error,
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx("Link", link, "recording gateway health", e))?;
    Ok(())
}

/// Every link's gateway health.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<GatewayHealth>> {
    sqlx::query_as!(
        GatewayHealth,
        "SELECT link, alive, latency_ms, consecutive_failures, last_error, last_probe_at, last_transition
         FROM gateway_health ORDER BY link",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("listing gateway health"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Owner, clusters, links, test_support::cluster};
    use linkplane_core::Link;

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn liveness_transition_is_tracked(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        for n in ["east", "west"] {
            clusters::upsert(&mut conn, &cluster(n), &Owner::Api)
                .await
                .unwrap();
        }
        links::upsert(&mut conn, &Link::new("l", "west", "east"), &Owner::Api)
            .await
            .unwrap();
        record(&mut conn, "l", true, Some(1.5), 0, None)
            .await
            .unwrap();
        record(&mut conn, "l", false, None, 3, Some("connection refused"))
            .await
            .unwrap();
        let h = list(&mut conn).await.unwrap().remove(0);
        assert!(!h.alive);
        assert_eq!(h.latency_ms, Some(1.5), "last successful latency is kept");
        assert_eq!(h.consecutive_failures, 3);
        assert_eq!(h.last_error.as_deref(), Some("connection refused"));
        assert!(
            record(&mut conn, "missing", true, None, 0, None)
                .await
                .is_err()
        );
    }
}
