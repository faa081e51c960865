//! The `linkplane` binary, built from the workspace.

use std::{path::PathBuf, process::Command};

use crate::{Error, Result, cmd, repo_root};

/// Returns the debug `linkplane` binary: `$LINKPLANE_BIN` when set (`scripts/test` builds it
/// once and sets it), otherwise built (if stale) in the shared target directory.
///
/// Integration tests of another package cannot use `CARGO_BIN_EXE_linkplane`. The build uses
/// the same selection as `scripts/test` (`--workspace --bins`): building `-p linkplane-server`
/// alone resolves features differently and compiled a second copy of the workspace, which ran
/// a CI machine out of disk.
pub fn linkplane() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("LINKPLANE_BIN").map(PathBuf::from) {
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(Error::Tool(format!(
                "LINKPLANE_BIN={} is not a file",
                bin.display()
            )))
        };
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    cmd::run_ok(
        Command::new(cargo)
            .args(["build", "--quiet", "--locked", "--workspace", "--bins"])
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
