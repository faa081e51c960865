//! Prometheus metrics under Linkerd's service-mirror names (linkerd-compat §7.1), plus
//! linkplane's own write/error counters. Labels are cluster names and error kinds only.

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

type Labels = Vec<(&'static str, String)>;

/// Linkerd's `gateway_probe_latency_ms` buckets.
const LATENCY_BUCKETS: [f64; 25] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0,
    1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 10000.0, 20000.0, 30000.0, 40000.0, 50000.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every metric the mirror exports. Create once with [`Metrics::new`] on the server's registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `gateway_enabled{target_cluster_name}`.
    pub gateway_enabled: Family<Labels, Gauge>,
    /// `gateway_alive{target_cluster_name}`.
    pub gateway_alive: Family<Labels, Gauge>,
    /// `gateway_latency{target_cluster_name}`: last successful probe, ms.
    pub gateway_latency: Family<Labels, Gauge<f64, AtomicU64>>,
    /// `gateway_probe_latency_ms{target_cluster_name}`.
    pub gateway_probe_latency_ms: Family<Labels, Histogram, fn() -> Histogram>,
    /// `gateway_probes{target_cluster_name, probe_successful}`.
    pub gateway_probes: Family<Labels, Counter>,
    /// `service_mirror_endpoint_repairs{target_cluster_name}`.
    pub endpoint_repairs: Family<Labels, Counter>,
    /// `service_cache_size{cluster}`.
    pub service_cache_size: Family<Labels, Gauge>,
    /// `endpoints_cache_size{cluster}`.
    pub endpoints_cache_size: Family<Labels, Gauge>,
    /// `namespace_cache_size{cluster}`.
    pub namespace_cache_size: Family<Labels, Gauge>,
    /// `link_cache_size`: links the supervisor runs.
    pub link_cache_size: Gauge,
    /// `linkplane_mirror_writes{cluster, kind, reason}`: Kubernetes writes by the applier;
    /// `kind` is the object kind (`Service`, `Endpoints`, `Namespace`), `reason` why it was
    /// written (see [`Metrics::record_write`]). An unchanged fleet adds nothing to it.
    pub mirror_writes: Family<Labels, Counter>,
    /// Writes per cluster, all kinds and reasons (not exported; [`Metrics::total_writes`]).
    writes_by_cluster: Family<Labels, Counter>,
    /// `linkplane_mirror_errors{cluster, kind}`: failed reconciles by error kind.
    pub mirror_errors: Family<Labels, Counter>,
    /// `linkplane_cluster_writes_degraded{cluster}`: 1 while the cluster's reconciler is
    /// `Degraded` (writes failing transiently past `Options::degraded_after`), else 0.
    pub writes_degraded: Family<Labels, Gauge>,
    /// Remote-discovery credentials (`linkplane_remote_credential_*`).
    pub remote_access: crate::remote_access::gauges::RemoteAccessMetrics,
    /// The last probes of each target gateway, for exact percentiles in the API (not
    /// exported: the histogram above is the Prometheus view).
    pub probe_windows: linkplane_core::probes::ProbeWindows,
    /// `linkplane_cluster_leases_held`: clusters this replica owns (with leases).
    pub leases_held: Gauge,
    /// `linkplane_cluster_lease_epoch{cluster}`: fencing epoch of each lease held here.
    pub lease_epoch: Family<Labels, Gauge>,
    /// `linkplane_cluster_lease_remaining_seconds{cluster}`: time left before this replica
    /// stops writing into the cluster unless it renews (its local fencing deadline).
    pub lease_remaining: Family<Labels, Gauge<f64, AtomicU64>>,
    /// `linkplane_replicas_alive`: replicas with a fresh heartbeat, this one included.
    pub replicas_alive: Gauge,
    /// `linkplane_mcs_exports{cluster, state}`: ServiceExports by state, in the clusters this
    /// replica holds.
    pub mcs_exports: Family<Labels, Gauge>,
    /// `linkplane_mcs_imports{cluster, state}`: ServiceImports written, by state.
    pub mcs_imports: Family<Labels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            gateway_enabled: Family::default(),
            gateway_alive: Family::default(),
            gateway_latency: Family::default(),
            gateway_probe_latency_ms: Family::new_with_constructor(latency_histogram),
            gateway_probes: Family::default(),
            endpoint_repairs: Family::default(),
            service_cache_size: Family::default(),
            endpoints_cache_size: Family::default(),
            namespace_cache_size: Family::default(),
            link_cache_size: Gauge::default(),
            mirror_writes: Family::default(),
            writes_by_cluster: Family::default(),
            mirror_errors: Family::default(),
            writes_degraded: Family::default(),
            remote_access: Default::default(),
            probe_windows: Default::default(),
            leases_held: Gauge::default(),
            lease_epoch: Family::default(),
            lease_remaining: Family::default(),
            replicas_alive: Gauge::default(),
            mcs_exports: Family::default(),
            mcs_imports: Family::default(),
        }
    }
}

impl Metrics {
    /// Creates the metrics and registers them on `registry` (the server serves `/metrics`).
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self::default();
        m.register(registry);
        m
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "gateway_enabled",
            "Gateway probing enabled",
            self.gateway_enabled.clone(),
        );
        r.register(
            "gateway_alive",
            "Gateway is alive",
            self.gateway_alive.clone(),
        );
        r.register(
            "gateway_latency",
            "Latency of the last successful gateway probe (ms)",
            self.gateway_latency.clone(),
        );
        r.register(
            "gateway_probe_latency_ms",
            "Gateway probe latency (ms)",
            self.gateway_probe_latency_ms.clone(),
        );
        r.register(
            "gateway_probes",
            "Gateway probes performed",
            self.gateway_probes.clone(),
        );
        r.register(
            "service_mirror_endpoint_repairs",
            "Endpoint repair passes",
            self.endpoint_repairs.clone(),
        );
        r.register(
            "service_cache_size",
            "Services indexed per cluster",
            self.service_cache_size.clone(),
        );
        r.register(
            "endpoints_cache_size",
            "Endpoints indexed per cluster",
            self.endpoints_cache_size.clone(),
        );
        r.register(
            "namespace_cache_size",
            "Namespaces indexed per cluster",
            self.namespace_cache_size.clone(),
        );
        r.register(
            "link_cache_size",
            "Links being reconciled",
            self.link_cache_size.clone(),
        );
        r.register(
            "linkplane_mirror_writes",
            "Kubernetes writes made by the mirror applier, by object kind and reason",
            self.mirror_writes.clone(),
        );
        r.register(
            "linkplane_mirror_errors",
            "Failed mirror reconciles by error kind",
            self.mirror_errors.clone(),
        );
        r.register(
            "linkplane_cluster_writes_degraded",
            "1 while a cluster's writes keep failing transiently (its reconciler is Degraded)",
            self.writes_degraded.clone(),
        );
        self.remote_access.register(r);
        r.register(
            "linkplane_cluster_leases_held",
            "Clusters whose lease this replica holds (it runs their watches, writer and prober)",
            self.leases_held.clone(),
        );
        r.register(
            "linkplane_cluster_lease_epoch",
            "Fencing epoch of each cluster lease held by this replica",
            self.lease_epoch.clone(),
        );
        r.register(
            "linkplane_cluster_lease_remaining_seconds",
            "Seconds before this replica stops writing into the cluster unless its lease is renewed",
            self.lease_remaining.clone(),
        );
        r.register(
            "linkplane_replicas_alive",
            "linkplane replicas with a fresh heartbeat in the database",
            self.replicas_alive.clone(),
        );
        r.register(
            "linkplane_mcs_exports",
            "Multi-Cluster Services ServiceExports by cluster and state (Exported, Conflict, Pending, Invalid)",
            self.mcs_exports.clone(),
        );
        r.register(
            "linkplane_mcs_imports",
            "Multi-Cluster Services ServiceImports written, by consumer cluster and state",
            self.mcs_imports.clone(),
        );
    }

    /// Sets `linkplane_mcs_exports{cluster, state}`.
    pub(crate) fn set_mcs_exports(&self, cluster: &str, state: &str, n: usize) {
        self.mcs_exports
            .get_or_create(&vec![
                ("cluster", cluster.to_string()),
                ("state", state.to_string()),
            ])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Sets `linkplane_mcs_imports{cluster, state}`.
    pub(crate) fn set_mcs_imports(&self, cluster: &str, state: &str, n: usize) {
        self.mcs_imports
            .get_or_create(&vec![
                ("cluster", cluster.to_string()),
                ("state", state.to_string()),
            ])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Sets the lease gauges from what this replica holds now (`lost`: remove their series).
    pub(crate) fn record_leases(
        &self,
        held: &std::collections::BTreeMap<String, crate::lease::Held>,
        lost: &std::collections::BTreeSet<String>,
        alive: Option<usize>,
    ) {
        let now = tokio::time::Instant::now();
        for c in lost {
            self.lease_epoch.remove(&Self::cluster(c));
            self.lease_remaining.remove(&Self::cluster(c));
        }
        self.leases_held.set(held.len() as i64);
        for (c, h) in held {
            let l = Self::cluster(c);
            self.lease_epoch.get_or_create(&l).set(h.epoch);
            self.lease_remaining
                .get_or_create(&l)
                .set(h.deadline.saturating_duration_since(now).as_secs_f64());
        }
        if let Some(n) = alive {
            self.replicas_alive.set(n as i64);
        }
    }

    pub(crate) fn target(cluster: &str) -> Labels {
        vec![("target_cluster_name", cluster.to_string())]
    }

    pub(crate) fn cluster(cluster: &str) -> Labels {
        vec![("cluster", cluster.to_string())]
    }

    pub(crate) fn cluster_kind(cluster: &str, kind: &str) -> Labels {
        vec![("cluster", cluster.to_string()), ("kind", kind.to_string())]
    }

    /// Removes the gateway metrics of `target` (no link uses its gateway any more).
    pub(crate) fn remove_gateway(&self, target: &str) {
        let l = Self::target(target);
        self.gateway_enabled.remove(&l);
        self.gateway_alive.remove(&l);
        self.gateway_latency.remove(&l);
        self.gateway_probe_latency_ms.remove(&l);
        self.probe_windows.remove(target);
        for ok in ["true", "false"] {
            let mut p = l.clone();
            p.push(("probe_successful", ok.to_string()));
            self.gateway_probes.remove(&p);
        }
    }

    /// Counts one write into `cluster`. `reason` says why: `missing` (created), the first
    /// field that differed (`labels`, `annotations`, `ports`, `subsets`: replaced; `headless`:
    /// deleted and created again, clusterIP being immutable), or why it went (`unexported`,
    /// `policy-denied`, `invalid`, `stale-endpoint-mirror`, `mode-change`, `no-members`,
    /// `unlinked`).
    pub(crate) fn record_write(&self, cluster: &str, kind: &str, reason: &str) {
        self.record_writes(cluster, kind, reason, 1);
    }

    /// [`record_write`](Self::record_write) for `n` writes at once.
    pub(crate) fn record_writes(&self, cluster: &str, kind: &str, reason: &str, n: u64) {
        if n == 0 {
            return;
        }
        self.mirror_writes
            .get_or_create(&vec![
                ("cluster", cluster.to_string()),
                ("kind", kind.to_string()),
                ("reason", reason.to_string()),
            ])
            .inc_by(n);
        self.writes_by_cluster
            .get_or_create(&Self::cluster(cluster))
            .inc_by(n);
    }

    /// Writes into `cluster` so far (benchmarks and tests read this).
    pub fn total_writes(&self, cluster: &str) -> u64 {
        self.writes_by_cluster
            .get_or_create(&Self::cluster(cluster))
            .get()
    }

    /// Writes into `cluster` of `kind` for `reason` so far.
    pub fn writes(&self, cluster: &str, kind: &str, reason: &str) -> u64 {
        self.mirror_writes
            .get_or_create(&vec![
                ("cluster", cluster.to_string()),
                ("kind", kind.to_string()),
                ("reason", reason.to_string()),
            ])
            .get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_use_linkerd_names_and_target_cluster_labels() {
        let mut registry = Registry::default();
        let m = Metrics::new(&mut registry);
        let l = Metrics::target("east");
        m.gateway_alive.get_or_create(&l).set(1);
        m.gateway_probe_latency_ms.get_or_create(&l).observe(3.0);
        let mut p = l.clone();
        p.push(("probe_successful", "true".into()));
        m.gateway_probes.get_or_create(&p).inc();
        m.endpoint_repairs.get_or_create(&l).inc();
        m.service_cache_size
            .get_or_create(&Metrics::cluster("east"))
            .set(5);
        m.record_write("west", "Endpoints", "subsets");
        assert_eq!(m.total_writes("west"), 1);
        assert_eq!(m.writes("west", "Endpoints", "subsets"), 1);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        for needle in [
            "gateway_alive{target_cluster_name=\"east\"} 1",
            "gateway_probe_latency_ms_bucket{le=\"3.0\",target_cluster_name=\"east\"} 1",
            "gateway_probes_total{target_cluster_name=\"east\",probe_successful=\"true\"} 1",
            "service_mirror_endpoint_repairs_total{target_cluster_name=\"east\"} 1",
            "service_cache_size{cluster=\"east\"} 5",
            "linkplane_mirror_writes_total{cluster=\"west\",kind=\"Endpoints\",reason=\"subsets\"} 1",
        ] {
            assert!(out.contains(needle), "{needle} missing from:\n{out}");
        }
    }
}
