//! `linkplane token create|list|revoke`: API bearer tokens. The token is printed once, on
//! stdout, at creation; only its SHA-256 is stored.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use linkplane_store::{Store, tokens};
use secrecy::{ExposeSecret as _, SecretString};

/// `linkplane token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// Database.
    #[command(flatten)]
    pub database: TokenDatabaseArgs,
    /// What to do.
    #[command(subcommand)]
    pub action: TokenAction,
}

/// The database flags of `token`, global so that they are accepted where a person types them:
/// `linkplane token create --role viewer --database-url X` as well as
/// `linkplane token --database-url X create ...`. (A global flag cannot be required in clap, so
/// the URL is checked in [`run`].)
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database")]
pub struct TokenDatabaseArgs {
    /// PostgreSQL URL, e.g. `postgres://user:pass@host:5432/linkplane`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<SecretString>,
    /// Maximum pooled connections.
    #[arg(
        long,
        env = "LINKPLANE_DATABASE_MAX_CONNECTIONS",
        default_value_t = 2,
        global = true
    )]
    pub database_max_connections: u32,
}

/// Token subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum TokenAction {
    /// Create a token and print it (once) on stdout.
    Create {
        /// What the token may do.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A label, e.g. who or what holds the token.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List tokens (metadata only).
    List,
    /// Revoke a token by id; it never authenticates again.
    Revoke {
        /// Token id, as `token list` shows it.
        id: i64,
    },
}

/// A role on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Queries and subscriptions.
    Viewer,
    /// Viewer plus operational mutations (syncNow, pause/resume, setClusterCredentials).
    Operator,
    /// Operator plus token management.
    Admin,
}

impl From<RoleArg> for tokens::Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Viewer => tokens::Role::Viewer,
            RoleArg::Operator => tokens::Role::Operator,
            RoleArg::Admin => tokens::Role::Admin,
        }
    }
}

/// Runs a token subcommand (migrating first, so it works on a fresh database).
pub async fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let url = args
        .database
        .database_url
        .as_ref()
        .context("the database is needed: pass --database-url or set DATABASE_URL")?;
    let store = Store::connect(url.expose_secret(), args.database.database_max_connections)
        .await
        .context("connecting to PostgreSQL (check --database-url / DATABASE_URL)")?;
    store.migrate().await.context("migrating the database")?;
    let mut conn = store.acquire().await.context("acquiring a connection")?;
    match args.action {
        TokenAction::Create { role, name } => {
            let (info, token) = tokens::issue(&mut conn, role.into(), &name)
                .await
                .context("creating the token")?;
            println!("{}", token.expose_secret());
            eprintln!(
                "created token {} ({}{}); it is shown only once",
                info.id,
                info.role.as_str(),
                if name.is_empty() {
                    String::new()
                } else {
                    format!(", {name:?}")
                }
            );
        }
        TokenAction::List => {
            let all = tokens::list(&mut conn).await.context("listing tokens")?;
            println!(
                "{:<6} {:<9} {:<24} {:<21} {:<21} REVOKED",
                "ID", "ROLE", "NAME", "CREATED", "LAST USED"
            );
            let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|| "-".into())
            };
            for t in all {
                println!(
                    "{:<6} {:<9} {:<24} {:<21} {:<21} {}",
                    t.id,
                    t.role.as_str(),
                    if t.name.is_empty() { "-" } else { &t.name },
                    when(Some(t.created_at)),
                    when(t.last_used_at),
                    when(t.revoked_at)
                );
            }
        }
        TokenAction::Revoke { id } => match tokens::revoke(&mut conn, id).await {
            Ok(_) => println!("revoked token {id}"),
            Err(linkplane_store::StoreError::NotFound { .. }) => {
                eprintln!("error: no token with id {id}");
                return Ok(ExitCode::FAILURE);
            }
            Err(e) => return Err(e).context("revoking the token"),
        },
    }
    Ok(ExitCode::SUCCESS)
}
