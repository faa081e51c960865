//! Push webhooks: `POST /webhooks/github` and `POST /webhooks/gitlab`.
//!
//! A webhook never carries desired state: a verified push only schedules a fetch of the
//! sources it concerns (Argo CD's model), so a forged or replayed request can at worst cause a
//! fetch. Still, nothing is scheduled without proof of the shared secret:
//! - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`, verified in
//!   constant time; the SHA-1 `X-Hub-Signature` is never accepted.
//! - GitLab: `X-Gitlab-Token` equal to the secret, compared in constant time.
//!
//! Missing, malformed or wrong signatures, and a server without a configured secret, answer
//! 401 and change nothing. A verified push goes to the GitOps engine
//! ([`linkplane_gitops::SyncHandle::on_push`]), which decides what it concerns: sources whose URL
//! and branch/tag match are triggered, a payload without a repository URL triggers every source,
//! and provider retries (same `X-GitHub-Delivery` / `X-Gitlab-Event-UUID`) are acknowledged once.

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use hmac::{Hmac, Mac};
use linkplane_gitops::push::{Push, PushOutcome};
use secrecy::ExposeSecret;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::AppState;

/// The webhook routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks/github", post(github))
        .route("/webhooks/gitlab", post(gitlab))
}

fn reject(reason: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({ "error": reason })),
    )
        .into_response()
}

/// Verifies `sha256=<hex>` against the body; constant time in the MAC comparison.
pub fn verify_github(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// Compares the GitLab token in constant time.
pub fn verify_gitlab(secret: &[u8], header: Option<&str>) -> bool {
    match header {
        Some(token) if !secret.is_empty() => bool::from(token.as_bytes().ct_eq(secret)),
        _ => false,
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn github(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = state.webhook_secret.as_ref() else {
        return reject("webhooks are disabled: no webhook secret is configured");
    };
    if !verify_github(
        secret.expose_secret().as_bytes(),
        &body,
        header(&headers, "x-hub-signature-256"),
    ) {
        return reject("missing or invalid X-Hub-Signature-256");
    }
    let event = header(&headers, "x-github-event").unwrap_or_default();
    if event == "ping" {
        return (StatusCode::OK, Json(serde_json::json!({ "pong": true }))).into_response();
    }
    if event != "push" {
        return ignored(event);
    }
    let push = Push::parse(
        &body,
        &["clone_url", "ssh_url", "git_url", "html_url", "url"],
        "repository",
    );
    handle(state, "github", header(&headers, "x-github-delivery"), push).await
}

async fn gitlab(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = state.webhook_secret.as_ref() else {
        return reject("webhooks are disabled: no webhook secret is configured");
    };
    if !verify_gitlab(
        secret.expose_secret().as_bytes(),
        header(&headers, "x-gitlab-token"),
    ) {
        return reject("missing or invalid X-Gitlab-Token");
    }
    let event = header(&headers, "x-gitlab-event").unwrap_or_default();
    if event != "Push Hook" && event != "Tag Push Hook" {
        return ignored(event);
    }
    let push = Push::parse(
        &body,
        &[
            "git_http_url",
            "git_ssh_url",
            "web_url",
            "http_url",
            "ssh_url",
        ],
        "project",
    );
    handle(
        state,
        "gitlab",
        header(&headers, "x-gitlab-event-uuid"),
        push,
    )
    .await
}

fn ignored(event: &str) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "ignored": format!("event {event:?} does not trigger syncs") })),
    )
        .into_response()
}

async fn handle(state: AppState, provider: &str, delivery: Option<&str>, push: Push) -> Response {
    // While the database is away, answer at once (GitHub gives up on a delivery after 10 s)
    // and remember the push: neither GitHub nor GitLab redelivers a failed delivery by itself,
    // so the next healthy check syncs every source instead.
    let unavailable = || {
        state.health.remember_missed_push();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "10")],
            Json(serde_json::json!({
                "error": "the database is unavailable; the push will be synced when it returns"
            })),
        )
            .into_response()
    };
    let failed = |e: &dyn std::fmt::Display, database_down: bool| {
        if database_down {
            return unavailable();
        }
        tracing::warn!(error = %e, "webhook handling failed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({ "error": "internal error" })),
        )
            .into_response()
    };
    if !state.health.database_up() {
        return unavailable();
    }
    let Some(sync) = state.sync.as_ref() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": "the GitOps engine is not running" })),
        )
            .into_response();
    };
    let triggered = match sync.on_push(provider, delivery, &push).await {
        Ok(PushOutcome::Triggered(names)) => names,
        Ok(PushOutcome::Duplicate(id)) => {
            return (StatusCode::OK, Json(serde_json::json!({ "duplicate": id }))).into_response();
        }
        Err(e) => {
            let database_down =
                matches!(&e, linkplane_gitops::Error::Store(s) if s.is_unavailable());
            return failed(&e, database_down);
        }
    };
    tracing::info!(provider, ?triggered, "push webhook accepted");
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "triggered": triggered })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn github_signature_must_be_sha256_hmac_of_the_body() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let good = sign(b"s3cret", body);
        assert!(verify_github(b"s3cret", body, Some(&good)));
        assert!(!verify_github(b"other", body, Some(&good)));
        assert!(!verify_github(b"s3cret", b"tampered", Some(&good)));
        assert!(!verify_github(b"s3cret", body, None));
        assert!(!verify_github(b"s3cret", body, Some("sha256=zz")));
        // SHA-1 style headers are not accepted.
        assert!(!verify_github(
            b"s3cret",
            body,
            Some(&good.replace("sha256=", "sha1="))
        ));
    }

    #[test]
    fn gitlab_token_must_match_exactly() {
        assert!(verify_gitlab(b"tok", Some("tok")));
        assert!(!verify_gitlab(b"tok", Some("tok2")));
        assert!(!verify_gitlab(b"tok", None));
        assert!(!verify_gitlab(b"", Some("")));
    }
}
