//! End-to-end: the whole system through the running binary (`linkplane dev`), as a user drives it.
//!
//! Each test gets its own `linkplane dev` (three kubesim clusters, a fresh database, a GitOps repo
//! with a full mesh): east exports `web` (gateway mode), north exports `api` (remote discovery),
//! west exports `db` (headless), and every cluster holds a member of the federated `checkout`.

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use linkplane_e2e::dev::{DevEnv, EAST_SAMPLE_MIRRORS, eventually};
use serde_json::Value;

const CONVERGE: Duration = Duration::from_secs(30);

fn exists(env: &DevEnv, cluster: &str, svc: &str) -> bool {
    env.kubectl(
        cluster,
        &["get", "service", svc, "-n", "demo", "-o", "name"],
    )
    .0
}

async fn mirrors_of(env: &DevEnv, cluster: &str) -> Vec<(String, String)> {
    let data = env
        .graphql(&format!(
            r#"{{ mirrors(cluster: "{cluster}", namespace: "demo", first: 100) {{ edges {{ node {{ localName state }} }} }} }}"#
        ))
        .await;
    data["mirrors"]["edges"]
        .as_array()
        .map(|edges| {
            edges
                .iter()
                .map(|e| {
                    (
                        e["node"]["localName"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        e["node"]["state"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn has_mirrored(mirrors: &[(String, String)], name: &str) -> bool {
    mirrors.iter().any(|(n, s)| n == name && s == "MIRRORED")
}

/// The mesh file without one link document.
fn mesh_without(mesh: &str, link: &str) -> String {
    mesh.split("\n---\n")
        .filter(|doc| !doc.contains(&format!("name: {link}\n")))
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_committed_to_git_makes_mirrors_appear_for_kubectl_kube_and_graphql() {
    let env = DevEnv::start();
    eventually(CONVERGE, "web-east mirrored into west", || async {
        exists(&env, "west", "web-east").then_some(())
    })
    .await;
    let mesh = env.read_repo_file("links/mesh.yaml");

    env.commit(
        "links/mesh.yaml",
        Some(&mesh_without(&mesh, "west-from-east")),
        "unlink west from east",
    );
    assert_eq!(env.webhook().await, 202, "{}", env.log());
    eventually(
        CONVERGE,
        "web-east removed from west (cleanupOnUnlink)",
        || async { (!exists(&env, "west", "web-east")).then_some(()) },
    )
    .await;
    assert!(
        exists(&env, "north", "web-east"),
        "the other link is untouched"
    );

    env.commit("links/mesh.yaml", Some(&mesh), "link west to east again");
    assert_eq!(env.webhook().await, 202);
    eventually(CONVERGE, "web-east back in west", || async {
        exists(&env, "west", "web-east").then_some(())
    })
    .await;
    let (ok, out) = env.kubectl(
        "west",
        &[
            "get",
            "service",
            "web-east",
            "-n",
            "demo",
            "-o",
            "jsonpath={.metadata.labels}",
        ],
    );
    assert!(
        ok && out.contains("\"mirror.linkerd.io/cluster-name\":\"east\""),
        "{out}"
    );
    let services: Api<Service> = Api::namespaced(env.client("west").await, "demo");
    let svc = services
        .get("web-east")
        .await
        .expect("kube client sees the mirror");
    let annotations = svc.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations
            .get("mirror.linkerd.io/remote-svc-fq-name")
            .map(String::as_str),
        Some("web.demo.svc.cluster.local")
    );
    eventually(
        CONVERGE,
        "GraphQL shows web-east Mirrored in west",
        || async { has_mirrored(&mirrors_of(&env, "west").await, "web-east").then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_export_label_with_kubectl_removes_the_mirror_everywhere() {
    let env = DevEnv::start();
    for c in ["west", "north"] {
        eventually(CONVERGE, "web-east mirrored", || async {
            exists(&env, c, "web-east").then_some(())
        })
        .await;
    }
    let (ok, out) = env.kubectl(
        "east",
        &[
            "label",
            "service",
            "web",
            "-n",
            "demo",
            "mirror.linkerd.io/exported-",
        ],
    );
    assert!(ok, "{out}");
    for c in ["west", "north"] {
        eventually(CONVERGE, "web-east gone", || async {
            (!exists(&env, c, "web-east")).then_some(())
        })
        .await;
    }
    eventually(CONVERGE, "GraphQL no longer lists web-east", || async {
        let west = mirrors_of(&env, "west").await;
        let north = mirrors_of(&env, "north").await;
        (!west.iter().chain(&north).any(|(n, _)| n == "web-east")).then_some(())
    })
    .await;
    assert!(exists(&env, "west", "api-north"), "unrelated mirrors stay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_revision_is_rejected_with_file_and_line_and_mirrors_stay() {
    let env = DevEnv::start();
    eventually(CONVERGE, "web-east mirrored into west", || async {
        exists(&env, "west", "web-east").then_some(())
    })
    .await;
    let before = mirrors_of(&env, "west").await;
    env.commit(
        "links/broken.yaml",
        Some("apiVersion: linkplane.io/v1alpha1\nkind: Link\nmetadata:\n  name: broken\nspec:\n  source: west\n  target: nowhere\n"),
        "a link to a cluster that does not exist",
    );
    assert_eq!(env.webhook().await, 202);
    let error: String = eventually(CONVERGE, "the source reports the failure", || async {
        let data = env
            .graphql("{ gitSources { edges { node { status lastError } } } }")
            .await;
        let node: &Value = &data["gitSources"]["edges"][0]["node"];
        (node["status"] == "FAILED")
            .then(|| node["lastError"].as_str().unwrap_or_default().to_string())
    })
    .await;
    assert!(
        error.contains("links/broken.yaml:"),
        "error names the file: {error}"
    );
    assert!(
        error.contains("nowhere"),
        "error names the dangling cluster: {error}"
    );
    assert!(exists(&env, "west", "web-east"), "mirrors are untouched");
    assert_eq!(
        mirrors_of(&env, "west").await,
        before,
        "mirror states unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_cluster_degrades_only_its_links_and_converges_after_restart() {
    let env = DevEnv::start();
    eventually(CONVERGE, "web-east mirrored into north", || async {
        exists(&env, "north", "web-east").then_some(())
    })
    .await;
    env.admin("north/stop").await;
    eventually(CONVERGE, "GraphQL shows north down", || async {
        let data = env
            .graphql(r#"{ cluster(name: "north") { health reconciler { state } } }"#)
            .await;
        (data["cluster"]["health"] == "DOWN").then_some(())
    })
    .await;
    // The other links keep converging while north is down.
    let manifest = "apiVersion: v1\nkind: Service\nmetadata:\n  name: late\n  namespace: demo\n  labels:\n    mirror.linkerd.io/exported: \"true\"\nspec:\n  ports:\n  - name: http\n    port: 80\n";
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), manifest).expect("write");
    let (ok, out) = env.kubectl("east", &["apply", "-f", &file.path().display().to_string()]);
    assert!(ok, "{out}");
    eventually(
        CONVERGE,
        "late-east in west while north is down",
        || async { exists(&env, "west", "late-east").then_some(()) },
    )
    .await;
    let east = env.graphql(r#"{ cluster(name: "east") { health } }"#).await;
    assert_ne!(east["cluster"]["health"], "DOWN", "east is not affected");

    let restarted = std::time::Instant::now();
    env.admin("north/start").await;
    eventually(
        CONVERGE,
        "late-east reaches north after it is back",
        || async { exists(&env, "north", "late-east").then_some(()) },
    )
    .await;
    println!("north converged {:?} after restart", restarted.elapsed());
    eventually(CONVERGE, "north healthy again", || async {
        let data = env
            .graphql(r#"{ cluster(name: "north") { health } }"#)
            .await;
        (data["cluster"]["health"] != "DOWN").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_sync_restarts_into_the_desired_state() {
    let env = DevEnv::start();
    eventually(CONVERGE, "web-east mirrored into north", || async {
        exists(&env, "north", "web-east").then_some(())
    })
    .await;
    // Desired: north no longer mirrors east, and east exports 20 more services.
    let mut docs = String::new();
    for i in 0..20 {
        docs.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: bulk-{i}\n  namespace: demo\n  labels:\n    mirror.linkerd.io/exported: \"true\"\nspec:\n  ports:\n  - name: http\n    port: 80\n"
        ));
    }
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), docs).expect("write");
    let mesh = env.read_repo_file("links/mesh.yaml");
    env.commit(
        "links/mesh.yaml",
        Some(&mesh_without(&mesh, "north-from-east")),
        "north stops mirroring east",
    );
    let (ok, out) = env.kubectl("east", &["apply", "-f", &file.path().display().to_string()]);
    assert!(ok, "{out}");
    assert_eq!(env.webhook().await, 202);
    let old_pid = env.facts.server_pid;
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &old_pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    eventually(CONVERGE, "the server is restarted", || async {
        (env.reload_facts().server_pid != old_pid).then_some(())
    })
    .await;

    eventually(
        Duration::from_secs(60),
        "every bulk service mirrored into west, none into north",
        || async {
            let (_, west) = env.kubectl("west", &["get", "services", "-n", "demo", "-o", "name"]);
            let (_, north) = env.kubectl("north", &["get", "services", "-n", "demo", "-o", "name"]);
            let west_ok = (0..20).all(|i| west.contains(&format!("service/bulk-{i}-east\n")));
            let north_clean = !north.contains("-east\n");
            (west_ok && north_clean).then_some(())
        },
    )
    .await;
    // No orphans or duplicates: every mirror of east in west stands for a Service east exports.
    let (_, west) = env.kubectl(
        "west",
        &[
            "get",
            "services",
            "-n",
            "demo",
            "-l",
            "mirror.linkerd.io/cluster-name=east",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    );
    let mut names: Vec<&str> = west.split_whitespace().collect();
    names.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("bulk-{i}-east")).collect();
    expected.extend(EAST_SAMPLE_MIRRORS.map(String::from));
    expected.sort();
    assert_eq!(
        names,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let rows = mirrors_of(&env, "west").await;
    let east_rows = rows.iter().filter(|(n, _)| n.ends_with("-east")).count();
    assert_eq!(
        east_rows,
        expected.len(),
        "one state row per mirror: {rows:?}"
    );
}
