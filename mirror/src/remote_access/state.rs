//! What the supervisor holds of the credential tasks: one per `(source, target)` pair, with the
//! spec it works from. A leaf, so the shared state can hold it.

use std::{collections::HashMap, sync::Mutex};

use linkplane_core::Cluster;
use tokio::{sync::watch, task::JoinHandle};

/// What one pair's task works from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PairSpec {
    pub(crate) source: Cluster,
    pub(crate) target: Cluster,
    /// Some link of the pair adopts Linkerd's objects: a `cluster-credentials-<target>` Secret
    /// that Linkerd wrote is taken over.
    pub(crate) adopt: bool,
    /// Some link of the pair deletes what it made when it goes.
    pub(crate) cleanup: bool,
}

pub(crate) type Pair = (String, String);

pub(crate) struct PairTask {
    pub(crate) spec: watch::Sender<PairSpec>,
    pub(crate) task: JoinHandle<()>,
}

/// Pairs provisioning at once, per replica. A pass is a handful of sequential requests to two
/// clusters; a fleet's start begins every pass together (9,900 in a 100-cluster mesh), and
/// HTTP/1.1 pools open a connection per request in flight, so unbounded that meant tens of
/// thousands of TLS connections and GiBs of buffers before the first mirror was written
/// (BENCHMARKS.md, fleet scale). Credentials are not on the mirrors' latency path: 16 passes at
/// once provision a 9,900-pair mesh in a few minutes and leave the writers the API servers.
pub(crate) const PAIRS_IN_FLIGHT: usize = 16;

/// The running credential tasks, by `(source, target)`.
pub(crate) struct RemoteAccess {
    pub(crate) tasks: Mutex<HashMap<Pair, PairTask>>,
    /// Permits for provisioning passes ([`PAIRS_IN_FLIGHT`]).
    pub(crate) passes: tokio::sync::Semaphore,
    /// Woken when some cluster's namespace index changed: pairs waiting for their source's
    /// Linkerd namespace re-read that index instead of each opening a watch of its own.
    pub(crate) namespaces: tokio::sync::Notify,
}

impl Default for RemoteAccess {
    fn default() -> Self {
        Self {
            tasks: Mutex::default(),
            passes: tokio::sync::Semaphore::new(PAIRS_IN_FLIGHT),
            namespaces: tokio::sync::Notify::default(),
        }
    }
}

impl RemoteAccess {
    /// A namespace appeared or vanished in some cluster, or its namespace index was (re)listed:
    /// wakes the pairs waiting for their source's Linkerd namespace.
    pub(crate) fn namespaces_changed(&self) {
        self.namespaces.notify_waiters();
    }

    /// Stops every task (shutdown); nothing is deleted.
    pub(crate) fn stop_all(&self) {
        for (_, t) in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            t.task.abort();
        }
    }
}
