//! Relay's `Node` interface and `node(id:)`: one global id per named object, refetchable.
//!
//! A global id is `<Type>:<name>` (`Cluster:east`, `Link:west-from-east`, `GitSource:fleet`,
//! `ExportPolicy:prod`): opaque to clients by contract, readable in logs.
//!
//! Mirrors, exported services and federated services are nodes too, with global ids
//! `Mirror:<row id>`, `Service:<cluster>/<namespace>/<name>` and `FederatedService:<row id>`.
//! Their `id` field predates `Node` and keeps its old value (the row id, or the service key)
//! so existing clients and cursors keep working; their global id is `globalId`, and that is
//! what `node(id:)` takes. See docs/api.md ("Global ids").

use std::sync::Arc;

use async_graphql::{Context, ID, Interface, Object};
use linkplane_store::{git_sources, mirrors::MirrorFilter, policies, windows};

use crate::{
    common::{db, tables},
    db::one,
    domain::{
        cluster::ClusterNode,
        federation::FederatedService,
        git::GitSourceNode,
        link::LinkNode,
        mirror::{Mirror, Service, parse_service_cursor},
        policy::ExportPolicyNode,
    },
    error::{ApiError, ApiResult},
};

/// An object with a global id, refetchable with `node(id:)`.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "ID",
    desc = "Global id `<Type>:<name>`; on Mirror, Service and FederatedService the older \
            row id or key, kept for compatibility (their global id is `globalId`)."
))]
pub enum Node {
    /// A cluster.
    Cluster(ClusterNode),
    /// A link.
    Link(LinkNode),
    /// A Git source.
    GitSource(GitSourceNode),
    /// An export policy.
    ExportPolicy(ExportPolicyNode),
    /// A mirror.
    Mirror(Mirror),
    /// An exported service with its consumers.
    Service(Service),
    /// A federated service.
    FederatedService(FederatedService),
}

/// The global id of `name` of `kind`.
pub(crate) fn global_id(kind: &str, name: &str) -> ID {
    ID(format!("{kind}:{name}"))
}

/// The row id of a `Mirror:<id>` or `FederatedService:<id>` global id.
fn row_id(s: &str) -> ApiResult<i64> {
    s.parse()
        .map_err(|_| ApiError::BadUserInput(format!("{s:?} is not a row id")))
}

/// `node(id:)`.
#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// The object with this global id (`null` when it does not exist); `BAD_USER_INPUT` for an
    /// id that is not one.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Node>> {
        let Some((kind, name)) = id.split_once(':') else {
            return Err(ApiError::BadUserInput(format!(
                "{:?} is not a global id (<Type>:<name>)",
                id.as_str()
            )));
        };
        let load = |e: ApiError| e;
        Ok(match kind {
            "Cluster" => tables(ctx)?
                .clusters()
                .await
                .map_err(load)?
                .get(name)
                .cloned()
                .map(|c| Node::Cluster(ClusterNode(c))),
            "Link" => tables(ctx)?
                .links()
                .await
                .map_err(load)?
                .get(name)
                .cloned()
                .map(|l| Node::Link(LinkNode(l))),
            "GitSource" => one!(db(ctx)?, |c| git_sources::get(c, name))?
                .map(|s| Node::GitSource(GitSourceNode(s))),
            "ExportPolicy" => one!(db(ctx)?, |c| policies::get(c, name))?
                .map(|p| Node::ExportPolicy(ExportPolicyNode(p))),
            "Mirror" => {
                let window = windows::one_id(row_id(name)?);
                one!(db(ctx)?, |c| windows::mirrors(
                    c,
                    &MirrorFilter::default(),
                    &window
                ))?
                .into_iter()
                .next()
                .map(|m| Node::Mirror(Mirror(m)))
            }
            "Service" => {
                let key = parse_service_cursor(name)?;
                one!(db(ctx)?, |c| windows::service(c, &key))?
                    .map(|s| Node::Service(Service(Arc::new(s))))
            }
            "FederatedService" => {
                let window = windows::one_id(row_id(name)?);
                // Two statements: the service, then its members.
                let mut conn = db(ctx)?.conn(2).await?;
                windows::federated(&mut conn, None, None, &window)
                    .await
                    .map_err(ApiError::from)?
                    .into_iter()
                    .next()
                    .map(|f| Node::FederatedService(FederatedService(f)))
            }
            other => {
                return Err(ApiError::BadUserInput(format!(
                    "no node type {other:?} (Cluster, Link, GitSource, ExportPolicy, Mirror, \
                     Service, FederatedService)"
                )));
            }
        })
    }
}
