//! Write-storm benchmark (`scripts/bench storm`, release build; issue 15). Needs `DATABASE_URL`.
//!
//! 60 exported services in `east` are mirrored into `west`; then every one of them changes while
//! `west` answers every write with a 500 (kubesim's fault injection) for `STORM_SECS` (default
//! 120 s), then with 429s for as long. The writes `west` received are counted from its request
//! log (what the API server saw, not what the client thinks it sent), per key and per half of
//! each storm: with per-key exponential backoff the second half costs a fraction of the first
//! (O(keys x log(time)) until the cap, then one attempt per key per cap interval), where the old
//! fixed 1-2 s retry cost the same in both halves (~1,985 requests in 20 s for ~60 keys).
//! Finally the time from the end of the storm to convergence (an event for a waiting key skips
//! its backoff, but a storm's keys got their last event before the storm ended, so they wait).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Endpoints, Namespace, Service};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use linkplane_core::{Cluster, CredentialsRef, GatewaySpec, Link, ProbeSpec};
use linkplane_mirror::{Metrics, Options, Supervisor};
use linkplane_store::{Owner, Store, clusters, links};
use serde_json::json;

const KEYS: usize = 60;

#[tokio::main]
async fn main() {
    linkplane_mirror::install_crypto_provider();
    let admin = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let storm = Duration::from_secs(
        std::env::var("STORM_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(120),
    );
    let dir = tempfile::tempdir().unwrap();
    let sim = kubesim::Simulator::start(kubesim::SimOptions {
        clusters: vec!["east".into(), "west".into()],
        dir: dir.path().to_path_buf(),
        ..kubesim::SimOptions::default()
    })
    .await
    .unwrap();
    let east = sim.cluster("east").unwrap().client().await.unwrap();
    let west = sim.cluster("west").unwrap().client().await.unwrap();
    for c in [&east, &west] {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "storm"}})).unwrap();
        let _ = Api::<Namespace>::all(c.clone())
            .create(&PostParams::default(), &ns)
            .await;
    }
    for i in 0..KEYS {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": format!("svc-{i}"), "namespace": "storm",
                         "labels": {"mirror.linkerd.io/exported": "true"}},
            "spec": {"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
        }))
        .unwrap();
        Api::<Service>::namespaced(east.clone(), "storm")
            .create(&PostParams::default(), &svc)
            .await
            .unwrap();
        let eps: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": format!("svc-{i}"), "namespace": "storm"},
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "http", "port": 8080}]}]
        }))
        .unwrap();
        Api::<Endpoints>::namespaced(east.clone(), "storm")
            .create(&PostParams::default(), &eps)
            .await
            .unwrap();
    }
    let url = Store::recreate_database(&admin, "linkplane_bench_storm")
        .await
        .unwrap();
    let store = Store::connect(&url, 8).await.unwrap();
    {
        let mut conn = store.acquire().await.unwrap();
        for name in ["east", "west"] {
            let c = sim.cluster(name).unwrap();
            let mut cluster = Cluster::new(
                name,
                c.url(),
                CredentialsRef::KubeconfigFile(c.kubeconfig_path().display().to_string()),
            );
            let gw = c.gateway_addr();
            cluster.spec.gateway = Some(GatewaySpec {
                addresses: vec![gw.ip().to_string()],
                port: 4143,
                identity: "gw".into(),
                probe: ProbeSpec {
                    port: u32::from(gw.port()),
                    ..ProbeSpec::default()
                },
            });
            clusters::upsert(&mut conn, &cluster, &Owner::Api)
                .await
                .unwrap();
        }
        links::upsert(
            &mut conn,
            &Link::new("west-from-east", "west", "east"),
            &Owner::Api,
        )
        .await
        .unwrap();
    }
    let metrics = Metrics::default();
    let handle = Supervisor::start(store.clone(), Options::default(), metrics.clone())
        .await
        .unwrap();
    wait_for(&west, 8080).await;

    let faults = sim.cluster("west").unwrap().faults();
    let mut port = 8080;
    for (label, failure) in [
        ("500", kubesim::WriteFailure::InternalError),
        ("429", kubesim::WriteFailure::TooManyRequests),
    ] {
        faults.fail_writes(1.0, failure);
        let mark = sim.cluster("west").unwrap().request_mark();
        port += 1;
        change_every_service(&east, port).await;
        tokio::time::sleep(storm / 2).await;
        let half = sim.cluster("west").unwrap().request_mark();
        tokio::time::sleep(storm / 2).await;
        let end = sim.cluster("west").unwrap().request_mark();
        faults.clear();
        let ended = Instant::now();
        let log = sim.cluster("west").unwrap().requests_since(mark);
        let writes = |from: u64, to: u64| {
            log.iter()
                .filter(|r| r.seq >= from && r.seq < to && r.is_write())
                .count()
        };
        let (first, second) = (writes(mark, half), writes(half, end));
        let refused = log
            .iter()
            .filter(|r| r.seq < end && r.is_write() && r.code >= 400)
            .count();
        wait_for(&west, port).await;
        println!(
            "storm: {KEYS} keys, every write answered {label} for {:.0} s: {} writes reached the API server ({refused} refused), {:.1} per key; first half {first}, second half {second}: ratio second/first {:.2} (a fixed-interval retry gives 1.00); converged {:.1} s after the storm ended",
            storm.as_secs_f64(),
            first + second,
            (first + second) as f64 / KEYS as f64,
            second as f64 / first.max(1) as f64,
            ended.elapsed().as_secs_f64(),
        );
    }
    handle.shutdown().await;
    sim.shutdown().await;
}

/// Changes the port of every exported service, so each mirror needs a write.
async fn change_every_service(east: &Client, port: i32) {
    let api = Api::<Service>::namespaced(east.clone(), "storm");
    for i in 0..KEYS {
        let patch = json!({"spec": {"ports": [{"name": "http", "port": port, "protocol": "TCP"}]}});
        api.patch(
            &format!("svc-{i}"),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
    }
}

/// Waits until every mirror in `west` carries `port`.
async fn wait_for(west: &Client, port: i32) {
    let api = Api::<Service>::namespaced(west.clone(), "storm");
    let start = Instant::now();
    loop {
        let list = api.list(&Default::default()).await.unwrap();
        let done = list
            .items
            .iter()
            .filter(|s| {
                s.spec
                    .as_ref()
                    .and_then(|spec| spec.ports.as_ref())
                    .is_some_and(|p| p.iter().any(|p| p.port == port))
            })
            .count();
        if done >= KEYS {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "only {done} of {KEYS} mirrors carry port {port} after 15 min"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
