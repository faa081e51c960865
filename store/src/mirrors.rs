//! The `mirrors` table: the state of every exported service a link selects.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::{Result, StoreError};

pub use linkplane_core::status::MirrorState;

/// One mirror's state as the reconciler reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorStatus {
    /// Link that selects the service.
    pub link: String,
    /// Cluster holding the mirror.
    pub source_cluster: String,
    /// Cluster exporting the service.
    pub target_cluster: String,
    /// Namespace (same on both sides).
    pub namespace: String,
    /// Remote Service name.
    pub remote_name: String,
    /// Local mirror name (possibly shortened).
    pub local_name: String,
    /// `gateway` or `remote-discovery`.
    pub mode: String,
    /// Headless with endpoint mirrors.
    pub headless: bool,
    /// Current state.
    pub state: MirrorState,
    /// Detail for non-Mirrored states.
    pub message: String,
}

/// A stored mirror row.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorRow {
    /// Row id, stable for cursors.
    pub id: i64,
    /// The state.
    pub status: MirrorStatus,
    /// Last change of `state`.
    pub last_transition: DateTime<Utc>,
    /// Last write.
    pub updated_at: DateTime<Utc>,
}

/// A `mirrors` row as [`select_rows!`] selects it; shared with the API's batched reads.
pub(crate) struct Row {
    pub(crate) id: i64,
    pub(crate) link: String,
    pub(crate) source_cluster: String,
    pub(crate) target_cluster: String,
    pub(crate) remote_namespace: String,
    pub(crate) remote_name: String,
    pub(crate) local_name: String,
    pub(crate) mode: String,
    pub(crate) headless: bool,
    pub(crate) state: String,
    pub(crate) message: String,
    pub(crate) last_transition: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

/// A checked `query_as!` of [`Row`]s: [`Row`]'s select list followed by the statement's rest
/// (`FROM …`), given as string literals joined with `+` (sqlx joins them into one literal at
/// compile time, so the statement is still checked whole), then the arguments.
macro_rules! select_rows {
    ($rest:expr $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            $crate::mirrors::Row,
            "SELECT id, link, source_cluster, target_cluster, remote_namespace, remote_name, \
             local_name, mode, headless, state, message, last_transition, updated_at "
                + $rest
            $(, $arg)*
        )
    };
}
pub(crate) use select_rows;

impl From<Row> for MirrorRow {
    fn from(r: Row) -> Self {
        MirrorRow {
            id: r.id,
            status: MirrorStatus {
                link: r.link,
                source_cluster: r.source_cluster,
                target_cluster: r.target_cluster,
                namespace: r.remote_namespace,
                remote_name: r.remote_name,
                local_name: r.local_name,
                mode: r.mode,
                headless: r.headless,
                // The CHECK constraint guarantees a known value.
                state: MirrorState::parse(&r.state).unwrap_or(MirrorState::Error),
                message: r.message,
            },
            last_transition: r.last_transition,
            updated_at: r.updated_at,
        }
    }
}

/// Filters for [`list`]; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct MirrorFilter {
    /// Cluster holding the mirror.
    pub source_cluster: Option<String>,
    /// Cluster exporting the service.
    pub target_cluster: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// State.
    pub state: Option<MirrorState>,
    /// Link.
    pub link: Option<String>,
}

/// A checked state write: `INSERT INTO mirrors (<the state columns>)`, then `$rows` (the
/// `VALUES` or `SELECT` supplying them, in that order), then how it meets an existing row:
/// unchanged rows are not rewritten, and `last_transition` moves only when the state does.
macro_rules! write_states {
    ($rows:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query!(
            "INSERT INTO mirrors (link, source_cluster, target_cluster, remote_namespace, remote_name,
                                  local_name, mode, headless, state, message) "
            + $rows
            + " ON CONFLICT (link, remote_namespace, remote_name) DO UPDATE SET
                 source_cluster = EXCLUDED.source_cluster, target_cluster = EXCLUDED.target_cluster,
                 local_name = EXCLUDED.local_name, mode = EXCLUDED.mode, headless = EXCLUDED.headless,
                 state = EXCLUDED.state, message = EXCLUDED.message, updated_at = now(),
                 last_transition = CASE WHEN mirrors.state = EXCLUDED.state THEN mirrors.last_transition ELSE now() END
             WHERE (mirrors.local_name, mirrors.mode, mirrors.headless, mirrors.state, mirrors.message)
                   IS DISTINCT FROM (EXCLUDED.local_name, EXCLUDED.mode, EXCLUDED.headless, EXCLUDED.state, EXCLUDED.message)"
            $(, $arg)*
        )
    };
}

/// Records a mirror's state; `last_transition` moves only when the state changes, and an
/// identical status is not rewritten (no event, no write amplification).
pub async fn upsert(conn: &mut PgConnection, s: &MirrorStatus) -> Result<()> {
    write_states!(
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        s.link,
        s.source_cluster,
        s.target_cluster,
        s.namespace,
        s.remote_name,
        s.local_name,
        s.mode,
        s.headless,
        s.state.as_str(),
        s.message,
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx("Mirror", &s.local_name, "recording mirror state", e))?;
    Ok(())
}

/// Records many states in one statement, with [`upsert`]'s rules (unchanged rows are not
/// rewritten, `last_transition` moves only on a state change). The reconcilers' batched writer
/// uses it: one round trip for thousands of states instead of one each. When a key appears more
/// than once, the last state wins (a statement cannot update one row twice).
pub async fn upsert_many(conn: &mut PgConnection, states: &[&MirrorStatus]) -> Result<()> {
    let mut index: std::collections::HashMap<(&str, &str, &str), usize> =
        std::collections::HashMap::with_capacity(states.len());
    let mut rows: Vec<&MirrorStatus> = Vec::with_capacity(states.len());
    for &s in states {
        let key = (
            s.link.as_str(),
            s.namespace.as_str(),
            s.remote_name.as_str(),
        );
        match index.get(&key) {
            Some(&i) => rows[i] = s,
            None => {
                index.insert(key, rows.len());
                rows.push(s);
            }
        }
    }
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let col = |f: fn(&MirrorStatus) -> &str| -> Vec<&str> { rows.iter().map(|s| f(s)).collect() };
    write_states!(
        "SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                              $7::text[], $8::bool[], $9::text[], $10::text[])",
        &col(|s| &s.link) as &[&str],
        &col(|s| &s.source_cluster) as &[&str],
        &col(|s| &s.target_cluster) as &[&str],
        &col(|s| &s.namespace) as &[&str],
        &col(|s| &s.remote_name) as &[&str],
        &col(|s| &s.local_name) as &[&str],
        &col(|s| &s.mode) as &[&str],
        &rows.iter().map(|s| s.headless).collect::<Vec<bool>>() as &[bool],
        &col(|s| s.state.as_str()) as &[&str],
        &col(|s| &s.message) as &[&str],
    )
    .execute(&mut *conn)
        .await
        .map_err(|e| {
            StoreError::from_sqlx(
                "Mirror",
                &first.local_name,
                "recording a batch of mirror states",
                e,
            )
        })?;
    Ok(())
}

/// Forgets a mirror (the service is no longer selected).
pub async fn delete(
    conn: &mut PgConnection,
    link: &str,
    namespace: &str,
    remote_name: &str,
) -> Result<bool> {
    let done = sqlx::query!(
        "DELETE FROM mirrors WHERE link = $1 AND remote_namespace = $2 AND remote_name = $3",
        link,
        namespace,
        remote_name,
    )
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("deleting mirror state"))?;
    Ok(done.rows_affected() > 0)
}

/// Forgets every mirror of a link except those listed as `(namespace, remote_name)` (a full
/// resync's garbage collection of state rows). Returns how many were removed.
pub async fn retain_for_link(
    conn: &mut PgConnection,
    link: &str,
    keep: &[(String, String)],
) -> Result<u64> {
    let (namespaces, names): (Vec<&str>, Vec<&str>) =
        keep.iter().map(|(n, s)| (n.as_str(), s.as_str())).unzip();
    let done = sqlx::query!(
        "DELETE FROM mirrors WHERE link = $1 AND (remote_namespace, remote_name) NOT IN
             (SELECT * FROM UNNEST($2::text[], $3::text[]))",
        link,
        &namespaces as &[&str],
        &names as &[&str],
    )
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("pruning mirror state"))?;
    Ok(done.rows_affected())
}

/// How many mirrors are in `state` (all states with `None`).
pub async fn count(conn: &mut PgConnection, state: Option<MirrorState>) -> Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM mirrors WHERE ($1::text IS NULL OR state = $1)"#,
        state.map(MirrorState::as_str),
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::db("counting mirrors"))
}

/// How many mirrors match `filter`.
pub async fn count_matching(conn: &mut PgConnection, filter: &MirrorFilter) -> Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM mirrors
         WHERE ($1::text IS NULL OR source_cluster = $1) AND ($2::text IS NULL OR target_cluster = $2)
           AND ($3::text IS NULL OR remote_namespace = $3) AND ($4::text IS NULL OR state = $4)
           AND ($5::text IS NULL OR link = $5)"#,
        filter.source_cluster,
        filter.target_cluster,
        filter.namespace,
        filter.state.map(MirrorState::as_str),
        filter.link,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::db("counting mirrors"))
}

/// Mirrors matching `filter`, ordered by id, after `after_id`, at most `limit`.
pub async fn list(
    conn: &mut PgConnection,
    filter: &MirrorFilter,
    after_id: i64,
    limit: i64,
) -> Result<Vec<MirrorRow>> {
    let rows: Vec<Row> = select_rows!(
        "FROM mirrors
         WHERE ($1::text IS NULL OR source_cluster = $1) AND ($2::text IS NULL OR target_cluster = $2)
           AND ($3::text IS NULL OR remote_namespace = $3) AND ($4::text IS NULL OR state = $4)
           AND ($5::text IS NULL OR link = $5) AND id > $6
         ORDER BY id LIMIT $7",
        filter.source_cluster,
        filter.target_cluster,
        filter.namespace,
        filter.state.map(MirrorState::as_str),
        filter.link,
        after_id,
        limit,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("listing mirrors"))?;
    Ok(rows.into_iter().map(MirrorRow::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Owner, clusters, links, test_support::cluster};
    use linkplane_core::Link;

    fn status(name: &str, state: MirrorState) -> MirrorStatus {
        MirrorStatus {
            link: "west-from-east".into(),
            source_cluster: "west".into(),
            target_cluster: "east".into(),
            namespace: "shop".into(),
            remote_name: name.into(),
            local_name: format!("{name}-east"),
            mode: "gateway".into(),
            headless: false,
            state,
            message: String::new(),
        }
    }

    async fn seed(conn: &mut PgConnection) {
        for n in ["east", "west"] {
            clusters::upsert(conn, &cluster(n), &Owner::Api)
                .await
                .unwrap();
        }
        links::upsert(
            conn,
            &Link::new("west-from-east", "west", "east"),
            &Owner::Api,
        )
        .await
        .unwrap();
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn transition_time_moves_only_on_state_change(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        seed(&mut conn).await;
        upsert(&mut conn, &status("web", MirrorState::MissingNamespace))
            .await
            .unwrap();
        let first = list(&mut conn, &MirrorFilter::default(), 0, 10)
            .await
            .unwrap()
            .remove(0);
        let mut s = status("web", MirrorState::MissingNamespace);
        s.message = "Namespace does not exist".into();
        upsert(&mut conn, &s).await.unwrap();
        let second = list(&mut conn, &MirrorFilter::default(), 0, 10)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(first.last_transition, second.last_transition);
        assert_eq!(second.status.message, "Namespace does not exist");
        upsert(&mut conn, &status("web", MirrorState::Mirrored))
            .await
            .unwrap();
        let third = list(&mut conn, &MirrorFilter::default(), 0, 10)
            .await
            .unwrap()
            .remove(0);
        assert!(third.last_transition > second.last_transition);
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn batched_states_follow_the_single_row_rules(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        seed(&mut conn).await;
        upsert(&mut conn, &status("web", MirrorState::Mirrored))
            .await
            .unwrap();
        let before = list(&mut conn, &MirrorFilter::default(), 0, 10)
            .await
            .unwrap()
            .remove(0);
        let mut conflict = status("api", MirrorState::Conflict);
        conflict.message = "a Service api-east exists".into();
        upsert_many(
            &mut conn,
            &[
                &status("web", MirrorState::Mirrored),
                &status("api", MirrorState::Error),
                &conflict,
                &status("db", MirrorState::MissingNamespace),
            ],
        )
        .await
        .unwrap();
        upsert_many(&mut conn, &[]).await.unwrap();
        let rows = list(&mut conn, &MirrorFilter::default(), 0, 10)
            .await
            .unwrap();
        let by_name = |n: &str| rows.iter().find(|r| r.status.remote_name == n).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            by_name("web").updated_at,
            before.updated_at,
            "unchanged row not rewritten"
        );
        assert_eq!(
            by_name("api").status.state,
            MirrorState::Conflict,
            "last wins"
        );
        assert_eq!(by_name("api").status.message, "a Service api-east exists");
        assert_eq!(by_name("db").status.state, MirrorState::MissingNamespace);
        // A state of a link that went meanwhile fails the whole batch (the writer then retries
        // row by row and skips it).
        let mut orphan = status("x", MirrorState::Mirrored);
        orphan.link = "gone".into();
        assert!(upsert_many(&mut conn, &[&orphan]).await.is_err());
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn filter_paginate_and_retain(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        seed(&mut conn).await;
        for (n, st) in [
            ("a", MirrorState::Mirrored),
            ("b", MirrorState::Conflict),
            ("c", MirrorState::Mirrored),
        ] {
            upsert(&mut conn, &status(n, st)).await.unwrap();
        }
        let conflicts = MirrorFilter {
            state: Some(MirrorState::Conflict),
            ..Default::default()
        };
        assert_eq!(list(&mut conn, &conflicts, 0, 10).await.unwrap().len(), 1);
        let page1 = list(&mut conn, &MirrorFilter::default(), 0, 2)
            .await
            .unwrap();
        let page2 = list(&mut conn, &MirrorFilter::default(), page1[1].id, 2)
            .await
            .unwrap();
        assert_eq!((page1.len(), page2.len()), (2, 1));
        assert_eq!(page2[0].status.remote_name, "c");
        let removed = retain_for_link(&mut conn, "west-from-east", &[("shop".into(), "a".into())])
            .await
            .unwrap();
        assert_eq!(removed, 2);
        assert!(
            delete(&mut conn, "west-from-east", "shop", "a")
                .await
                .unwrap()
        );
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn rows_go_with_their_link(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        seed(&mut conn).await;
        upsert(&mut conn, &status("a", MirrorState::Mirrored))
            .await
            .unwrap();
        links::delete(&mut conn, "west-from-east").await.unwrap();
        assert!(
            list(&mut conn, &MirrorFilter::default(), 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
