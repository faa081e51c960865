//! `linkplane dev`: the whole system on one machine, for a first look and for end-to-end tests.
//!
//! A supervisor, not a second server: it starts a throwaway PostgreSQL (unless `DATABASE_URL` is
//! set), simulated clusters (kubesim, in this process), sample workloads, a GitOps repository made
//! from `examples/gitops/`, and then `linkplane serve` as a child process configured purely through
//! environment variables — the same way the Helm chart configures it. It prints a banner, writes the
//! same facts to `<state-dir>/dev.json`, and on Ctrl-C/SIGTERM stops everything it started.

pub mod postgres;
mod repo;
mod workloads;

use std::{
    collections::BTreeMap,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::Args;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Name of the Git source `linkplane dev` configures.
pub const SOURCE_NAME: &str = "dev";

/// `linkplane dev` options.
#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    /// Where everything lives; an existing directory resumes its state. Default: a temporary
    /// directory removed on exit.
    #[arg(long, env = "LINKPLANE_DEV_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// HTTP port of the API.
    #[arg(long, env = "LINKPLANE_DEV_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Simulated clusters to start (comma-separated DNS-1123 names).
    #[arg(
        long,
        env = "LINKPLANE_DEV_CLUSTERS",
        value_delimiter = ',',
        default_value = "east,west,north"
    )]
    pub clusters: Vec<String>,
    /// Use this PostgreSQL instead of starting one.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<SecretString>,
}

/// Secrets generated once per state directory and reused when it is resumed.
#[derive(Serialize, Deserialize)]
struct DevSecrets {
    admin_token: String,
    webhook_secret: String,
    credentials_key: String,
}

/// Everything a script needs, written to `<state-dir>/dev.json`.
#[derive(Serialize)]
struct DevFacts<'a> {
    graphql_url: String,
    graphiql_url: String,
    metrics_url: String,
    token: &'a str,
    webhook_secret: &'a str,
    webhook_url: String,
    kubeconfigs: BTreeMap<String, String>,
    repo_path: String,
    state_dir: String,
    database_url: &'a str,
    /// kubesim's fault-injection endpoint (stop/start a cluster, break its gateway, ...).
    admin_url: String,
    pid: u32,
    server_pid: u32,
}

impl DevFacts<'_> {
    fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self).context("encoding dev.json")?;
        // It holds the admin token and the webhook secret.
        write_private(path, text.as_bytes())
    }
}

/// Writes a file readable by its owner only (mode 0600), atomically: the contents go to a new
/// temporary file *created* with mode 0600 (never a world-readable moment, unlike a chmod
/// after writing) which then replaces `path`, so a script never reads half a file and a file
/// left world-readable by an older version is replaced, not reused.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // A stale temporary file from a crash may have any mode: start from a fresh one.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", tmp.display())),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Fails with a clear message when something already listens on the API port. Without this,
/// `linkplane serve` failed to bind and exited, while the readiness probe was answered by the
/// *other* server and the banner said "running".
fn ensure_port_free(port: u16) -> anyhow::Result<()> {
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        // Dropped at once: `linkplane serve` binds it a few seconds later.
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "port {port} on 127.0.0.1 is already in use (another server is running there); \
             stop it or choose another port with --port / LINKPLANE_DEV_PORT"
        ),
        Err(e) => Err(e).with_context(|| format!("checking that port {port} is free")),
    }
}

/// How to start `linkplane serve`: configured only through the environment, like in Kubernetes.
struct ServerProcess {
    exe: PathBuf,
    log: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl ServerProcess {
    fn spawn(&self) -> anyhow::Result<tokio::process::Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        tokio::process::Command::new(&self.exe)
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting linkplane serve")
    }
}

fn step(msg: &str) {
    println!("==> {msg}");
}

/// Runs the demo until Ctrl-C/SIGTERM or until the server exits.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    for name in &args.clusters {
        linkplane_core::validation::dns1123_label(name)
            .map_err(|e| anyhow::anyhow!("--clusters: {name:?}: {e}"))?;
    }
    // Before starting anything (and long before a banner): the port must be ours.
    ensure_port_free(args.port)?;
    let temp = match &args.state_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("linkplane-dev.")
                .tempdir()
                .context("creating a temporary state directory")?,
        ),
    };
    let state_dir = match (&args.state_dir, &temp) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.path().to_path_buf(),
        (None, None) => bail!("no state directory"),
    };
    // Owner-only: it holds secrets, kubeconfigs and the database.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let state_dir = state_dir
        .canonicalize()
        .context("resolving the state directory")?;

    let mut pg = None;
    let database_url = match &args.database_url {
        Some(url) => url.expose_secret().to_string(),
        None => {
            step("starting PostgreSQL");
            let dir = state_dir.join("postgres");
            let p = tokio::task::spawn_blocking(move || postgres::Postgres::start(&dir))
                .await
                .context("joining")??;
            let url = p.url().to_string();
            pg = Some(p);
            url
        }
    };

    step(&format!(
        "starting simulated clusters: {}",
        args.clusters.join(", ")
    ));
    let sim = kubesim::Simulator::start(kubesim::SimOptions {
        clusters: args.clusters.clone(),
        dir: state_dir.join("clusters"),
        tls: true,
        event_window: 10_000,
        admin: true,
    })
    .await
    .context("starting kubesim")?;

    step("applying sample workloads");
    let mut facts = Vec::new();
    for (i, cluster) in sim.clusters().into_iter().enumerate() {
        let client = cluster
            .client()
            .await
            .with_context(|| format!("connecting to {}", cluster.name()))?;
        let names = workloads::seed(&client, i)
            .await
            .with_context(|| format!("seeding {}", cluster.name()))?;
        println!("    {}: {}", cluster.name(), names.join(", "));
        facts.push(repo::ClusterFacts {
            name: cluster.name().to_string(),
            url: cluster.url(),
            kubeconfig: cluster.kubeconfig_path(),
            gateway_port: cluster.gateway_addr().port(),
        });
    }

    step("committing the GitOps repository");
    let repo_dir = state_dir.join("gitops");
    let repo_for_task = repo_dir.clone();
    let head = tokio::task::spawn_blocking(move || repo::prepare(&repo_for_task, &facts))
        .await
        .context("joining")??;
    println!(
        "    {} at {}",
        repo_dir.display(),
        &head[..12.min(head.len())]
    );

    let secrets = load_or_create_secrets(&state_dir.join("secrets.json"))?;

    step("starting linkplane serve");
    let listen = format!("127.0.0.1:{}", args.port);
    let mut server = ServerProcess {
        exe: std::env::current_exe().context("locating the linkplane binary")?,
        log: state_dir.join("server.log"),
        env: vec![
            ("DATABASE_URL", database_url.clone()),
            ("LINKPLANE_LISTEN", listen.clone()),
            ("LINKPLANE_GIT_SOURCE_NAME", SOURCE_NAME.to_string()),
            ("LINKPLANE_GIT_URL", repo_dir.display().to_string()),
            ("LINKPLANE_GIT_REF", "branch:main".to_string()),
            ("LINKPLANE_GIT_POLL_INTERVAL", "10s".to_string()),
            (
                "LINKPLANE_GIT_CACHE_DIR",
                state_dir.join("git-cache").display().to_string(),
            ),
            ("LINKPLANE_WEBHOOK_SECRET", secrets.webhook_secret.clone()),
            ("LINKPLANE_CREDENTIALS_KEY", secrets.credentials_key.clone()),
            (
                "LINKPLANE_BOOTSTRAP_ADMIN_TOKEN",
                secrets.admin_token.clone(),
            ),
        ],
    };
    // Short leases: the server restarted after a crash is a new replica and waits for the dead
    // one's leases to expire before writing (3 s + 1 s here, 12 s with the serve defaults).
    for (var, value) in [
        ("LINKPLANE_LEASE_DURATION", "3s"),
        ("LINKPLANE_LEASE_RENEW_INTERVAL", "1s"),
    ] {
        if std::env::var_os(var).is_none() {
            server.env.push((var, value.to_string()));
        }
    }
    let mut child = server.spawn()?;
    let base = format!("http://{listen}");

    let started = Instant::now();
    wait_ready(&base, &mut child).await?;
    // Someone may have taken the port between the check and the child's bind: then the child
    // exits and whatever answered /readyz was not ours.
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Ok(Some(status)) = child.try_wait() {
        bail!(
            "linkplane serve exited during start-up ({status}); is port {} in use? See {}",
            args.port,
            server.log.display()
        );
    }
    step(&format!(
        "ready in {:.1}s; waiting for the first sync and mirrors",
        started.elapsed().as_secs_f64()
    ));
    let mirrored = wait_for_mirrors(&database_url, Duration::from_secs(60)).await;

    let kubeconfigs: BTreeMap<String, String> = sim
        .clusters()
        .iter()
        .map(|c| {
            (
                c.name().to_string(),
                c.kubeconfig_path().display().to_string(),
            )
        })
        .collect();
    let mut dev = DevFacts {
        graphql_url: format!("{base}/graphql"),
        graphiql_url: format!("{base}/graphql"),
        metrics_url: format!("{base}/metrics"),
        token: &secrets.admin_token,
        webhook_secret: &secrets.webhook_secret,
        webhook_url: format!("{base}/webhooks/gitlab"),
        kubeconfigs,
        repo_path: repo_dir.display().to_string(),
        state_dir: state_dir.display().to_string(),
        database_url: &database_url,
        admin_url: sim.admin_url().unwrap_or_default(),
        pid: std::process::id(),
        server_pid: child.id().unwrap_or_default(),
    };
    let facts_path = state_dir.join("dev.json");
    dev.write(&facts_path)?;
    print_banner(&dev, &args, mirrored, temp.is_some());

    // Supervise the server: a crash (or a `kill -9` in a test) restarts it, like a Deployment
    // would; three crashes within a few seconds of starting mean it cannot run, so give up.
    let mut quick_crashes = 0;
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let outcome = loop {
        let started_at = Instant::now();
        tokio::select! {
            () = &mut shutdown => break Ok(()),
            status = child.wait() => {
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                quick_crashes = if started_at.elapsed() < Duration::from_secs(5) { quick_crashes + 1 } else { 0 };
                if quick_crashes >= 3 {
                    break Err(anyhow::anyhow!("linkplane serve keeps exiting ({status}); see {}", server.log.display()));
                }
                eprintln!("==> linkplane serve exited ({status}); restarting");
                tokio::time::sleep(Duration::from_millis(500)).await;
                child = server.spawn()?;
                dev.server_pid = child.id().unwrap_or_default();
                dev.write(&facts_path)?;
            }
        }
    };
    step("stopping");
    terminate(&mut child).await;
    sim.shutdown().await;
    if let Some(mut p) = pg {
        p.stop();
    }
    drop(temp);
    outcome
}

fn load_or_create_secrets(path: &Path) -> anyhow::Result<DevSecrets> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let secrets: DevSecrets =
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        // A state directory from an older version may hold it world-readable: replace the
        // file with an owner-only copy (no chmod: the new file never had a lax mode).
        let lax = std::fs::metadata(path)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o077 != 0)
            .unwrap_or(false);
        if lax {
            write_private(path, text.as_bytes())?;
        }
        return Ok(secrets);
    }
    let random = |n: usize| {
        let mut bytes = vec![0u8; n];
        rand::rng().fill_bytes(&mut bytes);
        bytes
    };
    let secrets = DevSecrets {
        admin_token: format!("lp_{}", hex::encode(random(32))),
        webhook_secret: hex::encode(random(24)),
        credentials_key: base64::engine::general_purpose::STANDARD.encode(random(32)),
    };
    write_private(
        path,
        serde_json::to_string_pretty(&secrets)
            .context("encoding secrets")?
            .as_bytes(),
    )?;
    Ok(secrets)
}

async fn wait_ready(base: &str, child: &mut tokio::process::Child) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .context("building an HTTP client")?;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "linkplane serve exited during start-up ({status}); see server.log in the state directory"
            );
        }
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("linkplane serve was not ready after 90s; see server.log in the state directory");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the first sync applied and some mirror exists; returns how many are Mirrored.
async fn wait_for_mirrors(database_url: &str, timeout: Duration) -> i64 {
    let Ok(store) = linkplane_store::Store::connect(database_url, 1).await else {
        return 0;
    };
    let deadline = Instant::now() + timeout;
    let mut last = -1;
    loop {
        let count = match store.acquire().await {
            Ok(mut conn) => linkplane_store::mirrors::count(
                &mut conn,
                Some(linkplane_store::mirrors::MirrorState::Mirrored),
            )
            .await
            .unwrap_or(0),
            Err(_) => 0,
        };
        if count != last {
            println!("    {count} mirrors");
            last = count;
        }
        if (count > 0 && Instant::now() + timeout / 2 > deadline) || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print_banner(dev: &DevFacts<'_>, args: &DevArgs, mirrored: i64, temporary: bool) {
    let first = args.clusters.first().cloned().unwrap_or_default();
    let kubeconfig = dev.kubeconfigs.get(&first).cloned().unwrap_or_default();
    println!();
    println!(
        "linkplane is running — {mirrored} mirrors across {} clusters",
        args.clusters.len()
    );
    println!();
    println!("  GraphQL / GraphiQL  {}", dev.graphql_url);
    println!("  token               {}", dev.token);
    println!("  metrics             {}", dev.metrics_url);
    println!(
        "  kubeconfigs         {}",
        dev.kubeconfigs
            .values()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n                      ")
    );
    println!("  try                 kubectl --kubeconfig {kubeconfig} get services -n demo");
    println!("  GitOps repo         {}", dev.repo_path);
    println!(
        "                      edit, `git -C {} commit -am '...'`, then `linkplane sync {SOURCE_NAME} --wait`",
        dev.repo_path
    );
    println!(
        "                      (or wait ≤10s for the poll, or POST the webhook {})",
        dev.webhook_url
    );
    let server = dev.graphql_url.trim_end_matches("/graphql");
    println!(
        "  client              echo {} | linkplane login --server {server}",
        dev.token
    );
    println!(
        "                      linkplane status | check | gateways | get mirrors | diff (docs/cli.md)"
    );
    println!(
        "  fault injection     {}/clusters (POST /clusters/NAME/stop|start, /gateway?mode=failing)",
        dev.admin_url
    );
    println!("  facts as JSON       {}/dev.json", dev.state_dir);
    if temporary {
        println!(
            "  state               temporary: removed on exit (use --state-dir DIR to keep it)"
        );
    }
    println!();
    println!("Ctrl-C stops everything.");
}

async fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(15), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn secrets_and_facts_are_owner_only_even_over_an_old_world_readable_file() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets.json");
        let created = load_or_create_secrets(&secrets).unwrap();
        assert_eq!(mode(&secrets), 0o600);
        // Resumed: the same secrets come back; an old world-readable file is made owner-only.
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            load_or_create_secrets(&secrets).unwrap().admin_token,
            created.admin_token
        );
        assert_eq!(mode(&secrets), 0o600);

        let facts = dir.path().join("dev.json");
        std::fs::write(&facts, "{}").unwrap();
        std::fs::set_permissions(&facts, std::fs::Permissions::from_mode(0o644)).unwrap();
        // A stale temporary file with a lax mode is not reused either.
        std::fs::write(dir.path().join("dev.json.tmp"), "x").unwrap();
        std::fs::set_permissions(
            dir.path().join("dev.json.tmp"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        write_private(&facts, b"{\"token\": \"t\"}").unwrap();
        assert_eq!(mode(&facts), 0o600);
        assert_eq!(std::fs::read(&facts).unwrap(), b"{\"token\": \"t\"}");
        assert!(!dir.path().join("dev.json.tmp").exists());
    }

    #[test]
    fn a_busy_port_is_refused_with_a_clear_message() {
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = busy.local_addr().unwrap().port();
        let err = ensure_port_free(port).unwrap_err().to_string();
        assert!(
            err.contains(&format!("port {port} on 127.0.0.1 is already in use")),
            "{err}"
        );
        drop(busy);
        ensure_port_free(port).unwrap();
    }
}
