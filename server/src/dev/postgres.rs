//! A throwaway PostgreSQL for `linkplane dev`: `initdb` + `pg_ctl` in the state directory.
//!
//! An existing data directory is reused (so `--state-dir` resumes), a fresh one is initialised.
//! Binaries are found on `PATH` or under `/usr/lib/postgresql/*/bin`. `initdb` refuses to run as
//! root, so as root the server runs as the `postgres` system user (created if missing).

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, bail};

/// A running PostgreSQL server; stopped by [`Postgres::stop`] (and on drop, best effort),
/// started again on the same port and data by [`Postgres::resume`].
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    data: PathBuf,
    run_as_postgres: bool,
    port: u16,
    url: String,
    stopped: bool,
}

impl Postgres {
    /// Starts (initialising if needed) a server with its data in `dir/data`, on a free port.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let bin = find_bin().context(
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin; \
             install postgresql or set DATABASE_URL",
        )?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let run_as_postgres = is_root();
        let data = dir.join("data");
        if run_as_postgres {
            ensure_postgres_user()?;
            chown_postgres(dir)?;
        }
        if !data.join("PG_VERSION").exists() {
            let out = command(run_as_postgres, &bin.join("initdb"))
                .args(["-D"])
                .arg(&data)
                .args(["-U", "linkplane", "--auth=trust", "-E", "UTF8"])
                .output()
                .context("running initdb")?;
            if !out.status.success() {
                bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        let port = free_port()?;
        let mut pg = Self {
            bin,
            dir: dir.to_path_buf(),
            data,
            run_as_postgres,
            port,
            url: format!("postgres://linkplane@127.0.0.1:{port}/postgres"),
            stopped: true,
        };
        pg.resume()?;
        Ok(pg)
    }

    /// Starts the server on its port and data (after [`stop`](Self::stop): the way an
    /// administrator brings a stopped database back); a no-op while it runs.
    pub fn resume(&mut self) -> anyhow::Result<()> {
        if !self.stopped {
            return Ok(());
        }
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off \
             -c synchronous_commit=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log");
        let status = command(self.run_as_postgres, &self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .stdout(Stdio::null())
            .status()
            .context("running pg_ctl start")?;
        if !status.success() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("PostgreSQL did not start; its log says:\n{tail}");
        }
        self.stopped = false;
        Ok(())
    }

    /// Connection URL (trust auth on loopback, no password).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions terminated, new connections refused);
    /// idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = command(self.run_as_postgres, &self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn command(run_as_postgres: bool, program: &Path) -> Command {
    if run_as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn find_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    let mut candidates: Vec<PathBuf> = on_path.collect();
    let mut versioned: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    // Newest major version first.
    versioned.sort_by_key(|p| std::cmp::Reverse(p.to_string_lossy().to_string()));
    candidates.extend(versioned);
    candidates
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn ensure_postgres_user() -> anyhow::Result<()> {
    let exists = Command::new("id")
        .arg("postgres")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if exists.map(|s| s.success()).unwrap_or(false) {
        return Ok(());
    }
    let status = Command::new("useradd")
        .args(["--system", "--no-create-home", "postgres"])
        .status()
        .context("creating the postgres system user")?;
    if !status.success() {
        bail!("useradd postgres failed");
    }
    Ok(())
}

fn chown_postgres(dir: &Path) -> anyhow::Result<()> {
    // Temporary directories are 0700: let the postgres user traverse every parent to its data.
    for parent in dir.ancestors().skip(1) {
        if parent == Path::new("/") {
            break;
        }
        let _ = Command::new("chmod").arg("o+x").arg(parent).status();
    }
    let status = Command::new("chown")
        .arg("-R")
        .arg("postgres")
        .arg(dir)
        .status()
        .context("running chown")?;
    if !status.success() {
        bail!("chown -R postgres {} failed", dir.display());
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr().context("reading the free port")?.port())
}
