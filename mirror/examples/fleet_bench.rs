//! Fleet-scale benchmark (`scripts/bench fleet`, release build; issue 19). Needs
//! `DATABASE_URL`; each replica count gets a fresh simulator and a fresh database.
//!
//! `BENCH_FLEET_CLUSTERS` (default 100) kubesim clusters in this process, a full mesh of links
//! (N×(N−1)), `BENCH_FLEET_SERVICES` (default 20) exported Services with ready Endpoints per
//! cluster, mirrored by `BENCH_FLEET_REPLICAS` (default `1,2`: one run each) supervisor
//! replicas, each a child process of its own with cluster leases on (the server's default
//! timings: 10 s lease, 2 s renewal), so the simulator's memory stays out of their RSS. Per run:
//!
//! 1. **cold convergence** from the links' creation to every mirror Service and Endpoints
//!    present, and mirror writes/s (successful writes in kubesim's request log) against raw
//!    creates/s of the same objects into the same simulator, measured after the replicas stopped
//!    (`BENCH_FLEET_RAW_PAIRS` pairs per cluster, 32 in flight per cluster, as the mirror writes);
//! 2. **watches held**, counted in kubesim (open watch streams by resource and user agent), and
//!    client connections per cluster;
//! 3. **RSS** of each replica process, per mirror (and the replicas' own index counts);
//! 4. **steady state**: API requests per minute of the unchanged fleet
//!    (`BENCH_FLEET_STEADY_SECS`, default 60), from the request log, by verb;
//! 5. **churn**: `BENCH_FLEET_CHURN_RATE` export changes/s (default 50; an annotation on an
//!    exported Service, copied onto its 99 mirrors) for `BENCH_FLEET_CHURN_SECS` (default 20),
//!    each Service changed once; latency from the change's commit to its mirror's write in the
//!    last of the N−1 consumers (both times from the request log's `received_at`), p50/p99/max;
//! 6. with 2 replicas, **takeover**: `kill -9` of one replica, one export change right after;
//!    time to the survivor's first write into a cluster the victim held, to that change visible
//!    in every consumer, and an exact check of every cluster's mirror set afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Service};
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use linkplane_core::{Cluster, CredentialsRef, GatewaySpec, Link, ProbeSpec};
use linkplane_mirror::{LeaseOptions, Metrics, Options, Supervisor, WatchScope};
use linkplane_store::{
    Owner, Store, clusters, leases, links,
    remote_credentials::{self, RemoteCredentialState},
};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Writes in flight per cluster for the raw baseline: the mirror's default concurrency.
const RAW_IN_FLIGHT: usize = 32;
/// The one namespace every cluster exports from and mirrors into.
const NS: &str = "fleet";
/// The annotation the churn changes (copied onto mirror Services, not onto their Endpoints).
const REV: &str = "bench.linkplane.io/rev";

#[tokio::main]
async fn main() {
    linkplane_mirror::install_crypto_provider();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        return child(&args[2], &args[3]).await;
    }
    let admin = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let n = env_usize("BENCH_FLEET_CLUSTERS", 100).max(2);
    let s = env_usize("BENCH_FLEET_SERVICES", 20).max(1);
    let replicas: Vec<usize> = std::env::var("BENCH_FLEET_REPLICAS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    for r in replicas {
        run(&admin, &dir.path().join(format!("r{r}")), n, s, r).await;
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cluster_name(i: usize) -> String {
    format!("c{i:03}")
}

fn svc_name(j: usize) -> String {
    format!("svc-{j}")
}

/// `p` in 0..=100 of sorted `v`.
fn pct(v: &[Duration], p: usize) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v[((v.len() - 1) * p).div_ceil(100)]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// A replica process.
struct Replica {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    id: String,
}

impl Replica {
    async fn spawn(url: &str, name: &str, clusters: usize) -> Replica {
        // `BENCH_FLEET_CHILD_WRAPPER=heaptrack`: run each replica under a profiler (its RSS is
        // then the wrapper's; use it to see where the replica's bytes go, not for the table).
        let exe = std::env::current_exe().unwrap();
        let mut cmd = match std::env::var("BENCH_FLEET_CHILD_WRAPPER") {
            Ok(w) if !w.is_empty() => {
                let mut c = tokio::process::Command::new(w);
                c.arg(exe);
                c
            }
            _ => tokio::process::Command::new(exe),
        };
        let mut child = cmd
            .arg("--child")
            .arg(url)
            .arg(name)
            .env("BENCH_FLEET_CLUSTERS", clusters.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let id = stdout.next_line().await.unwrap().expect("replica id");
        Replica {
            child,
            stdin,
            stdout,
            id,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// VmRSS in bytes.
    fn rss(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    }

    /// The replica's own view: runtimes and index sizes.
    async fn stats(&mut self) -> serde_json::Value {
        self.stdin.write_all(b"stats\n").await.unwrap();
        self.stdin.flush().await.unwrap();
        let line = self.stdout.next_line().await.unwrap().unwrap_or_default();
        serde_json::from_str(&line).unwrap_or_default()
    }

    fn user_agent_has(&self, ua: Option<&str>) -> bool {
        ua.is_some_and(|ua| ua.contains(&self.id))
    }
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

async fn create_namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    let _ = Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await;
}

/// `count` exported Services with ready Endpoints in `NS`; with `linkerd`, the `linkerd`
/// namespace too (Linkerd installed: remote-discovery credentials are written there).
async fn export(client: &Client, count: usize, linkerd: bool) {
    create_namespace(client, NS).await;
    if linkerd {
        create_namespace(client, "linkerd").await;
    }
    futures::stream::iter(0..count)
        .map(|j| {
            let client = client.clone();
            async move {
                let name = svc_name(j);
                let svc: Service = serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": NS,
                                 "labels": {"mirror.linkerd.io/exported": "true", "app": name},
                                 "annotations": {REV: "0"}},
                    "spec": {"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
                }))
                .unwrap();
                Api::<Service>::namespaced(client.clone(), NS)
                    .create(&PostParams::default(), &svc)
                    .await
                    .unwrap();
                let eps: Endpoints = serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": NS},
                    "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "http", "port": 8080}]}]
                }))
                .unwrap();
                Api::<Endpoints>::namespaced(client, NS)
                    .create(&PostParams::default(), &eps)
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
}

async fn clients(sim: &kubesim::Simulator, names: &[String]) -> Vec<Client> {
    let mut out = Vec::new();
    for n in names {
        out.push(sim.cluster(n).unwrap().client().await.unwrap());
    }
    out
}

/// Names of the mirror objects (of `kind`'s API) present in a cluster.
async fn mirror_names<K>(client: &Client) -> BTreeSet<String>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let lp = ListParams::default().labels("mirror.linkerd.io/mirrored-service=true");
    Api::<K>::namespaced(client.clone(), NS)
        .list_metadata(&lp)
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter_map(|m| m.metadata.name)
                .collect()
        })
        .unwrap_or_default()
}

/// The mirror names cluster `i` should hold: every other cluster's exports.
fn expected_mirrors(i: usize, n: usize, s: usize) -> BTreeSet<String> {
    (0..n)
        .filter(|t| *t != i)
        .flat_map(|t| (0..s).map(move |j| format!("{}-{}", svc_name(j), cluster_name(t))))
        .collect()
}

/// Writes by linkplane (any replica) in a cluster's request log since `mark`: successful ones
/// by resource, and the number that failed.
fn linkplane_writes(
    c: &kubesim::SimCluster,
    mark: u64,
    by_resource: &mut BTreeMap<String, u64>,
) -> (u64, u64) {
    let mut ok = 0;
    let mut failed = 0;
    for r in c.requests_since(mark) {
        if r.is_write()
            && r.user_agent
                .as_deref()
                .is_some_and(|ua| ua.starts_with("linkplane/"))
        {
            if r.code < 300 {
                ok += 1;
                let what = match &r.subresource {
                    Some(sub) => format!("{}/{sub}", r.resource),
                    None => r.resource.clone(),
                };
                *by_resource.entry(what).or_default() += 1;
            } else {
                failed += 1;
            }
        }
    }
    (ok, failed)
}

/// Reads the clusters' request logs incrementally: each poll takes only the entries since the
/// previous one. The log sits behind a lock every request takes, and re-reading it whole on
/// every poll (hundreds of thousands of entries at 100 clusters) loaded the simulator whose
/// latencies the poll measures.
struct LogCursor {
    marks: Vec<u64>,
}

impl LogCursor {
    /// From now on.
    fn new(sims: &[kubesim::SimCluster]) -> Self {
        Self {
            marks: sims.iter().map(|c| c.request_mark()).collect(),
        }
    }

    /// Calls `f(cluster index, request)` for each request logged since the last poll.
    fn poll(
        &mut self,
        sims: &[kubesim::SimCluster],
        mut f: impl FnMut(usize, &kubesim::LoggedRequest),
    ) {
        for (i, c) in sims.iter().enumerate() {
            let new = c.requests_since(self.marks[i]);
            if let Some(last) = new.last() {
                self.marks[i] = last.seq + 1;
            }
            for r in &new {
                f(i, r);
            }
        }
    }
}

async fn run(admin: &str, dir: &std::path::Path, n: usize, s: usize, replicas: usize) {
    let names: Vec<String> = (0..n).map(cluster_name).collect();
    let mirrors = n * (n - 1) * s;
    let tag = format!("fleet[{n} clusters, {replicas} replica(s)]");
    println!(
        "{tag}: {} links, {} exported services, {mirrors} mirror Services (+ as many Endpoints)",
        n * (n - 1),
        n * s
    );
    let sim = kubesim::Simulator::start(kubesim::SimOptions {
        clusters: names.clone(),
        dir: dir.to_path_buf(),
        event_window: 20_000,
        ..kubesim::SimOptions::default()
    })
    .await
    .unwrap();
    let sims: Vec<kubesim::SimCluster> = names.iter().map(|c| sim.cluster(c).unwrap()).collect();
    // `BENCH_FLEET_LINKERD=0`: clusters without Linkerd's namespace (no credentials written;
    // each pair waits for the namespace instead).
    let linkerd = std::env::var("BENCH_FLEET_LINKERD").map_or(true, |v| v != "0");
    {
        let cs = clients(&sim, &names).await;
        futures::stream::iter(cs.iter())
            .map(|c| export(c, s, linkerd))
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
    }

    let url = Store::recreate_database(admin, &format!("linkplane_bench_fleet{replicas}"))
        .await
        .unwrap();
    let store = Store::connect(&url, 4).await.unwrap();
    {
        let mut conn = store.acquire().await.unwrap();
        for c in &names {
            clusters::upsert(&mut conn, &cluster_of(&sim, c), &Owner::Api)
                .await
                .unwrap();
        }
    }
    let mut reps = Vec::new();
    for r in 0..replicas {
        reps.push(Replica::spawn(&url, &format!("fleet-{r}"), n).await);
    }
    // Let the idle supervisors settle: their RSS before any link is the fixed cost.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss: Vec<u64> = reps.iter().map(Replica::rss).collect();

    // 1. Cold convergence: every link in one transaction (as a Git revision lands).
    let marks: Vec<u64> = sims.iter().map(|c| c.request_mark()).collect();
    let all_links: Vec<Link> = (0..n)
        .flat_map(|a| {
            let names = &names;
            (0..n)
                .filter(move |b| *b != a)
                .map(move |b| Link::new(format!("{}-{}", names[a], names[b]), &names[a], &names[b]))
        })
        .collect();
    let start = Instant::now();
    {
        let mut tx = store.begin().await.unwrap();
        let refs: Vec<&Link> = all_links.iter().collect();
        links::upsert_many(&mut tx, &refs, &Owner::Api)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let conv = wait_converged(&sim, &sims, &names, s, start).await;
    let (mut writes, mut failed) = (0, 0);
    let mut by_resource = BTreeMap::new();
    for (c, m) in sims.iter().zip(&marks) {
        let (ok, bad) = linkplane_writes(c, *m, &mut by_resource);
        writes += ok;
        failed += bad;
    }
    // The figure compared with raw creates: the mirror objects alone.
    let mirror_writes = by_resource.get("services").copied().unwrap_or(0)
        + by_resource.get("endpoints").copied().unwrap_or(0);
    let mirror_rate = mirror_writes as f64 / conv.as_secs_f64();
    println!(
        "{tag}: cold convergence {:.1} s: {writes} writes ({failed} failed; {}), mirror Services + Endpoints {mirror_writes}: {mirror_rate:.0} writes/s",
        conv.as_secs_f64(),
        by_resource
            .iter()
            .map(|(r, c)| format!("{r} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // 2. Watches and connections, counted by the API servers. The bench's own clients are gone
    // (dropped above); give their pooled connections a moment to close.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut watch_sets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut streams: BTreeMap<String, usize> = BTreeMap::new();
    let mut kinds = BTreeSet::new();
    let mut connections = Vec::new();
    for c in &sims {
        for (w, count) in c.open_watches() {
            let who = reps
                .iter()
                .find(|r| r.user_agent_has(w.user_agent.as_deref()))
                .map_or("other".to_string(), |r| r.id.clone());
            watch_sets
                .entry(who.clone())
                .or_default()
                .insert(c.name().to_string());
            *streams.entry(who).or_default() += count;
            kinds.insert(w.resource.clone());
        }
        connections.push(c.open_connections());
    }
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        eprintln!(
            "  open watches of {}: {:?}",
            sims[0].name(),
            sims[0].open_watches()
        );
    }
    let total_streams: usize = streams.values().sum();
    let k = kinds.len().max(1);
    connections.sort_unstable();
    println!(
        "{tag}: watch streams held {total_streams} ({} kinds: {}); per replica: {}; Linkerd's per-link design: {} x {k} = {} (ratio {:.4})",
        k,
        kinds.iter().cloned().collect::<Vec<_>>().join(", "),
        streams
            .iter()
            .map(|(r, c)| format!("{r} {c} streams on {} clusters", watch_sets[r].len()))
            .collect::<Vec<_>>()
            .join("; "),
        n * (n - 1),
        n * (n - 1) * k,
        total_streams as f64 / (n * (n - 1) * k) as f64
    );
    println!(
        "{tag}: client connections per cluster (all replicas): min {} median {} max {}, total {}",
        connections[0],
        connections[connections.len() / 2],
        connections[connections.len() - 1],
        connections.iter().sum::<usize>()
    );

    // 3. RSS per mirror.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut total_rss = 0;
    let mut index_bytes = 0;
    for (r, idle) in reps.iter_mut().zip(&idle_rss) {
        let rss = r.rss();
        total_rss += rss;
        let stats = r.stats().await;
        index_bytes += stats["index_service_bytes"].as_u64().unwrap_or(0)
            + stats["index_endpoints_bytes"].as_u64().unwrap_or(0);
        println!(
            "{tag}: replica {} RSS {:.1} MiB (idle before links {:.1} MiB); index: {stats}",
            r.id,
            rss as f64 / 1048576.0,
            *idle as f64 / 1048576.0
        );
    }
    let idle_total: u64 = idle_rss.iter().sum();
    println!(
        "{tag}: index entries (every Service and Endpoints indexed, all replicas), estimated heap: {:.1} MiB = {:.2} KiB per mirror",
        index_bytes as f64 / 1048576.0,
        index_bytes as f64 / 1024.0 / mirrors as f64
    );
    println!(
        "{tag}: RSS of all replicas {:.1} MiB for {mirrors} mirrors: {:.2} KiB per mirror ({:.2} KiB above the idle processes; goal <= 3 KiB)",
        total_rss as f64 / 1048576.0,
        total_rss as f64 / 1024.0 / mirrors as f64,
        total_rss.saturating_sub(idle_total) as f64 / 1024.0 / mirrors as f64
    );

    println!("{tag}: after convergence: {}", lease_summary(&store).await);
    // 4. Steady state: nothing changes; count what the replicas still send. First every pair's
    // remote-discovery credentials must be issued: until then the replicas are still working
    // (TokenRequests, Secrets, RBAC), and a window over that is a backlog, not a steady state.
    if linkerd {
        wait_provisioned(&store, n * (n - 1), start, &tag).await;
    }
    let steady = Duration::from_secs(env_usize("BENCH_FLEET_STEADY_SECS", 60) as u64);
    let marks: Vec<u64> = sims.iter().map(|c| c.request_mark()).collect();
    tokio::time::sleep(steady).await;
    let mut by_verb: BTreeMap<String, usize> = BTreeMap::new();
    for (c, m) in sims.iter().zip(&marks) {
        for r in c.requests_since(*m) {
            *by_verb.entry(r.verb).or_default() += 1;
        }
    }
    let total: usize = by_verb.values().sum();
    let per_min = |x: usize| x as f64 * 60.0 / steady.as_secs_f64();
    println!(
        "{tag}: steady state over {} s: {:.0} API requests/min in all clusters ({}), {:.0}/min besides watches (goal ~0)",
        steady.as_secs(),
        per_min(total),
        by_verb
            .iter()
            .map(|(v, c)| format!("{v} {:.0}/min", per_min(*c)))
            .collect::<Vec<_>>()
            .join(", "),
        per_min(total - by_verb.get("watch").copied().unwrap_or(0))
    );

    // After a quiet minute idle pooled connections have closed (hyper's 90 s idle timeout may
    // not have passed yet): what a quiet fleet holds.
    let mut connections: Vec<usize> = sims.iter().map(|c| c.open_connections()).collect();
    connections.sort_unstable();
    let quiet_rss: u64 = reps.iter().map(Replica::rss).sum();
    println!(
        "{tag}: after the quiet window: client connections per cluster min {} median {} max {}, total {}; RSS of all replicas {:.1} MiB ({:.2} KiB per mirror)",
        connections[0],
        connections[connections.len() / 2],
        connections[connections.len() - 1],
        connections.iter().sum::<usize>(),
        quiet_rss as f64 / 1048576.0,
        quiet_rss as f64 / 1024.0 / mirrors as f64
    );

    println!(
        "{tag}: after the steady window: {}",
        lease_summary(&store).await
    );
    // 5. Churn, at each rate asked for (`BENCH_FLEET_CHURN_RATE=5,50`), on Services no earlier
    // round changed.
    let secs = env_usize("BENCH_FLEET_CHURN_SECS", 20).max(1);
    let mut offset = 0;
    for rate in std::env::var("BENCH_FLEET_CHURN_RATE")
        .unwrap_or_else(|_| "50".into())
        .split(',')
        .filter_map(|r| r.trim().parse::<usize>().ok())
    {
        offset = churn(&sim, &sims, &names, s, rate.max(1), secs, offset, &tag).await;
    }

    println!("{tag}: after churn: {}", lease_summary(&store).await);
    // 6. Takeover.
    if replicas == 2 {
        takeover(&sim, &store, &sims, &names, s, &mut reps, &tag).await;
    }

    // Raw creates of the very objects the mirror wrote, the replicas stopped.
    let template = {
        let c = sims[0].client().await.unwrap();
        mirror_template(&c, &format!("{}-{}", svc_name(0), names[1])).await
    };
    for mut r in reps {
        r.child.kill().await.ok();
    }
    let pairs = env_usize("BENCH_FLEET_RAW_PAIRS", 100);
    let raw_rate = raw_creates(&clients(&sim, &names).await, pairs, &template).await;
    println!(
        "{tag}: raw creates/s of the same objects into the same {n} clusters ({RAW_IN_FLIGHT} pairs in flight per cluster, {} creates): {raw_rate:.0}; ratio mirror writes/s / raw creates/s = {:.2}",
        n * pairs * 2,
        mirror_rate / raw_rate
    );
    sim.shutdown().await;
}

/// Who holds the leases and how often they changed hands (epochs start at 1 and grow by one
/// per change of holder): a replica that lost leases under load shows here.
async fn lease_summary(store: &Store) -> String {
    let held = {
        let mut conn = store.acquire().await.unwrap();
        leases::list(&mut conn).await.unwrap()
    };
    let mut by_holder: BTreeMap<String, usize> = BTreeMap::new();
    for l in &held {
        let who = match (&l.holder, l.valid) {
            (Some(h), true) => h.clone(),
            _ => "expired or free".to_string(),
        };
        *by_holder.entry(who).or_default() += 1;
    }
    let epochs: Vec<i64> = held.iter().map(|l| l.epoch).collect();
    format!(
        "leases {by_holder:?}, epoch max {} sum {} over {} clusters",
        epochs.iter().max().copied().unwrap_or(0),
        epochs.iter().sum::<i64>(),
        epochs.len()
    )
}

/// Waits until every pair's remote-discovery credentials are `Issued` (the replicas record each
/// pair's state in `remote_credentials`), printing when that happened after `start`. Gives up
/// when no pair was issued for `BENCH_FLEET_PROVISION_STALL_SECS` (default 60), saying how many
/// pairs have no state at all: the steady window then still opens on an idle fleet.
async fn wait_provisioned(store: &Store, pairs: usize, start: Instant, tag: &str) {
    let stall = Duration::from_secs(env_usize("BENCH_FLEET_PROVISION_STALL_SECS", 60) as u64);
    let mut next_report = Duration::from_secs(30);
    let waited = Instant::now();
    let (mut last, mut progressed) = (0, Instant::now());
    loop {
        let rows = {
            let mut conn = store.acquire().await.unwrap();
            remote_credentials::list(&mut conn).await.unwrap()
        };
        let issued = rows
            .iter()
            .filter(|r| r.state() == RemoteCredentialState::Issued)
            .count();
        if issued >= pairs {
            println!(
                "{tag}: remote-discovery credentials issued for all {pairs} pairs {:.1} s after the links were created",
                start.elapsed().as_secs_f64()
            );
            return;
        }
        if issued > last {
            (last, progressed) = (issued, Instant::now());
        } else if progressed.elapsed() > stall {
            let mut sources: BTreeMap<&str, usize> = BTreeMap::new();
            for r in &rows {
                *sources.entry(r.source_cluster.as_str()).or_default() += 1;
            }
            println!(
                "{tag}: credentials STALLED: {issued} of {pairs} pairs issued after {:.1} s, none for {} s; {} pairs have no recorded state ({} rows in other states); sources short of pairs: {:?}",
                start.elapsed().as_secs_f64(),
                stall.as_secs(),
                pairs - rows.len(),
                rows.len() - issued,
                sources
                    .iter()
                    .filter(|(_, c)| Some(**c) < sources.values().max().copied())
                    .collect::<Vec<_>>()
            );
            return;
        }
        if waited.elapsed() > next_report {
            next_report += Duration::from_secs(30);
            eprintln!(
                "  {:.0} s: credentials issued for {issued} of {pairs} pairs",
                start.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until every cluster holds all its mirror Services and Endpoints.
async fn wait_converged(
    sim: &kubesim::Simulator,
    sims: &[kubesim::SimCluster],
    names: &[String],
    s: usize,
    start: Instant,
) -> Duration {
    let n = names.len();
    let want = s * (n - 1);
    let mut done = vec![false; n];
    let mut last = Duration::ZERO;
    let mut next_report = Duration::from_secs(30);
    while done.iter().any(|d| !d) {
        for i in 0..n {
            // The stored Service count is a cheap in-process check; the Endpoints list (the
            // other half of each mirror) confirms it.
            if done[i] || sims[i].stored_service_count() < s + want {
                continue;
            }
            let c = sims[i].client().await.unwrap();
            if mirror_names::<Endpoints>(&c).await.len() >= want {
                done[i] = true;
                last = start.elapsed();
            }
        }
        if start.elapsed() > next_report {
            next_report += Duration::from_secs(30);
            eprintln!(
                "  {:.0} s: {} of {n} clusters converged",
                start.elapsed().as_secs_f64(),
                done.iter().filter(|d| **d).count()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(3600),
            "no convergence in an hour"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = sim;
    last
}

/// Export changes at `rate`/s for `secs`, each on a Service not changed before; the latency of
/// each is from its commit in the target to its mirror's write in the last consumer. Returns the
/// offset of the next unchanged Service.
#[allow(clippy::too_many_arguments)]
async fn churn(
    sim: &kubesim::Simulator,
    sims: &[kubesim::SimCluster],
    names: &[String],
    s: usize,
    rate: usize,
    secs: usize,
    offset: usize,
    tag: &str,
) -> usize {
    let n = names.len();
    let count = (rate * secs).min((n * s).saturating_sub(offset));
    if count == 0 {
        println!("{tag}: churn at {rate}/s skipped: every exported Service was changed already");
        return offset;
    }
    let cs = clients(sim, names).await;
    let mut log = LogCursor::new(sims);
    let mut writes = ServiceWrites::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let mut tasks = Vec::new();
    let start = Instant::now();
    // Cluster-major order spread: change k is Service k / n of cluster k % n.
    let changes: Vec<(usize, usize)> = (offset..offset + count).map(|k| (k % n, k / n)).collect();
    for &(t, j) in &changes {
        tick.tick().await;
        let api = Api::<Service>::namespaced(cs[t].clone(), NS);
        tasks.push(tokio::spawn(async move {
            let patch = json!({"metadata": {"annotations": {REV: "1"}}});
            api.patch(&svc_name(j), &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }));
    }
    let offered = start.elapsed();
    for t in tasks {
        t.await.unwrap();
    }
    // Wait until every change is in every consumer (or give up after two minutes).
    let deadline = Instant::now() + Duration::from_secs(120);
    let latencies = loop {
        log.poll(sims, |i, r| add_service_write(&mut writes, i, r));
        let (lat, missing) = churn_latencies(&writes, names, &changes);
        if missing == 0 || Instant::now() > deadline {
            break (lat, missing);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let (mut lat, missing) = latencies;
    lat.sort_unstable();
    println!(
        "{tag}: churn {count} export changes at {:.1}/s offered ({rate}/s asked), each into {} consumers: change -> visible in all consumers p50 {} p99 {} max {}{} (goal p99 <= 1 s)",
        count as f64 / offered.as_secs_f64(),
        n - 1,
        ms(pct(&lat, 50)),
        ms(pct(&lat, 99)),
        ms(lat.last().copied().unwrap_or_default()),
        if missing > 0 {
            format!("; {missing} (change, consumer) pairs not visible after 2 min")
        } else {
            String::new()
        }
    );
    offset + count
}

/// (cluster index, object name) -> successful Service write times, oldest first.
type ServiceWrites = HashMap<(usize, String), Vec<DateTime<Utc>>>;

/// Adds `r` to `writes` when it is a successful write of a Service.
fn add_service_write(writes: &mut ServiceWrites, cluster: usize, r: &kubesim::LoggedRequest) {
    if r.is_write()
        && r.code < 300
        && r.resource == "services"
        && r.subresource.is_none()
        && let Some(name) = &r.name
    {
        writes
            .entry((cluster, name.clone()))
            .or_default()
            .push(r.received_at);
    }
}

/// For each change (target, service): its commit time in the target's log, and the first
/// successful write of its mirror after that in every consumer's log. Returns the latencies of
/// the changes visible everywhere and the number of (change, consumer) pairs still missing.
fn churn_latencies(
    writes: &ServiceWrites,
    names: &[String],
    changes: &[(usize, usize)],
) -> (Vec<Duration>, usize) {
    let mut lat = Vec::new();
    let mut missing = 0;
    for &(t, j) in changes {
        let Some(at) = writes
            .get(&(t, svc_name(j)))
            .and_then(|v| v.first())
            .copied()
        else {
            missing += names.len() - 1;
            continue;
        };
        let mirror = format!("{}-{}", svc_name(j), names[t]);
        let mut worst = Duration::ZERO;
        let mut all = true;
        for c in (0..names.len()).filter(|c| *c != t) {
            match writes
                .get(&(c, mirror.clone()))
                .and_then(|v| v.iter().find(|w| **w >= at))
            {
                Some(w) => worst = worst.max((*w - at).to_std().unwrap_or_default()),
                None => {
                    all = false;
                    missing += 1;
                }
            }
        }
        if all {
            lat.push(worst);
        }
    }
    (lat, missing)
}

/// `kill -9` of one of two replicas, then one export change: the survivor's first write into a
/// cluster the victim held, the change visible everywhere, and every mirror set exact.
async fn takeover(
    sim: &kubesim::Simulator,
    store: &Store,
    sims: &[kubesim::SimCluster],
    names: &[String],
    s: usize,
    reps: &mut Vec<Replica>,
    tag: &str,
) {
    let n = names.len();
    let held = {
        let mut conn = store.acquire().await.unwrap();
        leases::list(&mut conn).await.unwrap()
    };
    let victim = reps.remove(0);
    let survivor = &reps[0];
    let victims: BTreeSet<usize> = held
        .iter()
        .filter(|l| l.holder.as_deref() == Some(victim.id.as_str()))
        .filter_map(|l| names.iter().position(|c| *c == l.cluster))
        .collect();
    let cs = clients(sim, names).await;
    let mut log = LogCursor::new(sims);
    let mut victim = victim;
    let killed = Utc::now();
    victim.child.start_kill().unwrap();
    let _ = victim.child.wait().await;
    // One export change in a cluster the survivor holds (a change anywhere must reach all).
    let t = (0..n).find(|i| !victims.contains(i)).unwrap_or(0);
    let patch = json!({"metadata": {"annotations": {REV: "2"}}});
    Api::<Service>::namespaced(cs[t].clone(), NS)
        .patch(&svc_name(0), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let mirror = format!("{}-{}", svc_name(0), names[t]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut first: Option<DateTime<Utc>> = None;
    // Per consumer, its first write of the mirror: "visible in all" means every consumer
    // wrote it, not that as many writes were seen (retries and the survivor's own clusters
    // alone could add up to that).
    let mut visible: BTreeMap<usize, DateTime<Utc>> = BTreeMap::new();
    let (first_write, all_visible) = loop {
        log.poll(sims, |i, r| {
            if !r.is_write() || r.code >= 300 {
                return;
            }
            if victims.contains(&i) && survivor.user_agent_has(r.user_agent.as_deref()) {
                first = Some(first.map_or(r.received_at, |f| f.min(r.received_at)));
            }
            if i != t && r.resource == "services" && r.name.as_deref() == Some(&mirror) {
                let at = visible.entry(i).or_insert(r.received_at);
                *at = (*at).min(r.received_at);
            }
        });
        if (first.is_some() && visible.len() >= n - 1) || Instant::now() > deadline {
            let all = (visible.len() >= n - 1).then(|| visible.values().max().copied());
            break (first, all.flatten());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Exact mirror sets everywhere: nothing lost, nothing extra.
    let mut lost = 0;
    let mut extra = 0;
    for (i, c) in cs.iter().enumerate() {
        let want = expected_mirrors(i, n, s);
        for have in [
            mirror_names::<Service>(c).await,
            mirror_names::<Endpoints>(c).await,
        ] {
            lost += want.difference(&have).count();
            extra += have.difference(&want).count();
        }
    }
    let since = |t: Option<DateTime<Utc>>| {
        t.map_or("never (2 min)".to_string(), |t| {
            format!("{:.2} s", (t - killed).num_milliseconds() as f64 / 1000.0)
        })
    };
    println!(
        "{tag}: takeover after kill -9 of {} ({} of {n} clusters): survivor's first write into them after {} (goal <= 15 s); the export change made right after the kill visible in all {} consumers after {}; mirror objects lost {lost}, extra {extra}",
        victim.id,
        victims.len(),
        since(first_write),
        n - 1,
        since(all_visible),
    );
}

/// One mirror Service and its Endpoints as the mirror wrote them, reduced to what a client sends.
async fn mirror_template(client: &Client, name: &str) -> (Service, Endpoints) {
    let mut svc = Api::<Service>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .unwrap();
    let mut eps = Api::<Endpoints>::namespaced(client.clone(), NS)
        .get(name)
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

/// Raw creates/s: `per_cluster` copies of the mirror's Service + Endpoints pair into each
/// cluster's `raw` namespace, both creates of a pair at once, `RAW_IN_FLIGHT` pairs in flight per
/// cluster, every cluster at once.
async fn raw_creates(
    clients: &[Client],
    per_cluster: usize,
    template: &(Service, Endpoints),
) -> f64 {
    for c in clients {
        create_namespace(c, "raw").await;
    }
    let start = Instant::now();
    futures::future::join_all(clients.iter().map(|client| async move {
        futures::stream::iter(0..per_cluster)
            .map(|i| {
                let (mut svc, mut eps) = template.clone();
                let name = format!("raw-{i}");
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
            .buffer_unordered(RAW_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
    }))
    .await;
    (clients.len() * per_cluster * 2) as f64 / start.elapsed().as_secs_f64()
}

/// A replica: a supervisor with leases and nothing else in the process. Prints its replica id,
/// then answers `stats` lines on stdin with its index sizes; exits when stdin closes.
async fn child(url: &str, name: &str) {
    // `BENCH_FLEET_CHILD_LOG=info,linkplane_mirror=debug`: the replicas' logs on stderr, to see
    // where a phase's time goes (a takeover's lease gain, re-lists, first writes).
    if let Ok(filter) = std::env::var("BENCH_FLEET_CHILD_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let n = env_usize("BENCH_FLEET_CLUSTERS", 100);
    // The server's default pool size (`--database-max-connections`).
    let store = Store::connect(url, 16).await.unwrap();
    let lease = LeaseOptions::new(name);
    println!("{}", lease.replica_id);
    std::io::stdout().flush().unwrap();
    let handle = Supervisor::start(
        store,
        Options {
            concurrency: env_usize("BENCH_FLEET_IN_FLIGHT", 32),
            lease: Some(lease),
            ..Options::default()
        },
        Metrics::default(),
    )
    .await
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    while let Some(cmd) = rx.recv().await {
        if cmd.trim() == "stats" {
            let (mut runtimes, mut services, mut endpoints, mut namespaces) = (0, 0, 0, 0);
            let mut exports_only = 0;
            let (mut service_bytes, mut endpoints_bytes) = (0, 0);
            for c in (0..n).map(cluster_name) {
                if let Some(rt) = handle.runtime(&c) {
                    let idx = rt.index();
                    runtimes += 1;
                    exports_only += usize::from(rt.scope == WatchScope::Exports);
                    services += idx.services.len();
                    endpoints += idx.endpoints.len();
                    namespaces += idx.namespaces.len();
                    service_bytes += idx.services.iter().map(heap::service).sum::<usize>();
                    endpoints_bytes += idx.endpoints.iter().map(heap::endpoints).sum::<usize>();
                }
            }
            let held = handle.leases().owned().len();
            println!(
                "{}",
                json!({"leases_held": held, "cluster_runtimes": runtimes,
                       "exports_only_runtimes": exports_only,
                       "indexed_services": services, "indexed_endpoints": endpoints,
                       "indexed_namespaces": namespaces,
                       "index_service_bytes": service_bytes,
                       "index_endpoints_bytes": endpoints_bytes})
            );
            std::io::stdout().flush().unwrap();
        }
    }
}

/// Estimated heap bytes of index entries (the bench's account of where memory per mirror goes):
/// each allocation counted at glibc malloc's chunk size (request + 8, rounded up to 16, at least
/// 32), a `BTreeMap` at one leaf node per 11 entries, and each entry's slot in the index's own
/// `BTreeMap` node. An estimate from sizes and capacities, not an allocator count (the workspace
/// forbids the `unsafe` a counting allocator needs).
mod heap {
    use std::collections::BTreeMap;
    use std::mem::size_of;

    use linkplane_core::plan::{RemoteEndpoints, RemoteService};
    use linkplane_mirror::index::{CompactMap, IndexedEndpoints, IndexedService, ObjectKey};

    fn chunk(bytes: usize) -> usize {
        if bytes == 0 {
            0
        } else {
            (bytes + 8).div_ceil(16).max(2) * 16
        }
    }

    fn string(s: &str) -> usize {
        chunk(s.len())
    }

    fn map(m: &BTreeMap<String, String>) -> usize {
        // A leaf node: 11 keys and 11 values inline, a parent pointer and lengths.
        let nodes = m.len().div_ceil(11);
        nodes * chunk(11 * 2 * size_of::<String>() + 16)
            + m.iter().map(|(k, v)| string(k) + string(v)).sum::<usize>()
    }

    fn remote_service(s: &RemoteService) -> usize {
        string(&s.namespace)
            + string(&s.name)
            + map(&s.labels)
            + map(&s.annotations)
            + chunk(s.ports.capacity() * size_of::<linkplane_core::plan::ServicePort>())
            + s.ports
                .iter()
                .map(|p| {
                    p.name.as_deref().map_or(0, string) + p.protocol.as_deref().map_or(0, string)
                })
                .sum::<usize>()
            + string(&s.resource_version)
            + s.session_affinity.as_deref().map_or(0, string)
    }

    fn remote_endpoints(e: &RemoteEndpoints) -> usize {
        string(&e.resource_version)
            + chunk(e.subsets.capacity() * size_of::<linkplane_core::plan::RemoteSubset>())
            + e.subsets
                .iter()
                .map(|s| {
                    chunk(s.addresses.capacity() * size_of::<linkplane_core::plan::RemoteAddress>())
                        + chunk(
                            s.not_ready_addresses.capacity()
                                * size_of::<linkplane_core::plan::RemoteAddress>(),
                        )
                        + s.addresses
                            .iter()
                            .chain(&s.not_ready_addresses)
                            .map(|a| string(&a.ip) + a.hostname.as_deref().map_or(0, string))
                            .sum::<usize>()
                        + chunk(
                            s.ports.capacity() * size_of::<linkplane_core::plan::EndpointPort>(),
                        )
                        + s.ports
                            .iter()
                            .map(|p| {
                                p.name.as_deref().map_or(0, string)
                                    + p.protocol.as_deref().map_or(0, string)
                            })
                            .sum::<usize>()
                })
                .sum::<usize>()
    }

    /// The key's strings and the entry's share of the index node, plus the value's heap.
    fn entry<T>(key: &ObjectKey) -> usize {
        string(&key.0) + string(&key.1) + (size_of::<ObjectKey>() + size_of::<T>()) * 12 / 11
    }

    pub fn service((key, s): (&ObjectKey, &IndexedService)) -> usize {
        entry::<IndexedService>(key)
            + remote_service(&s.service)
            + s.cluster_ip.as_deref().map_or(0, string)
    }

    pub fn endpoints((key, e): (&ObjectKey, &IndexedEndpoints)) -> usize {
        entry::<IndexedEndpoints>(key)
            + compact(&e.labels)
            + compact(&e.annotations)
            + remote_endpoints(&e.endpoints)
    }

    /// The index's `CompactMap`: one slice of (key, value) pairs, then one allocation per string.
    fn compact(m: &CompactMap) -> usize {
        chunk(m.len() * 2 * size_of::<Box<str>>())
            + m.iter().map(|(k, v)| string(k) + string(v)).sum::<usize>()
    }
}
