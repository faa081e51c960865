//! Token management for admins: list metadata and revoke. Tokens are created only with the
//! CLI (`linkplane token create`), so no field ever returns a secret.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use linkplane_store::tokens::{self, TokenInfo};

use crate::{
    auth::{Role, RoleGuard},
    common::db,
    db::one,
    error::{ApiError, ApiResult},
};

/// A token's metadata.
#[derive(SimpleObject, Debug, Clone)]
pub struct ApiToken {
    /// Id (what `revokeApiToken` and `linkplane token revoke` take).
    pub id: ID,
    /// Label.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last used (refreshed at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<TokenInfo> for ApiToken {
    fn from(t: TokenInfo) -> Self {
        ApiToken {
            id: ID(t.id.to_string()),
            name: t.name,
            role: t.role.into(),
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// Token queries (admin role).
#[derive(Default)]
pub struct TokenQuery;

#[Object]
impl TokenQuery {
    /// Every token's metadata, by id.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn api_tokens(&self, ctx: &Context<'_>) -> ApiResult<Vec<ApiToken>> {
        let all = one!(db(ctx)?, |c| tokens::list(c))?;
        Ok(all.into_iter().map(Into::into).collect())
    }
}

/// Token mutations (admin role).
#[derive(Default)]
pub struct TokenMutation;

#[Object]
impl TokenMutation {
    /// Revokes a token; it never authenticates again.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn revoke_api_token(&self, ctx: &Context<'_>, id: ID) -> ApiResult<ApiToken> {
        let id: i64 = id
            .parse()
            .map_err(|_| ApiError::BadUserInput(format!("invalid token id {:?}", id.0)))?;
        let info = one!(db(ctx)?, |c| tokens::revoke(c, id))?;
        tracing::info!(token = id, "API token revoked through the API");
        Ok(info.into())
    }
}
