//! A PostgreSQL server of a test's own, which the test may stop and start again — unlike the
//! shared server `scripts/test` starts, which every other test uses at the same time.
//!
//! Mirrors `scripts/lib/postgres.sh`: `initdb` + `pg_ctl` found on `PATH` or under
//! `/usr/lib/postgresql/*/bin`, run as the `postgres` user when the test runs as root (initdb
//! refuses root), trust authentication on 127.0.0.1 and a socket in the data directory.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::{Error, Result, cmd};

/// A running (or stopped) private PostgreSQL; stopped and deleted on drop.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivatePostgres {
    /// initdb + start on a free port.
    pub fn start() -> Result<PrivatePostgres> {
        let bin = find_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("linkplane-pg.")
            .tempdir()
            .map_err(|source| Error::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let as_postgres = running_as_root();
        if as_postgres {
            // The postgres user must own the data directory and traverse its parents.
            cmd::run_ok(
                Command::new("chown")
                    .args(["-R", "postgres"])
                    .arg(dir.path()),
            )?;
            let mut d = dir.path().parent().map(Path::to_path_buf);
            while let Some(p) = d {
                let _ = Command::new("chmod").arg("o+x").arg(&p).status();
                d = p.parent().map(Path::to_path_buf);
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|source| Error::Io {
                path: PathBuf::from("127.0.0.1:0"),
                source,
            })?;
        let pg = PrivatePostgres {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = pg.data();
        cmd::run_ok(pg.command("initdb").args(["-D", &data]).args([
            "-U",
            "linkplane",
            "--auth=trust",
            "-E",
            "UTF8",
        ]))?;
        pg.resume()?;
        Ok(pg)
    }

    /// `postgres://linkplane@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://linkplane@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server as an administrator's `pg_ctl stop -m fast` does: open connections are
    /// terminated, new ones refused until [`resume`](Self::resume).
    pub fn stop(&self) -> Result<()> {
        cmd::run_ok(
            self.command("pg_ctl")
                .args(["-D", &self.data(), "-m", "fast", "-w", "stop"]),
        )
        .map(drop)
    }

    /// Starts the server (again) on the same port and data.
    pub fn resume(&self) -> Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        cmd::run_ok(self.command("pg_ctl").args([
            "-D",
            &self.data(),
            "-l",
            &log.display().to_string(),
            "-w",
            "-t",
            "60",
            "-o",
            &options,
            "start",
        ]))
        .map(drop)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data(), "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn find_bin() -> Result<PathBuf> {
    let on_path = Command::new("sh")
        .args(["-c", "command -v pg_ctl"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(dir) = on_path.as_deref().and_then(Path::parent)
        && dir.join("initdb").exists()
    {
        return Ok(dir.to_path_buf());
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop().ok_or_else(|| {
        Error::Tool(
            "PostgreSQL server binaries (initdb, pg_ctl) not found; scripts/test installs them"
                .into(),
        )
    })
}
