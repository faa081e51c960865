//! Shared SQL for tables shaped `(name, spec jsonb, owner, generation, timestamps)`.

use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};
use sqlx::{FromRow, PgConnection};

use crate::{Owner, Result, StoreError, Stored, WriteOutcome};

/// A table of named specs. `table` is a compile-time constant, never user input.
pub(crate) struct SpecTable {
    pub table: &'static str,
    pub kind: &'static str,
}

#[derive(FromRow)]
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

impl SpecTable {
    /// Insert, or update when spec or owner differ; identical rows are not rewritten.
    pub async fn upsert(
        &self,
        conn: &mut PgConnection,
        name: &str,
        spec: serde_json::Value,
        owner: &Owner,
    ) -> Result<WriteOutcome> {
        let sql = format!(
            "INSERT INTO {t} (name, spec, owner) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec, owner = EXCLUDED.owner,
                 generation = {t}.generation + 1, updated_at = now()
             WHERE {t}.spec IS DISTINCT FROM EXCLUDED.spec OR {t}.owner IS DISTINCT FROM EXCLUDED.owner
             RETURNING (xmax = 0) AS inserted",
            t = self.table
        );
        let inserted: Option<bool> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .bind(spec)
            .bind(owner.as_column())
            .fetch_optional(&mut *conn)
            .await
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
        let sql = format!(
            "INSERT INTO {} (name, spec, owner) VALUES ($1, $2, $3)",
            self.table
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .bind(spec)
            .bind(owner.as_column())
            .execute(&mut *conn)
            .await
            .map_err(|e| StoreError::from_sqlx(self.kind, name, "creating", e))?;
        Ok(())
    }

    pub async fn get(&self, conn: &mut PgConnection, name: &str) -> Result<Option<SpecRow>> {
        let sql = format!(
            "SELECT name, spec, owner, generation, created_at, updated_at FROM {} WHERE name = $1",
            self.table
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| StoreError::from_sqlx(self.kind, name, "reading", e))
    }

    pub async fn list(&self, conn: &mut PgConnection) -> Result<Vec<SpecRow>> {
        let sql = format!(
            "SELECT name, spec, owner, generation, created_at, updated_at FROM {} ORDER BY name",
            self.table
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::db("listing"))
    }

    /// Deletes by name; `false` when there was nothing to delete.
    pub async fn delete(&self, conn: &mut PgConnection, name: &str) -> Result<bool> {
        let sql = format!("DELETE FROM {} WHERE name = $1", self.table);
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .execute(&mut *conn)
            .await
            .map_err(|e| StoreError::from_sqlx(self.kind, name, "deleting", e))?;
        Ok(done.rows_affected() > 0)
    }
}
