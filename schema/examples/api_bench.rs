//! API benchmark (`scripts/bench api`): `topology` and `mirrors(first: 100)` at 50 clusters and
//! 20,000 mirrors, in-process through `Api::execute` (parse, validate, resolve, JSON-encode),
//! against the raw SQL fetching the same rows on the same database in the same run: the very
//! statements the resolvers run (and their parameters), so the ratio is what GraphQL adds.
//! Needs DATABASE_URL; works in its own database, dropped at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use linkplane_schema::Role;
use sqlx::{Executor as _, PgPool};

const CLUSTERS: usize = 50;
/// 50 clusters × 2 links each × 200 = 20,000 mirrors.
const PER_LINK: usize = 200;
const WARMUP: usize = 30;
const RUNS: usize = 400;

const TOPOLOGY: &str = "{ topology {
  nodes { name health gatewayAlive gatewayLatencyMs reconciler { state } mirrorCounts { total mirrored conflict } }
  edges { name sourceName targetName paused gateway { alive latencyMs } mirrorCounts { total mirrored conflict } } } }";

const MIRRORS: &str = "{ mirrors(first: 100) { pageInfo { hasNextPage endCursor } edges { cursor node {
  id linkName sourceCluster targetCluster namespace remoteName localName mode headless state message lastTransition } } } }";

/// A statement the resolvers run, and whether it takes the one array parameter they bind as
/// NULL (`mirror_counts`: every link).
type Statement = (&'static str, Binds);

#[derive(Clone, Copy)]
enum Binds {
    None,
    /// `$1::text[]` = NULL.
    AllParents,
    /// `windows::mirrors` without filters: five NULL filters, no cursors, `limit` 101.
    FirstPage,
}

/// The statements the resolvers run for TOPOLOGY, verbatim, with the same parameters.
const TOPOLOGY_SQL: &[Statement] = &[
    (
        "SELECT name, spec, owner, generation, created_at, updated_at FROM clusters ORDER BY name",
        Binds::None,
    ),
    (
        "SELECT name, spec, paused, owner, generation, created_at, updated_at FROM links ORDER BY name",
        Binds::None,
    ),
    (
        "SELECT link, alive, latency_ms, consecutive_failures, last_error, last_probe_at, last_transition
         FROM gateway_health ORDER BY link",
        Binds::None,
    ),
    (
        "SELECT cluster, state, message, watches_synced, last_sync_at, updated_at FROM reconciler_status ORDER BY cluster",
        Binds::None,
    ),
    (
        "SELECT link::text, state, n FROM mirror_counts
             WHERE n > 0 AND ($1::text[] IS NULL OR link = ANY($1))",
        Binds::AllParents,
    ),
];

/// The statement the resolver runs for MIRRORS, verbatim, with the same parameters.
const MIRRORS_SQL: &[Statement] = &[(
    "SELECT id, link, source_cluster, target_cluster, remote_namespace, remote_name, \
     local_name, mode, headless, state, message, last_transition, updated_at FROM mirrors
         WHERE ($1::text IS NULL OR source_cluster = $1) AND ($2::text IS NULL OR target_cluster = $2)
           AND ($3::text IS NULL OR remote_namespace = $3) AND ($4::text IS NULL OR state = $4)
           AND ($5::text IS NULL OR link = $5)
           AND ($6::bigint IS NULL OR id > $6) AND ($7::bigint IS NULL OR id < $7)
         ORDER BY id ASC LIMIT $8",
    Binds::FirstPage,
)];

struct Stats {
    p50: Duration,
    p99: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// One GraphQL request through the schema, encoded to JSON as the server sends it.
async fn graphql_once(api: &linkplane_schema::Api, query: &str) {
    let resp = api.execute(query, support::as_role(Role::Viewer)).await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    let body = serde_json::to_vec(&resp).unwrap();
    std::hint::black_box(body);
}

/// The raw side: the same statements, prepared and cached on the connection like the
/// resolvers' (sqlx's statement cache), one after the other on one pooled connection.
async fn sql_once(pool: &PgPool, statements: &[Statement]) {
    let mut conn = pool.acquire().await.unwrap();
    let mut rows = 0;
    for &(sql, binds) in statements {
        let q = sqlx::query(sql);
        let q = match binds {
            Binds::None => q,
            Binds::AllParents => q.bind(None::<Vec<String>>),
            Binds::FirstPage => q
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(101_i64),
        };
        rows += q.fetch_all(&mut *conn).await.unwrap().len();
    }
    std::hint::black_box(rows);
}

/// GraphQL and raw SQL timed alternately, request by request, so a change in the machine's load
/// during the run weighs on both sides alike.
async fn time_both(
    api: &linkplane_schema::Api,
    query: &str,
    pool: &PgPool,
    statements: &[Statement],
) -> (Stats, Stats) {
    let (mut graphql, mut sql) = (Vec::with_capacity(RUNS), Vec::with_capacity(RUNS));
    for i in 0..WARMUP + RUNS {
        let start = Instant::now();
        graphql_once(api, query).await;
        let mid = Instant::now();
        sql_once(pool, statements).await;
        if i >= WARMUP {
            graphql.push(mid - start);
            sql.push(mid.elapsed());
        }
    }
    (stats(graphql), stats(sql))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let name = format!("linkplane_bench_api_{}", std::process::id());
    let db = linkplane_store::Store::recreate_database(&url, &name)
        .await
        .unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect(&db)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    support::seed_fleet(&mut conn, CLUSTERS, PER_LINK).await;
    drop(conn);
    sqlx::query("ANALYZE").execute(&pool).await.unwrap();
    let mirrors: i64 = sqlx::query_scalar("SELECT count(*) FROM mirrors")
        .fetch_one(&pool)
        .await
        .unwrap();
    println!(
        "fleet: {CLUSTERS} clusters, {} links, {mirrors} mirrors; {RUNS} runs after {WARMUP} warm-up",
        CLUSTERS * 2
    );
    let api = support::api(pool.clone());
    for (label, query, sql) in [
        ("topology", TOPOLOGY, TOPOLOGY_SQL),
        ("mirrors(first: 100)", MIRRORS, MIRRORS_SQL),
    ] {
        let before = api.db().statements();
        let (g, r) = time_both(&api, query, &pool, sql).await;
        let per_query = (api.db().statements() - before) / (WARMUP + RUNS) as u64;
        println!(
            "{label:<20} graphql p50 {} p99 {} | raw SQL p50 {} p99 {} | ratio p50 {:.2} p99 {:.2} | {per_query} SQL statements per query",
            ms(g.p50),
            ms(g.p99),
            ms(r.p50),
            ms(r.p99),
            g.p50.as_secs_f64() / r.p50.as_secs_f64(),
            g.p99.as_secs_f64() / r.p99.as_secs_f64(),
        );
    }
    pool.close().await;
    PgPool::connect(&url)
        .await
        .unwrap()
        .execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
        .await
        .unwrap();
}
