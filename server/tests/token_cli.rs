//! `linkplane token create|list|revoke` as a process, against a fresh database.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use sqlx::Executor as _;

async fn fresh_database() -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL must be set");
    let name = format!("token_cli_test_{}", std::process::id());
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
    let db = fresh_database().await;
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
