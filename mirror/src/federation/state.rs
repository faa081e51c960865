//! Federation's state, a leaf the shared state holds: the queue key ([`FedKey`]), the state rows
//! as last written ([`Federation`]) and their batched writer: reconcilers send changed states
//! here (unchanged ones are filtered out by [`Federation::record`]); one task writes them in a
//! transaction every flush interval.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Mutex,
    time::Duration,
};

use linkplane_store::{
    Store,
    federation::{self, FederatedStatus},
};
use tokio::sync::mpsc;

/// Suffix of every federated Service's name.
pub(crate) const SUFFIX: &str = "-federated";

/// A unit of federation work in one source cluster: the federated service of `namespace/service`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FedKey {
    /// Namespace shared by every member.
    pub namespace: String,
    /// Base service name shared by every member (the Service written is `<service>-federated`).
    pub service: String,
}

pub(crate) type RowKey = (String, String, String);

/// Federation state shared by the supervisor's tasks: the state rows as last written (so
/// unchanged states are not rewritten and every key with a row is revisited by a full pass) and
/// the batched writer.
pub(crate) struct Federation {
    rows: Mutex<HashMap<RowKey, FederatedStatus>>,
    sink: Sink,
    /// Source clusters waiting for a full pass (see `federation::full_pass`).
    pub(crate) passes: Mutex<BTreeSet<String>>,
    pub(crate) pass_wanted: tokio::sync::Notify,
}

impl Federation {
    /// Loads the existing state rows and starts the batched writer.
    pub(crate) async fn start(store: &Store, flush: std::time::Duration) -> Self {
        let rows = load(store).await;
        Self {
            rows: Mutex::new(rows),
            sink: spawn(store.clone(), flush),
            passes: Mutex::new(BTreeSet::new()),
            pass_wanted: tokio::sync::Notify::new(),
        }
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<RowKey, FederatedStatus>> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `status` unless it is the state already written.
    pub(crate) fn record(&self, mut status: FederatedStatus) {
        normalize(&mut status);
        let key = (
            status.source_cluster.clone(),
            status.namespace.clone(),
            status.service.clone(),
        );
        let mut rows = self.rows();
        if rows.get(&key) == Some(&status) {
            return;
        }
        rows.insert(key, status.clone());
        drop(rows);
        self.sink.send(Op::Upsert(status));
    }

    /// Forgets the state of `source`'s `ns/svc`, if it has one.
    pub(crate) fn forget(&self, source: &str, namespace: &str, service: &str) {
        let key = (
            source.to_string(),
            namespace.to_string(),
            service.to_string(),
        );
        if self.rows().remove(&key).is_some() {
            self.sink.send(Op::Delete(key));
        }
    }

    pub(crate) fn keys_with_rows(&self, source: &str) -> Vec<FedKey> {
        self.rows()
            .keys()
            .filter(|(s, _, _)| s == source)
            .map(|(_, ns, svc)| FedKey {
                namespace: ns.clone(),
                service: svc.clone(),
            })
            .collect()
    }
}

/// One state change.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Record this state (and member list).
    Upsert(FederatedStatus),
    /// Forget `(source, namespace, service)`: no member remains.
    Delete(RowKey),
}

/// Sender side.
pub(crate) struct Sink(mpsc::UnboundedSender<Op>);

impl Sink {
    pub(crate) fn send(&self, op: Op) {
        // The writer lives as long as the supervisor; a send after shutdown is moot.
        let _ = self.0.send(op);
    }
}

/// Members in a canonical order (local first, then by cluster name), so a state read back from
/// Postgres compares equal to the same state planned again.
pub(crate) fn normalize(s: &mut FederatedStatus) {
    s.members
        .sort_by(|a, b| (!a.is_local, &a.cluster).cmp(&(!b.is_local, &b.cluster)));
}

/// Every state row, keyed by `(source, namespace, service)`. A read failure is logged and
/// yields nothing: rows are then rewritten or forgotten as keys are visited.
pub(crate) async fn load(store: &Store) -> HashMap<RowKey, FederatedStatus> {
    let mut out = HashMap::new();
    let res: linkplane_store::Result<()> = async {
        let mut conn = store.acquire().await?;
        let mut after = 0;
        loop {
            let page = federation::list(&mut conn, None, None, after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for row in page {
                let mut s = row.status;
                normalize(&mut s);
                out.insert(
                    (
                        s.source_cluster.clone(),
                        s.namespace.clone(),
                        s.service.clone(),
                    ),
                    s,
                );
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = res {
        tracing::warn!(error = %e, "reading federation states; starting without them");
    }
    out
}

/// Starts the writer task; it ends when every sender is dropped.
pub(crate) fn spawn(store: Store, flush: Duration) -> Sink {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(store, flush, rx));
    Sink(tx)
}

async fn run(store: Store, flush: Duration, rx: mpsc::UnboundedReceiver<Op>) {
    // Newest op per key wins, in the durable writer's pending set.
    crate::status::run_durable(
        store,
        flush,
        rx,
        "committing federation states",
        crate::status::AsIs,
    )
    .await;
}

impl crate::status::StateOp for Op {
    type Key = RowKey;

    fn key(&self) -> RowKey {
        match self {
            Op::Upsert(s) => (
                s.source_cluster.clone(),
                s.namespace.clone(),
                s.service.clone(),
            ),
            Op::Delete(k) => k.clone(),
        }
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut linkplane_store::PgConnection,
    ) -> futures::future::BoxFuture<'a, linkplane_store::Result<()>> {
        Box::pin(apply(conn, self))
    }
}

async fn apply(conn: &mut linkplane_store::PgConnection, op: &Op) -> linkplane_store::Result<()> {
    match op {
        Op::Upsert(s) => federation::upsert(conn, s).await,
        Op::Delete((source, ns, svc)) => {
            federation::delete(conn, source, ns, svc).await.map(|_| ())
        }
    }
}
