//! Hostile requests against `linkplane serve` as a process: none may crash it or get a 5xx.
//!
//! Each case was a defect found from outside (issue 15): a 4 KB document nested 2,000 deep
//! overflowed a worker's stack and aborted the process; a NUL byte in a string argument reached
//! PostgreSQL and came back as a 500.
#![allow(clippy::unwrap_used)]

use std::{process::Command, time::Duration};

mod support;

use serde_json::{Value, json};
use support::{create_token, fresh_database, migrate, start_serve};

fn nested(open: &str, close: &str, n: usize) -> String {
    format!("{}\"x\"{}", open.repeat(n), close.repeat(n))
}

async fn post(client: &reqwest::Client, url: &str, token: &str, body: Value) -> (u16, Value) {
    let resp = client
        .post(format!("{url}/graphql"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn deeply_nested_documents_and_nul_bytes_are_refused_and_the_server_lives_on() {
    let db = fresh_database("hostile_input");
    // Migrate first so the token can be stored before the server starts.
    migrate(&db);
    let token = create_token(&db, "viewer", "hostile");
    let mut command = Command::new(env!("CARGO_BIN_EXE_linkplane"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &db);
    let (_server, url) = start_serve(command);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    // Lists, object literals, a variable default and selections, nested 600 and 2,000 deep
    // (well under the 32 KiB size limit). Before the fix, 600-800 levels aborted the process;
    // deeper ones happened to trip the parser's own error first.
    let mut documents = Vec::new();
    for n in [600, 2_000] {
        documents.push(format!(
            "{{ cluster(name: {}) {{ name }} }}",
            nested("[", "]", n)
        ));
        documents.push(format!(
            "{{ cluster(name: {}) {{ name }} }}",
            nested("{a: ", "}", n)
        ));
        documents.push(format!(
            "query($n: String = {}) {{ cluster(name: $n) {{ name }} }}",
            nested("[", "]", n)
        ));
        documents.push(format!("{}{}", "{ a ".repeat(n), "}".repeat(n)));
    }
    for query in &documents {
        assert!(query.len() < 32 * 1024);
        let (status, body) = post(&client, &url, &token, json!({ "query": query })).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("nests"),
            "{body}"
        );
    }

    // A NUL byte in a string argument, escaped in the document or inside a variable, for the
    // arguments found to reach PostgreSQL.
    let nul_queries = [
        r#"{ mirrors(cluster: "we\u0000st") { edges { cursor } } }"#,
        r#"{ services(namespace: "a\u0000") { edges { cursor } } }"#,
        r#"{ blastRadius(cluster: "a\u0000") { cluster } }"#,
    ];
    for query in nul_queries {
        let (status, body) = post(&client, &url, &token, json!({ "query": query })).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }
    let (status, body) = post(
        &client,
        &url,
        &token,
        json!({
            "query": "query($c: String!) { mirrors(cluster: $c) { edges { cursor } } }",
            "variables": { "c": "we\u{0}st" },
        }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    // Still alive, and still answering real queries.
    let (status, body) = post(
        &client,
        &url,
        &token,
        json!({ "query": "{ clusters { edges { cursor } } }" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let health = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}
