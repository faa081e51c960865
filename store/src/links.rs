//! The `links` table. Source and target are real columns so Postgres enforces that both
//! clusters exist, that they differ, and that one cluster pair has one link.

use chrono::{DateTime, Utc};
use linkplane_core::{Link, LinkSpec};
use sqlx::{FromRow, PgConnection};

use crate::{Owner, Result, StoreError, Stored, WriteOutcome, spec_table::to_json};

const KIND: &str = "Link";

/// A stored link with its operator pause flag.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLink {
    /// The link and its bookkeeping.
    pub stored: Stored<Link>,
    /// Paused links keep their mirrors but stop changing them.
    pub paused: bool,
}

#[derive(FromRow)]
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

const COLUMNS: &str = "name, spec, paused, owner, generation, created_at, updated_at";

/// Creates or updates a link; an identical link is left untouched.
pub async fn upsert(conn: &mut PgConnection, link: &Link, owner: &Owner) -> Result<WriteOutcome> {
    let spec = to_json(KIND, &link.name, &link.spec)?;
    let inserted: Option<bool> = sqlx::query_scalar(
        "INSERT INTO links (name, source_cluster, target_cluster, spec, owner) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET source_cluster = EXCLUDED.source_cluster,
             target_cluster = EXCLUDED.target_cluster, spec = EXCLUDED.spec, owner = EXCLUDED.owner,
             generation = links.generation + 1, updated_at = now()
         WHERE links.spec IS DISTINCT FROM EXCLUDED.spec OR links.owner IS DISTINCT FROM EXCLUDED.owner
         RETURNING (xmax = 0) AS inserted",
    )
    .bind(&link.name)
    .bind(&link.spec.source)
    .bind(&link.spec.target)
    .bind(spec)
    .bind(owner.as_column())
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
    sqlx::query(
        "INSERT INTO links (name, source_cluster, target_cluster, spec, owner) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&link.name)
    .bind(&link.spec.source)
    .bind(&link.spec.target)
    .bind(spec)
    .bind(owner.as_column())
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx(KIND, &link.name, "creating", e))?;
    Ok(())
}

/// One link by name.
pub async fn get(conn: &mut PgConnection, name: &str) -> Result<Option<StoredLink>> {
    let sql = format!("SELECT {COLUMNS} FROM links WHERE name = $1");
    let row: Option<LinkRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| StoreError::from_sqlx(KIND, name, "reading", e))?;
    row.map(LinkRow::decode).transpose()
}

/// Every link, by name.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<StoredLink>> {
    let sql = format!("SELECT {COLUMNS} FROM links ORDER BY name");
    let rows: Vec<LinkRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db("listing links"))?;
    rows.into_iter().map(LinkRow::decode).collect()
}

/// Deletes a link (its mirror rows and gateway health go with it).
pub async fn delete(conn: &mut PgConnection, name: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM links WHERE name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(|e| StoreError::from_sqlx(KIND, name, "deleting", e))?;
    Ok(done.rows_affected() > 0)
}

/// Pauses or resumes a link; `NotFound` when it does not exist.
pub async fn set_paused(conn: &mut PgConnection, name: &str, paused: bool) -> Result<()> {
    let done = sqlx::query("UPDATE links SET paused = $2, updated_at = now() WHERE name = $1")
        .bind(name)
        .bind(paused)
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
}
