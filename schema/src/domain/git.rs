//! Git sources with status and history, and the `syncNow` mutation.

use std::{future::Future, pin::Pin};

use async_graphql::{Context, Enum, Object, SimpleObject, connection::Connection};
use chrono::{DateTime, Utc};
use linkplane_core::GitRef;
use linkplane_store::{
    git_sources::{self, SourceState, SyncStatus as StoreStatus},
    gitops::DriftEntry,
    sync_history::SyncRecord as StoreRecord,
};

use crate::{
    ApiContext,
    auth::{Role, RoleGuard},
    common::{db, loader, page_sorted, paged_complexity},
    db::{DriftOf, HistoryOf, one},
    error::{ApiError, ApiResult},
};

/// A boxed, sendable future (keeps [`SyncService`] object-safe without `async_trait`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the API needs from the GitOps engine; the server adapts `linkplane_gitops::SyncHandle`
/// to it, so this crate does not depend on the engine.
pub trait SyncService: Send + Sync + 'static {
    /// Fetches and applies `source` now, waiting for the outcome.
    fn sync_now<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<SyncReport, SyncError>>;
}

/// The outcome of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Revision tried.
    pub revision: String,
    /// `Applied`, `Unchanged`, `Rejected` or `Failed`.
    pub result: String,
    /// Human-readable summary (errors with file:line for rejected revisions).
    pub message: String,
}

/// Why a sync could not run.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// No such Git source.
    #[error("GitSource {0:?} not found")]
    UnknownSource(String),
    /// The engine cannot take the request now (stopping, or busy beyond its queue).
    #[error("{0}")]
    Unavailable(String),
    /// The engine failed internally (logged, answered generically).
    #[error("sync failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Argo CD's vocabulary; `UNKNOWN` before the first sync.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStatus {
    /// Never synced.
    Unknown,
    /// The database matches the applied revision.
    Synced,
    /// A newer revision exists, or objects drifted from Git.
    OutOfSync,
    /// The last attempt was rejected or failed; the last good revision stays applied.
    Failed,
    /// The newest revision would prune past the source's limits (every object, or more than
    /// `pruneLimit` percent): held, nothing applied, until `approvePrune` names it.
    PruneHeld,
}

impl From<StoreStatus> for SyncStatus {
    fn from(s: StoreStatus) -> Self {
        match s {
            StoreStatus::Unknown => SyncStatus::Unknown,
            StoreStatus::Synced => SyncStatus::Synced,
            StoreStatus::OutOfSync => SyncStatus::OutOfSync,
            StoreStatus::Failed => SyncStatus::Failed,
            StoreStatus::PruneHeld => SyncStatus::PruneHeld,
        }
    }
}

/// Created/updated/deleted counts of one kind in one sync.
#[derive(SimpleObject, Debug, Clone)]
pub struct KindCount {
    /// `Cluster`, `Link`, `ExportPolicy`…
    pub kind: String,
    /// Created.
    pub created: i32,
    /// Updated.
    pub updated: i32,
    /// Deleted.
    pub deleted: i32,
}

/// One sync attempt.
#[derive(SimpleObject, Debug, Clone)]
pub struct SyncAttempt {
    /// Row id.
    pub id: i64,
    /// Revision tried.
    pub revision: String,
    /// Commit author.
    pub author: String,
    /// Commit message.
    pub message: String,
    /// `startup`, `poll`, `webhook`, `manual`, `pin` or `self-heal`.
    pub trigger: String,
    /// `Applied`, `Unchanged`, `Rejected` or `Failed`.
    pub result: String,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// Duration.
    pub duration_ms: i64,
    /// Changes per kind.
    pub counts: Vec<KindCount>,
    /// `path/file.yaml:line:col: message` for rejected revisions.
    pub errors: Vec<String>,
}

impl From<StoreRecord> for SyncAttempt {
    fn from(r: StoreRecord) -> Self {
        SyncAttempt {
            id: r.id,
            counts: r
                .counts
                .iter()
                .map(|(kind, c)| KindCount {
                    kind: kind.clone(),
                    created: c.created,
                    updated: c.updated,
                    deleted: c.deleted,
                })
                .collect(),
            revision: r.revision,
            author: r.author,
            message: r.message,
            trigger: r.trigger,
            result: r.result,
            started_at: r.started_at,
            duration_ms: r.duration_ms,
            errors: r.errors,
        }
    }
}

/// One field that differs between Git and the database.
#[derive(SimpleObject, Debug, Clone)]
pub struct DriftField {
    /// Field path, e.g. `spec.gateway.port`.
    pub path: String,
    /// Value declared in Git, as JSON (`null` when absent).
    pub desired: String,
    /// Value in the database, as JSON (`null` when absent).
    pub actual: String,
}

/// An object that drifted from what Git declares.
#[derive(Debug, Clone)]
pub struct DriftItem(pub DriftEntry);

#[Object]
impl DriftItem {
    /// `Cluster`, `Link` or `ExportPolicy`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// Object name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// `Modified`, `Deleted` or `OwnerChanged`.
    async fn change(&self) -> &str {
        &self.0.change
    }
    /// When the engine found it.
    async fn detected_at(&self) -> DateTime<Utc> {
        self.0.detected_at
    }
    /// The differing fields with both values (operator role: values may name where credentials
    /// live).
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn fields(&self) -> Vec<DriftField> {
        self.0
            .diff
            .iter()
            .map(|d| DriftField {
                path: d.path.clone(),
                desired: d.desired.to_string(),
                actual: d.actual.to_string(),
            })
            .collect()
    }
}

/// Removes `user:password@` from a URL so a token embedded in it is never shown.
pub(crate) fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://{host}{path}"),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

/// A Git repository declaring clusters, links and policies.
#[derive(Clone)]
pub struct GitSourceNode(pub SourceState);

#[Object(name = "GitSource")]
impl GitSourceNode {
    /// Name.
    async fn name(&self) -> &str {
        &self.0.source.name
    }
    /// Repository URL, with any embedded credentials removed.
    async fn url(&self) -> String {
        redact_url(&self.0.source.spec.url)
    }
    /// `branch:<name>`, `tag:<name>` or `commit:<sha>`.
    async fn git_ref(&self) -> String {
        match &self.0.source.spec.git_ref {
            GitRef::Branch(b) => format!("branch:{b}"),
            GitRef::Tag(t) => format!("tag:{t}"),
            GitRef::Commit(c) => format!("commit:{c}"),
        }
    }
    /// Directory inside the repository.
    async fn path(&self) -> &str {
        &self.0.source.spec.path
    }
    /// Poll interval, e.g. `1m`.
    async fn poll_interval(&self) -> String {
        self.0.source.spec.poll_interval.to_string()
    }
    /// Whether drift is reverted automatically.
    async fn self_heal(&self) -> bool {
        self.0.source.spec.self_heal
    }
    /// The commit the source is held at, if pinned.
    async fn pinned_revision(&self) -> Option<&str> {
        self.0.pinned_revision.as_deref()
    }
    /// Whether syncing is suspended (`suspendGitSource`).
    // STUB (cli-17): always false until the API branch's suspend lands; drop this resolver then.
    // Hidden from introspection like the stub mutations (domain/operator_stub.rs).
    #[graphql(visible = false)]
    async fn suspended(&self) -> bool {
        false
    }

    /// Sync status (`OUT_OF_SYNC` covers drift the engine detected).
    async fn status(&self) -> SyncStatus {
        self.0.status.into()
    }
    /// Whether the database drifted from (or lags) Git, per the engine's last check.
    async fn drifted(&self) -> bool {
        self.0.status == StoreStatus::OutOfSync
    }
    /// Objects changed outside Git since the last sync (reverted when `selfHeal`).
    async fn drift(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<DriftItem>> {
        let entries = loader(ctx)?
            .load_one(DriftOf(self.0.source.name.clone()))
            .await?
            .unwrap_or_default();
        Ok(entries.into_iter().map(DriftItem).collect())
    }
    /// Last revision applied successfully.
    async fn last_applied_revision(&self) -> Option<&str> {
        self.0.last_applied_revision.as_deref()
    }
    /// Last revision tried.
    async fn last_attempted_revision(&self) -> Option<&str> {
        self.0.last_attempted_revision.as_deref()
    }
    /// Last error, with file:line locations.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// When the last attempt finished.
    async fn last_synced_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_synced_at
    }
    /// Newest sync attempts first (at most 50 are kept).
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] limit: i32,
    ) -> async_graphql::Result<Vec<SyncAttempt>> {
        if !(1..=50).contains(&limit) {
            return Err(ApiError::BadUserInput("`limit` must be between 1 and 50".into()).into());
        }
        let rows = loader(ctx)?
            .load_one(HistoryOf(self.0.source.name.clone(), i64::from(limit)))
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

/// Git queries.
#[derive(Default)]
pub struct GitQuery;

#[Object]
impl GitQuery {
    /// Every Git source, by name.
    #[graphql(complexity = "paged_complexity(first, child_complexity)")]
    async fn git_sources(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, GitSourceNode>> {
        let all = one!(db(ctx)?, |c| git_sources::list(c))?;
        page_sorted(
            all.into_iter().map(GitSourceNode),
            |s| s.0.source.name.clone(),
            first,
            after,
        )
    }
}

/// The answer of `syncNow`.
#[derive(SimpleObject, Debug, Clone)]
pub struct SyncNowResult {
    /// Source synced.
    pub source: String,
    /// Revision tried.
    pub revision: String,
    /// `Applied`, `Unchanged`, `Rejected` or `Failed`.
    pub result: String,
    /// Summary.
    pub message: String,
}

/// Git mutations (operator role).
#[derive(Default)]
pub struct GitMutation;

#[Object]
impl GitMutation {
    /// Fetches and applies a Git source now. `UNAVAILABLE` when no GitOps engine runs.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn sync_now(&self, ctx: &Context<'_>, source: String) -> ApiResult<SyncNowResult> {
        sync_now(ctx, source).await
    }

    /// Approves a revision held by the prune limits (status `PRUNE_HELD`; the plan is in
    /// `lastError` and the history) and syncs the source now. Only that commit is approved: a
    /// later one that prunes as much is held again. `revision` is the full commit id.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn approve_prune(
        &self,
        ctx: &Context<'_>,
        source: String,
        revision: String,
    ) -> ApiResult<SyncNowResult> {
        if !(7..=64).contains(&revision.len()) || !revision.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::BadUserInput(format!(
                "revision {revision:?} must be a full commit id (hexadecimal)"
            )));
        }
        let db = db(ctx)?;
        let state = one!(db, |c| git_sources::get(c, &source))?
            .ok_or_else(|| ApiError::NotFound(format!("GitSource {source:?} not found")))?;
        if state.last_attempted_revision.as_deref() != Some(revision.as_str()) {
            return Err(ApiError::Conflict(format!(
                "revision {revision} is not the one GitSource {source:?} last attempted \
                 ({}); approve the held revision by its full id",
                state.last_attempted_revision.as_deref().unwrap_or("none")
            )));
        }
        one!(db, |c| git_sources::approve_prune(c, &source, &revision))?;
        tracing::warn!(%source, %revision, "prune past the limits approved through the API");
        sync_now(ctx, source).await
    }
}

/// Runs a sync through the GitOps engine and answers its outcome.
async fn sync_now(ctx: &Context<'_>, source: String) -> ApiResult<SyncNowResult> {
    let sync = ctx
        .data_opt::<ApiContext>()
        .and_then(|c| c.sync.clone())
        .ok_or_else(|| ApiError::Unavailable("the GitOps engine is not running".into()))?;
    match sync.sync_now(&source).await {
        Ok(r) => Ok(SyncNowResult {
            source,
            revision: r.revision,
            result: r.result,
            message: r.message,
        }),
        Err(SyncError::UnknownSource(s)) => {
            Err(ApiError::NotFound(format!("GitSource {s:?} not found")))
        }
        Err(SyncError::Unavailable(m)) => Err(ApiError::Unavailable(m)),
        Err(e @ SyncError::Failed(_)) => Err(ApiError::internal(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_url("https://user:tok@git.example.com/org/repo.git"),
            "https://git.example.com/org/repo.git"
        );
        assert_eq!(redact_url("file:///tmp/repo"), "file:///tmp/repo");
        assert_eq!(redact_url("/tmp/repo"), "/tmp/repo");
    }
}
