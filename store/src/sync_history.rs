//! The `sync_history` table: one row per sync attempt, newest 50 kept per source.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, types::Json};

use linkplane_core::status::{ObjectKind, SyncResult, Trigger};

use crate::{Result, StoreError, error::vocabulary};

/// How many attempts are kept per source (Argo CD keeps 10, Flux 5; 50 covers a busy day).
pub const HISTORY_LIMIT: i64 = 50;

/// Created/updated/deleted counts for one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KindCounts {
    /// Objects inserted.
    pub created: i32,
    /// Objects changed.
    pub updated: i32,
    /// Objects pruned.
    pub deleted: i32,
}

/// One sync attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRecord {
    /// Row id (0 before insertion).
    pub id: i64,
    /// Source name.
    pub source: String,
    /// Commit id.
    pub revision: String,
    /// Commit author.
    pub author: String,
    /// Commit message (first line is enough for display).
    pub message: String,
    /// What started it.
    pub trigger: Trigger,
    /// What it did (never `Skipped`).
    pub result: SyncResult,
    /// When the attempt began.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: i64,
    /// Per kind counts.
    pub counts: BTreeMap<ObjectKind, KindCounts>,
    /// `path/file.yaml:line:col: message` errors.
    pub errors: Vec<String>,
}

impl SyncRecord {
    /// Totals over every kind.
    pub fn totals(&self) -> KindCounts {
        self.counts
            .values()
            .fold(KindCounts::default(), |a, c| KindCounts {
                created: a.created + c.created,
                updated: a.updated + c.updated,
                deleted: a.deleted + c.deleted,
            })
    }
}

/// A `sync_history` row as [`select_rows!`] selects it.
struct Row {
    id: i64,
    source: String,
    revision: String,
    author: String,
    message: String,
    trigger: String,
    result: String,
    started_at: DateTime<Utc>,
    duration_ms: i64,
    counts: Json<BTreeMap<ObjectKind, KindCounts>>,
    errors: Json<Vec<String>>,
}

/// A checked `query_as!` of [`Row`]s: their select list, then the statement's rest (`FROM …`).
macro_rules! select_rows {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Row,
            r#"SELECT id, source, revision, author, message, trigger, result, started_at, duration_ms,
                      counts AS "counts: Json<BTreeMap<ObjectKind, KindCounts>>",
                      errors AS "errors: Json<Vec<String>>" "#
                + $rest
            $(, $arg)*
        )
    };
}

impl Row {
    /// The record; a trigger or result outside its set fails as that column's decode error.
    fn decode(self) -> std::result::Result<SyncRecord, sqlx::Error> {
        Ok(SyncRecord {
            id: self.id,
            source: self.source,
            revision: self.revision,
            author: self.author,
            message: self.message,
            trigger: vocabulary("trigger", &self.trigger)?,
            result: vocabulary("result", &self.result)?,
            started_at: self.started_at,
            duration_ms: self.duration_ms,
            counts: self.counts.0,
            errors: self.errors.0,
        })
    }
}

/// Appends an attempt and trims the source's history to [`HISTORY_LIMIT`]. Returns the new id.
pub async fn record(conn: &mut PgConnection, rec: &SyncRecord) -> Result<i64> {
    let totals = rec.totals();
    let id: i64 = sqlx::query_scalar!(
        "INSERT INTO sync_history (source, revision, author, message, trigger, result, started_at, duration_ms,
                                   created, updated, deleted, counts, errors)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        rec.source,
        rec.revision,
        rec.author,
        rec.message,
        rec.trigger.as_str(),
        rec.result.as_str(),
        rec.started_at,
        rec.duration_ms,
        totals.created,
        totals.updated,
        totals.deleted,
        Json(&rec.counts) as _,
        Json(&rec.errors) as _,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx("GitSource", &rec.source, "recording sync history", e))?;
    sqlx::query!(
        "DELETE FROM sync_history WHERE source = $1 AND id NOT IN
             (SELECT id FROM sync_history WHERE source = $1 ORDER BY id DESC LIMIT $2)",
        rec.source,
        HISTORY_LIMIT,
    )
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("trimming sync history"))?;
    Ok(id)
}

/// Newest first, at most `limit`.
pub async fn list(conn: &mut PgConnection, source: &str, limit: i64) -> Result<Vec<SyncRecord>> {
    let rows: Vec<Row> = select_rows!(
        "FROM sync_history WHERE source = $1 ORDER BY id DESC LIMIT $2",
        source,
        limit,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("listing sync history"))?;
    rows.into_iter()
        .map(Row::decode)
        .collect::<std::result::Result<_, _>>()
        .map_err(StoreError::db("listing sync history"))
}

/// The newest `limit` sync attempts of each of `sources`, newest first per source.
pub async fn newest_of(
    conn: &mut PgConnection,
    sources: &[String],
    limit: i64,
) -> Result<Vec<SyncRecord>> {
    let rows: Vec<Row> = select_rows!(
        "FROM (SELECT h.*, row_number() OVER (PARTITION BY source ORDER BY id DESC) AS rn
               FROM sync_history h WHERE source = ANY($1)) newest
         WHERE rn <= $2 ORDER BY source, id DESC",
        sources,
        limit,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("listing sync history"))?;
    rows.into_iter()
        .map(Row::decode)
        .collect::<std::result::Result<_, _>>()
        .map_err(StoreError::db("listing sync history"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git_sources;
    use linkplane_core::GitSource;

    fn rec(i: usize) -> SyncRecord {
        SyncRecord {
            id: 0,
            source: "fleet".into(),
            revision: format!("rev{i}"),
            author: "Ada <ada@example.com>".into(),
            message: "add link".into(),
            trigger: Trigger::Webhook,
            result: SyncResult::Applied,
            started_at: Utc::now(),
            duration_ms: 12,
            counts: BTreeMap::from([(
                ObjectKind::Link,
                KindCounts {
                    created: 1,
                    updated: 2,
                    deleted: 3,
                },
            )]),
            errors: vec![],
        }
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn history_keeps_newest_fifty(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let src = GitSource {
            name: "fleet".into(),
            spec: serde_json::from_value(serde_json::json!({"url": "/x"})).unwrap(),
        };
        git_sources::upsert(&mut conn, &src).await.unwrap();
        for i in 0..55 {
            record(&mut conn, &rec(i)).await.unwrap();
        }
        let all = list(&mut conn, "fleet", 100).await.unwrap();
        assert_eq!(all.len(), 50);
        assert_eq!(all[0].revision, "rev54");
        assert_eq!(all[49].revision, "rev5");
        assert_eq!(
            all[0].counts[&ObjectKind::Link],
            KindCounts {
                created: 1,
                updated: 2,
                deleted: 3
            }
        );
        assert_eq!(all[0].totals().deleted, 3);
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn unknown_trigger_is_rejected(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let src = GitSource {
            name: "fleet".into(),
            spec: serde_json::from_value(serde_json::json!({"url": "/x"})).unwrap(),
        };
        git_sources::upsert(&mut conn, &src).await.unwrap();
        // A `Trigger` cannot spell "cron"; the column's CHECK refuses it from any other writer.
        assert!("cron".parse::<Trigger>().is_err());
        let err = sqlx::query(
            "INSERT INTO sync_history (source, revision, author, message, trigger, result,
                                       started_at, duration_ms, created, updated, deleted, counts, errors)
             VALUES ('fleet', 'r', '', '', 'cron', 'Applied', now(), 0, 0, 0, 0, '{}', '[]')",
        )
        .execute(&mut *conn)
        .await
        .unwrap_err();
        assert!(matches!(
            StoreError::from_sqlx("GitSource", "fleet", "recording sync history", err),
            StoreError::Invalid { .. }
        ));
    }
}
