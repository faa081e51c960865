//! The GitOps engine's tables (`migrations/0002_gitops.sql`): the objects each source's applied
//! revision declared, the drift found against them, and webhook delivery dedupe.

use chrono::{DateTime, Utc};
use linkplane_core::status::{DriftChange, ObjectKind};
use sqlx::{PgConnection, types::Json};

use crate::{Result, StoreError, error::vocabulary};

/// Locks the source's row until the transaction ends, so two replicas never apply the same
/// source at once. `false` when the source does not exist.
pub async fn lock_source(conn: &mut PgConnection, source: &str) -> Result<bool> {
    let row: Option<Option<i32>> = sqlx::query_scalar!(
        "SELECT 1 FROM git_sources WHERE name = $1 FOR UPDATE",
        source
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx("GitSource", source, "locking", e))?;
    Ok(row.is_some())
}

/// One object as the applied revision declared it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedObject {
    /// The object's kind.
    pub kind: ObjectKind,
    /// Object name.
    pub name: String,
    /// The spec as declared (the same JSON the object tables store).
    pub spec: serde_json::Value,
    /// Where it was declared, `file.yaml:line:col`.
    pub file: String,
}

impl AppliedObject {
    /// The object `name` of `kind` as declared at `file`, its spec stored as JSON.
    pub fn new<S: serde::Serialize>(
        kind: ObjectKind,
        name: &str,
        spec: &S,
        file: String,
    ) -> Result<Self> {
        Ok(AppliedObject {
            kind,
            name: name.to_string(),
            spec: crate::spec_table::to_json(kind.as_str(), name, spec)?,
            file,
        })
    }

    /// The declared spec as `S` ([`StoreError::Corrupt`] when the stored JSON is not one).
    pub fn spec_as<S: serde::de::DeserializeOwned>(&self) -> Result<S> {
        serde_json::from_value(self.spec.clone()).map_err(|source| StoreError::Corrupt {
            kind: "GitopsObject",
            name: self.name.clone(),
            source,
        })
    }
}

/// Replaces the source's applied objects with `objects`, all declared by `revision`.
pub async fn replace_applied(
    conn: &mut PgConnection,
    source: &str,
    revision: &str,
    objects: &[AppliedObject],
) -> Result<()> {
    sqlx::query!("DELETE FROM gitops_objects WHERE source = $1", source)
        .execute(&mut *conn)
        .await
        .map_err(|e| StoreError::from_sqlx("GitSource", source, "clearing applied objects", e))?;
    // One statement per chunk: 10,000 objects cost a handful of round trips, not 10,000.
    for chunk in objects.chunks(5000) {
        let kinds: Vec<&str> = chunk.iter().map(|o| o.kind.as_str()).collect();
        let names: Vec<&str> = chunk.iter().map(|o| o.name.as_str()).collect();
        let specs: Vec<Json<&serde_json::Value>> = chunk.iter().map(|o| Json(&o.spec)).collect();
        let files: Vec<&str> = chunk.iter().map(|o| o.file.as_str()).collect();
        sqlx::query!(
            "INSERT INTO gitops_objects (source, kind, name, spec, revision, file)
             SELECT $1, k, n, s, $2, f FROM UNNEST($3::text[], $4::text[], $5::jsonb[], $6::text[]) AS t(k, n, s, f)",
            source,
            revision,
            &kinds as &[&str],
            &names as &[&str],
            &specs as &[Json<&serde_json::Value>],
            &files as &[&str],
        )
        .execute(&mut *conn)
        .await
        .map_err(|e| StoreError::from_sqlx("GitSource", source, "recording applied objects", e))?;
    }
    Ok(())
}

/// The source's applied objects, by kind then name.
pub async fn applied(conn: &mut PgConnection, source: &str) -> Result<Vec<AppliedObject>> {
    let rows = sqlx::query!(
        "SELECT kind, name, spec, file FROM gitops_objects WHERE source = $1 ORDER BY kind, name",
        source,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("listing applied objects"))?;
    rows.into_iter()
        .map(|r| {
            Ok(AppliedObject {
                kind: vocabulary("kind", &r.kind)?,
                name: r.name,
                spec: r.spec,
                file: r.file,
            })
        })
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(StoreError::db("listing applied objects"))
}

/// An applied object whose live row differs: different spec, deleted, or taken over.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    /// Object kind.
    pub kind: ObjectKind,
    /// Object name.
    pub name: String,
    /// The spec the applied revision declared.
    pub desired: serde_json::Value,
    /// The live spec; `None` when the object was deleted.
    pub actual: Option<serde_json::Value>,
    /// The live owner column (`api` / `git:<source>`); `None` when deleted.
    pub actual_owner: Option<String>,
}

/// Compares the source's applied objects with the live tables, in one query; only differing
/// objects come back, so an in-sync source of 10,000 objects costs one index scan per table.
pub async fn divergences(conn: &mut PgConnection, source: &str) -> Result<Vec<Divergence>> {
    let owner = format!("git:{source}");
    let rows = sqlx::query!(
        r#"SELECT o.kind AS "kind!", o.name AS "name!", o.spec AS "desired!", t.spec AS actual,
                  t.owner::text AS actual_owner
           FROM gitops_objects o LEFT JOIN clusters t ON t.name = o.name
          WHERE o.source = $1 AND o.kind = 'Cluster'
            AND (t.spec IS DISTINCT FROM o.spec OR t.owner::text IS DISTINCT FROM $2)
         UNION ALL
         SELECT o.kind, o.name, o.spec, t.spec, t.owner::text
           FROM gitops_objects o LEFT JOIN links t ON t.name = o.name
          WHERE o.source = $1 AND o.kind = 'Link'
            AND (t.spec IS DISTINCT FROM o.spec OR t.owner::text IS DISTINCT FROM $2)
         UNION ALL
         SELECT o.kind, o.name, o.spec, t.spec, t.owner::text
           FROM gitops_objects o LEFT JOIN export_policies t ON t.name = o.name
          WHERE o.source = $1 AND o.kind = 'ExportPolicy'
            AND (t.spec IS DISTINCT FROM o.spec OR t.owner::text IS DISTINCT FROM $2)
         ORDER BY 1, 2"#,
        source,
        owner,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db(
        "comparing applied objects with live objects",
    ))?;
    rows.into_iter()
        .map(|r| {
            Ok(Divergence {
                kind: vocabulary("kind", &r.kind)?,
                name: r.name,
                desired: r.desired,
                actual: r.actual,
                actual_owner: r.actual_owner,
            })
        })
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(StoreError::db(
            "comparing applied objects with live objects",
        ))
}

/// A cheap identity of everything a source's drift report depends on, so an unchanged database
/// can skip [`divergences`] (which compares every applied spec with its live row, ~30 ms for
/// 10,000 objects) and reuse the last report.
///
/// It combines, per object table, `count(*)`, `sum(generation)` and the sum of the rows'
/// `xmin` (the transaction that wrote each row version: any insert, update or delete, through
/// the store or by hand, changes it), and the `xmin` of the source's applied objects (rewritten
/// whole by every apply). It covers every row, not only the source's, because a deleted object
/// recreated by the API turns `Deleted` drift into `OwnerChanged`. One sequential scan per
/// table without reading the specs: a few milliseconds for 10,000 rows.
///
/// Callers read it *before* comparing: a change committed in between then leaves the remembered
/// fingerprint older than the report, which only causes one more comparison next time.
pub async fn drift_fingerprint(conn: &mut PgConnection, source: &str) -> Result<String> {
    sqlx::query_scalar!(
        r#"SELECT concat_ws('/',
             coalesce((SELECT xmin::text FROM gitops_objects WHERE source = $1 LIMIT 1), '-'),
             (SELECT concat_ws(':', count(*), sum(generation), sum(xmin::text::bigint)) FROM clusters),
             (SELECT concat_ws(':', count(*), sum(generation), sum(xmin::text::bigint)) FROM links),
             (SELECT concat_ws(':', count(*), sum(generation), sum(xmin::text::bigint)) FROM export_policies))
             AS "fingerprint!""#,
        source,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::db("fingerprinting the declarative tables"))
}

/// One field that differs between Git and the database.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldDiff {
    /// Field path, e.g. `spec.gateway.port`.
    pub path: String,
    /// Value declared in Git (`null` when absent).
    pub desired: serde_json::Value,
    /// Value in the database (`null` when absent).
    pub actual: serde_json::Value,
}

/// A drifted object as stored for the API.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftEntry {
    /// Object kind.
    pub kind: ObjectKind,
    /// Object name.
    pub name: String,
    /// How it drifted.
    pub change: DriftChange,
    /// Differing fields (empty for `Deleted`).
    pub diff: Vec<FieldDiff>,
    /// When this check found it.
    pub detected_at: DateTime<Utc>,
}

/// A `gitops_drift` row; `source` is `None` where the statement reads one source's report.
struct DriftRow {
    source: Option<String>,
    kind: String,
    name: String,
    change: String,
    diff: Json<Vec<FieldDiff>>,
    detected_at: DateTime<Utc>,
}

impl DriftRow {
    /// The entry; a kind or change outside its set fails as that column's decode error.
    fn decode(self) -> std::result::Result<DriftEntry, sqlx::Error> {
        Ok(DriftEntry {
            kind: vocabulary("kind", &self.kind)?,
            name: self.name,
            change: vocabulary("change", &self.change)?,
            diff: self.diff.0,
            detected_at: self.detected_at,
        })
    }
}

/// Replaces the source's drift report.
pub async fn replace_drift(
    conn: &mut PgConnection,
    source: &str,
    entries: &[DriftEntry],
) -> Result<()> {
    sqlx::query!("DELETE FROM gitops_drift WHERE source = $1", source)
        .execute(&mut *conn)
        .await
        .map_err(|e| StoreError::from_sqlx("GitSource", source, "clearing drift", e))?;
    if entries.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let changes: Vec<&str> = entries.iter().map(|e| e.change.as_str()).collect();
    let diffs: Vec<Json<&Vec<FieldDiff>>> = entries.iter().map(|e| Json(&e.diff)).collect();
    let times: Vec<DateTime<Utc>> = entries.iter().map(|e| e.detected_at).collect();
    sqlx::query!(
        "INSERT INTO gitops_drift (source, kind, name, change, diff, detected_at)
         SELECT $1, k, n, c, d, t
           FROM UNNEST($2::text[], $3::text[], $4::text[], $5::jsonb[], $6::timestamptz[]) AS x(k, n, c, d, t)",
        source,
        &kinds as &[&str],
        &names as &[&str],
        &changes as &[&str],
        &diffs as &[Json<&Vec<FieldDiff>>],
        &times as &[DateTime<Utc>],
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx("GitSource", source, "recording drift", e))?;
    Ok(())
}

/// The source's current drift report, by kind then name.
pub async fn drift(conn: &mut PgConnection, source: &str) -> Result<Vec<DriftEntry>> {
    let rows: Vec<DriftRow> = sqlx::query_as!(
        DriftRow,
        r#"SELECT NULL::text AS source, kind, name, change, diff AS "diff: Json<Vec<FieldDiff>>", detected_at
         FROM gitops_drift WHERE source = $1 ORDER BY kind, name"#,
        source,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("listing drift"))?;
    rows.into_iter()
        .map(DriftRow::decode)
        .collect::<std::result::Result<_, _>>()
        .map_err(StoreError::db("listing drift"))
}

/// Records a webhook delivery; `false` when it was seen before (a provider retry). Deliveries
/// older than a day are forgotten on the way.
pub async fn record_delivery(
    conn: &mut PgConnection,
    provider: &str,
    delivery_id: &str,
) -> Result<bool> {
    sqlx::query!(
        "DELETE FROM gitops_webhook_deliveries WHERE received_at < now() - interval '1 day'",
    )
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("trimming webhook deliveries"))?;
    let done = sqlx::query!(
        "INSERT INTO gitops_webhook_deliveries (provider, delivery_id) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
        provider,
        delivery_id,
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx("WebhookDelivery", delivery_id, "recording", e))?;
    Ok(done.rows_affected() == 1)
}

/// The current drift report of each of `sources` (source name, entry), by source, kind, name.
pub async fn drift_of(
    conn: &mut PgConnection,
    sources: &[String],
) -> Result<Vec<(String, DriftEntry)>> {
    let rows: Vec<DriftRow> = sqlx::query_as!(
        DriftRow,
        r#"SELECT source, kind, name, change, diff AS "diff: Json<Vec<FieldDiff>>", detected_at
         FROM gitops_drift WHERE source = ANY($1) ORDER BY source, kind, name"#,
        sources,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("listing drift"))?;
    rows.into_iter()
        .map(|mut r| {
            let source = r.source.take().unwrap_or_default();
            Ok((source, r.decode()?))
        })
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(StoreError::db("listing drift"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Owner, clusters, git_sources, test_support::cluster};
    use linkplane_core::GitSource;

    async fn setup(conn: &mut PgConnection) {
        let src = GitSource {
            name: "fleet".into(),
            spec: serde_json::from_value(serde_json::json!({"url": "/x"})).unwrap(),
        };
        git_sources::upsert(conn, &src).await.unwrap();
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn divergences_report_modified_deleted_and_taken_over_objects(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        setup(&mut conn).await;
        let owner = Owner::Git("fleet".into());
        let mut objects = Vec::new();
        for n in ["a", "b", "c", "d"] {
            let c = cluster(n);
            clusters::upsert(&mut conn, &c, &owner).await.unwrap();
            objects.push(AppliedObject {
                kind: ObjectKind::Cluster,
                name: n.into(),
                spec: serde_json::to_value(&c.spec).unwrap(),
                file: "c.yaml:1:1".into(),
            });
        }
        replace_applied(&mut conn, "fleet", "abc", &objects)
            .await
            .unwrap();
        assert_eq!(applied(&mut conn, "fleet").await.unwrap(), objects);
        assert!(divergences(&mut conn, "fleet").await.unwrap().is_empty());

        let mut b = cluster("b");
        b.spec.cluster_domain = "changed.local".into();
        clusters::upsert(&mut conn, &b, &owner).await.unwrap();
        clusters::delete(&mut conn, "c").await.unwrap();
        clusters::upsert(&mut conn, &cluster("d"), &Owner::Api)
            .await
            .unwrap();
        let d = divergences(&mut conn, "fleet").await.unwrap();
        let names: Vec<(&str, bool, Option<&str>)> = d
            .iter()
            .map(|x| {
                (
                    x.name.as_str(),
                    x.actual.is_some(),
                    x.actual_owner.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("b", true, Some("git:fleet")),
                ("c", false, None),
                ("d", true, Some("api"))
            ]
        );
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn drift_report_is_replaced_and_deliveries_dedupe(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        setup(&mut conn).await;
        let entry = DriftEntry {
            kind: ObjectKind::Link,
            name: "l".into(),
            change: DriftChange::Modified,
            diff: vec![FieldDiff {
                path: "spec.createNamespaces".into(),
                desired: serde_json::json!(false),
                actual: serde_json::json!(true),
            }],
            detected_at: Utc::now(),
        };
        replace_drift(&mut conn, "fleet", std::slice::from_ref(&entry))
            .await
            .unwrap();
        let got = drift(&mut conn, "fleet").await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].diff, entry.diff);
        replace_drift(&mut conn, "fleet", &[]).await.unwrap();
        assert!(drift(&mut conn, "fleet").await.unwrap().is_empty());

        assert!(record_delivery(&mut conn, "github", "d1").await.unwrap());
        assert!(!record_delivery(&mut conn, "github", "d1").await.unwrap());
        assert!(record_delivery(&mut conn, "gitlab", "d1").await.unwrap());
    }
    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn fingerprint_moves_with_every_write_and_only_then(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        setup(&mut conn).await;
        let git = Owner::Git("fleet".into());
        let (a, b) = (cluster("a"), cluster("b"));
        clusters::upsert_many(&mut conn, &[&a, &b], &git)
            .await
            .unwrap();
        let first = drift_fingerprint(&mut conn, "fleet").await.unwrap();
        // Identical writes change nothing, and reading twice gives the same answer.
        clusters::upsert_many(&mut conn, &[&a, &b], &git)
            .await
            .unwrap();
        assert_eq!(drift_fingerprint(&mut conn, "fleet").await.unwrap(), first);
        let mut seen = vec![first];
        let mut expect_moved = async |conn: &mut PgConnection, what: &str| {
            let now = drift_fingerprint(conn, "fleet").await.unwrap();
            assert!(!seen.contains(&now), "{what}: fingerprint did not move");
            seen.push(now);
        };
        let mut edited = cluster("a");
        edited.spec.cluster_domain = "edited.local".into();
        clusters::upsert(&mut conn, &edited, &git).await.unwrap();
        expect_moved(&mut conn, "spec edit").await;
        clusters::upsert(&mut conn, &edited, &Owner::Api)
            .await
            .unwrap();
        expect_moved(&mut conn, "owner change").await;
        // Deleted and recreated identically (same count, generation 1 again): still seen.
        clusters::delete(&mut conn, "b").await.unwrap();
        clusters::upsert(&mut conn, &b, &git).await.unwrap();
        expect_moved(&mut conn, "delete and recreate").await;
        clusters::upsert(&mut conn, &cluster("c"), &Owner::Api)
            .await
            .unwrap();
        expect_moved(&mut conn, "another owner's object").await;
        let objects = [AppliedObject {
            kind: ObjectKind::Cluster,
            name: "b".into(),
            spec: serde_json::to_value(&b.spec).unwrap(),
            file: "c.yaml:1:1".into(),
        }];
        replace_applied(&mut conn, "fleet", "r1", &objects)
            .await
            .unwrap();
        expect_moved(&mut conn, "applied objects").await;
        replace_applied(&mut conn, "fleet", "r2", &objects)
            .await
            .unwrap();
        expect_moved(&mut conn, "applied objects rewritten").await;
        // Drift reports and webhook deliveries are not part of it.
        let before = drift_fingerprint(&mut conn, "fleet").await.unwrap();
        replace_drift(&mut conn, "fleet", &[]).await.unwrap();
        record_delivery(&mut conn, "github", "x").await.unwrap();
        assert_eq!(drift_fingerprint(&mut conn, "fleet").await.unwrap(), before);
    }
}
