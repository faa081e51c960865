//! Clusters: health, reconciler state, links in and out, exported services, held mirrors,
//! gateway liveness; and the `setClusterCredentials` mutation.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use linkplane_core::{Cluster, CredentialsRef};
use linkplane_store::{
    Stored, clusters,
    credentials::{self, CredentialsError},
    gateways::GatewayHealth,
    reconcilers::ReconcilerStatus,
    topology::MirrorParent,
};
use secrecy::SecretString;

use crate::{
    ApiContext,
    auth::{Role, RoleGuard},
    common::{Label, Total, db, labels, loader, page_sorted_both, tables, with_fields},
    db::{CountTable, Counts, GatewayTable, LinkTable, ReconcilerTable, ServicesOf, one},
    domain::{
        link::{GatewayProbe, LinkNode},
        mirror::{
            Mirror, MirrorCounts, MirrorPageArgs, MirrorState, MirrorTotal, Service,
            parent_mirror_page,
        },
    },
    error::{ApiError, ApiResult},
    plain::{Cx, Fast, FastConnection, Miss, Table, plain_enums, plain_object},
};

/// A summary of a cluster's condition, derived from its reconciler, the gateway probes of the
/// links that target it, and the state of the mirrors it holds.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterHealth {
    /// Reconciler running, every probed gateway alive, no mirror in Conflict or Error.
    Healthy,
    /// Reachable but something is wrong (reconciler degraded, a gateway probe failing, mirrors in
    /// Conflict or Error).
    Degraded,
    /// The reconciler cannot reach the cluster, or every probe of its gateway fails.
    Down,
    /// No reconciler report yet (starting, or no link uses the cluster).
    Unknown,
}

/// The health rule, pure so it is tested without a database.
pub(crate) fn health(
    reconciler: Option<linkplane_core::status::ReconcilerState>,
    probes: &[Option<bool>],
    held: &Counts,
) -> ClusterHealth {
    let probed: Vec<bool> = probes.iter().flatten().copied().collect();
    let all_dead = !probed.is_empty() && probed.iter().all(|alive| !alive);
    use linkplane_core::status::ReconcilerState as S;
    match reconciler {
        Some(S::Failed) => ClusterHealth::Down,
        _ if all_dead => ClusterHealth::Down,
        None | Some(S::Starting) | Some(S::Stopped) => ClusterHealth::Unknown,
        Some(S::Degraded) => ClusterHealth::Degraded,
        _ if probed.iter().any(|alive| !alive) || held.conflict + held.error > 0 => {
            ClusterHealth::Degraded
        }
        _ => ClusterHealth::Healthy,
    }
}

/// Where the cluster's kubeconfig comes from (never the kubeconfig itself).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsSource {
    /// A file on linkplane's filesystem.
    KubeconfigFile,
    /// A Kubernetes Secret in linkplane's own cluster.
    SecretRef,
    /// Set through `setClusterCredentials`, encrypted in Postgres.
    Stored,
}

/// A reconciler's lifecycle state (the store's `ReconcilerState`, one-to-one).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "linkplane_core::status::ReconcilerState")]
pub enum ReconcilerState {
    /// Connecting and listing.
    Starting,
    /// Watches synced, events flowing.
    Running,
    /// Running with errors (e.g. some writes failing).
    Degraded,
    /// Cannot reach or authenticate to the API server; retrying with backoff.
    Failed,
    /// Stopped because the cluster has no links.
    Stopped,
}

/// A cluster's reconciler status.
#[derive(Debug, Clone)]
pub struct ReconcilerInfo {
    /// Lifecycle state.
    pub state: ReconcilerState,
    /// Detail, e.g. the connection error.
    pub message: String,
    /// True once every watch listed once.
    pub watches_synced: bool,
    /// Last time the watches (re)listed.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// Last report.
    pub updated_at: DateTime<Utc>,
}

plain_object! {
    /// A cluster's reconciler status.
    #[Object]
    impl ReconcilerInfo {
        plain(this, cx) {
            /// Lifecycle state.
            "state" state -> ReconcilerState { this.state }
            /// Detail, e.g. the connection error.
            "message" message -> &str { &this.message }
            /// True once every watch listed once.
            "watchesSynced" watches_synced -> bool { this.watches_synced }
            /// Last time the watches (re)listed.
            "lastSyncAt" last_sync_at -> Option<DateTime<Utc>> { this.last_sync_at }
            /// Last report.
            "updatedAt" updated_at -> DateTime<Utc> { this.updated_at }
        }
    }
}

impl From<&ReconcilerStatus> for ReconcilerInfo {
    fn from(r: &ReconcilerStatus) -> Self {
        ReconcilerInfo {
            state: r.state.into(),
            message: r.message.clone(),
            watches_synced: r.watches_synced,
            last_sync_at: r.last_sync_at,
            updated_at: r.updated_at,
        }
    }
}

/// The target-side gateway configuration.
#[derive(SimpleObject, Debug, Clone)]
pub struct GatewayConfig {
    /// Addresses (IPs or DNS names).
    pub addresses: Vec<String>,
    /// Port.
    pub port: u32,
    /// mTLS identity.
    pub identity: String,
    /// Probe path.
    pub probe_path: String,
    /// Probe port.
    pub probe_port: u32,
    /// Probe period, e.g. `3s`.
    pub probe_period: String,
}

/// A linked Kubernetes cluster.
#[derive(Clone)]
pub struct ClusterNode(pub Arc<Stored<Cluster>>);

impl ClusterNode {
    fn name(&self) -> &str {
        &self.0.value.name
    }

    fn source_of_credentials(&self) -> CredentialsSource {
        match self.0.value.spec.credentials {
            CredentialsRef::KubeconfigFile(_) => CredentialsSource::KubeconfigFile,
            CredentialsRef::SecretRef(_) => CredentialsSource::SecretRef,
            CredentialsRef::Stored => CredentialsSource::Stored,
        }
    }

    /// The gateway health of every link targeting this cluster that was probed, by link name.
    fn probes<'t>(
        &self,
        links: &'t LinkTable,
        gateways: &'t GatewayTable,
    ) -> Vec<&'t GatewayHealth> {
        let mut probes: Vec<&GatewayHealth> = links
            .incoming(self.name())
            .iter()
            .filter_map(|l| gateways.get(&l.stored.value.name))
            .collect();
        probes.sort_by(|a, b| a.link.cmp(&b.link));
        probes
    }

    /// [`Self::probes`] from the request's tables (both asked for before either `?`, so one
    /// round loads both).
    fn probes_in<'t>(&self, cx: &Cx<'t>) -> Result<Vec<&'t GatewayHealth>, Miss> {
        let links = cx.need(Table::Links, cx.tables.links_now());
        let gateways = cx.need(Table::Gateways, cx.tables.gateways_now());
        Ok(self.probes(links?, gateways?))
    }

    fn health_from(
        &self,
        reconcilers: &ReconcilerTable,
        probes: &[&GatewayHealth],
        counts: &CountTable,
    ) -> ClusterHealth {
        let reconciler = reconcilers.get(self.name()).map(|r| r.state);
        let alive: Vec<Option<bool>> = probes.iter().map(|p| Some(p.alive)).collect();
        let held = counts.get(MirrorParent::SourceCluster, self.name());
        health(reconciler, &alive, &held)
    }
}

/// True when every probe succeeds, false when any fails; `None` without probes.
fn gateway_alive(probes: &[&GatewayHealth]) -> Option<bool> {
    (!probes.is_empty()).then(|| probes.iter().all(|p| p.alive))
}

/// Mean latency of the successful probes.
fn gateway_latency_ms(probes: &[&GatewayHealth]) -> Option<f64> {
    let latencies: Vec<f64> = probes.iter().filter_map(|p| p.latency_ms).collect();
    (!latencies.is_empty()).then(|| latencies.iter().sum::<f64>() / latencies.len() as f64)
}

plain_object! {
    #[Object(name = "Cluster")]
    impl ClusterNode {
        plain(this, cx) {
            /// Global id (`Cluster:<name>`), for `node(id:)`.
            "id" pub(crate) id -> ID { crate::domain::node::global_id("Cluster", this.name()) }
            /// Name.
            "name" gql_name -> &str { this.name() }
            /// Kubernetes API server URL.
            "apiServer" api_server -> &str { &this.0.value.spec.api_server }
            /// DNS suffix of the cluster's services.
            "clusterDomain" cluster_domain -> &str { &this.0.value.spec.cluster_domain }
            /// Linkerd's identity trust domain in this cluster (`multicluster.linkerd.io/trust-domain` of
            /// the credentials other clusters' Linkerd control planes use to reach it).
            "trustDomain" trust_domain -> &str { &this.0.value.spec.trust_domain }
            /// Namespace of this cluster's Linkerd control plane, where linkplane writes the
            /// remote-discovery credentials Secrets (never creating it).
            "linkerdNamespace" linkerd_namespace -> &str { &this.0.value.spec.linkerd_namespace }
            /// Labels export policies select on.
            async fn labels(&self) -> Vec<Label> {
                labels(&self.0.value.spec.labels)
            }
            /// Where the kubeconfig comes from; the content is never exposed.
            "credentialsSource" credentials_source -> CredentialsSource {
                this.source_of_credentials()
            }
            /// The kubeconfig file path or `namespace/secret#key` reference (operator role: it tells
            /// where secrets live). Null for stored credentials.
            #[graphql(guard = "RoleGuard(Role::Operator)")]
            async fn credentials_reference(&self) -> Option<String> {
                match &self.0.value.spec.credentials {
                    CredentialsRef::KubeconfigFile(path) => Some(path.clone()),
                    CredentialsRef::SecretRef(s) => Some(format!(
                        "{}/{}#{}",
                        s.namespace.as_deref().unwrap_or(""),
                        s.name,
                        s.key
                    )),
                    CredentialsRef::Stored => None,
                }
            }
            /// Whether a kubeconfig was set through `setClusterCredentials` (never the kubeconfig).
            "hasStoredCredentials" has_stored_credentials -> bool {
                let stored = cx.need(Table::Credentials, cx.tables.stored_credentials_now())?;
                stored.contains(this.name())
            }
            /// Gateway configuration, when the cluster has one.
            async fn gateway_config(&self) -> Option<GatewayConfig> {
                self.0.value.spec.gateway.as_ref().map(|g| GatewayConfig {
                    addresses: g.addresses.clone(),
                    port: g.port,
                    identity: g.identity.clone(),
                    probe_path: g.probe.path.clone(),
                    probe_port: g.probe.port,
                    probe_period: g.probe.period.to_string(),
                })
            }
            /// `api`, or `git:<source>` when a Git source declares it.
            "owner" owner -> String { this.0.owner.as_column() }
            /// Bumped on every spec change.
            "generation" generation -> i64 { this.0.generation }
            /// First stored.
            "createdAt" created_at -> DateTime<Utc> { this.0.created_at }
            /// Last changed.
            "updatedAt" updated_at -> DateTime<Utc> { this.0.updated_at }
            /// The reconciler's last report; null before the first.
            "reconciler" reconciler -> Option<ReconcilerInfo> {
                let all = cx.need(Table::Reconcilers, cx.tables.reconcilers_now())?;
                all.get(this.name()).map(ReconcilerInfo::from)
            }
            /// The lease of the replica running this cluster's watches, writer and gateway prober;
            /// null while no replica holds a valid one (none running, or a takeover in progress).
            /// (`owner` is who manages the cluster's configuration: Git or the API.)
            async fn lease(
                &self,
                ctx: &Context<'_>,
            ) -> async_graphql::Result<Option<crate::domain::replicas::ClusterLease>> {
                Ok(crate::domain::replicas::owner_of(ctx, self.name()).await?)
            }
            /// Summary health (see `ClusterHealth`).
            "health" health -> ClusterHealth {
                // Every table asked for before the first `?`, so one round loads them all.
                let links = cx.need(Table::Links, cx.tables.links_now());
                let gateways = cx.need(Table::Gateways, cx.tables.gateways_now());
                let reconcilers = cx.need(Table::Reconcilers, cx.tables.reconcilers_now());
                let counts = cx.need(Table::Counts, cx.tables.counts_now());
                let probes = this.probes(links?, gateways?);
                this.health_from(reconcilers?, &probes, counts?)
            }
            /// Gateway probes of every link targeting this cluster.
            "gatewayProbes" gateway_probes -> Vec<GatewayProbe> {
                this.probes_in(cx)?.into_iter().map(Into::into).collect()
            }
            /// True when every probe of this cluster's gateway succeeds, false when any fails; null
            /// when it was never probed.
            "gatewayAlive" gateway_alive -> Option<bool> { gateway_alive(&this.probes_in(cx)?) }
            /// Mean latency of the last successful probes, in milliseconds.
            "gatewayLatencyMs" gateway_latency_ms -> Option<f64> {
                gateway_latency_ms(&this.probes_in(cx)?)
            }
            /// Links whose source is this cluster: it receives mirrors of their targets' services.
            async fn outgoing_links(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<LinkNode>> {
                let links = tables(ctx)?.links().await?.outgoing(self.name());
                Ok(links.iter().cloned().map(LinkNode).collect())
            }
            /// Links whose target is this cluster: they mirror its exported services elsewhere.
            async fn incoming_links(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<LinkNode>> {
                let links = tables(ctx)?.links().await?.incoming(self.name());
                Ok(links.iter().cloned().map(LinkNode).collect())
            }
            /// Services of this cluster that some link mirrors, with their consumers.
            async fn exported_services(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Service>> {
                let s = loader(ctx)?
                    .load_one(ServicesOf(self.name().to_string()))
                    .await?
                    .unwrap_or_default();
                Ok(s.into_iter().map(Service).collect())
            }
            /// Counts of the mirrors this cluster holds, by state.
            "mirrorCounts" mirror_counts -> MirrorCounts {
                let counts = cx.need(Table::Counts, cx.tables.counts_now())?;
                counts.get(MirrorParent::SourceCluster, this.name()).into()
            }
            /// Mirrors this cluster holds, ordered by id.
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
                    MirrorParent::SourceCluster,
                    self.name(),
                    MirrorPageArgs { namespace, state, first, after, last, before },
                )
                .await
            }
        }
    }
}

plain_enums!(ClusterHealth, CredentialsSource, ReconcilerState);

/// Cluster queries.
#[derive(Default)]
pub struct ClusterQuery;

#[Object]
impl ClusterQuery {
    /// Every cluster, by name (`first`/`after` forward, `last`/`before` backward).
    #[graphql(complexity = "crate::relay::complexity(first, last, child_complexity)")]
    async fn clusters(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<FastConnection<ClusterNode, Total>> {
        let all = &tables(ctx)?.clusters().await?.all;
        let total = Total {
            total_count: all.len() as i64,
        };
        page_sorted_both(
            all.iter().cloned().map(ClusterNode),
            |c| c.0.value.name.clone(),
            first,
            after,
            last,
            before,
        )
        .map(|page| FastConnection(with_fields(page, total)))
    }

    /// One cluster by name.
    async fn cluster(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<Option<Fast<ClusterNode>>> {
        Ok(tables(ctx)?
            .clusters()
            .await?
            .get(&name)
            .cloned()
            .map(|c| Fast(ClusterNode(c))))
    }
}

/// What `setClusterCredentials` answers: never the kubeconfig.
#[derive(SimpleObject, Debug, Clone)]
pub struct CredentialsReceipt {
    /// Cluster name.
    pub cluster: String,
    /// When stored.
    pub stored_at: DateTime<Utc>,
    /// Whether the cluster's spec uses stored credentials (`credentials: stored`); when false
    /// the kubeconfig is kept but not used until the spec says so.
    pub in_use: bool,
}

/// Cluster mutations (operator role).
#[derive(Default)]
pub struct ClusterMutation;

#[Object]
impl ClusterMutation {
    /// Stores a cluster's kubeconfig encrypted with the server key; it can never be read back
    /// through the API. Allowed for Git-owned clusters: Git declares `credentials: stored` but
    /// never holds the secret itself.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn set_cluster_credentials(
        &self,
        ctx: &Context<'_>,
        cluster: String,
        #[graphql(secret, desc = "The kubeconfig (YAML). Write-only.")] kubeconfig: String,
    ) -> ApiResult<CredentialsReceipt> {
        let api = ctx.data_opt::<ApiContext>();
        if let Some(check) = api.and_then(|c| c.kubeconfig_check) {
            check(&kubeconfig)
                .map_err(|why| ApiError::BadUserInput(format!("invalid kubeconfig: {why}")))?;
        }
        let key = api
            .and_then(|c| c.credentials_key.clone())
            .ok_or_else(|| {
                ApiError::Unavailable(
                    "no credentials key is configured (--credentials-key-file / LINKPLANE_CREDENTIALS_KEY)"
                        .into(),
                )
            })?;
        let db = db(ctx)?;
        let stored = one!(db, |c| clusters::get(c, &cluster))?
            .ok_or_else(|| ApiError::NotFound(format!("Cluster {cluster:?} not found")))?;
        let secret = SecretString::from(kubeconfig);
        let mut conn = db.conn(1).await?;
        credentials::put(&mut conn, &cluster, &secret, &key)
            .await
            .map_err(|e| match e {
                CredentialsError::InvalidKubeconfig(_) => ApiError::BadUserInput(e.to_string()),
                CredentialsError::Store(s) => s.into(),
                other => ApiError::internal(&other),
            })?;
        tracing::info!(cluster = %cluster, "cluster credentials stored through the API");
        Ok(CredentialsReceipt {
            in_use: stored.value.spec.credentials == CredentialsRef::Stored,
            cluster,
            stored_at: Utc::now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_rule() {
        use linkplane_core::status::ReconcilerState as S;
        let ok = Counts::default();
        let bad = Counts {
            error: 1,
            ..Counts::default()
        };
        assert_eq!(health(None, &[], &ok), ClusterHealth::Unknown);
        assert_eq!(health(Some(S::Running), &[], &ok), ClusterHealth::Healthy);
        assert_eq!(
            health(Some(S::Running), &[Some(true)], &bad),
            ClusterHealth::Degraded
        );
        assert_eq!(
            health(Some(S::Running), &[Some(true), Some(false)], &ok),
            ClusterHealth::Degraded
        );
        assert_eq!(
            health(Some(S::Running), &[Some(false)], &ok),
            ClusterHealth::Down
        );
        assert_eq!(
            health(Some(S::Failed), &[Some(true)], &ok),
            ClusterHealth::Down
        );
        assert_eq!(health(Some(S::Degraded), &[], &ok), ClusterHealth::Degraded);
    }
}
