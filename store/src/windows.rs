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
    federation::{self, FederatedRow, ServiceRow},
    mcs::{self, McsExportFilter, McsExportRow, McsImportFilter, McsImportRow},
    mirrors::{self, MirrorFilter, MirrorRow, MirrorState},
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

impl<K> Window<K> {
    /// `ASC`/`DESC` for a list ordered ascending by its key.
    fn direction(&self) -> &'static str {
        if self.backward { "DESC" } else { "ASC" }
    }
}

/// Mirrors matching `filter` in id order, windowed.
pub async fn mirrors(
    conn: &mut PgConnection,
    filter: &MirrorFilter,
    window: &Window<i64>,
) -> Result<Vec<MirrorRow>> {
    // The direction is one of two constants, never input.
    let sql = format!(
        "SELECT {columns} FROM mirrors
         WHERE ($1::text IS NULL OR source_cluster = $1) AND ($2::text IS NULL OR target_cluster = $2)
           AND ($3::text IS NULL OR remote_namespace = $3) AND ($4::text IS NULL OR state = $4)
           AND ($5::text IS NULL OR link = $5)
           AND ($6::bigint IS NULL OR id > $6) AND ($7::bigint IS NULL OR id < $7)
         ORDER BY id {dir} LIMIT $8",
        columns = mirrors::COLUMNS,
        dir = window.direction(),
    );
    let rows: Vec<mirrors::Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&filter.source_cluster)
        .bind(&filter.target_cluster)
        .bind(&filter.namespace)
        .bind(filter.state.map(MirrorState::as_str))
        .bind(&filter.link)
        .bind(window.after)
        .bind(window.before)
        .bind(window.limit)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db("paging mirrors"))?;
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
    let dir = window.direction();
    let sql = format!(
        "WITH keys AS (
             SELECT DISTINCT target_cluster, remote_namespace, remote_name FROM mirrors
             WHERE ($1::text IS NULL OR target_cluster = $1) AND ($2::text IS NULL OR remote_namespace = $2)
               AND ($3::text IS NULL OR (target_cluster, remote_namespace, remote_name) > ($3, $4, $5))
               AND ($6::text IS NULL OR (target_cluster, remote_namespace, remote_name) < ($6, $7, $8))
             ORDER BY 1 {dir}, 2 {dir}, 3 {dir} LIMIT $9)
         SELECT {columns} FROM mirrors JOIN keys USING (target_cluster, remote_namespace, remote_name)
         ORDER BY target_cluster {dir}, remote_namespace {dir}, remote_name {dir}, source_cluster, id",
        columns = mirrors::COLUMNS,
    );
    let key =
        |k: &Option<ServiceKey>, f: fn(&ServiceKey) -> &str| k.as_ref().map(f).map(String::from);
    let rows: Vec<mirrors::Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(target_cluster)
        .bind(namespace)
        .bind(key(&window.after, |k| &k.target_cluster))
        .bind(key(&window.after, |k| &k.namespace))
        .bind(key(&window.after, |k| &k.name))
        .bind(key(&window.before, |k| &k.target_cluster))
        .bind(key(&window.before, |k| &k.namespace))
        .bind(key(&window.before, |k| &k.name))
        .bind(window.limit)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db("paging exported services"))?;
    Ok(crate::topology::group_services(rows))
}

/// How many exported services there are (optionally of one target cluster and/or namespace).
pub async fn count_services(
    conn: &mut PgConnection,
    target_cluster: Option<&str>,
    namespace: Option<&str>,
) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT DISTINCT target_cluster, remote_namespace, remote_name FROM mirrors
         WHERE ($1::text IS NULL OR target_cluster = $1) AND ($2::text IS NULL OR remote_namespace = $2)) s",
    )
    .bind(target_cluster)
    .bind(namespace)
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
    let sql = format!(
        "SELECT {columns} FROM federated_services
         WHERE ($1::text IS NULL OR source_cluster = $1) AND ($2::text IS NULL OR namespace = $2)
           AND ($3::bigint IS NULL OR id > $3) AND ($4::bigint IS NULL OR id < $4)
         ORDER BY id {dir} LIMIT $5",
        columns = federation::SERVICE_COLUMNS,
        dir = window.direction(),
    );
    let services: Vec<ServiceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(source_cluster)
        .bind(namespace)
        .bind(window.after)
        .bind(window.before)
        .bind(window.limit)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db("paging federated services"))?;
    federation::with_members(conn, services).await
}

/// How many federated services there are (optionally of one source cluster and/or namespace).
pub async fn count_federated(
    conn: &mut PgConnection,
    source_cluster: Option<&str>,
    namespace: Option<&str>,
) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM federated_services
         WHERE ($1::text IS NULL OR source_cluster = $1) AND ($2::text IS NULL OR namespace = $2)",
    )
    .bind(source_cluster)
    .bind(namespace)
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
    let sql = format!(
        "SELECT {columns} FROM mcs_exports
         WHERE ($1::text IS NULL OR cluster = $1) AND ($2::text IS NULL OR namespace = $2)
           AND ($3::text IS NULL OR state = $3) AND ($4::boolean IS NULL OR conflict = $4)
           AND ($5::bigint IS NULL OR id > $5) AND ($6::bigint IS NULL OR id < $6)
         ORDER BY id {dir} LIMIT $7",
        columns = mcs::EXPORT_COLUMNS,
        dir = window.direction(),
    );
    let rows: Vec<mcs::ExportRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&filter.cluster)
        .bind(&filter.namespace)
        .bind(filter.state.map(|s| s.as_str()))
        .bind(filter.conflict)
        .bind(window.after)
        .bind(window.before)
        .bind(window.limit)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db("paging MCS exports"))?;
    Ok(rows.into_iter().map(McsExportRow::from).collect())
}

/// How many MCS exports match `filter`.
pub async fn count_mcs_exports(conn: &mut PgConnection, filter: &McsExportFilter) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM mcs_exports
         WHERE ($1::text IS NULL OR cluster = $1) AND ($2::text IS NULL OR namespace = $2)
           AND ($3::text IS NULL OR state = $3) AND ($4::boolean IS NULL OR conflict = $4)",
    )
    .bind(&filter.cluster)
    .bind(&filter.namespace)
    .bind(filter.state.map(|s| s.as_str()))
    .bind(filter.conflict)
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
    let sql = format!(
        "SELECT {columns} FROM mcs_imports
         WHERE ($1::text IS NULL OR cluster = $1) AND ($2::text IS NULL OR namespace = $2)
           AND ($3::text IS NULL OR state = $3)
           AND ($4::bigint IS NULL OR id > $4) AND ($5::bigint IS NULL OR id < $5)
         ORDER BY id {dir} LIMIT $6",
        columns = mcs::IMPORT_COLUMNS,
        dir = window.direction(),
    );
    let rows: Vec<mcs::ImportRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&filter.cluster)
        .bind(&filter.namespace)
        .bind(filter.state.map(|s| s.as_str()))
        .bind(window.after)
        .bind(window.before)
        .bind(window.limit)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db("paging MCS imports"))?;
    Ok(rows.into_iter().map(McsImportRow::from).collect())
}

/// How many MCS imports match `filter`.
pub async fn count_mcs_imports(conn: &mut PgConnection, filter: &McsImportFilter) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM mcs_imports
         WHERE ($1::text IS NULL OR cluster = $1) AND ($2::text IS NULL OR namespace = $2)
           AND ($3::text IS NULL OR state = $3)",
    )
    .bind(&filter.cluster)
    .bind(&filter.namespace)
    .bind(filter.state.map(|s| s.as_str()))
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::db("counting MCS imports"))
}

/// The audit log, *newest first*, windowed: `after` is an id and the window holds older
/// entries (smaller ids); `before` holds newer ones.
pub async fn audit(conn: &mut PgConnection, window: &Window<i64>) -> Result<Vec<Entry>> {
    // List order is descending id, so forward reads DESC and backward ASC.
    let dir = if window.backward { "ASC" } else { "DESC" };
    let sql = format!(
        "SELECT id, at, token_id, token_name, role, mutation, arguments, result FROM audit_log
         WHERE ($1::bigint IS NULL OR id < $1) AND ($2::bigint IS NULL OR id > $2)
         ORDER BY id {dir} LIMIT $3"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(window.after)
        .bind(window.before)
        .bind(window.limit)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db("paging the audit log"))
}

/// One exported service with every consumer, or `None` when no mirror of it exists.
pub async fn service(conn: &mut PgConnection, key: &ServiceKey) -> Result<Option<ExportedService>> {
    let sql = format!(
        "SELECT {columns} FROM mirrors
         WHERE target_cluster = $1 AND remote_namespace = $2 AND remote_name = $3
         ORDER BY source_cluster, id",
        columns = mirrors::COLUMNS,
    );
    let rows: Vec<mirrors::Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&key.target_cluster)
        .bind(&key.namespace)
        .bind(&key.name)
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
