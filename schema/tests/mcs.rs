//! Multi-Cluster Services in the API: exports with their KEP-1645 conditions and imports, as
//! the MCS reconciler records them, against a real, migrated Postgres database per test.
#![allow(clippy::unwrap_used)]

mod support;

use linkplane_schema::{Api, Role};
use linkplane_store::mcs::{
    ConditionStatus, McsCondition, McsConditionType, McsExportState, McsExportStatus,
    McsImportState, McsImportStatus, McsImportType, McsPort, replace_exports, replace_imports,
};
use serde_json::{Value, json};
use support::{api, as_role, seed_fleet};

async fn run(api: &Api, role: Option<Role>, query: &str) -> Value {
    let resp = api.execute(query, role.and_then(as_role)).await;
    serde_json::to_value(&resp).unwrap()
}

fn data(resp: &Value) -> &Value {
    assert!(resp.get("errors").is_none(), "errors: {}", resp["errors"]);
    &resp["data"]
}

fn cond(kind: McsConditionType, holds: bool, reason: &str, message: &str) -> McsCondition {
    McsCondition {
        kind,
        status: if holds {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        },
        reason: reason.into(),
        message: message.into(),
        last_transition_time: None,
    }
}

/// `cluster`'s export of `demo/service`; `conflict` as KEP-1645 reports a port conflict.
fn export(cluster: &str, service: &str, conflict: bool) -> McsExportStatus {
    McsExportStatus {
        cluster: cluster.into(),
        namespace: "demo".into(),
        service: service.into(),
        state: if conflict {
            McsExportState::Conflict
        } else {
            McsExportState::Exported
        },
        conditions: vec![
            cond(
                McsConditionType::Valid,
                true,
                "Valid",
                "the Service is exported",
            ),
            cond(McsConditionType::Ready, true, "Ready", "imported into c00"),
            if conflict {
                cond(
                    McsConditionType::Conflict,
                    true,
                    "PortConflict",
                    "port http is 8080 in c01 but 9090 in c02",
                )
            } else {
                cond(McsConditionType::Conflict, false, "NoConflicts", "")
            },
        ],
        links: vec![format!("c00-from-{cluster}")],
        imported_by: vec!["c00".into()],
        exported_at: None,
    }
}

async fn seed(pool: &sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 0).await;
    replace_exports(&mut conn, "c01", &[export("c01", "cart", false)])
        .await
        .unwrap();
    replace_exports(
        &mut conn,
        "c02",
        &[export("c02", "cart", true), export("c02", "db", false)],
    )
    .await
    .unwrap();
    let mut invalid = export("c02", "gone", false);
    invalid.state = McsExportState::Invalid;
    invalid.conditions[0] = cond(McsConditionType::Valid, false, "NoService", "no Service");
    invalid.conditions[1] = cond(McsConditionType::Ready, false, "Pending", "no Service");
    replace_exports(
        &mut conn,
        "c02",
        &[
            export("c02", "cart", true),
            export("c02", "db", false),
            invalid,
        ],
    )
    .await
    .unwrap();
    replace_imports(
        &mut conn,
        "c00",
        &[McsImportStatus {
            cluster: "c00".into(),
            namespace: "demo".into(),
            service: "cart".into(),
            ty: McsImportType::ClusterSetIp,
            ports: vec![McsPort {
                name: Some("http".into()),
                protocol: "TCP".into(),
                port: 8080,
            }],
            session_affinity: "None".into(),
            source_clusters: vec!["c01".into(), "c02".into()],
            endpoint_slices: 2,
            ready_endpoints: 3,
            state: McsImportState::Conflict,
            message: "PortConflict: port http is 8080 in c01 but 9090 in c02".into(),
        }],
    )
    .await
    .unwrap();
}

/// KEP-1645 "Constraints and Conflict Resolution": a conflict is reported on every export of
/// the service through the `Conflict` condition; the API lists exactly those exports with
/// `conflict: true`, with the condition's reason and message, and the links that carry them.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn conflicting_exports_are_queryable_with_their_conditions(pool: sqlx::PgPool) {
    seed(&pool).await;
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Viewer),
        r#"{ mcsExports(conflict: true) { totalCount edges { node {
              cluster namespace service state conflict links importedBy
              conditions { type status reason message } } } } }"#,
    )
    .await;
    let page = &data(&resp)["mcsExports"];
    assert_eq!(page["totalCount"], 1);
    let e = &page["edges"][0]["node"];
    assert_eq!(
        (&e["cluster"], &e["service"], &e["state"], &e["conflict"]),
        (
            &json!("c02"),
            &json!("cart"),
            &json!("CONFLICT"),
            &json!(true)
        )
    );
    assert_eq!(e["links"], json!(["c00-from-c02"]));
    assert_eq!(e["importedBy"], json!(["c00"]));
    assert_eq!(
        e["conditions"][2],
        json!({"type": "CONFLICT", "status": "TRUE", "reason": "PortConflict",
               "message": "port http is 8080 in c01 but 9090 in c02"})
    );
}

/// Filters a dashboard needs: by cluster and by state; `totalCount` counts over every page.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn exports_filter_by_cluster_and_state_and_page_like_relay(pool: sqlx::PgPool) {
    seed(&pool).await;
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Viewer),
        r#"{ a: mcsExports(cluster: "c02", first: 2) { totalCount pageInfo { hasNextPage endCursor }
                 edges { node { service } } }
             b: mcsExports(state: INVALID) { edges { node { service conditions { type status reason } } } }
             c: mcsExports(cluster: "c01", state: EXPORTED) { totalCount } }"#,
    )
    .await;
    let d = data(&resp);
    assert_eq!(d["a"]["totalCount"], 3);
    assert_eq!(d["a"]["pageInfo"]["hasNextPage"], true);
    let names: Vec<&str> = d["a"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["service"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cart", "db"]);
    let cursor = d["a"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        d["b"]["edges"][0]["node"],
        json!({"service": "gone", "conditions": [
            {"type": "VALID", "status": "FALSE", "reason": "NoService"},
            {"type": "READY", "status": "FALSE", "reason": "Pending"},
            {"type": "CONFLICT", "status": "FALSE", "reason": "NoConflicts"}]})
    );
    assert_eq!(d["c"]["totalCount"], 1);
    let next = run(
        &api,
        Some(Role::Viewer),
        &format!(
            r#"{{ mcsExports(cluster: "c02", first: 2, after: "{cursor}") {{ pageInfo {{ hasNextPage }} edges {{ node {{ service }} }} }} }}"#
        ),
    )
    .await;
    assert_eq!(
        data(&next)["mcsExports"]["edges"],
        json!([{"node": {"service": "gone"}}])
    );
    assert_eq!(data(&next)["mcsExports"]["pageInfo"]["hasNextPage"], false);
}

/// KEP-1645 ServiceImport: type, ports, the exporting clusters (`status.clusters`) and the
/// EndpointSlices per cluster, in the consumer; filtered by consumer and state.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn imports_show_type_ports_sources_and_slices(pool: sqlx::PgPool) {
    seed(&pool).await;
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Viewer),
        r#"{ mcsImports(cluster: "c00") { totalCount edges { node {
              cluster namespace service type ports { name protocol port } sessionAffinity
              sourceClusters endpointSlices readyEndpoints state message } } }
             none: mcsImports(state: ERROR) { totalCount } }"#,
    )
    .await;
    let d = data(&resp);
    assert_eq!(d["mcsImports"]["totalCount"], 1);
    assert_eq!(
        d["mcsImports"]["edges"][0]["node"],
        json!({"cluster": "c00", "namespace": "demo", "service": "cart",
               "type": "CLUSTER_SET_IP", "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
               "sessionAffinity": "None", "sourceClusters": ["c01", "c02"], "endpointSlices": 2,
               "readyEndpoints": 3, "state": "CONFLICT",
               "message": "PortConflict: port http is 8080 in c01 but 9090 in c02"})
    );
    assert_eq!(d["none"]["totalCount"], 0);
}

/// Like every query root, the MCS lists need a caller.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn mcs_lists_need_a_token(pool: sqlx::PgPool) {
    seed(&pool).await;
    let api = api(pool);
    let resp = run(&api, None, "{ mcsImports { totalCount } }").await;
    assert_eq!(resp["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}
