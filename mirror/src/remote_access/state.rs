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

/// The running credential tasks, by `(source, target)`.
#[derive(Default)]
pub(crate) struct RemoteAccess {
    pub(crate) tasks: Mutex<HashMap<Pair, PairTask>>,
    /// Woken when some cluster's namespace index changed: pairs waiting for their source's
    /// Linkerd namespace re-read that index instead of each opening a watch of its own.
    pub(crate) namespaces: tokio::sync::Notify,
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
