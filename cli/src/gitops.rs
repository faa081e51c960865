//! `linkplane diff`, `sync`, `rollback`, `unpin`, `suspend` and `resume`: the Git side.

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use clap::Args;
use serde::Serialize;

use crate::{
    Client, Conn, Error, Result,
    ops::{self, Drift, Pin, Resume, SourceState, Suspend, SyncNow, Unpin, pascal, wire, word},
    output::{self, Format, Progress, Style, Table, age, short_rev},
};

/// `linkplane diff`.
#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// The Git source (default: every source).
    pub source: Option<String>,
    /// Plan this revision (commit, branch or tag) of the source instead of showing drift:
    /// what applying it would change, field by field, without applying it.
    #[arg(long, value_name = "REF")]
    pub revision: Option<String>,
    /// Output format (`wide` is `table` here).
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
    /// Connection.
    #[command(flatten)]
    pub conn: Conn,
}

/// One source's drift, as `diff -o json` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceDrift {
    /// The source.
    pub source: String,
    /// The revision the database should match.
    pub revision: Option<String>,
    /// Its sync status.
    pub status: String,
    /// Each drifted object with its fields.
    pub drift: Vec<ops::drift::DriftGitSourcesNodesDrift>,
}

/// Runs `diff`: exit 0 when nothing drifted, 1 otherwise.
pub async fn diff(args: DiffArgs) -> Result<ExitCode> {
    let client = args.conn.client()?;
    if let Some(revision) = &args.revision {
        return crate::plan::diff_revision(&client, args.source.as_deref(), revision, args.output)
            .await;
    }
    let nodes = client
        .run::<Drift>(ops::drift::Variables)
        .await?
        .git_sources
        .nodes;
    if let Some(name) = &args.source
        && !nodes.iter().any(|s| &s.name == name)
    {
        return Err(Error::NotFound {
            kind: "Git source",
            name: name.clone(),
        });
    }
    let sources: Vec<SourceDrift> = nodes
        .into_iter()
        .filter(|s| args.source.as_ref().is_none_or(|n| &s.name == n))
        .map(|s| SourceDrift {
            source: s.name,
            revision: s.last_applied_revision,
            status: pascal(&wire(&s.status)),
            drift: s.drift,
        })
        .collect();
    let drifted = sources.iter().any(|s| !s.drift.is_empty());
    let text = match args.output {
        Format::Json | Format::Yaml => output::document(&sources, args.output)?,
        Format::Table | Format::Wide => render_diff(&sources, Style::stdout()),
    };
    output::print(&text)?;
    Ok(if drifted {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn render_diff(sources: &[SourceDrift], style: Style) -> String {
    let mut out = String::new();
    let mut t = Table::new(&[
        "SOURCE", "KIND", "NAME", "CHANGE", "FIELD", "GIT", "DATABASE", "SEEN",
    ]);
    for s in sources {
        for d in &s.drift {
            let change = word(&d.change);
            let change = match change.as_str() {
                "Deleted" => style.red(&change),
                _ => style.yellow(&change),
            };
            // `null` only for a kind this client's schema does not know.
            let kind = d.kind.as_ref().map(word).unwrap_or_else(|| "?".into());
            let fields = d.fields.as_deref().unwrap_or_default();
            if fields.is_empty() {
                t.row(vec![
                    s.source.clone(),
                    kind.clone(),
                    d.name.clone(),
                    change.clone(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    age(Some(&d.detected_at)),
                ]);
            }
            for f in fields {
                t.row(vec![
                    s.source.clone(),
                    kind.clone(),
                    d.name.clone(),
                    change.clone(),
                    f.path.clone(),
                    style.green(&f.desired),
                    style.red(&f.actual),
                    age(Some(&d.detected_at)),
                ]);
            }
        }
    }
    if !t.is_empty() {
        out.push_str(&t.render());
    }
    for s in sources.iter().filter(|s| s.drift.is_empty()) {
        out.push_str(&format!(
            "{} {}: no drift; the database matches revision {} ({})\n",
            style.ok_mark(),
            s.source,
            short_rev(s.revision.as_deref()),
            s.status
        ));
    }
    if sources.is_empty() {
        out.push_str("No Git sources.\n");
    }
    out
}

/// `linkplane sync`.
#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    /// The Git source (default: every source).
    pub source: Option<String>,
    /// Wait until the source is synced and the fleet's mirrors have settled.
    #[arg(long)]
    pub wait: bool,
    /// Seconds `--wait` waits before giving up (exit 1).
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Connection.
    #[command(flatten)]
    pub conn: Conn,
}

/// Runs `sync`: exit 1 when a revision is rejected or fails, or `--wait` times out.
pub async fn sync(args: SyncArgs) -> Result<ExitCode> {
    let client = args.conn.client()?;
    let names = match &args.source {
        Some(s) => vec![s.clone()],
        None => client
            .run::<SourceState>(ops::source_state::Variables)
            .await?
            .git_sources
            .nodes
            .into_iter()
            .map(|s| s.name)
            .collect(),
    };
    if names.is_empty() {
        return Err(Error::Usage("the server has no Git source to sync".into()));
    }
    let style = Style::stdout();
    let mut failed = false;
    for name in &names {
        let mut progress = Progress::new();
        progress.update(&format!("syncing {name}: fetching and applying"));
        let r = client
            .run::<SyncNow>(ops::sync_now::Variables {
                source: name.clone(),
            })
            .await?
            .sync_now;
        progress.finish();
        let result = word(&r.result);
        let ok = matches!(result.as_str(), "Applied" | "Unchanged");
        failed |= !ok;
        output::print(&format!(
            "{} {}: {} {}{}\n",
            if ok {
                style.ok_mark()
            } else {
                style.fail_mark()
            },
            r.source,
            style.state(&result),
            short_rev(Some(&r.revision)),
            if r.message.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.message)
            }
        ))?;
    }
    if failed {
        return Ok(ExitCode::from(1));
    }
    if args.wait {
        return wait(
            &client,
            &names,
            None,
            Duration::from_secs(args.timeout),
            style,
        )
        .await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Polls until every named source is `SYNCED` (at `revision` when given, a prefix of the full
/// id), no removed link's mirrors are still being deleted, and the fleet's mirror counts have
/// stayed the same for three polls in a row with every reconciler's watches listed. Mirrors are
/// written by the clusters' reconcilers after the database changed, so a settled count is what
/// "converged" can mean from outside; an unlinked pair's rows go with its link at once, so its
/// deletion is followed through the pending clean-ups instead.
pub async fn wait(
    client: &Client,
    names: &[String],
    revision: Option<&str>,
    timeout: Duration,
    style: Style,
) -> Result<ExitCode> {
    let deadline = Instant::now() + timeout;
    let mut progress = Progress::new();
    let mut last: Option<Vec<i64>> = None;
    let mut stable = 0;
    loop {
        let state = client
            .run::<SourceState>(ops::source_state::Variables)
            .await?;
        let mut waiting_for = Vec::new();
        for name in names {
            match state.git_sources.nodes.iter().find(|s| &s.name == name) {
                None => {
                    return Err(Error::NotFound {
                        kind: "Git source",
                        name: name.clone(),
                    });
                }
                Some(s) => {
                    let at = s.last_applied_revision.as_deref().unwrap_or_default();
                    use ops::source_state::SyncStatus;
                    let status = wire(&s.status);
                    if matches!(s.status, SyncStatus::FAILED | SyncStatus::PRUNE_HELD) {
                        progress.finish();
                        output::print(&format!(
                            "{} {name}: {}: {}\n",
                            style.fail_mark(),
                            pascal(&status),
                            s.last_error.as_deref().unwrap_or_default()
                        ))?;
                        return Ok(ExitCode::from(1));
                    }
                    // The attempted revision is the applied one. OUT_OF_SYNC alone is not waited
                    // for: without self-heal a sync reports drift and leaves it, and a pinned
                    // source is behind its branch by design.
                    let applied = !at.is_empty()
                        && s.last_attempted_revision.as_deref() == Some(at)
                        && matches!(s.status, SyncStatus::SYNCED | SyncStatus::OUT_OF_SYNC);
                    if !applied || revision.is_some_and(|r| !at.starts_with(r)) {
                        waiting_for.push(format!("{name} {}", pascal(&status)));
                    }
                }
            }
        }
        let counts: Vec<i64> = state
            .clusters
            .nodes
            .iter()
            .flat_map(|c| {
                let m = &c.mirror_counts;
                [
                    m.mirrored,
                    m.conflict,
                    m.missing_namespace,
                    m.policy_denied,
                    m.error,
                    m.total,
                ]
            })
            .collect();
        let listing = state
            .clusters
            .nodes
            .iter()
            .any(|c| c.reconciler.as_ref().is_some_and(|r| !r.watches_synced));
        if last.as_ref() == Some(&counts) && !listing && state.pending_link_cleanups == 0 {
            stable += 1;
        } else {
            stable = 0;
        }
        last = Some(counts);
        let (mirrored, total, broken) =
            state.clusters.nodes.iter().fold((0, 0, 0), |(a, b, e), c| {
                let m = &c.mirror_counts;
                (a + m.mirrored, b + m.total, e + m.error + m.conflict)
            });
        if waiting_for.is_empty() && stable >= 3 {
            progress.finish();
            for s in state
                .git_sources
                .nodes
                .iter()
                .filter(|s| names.contains(&s.name))
            {
                if s.drifted {
                    output::print(&format!(
                        "{} {}: objects changed outside Git remain (see `linkplane diff {}`)\n",
                        style.yellow("‼"),
                        s.name,
                        s.name
                    ))?;
                }
            }
            let ok = broken == 0;
            output::print(&format!(
                "{} converged: {mirrored}/{total} mirrors mirrored{}\n",
                if ok {
                    style.ok_mark()
                } else {
                    style.fail_mark()
                },
                if ok {
                    String::new()
                } else {
                    format!(", {broken} in Error or Conflict (linkplane get mirrors --state error)")
                }
            ))?;
            return Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        if Instant::now() >= deadline {
            progress.finish();
            output::print(&format!(
                "{} timed out after {}s waiting for {}\n",
                style.fail_mark(),
                timeout.as_secs(),
                if waiting_for.is_empty() {
                    format!("mirrors to settle ({mirrored}/{total} mirrored)")
                } else {
                    waiting_for.join(", ")
                }
            ))?;
            return Ok(ExitCode::from(1));
        }
        progress.update(&if waiting_for.is_empty() {
            format!("waiting for mirrors to settle: {mirrored}/{total} mirrored")
        } else {
            format!("waiting for {}", waiting_for.join(", "))
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `linkplane rollback`.
#[derive(Debug, Clone, Args)]
pub struct RollbackArgs {
    /// The Git source.
    pub source: String,
    /// The commit to hold it at (full id, or a prefix the server accepts).
    pub revision: String,
    /// Wait until the revision is applied and the fleet's mirrors have settled.
    #[arg(long)]
    pub wait: bool,
    /// Seconds `--wait` waits before giving up (exit 1).
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Connection.
    #[command(flatten)]
    pub conn: Conn,
}

/// `unpin`, `suspend`, `resume`.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// The Git source.
    pub source: String,
    /// Connection.
    #[command(flatten)]
    pub conn: Conn,
}

/// Which operator mutation [`operate`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `unpinGitSource`.
    Unpin,
    /// `suspendGitSource`.
    Suspend,
    /// `resumeGitSource`.
    Resume,
}

/// What the four operator mutations answer, in one shape.
#[derive(Debug, Serialize)]
struct Outcome {
    name: String,
    pinned_revision: Option<String>,
    suspended: bool,
    status: String,
    last_applied_revision: Option<String>,
}

macro_rules! outcome {
    ($s:expr) => {{
        let s = $s;
        Outcome {
            name: s.name,
            pinned_revision: s.pinned_revision,
            suspended: s.suspended,
            status: pascal(&wire(&s.status)),
            last_applied_revision: s.last_applied_revision,
        }
    }};
}

fn describe(o: &Outcome) -> String {
    let mut parts = vec![format!("status {}", o.status)];
    match &o.pinned_revision {
        Some(p) => parts.push(format!("pinned at {}", short_rev(Some(p)))),
        None => parts.push("following its ref".into()),
    }
    if o.suspended {
        parts.push("suspended".into());
    }
    parts.push(format!(
        "applied {}",
        short_rev(o.last_applied_revision.as_deref())
    ));
    format!("{}: {}", o.name, parts.join(", "))
}

/// Runs `rollback`: pins the source at the revision.
pub async fn rollback(args: RollbackArgs) -> Result<ExitCode> {
    let client = args.conn.client()?;
    let o = outcome!(
        client
            .run::<Pin>(ops::pin::Variables {
                source: args.source.clone(),
                revision: args.revision.clone(),
            })
            .await?
            .pin_git_source
    );
    let style = Style::stdout();
    output::print(&format!(
        "{} {} (`linkplane unpin {}` follows the ref again)\n",
        style.ok_mark(),
        describe(&o),
        o.name
    ))?;
    if args.wait {
        let rev = o.pinned_revision.clone().unwrap_or(args.revision);
        return wait(
            &client,
            std::slice::from_ref(&o.name),
            Some(&rev),
            Duration::from_secs(args.timeout),
            style,
        )
        .await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `unpin`, `suspend` or `resume`.
pub async fn operate(args: SourceArgs, op: Op) -> Result<ExitCode> {
    let client = args.conn.client()?;
    let source = args.source.clone();
    let o = match op {
        Op::Unpin => outcome!(
            client
                .run::<Unpin>(ops::unpin::Variables { source })
                .await?
                .unpin_git_source
        ),
        Op::Suspend => outcome!(
            client
                .run::<Suspend>(ops::suspend::Variables { source })
                .await?
                .suspend_git_source
        ),
        Op::Resume => outcome!(
            client
                .run::<Resume>(ops::resume::Variables { source })
                .await?
                .resume_git_source
        ),
    };
    output::print(&format!("{} {}\n", Style::stdout().ok_mark(), describe(&o)))?;
    Ok(ExitCode::SUCCESS)
}
