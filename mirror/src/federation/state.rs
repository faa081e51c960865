//! Batched federation-state writes: reconcilers send changed states here (unchanged ones are
//! filtered out by [`super::Federation::record`]); one task writes them in a transaction every
//! flush interval.

use std::{collections::HashMap, time::Duration};

use linkplane_store::{
    Store,
    federation::{self, FederatedStatus},
};
use tokio::sync::mpsc;

use super::RowKey;

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
