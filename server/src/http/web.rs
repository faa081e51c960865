//! The web dashboard at `/`: a static single-page app embedded in the binary.
//!
//! The pages hold no data, so they are served without a token; everything they show comes from
//! `POST /graphql` and the `/graphql/ws` subscription with the API token the user types in (kept
//! in the tab's `sessionStorage`, sent as `Authorization: Bearer`, never in a URL). The assets
//! are built from `web/dashboard/` by `scripts/web build` and committed under
//! `server/assets/dashboard/`, so building the binary never needs npm; `scripts/web check`
//! verifies the committed bundle matches its sources.
//!
//! Every response carries a strict Content-Security-Policy: scripts, styles, images and
//! connections only from this origin, no inline script or style, no framing, no plugins. The
//! dashboard makes no request to any other origin (no CDN, no web font).

use axum::{
    Router,
    extract::Path,
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

/// The policy every dashboard response carries. `connect-src 'self'` covers `fetch` to
/// `/graphql` and the `ws:`/`wss:` subscription on the same host (CSP Level 3 matches
/// WebSocket schemes against `'self'`).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// The bundle, as `scripts/web build` wrote it.
const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/dashboard/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/dashboard/app.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../assets/dashboard/favicon.svg"),
    },
];

const INDEX: &[u8] = include_bytes!("../../assets/dashboard/index.html");

/// `GET /` (the app shell) and `GET /dashboard/<file>` (its assets). Generic over the router
/// state: the handlers need none.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/dashboard/{file}", get(asset))
}

async fn index() -> Response {
    respond("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => respond(a.content_type, a.body),
        None => {
            let mut resp = (StatusCode::NOT_FOUND, "not found").into_response();
            secure(&mut resp);
            resp
        }
    }
}

fn respond(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut resp = (
        [
            (header::CONTENT_TYPE, content_type),
            // Assets keep fixed names: revalidate so an upgraded server is picked up at once.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response();
    secure(&mut resp);
    resp
}

/// Security headers of every dashboard response.
fn secure(resp: &mut Response) {
    let h = resp.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::body::Body;
    use tower::ServiceExt as _;

    use super::*;

    async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let resp = routes::<()>()
            .oneshot(axum::http::Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    #[tokio::test]
    async fn index_is_served_without_a_token_under_a_strict_policy() {
        let (status, headers, body) = get("/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert!(body.contains(r#"src="/dashboard/app.js""#), "{body}");
    }

    #[tokio::test]
    async fn index_has_no_inline_script_and_names_no_other_origin() {
        let (_, _, body) = get("/").await;
        // Every <script> has a src (an inline one would be refused by the policy anyway).
        for tag in body.split("<script").skip(1) {
            let open = tag.split('>').next().unwrap();
            assert!(
                open.contains("src=\"/"),
                "inline or foreign script: <script{open}>"
            );
            assert!(tag.trim_start_matches(open).starts_with("></script>"));
        }
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{body}"
        );
        assert!(
            !body.contains("style=\""),
            "inline styles are refused by the policy"
        );
    }

    #[tokio::test]
    async fn assets_have_their_types_and_unknown_files_are_404() {
        let (status, headers, body) = get("/dashboard/app.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(body.contains("/graphql"), "the bundle talks to the API");
        let (status, headers, _) = get("/dashboard/app.css").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
        let (status, _, _) = get("/dashboard/../Cargo.toml").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, headers, _) = get("/dashboard/nope.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
    }
}
