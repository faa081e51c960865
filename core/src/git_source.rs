//! A Git repository that declares clusters, links and policies.

use crate::{
    duration::Duration,
    validation::{ValidationErrors, dns1123_label},
};

/// A named Git source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GitSource {
    /// DNS-1123 label, unique among sources; objects synced from it are owned by it.
    pub name: String,
    /// Where and how to fetch.
    pub spec: GitSourceSpec,
}

/// The declarative part of a [`GitSource`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitSourceSpec {
    /// A local path, `file://`, `https://` or `ssh://` URL.
    pub url: String,
    /// What to track.
    #[serde(rename = "ref", default)]
    pub git_ref: GitRef,
    /// Directory inside the repository holding the manifests.
    #[serde(default = "default_path")]
    pub path: String,
    /// How often to fetch when no webhook arrives.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: Duration,
    /// Revert changes made outside Git instead of only reporting them.
    #[serde(default)]
    pub self_heal: bool,
    /// How to authenticate; credentials are read from files or env, never stored here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<GitAuth>,
    /// Let a revision delete every object of this source (Argo CD's `allowEmpty`). Off by
    /// default: an empty or gutted revision — a removed folder, a wrong `path` — is held, not
    /// applied, so the fleet is never pruned by accident.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_empty: bool,
    /// The largest share of this source's objects, in percent, one revision may delete without
    /// an operator's approval; 100 turns the check off (deleting everything still needs
    /// `allowEmpty`).
    #[serde(default = "default_prune_limit")]
    pub prune_limit: u8,
}

/// More than half of a source's objects gone in one commit is far more often a mistake (a moved
/// folder, a bad merge) than an intent; the operator approves the rare real one.
pub const fn default_prune_limit() -> u8 {
    50
}

impl GitSourceSpec {
    /// Why a revision that deletes `deletes` of the `owned` objects this source manages must be
    /// held for approval, or `None` when it may be applied.
    pub fn prune_hold(&self, deletes: usize, owned: usize) -> Option<String> {
        if deletes == 0 {
            return None;
        }
        if deletes >= owned {
            return (!self.allow_empty).then(|| {
                format!(
                    "it would delete all {owned} object(s) of the source \
                     (allowEmpty is off)"
                )
            });
        }
        let limit = usize::from(self.prune_limit.min(100));
        (deletes * 100 > owned * limit).then(|| {
            format!(
                "it would delete {deletes} of {owned} object(s), more than the prune limit \
                 of {limit}%"
            )
        })
    }
}

/// Branch, tag or commit, as in Flux's `spec.ref`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum GitRef {
    /// Follow a branch head.
    Branch(String),
    /// A tag (re-resolved on each fetch, so moved tags are followed).
    Tag(String),
    /// A fixed commit.
    Commit(String),
}

impl GitRef {
    /// Parses `branch:<name>`, `tag:<name>` or `commit:<sha>` (the `--git-ref` spelling).
    pub fn parse(s: &str) -> Option<Self> {
        match s.split_once(':') {
            Some(("branch", b)) if !b.is_empty() => Some(GitRef::Branch(b.into())),
            Some(("tag", t)) if !t.is_empty() => Some(GitRef::Tag(t.into())),
            Some(("commit", c)) if !c.is_empty() => Some(GitRef::Commit(c.into())),
            _ => None,
        }
    }
}

impl Default for GitRef {
    fn default() -> Self {
        GitRef::Branch("main".into())
    }
}

/// Credentials for private repositories, by reference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitAuth {
    /// File holding an HTTPS token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// Environment variable holding an HTTPS token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// SSH private key file for `ssh://` URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key_file: Option<String>,
}

fn default_path() -> String {
    ".".into()
}
/// Argo CD and Flux both default to minutes; one minute keeps Git hosts happy and drift visible.
pub const fn default_poll_interval() -> Duration {
    Duration::from_secs(60)
}

impl GitSource {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        errs.check("metadata.name", dns1123_label(&self.name));
        let spec = &self.spec;
        let url = spec.url.as_str();
        let scheme_ok = ["file://", "https://", "http://", "ssh://"]
            .iter()
            .any(|s| url.starts_with(s))
            || url.starts_with('/')
            || url.starts_with('.');
        if !scheme_ok {
            errs.push(
                "spec.url",
                format!("{url:?} must be a local path or a file://, https:// or ssh:// URL"),
            );
        }
        let (field, value) = match &spec.git_ref {
            GitRef::Branch(b) => ("spec.ref.branch", b),
            GitRef::Tag(t) => ("spec.ref.tag", t),
            GitRef::Commit(c) => ("spec.ref.commit", c),
        };
        if value.is_empty() {
            errs.push(field, "must not be empty");
        }
        if let GitRef::Commit(c) = &spec.git_ref
            && !(c.len() >= 7 && c.len() <= 40 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            errs.push(
                "spec.ref.commit",
                format!("{c:?} must be 7 to 40 hexadecimal characters"),
            );
        }
        if spec.path.split('/').any(|p| p == "..") {
            errs.push("spec.path", "must stay inside the repository (no '..')");
        }
        if spec.prune_limit == 0 || spec.prune_limit > 100 {
            errs.push(
                "spec.pruneLimit",
                format!("{} must be a percentage from 1 to 100", spec.prune_limit),
            );
        }
        if spec.poll_interval.as_std() < std::time::Duration::from_secs(1) {
            errs.push("spec.pollInterval", "must be at least 1s");
        }
        errs.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(url: &str) -> GitSource {
        GitSource {
            name: "fleet".into(),
            spec: serde_json::from_value(serde_json::json!({"url": url})).unwrap(),
        }
    }

    #[test]
    fn refs_parse_from_their_flag_spelling() {
        assert_eq!(
            GitRef::parse("branch:main"),
            Some(GitRef::Branch("main".into()))
        );
        assert_eq!(GitRef::parse("tag:v1.2"), Some(GitRef::Tag("v1.2".into())));
        assert_eq!(
            GitRef::parse("commit:4f1c2ab"),
            Some(GitRef::Commit("4f1c2ab".into()))
        );
        for bad in ["main", "branch:", "sha:abc", ""] {
            assert_eq!(GitRef::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn defaults() {
        let s = source("https://git.example.com/fleet.git");
        assert_eq!(s.spec.git_ref, GitRef::Branch("main".into()));
        assert_eq!(s.spec.path, ".");
        assert_eq!(s.spec.poll_interval.to_string(), "1m");
        assert!(s.validate().is_ok());
    }

    #[test]
    fn rejects_bad_url_commit_and_escaping_path() {
        let mut s = source("git@host:repo");
        s.spec.git_ref = GitRef::Commit("xyz".into());
        s.spec.path = "../etc".into();
        let errs: Vec<String> = s
            .validate()
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "spec.url: \"git@host:repo\" must be a local path or a file://, https:// or ssh:// URL",
                "spec.ref.commit: \"xyz\" must be 7 to 40 hexadecimal characters",
                "spec.path: must stay inside the repository (no '..')",
            ]
        );
    }
}

#[cfg(test)]
mod prune_tests {
    use super::*;

    fn spec(allow_empty: bool, prune_limit: u8) -> GitSourceSpec {
        GitSourceSpec {
            url: "file:///repo".into(),
            git_ref: GitRef::default(),
            path: ".".into(),
            poll_interval: default_poll_interval(),
            self_heal: false,
            auth: None,
            allow_empty,
            prune_limit,
        }
    }

    #[test]
    fn emptying_a_source_is_held_unless_allowed() {
        assert!(spec(false, 50).prune_hold(5, 5).is_some());
        assert!(spec(false, 100).prune_hold(5, 5).is_some());
        assert_eq!(spec(true, 50).prune_hold(5, 5), None);
    }

    #[test]
    fn partial_prunes_past_the_limit_are_held() {
        assert_eq!(spec(false, 50).prune_hold(0, 0), None);
        assert_eq!(
            spec(false, 50).prune_hold(2, 4),
            None,
            "exactly half is allowed"
        );
        assert!(spec(false, 50).prune_hold(3, 4).is_some());
        assert_eq!(spec(false, 100).prune_hold(3, 4), None);
        assert!(spec(false, 10).prune_hold(1, 5).is_some());
    }
}
