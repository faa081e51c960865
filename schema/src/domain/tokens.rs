//! Token management for admins (list metadata, revoke) and `whoami` for every caller. Tokens are
//! created only with the CLI (`linkplane token create`), so no field ever returns a secret.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use linkplane_store::tokens::{self, TokenInfo};

use crate::{
    auth::{Role, RoleGuard, require},
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

/// Who is calling: what `linkplane whoami` and `linkplane login` show.
#[derive(SimpleObject, Debug, Clone)]
pub struct Caller {
    /// The token's id; null for in-process callers that hold no token.
    pub token_id: Option<ID>,
    /// The token's label (empty when it has none).
    pub name: String,
    /// What the token may do.
    pub role: Role,
}

/// Token queries (`whoami` for any caller; the rest admin role).
#[derive(Default)]
pub struct TokenQuery;

#[Object]
impl TokenQuery {
    /// The calling token's name and role (any role: a client checks its credentials with it).
    async fn whoami(&self, ctx: &Context<'_>) -> ApiResult<Caller> {
        let principal = require(ctx, Role::Viewer)?;
        let Some(id) = principal.token_id else {
            return Ok(Caller {
                token_id: None,
                name: String::new(),
                role: principal.role,
            });
        };
        // The role comes from the authenticated principal, not the row: the request was
        // authorized with it.
        let name = one!(db(ctx)?, |c| tokens::get(c, id))?
            .map(|t| t.name)
            .unwrap_or_default();
        Ok(Caller {
            token_id: Some(ID(id.to_string())),
            name,
            role: principal.role,
        })
    }

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
