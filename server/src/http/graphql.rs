//! `POST /graphql` and `GET /graphql/ws` (subscriptions over
//! graphql-transport-ws, or the legacy graphql-ws protocol).

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::{
    Extension,
    body::Body,
    extract::{State, WebSocketUpgrade},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use linkplane_schema::{ApiError, Principal, code_of, codes};

use super::{
    AppState,
    auth::{Denied, authenticate, bearer, bearer_header},
};

/// Executes one GraphQL request for the authenticated caller.
///
/// The body is read and decoded here rather than by an extractor, so every refusal is a
/// GraphQL-shaped JSON error with a stable `extensions.code`: a body over `--max-body-bytes`
/// answers 413 `PAYLOAD_TOO_LARGE`, a content type other than `application/json` 415
/// `BAD_REQUEST`, a body that is not a GraphQL request in JSON 400 `BAD_REQUEST` (the
/// GraphQL-over-HTTP draft's answers; never text/plain, never 5xx).
///
/// Partial results answer 200 as GraphQL expects; a request that produced no data at all answers
/// with the status of its first error's code (401, 403, 400 for rejected queries and bad input),
/// so HTTP-level tooling sees denials as denials.
pub async fn execute(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request = match decode(&headers, body, state.api.max_body_bytes).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let resp = state.api.api.execute(request, Some(principal)).await;
    let status = match resp.errors.first() {
        Some(first) if resp.data == async_graphql::Value::Null => match code_of(first) {
            codes::UNAUTHENTICATED => StatusCode::UNAUTHORIZED,
            codes::FORBIDDEN => StatusCode::FORBIDDEN,
            codes::BAD_USER_INPUT | codes::BAD_REQUEST => StatusCode::BAD_REQUEST,
            codes::NOT_FOUND => StatusCode::NOT_FOUND,
            codes::CONFLICT | codes::READ_ONLY => StatusCode::CONFLICT,
            codes::UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        _ => StatusCode::OK,
    };
    let mut out = GraphQLResponse::from(resp).into_response();
    *out.status_mut() = status;
    out
}

/// Reads and decodes a `POST /graphql` body, or the JSON error answering it.
async fn decode(
    headers: &HeaderMap,
    body: Body,
    max_bytes: usize,
) -> Result<async_graphql::Request, Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/json" {
        return Err(error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::BAD_REQUEST,
            format!(
                "send the request as `Content-Type: application/json` (got {:?})",
                content_type
            ),
        ));
    }
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {max_bytes} bytes (--max-body-bytes)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_bytes as u64) {
        return Err(too_large());
    }
    let bytes = match axum::body::to_bytes(body, max_bytes).await {
        Ok(b) => b,
        Err(e) => {
            let inner = e.into_inner();
            if inner
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return Err(too_large());
            }
            return Err(error_response(
                StatusCode::BAD_REQUEST,
                codes::BAD_REQUEST,
                format!("reading the request body failed: {inner}"),
            ));
        }
    };
    let request = serde_json::from_slice::<async_graphql::Request>(&bytes).map_err(|e| {
        error_response(
            StatusCode::BAD_REQUEST,
            codes::BAD_REQUEST,
            format!(
                "the body is not a GraphQL request in JSON \
                 ({{\"query\": \"…\", \"variables\": {{…}}, \"operationName\": \"…\"}}): {e}"
            ),
        )
    })?;
    if request.query.trim().is_empty() {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            codes::BAD_REQUEST,
            "the request has no `query`".into(),
        ));
    }
    Ok(request)
}

/// A GraphQL-shaped error answer (`{"errors": [{"message", "extensions": {"code"}}]}`) for
/// refusals made before a request reaches the schema.
pub(crate) fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }],
    });
    (status, axum::Json(body)).into_response()
}

/// Subscriptions. The token comes from the upgrade request's `Authorization` header or from
/// the `connection_init` payload `{"Authorization": "Bearer <token>"}`; without either the
/// connection is closed at `connection_init`.
pub async fn websocket(
    State(state): State<AppState>,
    protocol: GraphQLProtocol,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let from_header = match bearer_header(&headers) {
        Some(token) => match authenticate(&state.store, token).await {
            Ok(p) => Some(p),
            Err(denied) => return denied.into_response(),
        },
        None => None,
    };
    let api = state.api.api.clone();
    let store = state.store.clone();
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            GraphQLWebSocket::new(socket, api, protocol)
                .on_connection_init(move |payload| async move {
                    let principal = match from_header {
                        Some(p) => p,
                        None => {
                            let token = ["Authorization", "authorization"]
                                .iter()
                                .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
                                .and_then(bearer)
                                .ok_or(ApiError::Unauthenticated)?;
                            authenticate(&store, token).await.map_err(|d| match d {
                                Denied::Unavailable => ApiError::Unavailable(
                                    "cannot verify the token right now".into(),
                                ),
                                _ => ApiError::Unauthenticated,
                            })?
                        }
                    };
                    let mut data = Data::default();
                    data.insert(principal);
                    Ok(data)
                })
                .serve()
                .await;
        })
}
