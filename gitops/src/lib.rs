//! Git sync: parse, validate and atomically apply revisions of linkplane manifests.

pub mod manifest;
pub mod yaml;
