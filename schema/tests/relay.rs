//! Relay Cursor Connections in both directions on every Postgres-paged connection (mirrors,
//! exported services, federated services, the audit log, a blast radius's mirrors, a cluster's
//! and a link's mirrors), and `node(id:)` for mirrors, services and federated services, against
//! a real, migrated database per test.
//!
//! Each list is walked forwards (`first`/`after`) and backwards (`last`/`before`) page by page;
//! both walks must meet the same items in the same order with `pageInfo` true exactly where the
//! spec says (relay.dev/graphql/connections.htm, "EdgesToReturn" and "PageInfo").
#![allow(clippy::unwrap_used)]

mod support;

use linkplane_schema::{Api, Role};
use linkplane_store::{
    audit,
    federation::{self, FederatedState, FederatedStatus, MemberState, MemberStatus},
    tokens,
};
use serde_json::Value;
use support::{api, as_role, seed_fleet};

async fn run(api: &Api, query: &str) -> Value {
    let resp = api.execute(query, as_role(Role::Operator)).await;
    serde_json::to_value(&resp).unwrap()
}

/// The connection at `path` (dot-separated) of a response without errors.
fn at<'a>(resp: &'a Value, path: &str) -> &'a Value {
    assert!(
        resp.get("errors").is_none(),
        "unexpected errors: {}",
        resp["errors"]
    );
    path.split('.')
        .filter(|k| !k.is_empty())
        .fold(&resp["data"], |v, k| &v[k])
}

fn cursors(conn: &Value) -> Vec<String> {
    conn["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().to_string())
        .collect()
}

/// `template` has `ARGS` where the paging arguments go and selects
/// `pageInfo { hasPreviousPage hasNextPage startCursor endCursor } totalCount edges { cursor }`
/// at `path`. Walks the whole list both ways with pages of `k` and returns it.
async fn walk_both_ways(api: &Api, template: &str, path: &str, k: usize) -> Vec<String> {
    let q = |args: String| template.replace("ARGS", &args);
    // Forwards.
    let mut forward = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let args = match &after {
            None => format!("first: {k}"),
            Some(a) => format!("first: {k}, after: \"{a}\""),
        };
        let resp = run(api, &q(args)).await;
        let conn = at(&resp, path);
        let page = cursors(conn);
        let info = &conn["pageInfo"];
        assert_eq!(info["hasPreviousPage"], after.is_some(), "{path} {info}");
        forward.extend(page.iter().cloned());
        if info["hasNextPage"] == false {
            break;
        }
        assert_eq!(page.len(), k, "a page before the end is full");
        after = Some(info["endCursor"].as_str().unwrap().to_string());
    }
    let total = {
        let resp = run(api, &q(format!("first: {k}"))).await;
        at(&resp, path)["totalCount"].as_i64().unwrap()
    };
    assert_eq!(total as usize, forward.len(), "{path}: totalCount");
    // Backwards.
    let mut backward: Vec<String> = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let args = match &before {
            None => format!("last: {k}"),
            Some(b) => format!("last: {k}, before: \"{b}\""),
        };
        let resp = run(api, &q(args)).await;
        let conn = at(&resp, path);
        let page = cursors(conn);
        let info = &conn["pageInfo"];
        assert_eq!(info["hasNextPage"], before.is_some(), "{path} {info}");
        if !page.is_empty() {
            assert_eq!(info["startCursor"].as_str(), Some(page[0].as_str()));
        }
        let mut next = page.clone();
        next.extend(backward);
        backward = next;
        if info["hasPreviousPage"] == false {
            break;
        }
        assert_eq!(page.len(), k, "a page before the start is full");
        before = Some(info["startCursor"].as_str().unwrap().to_string());
    }
    assert_eq!(forward, backward, "{path}: both walks meet the same items");
    // first and last together: the tail of the `first` slice (spec: EdgesToReturn).
    if forward.len() >= 3 {
        let resp = run(api, &q("first: 3, last: 2".into())).await;
        let conn = at(&resp, path);
        assert_eq!(cursors(conn), forward[1..3].to_vec(), "{path}: first+last");
        assert_eq!(conn["pageInfo"]["hasPreviousPage"], true);
        assert_eq!(
            conn["pageInfo"]["hasNextPage"],
            forward.len() > 3,
            "{path}: first+last hasNextPage"
        );
    }
    // Both cursors: the items strictly between.
    if forward.len() >= 4 {
        let args = format!(
            "first: 100, after: \"{}\", before: \"{}\"",
            forward[0], forward[3]
        );
        let resp = run(api, &q(args)).await;
        assert_eq!(cursors(at(&resp, path)), forward[1..3].to_vec());
    }
    // Negative counts are refused with BAD_USER_INPUT (spec: "If first is less than 0: Throw").
    for args in ["first: -1", "last: -1", "last: 501"] {
        let resp = run(api, &q(args.into())).await;
        assert_eq!(
            resp["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{path} {args}: {resp}"
        );
    }
    forward
}

const PAGE: &str =
    "pageInfo { hasPreviousPage hasNextPage startCursor endCursor } totalCount edges { cursor }";

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn mirrors_and_services_page_both_ways(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 7).await;
    let api = api(pool);
    let all = walk_both_ways(
        &api,
        &format!("{{ mirrors(ARGS) {{ {PAGE} }} }}"),
        "mirrors",
        4,
    )
    .await;
    assert_eq!(all.len(), 6 * 7);
    let ids: Vec<i64> = all.iter().map(|c| c.parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "mirrors in id order");
    // Filtered, and nested under a cluster and a link (backward pages there too).
    let some = walk_both_ways(
        &api,
        &format!(r#"{{ mirrors(cluster: "c01", namespace: "ns3", ARGS) {{ {PAGE} }} }}"#),
        "mirrors",
        1,
    )
    .await;
    assert_eq!(some.len(), 2);
    let held = walk_both_ways(
        &api,
        &format!(r#"{{ cluster(name: "c01") {{ mirrors(ARGS) {{ {PAGE} }} }} }}"#),
        "cluster.mirrors",
        5,
    )
    .await;
    assert_eq!(held.len(), 14);
    let linked = walk_both_ways(
        &api,
        &format!(r#"{{ link(name: "c01-from-c02") {{ mirrors(ARGS) {{ {PAGE} }} }} }}"#),
        "link.mirrors",
        3,
    )
    .await;
    assert_eq!(linked.len(), 7);
    let services = walk_both_ways(
        &api,
        &format!("{{ services(ARGS) {{ {PAGE} }} }}"),
        "services",
        4,
    )
    .await;
    assert_eq!(services.len(), 3 * 7, "one per (target, namespace, name)");
    let mut sorted = services.clone();
    sorted.sort();
    assert_eq!(services, sorted, "services in key order");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn federated_services_and_the_audit_log_page_both_ways(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 0).await;
    for i in 0..5 {
        federation::upsert(
            &mut conn,
            &FederatedStatus {
                source_cluster: "c00".into(),
                namespace: "shop".into(),
                service: format!("web{i}"),
                local_name: format!("web{i}-federated"),
                state: FederatedState::Federated,
                message: String::new(),
                remote_discovery: "web@c01".into(),
                local_discovery: true,
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
    }
    for i in 0..7 {
        audit::record(
            &mut conn,
            &audit::NewEntry {
                token_id: None,
                role: tokens::Role::Operator,
                mutation: &format!("m{i}"),
                arguments: serde_json::json!({}),
                result: "OK",
            },
        )
        .await
        .unwrap();
    }
    let api = api(pool);
    let fed = walk_both_ways(
        &api,
        &format!("{{ federatedServices(ARGS) {{ {PAGE} }} }}"),
        "federatedServices",
        2,
    )
    .await;
    assert_eq!(fed.len(), 5);
    let log = walk_both_ways(
        &api,
        &format!("{{ auditLog(ARGS) {{ {PAGE} }} }}"),
        "auditLog",
        3,
    )
    .await;
    let ids: Vec<i64> = log.iter().map(|c| c.parse().unwrap()).collect();
    assert_eq!(ids.len(), 7);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn a_blast_radius_pages_its_mirrors(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 5).await;
    let api = api(pool);
    let paged = walk_both_ways(
        &api,
        &format!(r#"{{ blastRadius(cluster: "c01") {{ mirrorPage(ARGS) {{ {PAGE} }} }} }}"#),
        "blastRadius.mirrorPage",
        3,
    )
    .await;
    let resp = run(
        &api,
        r#"{ blastRadius(cluster: "c01") { mirrors { id } } }"#,
    )
    .await;
    let mut listed: Vec<i64> = at(&resp, "blastRadius.mirrors")
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().parse().unwrap())
        .collect();
    listed.sort();
    let paged: Vec<i64> = paged.iter().map(|c| c.parse().unwrap()).collect();
    assert!(!paged.is_empty());
    assert_eq!(paged, listed, "the pages hold exactly the listed mirrors");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn mirrors_services_and_federated_services_are_nodes(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 2).await;
    federation::upsert(
        &mut conn,
        &FederatedStatus {
            source_cluster: "c00".into(),
            namespace: "shop".into(),
            service: "web".into(),
            local_name: "web-federated".into(),
            state: FederatedState::Federated,
            message: String::new(),
            remote_discovery: "web@c01".into(),
            local_discovery: false,
            members: vec![],
        },
    )
    .await
    .unwrap();
    let api = api(pool);
    let resp = run(
        &api,
        "{ mirrors(first: 1) { edges { node { id globalId localName } } }
           services(first: 1) { edges { node { id globalId name } } }
           federatedServices(first: 1) { edges { node { id globalId localName } } } }",
    )
    .await;
    let m = &at(&resp, "mirrors")["edges"][0]["node"];
    let s = &at(&resp, "services")["edges"][0]["node"];
    let f = &at(&resp, "federatedServices")["edges"][0]["node"];
    // The old `id` keeps its value; `globalId` is `<Type>:<key>`.
    assert_eq!(
        m["globalId"],
        format!("Mirror:{}", m["id"].as_str().unwrap())
    );
    assert_eq!(
        s["globalId"],
        format!("Service:{}", s["id"].as_str().unwrap())
    );
    assert_eq!(
        f["globalId"],
        format!("FederatedService:{}", f["id"].as_str().unwrap())
    );
    let q = format!(
        r#"{{ m: node(id: {m}) {{ __typename ... on Mirror {{ globalId localName }} }}
             s: node(id: {s}) {{ __typename ... on Service {{ globalId name }} }}
             f: node(id: {f}) {{ __typename ... on FederatedService {{ globalId localName }} }}
             gone: node(id: "Mirror:999999") {{ __typename }}
             goneService: node(id: "Service:c00/nope/nope") {{ __typename }} }}"#,
        m = m["globalId"],
        s = s["globalId"],
        f = f["globalId"],
    );
    let resp = run(&api, &q).await;
    let d = at(&resp, "");
    assert_eq!(d["m"]["__typename"], "Mirror");
    assert_eq!(d["m"]["localName"], m["localName"]);
    assert_eq!(d["m"]["globalId"], m["globalId"]);
    assert_eq!(d["s"]["__typename"], "Service");
    assert_eq!(d["s"]["name"], s["name"]);
    assert_eq!(d["f"]["__typename"], "FederatedService");
    assert_eq!(d["f"]["localName"], "web-federated");
    assert_eq!(d["gone"], Value::Null);
    assert_eq!(d["goneService"], Value::Null);
    let resp = run(&api, r#"{ node(id: "Mirror:abc") { __typename } }"#).await;
    assert_eq!(resp["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}
