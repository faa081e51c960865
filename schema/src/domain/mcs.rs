//! Kubernetes Multi-Cluster Services (KEP-1645): the `ServiceExport`s linkplane judges, with
//! the conditions it wrote, and the `ServiceImport`s it wrote into consumers. Read from the
//! `mcs_exports` / `mcs_imports` rows the MCS reconciler of each cluster's lease holder
//! records, so every replica answers the same.

use async_graphql::{Context, Enum, Object, SimpleObject, connection::Connection};
use chrono::{DateTime, Utc};
use linkplane_store::{
    mcs::{McsExportFilter, McsExportRow, McsImportFilter, McsImportRow},
    windows,
};

use crate::{
    common::{db, with_fields},
    db::one,
    error::ApiResult,
    relay::{self, Paging},
};

/// One word for an export's three conditions; first that applies: `INVALID`, `CONFLICT`,
/// `EXPORTED`, `PENDING`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "linkplane_core::status::McsExportState")]
pub enum McsExportState {
    /// `Valid`, `Ready`, no conflict.
    Exported,
    /// `Conflict=True`: imported with the oldest export's type and ports.
    Conflict,
    /// Valid, not imported into every MCS consumer (or into none); see the `Ready` condition.
    Pending,
    /// `Valid=False`: no Service of that name, or one that cannot be exported.
    Invalid,
}

/// A ServiceImport's state in its consumer.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "linkplane_core::status::McsImportState")]
pub enum McsImportState {
    /// Written and current.
    Imported,
    /// Written, but the exports disagree on type or ports; see `message`.
    Conflict,
    /// A write failed; see `message`.
    Error,
}

/// `ServiceImport.spec.type`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "linkplane_core::status::McsImportType")]
pub enum McsImportType {
    /// A cluster-set virtual IP (`ClusterSetIP`).
    #[graphql(name = "CLUSTER_SET_IP")]
    ClusterSetIp,
    /// No virtual IP: DNS answers with the endpoints.
    Headless,
}

/// A KEP-1645 ServiceExport condition type.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "linkplane_core::status::McsConditionType")]
pub enum McsConditionType {
    /// The Service exists and may be exported.
    Valid,
    /// Imported into every MCS consumer linked to the exporting cluster.
    Ready,
    /// Another cluster's export of the service disagrees.
    Conflict,
}

/// A Kubernetes condition status.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "linkplane_core::status::ConditionStatus")]
pub enum ConditionStatus {
    /// Holds.
    True,
    /// Does not hold.
    False,
    /// Not known yet.
    Unknown,
}

/// One condition as written to the ServiceExport's status.
#[derive(SimpleObject, Debug, Clone)]
pub struct McsCondition {
    /// `VALID`, `READY` or `CONFLICT`.
    #[graphql(name = "type")]
    pub kind: McsConditionType,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// Machine-readable reason (`NoService`, `PortConflict`, `TypeConflict`, …).
    pub reason: String,
    /// For people.
    pub message: String,
    /// When `status` last changed.
    pub last_transition_time: Option<DateTime<Utc>>,
}

/// A `ServiceExport` in a cluster some MCS link targets.
#[derive(Clone)]
pub struct McsExport(pub McsExportRow);

#[Object]
impl McsExport {
    /// Row id (also the cursor).
    async fn id(&self) -> async_graphql::ID {
        async_graphql::ID(self.0.id.to_string())
    }
    /// The exporting cluster.
    async fn cluster(&self) -> &str {
        &self.0.status.cluster
    }
    /// Namespace.
    async fn namespace(&self) -> &str {
        &self.0.status.namespace
    }
    /// The exported Service's name.
    async fn service(&self) -> &str {
        &self.0.status.service
    }
    /// The conditions summed up.
    async fn state(&self) -> McsExportState {
        self.0.status.state.into()
    }
    /// Whether the `Conflict` condition holds (whatever `state` says).
    async fn conflict(&self) -> bool {
        self.0.status.in_conflict()
    }
    /// `Valid`, `Ready` and `Conflict`, as written to the ServiceExport.
    async fn conditions(&self) -> Vec<McsCondition> {
        self.0
            .status
            .conditions
            .iter()
            .map(|c| McsCondition {
                kind: c.kind.into(),
                status: c.status.into(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_transition_time: c.last_transition_time,
            })
            .collect()
    }
    /// MCS links from this cluster whose planner selected the export (names, sorted).
    async fn links(&self) -> &[String] {
        &self.0.status.links
    }
    /// Consumer clusters holding a ServiceImport of it (sorted).
    async fn imported_by(&self) -> &[String] {
        &self.0.status.imported_by
    }
    /// The ServiceExport's creation time: the oldest export wins a conflict.
    async fn exported_at(&self) -> Option<DateTime<Utc>> {
        self.0.status.exported_at
    }
    /// Last change of `state`.
    async fn last_transition(&self) -> DateTime<Utc> {
        self.0.last_transition
    }
}

/// A port of a ServiceImport.
#[derive(SimpleObject, Debug, Clone)]
pub struct McsImportPort {
    /// Name, when the Services named it.
    pub name: Option<String>,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// Port number.
    pub port: i32,
}

/// A `ServiceImport` linkplane wrote into a consumer cluster: one per namespace/name over
/// every exporting cluster.
#[derive(Clone)]
pub struct McsImport(pub McsImportRow);

#[Object]
impl McsImport {
    /// Row id (also the cursor).
    async fn id(&self) -> async_graphql::ID {
        async_graphql::ID(self.0.id.to_string())
    }
    /// The consumer cluster.
    async fn cluster(&self) -> &str {
        &self.0.status.cluster
    }
    /// Namespace.
    async fn namespace(&self) -> &str {
        &self.0.status.namespace
    }
    /// The service's name.
    async fn service(&self) -> &str {
        &self.0.status.service
    }
    /// `CLUSTER_SET_IP` or `HEADLESS` (the oldest export's).
    #[graphql(name = "type")]
    async fn ty(&self) -> McsImportType {
        self.0.status.ty.into()
    }
    /// Ports as written.
    async fn ports(&self) -> Vec<McsImportPort> {
        self.0
            .status
            .ports
            .iter()
            .map(|p| McsImportPort {
                name: p.name.clone(),
                protocol: p.protocol.clone(),
                port: p.port,
            })
            .collect()
    }
    /// `ClientIP` or `None`.
    async fn session_affinity(&self) -> &str {
        &self.0.status.session_affinity
    }
    /// The exporting clusters (sorted).
    async fn source_clusters(&self) -> &[String] {
        &self.0.status.source_clusters
    }
    /// EndpointSlices written for it.
    async fn endpoint_slices(&self) -> i32 {
        self.0.status.endpoint_slices
    }
    /// Ready endpoints over those slices.
    async fn ready_endpoints(&self) -> i32 {
        self.0.status.ready_endpoints
    }
    /// State.
    async fn state(&self) -> McsImportState {
        self.0.status.state.into()
    }
    /// Why, for `CONFLICT` and `ERROR`.
    async fn message(&self) -> &str {
        &self.0.status.message
    }
    /// Last change of `state`.
    async fn last_transition(&self) -> DateTime<Utc> {
        self.0.last_transition
    }
}

/// `totalCount` of a page of exports.
pub struct McsExportTotal(McsExportFilter);

#[Object]
impl McsExportTotal {
    /// How many exports match, over every page (one `count(*)` when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        one!(db(ctx)?, |c| windows::count_mcs_exports(c, &self.0))
    }
}

/// `totalCount` of a page of imports.
pub struct McsImportTotal(McsImportFilter);

#[Object]
impl McsImportTotal {
    /// How many imports match, over every page (one `count(*)` when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        one!(db(ctx)?, |c| windows::count_mcs_imports(c, &self.0))
    }
}

/// MCS queries.
#[derive(Default)]
pub struct McsQuery;

#[Object]
impl McsQuery {
    /// ServiceExports, optionally of one cluster, namespace, state, or only those in conflict
    /// (`conflict: true`), ordered by id (`first`/`after` forward, `last`/`before` backward).
    #[graphql(complexity = "relay::complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn mcs_exports(
        &self,
        ctx: &Context<'_>,
        cluster: Option<String>,
        namespace: Option<String>,
        state: Option<McsExportState>,
        conflict: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Connection<String, McsExport, McsExportTotal>> {
        let paging = Paging::new(
            first,
            after.as_deref(),
            last,
            before.as_deref(),
            relay::id_cursor,
        )?;
        let filter = McsExportFilter {
            cluster,
            namespace,
            state: state.map(Into::into),
            conflict,
        };
        let window = paging.window();
        let rows = one!(db(ctx)?, |c| windows::mcs_exports(c, &filter, &window))?;
        let page = paging.connection(rows.into_iter().map(McsExport).collect(), |e| {
            e.0.id.to_string()
        });
        Ok(with_fields(page, McsExportTotal(filter)))
    }

    /// ServiceImports written into consumers, optionally of one consumer cluster, namespace
    /// or state, ordered by id (`first`/`after` forward, `last`/`before` backward).
    #[graphql(complexity = "relay::complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn mcs_imports(
        &self,
        ctx: &Context<'_>,
        cluster: Option<String>,
        namespace: Option<String>,
        state: Option<McsImportState>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Connection<String, McsImport, McsImportTotal>> {
        let paging = Paging::new(
            first,
            after.as_deref(),
            last,
            before.as_deref(),
            relay::id_cursor,
        )?;
        let filter = McsImportFilter {
            cluster,
            namespace,
            state: state.map(Into::into),
        };
        let window = paging.window();
        let rows = one!(db(ctx)?, |c| windows::mcs_imports(c, &filter, &window))?;
        let page = paging.connection(rows.into_iter().map(McsImport).collect(), |i| {
            i.0.id.to_string()
        });
        Ok(with_fields(page, McsImportTotal(filter)))
    }
}
