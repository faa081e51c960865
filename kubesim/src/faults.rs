//! Fault injection: what reliability tests (and the admin endpoint) can do to a cluster.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::Error;
use crate::cluster::ClusterInner;
use crate::status::ApiError;

/// How the simulated gateway answers its probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayMode {
    /// `200 OK`.
    Healthy,
    /// `500 Internal Server Error`.
    Failing,
    /// Accepts the connection and never answers (probe timeouts).
    Hanging,
}

/// Which error injected write failures return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFailure {
    /// `500 InternalError`.
    InternalError,
    /// `429 TooManyRequests` with `Retry-After: 1`.
    TooManyRequests,
}

/// Fault state shared by the listeners of one cluster.
#[derive(Debug)]
pub(crate) struct FaultState {
    latency_ms: AtomicU64,
    /// Fraction of writes to fail, in millionths.
    fail_ppm: AtomicU32,
    fail_code: AtomicU16,
    gateway: AtomicU8,
    sever: watch::Sender<u64>,
}

impl Default for FaultState {
    fn default() -> Self {
        Self {
            latency_ms: AtomicU64::new(0),
            fail_ppm: AtomicU32::new(0),
            fail_code: AtomicU16::new(500),
            gateway: AtomicU8::new(0),
            sever: watch::channel(0).0,
        }
    }
}

impl FaultState {
    /// Added latency per API request.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed))
    }

    /// The error an injected write failure answers with, if this write is to fail.
    pub fn injected_write_failure(&self) -> Option<ApiError> {
        let ppm = self.fail_ppm.load(Ordering::Relaxed);
        if ppm == 0 || rand::random_range(0..1_000_000u32) >= ppm {
            return None;
        }
        Some(match self.fail_code.load(Ordering::Relaxed) {
            429 => ApiError::too_many_requests(),
            _ => ApiError::internal("internal error (injected by kubesim)"),
        })
    }

    /// A receiver that changes when watches are severed.
    pub fn sever_receiver(&self) -> watch::Receiver<u64> {
        self.sever.subscribe()
    }

    /// The gateway's current mode.
    pub fn gateway(&self) -> GatewayMode {
        match self.gateway.load(Ordering::Relaxed) {
            1 => GatewayMode::Failing,
            2 => GatewayMode::Hanging,
            _ => GatewayMode::Healthy,
        }
    }
}

/// The fault-injection handle of one cluster (from [`SimCluster::faults`](crate::SimCluster::faults)).
#[derive(Clone)]
pub struct Faults {
    pub(crate) cluster: Arc<ClusterInner>,
}

impl Faults {
    /// Closes the API listener and every open connection (watches included). State is kept;
    /// [`Faults::start_api`] listens on the same port again.
    pub async fn stop_api(&self) {
        self.cluster.stop_listener().await;
    }

    /// Listens again on the same address after [`Faults::stop_api`]. A no-op when running.
    pub async fn start_api(&self) -> Result<(), Error> {
        self.cluster.start_listener().await
    }

    /// Stops and starts the API listener: every client connection and watch is cut.
    pub async fn restart_api(&self) -> Result<(), Error> {
        self.cluster.stop_listener().await;
        self.cluster.start_listener().await
    }

    /// Ends every open watch stream (clients see the stream close and re-watch).
    pub fn sever_watches(&self) {
        self.cluster.faults.sever.send_modify(|n| *n += 1);
    }

    /// Delays every API request by `latency` (zero turns it off).
    pub fn set_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.cluster.faults.latency_ms.store(ms, Ordering::Relaxed);
    }

    /// Fails `fraction` (0.0 to 1.0) of write requests with `failure`. `0.0` turns it off.
    pub fn fail_writes(&self, fraction: f64, failure: WriteFailure) {
        let ppm = (fraction.clamp(0.0, 1.0) * 1_000_000.0) as u32;
        let code = match failure {
            WriteFailure::InternalError => 500,
            WriteFailure::TooManyRequests => 429,
        };
        self.cluster.faults.fail_code.store(code, Ordering::Relaxed);
        self.cluster.faults.fail_ppm.store(ppm, Ordering::Relaxed);
    }

    /// Forgets the retained watch history: watches resuming from any older resourceVersion
    /// get `410 Gone` (reason `Expired`) and must relist.
    pub fn expire_watch_history(&self) {
        self.cluster.store.expire_history();
    }

    /// Sets how the simulated gateway answers its probe.
    pub fn set_gateway(&self, mode: GatewayMode) {
        let v = match mode {
            GatewayMode::Healthy => 0,
            GatewayMode::Failing => 1,
            GatewayMode::Hanging => 2,
        };
        self.cluster.faults.gateway.store(v, Ordering::Relaxed);
    }

    /// Clears latency, write failures and gateway faults (the listener state is untouched).
    pub fn clear(&self) {
        self.set_latency(Duration::ZERO);
        self.fail_writes(0.0, WriteFailure::InternalError);
        self.set_gateway(GatewayMode::Healthy);
    }
}
