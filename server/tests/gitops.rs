//! GitOps through the binary: `linkplane validate`, `linkplane plan`, and push webhooks against
//! `linkplane serve` syncing a real Git repository (made with the `git` CLI, isolated from the
//! user's git configuration) into a real Postgres database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    process::{Command, Output},
    time::Duration,
};

mod support;

use support::{fresh_database, start_serve};

use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET: &str = "webhook-test-secret";

fn linkplane(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_linkplane"))
        .args(args)
        .env_remove("LINKPLANE_GIT_URL")
        .output()
        .expect("linkplane runs")
}

fn cluster(name: &str) -> String {
    format!(
        "---\napiVersion: linkplane.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: {name}\nspec:\n  apiServer: https://{name}.example.com:6443\n  credentials:\n    kubeconfigFile: /etc/linkplane/{name}.kubeconfig\n"
    )
}

fn link(name: &str, source: &str, target: &str) -> String {
    format!(
        "---\napiVersion: linkplane.io/v1alpha1\nkind: Link\nmetadata:\n  name: {name}\nspec:\n  source: {source}\n  target: {target}\n"
    )
}

fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([db, "-tAc", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `git` with no system or global config and a fixed identity.
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn validate_accepts_the_examples_and_rejects_with_locations() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/gitops");
    let out = linkplane(&["validate", examples.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("valid: 3 Cluster, 6 Link, 1 ExportPolicy"),
        "{stdout}"
    );

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "clusters.yaml", &cluster("east"));
    write(
        dir.path(),
        "links/bad.yaml",
        &link("l", "east", "ghost").replace("  target: ghost\n", "  target: ghost\n  sourc: x\n"),
    );
    let out = linkplane(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let prefix = dir.path().display().to_string();
    assert!(
        stdout.starts_with(&format!(
            "{prefix}/links/bad.yaml:9:3: spec.sourc: unknown field `sourc`"
        )),
        "{stdout}"
    );
}

/// An empty folder (or a wrong path, or one whose manifests were all deleted) is valid but would
/// prune the whole source: `validate` warns, and fails with `--strict` (issue 15).
#[test]
fn validate_warns_on_an_empty_revision_and_fails_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "README.md", "manifests moved elsewhere\n");
    write(dir.path(), "clusters/notes.txt", "nothing\n");
    let path = dir.path().to_str().unwrap();

    let out = linkplane(&["validate", path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("valid: 0 Cluster, 0 Link, 0 ExportPolicy"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(&format!(
            "warning: {path}: the revision declares no objects"
        )),
        "{stderr}"
    );

    let out = linkplane(&["validate", "--strict", path]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("with --strict"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A revision with objects has nothing to warn about, strict or not.
    write(dir.path(), "clusters/east.yaml", &cluster("east"));
    let out = linkplane(&["validate", "--strict", path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
}

/// `validate` reads a checkout with the server's reader: a symlinked manifest (which the server,
/// reading Git objects, cannot follow) fails the PR check with its path, instead of being
/// skipped and called valid (issue 15).
#[test]
fn validate_refuses_a_symlinked_manifest_like_the_server() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "shared/east.yaml", &cluster("east"));
    std::fs::create_dir_all(dir.path().join("clusters")).unwrap();
    std::os::unix::fs::symlink("../shared/east.yaml", dir.path().join("clusters/east.yaml"))
        .unwrap();
    let out = linkplane(&["validate", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let prefix = dir.path().display().to_string();
    assert!(
        stdout.starts_with(&format!(
            "{prefix}/clusters/east.yaml:1:1: symbolic link to \"../shared/east.yaml\" refused"
        )),
        "{stdout}"
    );
}

#[test]
fn plan_shows_creates_updates_and_deletes_against_the_database() {
    let db = fresh_database("gitops_plan");
    let out = linkplane(&["migrate", "--database-url", &db]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    psql(
        &db,
        "INSERT INTO clusters (name, spec, owner) VALUES
           ('east', '{\"apiServer\":\"https://old\",\"credentials\":{\"kubeconfigFile\":\"/k\"},\"clusterDomain\":\"cluster.local\"}', 'git:default'),
           ('gone', '{\"apiServer\":\"https://gone\",\"credentials\":{\"kubeconfigFile\":\"/k\"},\"clusterDomain\":\"cluster.local\"}', 'git:default'),
           ('mine', '{\"apiServer\":\"https://api\",\"credentials\":\"stored\",\"clusterDomain\":\"cluster.local\"}', 'api')",
    );
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "c.yaml",
        &[
            cluster("east"),
            cluster("west"),
            link("w-e", "west", "east"),
        ]
        .concat(),
    );
    let out = linkplane(&["plan", dir.path().to_str().unwrap(), "--database-url", &db]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Cluster: 1 to create, 1 to update, 1 to delete, 0 unchanged"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  + west\n  ~ east\n  - gone\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Link: 1 to create, 0 to update, 0 to delete"),
        "{stdout}"
    );
    // Nothing was applied.
    assert_eq!(psql(&db, "SELECT count(*) FROM links"), "0");

    // With mirroring state: a pruned link's mirrors disappear, a new link's appear.
    psql(
        &db,
        "INSERT INTO clusters (name, spec, owner) VALUES
           ('north', '{\"apiServer\":\"https://n\",\"credentials\":{\"kubeconfigFile\":\"/k\"},\"clusterDomain\":\"cluster.local\"}', 'api');
         INSERT INTO links (name, source_cluster, target_cluster, spec, owner) VALUES
           ('n-e', 'north', 'east', '{\"source\":\"north\",\"target\":\"east\",\"cleanupOnUnlink\":true}', 'git:default');
         INSERT INTO mirrors (link, source_cluster, target_cluster, remote_namespace, remote_name, local_name, mode, state)
           VALUES ('n-e', 'north', 'east', 'shop', 'api', 'api-east', 'gateway', 'Mirrored')",
    );
    let out = linkplane(&["plan", dir.path().to_str().unwrap(), "--database-url", &db]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("  + west: shop/api-east (of api.shop in east, link w-e)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  - north: shop/api-east (of api.shop in east, link n-e)"),
        "{stdout}"
    );
    // Taking an API-owned name is a conflict: exit 1.
    write(dir.path(), "d.yaml", &cluster("mine"));
    let out = linkplane(&[
        "plan",
        dir.path().to_str().unwrap(),
        "--database-url",
        &db,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["kinds"]["Cluster"]["create"],
        serde_json::json!(["west"])
    );
    assert!(
        json["conflicts"][0]
            .as_str()
            .unwrap()
            .contains("d.yaml:2:1: Cluster \"mine\" already exists and is managed by the API"),
        "{json}"
    );
}

fn serve(db: &str, repo: &Path, cache: &Path, secret_file: &Path) -> (support::Server, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_linkplane"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--git-url",
            &format!("file://{}", repo.display()),
            "--git-path",
            "fleet",
            "--git-poll-interval",
            "1h",
            "--git-source-name",
            "fleet",
        ])
        .arg("--git-cache-dir")
        .arg(cache)
        .arg("--webhook-secret-file")
        .arg(secret_file)
        .env("DATABASE_URL", db)
        .env_remove("LINKPLANE_WEBHOOK_SECRET");
    start_serve(command)
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn wait_for(db: &str, sql: &str, want: &str) {
    for _ in 0..200 {
        if psql(db, sql) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "timed out waiting for {sql} = {want} (got {})",
        psql(db, sql)
    );
}

/// The PR check and production agree: a commit with a symlinked manifest is rejected by the
/// server's sync with exactly the errors `linkplane validate` prints for a checkout of it
/// (issue 15: the CLI used to skip the link and say valid, the server rejected the revision).
#[tokio::test]
async fn server_and_validate_reject_a_symlinked_manifest_with_the_same_errors() {
    let db = fresh_database("gitops_symlink");
    let repo = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let secret_file = repo.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    git(repo.path(), &["init", "-q", "-b", "main"]);
    write(repo.path(), "shared/east.yaml", &cluster("east"));
    write(repo.path(), "fleet/west.yaml", &cluster("west"));
    std::os::unix::fs::symlink("../shared/east.yaml", repo.path().join("fleet/east.yaml")).unwrap();
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-q", "-m", "link east"]);

    let fleet = repo.path().join("fleet");
    let out = linkplane(&["validate", fleet.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let prefix = format!("{}/", fleet.display());
    let from_validate: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.strip_prefix(&prefix).unwrap_or(l).to_string())
        .collect();

    let (_server, _url) = serve(&db, repo.path(), cache.path(), &secret_file);
    wait_for(
        &db,
        "SELECT count(*) FROM sync_history WHERE result = 'Rejected'",
        "1",
    )
    .await;
    let errors: Vec<String> = serde_json::from_str(&psql(
        &db,
        "SELECT errors FROM sync_history WHERE result = 'Rejected'",
    ))
    .unwrap();
    assert_eq!(errors, from_validate);
    assert!(
        errors[0].starts_with("east.yaml:1:1: symbolic link to \"../shared/east.yaml\" refused"),
        "{errors:?}"
    );
    assert_eq!(psql(&db, "SELECT count(*) FROM clusters"), "0");
}

#[tokio::test]
async fn signed_webhooks_trigger_syncs_and_unsigned_ones_change_nothing() {
    let db = fresh_database("gitops_webhook");
    let repo = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let secret_file = repo.path().join("secret");
    git(repo.path(), &["init", "-q", "-b", "main"]);
    write(repo.path(), "fleet/c.yaml", &cluster("east"));
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-q", "-m", "one"]);
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let (_server, url) = serve(&db, repo.path(), cache.path(), &secret_file);
    // The startup sync applies the first commit.
    wait_for(
        &db,
        "SELECT count(*) FROM sync_history WHERE result = 'Applied'",
        "1",
    )
    .await;
    assert_eq!(
        psql(&db, "SELECT owner FROM clusters WHERE name = 'east'"),
        "git:fleet"
    );

    // A new commit, then webhooks that must not sync it.
    write(repo.path(), "fleet/d.yaml", &cluster("west"));
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-q", "-m", "two"]);
    let body = serde_json::to_vec(&serde_json::json!({
        "ref": "refs/heads/main",
        "repository": { "clone_url": format!("file://{}", repo.path().display()) }
    }))
    .unwrap();
    // reqwest is built without a bundled TLS provider: pick ring, as the binary does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let post = |sig: Option<String>, body: Vec<u8>| {
        let mut req = client
            .post(format!("{url}/webhooks/github"))
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .body(body);
        if let Some(sig) = sig {
            req = req.header("x-hub-signature-256", sig);
        }
        req.send()
    };
    let missing = post(None, body.clone()).await.unwrap();
    assert_eq!(missing.status(), 401);
    let wrong = post(Some(sign(b"other body")), body.clone()).await.unwrap();
    assert_eq!(wrong.status(), 401);
    let sha1 = post(Some(sign(&body).replace("sha256=", "sha1=")), body.clone())
        .await
        .unwrap();
    assert_eq!(sha1.status(), 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        psql(&db, "SELECT count(*) FROM clusters WHERE name = 'west'"),
        "0"
    );
    assert_eq!(psql(&db, "SELECT count(*) FROM sync_history"), "1");

    // A good signature triggers a sync of the matching source.
    let good = post(Some(sign(&body)), body.clone()).await.unwrap();
    assert_eq!(good.status(), 202);
    let answer: serde_json::Value = good.json().await.unwrap();
    assert_eq!(answer["triggered"], serde_json::json!(["fleet"]));
    wait_for(
        &db,
        "SELECT count(*) FROM clusters WHERE name = 'west'",
        "1",
    )
    .await;
    assert_eq!(
        psql(
            &db,
            "SELECT trigger || ' ' || result || ' ' || message FROM sync_history ORDER BY id DESC LIMIT 1"
        ),
        "webhook Applied two"
    );

    // GitLab: token compared exactly; a push for another branch triggers nothing.
    let gl = |token: &str, body: serde_json::Value| {
        client
            .post(format!("{url}/webhooks/gitlab"))
            .header("x-gitlab-event", "Push Hook")
            .header("x-gitlab-token", token)
            .json(&body)
            .send()
    };
    let other_branch = serde_json::json!({
        "ref": "refs/heads/dev",
        "project": { "git_http_url": format!("file://{}", repo.path().display()) }
    });
    assert_eq!(
        gl("nope", other_branch.clone()).await.unwrap().status(),
        401
    );
    let r = gl(SECRET, other_branch).await.unwrap();
    assert_eq!(r.status(), 202);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["triggered"], serde_json::json!([]));
}
