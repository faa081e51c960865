//! The `remote_credentials` table: the state of each remote-discovery credentials Secret the
//! mirror keeps in a source cluster for a target (never the token itself).

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection};

use crate::{Result, StoreError};

pub use linkplane_core::status::RemoteCredentialState;

/// A stored credential state.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct RemoteCredential {
    /// The cluster holding the Secret.
    pub source_cluster: String,
    /// The cluster the Secret's kubeconfig reaches.
    pub target_cluster: String,
    /// One of [`RemoteCredentialState`]'s column values.
    pub state: String,
    /// `cluster-credentials-<target>`.
    pub secret_name: String,
    /// The source cluster's Linkerd namespace.
    pub namespace: String,
    /// When the token in the Secret was issued.
    pub issued_at: Option<DateTime<Utc>>,
    /// When the token in the Secret expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Detail of the state (the error, the missing namespace).
    pub message: String,
    /// Last write.
    pub updated_at: DateTime<Utc>,
}

impl RemoteCredential {
    /// The parsed state (`Error` for a value this version does not know).
    pub fn state(&self) -> RemoteCredentialState {
        self.state.parse().unwrap_or(RemoteCredentialState::Error)
    }
}

/// What [`set`] records.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialUpdate<'a> {
    /// The state.
    pub state: RemoteCredentialState,
    /// Secret name.
    pub secret_name: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// The token in the Secret, if one was written (`None` keeps the recorded one).
    pub issued: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Detail.
    pub message: &'a str,
}

/// Records the state of `(source, target)`'s credentials.
pub async fn set(
    conn: &mut PgConnection,
    source: &str,
    target: &str,
    update: &CredentialUpdate<'_>,
) -> Result<()> {
    let (issued_at, expires_at) = update.issued.unzip();
    sqlx::query(
        "INSERT INTO remote_credentials
             (source_cluster, target_cluster, state, secret_name, namespace, issued_at, expires_at, message)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (source_cluster, target_cluster) DO UPDATE SET
             state = EXCLUDED.state, secret_name = EXCLUDED.secret_name,
             namespace = EXCLUDED.namespace,
             issued_at = COALESCE(EXCLUDED.issued_at, remote_credentials.issued_at),
             expires_at = COALESCE(EXCLUDED.expires_at, remote_credentials.expires_at),
             message = EXCLUDED.message, updated_at = now()",
    )
    .bind(source)
    .bind(target)
    .bind(update.state.as_str())
    .bind(update.secret_name)
    .bind(update.namespace)
    .bind(issued_at)
    .bind(expires_at)
    .bind(update.message)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        StoreError::from_sqlx("Link", &format!("{source}->{target}"), "recording remote credentials", e)
    })?;
    Ok(())
}

/// Forgets `(source, target)`'s credentials (after they were deleted).
pub async fn delete(conn: &mut PgConnection, source: &str, target: &str) -> Result<()> {
    sqlx::query("DELETE FROM remote_credentials WHERE source_cluster = $1 AND target_cluster = $2")
        .bind(source)
        .bind(target)
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            StoreError::from_sqlx(
                "Link",
                &format!("{source}->{target}"),
                "forgetting remote credentials",
                e,
            )
        })?;
    Ok(())
}

/// Every pair's credentials.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<RemoteCredential>> {
    sqlx::query_as(
        "SELECT source_cluster, target_cluster, state, secret_name, namespace, issued_at,
                expires_at, message, updated_at
         FROM remote_credentials ORDER BY source_cluster, target_cluster",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx("Link", "", "listing remote credentials", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn set_keeps_the_issued_token_times_when_an_error_follows(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let t0 = Utc::now();
        let t1 = t0 + chrono::Duration::hours(1);
        let mut u = CredentialUpdate {
            state: RemoteCredentialState::Issued,
            secret_name: "cluster-credentials-east",
            namespace: "linkerd",
            issued: Some((t0, t1)),
            message: "",
        };
        set(&mut conn, "west", "east", &u).await.unwrap();
        u.state = RemoteCredentialState::Error;
        u.issued = None;
        u.message = "renewing: connection refused";
        set(&mut conn, "west", "east", &u).await.unwrap();
        let rows = list(&mut conn).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state(), RemoteCredentialState::Error);
        assert_eq!(rows[0].message, "renewing: connection refused");
        let exp = rows[0].expires_at.unwrap();
        assert!(
            (exp - t1).num_milliseconds().abs() < 2,
            "expiry kept: {exp} vs {t1}"
        );
        delete(&mut conn, "west", "east").await.unwrap();
        assert!(list(&mut conn).await.unwrap().is_empty());
    }
}
