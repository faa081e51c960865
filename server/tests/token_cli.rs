//! `linkplane token create|list|revoke` as a process, against a fresh database.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use sqlx::Executor as _;

/// A fresh database per test (`tag` keeps two tests of this process apart).
async fn fresh_database(tag: &str) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL must be set");
    let name = format!("token_cli_{tag}_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .await
        .unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}

fn linkplane(db: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_linkplane"))
        .arg("token")
        .args(args)
        .env("DATABASE_URL", db)
        .env("LINKPLANE_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test]
async fn tokens_are_created_once_listed_and_revoked() {
    let db = fresh_database("crud").await;
    let out = linkplane(&db, &["create", "--role", "operator", "--name", "ci"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("lpt_") && token.len() > 40, "{token}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("shown only once"));

    let out = linkplane(&db, &["list"]);
    assert!(out.status.success());
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(
        listing.contains("operator") && listing.contains("ci"),
        "{listing}"
    );
    assert!(!listing.contains(&token), "list must never show the token");

    // The stored row authenticates the printed token.
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let who = linkplane_store::tokens::authenticate(&mut conn, &token)
        .await
        .unwrap()
        .unwrap();
    let id = who.id.to_string();

    let out = linkplane(&db, &["revoke", &id]);
    assert!(out.status.success());
    assert!(
        linkplane_store::tokens::authenticate(&mut conn, &token)
            .await
            .unwrap()
            .is_none()
    );
    let out = linkplane(&db, &["revoke", "9999"]);
    assert!(!out.status.success(), "revoking an unknown id fails");
    let out = linkplane(&db, &["create", "--role", "root"]);
    assert!(!out.status.success(), "unknown roles are rejected");
}

#[tokio::test]
async fn database_flags_go_after_the_action_and_errors_name_the_cause() {
    let db = fresh_database("flags").await;
    // `--database-url` where a person types it, after the action; no DATABASE_URL.
    let out = Command::new(env!("CARGO_BIN_EXE_linkplane"))
        .args(["token", "create", "--role", "viewer", "--database-url", &db])
        .env_remove("DATABASE_URL")
        .env("LINKPLANE_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Migrations' `IF NOT EXISTS` notices are not printed (client_min_messages = warning).
    assert!(!stderr.contains("already exists"), "{stderr}");

    // An unreachable database is named with its address and the cause, not "pool timed out".
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_linkplane"))
        .args([
            "token",
            "list",
            "--database-url",
            &format!("postgres://u@127.0.0.1:{port}/db"),
        ])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(!stderr.contains("timed out"), "{stderr}");
    assert_eq!(
        stderr.matches("Connection refused").count(),
        1,
        "each cause once: {stderr}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_linkplane"))
        .args(["token", "list"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--database-url"),
        "the missing flag is named"
    );
}
