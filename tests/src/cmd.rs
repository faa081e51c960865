//! Running programs and capturing what they print.

use std::process::Command;

use crate::{Error, Result};

/// What a finished program printed, and whether it succeeded.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub command: String,
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its exit status, printable.
    pub status: String,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl Output {
    /// Turns a failed run into [`Error::Failed`] carrying everything it printed.
    pub fn ok(self) -> Result<Self> {
        if self.success {
            Ok(self)
        } else {
            Err(Error::Failed {
                command: self.command,
                status: self.status,
                stdout: self.stdout,
                stderr: self.stderr,
            })
        }
    }
}

/// Renders a command line for messages (program and arguments, space-separated).
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` to completion with stdin closed and captures its output, whatever its exit status.
/// Only failing to start it at all is an error; use [`Output::ok`] or [`run_ok`] to require success.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let command = describe(cmd);
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            program: cmd.get_program().to_string_lossy().into_owned(),
            source,
        })?;
    Ok(Output {
        command,
        success: out.status.success(),
        status: out.status.to_string(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs `cmd` and requires it to succeed; the error carries its output.
pub fn run_ok(cmd: &mut Command) -> Result<Output> {
    run(cmd)?.ok()
}
