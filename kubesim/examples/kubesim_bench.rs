//! kubesim benchmark: `cargo run --release -p kubesim --example bench`
//! (or `scripts/bench kubesim`). Prints creates/s from one kube client over HTTPS, list latency
//! of 10,000 Services, watch fan-out latency to 50 watchers, and memory per stored Service.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams, PostParams};
use kubesim::{SimOptions, Simulator};
use serde_json::json;

const SERVICES: usize = 10_000;
const IN_FLIGHT: usize = 64;
const WATCHERS: usize = 50;
const WATCHED_CREATES: usize = 1_000;
const MEMORY_SERVICES: usize = 20_000;

/// A Service shaped like a Linkerd mirror (labels, annotation, selector-less, one port).
fn service(i: usize, sent_ns: Option<u128>) -> Service {
    let mut annotations = json!({"mirror.linkerd.io/remote-svc-fq-name": format!("svc-{i}.default.svc.cluster.local")});
    if let Some(ns) = sent_ns {
        annotations["bench/sent-ns"] = json!(ns.to_string());
    }
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("svc-{i}"),
            "labels": {
                "mirror.linkerd.io/mirrored-service": "true",
                "mirror.linkerd.io/cluster-name": "west",
                "app": format!("app-{}", i % 100),
            },
            "annotations": annotations,
        },
        "spec": {"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
    }))
    .unwrap()
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn create_all(api: &Api<Service>, range: std::ops::Range<usize>) -> Duration {
    let start = Instant::now();
    futures::stream::iter(range)
        .map(|i| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &service(i, None)).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await
        .unwrap();
    start.elapsed()
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions {
        clusters: vec!["bench".into(), "memory".into()],
        dir: dir.path().to_path_buf(),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let cluster = sim.cluster("bench").unwrap();
    let client = cluster.client().await.unwrap();
    let api: Api<Service> = Api::namespaced(client.clone(), "default");

    // 1. Memory per stored Service, first (so freed buffers of later phases cannot hide it):
    //    RSS delta and exact stored bytes.
    let mem = sim.cluster("memory").unwrap();
    let mem_api: Api<Service> = Api::namespaced(mem.client().await.unwrap(), "default");
    create_all(&mem_api, 1_000_000..1_000_000 + 500).await;
    let before = rss_bytes();
    create_all(&mem_api, 0..MEMORY_SERVICES).await;
    let after = rss_bytes();
    let (bytes, count) = mem.stored_service_bytes();
    let rss_per = (after.saturating_sub(before)) as f64 / MEMORY_SERVICES as f64;
    let exact_per = bytes as f64 / count as f64;
    println!(
        "memory: {MEMORY_SERVICES} Services; RSS delta {:.0} B/Service (whole process, includes client and allocator slack); stored bytes {:.0} B/Service (object JSON with managedFields, keys, labels) (target <= 2048 B: {:.2}x / {:.2}x)",
        rss_per,
        exact_per,
        rss_per / 2048.0,
        exact_per / 2048.0
    );
    // Warm up connections and code paths (not counted).
    create_all(&api, 1_000_000..1_000_000 + 500).await;

    // 2. Creates from one client over HTTPS.
    let took = create_all(&api, 0..SERVICES).await;
    let creates_per_s = SERVICES as f64 / took.as_secs_f64();
    println!(
        "creates: {SERVICES} Services in {:.0} ms from one kube client over HTTPS, {IN_FLIGHT} in flight: {creates_per_s:.0}/s (target >= 5000/s: {:.2}x)",
        took.as_secs_f64() * 1000.0,
        creates_per_s / 5000.0
    );

    // 3. List 10,000 (+500 warm-up) Services: raw HTTP response and typed decode.
    let mut raw = Vec::new();
    let mut typed = Vec::new();
    for _ in 0..7 {
        let req = http::Request::get("/api/v1/namespaces/default/services")
            .body(Vec::new())
            .unwrap();
        let t = Instant::now();
        let body = client.request_text(req).await.unwrap();
        raw.push(t.elapsed());
        assert!(body.len() > 1_000_000);
        let t = Instant::now();
        let list = api.list(&ListParams::default()).await.unwrap();
        typed.push(t.elapsed());
        assert_eq!(list.items.len(), SERVICES + 500);
    }
    raw.sort();
    typed.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "list: {} Services, median {:.1} ms as bytes over HTTPS, {:.1} ms decoded into typed Services (target <= 50 ms: {:.2}x of budget)",
        SERVICES + 500,
        ms(percentile(&raw, 0.5)),
        ms(percentile(&typed, 0.5)),
        ms(percentile(&raw, 0.5)) / 50.0
    );

    // 4. Watch fan-out: 50 watchers, 1,000 creates paced at 500/s (so the figure is delivery
    //    latency, not a client-side backlog); latency from send to decoded event.
    let base = Instant::now();
    let rv = api
        .list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut handles = Vec::new();
    let ready = Arc::new(tokio::sync::Barrier::new(WATCHERS + 1));
    for _ in 0..WATCHERS {
        // Raw watch streams: the figure is the simulator's delivery, not kube-rs decoding 50
        // copies of every Service (which is what a real watcher would pay on its own core).
        let watch_client = cluster.client().await.unwrap();
        let rv = rv.clone();
        let ready = ready.clone();
        handles.push(tokio::spawn(async move {
            let req = http::Request::get(format!(
                "/api/v1/namespaces/default/services?watch=1&resourceVersion={rv}&timeoutSeconds=120"
            ))
            .body(kube::client::Body::from(Vec::new()))
            .unwrap();
            let resp = watch_client.send(req).await.unwrap();
            let mut body = resp.into_body();
            ready.wait().await;
            let mut lat = Vec::with_capacity(WATCHED_CREATES);
            let mut buf = Vec::new();
            const MARK: &[u8] = b"\"bench/sent-ns\":\"";
            while lat.len() < WATCHED_CREATES {
                let frame = http_body_util::BodyExt::frame(&mut body).await.expect("watch ended early").unwrap();
                let Ok(data) = frame.into_data() else { continue };
                let now = base.elapsed().as_nanos();
                buf.extend_from_slice(&data);
                while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    if let Some(at) = line.windows(MARK.len()).position(|w| w == MARK) {
                        let digits: String = line[at + MARK.len()..]
                            .iter()
                            .take_while(|b| b.is_ascii_digit())
                            .map(|b| *b as char)
                            .collect();
                        let sent: u128 = digits.parse().unwrap();
                        lat.push(Duration::from_nanos((now - sent) as u64));
                    }
                }
            }
            lat
        }));
    }
    ready.wait().await;
    let t = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    let mut creates = Vec::with_capacity(WATCHED_CREATES);
    for i in SERVICES..SERVICES + WATCHED_CREATES {
        tick.tick().await;
        let api = api.clone();
        creates.push(tokio::spawn(async move {
            let svc = service(i, Some(base.elapsed().as_nanos()));
            api.create(&PostParams::default(), &svc).await.unwrap();
        }));
    }
    for c in creates {
        c.await.unwrap();
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let fanout_took = t.elapsed();
    all.sort();
    println!(
        "watch fan-out: {WATCHERS} watchers x {WATCHED_CREATES} creates = {} events delivered in {:.0} ms (creates paced at 500/s); create-to-delivery latency (raw watch bytes) p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.len(),
        ms(fanout_took),
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
        ms(percentile(&all, 1.0)),
    );

    sim.shutdown().await;
}
