//! What the shared state holds of Multi-Cluster Services: the exports seen, the objects written,
//! and the wake-up of the pass. A leaf, so the shared state can hold it.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Mutex, RwLock},
};

use linkplane_store::mcs::{McsExportStatus, McsImportStatus};
use serde_json::Value;
use tokio::{sync::Notify, task::JoinHandle};

use crate::config::Snapshot;

/// One `ServiceExport` as indexed.
#[derive(Debug, Clone)]
pub(crate) struct Export {
    pub(crate) created: Option<chrono::DateTime<chrono::Utc>>,
    pub(crate) generation: Option<i64>,
    pub(crate) conditions: Vec<Value>,
}

pub(crate) type ExportKey = (String, String);
/// `(cluster, kind, namespace, name)` of an object MCS writes.
pub(crate) type WrittenKey = (String, &'static str, String, String);

/// MCS state shared by the supervisor's tasks.
#[derive(Default)]
pub(crate) struct Mcs {
    /// ServiceExports by exporting cluster, once its watch listed.
    pub(crate) exports: RwLock<HashMap<String, BTreeMap<ExportKey, Export>>>,
    pub(crate) watchers: Mutex<HashMap<String, JoinHandle<()>>>,
    pub(crate) installed: Mutex<BTreeSet<String>>,
    /// Last written object per `(cluster, kind, namespace, name)` (skip identical writes).
    pub(crate) written: Mutex<HashMap<WrittenKey, Value>>,
    pub(crate) wake: Notify,
    /// Some unpaused link has MCS on: only then do watch events need a pass.
    pub(crate) active: std::sync::atomic::AtomicBool,
    /// The state rows last sent to Postgres per cluster (skip identical replaces).
    pub(crate) recorded: Mutex<HashMap<StateKey, StateRows>>,
}

impl Mcs {
    /// Whether `cluster` has a `ServiceExport` named `namespace/name`.
    pub(crate) fn is_exported(&self, cluster: &str, namespace: &str, name: &str) -> bool {
        self.exports
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(cluster)
            .is_some_and(|m| m.contains_key(&(namespace.to_string(), name.to_string())))
    }

    /// Asks for a reconcile pass.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// A watch event: asks for a pass only while some link has MCS on, so fleets without MCS
    /// pay nothing per event.
    pub(crate) fn on_event(&self) {
        if self.active.load(std::sync::atomic::Ordering::Relaxed) {
            self.wake();
        }
    }

    /// After a configuration reload: records whether any unpaused link has MCS on and asks for
    /// a pass (which also removes what links no longer ask for).
    pub(crate) fn on_reload(&self, snap: &Snapshot) {
        let active = snap
            .links
            .values()
            .any(|l| !l.paused && l.link.spec.mcs_enabled().is_some());
        self.active
            .store(active, std::sync::atomic::Ordering::Relaxed);
        self.wake();
    }

    pub(crate) fn synced(&self, cluster: &str) -> bool {
        self.exports
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(cluster)
    }

    pub(crate) fn exports_of(&self, cluster: &str) -> BTreeMap<ExportKey, Export> {
        self.exports
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(cluster)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn stop_all(&self) {
        for (_, t) in self
            .watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            t.abort();
        }
    }
}

/// Whose rows a state write replaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum StateKey {
    /// The exports of this cluster (`mcs_exports`).
    Exports(String),
    /// The imports written into this consumer (`mcs_imports`).
    Imports(String),
}

/// A cluster's whole set of rows of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StateRows {
    Exports(Vec<McsExportStatus>),
    Imports(Vec<McsImportStatus>),
}
