//! Subcommands other than `serve`, one module each.

pub mod token;
