//! The `export_policies` table.

use linkplane_core::{ExportPolicy, ExportPolicySpec};

use crate::spec_table::{SpecObject, SpecTable, Table, spec_functions};

impl SpecObject for ExportPolicy {
    const TABLE: SpecTable = SpecTable {
        table: Table::ExportPolicies,
        kind: "ExportPolicy",
    };
    type Spec = ExportPolicySpec;

    fn name(&self) -> &str {
        &self.name
    }

    fn spec(&self) -> &ExportPolicySpec {
        &self.spec
    }

    fn build(name: String, spec: ExportPolicySpec) -> Self {
        ExportPolicy { name, spec }
    }
}

spec_functions!(ExportPolicy, "an export policy");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Owner, WriteOutcome};
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
