//! PostgreSQL stopped under load (issue 15, with issue 19's leases): changes made while the
//! database is away are mirrored until the replica's leases lapse, then held back (a replica
//! that cannot renew its lease writes nothing), and once the database is back the clusters and
//! the API (Postgres) agree within seconds — nothing produced during the outage is dropped.
//!
//! The database is a server of this test's own (the launcher `linkplane dev` uses), stopped the
//! way an administrator or a failover does (`pg_ctl stop -m fast`: sessions terminated, new
//! connections refused), not a proxy cut. `LINKPLANE_OUTAGE_SECS` sets the outage (15 here).

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use linkplane_e2e::dev::{DevEnv, EAST_SAMPLE_MIRRORS, eventually};
use linkplane_server::dev::postgres::Postgres;

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

/// Sets (`true`) or removes the export label of `names` in east/demo.
fn export(env: &DevEnv, names: &[String], on: bool) {
    let mut args = vec!["label", "services", "-n", "demo", "--overwrite"];
    args.extend(names.iter().map(String::as_str));
    args.push(if on {
        "mirror.linkerd.io/exported=true"
    } else {
        "mirror.linkerd.io/exported-"
    });
    let (ok, out) = env.kubectl("east", &args);
    assert!(ok, "kubectl label: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_states_made_while_postgres_is_stopped_reach_the_api_when_it_returns() {
    let outage = Duration::from_secs(
        std::env::var("LINKPLANE_OUTAGE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(15),
    );
    let dir = tempfile::Builder::new()
        .prefix("linkplane-pg.")
        .tempdir()
        .expect("temp dir");
    let mut pg = Postgres::start(dir.path()).expect("a private PostgreSQL starts");
    let env = DevEnv::start_on(pg.url());
    env.wait_for_web_east_in("west").await;
    env.create_demo_services("east", "outage", BULK);

    let server_pid = env.reload_facts().server_pid;
    pg.stop();
    let stopped = Instant::now();

    // At once: export the first half, while this replica's leases are still current (the
    // writer owes Postgres these states if they are mirrored before the leases lapse).
    let first: Vec<String> = (0..BULK / 2).map(|i| format!("outage-{i}")).collect();
    export(&env, &first, true);
    // Kubernetes' readiness contract: a replica that cannot reach its database is taken out
    // of the Service's endpoints (503), and the probe still answers within kubelet's 1 s.
    let during = eventually(
        Duration::from_secs(10),
        "/readyz reports the database outage",
        || async { readyz(&env).await.filter(|s| *s == 503) },
    )
    .await;
    assert_eq!(during, 503);

    // Past the lease (3 s under `linkplane dev`, fenced a fifth earlier): the replica cannot prove
    // it still owns its clusters, so it must write nothing — client-go leader election's rule
    // (stop leading when the lease cannot be renewed before RenewDeadline) applied to fencing.
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(stopped.elapsed())).await;
    let second: Vec<String> = (BULK / 2..BULK).map(|i| format!("outage-{i}")).collect();
    export(&env, &second, true);
    export(&env, &["web".to_string()], false);
    let fenced_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < fenced_until {
        let west = env.mirrored_services("west", "demo", "east");
        assert!(
            west.contains("web-east")
                && !west
                    .iter()
                    .any(|m| second.iter().any(|s| *m == format!("{s}-east"))),
            "a replica whose leases lapsed wrote into a cluster: {west:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
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

    tokio::time::sleep(outage.saturating_sub(stopped.elapsed())).await;
    pg.resume().expect("PostgreSQL starts again");
    let back = Instant::now();

    eventually(
        Duration::from_secs(30),
        "the clusters hold what the exports ask for, after the outage",
        || async {
            (env.mirrored_services("west", "demo", "east") == want
                && env.mirrored_services("north", "demo", "east") == want)
                .then_some(())
        },
    )
    .await;
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
