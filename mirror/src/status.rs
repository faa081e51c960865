//! Batched mirror-state writes: reconcilers send states here; one task writes them to Postgres in
//! a transaction every flush interval, skipping states identical to the last one written, so the
//! database is never the bottleneck and nothing is silent.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use linkplane_store::{
    Store,
    mirrors::{self, MirrorState, MirrorStatus},
};
use tokio::sync::mpsc;

type Key = (String, String, String);

/// One state change to record.
#[derive(Debug, Clone)]
pub(crate) enum StatusMsg {
    /// The mirror's state.
    Upsert(MirrorStatus),
    /// The service is no longer selected: forget its row.
    Delete {
        link: String,
        namespace: String,
        name: String,
    },
    /// Forget every row of `link` except these keys (full-resync garbage collection).
    Retain {
        link: String,
        keep: Vec<(String, String)>,
    },
    /// Every known mirror of `link` is in error (its cluster is unreachable).
    LinkError { link: String, message: String },
    /// The clusters of `link` answer again: its mirrors may be reported Mirrored again.
    LinkRecovered { link: String },
}

/// Sender side; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct StatusSink(mpsc::UnboundedSender<StatusMsg>);

impl StatusSink {
    pub(crate) fn send(&self, msg: StatusMsg) {
        // The receiver lives as long as the supervisor; a send after shutdown is moot.
        let _ = self.0.send(msg);
    }
}

/// Starts the writer task.
pub(crate) fn spawn(store: Store, flush: Duration) -> (StatusSink, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(store, flush, rx));
    (StatusSink(tx), task)
}

async fn run(store: Store, flush: Duration, mut rx: mpsc::UnboundedReceiver<StatusMsg>) {
    let mut written: HashMap<Key, Option<MirrorStatus>> = HashMap::new();
    let mut failed: HashMap<String, String> = HashMap::new();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::sleep(flush);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                msg = rx.recv() => match msg {
                    Some(m) => batch.push(m),
                    None => break,
                },
            }
        }
        hold_failed_links(&mut batch, &mut failed);
        load_unknown_links(&store, &batch, &mut written).await;
        let ops = coalesce(batch, &mut written);
        if ops.is_empty() {
            continue;
        }
        if let Err(e) = write(&store, &ops, true, "committing mirror states").await {
            tracing::warn!(error = %e, "batched mirror-state write failed; retrying one by one");
            if let Err(e) = write(&store, &ops, false, "committing mirror states").await {
                tracing::warn!(error = %e, "mirror-state write failed");
            }
        }
    }
}

/// A `LinkError` must reach rows written before this process started (after a restart with a
/// cluster down): load them into the cache first.
async fn load_unknown_links(
    store: &Store,
    batch: &[StatusMsg],
    written: &mut HashMap<Key, Option<MirrorStatus>>,
) {
    for msg in batch {
        let StatusMsg::LinkError { link, .. } = msg else {
            continue;
        };
        if written.keys().any(|(l, _, _)| l == link) {
            continue;
        }
        let rows = async {
            let mut conn = store.acquire().await?;
            let filter = mirrors::MirrorFilter {
                link: Some(link.clone()),
                ..mirrors::MirrorFilter::default()
            };
            mirrors::list(&mut conn, &filter, 0, i64::MAX).await
        }
        .await;
        match rows {
            Ok(rows) => {
                for r in rows {
                    let s = r.status;
                    written.insert(
                        (s.link.clone(), s.namespace.clone(), s.remote_name.clone()),
                        Some(s),
                    );
                }
            }
            Err(e) => tracing::debug!(%link, error = %e, "loading mirror states"),
        }
    }
}

/// While a link's cluster is unreachable, a write that completes afterwards (into the healthy
/// side) must not report the mirror as Mirrored over the link's error: such upserts are
/// recorded as the link's error until `LinkRecovered`. Recovery markers are consumed here.
fn hold_failed_links(batch: &mut Vec<StatusMsg>, failed: &mut HashMap<String, String>) {
    batch.retain_mut(|msg| match msg {
        StatusMsg::LinkError { link, message } => {
            failed.insert(link.clone(), message.clone());
            true
        }
        StatusMsg::LinkRecovered { link } => {
            failed.remove(link);
            false
        }
        StatusMsg::Upsert(s) => {
            if let Some(message) = failed.get(&s.link)
                && s.state == MirrorState::Mirrored
            {
                s.state = MirrorState::Error;
                s.message = message.clone();
            }
            true
        }
        _ => true,
    });
}

/// Turns messages into the minimal list of writes, updating the cache of written states
/// (`None` = known to have no row).
fn coalesce(
    batch: Vec<StatusMsg>,
    written: &mut HashMap<Key, Option<MirrorStatus>>,
) -> Vec<StatusMsg> {
    let mut ops = Vec::new();
    for msg in batch {
        match msg {
            StatusMsg::Upsert(s) => {
                let key = (s.link.clone(), s.namespace.clone(), s.remote_name.clone());
                if written.get(&key) != Some(&Some(s.clone())) {
                    written.insert(key, Some(s.clone()));
                    ops.push(StatusMsg::Upsert(s));
                }
            }
            StatusMsg::Delete {
                link,
                namespace,
                name,
            } => {
                let key = (link.clone(), namespace.clone(), name.clone());
                if written.get(&key) != Some(&None) {
                    written.insert(key, None);
                    ops.push(StatusMsg::Delete {
                        link,
                        namespace,
                        name,
                    });
                }
            }
            StatusMsg::Retain { link, keep } => {
                let set: HashSet<(&str, &str)> =
                    keep.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                written
                    .retain(|(l, ns, n), _| l != &link || set.contains(&(ns.as_str(), n.as_str())));
                ops.push(StatusMsg::Retain { link, keep });
            }
            StatusMsg::LinkRecovered { .. } => {}
            StatusMsg::LinkError { link, message } => {
                for ((l, _, _), s) in written.iter_mut() {
                    if let Some(s) = s.as_mut().filter(|s| {
                        *l == link && (s.state != MirrorState::Error || s.message != message)
                    }) {
                        s.state = MirrorState::Error;
                        s.message = message.clone();
                        ops.push(StatusMsg::Upsert(s.clone()));
                    }
                }
            }
        }
    }
    ops
}

/// One state write of a batch: mirror statuses here, federation states in `federation::state`.
pub(crate) trait StateOp: Sync + Sized {
    /// Applies the write on `conn`.
    fn apply<'a>(
        &'a self,
        conn: &'a mut linkplane_store::PgConnection,
    ) -> futures::future::BoxFuture<'a, linkplane_store::Result<()>>;

    /// Applies a whole batch in order on `conn`; kinds with a set-based statement override it.
    fn apply_all<'a>(
        ops: &'a [Self],
        conn: &'a mut linkplane_store::PgConnection,
    ) -> futures::future::BoxFuture<'a, linkplane_store::Result<()>> {
        Box::pin(async move {
            for op in ops {
                op.apply(conn).await?;
            }
            Ok(())
        })
    }
}

impl StateOp for StatusMsg {
    fn apply<'a>(
        &'a self,
        conn: &'a mut linkplane_store::PgConnection,
    ) -> futures::future::BoxFuture<'a, linkplane_store::Result<()>> {
        Box::pin(apply(conn, self))
    }

    /// Runs of consecutive upserts go in one statement (a cold start records thousands of
    /// states per flush; one round trip and one statement each would load Postgres with work
    /// that competes with the reconcilers). Order with deletes and retains is kept.
    fn apply_all<'a>(
        ops: &'a [Self],
        conn: &'a mut linkplane_store::PgConnection,
    ) -> futures::future::BoxFuture<'a, linkplane_store::Result<()>> {
        Box::pin(async move {
            let mut run: Vec<&MirrorStatus> = Vec::new();
            for op in ops {
                if let StatusMsg::Upsert(s) = op {
                    run.push(s);
                    continue;
                }
                mirrors::upsert_many(conn, &run).await?;
                run.clear();
                apply(conn, op).await?;
            }
            mirrors::upsert_many(conn, &run).await
        })
    }
}

/// Writes a batch of state ops: in one transaction when `atomic`, else one by one, skipping the
/// rows whose parent was deleted meanwhile (their foreign key fails: nothing to record).
pub(crate) async fn write<O: StateOp>(
    store: &Store,
    ops: &[O],
    atomic: bool,
    what: &'static str,
) -> linkplane_store::Result<()> {
    if atomic {
        let mut tx = store.begin().await?;
        O::apply_all(ops, &mut tx).await?;
        tx.commit()
            .await
            .map_err(|source| linkplane_store::StoreError::Database {
                action: what,
                source,
            })?;
    } else {
        let mut conn = store.acquire().await?;
        for op in ops {
            if let Err(e) = op.apply(&mut conn).await {
                tracing::debug!(error = %e, what, "skipping a state write");
            }
        }
    }
    Ok(())
}

async fn apply(
    conn: &mut linkplane_store::PgConnection,
    op: &StatusMsg,
) -> linkplane_store::Result<()> {
    match op {
        StatusMsg::Upsert(s) => mirrors::upsert(conn, s).await,
        StatusMsg::Delete {
            link,
            namespace,
            name,
        } => mirrors::delete(conn, link, namespace, name)
            .await
            .map(|_| ()),
        StatusMsg::Retain { link, keep } => {
            mirrors::retain_for_link(conn, link, keep).await.map(|_| ())
        }
        StatusMsg::LinkError { .. } | StatusMsg::LinkRecovered { .. } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_finishing_after_a_link_failed_is_recorded_as_the_error_until_recovery() {
        let mut failed = HashMap::new();
        let mut batch = vec![
            StatusMsg::LinkError {
                link: "l".into(),
                message: "cluster north is unreachable".into(),
            },
            StatusMsg::Upsert(status("db", MirrorState::Mirrored)),
        ];
        hold_failed_links(&mut batch, &mut failed);
        let StatusMsg::Upsert(s) = &batch[1] else {
            panic!("upsert kept")
        };
        assert_eq!(
            (s.state, s.message.as_str()),
            (MirrorState::Error, "cluster north is unreachable")
        );
        let mut batch = vec![
            StatusMsg::LinkRecovered { link: "l".into() },
            StatusMsg::Upsert(status("db", MirrorState::Mirrored)),
        ];
        hold_failed_links(&mut batch, &mut failed);
        assert_eq!(batch.len(), 1, "the recovery marker is consumed");
        let StatusMsg::Upsert(s) = &batch[0] else {
            panic!("upsert kept")
        };
        assert_eq!(s.state, MirrorState::Mirrored);
    }

    fn status(name: &str, state: MirrorState) -> MirrorStatus {
        MirrorStatus {
            link: "l".into(),
            source_cluster: "west".into(),
            target_cluster: "east".into(),
            namespace: "shop".into(),
            remote_name: name.into(),
            local_name: format!("{name}-east"),
            mode: "gateway".into(),
            headless: false,
            state,
            message: String::new(),
        }
    }

    #[test]
    fn identical_states_and_repeated_deletes_are_written_once() {
        let mut written = HashMap::new();
        let ops = coalesce(
            vec![
                StatusMsg::Upsert(status("web", MirrorState::Mirrored)),
                StatusMsg::Upsert(status("web", MirrorState::Mirrored)),
                StatusMsg::Delete {
                    link: "l".into(),
                    namespace: "shop".into(),
                    name: "api".into(),
                },
                StatusMsg::Delete {
                    link: "l".into(),
                    namespace: "shop".into(),
                    name: "api".into(),
                },
            ],
            &mut written,
        );
        assert_eq!(ops.len(), 2);
        let again = coalesce(
            vec![StatusMsg::Upsert(status("web", MirrorState::Mirrored))],
            &mut written,
        );
        assert!(again.is_empty());
    }

    #[test]
    fn link_error_marks_every_known_mirror_of_the_link() {
        let mut written = HashMap::new();
        coalesce(
            vec![
                StatusMsg::Upsert(status("web", MirrorState::Mirrored)),
                StatusMsg::Upsert(status("api", MirrorState::Mirrored)),
            ],
            &mut written,
        );
        let ops = coalesce(
            vec![StatusMsg::LinkError {
                link: "l".into(),
                message: "cluster east is unreachable".into(),
            }],
            &mut written,
        );
        assert_eq!(ops.len(), 2);
        assert!(ops.iter().all(|op| matches!(op,
            StatusMsg::Upsert(s) if s.state == MirrorState::Error && s.message.contains("unreachable"))));
        // Recovery writes Mirrored again (the cache knows the row is in error).
        let ops = coalesce(
            vec![StatusMsg::Upsert(status("web", MirrorState::Mirrored))],
            &mut written,
        );
        assert_eq!(ops.len(), 1);
    }
}
