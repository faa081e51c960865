//! `linkplane serve` as a process: migrates a fresh database and answers the health endpoints.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh, empty database on the server scripts/test started.
async fn fresh_database() -> String {
    let base =
        std::env::var("DATABASE_URL").expect("DATABASE_URL must be set (scripts/test sets it)");
    let name = format!("serve_test_{}", std::process::id());
    let admin = base.clone();
    let status = Command::new("psql")
        .args([
            &admin,
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {name}"),
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .status()
        .expect("psql runs");
    assert!(status.success());
    let (prefix, _) = base.rsplit_once('/').expect("URL has a database part");
    format!("{prefix}/{name}")
}

fn start(database_url: &str) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_linkplane"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", database_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("linkplane starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reads the banner");
    let url = line
        .trim()
        .strip_prefix("linkplane listening on ")
        .expect("banner names the address")
        .to_string();
    (server, url)
}

#[tokio::test]
async fn serve_migrates_and_answers_health_endpoints() {
    let db = fresh_database().await;
    let (_server, url) = start(&db);
    // reqwest is built without a bundled TLS provider: pick ring, as the binary does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let health = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = client.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(
        ready.status(),
        200,
        "{}",
        ready.text().await.unwrap_or_default()
    );
    let out = Command::new("psql")
        .args([&db, "-tAc", "SELECT count(*) FROM _sqlx_migrations"])
        .output()
        .unwrap();
    let applied: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(applied >= 1, "migrations were applied");
}

#[test]
fn bad_database_url_fails_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_linkplane"))
        .args(["migrate"])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("connecting to PostgreSQL (check --database-url / DATABASE_URL)"),
        "{stderr}"
    );
}
