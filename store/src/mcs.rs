//! The `mcs_exports` and `mcs_imports` tables: Kubernetes Multi-Cluster Services (KEP-1645)
//! state for the API. The MCS reconciler replaces one cluster's rows at a time
//! ([`replace_exports`], [`replace_imports`]); the API pages them through
//! [`crate::windows::mcs_exports`] and [`crate::windows::mcs_imports`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, types::Json};

use crate::{Result, StoreError, error::vocabulary};

pub use linkplane_core::status::{
    ConditionStatus, McsConditionType, McsExportState, McsImportState, McsImportType,
};

/// One KEP-1645 condition, spelled as on the `ServiceExport` (`metav1.Condition`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct McsCondition {
    /// `Valid`, `Ready` or `Conflict`.
    #[serde(rename = "type")]
    pub kind: McsConditionType,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// Machine-readable reason (`NoService`, `PortConflict`, …).
    #[serde(default)]
    pub reason: String,
    /// For people.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed.
    #[serde(default)]
    pub last_transition_time: Option<DateTime<Utc>>,
}

/// A `ServiceExport` as the MCS reconciler last saw and judged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McsExportStatus {
    /// The exporting cluster.
    pub cluster: String,
    /// Namespace of the ServiceExport (and of its Service).
    pub namespace: String,
    /// Its name, the exported Service's.
    pub service: String,
    /// The conditions summed up ([`linkplane_core::plan::mcs::export_state`]).
    pub state: McsExportState,
    /// `Valid`, `Ready`, `Conflict`, as written.
    pub conditions: Vec<McsCondition>,
    /// MCS links (target = `cluster`) that selected the export, sorted.
    pub links: Vec<String>,
    /// Consumers holding a ServiceImport of it, sorted.
    pub imported_by: Vec<String>,
    /// The ServiceExport's creation time (oldest wins a conflict).
    pub exported_at: Option<DateTime<Utc>>,
}

impl McsExportStatus {
    /// The condition of `kind`, if written.
    pub fn condition(&self, kind: McsConditionType) -> Option<&McsCondition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }

    /// Whether the `Conflict` condition is `True`.
    pub fn in_conflict(&self) -> bool {
        self.condition(McsConditionType::Conflict)
            .is_some_and(|c| c.status == ConditionStatus::True)
    }
}

/// A stored export.
#[derive(Debug, Clone, PartialEq)]
pub struct McsExportRow {
    /// Row id, stable for cursors.
    pub id: i64,
    /// The state.
    pub status: McsExportStatus,
    /// Last change of `state`.
    pub last_transition: DateTime<Utc>,
}

/// A port of a `ServiceImport`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McsPort {
    /// Port name, when the Service named it.
    #[serde(default)]
    pub name: Option<String>,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// Port number.
    pub port: i32,
}

/// A `ServiceImport` the MCS reconciler wrote into a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McsImportStatus {
    /// The consumer cluster.
    pub cluster: String,
    /// Namespace (the exports').
    pub namespace: String,
    /// Name (the exported Services').
    pub service: String,
    /// `ClusterSetIP` or `Headless`.
    pub ty: McsImportType,
    /// Ports as written.
    pub ports: Vec<McsPort>,
    /// `ClientIP` or `None`.
    pub session_affinity: String,
    /// Exporting clusters, sorted.
    pub source_clusters: Vec<String>,
    /// EndpointSlices written for it.
    pub endpoint_slices: i32,
    /// Ready endpoints over those slices.
    pub ready_endpoints: i32,
    /// State.
    pub state: McsImportState,
    /// Why, for `Conflict` and `Error`.
    pub message: String,
}

/// A stored import.
#[derive(Debug, Clone, PartialEq)]
pub struct McsImportRow {
    /// Row id, stable for cursors.
    pub id: i64,
    /// The state.
    pub status: McsImportStatus,
    /// Last change of `state`.
    pub last_transition: DateTime<Utc>,
}

/// Which exports to list; `None` fields match all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct McsExportFilter {
    /// Exporting cluster.
    pub cluster: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// State.
    pub state: Option<McsExportState>,
    /// Only exports whose `Conflict` condition is (or is not) `True`.
    pub conflict: Option<bool>,
}

/// Which imports to list; `None` fields match all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct McsImportFilter {
    /// Consumer cluster.
    pub cluster: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// State.
    pub state: Option<McsImportState>,
}

/// An `mcs_exports` row as [`select_exports!`] selects it.
pub(crate) struct ExportRow {
    pub(crate) id: i64,
    pub(crate) cluster: String,
    pub(crate) namespace: String,
    pub(crate) service: String,
    pub(crate) state: String,
    pub(crate) conditions: Json<Vec<McsCondition>>,
    pub(crate) links: Vec<String>,
    pub(crate) imported_by: Vec<String>,
    pub(crate) exported_at: Option<DateTime<Utc>>,
    pub(crate) last_transition: DateTime<Utc>,
}

/// A checked `query_as!` of [`ExportRow`]s: their select list followed by the statement's rest
/// (`FROM mcs_exports …`) as `+`-joined string literals, then the arguments (as
/// `mirrors::select_rows!`).
macro_rules! select_exports {
    ($rest:expr $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            $crate::mcs::ExportRow,
            r#"SELECT id, cluster, namespace, service, state,
                      conditions AS "conditions: sqlx::types::Json<Vec<crate::mcs::McsCondition>>",
                      links, imported_by, exported_at, last_transition "#
                + $rest
            $(, $arg)*
        )
    };
}
pub(crate) use select_exports;

impl ExportRow {
    /// The stored export; a state outside its set fails as that column's decode error.
    pub(crate) fn decode(self) -> std::result::Result<McsExportRow, sqlx::Error> {
        Ok(McsExportRow {
            id: self.id,
            last_transition: self.last_transition,
            status: McsExportStatus {
                cluster: self.cluster,
                namespace: self.namespace,
                service: self.service,
                state: vocabulary("state", &self.state)?,
                conditions: self.conditions.0,
                links: self.links,
                imported_by: self.imported_by,
                exported_at: self.exported_at,
            },
        })
    }
}

/// An `mcs_imports` row as [`select_imports!`] selects it.
pub(crate) struct ImportRow {
    pub(crate) id: i64,
    pub(crate) cluster: String,
    pub(crate) namespace: String,
    pub(crate) service: String,
    pub(crate) ty: String,
    pub(crate) ports: Json<Vec<McsPort>>,
    pub(crate) session_affinity: String,
    pub(crate) source_clusters: Vec<String>,
    pub(crate) endpoint_slices: i32,
    pub(crate) ready_endpoints: i32,
    pub(crate) state: String,
    pub(crate) message: String,
    pub(crate) last_transition: DateTime<Utc>,
}

/// A checked `query_as!` of [`ImportRow`]s (as [`select_exports!`]).
macro_rules! select_imports {
    ($rest:expr $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            $crate::mcs::ImportRow,
            r#"SELECT id, cluster, namespace, service, type AS ty,
                      ports AS "ports: sqlx::types::Json<Vec<crate::mcs::McsPort>>",
                      session_affinity, source_clusters, endpoint_slices, ready_endpoints, state,
                      message, last_transition "#
                + $rest
            $(, $arg)*
        )
    };
}
pub(crate) use select_imports;

impl ImportRow {
    /// The stored import; a type or state outside its set fails as that column's decode error.
    pub(crate) fn decode(self) -> std::result::Result<McsImportRow, sqlx::Error> {
        Ok(McsImportRow {
            id: self.id,
            last_transition: self.last_transition,
            status: McsImportStatus {
                cluster: self.cluster,
                namespace: self.namespace,
                service: self.service,
                ty: vocabulary("type", &self.ty)?,
                ports: self.ports.0,
                session_affinity: self.session_affinity,
                source_clusters: self.source_clusters,
                endpoint_slices: self.endpoint_slices,
                ready_endpoints: self.ready_endpoints,
                state: vocabulary("state", &self.state)?,
                message: self.message,
            },
        })
    }
}

/// Makes `exports` the whole set of `cluster`'s export rows: others of the cluster are deleted,
/// these upserted (`last_transition` moves only when the state changes). Run it in a
/// transaction to make the swap atomic.
pub async fn replace_exports(
    conn: &mut PgConnection,
    cluster: &str,
    exports: &[McsExportStatus],
) -> Result<()> {
    let namespaces: Vec<&str> = exports.iter().map(|e| e.namespace.as_str()).collect();
    let services: Vec<&str> = exports.iter().map(|e| e.service.as_str()).collect();
    sqlx::query!(
        "DELETE FROM mcs_exports WHERE cluster = $1 AND (namespace, service) NOT IN
             (SELECT * FROM UNNEST($2::text[], $3::text[]))",
        cluster,
        &namespaces as &[&str],
        &services as &[&str],
    )
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("replacing MCS export states"))?;
    for e in exports {
        sqlx::query!(
            "INSERT INTO mcs_exports (cluster, namespace, service, state, conflict, conditions, links,
                                      imported_by, exported_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (cluster, namespace, service) DO UPDATE SET
                 state = EXCLUDED.state, conflict = EXCLUDED.conflict, conditions = EXCLUDED.conditions,
                 links = EXCLUDED.links, imported_by = EXCLUDED.imported_by,
                 exported_at = EXCLUDED.exported_at, updated_at = now(),
                 last_transition = CASE WHEN mcs_exports.state = EXCLUDED.state
                                        THEN mcs_exports.last_transition ELSE now() END",
            e.cluster,
            e.namespace,
            e.service,
            e.state.as_str(),
            e.in_conflict(),
            Json(&e.conditions) as _,
            &e.links as &[String],
            &e.imported_by as &[String],
            e.exported_at,
        )
        .execute(&mut *conn)
        .await
        .map_err(|err| {
            StoreError::from_sqlx("ServiceExport", &e.service, "recording MCS export state", err)
        })?;
    }
    Ok(())
}

/// Makes `imports` the whole set of `cluster`'s import rows (as [`replace_exports`]).
pub async fn replace_imports(
    conn: &mut PgConnection,
    cluster: &str,
    imports: &[McsImportStatus],
) -> Result<()> {
    let namespaces: Vec<&str> = imports.iter().map(|i| i.namespace.as_str()).collect();
    let services: Vec<&str> = imports.iter().map(|i| i.service.as_str()).collect();
    sqlx::query!(
        "DELETE FROM mcs_imports WHERE cluster = $1 AND (namespace, service) NOT IN
             (SELECT * FROM UNNEST($2::text[], $3::text[]))",
        cluster,
        &namespaces as &[&str],
        &services as &[&str],
    )
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("replacing MCS import states"))?;
    for i in imports {
        sqlx::query!(
            "INSERT INTO mcs_imports (cluster, namespace, service, type, ports, session_affinity,
                                      source_clusters, endpoint_slices, ready_endpoints, state, message)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (cluster, namespace, service) DO UPDATE SET
                 type = EXCLUDED.type, ports = EXCLUDED.ports,
                 session_affinity = EXCLUDED.session_affinity,
                 source_clusters = EXCLUDED.source_clusters,
                 endpoint_slices = EXCLUDED.endpoint_slices,
                 ready_endpoints = EXCLUDED.ready_endpoints, state = EXCLUDED.state,
                 message = EXCLUDED.message, updated_at = now(),
                 last_transition = CASE WHEN mcs_imports.state = EXCLUDED.state
                                        THEN mcs_imports.last_transition ELSE now() END",
            i.cluster,
            i.namespace,
            i.service,
            i.ty.as_str(),
            Json(&i.ports) as _,
            i.session_affinity,
            &i.source_clusters as &[String],
            i.endpoint_slices,
            i.ready_endpoints,
            i.state.as_str(),
            i.message,
        )
        .execute(&mut *conn)
        .await
        .map_err(|err| {
            StoreError::from_sqlx("ServiceImport", &i.service, "recording MCS import state", err)
        })?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Owner, clusters, test_support::cluster, windows};

    fn cond(kind: McsConditionType, status: ConditionStatus, reason: &str) -> McsCondition {
        McsCondition {
            kind,
            status,
            reason: reason.into(),
            message: String::new(),
            last_transition_time: None,
        }
    }

    fn export(service: &str, state: McsExportState, conflict: bool) -> McsExportStatus {
        let c = if conflict {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        };
        McsExportStatus {
            cluster: "east".into(),
            namespace: "demo".into(),
            service: service.into(),
            state,
            conditions: vec![
                cond(McsConditionType::Valid, ConditionStatus::True, "Valid"),
                cond(McsConditionType::Ready, ConditionStatus::True, "Ready"),
                cond(McsConditionType::Conflict, c, "PortConflict"),
            ],
            links: vec!["west-from-east".into()],
            imported_by: vec!["west".into()],
            exported_at: None,
        }
    }

    fn import(service: &str) -> McsImportStatus {
        McsImportStatus {
            cluster: "west".into(),
            namespace: "demo".into(),
            service: service.into(),
            ty: McsImportType::ClusterSetIp,
            ports: vec![McsPort {
                name: Some("http".into()),
                protocol: "TCP".into(),
                port: 8080,
            }],
            session_affinity: "None".into(),
            source_clusters: vec!["east".into(), "north".into()],
            endpoint_slices: 2,
            ready_endpoints: 3,
            state: McsImportState::Imported,
            message: String::new(),
        }
    }

    /// A cluster's rows are its last reported set: a replace drops what it no longer lists,
    /// keeps other clusters' rows, and a conflict is found by the `conflict` filter.
    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn replacing_a_clusters_exports_drops_the_rest_and_finds_conflicts(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        for c in ["east", "north", "west"] {
            clusters::upsert(&mut conn, &cluster(c), &Owner::Api)
                .await
                .unwrap();
        }
        let mut north = export("cart", McsExportState::Exported, false);
        north.cluster = "north".into();
        replace_exports(&mut conn, "north", &[north]).await.unwrap();
        replace_exports(
            &mut conn,
            "east",
            &[
                export("cart", McsExportState::Conflict, true),
                export("api", McsExportState::Exported, false),
            ],
        )
        .await
        .unwrap();
        replace_exports(
            &mut conn,
            "east",
            &[export("cart", McsExportState::Conflict, true)],
        )
        .await
        .unwrap();
        let all = windows::mcs_exports(
            &mut conn,
            &McsExportFilter::default(),
            &windows::Window {
                after: None,
                before: None,
                backward: false,
                limit: 10,
            },
        )
        .await
        .unwrap();
        let names: Vec<(&str, &str)> = all
            .iter()
            .map(|r| (r.status.cluster.as_str(), r.status.service.as_str()))
            .collect();
        assert_eq!(names, vec![("north", "cart"), ("east", "cart")]);
        let conflicts = McsExportFilter {
            conflict: Some(true),
            ..Default::default()
        };
        let got = windows::mcs_exports(
            &mut conn,
            &conflicts,
            &windows::Window {
                after: None,
                before: None,
                backward: false,
                limit: 10,
            },
        )
        .await
        .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].status,
            export("cart", McsExportState::Conflict, true)
        );
        assert_eq!(
            windows::count_mcs_exports(&mut conn, &conflicts)
                .await
                .unwrap(),
            1
        );
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn imports_round_trip_and_are_replaced_per_consumer(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        clusters::upsert(&mut conn, &cluster("west"), &Owner::Api)
            .await
            .unwrap();
        replace_imports(&mut conn, "west", &[import("cart"), import("db")])
            .await
            .unwrap();
        let mut db = import("db");
        db.ty = McsImportType::Headless;
        db.state = McsImportState::Conflict;
        db.message = "ports differ".into();
        replace_imports(&mut conn, "west", std::slice::from_ref(&db))
            .await
            .unwrap();
        let window = windows::Window {
            after: None,
            before: None,
            backward: false,
            limit: 10,
        };
        let rows = windows::mcs_imports(&mut conn, &McsImportFilter::default(), &window)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, db);
        let imported = McsImportFilter {
            state: Some(McsImportState::Imported),
            ..Default::default()
        };
        assert!(
            windows::mcs_imports(&mut conn, &imported, &window)
                .await
                .unwrap()
                .is_empty()
        );
        // A removed cluster takes its rows with it.
        clusters::delete(&mut conn, "west").await.unwrap();
        assert_eq!(
            windows::count_mcs_imports(&mut conn, &McsImportFilter::default())
                .await
                .unwrap(),
            0
        );
    }
}
