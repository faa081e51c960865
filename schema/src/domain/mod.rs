//! One module per domain; each contributes a query (and maybe mutation) root merged in `lib.rs`.

pub mod audit;
pub mod cluster;
pub mod events;
pub mod federation;
pub mod git;
pub mod link;
pub mod mcs;
pub mod mirror;
pub mod node;
pub mod policy;
pub mod replicas;
pub mod server_info;
pub mod tokens;
pub mod topology;
