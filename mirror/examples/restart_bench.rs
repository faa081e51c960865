//! Restart and resync of an unchanged fleet (`scripts/bench mirror-restart`, release build).
//! Needs `DATABASE_URL`; the run gets its own fresh database.
//!
//! One target cluster exports a fleet shaped like a real one into one source cluster:
//! multi-port gateway mirrors, headless Services with three pods (a root plus three per-pod
//! endpoint mirrors each), flat (remote-discovery) mirrors and federated Services (with a member
//! on both sides). kubesim re-packs and re-orders Endpoints as the API server does. Once the
//! fleet has converged, the supervisor is stopped and started again; after it has listed both
//! clusters and gone quiet, the resync timer fires several times and every watch is cut with
//! its history forgotten (a relist and full pass of every link). Writes are counted twice: by
//! `linkplane_mirror_writes_total` and by kubesim's request log (every POST/PUT/PATCH/DELETE
//! the API servers answered). Goal: zero of both after the restart and across the resyncs.
//!
//! Sizes: `BENCH_GATEWAY` (default 250), `BENCH_HEADLESS` (100, i.e. 400 Services),
//! `BENCH_FLAT` (200), `BENCH_FEDERATED` (150): 1,000 mirror Services.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Service};
use kube::{
    Api, Client,
    api::{ListParams, PostParams},
};
use linkplane_core::{Cluster, CredentialsRef, GatewaySpec, Link, ProbeSpec};
use linkplane_mirror::{Metrics, Options, Supervisor, SupervisorHandle};
use linkplane_store::{Owner, Store, clusters, links};
use serde_json::{Value, json};

const IN_FLIGHT: usize = 32;
const PER_NAMESPACE: usize = 50;

#[tokio::main]
async fn main() {
    linkplane_mirror::install_crypto_provider();
    let admin = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let dir = tempfile::tempdir().unwrap();
    let sizes = Sizes {
        gateway: env_usize("BENCH_GATEWAY", 250),
        headless: env_usize("BENCH_HEADLESS", 100),
        flat: env_usize("BENCH_FLAT", 200),
        federated: env_usize("BENCH_FEDERATED", 150),
    };
    let db = Store::recreate_database(&admin, "linkplane_bench_restart")
        .await
        .unwrap();
    let store = Store::connect(&db, 8).await.unwrap();
    let sim = kubesim::Simulator::start(kubesim::SimOptions {
        clusters: vec!["east".into(), "west".into()],
        dir: dir.path().to_path_buf(),
        event_window: 100_000,
        ..kubesim::SimOptions::default()
    })
    .await
    .unwrap();
    let east = sim.cluster("east").unwrap().client().await.unwrap();
    let west = sim.cluster("west").unwrap().client().await.unwrap();
    {
        let mut conn = store.acquire().await.unwrap();
        for n in ["east", "west"] {
            clusters::upsert(&mut conn, &cluster_of(&sim, n), &Owner::Api)
                .await
                .unwrap();
        }
    }
    let t0 = Instant::now();
    sizes.create(&east, &west).await;
    println!(
        "mirror-restart: fleet created in {:.1}s: {} gateway (4 ports), {} headless x 3 pods, {} flat, {} federated",
        t0.elapsed().as_secs_f64(),
        sizes.gateway,
        sizes.headless,
        sizes.flat,
        sizes.federated
    );

    // Cold start: the fleet is mirrored.
    let slow = Options {
        resync_interval: Duration::from_secs(3600),
        ..Options::default()
    };
    let metrics = Metrics::default();
    let t0 = Instant::now();
    let handle = Supervisor::start(store.clone(), slow.clone(), metrics.clone())
        .await
        .unwrap();
    {
        let mut conn = store.acquire().await.unwrap();
        let mut link = Link::new("west-east", "west", "east");
        link.spec.enable_headless_services = true;
        links::upsert(&mut conn, &link, &Owner::Api).await.unwrap();
    }
    let want = sizes.mirror_services();
    loop {
        let have = mirror_services(&west).await;
        if have >= want {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "{have}/{want} mirrors after 5 min"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    settle(&handle, &metrics, Duration::from_secs(2)).await;
    println!(
        "mirror-restart: cold start: {want} mirror Services converged in {:.1}s with {} writes",
        t0.elapsed().as_secs_f64(),
        metrics.total_writes("west")
    );
    handle.shutdown().await;

    // Restart against the unchanged fleet.
    let resync = Duration::from_millis(env_usize("BENCH_RESYNC_MS", 2_000) as u64);
    let metrics = Metrics::default();
    let marks = [("east", mark(&sim, "east")), ("west", mark(&sim, "west"))];
    let t0 = Instant::now();
    let handle = Supervisor::start(
        store.clone(),
        Options {
            resync_interval: resync,
            ..Options::default()
        },
        metrics.clone(),
    )
    .await
    .unwrap();
    settle(&handle, &metrics, Duration::from_secs(1)).await;
    let restart = t0.elapsed();
    let (restart_counter, restart_log, restart_reads) = writes(&sim, &metrics, &marks);
    println!(
        "mirror-restart: restart: synced and quiet after {:.1}s; writes: {restart_counter} (linkplane_mirror_writes_total), {restart_log} (kubesim request log); {restart_reads} read requests (lists and watches)",
        restart.as_secs_f64()
    );

    // Resyncs: the timer, then every watch cut with its history gone (relist + full pass).
    let periods = env_usize("BENCH_RESYNCS", 3) as u32;
    tokio::time::sleep(resync * periods + resync / 2).await;
    for c in ["east", "west"] {
        let faults = sim.cluster(c).unwrap().faults();
        faults.expire_watch_history();
        faults.sever_watches();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle(&handle, &metrics, Duration::from_secs(1)).await;
    let (counter, log, _) = writes(&sim, &metrics, &marks);
    println!(
        "mirror-restart: after {periods} timed resyncs ({} ms) and a relist of every watch: writes {} (counter), {} (request log) (goal 0)",
        resync.as_millis(),
        counter,
        log
    );
    handle.shutdown().await;
    sim.shutdown().await;
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mark(sim: &kubesim::Simulator, cluster: &str) -> u64 {
    sim.cluster(cluster).unwrap().request_mark()
}

/// (writes by the counter, write requests in the log, read requests in the log), since `marks`.
fn writes(
    sim: &kubesim::Simulator,
    metrics: &Metrics,
    marks: &[(&str, u64)],
) -> (u64, usize, usize) {
    let mut counter = 0;
    let (mut log, mut reads) = (0, 0);
    for (cluster, mark) in marks {
        counter += metrics.total_writes(cluster);
        for r in sim.cluster(cluster).unwrap().requests_since(*mark) {
            if r.is_write() {
                log += 1;
                if log <= 5 {
                    println!(
                        "mirror-restart:   write: {} {}/{} {}",
                        r.verb,
                        r.resource,
                        r.namespace.unwrap_or_default(),
                        r.name.unwrap_or_default()
                    );
                }
            } else {
                reads += 1;
            }
        }
    }
    (counter, log, reads)
}

/// Waits until both clusters listed, the queues are empty and nothing was written for `quiet`.
async fn settle(handle: &SupervisorHandle, metrics: &Metrics, quiet: Duration) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !["east", "west"]
        .iter()
        .all(|c| handle.runtime(c).is_some_and(|r| r.is_synced()))
    {
        assert!(Instant::now() < deadline, "never synced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = || metrics.total_writes("west") + metrics.total_writes("east");
    let mut last = (total(), Instant::now());
    loop {
        assert!(Instant::now() < deadline, "never settled");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = total();
        if now != last.0 || handle.pending() + handle.federation_pending() > 0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() >= quiet {
            return;
        }
    }
}

async fn mirror_services(client: &Client) -> usize {
    let lp = ListParams::default().labels("mirror.linkerd.io/mirrored-service=true");
    Api::<Service>::all(client.clone())
        .list(&lp)
        .await
        .unwrap()
        .items
        .len()
}

fn cluster_of(sim: &kubesim::Simulator, name: &str) -> Cluster {
    let c = sim.cluster(name).unwrap();
    let gw = c.gateway_addr();
    let mut cluster = Cluster::new(
        name,
        c.url(),
        CredentialsRef::KubeconfigFile(c.kubeconfig_path().display().to_string()),
    );
    cluster.spec.gateway = Some(GatewaySpec {
        addresses: vec![gw.ip().to_string()],
        port: 4143,
        identity: "gw".into(),
        probe: ProbeSpec {
            port: u32::from(gw.port()),
            ..ProbeSpec::default()
        },
    });
    cluster
}

struct Sizes {
    gateway: usize,
    headless: usize,
    flat: usize,
    federated: usize,
}

/// One object to create: (namespace, Service, Endpoints or none).
type Spec = (String, Value, Option<Value>);

impl Sizes {
    fn mirror_services(&self) -> usize {
        self.gateway + self.headless * 4 + self.flat + self.federated
    }

    fn target_objects(&self) -> Vec<Spec> {
        let mut out = Vec::new();
        let ns = |i: usize| format!("ns-{}", i / PER_NAMESPACE);
        let four = json!([
            {"name": "metrics", "port": 9100}, {"name": "admin", "port": 9990},
            {"name": "grpc", "port": 9090}, {"name": "http", "port": 80}
        ]);
        for i in 0..self.gateway {
            let name = format!("gw-{i}");
            out.push((
                ns(i),
                json!({"metadata": {"name": name, "labels": {"mirror.linkerd.io/exported": "true", "app": name}},
                       "spec": {"ports": four}}),
                Some(json!({"metadata": {"name": name}, "subsets": [{
                    "addresses": [{"ip": format!("10.1.{}.{}", i / 200, i % 200 + 10)}, {"ip": format!("10.1.{}.{}", i / 200, i % 200 + 9)}],
                    "ports": [{"name": "http", "port": 8080}, {"name": "grpc", "port": 9090},
                              {"name": "admin", "port": 9990}, {"name": "metrics", "port": 9100}]}]})),
            ));
        }
        for i in 0..self.headless {
            let name = format!("db-{i}");
            let addrs: Vec<Value> = (0..3)
                .map(|p| json!({"ip": format!("10.2.{}.{}", i % 250, 250 - p), "hostname": format!("db-{i}-{p}")}))
                .collect();
            out.push((
                ns(i),
                json!({"metadata": {"name": name, "labels": {"mirror.linkerd.io/exported": "true"}},
                       "spec": {"clusterIP": "None", "ports": [{"name": "tcp", "port": 5432}, {"name": "metrics", "port": 9187}]}}),
                Some(json!({"metadata": {"name": name}, "subsets": [{"addresses": addrs,
                    "ports": [{"name": "tcp", "port": 5432}, {"name": "metrics", "port": 9187}]}]})),
            ));
        }
        for i in 0..self.flat {
            let name = format!("flat-{i}");
            out.push((
                ns(i),
                json!({"metadata": {"name": name, "labels": {"mirror.linkerd.io/exported": "remote-discovery"}},
                       "spec": {"ports": [{"name": "http", "port": 80}, {"name": "grpc", "port": 9090}]}}),
                None,
            ));
        }
        out.extend(self.members());
        out
    }

    fn members(&self) -> Vec<Spec> {
        (0..self.federated)
            .map(|i| {
                let name = format!("fed-{i}");
                (
                    format!("ns-{}", i / PER_NAMESPACE),
                    json!({"metadata": {"name": name, "labels": {"mirror.linkerd.io/federated": "member", "app": name}},
                           "spec": {"ports": [{"name": "http", "port": 80}]}}),
                    None,
                )
            })
            .collect()
    }

    async fn create(&self, east: &Client, west: &Client) {
        let largest = self
            .gateway
            .max(self.headless)
            .max(self.flat)
            .max(self.federated);
        let names: Vec<String> = (0..largest.div_ceil(PER_NAMESPACE))
            .map(|i| format!("ns-{i}"))
            .collect();
        for client in [east, west] {
            let api: Api<Namespace> = Api::all(client.clone());
            for n in &names {
                let ns: Namespace =
                    serde_json::from_value(json!({"metadata": {"name": n}})).unwrap();
                let _ = api.create(&PostParams::default(), &ns).await;
            }
        }
        create_all(east, self.target_objects()).await;
        create_all(west, self.members()).await;
    }
}

async fn create_all(client: &Client, objects: Vec<Spec>) {
    futures::stream::iter(objects)
        .map(|(ns, svc, eps)| {
            let client = client.clone();
            async move {
                let svc: Service = serde_json::from_value(svc).unwrap();
                Api::<Service>::namespaced(client.clone(), &ns)
                    .create(&PostParams::default(), &svc)
                    .await
                    .unwrap();
                if let Some(eps) = eps {
                    let eps: Endpoints = serde_json::from_value(eps).unwrap();
                    Api::<Endpoints>::namespaced(client, &ns)
                        .create(&PostParams::default(), &eps)
                        .await
                        .unwrap();
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
}
