//! The admin endpoint: fault injection over plain HTTP on `127.0.0.1`, for driving a running
//! `linkplane sim` from scripts.
//!
//! - `GET  /clusters` — name, url, kubeconfig path and gateway address of each cluster
//! - `POST /clusters?name=NAME` — start another cluster
//! - `POST /clusters/NAME/stop|start|restart|sever-watches|expire-history|clear`
//! - `POST /clusters/NAME/latency?ms=N`
//! - `POST /clusters/NAME/fail-writes?fraction=F&code=500|429`
//! - `POST /clusters/NAME/gateway?mode=healthy|failing|hanging`
//! - `GET  /clusters/NAME/requests?since=SEQ` — the request log from `SEQ` on (default 0), each
//!   entry shaped like an `audit.k8s.io/v1` Event at the `Metadata` level, and `next`, the mark
//!   to pass next time; how tests of a separate process read who wrote what, and when
//!
//! It listens on loopback only and carries no credentials in its answers (kubeconfig paths,
//! not tokens).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{Error, GatewayMode, SimInner, WriteFailure};

/// The running admin listener.
pub(crate) struct AdminHandle {
    pub addr: SocketAddr,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl AdminHandle {
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// Starts the admin listener on a random loopback port.
pub(crate) async fn start(sim: Arc<SimInner>) -> Result<AdminHandle, Error> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| Error::io("binding the admin listener", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the admin listener address", e))?;
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    let sim = sim.clone();
                    conns.spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let sim = sim.clone();
                            async move { Ok::<_, Infallible>(handle(&sim, req).await) }
                        });
                        let _ = auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(tcp), service)
                            .await;
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        conns.abort_all();
    });
    Ok(AdminHandle { addr, cancel, task })
}

fn reply(code: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = code;
    resp
}

/// A logged request in the field names of `audit.k8s.io/v1` `Event` (`Metadata` level: no
/// bodies, so no credentials), plus kubesim's sequence number.
fn audit_event(r: &crate::LoggedRequest) -> Value {
    json!({
        "seq": r.seq,
        "verb": r.verb,
        "user": {"username": r.user},
        "userAgent": r.user_agent,
        "objectRef": {
            "apiGroup": r.group,
            "resource": r.resource,
            "subresource": r.subresource,
            "namespace": r.namespace,
            "name": r.name,
        },
        "responseStatus": {"code": r.code},
        "requestReceivedTimestamp": r.received_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    })
}

fn param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

async fn handle<B>(sim: &SimInner, req: Request<B>) -> Response<Full<Bytes>> {
    let bad = |msg: String| reply(StatusCode::BAD_REQUEST, json!({"error": msg}));
    let query = req.uri().query().unwrap_or("").to_string();
    let segs: Vec<String> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (req.method(), segs.as_slice()) {
        (&Method::GET, ["clusters"]) => {
            let list: Vec<Value> = sim
                .cluster_list()
                .iter()
                .map(|c| {
                    json!({
                        "name": c.name(),
                        "url": c.url(),
                        "kubeconfig": c.kubeconfig_path(),
                        "gateway": c.gateway_addr().to_string(),
                    })
                })
                .collect();
            reply(StatusCode::OK, Value::Array(list))
        }
        (&Method::POST, ["clusters"]) => {
            let Some(name) = param(&query, "name") else {
                return bad("name is required".into());
            };
            match sim.add_cluster(name).await {
                Ok(c) => reply(
                    StatusCode::CREATED,
                    json!({"name": c.name(), "url": c.url(), "kubeconfig": c.kubeconfig_path()}),
                ),
                Err(e) => bad(e.to_string()),
            }
        }
        (&Method::GET, ["clusters", name, "requests"]) => {
            let Some(cluster) = sim.cluster(name) else {
                return reply(
                    StatusCode::NOT_FOUND,
                    json!({"error": format!("no cluster {name:?}")}),
                );
            };
            let since = match param(&query, "since").map(str::parse::<u64>) {
                None => 0,
                Some(Ok(n)) => n,
                Some(Err(_)) => return bad("since must be a request sequence number".into()),
            };
            // The mark is taken first, so `next` skips nothing recorded while the log is read:
            // whatever came in between is either in `items` or at or after the mark.
            let mark = cluster.request_mark();
            let log = cluster.requests_since(since);
            let next = log.last().map_or(mark, |r| (r.seq + 1).max(mark));
            let items: Vec<Value> = log.iter().map(audit_event).collect();
            reply(StatusCode::OK, json!({"next": next, "items": items}))
        }
        (&Method::POST, ["clusters", name, action]) => {
            let Some(cluster) = sim.cluster(name) else {
                return reply(
                    StatusCode::NOT_FOUND,
                    json!({"error": format!("no cluster {name:?}")}),
                );
            };
            let f = cluster.faults();
            match *action {
                "stop" => f.stop_api().await,
                "start" => {
                    if let Err(e) = f.start_api().await {
                        return reply(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            json!({"error": e.to_string()}),
                        );
                    }
                }
                "restart" => {
                    if let Err(e) = f.restart_api().await {
                        return reply(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            json!({"error": e.to_string()}),
                        );
                    }
                }
                "sever-watches" => f.sever_watches(),
                "expire-history" => f.expire_watch_history(),
                "clear" => f.clear(),
                "latency" => match param(&query, "ms").and_then(|v| v.parse::<u64>().ok()) {
                    Some(ms) => f.set_latency(Duration::from_millis(ms)),
                    None => return bad("ms must be a number of milliseconds".into()),
                },
                "fail-writes" => {
                    let Some(fraction) = param(&query, "fraction")
                        .and_then(|v| v.parse::<f64>().ok())
                        .filter(|x| (0.0..=1.0).contains(x))
                    else {
                        return bad("fraction must be between 0 and 1".into());
                    };
                    let failure = match param(&query, "code") {
                        None | Some("500") => WriteFailure::InternalError,
                        Some("429") => WriteFailure::TooManyRequests,
                        Some(other) => return bad(format!("code must be 500 or 429, not {other}")),
                    };
                    f.fail_writes(fraction, failure);
                }
                "gateway" => {
                    let mode = match param(&query, "mode") {
                        Some("healthy") => GatewayMode::Healthy,
                        Some("failing") => GatewayMode::Failing,
                        Some("hanging") => GatewayMode::Hanging,
                        _ => return bad("mode must be healthy, failing or hanging".into()),
                    };
                    f.set_gateway(mode);
                }
                other => {
                    return reply(
                        StatusCode::NOT_FOUND,
                        json!({"error": format!("unknown action {other:?}")}),
                    );
                }
            }
            reply(StatusCode::OK, json!({"ok": true}))
        }
        _ => reply(StatusCode::NOT_FOUND, json!({"error": "not found"})),
    }
}
