//! `linkplane serve` as a process: migrates a fresh database and answers the health endpoints.

use std::{process::Command, time::Duration};

mod support;

use support::{fresh_database, start_serve};

fn start(database_url: &str) -> (support::Server, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_linkplane"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", database_url);
    start_serve(command)
}

#[tokio::test]
async fn serve_migrates_and_answers_health_endpoints() {
    let db = fresh_database("serve_test");
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
