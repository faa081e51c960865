//! Keyset windows for Relay paging in both directions (`first`/`after`, `last`/`before`).
//!
//! A [`Window`] is the rows strictly between two cursors of a list's order; the API reads the
//! first `limit` of it (forward) or the last `limit` (backward, returned in *reverse* order so
//! that a `LIMIT` does the work). The API layer applies Relay's slicing and `pageInfo` rules on
//! top (`schema/src/relay.rs`); each function here is one statement (federated services: two,
//! the second loading members) and uses the table's primary key or index order, so a page costs
//! the same at the first and the last row of a 20,000-row table.

use sqlx::PgConnection;

use crate::{
    Result, StoreError,
    audit::Entry,
    federation::{self, FederatedRow, select_services},
    mcs::{
        McsExportFilter, McsExportRow, McsImportFilter, McsImportRow, select_exports,
        select_imports,
    },
    mirrors::{MirrorFilter, MirrorRow, MirrorState, select_rows},
    topology::{ExportedService, ServiceKey},
};

/// Which rows to read: those strictly between `after` and `before` in the list's order, the
/// first `limit` of them, or with `backward` the last `limit` (nearest `before` first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window<K> {
    /// Exclusive lower cursor, in list order.
    pub after: Option<K>,
    /// Exclusive upper cursor, in list order.
    pub before: Option<K>,
    /// Read from the end of the window, in reverse list order.
    pub backward: bool,
    /// At most this many rows.
    pub limit: i64,
}

/// Runs `$read!("ASC")` forward or `$read!("DESC")` with `$window.backward`: the direction is
/// spliced into the statement as a literal, so both statements are static and checked at compile
/// time (`$read` is a local macro building the query from `+`-joined literals).
macro_rules! by_direction {
    ($window:expr, $read:ident) => {
        if $window.backward {
            $read!("DESC")
        } else {
            $read!("ASC")
        }
    };
}

/// Mirrors matching `filter` in id order, windowed.
pub async fn mirrors(
    conn: &mut PgConnection,
    filter: &MirrorFilter,
    window: &Window<i64>,
) -> Result<Vec<MirrorRow>> {
    macro_rules! read {
        ($dir:literal) => {
            select_rows!(
                "FROM mirrors
                 WHERE ($1::text IS NULL OR source_cluster = $1) AND ($2::text IS NULL OR target_cluster = $2)
                   AND ($3::text IS NULL OR remote_namespace = $3) AND ($4::text IS NULL OR state = $4)
                   AND ($5::text IS NULL OR link = $5)
                   AND ($6::bigint IS NULL OR id > $6) AND ($7::bigint IS NULL OR id < $7)
                 ORDER BY id " + $dir + " LIMIT $8",
                filter.source_cluster,
                filter.target_cluster,
                filter.namespace,
                filter.state.map(MirrorState::as_str),
                filter.link,
                window.after,
                window.before,
                window.limit,
            )
            .fetch_all(&mut *conn)
            .await
        };
    }
    let rows = by_direction!(window, read).map_err(StoreError::db("paging mirrors"))?;
    Ok(rows.into_iter().map(MirrorRow::from).collect())
}

/// Exported services (mirrors grouped by `(target_cluster, namespace, name)`) in key order,
/// windowed, each with every consumer by consumer cluster.
pub async fn services(
    conn: &mut PgConnection,
    target_cluster: Option<&str>,
    namespace: Option<&str>,
    window: &Window<ServiceKey>,
) -> Result<Vec<ExportedService>> {
    let key =
        |k: &Option<ServiceKey>, f: fn(&ServiceKey) -> &str| k.as_ref().map(f).map(String::from);
    macro_rules! read {
        ($dir:literal) => {
            select_rows!(
                "FROM mirrors JOIN (
                     SELECT DISTINCT target_cluster, remote_namespace, remote_name FROM mirrors
                     WHERE ($1::text IS NULL OR target_cluster = $1) AND ($2::text IS NULL OR remote_namespace = $2)
                       AND ($3::text IS NULL OR (target_cluster, remote_namespace, remote_name) > ($3, $4, $5))
                       AND ($6::text IS NULL OR (target_cluster, remote_namespace, remote_name) < ($6, $7, $8))
                     ORDER BY 1 " + $dir + ", 2 " + $dir + ", 3 " + $dir + " LIMIT $9
                 ) keys USING (target_cluster, remote_namespace, remote_name)
                 ORDER BY target_cluster " + $dir + ", remote_namespace " + $dir + ", remote_name " + $dir
                    + ", source_cluster, id",
                target_cluster,
                namespace,
                key(&window.after, |k| &k.target_cluster),
                key(&window.after, |k| &k.namespace),
                key(&window.after, |k| &k.name),
                key(&window.before, |k| &k.target_cluster),
                key(&window.before, |k| &k.namespace),
                key(&window.before, |k| &k.name),
                window.limit,
            )
            .fetch_all(&mut *conn)
            .await
        };
    }
    let rows = by_direction!(window, read).map_err(StoreError::db("paging exported services"))?;
    Ok(crate::topology::group_services(rows))
}

/// How many exported services there are (optionally of one target cluster and/or namespace).
pub async fn count_services(
    conn: &mut PgConnection,
    target_cluster: Option<&str>,
    namespace: Option<&str>,
) -> Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM (SELECT DISTINCT target_cluster, remote_namespace, remote_name FROM mirrors
         WHERE ($1::text IS NULL OR target_cluster = $1) AND ($2::text IS NULL OR remote_namespace = $2)) s"#,
        target_cluster,
        namespace,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::db("counting exported services"))
}

/// Federated services in id order, windowed, each with its members (two statements).
pub async fn federated(
    conn: &mut PgConnection,
    source_cluster: Option<&str>,
    namespace: Option<&str>,
    window: &Window<i64>,
) -> Result<Vec<FederatedRow>> {
    macro_rules! read {
        ($dir:literal) => {
            select_services!(
                "FROM federated_services
                 WHERE ($1::text IS NULL OR source_cluster = $1) AND ($2::text IS NULL OR namespace = $2)
                   AND ($3::bigint IS NULL OR id > $3) AND ($4::bigint IS NULL OR id < $4)
                 ORDER BY id " + $dir + " LIMIT $5",
                source_cluster,
                namespace,
                window.after,
                window.before,
                window.limit,
            )
            .fetch_all(&mut *conn)
            .await
        };
    }
    let services =
        by_direction!(window, read).map_err(StoreError::db("paging federated services"))?;
    federation::with_members(conn, services).await
}

/// How many federated services there are (optionally of one source cluster and/or namespace).
pub async fn count_federated(
    conn: &mut PgConnection,
    source_cluster: Option<&str>,
    namespace: Option<&str>,
) -> Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM federated_services
         WHERE ($1::text IS NULL OR source_cluster = $1) AND ($2::text IS NULL OR namespace = $2)"#,
        source_cluster,
        namespace,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::db("counting federated services"))
}

/// MCS exports matching `filter` in id order, windowed.
pub async fn mcs_exports(
    conn: &mut PgConnection,
    filter: &McsExportFilter,
    window: &Window<i64>,
) -> Result<Vec<McsExportRow>> {
    macro_rules! read {
        ($dir:literal) => {
            select_exports!(
                "FROM mcs_exports
                 WHERE ($1::text IS NULL OR cluster = $1) AND ($2::text IS NULL OR namespace = $2)
                   AND ($3::text IS NULL OR state = $3) AND ($4::boolean IS NULL OR conflict = $4)
                   AND ($5::bigint IS NULL OR id > $5) AND ($6::bigint IS NULL OR id < $6)
                 ORDER BY id " + $dir + " LIMIT $7",
                filter.cluster,
                filter.namespace,
                filter.state.map(|s| s.as_str()),
                filter.conflict,
                window.after,
                window.before,
                window.limit,
            )
            .fetch_all(&mut *conn)
            .await
        };
    }
    by_direction!(window, read)
        .and_then(|rows| rows.into_iter().map(|r| r.decode()).collect())
        .map_err(StoreError::db("paging MCS exports"))
}

/// How many MCS exports match `filter`.
pub async fn count_mcs_exports(conn: &mut PgConnection, filter: &McsExportFilter) -> Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM mcs_exports
         WHERE ($1::text IS NULL OR cluster = $1) AND ($2::text IS NULL OR namespace = $2)
           AND ($3::text IS NULL OR state = $3) AND ($4::boolean IS NULL OR conflict = $4)"#,
        filter.cluster,
        filter.namespace,
        filter.state.map(|s| s.as_str()),
        filter.conflict,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::db("counting MCS exports"))
}

/// MCS imports matching `filter` in id order, windowed.
pub async fn mcs_imports(
    conn: &mut PgConnection,
    filter: &McsImportFilter,
    window: &Window<i64>,
) -> Result<Vec<McsImportRow>> {
    macro_rules! read {
        ($dir:literal) => {
            select_imports!(
                "FROM mcs_imports
                 WHERE ($1::text IS NULL OR cluster = $1) AND ($2::text IS NULL OR namespace = $2)
                   AND ($3::text IS NULL OR state = $3)
                   AND ($4::bigint IS NULL OR id > $4) AND ($5::bigint IS NULL OR id < $5)
                 ORDER BY id " + $dir + " LIMIT $6",
                filter.cluster,
                filter.namespace,
                filter.state.map(|s| s.as_str()),
                window.after,
                window.before,
                window.limit,
            )
            .fetch_all(&mut *conn)
            .await
        };
    }
    by_direction!(window, read)
        .and_then(|rows| rows.into_iter().map(|r| r.decode()).collect())
        .map_err(StoreError::db("paging MCS imports"))
}

/// How many MCS imports match `filter`.
pub async fn count_mcs_imports(conn: &mut PgConnection, filter: &McsImportFilter) -> Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM mcs_imports
         WHERE ($1::text IS NULL OR cluster = $1) AND ($2::text IS NULL OR namespace = $2)
           AND ($3::text IS NULL OR state = $3)"#,
        filter.cluster,
        filter.namespace,
        filter.state.map(|s| s.as_str()),
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::db("counting MCS imports"))
}

/// The audit log, *newest first*, windowed: `after` is an id and the window holds older
/// entries (smaller ids); `before` holds newer ones.
pub async fn audit(conn: &mut PgConnection, window: &Window<i64>) -> Result<Vec<Entry>> {
    macro_rules! read {
        ($dir:literal) => {
            sqlx::query_as!(
                Entry,
                "SELECT id, at, token_id, token_name, role, mutation, arguments, result FROM audit_log
                 WHERE ($1::bigint IS NULL OR id < $1) AND ($2::bigint IS NULL OR id > $2)
                 ORDER BY id " + $dir + " LIMIT $3",
                window.after,
                window.before,
                window.limit,
            )
            .fetch_all(&mut *conn)
            .await
        };
    }
    // List order is descending id, so forward reads DESC and backward ASC.
    let entries = if window.backward {
        read!("ASC")
    } else {
        read!("DESC")
    };
    entries.map_err(StoreError::db("paging the audit log"))
}

/// One exported service with every consumer, or `None` when no mirror of it exists.
pub async fn service(conn: &mut PgConnection, key: &ServiceKey) -> Result<Option<ExportedService>> {
    let rows = select_rows!(
        "FROM mirrors
         WHERE target_cluster = $1 AND remote_namespace = $2 AND remote_name = $3
         ORDER BY source_cluster, id",
        key.target_cluster,
        key.namespace,
        key.name,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("reading an exported service"))?;
    Ok(crate::topology::group_services(rows).into_iter().next())
}

/// The window holding exactly the row with this id, if it exists.
pub fn one_id(id: i64) -> Window<i64> {
    Window {
        after: Some(id.saturating_sub(1)),
        before: Some(id.saturating_add(1)),
        backward: false,
        limit: 1,
    }
}
