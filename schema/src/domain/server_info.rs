//! `serverInfo`: the server's version and its database's migration level, for
//! `linkplane check` (a database behind the binary, or migrated by a newer one).

use async_graphql::{Context, Object, SimpleObject};
use linkplane_store::schema_version;

use crate::{common::db, db::one, error::ApiResult};

/// One embedded migration.
#[derive(SimpleObject, Debug, Clone)]
pub struct MigrationInfo {
    /// Version (the file's number).
    pub version: i64,
    /// Description.
    pub description: String,
}

/// The database's migration level against the migrations this server embeds.
#[derive(SimpleObject, Debug, Clone)]
pub struct MigrationLevel {
    /// Versions applied to the database.
    pub applied: Vec<i64>,
    /// Migrations embedded in this server, by version.
    pub embedded: Vec<MigrationInfo>,
    /// Embedded migrations the database has not applied (the server applies them at start;
    /// non-empty means another process serves an older schema or migration failed).
    pub pending: Vec<MigrationInfo>,
    /// Applied versions this server does not embed (a newer server migrated the database).
    pub unknown: Vec<i64>,
    /// True when `pending` and `unknown` are both empty.
    pub current: bool,
}

/// The server.
#[derive(SimpleObject, Debug, Clone)]
pub struct ServerInfo {
    /// The server's version.
    pub version: String,
    /// The database's migration level.
    pub migrations: MigrationLevel,
}

/// `serverInfo`.
#[derive(Default)]
pub struct ServerInfoQuery;

#[Object]
impl ServerInfoQuery {
    /// This server's version and its database's migration level.
    async fn server_info(&self, ctx: &Context<'_>) -> ApiResult<ServerInfo> {
        let level = one!(db(ctx)?, |c| schema_version::level(c))?;
        let info = |m: &schema_version::Migration| MigrationInfo {
            version: m.version,
            description: m.description.clone(),
        };
        let pending: Vec<MigrationInfo> = level.pending().into_iter().map(info).collect();
        let unknown = level.unknown();
        Ok(ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            migrations: MigrationLevel {
                current: pending.is_empty() && unknown.is_empty(),
                applied: level.applied.clone(),
                embedded: level.embedded.iter().map(info).collect(),
                pending,
                unknown,
            },
        })
    }
}
