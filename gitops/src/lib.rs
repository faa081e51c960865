//! Git sync: parse, validate and atomically apply revisions of linkplane manifests.

pub mod git;
pub mod manifest;
pub mod yaml;
