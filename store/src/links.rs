//! The `links` table. Source and target are real columns so Postgres enforces that both
//! clusters exist, that they differ, and that one cluster pair has one link.

use chrono::{DateTime, Utc};
use linkplane_core::{Link, LinkSpec};
use sqlx::{PgConnection, types::Json};

use crate::{
    BulkOutcome, Owner, Result, StoreError, Stored, WriteOutcome,
    spec_table::{
        BulkRow, SpecTable, Table, keep, outcome, reject_duplicates, savepoint, to_json, undo,
    },
};

const KIND: &str = "Link";

/// For the bulk prune, which only needs `name` and `owner`.
const TABLE: SpecTable = SpecTable {
    table: Table::Links,
    kind: KIND,
};

/// `(created, updated)` for `$1` names, `$2` sources, `$3` targets, `$4` specs, `$5` owner:
/// [`upsert`]'s statement over arrays, guarded by owner (a macro so the batch and its replay
/// run the one checked statement).
macro_rules! upsert_bulk {
    ($conn:expr, $names:expr, $sources:expr, $targets:expr, $specs:expr, $owner:expr) => {
        sqlx::query!(
            r#"WITH written AS (
                 INSERT INTO links (name, source_cluster, target_cluster, spec, owner)
                 SELECT name, src, tgt, spec, $5::text
                   FROM UNNEST($1::text[], $2::text[], $3::text[], $4::jsonb[]) AS i(name, src, tgt, spec)
                 ON CONFLICT (name) DO UPDATE SET source_cluster = EXCLUDED.source_cluster,
                     target_cluster = EXCLUDED.target_cluster, spec = EXCLUDED.spec,
                     generation = links.generation + 1, updated_at = now()
                 WHERE links.owner = EXCLUDED.owner AND links.spec IS DISTINCT FROM EXCLUDED.spec
                 RETURNING (xmax = 0) AS inserted
             )
             SELECT count(*) FILTER (WHERE inserted) AS "created!",
                    count(*) FILTER (WHERE NOT inserted) AS "updated!" FROM written"#,
            $names,
            $sources,
            $targets,
            $specs,
            $owner,
        )
        .fetch_one($conn)
        .await
        .map(|r| (r.created, r.updated))
    };
}

/// A stored link with its operator pause flag.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLink {
    /// The link and its bookkeeping.
    pub stored: Stored<Link>,
    /// Paused links keep their mirrors but stop changing them.
    pub paused: bool,
}

struct LinkRow {
    name: String,
    spec: serde_json::Value,
    paused: bool,
    owner: String,
    generation: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl LinkRow {
    fn decode(self) -> Result<StoredLink> {
        let spec: LinkSpec =
            serde_json::from_value(self.spec).map_err(|source| StoreError::Corrupt {
                kind: KIND,
                name: self.name.clone(),
                source,
            })?;
        Ok(StoredLink {
            stored: Stored {
                value: Link {
                    name: self.name,
                    spec,
                },
                owner: Owner::from_column(&self.owner),
                generation: self.generation,
                created_at: self.created_at,
                updated_at: self.updated_at,
            },
            paused: self.paused,
        })
    }
}

/// Creates or updates a link; an identical link is left untouched.
pub async fn upsert(conn: &mut PgConnection, link: &Link, owner: &Owner) -> Result<WriteOutcome> {
    let spec = to_json(KIND, &link.name, &link.spec)?;
    let inserted: Option<bool> = sqlx::query_scalar!(
        r#"INSERT INTO links (name, source_cluster, target_cluster, spec, owner) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET source_cluster = EXCLUDED.source_cluster,
             target_cluster = EXCLUDED.target_cluster, spec = EXCLUDED.spec, owner = EXCLUDED.owner,
             generation = links.generation + 1, updated_at = now()
         WHERE links.spec IS DISTINCT FROM EXCLUDED.spec OR links.owner IS DISTINCT FROM EXCLUDED.owner
         RETURNING (xmax = 0) AS "inserted!""#,
        link.name,
        link.spec.source,
        link.spec.target,
        spec,
        owner.as_column(),
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx(KIND, &link.name, "upserting", e))?;
    Ok(match inserted {
        Some(true) => WriteOutcome::Created,
        Some(false) => WriteOutcome::Updated,
        None => WriteOutcome::Unchanged,
    })
}

/// Creates a link; `Conflict` when the name or the cluster pair is taken, `Reference` when a
/// cluster does not exist.
pub async fn create(conn: &mut PgConnection, link: &Link, owner: &Owner) -> Result<()> {
    let spec = to_json(KIND, &link.name, &link.spec)?;
    sqlx::query!(
        "INSERT INTO links (name, source_cluster, target_cluster, spec, owner) VALUES ($1, $2, $3, $4, $5)",
        link.name,
        link.spec.source,
        link.spec.target,
        spec,
        owner.as_column(),
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx(KIND, &link.name, "creating", e))?;
    Ok(())
}

/// One link by name.
pub async fn get(conn: &mut PgConnection, name: &str) -> Result<Option<StoredLink>> {
    let row: Option<LinkRow> = sqlx::query_as!(
        LinkRow,
        "SELECT name, spec, paused, owner, generation, created_at, updated_at FROM links WHERE name = $1",
        name,
    )
    .fetch_optional(&mut *conn)
        .await
        .map_err(|e| StoreError::from_sqlx(KIND, name, "reading", e))?;
    row.map(LinkRow::decode).transpose()
}

/// Every link, by name.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<StoredLink>> {
    let rows: Vec<LinkRow> = sqlx::query_as!(
        LinkRow,
        "SELECT name, spec, paused, owner, generation, created_at, updated_at FROM links ORDER BY name",
    )
    .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db("listing links"))?;
    rows.into_iter().map(LinkRow::decode).collect()
}

/// Deletes a link (its mirror rows and gateway health go with it).
pub async fn delete(conn: &mut PgConnection, name: &str) -> Result<bool> {
    let done = sqlx::query!("DELETE FROM links WHERE name = $1", name)
        .execute(&mut *conn)
        .await
        .map_err(|e| StoreError::from_sqlx(KIND, name, "deleting", e))?;
    Ok(done.rows_affected() > 0)
}

/// Pauses or resumes a link; `NotFound` when it does not exist.
pub async fn set_paused(conn: &mut PgConnection, name: &str, paused: bool) -> Result<()> {
    let done = sqlx::query!(
        "UPDATE links SET paused = $2, updated_at = now() WHERE name = $1",
        name,
        paused,
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx(KIND, name, "pausing", e))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            kind: KIND,
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Creates or updates many links with one statement, all or nothing (the GitOps engine applies
/// a revision's links this way). Identical links are not rewritten; one that another owner
/// manages is never taken over ([`StoreError::Owned`]). On a constraint violation (a missing
/// cluster, a taken cluster pair) the batch is undone and replayed one link per statement,
/// rolled back after, so the error names the offending link as [`upsert`] would.
pub async fn upsert_many(
    conn: &mut PgConnection,
    links: &[&Link],
    owner: &Owner,
) -> Result<BulkOutcome> {
    if links.is_empty() {
        return Ok(BulkOutcome::default());
    }
    let names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
    reject_duplicates(KIND, &names)?;
    let sources: Vec<&str> = links.iter().map(|l| l.spec.source.as_str()).collect();
    let targets: Vec<&str> = links.iter().map(|l| l.spec.target.as_str()).collect();
    let specs = links
        .iter()
        .map(|l| to_json(KIND, &l.name, &l.spec))
        .collect::<Result<Vec<_>>>()?;
    let json: Vec<Json<&serde_json::Value>> = specs.iter().map(Json).collect();
    let mut sp = savepoint(conn).await?;
    let row: std::result::Result<BulkRow, sqlx::Error> = upsert_bulk!(
        &mut *sp,
        &names as &[&str],
        &sources as &[&str],
        &targets as &[&str],
        &json as &[Json<&serde_json::Value>],
        owner.as_column()
    );
    match row {
        Ok(row) => match outcome(&mut sp, Table::Links, KIND, &names, row, owner).await {
            Ok(out) => {
                keep(sp).await?;
                Ok(out)
            }
            Err(e) => {
                undo(sp).await?;
                Err(e)
            }
        },
        Err(e) if StoreError::is_constraint(&e) => {
            undo(sp).await?;
            Err(upsert_culprit(conn, links, &json, owner, e).await)
        }
        Err(e) => {
            undo(sp).await?;
            Err(StoreError::Database {
                action: "bulk upserting links",
                source: e,
            })
        }
    }
}

/// Replays a failed link batch one link per statement to name the one the database refuses;
/// rolled back afterwards. Falls back to the batch's own error.
async fn upsert_culprit(
    conn: &mut PgConnection,
    links: &[&Link],
    specs: &[Json<&serde_json::Value>],
    owner: &Owner,
    batch_error: sqlx::Error,
) -> StoreError {
    let fallback = StoreError::Database {
        action: "bulk upserting links",
        source: batch_error,
    };
    let Ok(mut sp) = savepoint(conn).await else {
        return fallback;
    };
    for (link, spec) in links.iter().zip(specs) {
        let res = upsert_bulk!(
            &mut *sp,
            &[link.name.as_str()] as &[&str],
            &[link.spec.source.as_str()] as &[&str],
            &[link.spec.target.as_str()] as &[&str],
            &[*spec] as &[Json<&serde_json::Value>],
            owner.as_column()
        );
        if let Err(e) = res {
            let _ = undo(sp).await;
            return StoreError::from_sqlx(KIND, &link.name, "upserting", e);
        }
    }
    let _ = undo(sp).await;
    fallback
}

/// Deletes those of `names` that `owner` manages, with one statement, all or nothing (their
/// mirror rows and gateway health go with them); returns how many went.
pub async fn delete_many(conn: &mut PgConnection, names: &[&str], owner: &Owner) -> Result<usize> {
    TABLE.delete_owned(conn, names, owner).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{clusters, test_support::cluster};

    async fn seed(conn: &mut PgConnection) {
        for n in ["east", "west"] {
            clusters::upsert(conn, &cluster(n), &Owner::Api)
                .await
                .unwrap();
        }
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn link_round_trips_and_pauses(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        seed(&mut conn).await;
        let link = Link::new("west-from-east", "west", "east");
        assert_eq!(
            upsert(&mut conn, &link, &Owner::Api).await.unwrap(),
            WriteOutcome::Created
        );
        assert_eq!(
            upsert(&mut conn, &link, &Owner::Api).await.unwrap(),
            WriteOutcome::Unchanged
        );
        set_paused(&mut conn, &link.name, true).await.unwrap();
        let stored = get(&mut conn, &link.name).await.unwrap().unwrap();
        assert_eq!(stored.stored.value, link);
        assert!(stored.paused);
        assert!(matches!(
            set_paused(&mut conn, "nope", true).await,
            Err(StoreError::NotFound { .. })
        ));
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn dangling_cluster_reference_is_a_reference_error(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        seed(&mut conn).await;
        let err = create(&mut conn, &Link::new("l", "west", "mars"), &Owner::Api)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Link \"l\": spec.target names a cluster that does not exist"
        );
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn second_link_for_the_same_pair_conflicts(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        seed(&mut conn).await;
        create(&mut conn, &Link::new("a", "west", "east"), &Owner::Api)
            .await
            .unwrap();
        let err = create(&mut conn, &Link::new("b", "west", "east"), &Owner::Api)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn cluster_in_use_cannot_be_deleted(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        seed(&mut conn).await;
        create(&mut conn, &Link::new("a", "west", "east"), &Owner::Api)
            .await
            .unwrap();
        let err = clusters::delete(&mut conn, "east").await.unwrap_err();
        assert!(matches!(err, StoreError::Reference { .. }), "{err:?}");
        assert!(delete(&mut conn, "a").await.unwrap());
        assert!(clusters::delete(&mut conn, "east").await.unwrap());
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn self_link_is_rejected_by_the_schema(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        seed(&mut conn).await;
        let err = create(&mut conn, &Link::new("loop", "east", "east"), &Owner::Api)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Invalid { ref reason, .. } if reason == "links_source_differs_from_target"),
            "{err:?}"
        );
    }
    fn git() -> Owner {
        Owner::Git("fleet".into())
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn upsert_many_counts_and_moves_links(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        seed(&mut conn).await;
        clusters::upsert(&mut conn, &cluster("north"), &Owner::Api)
            .await
            .unwrap();
        let a = Link::new("a", "west", "east");
        let b = Link::new("b", "east", "west");
        let out = upsert_many(&mut conn, &[&a, &b], &git()).await.unwrap();
        assert_eq!((out.created, out.updated, out.unchanged), (2, 0, 0));
        let moved = Link::new("b", "north", "west");
        let out = upsert_many(&mut conn, &[&a, &moved], &git()).await.unwrap();
        assert_eq!((out.created, out.updated, out.unchanged), (0, 1, 1));
        let stored = get(&mut conn, "b").await.unwrap().unwrap().stored;
        assert_eq!((stored.value, stored.generation), (moved, 2));
        assert_eq!(
            delete_many(&mut conn, &["a", "b"], &git()).await.unwrap(),
            2
        );
        assert!(list(&mut conn).await.unwrap().is_empty());
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn upsert_many_names_the_offending_link_and_undoes_the_batch(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        seed(&mut conn).await;
        create(&mut conn, &Link::new("api", "west", "east"), &Owner::Api)
            .await
            .unwrap();
        let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
        let ok = Link::new("ok", "east", "west");
        let dangling = Link::new("dangling", "west", "mars");
        let err = upsert_many(&mut tx, &[&ok, &dangling], &git())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Link \"dangling\": spec.target names a cluster that does not exist"
        );
        let pair = Link::new("same-pair", "west", "east");
        let err = upsert_many(&mut tx, &[&ok, &pair], &git())
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { ref name, .. } if name == "same-pair"),
            "{err:?}"
        );
        let mut taken = Link::new("api", "west", "east");
        taken.spec.create_namespaces = true;
        let err = upsert_many(&mut tx, &[&ok, &taken], &git())
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Owned { ref name, owner: Owner::Api, .. } if name == "api"),
            "{err:?}"
        );
        // The transaction is still usable and none of the batches stayed.
        let names: Vec<String> = list(&mut tx)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.stored.value.name)
            .collect();
        assert_eq!(names, ["api"]);
        // Git never prunes the API's link.
        assert_eq!(delete_many(&mut tx, &["api"], &git()).await.unwrap(), 0);
        tx.commit().await.unwrap();
    }
}
