//! The `clusters` table.

use linkplane_core::{Cluster, ClusterSpec};
use sqlx::PgConnection;

use crate::{
    Owner, Result, Stored, WriteOutcome,
    spec_table::{SpecTable, to_json},
};

const TABLE: SpecTable = SpecTable {
    table: "clusters",
    kind: "Cluster",
};

fn build(name: String, spec: ClusterSpec) -> Cluster {
    Cluster { name, spec }
}

/// Creates or updates a cluster; an identical cluster is left untouched.
pub async fn upsert(
    conn: &mut PgConnection,
    cluster: &Cluster,
    owner: &Owner,
) -> Result<WriteOutcome> {
    let spec = to_json(TABLE.kind, &cluster.name, &cluster.spec)?;
    TABLE.upsert(conn, &cluster.name, spec, owner).await
}

/// Creates a cluster; fails with `Conflict` when the name is taken.
pub async fn create(conn: &mut PgConnection, cluster: &Cluster, owner: &Owner) -> Result<()> {
    let spec = to_json(TABLE.kind, &cluster.name, &cluster.spec)?;
    TABLE.create(conn, &cluster.name, spec, owner).await
}

/// One cluster by name.
pub async fn get(conn: &mut PgConnection, name: &str) -> Result<Option<Stored<Cluster>>> {
    TABLE
        .get(conn, name)
        .await?
        .map(|r| r.decode(TABLE.kind, build))
        .transpose()
}

/// Every cluster, by name.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Stored<Cluster>>> {
    TABLE
        .list(conn)
        .await?
        .into_iter()
        .map(|r| r.decode(TABLE.kind, build))
        .collect()
}

/// Deletes a cluster; fails with `Reference` while a link still uses it.
pub async fn delete(conn: &mut PgConnection, name: &str) -> Result<bool> {
    TABLE.delete(conn, name).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StoreError, test_support::cluster};

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn upsert_reports_created_updated_unchanged(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let mut c = cluster("east");
        assert_eq!(
            upsert(&mut conn, &c, &Owner::Api).await.unwrap(),
            WriteOutcome::Created
        );
        assert_eq!(
            upsert(&mut conn, &c, &Owner::Api).await.unwrap(),
            WriteOutcome::Unchanged
        );
        c.spec.cluster_domain = "east.local".into();
        assert_eq!(
            upsert(&mut conn, &c, &Owner::Api).await.unwrap(),
            WriteOutcome::Updated
        );
        let stored = get(&mut conn, "east").await.unwrap().unwrap();
        assert_eq!(stored.value, c);
        assert_eq!(stored.generation, 2);
        assert_eq!(stored.owner, Owner::Api);
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn duplicate_create_is_a_conflict(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        create(&mut conn, &cluster("east"), &Owner::Api)
            .await
            .unwrap();
        let err = create(&mut conn, &cluster("east"), &Owner::Git("fleet".into()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { kind: "Cluster", ref name } if name == "east"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "Cluster \"east\" already exists");
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn list_is_sorted_and_delete_reports_absence(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        for n in ["west", "east", "north"] {
            upsert(&mut conn, &cluster(n), &Owner::Git("fleet".into()))
                .await
                .unwrap();
        }
        let names: Vec<String> = list(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.value.name)
            .collect();
        assert_eq!(names, ["east", "north", "west"]);
        assert!(delete(&mut conn, "north").await.unwrap());
        assert!(!delete(&mut conn, "north").await.unwrap());
        assert_eq!(
            get(&mut conn, "east").await.unwrap().unwrap().owner,
            Owner::Git("fleet".into())
        );
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn invalid_name_is_rejected_by_the_schema(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let err = create(&mut conn, &cluster("Bad_Name"), &Owner::Api)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    }
}
