//! One module per domain; each contributes a query (and maybe mutation) root merged in `lib.rs`.

pub mod cluster;
pub mod events;
pub mod federation;
pub mod git;
pub mod link;
pub mod mirror;
/// STUB (cli-17): dropped when the API branch's operator mutations merge.
pub mod operator_stub;
pub mod policy;
pub mod tokens;
pub mod topology;
