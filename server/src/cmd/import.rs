//! `linkplane import linkerd --kubeconfig K`: print linkplane Cluster and Link manifests
//! equivalent to the Linkerd `Link` resources of the cluster `K` points at (the source of those
//! links). Credentials are never printed: Clusters get `secretRef`s to Linkerd's Secrets.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use secrecy::SecretString;

/// `linkplane import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// What to import from.
    #[command(subcommand)]
    pub from: ImportFrom,
}

/// What to import from.
#[derive(Debug, Clone, Subcommand)]
pub enum ImportFrom {
    /// Linkerd's multicluster `Link` resources and their credentials Secrets.
    Linkerd {
        /// Kubeconfig of the cluster holding the Links (the source of those links).
        #[arg(long)]
        kubeconfig: PathBuf,
        /// Name of that cluster in linkplane (default: the kubeconfig's current context).
        #[arg(long)]
        source_name: Option<String>,
    },
}

/// Reads the Links and prints the manifests on stdout.
pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let ImportFrom::Linkerd {
        kubeconfig,
        source_name,
    } = args.from;
    let yaml = tokio::fs::read_to_string(&kubeconfig)
        .await
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let kc = kube::config::Kubeconfig::from_yaml(&yaml)
        .map_err(|_| anyhow::anyhow!("{} is not a valid kubeconfig", kubeconfig.display()))?;
    let source = source_name
        .or_else(|| kc.current_context.clone())
        .context("no --source-name and the kubeconfig has no current context")?;
    let yaml = SecretString::from(yaml);
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .context("loading the kubeconfig")?;
    let server = config.cluster_url.to_string();
    let client = linkplane_mirror::credentials::client_from_kubeconfig(&source, &yaml)
        .await
        .map_err(|e| anyhow::anyhow!(e.chain()))?;
    let out =
        linkplane_mirror::import::linkerd_manifests(client, &source, server.trim_end_matches('/'))
            .await
            .map_err(|e| anyhow::anyhow!(e.chain()))?;
    print!("{out}");
    Ok(())
}
