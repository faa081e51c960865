//! The GraphiQL IDE on `GET /graphql`, served without a token: the page and its assets hold no
//! data, and every request the IDE makes carries the token typed into its token bar.
//!
//! The assets are built from `web/graphiql` (GraphiQL 4, production React, bundled by esbuild;
//! `scripts/web build graphiql`) into `server/assets/graphiql` and embedded here, so the page
//! loads nothing from another origin and works air-gapped. They run under a strict
//! Content-Security-Policy: scripts from this origin only (no inline script, no `eval`),
//! styles from this origin plus one per-response nonce (GraphiQL's dialogs insert a `<style>`
//! element; the page hands the nonce over in a `<meta name="csp-nonce">`), fonts and images
//! from this origin or `data:` (GraphiQL's CSS inlines its fonts), requests to this origin only.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use rand::RngCore as _;

use super::{AppState, graphql::error_response};

const INDEX_HTML: &str = include_str!("../../assets/graphiql/index.html");
const SCRIPT: &[u8] = include_bytes!("../../assets/graphiql/graphiql.js");
const STYLE: &[u8] = include_bytes!("../../assets/graphiql/graphiql.css");
const LICENSES: &[u8] = include_bytes!("../../assets/graphiql/graphiql.js.LEGAL.txt");

/// Where the page's nonce goes in `index.html`.
const NONCE_PLACEHOLDER: &str = "__CSP_NONCE__";

/// The page's Content-Security-Policy for `nonce`.
pub(crate) fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; \
         img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// A fresh nonce: 128 random bits, base64.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Headers every GraphiQL response carries.
fn harden(headers: &mut HeaderMap, csp: &str) {
    if let Ok(v) = HeaderValue::from_str(csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// `GET /graphql`: the IDE's page (404 with `--no-graphiql`).
pub async fn page(State(state): State<AppState>) -> Response {
    if !state.api.graphiql {
        return disabled();
    }
    let nonce = nonce();
    let html = INDEX_HTML.replace(NONCE_PLACEHOLDER, &nonce);
    let mut resp = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response();
    harden(resp.headers_mut(), &content_security_policy(&nonce));
    resp
}

/// `GET /graphql/assets/{file}`: the IDE's script, stylesheet and bundled licences.
pub async fn asset(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    if !state.api.graphiql {
        return disabled();
    }
    let (body, content_type) = match file.as_str() {
        "graphiql.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "graphiql.css" => (STYLE, "text/css; charset=utf-8"),
        "graphiql.js.LEGAL.txt" => (LICENSES, "text/plain; charset=utf-8"),
        _ => {
            return error_response(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("no GraphiQL asset {file:?}"),
            );
        }
    };
    let mut resp = (
        [
            (header::CONTENT_TYPE, content_type),
            // Not content-hashed names: revalidate after a few minutes so an upgrade shows.
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response();
    harden(resp.headers_mut(), "default-src 'none'");
    resp
}

fn disabled() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "GraphiQL is disabled on this server (--no-graphiql)".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_bundled_assets() {
        assert!(INDEX_HTML.contains(NONCE_PLACEHOLDER));
        assert!(INDEX_HTML.contains(r#"src="/graphql/assets/graphiql.js""#));
        // No inline script: every <script> has a src.
        assert_eq!(
            INDEX_HTML.matches("<script").count(),
            INDEX_HTML.matches("<script defer src=").count()
        );
        for cdn in ["unpkg.com", "jsdelivr", "cdnjs", "googleapis"] {
            assert!(!INDEX_HTML.contains(cdn), "{cdn}");
        }
        // A production build: React's development warnings are stripped.
        let script = String::from_utf8_lossy(SCRIPT);
        assert!(!script.contains("react-dom.development"));
        assert!(SCRIPT.len() > 100_000, "the bundle looks empty");
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
        assert!(content_security_policy("abc").contains("'nonce-abc'"));
        assert!(!content_security_policy("abc").contains("unsafe"));
    }
}
