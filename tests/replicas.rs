//! Several `linkplane serve` processes on one database (issue 19), through the real binary:
//! `linkplane dev`'s own server plus a second replica with its environment (3 s leases renewed
//! every second, as `linkplane dev` sets them), against kubesim clusters whose request log
//! records each write's user agent (`linkplane/<v> (replica <id>)`) and arrival time, as an API
//! server's audit log records `userAgent` and `requestReceivedTimestamp`.
//!
//! The upstream rules pinned are client-go `leaderelection`'s: a lease is taken only once
//! expired or released, a leader that cannot renew before `RenewDeadline` (< `LeaseDuration`)
//! stops acting, and a new term is a new lease (linkplane's epoch is the fencing token); per
//! cluster here, with PostgreSQL as the lock. `LINKPLANE_REPLICA_KILL_ROUNDS` and
//! `LINKPLANE_REPLICA_KILL_SEED` set and replay the kill rounds (the seed is printed).

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
    time::{Duration, Instant},
};

use chrono::Utc;
use linkplane_e2e::{
    dev::{DevEnv, EAST_SAMPLE_MIRRORS, eventually},
    replicas::{Logged, Ownership, Replica, marks, own_writes, requests, signal, writer_runs},
    rng::Rng,
};
use linkplane_server::dev::postgres::Postgres;
use sqlx::Connection;

const CLUSTERS: [&str; 3] = ["east", "north", "west"];
/// The second replica's name (`linkplane dev`'s own server is named after the host).
const SECOND: &str = "second";

/// Waits until every cluster is held by exactly one of `live` live replicas, evenly, as
/// `base_url`'s API reports it.
async fn settled(env: &DevEnv, base_url: &str, live: usize) -> Ownership {
    let mut last;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Ownership::read(base_url, &env.facts.token).await {
            Some(o) => match o.exclusive_and_spread(&CLUSTERS, live) {
                Ok(()) => return o,
                Err(e) => last = e,
            },
            None => last = format!("{base_url} does not answer"),
        }
        assert!(
            Instant::now() < deadline,
            "{live} replicas did not settle on the clusters within 60 s: {last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sets (`true`) or removes the export label of `names` in `cluster`/demo.
fn export(env: &DevEnv, cluster: &str, names: &[String], on: bool) {
    if names.is_empty() {
        return;
    }
    let mut args = vec!["label", "services", "-n", "demo", "--overwrite"];
    args.extend(names.iter().map(String::as_str));
    args.push(if on {
        "mirror.linkerd.io/exported=true"
    } else {
        "mirror.linkerd.io/exported-"
    });
    let (ok, out) = env.kubectl(cluster, &args);
    assert!(ok, "kubectl label in {cluster}: {out}");
}

/// The GitLab push webhook sent to one replica; `None` while it does not answer.
async fn webhook(base_url: &str, secret: &str) -> Option<u16> {
    let res = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?
        .post(format!("{base_url}/webhooks/gitlab"))
        .header("X-Gitlab-Event", "Push Hook")
        .header("X-Gitlab-Token", secret)
        .body("{}")
        .send()
        .await
        .ok()?;
    Some(res.status().as_u16())
}

fn mesh_without(mesh: &str, link: &str) -> String {
    mesh.split("\n---\n")
        .filter(|doc| !doc.contains(&format!("name: {link}\n")))
        .collect::<Vec<_>>()
        .join("\n---\n")
}

fn git_head(env: &DevEnv) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(&env.facts.repo_path)
        .args(["rev-parse", "HEAD"])
        .output()
        .expect("git runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Each cluster's writes into its own mirror objects since `marks`, in arrival order.
async fn own_writes_since(
    env: &DevEnv,
    marks: &BTreeMap<String, u64>,
) -> BTreeMap<String, Vec<Logged>> {
    let mut out = BTreeMap::new();
    for c in CLUSTERS {
        let (log, _) = requests(env, c, marks[c]).await;
        out.insert(c.to_string(), own_writes(&log, "demo"));
    }
    out
}

/// No cluster written by two replicas at once: in each cluster's own objects, the runs of one
/// writer are at most the lease terms begun since the marks (plus the term running at them).
fn assert_no_overlapping_writers(
    writes: &BTreeMap<String, Vec<Logged>>,
    epochs_before: &BTreeMap<String, i64>,
    after: &Ownership,
) {
    for c in CLUSTERS {
        let runs = writer_runs(&writes[c]);
        let terms = after.holders[c].1 - epochs_before.get(c).copied().unwrap_or(0) + 1;
        assert!(
            runs.len() as i64 <= terms,
            "{c}: {} runs of writers {runs:?} but only {terms} lease terms: two replicas wrote at once",
            runs.len()
        );
    }
}

fn epochs(o: &Ownership) -> BTreeMap<String, i64> {
    o.holders
        .iter()
        .map(|(c, (_, e))| (c.clone(), *e))
        .collect()
}

// Upstream rule: client-go leaderelection — a lease not renewed within LeaseDuration may be
// taken by another candidate; a crashed holder's clusters move after that, not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_split_the_fleet_and_a_kill_9_is_taken_over_within_the_lease() {
    let env = DevEnv::start();
    let second = Replica::spawn(&env, SECOND);
    let first_pid = env.facts.server_pid;

    let before = settled(&env, &second.base_url(), 2).await;
    let first_id = before
        .id_not_named(&[SECOND])
        .expect("the dev server is a live replica");
    let lost: Vec<String> = before.replicas[&first_id].1.iter().cloned().collect();

    signal(first_pid, "KILL");
    let t0 = Instant::now();
    eventually(
        Duration::from_secs(30),
        "the killed replica's clusters are held by a live replica",
        || async {
            let o = Ownership::read(&second.base_url(), &env.facts.token).await?;
            lost.iter()
                .all(|c| {
                    o.holders
                        .get(c)
                        .is_some_and(|(h, _)| *h != first_id && o.replicas.contains_key(h))
                })
                .then_some(())
        },
    )
    .await;
    let takeover = t0.elapsed();
    println!("takeover of {lost:?} after kill -9: {takeover:?}");
    // 3 s lease + 1 s renew interval in `linkplane dev`, plus API polling slack.
    assert!(
        takeover < Duration::from_secs(8),
        "takeover took {takeover:?}"
    );

    // The fleet keeps converging: a new export in east is mirrored into north.
    env.create_demo_services("east", "ha-probe", 1);
    export(&env, "east", &["ha-probe-0".to_string()], true);
    eventually(
        Duration::from_secs(60),
        "ha-probe-0-east mirrored into north after the takeover",
        || async {
            env.mirrored_services("north", "demo", "east")
                .contains("ha-probe-0-east")
                .then_some(())
        },
    )
    .await;
    // linkplane dev restarted its server: two live replicas again, every cluster owned once.
    settled(&env, &second.base_url(), 2).await;
}

const BULK: usize = 10;

// Upstream rules: client-go leaderelection (a crashed holder's lease is taken over only once it
// expired; each new holder starts a new term) and Argo CD / Flux's one revision applied per
// sync, in order. The survivors must converge to exactly the mirrors the exports and links ask
// for, and every Git revision is applied at most once and never after a newer one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_replica_mid_burst_converges_exactly_and_applies_each_revision_once() {
    let rounds: usize = std::env::var("LINKPLANE_REPLICA_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed = Rng::seed_from_env("LINKPLANE_REPLICA_KILL_SEED");
    println!("LINKPLANE_REPLICA_KILL_SEED={seed} LINKPLANE_REPLICA_KILL_ROUNDS={rounds}");
    let mut rng = Rng::new(seed);

    let env = DevEnv::start();
    env.wait_for_web_east_in("north").await;
    env.create_demo_services("east", "bulk", BULK);
    let mut second = Replica::spawn(&env, SECOND);
    let before = settled(&env, &env.base_url(), 2).await;
    let epochs_before = epochs(&before);
    let log_marks = marks(&env, &CLUSTERS).await;
    let test_start = Utc::now();

    let full_mesh = env.read_repo_file("links/mesh.yaml");
    let mut exported = [false; BULK];
    let mut north_links_east = true;
    // Revisions in the order they were pushed; the one applied at start first.
    let mut pushed = vec![git_head(&env)];
    let mut dev_pid = env.reload_facts().server_pid;
    let mut dev_up_since = Instant::now();
    let mut kills = [0usize; 2];
    let started = Instant::now();
    for round in 0..rounds {
        // A burst: flip the export label of three random services; every third round a push,
        // its webhook sent to a random replica (any replica may receive it).
        let mut flipped = BTreeSet::new();
        for _ in 0..3 {
            let i = rng.below(BULK as u64) as usize;
            exported[i] = !exported[i];
            flipped.insert(i);
        }
        let (on, off): (Vec<usize>, Vec<usize>) = flipped.into_iter().partition(|i| exported[*i]);
        let names = |v: Vec<usize>| {
            v.into_iter()
                .map(|i| format!("bulk-{i}"))
                .collect::<Vec<_>>()
        };
        export(&env, "east", &names(on), true);
        export(&env, "east", &names(off), false);
        if round % 3 == 0 {
            north_links_east = !north_links_east;
            let mesh = if north_links_east {
                full_mesh.clone()
            } else {
                mesh_without(&full_mesh, "north-from-east")
            };
            env.commit("links/mesh.yaml", Some(&mesh), &format!("round {round}"));
            pushed.push(git_head(&env));
            let prefer_second = rng.below(2) == 0;
            eventually(
                Duration::from_secs(30),
                &format!("round {round}: a replica accepts the webhook"),
                || async {
                    let urls = if prefer_second {
                        [second.base_url(), env.base_url()]
                    } else {
                        [env.base_url(), second.base_url()]
                    };
                    for url in urls {
                        if let Some(code) = webhook(&url, &env.facts.webhook_secret).await {
                            assert_eq!(code, 202, "round {round}: webhook to {url}");
                            return Some(());
                        }
                    }
                    None
                },
            )
            .await;
        }
        // Kill one replica at a random moment of the work the burst started. `linkplane dev`
        // restarts its server (like a Deployment) but gives up after three crashes within 5 s
        // of starting, so its server is a candidate only once up that long; the test restarts
        // the second replica itself, at once.
        tokio::time::sleep(Duration::from_millis(rng.below(1_500))).await;
        let kill_dev = dev_up_since.elapsed() > Duration::from_millis(5_500) && rng.below(2) == 0;
        if kill_dev {
            signal(dev_pid, "KILL");
            let old = dev_pid;
            dev_pid = eventually(
                Duration::from_secs(60),
                &format!("round {round}: linkplane dev restarts its server"),
                || async {
                    let now = env.reload_facts().server_pid;
                    (now != old).then_some(now)
                },
            )
            .await;
            dev_up_since = Instant::now();
            kills[0] += 1;
        } else {
            second.kill9();
            second = Replica::spawn(&env, SECOND);
            kills[1] += 1;
        }
        // Sometimes the next burst comes before the dead replica's leases expired (its
        // clusters wait), sometimes after the survivor took them over.
        tokio::time::sleep(Duration::from_millis(300 + rng.below(2_200))).await;
    }
    let rounds_took = started.elapsed();

    let want: BTreeSet<String> = (0..BULK)
        .filter(|i| exported[*i])
        .map(|i| format!("bulk-{i}-east"))
        .chain(EAST_SAMPLE_MIRRORS.map(String::from))
        .collect();
    let north_want = if north_links_east {
        want.clone()
    } else {
        BTreeSet::new()
    };
    let after_last_kill = Instant::now();
    eventually(
        Duration::from_secs(120),
        "the clusters hold exactly the mirrors exports and links ask for",
        || async {
            (env.mirrored_services("west", "demo", "east") == want
                && env.mirrored_services("north", "demo", "east") == north_want)
                .then_some(())
        },
    )
    .await;
    eventually(
        Duration::from_secs(60),
        "the API (Postgres) agrees with the clusters, one row per mirror",
        || async {
            let (west, west_rows) = env.api_mirrors("west", "demo", "east").await;
            let (north, north_rows) = env.api_mirrors("north", "demo", "east").await;
            (west == want
                && west_rows == want.len()
                && north == north_want
                && north_rows == north_want.len())
            .then_some(())
        },
    )
    .await;
    let converged = after_last_kill.elapsed();
    let after = settled(&env, &env.base_url(), 2).await;

    // Git: the newest revision ends applied, and the sync history in PostgreSQL records each
    // revision applied at most once, in push order (an older revision applied after a newer
    // one would undo it: a lost revision).
    let head = pushed.last().cloned().unwrap_or_default();
    eventually(
        Duration::from_secs(60),
        "the newest commit is applied",
        || async {
            let data = env
                .graphql(r#"{ gitSources { edges { node { lastAppliedRevision } } } }"#)
                .await;
            (data["gitSources"]["edges"][0]["node"]["lastAppliedRevision"].as_str()
                == Some(head.as_str()))
            .then_some(())
        },
    )
    .await;
    let mut db = sqlx::PgConnection::connect(&env.facts.database_url)
        .await
        .expect("the database answers");
    let history: Vec<(String, String, String, chrono::DateTime<Utc>)> = sqlx::query_as(
        "SELECT revision, result, trigger, started_at FROM sync_history ORDER BY id",
    )
    .fetch_all(&mut db)
    .await
    .expect("sync history");
    assert!(
        history.first().is_some_and(|h| h.3 < test_start),
        "the 50-row history was trimmed past the test's start; the check would miss attempts"
    );
    let applied: Vec<&str> = history
        .iter()
        .filter(|h| h.1 == "Applied" && h.2 != "self-heal")
        .map(|h| h.0.as_str())
        .collect();
    let order: Vec<usize> = applied
        .iter()
        .map(|r| {
            pushed
                .iter()
                .position(|p| p == r)
                .unwrap_or_else(|| panic!("applied revision {r} was never pushed"))
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "revisions applied twice or out of order (push indexes {order:?} of {} pushes)",
        pushed.len()
    );

    let writes = own_writes_since(&env, &log_marks).await;
    assert_no_overlapping_writers(&writes, &epochs_before, &after);
    println!(
        "replica kill -9: {rounds} rounds ({} of linkplane dev's server, {} of the second) in {:.1} s; \
         exact convergence {:.1} s after the last kill; {} revisions pushed, {} applied",
        kills[0],
        kills[1],
        rounds_took.as_secs_f64(),
        converged.as_secs_f64(),
        pushed.len(),
        applied.len()
    );
}

// Upstream rule: client-go leaderelection requires RenewDeadline < LeaseDuration so that a
// leader that cannot renew (here: frozen by SIGSTOP) stops acting before anyone may acquire;
// on waking it must not act on the old term — only a newly acquired lease (a new epoch, the
// fencing token) lets it write again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_stopped_past_its_lease_writes_nothing_after_sigcont_until_it_holds_a_lease_again()
 {
    const N: usize = 6;
    let env = DevEnv::start();
    env.wait_for_web_east_in("north").await;
    env.create_demo_services("east", "pause", N);
    let second = Replica::spawn(&env, SECOND);
    let before = settled(&env, &env.base_url(), 2).await;
    let b = before.id_of(SECOND).expect("the second replica is live");
    let a = before
        .id_not_named(&[SECOND])
        .expect("the dev server is live");

    // Freeze it at a quiet moment: a write already past the fence when the process stops is
    // on its way whatever the fence does (a pause between check and send is the one case
    // fencing at the client cannot cover, for client-go too), and is not what this pins.
    eventually(
        Duration::from_secs(30),
        "a second without writes by the second replica",
        || async {
            let now = Utc::now();
            for c in CLUSTERS {
                let (log, _) = requests(&env, c, 0).await;
                let last = log
                    .iter()
                    .rev()
                    .find(|r| r.is_write() && r.replica.as_deref() == Some(b.as_str()));
                if last.is_some_and(|r| now - r.received < chrono::Duration::seconds(1)) {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let log_marks = marks(&env, &CLUSTERS).await;
    let stopped_at = Utc::now();
    signal(second.pid(), "STOP");
    let stopped = Instant::now();

    // Its clusters move to the dev server once its lease has expired in PostgreSQL.
    let alone = settled(&env, &env.base_url(), 1).await;
    assert!(alone.replicas.contains_key(&a), "{alone:?}");
    let takeover = stopped.elapsed();
    // Changes while it is frozen: its open watches buffer them, so it has work on waking.
    let first: Vec<String> = (0..N / 2).map(|i| format!("pause-{i}")).collect();
    export(&env, "east", &first, true);
    eventually(
        Duration::from_secs(60),
        "the dev server mirrors the first half alone",
        || async {
            let w = env.mirrored_services("west", "demo", "east");
            let n = env.mirrored_services("north", "demo", "east");
            first
                .iter()
                .all(|s| w.contains(&format!("{s}-east")) && n.contains(&format!("{s}-east")))
                .then_some(())
        },
    )
    .await;
    // Well past the lease (3 s), then one more change just before it wakes.
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(stopped.elapsed())).await;
    let rest: Vec<String> = (N / 2..N).map(|i| format!("pause-{i}")).collect();
    export(&env, "east", &rest, true);
    let resumed_at = Utc::now();
    signal(second.pid(), "CONT");
    let resumed = Instant::now();

    // It rejoins and gets its share back under new epochs.
    let after = settled(&env, &env.base_url(), 2).await;
    let rejoined = resumed.elapsed();
    assert_eq!(
        after.id_of(SECOND).as_deref(),
        Some(b.as_str()),
        "the same process rejoined"
    );
    // New exports in every cluster, after it holds its share: it must write again.
    for c in CLUSTERS {
        env.create_demo_services(c, &format!("woke-{c}"), 1);
        export(&env, c, &[format!("woke-{c}-0")], true);
    }
    let want: BTreeSet<String> = (0..N)
        .map(|i| format!("pause-{i}-east"))
        .chain(std::iter::once("woke-east-0-east".to_string()))
        .chain(EAST_SAMPLE_MIRRORS.map(String::from))
        .collect();
    eventually(
        Duration::from_secs(60),
        "every change mirrored after the resume",
        || async {
            let woke = CLUSTERS.iter().all(|c| {
                CLUSTERS.iter().filter(|o| *o != c).all(|o| {
                    env.mirrored_services(c, "demo", o)
                        .contains(&format!("woke-{o}-0-{o}"))
                })
            });
            (woke
                && env.mirrored_services("west", "demo", "east") == want
                && env.mirrored_services("north", "demo", "east") == want)
                .then_some(())
        },
    )
    .await;

    // The request log against the leases in PostgreSQL: every write the woken replica sent
    // came after it acquired a lease again (epoch above the one it had), and a write into a
    // cluster's own mirror objects only after it acquired that cluster.
    let mut db = sqlx::PgConnection::connect(&env.facts.database_url)
        .await
        .expect("the database answers");
    let leases = linkplane_store::leases::list(&mut db)
        .await
        .expect("leases");
    let held: BTreeMap<String, (chrono::DateTime<Utc>, i64)> = leases
        .iter()
        .filter(|l| l.valid && l.holder.as_deref() == Some(b.as_str()))
        .filter_map(|l| Some((l.cluster.clone(), (l.acquired_at?, l.epoch))))
        .collect();
    assert!(
        !held.is_empty(),
        "the woken replica holds leases: {leases:?}"
    );
    let first_acquired = held.values().map(|(t, _)| *t).min();
    let mut after_wake = 0;
    for c in CLUSTERS {
        let (log, _) = requests(&env, c, log_marks[c]).await;
        for w in log
            .iter()
            .filter(|r| r.is_write() && r.replica.as_deref() == Some(b.as_str()))
            .filter(|r| r.received >= stopped_at)
        {
            assert!(
                w.received >= resumed_at,
                "{c}: the second replica wrote while stopped: {w:?}"
            );
            let since = if w.namespace.as_deref() == Some("demo") {
                match held.get(c) {
                    Some((t, epoch)) => {
                        assert!(
                            *epoch > before.holders[c].1,
                            "{c}: held again under the old epoch {epoch}"
                        );
                        Some(*t)
                    }
                    None => None,
                }
            } else {
                first_acquired
            };
            assert!(
                since.is_some_and(|t| t >= resumed_at && t <= w.received),
                "{c}: the woken replica wrote before holding a lease again \
                 (woke {resumed_at}, lease acquired {since:?}): {w:?}\n{}",
                second.log_tail()
            );
            after_wake += 1;
        }
    }
    assert!(
        after_wake > 0,
        "the woken replica wrote nothing at all: the check above proved nothing"
    );
    let writes = own_writes_since(&env, &log_marks).await;
    assert_no_overlapping_writers(&writes, &epochs(&before), &after);
    println!(
        "SIGSTOP: its clusters taken over {:.1} s after the stop; rejoined {:.1} s after SIGCONT; \
         {after_wake} writes after waking, all after re-acquiring",
        takeover.as_secs_f64(),
        rejoined.as_secs_f64()
    );
}

// Upstream rule: client-go leaderelection — a leader that cannot reach the lock (PostgreSQL
// here) stops acting once RenewDeadline passes, and after the lock returns each lease has one
// holder; no cluster is written by two replicas at once through the outage and the recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_two_replicas_both_recover_with_every_cluster_owned_once() {
    const N: usize = 4;
    let dir = tempfile::Builder::new()
        .prefix("linkplane-pg.")
        .tempdir()
        .expect("temp dir");
    let mut pg = Postgres::start(dir.path()).expect("a private PostgreSQL starts");
    let env = DevEnv::start_on(pg.url());
    env.wait_for_web_east_in("west").await;
    env.create_demo_services("east", "restart", N);
    let second = Replica::spawn(&env, SECOND);
    let before = settled(&env, &env.base_url(), 2).await;
    let log_marks = marks(&env, &CLUSTERS).await;

    pg.stop();
    let stopped = Instant::now();
    // Past the lease (3 s): both replicas' leases lapse; what changes now is held back.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let names: Vec<String> = (0..N).map(|i| format!("restart-{i}")).collect();
    export(&env, "east", &names, true);
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(stopped.elapsed())).await;
    pg.resume().expect("PostgreSQL starts again");
    let back = Instant::now();

    // Both recover: both alive, every cluster held by exactly one of them, evenly — as each
    // of them answers it.
    let after = settled(&env, &env.base_url(), 2).await;
    settled(&env, &second.base_url(), 2).await;
    let recovered = back.elapsed();
    assert!(
        after.id_of(SECOND).is_some() && after.id_not_named(&[SECOND]).is_some(),
        "both processes are the live replicas: {after:?}"
    );
    let want: BTreeSet<String> = names
        .iter()
        .map(|s| format!("{s}-east"))
        .chain(EAST_SAMPLE_MIRRORS.map(String::from))
        .collect();
    eventually(
        Duration::from_secs(60),
        "the change held back during the outage is mirrored after it",
        || async {
            (env.mirrored_services("west", "demo", "east") == want
                && env.mirrored_services("north", "demo", "east") == want)
                .then_some(())
        },
    )
    .await;
    let converged = back.elapsed();
    // No double ownership afterwards: sampled for a few seconds, every cluster one holder.
    for i in 0..10 {
        let url = if i % 2 == 0 {
            env.base_url()
        } else {
            second.base_url()
        };
        let o = Ownership::read(&url, &env.facts.token)
            .await
            .expect("the API answers");
        if let Err(e) = o.exclusive_and_spread(&CLUSTERS, 2) {
            panic!("after recovery ({url}): {e}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let last = settled(&env, &env.base_url(), 2).await;
    let writes = own_writes_since(&env, &log_marks).await;
    assert_no_overlapping_writers(&writes, &epochs(&before), &last);
    println!(
        "pg restart under 2 replicas: outage 8 s; both owning again {:.1} s after PostgreSQL returned; \
         mirrors exact {:.1} s after",
        recovered.as_secs_f64(),
        converged.as_secs_f64()
    );
}
