//! The `audit_log` table: every API mutation an authenticated caller ran or was refused.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::{Result, StoreError, tokens::Role};

/// One mutation to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry<'a> {
    /// The caller's token (`None` for in-process callers).
    pub token_id: Option<i64>,
    /// The caller's role.
    pub role: Role,
    /// The mutation field, e.g. `pinGitSource`.
    pub mutation: &'a str,
    /// Its arguments as JSON, secrets already replaced.
    pub arguments: serde_json::Value,
    /// `OK` or the error code answered.
    pub result: &'a str,
}

/// A recorded mutation.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Row id (ascending in time).
    pub id: i64,
    /// When it ran.
    pub at: DateTime<Utc>,
    /// The caller's token, while it exists.
    pub token_id: Option<i64>,
    /// The token's name when it ran (`in-process` without a token).
    pub token_name: String,
    /// The caller's role, as stored (`viewer`, `operator`, `admin`).
    pub role: String,
    /// The mutation field.
    pub mutation: String,
    /// Its arguments (secrets replaced).
    pub arguments: serde_json::Value,
    /// `OK` or the error code answered.
    pub result: String,
}

/// Records one mutation; the token's name is looked up in the same statement.
pub async fn record(conn: &mut PgConnection, entry: &NewEntry<'_>) -> Result<()> {
    sqlx::query!(
        "INSERT INTO audit_log (token_id, token_name, role, mutation, arguments, result)
         VALUES ($1, COALESCE((SELECT name FROM api_tokens WHERE id = $1), 'in-process'),
                 $2, $3, $4, $5)",
        entry.token_id,
        entry.role.as_str(),
        entry.mutation,
        &entry.arguments,
        entry.result,
    )
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("recording an audit entry"))?;
    Ok(())
}

/// Up to `limit` entries older than `before` (an id; `None`: the newest), newest first.
pub async fn list(conn: &mut PgConnection, before: Option<i64>, limit: i64) -> Result<Vec<Entry>> {
    sqlx::query_as!(
        Entry,
        "SELECT id, at, token_id, token_name, role, mutation, arguments, result FROM audit_log
         WHERE $1::bigint IS NULL OR id < $1 ORDER BY id DESC LIMIT $2",
        before,
        limit,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("listing the audit log"))
}

/// How many entries there are.
pub async fn count(conn: &mut PgConnection) -> Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM audit_log"#)
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::db("counting the audit log"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens;

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn entries_name_their_token_and_page_newest_first(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let (who, _) = tokens::issue(&mut conn, Role::Operator, "ci")
            .await
            .unwrap();
        for (i, m) in ["pinGitSource", "unpinGitSource", "syncNow"]
            .iter()
            .enumerate()
        {
            record(
                &mut conn,
                &NewEntry {
                    token_id: (i != 2).then_some(who.id),
                    role: Role::Operator,
                    mutation: m,
                    arguments: serde_json::json!({"source": "fleet"}),
                    result: "OK",
                },
            )
            .await
            .unwrap();
        }
        let page = list(&mut conn, None, 2).await.unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].mutation, "syncNow");
        assert_eq!(page[0].token_name, "in-process");
        assert_eq!(page[1].token_name, "ci");
        let rest = list(&mut conn, Some(page[1].id), 10).await.unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].mutation, "pinGitSource");
        assert_eq!(count(&mut conn).await.unwrap(), 3);
    }
}
