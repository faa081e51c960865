//! The `clusters` table.

use linkplane_core::{Cluster, ClusterSpec};

use crate::spec_table::{SpecObject, SpecTable, Table, spec_functions};

impl SpecObject for Cluster {
    const TABLE: SpecTable = SpecTable {
        table: Table::Clusters,
        kind: "Cluster",
    };
    type Spec = ClusterSpec;

    fn name(&self) -> &str {
        &self.name
    }

    fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    fn build(name: String, spec: ClusterSpec) -> Self {
        Cluster { name, spec }
    }
}

spec_functions!(Cluster, "a cluster");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BulkOutcome, Owner, WriteOutcome};
    use crate::{StoreError, test_support::cluster};
    use sqlx::PgConnection;

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
    fn git() -> Owner {
        Owner::Git("fleet".into())
    }

    async fn names(conn: &mut PgConnection) -> Vec<(String, Owner)> {
        list(conn)
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.value.name, s.owner))
            .collect()
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn upsert_many_counts_created_updated_unchanged(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let (a, b) = (cluster("a"), cluster("b"));
        let out = upsert_many(&mut conn, &[&a, &b], &git()).await.unwrap();
        assert_eq!(
            out,
            BulkOutcome {
                created: 2,
                updated: 0,
                unchanged: 0
            }
        );
        let mut b2 = cluster("b");
        b2.spec.cluster_domain = "b.local".into();
        let c = cluster("c");
        let out = upsert_many(&mut conn, &[&a, &b2, &c], &git())
            .await
            .unwrap();
        assert_eq!(
            out,
            BulkOutcome {
                created: 1,
                updated: 1,
                unchanged: 1
            }
        );
        let stored = get(&mut conn, "b").await.unwrap().unwrap();
        assert_eq!((stored.value, stored.generation), (b2, 2));
        assert_eq!(get(&mut conn, "a").await.unwrap().unwrap().generation, 1);
        assert_eq!(
            upsert_many(&mut conn, &[], &git()).await.unwrap(),
            BulkOutcome::default()
        );
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn upsert_many_never_takes_over_and_undoes_the_batch(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        upsert(&mut conn, &cluster("api-owned"), &Owner::Api)
            .await
            .unwrap();
        let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
        let (fresh, mut taken) = (cluster("fresh"), cluster("api-owned"));
        taken.spec.cluster_domain = "git.local".into();
        let err = upsert_many(&mut tx, &[&fresh, &taken], &git())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Cluster \"api-owned\" is managed by the API; Git source \"fleet\" may not change it"
        );
        // Nothing of the batch stayed, and the caller's transaction is still usable.
        assert_eq!(
            names(&mut tx).await,
            [("api-owned".to_string(), Owner::Api)]
        );
        tx.commit().await.unwrap();
        // An identical spec does not help: the name is still someone else's.
        let err = upsert_many(&mut conn, &[&cluster("api-owned")], &git())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Owned { .. }), "{err:?}");
        let err = upsert_many(&mut conn, &[&fresh, &fresh], &git())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "Cluster \"fresh\" already exists");
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn upsert_many_names_an_invalid_cluster(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let err = upsert_many(&mut conn, &[&cluster("ok"), &cluster("Bad_Name")], &git())
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Invalid { ref name, .. } if name == "Bad_Name"),
            "{err:?}"
        );
        assert!(names(&mut conn).await.is_empty());
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn delete_many_prunes_only_what_the_owner_manages(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let (a, b) = (cluster("a"), cluster("b"));
        upsert_many(&mut conn, &[&a, &b], &git()).await.unwrap();
        upsert(&mut conn, &cluster("api"), &Owner::Api)
            .await
            .unwrap();
        upsert(&mut conn, &cluster("other"), &Owner::Git("other".into()))
            .await
            .unwrap();
        let gone = delete_many(&mut conn, &["a", "api", "other", "missing"], &git())
            .await
            .unwrap();
        assert_eq!(gone, 1);
        let left: Vec<String> = names(&mut conn).await.into_iter().map(|n| n.0).collect();
        assert_eq!(left, ["api", "b", "other"]);
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn delete_many_names_the_cluster_still_in_use(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let (a, b, c) = (cluster("a"), cluster("b"), cluster("c"));
        upsert_many(&mut conn, &[&a, &b, &c], &git()).await.unwrap();
        crate::links::create(
            &mut conn,
            &linkplane_core::Link::new("c-from-b", "c", "b"),
            &Owner::Api,
        )
        .await
        .unwrap();
        let err = delete_many(&mut conn, &["a", "b"], &git())
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Reference { ref name, .. } if name == "b"),
            "{err:?}"
        );
        assert_eq!(names(&mut conn).await.len(), 3, "the batch is undone");
    }
}
