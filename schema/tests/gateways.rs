//! `GatewayProbe.latency`: percentiles over the prober's recent probes of a link's target
//! gateway, read from the windows the mirror keeps in memory (`linkplane_core::probes`).
#![allow(clippy::unwrap_used)]

mod support;

use linkplane_core::probes::ProbeWindows;
use linkplane_schema::{Api, ApiOptions, Role};
use linkplane_store::Store;
use serde_json::{Value, json};
use support::{as_role, seed_fleet};

async fn run(api: &Api, query: &str) -> Value {
    let resp = api.execute(query, as_role(Role::Viewer)).await;
    let v = serde_json::to_value(&resp).unwrap();
    assert!(v.get("errors").is_none(), "errors: {}", v["errors"]);
    v["data"].clone()
}

const Q: &str = r#"{ link(name: "c01-from-c02") { targetName gateway { alive consecutiveFailures
    latency { p50 p95 p99 probes successes } } }
  cluster(name: "c02") { gatewayProbes { link latency { p99 } } } }"#;

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn gateway_latency_is_the_percentiles_of_the_recent_probes_of_the_target(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 0).await;
    let windows = ProbeWindows::default();
    let api = Api::new(
        Store::from_pool(pool.clone()),
        ApiOptions {
            probe_windows: Some(windows.clone()),
            ..ApiOptions::default()
        },
    );
    // Before any probe of c02 in this process: null, not zero.
    let d = run(&api, Q).await;
    assert_eq!(d["link"]["gateway"]["latency"], Value::Null);
    for ms in 1..=20 {
        windows.record("c02", Some(ms as f64));
    }
    windows.record("c02", None);
    windows.record("c01", Some(500.0));
    let d = run(&api, Q).await;
    assert_eq!(d["link"]["targetName"], "c02");
    assert_eq!(
        d["link"]["gateway"]["latency"],
        json!({"p50": 10.0, "p95": 19.0, "p99": 20.0, "probes": 21, "successes": 20})
    );
    // Every link into c02 shows c02's window (c01-from-c02 and c00-from-c02).
    let probes = d["cluster"]["gatewayProbes"].as_array().unwrap();
    assert_eq!(probes.len(), 2);
    assert!(
        probes.iter().all(|p| p["latency"]["p99"] == 20.0),
        "{probes:?}"
    );
    // A server without the prober (no windows) answers null.
    let without = support::api(pool);
    let d = run(&without, Q).await;
    assert_eq!(d["link"]["gateway"]["latency"], Value::Null);
}

/// `serverInfo.migrations`: what `linkplane check` reports as the migration level.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn server_info_reports_the_migration_level(pool: sqlx::PgPool) {
    let api = support::api(pool.clone());
    let q = "{ serverInfo { version migrations { current applied pending { version } unknown embedded { version } } } }";
    let d = run(&api, q).await;
    let m = &d["serverInfo"]["migrations"];
    assert_eq!(m["current"], true, "{m}");
    assert_eq!(
        m["applied"].as_array().unwrap().len(),
        m["embedded"].as_array().unwrap().len()
    );
    sqlx::query("UPDATE _sqlx_migrations SET version = 9999 WHERE version = 1")
        .execute(&pool)
        .await
        .unwrap();
    let d = run(&api, q).await;
    let m = &d["serverInfo"]["migrations"];
    assert_eq!(m["current"], false);
    assert_eq!(m["pending"], json!([{"version": 1}]));
    assert_eq!(m["unknown"], json!([9999]));
}
