//! PostgreSQL stopped under load (issue 15): the clusters keep being reconciled while the
//! database is away, and once it is back the API (Postgres) equals the clusters within seconds —
//! mirror states produced during the outage are written, not dropped.
//!
//! The database is a server of this test's own ([`PrivatePostgres`]), stopped the way an
//! administrator or a failover does (`pg_ctl stop -m fast`: sessions terminated, new connections
//! refused), not a proxy cut. `LINKPLANE_OUTAGE_SECS` sets the outage (15 here).

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use linkplane_e2e::{
    dev::{DevEnv, EAST_SAMPLE_MIRRORS, eventually},
    postgres::PrivatePostgres,
};

const BULK: usize = 8;

async fn readyz(env: &DevEnv) -> Option<u16> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .ok()?;
    let res = client
        .get(format!("{}/readyz", env.base_url()))
        .send()
        .await
        .ok()?;
    Some(res.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_states_made_while_postgres_is_stopped_reach_the_api_when_it_returns() {
    let outage = Duration::from_secs(
        std::env::var("LINKPLANE_OUTAGE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(15),
    );
    let pg = PrivatePostgres::start().expect("a private PostgreSQL starts");
    let env = DevEnv::start_on(&pg.url());
    env.wait_for_web_east_in("west").await;
    env.create_demo_services("east", "outage", BULK);

    let server_pid = env.reload_facts().server_pid;
    pg.stop().expect("pg_ctl stop -m fast");
    let stopped = Instant::now();

    // During the outage: export the new services and withdraw web, so the writer owes Postgres
    // both new rows and deletions.
    let mut label = vec!["label", "services", "-n", "demo", "--overwrite"];
    let names: Vec<String> = (0..BULK).map(|i| format!("outage-{i}")).collect();
    label.extend(names.iter().map(String::as_str));
    label.push("mirror.linkerd.io/exported=true");
    let (ok, out) = env.kubectl("east", &label);
    assert!(ok, "kubectl label: {out}");
    let (ok, out) = env.kubectl(
        "east",
        &[
            "label",
            "services",
            "-n",
            "demo",
            "web",
            "mirror.linkerd.io/exported-",
        ],
    );
    assert!(ok, "kubectl label web: {out}");
    // web is withdrawn; east's other sample export stays.
    let want: BTreeSet<String> = (0..BULK)
        .map(|i| format!("outage-{i}-east"))
        .chain(
            EAST_SAMPLE_MIRRORS
                .iter()
                .filter(|m| **m != "web-east")
                .map(|m| m.to_string()),
        )
        .collect();

    // Reconciling does not wait for the database: the clusters converge during the outage.
    eventually(
        outage,
        "the clusters converge while PostgreSQL is stopped",
        || async {
            (env.mirrored_services("west", "demo", "east") == want
                && env.mirrored_services("north", "demo", "east") == want)
                .then_some(())
        },
    )
    .await;
    // Kubernetes' readiness contract: a replica that cannot reach its database is taken out
    // of the Service's endpoints (503), and the probe still answers within kubelet's 1 s.
    let during = eventually(
        Duration::from_secs(10),
        "/readyz reports the database outage",
        || async { readyz(&env).await.filter(|s| *s == 503) },
    )
    .await;
    assert_eq!(during, 503);

    tokio::time::sleep(outage.saturating_sub(stopped.elapsed())).await;
    pg.resume().expect("PostgreSQL starts again");
    let back = Instant::now();

    eventually(
        Duration::from_secs(30),
        "the API (Postgres) equals the clusters, one row per mirror, after the outage",
        || async {
            let (west, west_rows) = env.api_mirrors("west", "demo", "east").await;
            let (north, north_rows) = env.api_mirrors("north", "demo", "east").await;
            (west == want && north == want && west_rows == want.len() && north_rows == want.len())
                .then_some(())
        },
    )
    .await;
    let caught_up = back.elapsed();
    // The clusters were not disturbed by the database's return.
    assert_eq!(env.mirrored_services("west", "demo", "east"), want);
    assert_eq!(env.mirrored_services("north", "demo", "east"), want);
    assert_eq!(
        readyz(&env).await,
        Some(200),
        "ready again after the outage"
    );
    // Losing the database is not a reason to exit: the same server process rode it out.
    assert_eq!(
        env.reload_facts().server_pid,
        server_pid,
        "the server was restarted during the outage:\n{}",
        env.log()
    );
    println!(
        "pg-outage e2e: outage {:.1} s; API equal to the clusters {:.1} s after PostgreSQL returned",
        outage.as_secs_f64(),
        caught_up.as_secs_f64()
    );
}
