//! Mirrors and the exported services they are grouped into.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, connection::Connection};
use chrono::{DateTime, Utc};
use linkplane_store::{
    mirrors::{self, MirrorFilter, MirrorRow},
    topology::{self, ExportedService, ServiceKey},
};

use linkplane_store::windows;

use crate::{
    common::{db, id_cursor, loader, page_fetched, page_size, tables, with_fields},
    db::{Counts, MirrorPageOf, one},
    domain::link::LinkNode,
    error::{ApiError, ApiResult},
    plain::{FastConnection, plain_enums, plain_object},
    relay::{self, Paging},
};

/// Why a mirror is (or is not) in place.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "linkplane_core::status::MirrorState")]
pub enum MirrorState {
    /// The mirror exists and matches the remote service.
    Mirrored,
    /// A local object linkplane does not own blocks the mirror.
    Conflict,
    /// The local namespace does not exist.
    MissingNamespace,
    /// An export policy forbids this export.
    PolicyDenied,
    /// Writing failed; see `message`.
    Error,
}

/// How a service is mirrored: the domain's [`linkplane_core::MirrorMode`], one-to-one.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "linkplane_core::MirrorMode")]
pub enum MirrorMode {
    /// Hierarchical: mirror Endpoints point at the target's gateway.
    Gateway,
    /// Flat: the mesh resolves pod addresses in the target directly.
    RemoteDiscovery,
    /// Member of `<svc>-federated`.
    Federated,
}

impl MirrorMode {
    /// The mode of a stored spelling; the table's CHECK constraint allows only known ones, so
    /// an unknown one is a corrupt row, answered as the default mode and logged.
    pub(crate) fn of_column(s: &str) -> Self {
        linkplane_core::MirrorMode::parse(s).map_or_else(
            || {
                tracing::warn!(mode = s, "a mirror row has an unknown mode");
                MirrorMode::Gateway
            },
            Into::into,
        )
    }
}

/// One exported service as seen by one consuming cluster.
#[derive(Clone)]
pub struct Mirror(pub MirrorRow);

plain_object! {
    #[Object]
    impl Mirror {
        plain(this, cx) {
            /// Stable row id (also the cursor). Kept for compatibility: it is not a global id (a
            /// federated service may have the same number); use `globalId` with `node(id:)`.
            "id" pub(crate) id -> ID { ID(this.0.id.to_string()) }
            /// Global id (`Mirror:<row id>`), for `node(id:)`.
            "globalId" global_id -> ID {
                crate::domain::node::global_id("Mirror", &this.0.id.to_string())
            }
            /// Name of the link selecting the service.
            "linkName" link_name -> &str { &this.0.status.link }
            /// The link selecting the service.
            async fn link(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<LinkNode>> {
                let l = tables(ctx)?.links().await?.get(&self.0.status.link);
                Ok(l.cloned().map(LinkNode))
            }
            /// Cluster holding the mirror (the consumer).
            "sourceCluster" source_cluster -> &str { &this.0.status.source_cluster }
            /// Cluster exporting the service.
            "targetCluster" target_cluster -> &str { &this.0.status.target_cluster }
            /// Namespace (the same on both sides).
            "namespace" namespace -> &str { &this.0.status.namespace }
            /// Service name in the target cluster.
            "remoteName" remote_name -> &str { &this.0.status.remote_name }
            /// Mirror Service name in the source cluster (`<name>-<target>`, possibly shortened).
            "localName" local_name -> &str { &this.0.status.local_name }
            /// How it is mirrored (`GATEWAY` or `REMOTE_DISCOVERY`).
            "mode" mode -> MirrorMode { MirrorMode::of_column(&this.0.status.mode) }
            /// Headless, with endpoint mirrors.
            "headless" headless -> bool { this.0.status.headless }
            /// Current state.
            "state" state -> MirrorState { this.0.status.state.into() }
            /// Detail for states other than `MIRRORED`.
            "message" message -> &str { &this.0.status.message }
            /// Last change of `state`.
            "lastTransition" last_transition -> DateTime<Utc> { this.0.last_transition }
            /// Last write.
            "updatedAt" updated_at -> DateTime<Utc> { this.0.updated_at }
        }
    }
}

plain_enums!(MirrorState, MirrorMode);

/// How many mirrors are in each state.
#[derive(Debug, Clone, Copy)]
pub struct MirrorCounts {
    /// Mirrored.
    pub mirrored: i64,
    /// Conflict.
    pub conflict: i64,
    /// MissingNamespace.
    pub missing_namespace: i64,
    /// PolicyDenied.
    pub policy_denied: i64,
    /// Error.
    pub error: i64,
}

plain_object! {
    /// How many mirrors are in each state.
    #[Object]
    impl MirrorCounts {
        plain(this, cx) {
            /// Mirrored.
            "mirrored" mirrored -> i64 { this.mirrored }
            /// Conflict.
            "conflict" conflict -> i64 { this.conflict }
            /// MissingNamespace.
            "missingNamespace" missing_namespace -> i64 { this.missing_namespace }
            /// PolicyDenied.
            "policyDenied" policy_denied -> i64 { this.policy_denied }
            /// Error.
            "error" error -> i64 { this.error }
            /// Every mirror.
            "total" total -> i64 { this.sum() }
        }
    }
}

impl MirrorCounts {
    fn sum(&self) -> i64 {
        self.mirrored + self.conflict + self.missing_namespace + self.policy_denied + self.error
    }
}

impl From<Counts> for MirrorCounts {
    fn from(c: Counts) -> Self {
        MirrorCounts {
            mirrored: c.mirrored,
            conflict: c.conflict,
            missing_namespace: c.missing_namespace,
            policy_denied: c.policy_denied,
            error: c.error,
        }
    }
}

/// A service of one cluster that at least one link selects, with every consumer.
#[derive(Clone)]
pub struct Service(pub Arc<ExportedService>);

#[Object]
impl Service {
    /// `<targetCluster>/<namespace>/<name>` (also the cursor). Kept for compatibility; the
    /// global id for `node(id:)` is `globalId`.
    pub(crate) async fn id(&self) -> ID {
        ID(service_cursor(&self.0))
    }
    /// Global id (`Service:<targetCluster>/<namespace>/<name>`), for `node(id:)`.
    async fn global_id(&self) -> ID {
        crate::domain::node::global_id("Service", &service_cursor(&self.0))
    }
    /// Cluster exporting the service.
    async fn cluster(&self) -> &str {
        &self.0.target_cluster
    }
    /// Namespace.
    async fn namespace(&self) -> &str {
        &self.0.namespace
    }
    /// Service name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// One mirror per consuming link, by consumer cluster.
    async fn consumers(&self) -> Vec<Mirror> {
        self.0.consumers.iter().cloned().map(Mirror).collect()
    }
    /// Consumers whose mirror is `MIRRORED`.
    async fn healthy_consumers(&self) -> usize {
        self.0
            .consumers
            .iter()
            .filter(|m| m.status.state == mirrors::MirrorState::Mirrored)
            .count()
    }
}

fn service_cursor(s: &ExportedService) -> String {
    format!("{}/{}/{}", s.target_cluster, s.namespace, s.name)
}

pub(crate) fn parse_service_cursor(after: &str) -> ApiResult<ServiceKey> {
    let mut parts = after.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(c), Some(n), Some(s)) => Ok(ServiceKey {
            target_cluster: c.into(),
            namespace: n.into(),
            name: s.into(),
        }),
        _ => Err(ApiError::BadUserInput(format!("invalid cursor {after:?}"))),
    }
}

/// `totalCount` of a page of mirrors: every mirror its filter matches.
pub struct MirrorTotal(pub MirrorFilter);

impl MirrorTotal {
    /// The filter of a page under a link or cluster.
    pub(crate) fn of(
        by: topology::MirrorParent,
        parent: &str,
        namespace: Option<String>,
        state: Option<MirrorState>,
    ) -> Self {
        let parent = Some(parent.to_string());
        let mut f = MirrorFilter {
            namespace,
            state: state.map(Into::into),
            ..MirrorFilter::default()
        };
        match by {
            topology::MirrorParent::Link => f.link = parent,
            topology::MirrorParent::SourceCluster => f.source_cluster = parent,
            topology::MirrorParent::TargetCluster => f.target_cluster = parent,
        }
        MirrorTotal(f)
    }
}

plain_object! {
    #[Object]
    impl MirrorTotal {
        plain(this, cx) {
            /// How many mirrors match, over every page. Filtered by one of cluster, target cluster or
            /// link (and state) but not namespace, it comes from the counts the database keeps per link
            /// (`mirrorCounts`: no statement of its own, whatever the fleet); otherwise one `count(*)`.
            async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
                let f = &self.0;
                let parents: Vec<(topology::MirrorParent, &String)> = [
                    (topology::MirrorParent::SourceCluster, &f.source_cluster),
                    (topology::MirrorParent::TargetCluster, &f.target_cluster),
                    (topology::MirrorParent::Link, &f.link),
                ]
                .into_iter()
                .filter_map(|(by, v)| v.as_ref().map(|v| (by, v)))
                .collect();
                if let ([(by, parent)], None) = (parents.as_slice(), &f.namespace) {
                    let c = tables(ctx)?.counts().await?.get(*by, parent);
                    return Ok(match f.state {
                        None => c.total(),
                        Some(mirrors::MirrorState::Mirrored) => c.mirrored,
                        Some(mirrors::MirrorState::Conflict) => c.conflict,
                        Some(mirrors::MirrorState::MissingNamespace) => c.missing_namespace,
                        Some(mirrors::MirrorState::PolicyDenied) => c.policy_denied,
                        Some(mirrors::MirrorState::Error) => c.error,
                    });
                }
                Ok(one!(db(ctx)?, |c| mirrors::count_matching(c, f))?)
            }
        }
    }
}

/// The arguments of a parent's (a cluster's, a link's) `mirrors` field.
pub(crate) struct MirrorPageArgs {
    pub namespace: Option<String>,
    pub state: Option<MirrorState>,
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

/// One page of a parent's mirrors: forward pages (`first`/`after`, the common case) through
/// the batching loader, one statement for every parent of a level; backward pages (`last`,
/// `before`) read directly, one statement each (a client paging backwards pages one parent at
/// a time), filtered as [`MirrorTotal::of`] counts them.
pub(crate) async fn parent_mirror_page(
    ctx: &Context<'_>,
    by: topology::MirrorParent,
    parent: &str,
    args: MirrorPageArgs,
) -> async_graphql::Result<FastConnection<Mirror, MirrorTotal>> {
    let MirrorPageArgs {
        namespace,
        state,
        first,
        after,
        last,
        before,
    } = args;
    if last.is_some() || before.is_some() {
        let MirrorTotal(filter) = MirrorTotal::of(by, parent, namespace, state);
        return Ok(mirror_page(ctx, filter, first, after, last, before).await?);
    }
    let first_n = page_size(first)?;
    let after_id = id_cursor(after.as_deref())?;
    let (total_namespace, total_state) = (namespace.clone(), state);
    let rows = loader(ctx)?
        .load_one(MirrorPageOf {
            by,
            parent: parent.to_string(),
            namespace,
            state: state.map(Into::into),
            after_id,
            limit: first_n as i64 + 1,
        })
        .await?
        .unwrap_or_default();
    Ok(FastConnection(with_fields(
        page_fetched(
            rows.into_iter().map(Mirror).collect(),
            |m| m.0.id.to_string(),
            first_n,
            after.is_some(),
        ),
        MirrorTotal::of(by, parent, total_namespace, total_state),
    )))
}

/// One page of the mirrors `filter` matches, ordered by id, either direction, with its
/// `totalCount`: the fleet-wide `mirrors` and every parent's `mirrors` alike.
async fn mirror_page(
    ctx: &Context<'_>,
    filter: MirrorFilter,
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> ApiResult<FastConnection<Mirror, MirrorTotal>> {
    let paging = Paging::new(
        first,
        after.as_deref(),
        last,
        before.as_deref(),
        relay::id_cursor,
    )?;
    let window = paging.window();
    let rows = one!(db(ctx)?, |c| windows::mirrors(c, &filter, &window))?;
    Ok(FastConnection(with_fields(
        paging.connection(rows.into_iter().map(Mirror).collect(), |m| {
            m.0.id.to_string()
        }),
        MirrorTotal(filter),
    )))
}

/// Mirror queries.
#[derive(Default)]
pub struct MirrorQuery;

#[Object]
impl MirrorQuery {
    /// Mirrors across the fleet, filtered, ordered by id (`first`/`after` forward,
    /// `last`/`before` backward; see docs/api.md for the paging rules).
    #[graphql(complexity = "relay::complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn mirrors(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Cluster holding the mirrors (the consumer).")] cluster: Option<String>,
        #[graphql(desc = "Cluster exporting the services.")] target_cluster: Option<String>,
        namespace: Option<String>,
        state: Option<MirrorState>,
        link: Option<String>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<FastConnection<Mirror, MirrorTotal>> {
        let filter = MirrorFilter {
            source_cluster: cluster,
            target_cluster,
            namespace,
            state: state.map(Into::into),
            link,
        };
        mirror_page(ctx, filter, first, after, last, before).await
    }

    /// Exported services with their consumers, derived from mirrors grouped by
    /// (target cluster, namespace, name), in that order (`first`/`after` forward,
    /// `last`/`before` backward).
    #[graphql(complexity = "relay::complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn services(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Cluster exporting the services.")] cluster: Option<String>,
        namespace: Option<String>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Connection<String, Service, ServiceTotal>> {
        let paging = Paging::new(
            first,
            after.as_deref(),
            last,
            before.as_deref(),
            parse_service_cursor,
        )?;
        let window = paging.window();
        let rows = one!(db(ctx)?, |c| windows::services(
            c,
            cluster.as_deref(),
            namespace.as_deref(),
            &window
        ))?;
        let page = paging.connection(
            rows.into_iter().map(|s| Service(Arc::new(s))).collect(),
            |s| service_cursor(&s.0),
        );
        Ok(with_fields(page, ServiceTotal { cluster, namespace }))
    }
}

/// `totalCount` of a page of exported services.
pub struct ServiceTotal {
    cluster: Option<String>,
    namespace: Option<String>,
}

#[Object]
impl ServiceTotal {
    /// How many exported services match, over every page (one `count(*)` when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        one!(db(ctx)?, |c| windows::count_services(
            c,
            self.cluster.as_deref(),
            self.namespace.as_deref()
        ))
    }
}
