//! `linkplane serve`'s service-mirror options and start-up: maps flags onto
//! [`linkplane_mirror::Options`] and starts the supervisor.

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use clap::Args;
use linkplane_core::Duration;
use linkplane_mirror::{
    CredentialResolver, Credentials, Metrics, Options, Supervisor, SupervisorHandle,
    credentials::BoxFuture,
};
use linkplane_store::{Store, credentials::CredentialsKey};
use prometheus_client::registry::Registry;
use secrecy::SecretString;

/// Service mirror (reconciler) options.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Reconcilers")]
pub struct MirrorArgs {
    /// Do not run the service-mirror reconcilers (API-only replicas).
    #[arg(long, env = "LINKPLANE_NO_RECONCILE", default_value_t = false)]
    pub no_reconcile: bool,
    /// Kubernetes writes in flight per source cluster.
    #[arg(long, env = "LINKPLANE_RECONCILE_CONCURRENCY", default_value_t = 32)]
    pub reconcile_concurrency: usize,
    /// Full resync interval: the safety net behind the event-driven reconcilers.
    #[arg(long, env = "LINKPLANE_RESYNC_INTERVAL", default_value = "10m")]
    pub resync_interval: Duration,
    /// Namespace of `secretRef` credentials that name none (defaults to the pod's namespace).
    #[arg(long, env = "LINKPLANE_CREDENTIALS_NAMESPACE")]
    pub credentials_namespace: Option<String>,
    /// Kubeconfig of the cluster linkplane runs in, for `secretRef` credentials (default:
    /// the in-cluster service account).
    #[arg(long, env = "LINKPLANE_MANAGEMENT_KUBECONFIG")]
    pub management_kubeconfig: Option<PathBuf>,
}

/// Resolves `credentials: stored` from the encrypted `cluster_credentials` table.
pub struct StoredCredentials {
    store: Store,
    key: Arc<CredentialsKey>,
}

impl StoredCredentials {
    /// A resolver decrypting with the server's credentials key.
    pub fn resolver(store: Store, key: Arc<CredentialsKey>) -> Arc<dyn CredentialResolver> {
        Arc::new(Self { store, key })
    }
}

impl CredentialResolver for StoredCredentials {
    fn kubeconfig<'a>(&'a self, cluster: &'a str) -> BoxFuture<'a, Result<SecretString, String>> {
        Box::pin(async move {
            let mut conn = self.store.acquire().await.map_err(|e| e.to_string())?;
            linkplane_store::credentials::get(&mut conn, cluster, &self.key)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "no credentials have been stored for this cluster".to_string())
        })
    }
}

/// Starts the mirror unless disabled; its metrics go on `registry`. `stored` resolves clusters
/// with `credentials: stored` (see [`StoredCredentials`]); without it they fail with a clear error.
pub async fn start(
    store: &Store,
    args: &MirrorArgs,
    registry: &mut Registry,
    stored: Option<Arc<dyn CredentialResolver>>,
) -> anyhow::Result<Option<SupervisorHandle>> {
    let metrics = Metrics::new(registry);
    if args.no_reconcile {
        tracing::info!("service mirror disabled (--no-reconcile)");
        return Ok(None);
    }
    let options = Options {
        concurrency: args.reconcile_concurrency.max(1),
        resync_interval: args.resync_interval.as_std(),
        credentials: Credentials {
            management_kubeconfig: args.management_kubeconfig.clone(),
            default_namespace: args
                .credentials_namespace
                .clone()
                .or_else(|| std::env::var("POD_NAMESPACE").ok()),
            resolver: stored,
        },
        ..Options::default()
    };
    let handle = Supervisor::start(store.clone(), options, metrics)
        .await
        .context("starting the service mirror")?;
    Ok(Some(handle))
}
