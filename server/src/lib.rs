//! The `linkplane` binary's library: command-line configuration, start-up wiring, the HTTP
//! surface and the subcommands. `main.rs` only parses the command line and calls [`app::run`];
//! the integration tests in `tests/` reach the HTTP router through this crate.
//!
//! The developer tooling (`linkplane dev`, `linkplane sim`) is behind the default-on `dev`
//! feature; the container image is built with `--no-default-features` and links neither the
//! Kubernetes simulator nor the PostgreSQL launcher.

pub mod app;
pub mod cmd;
pub mod config;
#[cfg(feature = "dev")]
pub mod dev;
pub mod gitops;
pub mod http;
pub mod mirror;
pub mod telemetry;

/// The error and its causes, each once: many errors repeat their source in their own message
/// (sqlx's "error communicating with database: Connection refused"), which `{:#}` would print
/// twice.
pub fn causes(err: &anyhow::Error) -> String {
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
