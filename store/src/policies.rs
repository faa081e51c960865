//! The `export_policies` table.

use linkplane_core::{ExportPolicy, ExportPolicySpec};
use sqlx::PgConnection;

use crate::{
    BulkOutcome, Owner, Result, Stored, WriteOutcome,
    spec_table::{SpecTable, to_json},
};

const TABLE: SpecTable = SpecTable {
    table: "export_policies",
    kind: "ExportPolicy",
};

fn build(name: String, spec: ExportPolicySpec) -> ExportPolicy {
    ExportPolicy { name, spec }
}

/// Creates or updates a policy; an identical policy is left untouched.
pub async fn upsert(
    conn: &mut PgConnection,
    policy: &ExportPolicy,
    owner: &Owner,
) -> Result<WriteOutcome> {
    let spec = to_json(TABLE.kind, &policy.name, &policy.spec)?;
    TABLE.upsert(conn, &policy.name, spec, owner).await
}

/// Creates a policy; fails with `Conflict` when the name is taken.
pub async fn create(conn: &mut PgConnection, policy: &ExportPolicy, owner: &Owner) -> Result<()> {
    let spec = to_json(TABLE.kind, &policy.name, &policy.spec)?;
    TABLE.create(conn, &policy.name, spec, owner).await
}

/// One policy by name.
pub async fn get(conn: &mut PgConnection, name: &str) -> Result<Option<Stored<ExportPolicy>>> {
    TABLE
        .get(conn, name)
        .await?
        .map(|r| r.decode(TABLE.kind, build))
        .transpose()
}

/// Every policy, by name.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Stored<ExportPolicy>>> {
    TABLE
        .list(conn)
        .await?
        .into_iter()
        .map(|r| r.decode(TABLE.kind, build))
        .collect()
}

/// Deletes a policy.
pub async fn delete(conn: &mut PgConnection, name: &str) -> Result<bool> {
    TABLE.delete(conn, name).await
}

/// Creates or updates many policies with one statement, all or nothing (the GitOps engine
/// applies a revision's policies this way). Identical policies are not rewritten; one that
/// another owner manages is never taken over ([`crate::StoreError::Owned`]); constraint errors
/// name the offending policy as [`upsert`] would.
pub async fn upsert_many(
    conn: &mut PgConnection,
    policies: &[&ExportPolicy],
    owner: &Owner,
) -> Result<BulkOutcome> {
    let names: Vec<&str> = policies.iter().map(|x| x.name.as_str()).collect();
    let specs = policies
        .iter()
        .map(|x| to_json(TABLE.kind, &x.name, &x.spec))
        .collect::<Result<Vec<_>>>()?;
    TABLE.upsert_many(conn, &names, &specs, owner).await
}

/// Deletes those of `names` that `owner` manages, with one statement, all or nothing; returns
/// how many went. Git prunes this way, so it never deletes what it does not own.
pub async fn delete_many(conn: &mut PgConnection, names: &[&str], owner: &Owner) -> Result<usize> {
    TABLE.delete_owned(conn, names, owner).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use linkplane_core::MirrorMode;

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn policy_round_trips(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let mut p = ExportPolicy {
            name: "prod".into(),
            spec: serde_json::from_str("{}").unwrap(),
        };
        p.spec.modes = vec![MirrorMode::Gateway];
        p.spec.namespaces.deny = vec!["kube-*".into()];
        assert_eq!(
            upsert(&mut conn, &p, &Owner::Api).await.unwrap(),
            WriteOutcome::Created
        );
        assert_eq!(get(&mut conn, "prod").await.unwrap().unwrap().value, p);
        assert_eq!(list(&mut conn).await.unwrap().len(), 1);
        assert!(delete(&mut conn, "prod").await.unwrap());
    }
}
