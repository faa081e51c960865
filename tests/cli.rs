//! The client commands (`linkplane login/get/status/check/gateways/diff/sync/...`) as a person
//! runs them against a running `linkplane dev` (three kubesim clusters, a fresh database, a GitOps
//! repo with a full mesh): table and JSON output parsed and asserted, exit codes with a cluster
//! stopped through kubesim's fault injection, a field changed outside Git, a sync seen in the
//! clusters, a viewer token refused, and the completion scripts and man page.

use std::{
    collections::BTreeMap,
    io::Write as _,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use linkplane_e2e::dev::{DevEnv, eventually};
use serde_json::Value;

const CONVERGE: Duration = Duration::from_secs(60);

/// What one `linkplane` run printed.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "exit {}:\n{}\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// The `linkplane` binary pointed at one dev environment, with a config file of its own.
struct Cli {
    bin: PathBuf,
    server: String,
    token: String,
    home: tempfile::TempDir,
}

impl Cli {
    fn new(env: &DevEnv) -> Cli {
        Cli {
            bin: linkplane_e2e::binary::linkplane().expect("linkplane builds"),
            server: env
                .facts
                .graphql_url
                .trim_end_matches("/graphql")
                .to_string(),
            token: env.facts.token.clone(),
            home: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn config(&self) -> PathBuf {
        self.home.path().join("linkplane/config.json")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env_remove("LINKPLANE_SERVER")
            .env_remove("LINKPLANE_TOKEN")
            .env_remove("NO_COLOR")
            .env("LINKPLANE_CONFIG", self.config())
            .env("LINKPLANE_LOG", "warn");
        cmd
    }

    /// Runs with the admin token from the environment (`LINKPLANE_SERVER`/`LINKPLANE_TOKEN`).
    fn run(&self, args: &[&str]) -> Run {
        self.run_as(&self.token, args)
    }

    fn run_as(&self, token: &str, args: &[&str]) -> Run {
        let mut cmd = self.command(args);
        cmd.env("LINKPLANE_SERVER", &self.server)
            .env("LINKPLANE_TOKEN", token);
        output(cmd, None)
    }

    /// Runs with only what `login` stored.
    fn run_stored(&self, args: &[&str], stdin: Option<&str>) -> Run {
        output(self.command(args), stdin)
    }
}

fn output(mut cmd: Command, stdin: Option<&str>) -> Run {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("linkplane starts");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("linkplane runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Rows of a table as printed by `-o table|wide`, keyed by header (headers and cells are
/// separated by at least two spaces; a cell may hold single spaces).
fn table(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<char> = lines.next().expect("a header line").chars().collect();
    let mut starts = vec![0];
    for i in 2..header.len() {
        if header[i] != ' ' && header[i - 1] == ' ' && header[i - 2] == ' ' {
            starts.push(i);
        }
    }
    let cell = |chars: &[char], i: usize| -> String {
        let from = starts[i].min(chars.len());
        let to = starts
            .get(i + 1)
            .copied()
            .unwrap_or(chars.len())
            .min(chars.len());
        chars[from..to]
            .iter()
            .collect::<String>()
            .trim()
            .to_string()
    };
    let names: Vec<String> = (0..starts.len()).map(|i| cell(&header, i)).collect();
    lines
        .map(|line| {
            let chars: Vec<char> = line.chars().collect();
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), cell(&chars, i)))
                .collect()
        })
        .collect()
}

fn column(rows: &[BTreeMap<String, String>], name: &str) -> Vec<String> {
    rows.iter().map(|r| r[name].clone()).collect()
}

async fn healthy(cli: &Cli) {
    eventually(CONVERGE, "`linkplane status` exits 0", || async {
        (cli.run(&["status"]).code == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_read_the_fleet_as_tables_json_and_yaml() {
    let env = DevEnv::start();
    let cli = Cli::new(&env);
    healthy(&cli).await;

    // login reads the token from stdin, checks it and stores it with mode 0600.
    let login = cli.run_stored(
        &["login", "--server", &cli.server],
        Some(&format!("{}\n", cli.token)),
    );
    assert_eq!(login.code, 0, "{login:?}");
    assert!(login.stderr.contains("admin"), "{}", login.stderr);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(cli.config())
            .expect("config written")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the token file is private");
    let who = table(&cli.run_stored(&["whoami"], None).ok().stdout);
    assert_eq!(who[0]["ROLE"], "admin");
    assert_eq!(who[0]["NAME"], "bootstrap");
    let bad = cli.run_stored(&["login", "--server", &cli.server], Some("lpt_wrong\n"));
    assert_eq!(bad.code, 2, "a wrong token is refused: {bad:?}");
    assert!(bad.stderr.contains("UNAUTHENTICATED"), "{}", bad.stderr);
    cli.run_stored(&["logout"], None).ok();
    assert!(!cli.config().exists());
    let out = cli.run_stored(&["whoami"], None);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("linkplane login"), "{}", out.stderr);

    // Tables: parsed by column. Output is piped, so no colour codes.
    let out = cli.run(&["get", "clusters"]).ok();
    assert!(
        !out.stdout.contains('\x1b'),
        "colour on a pipe: {:?}",
        out.stdout
    );
    let rows = table(&out.stdout);
    assert_eq!(column(&rows, "NAME"), ["east", "north", "west"]);
    assert!(rows.iter().all(|r| r["HEALTH"] == "Healthy"), "{rows:?}");
    assert!(
        rows.iter().all(|r| r["RECONCILER"] == "Running"),
        "{rows:?}"
    );
    assert!(
        rows.iter().all(|r| r["GATEWAY"].starts_with("alive")),
        "{rows:?}"
    );
    let wide = table(&cli.run(&["get", "clusters", "-o", "wide"]).ok().stdout);
    assert!(
        wide[0]["API SERVER"].starts_with("https://127.0.0.1:"),
        "{wide:?}"
    );
    assert!(wide[0]["LABELS"].contains("env=prod"), "{wide:?}");

    // JSON and YAML carry the API's objects.
    let clusters = cli.run(&["get", "clusters", "-o", "json"]).ok().json();
    assert_eq!(clusters.as_array().map(Vec::len), Some(3), "{clusters}");
    assert!(
        clusters
            .as_array()
            .into_iter()
            .flatten()
            .all(|c| c["health"] == "HEALTHY")
    );
    let east = cli
        .run(&["get", "cluster", "east", "-o", "yaml"])
        .ok()
        .stdout;
    assert!(
        east.contains("name: east") && east.contains("health: HEALTHY"),
        "{east}"
    );

    let links = cli.run(&["get", "links", "-o", "json"]).ok().json();
    assert_eq!(links.as_array().map(Vec::len), Some(6), "{links}");
    let east_links = table(&cli.run(&["get", "links", "--cluster", "east"]).ok().stdout);
    assert_eq!(
        east_links.len(),
        4,
        "east is source or target of 4 links: {east_links:?}"
    );

    let west = cli
        .run(&["get", "mirrors", "--cluster", "west", "-o", "json"])
        .ok()
        .json();
    let west_mirrors: Vec<(&str, &str)> = west
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["localName"].as_str().unwrap_or(""),
                m["state"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(west_mirrors.contains(&("web-east", "MIRRORED")), "{west}");
    let mirrored = table(
        &cli.run(&["get", "mirrors", "--state", "mirrored"])
            .ok()
            .stdout,
    );
    assert!(!mirrored.is_empty() && mirrored.iter().all(|m| m["STATE"] == "Mirrored"));
    let one = cli
        .run(&["get", "mirrors", "web-east", "-n", "demo", "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        one.as_array().map(Vec::len),
        Some(2),
        "west and north hold web-east: {one}"
    );

    let bogus = cli.run(&["get", "mirrors", "--state", "sideways"]);
    assert_eq!(bogus.code, 2);
    assert!(
        bogus.stderr.contains("unknown mirror state"),
        "{}",
        bogus.stderr
    );
    let misplaced = cli.run(&["get", "policies", "--namespace", "demo"]);
    assert_eq!(misplaced.code, 2);
    assert!(
        misplaced.stderr.contains("does not apply"),
        "{}",
        misplaced.stderr
    );
    let missing = cli.run(&["get", "clusters", "nowhere"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("\"nowhere\" not found"),
        "{}",
        missing.stderr
    );

    let policies = cli.run(&["get", "policies", "-o", "json"]).ok().json();
    assert_eq!(policies[0]["name"], "prod-exports", "{policies}");
    let federated = table(&cli.run(&["get", "federated"]).ok().stdout);
    assert_eq!(federated.len(), 3, "{federated:?}");
    assert!(
        federated
            .iter()
            .all(|f| f["STATE"] == "Federated" && f["NAME"] == "checkout-federated")
    );
    // Kubernetes MCS (KEP-1645, issue 20): the dev sample's ServiceExport of demo/cart in east is
    // Valid, Ready (imported by both consumers) and not in conflict; each consumer holds a
    // ClusterSetIP ServiceImport of it from east. The rows trail the clusters by one MCS pass.
    let exports = eventually(
        CONVERGE,
        "east's cart export recorded as Exported",
        || async {
            let rows = table(&cli.run(&["get", "mcs-exports"]).ok().stdout);
            rows.iter()
                .any(|r| r["NAME"] == "cart" && r["STATE"] == "Exported")
                .then_some(rows)
        },
    )
    .await;
    assert_eq!(exports.len(), 1, "{exports:?}");
    let cart = &exports[0];
    assert_eq!(
        (
            cart["CLUSTER"].as_str(),
            cart["NAMESPACE"].as_str(),
            cart["VALID"].as_str(),
            cart["READY"].as_str(),
            cart["CONFLICT"].as_str(),
            cart["IMPORTED BY"].as_str()
        ),
        ("east", "demo", "True", "True", "False", "north,west"),
        "{cart:?}"
    );
    let imports = cli
        .run(&["get", "serviceimports", "cart", "-o", "json"])
        .ok()
        .json();
    let mut consumers: Vec<(String, String, String)> = imports
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|i| {
            (
                i["cluster"].as_str().unwrap_or("").to_string(),
                i["type"].as_str().unwrap_or("").to_string(),
                i["sourceClusters"].to_string(),
            )
        })
        .collect();
    consumers.sort();
    assert_eq!(
        consumers,
        [
            (
                "north".into(),
                "CLUSTER_SET_IP".into(),
                r#"["east"]"#.into()
            ),
            ("west".into(), "CLUSTER_SET_IP".into(), r#"["east"]"#.into())
        ],
        "{imports}"
    );
    let in_conflict = cli.run(&["get", "mcs-exports", "--state", "conflict"]).ok();
    assert!(
        in_conflict.stdout.contains("No MCS exports found."),
        "{}",
        in_conflict.stdout
    );
    let bogus = cli.run(&["get", "mcs-imports", "--state", "exported"]);
    assert_eq!(bogus.code, 2);
    assert!(
        bogus.stderr.contains("unknown MCS import state"),
        "{}",
        bogus.stderr
    );
    let sources = cli
        .run(&["get", "sources", "dev", "-o", "json"])
        .ok()
        .json();
    assert_eq!(sources["status"], "SYNCED", "{sources}");
    let tokens = cli.run(&["get", "tokens", "-o", "json"]).ok().json();
    assert_eq!(tokens[0]["role"], "ADMIN", "{tokens}");

    // Gateways: one row per link, each alive, mirrors behind the gateway counted.
    let gateways = cli.run(&["gateways", "-o", "json"]).ok().json();
    let rows = gateways.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 6, "{gateways}");
    assert!(rows.iter().all(|g| g["alive"] == true), "{gateways}");
    let behind_east: i64 = rows
        .iter()
        .filter(|g| g["cluster"] == "east")
        .map(|g| g["mirrors"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(
        behind_east, 2,
        "web-east in west and north goes through east's gateway"
    );
    let table_rows = table(&cli.run(&["gateways"]).ok().stdout);
    assert_eq!(column(&table_rows, "ALIVE"), vec!["yes"; 6]);

    // On a terminal (`script` gives one) states are coloured, and never with NO_COLOR.
    let on_tty = |no_color: bool| {
        let mut cmd = Command::new("script");
        cmd.args([
            "-qec",
            &format!("{} get clusters", cli.bin.display()),
            "/dev/null",
        ])
        .env("LINKPLANE_SERVER", &cli.server)
        .env("LINKPLANE_TOKEN", &cli.token)
        .env("LINKPLANE_CONFIG", cli.config())
        .env("TERM", "xterm")
        .stdin(Stdio::null());
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        String::from_utf8_lossy(&cmd.output().expect("script runs").stdout).into_owned()
    };
    let coloured = on_tty(false);
    assert!(coloured.contains("\x1b[32mHealthy"), "{coloured:?}");
    let plain = on_tty(true);
    assert!(
        plain.contains("Healthy") && !plain.contains('\x1b'),
        "{plain:?}"
    );

    // Status, check and diff on a healthy fleet exit 0.
    let status = cli.run(&["status"]).ok();
    assert!(status.stdout.contains("✓ healthy"), "{}", status.stdout);
    let report = cli.run(&["status", "-o", "json"]).ok().json();
    assert_eq!(report["healthy"], true);
    assert_eq!(report["mirrors"]["error"], 0);
    let check = cli.run(&["check"]).ok();
    for line in [
        "✓ database reachable",
        "✓ Git source dev fetched and applied",
        "cluster north",
    ] {
        assert!(check.stdout.contains(line), "{line} in:\n{}", check.stdout);
    }
    assert!(!check.stdout.contains('✗'), "{}", check.stdout);
    // Each link with flat/federated selectors has a line for its remote-discovery credentials;
    // the dev clusters run no Linkerd, so it is a warning naming the missing namespace.
    let creds: Vec<&str> = check
        .stdout
        .lines()
        .filter(|l| l.contains("remote-discovery credentials"))
        .collect();
    assert!(!creds.is_empty(), "{}", check.stdout);
    assert!(
        creds
            .iter()
            .all(|l| l.contains('‼') && l.contains("namespace linkerd does not exist")),
        "{creds:?}"
    );
    let diff = cli.run(&["diff"]).ok();
    assert!(diff.stdout.contains("no drift"), "{}", diff.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_check_exit_1_while_a_cluster_is_stopped() {
    let env = DevEnv::start();
    let cli = Cli::new(&env);
    healthy(&cli).await;
    let api_server = cli
        .run(&["get", "cluster", "north", "-o", "json"])
        .ok()
        .json()["apiServer"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // `get --watch` follows the subscription and prints the listing again as north goes down.
    let mut watch = cli
        .command(&["get", "clusters", "--watch"])
        .env("LINKPLANE_SERVER", &cli.server)
        .env("LINKPLANE_TOKEN", &cli.token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("get --watch starts");
    let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let printed = printed.clone();
        let mut stdout = watch.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut p) = printed.lock() {
                    p.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        })
    };
    eventually(CONVERGE, "the first listing", || async {
        printed
            .lock()
            .ok()
            .filter(|p| p.contains("north"))
            .map(|_| ())
    })
    .await;

    env.admin("north/stop").await;
    eventually(CONVERGE, "--watch prints north Down", || async {
        let text = printed.lock().map(|p| p.clone()).unwrap_or_default();
        text.split("\n\n")
            .skip(1)
            .any(|listing| {
                table(listing)
                    .iter()
                    .any(|r| r["NAME"] == "north" && r["HEALTH"] == "Down")
            })
            .then_some(())
    })
    .await;
    let _ = watch.kill();
    let _ = watch.wait();
    let _ = reader.join();

    let status = eventually(CONVERGE, "status exits 1 naming north", || async {
        let out = cli.run(&["status"]);
        (out.code == 1 && out.stdout.contains("cluster north is Down")).then_some(out)
    })
    .await;
    assert!(status.stdout.contains("✗"), "{}", status.stdout);
    let report = cli.run(&["status", "-o", "json"]).json();
    assert_eq!(report["healthy"], false);

    let check = cli.run(&["check", "--cluster", "north"]);
    assert_eq!(check.code, 1, "{}", check.stdout);
    let north = check
        .stdout
        .split("cluster north")
        .nth(1)
        .unwrap_or_default();
    assert!(
        north.contains("✗ API reachable with its credentials"),
        "{}",
        check.stdout
    );
    assert!(
        north.contains(&api_server),
        "the failure names the API server: {north}"
    );
    assert!(north.contains("hint:"), "{north}");
    let checks = cli.run(&["check", "-o", "json"]).json();
    let failed: Vec<&Value> = checks
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["outcome"] == "fail")
        .collect();
    assert!(
        failed.iter().any(|c| c["group"] == "cluster north"),
        "{checks}"
    );
    assert!(
        failed.iter().all(|c| c["hint"].is_string()),
        "every failure has a hint: {checks}"
    );
    let down = table(&cli.run(&["get", "clusters", "--state", "down"]).ok().stdout);
    assert_eq!(column(&down, "NAME"), ["north"]);

    env.admin("north/start").await;
    healthy(&cli).await;
    let check = cli.run(&["check"]);
    assert_eq!(check.code, 0, "{}", check.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_shows_a_field_changed_outside_git_and_sync_wait_applies_a_commit() {
    let env = DevEnv::start();
    let cli = Cli::new(&env);
    healthy(&cli).await;

    // A change made outside Git, straight in the database: `diff` shows the one field.
    let edited = Command::new("psql")
        .args([
            &env.facts.database_url,
            "-q",
            "-c",
            "UPDATE clusters SET spec = jsonb_set(spec, '{clusterDomain}', '\"edited.local\"') WHERE name = 'east'",
        ])
        .status()
        .expect("psql runs")
        .success();
    assert!(edited);
    let diff = eventually(CONVERGE, "diff exits 1", || async {
        let out = cli.run(&["diff", "dev", "-o", "json"]);
        (out.code == 1).then_some(out)
    })
    .await;
    let drift = &diff.json()[0]["drift"];
    assert_eq!(drift[0]["kind"], "CLUSTER", "{drift}");
    assert_eq!(drift[0]["change"], "MODIFIED", "{drift}");
    assert_eq!(drift[0]["name"], "east");
    assert_eq!(
        drift[0]["fields"].as_array().map(Vec::len),
        Some(1),
        "{drift}"
    );
    assert_eq!(drift[0]["fields"][0]["path"], "spec.clusterDomain");
    assert_eq!(drift[0]["fields"][0]["desired"], "\"cluster.local\"");
    assert_eq!(drift[0]["fields"][0]["actual"], "\"edited.local\"");
    let rows = table(&cli.run(&["diff"]).stdout);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["FIELD"], "spec.clusterDomain");
    assert_eq!(rows[0]["DATABASE"], "\"edited.local\"");
    let check = cli.run(&["check"]);
    assert!(
        check
            .stdout
            .contains("‼ Git source dev matches the database"),
        "{}",
        check.stdout
    );

    // A commit synced with --wait is in the clusters when the command returns.
    let mesh = env.read_repo_file("links/mesh.yaml");
    let without: String = mesh
        .split("\n---\n")
        .filter(|doc| !doc.contains("name: north-from-east\n"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    env.commit(
        "links/mesh.yaml",
        Some(&without),
        "north stops mirroring east",
    );
    let sync = cli.run(&["sync", "dev", "--wait", "--timeout", "60"]).ok();
    assert!(sync.stdout.contains("✓ dev: Applied"), "{}", sync.stdout);
    assert!(sync.stdout.contains("converged"), "{}", sync.stdout);
    eventually(
        Duration::from_secs(5),
        "web-east gone from north",
        || async {
            (!env
                .kubectl(
                    "north",
                    &["get", "service", "web-east", "-n", "demo", "-o", "name"],
                )
                .0)
                .then_some(())
        },
    )
    .await;
    let links = cli.run(&["get", "links", "-o", "json"]).ok().json();
    assert_eq!(links.as_array().map(Vec::len), Some(5), "{links}");

    // A viewer reads but may not sync. The token is made the way the README says, with the
    // database flag after the action.
    let viewer = Command::new(&cli.bin)
        .args([
            "token",
            "create",
            "--role",
            "viewer",
            "--name",
            "dashboards",
            "--database-url",
            &env.facts.database_url,
        ])
        .env_remove("DATABASE_URL")
        .env("LINKPLANE_LOG", "warn")
        .output()
        .expect("token create runs");
    assert!(
        viewer.status.success(),
        "{}",
        String::from_utf8_lossy(&viewer.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&viewer.stderr).contains("already exists"),
        "no sqlx notice noise: {}",
        String::from_utf8_lossy(&viewer.stderr)
    );
    let viewer = String::from_utf8_lossy(&viewer.stdout).trim().to_string();
    let who = table(&cli.run_as(&viewer, &["whoami"]).ok().stdout);
    assert_eq!(who[0]["ROLE"], "viewer");
    assert_eq!(who[0]["NAME"], "dashboards");
    cli.run_as(&viewer, &["get", "sources"]).ok();
    let refused = cli.run_as(&viewer, &["sync", "dev"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("FORBIDDEN"), "{}", refused.stderr);
    assert!(refused.stderr.contains("operator"), "{}", refused.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_unpin_suspend_and_resume_are_seen_in_the_clusters() {
    let env = DevEnv::start();
    let cli = Cli::new(&env);
    healthy(&cli).await;
    let good = cli
        .run(&["get", "sources", "dev", "-o", "json"])
        .ok()
        .json()["lastAppliedRevision"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mesh = env.read_repo_file("links/mesh.yaml");
    let without: String = mesh
        .split("\n---\n")
        .filter(|doc| !doc.contains("name: north-from-east\n"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    env.commit(
        "links/mesh.yaml",
        Some(&without),
        "north stops mirroring east",
    );
    cli.run(&["sync", "dev", "--wait", "--timeout", "60"]).ok();
    assert!(
        !env.kubectl("north", &["get", "service", "web-east", "-n", "demo"])
            .0
    );

    let rollback = cli
        .run(&["rollback", "dev", &good, "--wait", "--timeout", "60"])
        .ok();
    assert!(rollback.stdout.contains("pinned at"), "{}", rollback.stdout);
    eventually(
        Duration::from_secs(10),
        "web-east back in north",
        || async {
            env.kubectl("north", &["get", "service", "web-east", "-n", "demo"])
                .0
                .then_some(())
        },
    )
    .await;
    let source = cli
        .run(&["get", "sources", "dev", "-o", "json"])
        .ok()
        .json();
    assert_eq!(source["pinnedRevision"], good.as_str(), "{source}");

    cli.run(&["unpin", "dev"]).ok();
    cli.run(&["sync", "dev", "--wait", "--timeout", "60"]).ok();
    assert!(
        !env.kubectl("north", &["get", "service", "web-east", "-n", "demo"])
            .0
    );

    let suspended = cli.run(&["suspend", "dev"]).ok();
    assert!(
        suspended.stdout.contains("suspended"),
        "{}",
        suspended.stdout
    );
    let source = cli
        .run(&["get", "sources", "dev", "-o", "json"])
        .ok()
        .json();
    assert_eq!(source["suspended"], true, "{source}");
    cli.run(&["resume", "dev"]).ok();
    let source = cli
        .run(&["get", "sources", "dev", "-o", "json"])
        .ok()
        .json();
    assert_eq!(source["suspended"], false, "{source}");
}

/// `diff --revision` plans a commit the engine has not applied (Argo CD's `app diff --revision`
/// shows the target revision against the live state without syncing); `check` reports the
/// migration level and Git reachability; a viewer's `diff` works; `gateways` shows the latency
/// percentiles of the recent probes (the p50/p95/p99 columns of `linkerd multicluster gateways`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_revision_plans_without_applying_and_check_reads_the_server_level() {
    let env = DevEnv::start();
    let cli = Cli::new(&env);
    healthy(&cli).await;

    let check = cli.run(&["check"]).ok();
    for line in [
        "✓ database migrations current",
        "✓ Git source dev reachable",
    ] {
        assert!(check.stdout.contains(line), "{line}: {}", check.stdout);
    }
    let checks = cli.run(&["check", "-o", "json"]).ok().json();
    let migrations = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "database migrations current")
        .cloned()
        .unwrap_or_default();
    assert_eq!(migrations["outcome"], "ok", "{checks}");

    // Percentiles once the prober has a few probes of each target in its window.
    let gateways = eventually(CONVERGE, "latency percentiles", || async {
        let g = cli.run(&["gateways", "-o", "json"]).ok().json();
        g.as_array()
            .unwrap()
            .iter()
            .all(|r| r["latencyP50Ms"].is_number())
            .then_some(g)
    })
    .await;
    for r in gateways.as_array().unwrap() {
        let (p50, p95, p99) = (
            r["latencyP50Ms"].as_f64().unwrap(),
            r["latencyP95Ms"].as_f64().unwrap(),
            r["latencyP99Ms"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p50 <= p95 && p95 <= p99, "{r}");
    }
    let rows = table(&cli.run(&["gateways"]).ok().stdout);
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r["LATENCY_P50"].ends_with("ms") && r["LATENCY_P99"].ends_with("ms")),
        "{rows:?}"
    );
    let behind: Vec<String> = gateways
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["mirrors"].to_string())
        .collect();
    assert_eq!(
        column(&rows, "NUM_SVC"),
        behind,
        "NUM_SVC is the JSON's mirrors"
    );

    // A commit the engine does not apply (the source is suspended): one field of one cluster.
    cli.run(&["suspend", "dev"]).ok();
    let east = env.read_repo_file("clusters/east.yaml");
    assert!(east.contains("clusterDomain: cluster.local"));
    env.commit(
        "clusters/east.yaml",
        Some(&east.replace("clusterDomain: cluster.local", "clusterDomain: east.local")),
        "east gets its own cluster domain",
    );
    let planned = cli.run(&["diff", "dev", "--revision", "main", "-o", "json"]);
    assert_eq!(planned.code, 1, "changes exit 1: {planned:?}");
    let plan = planned.json();
    assert_eq!(plan["requested"], "main");
    assert_eq!(plan["noop"], false);
    assert_eq!(
        plan["changes"],
        serde_json::json!([{"kind": "CLUSTER", "name": "east", "change": "UPDATE",
            "fields": [{"path": "spec.clusterDomain", "desired": "\"east.local\"",
                        "actual": "\"cluster.local\"", "redacted": false}]}]),
        "{plan}"
    );
    let commit = plan["revision"].as_str().unwrap().to_string();
    let text = cli.run(&["diff", "dev", "--revision", &commit[..10]]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout.contains("===== Cluster east (update) ======")
            && text
                .stdout
                .contains("< spec.clusterDomain: \"cluster.local\"")
            && text.stdout.contains("> spec.clusterDomain: \"east.local\""),
        "{}",
        text.stdout
    );
    // Nothing was applied.
    let cluster = cli.run(&["get", "clusters", "east", "-o", "json"]).ok();
    assert!(
        cluster.stdout.contains("cluster.local") && !cluster.stdout.contains("east.local"),
        "{}",
        cluster.stdout
    );
    let unknown = cli.run(&["diff", "dev", "--revision", "no-such-branch"]);
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(
        unknown.stderr.contains("BAD_USER_INPUT")
            && unknown.stderr.contains("not a commit, branch or tag"),
        "{}",
        unknown.stderr
    );

    // A viewer's `diff` (drift and a revision) works: drift of non-secret fields is viewable.
    let viewer = Command::new(&cli.bin)
        .args(["token", "create", "--role", "viewer", "--name", "ci"])
        .args(["--database-url", &env.facts.database_url])
        .env_remove("DATABASE_URL")
        .env("LINKPLANE_LOG", "warn")
        .output()
        .expect("token create runs");
    assert!(viewer.status.success());
    let viewer = String::from_utf8_lossy(&viewer.stdout).trim().to_string();
    let drift = cli.run_as(&viewer, &["diff"]);
    assert_eq!(drift.code, 0, "{drift:?}");
    let planned = cli.run_as(
        &viewer,
        &["diff", "dev", "--revision", "main", "-o", "json"],
    );
    assert_eq!(planned.code, 1, "{planned:?}");
    assert_eq!(
        planned.json()["changes"][0]["fields"][0]["path"],
        "spec.clusterDomain"
    );
}

#[test]
fn completions_for_three_shells_and_a_man_page_cover_every_sub_command() {
    let bin = linkplane_e2e::binary::linkplane().expect("linkplane builds");
    let dir = tempfile::tempdir().expect("temp dir");
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(&bin)
            .args(["completion", shell])
            .output()
            .expect("completion runs");
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let script = String::from_utf8_lossy(&out.stdout);
        for word in ["gateways", "rollback", "status", "serve", "database-url"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
        let path = dir.path().join(format!("linkplane.{shell}"));
        std::fs::write(&path, script.as_bytes()).expect("write script");
        if shell == "bash" {
            // The generated script must at least parse.
            let ok = Command::new("bash")
                .arg("-n")
                .arg(&path)
                .status()
                .expect("bash runs")
                .success();
            assert!(ok, "bash -n rejects the completion script");
        }
    }
    let man = Command::new(&bin).arg("man").output().expect("man runs");
    assert!(man.status.success());
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.contains(".TH linkplane 1"), "{page}");
    for sub in [
        "login", "get", "status", "check", "gateways", "diff", "sync", "rollback", "serve",
    ] {
        assert!(
            page.contains(&format!("\\fBlinkplane {sub}\\fR")),
            "man page lacks {sub}"
        );
    }
}
