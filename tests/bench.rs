//! End-to-end benchmark (`scripts/bench e2e`): Git commit → mirror visible in every consumer
//! cluster via webhook (p50/p99 over 50 commits), and convergence time after a cluster restart.
//!
//! Drives a real `linkplane dev` (release binary via LINKPLANE_BIN) exactly like the e2e tests.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use linkplane_e2e::dev::{DevEnv, eventually};

const COMMITS: usize = 50;
const RESTARTS: usize = 5;

fn mesh_without_east(mesh: &str) -> String {
    mesh.split("\n---\n")
        // Line-based: `linkplane dev` writes the mesh as plain YAML (no trailing comments).
        .filter(|d| !d.lines().any(|l| l.trim() == "target: east"))
        .collect::<Vec<_>>()
        .join("\n---\n")
}

async fn present(api: &Api<Service>, name: &str) -> bool {
    api.get_opt(name).await.ok().flatten().is_some()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env = DevEnv::start();
    let west: Api<Service> = Api::namespaced(env.client("west").await, "demo");
    let north: Api<Service> = Api::namespaced(env.client("north").await, "demo");
    let east: Api<Service> = Api::namespaced(env.client("east").await, "demo");
    let long = Duration::from_secs(60);
    eventually(long, "initial mirrors", || async {
        (present(&west, "web-east").await && present(&north, "web-east").await).then_some(())
    })
    .await;
    let mesh = env.read_repo_file("links/mesh.yaml");

    let mut samples = Vec::with_capacity(COMMITS);
    for i in 0..COMMITS {
        env.commit(
            "links/mesh.yaml",
            Some(&mesh_without_east(&mesh)),
            &format!("unlink east {i}"),
        );
        env.webhook().await;
        eventually(long, "mirrors of east removed", || async {
            (!present(&west, "web-east").await && !present(&north, "web-east").await).then_some(())
        })
        .await;
        let start = Instant::now();
        env.commit("links/mesh.yaml", Some(&mesh), &format!("link east {i}"));
        env.webhook().await;
        loop {
            if present(&west, "web-east").await && present(&north, "web-east").await {
                break;
            }
            assert!(start.elapsed() < long, "mirror did not appear");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    let p50 = percentile(&samples, 0.50);
    let p99 = percentile(&samples, 0.99);
    println!("commit → mirror in every consumer (webhook), {COMMITS} commits:");
    println!(
        "  p50 {:.0} ms   p99 {:.0} ms   max {:.0} ms   (goals: p50 ≤ 300 ms, p99 ≤ 1000 ms)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3
    );
    println!(
        "  ratios to goal: p50 {:.2}, p99 {:.2}",
        p50.as_secs_f64() / 0.3,
        p99.as_secs_f64() / 1.0
    );

    let mut recoveries = Vec::with_capacity(RESTARTS);
    for i in 0..RESTARTS {
        env.admin("north/stop").await;
        let name = format!("recover-{i}");
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "demo", "labels": {"mirror.linkerd.io/exported": "true"}},
            "spec": {"ports": [{"name": "http", "port": 80}]}
        }))
        .expect("service");
        east.create(&Default::default(), &svc)
            .await
            .expect("create in east");
        let mirror = format!("{name}-east");
        eventually(long, "mirror reaches west while north is down", || async {
            present(&west, &mirror).await.then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let start = Instant::now();
        env.admin("north/start").await;
        loop {
            if present(&north, &mirror).await {
                break;
            }
            assert!(start.elapsed() < long, "north did not converge");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        recoveries.push(start.elapsed());
    }
    recoveries.sort();
    let median = percentile(&recoveries, 0.5);
    println!(
        "cluster recovery (north stopped, change made, north restarted → change mirrored), {RESTARTS} runs:"
    );
    println!(
        "  median {:.0} ms   max {:.0} ms   (goal ≤ 5000 ms; ratio to goal {:.2})",
        median.as_secs_f64() * 1e3,
        recoveries[recoveries.len() - 1].as_secs_f64() * 1e3,
        median.as_secs_f64() / 5.0
    );
}
