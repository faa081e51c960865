//! STUB (branch cli-17): placeholders for the operator mutations the API branch implements
//! (`pinGitSource`, `unpinGitSource`, `suspendGitSource`, `resumeGitSource`), so the CLI's typed
//! queries compile against the committed SDL. Each checks the operator role and answers
//! `UNAVAILABLE`. Delete this module (and its line in `Mutation`, `domain/mod.rs` and the
//! `suspended` stub in `domain/git.rs`) when merging the real ones.

use async_graphql::{Context, Object};

use crate::{
    auth::{Role, RoleGuard},
    domain::git::GitSourceNode,
    error::{ApiError, ApiResult},
};

/// Placeholder operator mutations on Git sources (operator role).
#[derive(Default)]
pub struct OperatorStubMutation;

fn not_here(what: &str) -> ApiError {
    ApiError::Unavailable(format!("{what} is not implemented by this server"))
}

#[Object]
impl OperatorStubMutation {
    /// Holds a Git source at `revision` (a rollback) until `unpinGitSource`.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn pin_git_source(
        &self,
        _ctx: &Context<'_>,
        source: String,
        revision: String,
    ) -> ApiResult<GitSourceNode> {
        let _ = (source, revision);
        Err(not_here("pinGitSource"))
    }

    /// Lets a pinned Git source follow its ref again.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn unpin_git_source(
        &self,
        _ctx: &Context<'_>,
        source: String,
    ) -> ApiResult<GitSourceNode> {
        let _ = source;
        Err(not_here("unpinGitSource"))
    }

    /// Stops syncing a Git source (polls, webhooks and self-heal) until `resumeGitSource`.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn suspend_git_source(
        &self,
        _ctx: &Context<'_>,
        source: String,
    ) -> ApiResult<GitSourceNode> {
        let _ = source;
        Err(not_here("suspendGitSource"))
    }

    /// Syncs a suspended Git source again.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn resume_git_source(
        &self,
        _ctx: &Context<'_>,
        source: String,
    ) -> ApiResult<GitSourceNode> {
        let _ = source;
        Err(not_here("resumeGitSource"))
    }
}
