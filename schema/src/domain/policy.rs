//! Export policies.

use async_graphql::{Context, Object, SimpleObject, connection::Connection};
use chrono::{DateTime, Utc};
use linkplane_core::ExportPolicy;
use linkplane_store::{Stored, policies};

use crate::{
    common::{LabelSelector, Total, db, page_sorted_both, with_fields},
    db::one,
    error::ApiResult,
};

/// Namespace allow/deny globs.
#[derive(SimpleObject, Debug, Clone)]
pub struct NamespaceFilter {
    /// Globs allowed (empty: all).
    pub allow: Vec<String>,
    /// Globs denied (wins over allow).
    pub deny: Vec<String>,
}

/// An allow-list policy over exports.
#[derive(Clone)]
pub struct ExportPolicyNode(pub Stored<ExportPolicy>);

#[Object(name = "ExportPolicy")]
impl ExportPolicyNode {
    /// Global id (`ExportPolicy:<name>`), for `node(id:)`.
    pub(crate) async fn id(&self) -> async_graphql::ID {
        crate::domain::node::global_id("ExportPolicy", &self.0.value.name)
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.value.name
    }
    /// Target clusters the policy applies to.
    async fn target_cluster_selector(&self) -> Option<LabelSelector> {
        self.0
            .value
            .spec
            .target_cluster_selector
            .as_ref()
            .map(Into::into)
    }
    /// Namespaces it allows.
    async fn namespaces(&self) -> NamespaceFilter {
        NamespaceFilter {
            allow: self.0.value.spec.namespaces.allow.clone(),
            deny: self.0.value.spec.namespaces.deny.clone(),
        }
    }
    /// Services it allows.
    async fn service_selector(&self) -> Option<LabelSelector> {
        self.0.value.spec.service_selector.as_ref().map(Into::into)
    }
    /// Mirror modes it allows.
    async fn modes(&self) -> Vec<crate::domain::mirror::MirrorMode> {
        self.0
            .value
            .spec
            .modes
            .iter()
            .map(|m| (*m).into())
            .collect()
    }
    /// Consumer clusters it allows.
    async fn consumer_cluster_selector(&self) -> Option<LabelSelector> {
        self.0
            .value
            .spec
            .consumer_cluster_selector
            .as_ref()
            .map(Into::into)
    }
    /// `api`, or `git:<source>`.
    async fn owner(&self) -> String {
        self.0.owner.as_column()
    }
    /// Bumped on every spec change.
    async fn generation(&self) -> i64 {
        self.0.generation
    }
    /// Last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Policy queries.
#[derive(Default)]
pub struct PolicyQuery;

#[Object]
impl PolicyQuery {
    /// Every export policy, by name (`first`/`after` forward, `last`/`before` backward).
    #[graphql(complexity = "crate::relay::complexity(first, last, child_complexity)")]
    async fn export_policies(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Connection<String, ExportPolicyNode, Total>> {
        let all = one!(db(ctx)?, |c| policies::list(c))?;
        let total = Total {
            total_count: all.len() as i64,
        };
        page_sorted_both(
            all.into_iter().map(ExportPolicyNode),
            |p| p.0.value.name.clone(),
            first,
            after,
            last,
            before,
        )
        .map(|page| with_fields(page, total))
    }
}
