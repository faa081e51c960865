//! `linkplane completion bash|zsh|fish` and `linkplane man`: generated from the one clap tree,
//! so they always match the binary.

use std::process::ExitCode;

use clap::{Args, CommandFactory as _, ValueEnum};

use crate::config::Cli;

/// `linkplane completion`.
#[derive(Debug, Clone, Args)]
pub struct CompletionArgs {
    /// The shell. Install with e.g. `linkplane completion bash > /etc/bash_completion.d/linkplane`,
    /// `linkplane completion zsh > "${fpath[1]}/_linkplane"` or
    /// `linkplane completion fish > ~/.config/fish/completions/linkplane.fish`.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Shells with a completion script.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
}

/// Prints the completion script.
pub fn completion(args: &CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout();
    match args.shell {
        Shell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "linkplane", &mut out)
        }
        Shell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "linkplane", &mut out)
        }
        Shell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, "linkplane", &mut out)
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the man page (`linkplane(1)`, every sub-command in it).
pub fn man() -> anyhow::Result<ExitCode> {
    let cmd = Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    // Then each sub-command with its arguments and flags, so the one page documents the whole
    // tree (clap_mangen lists sub-commands by name only).
    render_subcommands(&cmd, &mut buf)?;
    std::io::Write::write_all(&mut std::io::stdout(), &buf)?;
    Ok(ExitCode::SUCCESS)
}

fn render_subcommands(cmd: &clap::Command, buf: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Write as _;
    writeln!(buf, ".SH COMMANDS")?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        writeln!(
            buf,
            ".TP\n\\fBlinkplane {}\\fR\n{}",
            name,
            roff_escape(&about)
        )?;
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            let flag = match (arg.get_short(), arg.get_long()) {
                (Some(s), Some(l)) => format!("\\-{s}, \\-\\-{l}"),
                (None, Some(l)) => format!("\\-\\-{l}"),
                (Some(s), None) => format!("\\-{s}"),
                (None, None) => format!("<{}>", arg.get_id().as_str().to_uppercase()),
            };
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            writeln!(buf, ".RS\n.TP\n{flag}\n{}\n.RE", roff_escape(&help))?;
        }
        for nested in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
            let about = nested
                .get_about()
                .map(|a| a.to_string())
                .unwrap_or_default();
            writeln!(
                buf,
                ".RS\n.TP\n\\fBlinkplane {name} {}\\fR\n{}\n.RE",
                nested.get_name(),
                roff_escape(&about)
            )?;
        }
    }
    Ok(())
}

fn roff_escape(s: &str) -> String {
    let escaped = s.replace('\\', "\\\\").replace('-', "\\-");
    // A line starting with `.` or `'` would be read as a roff request.
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}
