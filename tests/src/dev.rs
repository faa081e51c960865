//! A whole linkplane as a user runs it: `linkplane dev` on a fresh database, driven through its
//! public surfaces only — GraphQL, kubectl, a kube client, `git commit` + webhook, and kubesim's
//! fault-injection endpoint.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// Mirrors of east's sample exports in every other cluster of `linkplane dev`: `web` (export
/// label, gateway mode) and `cart` (a `ServiceExport`, MCS), before a test changes anything.
pub const EAST_SAMPLE_MIRRORS: [&str; 2] = ["cart-east", "web-east"];

/// The facts `linkplane dev` writes to `<state-dir>/dev.json`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct DevFacts {
    /// `POST` GraphQL here.
    pub graphql_url: String,
    /// Admin bearer token.
    pub token: String,
    /// GitLab-style webhook token.
    pub webhook_secret: String,
    /// The GitLab webhook route.
    pub webhook_url: String,
    /// Kubeconfig path per cluster.
    pub kubeconfigs: std::collections::BTreeMap<String, String>,
    /// The GitOps repository.
    pub repo_path: String,
    /// kubesim's admin endpoint.
    pub admin_url: String,
    /// The `linkplane serve` child's pid (changes when it is restarted).
    pub server_pid: u32,
    /// The database `linkplane dev` runs on (for `linkplane token create`, and direct edits
    /// that simulate changes made outside Git).
    pub database_url: String,
}

/// A running `linkplane dev`; stopped with SIGTERM on drop.
pub struct DevEnv {
    child: Child,
    state: tempfile::TempDir,
    /// What it reported.
    pub facts: DevFacts,
    http: reqwest::Client,
}

impl Drop for DevEnv {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates an empty database on the server named by `DATABASE_URL` and returns its URL.
pub fn fresh_database(prefix: &str) -> String {
    let base =
        std::env::var("DATABASE_URL").expect("DATABASE_URL must be set (scripts/test sets it)");
    let name = format!("{prefix}_{}_{}", std::process::id(), rand_suffix());
    let ok = Command::new("psql")
        .args([&base, "-q", "-c", &format!("CREATE DATABASE {name}")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "creating database {name} with psql");
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("DATABASE_URL has a database part");
    format!("{prefix}/{name}")
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish() % 1_000_000
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl DevEnv {
    /// Starts `linkplane dev` with the default clusters (east, west, north) and waits for its
    /// banner facts (which it writes once the first sync produced mirrors).
    pub fn start() -> DevEnv {
        Self::start_on(&fresh_database("e2e"))
    }

    /// Like [`start`](Self::start), on the given (empty) database, e.g. a
    /// [`PrivatePostgres`](crate::postgres::PrivatePostgres) the test stops and starts.
    pub fn start_on(database_url: &str) -> DevEnv {
        // Benchmarks point LINKPLANE_BIN at a release build; tests use the debug build.
        let bin = match std::env::var_os("LINKPLANE_BIN") {
            Some(path) => PathBuf::from(path),
            None => crate::binary::linkplane().expect("linkplane builds"),
        };
        // A port picked here can be taken (by any socket's ephemeral port) before the server
        // binds it; the server then exits with EADDRINUSE and the start is retried on another.
        let mut attempt = 0;
        let (child, state, facts) = loop {
            attempt += 1;
            match Self::spawn_once(&bin, database_url) {
                Ok(started) => break started,
                Err(log) if attempt < 3 && log.contains("Address already in use") => continue,
                Err(log) => panic!("linkplane dev did not come up:\n{log}"),
            }
        };
        // reqwest is built without a bundled TLS provider: pick ring, as the binary does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        DevEnv {
            child,
            state,
            facts,
            http,
        }
    }

    /// One start of `linkplane dev` on a fresh port and state directory: its facts, or its log
    /// when it exited or did not come up in time.
    fn spawn_once(
        bin: &Path,
        database_url: &str,
    ) -> Result<(Child, tempfile::TempDir, DevFacts), String> {
        let state = tempfile::Builder::new()
            .prefix("linkplane-e2e.")
            .tempdir()
            .expect("temp dir");
        let out = std::fs::File::create(state.path().join("dev.out")).expect("dev.out");
        let mut child = Command::new(bin)
            .args(["dev", "--state-dir"])
            .arg(state.path().join("state"))
            .args(["--port", &free_port().to_string()])
            .env("DATABASE_URL", database_url)
            .env("LINKPLANE_LOG", "info")
            .stdout(out.try_clone().expect("clone"))
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("linkplane dev starts");
        let facts_path = state.path().join("state/dev.json");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(text) = std::fs::read_to_string(&facts_path)
                && let Ok(f) = serde_json::from_str::<DevFacts>(&text)
            {
                return Ok((child, state, f));
            }
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Self::log_of(state.path()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_of(dir: &Path) -> String {
        let dev = std::fs::read_to_string(dir.join("dev.out")).unwrap_or_default();
        let server = std::fs::read_to_string(dir.join("state/server.log")).unwrap_or_default();
        let tail: Vec<&str> = server.lines().rev().take(40).collect();
        format!(
            "{dev}\n--- server.log (last lines, newest first) ---\n{}",
            tail.join("\n")
        )
    }

    /// Everything printed so far, for assertion messages.
    pub fn log(&self) -> String {
        Self::log_of(self.state.path())
    }

    /// Current facts (re-read: the server pid changes after a restart).
    pub fn reload_facts(&self) -> DevFacts {
        let text =
            std::fs::read_to_string(self.state.path().join("state/dev.json")).expect("dev.json");
        serde_json::from_str(&text).expect("dev.json parses")
    }

    /// Runs a GraphQL query as admin; panics on transport or GraphQL errors.
    pub async fn graphql(&self, query: &str) -> Value {
        let res: Value = self
            .http
            .post(&self.facts.graphql_url)
            .bearer_auth(&self.facts.token)
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .expect("GraphQL answers")
            .json()
            .await
            .expect("GraphQL returns JSON");
        assert!(res.get("errors").is_none(), "GraphQL errors: {res}");
        res["data"].clone()
    }

    /// `kubectl --kubeconfig <cluster> ARGS`; returns (success, stdout+stderr).
    pub fn kubectl(&self, cluster: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.facts.kubeconfigs[cluster])
            .args(args)
            .output()
            .expect("kubectl runs");
        let mut text = String::from_utf8_lossy(&out.stdout).to_string();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    /// Waits (up to a minute) until the sample's `web` is mirrored from east into `cluster`:
    /// the fleet is up and reconciling.
    pub async fn wait_for_web_east_in(&self, cluster: &str) {
        eventually(
            Duration::from_secs(60),
            &format!("web-east mirrored into {cluster}"),
            || async {
                self.mirrored_services(cluster, "demo", "east")
                    .contains("web-east")
                    .then_some(())
            },
        )
        .await;
    }

    /// Creates plain (not exported) one-port Services `<prefix>-0..count` in `cluster`/demo with
    /// `kubectl apply`.
    pub fn create_demo_services(&self, cluster: &str, prefix: &str, count: usize) {
        let mut docs = String::new();
        for i in 0..count {
            docs.push_str(&format!(
                "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {prefix}-{i}\n  namespace: demo\nspec:\n  ports:\n  - name: http\n    port: 80\n"
            ));
        }
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), docs).expect("write");
        let (ok, out) = self.kubectl(
            cluster,
            &["apply", "-f", &file.path().display().to_string()],
        );
        assert!(ok, "kubectl apply in {cluster}: {out}");
    }

    /// Names of the Services in `cluster`/`namespace` mirrored from `source` (Linkerd's
    /// `mirror.linkerd.io/cluster-name` label and `-<source>` suffix), read with kubectl.
    pub fn mirrored_services(
        &self,
        cluster: &str,
        namespace: &str,
        source: &str,
    ) -> BTreeSet<String> {
        let selector = format!("mirror.linkerd.io/cluster-name={source}");
        let (ok, out) = self.kubectl(
            cluster,
            &[
                "get",
                "services",
                "-n",
                namespace,
                "-l",
                &selector,
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ],
        );
        assert!(ok, "kubectl get services in {cluster}: {out}");
        let suffix = format!("-{source}");
        out.split_whitespace()
            .filter(|n| n.ends_with(&suffix))
            .map(str::to_string)
            .collect()
    }

    /// The API's (Postgres's) mirror rows in `cluster`/`namespace` whose local name ends in
    /// `-<source>`: the names of those `MIRRORED`, and the number of rows in any state.
    pub async fn api_mirrors(
        &self,
        cluster: &str,
        namespace: &str,
        source: &str,
    ) -> (BTreeSet<String>, usize) {
        let data = self
            .graphql(&format!(
                r#"{{ mirrors(cluster: "{cluster}", namespace: "{namespace}", first: 500) {{ edges {{ node {{ localName state }} }} }} }}"#
            ))
            .await;
        let suffix = format!("-{source}");
        let mut mirrored = BTreeSet::new();
        let mut rows = 0;
        for e in data["mirrors"]["edges"].as_array().into_iter().flatten() {
            let name = e["node"]["localName"].as_str().unwrap_or_default();
            if !name.ends_with(&suffix) {
                continue;
            }
            rows += 1;
            if e["node"]["state"] == "MIRRORED" {
                mirrored.insert(name.to_string());
            }
        }
        (mirrored, rows)
    }

    /// A kube client for `cluster`, from its kubeconfig file.
    pub async fn client(&self, cluster: &str) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(&self.facts.kubeconfigs[cluster])
            .expect("kubeconfig reads");
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("kubeconfig is valid");
        kube::Client::try_from(cfg).expect("client builds")
    }

    /// Writes (or with `None` deletes) a file in the GitOps repository and commits everything.
    pub fn commit(&self, rel: &str, content: Option<&str>, message: &str) {
        let repo = PathBuf::from(&self.facts.repo_path);
        let path = repo.join(rel);
        match content {
            Some(text) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).expect("mkdir");
                }
                std::fs::write(&path, text).expect("write manifest");
            }
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
        for args in [vec!["add", "-A"], vec!["commit", "-q", "-m", message]] {
            let ok = Command::new("git")
                .arg("-C")
                .arg(&repo)
                .args(&args)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_AUTHOR_NAME", "e2e")
                .env("GIT_AUTHOR_EMAIL", "e2e@linkplane.invalid")
                .env("GIT_COMMITTER_NAME", "e2e")
                .env("GIT_COMMITTER_EMAIL", "e2e@linkplane.invalid")
                .status()
                .expect("git runs")
                .success();
            assert!(ok, "git {args:?}");
        }
    }

    /// Reads a file of the GitOps repository.
    pub fn read_repo_file(&self, rel: &str) -> String {
        std::fs::read_to_string(PathBuf::from(&self.facts.repo_path).join(rel)).expect("repo file")
    }

    /// Sends the GitLab push webhook; returns the HTTP status.
    pub async fn webhook(&self) -> u16 {
        self.http
            .post(&self.facts.webhook_url)
            .header("X-Gitlab-Event", "Push Hook")
            .header("X-Gitlab-Token", &self.facts.webhook_secret)
            .body("{}")
            .send()
            .await
            .expect("webhook answers")
            .status()
            .as_u16()
    }

    /// `linkplane token create --role ROLE` against this environment's database: a new token.
    pub fn token(&self, role: &str) -> String {
        let bin = match std::env::var_os("LINKPLANE_BIN") {
            Some(path) => PathBuf::from(path),
            None => crate::binary::linkplane().expect("linkplane builds"),
        };
        let out = Command::new(bin)
            .args(["token", "create", "--role", role, "--name", "e2e"])
            .env("DATABASE_URL", &self.facts.database_url)
            .env("LINKPLANE_LOG", "warn")
            .output()
            .expect("linkplane token create runs");
        assert!(
            out.status.success(),
            "linkplane token create --role {role}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The server's base URL (`http://127.0.0.1:<port>`).
    pub fn base_url(&self) -> String {
        self.facts
            .graphql_url
            .trim_end_matches("/graphql")
            .to_string()
    }

    /// `POST <admin>/clusters/<path>` on kubesim's fault-injection endpoint.
    pub async fn admin(&self, path: &str) {
        let res = self
            .http
            .post(format!("{}/clusters/{path}", self.facts.admin_url))
            .send()
            .await
            .expect("admin answers");
        assert!(res.status().is_success(), "admin {path}: {}", res.status());
    }
}

/// Polls `check` until it returns `Some` or `timeout` passes (then panics with `what`).
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}
