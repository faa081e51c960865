//! Runs simulated clusters until Ctrl-C: `cargo run -p kubesim --example serve -- DIR east west`.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "/tmp/kubesim".into());
    let clusters: Vec<String> = args.collect();
    let sim = kubesim::Simulator::start(kubesim::SimOptions {
        clusters: if clusters.is_empty() {
            vec!["east".into()]
        } else {
            clusters
        },
        dir: dir.into(),
        admin: true,
        ..kubesim::SimOptions::default()
    })
    .await?;
    for c in sim.clusters() {
        println!("{} {} {}", c.name(), c.url(), c.kubeconfig_path().display());
    }
    if let Some(admin) = sim.admin_url() {
        println!("admin {admin}");
    }
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
