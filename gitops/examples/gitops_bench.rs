//! GitOps benchmark (run by `scripts/bench gitops`, release build, needs DATABASE_URL):
//! 1. a revision of 10,000 objects: fetch, parse + validate, plan + apply (one transaction),
//!    each phase timed, and the end-to-end first sync;
//! 2. a no-op sync of the unchanged revision (fetch + drift check), median and p99 of 30;
//! 3. webhook-to-applied latency: `linkplane serve` (path in LINKPLANE_BIN) syncing a small
//!    repository; 50 commits, each announced by a signed GitHub push webhook over HTTP, timed
//!    until the sync's `linkplane_events` notification for that commit arrives.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use futures::StreamExt;
use hmac::{Hmac, Mac};
use linkplane_gitops::{Syncer, Trigger, apply, git::Cache};
use linkplane_store::{Store, changes::EVENTS_CHANNEL};
use sha2::Sha256;

const CLUSTERS: usize = 90; // 90 clusters, 90·89 = 8,010 full-mesh links, 1,900 policies
const POLICIES: usize = 1900;

/// Commits `files` (path, content) on `main` with the tests' git2 helper.
fn commit(repo: &git2::Repository, files: &[(String, String)], message: &str) -> String {
    let files: Vec<(&str, Option<&str>)> = files
        .iter()
        .map(|(path, text)| (path.as_str(), Some(text.as_str())))
        .collect();
    support::commit(repo, "main", &files, message)
}

fn cluster(name: &str, label: usize) -> String {
    format!(
        "---\napiVersion: linkplane.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: {name}\nspec:\n  apiServer: https://{name}.example.com:6443\n  credentials:\n    kubeconfigFile: /etc/linkplane/{name}.kubeconfig\n  gateway:\n    addresses: [10.0.0.1]\n  labels:\n    env: prod\n    rev: \"{label}\"\n"
    )
}

fn big_revision() -> Vec<(String, String)> {
    let names: Vec<String> = (0..CLUSTERS).map(|i| format!("c{i:03}")).collect();
    let mut files = Vec::new();
    files.push((
        "fleet/clusters.yaml".to_string(),
        names.iter().map(|n| cluster(n, 0)).collect::<String>(),
    ));
    for s in &names {
        let mut text = String::new();
        for t in &names {
            if s != t {
                text.push_str(&format!(
                    "---\napiVersion: linkplane.io/v1alpha1\nkind: Link\nmetadata:\n  name: {s}-from-{t}\nspec:\n  source: {s}\n  target: {t}\n"
                ));
            }
        }
        files.push((format!("fleet/links/{s}.yaml"), text));
    }
    // serde-saphyr's default budget allows 1,024 documents per file: 500 per file.
    for chunk in 0..POLICIES.div_ceil(500) {
        let mut text = String::new();
        for i in chunk * 500..((chunk + 1) * 500).min(POLICIES) {
            text.push_str(&format!(
                "---\napiVersion: linkplane.io/v1alpha1\nkind: ExportPolicy\nmetadata:\n  name: p{i:04}\nspec:\n  namespaces:\n    deny: [kube-system]\n"
            ));
        }
        files.push((format!("fleet/policies/{chunk}.yaml"), text));
    }
    files
}

async fn fresh_db(base: &str, name: &str) -> (Store, String) {
    let url = Store::recreate_database(base, name).await.unwrap();
    (Store::connect(&url, 8).await.unwrap(), url)
}

/// Registers the source `fleet` (path `fleet`, no self-heal) with the tests' helper.
async fn add_source(store: &Store, url: &str) {
    let mut conn = store.acquire().await.unwrap();
    support::add_source(&mut conn, "fleet", url, false).await;
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let pid = std::process::id();
    let remote_dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init_bare(remote_dir.path()).unwrap();
    let url = format!("file://{}", remote_dir.path().display());
    let files = big_revision();
    commit(&repo, &files, "10k objects");

    // 1a. Phases, measured separately.
    let (store, _) = fresh_db(&base, &format!("gitops_bench_a_{pid}")).await;
    add_source(&store, &url).await;
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(cache_dir.path());
    let spec: linkplane_core::GitSourceSpec =
        serde_json::from_value(serde_json::json!({"url": url, "path": "fleet"})).unwrap();
    let t = Instant::now();
    let resolved = cache.resolve("fleet", &spec, None).await.unwrap();
    let read = cache.files("fleet", &spec, &resolved.commit).await.unwrap();
    let t_git = t.elapsed();
    let t = Instant::now();
    let rev = read.parse().unwrap();
    let t_parse = t.elapsed();
    assert_eq!(rev.len(), 10_000);
    let t = Instant::now();
    let mut tx = store.begin().await.unwrap();
    let plan = apply::plan(&mut tx, "fleet", &rev).await.unwrap();
    apply::apply(&mut tx, "fleet", &resolved.commit, &rev, &plan)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let t_apply = t.elapsed();
    let total = t_parse + t_apply;
    println!(
        "10,000-object revision ({CLUSTERS} clusters, {} links, {POLICIES} policies):",
        rev.links.len()
    );
    println!("  git fetch + read tree   {:>8.1} ms", ms(t_git));
    println!("  parse + validate        {:>8.1} ms", ms(t_parse));
    println!("  plan + apply (1 tx)     {:>8.1} ms", ms(t_apply));
    println!(
        "  parse + validate + apply {:>7.1} ms  (budget 2000 ms: {:.2}x of budget)",
        ms(total),
        total.as_secs_f64() / 2.0
    );

    // 1b. End to end through the syncer, in a fresh database.
    let (store, _) = fresh_db(&base, &format!("gitops_bench_b_{pid}")).await;
    add_source(&store, &url).await;
    let cache_dir = tempfile::tempdir().unwrap();
    let syncer = Syncer::new(store.clone(), Cache::new(cache_dir.path()));
    let t = Instant::now();
    let out = syncer.sync("fleet", Trigger::Startup).await.unwrap();
    let t_first = t.elapsed();
    assert_eq!(out.result, linkplane_gitops::SyncResult::Applied);
    println!(
        "  first sync end to end   {:>8.1} ms  (fetch, read, parse, validate, apply, status, history)",
        ms(t_first)
    );

    // 2. No-op syncs of the unchanged revision.
    let mut noop = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let out = syncer.sync("fleet", Trigger::Poll).await.unwrap();
        noop.push(t.elapsed());
        assert_eq!(out.result, linkplane_gitops::SyncResult::Unchanged);
    }
    noop.sort();
    let p50 = percentile(&noop, 0.5);
    println!(
        "no-op sync of the unchanged 10,000-object revision (fetch + drift check), 30 runs: \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms  (budget 50 ms: p50 is {:.2}x of budget)",
        ms(p50),
        ms(percentile(&noop, 0.99)),
        ms(noop[noop.len() - 1]),
        p50.as_secs_f64() / 0.050
    );

    // 3. Webhook-to-applied latency through the real server.
    let Ok(bin) = std::env::var("LINKPLANE_BIN") else {
        println!("webhook latency: skipped (set LINKPLANE_BIN to a release linkplane binary)");
        return;
    };
    webhook_latency(&base, &bin, pid).await;
}

async fn webhook_latency(base: &str, bin: &str, pid: u32) {
    let (store, db_url) = fresh_db(base, &format!("gitops_bench_c_{pid}")).await;
    let remote_dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init_bare(remote_dir.path()).unwrap();
    let url = format!("file://{}", remote_dir.path().display());
    let small = |rev: usize| {
        vec![(
            "fleet/all.yaml".to_string(),
            ["east", "west", "north"]
                .iter()
                .map(|n| cluster(n, rev))
                .collect::<String>()
                + "---\napiVersion: linkplane.io/v1alpha1\nkind: Link\nmetadata:\n  name: west-from-east\nspec:\n  source: west\n  target: east\n",
        )]
    };
    commit(&repo, &small(0), "rev 0");
    let cache = tempfile::tempdir().unwrap();
    let secret = "bench-secret";
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--git-url",
            &url,
            "--git-path",
            "fleet",
        ])
        .args([
            "--git-poll-interval",
            "1h",
            "--git-source-name",
            "fleet",
            "--no-migrate",
        ])
        .arg("--git-cache-dir")
        .arg(cache.path())
        .env("DATABASE_URL", &db_url)
        .env("LINKPLANE_WEBHOOK_SECRET", secret)
        .env("LINKPLANE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("linkplane serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = line.trim().rsplit(' ').next().unwrap().to_string();
    let mut events = Box::pin(store.listen(&[EVENTS_CHANNEL]).await.unwrap());
    // Wait for the startup sync.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // reqwest is built without a bundled TLS provider: pick ring, as the binary does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let mut lat = Vec::new();
    for i in 1..=50 {
        let sha = commit(&repo, &small(i), &format!("rev {i}"));
        let body = serde_json::to_vec(&serde_json::json!({
            "ref": "refs/heads/main",
            "after": sha,
            "repository": {"clone_url": url},
        }))
        .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&body);
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let t = Instant::now();
        let resp = client
            .post(format!("{server}/webhooks/github"))
            .header("x-github-event", "push")
            .header("x-hub-signature-256", sig)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
                .await
                .expect("sync event within 10 s")
                .unwrap()
                .unwrap();
            if ev.payload["kind"] == "sync" && ev.payload["revision"] == sha.as_str() {
                assert_eq!(ev.payload["result"], "Applied");
                break;
            }
        }
        lat.push(t.elapsed());
    }
    let _ = child.kill();
    let _ = child.wait();
    lat.sort();
    println!(
        "webhook-to-applied latency (HTTP push webhook → sync committed, small repo, 50 commits): \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(lat[lat.len() - 1])
    );
}
