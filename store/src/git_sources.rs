//! The `git_sources` table: a source's spec and its sync status.

use chrono::{DateTime, Utc};
use linkplane_core::{GitSource, GitSourceSpec, status::DeclaredBy};
use sqlx::{FromRow, PgConnection};

use crate::{Result, StoreError, WriteOutcome, spec_table::to_json};

const KIND: &str = "GitSource";

pub use linkplane_core::status::SyncStatus;

/// A source with its status.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceState {
    /// The source.
    pub source: GitSource,
    /// Commit the source is held at, if pinned.
    pub pinned_revision: Option<String>,
    /// Current status.
    pub status: SyncStatus,
    /// Last revision applied successfully.
    pub last_applied_revision: Option<String>,
    /// Last revision tried (applied or rejected).
    pub last_attempted_revision: Option<String>,
    /// Last error, with file:line locations.
    pub last_error: Option<String>,
    /// When the last attempt finished.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// The commit an operator approved despite the prune limits.
    pub prune_approved_revision: Option<String>,
    /// Not synced automatically (manual syncs and pins still run).
    pub suspended: bool,
    /// Declared by the server's `--git-*` flags: read-only through the API.
    pub declared_by_flags: bool,
}

#[derive(FromRow)]
struct Row {
    name: String,
    spec: serde_json::Value,
    pinned_revision: Option<String>,
    status: String,
    last_applied_revision: Option<String>,
    last_attempted_revision: Option<String>,
    last_error: Option<String>,
    last_synced_at: Option<DateTime<Utc>>,
    prune_approved_revision: Option<String>,
    suspended: bool,
    declared_by: String,
}

impl Row {
    fn decode(self) -> Result<SourceState> {
        let spec: GitSourceSpec =
            serde_json::from_value(self.spec).map_err(|source| StoreError::Corrupt {
                kind: KIND,
                name: self.name.clone(),
                source,
            })?;
        Ok(SourceState {
            source: GitSource {
                name: self.name,
                spec,
            },
            pinned_revision: self.pinned_revision,
            status: self.status.parse().unwrap_or(SyncStatus::Unknown),
            last_applied_revision: self.last_applied_revision,
            last_attempted_revision: self.last_attempted_revision,
            last_error: self.last_error,
            last_synced_at: self.last_synced_at,
            prune_approved_revision: self.prune_approved_revision,
            suspended: self.suspended,
            declared_by_flags: self.declared_by.parse() == Ok(DeclaredBy::Flags),
        })
    }
}

const COLUMNS: &str = "name, spec, pinned_revision, status, last_applied_revision, last_attempted_revision, \
                       last_error, last_synced_at, prune_approved_revision, suspended, declared_by";

/// Creates or updates a source's spec, keeping its status.
pub async fn upsert(conn: &mut PgConnection, source: &GitSource) -> Result<WriteOutcome> {
    let spec = to_json(KIND, &source.name, &source.spec)?;
    let inserted: Option<bool> = sqlx::query_scalar(
        "INSERT INTO git_sources (name, spec) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec, updated_at = now()
         WHERE git_sources.spec IS DISTINCT FROM EXCLUDED.spec
         RETURNING (xmax = 0) AS inserted",
    )
    .bind(&source.name)
    .bind(spec)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx(KIND, &source.name, "upserting", e))?;
    Ok(match inserted {
        Some(true) => WriteOutcome::Created,
        Some(false) => WriteOutcome::Updated,
        None => WriteOutcome::Unchanged,
    })
}

/// Adds a source through the API; [`StoreError::Conflict`] when the name is taken.
pub async fn insert(conn: &mut PgConnection, source: &GitSource) -> Result<()> {
    let spec = to_json(KIND, &source.name, &source.spec)?;
    sqlx::query("INSERT INTO git_sources (name, spec, declared_by) VALUES ($1, $2, 'api')")
        .bind(&source.name)
        .bind(spec)
        .execute(&mut *conn)
        .await
        .map_err(|e| StoreError::from_sqlx(KIND, &source.name, "adding", e))?;
    Ok(())
}

/// Replaces the spec of an API-declared source, keeping its pin, status and history.
/// [`StoreError::NotFound`] when there is no such source; a flag-declared one is left alone
/// and answered as [`StoreError::Invalid`] (callers check [`SourceState::declared_by_flags`]
/// first to answer precisely; this guards the race).
pub async fn update_spec(conn: &mut PgConnection, source: &GitSource) -> Result<()> {
    let spec = to_json(KIND, &source.name, &source.spec)?;
    let declared_by: Option<String> = sqlx::query_scalar(
        "WITH target AS (SELECT name, declared_by FROM git_sources WHERE name = $1 FOR UPDATE),
              updated AS (UPDATE git_sources g SET spec = $2, updated_at = now()
                          FROM target WHERE g.name = target.name AND target.declared_by = 'api'
                          RETURNING g.name)
         SELECT declared_by FROM target",
    )
    .bind(&source.name)
    .bind(spec)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx(KIND, &source.name, "updating", e))?;
    match declared_by.map(|d| d.parse::<DeclaredBy>()) {
        None => Err(StoreError::NotFound {
            kind: KIND,
            name: source.name.clone(),
        }),
        Some(Ok(DeclaredBy::Api)) => Ok(()),
        Some(_) => Err(StoreError::Invalid {
            kind: KIND,
            name: source.name.clone(),
            reason: "declared by the server's --git-* flags".into(),
        }),
    }
}

/// Marks `name` as the source the server's flags declare (read-only through the API) and
/// every other one as API-declared; `None` when no flags declare a source.
pub async fn set_flag_source(conn: &mut PgConnection, name: Option<&str>) -> Result<()> {
    sqlx::query(
        "UPDATE git_sources SET declared_by = CASE WHEN name = $1 THEN 'flags' ELSE 'api' END
         WHERE declared_by IS DISTINCT FROM (CASE WHEN name = $1 THEN 'flags' ELSE 'api' END)",
    )
    .bind(name)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("marking the flag-declared git source"))?;
    Ok(())
}

/// Suspends (`true`) or resumes a source's automatic syncs.
pub async fn set_suspended(conn: &mut PgConnection, name: &str, suspended: bool) -> Result<()> {
    let done =
        sqlx::query("UPDATE git_sources SET suspended = $2, updated_at = now() WHERE name = $1")
            .bind(name)
            .bind(suspended)
            .execute(&mut *conn)
            .await
            .map_err(|e| StoreError::from_sqlx(KIND, name, "suspending", e))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            kind: KIND,
            name: name.to_string(),
        });
    }
    Ok(())
}

/// One source by name.
pub async fn get(conn: &mut PgConnection, name: &str) -> Result<Option<SourceState>> {
    let sql = format!("SELECT {COLUMNS} FROM git_sources WHERE name = $1");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| StoreError::from_sqlx(KIND, name, "reading", e))?;
    row.map(Row::decode).transpose()
}

/// Every source, by name.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<SourceState>> {
    let sql = format!("SELECT {COLUMNS} FROM git_sources ORDER BY name");
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db("listing git sources"))?;
    rows.into_iter().map(Row::decode).collect()
}

/// Deletes a source and its history.
pub async fn delete(conn: &mut PgConnection, name: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM git_sources WHERE name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(|e| StoreError::from_sqlx(KIND, name, "deleting", e))?;
    Ok(done.rows_affected() > 0)
}

/// Approves `revision` of `name` to prune past the source's limits (the operator saw the plan).
/// Only that commit is approved: the next held one needs its own approval.
pub async fn approve_prune(conn: &mut PgConnection, name: &str, revision: &str) -> Result<()> {
    let done = sqlx::query(
        "UPDATE git_sources SET prune_approved_revision = $2, updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(revision)
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx(KIND, name, "approving a prune", e))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            kind: KIND,
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Records the outcome of a sync attempt on the source row.
pub async fn set_status(
    conn: &mut PgConnection,
    name: &str,
    status: SyncStatus,
    attempted_revision: Option<&str>,
    applied_revision: Option<&str>,
    error: Option<&str>,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE git_sources SET status = $2,
             last_attempted_revision = COALESCE($3, last_attempted_revision),
             last_applied_revision = COALESCE($4, last_applied_revision),
             last_error = $5, last_synced_at = now(), updated_at = now()
         WHERE name = $1",
    )
    .bind(name)
    .bind(status.as_str())
    .bind(attempted_revision)
    .bind(applied_revision)
    .bind(error)
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx(KIND, name, "recording sync status", e))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            kind: KIND,
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Pins the source to a commit, or unpins it with `None`.
pub async fn set_pin(conn: &mut PgConnection, name: &str, revision: Option<&str>) -> Result<()> {
    let done = sqlx::query(
        "UPDATE git_sources SET pinned_revision = $2, updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(revision)
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx(KIND, name, "pinning", e))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            kind: KIND,
            name: name.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str) -> GitSource {
        GitSource {
            name: name.into(),
            spec: serde_json::from_value(serde_json::json!({"url": "file:///tmp/fleet"})).unwrap(),
        }
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn status_and_pin_are_recorded(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        assert_eq!(
            upsert(&mut conn, &source("fleet")).await.unwrap(),
            WriteOutcome::Created
        );
        let s = get(&mut conn, "fleet").await.unwrap().unwrap();
        assert_eq!(s.status, SyncStatus::Unknown);
        set_status(
            &mut conn,
            "fleet",
            SyncStatus::Synced,
            Some("abc"),
            Some("abc"),
            None,
        )
        .await
        .unwrap();
        set_status(
            &mut conn,
            "fleet",
            SyncStatus::Failed,
            Some("def"),
            None,
            Some("a.yaml:1:1: bad"),
        )
        .await
        .unwrap();
        set_pin(&mut conn, "fleet", Some("abc")).await.unwrap();
        let s = get(&mut conn, "fleet").await.unwrap().unwrap();
        assert_eq!(s.status, SyncStatus::Failed);
        assert_eq!(s.last_applied_revision.as_deref(), Some("abc"));
        assert_eq!(s.last_attempted_revision.as_deref(), Some("def"));
        assert_eq!(s.last_error.as_deref(), Some("a.yaml:1:1: bad"));
        assert_eq!(s.pinned_revision.as_deref(), Some("abc"));
        assert!(matches!(
            set_pin(&mut conn, "nope", None).await,
            Err(StoreError::NotFound { .. })
        ));
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn flag_declared_sources_refuse_api_edits(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        insert(&mut conn, &source("api-one")).await.unwrap();
        assert!(matches!(
            insert(&mut conn, &source("api-one")).await,
            Err(StoreError::Conflict { .. })
        ));
        upsert(&mut conn, &source("default")).await.unwrap();
        set_flag_source(&mut conn, Some("default")).await.unwrap();
        let s = get(&mut conn, "default").await.unwrap().unwrap();
        assert!(s.declared_by_flags);
        assert!(
            !get(&mut conn, "api-one")
                .await
                .unwrap()
                .unwrap()
                .declared_by_flags
        );
        let mut changed = source("default");
        changed.spec.path = "other".into();
        assert!(matches!(
            update_spec(&mut conn, &changed).await,
            Err(StoreError::Invalid { .. })
        ));
        let mut changed = source("api-one");
        changed.spec.path = "other".into();
        update_spec(&mut conn, &changed).await.unwrap();
        assert_eq!(
            get(&mut conn, "api-one")
                .await
                .unwrap()
                .unwrap()
                .source
                .spec
                .path,
            "other"
        );
        assert!(matches!(
            update_spec(&mut conn, &source("nope")).await,
            Err(StoreError::NotFound { .. })
        ));
        // Flags no longer declare it: editable again.
        set_flag_source(&mut conn, None).await.unwrap();
        assert!(
            !get(&mut conn, "default")
                .await
                .unwrap()
                .unwrap()
                .declared_by_flags
        );
        set_suspended(&mut conn, "api-one", true).await.unwrap();
        assert!(get(&mut conn, "api-one").await.unwrap().unwrap().suspended);
    }
}
