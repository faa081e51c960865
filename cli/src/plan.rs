//! `linkplane diff SOURCE --revision REF`: what applying a revision would change, planned by
//! the server's GitOps engine without applying (`GitSource.plan(revision:)`), printed like
//! `argocd app diff --revision`: one `===== KIND NAME ======` block per object, `<` lines for
//! the database's values and `>` lines for the revision's.

use std::process::ExitCode;

use crate::{
    Client, Error, Result,
    ops::{self, PlanRevision, Sources, word},
    output::{self, Format, Style},
};

/// The plan of one revision, as the API answers it.
pub type RevisionPlan = ops::plan_revision::PlanRevisionNodeOnGitSourcePlan;

/// The source to plan: the one named, else the only one.
async fn source_name(client: &Client, source: Option<&str>) -> Result<String> {
    if let Some(s) = source {
        return Ok(s.to_string());
    }
    let sources = client
        .run::<Sources>(ops::sources::Variables { after: None })
        .await?
        .git_sources
        .nodes;
    match sources.as_slice() {
        [one] => Ok(one.name.clone()),
        [] => Err(Error::Usage("there is no Git source to plan".into())),
        _ => Err(Error::Usage(
            "several Git sources: name one (`linkplane diff SOURCE --revision REF`)".into(),
        )),
    }
}

/// Plans `revision` of `source` (or of the only source).
pub async fn plan(client: &Client, source: Option<&str>, revision: &str) -> Result<RevisionPlan> {
    let name = source_name(client, source).await?;
    let data = client
        .run::<PlanRevision>(ops::plan_revision::Variables {
            id: format!("GitSource:{name}"),
            revision: revision.to_string(),
        })
        .await?;
    match data.node {
        Some(ops::plan_revision::PlanRevisionNode::GitSource(s)) => Ok(s.plan),
        _ => Err(Error::NotFound {
            kind: "Git source",
            name,
        }),
    }
}

/// Runs `diff --revision`: exit 0 when applying would change nothing, 1 when it would change
/// something or the engine would refuse the revision.
pub async fn diff_revision(
    client: &Client,
    source: Option<&str>,
    revision: &str,
    format: Format,
) -> Result<ExitCode> {
    let p = plan(client, source, revision).await?;
    let text = match format {
        Format::Json | Format::Yaml => output::document(&p, format)?,
        Format::Table | Format::Wide => render(&p, Style::stdout()),
    };
    output::print(&text)?;
    Ok(if p.noop && p.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The argocd-style rendering.
pub fn render(p: &RevisionPlan, style: Style) -> String {
    let short = &p.revision[..p.revision.len().min(12)];
    let mut out = format!(
        "Revision {} ({short}) by {}: {}\n",
        p.requested, p.author, p.message
    );
    for c in &p.changes {
        let kind = c.kind.as_ref().map(word).unwrap_or_else(|| "?".into());
        out.push_str(&format!(
            "\n===== {kind} {} ({}) ======\n",
            c.name,
            word(&c.change).to_lowercase()
        ));
        for f in &c.fields {
            let redacted = if f.redacted { " (redacted)" } else { "" };
            if f.actual != "null" {
                out.push_str(&style.red(&format!("< {}: {}{redacted}", f.path, f.actual)));
                out.push('\n');
            }
            if f.desired != "null" {
                out.push_str(&style.green(&format!("> {}: {}{redacted}", f.path, f.desired)));
                out.push('\n');
            }
        }
    }
    if p.noop {
        out.push_str("\nNo changes: the database already matches this revision.\n");
    }
    if !p.errors.is_empty() {
        out.push_str(&format!(
            "\n{} the engine would refuse this revision:\n",
            style.fail_mark()
        ));
        for e in &p.errors {
            out.push_str(&format!("  {e}\n"));
        }
    }
    out
}
