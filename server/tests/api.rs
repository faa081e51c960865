//! The API through a running server (router on 127.0.0.1:0, in-process) against real Postgres.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use clap::Parser;
use futures::{SinkExt as _, StreamExt as _};
use linkplane_core::{Cluster, CredentialsRef, Link};
use linkplane_store::{Owner, Store, clusters, links, mirrors, tokens};
use prometheus_client::registry::Registry;
use reqwest::StatusCode;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _};

use linkplane_server::http::{
    AppState,
    api::{build, credentials_key},
    config::ApiArgs,
    health, router, tls,
};

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    api: ApiArgs,
}

struct Running {
    url: String,
    store: Store,
}

async fn spawn(pool: sqlx::PgPool, flags: &[&str]) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Store::from_pool(pool);
    let mut argv = vec!["t"];
    argv.extend_from_slice(flags);
    let args = Flags::try_parse_from(argv).unwrap().api;
    let api = build(
        &store,
        &args,
        None,
        credentials_key(&args).unwrap(),
        None,
        Registry::default(),
    )
    .await
    .unwrap();
    let health = std::sync::Arc::new(health::Health::default());
    health.spawn_checker(store.clone(), None);
    let state = AppState {
        store: store.clone(),
        sync: None,
        webhook_secret: None,
        api,
        health,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = state.api.tls.clone();
    let router = router(state);
    match tls {
        Some(tls) => {
            tokio::spawn(tls::serve(
                listener,
                router,
                tls,
                Duration::from_secs(1),
                std::future::pending::<()>(),
            ));
            Running {
                url: format!("https://localhost:{}", addr.port()),
                store,
            }
        }
        None => {
            tokio::spawn(async move { axum::serve(listener, router).await });
            Running {
                url: format!("http://{addr}"),
                store,
            }
        }
    }
}

async fn token(store: &Store, role: tokens::Role) -> String {
    let mut conn = store.acquire().await.unwrap();
    let (_, t) = tokens::issue(&mut conn, role, "test").await.unwrap();
    t.expose_secret().to_string()
}

async fn gql(url: &str, token: Option<&str>, query: &str) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{url}/graphql"))
        .json(&json!({"query": query}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

async fn seed(store: &Store, n: usize, per_link: i32) {
    let mut conn = store.acquire().await.unwrap();
    for i in 0..n {
        let c = Cluster::new(
            format!("c{i:02}"),
            format!("https://c{i}:6443"),
            CredentialsRef::Stored,
        );
        clusters::upsert(&mut conn, &c, &Owner::Api).await.unwrap();
    }
    for i in 0..n {
        let (s, t) = (format!("c{i:02}"), format!("c{:02}", (i + 1) % n));
        links::upsert(
            &mut conn,
            &Link::new(format!("{s}-from-{t}"), &s, &t),
            &Owner::Api,
        )
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO mirrors (link, source_cluster, target_cluster, remote_namespace, remote_name, local_name, mode, state)
         SELECT l.name, l.source_cluster, l.target_cluster, 'ns', 'svc' || g, 'svc' || g || '-x', 'gateway', 'Mirrored'
         FROM links l, generate_series(1, $1) g",
    )
    .bind(per_link)
    .execute(&mut *conn)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn graphql_needs_a_valid_token(pool: sqlx::PgPool) {
    let s = spawn(pool, &[]).await;
    let (status, body) = gql(&s.url, None, "{ clusters { edges { cursor } } }").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let (status, _) = gql(
        &s.url,
        Some("lpt_forged"),
        "{ clusters { edges { cursor } } }",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let resp = reqwest::Client::new()
        .post(format!("{}/graphql", s.url))
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key("www-authenticate"));
    let viewer = token(&s.store, tokens::Role::Viewer).await;
    let (status, body) = gql(&s.url, Some(&viewer), "{ clusters { edges { cursor } } }").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["clusters"]["edges"], json!([]));
    // Health and metrics stay open.
    for path in ["/healthz", "/metrics"] {
        let resp = reqwest::get(format!("{}{path}", s.url)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
    }
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn revoked_tokens_stop_working(pool: sqlx::PgPool) {
    let s = spawn(pool, &[]).await;
    let mut conn = s.store.acquire().await.unwrap();
    let (info, t) = tokens::issue(&mut conn, tokens::Role::Viewer, "x")
        .await
        .unwrap();
    let (status, _) = gql(
        &s.url,
        Some(t.expose_secret()),
        "{ links { edges { cursor } } }",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    tokens::revoke(&mut conn, info.id).await.unwrap();
    let (status, _) = gql(
        &s.url,
        Some(t.expose_secret()),
        "{ links { edges { cursor } } }",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn a_viewers_mutation_is_forbidden_and_an_operators_runs(pool: sqlx::PgPool) {
    let s = spawn(pool, &[]).await;
    seed(&s.store, 2, 0).await;
    let m = r#"mutation { pauseLink(name: "c00-from-c01") { paused } }"#;
    let viewer = token(&s.store, tokens::Role::Viewer).await;
    let (status, body) = gql(&s.url, Some(&viewer), m).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let operator = token(&s.store, tokens::Role::Operator).await;
    let (status, body) = gql(&s.url, Some(&operator), m).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["pauseLink"]["paused"], true);
    // syncNow without a GitOps engine.
    let (status, body) = gql(
        &s.url,
        Some(&operator),
        r#"mutation { syncNow(source: "x") { result } }"#,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAVAILABLE");
    // Errors are counted by code.
    let metrics = reqwest::get(format!("{}/metrics", s.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"linkplane_graphql_errors_total{code="FORBIDDEN"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"linkplane_http_requests_total{route="/graphql",method="POST",status="403"} 1"#
        ),
        "{metrics}"
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn queries_deeper_than_the_limit_are_rejected(pool: sqlx::PgPool) {
    let s = spawn(pool, &["--graphql-max-depth", "3"]).await;
    let viewer = token(&s.store, tokens::Role::Viewer).await;
    let (status, body) = gql(
        &s.url,
        Some(&viewer),
        "{ links { edges { node { source { name } } } } }",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too deep")
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn oversized_bodies_are_refused(pool: sqlx::PgPool) {
    let s = spawn(pool, &["--max-body-bytes", "1000"]).await;
    let viewer = token(&s.store, tokens::Role::Viewer).await;
    let big = format!("{{ links {{ edges {{ cursor }} }} }} #{}", "x".repeat(5000));
    let (status, _) = (
        reqwest::Client::new()
            .post(format!("{}/graphql", s.url))
            .bearer_auth(&viewer)
            .json(&json!({"query": big}))
            .send()
            .await
            .unwrap()
            .status(),
        (),
    );
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn graphiql_is_served_to_a_browser_without_a_token_under_a_strict_csp(pool: sqlx::PgPool) {
    let s = spawn(pool, &[]).await;
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{}/graphql", s.url))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        csp.contains("script-src 'self';"),
        "no inline script allowed: {csp}"
    );
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let body = resp.text().await.unwrap();
    // The nonce of the CSP is the one handed to the page, and no script is inline.
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(body.contains(&format!(r#"content="{nonce}""#)), "{body}");
    assert!(!body.contains("<script>"), "inline script in {body}");
    assert!(
        !body.contains("http://") && !body.contains("https://"),
        "another origin: {body}"
    );
    // A second page gets another nonce.
    let again = client
        .get(format!("{}/graphql", s.url))
        .send()
        .await
        .unwrap();
    assert_ne!(again.headers()["content-security-policy"], csp);
    // The bundled assets, without a token either.
    for (path, kind) in [
        ("graphiql.js", "text/javascript"),
        ("graphiql.css", "text/css"),
    ] {
        let asset = client
            .get(format!("{}/graphql/assets/{path}", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(asset.status(), StatusCode::OK, "{path}");
        assert!(
            asset.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        assert!(asset.bytes().await.unwrap().len() > 10_000, "{path}");
    }
    let missing = client
        .get(format!("{}/graphql/assets/../../etc/passwd", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    // The page holds no data: the API behind it still needs the token.
    let (status, body) = gql(&s.url, None, "{ clusters { edges { cursor } } }").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn graphiql_can_be_turned_off(pool: sqlx::PgPool) {
    let s = spawn(pool, &["--no-graphiql"]).await;
    for path in ["/graphql", "/graphql/assets/graphiql.js"] {
        let resp = reqwest::get(format!("{}{path}", s.url)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
    }
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn graphiqls_introspection_passes_through_http_at_default_limits(pool: sqlx::PgPool) {
    let s = spawn(pool, &[]).await;
    let viewer = token(&s.store, tokens::Role::Viewer).await;
    // What GraphiQL 4 sends: graphql-js 16's getIntrospectionQuery with inputValueDeprecation
    // and schemaDescription (fixture shared with the schema tests).
    let query =
        include_str!("../../schema/tests/fixtures/introspection-graphql-js-16-all-options.graphql");
    let resp = reqwest::Client::new()
        .post(format!("{}/graphql", s.url))
        .bearer_auth(&viewer)
        .json(&json!({"query": query, "operationName": "IntrospectionQuery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("errors").is_none(), "{}", body["errors"]);
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn malformed_requests_answer_graphql_errors_with_codes(pool: sqlx::PgPool) {
    let s = spawn(pool, &["--max-body-bytes", "1000"]).await;
    let viewer = token(&s.store, tokens::Role::Viewer).await;
    let client = reqwest::Client::new();
    let post = |body: &'static str, content_type: &'static str| {
        client
            .post(format!("{}/graphql", s.url))
            .bearer_auth(&viewer)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    // GraphQL over HTTP: a body that is not JSON, JSON of another shape, another media type.
    for (body, content_type, status) in [
        ("{\"query\": ", "application/json", StatusCode::BAD_REQUEST),
        ("[1, 2]", "application/json", StatusCode::BAD_REQUEST),
        (
            "{\"variables\": {}}",
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "query=%7B%7D",
            "application/x-www-form-urlencoded",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "{ clusters { name } }",
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ] {
        let resp = post(body, content_type).await.unwrap();
        assert_eq!(resp.status(), status, "{body}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{body}"
        );
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "BAD_REQUEST",
            "{body}"
        );
        assert!(answer["errors"][0]["message"].as_str().unwrap().len() > 10);
    }
    // A charset parameter is fine.
    let resp = post(
        "{\"query\": \"{ __typename }\"}",
        "application/json; charset=utf-8",
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Over the body limit: 413 with PAYLOAD_TOO_LARGE naming the flag.
    let big = format!("{{\"query\": \"{{ __typename }} #{}\"}}", "x".repeat(5000));
    let resp = client
        .post(format!("{}/graphql", s.url))
        .bearer_auth(&viewer)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(
        answer["errors"][0]["extensions"]["code"],
        "PAYLOAD_TOO_LARGE"
    );
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("--max-body-bytes")
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn cors_answers_preflights_for_allowed_origins_only(pool: sqlx::PgPool) {
    let s = spawn(
        pool,
        &["--cors-allowed-origins", "https://dash.example.com"],
    )
    .await;
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", s.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let ok = preflight("https://dash.example.com").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://dash.example.com"
    );
    let other = preflight("https://evil.example.com").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}

async fn ws_connect(
    url: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = format!("{}/graphql/ws", url.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws
}

async fn next_json(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    wait: Duration,
) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn subscription_delivers_an_event_after_a_store_change(pool: sqlx::PgPool) {
    let s = spawn(pool, &[]).await;
    seed(&s.store, 2, 0).await;
    let viewer = token(&s.store, tokens::Role::Viewer).await;
    let mut ws = ws_connect(&s.url).await;
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {viewer}")}}).to_string(),
    ))
    .await
    .unwrap();
    let ack = next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert_eq!(ack["type"], "connection_ack");
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { topologyEvents(kinds: [MIRROR]) { kind link name state } }"}}).to_string(),
    ))
    .await
    .unwrap();
    // The subscription starts listening asynchronously: change state until an event arrives.
    let mut conn = s.store.acquire().await.unwrap();
    let mut got = None;
    for attempt in 0..20 {
        let state = if attempt % 2 == 0 {
            mirrors::MirrorState::Conflict
        } else {
            mirrors::MirrorState::Mirrored
        };
        mirrors::upsert(
            &mut conn,
            &mirrors::MirrorStatus {
                link: "c00-from-c01".into(),
                source_cluster: "c00".into(),
                target_cluster: "c01".into(),
                namespace: "shop".into(),
                remote_name: "web".into(),
                local_name: "web-c01".into(),
                mode: "gateway".into(),
                headless: false,
                state,
                message: String::new(),
            },
        )
        .await
        .unwrap();
        if let Some(msg) = next_json(&mut ws, Duration::from_millis(500)).await {
            got = Some(msg);
            break;
        }
    }
    let msg = got.expect("an event within 10 s");
    assert_eq!(msg["type"], "next", "{msg}");
    assert_eq!(msg["id"], "1");
    let ev = &msg["payload"]["data"]["topologyEvents"];
    assert_eq!(ev["kind"], "MIRROR");
    assert_eq!(ev["link"], "c00-from-c01");
    assert_eq!(ev["name"], "web");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn mutations_over_the_websocket_are_audited_under_the_sessions_token(pool: sqlx::PgPool) {
    let s = spawn(pool, &[]).await;
    seed(&s.store, 2, 0).await;
    let mut conn = s.store.acquire().await.unwrap();
    let (_, secret) = tokens::issue(&mut conn, tokens::Role::Operator, "dashboard-ws")
        .await
        .unwrap();
    let operator = secret.expose_secret().to_string();
    let mut ws = ws_connect(&s.url).await;
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {operator}")}}).to_string(),
    ))
    .await
    .unwrap();
    let ack = next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert_eq!(ack["type"], "connection_ack");
    // GraphiQL sends every operation over the socket when it has one.
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe", "payload": {"query": r#"mutation { pauseLink(name: "c00-from-c01") { paused name } }"#}}).to_string(),
    ))
    .await
    .unwrap();
    let msg = next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert_eq!(msg["type"], "next", "{msg}");
    assert_eq!(
        msg["payload"]["data"]["pauseLink"],
        json!({"paused": true, "name": "c00-from-c01"})
    );
    let (status, body) = gql(
        &s.url,
        Some(&operator),
        "{ auditLog(first: 1) { totalCount edges { node { who mutation arguments result } } } }",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["auditLog"]["edges"][0]["node"],
        json!({"who": "dashboard-ws", "mutation": "pauseLink",
               "arguments": {"name": "c00-from-c01"}, "result": "OK"})
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn subscriptions_without_a_token_are_refused(pool: sqlx::PgPool) {
    let s = spawn(pool, &[]).await;
    let mut ws = ws_connect(&s.url).await;
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {}}).to_string(),
    ))
    .await
    .unwrap();
    // The server closes the connection (4403 Forbidden in graphql-transport-ws) instead of acking.
    let mut acked = false;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        match msg {
            Message::Text(t) if t.contains("connection_ack") => acked = true,
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert!(!acked, "an unauthenticated connection was acknowledged");
}

/// SQL statements a query cost, read from `/metrics` before and after.
async fn statements(url: &str, token: &str, query: &str) -> u64 {
    let read = || async {
        let text = reqwest::get(format!("{url}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("linkplane_graphql_sql_statements_total "))
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let before = read().await;
    let (status, body) = gql(url, Some(token), query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    read().await - before
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn sql_statement_count_is_constant_as_the_fleet_grows(pool: sqlx::PgPool) {
    let q = "{ topology { nodes { name health gatewayAlive outgoingLinks { name } mirrorCounts { total } }
               edges { name source { name } target { name } gateway { alive } mirrorCounts { total } } }
               clusters { edges { node { name incomingLinks { name paused } mirrors(first: 5) { edges { node { state } } } } } } }";
    let mut counts = Vec::new();
    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let big_name = format!("lpbig_{}", &current[current.len().saturating_sub(40)..]);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{big_name}\""
    )))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE \"{big_name}\""
    )))
    .execute(&pool)
    .await
    .unwrap();
    let big =
        sqlx::PgPool::connect_with(pool.connect_options().as_ref().clone().database(&big_name))
            .await
            .unwrap();
    linkplane_store::MIGRATOR.run(&big).await.unwrap();
    for (pool, n) in [(pool, 3), (big, 15)] {
        let s = spawn(pool, &[]).await;
        seed(&s.store, n, 4).await;
        let viewer = token(&s.store, tokens::Role::Viewer).await;
        counts.push(statements(&s.url, &viewer, q).await);
    }
    assert_eq!(counts[0], counts[1], "3 vs 15 clusters: {counts:?}");
    assert!(counts[0] > 0);
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn tls_is_served_from_cert_and_key_files(pool: sqlx::PgPool) {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let s = spawn(
        pool,
        &[
            "--tls-cert-file",
            cert_path.to_str().unwrap(),
            "--tls-key-file",
            key_path.to_str().unwrap(),
        ],
    )
    .await;
    assert!(s.url.starts_with("https://"));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let resp = client
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let viewer = token(&s.store, tokens::Role::Viewer).await;
    let resp = client
        .post(format!("{}/graphql", s.url))
        .bearer_auth(&viewer)
        .json(&json!({"query": "{ links { edges { cursor } } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Plain HTTP on the TLS port does not get an answer.
    let plain = reqwest::get(s.url.replacen("https", "http", 1)).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[test]
fn credentials_key_file_is_loaded_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("key");
    std::fs::write(
        &good,
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
    )
    .unwrap();
    let args = Flags::try_parse_from(["t", "--credentials-key-file", good.to_str().unwrap()])
        .unwrap()
        .api;
    assert!(credentials_key(&args).unwrap().is_some());
    let bad = Flags::try_parse_from(["t", "--credentials-key", "short"])
        .unwrap()
        .api;
    let err = credentials_key(&bad).unwrap_err();
    assert!(format!("{err:#}").contains("32 bytes"), "{err:#}");
    let none = Flags::try_parse_from(["t"]).unwrap().api;
    assert!(credentials_key(&none).unwrap().is_none());
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn the_bootstrap_admin_token_works(pool: sqlx::PgPool) {
    let boot = "bootstrap-admin-token-for-tests-0123456789";
    let s = spawn(pool, &["--bootstrap-admin-token", boot]).await;
    let (status, body) = gql(&s.url, Some(boot), "{ apiTokens { name role } }").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["apiTokens"],
        json!([{"name": "bootstrap", "role": "ADMIN"}])
    );
}

/// A `MakeWriter` that keeps everything logged, to look for secrets in it.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Issue 15: the default request span logged the full URI at debug level, so a token in a query
/// string reached the logs. Requests are logged by method and path only, at every level.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn query_strings_never_reach_the_logs(pool: sqlx::PgPool) {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::NEW)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let s = spawn(pool, &[]).await;
    let viewer = token(&s.store, tokens::Role::Viewer).await;
    for path in [
        format!("/graphql?token={viewer}"),
        format!("/healthz?access_token={viewer}"),
        format!("/nowhere?password={viewer}"),
    ] {
        let _ = reqwest::get(format!("{}{path}", s.url)).await.unwrap();
    }
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("/healthz"),
        "requests are still logged by path: {text}"
    );
    assert!(!text.contains(&viewer), "a token reached the logs: {text}");
    assert!(!text.contains("token="), "a query string reached the logs");
}

/// Issue 15: while the database is unreachable, `/readyz` answers from the last background check
/// (kubelet's default probe timeout is 1 s; it used to wait for the pool's acquire timeout), and a
/// push webhook answers 503 with Retry-After at once instead of a 500 after seconds.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn an_unreachable_database_gets_fast_503s_from_readyz_and_webhooks(pool: sqlx::PgPool) {
    use hmac::Mac as _;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Store::from_pool(pool);
    let args = Flags::try_parse_from(["t"]).unwrap().api;
    let api = build(
        &store,
        &args,
        None,
        credentials_key(&args).unwrap(),
        None,
        Registry::default(),
    )
    .await
    .unwrap();
    // Nothing listens on port 1: every connection is refused.
    let dead = Store::from_pool(
        sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy("postgres://linkplane@127.0.0.1:1/linkplane")
            .unwrap(),
    );
    let health = std::sync::Arc::new(health::Health::default());
    health.spawn_checker(dead.clone(), None);
    let secret = "hook-secret";
    let state = AppState {
        store: dead,
        sync: None,
        webhook_secret: Some(std::sync::Arc::new(secrecy::SecretString::from(secret))),
        api,
        health: health.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = router(state);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while health.database_up() {
        assert!(
            std::time::Instant::now() < deadline,
            "the checker never saw the database down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    let resp = client.get(format!("{url}/readyz")).send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "unavailable", "{body}");
    assert!(took < Duration::from_secs(1), "readyz took {took:?}");

    let push = br#"{"ref":"refs/heads/main","repository":{"clone_url":"https://example.invalid/fleet.git"}}"#;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(push);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let started = std::time::Instant::now();
    let resp = client
        .post(format!("{url}/webhooks/github"))
        .header("x-github-event", "push")
        .header("x-hub-signature-256", signature)
        .body(push.to_vec())
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("10")
    );
    assert!(took < Duration::from_secs(1), "the webhook took {took:?}");
    assert!(
        health.missed_push_pending(),
        "the refused push is remembered for when the database returns"
    );
}

/// Issue 15: `setClusterCredentials` stored any string as a kubeconfig; now the server checks it
/// (current context, server URL, a credential) and answers BAD_USER_INPUT without quoting it.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn set_cluster_credentials_refuses_what_is_not_a_usable_kubeconfig(pool: sqlx::PgPool) {
    let key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let s = spawn(pool, &["--credentials-key", key]).await;
    seed(&s.store, 2, 0).await;
    let operator = token(&s.store, tokens::Role::Operator).await;
    let set = |kubeconfig: &str| {
        json!({
            "query": "mutation($k: String!) { setClusterCredentials(cluster: \"c00\", kubeconfig: $k) { cluster } }",
            "variables": {"k": kubeconfig},
        })
    };
    let client = reqwest::Client::new();
    let garbage = "users: [{name: u, user: {token: hunter2-secret}}]";
    let body: Value = client
        .post(format!("{}/graphql", s.url))
        .bearer_auth(&operator)
        .json(&set(garbage))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("current-context"), "{message}");
    assert!(!body.to_string().contains("hunter2"), "{body}");

    let usable = "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://c0:6443\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\nusers:\n- name: u\n  user:\n    token: hunter2-secret\n";
    let body: Value = client
        .post(format!("{}/graphql", s.url))
        .bearer_auth(&operator)
        .json(&set(usable))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["data"]["setClusterCredentials"]["cluster"], "c00",
        "{body}"
    );
}
