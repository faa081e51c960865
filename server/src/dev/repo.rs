//! The demo's GitOps repository: `examples/gitops/` adapted to this run's clusters and committed.
//!
//! Cluster manifests point at the simulated clusters (API URL, kubeconfig file, gateway address and
//! ports). Those change on every start (fresh ports), so on a resumed state directory the
//! manifests are rewritten and committed again — the sync history then shows why they changed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use git2::{IndexAddOption, Repository, RepositoryInitOptions, Signature};

const CLUSTER_TEMPLATE: &str = include_str!("../../../examples/gitops/clusters/east.yaml");
const POLICY: &str = include_str!("../../../examples/gitops/policies/prod-exports.yaml");
const README: &str = include_str!("../../../examples/gitops/README.md");
/// The template's cluster name, replaced by each cluster's own.
const TEMPLATE_NAME: &str = "east";

/// What the repository needs to know about one simulated cluster.
pub struct ClusterFacts {
    /// Cluster name.
    pub name: String,
    /// API server URL.
    pub url: String,
    /// Kubeconfig file.
    pub kubeconfig: PathBuf,
    /// Gateway listener port (serves both traffic and the `/ready` probe in the simulator).
    pub gateway_port: u16,
}

/// Creates or updates the repository at `dir`; returns the commit id of HEAD.
pub fn prepare(dir: &Path, clusters: &[ClusterFacts]) -> anyhow::Result<String> {
    let repo = match Repository::open(dir) {
        Ok(r) => r,
        // Pin the branch: git's default depends on the user's configuration.
        Err(_) => Repository::init_opts(dir, RepositoryInitOptions::new().initial_head("main"))
            .with_context(|| format!("creating a Git repository in {}", dir.display()))?,
    };
    write(dir, "README.md", README)?;
    write(dir, "policies/prod-exports.yaml", POLICY)?;
    for c in clusters {
        write(
            dir,
            &format!("clusters/{}.yaml", c.name),
            &cluster_manifest(c),
        )?;
    }
    write(dir, "links/mesh.yaml", &mesh(clusters))?;
    commit_all(
        &repo,
        "linkplane dev: point the clusters at this run's simulators",
    )
}

/// Stages everything and commits when the tree changed; returns HEAD.
pub fn commit_all(repo: &Repository, message: &str) -> anyhow::Result<String> {
    let mut index = repo.index().context("opening the Git index")?;
    index
        .add_all(["*"], IndexAddOption::DEFAULT, None)
        .context("staging files")?;
    index.write().context("writing the Git index")?;
    let tree_id = index.write_tree().context("writing the tree")?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    if let Some(p) = &parent
        && p.tree_id() == tree_id
    {
        return Ok(p.id().to_string());
    }
    let tree = repo.find_tree(tree_id).context("reading the tree")?;
    let sig =
        Signature::now("linkplane dev", "dev@linkplane.invalid").context("making a signature")?;
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let id = repo
        .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .context("committing")?;
    Ok(id.to_string())
}

fn write(dir: &Path, rel: &str, content: &str) -> anyhow::Result<()> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))
}

/// The example cluster manifest with this cluster's name, URL, kubeconfig and gateway.
fn cluster_manifest(c: &ClusterFacts) -> String {
    CLUSTER_TEMPLATE
        .replace(&format!("https://{TEMPLATE_NAME}.example.com:6443"), &c.url)
        .replace(
            &format!("/etc/linkplane/clusters/{TEMPLATE_NAME}.kubeconfig"),
            &c.kubeconfig.display().to_string(),
        )
        .replace(&format!("gateway.{TEMPLATE_NAME}.example.com"), "127.0.0.1")
        .replace("port: 4143", &format!("port: {}", c.gateway_port))
        .replace("port: 4191", &format!("port: {}", c.gateway_port))
        .replace(TEMPLATE_NAME, &c.name)
}

/// Every cluster mirrors every other: one Link per ordered pair, named `<source>-from-<target>`.
fn mesh(clusters: &[ClusterFacts]) -> String {
    let mut out = String::from(
        "# Full mesh: every cluster mirrors every other cluster's exported services.\n\
         # A Link is directed: `source` receives mirrors of what `target` exports; selectors default to\n\
         # Linkerd's (mirror.linkerd.io/exported=true | remote-discovery, mirror.linkerd.io/federated=member).\n",
    );
    let mut first = true;
    for s in clusters {
        for t in clusters.iter().filter(|t| t.name != s.name) {
            if !first {
                out.push_str("---\n");
            }
            first = false;
            out.push_str(&format!(
                "apiVersion: linkplane.io/v1alpha1\nkind: Link\nmetadata:\n  name: {s}-from-{t}\nspec:\n  source: {s}   # receives the mirrors\n  target: {t}   # exports its services\n  enableHeadlessServices: true\n",
                s = s.name,
                t = t.name
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(name: &str) -> ClusterFacts {
        ClusterFacts {
            name: name.into(),
            url: format!("https://127.0.0.1:1{}", name.len()),
            kubeconfig: PathBuf::from(format!("/state/clusters/{name}.kubeconfig")),
            gateway_port: 40000,
        }
    }

    #[test]
    fn cluster_manifest_points_at_the_simulator() {
        let m = cluster_manifest(&facts("north"));
        assert!(m.contains("name: north"));
        assert!(m.contains("apiServer: https://127.0.0.1:15"));
        assert!(m.contains("kubeconfigFile: /state/clusters/north.kubeconfig"));
        assert!(m.contains("addresses: [127.0.0.1]"));
        assert!(!m.contains("east"), "{m}");
    }

    #[test]
    fn mesh_has_one_link_per_ordered_pair() {
        let m = mesh(&[facts("a"), facts("b"), facts("c")]);
        assert_eq!(m.matches("kind: Link").count(), 6);
        assert!(m.contains("name: a-from-b"));
    }

    #[test]
    fn unchanged_tree_is_not_committed_twice() {
        let dir = tempfile::tempdir().unwrap();
        let first = prepare(dir.path(), &[facts("a"), facts("b")]).unwrap();
        let again = prepare(dir.path(), &[facts("a"), facts("b")]).unwrap();
        assert_eq!(first, again);
        let mut moved = facts("a");
        moved.gateway_port = 40001;
        let third = prepare(dir.path(), &[moved, facts("b")]).unwrap();
        assert_ne!(first, third);
    }
}
