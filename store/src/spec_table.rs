//! Shared SQL for tables shaped `(name, spec jsonb, owner, generation, timestamps)`.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};
use sqlx::{Connection, PgConnection, Postgres, Transaction, types::Json};

use crate::{BulkOutcome, Owner, Result, StoreError, Stored, WriteOutcome};

/// A table of named specs.
pub(crate) struct SpecTable {
    pub table: Table,
    pub kind: &'static str,
}

/// The tables shaped `(name, spec, owner, generation, timestamps)`. Each statement of this
/// module is written once as a macro over the table's name and expanded per table by
/// [`per_table!`]: one static statement per table, each checked at compile time (a table name
/// cannot be a bind parameter). Links have two more columns and their own module; of these
/// statements they use only the bulk prune and the owner check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    /// `clusters`.
    Clusters,
    /// `export_policies`.
    ExportPolicies,
    /// `links`.
    Links,
}

/// `$statement!("<table>", $args…)` for `$table`'s name. Statement macros end in `.await`, so
/// every arm has the same type (each `query!` has a type of its own).
macro_rules! per_table {
    ($table:expr, $statement:ident ! ( $($args:tt)* )) => {
        match $table {
            Table::Clusters => $statement!("clusters", $($args)*),
            Table::ExportPolicies => $statement!("export_policies", $($args)*),
            Table::Links => $statement!("links", $($args)*),
        }
    };
}

macro_rules! upsert_one {
    ($t:literal, $conn:expr, $name:expr, $spec:expr, $owner:expr) => {
        sqlx::query_scalar!(
            "INSERT INTO " + $t + r#" AS t (name, spec, owner) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec, owner = EXCLUDED.owner,
                 generation = t.generation + 1, updated_at = now()
             WHERE t.spec IS DISTINCT FROM EXCLUDED.spec OR t.owner IS DISTINCT FROM EXCLUDED.owner
             RETURNING (xmax = 0) AS "inserted!""#,
            $name,
            $spec,
            $owner,
        )
        .fetch_optional($conn)
        .await
    };
}

macro_rules! create_one {
    ($t:literal, $conn:expr, $name:expr, $spec:expr, $owner:expr) => {
        sqlx::query!(
            "INSERT INTO " + $t + " (name, spec, owner) VALUES ($1, $2, $3)",
            $name,
            $spec,
            $owner,
        )
        .execute($conn)
        .await
    };
}

macro_rules! get_one {
    ($t:literal, $conn:expr, $name:expr) => {
        sqlx::query_as!(
            SpecRow,
            "SELECT name, spec, owner, generation, created_at, updated_at FROM "
                + $t
                + " WHERE name = $1",
            $name,
        )
        .fetch_optional($conn)
        .await
    };
}

macro_rules! list_all {
    ($t:literal, $conn:expr) => {
        sqlx::query_as!(
            SpecRow,
            "SELECT name, spec, owner, generation, created_at, updated_at FROM "
                + $t
                + " ORDER BY name",
        )
        .fetch_all($conn)
        .await
    };
}

macro_rules! delete_one {
    ($t:literal, $conn:expr, $name:expr) => {
        sqlx::query!("DELETE FROM " + $t + " WHERE name = $1", $name)
            .execute($conn)
            .await
    };
}

/// The bulk upsert: `(created, updated)` for `$1` names, `$2` specs, `$3` owner. Rows not
/// counted were identical or are another owner's (see [`classify_skipped`]).
macro_rules! upsert_bulk {
    ($t:literal, $conn:expr, $names:expr, $specs:expr, $owner:expr) => {
        sqlx::query!(
            "WITH written AS (
                 INSERT INTO " + $t + r#" AS t (name, spec, owner)
                 SELECT name, spec, $3::text FROM UNNEST($1::text[], $2::jsonb[]) AS i(name, spec)
                 ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec,
                     generation = t.generation + 1, updated_at = now()
                 WHERE t.owner = EXCLUDED.owner AND t.spec IS DISTINCT FROM EXCLUDED.spec
                 RETURNING (xmax = 0) AS inserted
             )
             SELECT count(*) FILTER (WHERE inserted) AS "created!",
                    count(*) FILTER (WHERE NOT inserted) AS "updated!"
               FROM written"#,
            $names,
            $specs,
            $owner,
        )
        .fetch_one($conn)
        .await
        .map(|r| (r.created, r.updated))
    };
}

macro_rules! foreign_owner {
    ($t:literal, $conn:expr, $names:expr, $owner:expr) => {
        sqlx::query!(
            r#"SELECT name::text AS "name!", owner::text AS "owner!" FROM "#
                + $t
                + "
              WHERE name = ANY($1::text[]) AND owner <> $2::text ORDER BY name LIMIT 1",
            $names,
            $owner,
        )
        .fetch_optional($conn)
        .await
        .map(|r| r.map(|r| (r.name, r.owner)))
    };
}

macro_rules! delete_owned_many {
    ($t:literal, $conn:expr, $names:expr, $owner:expr) => {
        sqlx::query!(
            "DELETE FROM " + $t + " WHERE name = ANY($1::text[]) AND owner = $2::text",
            $names,
            $owner,
        )
        .execute($conn)
        .await
    };
}

macro_rules! delete_owned_one {
    ($t:literal, $conn:expr, $name:expr, $owner:expr) => {
        sqlx::query!(
            "DELETE FROM " + $t + " WHERE name = $1 AND owner = $2::text",
            $name,
            $owner,
        )
        .execute($conn)
        .await
    };
}

pub(crate) struct SpecRow {
    pub name: String,
    pub spec: serde_json::Value,
    pub owner: String,
    pub generation: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SpecRow {
    /// Decodes the row, building the domain value from `(name, spec)`.
    pub fn decode<S: DeserializeOwned, T>(
        self,
        kind: &'static str,
        build: impl FnOnce(String, S) -> T,
    ) -> Result<Stored<T>> {
        let spec: S = serde_json::from_value(self.spec).map_err(|source| StoreError::Corrupt {
            kind,
            name: self.name.clone(),
            source,
        })?;
        Ok(Stored {
            value: build(self.name, spec),
            owner: Owner::from_column(&self.owner),
            generation: self.generation,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(crate) fn to_json<S: Serialize>(
    kind: &'static str,
    name: &str,
    spec: &S,
) -> Result<serde_json::Value> {
    serde_json::to_value(spec).map_err(|source| StoreError::Corrupt {
        kind,
        name: name.to_string(),
        source,
    })
}

/// A domain object stored in a [`SpecTable`]: its name and spec are the row. Clusters and export
/// policies implement it; [`spec_functions!`] gives each its module's functions, so the two
/// modules are one implementation.
pub(crate) trait SpecObject: Sized {
    /// The object's table.
    const TABLE: SpecTable;
    /// The `spec` column's type.
    type Spec: Serialize + DeserializeOwned;
    /// The object's name.
    fn name(&self) -> &str;
    /// The object's spec.
    fn spec(&self) -> &Self::Spec;
    /// The object from a row's name and spec.
    fn build(name: String, spec: Self::Spec) -> Self;
}

/// The generic functions behind [`spec_functions!`].
pub(crate) mod object {
    use super::*;

    pub(crate) async fn upsert<T: SpecObject>(
        conn: &mut PgConnection,
        value: &T,
        owner: &Owner,
    ) -> Result<WriteOutcome> {
        let spec = to_json(T::TABLE.kind, value.name(), value.spec())?;
        T::TABLE.upsert(conn, value.name(), spec, owner).await
    }

    pub(crate) async fn create<T: SpecObject>(
        conn: &mut PgConnection,
        value: &T,
        owner: &Owner,
    ) -> Result<()> {
        let spec = to_json(T::TABLE.kind, value.name(), value.spec())?;
        T::TABLE.create(conn, value.name(), spec, owner).await
    }

    pub(crate) async fn get<T: SpecObject>(
        conn: &mut PgConnection,
        name: &str,
    ) -> Result<Option<Stored<T>>> {
        T::TABLE
            .get(conn, name)
            .await?
            .map(|r| r.decode(T::TABLE.kind, T::build))
            .transpose()
    }

    pub(crate) async fn list<T: SpecObject>(conn: &mut PgConnection) -> Result<Vec<Stored<T>>> {
        T::TABLE
            .list(conn)
            .await?
            .into_iter()
            .map(|r| r.decode(T::TABLE.kind, T::build))
            .collect()
    }

    pub(crate) async fn upsert_many<T: SpecObject>(
        conn: &mut PgConnection,
        values: &[&T],
        owner: &Owner,
    ) -> Result<BulkOutcome> {
        let names: Vec<&str> = values.iter().map(|x| x.name()).collect();
        let specs = values
            .iter()
            .map(|x| to_json(T::TABLE.kind, x.name(), x.spec()))
            .collect::<Result<Vec<_>>>()?;
        T::TABLE.upsert_many(conn, &names, &specs, owner).await
    }
}

/// The public functions of a spec-table module (`clusters`, `policies`) for the object `$ty`,
/// which implements [`SpecObject`]. `$what` names one object in the docs.
macro_rules! spec_functions {
    ($ty:ty, $what:literal) => {
        #[doc = concat!("Creates or updates ", $what, "; an identical one is left untouched.")]
        pub async fn upsert(
            conn: &mut sqlx::PgConnection,
            value: &$ty,
            owner: &$crate::Owner,
        ) -> $crate::Result<$crate::WriteOutcome> {
            $crate::spec_table::object::upsert(conn, value, owner).await
        }

        #[doc = concat!("Creates ", $what, "; fails with `Conflict` when the name is taken.")]
        pub async fn create(
            conn: &mut sqlx::PgConnection,
            value: &$ty,
            owner: &$crate::Owner,
        ) -> $crate::Result<()> {
            $crate::spec_table::object::create(conn, value, owner).await
        }

        #[doc = concat!("One ", $what, " by name.")]
        pub async fn get(
            conn: &mut sqlx::PgConnection,
            name: &str,
        ) -> $crate::Result<Option<$crate::Stored<$ty>>> {
            $crate::spec_table::object::get(conn, name).await
        }

        #[doc = concat!("Every ", $what, ", by name.")]
        pub async fn list(
            conn: &mut sqlx::PgConnection,
        ) -> $crate::Result<Vec<$crate::Stored<$ty>>> {
            $crate::spec_table::object::list(conn).await
        }

        #[doc = concat!("Deletes ", $what, "; fails with `Reference` while a row still refers to it.")]
        pub async fn delete(conn: &mut sqlx::PgConnection, name: &str) -> $crate::Result<bool> {
            <$ty as $crate::spec_table::SpecObject>::TABLE
                .delete(conn, name)
                .await
        }

        #[doc = concat!(
            "Creates or updates many (", $what, ") with one statement, all or nothing (the GitOps \
             engine applies a revision this way). Identical ones are not rewritten; one that \
             another owner manages is never taken over ([`crate::StoreError::Owned`]); \
             constraint errors name the offending object as [`upsert`] would."
        )]
        pub async fn upsert_many(
            conn: &mut sqlx::PgConnection,
            values: &[&$ty],
            owner: &$crate::Owner,
        ) -> $crate::Result<$crate::BulkOutcome> {
            $crate::spec_table::object::upsert_many(conn, values, owner).await
        }

        /// Deletes those of `names` that `owner` manages, with one statement, all or nothing;
        /// returns how many went. Git prunes this way, so it never deletes what it does not own.
        pub async fn delete_many(
            conn: &mut sqlx::PgConnection,
            names: &[&str],
            owner: &$crate::Owner,
        ) -> $crate::Result<usize> {
            <$ty as $crate::spec_table::SpecObject>::TABLE
                .delete_owned(conn, names, owner)
                .await
        }
    };
}
pub(crate) use spec_functions;

impl SpecTable {
    /// Insert, or update when spec or owner differ; identical rows are not rewritten.
    pub async fn upsert(
        &self,
        conn: &mut PgConnection,
        name: &str,
        spec: serde_json::Value,
        owner: &Owner,
    ) -> Result<WriteOutcome> {
        let inserted: Option<bool> = per_table!(
            self.table,
            upsert_one!(&mut *conn, name, spec, owner.as_column())
        )
        .map_err(|e| StoreError::from_sqlx(self.kind, name, "upserting", e))?;
        Ok(match inserted {
            Some(true) => WriteOutcome::Created,
            Some(false) => WriteOutcome::Updated,
            None => WriteOutcome::Unchanged,
        })
    }

    /// Insert only; an existing name is a [`StoreError::Conflict`].
    pub async fn create(
        &self,
        conn: &mut PgConnection,
        name: &str,
        spec: serde_json::Value,
        owner: &Owner,
    ) -> Result<()> {
        per_table!(
            self.table,
            create_one!(&mut *conn, name, spec, owner.as_column())
        )
        .map_err(|e| StoreError::from_sqlx(self.kind, name, "creating", e))?;
        Ok(())
    }

    pub async fn get(&self, conn: &mut PgConnection, name: &str) -> Result<Option<SpecRow>> {
        per_table!(self.table, get_one!(&mut *conn, name))
            .map_err(|e| StoreError::from_sqlx(self.kind, name, "reading", e))
    }

    pub async fn list(&self, conn: &mut PgConnection) -> Result<Vec<SpecRow>> {
        per_table!(self.table, list_all!(&mut *conn)).map_err(StoreError::db("listing"))
    }

    /// Deletes by name; `false` when there was nothing to delete.
    pub async fn delete(&self, conn: &mut PgConnection, name: &str) -> Result<bool> {
        let done = per_table!(self.table, delete_one!(&mut *conn, name))
            .map_err(|e| StoreError::from_sqlx(self.kind, name, "deleting", e))?;
        Ok(done.rows_affected() > 0)
    }
}

/// A savepoint inside the caller's transaction (or a transaction of its own on a bare
/// connection), so a failed batch can be undone whole without aborting the caller's work.
pub(crate) async fn savepoint(conn: &mut PgConnection) -> Result<Transaction<'_, Postgres>> {
    conn.begin()
        .await
        .map_err(StoreError::db("opening a savepoint for a bulk write"))
}

/// Undoes a batch: rolls back to the savepoint.
pub(crate) async fn undo(sp: Transaction<'_, Postgres>) -> Result<()> {
    sp.rollback()
        .await
        .map_err(StoreError::db("rolling back a bulk write"))
}

/// Keeps a batch: releases the savepoint.
pub(crate) async fn keep(sp: Transaction<'_, Postgres>) -> Result<()> {
    sp.commit()
        .await
        .map_err(StoreError::db("releasing a bulk write's savepoint"))
}

/// One statement may not upsert a name twice (Postgres refuses with a cardinality error that
/// names nothing); say which name instead.
pub(crate) fn reject_duplicates(kind: &'static str, names: &[&str]) -> Result<()> {
    let mut seen = HashSet::with_capacity(names.len());
    for n in names {
        if !seen.insert(*n) {
            return Err(StoreError::Conflict {
                kind,
                name: (*n).to_string(),
            });
        }
    }
    Ok(())
}

/// Accounts for the rows a bulk upsert of `names` did not write (`skipped` of them): identical
/// rows of `owner` are unchanged; a row of another owner is an [`StoreError::Owned`] error (the
/// caller undoes the batch). Costs a query only when something was skipped.
pub(crate) async fn classify_skipped(
    conn: &mut PgConnection,
    table: Table,
    kind: &'static str,
    names: &[&str],
    skipped: usize,
    owner: &Owner,
) -> Result<usize> {
    if skipped == 0 {
        return Ok(0);
    }
    let foreign: Option<(String, String)> = per_table!(
        table,
        foreign_owner!(&mut *conn, names as &[&str], owner.as_column())
    )
    .map_err(StoreError::db("checking the owners of a bulk write"))?;
    match foreign {
        Some((name, other)) => Err(StoreError::Owned {
            kind,
            name,
            owner: Owner::from_column(&other),
            writer: owner.clone(),
        }),
        None => Ok(skipped),
    }
}

/// `(created, updated)` as the bulk upsert statements return them.
pub(crate) type BulkRow = (i64, i64);

/// The outcome of a bulk upsert of `names` from its statement's counts, after classifying what it
/// skipped.
pub(crate) async fn outcome(
    conn: &mut PgConnection,
    table: Table,
    kind: &'static str,
    names: &[&str],
    (created, updated): BulkRow,
    owner: &Owner,
) -> Result<BulkOutcome> {
    let created = usize::try_from(created).unwrap_or_default();
    let updated = usize::try_from(updated).unwrap_or_default();
    let skipped = names.len().saturating_sub(created + updated);
    let unchanged = classify_skipped(conn, table, kind, names, skipped, owner).await?;
    Ok(BulkOutcome {
        created,
        updated,
        unchanged,
    })
}

impl SpecTable {
    /// Upserts many rows with one statement (`INSERT … SELECT FROM UNNEST … ON CONFLICT`), all
    /// or nothing, as `owner`. Identical rows are not rewritten; a row another owner manages is
    /// never taken over: the batch is undone and [`StoreError::Owned`] names it. On a constraint
    /// violation the batch is undone and replayed row by row (in a savepoint, rolled back
    /// after) so the error names the offending object exactly as [`Self::upsert`] would.
    pub async fn upsert_many(
        &self,
        conn: &mut PgConnection,
        names: &[&str],
        specs: &[serde_json::Value],
        owner: &Owner,
    ) -> Result<BulkOutcome> {
        if names.is_empty() {
            return Ok(BulkOutcome::default());
        }
        reject_duplicates(self.kind, names)?;
        let json: Vec<Json<&serde_json::Value>> = specs.iter().map(Json).collect();
        let mut sp = savepoint(conn).await?;
        let row: std::result::Result<BulkRow, sqlx::Error> = per_table!(
            self.table,
            upsert_bulk!(
                &mut *sp,
                names as &[&str],
                &json as &[Json<&serde_json::Value>],
                owner.as_column()
            )
        );
        match row {
            Ok(row) => match outcome(&mut sp, self.table, self.kind, names, row, owner).await {
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
                Err(self.upsert_culprit(conn, names, specs, owner, e).await)
            }
            Err(e) => {
                undo(sp).await?;
                Err(StoreError::Database {
                    action: "bulk upserting",
                    source: e,
                })
            }
        }
    }

    /// Replays a failed batch one row per statement (the same statement, so the same rules) to
    /// find the row the database refuses; everything is rolled back afterwards. Falls back to
    /// the batch's own error.
    async fn upsert_culprit(
        &self,
        conn: &mut PgConnection,
        names: &[&str],
        specs: &[serde_json::Value],
        owner: &Owner,
        batch_error: sqlx::Error,
    ) -> StoreError {
        let fallback = StoreError::Database {
            action: "bulk upserting",
            source: batch_error,
        };
        let Ok(mut sp) = savepoint(conn).await else {
            return fallback;
        };
        for (name, spec) in names.iter().zip(specs) {
            let res = per_table!(
                self.table,
                upsert_bulk!(
                    &mut *sp,
                    &[*name] as &[&str],
                    &[Json(spec)] as &[Json<&serde_json::Value>],
                    owner.as_column()
                )
            );
            if let Err(e) = res {
                let _ = undo(sp).await;
                return StoreError::from_sqlx(self.kind, name, "upserting", e);
            }
        }
        let _ = undo(sp).await;
        fallback
    }

    /// Deletes, with one statement, those of `names` that `owner` manages (others are left
    /// alone: Git prunes only what it owns); returns how many went. All or nothing: on a
    /// constraint violation (a cluster still used by a link) the batch is undone and replayed
    /// row by row, rolled back after, so the error names the object as [`Self::delete`] would.
    pub async fn delete_owned(
        &self,
        conn: &mut PgConnection,
        names: &[&str],
        owner: &Owner,
    ) -> Result<usize> {
        if names.is_empty() {
            return Ok(0);
        }
        let mut sp = savepoint(conn).await?;
        let done = per_table!(
            self.table,
            delete_owned_many!(&mut *sp, names as &[&str], owner.as_column())
        );
        match done {
            Ok(done) => {
                keep(sp).await?;
                Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
            }
            Err(e) if StoreError::is_constraint(&e) => {
                undo(sp).await?;
                let fallback = StoreError::Database {
                    action: "bulk deleting",
                    source: e,
                };
                let Ok(mut sp) = savepoint(conn).await else {
                    return Err(fallback);
                };
                for name in names {
                    let res = per_table!(
                        self.table,
                        delete_owned_one!(&mut *sp, *name, owner.as_column())
                    );
                    if let Err(e) = res {
                        let _ = undo(sp).await;
                        return Err(StoreError::from_sqlx(self.kind, name, "deleting", e));
                    }
                }
                let _ = undo(sp).await;
                Err(fallback)
            }
            Err(e) => {
                undo(sp).await?;
                Err(StoreError::Database {
                    action: "bulk deleting",
                    source: e,
                })
            }
        }
    }
}
