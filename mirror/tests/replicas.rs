//! Several replicas on one PostgreSQL (issue 19): each a whole supervisor with its own lease
//! table, sharing only the database and the kubesim clusters, as two `linkplane serve` pods do.
//! kubesim's request log records each write's user agent (`linkplane/<v> (replica <id>)`), as a
//! real API server's audit log records `userAgent`; that is how the tests see who wrote what.
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use k8s_openapi::api::core::v1::Service;
use kube::{Api, api::ListParams};
use linkplane_mirror::{LeaseOptions, Metrics, Options, Supervisor, SupervisorHandle};
use linkplane_store::leases;
use support::*;

const CLUSTERS: [&str; 6] = ["c0", "c1", "c2", "c3", "c4", "c5"];
/// Short leases keep the tests quick; the server's defaults are 10 s / 2 s.
const LEASE: Duration = Duration::from_millis(2500);

struct Replica {
    id: String,
    handle: SupervisorHandle,
}

async fn replica(env: &Env, name: &str) -> Replica {
    let mut lease = LeaseOptions::new(name);
    lease.duration = LEASE;
    lease.renew_interval = Duration::from_millis(300);
    lease.margin = Duration::from_millis(500);
    let id = lease.replica_id.clone();
    let handle = Supervisor::start(
        env.store.clone(),
        Options {
            concurrency: 4,
            lease: Some(lease),
            ..Options::default()
        },
        Metrics::default(),
    )
    .await
    .unwrap();
    Replica { id, handle }
}

/// Valid leases in the database: cluster → holder.
async fn owners(env: &Env) -> BTreeMap<String, String> {
    let mut conn = env.store.acquire().await.unwrap();
    leases::list(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.valid)
        .filter_map(|l| Some((l.cluster, l.holder?)))
        .collect()
}

async fn epochs(env: &Env) -> BTreeMap<String, i64> {
    let mut conn = env.store.acquire().await.unwrap();
    leases::list(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.cluster, l.epoch))
        .collect()
}

/// Every cluster owned by exactly one of `replicas`, each owning `per` of them, and each
/// replica's in-memory table agreeing with the database.
async fn spread_is(env: &Env, replicas: Vec<&Replica>, per: &[usize]) -> Result<(), String> {
    let db = owners(env).await;
    if db.len() != CLUSTERS.len() {
        return Err(format!("owned: {db:?}"));
    }
    let mut loads: Vec<usize> = replicas
        .iter()
        .map(|r| db.values().filter(|h| **h == r.id).count())
        .collect();
    loads.sort_unstable();
    if loads != per {
        return Err(format!("loads {loads:?}, want {per:?}: {db:?}"));
    }
    let mut seen = BTreeSet::new();
    for r in &replicas {
        let mine = r.handle.leases().owned();
        let in_db: BTreeSet<String> = db
            .iter()
            .filter(|(_, h)| **h == r.id)
            .map(|(c, _)| c.clone())
            .collect();
        if mine != in_db {
            return Err(format!(
                "{} holds {mine:?} in memory, {in_db:?} in the db",
                r.id
            ));
        }
        for c in mine {
            if !seen.insert(c.clone()) {
                return Err(format!("{c} owned twice"));
            }
        }
    }
    Ok(())
}

/// Mirror names in `cluster`/shop.
async fn mirrors_in(env: &Env, cluster: &str) -> BTreeSet<String> {
    let api: Api<Service> = Api::namespaced(env.client(cluster).await, "shop");
    api.list(&ListParams::default().labels("mirror.linkerd.io/mirrored-service=true"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect()
}

fn desired(cluster: &str, services: &[&str]) -> BTreeSet<String> {
    CLUSTERS
        .iter()
        .filter(|c| **c != cluster)
        .flat_map(|c| services.iter().map(move |s| format!("{s}-{c}")))
        .collect()
}

async fn converged(env: &Env, services: &[&str]) -> Result<(), String> {
    for c in CLUSTERS {
        let have = mirrors_in(env, c).await;
        let want = desired(c, services);
        if have != want {
            return Err(format!("{c}: have {have:?}, want {want:?}"));
        }
    }
    Ok(())
}

/// linkplane's writes into `cluster` in the order the API server answered them: (seq, replica).
fn writers(env: &Env, cluster: &str) -> Vec<(u64, String)> {
    env.writes_since(cluster, 0)
        .into_iter()
        .filter_map(|r| {
            let ua = r.user_agent?;
            let id = ua
                .split("(replica ")
                .nth(1)?
                .trim_end_matches(')')
                .to_string();
            Some((r.seq, id))
        })
        .collect()
}

/// No two replicas wrote into one cluster at overlapping times: the writes, in the order the
/// API server answered them, form at most one run per lease term (the epoch counts the terms).
async fn no_overlapping_writers(env: &Env) {
    let epochs = epochs(env).await;
    for c in CLUSTERS {
        let w = writers(env, c);
        let mut runs: Vec<&str> = Vec::new();
        for (_, id) in &w {
            if runs.last() != Some(&id.as_str()) {
                runs.push(id);
            }
        }
        let terms = epochs.get(c).copied().unwrap_or(0);
        assert!(
            runs.len() as i64 <= terms,
            "{c}: {} runs of writers {runs:?} but only {terms} lease terms",
            runs.len()
        );
    }
}

async fn fleet(env: &Env, services: &[&str]) {
    for c in CLUSTERS {
        let client = env.client(c).await;
        create_ns(&client, "shop").await;
        for s in services {
            export(&client, "shop", s, EXPORTED).await;
        }
    }
    for s in CLUSTERS {
        for t in CLUSTERS {
            if s != t {
                env.link(s, t, |_| {}).await;
            }
        }
    }
}

// Upstream rule pinned: an API server's audit log records each request's `userAgent`
// (k8s.io/apiserver audit Event.userAgent), which is how the writes are attributed here.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn three_replicas_own_every_cluster_once_evenly_and_rebalance_on_leave_and_join(
    pool: sqlx::PgPool,
) {
    let env = Env::start_idle(pool, &CLUSTERS).await;
    fleet(&env, &["web", "api"]).await;
    let r1 = replica(&env, "r1").await;
    let r2 = replica(&env, "r2").await;
    let r3 = replica(&env, "r3").await;

    eventually("2 clusters per replica", || {
        spread_is(&env, vec![&r1, &r2, &r3], &[2, 2, 2])
    })
    .await;
    eventually("full mesh mirrored", || converged(&env, &["web", "api"])).await;
    let before = owners(&env).await;

    // A graceful leave hands its clusters over at once, not after the lease expires.
    let marks: BTreeMap<&str, u64> = CLUSTERS
        .iter()
        .map(|c| (*c, env.sim.cluster(c).unwrap().request_mark()))
        .collect();
    let t0 = tokio::time::Instant::now();
    r3.handle.shutdown().await;
    eventually("3 clusters each after r3 left", || {
        spread_is(&env, vec![&r1, &r2], &[3, 3])
    })
    .await;
    let takeover = t0.elapsed();
    let after = owners(&env).await;
    let moved = CLUSTERS
        .iter()
        .filter(|c| before[**c] != after[**c])
        .count();
    println!("leave: {moved} clusters moved, taken over in {takeover:?}");
    // Exactly r3's two clusters move: the survivors keep theirs (the assignment is sticky to
    // the current holders while they are under the load bound).
    assert_eq!(moved, 2, "only r3's clusters move: {before:?} → {after:?}");
    // The survivors watched r3's clusters for their exports all along (as targets of their own
    // links): on gaining them they list the mirrors there and nothing else again. Upstream rule
    // pinned: a list's `labelSelector` `mirror.linkerd.io/mirrored-service` selects the objects
    // carrying the key (apimachinery labels.Parse, `selection.Exists`), the complement of the
    // exports watch's `!key` (`selection.DoesNotExist`).
    let survivors = [r1.id.as_str(), r2.id.as_str()];
    let mirror_selector = Some("mirror.linkerd.io/mirrored-service");
    for c in CLUSTERS.iter().filter(|c| before[**c] == r3.id) {
        eventually("the gained cluster's mirrors listed", || async {
            let lists: Vec<Option<String>> = env
                .sim
                .cluster(c)
                .unwrap()
                .requests_since(marks[c])
                .into_iter()
                .filter(|r| {
                    r.verb == "list"
                        && matches!(r.resource.as_str(), "services" | "endpoints")
                        && r.user_agent
                            .as_deref()
                            .is_some_and(|ua| survivors.iter().any(|s| ua.contains(s)))
                })
                .map(|r| r.label_selector)
                .collect();
            let mirrors = lists
                .iter()
                .filter(|s| s.as_deref() == mirror_selector)
                .count();
            if lists.iter().any(|s| s.as_deref() != mirror_selector) {
                panic!("{c}: a survivor re-listed more than the mirrors: {lists:?}");
            }
            if mirrors < 2 {
                return Err(format!("{c}: {lists:?}"));
            }
            Ok(())
        })
        .await;
    }

    // Work keeps flowing on the survivors: a new export reaches every consumer.
    export(&env.client("c0").await, "shop", "cart", EXPORTED).await;
    eventually("cart mirrored after the leave", || async {
        for c in &CLUSTERS[1..] {
            let have = mirrors_in(&env, c).await;
            if !have.contains("cart-c0") {
                return Err(format!("{c}: {have:?}"));
            }
        }
        Ok(())
    })
    .await;

    let r4 = replica(&env, "r4").await;
    eventually("2 clusters per replica after r4 joined", || {
        spread_is(&env, vec![&r1, &r2, &r4], &[2, 2, 2])
    })
    .await;
    let joined = owners(&env).await;
    let moved = CLUSTERS
        .iter()
        .filter(|c| after[**c] != joined[**c])
        .count();
    println!("join: {moved} clusters moved");
    assert_eq!(
        moved, 2,
        "a join moves the newcomer's share and no more: {after:?} → {joined:?}"
    );
    export(&env.client("c3").await, "shop", "cart", EXPORTED).await;
    eventually("cart everywhere after the join", || async {
        for c in CLUSTERS {
            let have = mirrors_in(&env, c).await;
            let want: BTreeSet<String> = desired(c, &["web", "api"])
                .into_iter()
                .chain(
                    ["c0", "c3"]
                        .iter()
                        .filter(|o| **o != c)
                        .map(|o| format!("cart-{o}")),
                )
                .collect();
            if have != want {
                return Err(format!("{c}: have {have:?}, want {want:?}"));
            }
        }
        Ok(())
    })
    .await;
    no_overlapping_writers(&env).await;
    for r in [r1, r2, r4] {
        r.handle.shutdown().await;
    }
}

/// A replica whose lease rounds stall (SIGSTOP, a partition from PostgreSQL) while its writers
/// keep running: the fence stops its writes at its local deadline, before the lease expires in
/// the database and the peer takes over; once rounds resume it writes only after re-acquiring.
/// Upstream rule: client-go's `leaderelection` requires `RenewDeadline < LeaseDuration`, so a
/// leader that cannot renew stops acting before anyone else may acquire; linkplane's fence is the
/// same rule per cluster (deadline = renewal sent + duration − a fifth).
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn a_replica_past_its_lease_writes_nothing_until_it_holds_one_again(pool: sqlx::PgPool) {
    let env = Env::start_idle(pool, &CLUSTERS).await;
    fleet(&env, &["web"]).await;
    let a = replica(&env, "a").await;
    let b = replica(&env, "b").await;
    eventually("3 clusters each", || spread_is(&env, vec![&a, &b], &[3, 3])).await;
    eventually("mesh mirrored", || converged(&env, &["web"])).await;
    let a_clusters = a.handle.leases().owned();

    // Stall a's rounds; keep its clusters busy with changes so its writers have work.
    a.handle.leases().stall.set(true);
    let stalled = tokio::time::Instant::now();
    let churn = |round: usize| {
        let env = &env;
        async move {
            for c in CLUSTERS {
                let client = env.client(c).await;
                let svc = format!("churn{round}");
                export(&client, "shop", &svc, EXPORTED).await;
            }
        }
    };
    let mut round = 0;
    // Until past a's lease in the database (plus a round for b to notice).
    while stalled.elapsed() < LEASE + Duration::from_millis(700) {
        churn(round).await;
        round += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let marks: BTreeMap<&str, u64> = CLUSTERS
        .iter()
        .map(|c| (*c, env.sim.cluster(c).unwrap().request_mark()))
        .collect();
    assert!(a.handle.leases().owned().is_empty(), "a's deadlines passed");
    eventually("b owns everything while a is stalled", || {
        spread_is(&env, vec![&a, &b], &[0, 6])
    })
    .await;
    for _ in 0..5 {
        churn(round).await;
        round += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let services: Vec<String> = std::iter::once("web".to_string())
        .chain((0..round).map(|r| format!("churn{r}")))
        .collect();
    let services: Vec<&str> = services.iter().map(String::as_str).collect();
    eventually("b mirrors every change", || converged(&env, &services)).await;
    for c in &a_clusters {
        let since = env
            .sim
            .cluster(c)
            .unwrap()
            .requests_since(marks[c.as_str()]);
        let by_a = since
            .iter()
            .filter(|r| r.is_write() && r.user_agent.as_deref().is_some_and(|u| u.contains(&a.id)))
            .count();
        let by_b = since
            .iter()
            .filter(|r| r.is_write() && r.user_agent.as_deref().is_some_and(|u| u.contains(&b.id)))
            .count();
        assert_eq!(by_a, 0, "{c}: the stalled replica wrote after its lease");
        assert!(by_b > 0, "{c}: the peer took over and wrote");
    }

    // Resumed: a rejoins, gets its share back under new epochs, and the terms never overlap.
    a.handle.leases().stall.set(false);
    eventually("3 clusters each again", || {
        spread_is(&env, vec![&a, &b], &[3, 3])
    })
    .await;
    churn(round).await;
    let mut with_last = services.clone();
    let last = format!("churn{round}");
    with_last.push(&last);
    eventually("mesh mirrored after the resume", || {
        converged(&env, &with_last)
    })
    .await;
    no_overlapping_writers(&env).await;
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}
