//! `linkplane login`, `logout` and `whoami`.

use std::{
    io::{BufRead as _, IsTerminal as _, Write as _},
    process::ExitCode,
    time::Duration,
};

use clap::Args;
use secrecy::SecretString;

use crate::{
    Client, Conn, Error, Result, config,
    ops::{self, Whoami, pascal, whoami},
    output,
};

/// `linkplane login`.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// Server URL, e.g. `http://127.0.0.1:8080` (the GraphQL path `/graphql` is added).
    #[arg(long, env = "LINKPLANE_SERVER")]
    pub server: String,
    /// Seconds to wait for the server.
    #[arg(long, env = "LINKPLANE_TIMEOUT", default_value_t = 30)]
    pub request_timeout: u64,
}

/// Reads the token from `LINKPLANE_TOKEN`, standard input (piped) or a prompt without echo,
/// checks it with `whoami`, then stores server and token.
pub async fn login(args: LoginArgs) -> Result<ExitCode> {
    crate::client::endpoint(&args.server)?;
    let token = match std::env::var("LINKPLANE_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        Some(t) => t.trim().to_string(),
        None => read_token()?,
    };
    if token.is_empty() {
        return Err(Error::Usage("no token given".into()));
    }
    let client = Client::new(
        &args.server,
        Some(SecretString::from(token.clone())),
        Duration::from_secs(args.request_timeout.max(1)),
    )?;
    let who = client.run::<Whoami>(whoami::Variables).await?.whoami;
    let path = config::save(&config::Stored {
        server: Some(args.server.clone()),
        token: Some(token),
    })?;
    eprintln!(
        "logged in to {} as {} ({}); saved in {}",
        args.server,
        name_of(&who.name),
        pascal(&ops::wire(&who.role)).to_lowercase(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn read_token() -> Result<String> {
    let stdin = std::io::stdin();
    let io = |source| Error::Io {
        path: "<stdin>".into(),
        source,
    };
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map_err(io)?;
        return Ok(line.trim().to_string());
    }
    eprint!("Token (input hidden): ");
    let _ = std::io::stderr().flush();
    let echo_off = set_echo(false);
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if echo_off {
        set_echo(true);
        eprintln!();
    }
    read.map_err(io)?;
    Ok(line.trim().to_string())
}

/// Turns terminal echo off or on with `stty` (no extra dependency for one prompt); `false` when
/// it could not be changed, so the prompt still works, echoing.
fn set_echo(on: bool) -> bool {
    std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Forgets the stored server and token.
pub fn logout() -> Result<ExitCode> {
    let path = config::path()?;
    if config::remove()? {
        eprintln!("logged out (removed {})", path.display());
    } else {
        eprintln!("not logged in ({} does not exist)", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn name_of(name: &str) -> String {
    if name.is_empty() {
        "an unnamed token".into()
    } else {
        format!("{name:?}")
    }
}

/// Prints the token's name and role, and the server.
pub async fn whoami(conn: &Conn) -> Result<ExitCode> {
    let client = conn.client()?;
    let who = client.run::<Whoami>(whoami::Variables).await?.whoami;
    let mut table = output::Table::new(&["SERVER", "TOKEN", "NAME", "ROLE"]);
    table.row(vec![
        client.endpoint().to_string(),
        who.token_id.clone().unwrap_or_else(|| "-".into()),
        output::or_dash(&who.name),
        ops::wire(&who.role).to_lowercase(),
    ]);
    output::print(&table.render())?;
    Ok(ExitCode::SUCCESS)
}
