//! The sync runtime: startup syncs, coalescing triggers, LISTEN-driven drift checks and pins.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use linkplane_gitops::{SyncHandle, SyncResult, Trigger, git::Cache};
use linkplane_store::{
    Owner, Store, clusters,
    git_sources::{self, SyncStatus},
    sync_history,
};
use support::{Remote, add_source, cluster};
use tokio_util::sync::CancellationToken;

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn status(store: &Store) -> git_sources::SourceState {
    let mut conn = store.acquire().await.unwrap();
    git_sources::get(&mut conn, "fleet").await.unwrap().unwrap()
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn startup_sync_then_concurrent_triggers_coalesce(pool: sqlx::PgPool) {
    let remote = Remote::new();
    let cache = tempfile::tempdir().unwrap();
    let store = Store::from_pool(pool);
    add_source(
        &mut store.acquire().await.unwrap(),
        "fleet",
        &remote.url(),
        false,
    )
    .await;
    let c1 = remote.commit(&[("fleet/a.yaml", Some(&cluster("east")))], "one");
    let stop = CancellationToken::new();
    let handle = SyncHandle::start(store.clone(), Cache::new(cache.path()), stop.clone())
        .await
        .unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    handle.register_metrics(&mut registry);
    wait_for("the startup sync", || async {
        status(&store).await.last_applied_revision.as_deref() == Some(c1.as_str())
    })
    .await;
    let before = handle.runs();
    let c2 = remote.commit(&[("fleet/b.yaml", Some(&cluster("west")))], "two");
    // 50 webhooks at once, plus a caller that waits: at most one running + one pending sync.
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let h = handle.clone();
        tasks.push(tokio::spawn(async move {
            h.trigger("fleet", Trigger::Webhook).await
        }));
    }
    let outcome = handle.sync_now("fleet").await.unwrap();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert!(
        matches!(outcome.result, SyncResult::Applied | SyncResult::Unchanged),
        "{outcome:?}"
    );
    assert_eq!(outcome.revision.as_deref(), Some(c2.as_str()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let runs = handle.runs() - before;
    assert!((1..=3).contains(&runs), "51 triggers ran {runs} syncs");
    let mut conn = store.acquire().await.unwrap();
    let applied: Vec<_> = sync_history::list(&mut conn, "fleet", 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|h| h.result == SyncResult::Applied)
        .collect();
    assert_eq!(applied.len(), 2, "one apply per commit");
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(r#"linkplane_gitops_syncs_total{source="fleet",result="Applied"} 2"#),
        "{text}"
    );
    assert!(matches!(
        handle.sync_now("nope").await,
        Err(linkplane_gitops::Error::UnknownSource(_))
    ));
    stop.cancel();
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn api_edits_are_detected_through_notifications_and_pins_resync(pool: sqlx::PgPool) {
    let remote = Remote::new();
    let cache = tempfile::tempdir().unwrap();
    let store = Store::from_pool(pool);
    add_source(
        &mut store.acquire().await.unwrap(),
        "fleet",
        &remote.url(),
        false,
    )
    .await;
    let c1 = remote.commit(&[("fleet/a.yaml", Some(&cluster("east")))], "one");
    let stop = CancellationToken::new();
    let _handle = SyncHandle::start(store.clone(), Cache::new(cache.path()), stop.clone())
        .await
        .unwrap();
    wait_for("the startup sync", || async {
        status(&store).await.status == SyncStatus::Synced
    })
    .await;
    // An edit through the store (as the API would) makes the source OutOfSync without a poll.
    let mut conn = store.acquire().await.unwrap();
    let mut east = clusters::get(&mut conn, "east")
        .await
        .unwrap()
        .unwrap()
        .value;
    east.spec.cluster_domain = "edited.local".into();
    clusters::upsert(&mut conn, &east, &Owner::Git("fleet".into()))
        .await
        .unwrap();
    wait_for("drift to be reported", || async {
        status(&store).await.status == SyncStatus::OutOfSync
    })
    .await;
    // Pinning through the table (as the API would) is picked up and recorded as a pin sync.
    remote.commit(&[("fleet/b.yaml", Some(&cluster("west")))], "two");
    git_sources::set_pin(&mut conn, "fleet", Some(&c1))
        .await
        .unwrap();
    wait_for("the pin sync", || async {
        let mut conn = store.acquire().await.unwrap();
        let h = sync_history::list(&mut conn, "fleet", 5).await.unwrap();
        h.first().is_some_and(|r| r.trigger == Trigger::Pin)
    })
    .await;
    assert!(clusters::get(&mut conn, "west").await.unwrap().is_none());
    stop.cancel();
}
