//! Git sync: parse, validate and atomically apply revisions of linkplane manifests.
