//! Subcommands other than `serve`, one module each.

pub mod completion;
pub mod import;
#[cfg(feature = "dev")]
pub mod sim;
pub mod token;
