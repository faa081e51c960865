//! GraphQL spec compliance and client compatibility, in-process against a real database:
//! introspection at the default limits, response field order, `null` for failed nullable
//! fields, limit errors that name their flag, enums for closed sets.
#![allow(clippy::unwrap_used)]

mod support;

use linkplane_schema::{Api, ApiOptions, Limits, Role};
use linkplane_store::Store;
use serde_json::Value;
use support::{api, as_role, seed_fleet};

async fn run(api: &Api, role: Option<Role>, query: &str) -> Value {
    let resp = api.execute(query, role.and_then(as_role)).await;
    serde_json::to_value(&resp).unwrap()
}

/// The response exactly as serialized (key order included: async-graphql's values are ordered).
async fn run_text(api: &Api, role: Option<Role>, query: &str) -> String {
    let resp = api.execute(query, role.and_then(as_role)).await;
    serde_json::to_string(&resp).unwrap()
}

fn no_errors(resp: &Value) {
    assert!(resp.get("errors").is_none(), "errors: {}", resp["errors"]);
}

/// graphql-js 16's `getIntrospectionQuery()` (what Apollo, Postman, Altair, graphql-codegen
/// and Grafana send) and the same with every option on (GraphiQL 4 sends a subset of these);
/// both nest 15 deep, past the data depth limit of 12.
const INTROSPECTION: [&str; 2] = [
    include_str!("fixtures/introspection-graphql-js-16.graphql"),
    include_str!("fixtures/introspection-graphql-js-16-all-options.graphql"),
];

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn standard_introspection_passes_at_the_default_limits(pool: sqlx::PgPool) {
    let api = api(pool);
    assert_eq!(api.limits(), Limits::default());
    for query in INTROSPECTION {
        // Introspection holds no data, but every request still needs a caller.
        let resp = run(&api, Some(Role::Viewer), query).await;
        no_errors(&resp);
        let types = resp["data"]["__schema"]["types"].as_array().unwrap();
        assert!(types.iter().any(|t| t["name"] == "GitSource"));
    }
    // The introspection depth limit still bounds introspection-only queries.
    let mut deep = String::from("{ __schema { types { fields { type ");
    for _ in 0..20 {
        deep.push_str("{ ofType ");
    }
    deep.push_str("{ name }");
    for _ in 0..20 {
        deep.push_str(" }");
    }
    deep.push_str(" } } } }");
    let resp = run(&api, Some(Role::Viewer), &deep).await;
    let message = resp["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("--graphql-max-introspection-depth") && message.contains("20"),
        "{message}"
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn introspection_mixed_with_data_keeps_the_data_depth_limit(pool: sqlx::PgPool) {
    let api = api(pool);
    let mut q = String::from(INTROSPECTION[0]);
    // Add a data field to the root: the whole operation is held to --graphql-max-depth.
    q = q.replacen("__schema {", "clusters { edges { cursor } } __schema {", 1);
    let resp = run(&api, Some(Role::Viewer), &q).await;
    let message = resp["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("nested too deep"), "{message}");
    assert!(
        message.contains("12 levels (--graphql-max-depth"),
        "{message}"
    );
    assert_eq!(resp["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn a_dashboards_clusters_mirrors_query_passes_the_default_complexity(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 4, 3).await;
    let api = api(pool);
    let q = "{ clusters { pageInfo { hasNextPage endCursor } edges { node { name health
              mirrors { pageInfo { hasNextPage endCursor } edges { cursor node {
                id namespace remoteName localName targetCluster mode state message lastTransition
              } } } } } } }";
    let resp = run(&api, Some(Role::Viewer), q).await;
    no_errors(&resp);
    assert_eq!(
        resp["data"]["clusters"]["edges"].as_array().unwrap().len(),
        4
    );
    // A page of 500 under a page of 500 is still refused, naming the limit and its flag.
    let q = "{ clusters(first: 500) { edges { node { mirrors(first: 500) { edges { node {
              id namespace remoteName } } } } } } }";
    let resp = run(&api, Some(Role::Viewer), q).await;
    let message = resp["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("too complex"), "{message}");
    assert!(
        message.contains("200000 (--graphql-max-complexity"),
        "{message}"
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn response_fields_come_back_in_request_order(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 4, 3).await;
    let api = api(pool);
    // Fields that load (mirrorCounts, exportedServices, labels, mirrors) interleaved with plain
    // ones, an alias, a fragment and an inline fragment: the general (resolver) path, whose
    // fields finish in any order.
    let q = r#"{ zz: topology { edges { name } }
        cluster(name: "c01") {
          mirrors(first: 2) { edges { node { state localName } } }
          name
          ... on Cluster { labels { value key } health }
          exportedServices { namespace name }
          ...F
          apiServer
        }
        links(first: 2) { edges { node { paused mirrorCounts { total conflict } name } } }
      }
      fragment F on Cluster { mirrorCounts { total mirrored } owner }"#;
    let mut first: Option<String> = None;
    for _ in 0..10 {
        let resp = api.execute(q, as_role(Role::Viewer)).await;
        assert!(resp.errors.is_empty(), "{:?}", resp.errors);
        // async-graphql's Value keeps insertion order: read the keys as answered.
        let root = &resp.data;
        assert_eq!(keys(root), ["zz", "cluster", "links"]);
        let cluster = field(root, "cluster");
        assert_eq!(
            keys(cluster),
            [
                "mirrors",
                "name",
                "labels",
                "health",
                "exportedServices",
                "mirrorCounts",
                "owner",
                "apiServer"
            ]
        );
        assert_eq!(keys(field(cluster, "mirrorCounts")), ["total", "mirrored"]);
        let label = &list(field(cluster, "labels"))[0];
        assert_eq!(keys(label), ["value", "key"]);
        let mirror = field(&list(field(field(cluster, "mirrors"), "edges"))[0], "node");
        assert_eq!(keys(mirror), ["state", "localName"]);
        let link = field(&list(field(field(root, "links"), "edges"))[0], "node");
        assert_eq!(keys(link), ["paused", "mirrorCounts", "name"]);
        assert_eq!(keys(field(link, "mirrorCounts")), ["total", "conflict"]);
        let text = serde_json::to_string(&resp).unwrap();
        match &first {
            None => first = Some(text),
            Some(f) => assert_eq!(f, &text, "identical requests, different answers"),
        }
    }
}

fn keys(v: &async_graphql::Value) -> Vec<&str> {
    match v {
        async_graphql::Value::Object(m) => m.keys().map(|k| k.as_str()).collect(),
        other => panic!("not an object: {other}"),
    }
}

fn field<'v>(v: &'v async_graphql::Value, key: &str) -> &'v async_graphql::Value {
    match v {
        async_graphql::Value::Object(m) => m.get(key).unwrap_or_else(|| panic!("no {key}")),
        other => panic!("not an object: {other}"),
    }
}

fn list(v: &async_graphql::Value) -> &[async_graphql::Value] {
    match v {
        async_graphql::Value::List(items) => items,
        other => panic!("not a list: {other}"),
    }
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn a_forbidden_nullable_field_is_null_with_an_error(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 0).await;
    let api = api(pool);
    let text = run_text(
        &api,
        Some(Role::Viewer),
        r#"{ cluster(name: "c01") { name credentialsReference apiServer } }"#,
    )
    .await;
    let resp: Value = serde_json::from_str(&text).unwrap();
    // Spec §6.4.4: the field is null, the error names its path, the siblings are answered.
    let cluster = &resp["data"]["cluster"];
    assert_eq!(cluster["credentialsReference"], Value::Null);
    assert!(
        text.contains(r#""credentialsReference":null"#),
        "field missing: {text}"
    );
    assert_eq!(cluster["name"], "c01");
    assert_eq!(cluster["apiServer"], "https://c1.example.com:6443");
    assert_eq!(resp["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert_eq!(
        resp["errors"][0]["path"],
        serde_json::json!(["cluster", "credentialsReference"])
    );
    let order = ["\"name\"", "\"credentialsReference\"", "\"apiServer\""];
    let at: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn closed_sets_are_enums(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 4).await;
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Viewer),
        "{ mirrors(first: 8) { edges { node { mode state } } }
           clusters(first: 1) { edges { node { reconciler { state } } } } }",
    )
    .await;
    no_errors(&resp);
    let modes: Vec<&str> = resp["data"]["mirrors"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["mode"].as_str().unwrap())
        .collect();
    // seed_fleet: every fourth service is remote-discovery.
    assert!(
        modes.contains(&"REMOTE_DISCOVERY") && modes.contains(&"GATEWAY"),
        "{modes:?}"
    );
    assert_eq!(
        resp["data"]["clusters"]["edges"][0]["node"]["reconciler"]["state"],
        "DEGRADED"
    );
    // The SDL declares them as enums.
    let sdl = linkplane_schema::sdl();
    for decl in [
        "mode: MirrorMode!",
        "state: ReconcilerState!",
        "result: SyncResult!",
        "trigger: SyncTrigger!",
        "state: MirrorState\n",
        "modes: [MirrorMode!]!",
        "change: DriftChange!",
    ] {
        assert!(sdl.contains(decl), "SDL lacks {decl:?}");
    }
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn the_depth_limit_error_names_the_flag(pool: sqlx::PgPool) {
    let api = Api::new(
        Store::from_pool(pool),
        ApiOptions {
            limits: Limits {
                max_depth: 3,
                ..Limits::default()
            },
            ..ApiOptions::default()
        },
    );
    let resp = run(
        &api,
        Some(Role::Viewer),
        "{ links { edges { node { source { name } } } } }",
    )
    .await;
    let message = resp["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("at most 3 levels (--graphql-max-depth"),
        "{message}"
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn connections_count_every_page(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 4, 60).await;
    let api = api(pool);
    // Relay's totalCount: the whole list, whatever the page size.
    let resp = run(
        &api,
        Some(Role::Viewer),
        r#"{ clusters(first: 1) { totalCount edges { node { name
               mirrorCounts { total conflict }
               mirrors(first: 1) { totalCount }
               conflicts: mirrors(first: 1, state: CONFLICT) { totalCount }
               ns1: mirrors(first: 1, namespace: "ns1") { totalCount } } } }
             links(first: 1) { totalCount }
             all: mirrors(first: 1) { totalCount }
             west: mirrors(first: 1, cluster: "c00", namespace: "ns1") { totalCount }
             gitSources { totalCount }
             exportPolicies { totalCount } }"#,
    )
    .await;
    no_errors(&resp);
    let d = &resp["data"];
    assert_eq!(d["clusters"]["totalCount"], 4);
    assert_eq!(d["links"]["totalCount"], 8);
    // 8 links × 60 services.
    assert_eq!(d["all"]["totalCount"], 480);
    let c0 = &d["clusters"]["edges"][0]["node"];
    assert_eq!(c0["mirrors"]["totalCount"], c0["mirrorCounts"]["total"]);
    assert_eq!(
        c0["conflicts"]["totalCount"],
        c0["mirrorCounts"]["conflict"]
    );
    // Two links of c00 × services 1, 11, …, 51 in ns1.
    assert_eq!(c0["ns1"]["totalCount"], 12);
    assert_eq!(d["west"]["totalCount"], 12);
    assert_eq!(d["gitSources"]["totalCount"], 0);
    assert_eq!(d["exportPolicies"]["totalCount"], 0);
    // The plain pass answers totalCount too (same value through the fast path).
    let resp = run(
        &api,
        Some(Role::Viewer),
        "{ clusters(first: 2) { totalCount pageInfo { hasNextPage } edges { cursor } } }",
    )
    .await;
    assert_eq!(resp["data"]["clusters"]["totalCount"], 4);
    assert_eq!(resp["data"]["clusters"]["pageInfo"]["hasNextPage"], true);
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn nodes_are_refetched_by_global_id(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 3, 1).await;
    let api = api(pool);
    let resp = run(
        &api,
        Some(Role::Viewer),
        "{ clusters(first: 1) { edges { node { id name } } } links(first: 1) { edges { node { id } } } }",
    )
    .await;
    no_errors(&resp);
    let cluster_id = resp["data"]["clusters"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(cluster_id, "Cluster:c00");
    let link_id = resp["data"]["links"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = run(
        &api,
        Some(Role::Viewer),
        &format!(
            r#"{{ c: node(id: "{cluster_id}") {{ __typename id ... on Cluster {{ name health }} ... on Link {{ sourceName }} }}
                 l: node(id: "{link_id}") {{ __typename ... on Link {{ sourceName targetName }} id }}
                 gone: node(id: "Cluster:nope") {{ id }} }}"#
        ),
    )
    .await;
    no_errors(&resp);
    let d = &resp["data"];
    assert_eq!(
        d["c"],
        serde_json::json!({"__typename": "Cluster", "id": "Cluster:c00", "name": "c00", "health": "DEGRADED"})
    );
    assert_eq!(d["l"]["__typename"], "Link");
    assert_eq!(d["l"]["id"], link_id.as_str());
    assert_eq!(d["gone"], Value::Null);
    // Interface fields come back in request order too.
    let answer = api
        .execute(
            format!(r#"{{ node(id: "{link_id}") {{ id ... on Link {{ targetName sourceName }} __typename }} }}"#),
            as_role(Role::Viewer),
        )
        .await;
    let text = serde_json::to_string(&answer.data).unwrap();
    let at = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
    assert!(
        at("id") < at("targetName")
            && at("targetName") < at("sourceName")
            && at("sourceName") < at("__typename"),
        "{text}"
    );
    let resp = run(
        &api,
        Some(Role::Viewer),
        r#"{ node(id: "nonsense") { id } }"#,
    )
    .await;
    assert_eq!(resp["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn lists_page_backwards_with_last_and_before(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 5, 0).await;
    let api = api(pool);
    let names = |resp: &Value| -> Vec<String> {
        resp["data"]["clusters"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let q = |args: &str| {
        format!(
            "{{ clusters({args}) {{ pageInfo {{ hasPreviousPage hasNextPage startCursor endCursor }} edges {{ node {{ name }} }} }} }}"
        )
    };
    // Relay: the last two, then the two before them.
    let resp = run(&api, Some(Role::Viewer), &q("last: 2")).await;
    no_errors(&resp);
    assert_eq!(names(&resp), ["c03", "c04"]);
    let info = &resp["data"]["clusters"]["pageInfo"];
    assert_eq!(info["hasPreviousPage"], true);
    assert_eq!(info["hasNextPage"], false);
    let resp = run(&api, Some(Role::Viewer), &q(r#"last: 2, before: "c03""#)).await;
    assert_eq!(names(&resp), ["c01", "c02"]);
    assert_eq!(resp["data"]["clusters"]["pageInfo"]["hasNextPage"], true);
    let resp = run(&api, Some(Role::Viewer), &q(r#"last: 5, before: "c01""#)).await;
    assert_eq!(names(&resp), ["c00"]);
    assert_eq!(
        resp["data"]["clusters"]["pageInfo"]["hasPreviousPage"],
        false
    );
    // Forward paging bounded by `before`.
    let resp = run(
        &api,
        Some(Role::Viewer),
        &q(r#"first: 10, after: "c00", before: "c03""#),
    )
    .await;
    assert_eq!(names(&resp), ["c01", "c02"]);
    // Both counts: `first` slices first, `last` takes the tail of that (Relay Cursor
    // Connections spec, EdgesToReturn); negative counts are refused.
    let resp = run(&api, Some(Role::Viewer), &q("first: 3, last: 1")).await;
    assert_eq!(names(&resp), ["c02"]);
    let info = &resp["data"]["clusters"]["pageInfo"];
    assert_eq!(
        (&info["hasPreviousPage"], &info["hasNextPage"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    let resp = run(&api, Some(Role::Viewer), &q("last: -1")).await;
    assert_eq!(resp["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    // Links, Git sources and policies take the same arguments.
    let resp = run(
        &api,
        Some(Role::Viewer),
        "{ links(last: 1) { edges { cursor } } gitSources(last: 1) { totalCount } exportPolicies(last: 1) { totalCount } }",
    )
    .await;
    no_errors(&resp);
    assert_eq!(resp["data"]["links"]["edges"][0]["cursor"], "c04-from-c01");
}
