//! Who is asking, and the role guard every sensitive field and mutation carries.

use async_graphql::{Context, Enum, Guard};

use crate::error::ApiError;

/// A token's role, as the API shows it. Ordered by privilege.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[graphql(remote = "linkplane_core::status::Role")]
pub enum Role {
    /// Queries and subscriptions.
    Viewer,
    /// Viewer plus operational mutations.
    Operator,
    /// Operator plus token management.
    Admin,
}

impl Role {
    fn name(self) -> &'static str {
        linkplane_core::status::Role::from(self).as_str()
    }
}

/// The authenticated caller, put into each request's data by the HTTP layer. A request without
/// one is unauthenticated and every field answers `UNAUTHENTICATED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// Token id (`None` for in-process callers such as tests).
    pub token_id: Option<i64>,
    /// The role.
    pub role: Role,
}

/// Requires at least the given role.
pub struct RoleGuard(pub Role);

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        require(ctx, self.0).map(|_| ()).map_err(Into::into)
    }
}

/// Checks the caller's role inside a resolver.
pub fn require(ctx: &Context<'_>, role: Role) -> Result<Principal, ApiError> {
    let principal = ctx
        .data_opt::<Principal>()
        .copied()
        .ok_or(ApiError::Unauthenticated)?;
    if principal.role < role {
        return Err(ApiError::Forbidden(role.name()));
    }
    Ok(principal)
}
