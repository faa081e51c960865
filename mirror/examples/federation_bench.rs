//! Federated-services benchmark (`scripts/bench federation`, release build). Needs
//! `DATABASE_URL`; the run gets its own fresh database.
//!
//! Five kubesim clusters, fully meshed (each is the source of links to the four others), 1,000
//! services deployed in all five and labelled `mirror.linkerd.io/federated=member`: every cluster
//! gets 1,000 `<svc>-federated` Services with one local and four remote members (5,000 in all).
//! 1. Cold start: time from starting the supervisor to every federated Service complete.
//! 2. Membership changes: one member leaves or rejoins (label removed / restored in one
//!    cluster); time until all five source clusters show it, p50/p99 over 50 changes (goal p99
//!    ≤ 500 ms). Ratio to the raw round trip of one write + read-back against the same simulator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::{
    Api, Client,
    api::{ListParams, PostParams},
};
use linkplane_core::{Cluster, CredentialsRef, Link};
use linkplane_mirror::{Metrics, Options, Supervisor};
use linkplane_store::{Owner, Store, clusters, links};
use serde_json::json;

const CLUSTERS: usize = 5;
const REMOTE: &str = "multicluster.linkerd.io/remote-discovery";
const LOCAL: &str = "multicluster.linkerd.io/local-discovery";

#[tokio::main]
async fn main() {
    linkplane_mirror::install_crypto_provider();
    let admin = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let services = env_usize("BENCH_SERVICES", 1_000);
    let changes = env_usize("BENCH_CHANGES", 200);
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..CLUSTERS).map(|i| format!("c{i}")).collect();
    let sim = kubesim::Simulator::start(kubesim::SimOptions {
        clusters: names.clone(),
        dir: dir.path().to_path_buf(),
        tls: true,
        event_window: 10_000,
        admin: false,
    })
    .await
    .unwrap();
    let mut clients = Vec::new();
    for n in &names {
        clients.push(sim.cluster(n).unwrap().client().await.unwrap());
    }
    for c in &clients {
        deploy(c, services).await;
    }
    for c in &clients {
        let raw: Service = serde_json::from_value(json!({
            "metadata": {"name": "raw", "namespace": "ns-0"},
            "spec": {"ports": [{"name": "http", "port": 80}]}
        }))
        .unwrap();
        Api::<Service>::namespaced(c.clone(), "ns-0")
            .create(&PostParams::default(), &raw)
            .await
            .unwrap();
    }

    let url = fresh_db(&admin, "linkplane_bench_federation").await;
    let store = Store::connect(&url, 8).await.unwrap();
    {
        let mut conn = store.acquire().await.unwrap();
        for n in &names {
            let c = sim.cluster(n).unwrap();
            let cluster = Cluster::new(
                n,
                c.url(),
                CredentialsRef::KubeconfigFile(c.kubeconfig_path().display().to_string()),
            );
            clusters::upsert(&mut conn, &cluster, &Owner::Api)
                .await
                .unwrap();
        }
        for s in &names {
            for t in names.iter().filter(|t| *t != s) {
                let link = Link::new(format!("{s}-{t}"), s, t);
                links::upsert(&mut conn, &link, &Owner::Api).await.unwrap();
            }
        }
    }

    // 1. Cold start.
    let start = Instant::now();
    let options = Options {
        concurrency: 32,
        ..Options::default()
    };
    let handle = Supervisor::start(store.clone(), options, Metrics::default())
        .await
        .unwrap();
    loop {
        let mut done = 0;
        for c in &clients {
            done += complete(c).await;
        }
        if done == services * CLUSTERS {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "cold start: {done} complete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cold = start.elapsed();
    println!(
        "federation: {services} services x {CLUSTERS} clusters ({} federated Services, {} members) converged from cold start in {:.2}s ({:.0} federated Services/s)",
        services * CLUSTERS,
        services * CLUSTERS * CLUSTERS,
        cold.as_secs_f64(),
        (services * CLUSTERS) as f64 / cold.as_secs_f64()
    );
    while handle.federation_pending() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 2. Membership changes: member i of cluster i % 5 leaves, then rejoins.
    let mut lat = Vec::new();
    let mut raw = Vec::new();
    for k in 0..changes {
        let i = (k / 2) * 7 % services;
        let owner = (k / 2) % CLUSTERS;
        let joined = k % 2 == 1;
        let (ns, name) = svc_name(i);
        let t = Instant::now();
        set_member(&clients[owner], &ns, &name, joined).await;
        let expect: Vec<(Option<String>, bool)> = (0..CLUSTERS)
            .map(|src| {
                let remote: Vec<String> = (0..CLUSTERS)
                    .filter(|c| *c != src && (joined || *c != owner))
                    .map(|c| format!("{name}@c{c}"))
                    .collect();
                (Some(remote.join(",")), src != owner || joined)
            })
            .collect();
        let waits = clients.iter().zip(expect).map(|(c, (remote, local))| {
            let (c, ns, fed) = (c.clone(), ns.clone(), format!("{name}-federated"));
            async move {
                let api: Api<Service> = Api::namespaced(c, &ns);
                loop {
                    let s = api.get(&fed).await.unwrap();
                    let a = s.metadata.annotations.unwrap_or_default();
                    if a.get(REMOTE).cloned().filter(|r| !r.is_empty())
                        == remote.clone().filter(|r| !r.is_empty())
                        && a.contains_key(LOCAL) == local
                    {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(waits))
            .await
            .expect("membership change converged");
        lat.push(t.elapsed());

        // Raw round trip on the same simulator: one write to a non-member, read back.
        let api: Api<Service> = Api::namespaced(clients[owner].clone(), "ns-0");
        let t = Instant::now();
        let mut s = api.get("raw").await.unwrap();
        s.metadata
            .annotations
            .get_or_insert_default()
            .insert("bench/touch".into(), k.to_string());
        api.replace("raw", &PostParams::default(), &s)
            .await
            .unwrap();
        let _ = api.get("raw").await.unwrap();
        raw.push(t.elapsed());
    }
    let (p50, p99) = (pct(&mut lat, 50), pct(&mut lat, 99));
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        let sorted: Vec<f64> = lat.iter().map(|d| ms(*d).round()).collect();
        eprintln!("latencies (ms, sorted): {sorted:?}");
    }
    let raw50 = pct(&mut raw, 50);
    println!(
        "federation: one membership change reaching all {CLUSTERS} source clusters, {changes} changes: p50 {:.1} ms, p99 {:.1} ms (goal p99 <= 500 ms)",
        ms(p50),
        ms(p99)
    );
    println!(
        "federation: raw write + read-back round trip p50 {:.2} ms; ratio change p50 / raw p50 = {:.1}",
        ms(raw50),
        ms(p50) / ms(raw50)
    );
    handle.shutdown().await;
    sim.shutdown().await;
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(v: &mut [Duration], p: usize) -> Duration {
    v.sort();
    v[((v.len() * p).div_ceil(100))
        .saturating_sub(1)
        .min(v.len() - 1)]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn svc_name(i: usize) -> (String, String) {
    (format!("ns-{}", i / 100), format!("svc-{i}"))
}

/// Number of `<svc>-federated` Services in `client`'s cluster with all five members.
async fn complete(client: &Client) -> usize {
    let api: Api<Service> = Api::all(client.clone());
    let lp = ListParams::default().labels("mirror.linkerd.io/mirrored-service=true");
    api.list(&lp)
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|s| {
                    let a = s.metadata.annotations.clone().unwrap_or_default();
                    a.contains_key(LOCAL)
                        && a.get(REMOTE)
                            .is_some_and(|r| r.split(',').count() == CLUSTERS - 1)
                })
                .count()
        })
        .unwrap_or(0)
}

async fn set_member(client: &Client, ns: &str, name: &str, member: bool) {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let mut s = api.get(name).await.unwrap();
    let labels = s.metadata.labels.get_or_insert_default();
    if member {
        labels.insert("mirror.linkerd.io/federated".into(), "member".into());
    } else {
        labels.remove("mirror.linkerd.io/federated");
    }
    api.replace(name, &PostParams::default(), &s).await.unwrap();
}

/// Creates the `count` member Services (100 per namespace).
async fn deploy(client: &Client, count: usize) {
    let api: Api<Namespace> = Api::all(client.clone());
    for n in 0..count.div_ceil(100) {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": format!("ns-{n}")}})).unwrap();
        let _ = api.create(&PostParams::default(), &ns).await;
    }
    futures::stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            async move {
                let (ns, name) = svc_name(i);
                let svc: Service = serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": ns,
                                 "labels": {"app": name, "mirror.linkerd.io/federated": "member"}},
                    "spec": {"ports": [{"name": "http", "port": 80}]}
                }))
                .unwrap();
                Api::<Service>::namespaced(client, &ns)
                    .create(&PostParams::default(), &svc)
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
}

/// A fresh, migrated database on the server of `admin`.
async fn fresh_db(admin: &str, name: &str) -> String {
    Store::recreate_database(admin, name).await.unwrap()
}
