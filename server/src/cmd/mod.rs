//! Subcommands other than `serve`, one module each.

pub mod sim;
pub mod token;
