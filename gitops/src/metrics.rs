//! Prometheus metrics of the sync runtime. Labels are source names and results only (a handful
//! of sources, four results), never object names.

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

type Labels = Vec<(&'static str, String)>;

/// Sync durations from a no-op poll (milliseconds) to a large first apply (seconds).
const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Every metric the GitOps runtime exports; clones share the same series.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `linkplane_gitops_syncs_total{source, result}`.
    pub syncs: Family<Labels, Counter>,
    /// `linkplane_gitops_sync_duration_seconds{source}`.
    pub duration: Family<Labels, Histogram, fn() -> Histogram>,
    /// `linkplane_gitops_drifted_objects{source}`.
    pub drifted: Family<Labels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            syncs: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            drifted: Family::default(),
        }
    }
}

impl Metrics {
    /// Registers the series on `registry` (the server serves `/metrics`).
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "linkplane_gitops_syncs",
            "Sync attempts by source and result (Applied, Unchanged, Rejected, Failed, Skipped)",
            self.syncs.clone(),
        );
        r.register(
            "linkplane_gitops_sync_duration_seconds",
            "Duration of sync attempts",
            self.duration.clone(),
        );
        r.register(
            "linkplane_gitops_drifted_objects",
            "Objects that differ from the source's applied revision",
            self.drifted.clone(),
        );
    }

    pub(crate) fn observe(&self, source: &str, outcome: &crate::SyncOutcome) {
        let src: Labels = vec![("source", source.to_string())];
        let mut with_result = src.clone();
        with_result.push(("result", outcome.result.as_str().to_string()));
        self.syncs.get_or_create(&with_result).inc();
        self.duration
            .get_or_create(&src)
            .observe(outcome.duration.as_secs_f64());
        self.drifted
            .get_or_create(&src)
            .set(i64::try_from(outcome.drifted).unwrap_or(i64::MAX));
    }
}
