//! The Git engine: fetch a source into a local bare cache and read manifests straight from the
//! object database.
//!
//! Crash safety comes from never checking anything out: a fetch adds objects and then moves a
//! ref (libgit2 writes packs under temporary names and renames them), and reading a revision
//! walks the tree of the resolved commit in the object database. A crash mid-fetch leaves at
//! worst unreferenced objects; there is no half-written working tree to be used by mistake. A
//! cache that cannot be opened is deleted and fetched again.
//!
//! Every git2 call is blocking; the async wrappers run them on `spawn_blocking`.

use std::{
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
};

use git2::{AutotagOption, Cred, CredentialType, FetchOptions, ObjectType, Oid, RemoteCallbacks};
use linkplane_core::{GitAuth, GitRef, GitSourceSpec};

use crate::reader::{self, Files, ReadError, Source};

/// What went wrong talking to Git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// A libgit2 operation failed (network, auth, corrupt repository…).
    #[error("{action}: {source}")]
    Git {
        /// What the engine was doing.
        action: String,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// The branch, tag or commit does not exist in the remote.
    #[error("{0} not found in the repository")]
    RefNotFound(String),
    /// The source's path does not exist (or is not a directory) in the commit.
    #[error("path {path:?} not found in commit {commit}")]
    PathNotFound {
        /// The source's path.
        path: String,
        /// The commit.
        commit: String,
    },
    /// Reading a credential or the cache directory failed.
    #[error("{action}: {source}")]
    Io {
        /// What the engine was doing.
        action: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The source's auth settings cannot be used.
    #[error("credentials: {0}")]
    Credentials(String),
    /// A tree entry or blob of the revision could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The blocking task panicked or was cancelled.
    #[error("git task did not complete")]
    Join(#[source] tokio::task::JoinError),
}

fn git(action: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
    let action = action.into();
    move |source| GitError::Git { action, source }
}

/// A resolved commit and what history shows about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Full hex commit id.
    pub commit: String,
    /// `Name <email>`.
    pub author: String,
    /// The commit message's first line.
    pub message: String,
}

/// A local cache of Git sources: one bare repository per source under `dir`.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// A cache rooted at `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Fetches the source incrementally and resolves what to apply: `pin` when given (a commit
    /// id, possibly abbreviated), else the source's branch, tag or commit.
    pub async fn resolve(
        &self,
        name: &str,
        spec: &GitSourceSpec,
        pin: Option<&str>,
    ) -> Result<Resolved, GitError> {
        let repo_dir = self.repo_dir(name, &spec.url);
        let spec = spec.clone();
        let pin = pin.map(str::to_string);
        tokio::task::spawn_blocking(move || resolve_blocking(&repo_dir, &spec, pin.as_deref()))
            .await
            .map_err(GitError::Join)?
    }

    /// Reads every manifest file under the source's path in `commit`, sorted by path, with the
    /// entries [`reader`] refuses (symlinks, submodules...), exactly as `linkplane validate`
    /// reads a checkout of the same commit.
    pub async fn files(
        &self,
        name: &str,
        spec: &GitSourceSpec,
        commit: &str,
    ) -> Result<Files, GitError> {
        let repo_dir = self.repo_dir(name, &spec.url);
        let path = spec.path.clone();
        let commit = commit.to_string();
        tokio::task::spawn_blocking(move || files_blocking(&repo_dir, &path, &commit))
            .await
            .map_err(GitError::Join)?
    }

    /// `<dir>/<source>-<hash of url>.git`: a URL change starts a fresh cache.
    fn repo_dir(&self, name: &str, url: &str) -> PathBuf {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        url.hash(&mut h);
        self.dir.join(format!("{name}-{:016x}.git", h.finish()))
    }
}

fn open_or_init(dir: &Path) -> Result<git2::Repository, GitError> {
    if dir.exists() {
        match git2::Repository::open_bare(dir) {
            Ok(repo) => return Ok(repo),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "git cache unusable; recreating it");
                std::fs::remove_dir_all(dir).map_err(|source| GitError::Io {
                    action: format!("removing broken cache {}", dir.display()),
                    source,
                })?;
            }
        }
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|source| GitError::Io {
            action: format!("creating cache directory {}", parent.display()),
            source,
        })?;
    }
    git2::Repository::init_bare(dir).map_err(git(format!("initialising cache {}", dir.display())))
}

/// Local paths (`/x`, `./x`) are fetched through libgit2's local transport as `file://` URLs.
fn remote_url(url: &str) -> String {
    if url.starts_with('/') {
        format!("file://{url}")
    } else if url.starts_with('.') {
        match std::path::absolute(url) {
            Ok(p) => format!("file://{}", p.display()),
            Err(_) => url.to_string(),
        }
    } else {
        url.to_string()
    }
}

fn read_secret(auth: &GitAuth) -> Result<Option<String>, GitError> {
    if let Some(file) = &auth.token_file {
        let token = std::fs::read_to_string(file).map_err(|source| GitError::Io {
            action: format!("reading token file {file}"),
            source,
        })?;
        return Ok(Some(token.trim().to_string()));
    }
    if let Some(var) = &auth.token_env {
        return std::env::var(var)
            .map(|t| Some(t.trim().to_string()))
            .map_err(|_| GitError::Credentials(format!("environment variable {var} is not set")));
    }
    Ok(None)
}

fn callbacks(auth: Option<&GitAuth>) -> Result<RemoteCallbacks<'static>, GitError> {
    let mut cb = RemoteCallbacks::new();
    let token = auth.map(read_secret).transpose()?.flatten();
    let key = auth.and_then(|a| a.ssh_key_file.clone());
    if token.is_some() || key.is_some() {
        let mut attempts = 0;
        cb.credentials(move |_url, username, allowed| {
            // libgit2 calls again after a rejected credential; give up instead of looping.
            attempts += 1;
            if attempts > 3 {
                return Err(git2::Error::from_str("authentication failed"));
            }
            if allowed.contains(CredentialType::SSH_KEY)
                && let Some(key) = &key
            {
                return Cred::ssh_key(username.unwrap_or("git"), None, Path::new(key), None);
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
                && let Some(token) = &token
            {
                // GitHub accepts any user with a token; GitLab wants `oauth2`; a user in the
                // URL wins.
                return Cred::userpass_plaintext(username.unwrap_or("x-access-token"), token);
            }
            Err(git2::Error::from_str(
                "no usable credential for this URL (token for https, sshKeyFile for ssh)",
            ))
        });
    }
    Ok(cb)
}

fn resolve_blocking(
    repo_dir: &Path,
    spec: &GitSourceSpec,
    pin: Option<&str>,
) -> Result<Resolved, GitError> {
    let repo = open_or_init(repo_dir)?;
    let url = remote_url(&spec.url);
    let wanted_commit = pin.or(match &spec.git_ref {
        GitRef::Commit(c) => Some(c.as_str()),
        _ => None,
    });
    let oid = match wanted_commit {
        Some(sha) => {
            // A commit already in the cache never changes: skip the network.
            match find_commit(&repo, sha) {
                Some(oid) => oid,
                None => {
                    fetch(
                        &repo,
                        &url,
                        spec.auth.as_ref(),
                        &[
                            "+refs/heads/*:refs/linkplane/heads/*",
                            "+refs/tags/*:refs/linkplane/tags/*",
                        ],
                    )?;
                    find_commit(&repo, sha)
                        .ok_or_else(|| GitError::RefNotFound(format!("commit {sha}")))?
                }
            }
        }
        None => {
            let (refspec, local, what) = match &spec.git_ref {
                GitRef::Branch(b) => (
                    format!("+refs/heads/{b}:refs/linkplane/branch/{b}"),
                    format!("refs/linkplane/branch/{b}"),
                    format!("branch {b:?}"),
                ),
                GitRef::Tag(t) => (
                    format!("+refs/tags/{t}:refs/linkplane/tag/{t}"),
                    format!("refs/linkplane/tag/{t}"),
                    format!("tag {t:?}"),
                ),
                GitRef::Commit(_) => unreachable_commit(),
            };
            match fetch(&repo, &url, spec.auth.as_ref(), &[refspec.as_str()]) {
                Ok(()) => {}
                Err(GitError::Git { source, .. })
                    if source.code() == git2::ErrorCode::NotFound
                        || source.message().contains("couldn't find remote ref") =>
                {
                    return Err(GitError::RefNotFound(what));
                }
                Err(e) => return Err(e),
            }
            let reference = repo
                .find_reference(&local)
                .map_err(|_| GitError::RefNotFound(what.clone()))?;
            reference
                .peel_to_commit()
                .map_err(git(format!("resolving {what}")))?
                .id()
        }
    };
    let commit = repo
        .find_commit(oid)
        .map_err(git(format!("reading commit {oid}")))?;
    let author = commit.author();
    Ok(Resolved {
        commit: oid.to_string(),
        author: format!(
            "{} <{}>",
            String::from_utf8_lossy(author.name_bytes()),
            String::from_utf8_lossy(author.email_bytes())
        ),
        message: commit
            .summary_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default(),
    })
}

/// Commits are handled before this match; kept as a function so the branch type-checks.
fn unreachable_commit() -> (String, String, String) {
    (String::new(), String::new(), String::new())
}

fn find_commit(repo: &git2::Repository, sha: &str) -> Option<Oid> {
    let obj = repo.revparse_single(sha).ok()?;
    obj.peel(ObjectType::Commit).ok().map(|c| c.id())
}

fn fetch(
    repo: &git2::Repository,
    url: &str,
    auth: Option<&GitAuth>,
    refspecs: &[&str],
) -> Result<(), GitError> {
    let mut remote = repo
        .remote_anonymous(url)
        .map_err(git(format!("opening remote {}", redact(url))))?;
    let mut opts = FetchOptions::new();
    opts.remote_callbacks(callbacks(auth)?)
        .download_tags(AutotagOption::None)
        .update_fetchhead(false);
    remote
        .fetch(refspecs, Some(&mut opts), None)
        .map_err(git(format!("fetching {}", redact(url))))
}

/// Drops `user:password@` from a URL before it is logged or stored.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

fn files_blocking(repo_dir: &Path, path: &str, commit: &str) -> Result<Files, GitError> {
    let repo = open_or_init(repo_dir)?;
    let oid = Oid::from_str(commit).map_err(git(format!("parsing commit id {commit}")))?;
    let tree = repo
        .find_commit(oid)
        .and_then(|c| c.tree())
        .map_err(git(format!("reading commit {commit}")))?;
    let clean = path.trim_matches('/');
    let root = if clean.is_empty() || clean == "." {
        tree
    } else {
        let clean = clean.strip_prefix("./").unwrap_or(clean);
        let entry = tree
            .get_path(Path::new(clean))
            .map_err(|_| GitError::PathNotFound {
                path: path.to_string(),
                commit: commit.to_string(),
            })?;
        entry
            .to_object(&repo)
            .ok()
            .and_then(|o| o.into_tree().ok())
            .ok_or_else(|| GitError::PathNotFound {
                path: path.to_string(),
                commit: commit.to_string(),
            })?
    };
    Ok(reader::read(Source::Tree {
        repo: &repo,
        tree: &root,
    })?)
}

/// Real repositories in temp dirs for the unit tests: the integration tests' helpers.
#[cfg(test)]
#[path = "../tests/support/mod.rs"]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::{testing::commit, *};

    fn spec(url: &str, r: GitRef, path: &str) -> GitSourceSpec {
        let mut s: GitSourceSpec =
            serde_json::from_value(serde_json::json!({ "url": url })).unwrap();
        s.git_ref = r;
        s.path = path.into();
        s
    }

    #[tokio::test]
    async fn fetches_branch_tag_and_commit_and_reads_only_the_path() {
        let remote_dir = tempfile::tempdir().unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(remote_dir.path()).unwrap();
        let c1 = commit(
            &repo,
            "main",
            &[
                ("fleet/a.yaml", Some("a: 1\n")),
                ("fleet/sub/b.yml", Some("b: 1\n")),
                ("fleet/readme.md", Some("x")),
                ("other/c.yaml", Some("c: 1\n")),
            ],
            "first\n\nbody",
        );
        repo.tag_lightweight("v1", &repo.revparse_single(&c1).unwrap(), false)
            .unwrap();
        let c2 = commit(&repo, "main", &[("fleet/a.yaml", None)], "second");
        let cache = Cache::new(cache_dir.path());
        let url = format!("file://{}", remote_dir.path().display());

        let s = spec(&url, GitRef::Branch("main".into()), "fleet");
        let r = cache.resolve("fleet", &s, None).await.unwrap();
        assert_eq!(r.commit, c2);
        assert_eq!(r.author, "Ada Lovelace <ada@example.com>");
        assert_eq!(r.message, "second");
        let files = cache.files("fleet", &s, &r.commit).await.unwrap().files;
        let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["sub/b.yml"]);

        let t = spec(&url, GitRef::Tag("v1".into()), "./fleet/");
        let r = cache.resolve("fleet", &t, None).await.unwrap();
        assert_eq!(r.commit, c1);
        assert_eq!(r.message, "first");
        let files = cache.files("fleet", &t, &r.commit).await.unwrap().files;
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].content, b"a: 1\n");

        // Pinned (abbreviated) commit, with a plain local path as URL.
        let local = spec(
            &remote_dir.path().display().to_string(),
            GitRef::Branch("main".into()),
            ".",
        );
        let r = cache
            .resolve("local", &local, Some(&c1[..10]))
            .await
            .unwrap();
        assert_eq!(r.commit, c1);
        let all = cache.files("local", &local, &c1).await.unwrap().files;
        assert_eq!(all.len(), 3);
    }

    #[tokio::test]
    async fn missing_branch_and_path_are_clear_errors() {
        let remote_dir = tempfile::tempdir().unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(remote_dir.path()).unwrap();
        let c1 = commit(&repo, "main", &[("a.yaml", Some("a: 1\n"))], "first");
        let cache = Cache::new(cache_dir.path());
        let url = format!("file://{}", remote_dir.path().display());
        let err = cache
            .resolve("x", &spec(&url, GitRef::Branch("nope".into()), "."), None)
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::RefNotFound(_)), "{err:?}");
        let main = spec(&url, GitRef::Branch("main".into()), "deploy");
        assert_eq!(cache.resolve("x", &main, None).await.unwrap().commit, c1);
        let err = cache
            .files(
                "x",
                &spec(&url, GitRef::Branch("main".into()), "deploy"),
                &c1,
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("path \"deploy\" not found in commit {c1}")
        );
    }

    #[tokio::test]
    async fn broken_cache_is_recreated() {
        let remote_dir = tempfile::tempdir().unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(remote_dir.path()).unwrap();
        let c1 = commit(&repo, "main", &[("a.yaml", Some("a: 1\n"))], "first");
        let cache = Cache::new(cache_dir.path());
        let s = spec(
            &format!("file://{}", remote_dir.path().display()),
            GitRef::Branch("main".into()),
            ".",
        );
        cache.resolve("x", &s, None).await.unwrap();
        // Simulate a crash that left garbage where the cache was.
        let dir = cache.repo_dir("x", &s.url);
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("HEAD"), "garbage").unwrap();
        assert_eq!(cache.resolve("x", &s, None).await.unwrap().commit, c1);
    }

    /// The server reads a revision through the same reader as `linkplane validate`: a
    /// symlinked manifest is refused, not read as YAML made of its target's name.
    #[tokio::test]
    async fn symlinked_manifest_in_a_commit_is_refused_by_path() {
        let remote_dir = tempfile::tempdir().unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(remote_dir.path()).unwrap();
        let c1 = commit(
            &repo,
            "main",
            &[("fleet/real.yaml", Some("a: 1\n"))],
            "first",
        );
        let parent = repo.find_commit(Oid::from_str(&c1).unwrap()).unwrap();
        let mut index = git2::Index::new().unwrap();
        index.read_tree(&parent.tree().unwrap()).unwrap();
        let target = repo.blob(b"real.yaml").unwrap();
        index
            .add(&git2::IndexEntry {
                ctime: git2::IndexTime::new(0, 0),
                mtime: git2::IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode: 0o120000,
                uid: 0,
                gid: 0,
                file_size: 0,
                id: target,
                flags: 0,
                flags_extended: 0,
                path: b"fleet/link.yaml".to_vec(),
            })
            .unwrap();
        let tree = repo.find_tree(index.write_tree_to(&repo).unwrap()).unwrap();
        let sig = git2::Signature::now("Ada", "ada@example.com").unwrap();
        let c2 = repo
            .commit(
                Some("refs/heads/main"),
                &sig,
                &sig,
                "link",
                &tree,
                &[&parent],
            )
            .unwrap()
            .to_string();
        let cache = Cache::new(cache_dir.path());
        let s = spec(
            &format!("file://{}", remote_dir.path().display()),
            GitRef::Branch("main".into()),
            "fleet",
        );
        assert_eq!(cache.resolve("x", &s, None).await.unwrap().commit, c2);
        let read = cache.files("x", &s, &c2).await.unwrap();
        assert_eq!(read.files.len(), 1);
        assert_eq!(read.files[0].path, "real.yaml");
        assert_eq!(read.refused.len(), 1);
        assert!(
            read.refused[0]
                .to_string()
                .starts_with("link.yaml:1:1: symbolic link to \"real.yaml\" refused"),
            "{:?}",
            read.refused
        );
    }

    #[test]
    fn credentials_are_redacted_from_urls() {
        assert_eq!(
            redact("https://user:tok@git.example.com/x.git"),
            "https://***@git.example.com/x.git"
        );
        assert_eq!(redact("/srv/git/x"), "/srv/git/x");
    }
}
