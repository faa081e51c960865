//! The README is the user's first reference: it must name every flag, sub-command and HTTP route
//! the binary has, each once (issue 18: it had omitted 17 flags, the `/webhooks/*` routes and four
//! sub-commands, and repeated whole sections).
//!
//! Flags and sub-commands are read from the built binary's `--help` (what a user sees), routes
//! from the router's source (`server/src/http`), so a new flag or route without a README line
//! fails here.

use std::collections::BTreeSet;

use linkplane_e2e::{binary, cmd, read_to_string, repo_root};

fn readme() -> String {
    read_to_string(repo_root().join("README.md")).expect("README.md reads")
}

fn help(args: &[&str]) -> String {
    let bin = match std::env::var_os("LINKPLANE_BIN") {
        Some(path) => std::path::PathBuf::from(path),
        None => binary::linkplane().expect("linkplane builds"),
    };
    cmd::run_ok(std::process::Command::new(bin).args(args))
        .expect("linkplane --help runs")
        .stdout
}

/// `--long-flag` names at the start of a help line.
fn flags(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("-h, ").unwrap_or(l);
            let l = l.strip_prefix("-V, ").unwrap_or(l);
            let l = l.split_once(", ").map_or(l, |(short, rest)| {
                if short.len() == 2 && short.starts_with('-') {
                    rest
                } else {
                    l
                }
            });
            let name = l.strip_prefix("--")?;
            let name: String = name
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            (!name.is_empty() && name != "help" && name != "version").then(|| format!("--{name}"))
        })
        .collect()
}

#[test]
fn every_serve_flag_is_in_the_readme() {
    let readme = readme();
    let missing: Vec<String> = flags(&help(&["serve", "--help"]))
        .into_iter()
        .filter(|f| !readme.contains(&format!("`{f}`")) && !readme.contains(&format!("`{f} ")))
        .collect();
    assert!(
        missing.is_empty(),
        "flags of `linkplane serve` missing from README.md: {missing:?}"
    );
}

#[test]
fn every_sub_command_is_in_the_readme() {
    let help = help(&["--help"]);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 10, "parsed the command list: {commands:?}");
    let readme = readme();
    let missing: Vec<&&str> = commands
        .iter()
        .filter(|c| !readme.contains(&format!("`{c}`")) && !readme.contains(&format!("`{c} ")))
        .filter(|c| !readme.contains(&format!("linkplane {c}")))
        .collect();
    assert!(
        missing.is_empty(),
        "sub-commands missing from README.md: {missing:?}"
    );
}

#[test]
fn every_http_route_is_in_the_readme() {
    let dir = repo_root().join("server/src/http");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("server/src/http lists") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let text = read_to_string(&path).expect("source reads");
        for part in text.split(".route(\"").skip(1) {
            if let Some((route, _)) = part.split_once('"') {
                routes.insert(route.to_string());
            }
        }
    }
    assert!(routes.contains("/graphql"), "found the router: {routes:?}");
    let readme = readme();
    // `/dashboard/{file}` is written `/dashboard/*` for readers.
    let missing: Vec<&String> = routes
        .iter()
        .filter(|r| {
            let shown = r
                .split('/')
                .map(|s| if s.starts_with('{') { "*" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            !readme.contains(&format!("`{shown}`"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from README.md: {missing:?}"
    );
}

#[test]
fn no_section_or_table_row_is_repeated() {
    let readme = readme();
    let mut seen = BTreeSet::new();
    let mut in_code = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let keyed = line.starts_with('#') || (line.starts_with("| `") && line.ends_with('|'));
        if keyed {
            assert!(
                seen.insert(line.to_string()),
                "repeated in README.md: {line}"
            );
        }
    }
}
