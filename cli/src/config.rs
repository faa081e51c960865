//! Where the client finds its server and token: `--server` / `LINKPLANE_SERVER` and
//! `LINKPLANE_TOKEN` first, then what `linkplane login` stored in the user's config directory
//! (`$XDG_CONFIG_HOME/linkplane/config.json`, else `~/.config/linkplane/config.json`; the file is
//! written with mode 0600 because it holds a bearer token).

use std::path::PathBuf;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What `login` stores.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Stored {
    /// The server URL as given to `login`.
    pub server: Option<String>,
    /// The bearer token.
    pub token: Option<String>,
}

/// The config file's path (`LINKPLANE_CONFIG` overrides it).
pub fn path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LINKPLANE_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|p| !p.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => {
                return Err(Error::Usage(
                    "neither XDG_CONFIG_HOME nor HOME is set: set LINKPLANE_CONFIG to a file path"
                        .into(),
                ));
            }
        },
    };
    Ok(base.join("linkplane").join("config.json"))
}

/// The stored configuration; empty when there is none.
pub fn load() -> Result<Stored> {
    let path = path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| Error::Io {
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Stored::default()),
        Err(source) => Err(Error::Io { path, source }),
    }
}

/// Writes the configuration with mode 0600 (its directory 0700); returns the path.
pub fn save(stored: &Stored) -> Result<PathBuf> {
    let path = path()?;
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(io)?;
    }
    let text = serde_json::to_string_pretty(stored).map_err(|e| Error::Output(e.to_string()))?;
    write_private(&path, text.as_bytes()).map_err(io)?;
    Ok(path)
}

/// Removes the stored token (and server); `false` when there was none.
pub fn remove() -> Result<bool> {
    let path = path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::Io { path, source }),
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _, os::unix::fs::PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode on open: tighten it before writing the token.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.write_all(b"\n")
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// A server and the token to present to it.
#[derive(Debug)]
pub struct Target {
    /// The server URL as configured.
    pub server: String,
    /// The bearer token.
    pub token: Option<SecretString>,
}

/// Resolves the server and token: the flag or `LINKPLANE_SERVER`, then the stored server; the
/// `LINKPLANE_TOKEN` variable, then the stored token, which is sent only to the server it was
/// stored for.
pub fn resolve(server_flag: Option<&str>) -> Result<Target> {
    let stored = load()?;
    let env_token = std::env::var("LINKPLANE_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .map(|t| SecretString::from(t.trim().to_string()));
    let server = match server_flag.filter(|s| !s.is_empty()) {
        Some(s) => s.to_string(),
        None => stored.server.clone().ok_or(Error::NoServer)?,
    };
    let stored_token = match (&stored.server, &stored.token) {
        (Some(s), Some(t)) if same_server(s, &server) => Some(SecretString::from(t.clone())),
        _ => None,
    };
    Ok(Target {
        server,
        token: env_token.or(stored_token),
    })
}

fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

impl Target {
    /// The token, or an error telling how to get one.
    pub fn token(&self) -> Result<&str> {
        self.token
            .as_ref()
            .map(|t| t.expose_secret())
            .ok_or_else(|| Error::NoToken(self.server.clone()))
    }
}
