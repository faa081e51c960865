//! Crash safety of the whole system (issue 15): `kill -9` of the server at random moments during
//! bursts of export changes and Git pushes, then exact convergence.
//!
//! The checks are those a Deployment restarting a crashed pod relies on: the mirror set in every
//! cluster is exactly what the exports and links say (no orphan, none missing, no duplicate), the
//! API (Postgres) agrees with the clusters, and Git revisions are neither lost (the newest commit
//! ends applied) nor applied twice (each revision is recorded `Applied` at most once: an
//! interrupted sync either committed whole or not at all, as the per-revision transaction promises).
//!
//! `LINKPLANE_KILL_ROUNDS` sets the number of rounds (20 here; `scripts/bench kill9` runs 100);
//! `LINKPLANE_KILL_SEED` replays a run (the seed is printed).

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use linkplane_e2e::{
    dev::{DevEnv, EAST_SAMPLE_MIRRORS, eventually},
    rng::Rng,
};

const BULK: usize = 10;

fn mesh_without(mesh: &str, link: &str) -> String {
    mesh.split("\n---\n")
        .filter(|doc| !doc.contains(&format!("name: {link}\n")))
        .collect::<Vec<_>>()
        .join("\n---\n")
}

fn git_head(env: &DevEnv) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&env.facts.repo_path)
        .args(["rev-parse", "HEAD"])
        .output()
        .expect("git runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_converges_exactly() {
    let rounds: usize = std::env::var("LINKPLANE_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed = Rng::seed_from_env("LINKPLANE_KILL_SEED");
    println!("LINKPLANE_KILL_SEED={seed} LINKPLANE_KILL_ROUNDS={rounds}");
    let mut rng = Rng::new(seed);

    let env = DevEnv::start();
    env.wait_for_web_east_in("north").await;
    // BULK services in east, none exported yet.
    env.create_demo_services("east", "bulk", BULK);

    let full_mesh = env.read_repo_file("links/mesh.yaml");
    let mut exported = [false; BULK];
    let mut north_links_east = true;
    let mut pid = env.facts.server_pid;
    let started = Instant::now();
    for round in 0..rounds {
        let up_since = Instant::now();
        // A burst: flip the export label of three random services, every third round a push.
        let mut export = Vec::new();
        let mut unexport = Vec::new();
        for _ in 0..3 {
            let i = rng.below(BULK as u64) as usize;
            exported[i] = !exported[i];
            if exported[i] {
                export.push(format!("bulk-{i}"));
            } else {
                unexport.push(format!("bulk-{i}"));
            }
        }
        // Flipping the same service twice in one burst: the later flip is what counts, so label
        // by final value.
        export.retain(|n| exported[n["bulk-".len()..].parse::<usize>().unwrap_or(0)]);
        unexport.retain(|n| !exported[n["bulk-".len()..].parse::<usize>().unwrap_or(0)]);
        // Keep the server up over 5 s between kills: `linkplane dev` (like a crash-looping pod)
        // gives up after three crashes within 5 s of starting. `up_since` is taken when the new
        // pid is seen, after the spawn, so the margin covers the gap.
        let settle = Duration::from_millis(5_500 + rng.below(1_000));
        tokio::time::sleep(settle.saturating_sub(up_since.elapsed())).await;
        for (names, label) in [
            (&export, "mirror.linkerd.io/exported=true"),
            (&unexport, "mirror.linkerd.io/exported-"),
        ] {
            if names.is_empty() {
                continue;
            }
            let mut args = vec!["label", "services", "-n", "demo", "--overwrite"];
            args.extend(names.iter().map(String::as_str));
            args.push(label);
            let (ok, out) = env.kubectl("east", &args);
            assert!(ok, "round {round}: kubectl label: {out}");
        }
        if round % 3 == 0 {
            north_links_east = !north_links_east;
            let mesh = if north_links_east {
                full_mesh.clone()
            } else {
                mesh_without(&full_mesh, "north-from-east")
            };
            env.commit("links/mesh.yaml", Some(&mesh), &format!("round {round}"));
            assert_eq!(env.webhook().await, 202, "round {round}: webhook");
        }
        // Kill at a random moment of the work the burst started.
        tokio::time::sleep(Duration::from_millis(rng.below(1_500))).await;
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success(), "round {round}: kill -9 {pid}");
        let old = pid;
        pid = eventually(
            Duration::from_secs(60),
            &format!("round {round}: the server is restarted"),
            || async {
                let now = env.reload_facts().server_pid;
                (now != old).then_some(now)
            },
        )
        .await;
    }

    let want: BTreeSet<String> = (0..BULK)
        .filter(|i| exported[*i])
        .map(|i| format!("bulk-{i}-east"))
        .chain(EAST_SAMPLE_MIRRORS.map(String::from))
        .collect();
    let converged = Instant::now();
    eventually(
        Duration::from_secs(90),
        "the clusters hold exactly the mirrors exports and links ask for",
        || async {
            let west = env.mirrored_services("west", "demo", "east");
            let north = env.mirrored_services("north", "demo", "east");
            let north_want = if north_links_east {
                want.clone()
            } else {
                BTreeSet::new()
            };
            (west == want && north == north_want).then_some(())
        },
    )
    .await;
    eventually(
        Duration::from_secs(60),
        "the API (Postgres) agrees with the clusters, one row per mirror",
        || async {
            let (west, west_rows) = env.api_mirrors("west", "demo", "east").await;
            let (north, north_rows) = env.api_mirrors("north", "demo", "east").await;
            let north_want = if north_links_east { want.len() } else { 0 };
            (west == want
                && west_rows == want.len()
                && north.len() == north_want
                && north_rows == north_want)
                .then_some(())
        },
    )
    .await;
    let head = git_head(&env);
    let data = eventually(
        Duration::from_secs(60),
        "the newest commit is applied",
        || async {
            let data = env
                .graphql(
                    r#"{ gitSources { edges { node { name lastAppliedRevision history(limit: 50) { revision result } } } } }"#,
                )
                .await;
            let applied = data["gitSources"]["edges"][0]["node"]["lastAppliedRevision"].clone();
            (applied.as_str() == Some(head.as_str())).then_some(data)
        },
    )
    .await;
    let history = data["gitSources"]["edges"][0]["node"]["history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut applied = std::collections::BTreeMap::<String, usize>::new();
    for attempt in &history {
        if attempt["result"] == "Applied" || attempt["result"] == "APPLIED" {
            *applied
                .entry(attempt["revision"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
    }
    let twice: Vec<_> = applied.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "revisions applied twice: {twice:?}");
    println!(
        "kill -9 rounds converged: {rounds}; rounds took {:.1} s; convergence after the last kill {:.1} s",
        (converged - started).as_secs_f64(),
        converged.elapsed().as_secs_f64()
    );
}
