//! Shared fixtures: real Git repositories in temp dirs (written with git2, so no user git
//! config is involved) and manifest builders.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use linkplane_core::GitSource;
use linkplane_store::{PgConnection, git_sources};

/// A bare "remote" repository in a temp dir.
pub struct Remote {
    pub dir: tempfile::TempDir,
    pub repo: git2::Repository,
}

impl Remote {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        Self { dir, repo }
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }

    /// Commits `files` (path → content; `None` deletes) on `main`.
    pub fn commit(&self, files: &[(&str, Option<&str>)], message: &str) -> String {
        commit(&self.repo, "main", files, message)
    }

    /// Moves `main` to `commit`, as a force push does.
    pub fn force_main(&self, commit: &str) {
        self.repo
            .reference(
                "refs/heads/main",
                git2::Oid::from_str(commit).unwrap(),
                true,
                "force push",
            )
            .unwrap();
    }
}

pub fn commit(
    repo: &git2::Repository,
    branch: &str,
    files: &[(&str, Option<&str>)],
    message: &str,
) -> String {
    let sig = git2::Signature::now("Ada Lovelace", "ada@example.com").unwrap();
    let refname = format!("refs/heads/{branch}");
    let parent = repo
        .find_reference(&refname)
        .ok()
        .and_then(|r| r.peel_to_commit().ok());
    let mut index = git2::Index::new().unwrap();
    if let Some(p) = &parent {
        index.read_tree(&p.tree().unwrap()).unwrap();
    }
    for (path, content) in files {
        match content {
            Some(text) => {
                let blob = repo.blob(text.as_bytes()).unwrap();
                let entry = git2::IndexEntry {
                    ctime: git2::IndexTime::new(0, 0),
                    mtime: git2::IndexTime::new(0, 0),
                    dev: 0,
                    ino: 0,
                    mode: 0o100644,
                    uid: 0,
                    gid: 0,
                    file_size: text.len() as u32,
                    id: blob,
                    flags: 0,
                    flags_extended: 0,
                    path: path.as_bytes().to_vec(),
                };
                index.add(&entry).unwrap();
            }
            None => index.remove_path(Path::new(path)).unwrap(),
        }
    }
    let tree_id = index.write_tree_to(repo).unwrap();
    let tree = repo.find_tree(tree_id).unwrap();
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some(&refname), &sig, &sig, message, &tree, &parents)
        .unwrap()
        .to_string()
}

pub fn cluster(name: &str) -> String {
    format!(
        "---\napiVersion: linkplane.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: {name}\nspec:\n  apiServer: https://{name}.example.com:6443\n  credentials:\n    kubeconfigFile: /etc/linkplane/{name}.kubeconfig\n  labels:\n    env: prod\n"
    )
}

pub fn link(name: &str, source: &str, target: &str) -> String {
    format!(
        "---\napiVersion: linkplane.io/v1alpha1\nkind: Link\nmetadata:\n  name: {name}\nspec:\n  source: {source}\n  target: {target}\n"
    )
}

pub fn policy(name: &str) -> String {
    format!(
        "---\napiVersion: linkplane.io/v1alpha1\nkind: ExportPolicy\nmetadata:\n  name: {name}\nspec:\n  namespaces:\n    deny: [kube-system]\n"
    )
}

/// Registers a source pointing at `url`, branch main, path `fleet`.
pub async fn add_source(conn: &mut PgConnection, name: &str, url: &str, self_heal: bool) {
    let src = GitSource {
        name: name.into(),
        spec: serde_json::from_value(serde_json::json!({
            "url": url, "path": "fleet", "selfHeal": self_heal, "pollInterval": "1h"
        }))
        .unwrap(),
    };
    git_sources::upsert(conn, &src).await.unwrap();
}
