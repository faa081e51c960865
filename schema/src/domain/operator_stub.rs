//! STUB (branch cli-17): placeholders for the operator mutations the API branch implements
//! (`pinGitSource`, `unpinGitSource`, `suspendGitSource`, `resumeGitSource`), so the CLI's typed
//! queries compile against the committed SDL. Each checks the operator role and answers
//! `UNAVAILABLE`, and is hidden from introspection (`visible = false`; the SDL export still
//! lists it) so that clients which feature-detect, such as the dashboard and its browser tests,
//! behave as if the mutations were absent. Delete this module (and its line in `Mutation`, `domain/mod.rs` and the
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
    #[graphql(guard = "RoleGuard(Role::Operator)", visible = false)]
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
    #[graphql(guard = "RoleGuard(Role::Operator)", visible = false)]
    async fn unpin_git_source(
        &self,
        _ctx: &Context<'_>,
        source: String,
    ) -> ApiResult<GitSourceNode> {
        let _ = source;
        Err(not_here("unpinGitSource"))
    }

    /// Stops syncing a Git source (polls, webhooks and self-heal) until `resumeGitSource`.
    #[graphql(guard = "RoleGuard(Role::Operator)", visible = false)]
    async fn suspend_git_source(
        &self,
        _ctx: &Context<'_>,
        source: String,
    ) -> ApiResult<GitSourceNode> {
        let _ = source;
        Err(not_here("suspendGitSource"))
    }

    /// Syncs a suspended Git source again.
    #[graphql(guard = "RoleGuard(Role::Operator)", visible = false)]
    async fn resume_git_source(
        &self,
        _ctx: &Context<'_>,
        source: String,
    ) -> ApiResult<GitSourceNode> {
        let _ = source;
        Err(not_here("resumeGitSource"))
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn stubs_are_in_the_sdl_but_hidden_from_introspection() {
        let sdl = crate::sdl();
        assert!(sdl.contains("pinGitSource(source: String!, revision: String!): GitSource!"));
        assert!(sdl.contains("suspended: Boolean!"));
        let schema = crate::builder().finish();
        let resp = schema
            .execute(r#"{ m: __type(name: "Mutation") { fields { name } } g: __type(name: "GitSource") { fields { name } } }"#)
            .await;
        let text = serde_json::to_string(&resp.data).unwrap_or_default();
        for hidden in [
            "pinGitSource",
            "unpinGitSource",
            "suspendGitSource",
            "resumeGitSource",
            "\"suspended\"",
        ] {
            assert!(!text.contains(hidden), "{hidden} visible in {text}");
        }
        assert!(text.contains("syncNow"), "{text}");
    }
}
