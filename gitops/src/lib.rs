//! Git sync for linkplane: clusters, links and export policies declared in Git, continuously and
//! atomically synced into Postgres, like Argo CD or Flux but per revision and with a plan.
//!
//! Where to start:
//! - [`manifest`]: the YAML format, [`manifest::parse_files`] (pure: files in, a valid
//!   [`manifest::Revision`] or `file:line:col` diagnostics out);
//! - [`reader`]: the one reader of a revision's files, from a directory or a Git tree (what is
//!   read, skipped or refused: symlinks, submodules, non-UTF-8 names);
//! - [`git`]: the fetch cache (bare repositories, read from the object database, crash-safe);
//! - [`apply`]: plan and apply a revision in one transaction, prune what Git owns, detect drift;
//! - [`sync`]: one sync of one source, with status and history;
//! - [`runtime`]: poll loops, coalescing triggers and the public [`SyncHandle`];
//! - [`push`]: which sources a push webhook concerns ([`SyncHandle::on_push`]).

pub mod apply;
pub mod git;
pub mod manifest;
pub mod metrics;
pub mod push;
pub mod reader;
pub mod runtime;
pub mod sync;
pub mod yaml;

pub use runtime::SyncHandle;
pub use sync::{SyncOutcome, SyncResult, Syncer, Trigger};

/// What can go wrong running a sync (a rejected revision is an outcome, not an error).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// No `git_sources` row has this name.
    #[error("unknown Git source {0:?}")]
    UnknownSource(String),
    /// The database failed.
    #[error("database: {0}")]
    Store(#[source] std::sync::Arc<linkplane_store::StoreError>),
    /// Git failed outside a sync (plan previews).
    #[error("git: {0}")]
    Git(#[source] std::sync::Arc<git::GitError>),
    /// Parsing a revision did not complete (its blocking task panicked or was cancelled).
    #[error("parsing the revision did not complete")]
    ParseIncomplete,
    /// The runtime is shutting down.
    #[error("the sync runtime stopped")]
    Stopped,
    /// A revision to plan is no commit, branch or tag of the source's repository.
    #[error("{0:?} is not a commit, branch or tag of the source's repository")]
    UnknownRevision(String),
}

impl From<linkplane_store::StoreError> for Error {
    fn from(e: linkplane_store::StoreError) -> Self {
        Error::Store(std::sync::Arc::new(e))
    }
}

impl From<git::GitError> for Error {
    fn from(e: git::GitError) -> Self {
        Error::Git(std::sync::Arc::new(e))
    }
}
