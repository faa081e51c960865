//! The demo's GitOps repository: `examples/gitops/` adapted to this run's clusters and committed.
//!
//! Cluster manifests point at the simulated clusters (API URL, kubeconfig file, gateway address and
//! ports). Those change on every start (fresh ports), so on a resumed state directory the
//! manifests are rewritten and committed again — the sync history then shows why they changed.
//!
//! The manifests are edited structurally: the template is parsed into a YAML value, fields are
//! set by path and the value is written back. (Chained string replacement turned a gateway port
//! in 41910–41919 into `419133` — `port: 4191` is a prefix of `port: 41913` — and a state
//! directory containing a cluster's name broke the other clusters' kubeconfig paths.)

use std::path::{Path, PathBuf};

use anyhow::Context;
use git2::{IndexAddOption, Repository, RepositoryInitOptions, Signature};
use serde_json::{Value, json};

const CLUSTER_TEMPLATE: &str = include_str!("../../../examples/gitops/clusters/east.yaml");
const POLICY: &str = include_str!("../../../examples/gitops/policies/prod-exports.yaml");
const README: &str = include_str!("../../../examples/gitops/README.md");

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
            &cluster_manifest(c)?,
        )?;
    }
    write(dir, "links/mesh.yaml", &mesh(clusters)?)?;
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

/// Sets the field at `path` (creating missing mappings), failing if the template has a
/// non-mapping where a mapping is expected.
fn set(doc: &mut Value, path: &[&str], value: Value) -> anyhow::Result<()> {
    let Some((last, parents)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    let mut node = doc;
    for key in parents {
        node = node
            .as_object_mut()
            .with_context(|| format!("the template's {key:?} parent is not a mapping"))?
            .entry(key.to_string())
            .or_insert_with(|| json!({}));
    }
    node.as_object_mut()
        .with_context(|| format!("the template has no mapping for {:?}", path.join(".")))?
        .insert(last.to_string(), value);
    Ok(())
}

fn to_yaml(doc: &Value) -> anyhow::Result<String> {
    serde_saphyr::to_string(doc).context("writing a manifest as YAML")
}

/// The example cluster manifest with this cluster's name, URL, kubeconfig and gateway.
fn cluster_manifest(c: &ClusterFacts) -> anyhow::Result<String> {
    let mut doc: Value =
        serde_saphyr::from_str(CLUSTER_TEMPLATE).context("parsing the example cluster manifest")?;
    let port = json!(c.gateway_port);
    set(&mut doc, &["metadata", "name"], json!(c.name))?;
    set(&mut doc, &["spec", "apiServer"], json!(c.url))?;
    set(
        &mut doc,
        &["spec", "credentials", "kubeconfigFile"],
        json!(c.kubeconfig.display().to_string()),
    )?;
    set(&mut doc, &["spec", "labels", "region"], json!(c.name))?;
    set(
        &mut doc,
        &["spec", "gateway", "addresses"],
        json!(["127.0.0.1"]),
    )?;
    // The simulator's gateway serves traffic and the `/ready` probe on one port.
    set(&mut doc, &["spec", "gateway", "port"], port.clone())?;
    set(&mut doc, &["spec", "gateway", "probe", "port"], port)?;
    Ok(format!(
        "# The {name} simulated cluster, written by `linkplane dev` from the example in \
         examples/gitops/clusters/.\n\
         # Credentials never live in Git: linkplane reads the kubeconfig file on this machine.\n{}",
        to_yaml(&doc)?,
        name = c.name
    ))
}

/// Every cluster mirrors every other: one Link per ordered pair, named `<source>-from-<target>`.
fn mesh(clusters: &[ClusterFacts]) -> anyhow::Result<String> {
    let mut out = String::from(
        "# Full mesh: every cluster mirrors every other cluster's exported services.\n\
         # A Link is directed: `source` receives mirrors of what `target` exports; selectors default to\n\
         # Linkerd's (mirror.linkerd.io/exported=true | remote-discovery, mirror.linkerd.io/federated=member);\n\
         # `mcs` also exports every Service that has a ServiceExport (Kubernetes MCS, docs/mcs.md).\n",
    );
    let mut first = true;
    for s in clusters {
        for t in clusters.iter().filter(|t| t.name != s.name) {
            if !first {
                out.push_str("---\n");
            }
            first = false;
            out.push_str(&to_yaml(&json!({
                "apiVersion": "linkplane.io/v1alpha1",
                "kind": "Link",
                "metadata": {"name": format!("{}-from-{}", s.name, t.name)},
                "spec": {
                    "source": s.name,
                    "target": t.name,
                    "enableHeadlessServices": true,
                    // Multi-Cluster Services: ServiceExports in, ServiceImports out (docs/mcs.md).
                    "mcs": {"enabled": true},
                },
            }))?);
        }
    }
    Ok(out)
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

    /// Parses what `prepare` wrote with the server's own reader and parser.
    fn parsed(dir: &Path) -> linkplane_gitops::manifest::Revision {
        linkplane_gitops::reader::read(linkplane_gitops::reader::Source::Dir(dir))
            .unwrap()
            .parse()
            .unwrap_or_else(|d| panic!("{d}"))
    }

    #[test]
    fn cluster_manifest_points_at_the_simulator() {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path(), &[facts("north"), facts("west")]).unwrap();
        let rev = parsed(dir.path());
        let north = &rev.clusters["north"].value.spec;
        assert_eq!(north.api_server, "https://127.0.0.1:15");
        let yaml = std::fs::read_to_string(dir.path().join("clusters/north.yaml")).unwrap();
        assert!(yaml.contains("/state/clusters/north.kubeconfig"), "{yaml}");
        assert!(!yaml.contains("east"), "{yaml}");
        let gw = north.gateway.as_ref().unwrap();
        assert_eq!(gw.addresses, ["127.0.0.1"]);
        assert_eq!(gw.port, 40000);
        assert_eq!(rev.clusters["north"].value.spec.labels["region"], "north");
    }

    /// Ports 41910–41919 start with the template's probe port 4191: string replacement wrote
    /// `419133` for 41913. Every port must come out as itself.
    #[test]
    fn gateway_ports_sharing_a_prefix_with_the_template_survive() {
        for port in [4143, 4191, 41910, 41913, 41919, 41430, 65535] {
            let mut f = facts("east");
            f.gateway_port = port;
            let dir = tempfile::tempdir().unwrap();
            prepare(dir.path(), &[f, facts("west")]).unwrap();
            let rev = parsed(dir.path());
            let gw = rev.clusters["east"].value.spec.gateway.clone().unwrap();
            assert_eq!(gw.port, u32::from(port));
            assert_eq!(gw.probe.port, u32::from(port));
        }
    }

    /// A state directory whose path contains a cluster's name must not leak into other
    /// clusters' manifests (string replacement rewrote `/tmp/east-run/...` for every cluster).
    #[test]
    fn state_dir_containing_a_cluster_name_keeps_every_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut clusters = Vec::new();
        for name in ["east", "west", "north"] {
            let mut f = facts(name);
            f.kubeconfig = PathBuf::from(format!("/tmp/east-west: run/clusters/{name}.kubeconfig"));
            clusters.push(f);
        }
        prepare(dir.path(), &clusters).unwrap();
        let rev = parsed(dir.path());
        for name in ["east", "west", "north"] {
            let creds = serde_json::to_value(&rev.clusters[name].value.spec.credentials).unwrap();
            assert_eq!(
                creds["kubeconfigFile"],
                format!("/tmp/east-west: run/clusters/{name}.kubeconfig"),
                "{creds}"
            );
        }
    }

    #[test]
    fn mesh_has_one_link_per_ordered_pair() {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path(), &[facts("a"), facts("b"), facts("c")]).unwrap();
        let rev = parsed(dir.path());
        assert_eq!(rev.links.len(), 6);
        let l = &rev.links["a-from-b"].value.spec;
        assert_eq!((l.source.as_str(), l.target.as_str()), ("a", "b"));
        assert!(l.enable_headless_services);
        assert!(l.mcs_enabled().is_some_and(|m| m.install));
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
