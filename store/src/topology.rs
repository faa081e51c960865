//! Read-side queries of the `mirrors` table for the API: mirror rows batched by many parents at
//! once, grouped into exported services, counted by state, and the mirrors a cluster failure
//! strands. Other tables' batched reads live in their own modules
//! ([`crate::sync_history::newest_of`], [`crate::gitops::drift_of`],
//! [`crate::federation::stranded_federated`]).
//!
//! Every function here is exactly one SQL statement and takes a *set* of keys, so the GraphQL
//! DataLoaders answer a whole level of a query with one round trip whatever the fleet size.

use sqlx::PgConnection;

use crate::{
    Result, StoreError,
    mirrors::{MirrorRow, MirrorState, select_rows},
};

/// Which column of `mirrors` a batched query groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MirrorParent {
    /// The link selecting the service.
    Link,
    /// The cluster holding the mirror (the link's source).
    SourceCluster,
    /// The cluster exporting the service (the link's target).
    TargetCluster,
}

/// How many mirrors of one parent are in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCount {
    /// The parent's name (link or cluster).
    pub parent: String,
    /// The state.
    pub state: MirrorState,
    /// Number of mirrors.
    pub count: i64,
}

/// Mirror counts per `(parent, state)` for the given parents (`None`: every parent); states
/// without mirrors are left out.
///
/// Reads the `mirror_counts` table (one row per link and state, kept exact by triggers on
/// `mirrors`, migration 0005), so the cost follows the number of links, not of mirrors.
/// Per-cluster counts sum the counts of the links with that source (or target): a mirror's
/// clusters are its link's.
pub async fn mirror_counts(
    conn: &mut PgConnection,
    by: MirrorParent,
    parents: Option<&[String]>,
) -> Result<Vec<StateCount>> {
    // Three statements, one per grouping column: each is checked at compile time.
    let rows =
        match by {
            MirrorParent::Link => {
                sqlx::query_as!(
                    CountRow,
                    r#"SELECT link::text AS "parent!", state, n AS "count!" FROM mirror_counts
             WHERE n > 0 AND ($1::text[] IS NULL OR link = ANY($1))"#,
                    parents as Option<&[String]>,
                )
                .fetch_all(&mut *conn)
                .await
            }
            MirrorParent::SourceCluster => sqlx::query_as!(
                CountRow,
                r#"SELECT l.source_cluster::text AS "parent!", c.state, sum(c.n)::bigint AS "count!"
             FROM mirror_counts c JOIN links l ON l.name = c.link
             WHERE c.n > 0 AND ($1::text[] IS NULL OR l.source_cluster = ANY($1))
             GROUP BY l.source_cluster, c.state"#,
                parents as Option<&[String]>,
            )
            .fetch_all(&mut *conn)
            .await,
            MirrorParent::TargetCluster => sqlx::query_as!(
                CountRow,
                r#"SELECT l.target_cluster::text AS "parent!", c.state, sum(c.n)::bigint AS "count!"
             FROM mirror_counts c JOIN links l ON l.name = c.link
             WHERE c.n > 0 AND ($1::text[] IS NULL OR l.target_cluster = ANY($1))
             GROUP BY l.target_cluster, c.state"#,
                parents as Option<&[String]>,
            )
            .fetch_all(&mut *conn)
            .await,
        }
        .map_err(StoreError::db("counting mirrors"))?;
    Ok(rows
        .into_iter()
        .map(|r| StateCount {
            parent: r.parent,
            state: MirrorState::parse(&r.state).unwrap_or(MirrorState::Error),
            count: r.count,
        })
        .collect())
}

/// A row of [`mirror_counts`]' statements.
struct CountRow {
    parent: String,
    state: String,
    count: i64,
}

/// Per parent, the first `limit` mirrors with id > `after_id` (ordered by id) that match the
/// optional namespace and state: one page per parent, in one statement.
pub async fn mirror_pages(
    conn: &mut PgConnection,
    by: MirrorParent,
    parents: &[String],
    namespace: Option<&str>,
    state: Option<MirrorState>,
    after_id: i64,
    limit: i64,
) -> Result<Vec<MirrorRow>> {
    // One statement per grouping column (`$col`), each checked at compile time.
    macro_rules! pages {
        ($col:literal) => {
            select_rows!(
                "FROM (
                     SELECT m.*, row_number() OVER (PARTITION BY m."
                    + $col
                    + " ORDER BY m.id) AS rn
                     FROM mirrors m
                     WHERE m."
                    + $col
                    + " = ANY($1) AND ($2::text IS NULL OR m.remote_namespace = $2)
                       AND ($3::text IS NULL OR m.state = $3) AND m.id > $4) page
                 WHERE rn <= $5 ORDER BY "
                    + $col
                    + ", id",
                parents,
                namespace,
                state.map(MirrorState::as_str),
                after_id,
                limit,
            )
            .fetch_all(&mut *conn)
            .await
        };
    }
    let rows = match by {
        MirrorParent::Link => pages!("link"),
        MirrorParent::SourceCluster => pages!("source_cluster"),
        MirrorParent::TargetCluster => pages!("target_cluster"),
    }
    .map_err(StoreError::db("paging mirrors"))?;
    Ok(rows.into_iter().map(MirrorRow::from).collect())
}

/// An exported service: one service of a target cluster that at least one link selects.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedService {
    /// Cluster exporting the service.
    pub target_cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Service name in the target cluster.
    pub name: String,
    /// The mirror rows of this service, one per consuming link, by consumer cluster.
    pub consumers: Vec<MirrorRow>,
}

/// Cursor of [`services`]: services are ordered by `(target_cluster, namespace, name)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceKey {
    /// Cluster exporting the service.
    pub target_cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Service name.
    pub name: String,
}

pub(crate) fn group_services(rows: Vec<crate::mirrors::Row>) -> Vec<ExportedService> {
    let mut out: Vec<ExportedService> = Vec::new();
    for row in rows.into_iter().map(MirrorRow::from) {
        let s = &row.status;
        match out.last_mut() {
            Some(last)
                if last.target_cluster == s.target_cluster
                    && last.namespace == s.namespace
                    && last.name == s.remote_name =>
            {
                last.consumers.push(row);
            }
            _ => out.push(ExportedService {
                target_cluster: s.target_cluster.clone(),
                namespace: s.namespace.clone(),
                name: s.remote_name.clone(),
                consumers: vec![row],
            }),
        }
    }
    out
}

/// A page of exported services (after `after`, at most `limit`), optionally of one target
/// cluster and/or namespace, each with every consumer.
pub async fn services(
    conn: &mut PgConnection,
    target_cluster: Option<&str>,
    namespace: Option<&str>,
    after: Option<&ServiceKey>,
    limit: i64,
) -> Result<Vec<ExportedService>> {
    let rows = select_rows!(
        "FROM mirrors JOIN (
             SELECT DISTINCT target_cluster, remote_namespace, remote_name FROM mirrors
             WHERE ($1::text IS NULL OR target_cluster = $1) AND ($2::text IS NULL OR remote_namespace = $2)
               AND ($3::text IS NULL OR (target_cluster, remote_namespace, remote_name) > ($3, $4, $5))
             ORDER BY 1, 2, 3 LIMIT $6) keys USING (target_cluster, remote_namespace, remote_name)
         ORDER BY target_cluster, remote_namespace, remote_name, source_cluster, id",
        target_cluster,
        namespace,
        after.map(|k| k.target_cluster.as_str()),
        after.map(|k| k.namespace.as_str()),
        after.map(|k| k.name.as_str()),
        limit,
    )
    .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db("listing exported services"))?;
    Ok(group_services(rows))
}

/// Every exported service of each of `targets`, with its consumers.
pub async fn services_of(
    conn: &mut PgConnection,
    targets: &[String],
) -> Result<Vec<ExportedService>> {
    let rows = select_rows!(
        "FROM mirrors WHERE target_cluster = ANY($1)
         ORDER BY target_cluster, remote_namespace, remote_name, source_cluster, id",
        targets,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("listing exported services"))?;
    Ok(group_services(rows))
}

/// Mirrors that serve traffic only through `cluster`: every `Mirrored` mirror of a service it
/// exports, or only the gateway-mode ones when `gateway_only` (remote-discovery mirrors reach pods
/// directly and survive a gateway failure). A mirror has exactly one target, so each loses every
/// endpoint when its target fails.
pub async fn stranded_mirrors(
    conn: &mut PgConnection,
    cluster: &str,
    gateway_only: bool,
) -> Result<Vec<MirrorRow>> {
    let rows = select_rows!(
        "FROM mirrors
         WHERE target_cluster = $1 AND state = 'Mirrored' AND (NOT $2 OR mode = 'gateway')
         ORDER BY source_cluster, remote_namespace, remote_name, id",
        cluster,
        gateway_only,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("computing the blast radius"))?;
    Ok(rows.into_iter().map(MirrorRow::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::stranded_federated;
    use crate::mirrors::MirrorStatus;
    use crate::{
        Owner, clusters,
        federation::{self, FederatedState, FederatedStatus, MemberState, MemberStatus},
        links, mirrors,
        test_support::cluster,
    };
    use linkplane_core::Link;

    fn status(link: &str, src: &str, dst: &str, name: &str, mode: &str) -> MirrorStatus {
        MirrorStatus {
            link: link.into(),
            source_cluster: src.into(),
            target_cluster: dst.into(),
            namespace: "shop".into(),
            remote_name: name.into(),
            local_name: format!("{name}-{dst}"),
            mode: mode.into(),
            headless: false,
            state: MirrorState::Mirrored,
            message: String::new(),
        }
    }

    async fn seed(conn: &mut PgConnection) {
        for n in ["east", "west", "north"] {
            clusters::upsert(conn, &cluster(n), &Owner::Api)
                .await
                .unwrap();
        }
        for (l, s, t) in [("w-e", "west", "east"), ("n-e", "north", "east")] {
            links::upsert(conn, &Link::new(l, s, t), &Owner::Api)
                .await
                .unwrap();
        }
        for (l, s, name, mode) in [
            ("w-e", "west", "web", "gateway"),
            ("w-e", "west", "db", "remote-discovery"),
            ("n-e", "north", "web", "gateway"),
        ] {
            mirrors::upsert(conn, &status(l, s, "east", name, mode))
                .await
                .unwrap();
        }
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn services_group_consumers_and_page_by_key(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        seed(&mut conn).await;
        let page = services(&mut conn, None, None, None, 1).await.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].name, "db");
        let key = ServiceKey {
            target_cluster: "east".into(),
            namespace: "shop".into(),
            name: "db".into(),
        };
        let next = services(&mut conn, None, None, Some(&key), 10)
            .await
            .unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].name, "web");
        let consumers: Vec<&str> = next[0]
            .consumers
            .iter()
            .map(|m| m.status.source_cluster.as_str())
            .collect();
        assert_eq!(consumers, ["north", "west"]);
        assert_eq!(
            services_of(&mut conn, &["east".into()])
                .await
                .unwrap()
                .len(),
            2
        );
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn counts_and_pages_cover_every_parent_in_one_call(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        seed(&mut conn).await;
        let counts = mirror_counts(
            &mut conn,
            MirrorParent::SourceCluster,
            Some(&["west".into(), "north".into()]),
        )
        .await
        .unwrap();
        let west: i64 = counts
            .iter()
            .filter(|c| c.parent == "west")
            .map(|c| c.count)
            .sum();
        assert_eq!(west, 2);
        let pages = mirror_pages(
            &mut conn,
            MirrorParent::Link,
            &["w-e".into(), "n-e".into()],
            None,
            None,
            0,
            1,
        )
        .await
        .unwrap();
        assert_eq!(pages.len(), 2, "one row per link");
    }

    /// `mirror_counts` (trigger-maintained) against a fresh `GROUP BY` over `mirrors`.
    async fn assert_counts_exact(conn: &mut PgConnection, step: &str) {
        let mut kept: Vec<(String, String, i64)> = mirror_counts(conn, MirrorParent::Link, None)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.parent, c.state.as_str().to_string(), c.count))
            .collect();
        kept.sort();
        let fresh: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT link::text, state, count(*) FROM mirrors GROUP BY link, state ORDER BY 1, 2",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        assert_eq!(kept, fresh, "after {step}");
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn mirror_counts_stay_exact_through_every_kind_of_write(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        seed(&mut conn).await;
        assert_counts_exact(&mut conn, "seeding").await;
        let mut web = status("w-e", "west", "east", "web", "gateway");
        web.state = MirrorState::Conflict;
        mirrors::upsert(&mut conn, &web).await.unwrap();
        assert_counts_exact(&mut conn, "a state change").await;
        web.message = "taken".into();
        mirrors::upsert(&mut conn, &web).await.unwrap();
        mirrors::upsert(&mut conn, &web).await.unwrap();
        assert_counts_exact(&mut conn, "a message change and an identical upsert").await;
        for name in ["a", "b", "c"] {
            mirrors::upsert(&mut conn, &status("n-e", "north", "east", name, "gateway"))
                .await
                .unwrap();
        }
        assert_counts_exact(&mut conn, "new mirrors").await;
        // Several state changes of one link in one transaction, as the mirror writer batches.
        let mut tx = pool.begin().await.unwrap();
        for (name, state) in [
            ("a", MirrorState::Error),
            ("b", MirrorState::MissingNamespace),
            ("a", MirrorState::Mirrored),
            ("c", MirrorState::PolicyDenied),
        ] {
            let mut s = status("n-e", "north", "east", name, "gateway");
            s.state = state;
            mirrors::upsert(&mut tx, &s).await.unwrap();
        }
        tx.commit().await.unwrap();
        assert_counts_exact(&mut conn, "a batch of state changes").await;
        // The mirror writer's set-based upsert: new, changed, identical and repeated rows.
        let state_of = |name: &str, state| {
            let mut s = status("n-e", "north", "east", name, "gateway");
            s.state = state;
            s
        };
        mirrors::upsert_many(
            &mut conn,
            &[
                &state_of("a", MirrorState::Mirrored),
                &state_of("c", MirrorState::Conflict),
                &state_of("e", MirrorState::Error),
                &state_of("f", MirrorState::Mirrored),
                &state_of("f", MirrorState::Conflict),
            ],
        )
        .await
        .unwrap();
        assert_counts_exact(&mut conn, "a set-based upsert").await;
        mirrors::delete(&mut conn, "n-e", "shop", "b")
            .await
            .unwrap();
        assert_counts_exact(&mut conn, "a delete").await;
        mirrors::retain_for_link(
            &mut conn,
            "n-e",
            &[("shop".into(), "a".into()), ("shop".into(), "web".into())],
        )
        .await
        .unwrap();
        assert_counts_exact(&mut conn, "a resync's garbage collection").await;
        // A rolled-back write leaves the counts as they were.
        let mut tx = pool.begin().await.unwrap();
        mirrors::upsert(&mut tx, &status("n-e", "north", "east", "d", "gateway"))
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert_counts_exact(&mut conn, "a rollback").await;
        let by_source = mirror_counts(&mut conn, MirrorParent::SourceCluster, None)
            .await
            .unwrap();
        let north: i64 = by_source
            .iter()
            .filter(|c| c.parent == "north")
            .map(|c| c.count)
            .sum();
        assert_eq!(north, 2, "north holds web and a");
        links::delete(&mut conn, "w-e").await.unwrap();
        assert_counts_exact(&mut conn, "deleting a link (its mirrors cascade)").await;
        sqlx::query("TRUNCATE mirrors")
            .execute(&mut *conn)
            .await
            .unwrap();
        assert_counts_exact(&mut conn, "a truncate").await;
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM mirror_counts")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(left, 0);
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn blast_radius_distinguishes_gateway_and_cluster_failure(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        seed(&mut conn).await;
        assert_eq!(
            stranded_mirrors(&mut conn, "east", false)
                .await
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            stranded_mirrors(&mut conn, "east", true)
                .await
                .unwrap()
                .len(),
            2
        );
        let member = |c: &str, local: bool, state| MemberStatus {
            cluster: c.into(),
            is_local: local,
            state,
            message: String::new(),
            member_since: None,
        };
        let fed = |svc: &str, members| FederatedStatus {
            source_cluster: "west".into(),
            namespace: "shop".into(),
            service: svc.into(),
            local_name: format!("{svc}-federated"),
            state: FederatedState::Federated,
            message: String::new(),
            remote_discovery: String::new(),
            local_discovery: false,
            members,
        };
        federation::upsert(
            &mut conn,
            &fed(
                "only-east",
                vec![
                    member("east", false, MemberState::Member),
                    member("north", false, MemberState::Unreachable),
                ],
            ),
        )
        .await
        .unwrap();
        federation::upsert(
            &mut conn,
            &fed(
                "spread",
                vec![
                    member("east", false, MemberState::Member),
                    member("west", true, MemberState::Member),
                ],
            ),
        )
        .await
        .unwrap();
        let stranded = stranded_federated(&mut conn, "east").await.unwrap();
        assert_eq!(stranded.len(), 1);
        assert_eq!(stranded[0].service, "only-east");
    }
}
