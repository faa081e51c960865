//! The simulator as a whole: many clusters, kubeconfig files, plain HTTP, the gateway and the
//! admin endpoint.

// Helpers outside #[test] functions panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams, PostParams};
use kubesim::{GatewayMode, SimOptions, Simulator};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A minimal HTTP/1.1 exchange; returns the status code and body.
async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let code = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

fn service(name: &str) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}))
        .unwrap()
}

#[tokio::test]
async fn clusters_are_independent_and_write_kubeconfigs() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions {
        clusters: vec!["east".into(), "west".into(), "north".into()],
        dir: dir.path().to_path_buf(),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let names: Vec<String> = sim
        .clusters()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    assert_eq!(names, vec!["east", "north", "west"]);
    let east = sim.cluster("east").unwrap();
    let west = sim.cluster("west").unwrap();
    assert_ne!(east.url(), west.url());
    assert!(east.url().starts_with("https://127.0.0.1:"));

    let written = std::fs::read_to_string(east.kubeconfig_path()).unwrap();
    assert_eq!(written, east.kubeconfig_yaml());
    assert!(written.contains("certificate-authority-data:") && written.contains("token:"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(east.kubeconfig_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "kubeconfigs hold tokens");
    assert!(dir.path().join("ca.crt").exists());
    assert!(
        !format!("{east:?}").contains("token"),
        "Debug never shows the token"
    );

    let e: Api<Service> = Api::namespaced(east.client().await.unwrap(), "default");
    let w: Api<Service> = Api::namespaced(west.client().await.unwrap(), "default");
    e.create(&PostParams::default(), &service("only-east"))
        .await
        .unwrap();
    assert_eq!(e.list(&ListParams::default()).await.unwrap().items.len(), 1);
    assert!(
        w.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // A token of one cluster does not open another.
    let token = east
        .kubeconfig_yaml()
        .lines()
        .find(|l| l.contains("token:"))
        .unwrap()
        .to_string();
    let west_token = west
        .kubeconfig_yaml()
        .lines()
        .find(|l| l.contains("token:"))
        .unwrap()
        .to_string();
    let crossed = west.kubeconfig_yaml().replace(&west_token, &token);
    let kc = kube::config::Kubeconfig::from_yaml(&crossed).unwrap();
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap(),
    )
    .unwrap();
    let err = Api::<Service>::namespaced(client, "default")
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 401));

    let south = sim.add_cluster("south").await.unwrap();
    assert!(south.kubeconfig_path().exists());
    assert!(matches!(
        sim.add_cluster("south").await,
        Err(kubesim::Error::DuplicateCluster(_))
    ));
    assert!(matches!(
        sim.add_cluster("Bad_Name").await,
        Err(kubesim::Error::InvalidClusterName { .. })
    ));
    sim.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(east.url().trim_start_matches("https://"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn plain_http_mode_serves_kube_clients() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions {
        clusters: vec!["dev".into()],
        dir: dir.path().to_path_buf(),
        tls: false,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dev = sim.cluster("dev").unwrap();
    assert!(dev.url().starts_with("http://"));
    assert!(!dev.kubeconfig_yaml().contains("certificate-authority-data"));
    let api: Api<Service> = Api::namespaced(dev.client().await.unwrap(), "default");
    api.create(&PostParams::default(), &service("web"))
        .await
        .unwrap();
    assert_eq!(
        api.get("web").await.unwrap().metadata.name.as_deref(),
        Some("web")
    );
    let addr: SocketAddr = dev.url().trim_start_matches("http://").parse().unwrap();
    let (code, body) = http(addr, "GET", "/api/v1/namespaces").await;
    assert_eq!(code, 401, "{body}");
    let (code, _) = http(addr, "GET", "/healthz").await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn gateway_answers_per_mode_and_admin_endpoint_injects_faults() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions {
        clusters: vec!["east".into()],
        dir: dir.path().to_path_buf(),
        admin: true,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let east = sim.cluster("east").unwrap();
    let gw = east.gateway_addr();
    assert_eq!(http(gw, "GET", "/ready").await.0, 200);
    east.faults().set_gateway(GatewayMode::Failing);
    assert_eq!(http(gw, "GET", "/ready").await.0, 500);
    east.faults().set_gateway(GatewayMode::Hanging);
    let hung = tokio::time::timeout(Duration::from_millis(300), http(gw, "GET", "/ready")).await;
    assert!(hung.is_err(), "a hanging gateway never answers");
    east.faults().set_gateway(GatewayMode::Healthy);
    assert_eq!(http(gw, "GET", "/ready").await.0, 200);

    let admin: SocketAddr = sim
        .admin_url()
        .unwrap()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let (code, body) = http(admin, "GET", "/clusters").await;
    assert_eq!(code, 200);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list[0]["name"], "east");
    assert_eq!(list[0]["url"], east.url());
    assert!(
        !body.contains(
            &east
                .kubeconfig_yaml()
                .lines()
                .find(|l| l.contains("token:"))
                .unwrap()[11..]
        )
    );

    assert_eq!(
        http(admin, "POST", "/clusters/east/gateway?mode=failing")
            .await
            .0,
        200
    );
    assert_eq!(http(gw, "GET", "/ready").await.0, 500);
    assert_eq!(
        http(admin, "POST", "/clusters/east/gateway?mode=sideways")
            .await
            .0,
        400
    );
    assert_eq!(http(admin, "POST", "/clusters/nope/stop").await.0, 404);

    let api: Api<Service> = Api::namespaced(east.client().await.unwrap(), "default");
    assert_eq!(http(admin, "POST", "/clusters/east/stop").await.0, 200);
    assert!(api.list(&ListParams::default()).await.is_err(), "stopped");
    assert_eq!(http(admin, "POST", "/clusters/east/start").await.0, 200);
    assert!(
        api.list(&ListParams::default()).await.is_ok(),
        "started again on the same port"
    );

    assert_eq!(
        http(
            admin,
            "POST",
            "/clusters/east/fail-writes?fraction=1&code=500"
        )
        .await
        .0,
        200
    );
    assert!(
        api.create(&PostParams::default(), &service("x"))
            .await
            .is_err()
    );
    assert_eq!(http(admin, "POST", "/clusters/east/clear").await.0, 200);
    api.create(&PostParams::default(), &service("x"))
        .await
        .unwrap();
    assert_eq!(
        http(gw, "GET", "/ready").await.0,
        200,
        "clear also heals the gateway"
    );

    assert_eq!(
        http(admin, "POST", "/clusters/east/latency?ms=200").await.0,
        200
    );
    let t = std::time::Instant::now();
    api.get("x").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert_eq!(http(admin, "POST", "/clusters?name=west").await.0, 201);
    assert!(sim.cluster("west").is_some());
}

/// `GET` with a bearer token and a user agent over plain HTTP; returns the status code.
async fn get_as(addr: SocketAddr, path: &str, token: &str, agent: &str) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nUser-Agent: {agent}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split_whitespace().nth(1).unwrap().parse().unwrap()
}

// Upstream shape: audit.k8s.io/v1 Event at the Metadata level (verb, user.username,
// userAgent, objectRef, responseStatus.code, requestReceivedTimestamp), no bodies.
#[tokio::test]
async fn admin_endpoint_serves_the_request_log_as_audit_events_with_user_agent_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions {
        clusters: vec!["east".into()],
        dir: dir.path().to_path_buf(),
        tls: false,
        admin: true,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let east = sim.cluster("east").unwrap();
    let admin: SocketAddr = sim
        .admin_url()
        .unwrap()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let (code, body) = http(admin, "GET", "/clusters/east/requests").await;
    assert_eq!(code, 200, "{body}");
    let start: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mark = start["next"].as_u64().unwrap();

    let before = chrono::Utc::now();
    let api: Api<Service> = Api::namespaced(east.client().await.unwrap(), "default");
    api.create(&PostParams::default(), &service("x"))
        .await
        .unwrap();
    let token = east
        .kubeconfig_yaml()
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let api_addr: SocketAddr = east.url().trim_start_matches("http://").parse().unwrap();
    let got = get_as(
        api_addr,
        "/api/v1/namespaces/default/services/x",
        &token,
        "linkplane/0.1.0 (replica r-1)",
    )
    .await;
    assert_eq!(got, 200);
    let after = chrono::Utc::now();

    let (code, body) = http(
        admin,
        "GET",
        &format!("/clusters/east/requests?since={mark}"),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let log: serde_json::Value = serde_json::from_str(&body).unwrap();
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{log}");
    assert_eq!(items[0]["verb"], "create");
    assert_eq!(items[0]["objectRef"]["resource"], "services");
    assert_eq!(items[0]["responseStatus"]["code"], 201);
    assert_eq!(items[1]["verb"], "get");
    assert_eq!(items[1]["objectRef"]["name"], "x");
    assert_eq!(items[1]["objectRef"]["namespace"], "default");
    assert_eq!(items[1]["userAgent"], "linkplane/0.1.0 (replica r-1)");
    assert_eq!(items[1]["user"]["username"], "kubernetes-admin");
    for e in items {
        let t =
            chrono::DateTime::parse_from_rfc3339(e["requestReceivedTimestamp"].as_str().unwrap())
                .unwrap();
        assert!(before <= t && t <= after, "{e}");
    }
    assert!(!body.contains(&token), "no credentials in the log");
    assert_eq!(log["next"].as_u64(), Some(mark + 2));
    let (_, body) = http(
        admin,
        "GET",
        &format!("/clusters/east/requests?since={}", mark + 2),
    )
    .await;
    let rest: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        http(admin, "GET", "/clusters/east/requests?since=x")
            .await
            .0,
        400
    );
    assert_eq!(http(admin, "GET", "/clusters/nope/requests").await.0, 404);
}
