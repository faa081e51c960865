//! Subcommands other than `serve`, one module each.

pub mod completion;
pub mod import;
pub mod sim;
pub mod token;
