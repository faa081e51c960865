//! Authentication: who a bearer token is. The cluster's admin token (the kubeconfig's) is in
//! `system:masters` and may do everything. Service-account tokens are JWTs signed by the
//! cluster (HS256 with a per-cluster key; a real API server signs RS256 with its service
//! account key, which no client verifies):
//!
//! - bound tokens from the `serviceaccounts/<name>/token` subresource (TokenRequest, what
//!   `kubectl create token` asks for), with the upstream claims (`iss`, `sub`, `aud`, `exp`,
//!   `kubernetes.io.serviceaccount`), valid until `exp` while the service account (same uid)
//!   exists and only for the API server's audience;
//! - legacy tokens that the token controller writes into `kubernetes.io/service-account-token`
//!   Secrets, valid while that Secret still holds them and the service account exists.
//!
//! Anything else, including an expired token, is `401 Unauthorized`
//! (kubernetes `pkg/serviceaccount/jwt.go`, `legacy.go` and `claims.go`).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::cluster::ClusterInner;
use crate::resources::{SECRETS, SERVICE_ACCOUNTS};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult, cause};
use crate::store::{Preconditions, WriteCtx};

/// The Secret type the token controller fills in.
pub(crate) const SA_TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";
/// The annotation naming a token Secret's service account.
pub(crate) const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
/// The annotation the token controller sets to the service account's uid.
const SA_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";
/// The issuer and the API server's audience, as kubeadm configures them.
const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The issuer of legacy Secret-based tokens.
const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// TokenRequest defaults and bounds (`pkg/apis/authentication/validation`): one hour by
/// default, at least ten minutes, at most 2^32 seconds.
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
const MIN_EXPIRATION_SECONDS: i64 = 600;
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    /// `system:serviceaccount:<ns>:<name>`, or the admin's name.
    pub name: String,
    /// Groups, `system:authenticated` included.
    pub groups: Vec<String>,
}

impl User {
    /// The kubeconfig's user: in `system:masters`, which RBAC never restricts.
    pub fn admin() -> Self {
        Self {
            name: "kubernetes-admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    /// A service account, with the groups the service-account authenticator gives it.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }

    /// Whether RBAC is bypassed (`system:masters`).
    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

/// Signs and verifies the cluster's service-account tokens.
pub(crate) struct Signer {
    key: [u8; 32],
}

impl Signer {
    /// A signer with a fresh random key (tokens do not outlive the process).
    pub fn random() -> Self {
        Self {
            key: rand::random(),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length: this cannot fail.
        Hmac::<Sha256>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!())
    }

    /// A compact JWS of `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": "kubesim"}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let mut mac = self.mac();
        mac.update(format!("{header}.{payload}").as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{header}.{payload}.{sig}")
    }

    /// The claims of a token this signer made, or `None`.
    pub fn verify(&self, token: &str) -> Option<Value> {
        let mut parts = token.split('.');
        let (header, payload, sig) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let mut mac = self.mac();
        mac.update(format!("{header}.{payload}").as_bytes());
        // `verify_slice` compares in constant time.
        mac.verify_slice(&sig).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Who the `Authorization` header is, or `None` (401).
pub(crate) fn authenticate(
    cluster: &ClusterInner,
    header: Option<&http::HeaderValue>,
) -> Option<User> {
    let token = header
        .and_then(|h| h.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))?
        .trim();
    if cluster.is_admin_token(token) {
        return Some(User::admin());
    }
    let claims = cluster.signer.verify(token)?;
    service_account_of(cluster, token, &claims, now_unix())
}

/// Whether a bound token's claims hold at `now`: not expired, not before `nbf`, and issued
/// for the API server's audience (`pkg/serviceaccount/claims.go` `Validate`).
fn bound_token_current(claims: &Value, now: i64) -> bool {
    let exp_ok = claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_some_and(|exp| now < exp);
    let nbf_ok = claims
        .get("nbf")
        .and_then(Value::as_i64)
        .is_none_or(|nbf| nbf <= now);
    let for_api = claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x == ISSUER));
    exp_ok && nbf_ok && for_api
}

/// The service account a verified token speaks for, if it is still valid at `now`.
fn service_account_of(
    cluster: &ClusterInner,
    token: &str,
    claims: &Value,
    now: i64,
) -> Option<User> {
    let s = |p: &str| claims.pointer(p).and_then(Value::as_str);
    let (namespace, name, uid) = match s("/iss")? {
        ISSUER => {
            if !bound_token_current(claims, now) {
                return None;
            }
            (
                s("/kubernetes.io/namespace")?,
                s("/kubernetes.io/serviceaccount/name")?,
                s("/kubernetes.io/serviceaccount/uid")?,
            )
        }
        LEGACY_ISSUER => {
            let ns = claims
                .get("kubernetes.io/serviceaccount/namespace")?
                .as_str()?;
            let secret = claims
                .get("kubernetes.io/serviceaccount/secret.name")?
                .as_str()?;
            // A legacy token lives as long as its Secret holds it.
            let stored = cluster.store.get(SECRETS, ns, secret).ok()?.value().ok()?;
            let held = stored
                .pointer("/data/token")
                .and_then(Value::as_str)
                .and_then(|t| STANDARD.decode(t).ok())?;
            if held != token.as_bytes() {
                return None;
            }
            (
                ns,
                claims
                    .get("kubernetes.io/serviceaccount/service-account.name")?
                    .as_str()?,
                claims
                    .get("kubernetes.io/serviceaccount/service-account.uid")?
                    .as_str()?,
            )
        }
        _ => return None,
    };
    let sa = cluster
        .store
        .get(SERVICE_ACCOUNTS, namespace, name)
        .ok()?
        .value()
        .ok()?;
    if sa.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid) {
        return None;
    }
    Some(User::service_account(namespace, name))
}

fn service_account_uid(cluster: &ClusterInner, ns: &str, name: &str) -> ApiResult<String> {
    let sa = cluster.store.get(SERVICE_ACCOUNTS, ns, name)?.value()?;
    Ok(sa
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string())
}

/// `POST .../serviceaccounts/<name>/token`: a bound token for the service account
/// (kubernetes `pkg/registry/core/serviceaccount/storage/token.go`).
pub(crate) fn token_request(
    cluster: &ClusterInner,
    ns: &str,
    name: &str,
    body: &Value,
) -> ApiResult<Value> {
    if let Some(kind) = body.get("kind").and_then(Value::as_str)
        && kind != "TokenRequest"
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind (TokenRequest)"
        )));
    }
    let uid = service_account_uid(cluster, ns, name)?;
    let mut spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    if !spec.is_object() {
        spec = json!({});
    }
    let expiration = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    let invalid = |msg: &str| {
        ApiError::invalid(
            "TokenRequest",
            "authentication.k8s.io",
            "TokenRequest",
            name,
            vec![cause(
                "FieldValueInvalid",
                "spec.expirationSeconds",
                format!("Invalid value: {expiration}: {msg}"),
            )],
        )
    };
    if expiration < MIN_EXPIRATION_SECONDS {
        return Err(invalid("may not specify a duration less than 10 minutes"));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        return Err(invalid(
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    let audiences = match spec.get("audiences").and_then(Value::as_array) {
        Some(a) if !a.is_empty() => a.clone(),
        _ => vec![json!(ISSUER)],
    };
    spec["audiences"] = json!(audiences);
    spec["expirationSeconds"] = json!(expiration);
    if spec.get("boundObjectRef").is_none() {
        spec["boundObjectRef"] = Value::Null;
    }
    let iat = now_unix();
    let exp = iat + expiration;
    let token = cluster.signer.sign(&json!({
        "aud": audiences,
        "exp": exp,
        "iat": iat,
        "iss": ISSUER,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": name, "uid": uid}},
        "nbf": iat,
        "sub": format!("system:serviceaccount:{ns}:{name}"),
    }));
    let expires = chrono::DateTime::from_timestamp(exp, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": expires},
    }))
}

/// The token controller's work on a written Secret: a `kubernetes.io/service-account-token`
/// Secret without a token gets one, with `namespace`, `ca.crt` and the service account's uid
/// (kubernetes `pkg/controller/serviceaccount/tokens_controller.go`). A Secret whose service
/// account does not exist (or has another uid) is left alone.
pub(crate) fn populate_token_secret(cluster: &Arc<ClusterInner>, ns: &str, secret_name: &str) {
    let Ok(obj) = cluster.store.get(SECRETS, ns, secret_name) else {
        return;
    };
    let Ok(mut secret) = obj.value() else { return };
    if secret.get("type").and_then(Value::as_str) != Some(SA_TOKEN_SECRET_TYPE)
        || secret.pointer("/data/token").is_some()
        || secret.pointer("/metadata/deletionTimestamp").is_some()
    {
        return;
    }
    let annotation = |k: &str| {
        secret
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let Some(sa_name) = annotation(SA_NAME_ANNOTATION) else {
        return;
    };
    let Ok(uid) = service_account_uid(cluster, ns, &sa_name) else {
        return;
    };
    if annotation(SA_UID_ANNOTATION).is_some_and(|u| u != uid) {
        return;
    }
    let token = cluster.signer.sign(&json!({
        "iss": LEGACY_ISSUER,
        "kubernetes.io/serviceaccount/namespace": ns,
        "kubernetes.io/serviceaccount/secret.name": secret_name,
        "kubernetes.io/serviceaccount/service-account.name": sa_name,
        "kubernetes.io/serviceaccount/service-account.uid": uid,
        "sub": format!("system:serviceaccount:{ns}:{sa_name}"),
    }));
    secret["metadata"]["annotations"][SA_UID_ANNOTATION] = json!(uid);
    if !secret.get("data").is_some_and(Value::is_object) {
        secret["data"] = json!({});
    }
    secret["data"]["token"] = json!(STANDARD.encode(&token));
    secret["data"]["namespace"] = json!(STANDARD.encode(ns));
    if let Some(ca) = &cluster.ca_pem {
        secret["data"]["ca.crt"] = json!(STANDARD.encode(ca));
    }
    let ctx = WriteCtx {
        manager: "kube-controller-manager".into(),
        ..WriteCtx::default()
    };
    // The resourceVersion makes this a compare-and-swap: a concurrent writer wins and the
    // token is added on its next write, as the controller would retry.
    if let Err(e) = cluster
        .store
        .update(SECRETS, Some(ns), secret_name, secret, "", &ctx)
    {
        tracing::debug!(error = %e.message, "token controller could not fill a secret");
    }
}

/// The token controller's work on a deleted service account: its token Secrets go too.
pub(crate) fn delete_tokens_of(cluster: &ClusterInner, ns: &str, sa_name: &str) {
    let Ok(page) = cluster.store.list(
        SECRETS,
        Some(ns),
        &LabelSelector::default(),
        &FieldSelector::default(),
        None,
        None,
    ) else {
        return;
    };
    for obj in page.items {
        let Ok(secret) = obj.value() else { continue };
        let of_sa = secret.get("type").and_then(Value::as_str) == Some(SA_TOKEN_SECRET_TYPE)
            && secret
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(SA_NAME_ANNOTATION))
                .and_then(Value::as_str)
                == Some(sa_name);
        if of_sa {
            let _ = cluster.store.delete(
                SECRETS,
                Some(ns),
                &obj.name,
                &Preconditions::default(),
                false,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_their_signer_and_unaltered() {
        let a = Signer::random();
        let b = Signer::random();
        let claims = json!({"iss": ISSUER, "sub": "x"});
        let token = a.sign(&claims);
        assert_eq!(a.verify(&token), Some(claims));
        assert_eq!(b.verify(&token), None);
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(json!({"iss": ISSUER, "sub": "admin"}).to_string());
        parts[1] = &forged;
        assert_eq!(a.verify(&parts.join(".")), None);
        assert_eq!(a.verify("not-a-jwt"), None);
    }

    /// `pkg/serviceaccount/claims.go` `Validate`: expired, not-yet-valid and foreign-audience
    /// tokens are rejected (401).
    #[test]
    fn bound_tokens_expire_and_must_be_for_the_api_server() {
        let claims = json!({"aud": [ISSUER], "exp": 2000, "nbf": 1000, "iat": 1000});
        assert!(bound_token_current(&claims, 1500));
        assert!(!bound_token_current(&claims, 2000), "expired at exp");
        assert!(!bound_token_current(&claims, 999), "not before nbf");
        let foreign = json!({"aud": ["vault"], "exp": 2000, "nbf": 1000});
        assert!(!bound_token_current(&foreign, 1500));
        assert!(
            !bound_token_current(&json!({"aud": [ISSUER]}), 1500),
            "no exp"
        );
    }

    #[test]
    fn service_account_users_have_the_upstream_name_and_groups() {
        let u = User::service_account("shop", "robot");
        assert_eq!(u.name, "system:serviceaccount:shop:robot");
        assert_eq!(
            u.groups,
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:shop",
                "system:authenticated"
            ]
        );
        assert!(!u.is_admin());
        assert!(User::admin().is_admin());
    }
}
