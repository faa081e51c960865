//! Shared helpers for linkplane's process-level tests: the tests in this crate drive linkplane the
//! way users do — through `helm`, `kubectl` and the `linkplane` binary — rather than through its
//! library APIs.
//!
//! Start with [`cmd::run`] (run a program, capture its output, fail with everything it printed),
//! [`tools`] (a real `helm` and `kubectl`, installed into `target/tools` on first use by
//! `scripts/lib/helm.sh`), [`binary::linkplane`] (the freshly built server binary) and
//! [`manifests`] (parse multi-document YAML as Kubernetes objects). Each test target is one file
//! at the crate root listed as a `[[test]]` in `Cargo.toml` (e.g. `chart.rs`).

pub mod binary;
pub mod cmd;
pub mod dev;
pub mod manifests;
pub mod replicas;
pub mod rng;
pub mod tools;

use std::path::PathBuf;

/// Errors of the helpers. Tests usually `expect()` them; the messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A program could not be started at all (missing binary, permissions).
    #[error("could not start `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A program ran and failed; the message carries its command line, status and output.
    #[error("`{command}` failed ({status}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stdout.
        stdout: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A required tool could not be installed; tests fail rather than skip.
    #[error("{0}")]
    Tool(String),
    /// Output that should have been YAML was not.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Result of the helpers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The repository root (the workspace directory), where `charts/`, `scripts/` and `target/` live.
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Reads a file as UTF-8 with the path in the error.
pub fn read_to_string(path: impl Into<PathBuf>) -> Result<String> {
    let path = path.into();
    std::fs::read_to_string(&path).map_err(|source| Error::Io { path, source })
}
