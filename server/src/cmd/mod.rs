//! Subcommands other than `serve`, one module each.

pub mod completion;
pub mod sim;
pub mod token;
