//! Applying a revision to Postgres, atomically, and comparing the database with it.
//!
//! [`plan`] computes what a revision would create, update and delete for a source (and which
//! names it may not take); [`apply`] does the same inside the caller's transaction and writes it.
//! Only objects owned by the source (`owner = git:<source>`) are ever updated or pruned.

use std::collections::{BTreeMap, BTreeSet};

use linkplane_core::{
    Cluster, ExportPolicy, Link,
    status::{DriftChange, ObjectKind, PlanChange},
};
use linkplane_store::{
    BulkOutcome, Owner, PgConnection, StoreError, clusters,
    gitops::{self as gstore, AppliedObject, DriftEntry, FieldDiff},
    links, policies,
    sync_history::KindCounts,
};

use crate::manifest::{Declared, Diagnostic, Revision};

/// What a revision changes for one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct KindPlan {
    /// Names that do not exist yet.
    pub create: Vec<String>,
    /// Names owned by the source whose spec changes.
    pub update: Vec<String>,
    /// Names owned by the source that the revision no longer declares.
    pub delete: Vec<String>,
    /// Names declared and already identical.
    pub unchanged: usize,
}

impl KindPlan {
    /// Counts for `sync_history`.
    pub fn counts(&self) -> KindCounts {
        let n = |v: &Vec<String>| i32::try_from(v.len()).unwrap_or(i32::MAX);
        KindCounts {
            created: n(&self.create),
            updated: n(&self.update),
            deleted: n(&self.delete),
        }
    }

    /// True when nothing would be written.
    pub fn is_noop(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// What a revision changes, per kind, and what prevents it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// Per kind (`Cluster`, `ExportPolicy`, `Link`).
    pub kinds: BTreeMap<ObjectKind, KindPlan>,
    /// Names the revision may not take (owned by the API or another source), and prunes the
    /// database would refuse; any entry rejects the revision.
    #[serde(skip)]
    pub conflicts: Vec<Diagnostic>,
}

impl Plan {
    /// Counts per kind for `sync_history`.
    pub fn counts(&self) -> BTreeMap<ObjectKind, KindCounts> {
        self.kinds.iter().map(|(k, p)| (*k, p.counts())).collect()
    }

    /// True when nothing would be written.
    pub fn is_noop(&self) -> bool {
        self.kinds.values().all(KindPlan::is_noop)
    }
}

fn owner_label(owner: &Owner) -> String {
    match owner {
        Owner::Api => "the API".into(),
        Owner::Git(s) => format!("Git source {s:?}"),
    }
}

fn diff_kind<T: PartialEq>(
    kind: ObjectKind,
    source: &Owner,
    desired: &BTreeMap<String, Declared<T>>,
    existing: &BTreeMap<String, (T, Owner)>,
    conflicts: &mut Vec<Diagnostic>,
) -> KindPlan {
    let mut plan = KindPlan::default();
    for (name, d) in desired {
        match existing.get(name) {
            None => plan.create.push(name.clone()),
            Some((_, owner)) if owner != source => conflicts.push(d.origin.diagnostic(format!(
                "{kind} {name:?} already exists and is managed by {}; a Git revision cannot take it over \
                 (rename it here or delete it there)",
                owner_label(owner)
            ))),
            Some((value, _)) if *value == d.value => plan.unchanged += 1,
            Some(_) => plan.update.push(name.clone()),
        }
    }
    for (name, (_, owner)) in existing {
        if owner == source && !desired.contains_key(name) {
            plan.delete.push(name.clone());
        }
    }
    plan
}

/// The database's view of the three tables, with owners.
#[derive(Debug, Default)]
pub struct Live {
    clusters: BTreeMap<String, (Cluster, Owner)>,
    links: BTreeMap<String, (Link, Owner)>,
    policies: BTreeMap<String, (ExportPolicy, Owner)>,
}

/// Reads every cluster, link and policy.
pub async fn load_live(conn: &mut PgConnection) -> Result<Live, StoreError> {
    let mut live = Live::default();
    for s in clusters::list(conn).await? {
        live.clusters
            .insert(s.value.name.clone(), (s.value, s.owner));
    }
    for s in links::list(conn).await? {
        let s = s.stored;
        live.links.insert(s.value.name.clone(), (s.value, s.owner));
    }
    for s in policies::list(conn).await? {
        live.policies
            .insert(s.value.name.clone(), (s.value, s.owner));
    }
    Ok(live)
}

/// Computes what applying `rev` as `source` would do against `live`.
pub fn plan_against(source: &str, rev: &Revision, live: &Live) -> Plan {
    let owner = Owner::Git(source.to_string());
    let mut conflicts = Vec::new();
    let mut kinds = BTreeMap::new();
    let cplan = diff_kind(
        ObjectKind::Cluster,
        &owner,
        &rev.clusters,
        &live.clusters,
        &mut conflicts,
    );
    let lplan = diff_kind(
        ObjectKind::Link,
        &owner,
        &rev.links,
        &live.links,
        &mut conflicts,
    );
    let pplan = diff_kind(
        ObjectKind::ExportPolicy,
        &owner,
        &rev.policies,
        &live.policies,
        &mut conflicts,
    );
    // A pruned cluster must not be used by a link that survives (API-owned or another source's).
    let deleted_links: BTreeSet<&str> = lplan.delete.iter().map(String::as_str).collect();
    for name in &cplan.delete {
        for (lname, (link, lowner)) in &live.links {
            let survives = !deleted_links.contains(lname.as_str()) && *lowner != owner;
            if survives && (link.spec.source == *name || link.spec.target == *name) {
                conflicts.push(Diagnostic {
                    file: String::new(),
                    line: 0,
                    col: 0,
                    message: format!(
                        "Cluster {name:?} is no longer declared but link {lname:?} (managed by {}) still uses it; \
                         remove that link first",
                        owner_label(lowner)
                    ),
                });
            }
        }
    }
    kinds.insert(ObjectKind::Cluster, cplan);
    kinds.insert(ObjectKind::ExportPolicy, pplan);
    kinds.insert(ObjectKind::Link, lplan);
    Plan { kinds, conflicts }
}

/// Plans `rev` for `source` against the database.
pub async fn plan(
    conn: &mut PgConnection,
    source: &str,
    rev: &Revision,
) -> Result<Plan, StoreError> {
    let live = load_live(conn).await?;
    Ok(plan_against(source, rev, &live))
}

/// Writes `plan` for `rev` inside the caller's transaction, with a few set-based statements per
/// kind whatever the revision's size: upserts clusters and policies, deletes then upserts links
/// (so a renamed link can keep its cluster pair), prunes policies and clusters last
/// (foreign-key order), and records the applied objects as the drift baseline. Returns what the
/// database did, per kind, for `sync_history`.
///
/// Every write is guarded by ownership in SQL, not only by the plan: an object that another
/// owner took between planning and writing fails the apply ([`StoreError::Owned`]) instead of
/// being taken over, and prunes touch only rows the source owns. A constraint violation names
/// the offending object (the store replays a failed batch row by row to find it).
pub async fn apply(
    conn: &mut PgConnection,
    source: &str,
    revision: &str,
    rev: &Revision,
    plan: &Plan,
) -> Result<BTreeMap<ObjectKind, KindCounts>, StoreError> {
    let owner = Owner::Git(source.to_string());
    let empty = KindPlan::default();
    let kp = |k: ObjectKind| plan.kinds.get(&k).unwrap_or(&empty);
    let (cp, lp, pp) = (
        kp(ObjectKind::Cluster),
        kp(ObjectKind::Link),
        kp(ObjectKind::ExportPolicy),
    );
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let written = |o: BulkOutcome, deleted: usize| KindCounts {
        created: count(o.created),
        updated: count(o.updated),
        deleted: count(deleted),
    };
    let c = clusters::upsert_many(conn, &changed(cp, &rev.clusters), &owner).await?;
    let p = policies::upsert_many(conn, &changed(pp, &rev.policies), &owner).await?;
    let ld = links::delete_many(conn, &names(&lp.delete), &owner).await?;
    let l = links::upsert_many(conn, &changed(lp, &rev.links), &owner).await?;
    let pd = policies::delete_many(conn, &names(&pp.delete), &owner).await?;
    let cd = clusters::delete_many(conn, &names(&cp.delete), &owner).await?;
    let objects = applied_objects(rev)?;
    gstore::replace_applied(conn, source, revision, &objects).await?;
    gstore::replace_drift(conn, source, &[]).await?;
    Ok(BTreeMap::from([
        (ObjectKind::Cluster, written(c, cd)),
        (ObjectKind::ExportPolicy, written(p, pd)),
        (ObjectKind::Link, written(l, ld)),
    ]))
}

fn names(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The declared values the plan creates or updates, in plan order.
fn changed<'a, T>(plan: &KindPlan, declared: &'a BTreeMap<String, Declared<T>>) -> Vec<&'a T> {
    plan.create
        .iter()
        .chain(&plan.update)
        .filter_map(|n| declared.get(n).map(|d| &d.value))
        .collect()
}

fn applied_objects(rev: &Revision) -> Result<Vec<AppliedObject>, StoreError> {
    let mut out = Vec::with_capacity(rev.len());
    let at = |d: &crate::manifest::Origin| format!("{}:{}:{}", d.file, d.pos.line, d.pos.col);
    for (n, c) in &rev.clusters {
        out.push(AppliedObject::new(
            ObjectKind::Cluster,
            n,
            &c.value.spec,
            at(&c.origin),
        )?);
    }
    for (n, p) in &rev.policies {
        out.push(AppliedObject::new(
            ObjectKind::ExportPolicy,
            n,
            &p.value.spec,
            at(&p.origin),
        )?);
    }
    for (n, l) in &rev.links {
        out.push(AppliedObject::new(
            ObjectKind::Link,
            n,
            &l.value.spec,
            at(&l.origin),
        )?);
    }
    Ok(out)
}

/// Field-level differences between two JSON specs, as `spec.a.b` / `spec.list[0]` paths.
pub fn json_diff(desired: &serde_json::Value, actual: &serde_json::Value) -> Vec<FieldDiff> {
    fn walk(path: String, d: &serde_json::Value, a: &serde_json::Value, out: &mut Vec<FieldDiff>) {
        use serde_json::Value as J;
        match (d, a) {
            (J::Object(dm), J::Object(am)) => {
                let keys: BTreeSet<&String> = dm.keys().chain(am.keys()).collect();
                for k in keys {
                    walk(
                        format!("{path}.{k}"),
                        dm.get(k).unwrap_or(&J::Null),
                        am.get(k).unwrap_or(&J::Null),
                        out,
                    );
                }
            }
            _ if d == a => {}
            _ => out.push(FieldDiff {
                path,
                desired: d.clone(),
                actual: a.clone(),
            }),
        }
    }
    let mut out = Vec::new();
    walk("spec".into(), desired, actual, &mut out);
    out
}

/// Compares the source's applied objects with the database and returns the drift report.
pub async fn detect_drift(
    conn: &mut PgConnection,
    source: &str,
) -> Result<Vec<DriftEntry>, StoreError> {
    let now = chrono::Utc::now();
    let mine = format!("git:{source}");
    Ok(gstore::divergences(conn, source)
        .await?
        .into_iter()
        .map(|d| {
            let (change, diff) = match (&d.actual, d.actual_owner.as_deref()) {
                (None, _) => (DriftChange::Deleted, vec![]),
                (Some(a), Some(o)) if o != mine => {
                    (DriftChange::OwnerChanged, json_diff(&d.desired, a))
                }
                (Some(a), _) => (DriftChange::Modified, json_diff(&d.desired, a)),
            };
            DriftEntry {
                kind: d.kind,
                name: d.name,
                change,
                diff,
                detected_at: now,
            }
        })
        .collect())
}

/// Reverts drifted objects to the applied revision's specs, inside the caller's transaction.
/// Objects another owner took over are left alone (Git never touches what it does not own);
/// they are returned so the caller can keep reporting them.
pub async fn heal(
    conn: &mut PgConnection,
    source: &str,
    drift: &[DriftEntry],
) -> Result<(BTreeMap<ObjectKind, KindCounts>, Vec<DriftEntry>), StoreError> {
    let owner = Owner::Git(source.to_string());
    let desired: BTreeMap<(ObjectKind, String), AppliedObject> = gstore::applied(conn, source)
        .await?
        .into_iter()
        .map(|o| ((o.kind, o.name.clone()), o))
        .collect();
    let mut counts: BTreeMap<ObjectKind, KindCounts> = BTreeMap::new();
    let mut remaining = Vec::new();
    // Clusters first so a recreated link finds its clusters (`ObjectKind`'s order).
    let mut ordered: Vec<&DriftEntry> = drift.iter().collect();
    ordered.sort_by_key(|d| d.kind);
    for d in ordered {
        if d.change == DriftChange::OwnerChanged {
            remaining.push(d.clone());
            continue;
        }
        let Some(declared) = desired.get(&(d.kind, d.name.clone())) else {
            continue;
        };
        let outcome = match d.kind {
            ObjectKind::Cluster => {
                let value = Cluster {
                    name: d.name.clone(),
                    spec: declared.spec_as()?,
                };
                clusters::upsert(conn, &value, &owner).await?
            }
            ObjectKind::ExportPolicy => {
                let value = ExportPolicy {
                    name: d.name.clone(),
                    spec: declared.spec_as()?,
                };
                policies::upsert(conn, &value, &owner).await?
            }
            ObjectKind::Link => {
                let value = Link {
                    name: d.name.clone(),
                    spec: declared.spec_as()?,
                };
                links::upsert(conn, &value, &owner).await?
            }
        };
        let c = counts.entry(d.kind).or_default();
        match outcome {
            linkplane_store::WriteOutcome::Created => c.created += 1,
            linkplane_store::WriteOutcome::Updated => c.updated += 1,
            linkplane_store::WriteOutcome::Unchanged => {}
        }
    }
    Ok((counts, remaining))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_diff_lists_leaf_paths() {
        let d = serde_json::json!({"a": 1, "b": {"c": [1, 2], "d": "x"}});
        let a = serde_json::json!({"a": 1, "b": {"c": [1], "e": true}});
        let paths: Vec<String> = json_diff(&d, &a).into_iter().map(|f| f.path).collect();
        assert_eq!(paths, ["spec.b.c", "spec.b.d", "spec.b.e"]);
    }
}

/// What a revision does to one object: `linkplane diff --revision`'s rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectChange {
    /// The object's kind.
    pub kind: ObjectKind,
    /// Object name.
    pub name: String,
    /// What the revision does to it.
    pub change: PlanChange,
    /// The spec fields that differ (Git's value in `desired`, the database's in `actual`;
    /// `null` for the side that does not exist).
    pub fields: Vec<FieldDiff>,
}

/// The object-by-object, field-by-field changes of `plan` (computed by [`plan_against`] for
/// `rev` against `live`), in kind then name order.
pub fn changes_of(plan: &Plan, rev: &Revision, live: &Live) -> Vec<ObjectChange> {
    fn of<T, S: serde::Serialize>(
        kind: ObjectKind,
        k: Option<&KindPlan>,
        desired: &BTreeMap<String, Declared<T>>,
        existing: &BTreeMap<String, (T, Owner)>,
        spec: fn(&T) -> &S,
        out: &mut Vec<ObjectChange>,
    ) {
        let Some(k) = k else { return };
        let json = |v: Option<&T>| {
            v.and_then(|v| serde_json::to_value(spec(v)).ok())
                .unwrap_or(serde_json::Value::Null)
        };
        let mut rows: Vec<(&String, PlanChange)> = k
            .create
            .iter()
            .map(|n| (n, PlanChange::Create))
            .chain(k.update.iter().map(|n| (n, PlanChange::Update)))
            .chain(k.delete.iter().map(|n| (n, PlanChange::Delete)))
            .collect();
        rows.sort();
        for (name, change) in rows {
            let d = json(desired.get(name).map(|d| &d.value));
            let a = json(existing.get(name).map(|(v, _)| v));
            out.push(ObjectChange {
                kind,
                name: name.clone(),
                change,
                fields: json_diff(&d, &a),
            });
        }
    }
    let mut out = Vec::new();
    of(
        ObjectKind::Cluster,
        plan.kinds.get(&ObjectKind::Cluster),
        &rev.clusters,
        &live.clusters,
        |c: &Cluster| &c.spec,
        &mut out,
    );
    of(
        ObjectKind::ExportPolicy,
        plan.kinds.get(&ObjectKind::ExportPolicy),
        &rev.policies,
        &live.policies,
        |p: &ExportPolicy| &p.spec,
        &mut out,
    );
    of(
        ObjectKind::Link,
        plan.kinds.get(&ObjectKind::Link),
        &rev.links,
        &live.links,
        |l: &Link| &l.spec,
        &mut out,
    );
    out
}
