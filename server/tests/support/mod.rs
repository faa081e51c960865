//! Helpers shared by the tests that run `linkplane` as a process.

#![allow(dead_code)] // each test binary uses a subset

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

/// A running `linkplane serve`, killed on drop.
pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    /// The exit status, if the process has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().ok().flatten()
    }
}

/// Starts `command` (a `linkplane serve …`) and waits for its banner; returns the base URL.
pub fn start_serve(mut command: Command) -> (Server, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("linkplane starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reads the banner");
    let url = line
        .trim()
        .strip_prefix("linkplane listening on ")
        .expect("banner names the address")
        .to_string();
    (server, url)
}

/// A fresh, empty database `<tag>_<pid>` on the server DATABASE_URL names (scripts/test sets it).
pub fn fresh_database(tag: &str) -> String {
    let base =
        std::env::var("DATABASE_URL").expect("DATABASE_URL must be set (scripts/test sets it)");
    let name = format!("{tag}_{}", std::process::id());
    let status = Command::new("psql")
        .args([
            &base,
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {name}"),
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .status()
        .expect("psql runs");
    assert!(status.success());
    let (prefix, _) = base.rsplit_once('/').expect("URL has a database part");
    format!("{prefix}/{name}")
}

/// Migrates `db` with `linkplane migrate`, so tokens can be stored before a server starts.
pub fn migrate(db: &str) {
    let status = Command::new(env!("CARGO_BIN_EXE_linkplane"))
        .arg("migrate")
        .env("DATABASE_URL", db)
        .env("LINKPLANE_LOG", "warn")
        .status()
        .expect("linkplane migrate runs");
    assert!(status.success(), "linkplane migrate failed");
}

/// A new token of `role` (`viewer`, `operator`, `admin`) from `linkplane token create`.
pub fn create_token(db: &str, role: &str, name: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_linkplane"))
        .args(["token", "create", "--role", role, "--name", name])
        .env("DATABASE_URL", db)
        .env("LINKPLANE_LOG", "warn")
        .output()
        .expect("linkplane token create runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
