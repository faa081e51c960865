//! What can go wrong talking to a server, each worded for the person at the terminal: the cause
//! (connection refused to HOST:PORT, a TLS or DNS failure, a refused token) and what to do.

use std::path::PathBuf;

/// Errors of the client commands.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No server configured.
    #[error(
        "no server configured: run `linkplane login --server URL`, or set LINKPLANE_SERVER and LINKPLANE_TOKEN"
    )]
    NoServer,
    /// A server but no token.
    #[error("no token for {0}: run `linkplane login --server {0}`, or set LINKPLANE_TOKEN")]
    NoToken(String),
    /// The command line asked for something impossible.
    #[error("{0}")]
    Usage(String),
    /// A server URL that is not `http(s)://host[:port][/path]`.
    #[error("invalid server URL {url:?}: {reason}")]
    BadUrl {
        /// What was given.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// The server could not be reached (refused, DNS, TLS, timeout).
    #[error("cannot reach {addr} ({url}): {cause}")]
    Unreachable {
        /// `host:port`.
        addr: String,
        /// The URL asked.
        url: String,
        /// The innermost cause, e.g. `connection refused`.
        cause: String,
    },
    /// An HTTP answer that is not GraphQL (a proxy, a wrong path).
    #[error("{url} answered HTTP {status}, not GraphQL: {body}")]
    NotGraphql {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The server answered with GraphQL errors.
    #[error("{}", api_message(code, message))]
    Api {
        /// `extensions.code` (`FORBIDDEN`, `NOT_FOUND`…), empty when absent.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The named object does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// What was looked up.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Output could not be written or encoded.
    #[error("writing output: {0}")]
    Output(String),
    /// The subscription (`--watch`) failed.
    #[error("watching for changes: {0}")]
    Watch(String),
}

/// Result of the client commands.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The server's `extensions.code`, when the server refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

fn api_message(code: &str, message: &str) -> String {
    let hint = match code {
        "UNAUTHENTICATED" => {
            "\nhint: the token is unknown or revoked; run `linkplane login` with a valid one"
        }
        "FORBIDDEN" => {
            "\nhint: `linkplane whoami` shows your role; ask an admin for a token with more rights"
        }
        "UNAVAILABLE" => "\nhint: the server is up but a dependency is not; try again shortly",
        _ => "",
    };
    if code.is_empty() {
        format!("the server refused: {message}{hint}")
    } else {
        format!("the server refused ({code}): {message}{hint}")
    }
}

/// The innermost useful cause of a transport error, in words: `connection refused`,
/// `dns error: …`, `invalid peer certificate: UnknownIssuer`, `timed out`.
pub fn transport_cause(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timed out".into();
    }
    let mut messages = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
                std::io::ErrorKind::TimedOut => return "timed out".into(),
                _ => {}
            }
        }
        messages.push(e.to_string());
        cur = e.source();
    }
    // The deepest message names the cause; outer ones ("error sending request", "client error
    // (Connect)") only wrap it.
    messages
        .into_iter()
        .rev()
        .find(|m| !m.is_empty())
        .unwrap_or_else(|| "unknown error".into())
}
