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
            eprintln!("error: {}", causes(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each once: many errors repeat their source in their own message
/// (sqlx's "error communicating with database: Connection refused"), which `{:#}` would print
/// twice.
fn causes(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let message = cause.to_string();
        if message.is_empty() || out.contains(&message) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&message);
    }
    out
}
