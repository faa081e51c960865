//! Syncing real Git repositories into a real, freshly migrated Postgres database.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;

use linkplane_core::status::{DriftChange, ObjectKind};
use linkplane_gitops::{SyncResult, Syncer, Trigger, git::Cache};
use linkplane_store::{
    Owner, Store, clusters,
    git_sources::{self, SyncStatus},
    gitops as gstore, links, policies, sync_history,
};
use support::{Remote, add_source, cluster, link, policy};

struct Env {
    remote: Remote,
    _cache: tempfile::TempDir,
    store: Store,
    syncer: Syncer,
}

async fn env(pool: sqlx::PgPool, self_heal: bool) -> Env {
    let remote = Remote::new();
    let cache = tempfile::tempdir().unwrap();
    let store = Store::from_pool(pool);
    add_source(
        &mut store.acquire().await.unwrap(),
        "fleet",
        &remote.url(),
        self_heal,
    )
    .await;
    let syncer = Syncer::new(store.clone(), Cache::new(cache.path()));
    Env {
        remote,
        _cache: cache,
        store,
        syncer,
    }
}

async fn link_names(store: &Store) -> BTreeSet<String> {
    let mut conn = store.acquire().await.unwrap();
    links::list(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.stored.value.name)
        .collect()
}

async fn cluster_names(store: &Store) -> BTreeSet<String> {
    let mut conn = store.acquire().await.unwrap();
    clusters::list(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.value.name)
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn first_sync_applies_everything_and_records_history(pool: sqlx::PgPool) {
    let e = env(pool, false).await;
    let text = [
        cluster("east"),
        cluster("west"),
        link("w-e", "west", "east"),
        policy("p"),
    ]
    .concat();
    let c1 = e
        .remote
        .commit(&[("fleet/all.yaml", Some(&text))], "initial fleet");
    let out = e.syncer.sync("fleet", Trigger::Startup).await.unwrap();
    assert_eq!(out.result, SyncResult::Applied);
    assert_eq!(out.revision.as_deref(), Some(c1.as_str()));
    assert_eq!(cluster_names(&e.store).await, set(&["east", "west"]));
    let mut conn = e.store.acquire().await.unwrap();
    let l = links::get(&mut conn, "w-e").await.unwrap().unwrap();
    assert_eq!(l.stored.owner, Owner::Git("fleet".into()));
    assert!(policies::get(&mut conn, "p").await.unwrap().is_some());
    let s = git_sources::get(&mut conn, "fleet").await.unwrap().unwrap();
    assert_eq!(s.status, SyncStatus::Synced);
    assert_eq!(s.last_applied_revision.as_deref(), Some(c1.as_str()));
    let h = sync_history::list(&mut conn, "fleet", 10).await.unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].trigger, Trigger::Startup);
    assert_eq!(h[0].result, SyncResult::Applied);
    assert_eq!(h[0].message, "initial fleet");
    assert_eq!(h[0].author, "Ada Lovelace <ada@example.com>");
    assert_eq!(h[0].counts[&ObjectKind::Cluster].created, 2);
    assert_eq!(h[0].counts[&ObjectKind::Link].created, 1);
    assert_eq!(h[0].counts[&ObjectKind::ExportPolicy].created, 1);
    // A second sync of the same commit writes nothing and adds no history for a poll.
    let again = e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert_eq!(again.result, SyncResult::Unchanged);
    assert_eq!(
        sync_history::list(&mut conn, "fleet", 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn add_change_remove_and_prune_follow_git(pool: sqlx::PgPool) {
    let e = env(pool, false).await;
    e.remote.commit(
        &[
            (
                "fleet/clusters.yaml",
                Some(&[cluster("east"), cluster("west"), cluster("north")].concat()),
            ),
            (
                "fleet/links.yaml",
                Some(&[link("w-e", "west", "east"), link("n-e", "north", "east")].concat()),
            ),
        ],
        "three clusters",
    );
    e.syncer.sync("fleet", Trigger::Startup).await.unwrap();
    // An API-owned cluster is never pruned.
    {
        let mut conn = e.store.acquire().await.unwrap();
        let api = linkplane_core::Cluster::new(
            "api-made",
            "https://x.example.com",
            linkplane_core::CredentialsRef::Stored,
        );
        clusters::upsert(&mut conn, &api, &Owner::Api)
            .await
            .unwrap();
    }
    // Change a link, remove north and its link, add a policy.
    let changed = link("w-e", "west", "east").replace(
        "  target: east\n",
        "  target: east\n  createNamespaces: true\n",
    );
    e.remote.commit(
        &[
            (
                "fleet/clusters.yaml",
                Some(&[cluster("east"), cluster("west")].concat()),
            ),
            ("fleet/links.yaml", Some(&changed)),
            ("fleet/policies/p.yaml", Some(&policy("p"))),
        ],
        "drop north",
    );
    let out = e.syncer.sync("fleet", Trigger::Webhook).await.unwrap();
    assert_eq!(out.result, SyncResult::Applied, "{out:?}");
    assert_eq!(out.counts[&ObjectKind::Cluster].deleted, 1);
    assert_eq!(out.counts[&ObjectKind::Link].updated, 1);
    assert_eq!(out.counts[&ObjectKind::Link].deleted, 1);
    assert_eq!(out.counts[&ObjectKind::ExportPolicy].created, 1);
    assert_eq!(
        cluster_names(&e.store).await,
        set(&["api-made", "east", "west"])
    );
    assert_eq!(link_names(&e.store).await, set(&["w-e"]));
    let mut conn = e.store.acquire().await.unwrap();
    assert!(
        links::get(&mut conn, "w-e")
            .await
            .unwrap()
            .unwrap()
            .stored
            .value
            .spec
            .create_namespaces
    );
    // Removing every manifest is held (issue 15: an empty or gutted revision pruned the
    // fleet); once an operator approves that very revision it prunes everything Git owns,
    // nothing else.
    let empty = e.remote.commit(
        &[
            ("fleet/clusters.yaml", None),
            ("fleet/links.yaml", None),
            ("fleet/policies/p.yaml", None),
            ("fleet/README.md", Some("nothing here")),
        ],
        "empty",
    );
    let out = e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert_eq!(out.result, SyncResult::Held, "{out:?}");
    assert_eq!(
        cluster_names(&e.store).await,
        set(&["api-made", "east", "west"])
    );
    git_sources::approve_prune(&mut conn, "fleet", &empty)
        .await
        .unwrap();
    let out = e.syncer.sync("fleet", Trigger::Manual).await.unwrap();
    assert_eq!(out.result, SyncResult::Applied);
    assert_eq!(cluster_names(&e.store).await, set(&["api-made"]));
    assert!(policies::list(&mut conn).await.unwrap().is_empty());
}

/// Issue 15, after Argo CD's `allowEmpty`: a revision deleting every object of a source, or more
/// than its prune limit (50% by default), is held with its plan, not applied, and not retried by
/// polls; the last good revision stays applied. `pruneLimit: 100` and `allowEmpty` let it through.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn a_revision_that_prunes_past_the_limits_is_held_with_its_plan(pool: sqlx::PgPool) {
    let e = env(pool, false).await;
    let good = e.remote.commit(
        &[(
            "fleet/all.yaml",
            Some(
                &[
                    cluster("east"),
                    cluster("west"),
                    cluster("north"),
                    cluster("south"),
                ]
                .concat(),
            ),
        )],
        "four clusters",
    );
    e.syncer.sync("fleet", Trigger::Startup).await.unwrap();
    // The manifests moved to a subfolder the source's path does not read (a missing folder is
    // already refused as a fetch failure): the revision declares nothing.
    let moved = e.remote.commit(
        &[
            ("fleet/all.yaml", None),
            ("fleet/README.md", Some("moved to ../elsewhere")),
            ("elsewhere/all.yaml", Some(&cluster("east"))),
        ],
        "move the manifests",
    );
    let out = e.syncer.sync("fleet", Trigger::Webhook).await.unwrap();
    assert_eq!(out.result, SyncResult::Held);
    assert!(
        out.errors[0].contains("all 4 object(s)"),
        "{:?}",
        out.errors
    );
    assert!(
        out.errors.iter().any(|l| l == "would delete Cluster north"),
        "{:?}",
        out.errors
    );
    let mut conn = e.store.acquire().await.unwrap();
    let s = git_sources::get(&mut conn, "fleet").await.unwrap().unwrap();
    assert_eq!(s.status, SyncStatus::PruneHeld);
    assert_eq!(s.last_applied_revision.as_deref(), Some(good.as_str()));
    assert_eq!(s.last_attempted_revision.as_deref(), Some(moved.as_str()));
    let h = sync_history::list(&mut conn, "fleet", 10).await.unwrap();
    assert_eq!(h[0].result, SyncResult::Held);
    assert_eq!(
        cluster_names(&e.store).await,
        set(&["east", "north", "south", "west"])
    );
    // Polls do not re-attempt the held commit.
    let out = e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert_eq!(out.result, SyncResult::Skipped);

    // Three of four clusters gone is past the default limit of 50%; two of four is not.
    e.remote
        .commit(&[("fleet/all.yaml", Some(&cluster("east")))], "keep one");
    let out = e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert_eq!(out.result, SyncResult::Held);
    assert!(out.errors[0].contains("3 of 4"), "{:?}", out.errors);
    e.remote.commit(
        &[(
            "fleet/all.yaml",
            Some(&[cluster("east"), cluster("west")].concat()),
        )],
        "keep two",
    );
    let out = e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert_eq!(out.result, SyncResult::Applied, "{out:?}");
    assert_eq!(cluster_names(&e.store).await, set(&["east", "west"]));

    // A source that allows empty revisions applies one.
    let mut src = git_sources::get(&mut conn, "fleet")
        .await
        .unwrap()
        .unwrap()
        .source;
    src.spec.allow_empty = true;
    git_sources::upsert(&mut conn, &src).await.unwrap();
    e.remote
        .commit(&[("fleet/all.yaml", None)], "empty on purpose");
    let out = e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert_eq!(out.result, SyncResult::Applied, "{out:?}");
    assert!(cluster_names(&e.store).await.is_empty());
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn broken_revision_is_rejected_whole_with_locations_and_not_retried(pool: sqlx::PgPool) {
    let e = env(pool, false).await;
    let good = e.remote.commit(
        &[(
            "fleet/a.yaml",
            Some(
                &[
                    cluster("east"),
                    cluster("west"),
                    link("w-e", "west", "east"),
                ]
                .concat(),
            ),
        )],
        "good",
    );
    e.syncer.sync("fleet", Trigger::Startup).await.unwrap();
    // One good change and two errors in the same revision: nothing of it may land.
    let bad = e.remote.commit(
        &[
            ("fleet/b.yaml", Some(&cluster("north"))),
            ("fleet/c.yaml", Some("apiVersion: linkplane.io/v1alpha1\nkind: Link\nmetadata:\n  name: x\nspec:\n  source: west\n  target: nowhere\n  paused: yes\n")),
        ],
        "broken",
    );
    let out = e.syncer.sync("fleet", Trigger::Webhook).await.unwrap();
    assert_eq!(out.result, SyncResult::Rejected);
    assert_eq!(
        out.errors,
        [
            "c.yaml:8:3: spec.paused: unknown field `paused`, expected one of `source`, `target`, `selector`, \
          `remoteDiscoverySelector`, `federatedServiceSelector`, `excludedLabels`, `excludedAnnotations`, \
          `createNamespaces`, `enableHeadlessServices`, `cleanupOnUnlink`, `adoptLinkerdMirrors`, `mcs`"
        ]
    );
    assert_eq!(cluster_names(&e.store).await, set(&["east", "west"]));
    let mut conn = e.store.acquire().await.unwrap();
    let s = git_sources::get(&mut conn, "fleet").await.unwrap().unwrap();
    assert_eq!(s.status, SyncStatus::Failed);
    assert_eq!(s.last_applied_revision.as_deref(), Some(good.as_str()));
    assert_eq!(s.last_attempted_revision.as_deref(), Some(bad.as_str()));
    assert!(s.last_error.as_deref().unwrap().starts_with("c.yaml:8:3:"));
    let h = sync_history::list(&mut conn, "fleet", 10).await.unwrap();
    assert_eq!(h[0].result, SyncResult::Rejected);
    assert_eq!(h[0].errors, out.errors);
    // Same commit again: not retried.
    let again = e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert_eq!(again.result, SyncResult::Skipped);
    assert_eq!(
        sync_history::list(&mut conn, "fleet", 10)
            .await
            .unwrap()
            .len(),
        2
    );

    // A semantic error (dangling reference) is also located.
    e.remote.commit(
        &[("fleet/c.yaml", Some(&link("x", "west", "nowhere")))],
        "still broken",
    );
    let out = e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert_eq!(
        out.errors,
        [
            "c.yaml:2:1: Link \"x\": spec.target names cluster \"nowhere\", which this revision does not declare"
        ]
    );

    // Reverting to a good revision (a new commit) applies and clears the failure.
    e.remote.commit(&[("fleet/c.yaml", None)], "revert");
    let out = e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert_eq!(out.result, SyncResult::Applied);
    assert_eq!(
        cluster_names(&e.store).await,
        set(&["east", "north", "west"])
    );
    let s = git_sources::get(&mut conn, "fleet").await.unwrap().unwrap();
    assert_eq!(s.status, SyncStatus::Synced);
    assert_eq!(s.last_error, None);
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn force_push_back_to_an_applied_commit_settles_the_status(pool: sqlx::PgPool) {
    let e = env(pool, false).await;
    let good = e
        .remote
        .commit(&[("fleet/a.yaml", Some(&cluster("east")))], "good");
    e.syncer.sync("fleet", Trigger::Startup).await.unwrap();
    let c2 = e
        .remote
        .commit(&[("fleet/b.yaml", Some(&cluster("west")))], "second");
    e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert_eq!(cluster_names(&e.store).await, set(&["east", "west"]));
    e.remote
        .commit(&[("fleet/c.yaml", Some("kind: [\n"))], "broken");
    assert_eq!(
        e.syncer.sync("fleet", Trigger::Poll).await.unwrap().result,
        SyncResult::Rejected
    );
    // Force-push main back to the first commit: history rewritten, west must go.
    e.remote.force_main(&good);
    let out = e.syncer.sync("fleet", Trigger::Webhook).await.unwrap();
    assert_eq!(out.result, SyncResult::Applied);
    assert_eq!(out.revision.as_deref(), Some(good.as_str()));
    assert_eq!(cluster_names(&e.store).await, set(&["east"]));
    // And forward again to c2 (not an ancestor of the cache's current ref).
    e.remote.force_main(&c2);
    let out = e.syncer.sync("fleet", Trigger::Webhook).await.unwrap();
    assert_eq!(out.revision.as_deref(), Some(c2.as_str()));
    assert_eq!(cluster_names(&e.store).await, set(&["east", "west"]));
    let mut conn = e.store.acquire().await.unwrap();
    assert_eq!(
        git_sources::get(&mut conn, "fleet")
            .await
            .unwrap()
            .unwrap()
            .status,
        SyncStatus::Synced
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn pinned_revision_holds_the_source_and_history_shows_it(pool: sqlx::PgPool) {
    let e = env(pool, false).await;
    let c1 = e
        .remote
        .commit(&[("fleet/a.yaml", Some(&cluster("east")))], "one");
    e.syncer.sync("fleet", Trigger::Startup).await.unwrap();
    e.remote
        .commit(&[("fleet/b.yaml", Some(&cluster("west")))], "two");
    let mut conn = e.store.acquire().await.unwrap();
    git_sources::set_pin(&mut conn, "fleet", Some(&c1[..12]))
        .await
        .unwrap();
    let out = e.syncer.sync("fleet", Trigger::Pin).await.unwrap();
    assert_eq!(out.revision.as_deref(), Some(c1.as_str()));
    assert_eq!(out.result, SyncResult::Unchanged);
    // Polls keep the pin even though main moved.
    e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert_eq!(cluster_names(&e.store).await, set(&["east"]));
    let h = sync_history::list(&mut conn, "fleet", 10).await.unwrap();
    assert_eq!(h[0].trigger, Trigger::Pin);
    // Unpin: main's head is applied, recorded as a pin change.
    git_sources::set_pin(&mut conn, "fleet", None)
        .await
        .unwrap();
    let out = e.syncer.sync("fleet", Trigger::Pin).await.unwrap();
    assert_eq!(out.result, SyncResult::Applied);
    assert_eq!(cluster_names(&e.store).await, set(&["east", "west"]));
    // Roll back by pinning the old commit: west is pruned.
    git_sources::set_pin(&mut conn, "fleet", Some(&c1))
        .await
        .unwrap();
    let out = e.syncer.sync("fleet", Trigger::Pin).await.unwrap();
    assert_eq!(out.result, SyncResult::Applied);
    assert_eq!(cluster_names(&e.store).await, set(&["east"]));
    let h = sync_history::list(&mut conn, "fleet", 10).await.unwrap();
    assert_eq!(
        (h[0].trigger.as_str(), h[0].revision.as_str()),
        ("pin", c1.as_str())
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn a_suspended_source_is_synced_only_when_an_operator_asks(pool: sqlx::PgPool) {
    let e = env(pool, false).await;
    e.remote
        .commit(&[("fleet/a.yaml", Some(&cluster("east")))], "one");
    e.syncer.sync("fleet", Trigger::Startup).await.unwrap();
    e.remote
        .commit(&[("fleet/b.yaml", Some(&cluster("west")))], "two");
    let mut conn = e.store.acquire().await.unwrap();
    git_sources::set_suspended(&mut conn, "fleet", true)
        .await
        .unwrap();
    // Automatic triggers skip it, recording nothing.
    for t in [
        Trigger::Poll,
        Trigger::Webhook,
        Trigger::Startup,
        Trigger::SelfHeal,
    ] {
        let out = e.syncer.sync("fleet", t).await.unwrap();
        assert_eq!(out.result, SyncResult::Skipped, "{t:?}");
    }
    assert_eq!(cluster_names(&e.store).await, set(&["east"]));
    assert_eq!(
        sync_history::list(&mut conn, "fleet", 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // An operator's sync runs (Argo CD: a manual sync of an app without auto-sync).
    let out = e.syncer.sync("fleet", Trigger::Manual).await.unwrap();
    assert_eq!(out.result, SyncResult::Applied);
    assert_eq!(cluster_names(&e.store).await, set(&["east", "west"]));
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn drift_is_reported_without_self_heal(pool: sqlx::PgPool) {
    let e = env(pool, false).await;
    e.remote.commit(
        &[(
            "fleet/a.yaml",
            Some(
                &[
                    cluster("east"),
                    cluster("west"),
                    link("w-e", "west", "east"),
                ]
                .concat(),
            ),
        )],
        "one",
    );
    e.syncer.sync("fleet", Trigger::Startup).await.unwrap();
    let mut conn = e.store.acquire().await.unwrap();
    let mut east = clusters::get(&mut conn, "east")
        .await
        .unwrap()
        .unwrap()
        .value;
    east.spec.cluster_domain = "edited.local".into();
    clusters::upsert(&mut conn, &east, &Owner::Git("fleet".into()))
        .await
        .unwrap();
    links::delete(&mut conn, "w-e").await.unwrap();
    let out = e.syncer.on_config_change("fleet").await.unwrap();
    assert_eq!(out.drifted, 2);
    let drift = gstore::drift(&mut conn, "fleet").await.unwrap();
    assert_eq!(drift.len(), 2);
    assert_eq!(
        (drift[0].kind, drift[0].change),
        (ObjectKind::Cluster, DriftChange::Modified)
    );
    assert_eq!(drift[0].diff[0].path, "spec.clusterDomain");
    assert_eq!(drift[0].diff[0].desired, serde_json::json!("cluster.local"));
    assert_eq!(drift[0].diff[0].actual, serde_json::json!("edited.local"));
    assert_eq!(
        (drift[1].kind, drift[1].change),
        (ObjectKind::Link, DriftChange::Deleted)
    );
    let s = git_sources::get(&mut conn, "fleet").await.unwrap().unwrap();
    assert_eq!(s.status, SyncStatus::OutOfSync);
    // Detect-only: nothing reverted, also on a poll.
    e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert!(link_names(&e.store).await.is_empty());
    // Undoing the edit by hand brings the source back in sync.
    east.spec.cluster_domain = "cluster.local".into();
    clusters::upsert(&mut conn, &east, &Owner::Git("fleet".into()))
        .await
        .unwrap();
    links::upsert(
        &mut conn,
        &linkplane_core::Link::new("w-e", "west", "east"),
        &Owner::Git("fleet".into()),
    )
    .await
    .unwrap();
    e.syncer.on_config_change("fleet").await.unwrap();
    assert!(gstore::drift(&mut conn, "fleet").await.unwrap().is_empty());
    assert_eq!(
        git_sources::get(&mut conn, "fleet")
            .await
            .unwrap()
            .unwrap()
            .status,
        SyncStatus::Synced
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn self_heal_reverts_drift_and_records_it(pool: sqlx::PgPool) {
    let e = env(pool, true).await;
    e.remote.commit(
        &[(
            "fleet/a.yaml",
            Some(
                &[
                    cluster("east"),
                    cluster("west"),
                    link("w-e", "west", "east"),
                ]
                .concat(),
            ),
        )],
        "one",
    );
    e.syncer.sync("fleet", Trigger::Startup).await.unwrap();
    let mut conn = e.store.acquire().await.unwrap();
    let mut l = links::get(&mut conn, "w-e")
        .await
        .unwrap()
        .unwrap()
        .stored
        .value;
    l.spec.create_namespaces = true;
    links::upsert(&mut conn, &l, &Owner::Git("fleet".into()))
        .await
        .unwrap();
    policies::delete(&mut conn, "nothing").await.unwrap();
    clusters::delete(&mut conn, "nothing").await.unwrap();
    let out = e.syncer.on_config_change("fleet").await.unwrap();
    assert_eq!(out.drifted, 0);
    assert_eq!(out.counts[&ObjectKind::Link].updated, 1);
    let l = links::get(&mut conn, "w-e")
        .await
        .unwrap()
        .unwrap()
        .stored
        .value;
    assert!(!l.spec.create_namespaces);
    let h = sync_history::list(&mut conn, "fleet", 10).await.unwrap();
    assert_eq!(
        (h[0].trigger, h[0].result),
        (Trigger::SelfHeal, SyncResult::Applied)
    );
    assert_eq!(
        git_sources::get(&mut conn, "fleet")
            .await
            .unwrap()
            .unwrap()
            .status,
        SyncStatus::Synced
    );
    // Deleted objects are recreated too (on a poll).
    links::delete(&mut conn, "w-e").await.unwrap();
    e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert_eq!(link_names(&e.store).await, set(&["w-e"]));
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn git_cannot_take_over_api_owned_names(pool: sqlx::PgPool) {
    let e = env(pool, false).await;
    {
        let mut conn = e.store.acquire().await.unwrap();
        let api = linkplane_core::Cluster::new(
            "east",
            "https://api.example.com",
            linkplane_core::CredentialsRef::Stored,
        );
        clusters::upsert(&mut conn, &api, &Owner::Api)
            .await
            .unwrap();
    }
    e.remote.commit(
        &[(
            "fleet/a.yaml",
            Some(&[cluster("west"), cluster("east")].concat()),
        )],
        "collide",
    );
    let out = e.syncer.sync("fleet", Trigger::Startup).await.unwrap();
    assert_eq!(out.result, SyncResult::Rejected);
    assert_eq!(
        out.errors,
        [
            "a.yaml:13:1: Cluster \"east\" already exists and is managed by the API; a Git revision cannot take it over \
          (rename it here or delete it there)"
        ]
    );
    // Nothing of the revision landed, the API object is untouched.
    assert_eq!(cluster_names(&e.store).await, set(&["east"]));
    let mut conn = e.store.acquire().await.unwrap();
    let east = clusters::get(&mut conn, "east").await.unwrap().unwrap();
    assert_eq!(east.owner, Owner::Api);
    assert_eq!(east.value.spec.api_server, "https://api.example.com");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn unreachable_remote_fails_and_keeps_state(pool: sqlx::PgPool) {
    let e = env(pool, false).await;
    e.remote
        .commit(&[("fleet/a.yaml", Some(&cluster("east")))], "one");
    e.syncer.sync("fleet", Trigger::Startup).await.unwrap();
    let mut conn = e.store.acquire().await.unwrap();
    add_source(&mut conn, "fleet", "/nonexistent/repo", false).await;
    let out = e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert_eq!(out.result, SyncResult::Failed);
    assert_eq!(cluster_names(&e.store).await, set(&["east"]));
    let s = git_sources::get(&mut conn, "fleet").await.unwrap().unwrap();
    assert_eq!(s.status, SyncStatus::Failed);
    assert!(s.last_error.is_some());
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn no_op_syncs_still_see_api_edits_deletes_and_takeovers(pool: sqlx::PgPool) {
    let e = env(pool, false).await;
    e.remote.commit(
        &[(
            "fleet/a.yaml",
            Some(
                &[
                    cluster("east"),
                    cluster("west"),
                    link("w-e", "west", "east"),
                ]
                .concat(),
            ),
        )],
        "one",
    );
    e.syncer.sync("fleet", Trigger::Startup).await.unwrap();
    let poll = async || {
        let out = e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
        assert_eq!(out.result, SyncResult::Unchanged);
        let mut conn = e.store.acquire().await.unwrap();
        let drift = gstore::drift(&mut conn, "fleet").await.unwrap();
        let status = git_sources::get(&mut conn, "fleet")
            .await
            .unwrap()
            .unwrap()
            .status;
        let seen: Vec<(String, DriftChange)> =
            drift.into_iter().map(|d| (d.name, d.change)).collect();
        assert_eq!(out.drifted, seen.len());
        (status, seen)
    };
    // Unchanged polls: nothing drifted (the fast path remembers the comparison).
    for _ in 0..3 {
        assert_eq!(poll().await, (SyncStatus::Synced, vec![]));
    }
    let mut conn = e.store.acquire().await.unwrap();
    let mut east = clusters::get(&mut conn, "east")
        .await
        .unwrap()
        .unwrap()
        .value;
    east.spec.cluster_domain = "edited.local".into();
    clusters::upsert(&mut conn, &east, &Owner::Git("fleet".into()))
        .await
        .unwrap();
    let edited = (
        SyncStatus::OutOfSync,
        vec![("east".to_string(), DriftChange::Modified)],
    );
    assert_eq!(poll().await, edited);
    assert_eq!(poll().await, edited, "a remembered report stays reported");
    // A deleted link, then the same name recreated by the API: the report follows each step.
    links::delete(&mut conn, "w-e").await.unwrap();
    let deleted = ("w-e".to_string(), DriftChange::Deleted);
    assert_eq!(poll().await.1, vec![edited.1[0].clone(), deleted]);
    links::upsert(
        &mut conn,
        &linkplane_core::Link::new("w-e", "west", "east"),
        &Owner::Api,
    )
    .await
    .unwrap();
    let taken = ("w-e".to_string(), DriftChange::OwnerChanged);
    assert_eq!(poll().await.1, vec![edited.1[0].clone(), taken]);
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn no_op_syncs_do_not_hide_a_new_commit_or_a_force_push(pool: sqlx::PgPool) {
    let e = env(pool, false).await;
    let c1 = e.remote.commit(
        &[(
            "fleet/a.yaml",
            Some(&[cluster("east"), cluster("west")].concat()),
        )],
        "one",
    );
    e.syncer.sync("fleet", Trigger::Startup).await.unwrap();
    for _ in 0..2 {
        let out = e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
        assert_eq!(out.result, SyncResult::Unchanged);
    }
    let changed = cluster("west").replace("env: prod", "env: staging");
    let c2 = e.remote.commit(
        &[
            ("fleet/a.yaml", Some(&cluster("east"))),
            ("fleet/b.yaml", Some(&[changed, cluster("north")].concat())),
        ],
        "two",
    );
    let out = e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert_eq!(out.result, SyncResult::Applied);
    assert_eq!(out.revision.as_deref(), Some(c2.as_str()));
    // Counted by the database: east was left alone.
    let c = &out.counts[&ObjectKind::Cluster];
    assert_eq!((c.created, c.updated, c.deleted), (1, 1, 0));
    assert_eq!(
        e.syncer.sync("fleet", Trigger::Poll).await.unwrap().result,
        SyncResult::Unchanged
    );
    e.remote.force_main(&c1);
    let out = e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert_eq!(out.result, SyncResult::Applied);
    assert_eq!(out.revision.as_deref(), Some(c1.as_str()));
    let c = &out.counts[&ObjectKind::Cluster];
    assert_eq!((c.created, c.updated, c.deleted), (0, 1, 1));
    assert_eq!(cluster_names(&e.store).await, set(&["east", "west"]));
    let out = e.syncer.sync("fleet", Trigger::Poll).await.unwrap();
    assert_eq!((out.result, out.drifted), (SyncResult::Unchanged, 0));
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn an_object_taken_between_plan_and_apply_fails_the_whole_apply(pool: sqlx::PgPool) {
    let e = env(pool, false).await;
    let text = [
        cluster("east"),
        cluster("west"),
        link("w-e", "west", "east"),
        policy("p"),
    ]
    .concat();
    let files = [linkplane_gitops::manifest::SourceFile {
        path: "all.yaml".into(),
        content: text.into_bytes(),
    }];
    let rev = linkplane_gitops::manifest::parse_files(&files).unwrap();
    let mut tx = e.store.begin().await.unwrap();
    let plan = linkplane_gitops::apply::plan(&mut tx, "fleet", &rev)
        .await
        .unwrap();
    assert!(plan.conflicts.is_empty());
    // The API creates "west" after the plan was made (another connection, committed).
    {
        let mut api = e.store.acquire().await.unwrap();
        let west = linkplane_core::Cluster::new(
            "west",
            "https://api.example.com",
            linkplane_core::CredentialsRef::Stored,
        );
        clusters::upsert(&mut api, &west, &Owner::Api)
            .await
            .unwrap();
    }
    let err = linkplane_gitops::apply::apply(&mut tx, "fleet", "abc", &rev, &plan)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Cluster \"west\" is managed by the API; Git source \"fleet\" may not change it"
    );
    drop(tx);
    assert_eq!(cluster_names(&e.store).await, set(&["west"]));
    assert!(link_names(&e.store).await.is_empty());
}

/// Two replicas (two syncers with their own caches, one database) syncing the same new commit
/// at once: it is applied and recorded exactly once, the other answers Unchanged (issue 19).
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn two_replicas_syncing_one_revision_at_once_apply_it_once(pool: sqlx::PgPool) {
    let e = env(pool, false).await;
    let cache2 = tempfile::tempdir().unwrap();
    let other = Syncer::new(e.store.clone(), Cache::new(cache2.path()));
    let text = [
        cluster("east"),
        cluster("west"),
        link("w-e", "west", "east"),
    ]
    .concat();
    let c1 = e.remote.commit(&[("fleet/all.yaml", Some(&text))], "fleet");
    let (a, b) = tokio::join!(
        e.syncer.sync("fleet", Trigger::Webhook),
        other.sync("fleet", Trigger::Webhook)
    );
    let mut results = vec![a.unwrap().result, b.unwrap().result];
    results.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(results, vec![SyncResult::Applied, SyncResult::Unchanged]);
    let mut conn = e.store.acquire().await.unwrap();
    let h = sync_history::list(&mut conn, "fleet", 10).await.unwrap();
    let applied: Vec<_> = h
        .iter()
        .filter(|r| r.result == linkplane_core::status::SyncResult::Applied && r.revision == c1)
        .collect();
    assert_eq!(applied.len(), 1, "{h:?}");
}
