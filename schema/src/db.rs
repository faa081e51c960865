//! The schema's only path to the database: [`Db`] counts every SQL statement it runs, and the
//! [`Loader`] batches keys so one level of a query costs one statement whatever the fleet size.
//!
//! Fleet-sized tables (clusters, links, gateway health, reconciler status, per-link mirror counts,
//! which credentials are stored) are read whole, at most once per request, and indexed in memory:
//! resolvers look them up directly through [`Loader`]'s methods, without the DataLoader, whose
//! batching window (and task hop) would add a delay per query level for data already in hand.
//! Mirror-sized tables are read by key sets (`= ANY($1)`) through the DataLoader. The counter
//! counts statements: each `Db` call is annotated with how many it runs (all one, except
//! `federation::list`, which runs two).

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    hash::Hash,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
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
use sqlx::{PgConnection, pool::PoolConnection};
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
        self.count(statements);
        self.store.acquire().await.map_err(ApiError::from)
    }

    /// Counts `statements` run on a connection already in hand.
    fn count(&self, statements: u64) {
        self.statements.fetch_add(statements, Ordering::Relaxed);
    }
}

/// A connection lent by a [`Loader`]: its request's kept connection when free, else a fresh one
/// from the pool; either way it is kept for the request's next statement when the slot is empty.
///
/// Every pool acquire costs a round trip of its own (sqlx pings a connection before handing it
/// out), so a request whose statements each took a fresh connection paid two round trips per
/// statement. Statements run one at a time reuse the one connection; concurrent ones still get
/// their own. The connection goes back to the pool with the loader, at the end of the request.
pub(crate) struct Lease<'a> {
    conn: Option<PoolConnection<sqlx::Postgres>>,
    /// Where the connection goes back to; `None`: straight back to the pool.
    home: Option<&'a Mutex<Option<PoolConnection<sqlx::Postgres>>>>,
}

impl std::ops::Deref for Lease<'_> {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        // Only `Drop` takes the connection out.
        self.conn
            .as_deref()
            .expect("a lease holds its connection until dropped")
    }
}

impl std::ops::DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn
            .as_deref_mut()
            .expect("a lease holds its connection until dropped")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let (Some(conn), Some(home)) = (self.conn.take(), self.home) else {
            return;
        };
        let mut home = home.lock().unwrap_or_else(PoisonError::into_inner);
        if home.is_none() {
            *home = Some(conn);
        }
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
/// Fleet-sized tables are read whole at most once per request (`OnceCell`s below), so their
/// statement count does not depend on how the DataLoader's batching window splits keys; mirror
/// pages, exported services and sync history are read by key sets through the DataLoader.
pub struct Loader {
    db: Db,
    /// Whether a connection is kept between statements (not for subscriptions).
    keep_connection: bool,
    /// The connection kept between this request's statements (see [`Lease`]).
    kept: Mutex<Option<PoolConnection<sqlx::Postgres>>>,
    clusters: OnceCell<ClusterTable>,
    links: OnceCell<LinkTable>,
    gateways: OnceCell<HashMap<String, GatewayHealth>>,
    reconcilers: OnceCell<HashMap<String, ReconcilerStatus>>,
    credentials: OnceCell<HashSet<String>>,
    counts: OnceCell<CountTable>,
    remote_credentials: OnceCell<RemoteCredentialTable>,
}

/// The per-request loader type put into request data.
pub type RequestLoader = DataLoader<Loader, HashMapCache>;

/// Keys gathered within this window go into one batch. Small, because every level of a query
/// that needs a keyed load waits for it once.
const BATCH_WINDOW: Duration = Duration::from_millis(1);

/// A fresh loader (and cache) for one query or mutation.
pub fn request_loader(db: &Db) -> RequestLoader {
    loader(db, true)
}

/// A loader for a subscription, which keeps its request data for the stream's whole life: it
/// keeps no connection between statements (queries keep one), so none is held for hours.
pub fn subscription_loader(db: &Db) -> RequestLoader {
    loader(db, false)
}

fn loader(db: &Db, keep_connection: bool) -> RequestLoader {
    DataLoader::with_cache(
        Loader {
            db: db.clone(),
            keep_connection,
            kept: Mutex::new(None),
            clusters: OnceCell::new(),
            links: OnceCell::new(),
            gateways: OnceCell::new(),
            reconcilers: OnceCell::new(),
            credentials: OnceCell::new(),
            counts: OnceCell::new(),
            remote_credentials: OnceCell::new(),
        },
        tokio::spawn,
        HashMapCache::default(),
    )
    .delay(BATCH_WINDOW)
}

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
pub(crate) struct ClusterTable {
    /// In name order.
    pub(crate) all: Vec<Arc<Stored<Cluster>>>,
    by_name: HashMap<String, Arc<Stored<Cluster>>>,
}

impl ClusterTable {
    /// A cluster by name.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Stored<Cluster>>> {
        self.by_name.get(name)
    }
}

/// Every link in name order, indexed by name and by each end.
pub(crate) struct LinkTable {
    /// In name order.
    pub(crate) all: Vec<Arc<StoredLink>>,
    by_name: HashMap<String, Arc<StoredLink>>,
    by_source: HashMap<String, Vec<Arc<StoredLink>>>,
    by_target: HashMap<String, Vec<Arc<StoredLink>>>,
}

impl LinkTable {
    /// A link by name.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<StoredLink>> {
        self.by_name.get(name)
    }

    /// Links whose source is `cluster` (it receives mirrors), in name order.
    pub(crate) fn outgoing(&self, cluster: &str) -> &[Arc<StoredLink>] {
        self.by_source.get(cluster).map_or(&[], Vec::as_slice)
    }

    /// Links whose target is `cluster` (it exports), in name order.
    pub(crate) fn incoming(&self, cluster: &str) -> &[Arc<StoredLink>] {
        self.by_target.get(cluster).map_or(&[], Vec::as_slice)
    }
}

/// Mirror counts per link, and summed per source and per target cluster.
pub(crate) struct CountTable {
    by_link: HashMap<String, Counts>,
    by_source: HashMap<String, Counts>,
    by_target: HashMap<String, Counts>,
}

impl CountTable {
    /// The counts of a link or cluster (zero when it has no mirrors).
    pub(crate) fn get(&self, by: MirrorParent, parent: &str) -> Counts {
        let map = match by {
            MirrorParent::Link => &self.by_link,
            MirrorParent::SourceCluster => &self.by_source,
            MirrorParent::TargetCluster => &self.by_target,
        };
        map.get(parent).copied().unwrap_or_default()
    }
}

/// Gateway health by link.
pub(crate) type GatewayTable = HashMap<String, GatewayHealth>;
/// Reconciler status by cluster.
pub(crate) type ReconcilerTable = HashMap<String, ReconcilerStatus>;
/// Remote-discovery credential state by `(source, target)`.
pub(crate) type RemoteCredentialTable =
    HashMap<(String, String), linkplane_store::remote_credentials::RemoteCredential>;

/// Everything of a [`MirrorPageOf`] but the parent: keys sharing it share one statement.
type PageShape = (MirrorParent, Option<String>, Option<MirrorState>, i64, i64);

/// A table's loading future, boxed. Resolvers await the accessors below, and async-graphql
/// allocates and moves each field's whole resolver future for every field it resolves: an inline
/// load (pool acquire, query, decode: kilobytes of state) made every field of every node pay for
/// it, and every concurrent first caller built one. Boxed inside `get_or_try_init`, it is built
/// once, by the caller that loads, and the accessors' futures stay a few hundred bytes.
type Loading<'a, T> = Pin<Box<dyn Future<Output = Result<T, LoadError>> + Send + 'a>>;

impl Loader {
    /// A connection for a call that runs `statements` SQL statements (see [`Lease`]).
    pub(crate) async fn conn(&self, statements: u64) -> Result<Lease<'_>, ApiError> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let conn = match kept {
            Some(conn) => {
                self.db.count(statements);
                conn
            }
            None => self.db.conn(statements).await?,
        };
        Ok(Lease {
            conn: Some(conn),
            home: self.keep_connection.then_some(&self.kept),
        })
    }

    /// Every cluster; read once per request.
    pub(crate) async fn clusters(&self) -> Result<&ClusterTable, LoadError> {
        self.clusters
            .get_or_try_init(|| -> Loading<'_, _> { Box::pin(self.load_clusters()) })
            .await
    }

    async fn load_clusters(&self) -> Result<ClusterTable, LoadError> {
        let all: Vec<Arc<Stored<Cluster>>> = one!(self, |c| clusters::list(c))?
            .into_iter()
            .map(Arc::new)
            .collect();
        let by_name = all
            .iter()
            .map(|s| (s.value.name.clone(), s.clone()))
            .collect();
        Ok(ClusterTable { all, by_name })
    }

    /// Every link; read once per request.
    pub(crate) async fn links(&self) -> Result<&LinkTable, LoadError> {
        self.links
            .get_or_try_init(|| -> Loading<'_, _> { Box::pin(self.load_links()) })
            .await
    }

    async fn load_links(&self) -> Result<LinkTable, LoadError> {
        let all: Vec<Arc<StoredLink>> = one!(self, |c| linkplane_store::links::list(c))?
            .into_iter()
            .map(Arc::new)
            .collect();
        let mut table = LinkTable {
            by_name: HashMap::with_capacity(all.len()),
            by_source: HashMap::new(),
            by_target: HashMap::new(),
            all: Vec::new(),
        };
        for l in &all {
            let v = &l.stored.value;
            table.by_name.insert(v.name.clone(), l.clone());
            table
                .by_source
                .entry(v.spec.source.clone())
                .or_default()
                .push(l.clone());
            table
                .by_target
                .entry(v.spec.target.clone())
                .or_default()
                .push(l.clone());
        }
        table.all = all;
        Ok(table)
    }

    /// Every link's gateway health (links never probed are absent); read once per request.
    pub(crate) async fn gateways(&self) -> Result<&GatewayTable, LoadError> {
        self.gateways
            .get_or_try_init(|| -> Loading<'_, _> {
                Box::pin(async {
                    let all = one!(self, |c| linkplane_store::gateways::list(c))?;
                    Ok(all.into_iter().map(|g| (g.link.clone(), g)).collect())
                })
            })
            .await
    }

    /// Every pair's remote-discovery credential state; read once per request.
    pub(crate) async fn remote_credentials(&self) -> Result<&RemoteCredentialTable, LoadError> {
        self.remote_credentials
            .get_or_try_init(|| -> Loading<'_, _> {
                Box::pin(async {
                    let all = one!(self, |c| linkplane_store::remote_credentials::list(c))?;
                    Ok(all
                        .into_iter()
                        .map(|r| ((r.source_cluster.clone(), r.target_cluster.clone()), r))
                        .collect())
                })
            })
            .await
    }

    /// Every cluster's reconciler status (clusters without a report are absent); read once per
    /// request.
    pub(crate) async fn reconcilers(&self) -> Result<&ReconcilerTable, LoadError> {
        self.reconcilers
            .get_or_try_init(|| -> Loading<'_, _> {
                Box::pin(async {
                    let all = one!(self, |c| linkplane_store::reconcilers::list(c))?;
                    Ok(all.into_iter().map(|r| (r.cluster.clone(), r)).collect())
                })
            })
            .await
    }

    /// The clusters with a stored kubeconfig; read once per request.
    pub(crate) async fn stored_credentials(&self) -> Result<&HashSet<String>, LoadError> {
        self.credentials
            .get_or_try_init(|| -> Loading<'_, _> {
                Box::pin(async {
                    let names: Vec<String> =
                        self.clusters().await?.by_name.keys().cloned().collect();
                    let stored = one!(self, |c| credentials::stored_for(c, &names))?;
                    Ok(stored.into_iter().collect())
                })
            })
            .await
    }

    /// Mirror counts. One statement per request over the per-link counts table; per-cluster
    /// counts are summed from it (a link has exactly one source and one target).
    pub(crate) async fn counts(&self) -> Result<&CountTable, LoadError> {
        self.counts
            .get_or_try_init(|| -> Loading<'_, _> { Box::pin(self.load_counts()) })
            .await
    }

    async fn load_counts(&self) -> Result<CountTable, LoadError> {
        let rows = one!(self, |c| topology::mirror_counts(
            c,
            MirrorParent::Link,
            None
        ))?;
        let mut by_link: HashMap<String, Counts> = HashMap::new();
        for r in rows {
            by_link.entry(r.parent).or_default().add(r.state, r.count);
        }
        let mut table = CountTable {
            by_link,
            by_source: HashMap::new(),
            by_target: HashMap::new(),
        };
        for l in &self.links().await?.all {
            let v = &l.stored.value;
            if let Some(c) = table.by_link.get(&v.name) {
                table
                    .by_source
                    .entry(v.spec.source.clone())
                    .or_default()
                    .merge(c);
                table
                    .by_target
                    .entry(v.spec.target.clone())
                    .or_default()
                    .merge(c);
            }
        }
        Ok(table)
    }

    /// The links, when already loaded in this request (for the plain pass, see `plain`).
    pub(crate) fn links_now(&self) -> Option<&LinkTable> {
        self.links.get()
    }

    /// The gateway health, when already loaded.
    pub(crate) fn gateways_now(&self) -> Option<&GatewayTable> {
        self.gateways.get()
    }

    /// The reconciler status, when already loaded.
    pub(crate) fn reconcilers_now(&self) -> Option<&ReconcilerTable> {
        self.reconcilers.get()
    }

    /// The stored credentials, when already loaded.
    pub(crate) fn stored_credentials_now(&self) -> Option<&HashSet<String>> {
        self.credentials.get()
    }

    /// The mirror counts, when already loaded.
    pub(crate) fn counts_now(&self) -> Option<&CountTable> {
        self.counts.get()
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
            let rows = one!(self, |c| topology::mirror_pages(
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
        let services = one!(self, |c| topology::services_of(c, &targets))?;
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
            let rows = one!(self, |c| linkplane_store::sync_history::newest_of(
                c, &sources, limit
            ))?;
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
        let rows = one!(self, |c| linkplane_store::gitops::drift_of(c, &sources))?;
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
