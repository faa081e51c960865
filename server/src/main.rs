//! The `linkplane` binary. Everything is wired in [`app`]; this file only parses the command line.

mod app;
mod cmd;
mod config;
mod dev;
mod gitops;
mod http;
mod mirror;
mod telemetry;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // One TLS provider for the whole process (kube, reqwest, sqlx and our listeners all use rustls).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = config::Cli::parse();
    telemetry::init(&cli.log);
    match app::run(cli.command).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
