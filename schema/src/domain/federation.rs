//! Federated services (`<svc>-federated`) with their members and conflicts.

use async_graphql::{Context, Enum, Object, SimpleObject, connection::Connection};
use chrono::{DateTime, Utc};
use linkplane_store::{
    federation::{FederatedRow, FederatedState, MemberState},
    windows,
};

use crate::{
    common::{db, with_fields},
    db::one,
    error::{ApiError, ApiResult},
    relay::{self, Paging},
};

/// A federated service's state.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "linkplane_core::status::FederatedState")]
pub enum FederationState {
    /// Written and current.
    Federated,
    /// Blocked by a user-owned Service, or members disagree on ports.
    Conflict,
    /// The namespace does not exist in the source cluster.
    MissingNamespace,
    /// No member may join (e.g. every candidate is headless); see `message`.
    Rejected,
    /// Writing failed.
    Error,
}

/// A member's state.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "linkplane_core::status::MemberState")]
pub enum MemberStatus {
    /// Serving endpoints through the federated service.
    Member,
    /// Not allowed to join (e.g. headless); see `message`.
    Rejected,
    /// Its cluster is down; still listed.
    Unreachable,
}

/// One member of a federated service.
#[derive(SimpleObject, Debug, Clone)]
pub struct FederatedMember {
    /// Member cluster.
    pub cluster: String,
    /// Whether it is the source cluster's own service.
    pub is_local: bool,
    /// State.
    pub state: MemberStatus,
    /// Detail.
    pub message: String,
    /// The member Service's creation time (oldest wins metadata conflicts).
    pub member_since: Option<DateTime<Utc>>,
}

/// A `<svc>-federated` Service in one source cluster.
#[derive(Clone)]
pub struct FederatedService(pub FederatedRow);

#[Object]
impl FederatedService {
    /// Row id (also the cursor). Kept for compatibility: it is not a global id (a mirror may
    /// have the same number); use `globalId` with `node(id:)`.
    pub(crate) async fn id(&self) -> async_graphql::ID {
        async_graphql::ID(self.0.id.to_string())
    }
    /// Global id (`FederatedService:<row id>`), for `node(id:)`.
    async fn global_id(&self) -> async_graphql::ID {
        crate::domain::node::global_id("FederatedService", &self.0.id.to_string())
    }
    /// Cluster holding the federated Service.
    async fn source_cluster(&self) -> &str {
        &self.0.status.source_cluster
    }
    /// Namespace.
    async fn namespace(&self) -> &str {
        &self.0.status.namespace
    }
    /// Base service name shared by the members.
    async fn service(&self) -> &str {
        &self.0.status.service
    }
    /// The federated Service's name.
    async fn local_name(&self) -> &str {
        &self.0.status.local_name
    }
    /// State.
    async fn state(&self) -> FederationState {
        match self.0.status.state {
            FederatedState::Federated => FederationState::Federated,
            FederatedState::Conflict => FederationState::Conflict,
            FederatedState::MissingNamespace => FederationState::MissingNamespace,
            FederatedState::Rejected => FederationState::Rejected,
            FederatedState::Error => FederationState::Error,
        }
    }
    /// Detail.
    async fn message(&self) -> &str {
        &self.0.status.message
    }
    /// The `multicluster.linkerd.io/remote-discovery` annotation as written.
    async fn remote_discovery(&self) -> &str {
        &self.0.status.remote_discovery
    }
    /// Whether the local service is a member (`local-discovery`).
    async fn local_discovery(&self) -> bool {
        self.0.status.local_discovery
    }
    /// Last change of state.
    async fn last_transition(&self) -> DateTime<Utc> {
        self.0.last_transition
    }
    /// Members in annotation order.
    async fn members(&self) -> Vec<FederatedMember> {
        self.0
            .status
            .members
            .iter()
            .map(|m| FederatedMember {
                cluster: m.cluster.clone(),
                is_local: m.is_local,
                state: match m.state {
                    MemberState::Member => MemberStatus::Member,
                    MemberState::Rejected => MemberStatus::Rejected,
                    MemberState::Unreachable => MemberStatus::Unreachable,
                },
                message: m.message.clone(),
                member_since: m.member_since,
            })
            .collect()
    }
    /// Every conflict: the service's own (when `CONFLICT`) and each rejected member's reason.
    async fn conflicts(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.0.status.state == FederatedState::Conflict {
            out.push(self.0.status.message.clone());
        }
        out.extend(
            self.0
                .status
                .members
                .iter()
                .filter(|m| m.state == MemberState::Rejected)
                .map(|m| format!("{}: {}", m.cluster, m.message)),
        );
        out
    }
}

/// `totalCount` of a page of federated services.
pub struct FederatedTotal {
    cluster: Option<String>,
    namespace: Option<String>,
}

#[Object]
impl FederatedTotal {
    /// How many federated services match, over every page (one `count(*)` when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        one!(db(ctx)?, |c| windows::count_federated(
            c,
            self.cluster.as_deref(),
            self.namespace.as_deref()
        ))
    }
}

/// Federation queries.
#[derive(Default)]
pub struct FederationQuery;

#[Object]
impl FederationQuery {
    /// Federated services, optionally of one source cluster and namespace, ordered by id
    /// (`first`/`after` forward, `last`/`before` backward).
    #[graphql(complexity = "relay::complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn federated_services(
        &self,
        ctx: &Context<'_>,
        cluster: Option<String>,
        namespace: Option<String>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Connection<String, FederatedService, FederatedTotal>> {
        let paging = Paging::new(
            first,
            after.as_deref(),
            last,
            before.as_deref(),
            relay::id_cursor,
        )?;
        let window = paging.window();
        // windows::federated runs two statements (services, then their members).
        let mut conn = db(ctx)?.conn(2).await?;
        let rows = windows::federated(&mut conn, cluster.as_deref(), namespace.as_deref(), &window)
            .await
            .map_err(ApiError::from)?;
        let page = paging.connection(rows.into_iter().map(FederatedService).collect(), |f| {
            f.0.id.to_string()
        });
        Ok(with_fields(page, FederatedTotal { cluster, namespace }))
    }
}
