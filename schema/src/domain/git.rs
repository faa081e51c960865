//! Git sources with status and history, and the `syncNow` mutation.

use std::{future::Future, pin::Pin};

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, connection::Connection};
use chrono::{DateTime, Utc};
use linkplane_core::{Duration, GitAuth, GitRef, GitSource, GitSourceSpec};
use linkplane_store::{
    git_sources::{self, SourceState, SyncStatus as StoreStatus},
    gitops::DriftEntry,
    sync_history::SyncRecord as StoreRecord,
};

use crate::{
    ApiContext,
    auth::{Role, RoleGuard},
    common::{Total, db, loader, page_sorted_both, with_fields},
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

    /// Plans `revision` (a commit, branch or tag) of `source` without applying it.
    fn plan_revision<'a>(
        &'a self,
        source: &'a str,
        revision: &'a str,
    ) -> BoxFuture<'a, Result<PlannedRevision, SyncError>> {
        let _ = (source, revision);
        Box::pin(async {
            Err(SyncError::Unavailable(
                "this engine cannot plan revisions".into(),
            ))
        })
    }

    /// Fetches `source`'s ref now: `Ok(commit)`, or `Err(why)` when Git cannot be reached.
    fn check_remote<'a>(
        &'a self,
        source: &'a str,
    ) -> BoxFuture<'a, Result<Result<String, String>, SyncError>> {
        let _ = source;
        Box::pin(async {
            Err(SyncError::Unavailable(
                "this engine cannot check Git".into(),
            ))
        })
    }
}

/// A planned revision, as the engine reports it ([`SyncService::plan_revision`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRevision {
    /// Full commit id.
    pub revision: String,
    /// Commit author.
    pub author: String,
    /// Commit message's first line.
    pub message: String,
    /// Object by object: (kind, name, `Create`/`Update`/`Delete`, fields as (path, desired
    /// JSON, actual JSON)).
    pub changes: Vec<PlannedObject>,
    /// Why the engine would refuse it (conflicts, or the revision's diagnostics at
    /// file:line:col); empty when it would apply.
    pub errors: Vec<String>,
}

/// One object of a [`PlannedRevision`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedObject {
    /// The object's kind.
    pub kind: linkplane_core::status::ObjectKind,
    /// Name.
    pub name: String,
    /// What the revision does to it.
    pub change: linkplane_core::status::PlanChange,
    /// (path, desired JSON, actual JSON).
    pub fields: Vec<(String, serde_json::Value, serde_json::Value)>,
}

/// The outcome of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Revision tried.
    pub revision: String,
    /// What the sync did.
    pub result: linkplane_core::status::SyncResult,
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
    /// The revision is no commit, branch or tag of the source (`BAD_USER_INPUT`).
    #[error("{0}")]
    UnknownRevision(String),
    /// The engine failed internally (logged, answered generically).
    #[error("sync failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Argo CD's vocabulary; `UNKNOWN` before the first sync.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "linkplane_core::status::SyncStatus")]
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

/// What a sync attempt did (`sync_history.result`, the GitOps engine's `SyncResult`).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "linkplane_core::status::SyncResult")]
pub enum SyncResult {
    /// The revision was applied (something was written).
    Applied,
    /// The revision was already applied; drift was checked.
    Unchanged,
    /// The revision was invalid; nothing was written.
    Rejected,
    /// Git or the database failed; nothing was written.
    Failed,
    /// Not attempted: the commit was rejected before and has not changed, or the source is
    /// suspended (answers of `syncNow` only; never recorded in the history).
    Skipped,
    /// The revision would prune past the source's limits: held until approved.
    Held,
}

/// What started a sync attempt (`sync_history.trigger`).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "linkplane_core::status::Trigger")]
pub enum SyncTrigger {
    /// The server started.
    Startup,
    /// The poll interval passed.
    Poll,
    /// A push webhook arrived.
    Webhook,
    /// An operator asked (`syncNow`, `approvePrune`, a spec change).
    Manual,
    /// The pin was set or cleared.
    Pin,
    /// Drift was reverted.
    SelfHeal,
}

/// The kinds of object a Git source declares.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "linkplane_core::status::ObjectKind")]
pub enum ObjectKind {
    /// A `Cluster`.
    Cluster,
    /// A `Link`.
    Link,
    /// An `ExportPolicy`.
    ExportPolicy,
}

/// How an object drifted from Git.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "linkplane_core::status::DriftChange")]
pub enum DriftChange {
    /// Its spec differs from what Git declares.
    Modified,
    /// It was deleted outside Git.
    Deleted,
    /// Another owner took it over.
    OwnerChanged,
}

/// Created/updated/deleted counts of one kind in one sync.
#[derive(SimpleObject, Debug, Clone)]
pub struct KindCount {
    /// The kind.
    pub kind: ObjectKind,
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
    /// What started it.
    pub trigger: SyncTrigger,
    /// What it did.
    pub result: SyncResult,
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
                    kind: (*kind).into(),
                    created: c.created,
                    updated: c.updated,
                    deleted: c.deleted,
                })
                .collect(),
            trigger: r.trigger.into(),
            result: r.result.into(),
            revision: r.revision,
            author: r.author,
            message: r.message,
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
    /// True when a viewer asked and the values (or the part of them under
    /// `spec.credentials`, which names where a kubeconfig lives) read `"<redacted>"`.
    pub redacted: bool,
}

/// The path under which a cluster's credentials reference lives; its values are shown to
/// operators only, like `Cluster.credentials`.
const CREDENTIALS_PATH: [&str; 2] = ["spec", "credentials"];

/// `value` at `path` with whatever lies under [`CREDENTIALS_PATH`] replaced by
/// `"<redacted>"`; `true` when something was replaced.
pub(crate) fn redact_credentials(
    path: &str,
    value: &serde_json::Value,
) -> (serde_json::Value, bool) {
    let at: Vec<&str> = path.split('.').filter(|p| !p.is_empty()).collect();
    let shared = at
        .iter()
        .zip(CREDENTIALS_PATH)
        .take_while(|(a, b)| *a == b)
        .count();
    if shared == CREDENTIALS_PATH.len() {
        // At or below the credentials: the whole value.
        return (serde_json::Value::String("<redacted>".into()), true);
    }
    if shared < at.len() {
        // A different branch (`spec.gateway…`).
        return (value.clone(), false);
    }
    // Above the credentials (`spec`, or the whole object): redact the subtree inside.
    let mut out = value.clone();
    let mut node = &mut out;
    for key in &CREDENTIALS_PATH[shared..CREDENTIALS_PATH.len() - 1] {
        match node.get_mut(*key) {
            Some(next) => node = next,
            None => return (out, false),
        }
    }
    let last = CREDENTIALS_PATH[CREDENTIALS_PATH.len() - 1];
    match node.as_object_mut().and_then(|o| o.get_mut(last)) {
        Some(v) => {
            *v = serde_json::Value::String("<redacted>".into());
            (out, true)
        }
        None => (out, false),
    }
}

/// An object that drifted from what Git declares.
#[derive(Debug, Clone)]
pub struct DriftItem(pub DriftEntry);

#[Object]
impl DriftItem {
    /// The kind (`null` only for a kind this server does not know).
    async fn kind(&self) -> Option<ObjectKind> {
        Some(self.0.kind.into())
    }
    /// Object name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// How it drifted.
    async fn change(&self) -> DriftChange {
        self.0.change.into()
    }
    /// When the engine found it.
    async fn detected_at(&self) -> DateTime<Utc> {
        self.0.detected_at
    }
    /// The differing fields with both values. Drift is viewable by every role; for viewers the
    /// values under `spec.credentials` (which name where a kubeconfig lives) read
    /// `"<redacted>"` and the field says `redacted`.
    async fn fields(&self, ctx: &Context<'_>) -> Option<Vec<DriftField>> {
        let operator = crate::auth::require(ctx, Role::Operator).is_ok();
        Some(
            self.0
                .diff
                .iter()
                .map(|d| {
                    if operator {
                        return DriftField {
                            path: d.path.clone(),
                            desired: d.desired.to_string(),
                            actual: d.actual.to_string(),
                            redacted: false,
                        };
                    }
                    let (desired, a) = redact_credentials(&d.path, &d.desired);
                    let (actual, b) = redact_credentials(&d.path, &d.actual);
                    DriftField {
                        path: d.path.clone(),
                        desired: desired.to_string(),
                        actual: actual.to_string(),
                        redacted: a || b,
                    }
                })
                .collect(),
        )
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
    /// Global id (`GitSource:<name>`), for `node(id:)`.
    pub(crate) async fn id(&self) -> async_graphql::ID {
        crate::domain::node::global_id("GitSource", &self.0.source.name)
    }
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
    /// The commit the source is held at, if pinned (`pinGitSource`; `unpinGitSource` follows
    /// `gitRef` again).
    async fn pinned_revision(&self) -> Option<&str> {
        self.0.pinned_revision.as_deref()
    }
    /// Whether automatic syncs (startup, poll, webhook, self-heal) are suspended
    /// (`suspendGitSource`); `syncNow` and pins still sync it.
    async fn suspended(&self) -> bool {
        self.0.suspended
    }
    /// Declared by the server's `--git-*` flags: `updateGitSource` and `removeGitSource`
    /// answer `READ_ONLY` (pin, suspend and sync still work).
    async fn read_only(&self) -> bool {
        self.0.declared_by_flags
    }
    /// Whether a revision may delete every object of the source.
    async fn allow_empty(&self) -> bool {
        self.0.source.spec.allow_empty
    }
    /// Largest share (percent) of the source's objects one revision may delete unapproved.
    async fn prune_limit(&self) -> i32 {
        i32::from(self.0.source.spec.prune_limit)
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
    /// What applying `revision` (a commit id, possibly abbreviated, a branch or a tag of the
    /// source's repository) would change, field by field, without applying it: the GitOps
    /// engine fetches, reads and plans it as a sync would. `BAD_USER_INPUT` for a revision
    /// the repository does not have; `UNAVAILABLE` without an engine.
    async fn plan(&self, ctx: &Context<'_>, revision: String) -> ApiResult<RevisionPlan> {
        let sync = ctx
            .data_opt::<ApiContext>()
            .and_then(|a| a.sync.clone())
            .ok_or_else(|| ApiError::Unavailable("the GitOps engine is not running".into()))?;
        let operator = crate::auth::require(ctx, Role::Operator).is_ok();
        let p = sync
            .plan_revision(&self.0.source.name, &revision)
            .await
            .map_err(sync_error)?;
        let changes: Vec<PlannedChange> = p
            .changes
            .into_iter()
            .map(|c| PlannedChange {
                kind: Some(c.kind.into()),
                change: c.change.into(),
                name: c.name,
                fields: c
                    .fields
                    .into_iter()
                    .map(|(path, d, a)| {
                        let ((d, rd), (a, ra)) = if operator {
                            ((d, false), (a, false))
                        } else {
                            (redact_credentials(&path, &d), redact_credentials(&path, &a))
                        };
                        DriftField {
                            desired: d.to_string(),
                            actual: a.to_string(),
                            redacted: rd || ra,
                            path,
                        }
                    })
                    .collect(),
            })
            .collect();
        Ok(RevisionPlan {
            requested: revision,
            noop: changes.is_empty(),
            revision: p.revision,
            author: p.author,
            message: p.message,
            changes,
            errors: p.errors,
        })
    }
    /// Fetches the source's ref now and says whether Git answered (what `linkplane check`
    /// reports as "Git reachable"). Costs a fetch: not for dashboards to poll.
    async fn reachability(&self, ctx: &Context<'_>) -> ApiResult<GitReachability> {
        let sync = ctx
            .data_opt::<ApiContext>()
            .and_then(|a| a.sync.clone())
            .ok_or_else(|| ApiError::Unavailable("the GitOps engine is not running".into()))?;
        Ok(
            match sync
                .check_remote(&self.0.source.name)
                .await
                .map_err(sync_error)?
            {
                Ok(commit) => GitReachability {
                    reachable: true,
                    revision: Some(commit),
                    error: None,
                },
                Err(why) => GitReachability {
                    reachable: false,
                    revision: None,
                    error: Some(why),
                },
            },
        )
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
    /// Every Git source, by name (`first`/`after` forward, `last`/`before` backward).
    #[graphql(complexity = "crate::relay::complexity(first, last, child_complexity)")]
    async fn git_sources(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Connection<String, GitSourceNode, Total>> {
        let all = one!(db(ctx)?, |c| git_sources::list(c))?;
        let total = Total {
            total_count: all.len() as i64,
        };
        page_sorted_both(
            all.into_iter().map(GitSourceNode),
            |s| s.0.source.name.clone(),
            first,
            after,
            last,
            before,
        )
        .map(|page| with_fields(page, total))
    }
}

/// The answer of `syncNow`.
#[derive(SimpleObject, Debug, Clone)]
pub struct SyncNowResult {
    /// Source synced.
    pub source: String,
    /// Revision tried.
    pub revision: String,
    /// What the sync did.
    pub result: SyncResult,
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

/// A Git source's spec, as `addGitSource` and `updateGitSource` take it.
#[derive(InputObject, Debug, Clone)]
pub struct GitSourceInput {
    /// DNS-1123 label, unique among sources; objects synced from it are owned by
    /// `git:<name>`. `updateGitSource` cannot rename: it must equal its `name` argument.
    pub name: String,
    /// A local path, `file://`, `https://` or `ssh://` URL (no `user:password@`).
    pub url: String,
    /// `branch:<name>`, `tag:<name>` or `commit:<sha>`.
    #[graphql(default_with = "\"branch:main\".to_string()")]
    pub git_ref: String,
    /// Directory inside the repository holding the manifests.
    #[graphql(default_with = "\".\".to_string()")]
    pub path: String,
    /// How often to fetch when no webhook arrives, e.g. `60s`, `5m`.
    #[graphql(default_with = "\"60s\".to_string()")]
    pub poll_interval: String,
    /// Revert changes made outside Git instead of only reporting them.
    #[graphql(default)]
    pub self_heal: bool,
    /// Let a revision delete every object of the source.
    #[graphql(default)]
    pub allow_empty: bool,
    /// Largest share (percent, 1–100) of the source's objects one revision may delete
    /// without approval.
    #[graphql(default_with = "i32::from(linkplane_core::git_source::default_prune_limit())")]
    pub prune_limit: i32,
    /// Credentials by reference (admin role: they name files and variables of the server).
    pub auth: Option<GitAuthInput>,
}

/// Where the server finds a private repository's credentials (never the credentials).
#[derive(InputObject, Debug, Clone)]
pub struct GitAuthInput {
    /// File holding an HTTPS token.
    pub token_file: Option<String>,
    /// Environment variable holding an HTTPS token.
    pub token_env: Option<String>,
    /// SSH private key file for `ssh://` URLs.
    pub ssh_key_file: Option<String>,
}

impl GitSourceInput {
    /// The domain source, validated like a manifest.
    fn into_source(self) -> ApiResult<GitSource> {
        let git_ref = GitRef::parse(&self.git_ref).ok_or_else(|| {
            ApiError::BadUserInput(format!(
                "gitRef {:?} must be branch:<name>, tag:<name> or commit:<sha>",
                self.git_ref
            ))
        })?;
        let poll_interval: Duration = self.poll_interval.parse().map_err(|e| {
            ApiError::BadUserInput(format!("pollInterval {:?}: {e}", self.poll_interval))
        })?;
        let prune_limit = u8::try_from(self.prune_limit)
            .ok()
            .filter(|p| (1..=100).contains(p))
            .ok_or_else(|| ApiError::BadUserInput("pruneLimit must be between 1 and 100".into()))?;
        if redact_url(&self.url) != self.url {
            return Err(ApiError::BadUserInput(
                "url must not embed credentials (user:password@); use auth".into(),
            ));
        }
        let source = GitSource {
            name: self.name,
            spec: GitSourceSpec {
                url: self.url,
                git_ref,
                path: self.path,
                poll_interval,
                self_heal: self.self_heal,
                auth: self.auth.map(|a| GitAuth {
                    token_file: a.token_file,
                    token_env: a.token_env,
                    ssh_key_file: a.ssh_key_file,
                }),
                allow_empty: self.allow_empty,
                prune_limit,
            },
        };
        source
            .validate()
            .map_err(|e| ApiError::BadUserInput(format!("invalid GitSource: {e}")))?;
        Ok(source)
    }
}

/// `auth` names files and environment variables of the server: an operator could point a
/// token file at the server's own secrets and a URL at their host, so only admins set it.
fn check_auth(ctx: &Context<'_>, input: &GitSourceInput) -> ApiResult<()> {
    if input.auth.is_some() {
        crate::auth::require(ctx, Role::Admin)?;
    }
    Ok(())
}

/// The source `name`, or `NOT_FOUND`.
async fn source_state(ctx: &Context<'_>, name: &str) -> ApiResult<SourceState> {
    one!(db(ctx)?, |c| git_sources::get(c, name))?
        .ok_or_else(|| ApiError::NotFound(format!("GitSource {name:?} not found")))
}

/// `READ_ONLY` for a source the server's flags declare.
fn writable(state: &SourceState) -> ApiResult<()> {
    if state.declared_by_flags {
        return Err(ApiError::ReadOnly(format!(
            "GitSource {:?} is declared by the server's --git-* flags; change the flags \
             (pin, suspend and sync work through the API)",
            state.source.name
        )));
    }
    Ok(())
}

/// Validates a revision argument: a commit id, abbreviated (7+) or full.
fn commit_id(revision: &str) -> ApiResult<()> {
    if !(7..=64).contains(&revision.len()) || !revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::BadUserInput(format!(
            "revision {revision:?} must be a commit id (7 to 64 hexadecimal digits)"
        )));
    }
    Ok(())
}

/// Git source administration (operator role).
#[derive(Default)]
pub struct GitSourceMutation;

#[Object]
impl GitSourceMutation {
    /// Adds a Git source; the GitOps engine starts syncing it at once. `CONFLICT` when the
    /// name is taken. Setting `auth` needs the admin role.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn add_git_source(
        &self,
        ctx: &Context<'_>,
        input: GitSourceInput,
    ) -> ApiResult<GitSourceNode> {
        check_auth(ctx, &input)?;
        let source = input.into_source()?;
        one!(db(ctx)?, |c| git_sources::insert(c, &source))?;
        tracing::info!(source = %source.name, "Git source added through the API");
        Ok(GitSourceNode(source_state(ctx, &source.name).await?))
    }

    /// Replaces a source's spec (its pin, suspension, status and history stay); the engine
    /// syncs the new spec at once. `READ_ONLY` for the flag-declared source.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn update_git_source(
        &self,
        ctx: &Context<'_>,
        name: String,
        input: GitSourceInput,
    ) -> ApiResult<GitSourceNode> {
        if input.name != name {
            return Err(ApiError::BadUserInput(format!(
                "input.name {:?} differs from name {name:?}: sources cannot be renamed \
                 (add a new one and remove this one)",
                input.name
            )));
        }
        check_auth(ctx, &input)?;
        writable(&source_state(ctx, &name).await?)?;
        let source = input.into_source()?;
        one!(db(ctx)?, |c| git_sources::update_spec(c, &source)).map_err(|e| match e {
            // Became flag-declared in between.
            ApiError::BadUserInput(m) => ApiError::ReadOnly(m),
            other => other,
        })?;
        Ok(GitSourceNode(source_state(ctx, &name).await?))
    }

    /// Removes a source with its history and drift records. The objects it declared stay
    /// (owned by `git:<name>`, no longer synced). `READ_ONLY` for the flag-declared source.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn remove_git_source(&self, ctx: &Context<'_>, name: String) -> ApiResult<bool> {
        writable(&source_state(ctx, &name).await?)?;
        let removed = one!(db(ctx)?, |c| git_sources::delete(c, &name))?;
        tracing::warn!(source = %name, "Git source removed through the API");
        Ok(removed)
    }

    /// Rolls back (or forward): holds the source at `revision` instead of following `gitRef`;
    /// the engine syncs that commit at once (history trigger `PIN`). A commit that fails to
    /// fetch or validate shows as `status: FAILED` with the error.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn pin_git_source(
        &self,
        ctx: &Context<'_>,
        source: String,
        revision: String,
    ) -> ApiResult<GitSourceNode> {
        commit_id(&revision)?;
        one!(db(ctx)?, |c| git_sources::set_pin(
            c,
            &source,
            Some(&revision)
        ))?;
        tracing::info!(%source, %revision, "Git source pinned through the API");
        Ok(GitSourceNode(source_state(ctx, &source).await?))
    }

    /// Follows `gitRef` again; the engine syncs its head at once.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn unpin_git_source(
        &self,
        ctx: &Context<'_>,
        source: String,
    ) -> ApiResult<GitSourceNode> {
        one!(db(ctx)?, |c| git_sources::set_pin(c, &source, None))?;
        Ok(GitSourceNode(source_state(ctx, &source).await?))
    }

    /// Stops automatic syncs (startup, poll, webhook, self-heal) of a source; drift is still
    /// reported, and `syncNow` or a pin still sync it.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn suspend_git_source(
        &self,
        ctx: &Context<'_>,
        source: String,
    ) -> ApiResult<GitSourceNode> {
        one!(db(ctx)?, |c| git_sources::set_suspended(c, &source, true))?;
        Ok(GitSourceNode(source_state(ctx, &source).await?))
    }

    /// Resumes automatic syncs; the engine syncs the source at once.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn resume_git_source(
        &self,
        ctx: &Context<'_>,
        source: String,
    ) -> ApiResult<GitSourceNode> {
        one!(db(ctx)?, |c| git_sources::set_suspended(c, &source, false))?;
        Ok(GitSourceNode(source_state(ctx, &source).await?))
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
            result: r.result.into(),
            message: r.message,
        }),
        Err(SyncError::UnknownSource(s)) => {
            Err(ApiError::NotFound(format!("GitSource {s:?} not found")))
        }
        Err(e) => Err(sync_error(e)),
    }
}

/// The API error of an engine error.
fn sync_error(e: SyncError) -> ApiError {
    match e {
        SyncError::UnknownSource(s) => ApiError::NotFound(format!("GitSource {s:?} not found")),
        SyncError::Unavailable(m) => ApiError::Unavailable(m),
        SyncError::UnknownRevision(m) => ApiError::BadUserInput(m),
        e @ SyncError::Failed(_) => ApiError::internal(&e),
    }
}

/// How a revision changes one object (`GitSource.plan`).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "linkplane_core::status::PlanChange")]
pub enum PlanChange {
    /// Declared, not in the database yet.
    Create,
    /// Owned by the source, spec differs.
    Update,
    /// Owned by the source, no longer declared (pruned).
    Delete,
}

/// One object a revision would change.
#[derive(SimpleObject, Debug, Clone)]
pub struct PlannedChange {
    /// The kind.
    pub kind: Option<ObjectKind>,
    /// Name.
    pub name: String,
    /// What applying would do.
    pub change: PlanChange,
    /// Field by field: Git's value at the revision (`desired`) against the database's
    /// (`actual`); `spec.credentials` values redacted for viewers, as in drift.
    pub fields: Vec<DriftField>,
}

/// What applying a revision would change, planned by the GitOps engine without applying.
#[derive(SimpleObject, Debug, Clone)]
pub struct RevisionPlan {
    /// The revision asked for.
    pub requested: String,
    /// The full commit id it resolved to.
    pub revision: String,
    /// Commit author.
    pub author: String,
    /// Commit message's first line.
    pub message: String,
    /// Objects created, updated or deleted, by kind then name.
    pub changes: Vec<PlannedChange>,
    /// Why the engine would refuse the revision (file:line:col diagnostics, names managed
    /// elsewhere); empty when it would apply.
    pub errors: Vec<String>,
    /// True when applying would change nothing.
    pub noop: bool,
}

/// Whether the server reached a source's Git repository just now.
#[derive(SimpleObject, Debug, Clone)]
pub struct GitReachability {
    /// True when the fetch succeeded.
    pub reachable: bool,
    /// The commit the source's ref points at, when reachable.
    pub revision: Option<String>,
    /// Why not (URL credentials removed).
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_at_above_and_below_their_path_only() {
        let v =
            serde_json::json!({"apiServer": "https://a", "credentials": {"kubeconfigFile": "/x"}});
        let (out, hit) = redact_credentials("spec", &v);
        assert!(hit);
        assert_eq!(out["credentials"], "<redacted>");
        assert_eq!(out["apiServer"], "https://a");
        let whole = serde_json::json!({"spec": v.clone()});
        assert_eq!(
            redact_credentials("", &whole).0["spec"]["credentials"],
            "<redacted>"
        );
        assert_eq!(
            redact_credentials("spec.credentials.kubeconfigFile", &serde_json::json!("/x")),
            (serde_json::json!("<redacted>"), true)
        );
        assert_eq!(
            redact_credentials("spec.clusterDomain", &serde_json::json!("a.local")),
            (serde_json::json!("a.local"), false)
        );
    }

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
