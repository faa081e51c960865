//! Scenario harness: kubesim clusters over HTTPS, a fresh Postgres database, and the running
//! supervisor. `eventually` polls (bounded) for convergence; it is not a timing assertion.

#![allow(dead_code, clippy::unwrap_used)]

use std::{collections::BTreeMap, future::Future, time::Duration};

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Namespace, Service, ServicePort,
    ServiceSpec,
};
use kube::{
    Api, Client,
    api::{DeleteParams, ObjectMeta, PostParams},
};
use linkplane_core::{
    Cluster, CredentialsRef, GatewaySpec, Link, LinkSpec, ProbeSpec,
    duration::Duration as CoreDuration,
};
use linkplane_mirror::{Metrics, Options, Supervisor, SupervisorHandle};
use linkplane_store::{
    Owner, Store, clusters, links,
    mirrors::{self, MirrorFilter, MirrorRow},
};

pub const EXPORTED: (&str, &str) = ("mirror.linkerd.io/exported", "true");
pub const FLAT: (&str, &str) = ("mirror.linkerd.io/exported", "remote-discovery");

pub struct Env {
    pub sim: kubesim::Simulator,
    pub store: Store,
    pub handle: Option<SupervisorHandle>,
    pub metrics: Metrics,
    _dir: tempfile::TempDir,
}

pub fn init_tracing() {
    linkplane_mirror::install_crypto_provider();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,linkplane_mirror=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The cluster as linkplane knows it: kubeconfig file credentials, the simulated gateway.
pub fn cluster_of(sim: &kubesim::Simulator, name: &str) -> Cluster {
    let c = sim.cluster(name).expect("cluster started");
    let gw = c.gateway_addr();
    let mut cluster = Cluster::new(
        name,
        c.url(),
        CredentialsRef::KubeconfigFile(c.kubeconfig_path().display().to_string()),
    );
    cluster.spec.gateway = Some(GatewaySpec {
        addresses: vec![gw.ip().to_string()],
        port: 4143,
        identity:
            "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.cluster.local"
                .into(),
        probe: ProbeSpec {
            path: "/ready".into(),
            port: u32::from(gw.port()),
            period: CoreDuration::from_millis(300),
            timeout: CoreDuration::from_millis(500),
            failure_threshold: 2,
        },
    });
    cluster
}

impl Env {
    pub async fn start(pool: sqlx::PgPool, names: &[&str]) -> Env {
        let mut env = Env::start_idle(pool, names).await;
        env.start_supervisor().await;
        env
    }

    /// The clusters and the database, without a supervisor (tests that run their own).
    pub async fn start_idle(pool: sqlx::PgPool, names: &[&str]) -> Env {
        init_tracing();
        let dir = tempfile::tempdir().unwrap();
        let sim = kubesim::Simulator::start(kubesim::SimOptions {
            clusters: names.iter().map(|s| s.to_string()).collect(),
            dir: dir.path().to_path_buf(),
            ..kubesim::SimOptions::default()
        })
        .await
        .unwrap();
        let store = Store::from_pool(pool);
        {
            let mut conn = store.acquire().await.unwrap();
            for n in names {
                clusters::upsert(&mut conn, &cluster_of(&sim, n), &Owner::Api)
                    .await
                    .unwrap();
            }
        }
        Env {
            sim,
            store,
            handle: None,
            metrics: Metrics::default(),
            _dir: dir,
        }
    }

    pub async fn start_supervisor(&mut self) {
        self.start_supervisor_with(Options {
            concurrency: 8,
            ..Options::default()
        })
        .await;
    }

    pub async fn start_supervisor_with(&mut self, options: Options) {
        self.handle = Some(
            Supervisor::start(self.store.clone(), options, self.metrics.clone())
                .await
                .unwrap(),
        );
    }

    pub async fn stop_supervisor(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }

    pub async fn client(&self, cluster: &str) -> Client {
        self.sim.cluster(cluster).unwrap().client().await.unwrap()
    }

    pub async fn link(&self, source: &str, target: &str, f: impl FnOnce(&mut LinkSpec)) -> Link {
        let mut link = Link::new(format!("{source}-{target}"), source, target);
        f(&mut link.spec);
        let mut conn = self.store.acquire().await.unwrap();
        links::upsert(&mut conn, &link, &Owner::Api).await.unwrap();
        link
    }

    pub async fn update_cluster(&self, name: &str, f: impl FnOnce(&mut Cluster)) {
        let mut c = cluster_of(&self.sim, name);
        f(&mut c);
        let mut conn = self.store.acquire().await.unwrap();
        clusters::upsert(&mut conn, &c, &Owner::Api).await.unwrap();
    }

    pub async fn rows(&self, link: &str) -> Vec<MirrorRow> {
        let mut conn = self.store.acquire().await.unwrap();
        mirrors::list(
            &mut conn,
            &MirrorFilter {
                link: Some(link.into()),
                ..MirrorFilter::default()
            },
            0,
            1000,
        )
        .await
        .unwrap()
    }

    pub async fn row(&self, link: &str, ns: &str, name: &str) -> Option<MirrorRow> {
        self.rows(link)
            .await
            .into_iter()
            .find(|r| r.status.namespace == ns && r.status.remote_name == name)
    }

    /// Waits until the supervisor has listed every cluster in `clusters`, drained its queues and
    /// written nothing for `quiet` (the fleet has converged).
    pub async fn settle(&self, clusters: &[&str], quiet: Duration) {
        let handle = self.handle.as_ref().expect("supervisor running");
        eventually("clusters synced", || async {
            let synced = clusters
                .iter()
                .all(|c| handle.runtime(c).is_some_and(|r| r.is_synced()));
            ok_if(synced, || "not synced".into())
        })
        .await;
        let writes = || -> u64 { clusters.iter().map(|c| self.metrics.total_writes(c)).sum() };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut last = (writes(), tokio::time::Instant::now());
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = writes();
            let busy = handle.pending() + handle.federation_pending() > 0;
            if now != last.0 || busy {
                last = (now, tokio::time::Instant::now());
            } else if last.1.elapsed() >= quiet {
                return;
            }
        }
        panic!("the fleet did not settle within 60s");
    }

    /// Write requests `cluster` answered since `mark` (its kubesim request log).
    pub fn writes_since(&self, cluster: &str, mark: u64) -> Vec<kubesim::LoggedRequest> {
        self.sim
            .cluster(cluster)
            .unwrap()
            .requests_since(mark)
            .into_iter()
            .filter(|r| r.is_write())
            .collect()
    }

    pub async fn shutdown(mut self) {
        self.stop_supervisor().await;
        self.sim.shutdown().await;
    }
}

pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub async fn create_ns(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating namespace {name}: {e}"),
    }
}

pub fn service(ns: &str, name: &str, labels: &[(&str, &str)], ports: &[(&str, i32)]) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: Some(map(labels)),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            ports: Some(
                ports
                    .iter()
                    .map(|(n, p)| ServicePort {
                        name: Some(n.to_string()),
                        port: *p,
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

pub async fn create_svc(client: &Client, svc: &Service) -> Service {
    let ns = svc.metadata.namespace.clone().unwrap();
    Api::<Service>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), svc)
        .await
        .unwrap()
}

/// Exported service `ns/name` with one ready endpoint.
pub async fn export(client: &Client, ns: &str, name: &str, label: (&str, &str)) -> Service {
    create_ns(client, ns).await;
    let svc = create_svc(
        client,
        &service(ns, name, &[label, ("app", name)], &[("http", 80)]),
    )
    .await;
    set_endpoints(client, ns, name, &[("10.1.0.1", None)], &[]).await;
    svc
}

pub async fn set_endpoints(
    client: &Client,
    ns: &str,
    name: &str,
    ready: &[(&str, Option<&str>)],
    not_ready: &[(&str, Option<&str>)],
) {
    let addr = |(ip, host): &(&str, Option<&str>)| EndpointAddress {
        ip: ip.to_string(),
        hostname: host.map(str::to_string),
        ..EndpointAddress::default()
    };
    let subsets = if ready.is_empty() && not_ready.is_empty() {
        None
    } else {
        Some(vec![EndpointSubset {
            addresses: (!ready.is_empty()).then(|| ready.iter().map(addr).collect()),
            not_ready_addresses: (!not_ready.is_empty())
                .then(|| not_ready.iter().map(addr).collect()),
            ports: Some(vec![EndpointPort {
                name: Some("http".into()),
                port: 8080,
                ..EndpointPort::default()
            }]),
        }])
    };
    let api: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    let mut eps = Endpoints {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..ObjectMeta::default()
        },
        subsets,
    };
    match api.get_opt(name).await.unwrap() {
        Some(old) => {
            eps.metadata.resource_version = old.metadata.resource_version;
            api.replace(name, &PostParams::default(), &eps)
                .await
                .unwrap();
        }
        None => {
            api.create(&PostParams::default(), &eps).await.unwrap();
        }
    }
}

pub async fn get_svc(client: &Client, ns: &str, name: &str) -> Option<Service> {
    Api::<Service>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()
}

pub async fn get_eps(client: &Client, ns: &str, name: &str) -> Option<Endpoints> {
    Api::<Endpoints>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()
}

pub async fn delete_svc(client: &Client, ns: &str, name: &str) {
    Api::<Service>::namespaced(client.clone(), ns)
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
}

pub async fn patch_labels(client: &Client, ns: &str, name: &str, labels: &[(&str, &str)]) {
    let api = Api::<Service>::namespaced(client.clone(), ns);
    let mut svc = api.get(name).await.unwrap();
    svc.metadata.labels = Some(map(labels));
    api.replace(name, &PostParams::default(), &svc)
        .await
        .unwrap();
}

pub fn labels(svc: &Service) -> BTreeMap<String, String> {
    svc.metadata.labels.clone().unwrap_or_default()
}

pub fn annotations(svc: &Service) -> BTreeMap<String, String> {
    svc.metadata.annotations.clone().unwrap_or_default()
}

/// Ready and not-ready IPs of an Endpoints.
pub fn ips(eps: &Endpoints) -> (Vec<String>, Vec<String>) {
    let mut ready = vec![];
    let mut not_ready = vec![];
    for s in eps.subsets.iter().flatten() {
        ready.extend(s.addresses.iter().flatten().map(|a| a.ip.clone()));
        not_ready.extend(s.not_ready_addresses.iter().flatten().map(|a| a.ip.clone()));
    }
    (ready, not_ready)
}

/// Polls `check` until it returns `Ok`, for at most 20 s; panics with the last reason.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        match check().await {
            Ok(()) => return,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not converged within 20s: {last}");
}

/// Converts a bool into the `eventually` result.
pub fn ok_if(cond: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(why()) }
}
