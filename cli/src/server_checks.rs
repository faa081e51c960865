//! `linkplane check`'s server-level checks beyond the database: the migration level of the
//! server's database (`serverInfo.migrations`) and whether the server reaches each Git source's
//! repository now (`GitSource.reachability`, one fetch each).

use crate::{
    Client, Result,
    health::{Check, Outcome},
    ops::{self, ServerLevel},
};

/// The migration and Git reachability checks, in that order.
pub async fn checks(client: &Client) -> Result<Vec<Check>> {
    let data = client
        .run::<ServerLevel>(ops::server_level::Variables)
        .await?;
    let mut out = Vec::new();
    let m = &data.server_info.migrations;
    let latest = m.applied.iter().max().copied().unwrap_or(0);
    let (outcome, detail, hint) = if m.current {
        (
            Outcome::Ok,
            format!(
                "{} of {} migrations applied (latest {latest:04}), server {}",
                m.applied.len(),
                m.embedded.len(),
                data.server_info.version
            ),
            None,
        )
    } else if !m.unknown.is_empty() {
        (
            Outcome::Fail,
            format!(
                "the database has migrations this server does not know: {:?}",
                m.unknown
            ),
            Some(
                "a newer linkplane migrated this database: upgrade this server to that version"
                    .to_string(),
            ),
        )
    } else {
        let pending: Vec<String> = m
            .pending
            .iter()
            .map(|p| format!("{:04} {}", p.version, p.description))
            .collect();
        (
            Outcome::Fail,
            format!("pending migrations: {}", pending.join(", ")),
            Some(
                "restart the server (it migrates at start); its log \
                 says why a migration failed"
                    .to_string(),
            ),
        )
    };
    out.push(Check {
        group: "server".into(),
        name: "database migrations current".into(),
        outcome,
        detail,
        hint,
    });
    for s in &data.git_sources.nodes {
        let r = &s.reachability;
        out.push(Check {
            group: "server".into(),
            name: format!("Git source {} reachable", s.name),
            outcome: if r.reachable {
                Outcome::Ok
            } else {
                Outcome::Fail
            },
            detail: match (&r.revision, &r.error) {
                (Some(rev), _) => format!("{} at {}", s.url, &rev[..rev.len().min(12)]),
                (None, Some(e)) => e.clone(),
                (None, None) => "no answer".into(),
            },
            hint: (!r.reachable).then(|| {
                format!(
                    "the server cannot fetch {}: check the URL, its network path and the \
                     credentials (--git-token-file, --git-ssh-key-file)",
                    s.url
                )
            }),
        });
    }
    Ok(out)
}
