//! Which Git sources a push webhook concerns, and what to do about it: the GitOps side of
//! `POST /webhooks/{github,gitlab}`. The HTTP handler only verifies the provider's signature and
//! hands the payload here ([`SyncHandle::on_push`]); de-duplicating deliveries, matching the
//! push's repository and ref against every source, and queueing their syncs are the engine's
//! decision.

use linkplane_core::GitRef;
use linkplane_store::{git_sources, gitops as gstore};

use crate::{Error, SyncHandle, Trigger};

/// What a push says about itself (all optional: unknown shapes trigger every source).
#[derive(Debug, Default, PartialEq)]
pub struct Push {
    /// Repository URLs in any form the provider sends.
    pub urls: Vec<String>,
    /// `refs/heads/<branch>` or `refs/tags/<tag>`.
    pub git_ref: Option<String>,
}

impl Push {
    /// Reads URLs under `object` (`repository` / `project`) and the top-level `ref`.
    pub fn parse(body: &[u8], url_fields: &[&str], object: &str) -> Self {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Push::default();
        };
        let urls = v
            .get(object)
            .map(|o| {
                url_fields
                    .iter()
                    .filter_map(|f| o.get(*f).and_then(|u| u.as_str()))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Push {
            urls,
            git_ref: v.get("ref").and_then(|r| r.as_str()).map(str::to_string),
        }
    }

    /// True when a source with `url` and `git_ref` is concerned by this push.
    pub fn concerns(&self, url: &str, git_ref: &GitRef) -> bool {
        if self.urls.is_empty() {
            return true;
        }
        let target = normalize_url(url);
        if !self.urls.iter().any(|u| normalize_url(u) == target) {
            return false;
        }
        match (&self.git_ref, git_ref) {
            (None, _) | (_, GitRef::Commit(_)) => true,
            (Some(r), GitRef::Branch(b)) => r == &format!("refs/heads/{b}"),
            (Some(r), GitRef::Tag(t)) => r == &format!("refs/tags/{t}"),
        }
    }
}

/// `https://user@GitHub.com/org/repo.git/` and `git@github.com:org/repo` → `github.com/org/repo`.
pub fn normalize_url(url: &str) -> String {
    let mut u = url.trim();
    if let Some((_, rest)) = u.split_once("://") {
        u = rest;
    }
    let u = match u.split_once('@') {
        Some((user, rest)) if !user.contains('/') => rest,
        _ => u,
    };
    // scp-like `host:org/repo` → `host/org/repo`.
    let u = match u.split_once(':') {
        Some((host, rest))
            if !host.contains('/') && !rest.starts_with(|c: char| c.is_ascii_digit()) =>
        {
            format!("{host}/{rest}")
        }
        _ => u.to_string(),
    };
    let u = u.trim_end_matches('/');
    let u = u.strip_suffix(".git").unwrap_or(u);
    match u.split_once('/') {
        Some((host, path)) => format!("{}/{path}", host.to_ascii_lowercase()),
        None => u.to_ascii_lowercase(),
    }
}

/// What a push webhook did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The provider's delivery id was seen before: acknowledged, nothing queued.
    Duplicate(String),
    /// Syncs of these sources were queued.
    Triggered(Vec<String>),
}

impl SyncHandle {
    /// Handles a verified push: records the provider's delivery id (`delivery`, ignored when
    /// empty or longer than 200 bytes) so a redelivery is acknowledged once, then queues a
    /// webhook sync of every source the push concerns.
    pub async fn on_push(
        &self,
        provider: &str,
        delivery: Option<&str>,
        push: &Push,
    ) -> Result<PushOutcome, Error> {
        let sources = {
            let mut conn = self.syncer().store().acquire().await?;
            if let Some(id) = delivery.filter(|d| !d.is_empty() && d.len() <= 200)
                && !gstore::record_delivery(&mut conn, provider, id).await?
            {
                return Ok(PushOutcome::Duplicate(id.to_string()));
            }
            git_sources::list(&mut conn).await?
        };
        let mut triggered = Vec::new();
        for s in sources {
            if push.concerns(&s.source.spec.url, &s.source.spec.git_ref) {
                self.trigger(&s.source.name, Trigger::Webhook).await?;
                triggered.push(s.source.name);
            }
        }
        Ok(PushOutcome::Triggered(triggered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_normalize_across_forms() {
        let want = "github.com/acme/fleet";
        for u in [
            "https://github.com/acme/fleet.git",
            "https://x-access-token@GitHub.com/acme/fleet/",
            "git@github.com:acme/fleet.git",
            "ssh://git@github.com/acme/fleet",
        ] {
            assert_eq!(normalize_url(u), want, "{u}");
        }
        assert_eq!(normalize_url("file:///srv/git/fleet"), "/srv/git/fleet");
    }

    #[test]
    fn push_matches_repository_and_ref() {
        let push = Push::parse(
            br#"{"ref":"refs/heads/main","repository":{"clone_url":"https://github.com/acme/fleet.git"}}"#,
            &["clone_url"],
            "repository",
        );
        let url = "https://github.com/acme/fleet";
        assert!(push.concerns(url, &GitRef::Branch("main".into())));
        assert!(!push.concerns(url, &GitRef::Branch("dev".into())));
        assert!(!push.concerns(url, &GitRef::Tag("main".into())));
        assert!(!push.concerns(
            "https://github.com/acme/other",
            &GitRef::Branch("main".into())
        ));
        // No repository in the payload: every source.
        let anon = Push::parse(b"{}", &["clone_url"], "repository");
        assert!(anon.concerns(url, &GitRef::Branch("dev".into())));
    }
}
