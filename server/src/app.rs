//! Start-up wiring: connect, migrate, serve. The only place that uses `anyhow`.

use std::process::ExitCode;

use anyhow::Context;
use linkplane_store::Store;
use secrecy::ExposeSecret;

use crate::{
    config::{Command, DatabaseArgs, ServeArgs},
    http,
};

/// Runs one subcommand to completion.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve(*args).await.map(|()| ExitCode::SUCCESS),
        Command::Migrate(args) => {
            let store = connect(&args.database).await?;
            store.migrate().await.context("migrating the database")?;
            println!("database is up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(args) => crate::cmd::token::run(args).await,
        Command::Validate(args) => crate::gitops::validate(&args),
        Command::Plan(args) => crate::gitops::plan(args).await,
        #[cfg(feature = "dev")]
        Command::Dev(args) => crate::dev::run(args).await.map(|()| ExitCode::SUCCESS),
        #[cfg(feature = "dev")]
        Command::Sim(args) => crate::cmd::sim::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Import(args) => crate::cmd::import::run(args)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Client(command) => Ok(match linkplane_cli::run(command).await {
            Ok(code) => code,
            Err(err) => {
                // Exit 2: the question could not be asked (1 means "asked, and the answer is
                // bad", e.g. `status` on an unhealthy fleet).
                eprintln!("error: {err}");
                ExitCode::from(2)
            }
        }),
        Command::Completion(args) => crate::cmd::completion::completion(&args),
        Command::Man => crate::cmd::completion::man(),
    }
}

async fn connect(db: &DatabaseArgs) -> anyhow::Result<Store> {
    Store::connect(db.database_url.expose_secret(), db.database_max_connections)
        .await
        .context("connecting to PostgreSQL (check --database-url / DATABASE_URL)")
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store = connect(&args.database).await?;
    if !args.no_migrate {
        store.migrate().await.context("migrating the database")?;
        tracing::info!("database migrated");
    }
    let listener = tokio::net::TcpListener::bind(args.http.listen)
        .await
        .with_context(|| format!("binding {}", args.http.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    // Printed on stdout (not only logged) so scripts can wait for it.
    let scheme = if args.api.tls_cert_file.is_some() {
        "https"
    } else {
        "http"
    };
    println!("linkplane listening on {scheme}://{addr}");
    tracing::info!(%addr, "listening");
    let mut registry = prometheus_client::registry::Registry::default();
    let credentials_key = http::api::credentials_key(&args.api)?;
    let stored = credentials_key
        .clone()
        .map(|key| crate::mirror::StoredCredentials::resolver(store.clone(), key));
    let mirror = crate::mirror::start(&store, &args.mirror, &mut registry, stored).await?;
    let gitops_stop = tokio_util::sync::CancellationToken::new();
    let sync = crate::gitops::start(&store, &args.gitops, gitops_stop.clone()).await?;
    sync.register_metrics(&mut registry);
    let webhook_secret = args.gitops.webhook_secret()?;
    let probe_windows = mirror.as_ref().map(|m| m.probe_windows());
    let api = http::api::build(
        &store,
        &args.api,
        Some(sync.clone()),
        credentials_key,
        probe_windows,
        registry,
    )
    .await?;
    let health = std::sync::Arc::new(http::health::Health::default());
    let checker = health.spawn_checker(store.clone(), Some(sync.clone()));
    let state = http::AppState {
        store,
        sync: Some(sync),
        webhook_secret,
        api,
        health,
    };
    // On SIGTERM the leases go first, while HTTP connections drain: peers take the clusters
    // over on their next lease round instead of after the lease expires.
    let hand_over = mirror.as_ref().map(|m| {
        let stop = m.stopper();
        tokio::spawn(async move {
            http::shutdown_signal().await;
            stop.notify_one();
        })
    });
    let served = http::serve(
        listener,
        state,
        std::time::Duration::from_secs(args.http.shutdown_grace_seconds),
    )
    .await;
    checker.abort();
    if let Some(h) = hand_over {
        h.abort();
    }
    gitops_stop.cancel();
    if let Some(mirror) = mirror {
        mirror.shutdown().await;
    }
    served
}
