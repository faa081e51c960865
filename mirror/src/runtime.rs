//! Shared state of the running reconcilers: the configuration snapshot, one [`ClusterRuntime`]
//! per cluster (client, watch set, index, write queue) and the routing of watch events to
//! `(link, namespace, service)` keys.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt::Debug,
    sync::{
        Arc, OnceLock, RwLock,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Service};
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{WatchStreamExt, watcher},
};
use linkplane_core::{
    Cluster, ExportPolicy, Link, naming::MIRRORED_SERVICE_LABEL, plan::GatewayView,
};
use linkplane_store::{Store, reconcilers::ReconcilerState};
use tokio::task::JoinHandle;

use crate::{
    Metrics,
    convert::{index_endpoints, index_namespace, index_service},
    credentials::Credentials,
    index::ClusterIndex,
    ownership::Ownership,
    queue::WorkQueue,
    slim::{SlimEndpoints, SlimNamespace, SlimService},
    status::{StatusMsg, StatusSink},
};

/// A unit of work: mirror `(namespace, service)` of `link`'s target into its source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MirrorKey {
    /// Link name.
    pub link: String,
    /// Namespace.
    pub namespace: String,
    /// Remote Service name.
    pub service: String,
}

/// A link as the supervisor runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkEntry {
    /// The link.
    pub link: Link,
    /// Operator pause: keep mirrors, change nothing.
    pub paused: bool,
}

/// The configuration the reconcilers work from, replaced wholesale on every change.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Clusters by name.
    pub clusters: BTreeMap<String, Cluster>,
    /// Links by name.
    pub links: BTreeMap<String, LinkEntry>,
    /// Every export policy.
    pub policies: Vec<ExportPolicy>,
}

impl Snapshot {
    /// Links whose target is `cluster`.
    pub fn links_targeting<'a>(&'a self, cluster: &'a str) -> impl Iterator<Item = &'a LinkEntry> {
        self.links
            .values()
            .filter(move |l| l.link.spec.target == cluster)
    }

    /// Links whose source is `cluster`.
    pub fn links_into<'a>(&'a self, cluster: &'a str) -> impl Iterator<Item = &'a LinkEntry> {
        self.links
            .values()
            .filter(move |l| l.link.spec.source == cluster)
    }
}

/// Runtime options (the server maps its flags onto these).
#[derive(Debug, Clone)]
pub struct Options {
    /// Writes in flight per source cluster.
    pub concurrency: usize,
    /// Full resync interval: the safety net, not the main path.
    pub resync_interval: Duration,
    /// How often batched mirror states are flushed to Postgres.
    pub status_flush: Duration,
    /// How to obtain cluster credentials.
    pub credentials: Credentials,
    /// An identical Kubernetes Event is written at most once per this interval (its count is
    /// aggregated meanwhile).
    pub event_interval: Duration,
    /// Lifetime asked for remote-discovery tokens (TokenRequest `expirationSeconds`; the API
    /// server may shorten it). Renewed at two thirds of the lifetime it grants.
    pub remote_token_lifetime: Duration,
    /// Renew remote-discovery tokens at least this often (tests; operators wanting faster
    /// rotation). `None`: at two thirds of their lifetime.
    pub remote_token_refresh: Option<Duration>,
    /// Cluster leases shared with other replicas on the same database; `None` runs every
    /// cluster here (a single replica, or the reconcilers tested alone).
    pub lease: Option<crate::lease::LeaseOptions>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 32,
            resync_interval: Duration::from_secs(600),
            status_flush: Duration::from_millis(50),
            credentials: Credentials::default(),
            event_interval: Duration::from_secs(300),
            remote_token_lifetime: Duration::from_secs(365 * 24 * 3600),
            remote_token_refresh: None,
            lease: None,
        }
    }
}

/// State shared by every task of the supervisor.
pub(crate) struct Shared {
    pub store: Store,
    pub options: Options,
    pub metrics: Metrics,
    pub status: StatusSink,
    pub config: RwLock<Arc<Snapshot>>,
    pub clusters: RwLock<HashMap<String, Arc<ClusterRuntime>>>,
    /// Gateway views by target cluster.
    pub gateways: RwLock<HashMap<String, GatewayView>>,
    pub federation: crate::federation::Federation,
    /// Multi-Cluster Services: exports seen, imports written.
    pub mcs: crate::mcs::Mcs,
    /// Kubernetes Events, aggregated.
    pub events: Arc<crate::events::Recorder>,
    /// `(source, target)` pairs whose removed-link clean-up is running.
    pub cleanups: std::sync::Mutex<BTreeSet<(String, String)>>,
    /// Remote-discovery credentials tasks, by `(source, target)`.
    pub remote_access: crate::remote_access::RemoteAccess,
    /// Leases this replica holds: checked before every write (see `lease`).
    pub leases: Arc<crate::lease::LeaseTable>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}
fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        read(&self.config).clone()
    }

    pub fn runtime(&self, cluster: &str) -> Option<Arc<ClusterRuntime>> {
        read(&self.clusters).get(cluster).cloned()
    }

    pub fn runtimes(&self) -> Vec<Arc<ClusterRuntime>> {
        read(&self.clusters).values().cloned().collect()
    }

    pub fn insert_runtime(&self, rt: Arc<ClusterRuntime>) -> Option<Arc<ClusterRuntime>> {
        write(&self.clusters).insert(rt.cluster.name.clone(), rt)
    }

    pub fn remove_runtime(&self, cluster: &str) -> Option<Arc<ClusterRuntime>> {
        write(&self.clusters).remove(cluster)
    }

    /// The gateway of target cluster `target` as last resolved and probed (shared by every link
    /// into it); no address and alive before the first probe or without a gateway.
    pub fn gateway(&self, target: &str) -> GatewayView {
        read(&self.gateways)
            .get(target)
            .cloned()
            .unwrap_or(GatewayView {
                addresses: vec![],
                alive: true,
            })
    }

    pub fn set_gateway(&self, target: &str, view: GatewayView) {
        write(&self.gateways).insert(target.to_string(), view);
    }

    pub fn has_gateway(&self, target: &str) -> bool {
        read(&self.gateways).contains_key(target)
    }

    pub fn remove_gateway(&self, target: &str) {
        write(&self.gateways).remove(target);
    }

    /// Claims a clean-up; false when one for the pair is already running.
    pub fn begin_cleanup(&self, pair: &(String, String)) -> bool {
        self.cleanups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pair.clone())
    }

    /// Releases a clean-up claimed by [`begin_cleanup`](Self::begin_cleanup).
    pub fn end_cleanup(&self, pair: &(String, String)) {
        self.cleanups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(pair);
    }

    /// `client` as this replica sends it: its user agent, and writes fenced by the lease of
    /// `cluster` (unchanged without leases).
    pub fn wrap_client(&self, client: Client, cluster: &str) -> Client {
        match &self.options.lease {
            Some(o) => {
                crate::lease::fenced_client(client, cluster, &o.user_agent(), self.leases.clone())
            }
            None => client,
        }
    }

    fn enqueue(&self, entry: &LinkEntry, namespace: &str, service: &str) {
        if let Some(rt) = self.runtime(&entry.link.spec.source) {
            rt.queue.add(MirrorKey {
                link: entry.link.name.clone(),
                namespace: namespace.to_string(),
                service: service.to_string(),
            });
        }
    }

    /// Queues every key of `link`: each target Service, and each mirror we own in the source
    /// (so orphans are garbage-collected), and forgets state rows of anything else. Only once
    /// both clusters' indexes are synced: an empty index must never look like "all deleted".
    pub fn enqueue_link(&self, link_name: &str) {
        let snap = self.snapshot();
        let Some(entry) = snap.links.get(link_name) else {
            return;
        };
        let spec = &entry.link.spec;
        if !self.leases.may_write(&spec.source) {
            // Another replica owns the source: it plans, writes and records this link.
            return;
        }
        crate::federation::full_pass(self, &spec.source);
        let (Some(source), Some(target)) = (self.runtime(&spec.source), self.runtime(&spec.target))
        else {
            return;
        };
        if !source.is_synced() || !target.is_synced() {
            return;
        }
        let mut keys: BTreeSet<(String, String)> = {
            let idx = target.index();
            idx.services.iter().map(|(k, _)| k.clone()).collect()
        };
        {
            // Every mirror the link owns, linkplane's and (when it adopts them) Linkerd's: a
            // mirror whose remote Service is gone is collected by its key's reconcile.
            let owner = Ownership::of_link(spec);
            let idx = source.index();
            for ((ns, name), s) in idx.services.iter() {
                if let Some(remote) = owner.remote_of(name, &s.service.labels) {
                    keys.insert((ns.clone(), remote));
                }
            }
            for ((ns, name), e) in idx.endpoints.iter() {
                if let Some(remote) = owner.remote_of(name, &e.labels) {
                    keys.insert((ns.clone(), remote));
                }
            }
        }
        for (ns, name) in &keys {
            source.queue.add(MirrorKey {
                link: link_name.to_string(),
                namespace: ns.clone(),
                service: name.clone(),
            });
        }
        self.status.send(StatusMsg::Retain {
            link: link_name.to_string(),
            keep: keys.into_iter().collect(),
        });
    }

    /// A watched object changed in `cluster`.
    pub fn on_change(
        &self,
        cluster: &str,
        kind: Kind,
        namespace: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) {
        let snap = self.snapshot();
        self.mcs.on_event();
        match kind {
            Kind::Service | Kind::Endpoints => {
                if kind == Kind::Service {
                    crate::federation::on_service(self, cluster, namespace, name);
                }
                for entry in snap.links_targeting(cluster) {
                    self.enqueue(entry, namespace, name);
                }
                // One of our mirrors changed (or was deleted by hand): re-check it.
                if labels.contains_key(MIRRORED_SERVICE_LABEL) {
                    for entry in snap.links_into(cluster) {
                        let owner = Ownership::of_link(&entry.link.spec);
                        if let Some(remote) = owner.remote_of(name, labels) {
                            self.enqueue(entry, namespace, &remote);
                        }
                    }
                }
            }
            Kind::Namespace => {
                crate::federation::on_namespace(self, cluster, name);
                self.remote_access.namespaces_changed();
                for entry in snap.links_into(cluster) {
                    if let Some(target) = self.runtime(&entry.link.spec.target) {
                        let names: Vec<String> = target
                            .index()
                            .services
                            .in_namespace(name)
                            .map(|s| s.service.name.clone())
                            .collect();
                        for svc in names {
                            self.enqueue(entry, name, &svc);
                        }
                    }
                }
            }
        }
    }

    /// Every watch of `cluster` (re)listed: full resync of each link touching it.
    pub fn on_synced(&self, cluster: &str) {
        crate::federation::on_cluster(self, cluster);
        self.remote_access.namespaces_changed();
        self.mcs.on_event();
        let snap = self.snapshot();
        for entry in snap.links.values() {
            let touches = entry.link.spec.source == cluster || entry.link.spec.target == cluster;
            if touches && self.leases.may_write(&entry.link.spec.source) {
                self.status.send(StatusMsg::LinkRecovered {
                    link: entry.link.name.clone(),
                });
                self.enqueue_link(&entry.link.name);
            }
        }
    }

    /// `cluster` cannot be watched: every mirror of every link touching it is in error.
    pub fn on_failed(&self, cluster: &str, message: &str) {
        crate::federation::on_cluster(self, cluster);
        let snap = self.snapshot();
        for entry in snap.links.values() {
            let spec = &entry.link.spec;
            if (spec.source == cluster || spec.target == cluster)
                && self.leases.may_write(&spec.source)
            {
                self.status.send(StatusMsg::LinkError {
                    link: entry.link.name.clone(),
                    message: format!("cluster {cluster} is unreachable: {message}"),
                });
            }
        }
    }
}

/// Kinds in a watch set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Services.
    Service,
    /// Endpoints.
    Endpoints,
    /// Namespaces.
    Namespace,
}

const SYNCED_ALL: u8 = 0b111;

/// One cluster's client, watch set, index and write queue: a value with a lifetime, started
/// when a link needs the cluster and stopped (its tasks aborted) when none does.
pub struct ClusterRuntime {
    /// The cluster as configured when this runtime started.
    pub cluster: Cluster,
    client: OnceLock<Client>,
    index: RwLock<ClusterIndex>,
    synced: AtomicU8,
    ever_synced: AtomicBool,
    failing: AtomicBool,
    /// Work queue of mirrors to write into this cluster (when it is a source).
    pub(crate) queue: WorkQueue<MirrorKey>,
    /// Work queue of `<svc>-federated` Services to write into this cluster.
    pub(crate) federation: WorkQueue<crate::federation::FedKey>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Debug for ClusterRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterRuntime")
            .field("cluster", &self.cluster.name)
            .finish()
    }
}

impl ClusterRuntime {
    pub(crate) fn new(cluster: Cluster) -> Arc<Self> {
        Arc::new(Self {
            cluster,
            client: OnceLock::new(),
            index: RwLock::new(ClusterIndex::default()),
            synced: AtomicU8::new(0),
            ever_synced: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            queue: WorkQueue::new(),
            federation: WorkQueue::new(),
            tasks: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Read access to the index.
    pub fn index(&self) -> std::sync::RwLockReadGuard<'_, ClusterIndex> {
        read(&self.index)
    }

    /// The client, once credentials resolved.
    pub fn client(&self) -> Option<Client> {
        self.client.get().cloned()
    }

    /// True once every watch listed at least once.
    pub fn is_synced(&self) -> bool {
        self.ever_synced.load(Ordering::Acquire)
    }

    /// True while its API server cannot be watched (mirrors of its links are held as they are).
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    pub(crate) fn push_task(&self, t: JoinHandle<()>) {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(t);
    }

    /// Aborts every task of this runtime.
    pub(crate) fn stop(&self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }

    /// Connects (retrying with backoff and jitter) and starts the watches and the writers.
    pub(crate) fn start(self: &Arc<Self>, shared: Arc<Shared>) {
        let rt = self.clone();
        let task = tokio::spawn(async move {
            let name = rt.cluster.name.clone();
            set_status(&shared.store, &name, ReconcilerState::Starting, "", false).await;
            let mut backoff = Backoff::default();
            let client = loop {
                match shared.options.credentials.client(&rt.cluster).await {
                    Ok(c) => break c,
                    Err(e) => {
                        let msg = e.chain();
                        tracing::warn!(cluster = %name, error = %msg, "cannot build client");
                        set_status(&shared.store, &name, ReconcilerState::Failed, &msg, false)
                            .await;
                        shared.on_failed(&name, &msg);
                        tokio::time::sleep(backoff.next()).await;
                    }
                }
            };
            let client = shared.wrap_client(client, &name);
            let _ = rt.client.set(client.clone());
            rt.push_task(tokio::spawn(watch::<SlimService>(
                rt.clone(),
                shared.clone(),
                client.clone(),
                Kind::Service,
            )));
            rt.push_task(tokio::spawn(watch::<SlimEndpoints>(
                rt.clone(),
                shared.clone(),
                client.clone(),
                Kind::Endpoints,
            )));
            rt.push_task(tokio::spawn(watch::<SlimNamespace>(
                rt.clone(),
                shared.clone(),
                client,
                Kind::Namespace,
            )));
            for _ in 0..shared.options.concurrency.max(1) {
                rt.push_task(tokio::spawn(crate::apply::worker(
                    rt.clone(),
                    shared.clone(),
                )));
            }
            crate::federation::spawn_workers(&rt, &shared);
        });
        self.push_task(task);
    }

    fn apply_event(&self, kind: Kind, obj: &dyn IndexObject, ev: IndexOp) -> bool {
        let mut idx = write(&self.index);
        let key = (obj.ns(), obj.name());
        match (kind, ev) {
            (Kind::Service, IndexOp::Apply) => idx.services.apply(key, obj.service()),
            (Kind::Service, IndexOp::Delete) => idx.services.delete(&key),
            (Kind::Service, IndexOp::ResetApply) => {
                idx.services.reset_apply(key, obj.service());
                false
            }
            (Kind::Endpoints, IndexOp::Apply) => idx.endpoints.apply(key, obj.endpoints()),
            (Kind::Endpoints, IndexOp::Delete) => idx.endpoints.delete(&key),
            (Kind::Endpoints, IndexOp::ResetApply) => {
                idx.endpoints.reset_apply(key, obj.endpoints());
                false
            }
            (Kind::Namespace, IndexOp::Apply) => idx.namespaces.apply(key, obj.ns_labels()),
            (Kind::Namespace, IndexOp::Delete) => idx.namespaces.delete(&key),
            (Kind::Namespace, IndexOp::ResetApply) => {
                idx.namespaces.reset_apply(key, obj.ns_labels());
                false
            }
        }
    }

    /// Records an object this process just wrote, as the API server returned it. Its watch
    /// event then finds the index unchanged and triggers no re-plan: our own writes are not
    /// echoed back into the queue (each would cost a full no-op reconcile), and the next
    /// reconcile of the key already sees the new resourceVersion instead of a stale one.
    ///
    /// Returns the Service's ClusterIP (endpoint mirrors point at it).
    pub(crate) fn remember_service(&self, svc: &Service) -> Option<String> {
        let key = (svc.ns(), svc.name());
        let indexed = index_service(svc);
        let cluster_ip = indexed.cluster_ip.clone();
        write(&self.index).services.apply(key, indexed);
        cluster_ip
    }

    /// [`remember_service`](Self::remember_service) for Endpoints.
    pub(crate) fn remember_endpoints(&self, eps: &Endpoints) {
        let key = (eps.ns(), eps.name());
        write(&self.index)
            .endpoints
            .apply(key, index_endpoints(eps));
    }

    /// Forgets an object this process just deleted, so its delete event is not re-planned.
    pub(crate) fn forget(&self, kind: Kind, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        let mut idx = write(&self.index);
        match kind {
            Kind::Service => idx.services.delete(&key),
            Kind::Endpoints => idx.endpoints.delete(&key),
            Kind::Namespace => idx.namespaces.delete(&key),
        };
    }

    fn reset(&self, kind: Kind, begin: bool) {
        let mut idx = write(&self.index);
        match (kind, begin) {
            (Kind::Service, true) => idx.services.begin_reset(),
            (Kind::Service, false) => drop(idx.services.finish_reset()),
            (Kind::Endpoints, true) => idx.endpoints.begin_reset(),
            (Kind::Endpoints, false) => drop(idx.endpoints.finish_reset()),
            (Kind::Namespace, true) => idx.namespaces.begin_reset(),
            (Kind::Namespace, false) => drop(idx.namespaces.finish_reset()),
        }
    }

    fn update_cache_metrics(&self, m: &Metrics) {
        let idx = self.index();
        let l = Metrics::cluster(&self.cluster.name);
        m.service_cache_size
            .get_or_create(&l)
            .set(idx.services.len() as i64);
        m.endpoints_cache_size
            .get_or_create(&l)
            .set(idx.endpoints.len() as i64);
        m.namespace_cache_size
            .get_or_create(&l)
            .set(idx.namespaces.len() as i64);
    }
}

#[derive(Clone, Copy)]
enum IndexOp {
    Apply,
    Delete,
    ResetApply,
}

trait IndexObject {
    fn ns(&self) -> String;
    fn name(&self) -> String;
    fn labels_map(&self) -> BTreeMap<String, String>;
    fn service(&self) -> crate::index::IndexedService {
        Default::default()
    }
    fn endpoints(&self) -> crate::index::IndexedEndpoints {
        Default::default()
    }
    fn ns_labels(&self) -> BTreeMap<String, String> {
        Default::default()
    }
}

impl IndexObject for Service {
    fn ns(&self) -> String {
        ResourceExt::namespace(self).unwrap_or_default()
    }
    fn name(&self) -> String {
        self.name_any()
    }
    fn labels_map(&self) -> BTreeMap<String, String> {
        self.labels().clone()
    }
    fn service(&self) -> crate::index::IndexedService {
        index_service(self)
    }
}

impl IndexObject for Endpoints {
    fn ns(&self) -> String {
        ResourceExt::namespace(self).unwrap_or_default()
    }
    fn name(&self) -> String {
        self.name_any()
    }
    fn labels_map(&self) -> BTreeMap<String, String> {
        self.labels().clone()
    }
    fn endpoints(&self) -> crate::index::IndexedEndpoints {
        index_endpoints(self)
    }
}

impl IndexObject for Namespace {
    fn ns(&self) -> String {
        String::new()
    }
    fn name(&self) -> String {
        self.name_any()
    }
    fn labels_map(&self) -> BTreeMap<String, String> {
        self.labels().clone()
    }
    fn ns_labels(&self) -> BTreeMap<String, String> {
        index_namespace(self)
    }
}

/// The watched (slim) objects index as the objects they wrap.
macro_rules! index_as_inner {
    ($($slim:ty),*) => {$(
        impl IndexObject for $slim {
            fn ns(&self) -> String {
                self.0.ns()
            }
            fn name(&self) -> String {
                self.0.name()
            }
            fn labels_map(&self) -> BTreeMap<String, String> {
                self.0.labels_map()
            }
            fn service(&self) -> crate::index::IndexedService {
                self.0.service()
            }
            fn endpoints(&self) -> crate::index::IndexedEndpoints {
                self.0.endpoints()
            }
            fn ns_labels(&self) -> BTreeMap<String, String> {
                self.0.ns_labels()
            }
        }
    )*};
}
index_as_inner!(SlimService, SlimEndpoints, SlimNamespace);

fn kind_bit(kind: Kind) -> u8 {
    match kind {
        Kind::Service => 1,
        Kind::Endpoints => 2,
        Kind::Namespace => 4,
    }
}

async fn watch<K>(rt: Arc<ClusterRuntime>, shared: Arc<Shared>, client: Client, kind: Kind)
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
        + IndexObject,
{
    let name = rt.cluster.name.clone();
    let api: Api<K> = Api::all(client.clone());
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(watcher::Event::Init) => rt.reset(kind, true),
            Ok(watcher::Event::InitApply(o)) => {
                rt.apply_event(kind, &o, IndexOp::ResetApply);
            }
            Ok(watcher::Event::InitDone) => {
                rt.reset(kind, false);
                rt.update_cache_metrics(&shared.metrics);
                let all = rt.synced.fetch_or(kind_bit(kind), Ordering::AcqRel) | kind_bit(kind);
                if all == SYNCED_ALL {
                    let first = !rt.ever_synced.swap(true, Ordering::AcqRel);
                    let recovered = rt.failing.swap(false, Ordering::AcqRel);
                    if first || recovered {
                        set_status(&shared.store, &name, ReconcilerState::Running, "", true).await;
                    }
                    tracing::info!(cluster = %name, kind = ?kind, "watch synced");
                    shared.on_synced(&name);
                }
            }
            Ok(watcher::Event::Apply(o)) => {
                if rt.apply_event(kind, &o, IndexOp::Apply) {
                    shared.on_change(&name, kind, &o.ns(), &o.name(), &o.labels_map());
                }
            }
            Ok(watcher::Event::Delete(o)) => {
                if rt.apply_event(kind, &o, IndexOp::Delete) {
                    shared.on_change(&name, kind, &o.ns(), &o.name(), &o.labels_map());
                }
            }
            Err(e) => {
                // The API server's URL and the innermost cause (`Connection refused`, a TLS or
                // DNS failure): kube's own message stops at "client error (Connect)".
                let msg = format!(
                    "watching {kind:?} at {}: {}",
                    rt.cluster.spec.api_server,
                    with_causes(&e)
                );
                tracing::warn!(cluster = %name, error = %msg, "watch failed; backing off");
                if !rt.failing.swap(true, Ordering::AcqRel) {
                    set_status(
                        &shared.store,
                        &name,
                        ReconcilerState::Failed,
                        &msg,
                        rt.is_synced(),
                    )
                    .await;
                    shared.on_failed(&name, &msg);
                    // The watcher resumes from its last resourceVersion without re-listing, so
                    // recovery would go unnoticed while nothing changes: poll until the API
                    // answers, then mark the cluster healthy and resync its links.
                    let (rt2, shared2, client) = (rt.clone(), shared.clone(), client.clone());
                    rt.push_task(tokio::spawn(async move {
                        let api: Api<Namespace> = Api::all(client);
                        let mut backoff = Backoff::default();
                        loop {
                            tokio::time::sleep(backoff.next()).await;
                            if !rt2.failing.load(Ordering::Acquire) {
                                return;
                            }
                            let lp = kube::api::ListParams::default().limit(1);
                            if api.list(&lp).await.is_ok() {
                                break;
                            }
                        }
                        if rt2.failing.swap(false, Ordering::AcqRel) {
                            let name = &rt2.cluster.name;
                            tracing::info!(cluster = %name, "API server reachable again");
                            set_status(
                                &shared2.store,
                                name,
                                ReconcilerState::Running,
                                "",
                                rt2.is_synced(),
                            )
                            .await;
                            shared2.on_synced(name);
                        }
                    }));
                }
            }
        }
    }
}

/// `e` and each of its causes once: kube and hyper errors often repeat their source in their own
/// message, and the innermost one is the one a person can act on.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !m.is_empty() && !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        cur = c.source();
    }
    out
}

pub(crate) async fn set_status(
    store: &Store,
    cluster: &str,
    state: ReconcilerState,
    msg: &str,
    synced: bool,
) {
    let res = async {
        let mut conn = store.acquire().await?;
        linkplane_store::reconcilers::set(&mut conn, cluster, state, msg, synced).await
    }
    .await;
    if let Err(e) = res {
        tracing::debug!(cluster, error = %e, "recording reconciler status");
    }
}

/// Exponential backoff with full jitter: 0.5 s doubling to 30 s.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub(crate) fn next(&mut self) -> Duration {
        let cap = 500u64.saturating_mul(1 << self.attempt.min(6)).min(30_000);
        self.attempt += 1;
        let ms = rand::random_range(cap / 2..=cap);
        Duration::from_millis(ms)
    }
}
