//! Tracing subscriber set-up.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::{LogArgs, LogFormat};

/// Installs the global subscriber; an invalid filter falls back to `info` with a warning.
pub fn init(args: &LogArgs) {
    let (filter, bad_filter) = match EnvFilter::try_new(&args.log) {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new("info"), Some(e)),
    };
    let registry = tracing_subscriber::registry().with(filter);
    match args.log_format {
        // Colours only on a terminal (`linkplane dev` sends the server's logs to a file) and
        // never with NO_COLOR set (https://no-color.org).
        LogFormat::Text => registry
            .with(fmt::layer().with_writer(std::io::stderr).with_ansi(
                std::io::stderr().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            ))
            .init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .init(),
    }
    if let Some(e) = bad_filter {
        tracing::warn!(filter = %args.log, error = %e, "invalid log filter, using `info`");
    }
}
