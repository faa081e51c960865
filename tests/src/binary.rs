//! The `linkplane` binary, built from the workspace.

use std::{path::PathBuf, process::Command};

use crate::{Error, Result, cmd, repo_root};

/// Builds (if stale) and returns the debug `linkplane` binary in the shared target directory.
///
/// Integration tests of another package cannot use `CARGO_BIN_EXE_linkplane`, so this runs
/// `cargo build -p linkplane-server --bin linkplane` (a no-op when `scripts/test` already built
/// it) and returns `target/debug/linkplane` (respecting `CARGO_TARGET_DIR`).
pub fn linkplane() -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    cmd::run_ok(
        Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "linkplane-server",
                "--bin",
                "linkplane",
            ])
            .current_dir(repo_root()),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let bin = target.join("debug").join("linkplane");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(Error::Tool(format!(
            "cargo built linkplane but {} does not exist",
            bin.display()
        )))
    }
}
