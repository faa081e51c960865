//! Watch streams: newline-delimited `{"type": ..., "object": ...}` events over a chunked
//! response, with bookmarks, timeouts, selectors, `410 Expired` as an ERROR event (as the real
//! API server sends it), and the sever fault closing every stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::{Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::resources::Target;
use super::{Body, Query, table};
use crate::cluster::ClusterInner;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult};
use crate::store::{Event, Obj};

/// Watches end after this long unless `timeoutSeconds` says otherwise (a real API server picks
/// 30 to 60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
/// How often a bookmark is sent to clients that allow them.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(5);

struct Encoder {
    kind: &'static str,
    columns: Vec<Value>,
    api_version: String,
    as_table: bool,
    include: Option<String>,
}

impl Encoder {
    fn event(&self, ty: &str, obj: &Obj) -> Bytes {
        let mut out = BytesMut::with_capacity(obj.json.len() + 32);
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(ty.as_bytes());
        out.extend_from_slice(b"\",\"object\":");
        if self.as_table {
            let v: Value = serde_json::from_slice(&obj.json).unwrap_or(Value::Null);
            let t = json!({
                "kind": "Table",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": obj.rv.to_string()},
                "columnDefinitions": [],
                "rows": [table::row(&self.columns, self.kind, &v, self.include.as_deref())],
            });
            out.extend_from_slice(t.to_string().as_bytes());
        } else {
            out.extend_from_slice(&obj.json);
        }
        out.extend_from_slice(b"}\n");
        out.freeze()
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let ev = json!({
            "type": "BOOKMARK",
            "object": {"kind": self.kind, "apiVersion": self.api_version, "metadata": meta},
        });
        Bytes::from(format!("{ev}\n"))
    }
}

fn error_event(err: &ApiError) -> Bytes {
    Bytes::from(format!(
        "{}\n",
        json!({"type": "ERROR", "object": err.to_json()})
    ))
}

/// Starts a watch response.
pub(crate) fn serve(
    cluster: &Arc<ClusterInner>,
    target: &Target,
    query: &Query,
    labels: LabelSelector,
    fields: FieldSelector,
    as_table: bool,
    user_agent: Option<String>,
) -> ApiResult<Response<Body>> {
    let r = target.resource;
    let rt = crate::resources::rt(r);
    // Counted while the response body lives: it ends with the stream or the connection.
    let open = cluster.open.watch(crate::requests::OpenWatch {
        group: rt.group.to_string(),
        resource: rt.plural.to_string(),
        user_agent,
    });
    let send_initial = query.flag("sendInitialEvents");
    let rv = match query.get("resourceVersion") {
        _ if send_initial => None,
        None | Some("") | Some("0") => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {v:?}")))?,
        ),
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let bookmarks = query.flag("allowWatchBookmarks");
    let enc = Encoder {
        kind: rt.kind,
        columns: super::resources::custom_columns(cluster, r),
        api_version: rt.api_version(),
        as_table,
        include: query.get("includeObject").map(str::to_string),
    };
    let mut sever = cluster.faults.sever_receiver();
    let ns = target.namespace.clone();
    let start = cluster.store.watch(r, ns.as_deref(), &labels, &fields, rv);
    let store_cluster = cluster.clone();
    let stream = async_stream::stream! {
        let _open = open;
        let start = match start {
            Ok(s) => s,
            Err(e) => {
                yield error_event(&e);
                return;
            }
        };
        let mut last_rv = rv.unwrap_or(0);
        for ev in &start.initial {
            last_rv = last_rv.max(ev.obj.rv);
            yield enc.event(ev.kind.as_str(), &ev.obj);
        }
        if send_initial {
            yield enc.bookmark(store_cluster.store.current_rv().max(last_rv), true);
        }
        let mut rx = start.rx;
        let seen = |ev: &Event| ev.for_watcher(ns.as_deref(), &labels, &fields);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        ticker.tick().await;
        loop {
            tokio::select! {
                () = &mut deadline => break,
                _ = sever.changed() => break,
                _ = ticker.tick(), if bookmarks => {
                    // Everything committed up to `now` is already in the channel: drain it
                    // before promising the client that it has seen `now`.
                    let now = store_cluster.store.current_rv();
                    let mut lagged = false;
                    loop {
                        match rx.try_recv() {
                            Ok(ev) => {
                                if ev.obj.rv > last_rv && let Some((kind, obj)) = seen(&ev) {
                                    yield enc.event(kind.as_str(), &obj);
                                }
                                last_rv = last_rv.max(ev.obj.rv);
                            }
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Lagged(_)) => { lagged = true; break; }
                            Err(TryRecvError::Closed) => { lagged = true; break; }
                        }
                    }
                    if lagged {
                        break;
                    }
                    yield enc.bookmark(now.max(last_rv), false);
                }
                received = rx.recv() => match received {
                    Ok(ev) => {
                        if ev.obj.rv > last_rv && let Some((kind, obj)) = seen(&ev) {
                            yield enc.event(kind.as_str(), &obj);
                        }
                        last_rv = last_rv.max(ev.obj.rv);
                    }
                    // A watcher this far behind is closed; it resumes from its last version.
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => break,
                },
            }
        }
    };
    let body = BodyExt::boxed(StreamBody::new(
        stream.map(|b| Ok::<_, Infallible>(Frame::data(b))),
    ));
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}
