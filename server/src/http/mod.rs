//! The HTTP surface: health endpoints, the GraphQL API, metrics, webhooks and the dashboard at `/`.

pub mod api;
mod auth;
pub mod config;
mod graphiql;
mod graphql;
pub mod health;
mod metrics;
pub mod tls;
mod web;
pub mod webhooks;

use std::time::Duration;

use anyhow::Context;
use axum::{Router, routing::get};
use linkplane_store::Store;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The GitOps sync runtime (webhooks and the API's syncNow); `None` when not running.
    pub sync: Option<linkplane_gitops::SyncHandle>,
    /// Shared webhook secret; webhooks answer 401 without one.
    pub webhook_secret: Option<std::sync::Arc<secrecy::SecretString>>,
    /// The GraphQL API, metrics registry and HTTP settings.
    pub api: api::ApiState,
    /// The last readiness check (refreshed in the background; see [`health`]).
    pub health: std::sync::Arc<health::Health>,
}

/// Every route.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(webhooks::routes())
        .merge(web::routes())
        .merge(api::routes(&state));
    api::layers(routes, &state)
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// The span of one request: method and path only. The default span records the whole URI, so a
/// `?token=` (or any credential a client puts in a query string) reached the logs at debug level.
fn request_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        version = ?req.version(),
    )
}

/// Serves until SIGINT/SIGTERM, then drains in-flight requests for at most `grace`.
pub async fn serve(listener: TcpListener, state: AppState, grace: Duration) -> anyhow::Result<()> {
    if let Some(tls) = state.api.tls.clone() {
        return tls::serve(listener, router(state), tls, grace, shutdown_signal()).await;
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let mut stop_rx2 = stop_rx.clone();
    tokio::select! {
        res = server => res.context("serving HTTP"),
        () = async move {
            let _ = stop_rx2.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(?grace, "in-flight requests did not finish in time");
            Ok(())
        }
    }
}

/// Resolves on SIGINT or SIGTERM (each caller installs its own listener).
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
