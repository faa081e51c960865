//! The `linkplane` binary. Everything is wired in [`linkplane_server::app`]; this file only parses
//! the command line.

use clap::Parser;
use linkplane_server::{app, causes, config, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // One TLS provider for the whole process (kube, reqwest, sqlx and our listeners all use rustls).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = config::Cli::parse();
    telemetry::init(&cli.log);
    match app::run(cli.command).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", causes(&err));
            std::process::ExitCode::FAILURE
        }
    }
}
