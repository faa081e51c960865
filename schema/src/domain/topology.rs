//! `topology` (the whole fleet in one request) and `blastRadius`.

use std::collections::BTreeSet;

use async_graphql::{
    Context, Object, SimpleObject,
    connection::{Connection, ConnectionNameType, EmptyFields},
};
use linkplane_store::{clusters, topology as store_topology};

use crate::{
    common::{Total, db, tables},
    db::one,
    domain::{cluster::ClusterNode, link::LinkNode, mirror::Mirror},
    error::{ApiError, ApiResult},
    plain::{Fast, plain_object},
    relay::{self, Paging},
};

/// The fleet as a graph: clusters are nodes, links are edges (source → target). Node and edge
/// details (health, gateway, counts) resolve through batched loaders, so the whole graph costs a
/// constant number of SQL statements.
pub struct Topology {
    nodes: Vec<ClusterNode>,
    edges: Vec<LinkNode>,
}

plain_object! {
    #[Object]
    impl Topology {
        plain(this, cx) {
            /// Every cluster, by name.
            "nodes" nodes -> &[ClusterNode] { &this.nodes }
            /// Every link, by name.
            "edges" edges -> &[LinkNode] { &this.edges }
        }
    }
}

/// A federated service that would lose every member.
#[derive(SimpleObject, Debug, Clone)]
pub struct StrandedFederatedService {
    /// Cluster holding the federated Service.
    pub source_cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Base service name.
    pub service: String,
    /// The federated Service's name.
    pub local_name: String,
}

/// The GraphQL name of a page of a blast radius's mirrors (`MirrorConnection` is the fleet's,
/// whose `totalCount` counts by filter).
pub struct StrandedMirrorConnectionName;

impl ConnectionNameType for StrandedMirrorConnectionName {
    fn type_name<T: async_graphql::OutputType>() -> String {
        "StrandedMirrorConnection".into()
    }
}

/// A page of a blast radius's mirrors.
pub type StrandedMirrorConnection =
    Connection<String, Mirror, Total, EmptyFields, StrandedMirrorConnectionName>;

/// What fails with a cluster (or only its gateway).
pub struct BlastRadius {
    cluster: String,
    gateway_only: bool,
    mirrors: Vec<Mirror>,
    federated: Vec<StrandedFederatedService>,
}

#[Object]
impl BlastRadius {
    /// The failing cluster.
    async fn cluster(&self) -> &str {
        &self.cluster
    }
    /// Whether only its gateway fails.
    async fn gateway_only(&self) -> bool {
        self.gateway_only
    }
    /// Mirrors that would lose every endpoint: `MIRRORED` mirrors of the cluster's services
    /// (gateway-mode only when `gatewayOnly`), by consumer cluster. The whole list: prefer
    /// `mirrorPage` in a fleet of thousands of mirrors.
    async fn mirrors(&self) -> &[Mirror] {
        &self.mirrors
    }
    /// The same mirrors as `mirrors`, Relay-paged by id (`first`/`after`, `last`/`before`),
    /// with `totalCount`.
    #[graphql(complexity = "relay::complexity(first, last, child_complexity)")]
    async fn mirror_page(
        &self,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<StrandedMirrorConnection> {
        let paging = Paging::new(
            first,
            after.as_deref(),
            last,
            before.as_deref(),
            relay::id_cursor,
        )?;
        let mut by_id = self.mirrors.clone();
        by_id.sort_by_key(|m| m.0.id);
        let page = paging.page_sorted(by_id, |m| m.0.id, |m| m.0.id.to_string());
        let total = Total {
            total_count: self.mirrors.len() as i64,
        };
        let mut out = StrandedMirrorConnection::with_additional_fields(
            page.has_previous_page,
            page.has_next_page,
            total,
        );
        out.edges = page.edges;
        Ok(out)
    }
    /// Consumer clusters that would lose at least one service.
    async fn affected_clusters(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self
            .mirrors
            .iter()
            .map(|m| m.0.status.source_cluster.as_str())
            .chain(self.federated.iter().map(|f| f.source_cluster.as_str()))
            .collect();
        set.into_iter().map(String::from).collect()
    }
    /// Federated services whose every `MEMBER` is in the cluster (empty when `gatewayOnly`:
    /// federation reaches pods directly, not through the gateway).
    async fn federated_services(&self) -> &[StrandedFederatedService] {
        &self.federated
    }
}

/// Topology queries.
#[derive(Default)]
pub struct TopologyQuery;

#[Object]
impl TopologyQuery {
    /// Nodes and edges for drawing the fleet in one request.
    async fn topology(&self, ctx: &Context<'_>) -> ApiResult<Fast<Topology>> {
        // Through the per-request tables, which node and edge fields reuse; the plain pass
        // answers the usual selections in one go.
        let t = tables(ctx)?;
        // In turn, on the request's one connection (see `db::Lease`).
        let clusters = t.clusters().await?;
        let links = t.links().await?;
        Ok(Fast(Topology {
            nodes: clusters.all.iter().cloned().map(ClusterNode).collect(),
            edges: links.all.iter().cloned().map(LinkNode).collect(),
        }))
    }

    /// Which services in which clusters would lose every endpoint if `cluster` failed (or,
    /// with `gatewayOnly`, only its gateway).
    async fn blast_radius(
        &self,
        ctx: &Context<'_>,
        cluster: String,
        #[graphql(default = false)] gateway_only: bool,
    ) -> ApiResult<BlastRadius> {
        let db = db(ctx)?;
        if one!(db, |c| clusters::get(c, &cluster))?.is_none() {
            return Err(ApiError::NotFound(format!("Cluster {cluster:?} not found")));
        }
        let mirrors = one!(db, |c| store_topology::stranded_mirrors(
            c,
            &cluster,
            gateway_only
        ))?;
        let federated = if gateway_only {
            Vec::new()
        } else {
            one!(db, |c| linkplane_store::federation::stranded_federated(
                c, &cluster
            ))?
            .into_iter()
            .map(|f| StrandedFederatedService {
                source_cluster: f.source_cluster,
                namespace: f.namespace,
                service: f.service,
                local_name: f.local_name,
            })
            .collect()
        };
        Ok(BlastRadius {
            cluster,
            gateway_only,
            mirrors: mirrors.into_iter().map(Mirror).collect(),
            federated,
        })
    }
}
