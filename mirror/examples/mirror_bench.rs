//! Service-mirror benchmark (`scripts/bench mirror`, release build). Needs `DATABASE_URL`; each
//! scenario gets its own fresh database.
//!
//! 1. 5,000 exported services in one cluster mirrored into three others: time to converge, and
//!    mirror writes/s ÷ raw kube-client creates/s of the same objects (a mirror Service and its
//!    Endpoints, 32 pairs in flight per cluster) against the same simulator in the same run
//!    (`BENCH_ROUNDS` rounds, default 3, each mirror then raw back to back; median ratio).
//! 2. Five clusters (one exporting into four): convergence time of three healthy ones with all
//!    up, and with the fourth's API server down. Ratio down/all-up (goal within ±20%), with a
//!    WAN-like API round trip (`BENCH_FIVE_RTT_MS`, default 50) and without (CPU-bound).
//! 3. RSS of a separate supervisor process holding 20,000 mirrors across 10 clusters.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Service};
use kube::{
    Api, Client,
    api::{ListParams, PostParams},
};
use linkplane_core::{Cluster, CredentialsRef, GatewaySpec, Link, ProbeSpec};
use linkplane_mirror::{Metrics, Options, Supervisor};
use linkplane_store::{Owner, Store, clusters, links};
use serde_json::json;

const IN_FLIGHT: usize = 32;

#[tokio::main]
async fn main() {
    linkplane_mirror::install_crypto_provider();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        return child(&args[2]).await;
    }
    let admin = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let dir = tempfile::tempdir().unwrap();
    // `BENCH_ONLY=rss` (or `convergence`, `five`) runs one scenario.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let runs = |name: &str| only.is_empty() || only == name;

    // 1. Convergence and write-rate ratio. The machine's other load drifts between seconds, so
    // each round measures the mirror and then raw creates back to back, and the median round
    // ratio is the figure.
    let services = env_usize("BENCH_SERVICES", 5_000);
    let rounds = env_usize("BENCH_ROUNDS", 3).max(1);
    let mut ratios = Vec::new();
    for round in (1..=rounds).filter(|_| runs("convergence")) {
        let (conv, writes, raw_rate) =
            convergence(&admin, &dir.path().join(format!("a{round}")), services).await;
        let mirror_rate = writes as f64 / conv.as_secs_f64();
        let ratio = mirror_rate / raw_rate;
        println!(
            "mirror: round {round}: {services} services x 3 clusters converged in {:.2}s ({writes} writes, {mirror_rate:.0} writes/s); raw kube-client creates/s (same objects and simulator, {IN_FLIGHT} pairs in flight per cluster) {raw_rate:.0}; ratio {ratio:.2}",
            conv.as_secs_f64()
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    if !ratios.is_empty() {
        println!(
            "mirror: ratio mirror writes/s / raw creates/s, median of {rounds} rounds = {:.2} (goal >= 0.8)",
            ratios[ratios.len() / 2]
        );
    }

    // 2. One of five clusters down. linkplane talks to remote API servers, so each simulated
    // request gets a WAN-like round trip (the figure the goal is about); without it all five
    // simulated API servers share this machine's two cores with the supervisor, and a dead
    // cluster frees CPU for the healthy ones (shown as well, for comparison).
    let n = env_usize("BENCH_FIVE_SERVICES", 1_000);
    let rtt = Duration::from_millis(env_usize("BENCH_FIVE_RTT_MS", 50) as u64);
    // With the round trip, 8 writes in flight per cluster keep the total demand (4 sources x 2
    // writes x 8 / 50 ms = 1,280 writes/s) below what the loaded two cores serve, so the
    // figure measures isolation, not CPU sharing.
    let in_flight = env_usize("BENCH_FIVE_IN_FLIGHT", 8);
    for (latency, in_flight) in [(rtt, in_flight), (Duration::ZERO, IN_FLIGHT)]
        .into_iter()
        .filter(|_| runs("five"))
    {
        let all_up = five(&admin, dir.path(), n, false, latency, in_flight).await;
        let one_down = five(&admin, dir.path(), n, true, latency, in_flight).await;
        println!(
            "mirror: 5 clusters, {n} services into 4, API round trip {} ms, {in_flight} in flight: healthy three converged in {:.2}s all up, {:.2}s with one down; ratio {:.2}{}",
            latency.as_millis(),
            all_up.as_secs_f64(),
            one_down.as_secs_f64(),
            one_down.as_secs_f64() / all_up.as_secs_f64(),
            if latency.is_zero() {
                " (CPU-bound: for comparison)"
            } else {
                " (goal 0.8-1.2)"
            }
        );
    }

    // 3. RSS with 20,000 mirrors across 10 clusters.
    if !runs("rss") {
        return;
    }
    let per = env_usize("BENCH_RSS_SERVICES", 2_223);
    let (mirrors, rss) = rss(&admin, dir.path(), per).await;
    println!(
        "mirror: supervisor RSS with {mirrors} mirrors across 10 clusters: {:.1} MiB ({:.2} KiB per mirror)",
        rss as f64 / 1048576.0,
        rss as f64 / 1024.0 / mirrors as f64
    );
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fresh, migrated database on the server of `admin`.
async fn fresh_db(admin: &str, name: &str) -> String {
    Store::recreate_database(admin, name).await.unwrap()
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

async fn register(store: &Store, sim: &kubesim::Simulator, names: &[String]) {
    let mut conn = store.acquire().await.unwrap();
    for n in names {
        clusters::upsert(&mut conn, &cluster_of(sim, n), &Owner::Api)
            .await
            .unwrap();
    }
}

async fn link(store: &Store, source: &str, target: &str) {
    let mut conn = store.acquire().await.unwrap();
    links::upsert(
        &mut conn,
        &Link::new(format!("{source}-{target}"), source, target),
        &Owner::Api,
    )
    .await
    .unwrap();
}

fn namespaces(services: usize) -> Vec<String> {
    (0..services.div_ceil(100))
        .map(|i| format!("ns-{i}"))
        .collect()
}

async fn create_namespaces(client: &Client, names: &[String]) {
    let api: Api<Namespace> = Api::all(client.clone());
    for n in names {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": n}})).unwrap();
        let _ = api.create(&PostParams::default(), &ns).await;
    }
}

/// Creates `count` exported Services (and ready Endpoints), 100 per namespace.
async fn export(client: &Client, count: usize) {
    create_namespaces(client, &namespaces(count)).await;
    futures::stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            async move {
                let ns = format!("ns-{}", i / 100);
                let name = format!("svc-{i}");
                let svc: Service = serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": ns,
                                 "labels": {"mirror.linkerd.io/exported": "true", "app": format!("app-{}", i % 50)}},
                    "spec": {"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
                }))
                .unwrap();
                Api::<Service>::namespaced(client.clone(), &ns)
                    .create(&PostParams::default(), &svc)
                    .await
                    .unwrap();
                let eps: Endpoints = serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": ns},
                    "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "http", "port": 8080}]}]
                }))
                .unwrap();
                Api::<Endpoints>::namespaced(client, &ns)
                    .create(&PostParams::default(), &eps)
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
}

/// Raw creates/s: the very objects the mirror wrote (`template`: one of its mirror Services and
/// its Endpoints, server-set fields removed), `per_cluster` pairs into each client, each pair's
/// two creates at once and IN_FLIGHT pairs in flight per cluster, as the mirror writes them.
async fn raw_creates(
    clients: &[Client],
    per_cluster: usize,
    template: &(Service, Endpoints),
) -> f64 {
    let start = Instant::now();
    futures::future::join_all(clients.iter().map(|client| async move {
        create_namespaces(client, &["raw".to_string()]).await;
        futures::stream::iter(0..per_cluster)
            .map(|i| {
                let (mut svc, mut eps) = template.clone();
                let name = format!("svc-{i}-east");
                svc.metadata.name = Some(name.clone());
                eps.metadata.name = Some(name);
                let svcs = Api::<Service>::namespaced(client.clone(), "raw");
                let epss = Api::<Endpoints>::namespaced(client.clone(), "raw");
                async move {
                    let pp = PostParams::default();
                    let (a, b) = tokio::join!(svcs.create(&pp, &svc), epss.create(&pp, &eps));
                    a.unwrap();
                    b.unwrap();
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
    }))
    .await;
    (clients.len() * per_cluster * 2) as f64 / start.elapsed().as_secs_f64()
}

/// One mirror Service and its Endpoints as the mirror wrote them, reduced to what a client sends.
async fn mirror_template(client: &Client) -> (Service, Endpoints) {
    let mut svc = Api::<Service>::namespaced(client.clone(), "ns-0")
        .get("svc-0-east")
        .await
        .unwrap();
    let mut eps = Api::<Endpoints>::namespaced(client.clone(), "ns-0")
        .get("svc-0-east")
        .await
        .unwrap();
    for meta in [&mut svc.metadata, &mut eps.metadata] {
        *meta = kube::api::ObjectMeta {
            name: meta.name.take(),
            labels: meta.labels.take(),
            annotations: meta.annotations.take(),
            ..Default::default()
        };
    }
    svc.status = None;
    if let Some(spec) = svc.spec.as_mut() {
        spec.cluster_ip = None;
        spec.cluster_ips = None;
    }
    (svc, eps)
}

async fn sim(dir: &std::path::Path, names: &[String]) -> kubesim::Simulator {
    kubesim::Simulator::start(kubesim::SimOptions {
        clusters: names.to_vec(),
        dir: dir.to_path_buf(),
        event_window: 200_000,
        ..kubesim::SimOptions::default()
    })
    .await
    .unwrap()
}

async fn count_mirrors(client: &Client) -> usize {
    let lp = ListParams::default().labels("mirror.linkerd.io/mirrored-service=true");
    Api::<Endpoints>::all(client.clone())
        .list_metadata(&lp)
        .await
        .map(|l| l.items.len())
        .unwrap_or(0)
}

/// Waits until every client holds `expected` mirror Endpoints; returns when each got there.
///
/// `ready(i)` is a cheap necessary condition checked before listing cluster `i` (its writes so
/// far could have produced `expected` mirrors): listing 5,000 Endpoints of three clusters every
/// 100 ms would otherwise load the very simulator and cores being measured.
async fn wait_mirrors(
    clients: &[Client],
    expected: usize,
    start: Instant,
    ready: impl Fn(usize) -> bool,
) -> Vec<Duration> {
    let mut done: Vec<Option<Duration>> = vec![None; clients.len()];
    while done.iter().any(Option::is_none) {
        for (i, c) in clients.iter().enumerate() {
            if done[i].is_none() && ready(i) && count_mirrors(c).await >= expected {
                done[i] = Some(start.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "no convergence in 15 min"
        );
    }
    done.into_iter().flatten().collect()
}

async fn convergence(admin: &str, dir: &std::path::Path, services: usize) -> (Duration, u64, f64) {
    let names: Vec<String> = ["east", "west", "north", "south", "raw1", "raw2", "raw3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let sim = sim(dir, &names).await;
    let mut clients = vec![];
    for n in &names {
        clients.push(sim.cluster(n).unwrap().client().await.unwrap());
    }
    export(&clients[0], services).await;
    for c in &clients[1..4] {
        create_namespaces(c, &namespaces(services)).await;
    }
    let url = fresh_db(admin, "linkplane_bench_mirror").await;
    let store = Store::connect(&url, 8).await.unwrap();
    register(&store, &sim, &names[..4]).await;
    let metrics = Metrics::default();
    let handle = Supervisor::start(
        store.clone(),
        Options {
            concurrency: IN_FLIGHT,
            ..Options::default()
        },
        metrics.clone(),
    )
    .await
    .unwrap();
    let start = Instant::now();
    for s in ["west", "north", "south"] {
        link(&store, s, "east").await;
    }
    let sources = ["west", "north", "south"];
    // Each mirror takes at least two creates (Service and Endpoints).
    let times = wait_mirrors(&clients[1..4], services, start, |i| {
        metrics.total_writes(sources[i]) >= 2 * services as u64
    })
    .await;
    let conv = times.into_iter().max().unwrap_or_default();
    let template = mirror_template(&clients[1]).await;
    let writes: u64 = sources.iter().map(|c| metrics.total_writes(c)).sum();
    handle.shutdown().await;
    // Raw creates after the mirror stopped: nothing else runs in the process meanwhile.
    let raw_rate = raw_creates(&clients[4..7], 1_000, &template).await;
    sim.shutdown().await;
    (conv, writes, raw_rate)
}

async fn five(
    admin: &str,
    dir: &std::path::Path,
    services: usize,
    one_down: bool,
    latency: Duration,
    in_flight: usize,
) -> Duration {
    let names: Vec<String> = (0..5).map(|i| format!("c{i}")).collect();
    let sub = format!("b-{}-{}", u8::from(one_down), latency.as_millis());
    let sim = sim(&dir.join(sub), &names).await;
    let mut clients = vec![];
    for n in &names {
        clients.push(sim.cluster(n).unwrap().client().await.unwrap());
    }
    export(&clients[0], services).await;
    for c in &clients[1..5] {
        create_namespaces(c, &namespaces(services)).await;
    }
    let url = fresh_db(admin, "linkplane_bench_five").await;
    let store = Store::connect(&url, 8).await.unwrap();
    register(&store, &sim, &names).await;
    for n in &names {
        sim.cluster(n).unwrap().faults().set_latency(latency);
    }
    if one_down {
        sim.cluster("c4").unwrap().faults().stop_api().await;
    }
    let metrics = Metrics::default();
    let handle = Supervisor::start(
        store.clone(),
        Options {
            concurrency: in_flight,
            ..Options::default()
        },
        metrics.clone(),
    )
    .await
    .unwrap();
    let start = Instant::now();
    for s in &names[1..5] {
        link(&store, s, "c0").await;
    }
    let progress = std::env::var_os("BENCH_VERBOSE").map(|_| {
        let (metrics, names) = (metrics.clone(), names.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let w: Vec<u64> = names[1..].iter().map(|n| metrics.total_writes(n)).collect();
                eprintln!(
                    "  {:>5} ms writes per source {w:?}",
                    start.elapsed().as_millis()
                );
            }
        })
    });
    let times = wait_mirrors(&clients[1..4], services, start, |i| {
        metrics.total_writes(&names[i + 1]) >= 2 * services as u64
    })
    .await;
    if let Some(p) = progress {
        p.abort();
        eprintln!("  per-source times {times:?}");
    }
    handle.shutdown().await;
    sim.shutdown().await;
    times.into_iter().max().unwrap_or_default()
}

async fn rss(admin: &str, dir: &std::path::Path, per: usize) -> (usize, u64) {
    let names: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    let sim = sim(&dir.join("c"), &names).await;
    let mut clients = vec![];
    for n in &names {
        clients.push(sim.cluster(n).unwrap().client().await.unwrap());
    }
    export(&clients[0], per).await;
    for c in &clients[1..] {
        create_namespaces(c, &namespaces(per)).await;
    }
    let url = fresh_db(admin, "linkplane_bench_rss").await;
    let store = Store::connect(&url, 8).await.unwrap();
    register(&store, &sim, &names).await;
    for s in &names[1..] {
        link(&store, s, "r0").await;
    }
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .arg("--child")
        .arg(&url)
        .stdin(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    // The supervisor runs in the child: no in-process gate, list every round (not timed).
    wait_mirrors(&clients[1..], per, Instant::now(), |_| true).await;
    // Let the state flush and allocations settle before reading RSS.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    child.kill().await.ok();
    sim.shutdown().await;
    (per * 9, kib * 1024)
}

/// The measured process: a supervisor and nothing else (no simulator in its heap).
async fn child(url: &str) {
    let store = Store::connect(url, 8).await.unwrap();
    let _handle = Supervisor::start(
        store,
        Options {
            concurrency: env_usize("BENCH_RSS_IN_FLIGHT", IN_FLIGHT),
            ..Options::default()
        },
        Metrics::default(),
    )
    .await
    .unwrap();
    // Runs until the parent kills it (or closes stdin).
    let mut buf = String::new();
    let _ = tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut buf)).await;
}
