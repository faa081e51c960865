//! GitOps wiring: `linkplane serve`'s Git flags, the sync runtime, and the `validate` / `plan`
//! subcommands for PR checks in GitOps repositories.
//!
//! Sources come from two places: the `git_sources` table (added through the API) and, for the
//! common single-repository setup, the `--git-*` flags. The flag-configured source is written to
//! `git_sources` at start-up under `--git-source-name`, so **flags win** over a row of the same
//! name (its spec is replaced; its pin, status and history are kept). Every other row is synced
//! as stored.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context;
use clap::Args;
use linkplane_core::{Duration, GitAuth, GitRef, GitSource, GitSourceSpec};
use linkplane_gitops::{SyncHandle, apply, git::Cache, manifest, reader};
use linkplane_store::{Store, git_sources};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use crate::config::DatabaseArgs;

/// Git sync options of `linkplane serve`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "GitOps")]
pub struct GitopsArgs {
    /// Repository to sync: a local path, `file://`, `https://` or `ssh://` URL. Unset: only
    /// sources stored in the database are synced.
    #[arg(long, env = "LINKPLANE_GIT_URL")]
    pub git_url: Option<String>,
    /// What to follow: `branch:<name>`, `tag:<name>` or `commit:<sha>`.
    #[arg(long, env = "LINKPLANE_GIT_REF", default_value = "branch:main", value_parser = parse_ref)]
    pub git_ref: GitRef,
    /// Directory inside the repository holding the manifests.
    #[arg(long, env = "LINKPLANE_GIT_PATH", default_value = ".")]
    pub git_path: String,
    /// How often to fetch when no webhook arrives.
    #[arg(long, env = "LINKPLANE_GIT_POLL_INTERVAL", default_value = "60s")]
    pub git_poll_interval: Duration,
    /// Name of the flag-configured source (objects it declares are owned by `git:<name>`).
    #[arg(long, env = "LINKPLANE_GIT_SOURCE_NAME", default_value = "default")]
    pub git_source_name: String,
    /// Revert changes made outside Git instead of only reporting them.
    #[arg(long, env = "LINKPLANE_GIT_SELF_HEAL", default_value_t = false)]
    pub git_self_heal: bool,
    /// Let a revision delete every object of the source (otherwise it is held for approval).
    #[arg(long, env = "LINKPLANE_GIT_ALLOW_EMPTY", default_value_t = false)]
    pub git_allow_empty: bool,
    /// Largest share (percent) of the source's objects one revision may delete without
    /// approval; 100 turns the check off.
    #[arg(long, env = "LINKPLANE_GIT_PRUNE_LIMIT", default_value_t = linkplane_core::git_source::default_prune_limit(),
          value_parser = clap::value_parser!(u8).range(1..=100))]
    pub git_prune_limit: u8,
    /// File holding an HTTPS token for the repository.
    #[arg(long, env = "LINKPLANE_GIT_TOKEN_FILE")]
    pub git_token_file: Option<String>,
    /// Name of an environment variable holding an HTTPS token.
    #[arg(long, env = "LINKPLANE_GIT_TOKEN_ENV")]
    pub git_token_env: Option<String>,
    /// SSH private key file for `ssh://` URLs.
    #[arg(long, env = "LINKPLANE_GIT_SSH_KEY_FILE")]
    pub git_ssh_key_file: Option<String>,
    /// Where fetched repositories are cached (bare repositories; safe to delete). Default:
    /// `linkplane-git-cache` in the system temp directory.
    #[arg(long, env = "LINKPLANE_GIT_CACHE_DIR")]
    pub git_cache_dir: Option<PathBuf>,
    /// File holding the webhook secret (GitHub HMAC key and GitLab token).
    #[arg(long, env = "LINKPLANE_WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// The webhook secret itself (prefer the file); webhooks answer 401 without a secret.
    #[arg(long, env = "LINKPLANE_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<SecretString>,
}

fn default_cache_dir() -> PathBuf {
    std::env::temp_dir().join("linkplane-git-cache")
}

fn parse_ref(s: &str) -> Result<GitRef, String> {
    match s.split_once(':') {
        Some(("branch", b)) if !b.is_empty() => Ok(GitRef::Branch(b.into())),
        Some(("tag", t)) if !t.is_empty() => Ok(GitRef::Tag(t.into())),
        Some(("commit", c)) if !c.is_empty() => Ok(GitRef::Commit(c.into())),
        _ => Err(format!(
            "{s:?} must be branch:<name>, tag:<name> or commit:<sha>"
        )),
    }
}

impl GitopsArgs {
    /// The flag-configured source, if `--git-url` is set.
    pub fn source(&self) -> Option<GitSource> {
        let url = self.git_url.clone()?;
        let auth = GitAuth {
            token_file: self.git_token_file.clone(),
            token_env: self.git_token_env.clone(),
            ssh_key_file: self.git_ssh_key_file.clone(),
        };
        let has_auth =
            auth.token_file.is_some() || auth.token_env.is_some() || auth.ssh_key_file.is_some();
        Some(GitSource {
            name: self.git_source_name.clone(),
            spec: GitSourceSpec {
                url,
                git_ref: self.git_ref.clone(),
                path: self.git_path.clone(),
                poll_interval: self.git_poll_interval,
                self_heal: self.git_self_heal,
                auth: has_auth.then_some(auth),
                allow_empty: self.git_allow_empty,
                prune_limit: self.git_prune_limit,
            },
        })
    }

    /// The webhook secret from the file or the flag.
    pub fn webhook_secret(&self) -> anyhow::Result<Option<Arc<SecretString>>> {
        if let Some(file) = &self.webhook_secret_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading --webhook-secret-file {}", file.display()))?;
            let text = text.trim();
            anyhow::ensure!(
                !text.is_empty(),
                "--webhook-secret-file {} is empty",
                file.display()
            );
            return Ok(Some(Arc::new(SecretString::from(text.to_string()))));
        }
        Ok(self
            .webhook_secret
            .as_ref()
            .filter(|s| !s.expose_secret().is_empty())
            .map(|s| Arc::new(s.clone())))
    }
}

/// Registers the flag-configured source and starts the sync runtime.
pub async fn start(
    store: &Store,
    args: &GitopsArgs,
    stop: CancellationToken,
) -> anyhow::Result<SyncHandle> {
    if let Some(source) = args.source() {
        source
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid --git-* flags: {e}"))?;
        let mut conn = store
            .acquire()
            .await
            .context("connecting for Git sources")?;
        git_sources::upsert(&mut conn, &source)
            .await
            .context("registering the flag-configured Git source")?;
        tracing::info!(
            source = %source.name,
            url = %linkplane_gitops::git::redact(&source.spec.url),
            "Git source configured by flags"
        );
    }
    // The flag-declared source is read-only through the API; one no longer in the flags is not.
    let flag_source = args.source().map(|s| s.name);
    let mut conn = store
        .acquire()
        .await
        .context("connecting for Git sources")?;
    git_sources::set_flag_source(&mut conn, flag_source.as_deref())
        .await
        .context("marking the flag-configured Git source")?;
    drop(conn);
    let cache_dir = args.git_cache_dir.clone().unwrap_or_else(default_cache_dir);
    SyncHandle::start(store.clone(), Cache::new(cache_dir), stop)
        .await
        .context("starting the GitOps sync runtime")
}

/// `linkplane validate`.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Directory of manifests (read recursively: `*.yaml`, `*.yml`).
    pub dir: PathBuf,
    /// Treat warnings as errors: exit 1 when the revision is valid but suspicious (it declares
    /// no objects at all, which a sync would hold as a prune of the whole source).
    #[arg(long, default_value_t = false)]
    pub strict: bool,
}

/// `linkplane plan`.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Directory of manifests (read recursively: `*.yaml`, `*.yml`).
    pub dir: PathBuf,
    /// The source the directory would be synced as (ownership decides updates and prunes).
    /// Default: the database's only Git source (`dev` under `linkplane dev`, the server's
    /// `--git-source-name` otherwise), else `default`.
    #[arg(long, env = "LINKPLANE_GIT_SOURCE_NAME")]
    pub source: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, default_value_t = false)]
    pub json: bool,
    /// Database.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

fn load(dir: &std::path::Path) -> anyhow::Result<Result<manifest::Revision, Vec<String>>> {
    // The same reader as the server's sync (over a Git tree): a symlink or submodule the
    // server would refuse fails the PR check too.
    let files = reader::read(reader::Source::Dir(dir))
        .with_context(|| format!("validating {}", dir.display()))?;
    let prefix = if dir == std::path::Path::new(".") {
        String::new()
    } else {
        format!("{}/", dir.display().to_string().trim_end_matches('/'))
    };
    Ok(files
        .parse()
        .map_err(|d| d.0.iter().map(|x| format!("{prefix}{x}")).collect()))
}

/// Warnings about a valid revision: things that parse but are probably a mistake.
fn warnings(rev: &manifest::Revision) -> Vec<String> {
    let mut out = Vec::new();
    if rev.is_empty() {
        // An empty revision is valid YAML-wise, but syncing it deletes every object the source
        // owns; it is what a wrong --git-path or a gutted folder looks like.
        out.push(
            "the revision declares no objects (no Cluster, Link or ExportPolicy found); syncing it \
             would delete every object of its source (held as PruneHeld unless the source sets \
             allowEmpty). Is the directory (--git-path) right?"
                .to_string(),
        );
    }
    out
}

/// Prints errors (exit 1) or a summary (exit 0); warnings go to stderr and fail only with
/// `--strict`.
pub fn validate(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    match load(&args.dir)? {
        Ok(rev) => {
            let c = rev.counts();
            println!(
                "{}: valid: {} Cluster, {} Link, {} ExportPolicy",
                args.dir.display(),
                c["Cluster"],
                c["Link"],
                c["ExportPolicy"]
            );
            let warnings = warnings(&rev);
            for w in &warnings {
                eprintln!("warning: {}: {w}", args.dir.display());
            }
            if args.strict && !warnings.is_empty() {
                eprintln!("{} warning(s) with --strict; failing", warnings.len());
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors {
                println!("{e}");
            }
            eprintln!("{} error(s); the revision would be rejected", errors.len());
            Ok(ExitCode::from(1))
        }
    }
}

/// The source `plan` describes when `--source` is not given: the one the server syncs when the
/// database holds exactly one, else the server's default name. Planning as the wrong source
/// reports every object as owned by another and refused.
async fn default_source(conn: &mut linkplane_store::PgConnection) -> anyhow::Result<String> {
    let sources = git_sources::list(conn)
        .await
        .context("listing the Git sources")?;
    Ok(match sources.as_slice() {
        [only] => only.source.name.clone(),
        _ => "default".to_string(),
    })
}

/// Prints what syncing the directory would change (exit 1 when it would be rejected).
pub async fn plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let rev = match load(&args.dir)? {
        Ok(rev) => rev,
        Err(errors) => {
            for e in &errors {
                println!("{e}");
            }
            eprintln!("{} error(s); the revision would be rejected", errors.len());
            return Ok(ExitCode::from(1));
        }
    };
    let store = Store::connect(args.database.database_url.expose_secret(), 2)
        .await
        .context("connecting to PostgreSQL (check --database-url / DATABASE_URL)")?;
    let mut conn = store.acquire().await.context("acquiring a connection")?;
    let source = match args.source {
        Some(s) => s,
        None => default_source(&mut conn).await?,
    };
    let plan = apply::plan(&mut conn, &source, &rev)
        .await
        .context("reading the current state")?;
    let mirrors = mirror_changes(&mut conn, &rev, &plan)
        .await
        .context("reading mirrors")?;
    if args.json {
        let out = serde_json::json!({
            "source": source,
            "kinds": plan.kinds,
            "mirrors": {"appear": mirrors.appear, "disappear": mirrors.disappear},
            "conflicts": plan.conflicts.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).context("encoding the plan")?
        );
    } else {
        println!("Plan for Git source {source:?}:");
        for (kind, k) in &plan.kinds {
            println!(
                "{kind}: {} to create, {} to update, {} to delete, {} unchanged",
                k.create.len(),
                k.update.len(),
                k.delete.len(),
                k.unchanged
            );
            for n in &k.create {
                println!("  + {n}");
            }
            for n in &k.update {
                println!("  ~ {n}");
            }
            for n in &k.delete {
                println!("  - {n}");
            }
        }
        for c in &plan.conflicts {
            println!(
                "conflict: {}",
                if c.file.is_empty() {
                    c.message.clone()
                } else {
                    c.to_string()
                }
            );
        }
        if !mirrors.appear.is_empty() || !mirrors.disappear.is_empty() {
            println!("Mirrors (from the services linkplane mirrors today):");
            for m in &mirrors.appear {
                println!("  + {m}");
            }
            for m in &mirrors.disappear {
                println!("  - {m}");
            }
        }
        if plan.is_noop() && plan.conflicts.is_empty() {
            println!("No changes.");
        }
    }
    Ok(if plan.conflicts.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Mirrors a plan would add or remove, as `cluster: namespace/name (of service in target)`.
#[derive(Debug, Default)]
struct MirrorChanges {
    appear: Vec<String>,
    disappear: Vec<String>,
}

/// Estimates mirror changes from what linkplane tracks today: a removed link (with
/// `cleanupOnUnlink`) loses its mirror rows; a new link gains a mirror of every service its
/// target already exports to some cluster (selectors of the new link are not evaluated against
/// services nobody exports yet, so this can under-count).
async fn mirror_changes(
    conn: &mut linkplane_store::PgConnection,
    rev: &manifest::Revision,
    plan: &apply::Plan,
) -> anyhow::Result<MirrorChanges> {
    use linkplane_store::{links, mirrors, topology};
    let mut out = MirrorChanges::default();
    let Some(lp) = plan.kinds.get(&linkplane_core::status::ObjectKind::Link) else {
        return Ok(out);
    };
    for name in &lp.delete {
        let cleanup = links::get(conn, name)
            .await?
            .is_some_and(|l| l.stored.value.spec.cleanup_on_unlink);
        if !cleanup {
            continue;
        }
        let filter = mirrors::MirrorFilter {
            link: Some(name.clone()),
            ..Default::default()
        };
        for m in mirrors::list(conn, &filter, 0, 100_000).await? {
            let s = m.status;
            out.disappear.push(format!(
                "{}: {}/{} (of {}.{} in {}, link {name})",
                s.source_cluster,
                s.namespace,
                s.local_name,
                s.remote_name,
                s.namespace,
                s.target_cluster
            ));
        }
    }
    for name in &lp.create {
        let Some(link) = rev.links.get(name) else {
            continue;
        };
        let spec = &link.value.spec;
        for svc in topology::services_of(conn, std::slice::from_ref(&spec.target)).await? {
            let local = linkplane_core::naming::mirror_service_name(&svc.name, &spec.target).name;
            out.appear.push(format!(
                "{}: {}/{local} (of {}.{} in {}, link {name})",
                spec.source, svc.namespace, svc.name, svc.namespace, spec.target
            ));
        }
    }
    out.appear.sort();
    out.appear.dedup();
    out.disappear.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_parse_from_flags() {
        assert_eq!(parse_ref("branch:main"), Ok(GitRef::Branch("main".into())));
        assert_eq!(parse_ref("tag:v1"), Ok(GitRef::Tag("v1".into())));
        assert_eq!(
            parse_ref("commit:abc1234"),
            Ok(GitRef::Commit("abc1234".into()))
        );
        assert!(parse_ref("main").is_err());
        assert!(parse_ref("branch:").is_err());
    }
}
