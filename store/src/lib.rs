//! Postgres persistence for linkplane.
//!
//! [`Store`] owns the connection pool and the embedded migrations; each module is one table
//! family with free functions over `&mut PgConnection`, so the same call works on a pooled
//! connection and inside a transaction (the GitOps engine applies a whole revision in one).
//! [`changes`] exposes the LISTEN/NOTIFY feeds reconcilers and subscriptions use instead of polling.
//!
//! Domain types go in and come out ([`linkplane_core`]); SQL never leaks past this crate.

pub mod audit;
pub mod changes;
pub mod clusters;
pub mod credentials;
pub mod error;
pub mod federation;
pub mod gateways;
pub mod git_sources;
pub mod gitops;
pub mod leases;
pub mod link_cleanups;
pub mod links;
pub mod mcs;
pub mod mirrors;
pub mod owner;
pub mod policies;
pub mod reconcilers;
pub mod remote_credentials;
pub mod schema_version;
mod spec_table;
pub mod sync_history;
#[cfg(test)]
mod test_support;
pub mod tokens;
pub mod topology;
pub mod windows;

use std::{str::FromStr as _, time::Duration};

use sqlx::{
    Connection as _, PgPool, Postgres, Transaction,
    pool::PoolConnection,
    postgres::{PgConnectOptions, PgPoolOptions},
};

pub use error::{Result, StoreError};
pub use owner::{BulkOutcome, Owner, Stored, WriteOutcome};
pub use sqlx::PgConnection;

/// The migrations in the top-level `migrations/` folder, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects with a bounded pool. Fails fast (5 s) so a wrong URL is reported at start-up.
    ///
    /// Sessions run with `client_min_messages = warning`: PostgreSQL's NOTICEs (such as
    /// "relation already exists, skipping" from a migration's `IF NOT EXISTS`) are not worth a
    /// log line on every command. When the database cannot be reached the error names the
    /// address and the driver's cause (connection refused, DNS, TLS, authentication) rather
    /// than the pool's "timed out".
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(StoreError::db("parsing the database URL"))?
            .options([("client_min_messages", "warning")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await;
        match pool {
            Ok(pool) => Ok(Self { pool }),
            Err(sqlx::Error::PoolTimedOut) => {
                // The pool retried until its timeout and kept no cause: one direct attempt
                // finds it.
                let source = match PgConnection::connect_with(&options).await {
                    Err(e) => e,
                    Ok(_) => sqlx::Error::PoolTimedOut,
                };
                Err(StoreError::Unreachable {
                    addr: address_of(&options),
                    source,
                })
            }
            Err(e @ (sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Database(_))) => {
                Err(StoreError::Unreachable {
                    addr: address_of(&options),
                    source: e,
                })
            }
            Err(e) => Err(StoreError::db("connecting to the database")(e)),
        }
    }

    /// Wraps an existing pool (tests get one per database from `#[sqlx::test]`).
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// A second, small pool on the same database, connecting on first use: for work that must
    /// not queue behind bulk writes for a connection (lease renewal, whose lateness stops every
    /// write of the replica).
    pub fn dedicated(&self, max_connections: u32) -> Self {
        let options = (*self.pool.connect_options()).clone();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        Self { pool }
    }

    /// The pool, for components that run their own queries through this crate's functions.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(StoreError::Migrate)
    }

    /// Drops (if present) and creates database `name` on the server `admin_url` points at,
    /// migrates it and returns its URL: benchmarks and tests that need a database of their own
    /// on the server `DATABASE_URL` names. `name` must be a plain identifier (it is spliced in).
    pub async fn recreate_database(admin_url: &str, name: &str) -> Result<String> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::Invalid {
                kind: "Database",
                name: name.to_string(),
                reason: "only ASCII letters, digits and '_' are allowed".into(),
            });
        }
        let admin = Self::connect(admin_url, 1).await?;
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&admin.pool)
                .await
                .map_err(StoreError::db("re-creating a database"))?;
        }
        admin.pool.close().await;
        let (base, query) = admin_url.split_once('?').unwrap_or((admin_url, ""));
        let prefix = base.rsplit_once('/').map_or(base, |(p, _)| p);
        let url = if query.is_empty() {
            format!("{prefix}/{name}")
        } else {
            format!("{prefix}/{name}?{query}")
        };
        Self::connect(&url, 1).await?.migrate().await?;
        Ok(url)
    }

    /// Round-trips a trivial query: the readiness check.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("pinging the database"))?;
        Ok(())
    }

    /// A pooled connection for a series of calls.
    pub async fn acquire(&self) -> Result<PoolConnection<Postgres>> {
        self.pool
            .acquire()
            .await
            .map_err(StoreError::db("acquiring a connection"))
    }

    /// A transaction: pass `&mut tx` to any function of this crate; commit with `tx.commit()`.
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool
            .begin()
            .await
            .map_err(StoreError::db("starting a transaction"))
    }
}

/// Commits a transaction from [`Store::begin`]; a failure is [`StoreError::Database`] naming
/// `action` (e.g. "committing the revision"), so callers never build the store's errors.
pub async fn commit(tx: Transaction<'_, Postgres>, action: &'static str) -> Result<()> {
    tx.commit().await.map_err(StoreError::db(action))
}

/// `host:port` of a connection's options (the socket directory for Unix sockets).
fn address_of(options: &PgConnectOptions) -> String {
    format!("{}:{}", options.get_host(), options.get_port())
}
