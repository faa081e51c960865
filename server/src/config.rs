//! Command-line and environment configuration: one typed struct, grouped by concern.
//!
//! Every flag has an `env` twin (`LINKPLANE_*`, or the conventional `DATABASE_URL`) so the Helm
//! chart maps values onto environment variables one to one.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

/// Connect Kubernetes services across clusters, centrally.
///
/// `linkplane serve` runs the server: it mirrors services between clusters as links declared in
/// Git (or through its GraphQL API) say. The client commands (`login`, `get`, `status`, `check`,
/// `gateways`, `diff`, `sync`, ...) ask a running server; `linkplane dev` runs everything on this
/// machine to try it.
#[derive(Debug, Parser)]
#[command(name = "linkplane", version, propagate_version = true)]
pub struct Cli {
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: HTTP API, health endpoints (migrates the database first unless --no-migrate).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(MigrateArgs),
    /// Manage API bearer tokens (create prints the token once).
    Token(crate::cmd::token::TokenArgs),
    /// Check a directory of GitOps manifests: exit 1 with file:line:col errors (no database).
    Validate(crate::gitops::ValidateArgs),
    /// Show what a directory of GitOps manifests would create, update and delete in the database.
    Plan(crate::gitops::PlanArgs),
    #[cfg(feature = "dev")]
    /// Run the whole system on this machine: PostgreSQL, simulated clusters, a GitOps repo, the server.
    Dev(crate::dev::DevArgs),
    #[cfg(feature = "dev")]
    /// Run simulated Kubernetes clusters (kubesim) until Ctrl-C and print their kubeconfigs.
    Sim(crate::cmd::sim::SimArgs),
    /// Print linkplane manifests equivalent to another tool's configuration (`import linkerd`).
    Import(crate::cmd::import::ImportArgs),
    /// Client commands: talk to a running server over its GraphQL API.
    #[command(flatten)]
    Client(linkplane_cli::Command),
    /// Print a shell completion script (bash, zsh or fish) on stdout.
    Completion(crate::cmd::completion::CompletionArgs),
    /// Print the man page (roff) on stdout, e.g. `linkplane man > linkplane.1`.
    Man,
}

/// Logging options.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log filter in `tracing` syntax, e.g. `info,linkplane=debug`.
    #[arg(long, env = "LINKPLANE_LOG", default_value = "info", global = true)]
    pub log: String,
    /// Log format.
    #[arg(
        long,
        env = "LINKPLANE_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

/// Log output format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Database connection options.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseArgs {
    /// PostgreSQL URL, e.g. `postgres://user:pass@host:5432/linkplane`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: SecretString,
    /// Maximum pooled connections.
    #[arg(long, env = "LINKPLANE_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,
}

/// HTTP server options.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "HTTP")]
pub struct HttpArgs {
    /// Address to listen on.
    #[arg(long, env = "LINKPLANE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Seconds to wait for in-flight requests on shutdown.
    #[arg(long, env = "LINKPLANE_SHUTDOWN_GRACE_SECONDS", default_value_t = 10)]
    pub shutdown_grace_seconds: u64,
}

/// `linkplane serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// HTTP.
    #[command(flatten)]
    pub http: HttpArgs,
    /// Do not apply migrations on start (when a separate job runs `linkplane migrate`).
    #[arg(
        long,
        env = "LINKPLANE_NO_MIGRATE",
        default_value_t = false,
        help_heading = "Database"
    )]
    pub no_migrate: bool,
    /// Service mirror.
    #[command(flatten)]
    pub mirror: crate::mirror::MirrorArgs,
    /// GraphQL API, limits, CORS, TLS, credentials key.
    #[command(flatten)]
    pub api: crate::http::config::ApiArgs,
    /// GitOps sync.
    #[command(flatten)]
    pub gitops: crate::gitops::GitopsArgs,
}

/// `linkplane migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Database.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_defaults() {
        let cli =
            Cli::try_parse_from(["linkplane", "serve", "--database-url", "postgres://x"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("expected serve")
        };
        assert_eq!(args.http.listen.to_string(), "127.0.0.1:8080");
        assert!(!args.no_migrate);
        assert_eq!(args.database.database_max_connections, 16);
    }

    #[test]
    fn token_database_flags_are_accepted_after_the_action() {
        for args in [
            &[
                "linkplane",
                "token",
                "create",
                "--role",
                "viewer",
                "--database-url",
                "postgres://x",
            ][..],
            &[
                "linkplane",
                "token",
                "--database-url",
                "postgres://x",
                "create",
                "--role",
                "viewer",
            ][..],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Token(token) = cli.command else {
                panic!("expected token")
            };
            assert!(token.database.database_url.is_some(), "{args:?}");
        }
    }

    #[test]
    fn serve_help_groups_flags_under_headings() {
        let mut cmd = Cli::command();
        let serve = cmd.find_subcommand_mut("serve").unwrap();
        let help = serve.render_help().to_string();
        for heading in ["Database:", "HTTP:", "GitOps:", "Reconcilers:", "Security:"] {
            assert!(help.contains(heading), "no {heading} in:\n{help}");
        }
        let security = help.split("Security:").nth(1).unwrap_or_default();
        assert!(security.contains("--tls-cert-file"), "{help}");
    }

    #[test]
    fn help_describes_linkplane_for_its_users() {
        let help = Cli::command().render_help().to_string();
        assert!(
            help.starts_with("Connect Kubernetes services across clusters"),
            "{help}"
        );
        assert!(!help.contains("wiring of every subsystem"), "{help}");
        for client in ["login", "status", "check", "gateways", "diff", "sync"] {
            assert!(help.contains(&format!("  {client} ")), "{client} in {help}");
        }
    }

    #[test]
    fn database_url_is_not_printed_in_debug_output() {
        let cli = Cli::try_parse_from([
            "linkplane",
            "migrate",
            "--database-url",
            "postgres://u:hunter2@h/db",
        ])
        .unwrap();
        assert!(!format!("{cli:?}").contains("hunter2"));
    }
}
