//! An in-memory Kubernetes API server that `kubectl` and kube-rs use unchanged.
//!
//! kubesim runs many simulated clusters in one process, each on its own `127.0.0.1` port with
//! HTTPS (a per-run self-signed CA) and bearer-token authentication, and writes a standard
//! kubeconfig per cluster. It serves discovery, core/v1 namespaces, services (+`/status`),
//! endpoints, secrets, configmaps, events and service accounts (+`/token`),
//! discovery.k8s.io/v1 endpointslices, coordination.k8s.io/v1 leases, the four RBAC kinds and
//! CustomResourceDefinitions (any CRD's types, validated by their structural schema) with the verbs and semantics of a real API server: JSON, YAML and protobuf request bodies,
//! selectors, paging, optimistic concurrency, all four patch types including server-side apply
//! with field ownership, finalizers, Endpoints canonicalization, watches with bookmarks,
//! selector transitions and `410 Expired`, service-account tokens authorized by RBAC with
//! `SelfSubjectAccessReview`, and `Status` errors. Each cluster also has a simulated gateway
//! (an HTTP probe endpoint) and fault injection.
//!
//! Start with [`Simulator::start`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), kubesim::Error> {
//! let sim = kubesim::Simulator::start(kubesim::SimOptions {
//!     clusters: vec!["east".into(), "west".into()],
//!     dir: std::env::temp_dir().join("kubesim"),
//!     ..kubesim::SimOptions::default()
//! })
//! .await?;
//! let east = sim.cluster("east").expect("started above");
//! let client: kube::Client = east.client().await?;
//! east.faults().sever_watches();
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Reading order: [`store`](crate) (the object store and watch fan-out), then `http` (routing,
//! verbs, watch streams), `admission` (defaulting and validation), `patch` and `apply`
//! (server-side apply), `protobuf` (request decoding), `auth` and `rbac` (tokens and
//! authorization). See `docs/kubesim.md` for what is and is not simulated.

mod admin;
mod admission;
mod apply;
mod auth;
mod cluster;
mod crd;
mod endpoints;
mod faults;
mod gateway;
mod http;
mod names;
mod patch;
mod protobuf;
mod rbac;
mod requests;
mod resources;
mod selector;
mod status;
mod store;
mod tls;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine;

pub use faults::{Faults, GatewayMode, WriteFailure};
pub use requests::{LoggedRequest, OpenWatch};

use cluster::ClusterInner;

/// What can go wrong starting or driving the simulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What kubesim was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Generating certificates or the TLS configuration failed.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The generated kubeconfig was rejected by kube-rs.
    #[error("kubeconfig rejected: {0}")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    /// Building a kube client failed.
    #[error("cannot build a kube client: {0}")]
    Client(#[source] kube::Error),
    /// A cluster with this name already exists.
    #[error("cluster {0:?} already exists")]
    DuplicateCluster(String),
    /// Cluster names must be DNS-1123 labels (they become file and context names).
    #[error("invalid cluster name {name:?}: {reason}")]
    InvalidClusterName {
        /// The rejected name.
        name: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(context: &'static str, source: std::io::Error) -> Self {
        Self::Io { context, source }
    }

    pub(crate) fn tls(e: impl std::fmt::Display) -> Self {
        Self::Tls(e.to_string())
    }
}

/// How to start a [`Simulator`].
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Names of the clusters to start (DNS-1123 labels).
    pub clusters: Vec<String>,
    /// Where `<cluster>.kubeconfig` files and `ca.crt` are written (created if missing).
    pub dir: PathBuf,
    /// Serve HTTPS (default). `false` serves plain HTTP; kubeconfigs then carry `http://` URLs.
    pub tls: bool,
    /// Watch events retained per resource type for resumption; older resourceVersions get
    /// `410 Gone`.
    pub event_window: usize,
    /// Also serve the admin HTTP endpoint (fault injection over HTTP) on a random local port.
    pub admin: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            clusters: Vec::new(),
            dir: std::env::temp_dir().join("kubesim"),
            tls: true,
            event_window: 10_000,
            admin: false,
        }
    }
}

pub(crate) struct SimInner {
    opts: SimOptions,
    ca: Option<tls::Ca>,
    clusters: Mutex<BTreeMap<String, Arc<ClusterInner>>>,
}

/// A running set of simulated clusters. Dropping it without [`Simulator::shutdown`] leaves the
/// listeners running until the runtime stops.
pub struct Simulator {
    inner: Arc<SimInner>,
    admin: Option<admin::AdminHandle>,
}

impl Simulator {
    /// Starts the clusters of `opts`, writing their kubeconfigs into `opts.dir`.
    pub async fn start(opts: SimOptions) -> Result<Simulator, Error> {
        std::fs::create_dir_all(&opts.dir)
            .map_err(|e| Error::io("creating the kubeconfig directory", e))?;
        let ca = if opts.tls {
            Some(tls::Ca::generate()?)
        } else {
            None
        };
        if let Some(ca) = &ca {
            std::fs::write(opts.dir.join("ca.crt"), &ca.pem)
                .map_err(|e| Error::io("writing ca.crt", e))?;
        }
        let inner = Arc::new(SimInner {
            opts: opts.clone(),
            ca,
            clusters: Mutex::new(BTreeMap::new()),
        });
        let admin = if opts.admin {
            Some(admin::start(inner.clone()).await?)
        } else {
            None
        };
        let sim = Simulator { inner, admin };
        for name in &opts.clusters {
            sim.add_cluster(name).await?;
        }
        Ok(sim)
    }

    /// A cluster by name.
    pub fn cluster(&self, name: &str) -> Option<SimCluster> {
        self.inner.cluster(name)
    }

    /// All clusters, by name.
    pub fn clusters(&self) -> Vec<SimCluster> {
        self.inner
            .lock()
            .values()
            .map(|c| SimCluster { inner: c.clone() })
            .collect()
    }

    /// Starts one more cluster.
    pub async fn add_cluster(&self, name: &str) -> Result<SimCluster, Error> {
        self.inner.add_cluster(name).await
    }

    /// The admin endpoint's base URL (`http://127.0.0.1:PORT`), when enabled.
    pub fn admin_url(&self) -> Option<String> {
        self.admin.as_ref().map(|a| format!("http://{}", a.addr))
    }

    /// Stops every listener.
    pub async fn shutdown(self) {
        if let Some(admin) = self.admin {
            admin.stop().await;
        }
        let clusters: Vec<Arc<ClusterInner>> = self.inner.lock().values().cloned().collect();
        for c in clusters {
            c.shutdown().await;
        }
    }
}

impl SimInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<ClusterInner>>> {
        self.clusters.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn cluster(&self, name: &str) -> Option<SimCluster> {
        self.lock()
            .get(name)
            .map(|c| SimCluster { inner: c.clone() })
    }

    pub(crate) fn cluster_list(&self) -> Vec<SimCluster> {
        self.lock()
            .values()
            .map(|c| SimCluster { inner: c.clone() })
            .collect()
    }

    async fn add_cluster(&self, name: &str) -> Result<SimCluster, Error> {
        let errs = names::dns1123_label(name);
        if !errs.is_empty() {
            return Err(Error::InvalidClusterName {
                name: name.to_string(),
                reason: errs.join(", "),
            });
        }
        if self.lock().contains_key(name) {
            return Err(Error::DuplicateCluster(name.to_string()));
        }
        let acceptor = match &self.ca {
            Some(ca) => Some(ca.acceptor()?),
            None => None,
        };
        let ca_pem = self.ca.as_ref().map(|c| c.pem.clone());
        let dir = self.opts.dir.clone();
        let inner = ClusterInner::start(
            name,
            acceptor,
            ca_pem.clone(),
            self.opts.event_window,
            |addr, token| {
                let yaml = kubeconfig(name, addr, token, ca_pem.as_deref());
                (dir.join(format!("{name}.kubeconfig")), yaml)
            },
        )
        .await?;
        write_private(&inner.kubeconfig_path, &inner.kubeconfig_yaml)?;
        let inserted = {
            let mut clusters = self.lock();
            if clusters.contains_key(name) {
                false
            } else {
                clusters.insert(name.to_string(), inner.clone());
                true
            }
        };
        if !inserted {
            inner.shutdown().await;
            return Err(Error::DuplicateCluster(name.to_string()));
        }
        Ok(SimCluster { inner })
    }
}

fn write_private(path: &std::path::Path, contents: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The kubeconfig holds the bearer token: owner-only, like ~/.kube/config.
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| Error::io("writing a kubeconfig", e))?;
    f.write_all(contents.as_bytes())
        .map_err(|e| Error::io("writing a kubeconfig", e))
}

fn kubeconfig(name: &str, addr: SocketAddr, token: &str, ca_pem: Option<&str>) -> String {
    let (scheme, ca_line) = match ca_pem {
        Some(pem) => (
            "https",
            format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(pem)
            ),
        ),
        None => ("http", String::new()),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {scheme}://{addr}\n{ca_line}contexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n    namespace: default\ncurrent-context: {name}\nusers:\n- name: {name}\n  user:\n    token: {token}\n"
    )
}

async fn client_from_yaml(yaml: &str) -> Result<kube::Client, Error> {
    let kc = kube::config::Kubeconfig::from_yaml(yaml).map_err(Error::Kubeconfig)?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(Error::Kubeconfig)?;
    kube::Client::try_from(config).map_err(Error::Client)
}

/// A handle on one simulated cluster (cheap to clone).
#[derive(Clone)]
pub struct SimCluster {
    inner: Arc<ClusterInner>,
}

impl std::fmt::Debug for SimCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("SimCluster")
            .field("name", &self.inner.name)
            .field("url", &self.url())
            .finish()
    }
}

impl SimCluster {
    /// The cluster's name (also its kubeconfig context name).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The API server URL, e.g. `https://127.0.0.1:41234`. Stable across restarts.
    pub fn url(&self) -> String {
        let scheme = if self.inner.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.inner.addr)
    }

    /// Where the kubeconfig file is.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.inner.kubeconfig_path.clone()
    }

    /// The kubeconfig (server, CA data, bearer token), as written to [`Self::kubeconfig_path`].
    pub fn kubeconfig_yaml(&self) -> String {
        self.inner.kubeconfig_yaml.clone()
    }

    /// A kube client for this cluster, built from its kubeconfig as any user's would be.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        client_from_yaml(&self.inner.kubeconfig_yaml).await
    }

    /// This cluster's kubeconfig with `token` as the user's bearer token instead of the admin
    /// token: what a service account's credentials look like (e.g. a token from
    /// `serviceaccounts/<name>/token` or a `kubernetes.io/service-account-token` Secret), so a
    /// test can act as that service account. The token is not checked here; requests made
    /// with it are authenticated and authorized by the cluster (401/403).
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        kubeconfig(
            &self.inner.name,
            self.inner.addr,
            token,
            self.inner.ca_pem.as_deref(),
        )
    }

    /// A kube client that authenticates with `token` (see [`Self::kubeconfig_with_token`]).
    pub async fn client_with_token(&self, token: &str) -> Result<kube::Client, Error> {
        client_from_yaml(&self.kubeconfig_with_token(token)).await
    }

    /// The simulated gateway's address (plain HTTP; `/ready` answers per [`GatewayMode`]).
    pub fn gateway_addr(&self) -> SocketAddr {
        self.inner.gateway_addr
    }

    /// Fault injection for this cluster.
    pub fn faults(&self) -> Faults {
        Faults {
            cluster: self.inner.clone(),
        }
    }

    /// The newest resourceVersion of the cluster (every write increments it).
    pub fn resource_version(&self) -> u64 {
        self.inner.store.current_rv()
    }

    /// A mark in this cluster's request log: pass it to [`Self::requests_since`].
    pub fn request_mark(&self) -> u64 {
        self.inner.requests.mark()
    }

    /// Every resource request answered since `mark` (oldest first; the log keeps the newest
    /// 200,000). Discovery and health checks are not logged.
    pub fn requests_since(&self, mark: u64) -> Vec<LoggedRequest> {
        self.inner.requests.since(mark)
    }

    /// The watches open on this cluster now, by group, resource and user agent, with their
    /// count (the API server's `apiserver_longrunning_requests{verb="WATCH"}`, per client).
    pub fn open_watches(&self) -> Vec<(OpenWatch, usize)> {
        self.inner.open.watches()
    }

    /// Client connections open on this cluster's API port now (HTTP/1.1 or HTTP/2, TLS or
    /// not): what a client's connection pool costs the server.
    pub fn open_connections(&self) -> usize {
        self.inner.open.connections()
    }

    /// How many Services are stored: a count, not a walk of the objects, so a benchmark can poll
    /// it without holding the store's lock against the writes it measures.
    pub fn stored_service_count(&self) -> usize {
        self.inner.store.stored_count(resources::SERVICES)
    }

    /// Bytes held for the stored Services and their count (objects, keys and label copies;
    /// excludes allocator overhead). The benchmark reports it.
    pub fn stored_service_bytes(&self) -> (usize, usize) {
        self.inner.store.stored_bytes(resources::SERVICES)
    }
}
