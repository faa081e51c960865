//! The GraphQL API's wiring: building it from flags, its routes and the layers every route gets.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{
    Router,
    http::{HeaderValue, Method, StatusCode, header},
    middleware,
    response::IntoResponse as _,
    routing::{get, post},
};
use linkplane_schema::{
    Api, ApiOptions, BoxFuture, Limits, PlannedObject, PlannedRevision, SyncError, SyncReport,
    SyncService,
};
use linkplane_store::{Store, credentials::CredentialsKey, tokens};
use prometheus_client::registry::Registry;
use secrecy::ExposeSecret as _;
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::CompressionLayer,
    cors::{AllowOrigin, CorsLayer},
    timeout::TimeoutLayer,
};

use super::{AppState, auth, config::ApiArgs, graphiql, graphql, metrics, metrics::HttpMetrics};

/// What the API routes need, built once at start-up.
#[derive(Clone)]
pub struct ApiState {
    /// The schema and its counted database handle.
    pub api: Api,
    /// Every subsystem's metrics (frozen once the server starts).
    pub registry: Arc<Registry>,
    /// The API's own metrics.
    pub metrics: Arc<HttpMetrics>,
    /// TLS configuration, when serving HTTPS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Whether `GET /graphql` serves GraphiQL.
    pub graphiql: bool,
    /// Request timeout.
    pub timeout: Duration,
    /// API request body limit.
    pub max_body_bytes: usize,
    /// CORS allowed origins (`*` for any).
    pub cors_origins: Vec<String>,
}

/// Adapts the GitOps runtime to the schema's `SyncService`.
struct GitopsSync(linkplane_gitops::SyncHandle);

impl SyncService for GitopsSync {
    fn sync_now<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<SyncReport, SyncError>> {
        Box::pin(async move {
            match self.0.sync_now(source).await {
                Ok(o) => Ok(SyncReport {
                    revision: o.revision.unwrap_or_default(),
                    result: o.result,
                    message: if o.errors.is_empty() {
                        format!("{} object(s) drifted", o.drifted)
                    } else {
                        o.errors.join("\n")
                    },
                }),
                Err(linkplane_gitops::Error::UnknownSource(s)) => Err(SyncError::UnknownSource(s)),
                Err(linkplane_gitops::Error::Stopped) => Err(SyncError::Unavailable(
                    "the GitOps engine is stopping".into(),
                )),
                Err(e) => Err(SyncError::Failed(Box::new(e))),
            }
        })
    }

    fn plan_revision<'a>(
        &'a self,
        source: &'a str,
        revision: &'a str,
    ) -> BoxFuture<'a, Result<PlannedRevision, SyncError>> {
        Box::pin(plan_revision(&self.0, source, revision))
    }

    fn check_remote<'a>(
        &'a self,
        source: &'a str,
    ) -> BoxFuture<'a, Result<Result<String, String>, SyncError>> {
        Box::pin(check_remote(&self.0, source))
    }
}

/// The spec of `source`, or `UnknownSource`.
async fn source_spec(
    sync: &linkplane_gitops::SyncHandle,
    source: &str,
) -> Result<linkplane_core::GitSourceSpec, SyncError> {
    let store = sync.syncer().store();
    let mut conn = store
        .acquire()
        .await
        .map_err(|e| SyncError::Failed(Box::new(e)))?;
    linkplane_store::git_sources::get(&mut conn, source)
        .await
        .map_err(|e| SyncError::Failed(Box::new(e)))?
        .map(|s| s.source.spec)
        .ok_or_else(|| SyncError::UnknownSource(source.to_string()))
}

/// `GitSource.plan(revision:)`: the engine's planner on a revision it fetches, nothing applied.
async fn plan_revision(
    sync: &linkplane_gitops::SyncHandle,
    source: &str,
    revision: &str,
) -> Result<PlannedRevision, SyncError> {
    let spec = source_spec(sync, source).await?;
    let (resolved, planned) = match sync.syncer().plan_revision(source, &spec, revision).await {
        Ok(r) => r,
        Err(linkplane_gitops::Error::UnknownRevision(r)) => {
            return Err(SyncError::UnknownRevision(format!(
                "{r:?} is not a commit, branch or tag of Git source {source:?}"
            )));
        }
        Err(linkplane_gitops::Error::Git(e)) => {
            return Err(SyncError::Unavailable(format!(
                "cannot read Git source {source:?}: {e}"
            )));
        }
        Err(e) => return Err(SyncError::Failed(Box::new(e))),
    };
    let (changes, errors) = match planned {
        Ok(plan) => (
            plan.changes
                .into_iter()
                .map(|c| PlannedObject {
                    kind: c.kind,
                    name: c.name,
                    change: c.change,
                    fields: c
                        .fields
                        .into_iter()
                        .map(|f| (f.path, f.desired, f.actual))
                        .collect(),
                })
                .collect(),
            plan.conflicts,
        ),
        Err(diagnostics) => (Vec::new(), diagnostics.to_strings()),
    };
    Ok(PlannedRevision {
        revision: resolved.commit,
        author: resolved.author,
        message: resolved.message,
        changes,
        errors,
    })
}

/// `GitSource.reachability`: one fetch of the source's ref.
async fn check_remote(
    sync: &linkplane_gitops::SyncHandle,
    source: &str,
) -> Result<Result<String, String>, SyncError> {
    let spec = source_spec(sync, source).await?;
    Ok(match sync.syncer().check_remote(source, &spec).await {
        Ok(r) => Ok(r.commit),
        Err(linkplane_gitops::Error::Git(e)) => Err(e.to_string()),
        Err(e) => return Err(SyncError::Failed(Box::new(e))),
    })
}

/// Loads the key sealing stored kubeconfigs, once per process: the API writes with it and the
/// mirror reads with it.
pub fn credentials_key(args: &ApiArgs) -> anyhow::Result<Option<Arc<CredentialsKey>>> {
    let text = match (&args.credentials_key_file, &args.credentials_key) {
        (Some(path), _) => std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading the credentials key file {}",
                Path::new(path).display()
            )
        })?,
        (None, Some(inline)) => inline.expose_secret().to_string(),
        (None, None) => return Ok(None),
    };
    let key = CredentialsKey::from_encoded(&text).context("loading the credentials key")?;
    tracing::info!(fingerprint = key.fingerprint(), "credentials key loaded");
    Ok(Some(Arc::new(key)))
}

/// Builds the API from flags: loads the TLS files, stores the bootstrap token, registers the
/// API's metrics and freezes `registry` (register other subsystems' metrics into it before
/// calling this). `credentials_key` comes from [`credentials_key`], loaded once at start-up.
pub async fn build(
    store: &Store,
    args: &ApiArgs,
    sync: Option<linkplane_gitops::SyncHandle>,
    credentials_key: Option<Arc<CredentialsKey>>,
    probe_windows: Option<linkplane_core::probes::ProbeWindows>,
    mut registry: Registry,
) -> anyhow::Result<ApiState> {
    if let Some(token) = &args.bootstrap_admin_token {
        let mut conn = store
            .acquire()
            .await
            .context("storing the bootstrap token")?;
        tokens::ensure(&mut conn, tokens::Role::Admin, "bootstrap", token)
            .await
            .context("storing the bootstrap admin token (LINKPLANE_BOOTSTRAP_ADMIN_TOKEN)")?;
    }
    let tls = match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert), Some(key)) => Some(super::tls::load(cert, key)?),
        _ => None,
    };
    let metrics = HttpMetrics::register(&mut registry);
    let observer = metrics.clone();
    let api = Api::new(
        store.clone(),
        ApiOptions {
            limits: Limits {
                max_depth: args.graphql_max_depth,
                max_complexity: args.graphql_max_complexity,
                max_query_bytes: args.graphql_max_query_bytes,
                max_introspection_depth: args.graphql_max_introspection_depth,
            },
            sync: sync.map(|s| Arc::new(GitopsSync(s)) as Arc<dyn SyncService>),
            credentials_key,
            on_error: Some(Arc::new(move |code: &str| observer.graphql_error(code))),
            kubeconfig_check: Some(linkplane_mirror::credentials::check_kubeconfig),
            probe_windows,
        },
    );
    Ok(ApiState {
        api,
        registry: Arc::new(registry),
        metrics,
        tls,
        graphiql: !args.no_graphiql,
        timeout: Duration::from_secs(args.request_timeout_seconds),
        max_body_bytes: args.max_body_bytes,
        cors_origins: args
            .cors_allowed_origins
            .iter()
            .filter(|o| !o.is_empty())
            .cloned()
            .collect(),
    })
}

/// `POST /graphql` (token required), `/graphql/ws` (token checked by the handler: header or
/// `connection_init`), GraphiQL on `GET /graphql` and `/metrics` (open).
pub fn routes(state: &AppState) -> Router<AppState> {
    // The body limit is enforced by the handler, which answers it as a GraphQL error.
    let protected = Router::new()
        .route("/graphql", post(graphql::execute))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .route("/graphql/ws", get(graphql::websocket))
        // GraphiQL holds no data: served without a token (see `graphiql`).
        .route("/graphql", get(graphiql::page))
        .route("/graphql/assets/{file}", get(graphiql::asset))
        .merge(protected)
}

/// Layers for every route: metrics, timeout, compression, CORS.
pub fn layers(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let s = &state.api;
    let router = router
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            s.timeout,
        ))
        .layer(CompressionLayer::new())
        // A panic in a handler answers 500 for that request alone, never unwinding into the
        // runtime; stack overflows cannot be caught, so input is bounded before parsing too.
        .layer(CatchPanicLayer::custom(panicked));
    match cors(&s.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// The answer to a request whose handler panicked: logged with its message, answered as a
/// GraphQL-shaped `INTERNAL` error so clients parse it like any other.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = message, "a request handler panicked; answered 500");
    let body = serde_json::json!({
        "data": null,
        "errors": [{ "message": "internal error (logged on the server)",
                     "extensions": { "code": "INTERNAL" } }],
    });
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let values: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| match HeaderValue::from_str(o) {
                Ok(v) => Some(v),
                Err(_) => {
                    tracing::warn!(origin = %o, "ignoring an invalid CORS origin");
                    None
                }
            })
            .collect();
        AllowOrigin::list(values)
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(Duration::from_secs(600)),
    )
}
