//! How long to wait before trying again: the per-key [`Retry`] classes of the work queues, and
//! [`Backoff`] for the loops that retry one thing (connecting to a cluster, polling an API server
//! that stopped answering, a clean-up). A leaf module: errors classify themselves into it and the
//! queues schedule with it.

use std::time::Duration;

/// How soon a failed key may be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Our view was stale (a 409 on our own last write, an object gone, a ClusterIP not yet
    /// allocated): the watch catches up within milliseconds. 25 ms doubling to 5 s.
    Soon,
    /// The API server or the network failed (5xx, 429, timeouts, refused connections) or the
    /// database did: 250 ms doubling to 60 s.
    Transient,
    /// The API server refuses the write itself (400, 403, 422, …): it will keep refusing until
    /// something changes, and a change arrives as an event. 30 s doubling to 10 min.
    Permanent,
}

impl Retry {
    /// The delay before attempt `failures + 1`: `base × 2^(failures-1)` capped, with equal jitter
    /// (half fixed, half random), so retries of many keys spread out but never come sooner than
    /// half the backoff.
    pub fn delay(self, failures: u32) -> Duration {
        let (base, cap) = match self {
            Retry::Soon => (Duration::from_millis(25), Duration::from_secs(5)),
            Retry::Transient => (Duration::from_millis(250), Duration::from_secs(60)),
            Retry::Permanent => (Duration::from_secs(30), Duration::from_secs(600)),
        };
        let exp = base
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
            .min(cap);
        exp / 2 + exp.mul_f64(rand::random_range(0.0..0.5))
    }
}

/// Exponential backoff with equal jitter (half fixed, half random): 0.5 s doubling to 30 s.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub(crate) fn next(&mut self) -> Duration {
        let cap = 500u64.saturating_mul(1 << self.attempt.min(6)).min(30_000);
        self.attempt += 1;
        let ms = rand::random_range(cap / 2..=cap);
        Duration::from_millis(ms)
    }
}
