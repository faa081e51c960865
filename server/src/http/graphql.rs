//! `POST /graphql`, `GET /graphql` (GraphiQL) and `GET /graphql/ws` (subscriptions over
//! graphql-transport-ws, or the legacy graphql-ws protocol).

use async_graphql::{Data, http::GraphiQLSource};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::{
    Extension,
    extract::{State, WebSocketUpgrade},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
};
use linkplane_schema::{ApiError, Principal, code_of, codes};

use super::{
    AppState,
    auth::{Denied, authenticate, bearer, bearer_header},
};

/// Executes one GraphQL request for the authenticated caller.
///
/// Partial results answer 200 as GraphQL expects; a request that produced no data at all answers
/// with the status of its first error's code (401, 403, 400 for rejected queries and bad input),
/// so HTTP-level tooling sees denials as denials.
pub async fn execute(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    req: GraphQLRequest,
) -> Response {
    let resp = state
        .api
        .api
        .execute(req.into_inner(), Some(principal))
        .await;
    let status = match resp.errors.first() {
        Some(first) if resp.data == async_graphql::Value::Null => match code_of(first) {
            codes::UNAUTHENTICATED => StatusCode::UNAUTHORIZED,
            codes::FORBIDDEN => StatusCode::FORBIDDEN,
            codes::BAD_USER_INPUT => StatusCode::BAD_REQUEST,
            codes::NOT_FOUND => StatusCode::NOT_FOUND,
            codes::CONFLICT => StatusCode::CONFLICT,
            codes::UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        _ => StatusCode::OK,
    };
    let mut out = GraphQLResponse::from(resp).into_response();
    *out.status_mut() = status;
    out
}

/// The GraphiQL IDE (behind the token like every API route: use a header-injecting proxy or
/// browser extension, and paste the token into GraphiQL's headers editor for its requests).
pub async fn graphiql(State(state): State<AppState>) -> Response {
    if !state.api.graphiql {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("linkplane")
            .finish(),
    )
    .into_response()
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
