//! Links, their gateway probes, and the pause/resume mutations.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use linkplane_store::{
    gateways::GatewayHealth,
    links::{self, StoredLink},
    topology::MirrorParent,
};

use crate::{
    auth::{Role, RoleGuard},
    common::{LabelSelector, Total, db, page_sorted_both, tables, with_fields},
    db::one,
    domain::{
        cluster::ClusterNode,
        mirror::{
            Mirror, MirrorCounts, MirrorPageArgs, MirrorState, MirrorTotal, parent_mirror_page,
        },
    },
    error::{ApiError, ApiResult},
    plain::{Fast, FastConnection, Table, plain_object},
};

/// The latest gateway probe for one link (the link's target gateway, probed for that link).
#[derive(Debug, Clone)]
pub struct GatewayProbe {
    /// Link name.
    pub link: String,
    /// False once the failure threshold is reached; true again after one success.
    pub alive: bool,
    /// Latency of the last successful probe, in milliseconds.
    pub latency_ms: Option<f64>,
    /// Failures since the last success.
    pub consecutive_failures: i32,
    /// Last failure reason.
    pub last_error: Option<String>,
    /// When the last probe finished.
    pub last_probe_at: Option<DateTime<Utc>>,
    /// When `alive` last changed.
    pub last_transition: DateTime<Utc>,
}

impl From<&GatewayHealth> for GatewayProbe {
    fn from(g: &GatewayHealth) -> Self {
        GatewayProbe {
            link: g.link.clone(),
            alive: g.alive,
            latency_ms: g.latency_ms,
            consecutive_failures: g.consecutive_failures,
            last_error: g.last_error.clone(),
            last_probe_at: g.last_probe_at,
            last_transition: g.last_transition,
        }
    }
}

/// Where the remote-discovery credentials of a link's cluster pair stand.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialState {
    /// Not written yet.
    Pending,
    /// The Secret holds a valid token.
    Issued,
    /// The source cluster has no Linkerd namespace (`linkerdNamespace`); linkplane never creates
    /// it and writes the Secret as soon as it appears.
    NamespaceMissing,
    /// The last attempt failed (see `message`); a token already written stays valid until
    /// `expiresAt`.
    Error,
}

/// The Secret `cluster-credentials-<target>` linkplane keeps in the source cluster's Linkerd
/// namespace so Linkerd's destination controller can resolve remote-discovery and federated
/// mirrors (never the token).
#[derive(SimpleObject, Debug, Clone)]
pub struct RemoteCredential {
    /// State.
    pub state: CredentialState,
    // Not `secretName`: no field name may suggest a credential (schema/tests/api.rs).
    /// Name of the Secret, `cluster-credentials-<target>`.
    pub name: String,
    /// Its namespace in the source cluster.
    pub namespace: String,
    /// When the token in the Secret was issued.
    pub issued_at: Option<DateTime<Utc>>,
    /// When the token in the Secret expires (it is renewed well before).
    pub expires_at: Option<DateTime<Utc>>,
    /// Detail of the state: the error, the missing namespace.
    pub message: String,
    /// When the state was last recorded.
    pub updated_at: DateTime<Utc>,
}

impl From<&linkplane_store::remote_credentials::RemoteCredential> for RemoteCredential {
    fn from(r: &linkplane_store::remote_credentials::RemoteCredential) -> Self {
        use linkplane_store::remote_credentials::RemoteCredentialState as S;
        RemoteCredential {
            state: match r.state() {
                S::Pending => CredentialState::Pending,
                S::Issued => CredentialState::Issued,
                S::NamespaceMissing => CredentialState::NamespaceMissing,
                S::Error => CredentialState::Error,
            },
            name: r.secret_name.clone(),
            namespace: r.namespace.clone(),
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            message: r.message.clone(),
            updated_at: r.updated_at,
        }
    }
}

/// Probe latency over the recent probes of a target gateway (the last 100: five minutes at the
/// default 3 s period), nearest-rank percentiles of the successful ones.
#[derive(SimpleObject, Debug, Clone, Copy)]
pub struct GatewayLatency {
    /// Median latency, milliseconds.
    pub p50: f64,
    /// 95th percentile, milliseconds.
    pub p95: f64,
    /// 99th percentile, milliseconds.
    pub p99: f64,
    /// Probes in the window.
    pub probes: i32,
    /// Successful probes in the window (the percentiles' samples).
    pub successes: i32,
}

/// A directed link: `source` receives mirrors of `target`'s exported services.
#[derive(Clone)]
pub struct LinkNode(pub Arc<StoredLink>);

plain_object! {
    /// The latest gateway probe for one link (the link's target gateway, probed for that link).
    #[Object]
    impl GatewayProbe {
        plain(this, cx) {
            /// Link name.
            "link" link -> &str { &this.link }
            /// False once the failure threshold is reached; true again after one success.
            "alive" alive -> bool { this.alive }
            /// Latency of the last successful probe, in milliseconds.
            "latencyMs" latency_ms -> Option<f64> { this.latency_ms }
            /// Failures since the last success.
            "consecutiveFailures" consecutive_failures -> i32 { this.consecutive_failures }
            /// Last failure reason.
            "lastError" last_error -> Option<&str> { this.last_error.as_deref() }
            /// When the last probe finished.
            "lastProbeAt" last_probe_at -> Option<DateTime<Utc>> { this.last_probe_at }
            /// When `alive` last changed.
            "lastTransition" last_transition -> DateTime<Utc> { this.last_transition }
        /// Latency percentiles of the target gateway's recent probes; null before a successful
        /// probe, or when this server process does not run the prober (a server started with
        /// `--no-reconcile`, or a replica that does not hold the mirror).
        async fn latency(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<GatewayLatency>> {
            let Some(windows) = ctx
                .data_opt::<crate::ApiContext>()
                .and_then(|a| a.probe_windows.as_ref())
            else {
                return Ok(None);
            };
            let links = tables(ctx)?.links().await?;
            let Some(link) = links.get(&self.link) else {
                return Ok(None);
            };
            Ok(windows
                .summary(&link.stored.value.spec.target)
                .and_then(|s| {
                    s.latency.map(|p| GatewayLatency {
                        p50: p.p50,
                        p95: p.p95,
                        p99: p.p99,
                        probes: s.probes as i32,
                        successes: s.successes as i32,
                    })
                }))
        }
        }
    }
}

plain_object! {
    #[Object(name = "Link")]
    impl LinkNode {
        plain(this, cx) {
            /// Global id (`Link:<name>`), for `node(id:)`.
            "id" pub(crate) id -> ID {
                crate::domain::node::global_id("Link", &this.0.stored.value.name)
            }
            /// Name.
            "name" name -> &str { &this.0.stored.value.name }
            /// Name of the cluster receiving mirrors.
            "sourceName" source_name -> &str { &this.0.stored.value.spec.source }
            /// Name of the cluster exporting services.
            "targetName" target_name -> &str { &this.0.stored.value.spec.target }
            /// The cluster receiving mirrors.
            async fn source(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ClusterNode>> {
                let c = tables(ctx)?
                    .clusters()
                    .await?
                    .get(&self.0.stored.value.spec.source);
                Ok(c.cloned().map(ClusterNode))
            }
            /// The cluster exporting services.
            async fn target(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ClusterNode>> {
                let c = tables(ctx)?
                    .clusters()
                    .await?
                    .get(&self.0.stored.value.spec.target);
                Ok(c.cloned().map(ClusterNode))
            }
            /// Paused links keep their mirrors but stop changing them.
            "paused" paused -> bool { this.0.paused }
            /// `api`, or `git:<source>` when a Git source declares it (then only pause/resume apply).
            "owner" owner -> String { this.0.stored.owner.as_column() }
            /// Bumped on every spec change.
            "generation" generation -> i64 { this.0.stored.generation }
            /// First stored.
            "createdAt" created_at -> DateTime<Utc> { this.0.stored.created_at }
            /// Last changed.
            "updatedAt" updated_at -> DateTime<Utc> { this.0.stored.updated_at }
            /// Services selected for gateway mirroring.
            async fn selector(&self) -> Option<LabelSelector> {
                self.0.stored.value.spec.selector.as_ref().map(Into::into)
            }
            /// Services selected for remote-discovery mirroring.
            async fn remote_discovery_selector(&self) -> Option<LabelSelector> {
                self.0
                    .stored
                    .value
                    .spec
                    .remote_discovery_selector
                    .as_ref()
                    .map(Into::into)
            }
            /// Services selected for federation.
            async fn federated_service_selector(&self) -> Option<LabelSelector> {
                self.0
                    .stored
                    .value
                    .spec
                    .federated_service_selector
                    .as_ref()
                    .map(Into::into)
            }
            /// Label patterns not copied onto mirrors.
            "excludedLabels" excluded_labels -> &[String] {
                &this.0.stored.value.spec.excluded_labels
            }
            /// Annotation patterns not copied onto mirrors.
            "excludedAnnotations" excluded_annotations -> &[String] {
                &this.0.stored.value.spec.excluded_annotations
            }
            /// Whether missing namespaces are created in the source cluster.
            "createNamespaces" create_namespaces -> bool {
                this.0.stored.value.spec.create_namespaces
            }
            /// Whether headless services are mirrored with endpoint mirrors.
            "enableHeadlessServices" enable_headless_services -> bool {
                this.0.stored.value.spec.enable_headless_services
            }
            /// Whether mirrors are deleted when the link goes.
            "cleanupOnUnlink" cleanup_on_unlink -> bool {
                this.0.stored.value.spec.cleanup_on_unlink
            }
            /// Whether mirrors Linkerd's service mirror wrote for the target are adopted (updated and
            /// garbage-collected like linkplane's own); false leaves them untouched.
            "adoptLinkerdMirrors" adopt_linkerd_mirrors -> bool {
                this.0.stored.value.spec.adopt_linkerd_mirrors
            }
            /// The target gateway as probed for this link; null before the first probe.
            "gateway" gateway -> Option<GatewayProbe> {
                let gateways = cx.need(Table::Gateways, cx.tables.gateways_now())?;
                gateways.get(&this.0.stored.value.name).map(GatewayProbe::from)
            }
            /// The remote-discovery credentials linkplane keeps for this link's cluster pair (shared by
            /// links with the same source and target); null when the link needs none (its
            /// `remoteDiscoverySelector` and `federatedServiceSelector` are both off) or before the
            /// first attempt.
            async fn remote_credential(
                &self,
                ctx: &Context<'_>,
            ) -> async_graphql::Result<Option<RemoteCredential>> {
                let spec = &self.0.stored.value.spec;
                let key = (spec.source.clone(), spec.target.clone());
                let all = tables(ctx)?.remote_credentials().await?;
                Ok(all.get(&key).map(Into::into))
            }
            /// Mirror counts by state.
            "mirrorCounts" mirror_counts -> MirrorCounts {
                let counts = cx.need(Table::Counts, cx.tables.counts_now())?;
                counts.get(MirrorParent::Link, &this.0.stored.value.name).into()
            }
            /// This link's mirrors, ordered by id.
            #[graphql(complexity = "crate::relay::complexity(first, last, child_complexity)")]
            #[allow(clippy::too_many_arguments)]
            async fn mirrors(
                &self,
                ctx: &Context<'_>,
                namespace: Option<String>,
                state: Option<MirrorState>,
                first: Option<i32>,
                after: Option<String>,
                last: Option<i32>,
                before: Option<String>,
            ) -> async_graphql::Result<FastConnection<Mirror, MirrorTotal>> {
                parent_mirror_page(
                    ctx,
                    MirrorParent::Link,
                    &self.0.stored.value.name,
                    MirrorPageArgs { namespace, state, first, after, last, before },
                )
                .await
            }
        }
    }
}

/// Link queries.
#[derive(Default)]
pub struct LinkQuery;

#[Object]
impl LinkQuery {
    /// Every link, by name (`first`/`after` forward, `last`/`before` backward).
    #[graphql(complexity = "crate::relay::complexity(first, last, child_complexity)")]
    async fn links(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<FastConnection<LinkNode, Total>> {
        let all = &tables(ctx)?.links().await?.all;
        let total = Total {
            total_count: all.len() as i64,
        };
        page_sorted_both(
            all.iter().cloned().map(LinkNode),
            |l| l.0.stored.value.name.clone(),
            first,
            after,
            last,
            before,
        )
        .map(|page| FastConnection(with_fields(page, total)))
    }

    /// Removed links whose mirrors are still being deleted from the clusters (durable clean-ups
    /// of `cleanupOnUnlink` links, retried while a source is unreachable). A link's mirror rows
    /// go with the link at once; the clusters follow when this is back to 0.
    async fn pending_link_cleanups(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        one!(db(ctx)?, |c| linkplane_store::link_cleanups::count(c))
    }

    /// One link by name.
    async fn link(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<Option<Fast<LinkNode>>> {
        Ok(tables(ctx)?
            .links()
            .await?
            .get(&name)
            .cloned()
            .map(|l| Fast(LinkNode(l))))
    }
}

/// Link mutations (operator role). Pausing is operational state, not spec, so it is allowed on
/// Git-owned links too; Git never overwrites it.
#[derive(Default)]
pub struct LinkMutation;

#[Object]
impl LinkMutation {
    /// Stops the link's reconciler from changing its mirrors (existing mirrors stay).
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn pause_link(&self, ctx: &Context<'_>, name: String) -> ApiResult<LinkNode> {
        set_paused(ctx, &name, true).await
    }

    /// Lets a paused link's reconciler change its mirrors again.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn resume_link(&self, ctx: &Context<'_>, name: String) -> ApiResult<LinkNode> {
        set_paused(ctx, &name, false).await
    }
}

async fn set_paused(ctx: &Context<'_>, name: &str, paused: bool) -> ApiResult<LinkNode> {
    let db = db(ctx)?;
    one!(db, |c| links::set_paused(c, name, paused))?;
    let link = one!(db, |c| links::get(c, name))?
        .ok_or_else(|| ApiError::NotFound(format!("Link {name:?} not found")))?;
    tracing::info!(
        link = name,
        paused,
        "link pause state changed through the API"
    );
    Ok(LinkNode(Arc::new(link)))
}
