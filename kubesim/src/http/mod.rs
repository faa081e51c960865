//! The HTTP(S) front of one simulated cluster: the accept loop (stoppable and restartable on
//! the same port), bearer-token authentication, fault injection, and routing of the
//! Kubernetes URL layout to [`discovery`], [`resources`] and [`watch`].

pub(crate) mod discovery;
pub(crate) mod openapi;
pub(crate) mod resources;
pub(crate) mod table;
pub(crate) mod watch;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::cluster::ClusterInner;
use crate::status::ApiError;

/// Response body: a whole buffer or a watch stream.
pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// Accepts connections until `cancel` fires, then drops every open connection (and with them
/// every watch), as a crashed API server would.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    cluster: Arc<ClusterInner>,
    cancel: CancellationToken,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let cluster = cluster.clone();
                let tls = tls.clone();
                conns.spawn(async move {
                    match tls {
                        Some(acceptor) => match acceptor.accept(tcp).await {
                            Ok(stream) => serve_io(stream, cluster).await,
                            Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
                        },
                        None => serve_io(tcp, cluster).await,
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
}

async fn serve_io<I>(io: I, cluster: Arc<ClusterInner>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _open = cluster.open.connection();
    let service = hyper::service::service_fn(move |req| {
        let cluster = cluster.clone();
        async move { Ok::<_, Infallible>(handle(cluster, req).await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder.serve_connection(TokioIo::new(io), service).await {
        tracing::debug!(error = %e, "connection closed with an error");
    }
}

/// A JSON response.
pub(crate) fn json_response(code: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// The `Status` response of an error.
pub(crate) fn error_response(err: &ApiError) -> Response<Body> {
    let mut resp = json_response(err.code, err.to_json().to_string());
    if err.code == 429 {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    resp
}

/// Decoded query parameters.
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        Self(pairs)
    }

    /// The first value of a parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter (`1`/`true`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true" | "True"))
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a request changes state (the writes fault injection may fail).
fn is_write(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// The authorizer's view of a resource request (apiserver `RequestInfoFactory`): the verb
/// from the method (GET is get, list or watch), and for a list or watch selecting one name by
/// `metadata.name`, that name.
fn request_attributes(
    method: &Method,
    target: &resources::Target,
    query: &Query,
) -> crate::rbac::Attributes {
    let collection = target.name.is_none();
    let verb = match *method {
        Method::GET if collection && query.flag("watch") => "watch",
        Method::GET if collection => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    };
    let selected = (verb == "list" || verb == "watch")
        .then(|| query.get("fieldSelector"))
        .flatten()
        .and_then(|fs| {
            fs.split(',').find_map(|term| {
                term.strip_prefix("metadata.name==")
                    .or_else(|| term.strip_prefix("metadata.name="))
            })
        });
    crate::rbac::resource_attributes(
        verb,
        target.resource,
        target.namespace.as_deref(),
        target.name.as_deref().or(selected),
        target.subresource.as_deref(),
    )
}

async fn handle(cluster: Arc<ClusterInner>, req: Request<Incoming>) -> Response<Body> {
    let received_at = chrono::Utc::now();
    let latency = cluster.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let path = req.uri().path().to_string();
    if matches!(path.as_str(), "/healthz" | "/livez" | "/readyz") {
        return Response::new(Full::new(Bytes::from_static(b"ok")).boxed());
    }
    let Some(user) = crate::auth::authenticate(&cluster, req.headers().get(header::AUTHORIZATION))
    else {
        return error_response(&ApiError::unauthorized());
    };
    let query = Query::parse(req.uri().query());
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // Discovery and the other non-resource paths are open to every authenticated user (the
    // bootstrap `system:discovery` role).
    if let Some(resp) = discovery::route(&cluster, req.method(), req.headers(), &segs) {
        return resp;
    }
    if !resources::accepts_json(req.headers()) {
        return error_response(&ApiError::not_acceptable());
    }
    if let ["apis", "authorization.k8s.io", "v1", review] = segs.as_slice()
        && matches!(
            *review,
            "selfsubjectaccessreviews" | "selfsubjectrulesreviews"
        )
    {
        let review = (*review).to_string();
        return resources::self_subject_review(&cluster, &user, &review, req).await;
    }
    let Some(target) = resources::Target::parse(&segs, &cluster.store) else {
        return error_response(&ApiError::path_not_found());
    };
    let attrs = request_attributes(req.method(), &target, &query);
    let label_selector = query.get("labelSelector").map(str::to_string);
    let user_agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let resp = if !crate::rbac::authorize(&cluster.store, &user, &attrs).allowed {
        error_response(&crate::rbac::forbidden(&user, &attrs))
    } else if is_write(req.method())
        && query.get("dryRun").is_none_or(|d| d != "All")
        && let Some(err) = cluster.faults.injected_write_failure()
    {
        error_response(&err)
    } else {
        resources::handle(&cluster, target, query, req).await
    };
    let some = |s: String| (!s.is_empty()).then_some(s);
    cluster.requests.record(crate::requests::LoggedRequest {
        seq: 0,
        verb: attrs.verb,
        group: attrs.api_group,
        resource: attrs.resource,
        subresource: some(attrs.subresource),
        namespace: some(attrs.namespace),
        name: some(attrs.name),
        user: user.name,
        code: resp.status().as_u16(),
        user_agent,
        label_selector,
        received_at,
    });
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_percent_decoded() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1&x=%zz",
        ));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("x"), Some("%zz"));
        assert_eq!(q.get("missing"), None);
    }
}
