//! Ownership and bookkeeping shared by every declarative table.

use chrono::{DateTime, Utc};

/// Who manages a declarative object. Git prunes only what it owns; the API edits only what it owns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// Created through the API or CLI.
    Api,
    /// Declared by the named Git source.
    Git(String),
}

impl Owner {
    /// The column value: `api` or `git:<source>`.
    pub fn as_column(&self) -> String {
        match self {
            Owner::Api => "api".into(),
            Owner::Git(source) => format!("git:{source}"),
        }
    }

    /// Parses the column value; unknown values are treated as API-owned (never pruned by Git).
    pub fn from_column(value: &str) -> Self {
        match value.strip_prefix("git:") {
            Some(source) => Owner::Git(source.to_string()),
            None => Owner::Api,
        }
    }
}

/// For messages: `the API` / `Git source "fleet"`.
impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Api => f.write_str("the API"),
            Owner::Git(source) => write!(f, "Git source {source:?}"),
        }
    }
}

/// A domain object as stored, with its bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    /// The object.
    pub value: T,
    /// Who manages it.
    pub owner: Owner,
    /// Bumped on every spec change.
    pub generation: i64,
    /// First stored.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// What an upsert did; the GitOps engine counts these per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The row was inserted.
    Created,
    /// The row existed and its spec or owner changed.
    Updated,
    /// The row existed and was identical: nothing was written.
    Unchanged,
}

/// What a bulk upsert did, counted by the database (the GitOps engine records these per kind in
/// `sync_history`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkOutcome {
    /// Rows inserted.
    pub created: usize,
    /// Rows whose spec changed.
    pub updated: usize,
    /// Rows that were already identical: not rewritten (no generation bump, no notification).
    pub unchanged: usize,
}
