//! Bearer-token authentication: every API route but health, metrics and the webhooks.

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use linkplane_schema::{Principal, codes};
use linkplane_store::{Store, tokens};
use serde_json::json;

use super::AppState;

/// Why a request is not authenticated.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// No or malformed `Authorization` header / payload.
    Missing,
    /// Unknown or revoked token.
    Invalid,
    /// The database could not be asked.
    Unavailable,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Denied::Missing => (
                StatusCode::UNAUTHORIZED,
                codes::UNAUTHENTICATED,
                "authentication required: send `Authorization: Bearer <token>`",
            ),
            Denied::Invalid => (
                StatusCode::UNAUTHORIZED,
                codes::UNAUTHENTICATED,
                "invalid or revoked token",
            ),
            Denied::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                codes::UNAVAILABLE,
                "cannot verify the token right now",
            ),
        };
        let body = Json(json!({"errors": [{"message": message, "extensions": {"code": code}}]}));
        let mut resp = (status, body).into_response();
        if status == StatusCode::UNAUTHORIZED
            && let Ok(v) = header::HeaderValue::from_str("Bearer realm=\"linkplane\"")
        {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

/// The token of an `Authorization: Bearer <token>` value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The bearer token of a request's headers.
pub fn bearer_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
}

/// Looks a token up.
pub async fn authenticate(store: &Store, token: &str) -> Result<Principal, Denied> {
    let mut conn = store.acquire().await.map_err(|e| {
        tracing::warn!(error = %e, "authentication: database unavailable");
        Denied::Unavailable
    })?;
    match tokens::authenticate(&mut conn, token).await {
        Ok(Some(who)) => Ok(Principal {
            token_id: Some(who.id),
            role: who.role.into(),
        }),
        Ok(None) => Err(Denied::Invalid),
        Err(e) => {
            tracing::warn!(error = %e, "authentication: token lookup failed");
            Err(Denied::Unavailable)
        }
    }
}

/// Middleware: 401 without a valid token; otherwise the caller's [`Principal`] goes into the
/// request extensions.
pub async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer_header(req.headers()) else {
        return Denied::Missing.into_response();
    };
    match authenticate(&state.store, token).await {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(denied) => denied.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_values_parse() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer   abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("abc"), None);
    }
}
