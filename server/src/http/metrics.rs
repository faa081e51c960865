//! `/metrics`: the shared Prometheus registry (every subsystem registers into it before the
//! server starts) plus the HTTP API's own metrics.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use super::AppState;

/// Labels of HTTP metrics: the route pattern (never the raw path), method and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route pattern, e.g. `/graphql`.
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// Status code.
    pub status: u16,
}

/// Label of request durations.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route pattern.
    pub route: String,
}

/// Label of GraphQL errors.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// `extensions.code`.
    pub code: String,
}

/// The API's metrics.
#[derive(Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    graphql_errors: Family<CodeLabels, Counter>,
    sql_statements: Counter,
    sql_seen: AtomicU64,
}

fn duration_histogram() -> Histogram {
    // 1 ms … ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl HttpMetrics {
    /// Creates the metrics and registers them under `linkplane_http_*` / `linkplane_graphql_*`.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let m = Arc::new(HttpMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            graphql_errors: Family::default(),
            sql_statements: Counter::default(),
            sql_seen: AtomicU64::new(0),
        });
        registry.register(
            "linkplane_http_requests",
            "HTTP requests by route, method and status",
            m.requests.clone(),
        );
        registry.register(
            "linkplane_http_request_duration_seconds",
            "HTTP request duration by route",
            m.duration.clone(),
        );
        registry.register(
            "linkplane_graphql_errors",
            "GraphQL errors answered, by extensions.code",
            m.graphql_errors.clone(),
        );
        registry.register(
            "linkplane_graphql_sql_statements",
            "SQL statements run by GraphQL resolvers",
            m.sql_statements.clone(),
        );
        m
    }

    /// Counts one GraphQL error.
    pub fn graphql_error(&self, code: &str) {
        self.graphql_errors
            .get_or_create(&CodeLabels { code: code.into() })
            .inc();
    }

    /// Brings the SQL statement counter up to `total` (the API's running count).
    fn sync_sql(&self, total: u64) {
        let seen = self.sql_seen.swap(total, Ordering::Relaxed);
        self.sql_statements.inc_by(total.saturating_sub(seen));
    }
}

/// Route layer: counts and times every matched request.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    let m = &state.api.metrics;
    m.duration
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.api.metrics.sync_sql(state.api.api.db().statements());
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.api.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "encoding metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
