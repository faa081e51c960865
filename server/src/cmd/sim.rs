//! `linkplane sim`: run simulated Kubernetes clusters (kubesim) until Ctrl-C, for trying
//! linkplane and kubectl without a real cluster.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// `linkplane sim`.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Names of the clusters to start (comma-separated DNS-1123 labels).
    #[arg(
        long,
        env = "LINKPLANE_SIM_CLUSTERS",
        value_delimiter = ',',
        default_value = "east,west"
    )]
    pub clusters: Vec<String>,
    /// Directory for the kubeconfig files (`<cluster>.kubeconfig`) and the CA certificate.
    #[arg(long, env = "LINKPLANE_SIM_DIR", default_value = ".kubesim")]
    pub dir: PathBuf,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long, env = "LINKPLANE_SIM_PLAIN_HTTP")]
    pub plain_http: bool,
    /// Watch events retained per resource type; watches resuming from older versions get 410.
    #[arg(long, env = "LINKPLANE_SIM_EVENT_WINDOW", default_value_t = 10_000)]
    pub event_window: usize,
}

/// Starts the clusters, prints how to reach them and waits for Ctrl-C (or SIGTERM).
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let sim = kubesim::Simulator::start(kubesim::SimOptions {
        clusters: args.clusters.clone(),
        dir: args.dir.clone(),
        tls: !args.plain_http,
        event_window: args.event_window,
        admin: true,
    })
    .await
    .context("starting the simulated clusters")?;
    let clusters = sim.clusters();
    let mut paths = Vec::new();
    for c in &clusters {
        let path =
            std::fs::canonicalize(c.kubeconfig_path()).unwrap_or_else(|_| c.kubeconfig_path());
        println!(
            "cluster {:<10} {}  kubeconfig {}  gateway http://{}/ready",
            c.name(),
            c.url(),
            path.display(),
            c.gateway_addr()
        );
        paths.push(path.display().to_string());
    }
    if let Some(first) = clusters.first() {
        println!();
        println!("try:");
        println!("  export KUBECONFIG={}", paths.join(":"));
        println!("  kubectl --context {} get svc -A", first.name());
    }
    if let Some(admin) = sim.admin_url() {
        println!(
            "fault injection: curl -X POST {admin}/clusters/<name>/stop|start|sever-watches|..."
        );
    }
    println!("press Ctrl-C to stop");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    sim.shutdown().await;
    Ok(())
}
