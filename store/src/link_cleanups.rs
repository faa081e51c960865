//! The `link_cleanups` table: mirrors of removed links still to delete.
//!
//! Rows are written by a trigger in the same transaction that deletes (or re-points) a link, so
//! a clean-up survives a restart of the server and an unreachable source cluster; the mirror
//! supervisor deletes a row once the mirrors are gone (or a new link owns the pair again).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::{Result, StoreError};

/// A pending clean-up: delete every mirror of `target_cluster` in `source_cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkCleanup {
    /// The cluster holding the mirrors.
    pub source_cluster: String,
    /// The cluster the mirrors stand for (their `mirror.linkerd.io/cluster-name`).
    pub target_cluster: String,
    /// The removed link's name (logs).
    pub link: String,
    /// The removed link adopted Linkerd-written mirrors (`adoptLinkerdMirrors`): delete those
    /// too. When false only mirrors carrying linkplane's label go.
    pub adopt_linkerd_mirrors: bool,
    /// When the link went.
    pub requested_at: DateTime<Utc>,
}

/// Every pending clean-up, oldest first.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<LinkCleanup>> {
    sqlx::query_as!(
        LinkCleanup,
        "SELECT source_cluster, target_cluster, link, adopt_linkerd_mirrors, requested_at
         FROM link_cleanups
         ORDER BY requested_at, source_cluster, target_cluster",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("listing pending link clean-ups"))
}

/// How many clean-ups are pending: unlinked mirrors still to delete from the clusters.
pub async fn count(conn: &mut PgConnection) -> Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM link_cleanups"#)
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::db("counting pending link clean-ups"))
}

/// Marks a clean-up done. Only the request as read is removed (`requested_at` must match): a
/// link removed again meanwhile leaves a newer request that still runs.
pub async fn complete(conn: &mut PgConnection, cleanup: &LinkCleanup) -> Result<bool> {
    let done = sqlx::query!(
        "DELETE FROM link_cleanups
         WHERE source_cluster = $1 AND target_cluster = $2 AND requested_at = $3",
        cleanup.source_cluster,
        cleanup.target_cluster,
        cleanup.requested_at,
    )
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("completing a link clean-up"))?;
    Ok(done.rows_affected() == 1)
}

/// Whether a link joins the clean-up's pair again, read now. The supervisor's configuration
/// snapshot can predate the delete that recorded this request (a reload that loaded the links
/// just before the delete committed and listed the clean-ups just after), so a request is only
/// dropped as obsolete on what the table holds after the request was read.
pub async fn pair_linked_again(conn: &mut PgConnection, cleanup: &LinkCleanup) -> Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (
             SELECT 1 FROM links WHERE source_cluster = $1 AND target_cluster = $2
           ) AS "linked!""#,
        cleanup.source_cluster,
        cleanup.target_cluster,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::db(
        "checking whether a cleaned-up pair is linked again",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Owner, clusters, links, test_support::cluster};
    use linkplane_core::Link;

    async fn add_link(conn: &mut PgConnection, name: &str, source: &str, target: &str) {
        links::upsert(conn, &Link::new(name, source, target), &Owner::Api)
            .await
            .unwrap();
    }

    async fn setup(conn: &mut PgConnection) {
        for n in ["east", "west", "north"] {
            clusters::upsert(conn, &cluster(n), &Owner::Api)
                .await
                .unwrap();
        }
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn removing_a_link_records_a_cleanup_of_its_pair(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        setup(&mut conn).await;
        add_link(&mut conn, "w", "west", "east").await;
        assert!(list(&mut conn).await.unwrap().is_empty());
        links::delete(&mut conn, "w").await.unwrap();
        let pending = list(&mut conn).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            (
                pending[0].source_cluster.as_str(),
                pending[0].target_cluster.as_str(),
                pending[0].link.as_str()
            ),
            ("west", "east", "w")
        );
        assert!(complete(&mut conn, &pending[0]).await.unwrap());
        assert!(list(&mut conn).await.unwrap().is_empty());
    }

    /// A link that kept Linkerd's mirrors untouched (`adoptLinkerdMirrors: false`) must not
    /// delete them when it goes either.
    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn a_cleanup_remembers_whether_the_link_adopted_linkerds_mirrors(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        setup(&mut conn).await;
        let mut keep = Link::new("w", "west", "east");
        keep.spec.adopt_linkerd_mirrors = false;
        links::upsert(&mut conn, &keep, &Owner::Api).await.unwrap();
        add_link(&mut conn, "n", "north", "east").await;
        links::delete(&mut conn, "w").await.unwrap();
        links::delete(&mut conn, "n").await.unwrap();
        let pending = list(&mut conn).await.unwrap();
        let adopt: Vec<_> = pending
            .iter()
            .map(|p| (p.source_cluster.as_str(), p.adopt_linkerd_mirrors))
            .collect();
        assert_eq!(adopt, [("west", false), ("north", true)]);
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn kept_paused_and_unchanged_links_record_nothing(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        setup(&mut conn).await;
        let mut keep = Link::new("keep", "west", "east");
        keep.spec.cleanup_on_unlink = false;
        links::upsert(&mut conn, &keep, &Owner::Api).await.unwrap();
        links::upsert(
            &mut conn,
            &Link::new("paused", "north", "east"),
            &Owner::Api,
        )
        .await
        .unwrap();
        links::set_paused(&mut conn, "paused", true).await.unwrap();
        // An update that keeps the pair records nothing either.
        let mut changed = Link::new("paused", "north", "east");
        changed.spec.create_namespaces = true;
        links::upsert(&mut conn, &changed, &Owner::Api)
            .await
            .unwrap();
        links::delete(&mut conn, "keep").await.unwrap();
        links::delete(&mut conn, "paused").await.unwrap();
        assert!(list(&mut conn).await.unwrap().is_empty());
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn repointing_a_link_records_a_cleanup_of_the_old_pair(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        setup(&mut conn).await;
        add_link(&mut conn, "l", "west", "east").await;
        add_link(&mut conn, "l", "north", "east").await;
        let pending = list(&mut conn).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].source_cluster, "west");
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn a_newer_request_survives_completing_an_older_one(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        setup(&mut conn).await;
        add_link(&mut conn, "w", "west", "east").await;
        links::delete(&mut conn, "w").await.unwrap();
        let old = list(&mut conn).await.unwrap().remove(0);
        add_link(&mut conn, "w2", "west", "east").await;
        links::delete(&mut conn, "w2").await.unwrap();
        assert!(!complete(&mut conn, &old).await.unwrap());
        assert_eq!(list(&mut conn).await.unwrap()[0].link, "w2");
    }

    /// The obsolete-request check reads the links table, not a snapshot: linked again after the
    /// delete is true, removed (and the request read) is false.
    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn a_pair_is_linked_again_only_while_a_link_joins_it(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        setup(&mut conn).await;
        add_link(&mut conn, "w", "west", "east").await;
        links::delete(&mut conn, "w").await.unwrap();
        let req = list(&mut conn).await.unwrap().remove(0);
        assert!(!pair_linked_again(&mut conn, &req).await.unwrap());
        // Another name for the same pair counts; a link of another pair does not.
        add_link(&mut conn, "n", "north", "east").await;
        assert!(!pair_linked_again(&mut conn, &req).await.unwrap());
        add_link(&mut conn, "w2", "west", "east").await;
        assert!(pair_linked_again(&mut conn, &req).await.unwrap());
    }
}
