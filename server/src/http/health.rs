//! `/healthz` (the process is up) and `/readyz` (the database answers and every linked cluster's
//! watches listed once or were marked failed).

use axum::{Json, extract::State, http::StatusCode};
use serde_json::json;

use super::AppState;

/// Liveness: never touches dependencies, so a slow database does not get the pod restarted.
pub async fn healthz() -> (StatusCode, Json<serde_json::Value>) {
    (StatusCode::OK, Json(json!({"status": "ok"})))
}

/// Readiness: 503 with the reason while not ready.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "readiness: database unreachable");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "reason": "database unreachable"})),
        );
    }
    let pending = match state.store.acquire().await {
        Ok(mut conn) => linkplane_store::reconcilers::pending(&mut conn).await,
        Err(e) => Err(e),
    };
    match pending {
        Ok(p) if p.is_empty() => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Ok(p) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "starting", "reason": "cluster watches not listed yet", "clusters": p}),
            ),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: cannot read reconciler status");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "reason": "database error"})),
            )
        }
    }
}
