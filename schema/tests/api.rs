//! In-process tests of every query, mutation and subscription against a real, migrated Postgres
//! database per test (`schema.execute` through `Api`, no HTTP).
#![allow(clippy::unwrap_used)]

mod support;

use std::{sync::Arc, time::Duration};

use futures::StreamExt as _;
use linkplane_core::{Cluster, CredentialsRef, ExportPolicy, GitSource};
use linkplane_schema::{
    Api, ApiOptions, BoxFuture, Limits, Role, SyncError, SyncReport, SyncService,
};
use linkplane_store::{
    Owner, Store, clusters,
    credentials::{self, CredentialsKey},
    federation::{self, FederatedState, FederatedStatus, MemberState, MemberStatus},
    git_sources, mirrors, policies,
    sync_history::{self, SyncRecord},
    tokens,
};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use support::{api, as_role, seed_fleet};

async fn run(api: &Api, role: Option<Role>, query: &str) -> Value {
    let principal = role.and_then(as_role);
    let resp = api.execute(query, principal).await;
    serde_json::to_value(&resp).unwrap()
}

fn data(resp: &Value) -> &Value {
    assert!(
        resp.get("errors").is_none(),
        "unexpected errors: {}",
        resp["errors"]
    );
    &resp["data"]
}

fn code(resp: &Value) -> &str {
    resp["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {resp}"))
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn clusters_show_health_links_services_mirrors_and_gateways(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 4, 3).await;
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Viewer),
        "{ clusters(first: 2) { pageInfo { hasNextPage endCursor } edges { cursor node {
            name apiServer labels { key value } credentialsSource owner health
            reconciler { state watchesSynced }
            gatewayAlive gatewayLatencyMs gatewayProbes { link alive }
            outgoingLinks { name targetName } incomingLinks { name sourceName }
            exportedServices { name namespace consumers { sourceCluster state } healthyConsumers }
            mirrorCounts { total mirrored conflict }
            mirrors(first: 2) { edges { node { localName state } } pageInfo { hasNextPage } }
        } } } }",
    )
    .await;
    let d = data(&resp);
    let page = &d["clusters"];
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    assert_eq!(page["pageInfo"]["endCursor"], "c01");
    let c0 = &page["edges"][0]["node"];
    assert_eq!(c0["name"], "c00");
    assert_eq!(
        c0["health"], "DEGRADED",
        "c00's reconciler reports Degraded"
    );
    assert_eq!(c0["credentialsSource"], "KUBECONFIG_FILE");
    assert_eq!(c0["reconciler"]["state"], "DEGRADED");
    assert_eq!(c0["outgoingLinks"].as_array().unwrap().len(), 2);
    assert_eq!(c0["incomingLinks"].as_array().unwrap().len(), 2);
    // c00 is the target of c03 (hop 1, probe dead since 3 % 5 != 4 → alive) and c02 (alive).
    assert_eq!(c0["gatewayProbes"].as_array().unwrap().len(), 2);
    assert_eq!(c0["mirrorCounts"]["total"], 6);
    assert_eq!(c0["mirrors"]["edges"].as_array().unwrap().len(), 2);
    assert_eq!(c0["mirrors"]["pageInfo"]["hasNextPage"], true);
    let services = c0["exportedServices"].as_array().unwrap();
    assert_eq!(services.len(), 3, "svc0..svc2 exported by c00");
    assert_eq!(services[0]["consumers"].as_array().unwrap().len(), 2);
    let c1 = &page["edges"][1]["node"];
    assert_eq!(c1["health"], "HEALTHY");
    // The next page starts after the cursor.
    let resp = run(
        &api,
        Some(Role::Viewer),
        "{ clusters(first: 5, after: \"c01\") { edges { node { name } } } }",
    )
    .await;
    let names: Vec<&str> = data(&resp)["clusters"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c02", "c03"]);
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn cluster_by_name_and_unknown_cluster(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 1).await;
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Viewer),
        r#"{ a: cluster(name: "c01") { name } b: cluster(name: "nope") { name } }"#,
    )
    .await;
    assert_eq!(data(&resp)["a"]["name"], "c01");
    assert_eq!(data(&resp)["b"], Value::Null);
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn links_show_endpoints_gateway_counts_and_mirrors(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 2).await;
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Viewer),
        r#"{ links { edges { node { name paused owner source { name } target { name }
              selector { matchLabels { key value } }
              gateway { alive latencyMs consecutiveFailures }
              mirrorCounts { total }
              mirrors(first: 1) { edges { cursor node { id remoteName mode link { name } } } }
           } } }
           link(name: "c01-from-c02") { name sourceName targetName } }"#,
    )
    .await;
    let d = data(&resp);
    let edges = d["links"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 6);
    let first = &edges[0]["node"];
    assert_eq!(first["name"], "c00-from-c01");
    assert_eq!(first["source"]["name"], "c00");
    assert_eq!(first["target"]["name"], "c01");
    assert_eq!(first["gateway"]["alive"], true);
    assert_eq!(first["mirrorCounts"]["total"], 2);
    assert_eq!(
        first["selector"]["matchLabels"][0]["key"],
        "mirror.linkerd.io/exported"
    );
    let m = &first["mirrors"]["edges"][0];
    assert_eq!(m["node"]["link"]["name"], "c00-from-c01");
    assert_eq!(m["cursor"], m["node"]["id"]);
    assert_eq!(d["link"]["targetName"], "c02");
}

/// `Link.remoteCredential` shows the pair's credential state as the mirror recorded it (never
/// the token), and `Cluster.trustDomain` / `linkerdNamespace` their defaults.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn links_show_remote_credentials_and_clusters_their_linkerd_fields(pool: sqlx::PgPool) {
    use linkplane_store::remote_credentials::{self, CredentialUpdate, RemoteCredentialState};
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 2, 0).await;
    let issued = chrono::Utc::now();
    let expires = issued + chrono::Duration::hours(24);
    remote_credentials::set(
        &mut conn,
        "c00",
        "c01",
        &CredentialUpdate {
            state: RemoteCredentialState::Issued,
            secret_name: "cluster-credentials-c01",
            namespace: "linkerd",
            issued: Some((issued, expires)),
            message: "",
        },
    )
    .await
    .unwrap();
    remote_credentials::set(
        &mut conn,
        "c01",
        "c00",
        &CredentialUpdate {
            state: RemoteCredentialState::NamespaceMissing,
            secret_name: "cluster-credentials-c00",
            namespace: "linkerd",
            issued: None,
            message: "namespace linkerd does not exist in cluster c01",
        },
    )
    .await
    .unwrap();
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Viewer),
        r#"{ links { nodes { name sourceName
              remoteCredential { state name namespace issuedAt expiresAt message } } }
             clusters { nodes { name trustDomain linkerdNamespace } } }"#,
    )
    .await;
    let d = data(&resp);
    let links = d["links"]["nodes"].as_array().unwrap();
    let of = |src: &str| {
        links
            .iter()
            .find(|l| l["sourceName"] == src)
            .map(|l| l["remoteCredential"].clone())
            .unwrap()
    };
    let a = of("c00");
    assert_eq!(a["state"], "ISSUED");
    assert_eq!(a["name"], "cluster-credentials-c01");
    assert_eq!(a["namespace"], "linkerd");
    assert!(a["expiresAt"].as_str().unwrap() > a["issuedAt"].as_str().unwrap());
    let b = of("c01");
    assert_eq!(b["state"], "NAMESPACE_MISSING");
    assert_eq!(b["issuedAt"], Value::Null);
    assert!(b["message"].as_str().unwrap().contains("does not exist"));
    let c = &d["clusters"]["nodes"][0];
    assert_eq!(c["trustDomain"], "cluster.local");
    assert_eq!(c["linkerdNamespace"], "linkerd");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn export_policies_are_listed(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let policy = ExportPolicy {
        name: "shop-only".into(),
        spec: serde_json::from_value(json!({
            "namespaces": {"allow": ["shop"], "deny": ["shop-internal"]},
            "modes": ["gateway"]
        }))
        .unwrap(),
    };
    policies::upsert(&mut conn, &policy, &Owner::Git("fleet".into()))
        .await
        .unwrap();
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Viewer),
        "{ exportPolicies { edges { node { name owner modes namespaces { allow deny } } } } }",
    )
    .await;
    let p = &data(&resp)["exportPolicies"]["edges"][0]["node"];
    assert_eq!(p["name"], "shop-only");
    assert_eq!(p["owner"], "git:fleet");
    assert_eq!(p["modes"], json!(["GATEWAY"]));
    assert_eq!(p["namespaces"]["deny"], json!(["shop-internal"]));
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn services_group_mirrors_with_consumers_and_page(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 2).await;
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Viewer),
        r#"{ services(cluster: "c00", first: 1) { pageInfo { hasNextPage endCursor }
              edges { node { id cluster namespace name consumers { sourceCluster localName } } } } }"#,
    )
    .await;
    let page = &data(&resp)["services"];
    let s = &page["edges"][0]["node"];
    assert_eq!(s["id"], "c00/ns0/svc0");
    let consumers: Vec<&str> = s["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sourceCluster"].as_str().unwrap())
        .collect();
    assert_eq!(consumers, ["c01", "c02"]);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let resp = run(
        &api,
        Some(Role::Viewer),
        r#"{ services(cluster: "c00", after: "c00/ns0/svc0") { edges { node { id } } } }"#,
    )
    .await;
    assert_eq!(
        data(&resp)["services"]["edges"][0]["node"]["id"],
        "c00/ns1/svc1"
    );
    let resp = run(
        &api,
        Some(Role::Viewer),
        r#"{ services(after: "garbage") { edges { cursor } } }"#,
    )
    .await;
    assert_eq!(code(&resp), "BAD_USER_INPUT");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn mirrors_filter_by_cluster_namespace_and_state_and_page_by_id(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 10).await;
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Viewer),
        r#"{ mirrors(state: CONFLICT) { edges { node { state message remoteName } } } }"#,
    )
    .await;
    let conflicts = data(&resp)["mirrors"]["edges"].as_array().unwrap().clone();
    assert_eq!(conflicts.len(), 6, "svc7 conflicts on each of 6 links");
    assert!(conflicts.iter().all(|e| e["node"]["remoteName"] == "svc7"));
    let resp = run(
        &api,
        Some(Role::Viewer),
        r#"{ mirrors(cluster: "c01", namespace: "ns3", first: 1) { pageInfo { hasNextPage endCursor }
              edges { node { sourceCluster namespace } } } }"#,
    )
    .await;
    let page = &data(&resp)["mirrors"];
    assert_eq!(page["edges"][0]["node"]["sourceCluster"], "c01");
    assert_eq!(page["edges"][0]["node"]["namespace"], "ns3");
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let after = page["pageInfo"]["endCursor"].as_str().unwrap();
    let resp = run(
        &api,
        Some(Role::Viewer),
        &format!(
            r#"{{ mirrors(cluster: "c01", namespace: "ns3", after: "{after}") {{ edges {{ node {{ id }} }} pageInfo {{ hasNextPage }} }} }}"#
        ),
    )
    .await;
    let page = &data(&resp)["mirrors"];
    assert_eq!(page["edges"].as_array().unwrap().len(), 1);
    assert_eq!(page["pageInfo"]["hasNextPage"], false);
    let resp = run(
        &api,
        Some(Role::Viewer),
        "{ mirrors(first: 501) { edges { cursor } } }",
    )
    .await;
    assert_eq!(code(&resp), "BAD_USER_INPUT");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn federated_services_show_members_and_conflicts(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 0).await;
    let member = |c: &str, local, state, msg: &str| MemberStatus {
        cluster: c.into(),
        is_local: local,
        state,
        message: msg.into(),
        member_since: None,
    };
    federation::upsert(
        &mut conn,
        &FederatedStatus {
            source_cluster: "c00".into(),
            namespace: "shop".into(),
            service: "web".into(),
            local_name: "web-federated".into(),
            state: FederatedState::Conflict,
            message: "members disagree on port 80".into(),
            remote_discovery: "web@c01".into(),
            local_discovery: true,
            members: vec![
                member("c00", true, MemberState::Member, ""),
                member("c01", false, MemberState::Member, ""),
                member("c02", false, MemberState::Rejected, "headless"),
            ],
        },
    )
    .await
    .unwrap();
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Viewer),
        r#"{ federatedServices(cluster: "c00") { edges { node { service localName state
              members { cluster isLocal state } conflicts } } } }"#,
    )
    .await;
    let f = &data(&resp)["federatedServices"]["edges"][0]["node"];
    assert_eq!(f["state"], "CONFLICT");
    assert_eq!(f["members"][0]["isLocal"], true);
    assert_eq!(f["members"][2]["state"], "REJECTED");
    assert_eq!(
        f["conflicts"],
        json!(["members disagree on port 80", "c02: headless"])
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn git_sources_show_status_and_history_without_url_credentials(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let src = GitSource {
        name: "fleet".into(),
        spec: serde_json::from_value(
            json!({"url": "https://bot:s3cr3t@git.example.com/fleet.git"}),
        )
        .unwrap(),
    };
    git_sources::upsert(&mut conn, &src).await.unwrap();
    for i in 0..3 {
        sync_history::record(
            &mut conn,
            &SyncRecord {
                id: 0,
                source: "fleet".into(),
                revision: format!("rev{i}"),
                author: "Ada".into(),
                message: "change".into(),
                trigger: linkplane_core::status::Trigger::Poll,
                result: linkplane_core::status::SyncResult::Applied,
                started_at: chrono::Utc::now(),
                duration_ms: 5,
                counts: Default::default(),
                errors: vec![],
            },
        )
        .await
        .unwrap();
    }
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Viewer),
        "{ gitSources { edges { node { name url gitRef status drifted history(limit: 2) { revision result } } } } }",
    )
    .await;
    let g = &data(&resp)["gitSources"]["edges"][0]["node"];
    assert_eq!(g["url"], "https://git.example.com/fleet.git");
    assert_eq!(g["gitRef"], "branch:main");
    assert_eq!(g["status"], "UNKNOWN");
    assert_eq!(g["drifted"], false);
    assert_eq!(
        g["history"],
        json!([{"revision": "rev2", "result": "APPLIED"}, {"revision": "rev1", "result": "APPLIED"}])
    );
    linkplane_store::gitops::replace_drift(
        &mut conn,
        "fleet",
        &[linkplane_store::gitops::DriftEntry {
            kind: linkplane_core::status::ObjectKind::Link,
            name: "west-from-east".into(),
            change: linkplane_core::status::DriftChange::Modified,
            diff: vec![linkplane_store::gitops::FieldDiff {
                path: "spec.createNamespaces".into(),
                desired: json!(false),
                actual: json!(true),
            }],
            detected_at: chrono::Utc::now(),
        }],
    )
    .await
    .unwrap();
    let resp = run(
        &api,
        Some(Role::Viewer),
        "{ gitSources { edges { node { drift { kind name change } } } } }",
    )
    .await;
    assert_eq!(
        data(&resp)["gitSources"]["edges"][0]["node"]["drift"],
        json!([{"kind": "LINK", "name": "west-from-east", "change": "MODIFIED"}])
    );
    let details =
        "{ gitSources { edges { node { drift { name fields { path desired actual } } } } } }";
    // Drift of non-secret fields is viewable: a viewer gets the values (what `linkplane diff`
    // prints), and only values under `spec.credentials` are redacted (see git.rs).
    let viewer = run(&api, Some(Role::Viewer), details).await;
    assert_eq!(
        data(&viewer)["gitSources"]["edges"][0]["node"]["drift"],
        json!([{"name": "west-from-east", "fields": [
            {"path": "spec.createNamespaces", "desired": "false", "actual": "true"}]}])
    );
    let resp = run(&api, Some(Role::Operator), details).await;
    assert_eq!(
        data(&resp)["gitSources"]["edges"][0]["node"]["drift"][0]["fields"],
        json!([{"path": "spec.createNamespaces", "desired": "false", "actual": "true"}])
    );
    // Where a kubeconfig lives is the operators' to see, as on `Cluster`.
    linkplane_store::gitops::replace_drift(
        &mut conn,
        "fleet",
        &[linkplane_store::gitops::DriftEntry {
            kind: linkplane_core::status::ObjectKind::Cluster,
            name: "east".into(),
            change: linkplane_core::status::DriftChange::Modified,
            diff: vec![linkplane_store::gitops::FieldDiff {
                path: "spec.credentials.kubeconfigFile".into(),
                desired: json!("/etc/a"),
                actual: json!("/etc/b"),
            }],
            detected_at: chrono::Utc::now(),
        }],
    )
    .await
    .unwrap();
    let q =
        "{ gitSources { edges { node { drift { fields { path desired actual redacted } } } } } }";
    let viewer = run(&api, Some(Role::Viewer), q).await;
    assert_eq!(
        data(&viewer)["gitSources"]["edges"][0]["node"]["drift"][0]["fields"],
        json!([{"path": "spec.credentials.kubeconfigFile", "desired": "\"<redacted>\"",
                "actual": "\"<redacted>\"", "redacted": true}])
    );
    let operator = run(&api, Some(Role::Operator), q).await;
    assert_eq!(
        data(&operator)["gitSources"]["edges"][0]["node"]["drift"][0]["fields"][0]["actual"],
        "\"/etc/b\""
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn topology_draws_every_node_and_edge(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 5, 2).await;
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Viewer),
        "{ topology { nodes { name health gatewayAlive mirrorCounts { total } }
                      edges { name sourceName targetName paused gateway { alive latencyMs } mirrorCounts { total conflict } } } }",
    )
    .await;
    let t = &data(&resp)["topology"];
    assert_eq!(t["nodes"].as_array().unwrap().len(), 5);
    assert_eq!(t["edges"].as_array().unwrap().len(), 10);
    assert_eq!(t["edges"][0]["mirrorCounts"]["total"], 2);
    // Links from c04 have dead probes (4 % 5 == 4): their targets c00 and c01 are degraded.
    let c00 = &t["nodes"][0];
    assert_eq!(c00["gatewayAlive"], false);
}

/// Topology's counts (read from the trigger-maintained `mirror_counts`) against a fresh count of
/// `mirrors`, per link and per holding cluster.
async fn assert_topology_counts_exact(api: &Api, pool: &sqlx::PgPool, step: &str) {
    let resp = run(
        api,
        Some(Role::Viewer),
        "{ topology { nodes { name mirrorCounts { total mirrored conflict error } }
                      edges { name mirrorCounts { total mirrored conflict error } } } }",
    )
    .await;
    let t = &data(&resp)["topology"];
    let fresh = |col: &'static str| {
        let pool = pool.clone();
        async move {
            let sql = format!(
                "SELECT {col}::text, count(*), count(*) FILTER (WHERE state = 'Mirrored'),
                        count(*) FILTER (WHERE state = 'Conflict'), count(*) FILTER (WHERE state = 'Error')
                 FROM mirrors GROUP BY {col}"
            );
            let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await
                .unwrap();
            rows.into_iter()
                .map(|(k, total, m, c, e)| {
                    (
                        k,
                        json!({"total": total, "mirrored": m, "conflict": c, "error": e}),
                    )
                })
                .collect::<std::collections::HashMap<_, _>>()
        }
    };
    let zero = json!({"total": 0, "mirrored": 0, "conflict": 0, "error": 0});
    for (list, col) in [("edges", "link"), ("nodes", "source_cluster")] {
        let expected = fresh(col).await;
        for item in t[list].as_array().unwrap() {
            let name = item["name"].as_str().unwrap();
            assert_eq!(
                item["mirrorCounts"],
                *expected.get(name).unwrap_or(&zero),
                "{list} {name} after {step}"
            );
        }
    }
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn topology_counts_follow_every_mirror_write(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 4, 3).await;
    let api = api(pool.clone());
    assert_topology_counts_exact(&api, &pool, "seeding").await;
    let status = |name: &str, state| mirrors::MirrorStatus {
        link: "c00-from-c01".into(),
        source_cluster: "c00".into(),
        target_cluster: "c01".into(),
        namespace: "ns1".into(),
        remote_name: name.into(),
        local_name: format!("{name}-c01"),
        mode: "gateway".into(),
        headless: false,
        state,
        message: String::new(),
    };
    // svc1 exists (seeded); svc-new does not.
    mirrors::upsert(&mut conn, &status("svc1", mirrors::MirrorState::Error))
        .await
        .unwrap();
    assert_topology_counts_exact(&api, &pool, "a state change").await;
    mirrors::upsert(
        &mut conn,
        &status("svc-new", mirrors::MirrorState::Conflict),
    )
    .await
    .unwrap();
    assert_topology_counts_exact(&api, &pool, "a new mirror").await;
    mirrors::delete(&mut conn, "c00-from-c01", "ns1", "svc1")
        .await
        .unwrap();
    assert_topology_counts_exact(&api, &pool, "a delete").await;
    linkplane_store::links::delete(&mut conn, "c01-from-c02")
        .await
        .unwrap();
    assert_topology_counts_exact(&api, &pool, "deleting a link").await;
}

const CLUSTER_FIELDS: &str =
    "name apiServer clusterDomain credentialsSource owner generation createdAt
    updatedAt hasStoredCredentials reconciler { state message watchesSynced lastSyncAt updatedAt }
    mirrorCounts { total mirrored conflict missingNamespace policyDenied error } health gatewayAlive
    gatewayLatencyMs gatewayProbes { link alive latencyMs consecutiveFailures lastError lastProbeAt
    lastTransition __typename } __typename";
const LINK_FIELDS: &str = "name sourceName targetName paused owner generation createdAt updatedAt
    createNamespaces enableHeadlessServices cleanupOnUnlink
    gateway { link alive latencyMs consecutiveFailures lastError lastProbeAt lastTransition }
    mirrorCounts { total conflict } __typename";
const MIRROR_FIELDS: &str = "id linkName sourceCluster targetCluster namespace remoteName localName
    mode headless state message lastTransition updatedAt __typename";

/// The plain pass (objects answered without a resolver per field) and the general path
/// (forced by wrapping each selection in an inline fragment) answer alike: hand-picked dashboard
/// selections, among them a page nested under a link with arguments, which the
/// introspection-driven, every-role check (`tests/plain.rs`) does not build.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn plain_pass_answers_like_the_resolvers(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 4, 3).await;
    // Probes with an error and without a latency, a reconciler with a sync time.
    linkplane_store::gateways::record(&mut conn, "c01-from-c02", false, None, 3, Some("timeout"))
        .await
        .unwrap();
    let api = api(pool);
    let page = |fields: &str| {
        format!(
            "pageInfo {{ hasPreviousPage hasNextPage startCursor endCursor __typename }}
             edges {{ cursor __typename node {{ {fields} }} }} nodes {{ {fields} }} __typename"
        )
    };
    let cases = [
        (
            format!("topology {{ nodes {{ {CLUSTER_FIELDS} }} edges {{ {LINK_FIELDS} }} }}"),
            format!(
                "topology {{ nodes {{ ... on Cluster {{ {CLUSTER_FIELDS} }} }}
                             edges {{ ... on Link {{ {LINK_FIELDS} }} }} }}"
            ),
        ),
        (
            format!("mirrors(first: 5) {{ {} }}", page(MIRROR_FIELDS)),
            format!(
                "mirrors(first: 5) {{ ... on MirrorConnection {{ {} }} }}",
                page(MIRROR_FIELDS)
            ),
        ),
        (
            format!(
                "clusters {{ {} }} links(first: 3) {{ {} }}",
                page(CLUSTER_FIELDS),
                page(LINK_FIELDS)
            ),
            format!(
                "clusters {{ ... on ClusterConnection {{ {} }} }}
                 links(first: 3) {{ ... on LinkConnection {{ {} }} }}",
                page(CLUSTER_FIELDS),
                page(LINK_FIELDS)
            ),
        ),
        (
            format!(
                "cluster(name: \"c01\") {{ {CLUSTER_FIELDS} }} link(name: \"c00-from-c01\") {{ {LINK_FIELDS} }}
                 a: link(name: \"c01-from-c02\") {{ mirrors(first: 2) {{ {} }} }}",
                page(MIRROR_FIELDS)
            ),
            format!(
                "cluster(name: \"c01\") {{ ... on Cluster {{ {CLUSTER_FIELDS} }} }}
                 link(name: \"c00-from-c01\") {{ ... on Link {{ {LINK_FIELDS} }} }}
                 a: link(name: \"c01-from-c02\") {{ mirrors(first: 2) {{ ... on MirrorConnection {{ {} }} }} }}",
                page(MIRROR_FIELDS)
            ),
        ),
    ];
    for (plain, general) in cases {
        let fast = run(&api, Some(Role::Viewer), &format!("{{ {plain} }}")).await;
        let slow = run(&api, Some(Role::Viewer), &format!("{{ {general} }}")).await;
        assert_eq!(data(&fast), data(&slow), "{plain}");
    }
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn blast_radius_separates_gateway_from_cluster_failure(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 4).await;
    federation::upsert(
        &mut conn,
        &FederatedStatus {
            source_cluster: "c00".into(),
            namespace: "shop".into(),
            service: "api".into(),
            local_name: "api-federated".into(),
            state: FederatedState::Federated,
            message: String::new(),
            remote_discovery: "api@c01".into(),
            local_discovery: false,
            members: vec![MemberStatus {
                cluster: "c01".into(),
                is_local: false,
                state: MemberState::Member,
                message: String::new(),
                member_since: None,
            }],
        },
    )
    .await
    .unwrap();
    let api = api(pool);
    let q = |gw: bool| {
        format!(
            r#"{{ blastRadius(cluster: "c01", gatewayOnly: {gw}) {{ cluster gatewayOnly affectedClusters
                 mirrors {{ sourceCluster remoteName mode }} federatedServices {{ sourceCluster service }} }} }}"#
        )
    };
    let full = run(&api, Some(Role::Viewer), &q(false)).await;
    let full = &data(&full)["blastRadius"];
    // c01 exports svc0..svc3 to c00 and c02 over two links: 8 mirrors, all Mirrored.
    assert_eq!(full["mirrors"].as_array().unwrap().len(), 8);
    assert_eq!(full["affectedClusters"], json!(["c00", "c02"]));
    assert_eq!(full["federatedServices"][0]["service"], "api");
    let gw = run(&api, Some(Role::Viewer), &q(true)).await;
    let gw = &data(&gw)["blastRadius"];
    let modes: Vec<&str> = gw["mirrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mode"].as_str().unwrap())
        .collect();
    assert_eq!(
        modes.len(),
        6,
        "svc0 is remote-discovery and survives a gateway failure"
    );
    assert!(modes.iter().all(|m| *m == "GATEWAY"));
    assert_eq!(gw["federatedServices"], json!([]));
    let missing = run(
        &api,
        Some(Role::Viewer),
        r#"{ blastRadius(cluster: "mars") { cluster } }"#,
    )
    .await;
    assert_eq!(code(&missing), "NOT_FOUND");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn pause_and_resume_need_the_operator_role(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 0).await;
    let api = api(pool);
    let pause = r#"mutation { pauseLink(name: "c00-from-c01") { name paused } }"#;
    assert_eq!(code(&run(&api, None, pause).await), "UNAUTHENTICATED");
    assert_eq!(
        code(&run(&api, Some(Role::Viewer), pause).await),
        "FORBIDDEN"
    );
    let resp = run(&api, Some(Role::Operator), pause).await;
    assert_eq!(data(&resp)["pauseLink"]["paused"], true);
    let resp = run(
        &api,
        Some(Role::Admin),
        r#"mutation { resumeLink(name: "c00-from-c01") { paused } }"#,
    )
    .await;
    assert_eq!(data(&resp)["resumeLink"]["paused"], false);
    let resp = run(
        &api,
        Some(Role::Operator),
        r#"mutation { pauseLink(name: "nope") { paused } }"#,
    )
    .await;
    assert_eq!(code(&resp), "NOT_FOUND");
}

struct FakeEngine;

impl SyncService for FakeEngine {
    fn sync_now<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<SyncReport, SyncError>> {
        Box::pin(async move {
            if source == "fleet" {
                Ok(SyncReport {
                    revision: "abc123".into(),
                    result: linkplane_core::status::SyncResult::Applied,
                    message: "1 link created".into(),
                })
            } else {
                Err(SyncError::UnknownSource(source.into()))
            }
        })
    }
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn sync_now_is_unavailable_without_an_engine_and_runs_with_one(pool: sqlx::PgPool) {
    let store = Store::from_pool(pool);
    let q = r#"mutation { syncNow(source: "fleet") { source revision result message } }"#;
    let without = Api::new(store.clone(), ApiOptions::default());
    assert_eq!(
        code(&run(&without, Some(Role::Operator), q).await),
        "UNAVAILABLE"
    );
    let with = Api::new(
        store,
        ApiOptions {
            sync: Some(Arc::new(FakeEngine)),
            ..ApiOptions::default()
        },
    );
    assert_eq!(code(&run(&with, Some(Role::Viewer), q).await), "FORBIDDEN");
    let resp = run(&with, Some(Role::Operator), q).await;
    assert_eq!(data(&resp)["syncNow"]["revision"], "abc123");
    let resp = run(
        &with,
        Some(Role::Operator),
        r#"mutation { syncNow(source: "other") { result } }"#,
    )
    .await;
    assert_eq!(code(&resp), "NOT_FOUND");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn cluster_credentials_are_stored_encrypted_and_never_readable(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    clusters::upsert(
        &mut conn,
        &Cluster::new("east", "https://east:6443", CredentialsRef::Stored),
        &Owner::Git("fleet".into()),
    )
    .await
    .unwrap();
    let store = Store::from_pool(pool);
    let key = Arc::new(CredentialsKey::from_bytes(&[9u8; 32]).unwrap());
    let set = r#"mutation { setClusterCredentials(cluster: "east", kubeconfig: "apiVersion: v1\nkind: Config\n") { cluster inUse } }"#;
    let keyless = Api::new(store.clone(), ApiOptions::default());
    assert_eq!(
        code(&run(&keyless, Some(Role::Operator), set).await),
        "UNAVAILABLE"
    );
    let api = Api::new(
        store,
        ApiOptions {
            credentials_key: Some(key.clone()),
            ..ApiOptions::default()
        },
    );
    assert_eq!(code(&run(&api, Some(Role::Viewer), set).await), "FORBIDDEN");
    let resp = run(&api, Some(Role::Operator), set).await;
    assert_eq!(
        data(&resp)["setClusterCredentials"],
        json!({"cluster": "east", "inUse": true})
    );
    let stored = credentials::get(&mut conn, "east", &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.expose_secret(), "apiVersion: v1\nkind: Config\n");
    let resp = run(
        &api,
        Some(Role::Viewer),
        r#"{ cluster(name: "east") { hasStoredCredentials credentialsSource } }"#,
    )
    .await;
    assert_eq!(
        data(&resp)["cluster"],
        json!({"hasStoredCredentials": true, "credentialsSource": "STORED"})
    );
    let resp = run(
        &api,
        Some(Role::Operator),
        r#"mutation { setClusterCredentials(cluster: "mars", kubeconfig: "x: y") { cluster } }"#,
    )
    .await;
    assert_eq!(code(&resp), "NOT_FOUND");
    let resp = run(
        &api,
        Some(Role::Operator),
        r#"mutation { setClusterCredentials(cluster: "east", kubeconfig: "  ") { cluster } }"#,
    )
    .await;
    assert_eq!(code(&resp), "BAD_USER_INPUT");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn no_schema_field_can_return_a_credential(pool: sqlx::PgPool) {
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Admin),
        "{ __schema { types { name kind fields { name } } } }",
    )
    .await;
    let mut outputs = Vec::new();
    for t in data(&resp)["__schema"]["types"].as_array().unwrap() {
        for f in t["fields"].as_array().into_iter().flatten() {
            outputs.push(format!(
                "{}.{}",
                t["name"].as_str().unwrap(),
                f["name"].as_str().unwrap()
            ));
        }
    }
    assert!(outputs.len() > 100, "introspection returned too little");
    for field in &outputs {
        let lower = field.to_lowercase();
        for word in [
            "kubeconfig",
            "password",
            "secret",
            "hash",
            "cipher",
            "nonce",
        ] {
            assert!(!lower.contains(word), "{field} may expose a credential");
        }
    }
    let token_fields: Vec<&String> = outputs
        .iter()
        .filter(|f| f.starts_with("ApiToken."))
        .collect();
    assert_eq!(
        token_fields,
        [
            "ApiToken.id",
            "ApiToken.name",
            "ApiToken.role",
            "ApiToken.createdAt",
            "ApiToken.lastUsedAt",
            "ApiToken.revokedAt"
        ]
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn credential_references_need_the_operator_role(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 0).await;
    let api = api(pool);
    let q = r#"{ cluster(name: "c00") { credentialsReference } }"#;
    assert_eq!(code(&run(&api, Some(Role::Viewer), q).await), "FORBIDDEN");
    let resp = run(&api, Some(Role::Operator), q).await;
    assert_eq!(
        data(&resp)["cluster"]["credentialsReference"],
        "/etc/linkplane/c0.kubeconfig"
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn tokens_are_managed_by_admins_only(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let (info, token) = tokens::issue(&mut conn, tokens::Role::Viewer, "dash")
        .await
        .unwrap();
    let api = api(pool);
    let list = "{ apiTokens { id name role revokedAt } }";
    assert_eq!(
        code(&run(&api, Some(Role::Operator), list).await),
        "FORBIDDEN"
    );
    let resp = run(&api, Some(Role::Admin), list).await;
    assert_eq!(data(&resp)["apiTokens"][0]["role"], "VIEWER");
    assert!(!resp.to_string().contains(token.expose_secret()));
    let resp = run(
        &api,
        Some(Role::Admin),
        &format!(
            r#"mutation {{ revokeApiToken(id: "{}") {{ revokedAt }} }}"#,
            info.id
        ),
    )
    .await;
    assert!(data(&resp)["revokeApiToken"]["revokedAt"].is_string());
    assert!(
        tokens::authenticate(&mut conn, token.expose_secret())
            .await
            .unwrap()
            .is_none()
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn every_query_needs_a_caller(pool: sqlx::PgPool) {
    let api = api(pool);
    let resp = run(&api, None, "{ clusters { edges { cursor } } }").await;
    assert_eq!(code(&resp), "UNAUTHENTICATED");
}

fn limited(pool: &sqlx::PgPool, max_depth: usize, max_complexity: usize) -> Api {
    Api::new(
        Store::from_pool(pool.clone()),
        ApiOptions {
            limits: Limits {
                max_depth,
                max_complexity,
                max_query_bytes: 200,
                ..Limits::default()
            },
            ..ApiOptions::default()
        },
    )
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn depth_complexity_and_size_limits_reject_queries(pool: sqlx::PgPool) {
    let deep = "{ links { edges { node { source { name } } } } }";
    let resp = run(&limited(&pool, 4, 100_000), Some(Role::Viewer), deep).await;
    assert_eq!(code(&resp), "BAD_USER_INPUT");
    assert!(
        resp["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nested too deep"),
        "{resp}"
    );
    let resp = run(&limited(&pool, 5, 100_000), Some(Role::Viewer), deep).await;
    data(&resp);
    let costly = "{ mirrors(first: 100) { edges { node { id } } } }";
    let resp = run(&limited(&pool, 20, 50), Some(Role::Viewer), costly).await;
    assert!(
        resp["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too complex"),
        "{resp}"
    );
    let cheap = "{ mirrors(first: 5) { edges { node { id } } } }";
    data(&run(&limited(&pool, 20, 50), Some(Role::Viewer), cheap).await);
    let big = format!("{{ links {{ edges {{ cursor }} }} }} #{}", "x".repeat(300));
    let resp = run(&limited(&pool, 20, 100_000), Some(Role::Viewer), &big).await;
    assert_eq!(code(&resp), "BAD_USER_INPUT");
    assert!(
        resp["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("limit")
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn repeated_queries_are_checked_like_new_ones(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 1).await;
    let api = limited(&pool, 4, 100_000);
    // The second run of each query uses the parsed document kept from the first.
    for _ in 0..2 {
        let resp = run(&api, Some(Role::Viewer), "{ links { edges { cursor } } }").await;
        assert_eq!(data(&resp)["links"]["edges"].as_array().unwrap().len(), 6);
        let deep = run(
            &api,
            Some(Role::Viewer),
            "{ links { edges { node { source { name } } } } }",
        )
        .await;
        assert!(
            deep["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("nested too deep")
        );
        let broken = run(&api, Some(Role::Viewer), "{ links { edges ").await;
        assert_eq!(code(&broken), "BAD_USER_INPUT");
        let anonymous = run(&api, None, "{ links { edges { cursor } } }").await;
        assert_eq!(code(&anonymous), "UNAUTHENTICATED");
    }
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn topology_events_deliver_mirror_and_gateway_changes(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 0).await;
    let api = api(pool);
    let request = api.prepare(
        "subscription { topologyEvents(kinds: [MIRROR]) { kind link namespace name state } }",
        as_role(Role::Viewer),
    );
    let mut stream = api.schema().execute_stream(request);
    // The first poll subscribes (LISTEN) before any change is made.
    let first = tokio::spawn(async move { (stream.next().await, stream) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A gateway event (filtered out) and then a mirror event.
    linkplane_store::gateways::record(&mut conn, "c00-from-c01", false, None, 3, Some("down"))
        .await
        .unwrap();
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
            state: mirrors::MirrorState::Conflict,
            message: "taken".into(),
        },
    )
    .await
    .unwrap();
    let (resp, _stream) = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .unwrap()
        .unwrap();
    let resp = serde_json::to_value(resp.unwrap()).unwrap();
    assert_eq!(
        data(&resp)["topologyEvents"],
        json!({"kind": "MIRROR", "link": "c00-from-c01", "namespace": "shop", "name": "web", "state": "CONFLICT"})
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn cluster_gateway_and_mirror_events_name_their_cluster(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 0).await;
    let api = api(pool);
    let request = api.prepare(
        "subscription { topologyEvents(kinds: [CLUSTER, GATEWAY, MIRROR]) {
            kind cluster link reconcilerState alive state deleted } }",
        as_role(Role::Viewer),
    );
    let stream = api.schema().execute_stream(request);
    let collect = tokio::spawn(async move { stream.take(3).collect::<Vec<_>>().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // c01's reconciler fails (cluster health), the gateway of c00-from-c01 (c01's) dies, and a
    // mirror held by c00 is deleted.
    linkplane_store::reconcilers::set(
        &mut conn,
        "c01",
        linkplane_store::reconcilers::ReconcilerState::Failed,
        "connection refused",
        false,
    )
    .await
    .unwrap();
    linkplane_store::gateways::record(&mut conn, "c00-from-c01", false, None, 3, Some("down"))
        .await
        .unwrap();
    let status = mirrors::MirrorStatus {
        link: "c00-from-c01".into(),
        source_cluster: "c00".into(),
        target_cluster: "c01".into(),
        namespace: "shop".into(),
        remote_name: "web".into(),
        local_name: "web-c01".into(),
        mode: "gateway".into(),
        headless: false,
        state: mirrors::MirrorState::Mirrored,
        message: String::new(),
    };
    mirrors::upsert(&mut conn, &status).await.unwrap();
    let events = tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .unwrap()
        .unwrap();
    let events: Vec<Value> = events
        .into_iter()
        .map(|r| serde_json::to_value(r).unwrap()["data"]["topologyEvents"].clone())
        .collect();
    assert_eq!(
        events,
        [
            json!({"kind": "CLUSTER", "cluster": "c01", "link": null, "reconcilerState": "FAILED",
                   "alive": null, "state": null, "deleted": false}),
            json!({"kind": "GATEWAY", "cluster": "c01", "link": "c00-from-c01", "reconcilerState": null,
                   "alive": false, "state": null, "deleted": false}),
            json!({"kind": "MIRROR", "cluster": "c00", "link": "c00-from-c01", "reconcilerState": null,
                   "alive": null, "state": "MIRRORED", "deleted": false}),
        ]
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn subscriptions_need_a_caller(pool: sqlx::PgPool) {
    let api = api(pool);
    let request = api.prepare("subscription { topologyEvents { kind } }", None);
    let resp = api.schema().execute_stream(request).next().await.unwrap();
    let resp = serde_json::to_value(resp).unwrap();
    assert_eq!(code(&resp), "UNAUTHENTICATED");
}

/// Runs `query` on fleets of 3 and 12 clusters and returns the SQL statement counts.
async fn statements_for(
    pool_small: sqlx::PgPool,
    pool_big: sqlx::PgPool,
    query: &str,
) -> (u64, u64) {
    let mut counts = Vec::new();
    for (pool, n) in [(pool_small, 3), (pool_big, 12)] {
        let mut conn = pool.acquire().await.unwrap();
        seed_fleet(&mut conn, n, 3).await;
        let api = api(pool);
        let before = api.db().statements();
        let resp = run(&api, Some(Role::Viewer), query).await;
        data(&resp);
        counts.push(api.db().statements() - before);
    }
    (counts[0], counts[1])
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn topology_costs_a_constant_number_of_statements(pool: sqlx::PgPool) {
    // A second database for the bigger fleet: same schema, created by the test harness.
    let big = fresh_db(&pool).await;
    let q = "{ topology { nodes { name health gatewayAlive gatewayLatencyMs reconciler { state }
                 mirrorCounts { total } hasStoredCredentials exportedServices { name consumers { state } } }
               edges { name paused source { name } target { name } gateway { alive } mirrorCounts { total }
                 mirrors(first: 2) { edges { node { state } } } } } }";
    let (small, large) = statements_for(pool, big, q).await;
    assert_eq!(small, large, "statements must not grow with the fleet");
    assert!(small <= 12, "topology ran {small} statements");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn clusters_with_links_cost_a_constant_number_of_statements(pool: sqlx::PgPool) {
    let big = fresh_db(&pool).await;
    let q = "{ clusters { edges { node { name outgoingLinks { name target { name health } gateway { alive } }
               incomingLinks { name mirrorCounts { total } } mirrors(first: 3) { edges { node { link { paused } } } } } } } }";
    let (small, large) = statements_for(pool, big, q).await;
    assert_eq!(small, large, "statements must not grow with the fleet");
}

/// A second, migrated database next to the one `#[sqlx::test]` made (dropped with the server's
/// test databases; named after the first one so parallel tests never collide).
async fn fresh_db(pool: &sqlx::PgPool) -> sqlx::PgPool {
    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    // Identifiers are cut at 63 bytes, so derive a short name rather than append to a long one.
    let name = format!("lpbig_{}", &current[current.len().saturating_sub(40)..]);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\""
    )))
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(pool)
        .await
        .unwrap();
    let opts = pool.connect_options().as_ref().clone().database(&name);
    let big = sqlx::PgPool::connect_with(opts).await.unwrap();
    linkplane_store::MIGRATOR.run(&big).await.unwrap();
    big
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn whoami_answers_the_calling_tokens_name_and_role_for_every_role(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let (info, _secret) = tokens::issue(&mut conn, tokens::Role::Viewer, "dashboards")
        .await
        .unwrap();
    let api = api(pool);
    let query = "{ whoami { tokenId name role } }";
    assert_eq!(code(&run(&api, None, query).await), "UNAUTHENTICATED");
    let viewer = linkplane_schema::Principal {
        token_id: Some(info.id),
        role: Role::Viewer,
    };
    let resp = serde_json::to_value(api.execute(query, Some(viewer)).await).unwrap();
    assert_eq!(
        data(&resp)["whoami"],
        json!({"tokenId": info.id.to_string(), "name": "dashboards", "role": "VIEWER"})
    );
    // In-process callers hold no token.
    let resp = run(&api, Some(Role::Admin), query).await;
    assert_eq!(
        data(&resp)["whoami"],
        json!({"tokenId": null, "name": "", "role": "ADMIN"})
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn replicas_and_cluster_leases_show_who_runs_what(pool: sqlx::PgPool) {
    use linkplane_store::leases;
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 1).await;
    let d = Duration::from_secs(30);
    leases::heartbeat(&mut conn, "pod-a-1", "pod-a", d)
        .await
        .unwrap();
    leases::heartbeat(&mut conn, "pod-b-2", "pod-b", d)
        .await
        .unwrap();
    assert_eq!(
        leases::acquire(&mut conn, "c00", "pod-a-1", d)
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        leases::acquire(&mut conn, "c01", "pod-b-2", d)
            .await
            .unwrap(),
        Some(1)
    );
    leases::release(&mut conn, "c01", "pod-b-2").await.unwrap();
    assert_eq!(
        leases::acquire(&mut conn, "c01", "pod-a-1", d)
            .await
            .unwrap(),
        Some(2)
    );
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Viewer),
        r#"{ replicas { id name alive clusters }
             a: cluster(name: "c00") { lease { replica epoch expiresAt } }
             b: cluster(name: "c01") { lease { replica epoch } }
             c: cluster(name: "c02") { lease { replica } } }"#,
    )
    .await;
    let d = data(&resp);
    assert_eq!(
        d["replicas"],
        json!([
            { "id": "pod-a-1", "name": "pod-a", "alive": true, "clusters": ["c00", "c01"] },
            { "id": "pod-b-2", "name": "pod-b", "alive": true, "clusters": [] },
        ])
    );
    assert_eq!(d["a"]["lease"]["replica"], "pod-a-1");
    assert_eq!(d["a"]["lease"]["epoch"], 1);
    assert!(d["a"]["lease"]["expiresAt"].is_string());
    assert_eq!(d["b"]["lease"], json!({ "replica": "pod-a-1", "epoch": 2 }));
    assert_eq!(d["c"]["lease"], Value::Null);
}

/// `pendingLinkCleanups` counts removed links whose mirrors are still to be deleted from the
/// clusters (the durable clean-up a link's deletion records in its own transaction), so a client
/// waiting for convergence (`linkplane sync --wait`) can follow deletions that the mirror counts
/// cannot show: the rows go with the link at once.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn pending_link_cleanups_follow_removed_links(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 0).await;
    let api = api(pool.clone());
    let q = "{ pendingLinkCleanups links(first: 10) { nodes { name } } }";
    let resp = run(&api, Some(Role::Viewer), q).await;
    assert_eq!(data(&resp)["pendingLinkCleanups"], 0, "{resp}");
    let name = data(&resp)["links"]["nodes"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        linkplane_store::links::delete(&mut conn, &name)
            .await
            .unwrap()
    );
    let resp = run(&api, Some(Role::Viewer), q).await;
    assert_eq!(data(&resp)["pendingLinkCleanups"], 1, "{resp}");
}
