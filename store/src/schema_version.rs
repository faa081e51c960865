//! Which of the embedded migrations the database has applied: what `linkplane check` reports
//! as the migration level (a server older than its database, or a database not migrated).

use sqlx::PgConnection;

use crate::{MIGRATOR, Result, StoreError};

/// One migration: its version and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Version (the file's number).
    pub version: i64,
    /// Description (the file name's rest).
    pub description: String,
}

/// The migration level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    /// Migrations applied successfully, by version.
    pub applied: Vec<i64>,
    /// Migrations this binary embeds, by version.
    pub embedded: Vec<Migration>,
}

impl Level {
    /// Embedded migrations not applied.
    pub fn pending(&self) -> Vec<&Migration> {
        self.embedded
            .iter()
            .filter(|m| !self.applied.contains(&m.version))
            .collect()
    }

    /// Applied migrations this binary does not know (a newer server migrated the database).
    pub fn unknown(&self) -> Vec<i64> {
        self.applied
            .iter()
            .copied()
            .filter(|v| !self.embedded.iter().any(|m| m.version == *v))
            .collect()
    }
}

/// Reads the applied migrations (none when the bookkeeping table does not exist yet).
pub async fn level(conn: &mut PgConnection) -> Result<Level> {
    let exists: bool =
        sqlx::query_scalar!(r#"SELECT to_regclass('_sqlx_migrations') IS NOT NULL AS "exists!""#)
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::db("reading the migration level"))?;
    let applied: Vec<i64> = if exists {
        // Not checked at compile time: `_sqlx_migrations` is the migrator's own bookkeeping,
        // created when it first runs, not by a file in migrations/, and read only once it exists.
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::db("reading the migration level"))?
    } else {
        Vec::new()
    };
    let embedded = MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| Migration {
            version: m.version,
            description: m.description.to_string(),
        })
        .collect();
    Ok(Level { applied, embedded })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn a_migrated_database_has_every_embedded_migration(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let l = level(&mut conn).await.unwrap();
        assert!(!l.embedded.is_empty());
        assert!(l.pending().is_empty(), "{l:?}");
        assert!(l.unknown().is_empty());
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)")
            .execute(&mut *conn)
            .await
            .unwrap();
        let l = level(&mut conn).await.unwrap();
        assert_eq!(l.pending().len(), 1);
    }
}
