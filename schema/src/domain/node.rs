//! Relay's `Node` interface and `node(id:)`: one global id per named object, refetchable.
//!
//! A global id is `<Type>:<name>` (`Cluster:east`, `Link:west-from-east`, `GitSource:fleet`,
//! `ExportPolicy:prod`): opaque to clients by contract, readable in logs. Mirrors keep their row
//! id (`Mirror.id`, also their cursor) and are not nodes.

use async_graphql::{Context, ID, Interface, Object};
use linkplane_store::{git_sources, policies};

use crate::{
    common::{db, tables},
    db::one,
    domain::{cluster::ClusterNode, git::GitSourceNode, link::LinkNode, policy::ExportPolicyNode},
    error::{ApiError, ApiResult},
};

/// An object with a global id, refetchable with `node(id:)`.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Global id: `<Type>:<name>`."))]
pub enum Node {
    /// A cluster.
    Cluster(ClusterNode),
    /// A link.
    Link(LinkNode),
    /// A Git source.
    GitSource(GitSourceNode),
    /// An export policy.
    ExportPolicy(ExportPolicyNode),
}

/// The global id of `name` of `kind`.
pub(crate) fn global_id(kind: &str, name: &str) -> ID {
    ID(format!("{kind}:{name}"))
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
            other => {
                return Err(ApiError::BadUserInput(format!(
                    "no node type {other:?} (Cluster, Link, GitSource, ExportPolicy)"
                )));
            }
        })
    }
}
