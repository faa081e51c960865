//! Dashboard benchmark (`scripts/bench dashboard`): time to first paint of the topology in
//! Debian's headless Chromium at 50 clusters, 100 links and 20,000 mirrors.
//!
//! Seeds a fresh database with the same fleet as `scripts/bench api` (a ring where each cluster
//! consumes from the next two, 200 mirrors per link, one Conflict in 50, every fifth gateway
//! dead), starts `linkplane serve --no-reconcile` on it (nothing touches the seeded rows, and no
//! connection leaves the machine), and runs `tests/browser/first-paint.mjs`. Needs DATABASE_URL
//! (scripts/bench starts a throwaway PostgreSQL) and the browser (scripts/lib/browser.sh).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use linkplane_core::{Cluster, CredentialsRef, Link};
use linkplane_e2e::{dev::fresh_database, repo_root};
use linkplane_store::{Owner, Store, clusters, gateways, links, reconcilers};

const CLUSTERS: usize = 50;
/// 50 clusters × 2 links each × 200 = 20,000 mirrors.
const PER_LINK: i32 = 200;
const TOKEN: &str = "dashboard-bench-admin-token-0123456789abcdef";

fn name(i: usize) -> String {
    format!("c{i:02}")
}

async fn seed(url: &str) {
    let store = Store::connect(url, 2).await.unwrap();
    store.migrate().await.unwrap();
    let mut conn = store.acquire().await.unwrap();
    for i in 0..CLUSTERS {
        // A kubeconfig that does not exist and a loopback address: even a reconciler would
        // fail before any connection (and --no-reconcile runs none).
        let c = Cluster::new(
            name(i),
            "https://127.0.0.1:1".to_string(),
            CredentialsRef::KubeconfigFile(format!("/nonexistent/c{i}.kubeconfig")),
        );
        clusters::upsert(&mut conn, &c, &Owner::Api).await.unwrap();
        let state = if i == 0 {
            reconcilers::ReconcilerState::Degraded
        } else {
            reconcilers::ReconcilerState::Running
        };
        reconcilers::set(&mut conn, &name(i), state, "", true)
            .await
            .unwrap();
    }
    for i in 0..CLUSTERS {
        for h in [1, 2] {
            let (src, dst) = (name(i), name((i + h) % CLUSTERS));
            let link = format!("{src}-from-{dst}");
            links::upsert(&mut conn, &Link::new(&link, &src, &dst), &Owner::Api)
                .await
                .unwrap();
            gateways::record(&mut conn, &link, i % 5 != 4, Some(1.0 + i as f64), 0, None)
                .await
                .unwrap();
        }
    }
    sqlx::query(
        "INSERT INTO mirrors (link, source_cluster, target_cluster, remote_namespace, remote_name, local_name,
                              mode, headless, state, message)
         SELECT l.name, l.source_cluster, l.target_cluster, 'ns' || (g % 10), 'svc' || g,
                'svc' || g || '-' || l.target_cluster,
                CASE WHEN g % 4 = 0 THEN 'remote-discovery' ELSE 'gateway' END, false,
                CASE WHEN g % 50 = 7 THEN 'Conflict' ELSE 'Mirrored' END,
                CASE WHEN g % 50 = 7 THEN 'a Service not owned by linkplane exists' ELSE '' END
         FROM links l, generate_series(0, $1 - 1) g",
    )
    .bind(PER_LINK)
    .execute(&mut *conn)
    .await
    .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM mirrors")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    println!(
        "fleet: {CLUSTERS} clusters, {} links, {n} mirrors",
        CLUSTERS * 2
    );
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let chromium = Command::new("bash")
        .arg(repo_root().join("scripts/lib/browser.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/lib/browser.sh runs");
    assert!(
        chromium.status.success(),
        "no browser: scripts/lib/browser.sh could not install it"
    );
    let chromium = String::from_utf8_lossy(&chromium.stdout).trim().to_string();
    let url = fresh_database("dashboard_bench");
    seed(&url).await;
    let bin = std::env::var_os("LINKPLANE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| linkplane_e2e::binary::linkplane().unwrap());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let server = Server(
        Command::new(&bin)
            .args(["serve", "--no-reconcile", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", &url)
            .env("LINKPLANE_BOOTSTRAP_ADMIN_TOKEN", TOKEN)
            .env("LINKPLANE_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("linkplane serve starts"),
    );
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .map(|r| !r.status().is_success())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "linkplane serve did not come up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("server: {}", bin.display());
    let status = Command::new("node")
        .arg("first-paint.mjs")
        .current_dir(repo_root().join("tests/browser"))
        .env("LP_URL", &base)
        .env("LP_ADMIN_TOKEN", TOKEN)
        .env("LP_CHROMIUM", &chromium)
        .env("LP_CLUSTERS", CLUSTERS.to_string())
        .status()
        .expect("node runs");
    assert!(status.success(), "first-paint.mjs failed");
    drop(server);
    // Like the API bench, leave no database behind.
    let base = std::env::var("DATABASE_URL").unwrap();
    let db = url.rsplit('/').next().unwrap().to_string();
    let _ = Command::new("psql")
        .args([&base, "-q", "-c", &format!("DROP DATABASE IF EXISTS {db}")])
        .status();
}
