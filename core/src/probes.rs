//! Recent gateway probe results per target cluster and their latency percentiles: what
//! `linkplane gateways` and `Gateway.latency` show (Linkerd's `multicluster gateways` shows
//! the p50/p95/p99 of its `gateway_probe_latency_ms` histogram over a time range; here they are
//! exact over a bounded window of the most recent probes).
//!
//! A window holds the last [`WINDOW`] probes of one target: memory is bounded by the number of
//! targets, and a change in the gateway's behaviour shows within one window (5 minutes at
//! Linkerd's default 3 s probe period). The windows live in the process running the prober;
//! [`ProbeWindows`] is a cheap, cloneable handle the API reads.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, PoisonError, RwLock},
};

/// Probes kept per target: 100 × 3 s = 5 minutes of history at the default period.
pub const WINDOW: usize = 100;

/// Latency percentiles of the successful probes in a window, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// What a window says about a target's gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSummary {
    /// Latency percentiles of the successful probes; `None` without a success in the window.
    pub latency: Option<Percentiles>,
    /// Probes in the window.
    pub probes: usize,
    /// Successful probes in the window.
    pub successes: usize,
    /// Failures since the last success (may exceed the window).
    pub consecutive_failures: u32,
}

/// The last [`WINDOW`] probes of one target: `Some(latency)` for a success, `None` for a
/// failure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeWindow {
    recent: VecDeque<Option<f64>>,
    consecutive_failures: u32,
}

impl ProbeWindow {
    /// Records one probe, dropping the oldest past [`WINDOW`].
    pub fn record(&mut self, latency_ms: Option<f64>) {
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        // A non-finite latency cannot be ordered: it counts as a probe without a latency.
        self.recent
            .push_back(latency_ms.filter(|ms| ms.is_finite()));
        match latency_ms {
            Some(_) => self.consecutive_failures = 0,
            None => self.consecutive_failures = self.consecutive_failures.saturating_add(1),
        }
    }

    /// The window's summary.
    pub fn summary(&self) -> ProbeSummary {
        let mut ok: Vec<f64> = self.recent.iter().flatten().copied().collect();
        ok.sort_by(f64::total_cmp);
        ProbeSummary {
            latency: percentiles(&ok),
            probes: self.recent.len(),
            successes: ok.len(),
            consecutive_failures: self.consecutive_failures,
        }
    }
}

/// Nearest-rank percentiles of sorted samples (the smallest sample with at least q of the
/// samples at or below it); `None` for no samples.
pub fn percentiles(sorted: &[f64]) -> Option<Percentiles> {
    if sorted.is_empty() {
        return None;
    }
    let rank = |q: f64| {
        let n = sorted.len();
        let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
        sorted[i]
    };
    Some(Percentiles {
        p50: rank(0.50),
        p95: rank(0.95),
        p99: rank(0.99),
    })
}

/// Every target's window, shared between the prober (writes) and the API (reads).
#[derive(Debug, Clone, Default)]
pub struct ProbeWindows(Arc<RwLock<BTreeMap<String, ProbeWindow>>>);

impl ProbeWindows {
    /// Records one probe of `target`'s gateway.
    pub fn record(&self, target: &str, latency_ms: Option<f64>) {
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        map.entry(target.to_string())
            .or_default()
            .record(latency_ms);
    }

    /// The summary of `target`'s window, if it was probed.
    pub fn summary(&self, target: &str) -> Option<ProbeSummary> {
        let map = self.0.read().unwrap_or_else(PoisonError::into_inner);
        map.get(target).map(ProbeWindow::summary)
    }

    /// Forgets `target` (its prober stopped).
    pub fn remove(&self, target: &str) {
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        map.remove(target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_over_successes_only() {
        let mut w = ProbeWindow::default();
        for ms in 1..=100 {
            w.record(Some(ms as f64));
        }
        w.record(None);
        let s = w.summary();
        // The window keeps the last 100: 2..=100 and one failure.
        assert_eq!(
            (s.probes, s.successes, s.consecutive_failures),
            (100, 99, 1)
        );
        let p = s.latency.unwrap();
        assert_eq!((p.p50, p.p95, p.p99), (51.0, 96.0, 100.0));
    }

    #[test]
    fn a_window_is_bounded_and_a_success_resets_the_failure_count() {
        let mut w = ProbeWindow::default();
        for _ in 0..(WINDOW + 50) {
            w.record(None);
        }
        let s = w.summary();
        assert_eq!(s.probes, WINDOW);
        assert_eq!(s.consecutive_failures, (WINDOW + 50) as u32);
        assert_eq!(s.latency, None, "no success, no latency");
        w.record(Some(f64::NAN));
        w.record(Some(7.0));
        let s = w.summary();
        assert_eq!(s.consecutive_failures, 0);
        assert_eq!(s.latency.unwrap().p99, 7.0);
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let p = percentiles(&[4.5]).unwrap();
        assert_eq!((p.p50, p.p95, p.p99), (4.5, 4.5, 4.5));
        assert_eq!(percentiles(&[]), None);
    }

    #[test]
    fn handles_share_windows() {
        let a = ProbeWindows::default();
        let b = a.clone();
        a.record("east", Some(2.0));
        assert_eq!(b.summary("east").unwrap().successes, 1);
        b.remove("east");
        assert_eq!(a.summary("east"), None);
    }
}
