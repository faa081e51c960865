//! Cluster ownership across replicas: several servers share one PostgreSQL and each cluster's
//! watch set, writer and gateway prober runs on exactly one of them, the holder of the cluster's
//! lease (`linkplane_store::leases`).
//!
//! Every `renew_interval` the [`LeaseManager`] heartbeats its replica row, reads the live
//! replicas, computes the desired owner of every cluster with rendezvous hashing under a load
//! bound ([`assign`]: even spread, few moves on join/leave), renews what it holds and should
//! hold, releases what it should not (the desired owner takes it on its next round), and
//! acquires what it should hold once it is free or expired.
//!
//! **Fencing.** After each successful acquire or renewal the replica sets an in-memory deadline
//! on the monotonic clock: the instant *before* it sent that statement, plus the lease duration,
//! minus a safety margin. The database's expiry is at least the statement's arrival plus the
//! duration, so the local deadline passes first, and a peer can take the lease only after the
//! database expiry. Every write request to a cluster goes through [`fenced_client`], which
//! refuses it unless [`LeaseTable::may_write`] holds *at the moment the request is sent*; the
//! writers also check it before each reconcile. A replica paused past its lease (SIGSTOP, a
//! long GC-like stall, a partition from PostgreSQL) therefore writes nothing after resuming:
//! its deadline has passed, and only a new acquire (under a new epoch) moves it again. The
//! margin must cover the time a request takes from the check to the API server applying it.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, RwLock},
    time::Duration,
};

use kube::Client;
use linkplane_store::{Store, leases};
use tokio::time::Instant;

/// Lease timings and this replica's identity (the server maps its flags onto these).
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// Unique per process start: `<name>-<random>`.
    pub replica_id: String,
    /// Host or pod name.
    pub replica_name: String,
    /// How long a lease lasts without renewal; a crashed replica's clusters are taken over
    /// after at most this plus one renew interval.
    pub duration: Duration,
    /// How often leases are renewed and the assignment recomputed.
    pub renew_interval: Duration,
    /// Subtracted from the local deadline: covers a write in flight and clock-rate drift.
    pub margin: Duration,
}

impl LeaseOptions {
    /// Options for a replica called `name` (a fresh random id suffix), default timings: a
    /// 10 s lease renewed every 2 s, so a `kill -9`ed replica's clusters move within 12 s.
    pub fn new(name: &str) -> Self {
        let suffix: u32 = rand::random();
        Self {
            replica_id: format!("{name}-{suffix:08x}"),
            replica_name: name.to_string(),
            duration: Duration::from_secs(10),
            renew_interval: Duration::from_secs(2),
            margin: Duration::from_secs(2),
        }
    }

    /// The user agent of every request this replica sends to a cluster, so an API server's
    /// audit log (kubesim's request log) tells replicas apart.
    pub fn user_agent(&self) -> String {
        format!(
            "linkplane/{} (replica {})",
            env!("CARGO_PKG_VERSION"),
            self.replica_id
        )
    }
}

/// A lease this replica holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Fencing token.
    pub epoch: i64,
    /// Writes stop at this instant unless the lease is renewed first.
    pub deadline: Instant,
}

/// The leases this replica holds, checked before every write. Without lease options (a single
/// replica, tests of the reconcilers alone) every cluster may be written.
#[derive(Debug, Default)]
pub struct LeaseTable {
    enabled: bool,
    held: RwLock<HashMap<String, Held>>,
    /// See [`RenewalStall`].
    pub stall: RenewalStall,
}

impl LeaseTable {
    /// A table that fences (`enabled`) or allows every write.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            held: RwLock::default(),
            stall: RenewalStall::default(),
        }
    }

    /// True when leases are in force.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// True when this replica may write into `cluster` now: it holds the lease and the local
    /// deadline has not passed.
    pub fn may_write(&self, cluster: &str) -> bool {
        !self.enabled || self.held(cluster).is_some()
    }

    /// The lease on `cluster` if held and not past its deadline.
    pub fn held(&self, cluster: &str) -> Option<Held> {
        let now = Instant::now();
        self.held
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(cluster)
            .copied()
            .filter(|h| now < h.deadline)
    }

    /// Clusters whose lease is held and current.
    pub fn owned(&self) -> BTreeSet<String> {
        let now = Instant::now();
        self.held
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, h)| now < h.deadline)
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// Every lease held, with deadlines (for metrics).
    pub fn snapshot(&self) -> BTreeMap<String, Held> {
        self.held
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(c, h)| (c.clone(), *h))
            .collect()
    }

    fn set(&self, cluster: &str, held: Held) {
        self.held
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cluster.to_string(), held);
    }

    fn remove(&self, cluster: &str) -> Option<Held> {
        self.held
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(cluster)
    }

    fn clear(&self) {
        self.held.write().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// 64-bit FNV-1a with a final avalanche: stable across processes and Rust versions (every
/// replica must compute the same assignment, also during a rolling upgrade).
fn score(replica: &str, cluster: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in replica.bytes().chain([0xff]).chain(cluster.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 finaliser: FNV alone clusters similar short names.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The desired owner of each cluster: rendezvous (highest-random-weight) hashing with a load
/// bound (each replica takes `floor(clusters / replicas)`, some one more), sticky to the
/// current holders. A cluster stays with its live holder while that holder is under the bound;
/// the rest go to their highest-scoring replica below the bound, clusters taken in a fixed
/// order. So the spread is even (loads differ by at most one) and a replica joining or leaving
/// moves only what it must: a leaver's clusters, or the newcomer's share (the move-minimal
/// property of bounded-load consistent hashing, which a from-scratch recomputation loses:
/// the load bound then reshuffles clusters between survivors too). Pure and deterministic:
/// every replica computes the same map from the same inputs (the holders are read from the
/// same lease table).
pub fn assign<'a>(
    clusters: impl IntoIterator<Item = &'a str>,
    replicas: &[String],
    holders: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if replicas.is_empty() {
        return out;
    }
    let mut clusters: Vec<&str> = clusters.into_iter().collect();
    clusters.sort_unstable();
    clusters.dedup();
    // Every replica may take `floor` clusters; `extra` of them one more: loads end in
    // {floor, floor + 1}, which is as even as it gets.
    let floor = clusters.len() / replicas.len();
    let mut extra = clusters.len() % replicas.len();
    // Clusters in order of their best score: a cluster with a strong first choice claims it
    // before weaker ones fill the replica up (less movement than name order).
    let mut ranked: Vec<(u64, &str, Vec<usize>)> = clusters
        .iter()
        .map(|c| {
            let mut order: Vec<(u64, usize)> = replicas
                .iter()
                .enumerate()
                .map(|(i, r)| (score(r, c), i))
                .collect();
            order.sort_unstable_by(|a, b| b.cmp(a));
            (order[0].0, *c, order.into_iter().map(|(_, i)| i).collect())
        })
        .collect();
    ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut load = vec![0usize; replicas.len()];
    let mut take = |i: usize, load: &mut [usize]| -> bool {
        let room = load[i] < floor || (load[i] == floor && extra > 0);
        if room {
            if load[i] == floor {
                extra -= 1;
            }
            load[i] += 1;
        }
        room
    };
    // Pass 1: holders keep what fits under the bound.
    let mut rest = Vec::with_capacity(ranked.len());
    for (_, cluster, order) in ranked {
        let holder = holders
            .get(cluster)
            .and_then(|h| replicas.iter().position(|r| r == h));
        match holder {
            Some(i) if take(i, &mut load) => {
                out.insert(cluster.to_string(), replicas[i].clone());
            }
            _ => rest.push((cluster, order)),
        }
    }
    // Pass 2: the rest by score. The bounds add up to the cluster count, so each finds room.
    for (cluster, order) in rest {
        if let Some(i) = order.into_iter().find(|&i| take(i, &mut load)) {
            out.insert(cluster.to_string(), replicas[i].clone());
        }
    }
    out
}

/// What one round changed, for the supervisor.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RoundOutcome {
    /// Leases taken this round (a new term: the cluster needs a full pass).
    pub gained: BTreeSet<String>,
    /// Leases released, refused or expired this round.
    pub lost: BTreeSet<String>,
    /// Live replicas seen this round (none when the database could not be read).
    pub alive: Option<usize>,
}

/// Runs the lease rounds of one replica.
pub struct LeaseManager {
    store: Store,
    options: LeaseOptions,
    table: Arc<LeaseTable>,
}

/// Fault injection for tests: while set, lease rounds do nothing (as if the replica were
/// paused or cut off from PostgreSQL) but its writers keep running, so the fence alone must
/// stop them.
#[derive(Debug, Default)]
pub struct RenewalStall(std::sync::atomic::AtomicBool);

impl RenewalStall {
    /// Stalls (true) or resumes (false) lease rounds.
    pub fn set(&self, stalled: bool) {
        self.0.store(stalled, std::sync::atomic::Ordering::Release);
    }

    fn get(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl std::fmt::Debug for LeaseManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseManager")
            .field("replica", &self.options.replica_id)
            .finish_non_exhaustive()
    }
}

impl LeaseManager {
    /// A manager filling `table`.
    pub fn new(store: Store, options: LeaseOptions, table: Arc<LeaseTable>) -> Self {
        Self {
            store,
            options,
            table,
        }
    }

    /// The options.
    pub fn options(&self) -> &LeaseOptions {
        &self.options
    }

    /// One round over `clusters` (those some link needs). Database errors end the round early:
    /// the leases held keep their local deadlines and lapse on their own if the database stays
    /// away, so a replica cut off from PostgreSQL stops writing within one lease duration.
    pub async fn round(&self, clusters: &BTreeSet<String>) -> RoundOutcome {
        let mut out = RoundOutcome::default();
        if self.table.stall.get() {
            return out;
        }
        // Deadlines that passed are losses whatever the database says.
        let now = Instant::now();
        for (c, h) in self.table.snapshot() {
            if h.deadline <= now {
                self.table.remove(&c);
                out.lost.insert(c);
            }
        }
        if let Err(e) = self.try_round(clusters, &mut out).await {
            tracing::warn!(error = %e, replica = %self.options.replica_id, "lease round interrupted; leases lapse unless renewed");
        }
        out
    }

    async fn try_round(
        &self,
        clusters: &BTreeSet<String>,
        out: &mut RoundOutcome,
    ) -> linkplane_store::Result<()> {
        let o = &self.options;
        let me = o.replica_id.as_str();
        let mut conn = self.store.acquire().await?;
        leases::heartbeat(&mut conn, me, &o.replica_name, o.duration).await?;
        leases::prune(&mut conn).await?;
        let mut alive: Vec<String> = leases::list_replicas(&mut conn)
            .await?
            .into_iter()
            .filter(|r| r.alive)
            .map(|r| r.id)
            .collect();
        if !alive.iter().any(|r| r == me) {
            alive.push(me.to_string());
        }
        out.alive = Some(alive.len());
        let holders: BTreeMap<String, String> = leases::list(&mut conn)
            .await?
            .into_iter()
            .filter(|l| l.valid)
            .filter_map(|l| Some((l.cluster, l.holder?)))
            .collect();
        let desired = assign(clusters.iter().map(String::as_str), &alive, &holders);
        // Release first (a peer waits for them), then renew, then acquire.
        for (c, _) in self.table.snapshot() {
            if desired.get(&c).map(String::as_str) != Some(me) {
                self.table.remove(&c);
                out.lost.insert(c.clone());
                leases::release(&mut conn, &c, me).await?;
                tracing::info!(cluster = %c, replica = me, "lease released: rebalanced to another replica");
            }
        }
        for (c, owner) in &desired {
            if owner != me {
                continue;
            }
            let sent = Instant::now();
            let deadline = sent + o.duration.saturating_sub(o.margin);
            if let Some(h) = self.table.snapshot().get(c) {
                if leases::renew(&mut conn, c, me, h.epoch, o.duration).await? {
                    self.table.set(
                        c,
                        Held {
                            epoch: h.epoch,
                            deadline,
                        },
                    );
                    continue;
                }
                // Lost while we were away: stop at once, then try to take it again below.
                self.table.remove(c);
                out.lost.insert(c.clone());
                tracing::warn!(cluster = %c, replica = me, epoch = h.epoch, "lease lost (expired or taken)");
            }
            let sent = Instant::now();
            if let Some(epoch) = leases::acquire(&mut conn, c, me, o.duration).await? {
                let deadline = sent + o.duration.saturating_sub(o.margin);
                self.table.set(c, Held { epoch, deadline });
                out.lost.remove(c);
                out.gained.insert(c.clone());
                tracing::info!(cluster = %c, replica = me, epoch, "lease acquired");
            }
        }
        Ok(())
    }

    /// Graceful shutdown: forgets every lease locally (writes stop now), then frees them and
    /// deregisters in the database so peers take over on their next round.
    pub async fn release_all(&self) {
        self.table.clear();
        let res = async {
            let mut conn = self.store.acquire().await?;
            leases::deregister(&mut conn, &self.options.replica_id).await
        }
        .await;
        match res {
            Ok(()) => tracing::info!(replica = %self.options.replica_id, "leases released"),
            Err(e) => {
                tracing::warn!(error = %e, "releasing leases; peers take over when they expire")
            }
        }
    }
}

/// The error a fenced client answers for a write without a current lease.
#[derive(Debug, thiserror::Error)]
#[error("not the lease holder of cluster {cluster}: write refused (fencing)")]
pub struct Fenced {
    /// The cluster.
    pub cluster: String,
}

fn is_write(m: &http::Method) -> bool {
    !matches!(
        *m,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    )
}

/// Wraps `client` so every request carries `user_agent`, and every write request to `cluster`
/// is refused unless `table` says this replica holds its lease at the moment it is sent.
pub fn fenced_client(
    client: Client,
    cluster: &str,
    user_agent: &str,
    table: Arc<LeaseTable>,
) -> Client {
    let ns = client.default_namespace().to_string();
    let cluster = cluster.to_string();
    let ua = http::HeaderValue::from_str(user_agent)
        .unwrap_or_else(|_| http::HeaderValue::from_static("linkplane"));
    let svc = tower::service_fn(move |mut req: http::Request<kube::client::Body>| {
        let (client, table, cluster, ua) =
            (client.clone(), table.clone(), cluster.clone(), ua.clone());
        async move {
            req.headers_mut().insert(http::header::USER_AGENT, ua);
            if is_write(req.method()) && !table.may_write(&cluster) {
                return Err(tower::BoxError::from(Fenced { cluster }));
            }
            client.send(req).await.map_err(tower::BoxError::from)
        }
    });
    Client::new(svc, ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize, prefix: &str) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    fn none() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn loads(a: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for r in a.values() {
            *m.entry(r.clone()).or_default() += 1;
        }
        m
    }

    #[test]
    fn every_cluster_gets_exactly_one_owner_and_loads_differ_by_at_most_one() {
        let clusters = names(100, "cluster-");
        for r in 1..=7 {
            let replicas = names(r, "replica-");
            let a = assign(clusters.iter().map(String::as_str), &replicas, &none());
            assert_eq!(a.len(), 100);
            let l = loads(&a);
            let (min, max) = (l.values().min().copied(), l.values().max().copied());
            assert_eq!(l.len(), r, "every replica gets clusters");
            assert!(
                max.unwrap_or(0) - min.unwrap_or(0) <= 1,
                "{r} replicas: {l:?}"
            );
            assert!(max.unwrap_or(0) <= 100usize.div_ceil(r));
        }
    }

    fn moved(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> usize {
        before
            .iter()
            .filter(|(c, r)| after.get(*c) != Some(r))
            .count()
    }

    #[test]
    fn a_replica_joining_moves_only_its_share() {
        let clusters = names(100, "c");
        let before = assign(clusters.iter().map(String::as_str), &names(3, "r"), &none());
        let after = assign(clusters.iter().map(String::as_str), &names(4, "r"), &before);
        // The newcomer's share (25) and not one more: every other cluster stays with its holder.
        assert_eq!(moved(&before, &after), 25);
        assert_eq!(loads(&after).get("r3"), Some(&25));
    }

    #[test]
    fn a_replica_leaving_moves_only_its_own_clusters() {
        let clusters = names(100, "c");
        let r3 = names(3, "r");
        let before = assign(clusters.iter().map(String::as_str), &r3, &none());
        let after = assign(clusters.iter().map(String::as_str), &r3[..2], &before);
        let had = before.values().filter(|r| *r == "r2").count();
        assert_eq!(moved(&before, &after), had);
        let l = loads(&after);
        assert!(l["r0"].abs_diff(l["r1"]) <= 1, "{l:?}");
    }

    /// The flake this pins: ownership is history (the first replica took every cluster, the
    /// others joined later), not the from-scratch assignment; a leave must still move only the
    /// leaver's clusters.
    #[test]
    fn a_leave_after_history_moves_only_the_leavers_clusters() {
        let clusters = names(6, "c");
        let all = names(3, "r");
        let alone = assign(clusters.iter().map(String::as_str), &all[..1], &none());
        let two = assign(clusters.iter().map(String::as_str), &all[..2], &alone);
        let three = assign(clusters.iter().map(String::as_str), &all, &two);
        assert!(loads(&three).values().all(|&n| n == 2), "{three:?}");
        let survivors = [all[0].clone(), all[2].clone()];
        let after = assign(clusters.iter().map(String::as_str), &survivors, &three);
        assert_eq!(moved(&three, &after), 2, "{three:?} → {after:?}");
        assert!(loads(&after).values().all(|&n| n == 3), "{after:?}");
    }

    #[test]
    fn holders_that_are_not_live_replicas_are_ignored() {
        let clusters = names(10, "c");
        let gone: BTreeMap<String, String> = clusters
            .iter()
            .map(|c| (c.clone(), "gone".to_string()))
            .collect();
        let a = assign(clusters.iter().map(String::as_str), &names(2, "r"), &gone);
        assert_eq!(
            a,
            assign(clusters.iter().map(String::as_str), &names(2, "r"), &none())
        );
    }

    #[test]
    fn the_assignment_is_the_same_whatever_the_input_order() {
        let mut clusters = names(20, "c");
        let a = assign(clusters.iter().map(String::as_str), &names(3, "r"), &none());
        clusters.reverse();
        let b = assign(clusters.iter().map(String::as_str), &names(3, "r"), &none());
        assert_eq!(a, b);
        assert!(assign(["a"], &[], &none()).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_past_its_deadline_allows_no_write() {
        let t = LeaseTable::new(true);
        assert!(!t.may_write("east"));
        t.set(
            "east",
            Held {
                epoch: 3,
                deadline: Instant::now() + Duration::from_secs(5),
            },
        );
        assert!(t.may_write("east"));
        assert!(!t.may_write("west"));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(!t.may_write("east"));
        assert!(t.owned().is_empty());
        assert!(LeaseTable::new(false).may_write("west"));
    }
}
