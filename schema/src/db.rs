//! The schema's only path to the database: [`Db`] counts every SQL statement it runs, and the
//! [`Loader`] batches keys so one level of a query costs one statement whatever the fleet size.
//!
//! Fleet-sized tables (clusters, links, gateway health, reconciler status) are read whole, once
//! per request, by the loader; mirror-sized tables are read by key sets (`= ANY($1)`). The
//! counter counts statements: each `Db` call is annotated with how many it runs (all one, except
//! `federation::list`, which runs two).

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader as GqlLoader};
use linkplane_core::Cluster;
use linkplane_store::{
    Store, Stored, clusters, credentials,
    gateways::GatewayHealth,
    links::StoredLink,
    mirrors::{MirrorRow, MirrorState},
    reconcilers::ReconcilerStatus,
    sync_history::SyncRecord,
    topology::{self, ExportedService, MirrorParent},
};
use sqlx::pool::PoolConnection;
use tokio::sync::OnceCell;

use crate::error::ApiError;

/// The store plus a statement counter shared by every clone.
#[derive(Clone, Debug)]
pub struct Db {
    store: Store,
    statements: Arc<AtomicU64>,
}

impl Db {
    /// Wraps a store.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            statements: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The store (for subscriptions, which LISTEN rather than query).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// SQL statements run through this handle so far: what the constant-cost tests assert on.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// A connection for a call that runs `statements` SQL statements.
    pub(crate) async fn conn(
        &self,
        statements: u64,
    ) -> Result<PoolConnection<sqlx::Postgres>, ApiError> {
        self.statements.fetch_add(statements, Ordering::Relaxed);
        self.store.acquire().await.map_err(ApiError::from)
    }
}

/// Runs `f` on a counted connection (one statement).
macro_rules! one {
    ($db:expr, |$c:ident| $body:expr) => {{
        let mut conn = $db.conn(1).await?;
        let $c: &mut ::linkplane_store::PgConnection = &mut conn;
        $body.await.map_err($crate::error::ApiError::from)
    }};
}
pub(crate) use one;

/// Loader errors must be `Clone`; the cause was already logged when it became an [`ApiError`].
pub type LoadError = ApiError;

/// Batches and caches (per request) every keyed read of the schema.
///
/// Fleet-sized tables and per-parent mirror counts are read whole at most once per request
/// (`OnceCell`s below), so their statement count does not even depend on how the DataLoader's
/// batching window splits keys; mirror pages, exported services and sync history are read by
/// key sets through the DataLoader.
pub struct Loader {
    db: Db,
    clusters: OnceCell<ClusterTable>,
    links: OnceCell<Vec<Arc<StoredLink>>>,
    gateways: OnceCell<HashMap<String, GatewayHealth>>,
    reconcilers: OnceCell<HashMap<String, ReconcilerStatus>>,
    credentials: OnceCell<Vec<String>>,
    counts: [OnceCell<HashMap<String, Counts>>; 3],
}

/// The per-request loader type put into request data.
pub type RequestLoader = DataLoader<Loader, HashMapCache>;

/// Keys gathered within this window go into one batch. Small, because every level of a query
/// that needs a keyed load waits for it once.
const BATCH_WINDOW: Duration = Duration::from_millis(1);

/// A fresh loader (and cache) for one request.
pub fn request_loader(db: &Db) -> RequestLoader {
    DataLoader::with_cache(
        Loader {
            db: db.clone(),
            clusters: OnceCell::new(),
            links: OnceCell::new(),
            gateways: OnceCell::new(),
            reconcilers: OnceCell::new(),
            credentials: OnceCell::new(),
            counts: [OnceCell::new(), OnceCell::new(), OnceCell::new()],
        },
        tokio::spawn,
        HashMapCache::default(),
    )
    .delay(BATCH_WINDOW)
}

/// A cluster by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterByName(pub String);

/// Links touching a cluster, in one direction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LinksOf {
    /// Links whose source is the cluster (it receives mirrors).
    Source(String),
    /// Links whose target is the cluster (it exports).
    Target(String),
}

/// A link by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkByName(pub String);

/// A link's gateway health.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GatewayOf(pub String);

/// A cluster's reconciler status.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReconcilerOf(pub String);

/// Mirror counts of a link or cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CountsOf(pub MirrorParent, pub String);

/// One page of mirrors of a link or cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MirrorPageOf {
    /// Grouping column.
    pub by: MirrorParent,
    /// Link or cluster name.
    pub parent: String,
    /// Namespace filter.
    pub namespace: Option<String>,
    /// State filter.
    pub state: Option<MirrorState>,
    /// Cursor (exclusive).
    pub after_id: i64,
    /// Page size (already including the look-ahead row).
    pub limit: i64,
}

/// Exported services of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServicesOf(pub String);

/// Whether a cluster has stored credentials.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CredentialsOf(pub String);

/// A Git source's newest sync attempts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistoryOf(pub String, pub i64);

/// A Git source's drift report.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DriftOf(pub String);

/// Counts per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
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

impl Counts {
    fn add(&mut self, state: MirrorState, n: i64) {
        match state {
            MirrorState::Mirrored => self.mirrored += n,
            MirrorState::Conflict => self.conflict += n,
            MirrorState::MissingNamespace => self.missing_namespace += n,
            MirrorState::PolicyDenied => self.policy_denied += n,
            MirrorState::Error => self.error += n,
        }
    }

    fn add_all(&mut self, state: MirrorState, n: i64) {
        self.add(state, n);
    }

    fn merge(&mut self, other: &Counts) {
        self.mirrored += other.mirrored;
        self.conflict += other.conflict;
        self.missing_namespace += other.missing_namespace;
        self.policy_denied += other.policy_denied;
        self.error += other.error;
    }

    /// Every mirror.
    pub fn total(&self) -> i64 {
        self.mirrored + self.conflict + self.missing_namespace + self.policy_denied + self.error
    }
}

type Res<K, V> = Result<HashMap<K, V>, LoadError>;

/// Every cluster in name order, and an index by name.
pub(crate) type ClusterTable = (
    Vec<Arc<Stored<Cluster>>>,
    HashMap<String, Arc<Stored<Cluster>>>,
);

/// Everything of a [`MirrorPageOf`] but the parent: keys sharing it share one statement.
type PageShape = (MirrorParent, Option<String>, Option<MirrorState>, i64, i64);

impl Loader {
    /// Every cluster (by name) and an index by name; read once per request.
    pub(crate) async fn clusters(
        &self,
    ) -> Result<
        &(
            Vec<Arc<Stored<Cluster>>>,
            HashMap<String, Arc<Stored<Cluster>>>,
        ),
        LoadError,
    > {
        self.clusters
            .get_or_try_init(|| async {
                let all: Vec<Arc<Stored<Cluster>>> = one!(self.db, |c| clusters::list(c))?
                    .into_iter()
                    .map(Arc::new)
                    .collect();
                let index = all
                    .iter()
                    .map(|s| (s.value.name.clone(), s.clone()))
                    .collect();
                Ok((all, index))
            })
            .await
    }

    async fn all_clusters(&self) -> Result<&HashMap<String, Arc<Stored<Cluster>>>, LoadError> {
        Ok(&self.clusters().await?.1)
    }

    /// Every link, by name; read once per request.
    pub(crate) async fn links(&self) -> Result<&Vec<Arc<StoredLink>>, LoadError> {
        self.all_links().await
    }

    async fn all_links(&self) -> Result<&Vec<Arc<StoredLink>>, LoadError> {
        self.links
            .get_or_try_init(|| async {
                let all = one!(self.db, |c| linkplane_store::links::list(c))?;
                Ok(all.into_iter().map(Arc::new).collect())
            })
            .await
    }

    async fn all_gateways(&self) -> Result<&HashMap<String, GatewayHealth>, LoadError> {
        self.gateways
            .get_or_try_init(|| async {
                let all = one!(self.db, |c| linkplane_store::gateways::list(c))?;
                Ok(all.into_iter().map(|g| (g.link.clone(), g)).collect())
            })
            .await
    }

    async fn all_reconcilers(&self) -> Result<&HashMap<String, ReconcilerStatus>, LoadError> {
        self.reconcilers
            .get_or_try_init(|| async {
                let all = one!(self.db, |c| linkplane_store::reconcilers::list(c))?;
                Ok(all.into_iter().map(|r| (r.cluster.clone(), r)).collect())
            })
            .await
    }

    async fn all_credentials(&self) -> Result<&Vec<String>, LoadError> {
        self.credentials
            .get_or_try_init(|| async {
                let names: Vec<String> = self.all_clusters().await?.keys().cloned().collect();
                one!(self.db, |c| credentials::stored_for(c, &names))
            })
            .await
    }

    /// Mirror counts per parent. One `GROUP BY link, state` statement per request; per-cluster
    /// counts are summed from it (a link has exactly one source and one target).
    async fn all_counts(&self, by: MirrorParent) -> Result<&HashMap<String, Counts>, LoadError> {
        let by_link = self.counts[0]
            .get_or_try_init(|| async {
                let rows = one!(self.db, |c| topology::mirror_counts(
                    c,
                    MirrorParent::Link,
                    None
                ))?;
                let mut out: HashMap<String, Counts> = HashMap::new();
                for r in rows {
                    out.entry(r.parent).or_default().add_all(r.state, r.count);
                }
                Ok::<_, LoadError>(out)
            })
            .await?;
        let slot = match by {
            MirrorParent::Link => return Ok(by_link),
            MirrorParent::SourceCluster => &self.counts[1],
            MirrorParent::TargetCluster => &self.counts[2],
        };
        let links = self.all_links().await?;
        slot.get_or_try_init(|| async {
            let mut out: HashMap<String, Counts> = HashMap::new();
            for l in links {
                let spec = &l.stored.value.spec;
                let cluster = if by == MirrorParent::SourceCluster {
                    &spec.source
                } else {
                    &spec.target
                };
                if let Some(c) = by_link.get(&l.stored.value.name) {
                    out.entry(cluster.clone()).or_default().merge(c);
                }
            }
            Ok(out)
        })
        .await
    }
}

/// Picks `keys` out of a whole-table map.
fn pick<K: Clone + Hash + Eq, V: Clone>(
    keys: &[K],
    name: impl Fn(&K) -> &str,
    table: &HashMap<String, V>,
) -> HashMap<K, V> {
    keys.iter()
        .filter_map(|k| table.get(name(k)).map(|v| (k.clone(), v.clone())))
        .collect()
}

impl GqlLoader<ClusterByName> for Loader {
    type Value = Arc<Stored<Cluster>>;
    type Error = LoadError;
    async fn load(&self, keys: &[ClusterByName]) -> Res<ClusterByName, Self::Value> {
        Ok(pick(keys, |k| &k.0, self.all_clusters().await?))
    }
}

impl GqlLoader<LinksOf> for Loader {
    type Value = Vec<Arc<StoredLink>>;
    type Error = LoadError;
    async fn load(&self, keys: &[LinksOf]) -> Res<LinksOf, Self::Value> {
        let all = self.all_links().await?;
        let mut out: HashMap<LinksOf, Self::Value> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for l in all {
            for k in [
                LinksOf::Source(l.stored.value.spec.source.clone()),
                LinksOf::Target(l.stored.value.spec.target.clone()),
            ] {
                if let Some(v) = out.get_mut(&k) {
                    v.push(l.clone());
                }
            }
        }
        Ok(out)
    }
}

impl GqlLoader<LinkByName> for Loader {
    type Value = Arc<StoredLink>;
    type Error = LoadError;
    async fn load(&self, keys: &[LinkByName]) -> Res<LinkByName, Self::Value> {
        let all = self.all_links().await?;
        Ok(all
            .iter()
            .filter_map(|l| {
                let k = LinkByName(l.stored.value.name.clone());
                keys.contains(&k).then(|| (k, l.clone()))
            })
            .collect())
    }
}

impl GqlLoader<GatewayOf> for Loader {
    type Value = GatewayHealth;
    type Error = LoadError;
    async fn load(&self, keys: &[GatewayOf]) -> Res<GatewayOf, Self::Value> {
        Ok(pick(keys, |k| &k.0, self.all_gateways().await?))
    }
}

impl GqlLoader<ReconcilerOf> for Loader {
    type Value = ReconcilerStatus;
    type Error = LoadError;
    async fn load(&self, keys: &[ReconcilerOf]) -> Res<ReconcilerOf, Self::Value> {
        Ok(pick(keys, |k| &k.0, self.all_reconcilers().await?))
    }
}

impl GqlLoader<CountsOf> for Loader {
    type Value = Counts;
    type Error = LoadError;
    async fn load(&self, keys: &[CountsOf]) -> Res<CountsOf, Self::Value> {
        let mut out = HashMap::new();
        for k in keys {
            let counts = self.all_counts(k.0).await?;
            out.insert(k.clone(), counts.get(&k.1).copied().unwrap_or_default());
        }
        Ok(out)
    }
}

impl GqlLoader<MirrorPageOf> for Loader {
    type Value = Vec<MirrorRow>;
    type Error = LoadError;
    async fn load(&self, keys: &[MirrorPageOf]) -> Res<MirrorPageOf, Self::Value> {
        // Keys that differ only by parent share one statement.
        let mut groups: HashMap<PageShape, Vec<String>> = HashMap::new();
        for k in keys {
            groups
                .entry((k.by, k.namespace.clone(), k.state, k.after_id, k.limit))
                .or_default()
                .push(k.parent.clone());
        }
        let mut out: HashMap<MirrorPageOf, Vec<MirrorRow>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for ((by, namespace, state, after_id, limit), parents) in groups {
            let rows = one!(self.db, |c| topology::mirror_pages(
                c,
                by,
                &parents,
                namespace.as_deref(),
                state,
                after_id,
                limit
            ))?;
            for r in rows {
                let parent = match by {
                    MirrorParent::Link => r.status.link.clone(),
                    MirrorParent::SourceCluster => r.status.source_cluster.clone(),
                    MirrorParent::TargetCluster => r.status.target_cluster.clone(),
                };
                let key = MirrorPageOf {
                    by,
                    parent,
                    namespace: namespace.clone(),
                    state,
                    after_id,
                    limit,
                };
                if let Some(v) = out.get_mut(&key) {
                    v.push(r);
                }
            }
        }
        Ok(out)
    }
}

impl GqlLoader<ServicesOf> for Loader {
    type Value = Vec<Arc<ExportedService>>;
    type Error = LoadError;
    async fn load(&self, keys: &[ServicesOf]) -> Res<ServicesOf, Self::Value> {
        let targets: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let services = one!(self.db, |c| topology::services_of(c, &targets))?;
        let mut out: HashMap<ServicesOf, Self::Value> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for s in services {
            if let Some(v) = out.get_mut(&ServicesOf(s.target_cluster.clone())) {
                v.push(Arc::new(s));
            }
        }
        Ok(out)
    }
}

impl GqlLoader<CredentialsOf> for Loader {
    type Value = bool;
    type Error = LoadError;
    async fn load(&self, keys: &[CredentialsOf]) -> Res<CredentialsOf, Self::Value> {
        let stored = self.all_credentials().await?;
        Ok(keys
            .iter()
            .map(|k| (k.clone(), stored.contains(&k.0)))
            .collect())
    }
}

impl GqlLoader<HistoryOf> for Loader {
    type Value = Vec<SyncRecord>;
    type Error = LoadError;
    async fn load(&self, keys: &[HistoryOf]) -> Res<HistoryOf, Self::Value> {
        let mut out: HashMap<HistoryOf, Self::Value> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        let mut limits: Vec<i64> = keys.iter().map(|k| k.1).collect();
        limits.sort_unstable();
        limits.dedup();
        for limit in limits {
            let sources: Vec<String> = keys
                .iter()
                .filter(|k| k.1 == limit)
                .map(|k| k.0.clone())
                .collect();
            let rows = one!(self.db, |c| topology::sync_history_of(c, &sources, limit))?;
            for r in rows {
                if let Some(v) = out.get_mut(&HistoryOf(r.source.clone(), limit)) {
                    v.push(r);
                }
            }
        }
        Ok(out)
    }
}

impl GqlLoader<DriftOf> for Loader {
    type Value = Vec<linkplane_store::gitops::DriftEntry>;
    type Error = LoadError;
    async fn load(&self, keys: &[DriftOf]) -> Res<DriftOf, Self::Value> {
        let sources: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = one!(self.db, |c| topology::drift_of(c, &sources))?;
        let mut out: HashMap<DriftOf, Self::Value> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for (source, entry) in rows {
            if let Some(v) = out.get_mut(&DriftOf(source)) {
                v.push(entry);
            }
        }
        Ok(out)
    }
}
