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
    /// How long a replica's lease on a cluster lasts without renewal. A replica that dies
    /// without shutting down (kill -9, node loss) has its clusters taken over after at most
    /// this plus one renew interval; it stops writing a fifth of this before its lease ends.
    #[arg(long, env = "LINKPLANE_LEASE_DURATION", default_value = "10s")]
    pub lease_duration: Duration,
    /// How often a replica renews its leases and recomputes which clusters it should own.
    #[arg(long, env = "LINKPLANE_LEASE_RENEW_INTERVAL", default_value = "2s")]
    pub lease_renew_interval: Duration,
    /// This replica's name in `replicas` and in its user agent (default: the pod or host name).
    #[arg(long, env = "LINKPLANE_REPLICA_NAME")]
    pub replica_name: Option<String>,
}

impl MirrorArgs {
    /// The lease options, or an error for timings that cannot be safe.
    pub fn lease(&self) -> anyhow::Result<linkplane_mirror::LeaseOptions> {
        let (duration, renew) = (
            self.lease_duration.as_std(),
            self.lease_renew_interval.as_std(),
        );
        if renew.is_zero() || renew * 2 > duration {
            anyhow::bail!(
                "--lease-renew-interval ({}) must be positive and at most half of --lease-duration ({})",
                self.lease_renew_interval,
                self.lease_duration
            );
        }
        let name = self
            .replica_name
            .clone()
            .or_else(|| std::env::var("POD_NAME").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "linkplane".to_string());
        let mut o = linkplane_mirror::LeaseOptions::new(&name);
        o.duration = duration;
        o.renew_interval = renew;
        // A fifth of the lease covers a write in flight and clock-rate drift (2 s at 10 s).
        o.margin = duration / 5;
        Ok(o)
    }
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
    let lease = args.lease()?;
    tracing::info!(replica = %lease.replica_id, duration = %args.lease_duration, "cluster leases on");
    let options = Options {
        lease: Some(lease),
        concurrency: args.reconcile_concurrency.max(1),
        resync_interval: args.resync_interval.as_std(),
        credentials: Credentials {
            management_kubeconfig: args.management_kubeconfig.clone(),
            default_namespace: args
                .credentials_namespace
                .clone()
                .or_else(|| std::env::var("POD_NAMESPACE").ok()),
            resolver: stored,
            ..Credentials::default()
        },
        ..Options::default()
    };
    let handle = Supervisor::start(store.clone(), options, metrics)
        .await
        .context("starting the service mirror")?;
    Ok(Some(handle))
}
