//! The simulated multicluster gateway of a cluster: a plain HTTP listener whose probe path
//! answers according to [`GatewayMode`](crate::GatewayMode).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::faults::{FaultState, GatewayMode};

/// Serves probes until `cancel` fires. Every path answers, `/ready` included.
pub(crate) async fn serve(
    listener: TcpListener,
    faults: Arc<FaultState>,
    cancel: CancellationToken,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let faults = faults.clone();
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |_req| {
                        let faults = faults.clone();
                        async move {
                            let code = match faults.gateway() {
                                GatewayMode::Healthy => StatusCode::OK,
                                GatewayMode::Failing => StatusCode::INTERNAL_SERVER_ERROR,
                                GatewayMode::Hanging => {
                                    futures::future::pending::<()>().await;
                                    StatusCode::OK
                                }
                            };
                            let mut resp = Response::new(Full::new(Bytes::from(code.as_str().to_string())));
                            *resp.status_mut() = code;
                            Ok::<_, Infallible>(resp)
                        }
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
}
