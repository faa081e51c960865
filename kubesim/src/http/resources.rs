//! The resource verbs: get, list, create, update, patch, delete, deletecollection (watch is in
//! [`super::watch`]). Each turns the request into a [`Store`](crate::store::Store) call and the
//! answer (or `Status`) into a response.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Request, Response, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::Value;

use super::{Body, Query, error_response, json_response, table, watch};
use crate::cluster::ClusterInner;
use crate::resources::{SECRETS, SERVICE_ACCOUNTS};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult, cause};
use crate::store::{Obj, PatchType, Preconditions, WriteCtx};

/// Largest request body accepted, as the Kubernetes API server limits it (3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// A parsed resource URL.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub resource: usize,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

impl Target {
    /// Parses `/api/v1/...` and `/apis/<group>/<version>/...` resource paths against the
    /// types `store` serves.
    pub fn parse(segs: &[&str], store: &crate::store::Store) -> Option<Self> {
        let (group, version, rest) = match segs {
            ["api", v, rest @ ..] => ("", *v, rest),
            ["apis", g, v, rest @ ..] => (*g, *v, rest),
            _ => return None,
        };
        let namespaced_plural = |p: &str| {
            store
                .find(group, version, p)
                .filter(|r| crate::resources::rt(*r).namespaced)
        };
        let (resource, namespace, rest) = match rest {
            ["namespaces", ns, plural, tail @ ..] if namespaced_plural(plural).is_some() => {
                (namespaced_plural(plural)?, Some(ns.to_string()), tail)
            }
            [plural, tail @ ..] => (store.find(group, version, plural)?, None, tail),
            [] => return None,
        };
        let rt = crate::resources::rt(resource);
        // A namespaced type addressed without a namespace may only be listed or watched.
        if rt.namespaced && namespace.is_none() && !rest.is_empty() {
            return None;
        }
        let (name, subresource) = match rest {
            [] => (None, None),
            [name] => (Some(name.to_string()), None),
            [name, "status"] if rt.status => (Some(name.to_string()), Some("status".to_string())),
            [name, "token"] if resource == SERVICE_ACCOUNTS => {
                (Some(name.to_string()), Some("token".to_string()))
            }
            _ => return None,
        };
        Some(Self {
            resource,
            namespace,
            name,
            subresource,
        })
    }
}

fn selectors(query: &Query) -> ApiResult<(LabelSelector, FieldSelector)> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse field selector: {e}")))?;
    Ok((labels, fields))
}

/// Whether the client asked for server-side printing (kubectl get).
pub(crate) fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

async fn read_body(req: Request<Incoming>) -> ApiResult<(HeaderMap, Bytes)> {
    let (parts, body) = req.into_parts();
    let collected = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
    Ok((parts.headers, collected.to_bytes()))
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let ct = content_type(headers);
    if ct == crate::protobuf::MEDIA_TYPE {
        // client-go's typed clients (kubectl create namespace|secret|configmap|service|token,
        // kubectl auth can-i) send built-in kinds as protobuf.
        return crate::protobuf::decode(body);
    }
    if ct.contains("protobuf") || ct.contains("cbor") {
        return Err(ApiError::unsupported_media(format!(
            "the body of the request was in an unknown format - accepted media types include: {ACCEPTED_MEDIA_TYPES} (got {ct})"
        )));
    }
    let parsed = if ct.contains("yaml") {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
        serde_saphyr::from_str::<Value>(text).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(body).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request was in an unknown format - accepted media types include: {ACCEPTED_MEDIA_TYPES} ({e})"
        ))
    })
}

/// Request body media types, as the `415` message lists them.
const ACCEPTED_MEDIA_TYPES: &str =
    "application/json, application/yaml, application/vnd.kubernetes.protobuf";

/// Whether the response may be JSON: kubesim answers in JSON only, so a client that accepts
/// nothing but protobuf gets `406 NotAcceptable`, as a real API server answers for a media
/// type it cannot produce (apimachinery `handlers/negotiation`).
pub(crate) fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.split(',').any(|range| {
        let media = range.split(';').next().unwrap_or("").trim();
        media.is_empty()
            || matches!(media, "*/*" | "application/*" | "application/json")
            || media.ends_with("+json")
            || media.contains("yaml")
    })
}

fn manager(query: &Query, headers: &HeaderMap) -> String {
    if let Some(m) = query.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

fn object_response(code: u16, obj: &Obj) -> Response<Body> {
    json_response(code, obj.json.clone())
}

/// Serves one resource request.
pub(crate) async fn handle(
    cluster: &Arc<ClusterInner>,
    target: Target,
    query: Query,
    req: Request<Incoming>,
) -> Response<Body> {
    match handle_inner(cluster, target, query, req).await {
        Ok(resp) => resp,
        Err(e) => error_response(&e),
    }
}

async fn handle_inner(
    cluster: &Arc<ClusterInner>,
    target: Target,
    query: Query,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let store = &cluster.store;
    let r = target.resource;
    let rt = crate::resources::rt(r);
    let ns = target.namespace.as_deref();
    let sub = target.subresource.as_deref().unwrap_or("");
    let as_table = wants_table(req.headers());
    let dry_run = query.get("dryRun") == Some("All");
    let method = req.method().clone();
    match (&method, target.name.as_deref()) {
        (&Method::GET, None) => {
            let (labels, fields) = selectors(&query)?;
            if query.flag("watch") {
                let user_agent = req
                    .headers()
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                return watch::serve(
                    cluster, &target, &query, labels, fields, as_table, user_agent,
                );
            }
            let limit = query
                .get("limit")
                .map(|l| l.parse::<usize>())
                .transpose()
                .map_err(|_| ApiError::bad_request("limit must be a non-negative integer"))?;
            if query.get("resourceVersionMatch") == Some("Exact")
                && let Some(rv) = query.get("resourceVersion")
                && rv != store.current_rv().to_string()
            {
                return Err(ApiError::gone(format!(
                    "too old resource version: {rv} ({})",
                    store.current_rv()
                )));
            }
            let page = store.list(r, ns, &labels, &fields, limit, query.get("continue"))?;
            if as_table {
                let t = table::table(
                    &custom_columns(cluster, r),
                    r,
                    &page.items,
                    Some(page.rv),
                    &query,
                    page.continue_token.as_deref(),
                );
                return Ok(json_response(200, t.to_string()));
            }
            Ok(json_response(200, list_body(r, &page)))
        }
        (&Method::GET, Some(name)) => {
            let obj = store.get(r, ns.unwrap_or(""), name)?;
            if as_table {
                let t = table::table(
                    &custom_columns(cluster, r),
                    r,
                    std::slice::from_ref(&obj),
                    None,
                    &query,
                    None,
                );
                return Ok(json_response(200, t.to_string()));
            }
            Ok(json_response(200, obj.json.clone()))
        }
        (&Method::POST, None) => {
            let mgr = manager(&query, req.headers());
            let (headers, body) = read_body(req).await?;
            let value = parse_body(&headers, &body)?;
            let ctx = WriteCtx {
                manager: mgr,
                dry_run,
                force: false,
            };
            let obj = store.create(r, ns, value, &ctx)?;
            if r == SECRETS && !dry_run {
                crate::auth::populate_token_secret(cluster, &obj.namespace, &obj.name);
            }
            Ok(object_response(201, &obj))
        }
        (&Method::POST, Some(name)) if sub == "token" => {
            let (headers, body) = read_body(req).await?;
            let value = parse_body(&headers, &body)?;
            let answer = crate::auth::token_request(cluster, ns.unwrap_or(""), name, &value)?;
            Ok(json_response(201, answer.to_string()))
        }
        (&Method::PUT, Some(name)) => {
            let mgr = manager(&query, req.headers());
            let (headers, body) = read_body(req).await?;
            let value = parse_body(&headers, &body)?;
            let ctx = WriteCtx {
                manager: mgr,
                dry_run,
                force: false,
            };
            let obj = store.update(r, ns, name, value, sub, &ctx)?;
            Ok(object_response(200, &obj))
        }
        (&Method::PATCH, Some(name)) => {
            let ty = match content_type(req.headers()).as_str() {
                "application/json-patch+json" => PatchType::Json,
                "application/merge-patch+json" => PatchType::Merge,
                "application/strategic-merge-patch+json" => PatchType::Strategic,
                "application/apply-patch+yaml" | "application/apply-patch+json" => PatchType::Apply,
                other => {
                    return Err(ApiError::unsupported_media(format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"
                    )));
                }
            };
            if ty == PatchType::Strategic && rt.custom {
                // Custom resources have no Go struct tags to drive a strategic merge
                // (apiextensions-apiserver `crdHandler` lists the patch types it accepts).
                return Err(ApiError::unsupported_media(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                ));
            }
            if ty == PatchType::Apply && query.get("fieldManager").is_none_or(str::is_empty) {
                return Err(ApiError::invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "PatchOptions",
                    "",
                    vec![cause(
                        "FieldValueRequired",
                        "fieldManager",
                        "Required value: is required for apply patch",
                    )],
                ));
            }
            let mgr = manager(&query, req.headers());
            let (headers, body) = read_body(req).await?;
            let value = if ty == PatchType::Apply {
                let text = std::str::from_utf8(&body)
                    .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
                serde_saphyr::from_str::<Value>(text)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
            } else {
                parse_body(&headers, &body)?
            };
            let ctx = WriteCtx {
                manager: mgr,
                dry_run,
                force: query.flag("force"),
            };
            let (obj, created) = store.patch(r, ns, name, ty, &value, sub, &ctx)?;
            Ok(object_response(if created { 201 } else { 200 }, &obj))
        }
        (&Method::DELETE, Some(name)) => {
            let (headers, body) = read_body(req).await?;
            let opts = if body.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                parse_body(&headers, &body)?
            };
            let pre = Preconditions {
                uid: opts
                    .pointer("/preconditions/uid")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                resource_version: opts
                    .pointer("/preconditions/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            };
            let dry = dry_run
                || opts
                    .get("dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|d| d.iter().any(|x| x == "All"));
            let obj = store.delete(r, ns, name, &pre, dry)?;
            if r == SERVICE_ACCOUNTS && !dry {
                crate::auth::delete_tokens_of(cluster, ns.unwrap_or(""), name);
            }
            Ok(json_response(200, obj.json.clone()))
        }
        (&Method::DELETE, None) => {
            let (labels, fields) = selectors(&query)?;
            let deleted = store.delete_collection(r, ns, &labels, &fields, dry_run)?;
            let page = crate::store::ListPage {
                items: deleted,
                rv: store.current_rv(),
                continue_token: None,
                remaining: 0,
            };
            Ok(json_response(200, list_body(r, &page)))
        }
        _ => Err(ApiError::method_not_allowed(method.as_str())),
    }
}

/// `POST /apis/authorization.k8s.io/v1/selfsubject{access,rules}reviews` (what `kubectl auth
/// can-i` and `kubectl auth can-i --list` ask): answered for the caller from the RBAC rules,
/// `201 Created` as upstream.
pub(crate) async fn self_subject_review(
    cluster: &Arc<ClusterInner>,
    user: &crate::auth::User,
    review: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    if req.method() != Method::POST {
        return error_response(&ApiError::method_not_allowed(req.method().as_str()));
    }
    let (kind, rules) = match review {
        "selfsubjectrulesreviews" => ("SelfSubjectRulesReview", true),
        _ => ("SelfSubjectAccessReview", false),
    };
    let answer = async {
        let (headers, body) = read_body(req).await?;
        let value = parse_body(&headers, &body)?;
        if let Some(k) = value.get("kind").and_then(Value::as_str)
            && k != kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({kind})"
            )));
        }
        if rules {
            crate::rbac::self_subject_rules_review(&cluster.store, user, &value)
        } else {
            crate::rbac::self_subject_access_review(&cluster.store, user, &value)
        }
    }
    .await;
    match answer {
        Ok(v) => json_response(201, v.to_string()),
        Err(e) => error_response(&e),
    }
}

/// The `additionalPrinterColumns` of a custom type (empty for built-in types).
pub(crate) fn custom_columns(cluster: &ClusterInner, r: usize) -> Vec<Value> {
    cluster
        .store
        .served(r)
        .map(|s| s.columns)
        .unwrap_or_default()
}

/// A `<Kind>List` body, concatenated from stored bytes.
fn list_body(r: usize, page: &crate::store::ListPage) -> Bytes {
    let rt = crate::resources::rt(r);
    let size: usize = page.items.iter().map(|o| o.json.len() + 1).sum();
    let mut out = BytesMut::with_capacity(size + 256);
    out.extend_from_slice(
        format!(
            "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{{\"resourceVersion\":\"{}\"",
            rt.kind,
            rt.api_version(),
            page.rv
        )
        .as_bytes(),
    );
    if let Some(c) = &page.continue_token {
        out.extend_from_slice(
            format!(
                ",\"continue\":\"{c}\",\"remainingItemCount\":{}",
                page.remaining
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"},\"items\":[");
    for (i, o) in page.items.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",");
        }
        out.extend_from_slice(&o.json);
    }
    out.extend_from_slice(b"]}");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{NAMESPACES, SERVICES};

    /// apimachinery `handlers/negotiation` (`NegotiateOutputMediaType`): a server answers in a
    /// media type the client accepts; client-go's protobuf clients also accept JSON.
    #[test]
    fn json_answers_need_a_client_that_accepts_json() {
        let with = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, accept.parse().unwrap());
            accepts_json(&h)
        };
        assert!(accepts_json(&HeaderMap::new()));
        assert!(with("application/vnd.kubernetes.protobuf, */*"));
        assert!(with(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(with("application/vnd.kubernetes.protobuf,application/json"));
        assert!(!with("application/vnd.kubernetes.protobuf"));
    }

    #[test]
    fn parses_the_kubernetes_url_layout() {
        let store = crate::store::Store::new(10);
        let t = Target::parse(
            &[
                "api",
                "v1",
                "namespaces",
                "default",
                "services",
                "web",
                "status",
            ],
            &store,
        )
        .unwrap();
        assert_eq!(
            (t.resource, t.namespace.as_deref(), t.name.as_deref()),
            (SERVICES, Some("default"), Some("web"))
        );
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let t = Target::parse(&["api", "v1", "namespaces", "default"], &store).unwrap();
        assert_eq!(
            (t.resource, t.name.as_deref()),
            (NAMESPACES, Some("default"))
        );
        let t = Target::parse(&["api", "v1", "services"], &store).unwrap();
        assert_eq!((t.resource, t.namespace, t.name), (SERVICES, None, None));
        let t = Target::parse(
            &[
                "apis",
                "coordination.k8s.io",
                "v1",
                "namespaces",
                "x",
                "leases",
            ],
            &store,
        )
        .unwrap();
        assert_eq!(crate::resources::rt(t.resource).kind, "Lease");
        assert!(Target::parse(&["api", "v1", "services", "web"], &store).is_none());
        assert!(Target::parse(&["api", "v1", "pods"], &store).is_none());
        assert!(
            Target::parse(
                &["api", "v1", "namespaces", "d", "configmaps", "c", "status"],
                &store
            )
            .is_none()
        );
    }
}
