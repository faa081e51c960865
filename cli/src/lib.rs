//! `linkplane` as a client of a running server: the operator's terminal.
//!
//! Every sub-command here talks to the server over its GraphQL API (never to Postgres), with
//! typed operations generated from `cli/graphql/*.graphql` and checked against the committed
//! `schema/schema.graphql` at compile time ([`ops`]). The server binary mounts [`Command`] in its
//! own command tree and calls [`run`].
//!
//! Where to start: [`Command`] lists the sub-commands; [`config`] says where the server and
//! token come from; [`client::Client::run`] is the one GraphQL call; [`output`] prints tables,
//! JSON and YAML. Each family of sub-commands has a module: [`auth`] (login, logout, whoami),
//! [`get`], [`health`] (status, check, gateways) and [`gitops`] (diff, sync, rollback, unpin,
//! suspend, resume).

pub mod auth;
pub mod client;
pub mod config;
pub mod error;
pub mod get;
pub mod gitops;
pub mod health;
pub mod ops;
pub mod output;
pub mod plan;
pub mod server_checks;

use std::{process::ExitCode, time::Duration};

use clap::{Args, Subcommand};

pub use client::Client;
pub use error::{Error, Result};

/// The client sub-commands (mounted flat in `linkplane`'s command tree).
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Store a server URL and token for the client commands (token from stdin or a prompt).
    Login(auth::LoginArgs),
    /// Forget the stored server and token.
    Logout,
    /// Show the name and role of the token in use.
    Whoami(Conn),
    /// List clusters, links, policies, mirrors, federated services, Git sources or tokens.
    Get(get::GetArgs),
    /// One screen of fleet health; exits 1 when anything is unhealthy.
    Status(health::StatusArgs),
    /// Check every cluster and the server, with a hint for each failure; exits 1 on a failure.
    Check(health::CheckArgs),
    /// Target gateways: alive, probe latency, consecutive failures, mirrors behind each.
    Gateways(health::GatewaysArgs),
    /// Objects changed outside Git, field by field; exits 1 when anything drifted.
    Diff(gitops::DiffArgs),
    /// Fetch and apply a Git source now (`--wait`: until the fleet has converged).
    Sync(gitops::SyncArgs),
    /// Hold a Git source at an earlier revision until `unpin`.
    Rollback(gitops::RollbackArgs),
    /// Let a pinned Git source follow its ref again.
    Unpin(gitops::SourceArgs),
    /// Stop automatic syncs of a Git source (polls, webhooks, self-heal) until `resume`.
    Suspend(gitops::SourceArgs),
    /// Sync a suspended Git source again.
    Resume(gitops::SourceArgs),
}

/// Where the server is; every client command takes these.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// Server URL, e.g. `https://linkplane.example` (default: the one `linkplane login` stored).
    #[arg(long, env = "LINKPLANE_SERVER", help_heading = "Connection")]
    pub server: Option<String>,
    /// Seconds to wait for each answer of the server.
    #[arg(
        long,
        env = "LINKPLANE_TIMEOUT",
        default_value_t = 30,
        help_heading = "Connection"
    )]
    pub request_timeout: u64,
}

impl Conn {
    /// A client for the configured server with its token (the token is required).
    pub fn client(&self) -> Result<Client> {
        let target = config::resolve(self.server.as_deref())?;
        let token = target.token()?.to_string();
        Client::new(
            &target.server,
            Some(token.into()),
            Duration::from_secs(self.request_timeout.max(1)),
        )
    }
}

/// Runs a client command; `Ok` carries the exit code (1 for "unhealthy", "drifted", "failed").
pub async fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Login(args) => auth::login(args).await,
        Command::Logout => auth::logout(),
        Command::Whoami(conn) => auth::whoami(&conn).await,
        Command::Get(args) => get::run(args).await,
        Command::Status(args) => health::status(args).await,
        Command::Check(args) => health::check_cmd(args).await,
        Command::Gateways(args) => health::gateways(args).await,
        Command::Diff(args) => gitops::diff(args).await,
        Command::Sync(args) => gitops::sync(args).await,
        Command::Rollback(args) => gitops::rollback(args).await,
        Command::Unpin(args) => gitops::operate(args, gitops::Op::Unpin).await,
        Command::Suspend(args) => gitops::operate(args, gitops::Op::Suspend).await,
        Command::Resume(args) => gitops::operate(args, gitops::Op::Resume).await,
    }
}
