//! One simulated cluster: its store, token, listeners and faults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::faults::FaultState;
use crate::store::Store;

type Running = (CancellationToken, JoinHandle<()>);

/// Everything a cluster's listeners share.
pub(crate) struct ClusterInner {
    pub name: String,
    pub token: String,
    pub addr: SocketAddr,
    pub gateway_addr: SocketAddr,
    pub store: Store,
    pub faults: Arc<FaultState>,
    pub tls: Option<TlsAcceptor>,
    pub kubeconfig_path: PathBuf,
    pub kubeconfig_yaml: String,
    /// Signs the cluster's service-account tokens.
    pub signer: crate::auth::Signer,
    /// The CA certificate (PEM) clients trust, for `ca.crt` in token Secrets.
    pub ca_pem: Option<String>,
    /// Every resource request answered.
    pub requests: crate::requests::RequestLog,
    /// Watches and connections open now.
    pub open: crate::requests::OpenRequests,
    listener: tokio::sync::Mutex<Option<Running>>,
    gateway: std::sync::Mutex<Option<Running>>,
}

impl ClusterInner {
    /// Binds the API and gateway listeners on fresh ports and starts serving.
    pub async fn start(
        name: &str,
        tls: Option<TlsAcceptor>,
        ca_pem: Option<String>,
        event_window: usize,
        kubeconfig: impl FnOnce(SocketAddr, &str) -> (PathBuf, String),
    ) -> Result<Arc<Self>, Error> {
        let api = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Error::io("binding the API listener", e))?;
        let addr = api
            .local_addr()
            .map_err(|e| Error::io("reading the API listener address", e))?;
        let gw = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Error::io("binding the gateway listener", e))?;
        let gateway_addr = gw
            .local_addr()
            .map_err(|e| Error::io("reading the gateway listener address", e))?;
        let token = random_token();
        let (kubeconfig_path, kubeconfig_yaml) = kubeconfig(addr, &token);
        let inner = Arc::new(Self {
            name: name.to_string(),
            token,
            addr,
            gateway_addr,
            store: Store::new(event_window),
            faults: Arc::new(FaultState::default()),
            tls,
            kubeconfig_path,
            kubeconfig_yaml,
            signer: crate::auth::Signer::random(),
            ca_pem,
            requests: crate::requests::RequestLog::default(),
            open: crate::requests::OpenRequests::default(),
            listener: tokio::sync::Mutex::new(None),
            gateway: std::sync::Mutex::new(None),
        });
        inner.spawn_api(api).await;
        let cancel = CancellationToken::new();
        let task = tokio::spawn(crate::gateway::serve(
            gw,
            inner.faults.clone(),
            cancel.clone(),
        ));
        *inner.gateway.lock().unwrap_or_else(|p| p.into_inner()) = Some((cancel, task));
        Ok(inner)
    }

    async fn spawn_api(self: &Arc<Self>, listener: TcpListener) {
        let cancel = CancellationToken::new();
        let task = tokio::spawn(crate::http::serve(
            listener,
            self.tls.clone(),
            self.clone(),
            cancel.clone(),
        ));
        *self.listener.lock().await = Some((cancel, task));
    }

    /// Closes the API listener and its connections; waits until they are gone.
    pub async fn stop_listener(&self) {
        let running = self.listener.lock().await.take();
        if let Some((cancel, task)) = running {
            cancel.cancel();
            let _ = task.await;
        }
    }

    /// Listens again on the same address (no-op when already listening).
    pub async fn start_listener(self: &Arc<Self>) -> Result<(), Error> {
        if self.listener.lock().await.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(|e| Error::io("re-binding the API listener", e))?;
        self.spawn_api(listener).await;
        Ok(())
    }

    /// Stops everything (API and gateway).
    pub async fn shutdown(&self) {
        self.stop_listener().await;
        let gw = self
            .gateway
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((cancel, task)) = gw {
            cancel.cancel();
            let _ = task.await;
        }
    }

    /// Whether `token` is this cluster's admin token (the kubeconfig's).
    pub fn is_admin_token(&self, token: &str) -> bool {
        // Compare in constant time so the token cannot be guessed byte by byte.
        token.len() == self.token.len()
            && token
                .bytes()
                .zip(self.token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
