//! One reader for a revision's manifest files, whether they come from a directory on disk
//! (`linkplane validate` and `plan`, i.e. a PR check on a checkout) or from a tree in a Git
//! object database (the server's sync).
//!
//! The two used to be separate walks and disagreed: the directory walk skipped a symlinked
//! `*.yaml` (it is not a regular file) and called the revision valid, while the Git walk read the
//! link's blob (the *name* of its target) as YAML and rejected the revision — a PR check passed
//! and production refused. Now each source only *lists* entries and says what kind each one is
//! ([`Listing`]); every decision about what is read, skipped or refused is made once, in
//! [`read`]:
//!
//! - entries whose name starts with `.` are skipped (`.git`, `.github`, editor files);
//! - directories are walked; regular files named `*.yaml` / `*.yml` are read, whatever their
//!   executable bit (Git records only 644/755 and a checkout's bits depend on `core.fileMode`);
//! - a **symbolic link** (Git mode 120000) is refused: Git stores only its target's name, and
//!   following it on disk could read outside the repository;
//! - a **submodule** (Git mode 160000, a "gitlink"; on disk a directory with a `.git` entry or a
//!   path listed in the enclosing repository's `.gitmodules`) is refused: its files are not in
//!   this repository's tree, so the server would never see them;
//! - a **name that is not UTF-8** is refused when it could matter (a directory, link, submodule
//!   or a name ending in `.yaml`/`.yml`): diagnostics and ownership are keyed by path;
//! - anything else named like a manifest (a FIFO, socket or device on disk, an unknown Git mode)
//!   is refused rather than read (reading a FIFO would block forever).
//!
//! Refusals are [`Diagnostic`]s at `path:1:1`, so they reject the revision with the same
//! `file:line:col` format as every parse error. Contents that are not UTF-8 are refused by
//! [`crate::manifest::parse_files`] at the line and column of the first invalid byte — the same
//! bytes from either source, so the same message.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use crate::manifest::{self, Diagnostic, Diagnostics, Revision, SourceFile, is_manifest_file};

/// Reading a source failed (as opposed to a refused entry, which is a diagnostic).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A directory or file on disk could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An object of the Git tree could not be read (corrupt or incomplete repository).
    #[error("reading {path:?} from the Git tree: {source}")]
    Git {
        /// Path of the entry, relative to the source's directory.
        path: String,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
}

/// Where a revision's files come from.
pub enum Source<'a> {
    /// A directory on disk, usually a checkout (`linkplane validate`, `linkplane plan`).
    Dir(&'a Path),
    /// A tree of a commit in a repository's object database (the server's sync).
    Tree {
        /// The repository holding the tree's objects.
        repo: &'a git2::Repository,
        /// The tree at the source's path.
        tree: &'a git2::Tree<'a>,
    },
}

/// A revision's manifest files, and the entries refused while reading them.
#[derive(Debug, Clone, Default)]
pub struct Files {
    /// Manifest files, sorted by path.
    pub files: Vec<SourceFile>,
    /// Entries that make the revision invalid (symlinks, submodules, ...), sorted by path.
    pub refused: Vec<Diagnostic>,
}

impl Files {
    /// Parses and validates the files; any refused entry rejects the revision, together with
    /// every problem of the files that were read.
    pub fn parse(&self) -> Result<Revision, Diagnostics> {
        let parsed = manifest::parse_files(&self.files);
        if self.refused.is_empty() {
            return parsed;
        }
        let mut all = self.refused.clone();
        if let Err(d) = parsed {
            all.extend(d.0);
        }
        all.sort();
        all.dedup();
        Err(Diagnostics(all))
    }
}

/// Reads every manifest file of `source` (recursively), applying the rules of the module docs.
pub fn read(source: Source<'_>) -> Result<Files, ReadError> {
    let mut out = Files::default();
    match source {
        Source::Dir(dir) => {
            let listing = DirListing::new(dir);
            walk(&listing, &dir.to_path_buf(), "", &mut out)?;
        }
        Source::Tree { repo, tree } => {
            let listing = TreeListing { repo };
            walk(&listing, &(tree.id(), GIT_TREE), "", &mut out)?;
        }
    }
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    out.refused.sort();
    Ok(out)
}

/// What a source says an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A regular file (any permission bits).
    File,
    /// A directory (Git: a tree).
    Dir,
    /// A symbolic link, with the raw bytes of its target.
    Symlink(Vec<u8>),
    /// A submodule (Git: a gitlink, mode 160000).
    Submodule,
    /// Anything else, described for the message ("a FIFO", "an entry of mode 100600").
    Other(String),
}

/// A directory's entries as a source lists them: raw name bytes and the source's node.
pub type Listed<N> = Vec<(Vec<u8>, N)>;

/// One source of entries: lists directories and reads files, nothing else. The policy lives in
/// [`read`], so a directory and a Git tree holding the same entries give the same result.
pub trait Listing {
    /// How the source addresses an entry.
    type Node;
    /// The raw names and nodes of the entries of directory `dir` (at `rel`, for messages).
    fn list(&self, dir: &Self::Node, rel: &str) -> Result<Listed<Self::Node>, ReadError>;
    /// What an entry is (without following links).
    fn kind(&self, node: &Self::Node, rel: &str) -> Result<Kind, ReadError>;
    /// A regular file's contents.
    fn read(&self, node: &Self::Node, rel: &str) -> Result<Vec<u8>, ReadError>;
}

fn refuse(path: String, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        file: path,
        line: 1,
        col: 1,
        message: message.into(),
    }
}

fn looks_like_manifest(name: &[u8]) -> bool {
    name.ends_with(b".yaml") || name.ends_with(b".yml")
}

/// Deepest directory nesting read. Git trees can nest without limit and the walk recurses (on a
/// `spawn_blocking` thread's 2 MiB stack in the server), so a hostile commit of thousands of
/// nested trees must be refused, not followed. Real manifest trees are a few levels deep.
pub const MAX_DEPTH: usize = 32;

fn walk<L: Listing>(
    listing: &L,
    dir: &L::Node,
    prefix: &str,
    out: &mut Files,
) -> Result<(), ReadError> {
    let depth = prefix.matches('/').count();
    if depth > MAX_DEPTH {
        out.refused.push(refuse(
            prefix.trim_end_matches('/').to_string(),
            format!("directories nested more than {MAX_DEPTH} levels deep are not read"),
        ));
        return Ok(());
    }
    let mut entries = listing.list(dir, prefix)?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (raw, node) in entries {
        if raw.first() == Some(&b'.') {
            continue;
        }
        let lossy = String::from_utf8_lossy(&raw);
        let rel = format!("{prefix}{lossy}");
        let kind = listing.kind(&node, &rel)?;
        let Ok(name) = std::str::from_utf8(&raw) else {
            let matters = !matches!(kind, Kind::File | Kind::Other(_)) || looks_like_manifest(&raw);
            if matters {
                out.refused.push(refuse(
                    rel,
                    "the name is not valid UTF-8; rename it (manifest paths must be UTF-8)",
                ));
            }
            continue;
        };
        match kind {
            Kind::Dir => walk(listing, &node, &format!("{rel}/"), out)?,
            Kind::File if is_manifest_file(name) => out.files.push(SourceFile {
                content: listing.read(&node, &rel)?,
                path: rel,
            }),
            Kind::File => {}
            Kind::Symlink(target) => out.refused.push(refuse(
                rel,
                format!(
                    "symbolic link to {:?} refused: manifests must be regular files (Git stores \
                     only a link's target name, so the server could not read what a checkout \
                     shows); copy the file or point the source's path at the real directory",
                    String::from_utf8_lossy(&target)
                ),
            )),
            Kind::Submodule => out.refused.push(refuse(
                rel,
                "submodule refused: its files are not part of this repository's tree, so they \
                 would never be synced; vendor the manifests or add the other repository as its \
                 own Git source",
            )),
            Kind::Other(what) if is_manifest_file(name) => out.refused.push(refuse(
                rel,
                format!("{what} refused: manifests must be regular files"),
            )),
            Kind::Other(_) => {}
        }
    }
    Ok(())
}

/// Git's mode for a tree entry that is a tree.
const GIT_TREE: i32 = 0o040000;

/// A tree in a repository's object database. Nodes are (object id, file mode).
struct TreeListing<'r> {
    repo: &'r git2::Repository,
}

impl TreeListing<'_> {
    fn blob(&self, id: git2::Oid, rel: &str) -> Result<Vec<u8>, ReadError> {
        self.repo
            .find_blob(id)
            .map(|b| b.content().to_vec())
            .map_err(|source| ReadError::Git {
                path: rel.to_string(),
                source,
            })
    }
}

impl Listing for TreeListing<'_> {
    type Node = (git2::Oid, i32);

    fn list(&self, dir: &Self::Node, rel: &str) -> Result<Listed<Self::Node>, ReadError> {
        let tree = self
            .repo
            .find_tree(dir.0)
            .map_err(|source| ReadError::Git {
                path: rel.to_string(),
                source,
            })?;
        Ok(tree
            .iter()
            .map(|e| (e.name_bytes().to_vec(), (e.id(), e.filemode())))
            .collect())
    }

    fn kind(&self, node: &Self::Node, rel: &str) -> Result<Kind, ReadError> {
        Ok(match node.1 {
            GIT_TREE => Kind::Dir,
            // 100664 is a legacy mode old Git versions wrote; Git reads it as 100644.
            0o100644 | 0o100755 | 0o100664 => Kind::File,
            0o120000 => Kind::Symlink(self.blob(node.0, rel)?),
            0o160000 => Kind::Submodule,
            mode => Kind::Other(format!("an entry of mode {mode:o}")),
        })
    }

    fn read(&self, node: &Self::Node, rel: &str) -> Result<Vec<u8>, ReadError> {
        self.blob(node.0, rel)
    }
}

/// A directory on disk. Nodes are paths.
struct DirListing {
    /// Submodules registered in the enclosing repository's `.gitmodules` (absolute paths): an
    /// uninitialised submodule is only an empty directory on disk.
    submodules: BTreeSet<PathBuf>,
}

impl DirListing {
    fn new(root: &Path) -> Self {
        Self {
            submodules: registered_submodules(root).unwrap_or_default(),
        }
    }
}

/// Submodule paths of the repository `root` is checked out in, if any (best effort: without a
/// repository, a submodule is still recognised by its `.git` entry).
fn registered_submodules(root: &Path) -> Option<BTreeSet<PathBuf>> {
    let repo = git2::Repository::discover(root).ok()?;
    let workdir = repo.workdir()?.canonicalize().ok()?;
    let subs = repo.submodules().ok()?;
    Some(
        subs.iter()
            .filter_map(|s| workdir.join(s.path()).canonicalize().ok())
            .collect(),
    )
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReadError + '_ {
    move |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Listing for DirListing {
    type Node = PathBuf;

    fn list(&self, dir: &PathBuf, _rel: &str) -> Result<Listed<PathBuf>, ReadError> {
        use std::os::unix::ffi::OsStrExt;
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            out.push((entry.file_name().as_bytes().to_vec(), entry.path()));
        }
        Ok(out)
    }

    fn kind(&self, path: &PathBuf, _rel: &str) -> Result<Kind, ReadError> {
        use std::os::unix::{ffi::OsStrExt, fs::FileTypeExt};
        let ty = std::fs::symlink_metadata(path)
            .map_err(io(path))?
            .file_type();
        Ok(if ty.is_symlink() {
            let target = std::fs::read_link(path).map_err(io(path))?;
            Kind::Symlink(target.as_os_str().as_bytes().to_vec())
        } else if ty.is_dir() {
            let checkout = std::fs::symlink_metadata(path.join(".git")).is_ok();
            let registered = !self.submodules.is_empty()
                && path
                    .canonicalize()
                    .is_ok_and(|p| self.submodules.contains(&p));
            if checkout || registered {
                Kind::Submodule
            } else {
                Kind::Dir
            }
        } else if ty.is_file() {
            Kind::File
        } else if ty.is_fifo() {
            Kind::Other("a FIFO".into())
        } else if ty.is_socket() {
            Kind::Other("a socket".into())
        } else {
            Kind::Other("a device file".into())
        })
    }

    fn read(&self, path: &PathBuf, _rel: &str) -> Result<Vec<u8>, ReadError> {
        std::fs::read(path).map_err(io(path))
    }
}

#[cfg(test)]
mod tests {
    use std::{ffi::OsStr, os::unix::ffi::OsStrExt};

    use super::*;

    /// One entry of a test tree, built identically on disk and in a Git commit.
    enum Entry<'a> {
        /// A regular file; `true` for the executable bit.
        File(&'a [u8], &'a [u8], bool),
        /// A symbolic link and its target.
        Link(&'a [u8], &'a str),
        /// A submodule: a gitlink in Git, a checkout with a `.git` file on disk.
        Submodule(&'a [u8]),
    }

    const CLUSTER: &[u8] = b"apiVersion: linkplane.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: east\nspec:\n  apiServer: https://east.example.com:6443\n  credentials:\n    kubeconfigFile: /k/east\n";

    fn on_disk(entries: &[Entry<'_>]) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = |p: &[u8]| {
            let full = dir.path().join(OsStr::from_bytes(p));
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            full
        };
        for e in entries {
            match e {
                Entry::File(p, content, exec) => {
                    let full = path(p);
                    std::fs::write(&full, content).unwrap();
                    let mode = if *exec { 0o755 } else { 0o644 };
                    std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode)).unwrap();
                }
                Entry::Link(p, target) => std::os::unix::fs::symlink(target, path(p)).unwrap(),
                Entry::Submodule(p) => {
                    let full = path(p);
                    std::fs::create_dir_all(&full).unwrap();
                    std::fs::write(full.join(".git"), "gitdir: ../.git/modules/vendor\n").unwrap();
                    std::fs::write(full.join("x.yaml"), CLUSTER).unwrap();
                }
            }
        }
        dir
    }

    fn in_git(repo: &git2::Repository, entries: &[Entry<'_>]) -> git2::Oid {
        let mut index = git2::Index::new().unwrap();
        let mut add = |path: &[u8], mode: u32, id: git2::Oid| {
            index
                .add(&git2::IndexEntry {
                    ctime: git2::IndexTime::new(0, 0),
                    mtime: git2::IndexTime::new(0, 0),
                    dev: 0,
                    ino: 0,
                    mode,
                    uid: 0,
                    gid: 0,
                    file_size: 0,
                    id,
                    flags: 0,
                    flags_extended: 0,
                    path: path.to_vec(),
                })
                .unwrap();
        };
        for e in entries {
            match e {
                Entry::File(p, content, exec) => add(
                    p,
                    if *exec { 0o100755 } else { 0o100644 },
                    repo.blob(content).unwrap(),
                ),
                Entry::Link(p, target) => add(p, 0o120000, repo.blob(target.as_bytes()).unwrap()),
                // A gitlink names a commit of another repository: it need not exist here.
                Entry::Submodule(p) => add(
                    p,
                    0o160000,
                    git2::Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap(),
                ),
            }
        }
        index.write_tree_to(repo).unwrap()
    }

    /// Files (path, content) and refusals, as one comparable value.
    type Outcome = (
        Vec<(String, Vec<u8>)>,
        Vec<String>,
        Result<usize, Vec<String>>,
    );

    fn outcome(files: Files) -> Outcome {
        let parsed = files.parse().map(|r| r.len()).map_err(|d| d.to_strings());
        (
            files
                .files
                .into_iter()
                .map(|f| (f.path, f.content))
                .collect(),
            files.refused.iter().map(ToString::to_string).collect(),
            parsed,
        )
    }

    /// Reads `entries` from a directory and from a Git tree; asserts both agree and returns it.
    fn both(entries: &[Entry<'_>]) -> Outcome {
        let dir = on_disk(entries);
        let from_dir = outcome(read(Source::Dir(dir.path())).unwrap());
        let git_dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(git_dir.path()).unwrap();
        let tree = repo.find_tree(in_git(&repo, entries)).unwrap();
        let from_git = outcome(
            read(Source::Tree {
                repo: &repo,
                tree: &tree,
            })
            .unwrap(),
        );
        assert_eq!(from_dir, from_git, "directory and Git tree disagree");
        from_dir
    }

    fn paths(o: &Outcome) -> Vec<&str> {
        o.0.iter().map(|(p, _)| p.as_str()).collect()
    }

    #[test]
    fn regular_files_are_read_recursively_sorted_skipping_hidden_and_other_names() {
        let o = both(&[
            Entry::File(b"sub/b.yml", b"", false),
            Entry::File(b"a.yaml", CLUSTER, false),
            Entry::File(b"notes.txt", b"x", false),
            Entry::File(b".github/ci.yaml", b"x: [", false),
            Entry::File(b"sub/.hidden.yaml", b"x: [", false),
        ]);
        assert_eq!(paths(&o), ["a.yaml", "sub/b.yml"]);
        assert!(o.1.is_empty(), "{:?}", o.1);
        assert_eq!(o.2, Ok(1));
    }

    #[test]
    fn executable_manifests_are_read_like_any_regular_file() {
        let o = both(&[Entry::File(b"a.yaml", CLUSTER, true)]);
        assert_eq!(paths(&o), ["a.yaml"]);
        assert_eq!(o.2, Ok(1));
    }

    #[test]
    fn symlinked_manifest_is_refused_from_both_sources() {
        let o = both(&[
            Entry::File(b"real/a.yaml", CLUSTER, false),
            Entry::Link(b"a.yaml", "real/a.yaml"),
        ]);
        assert_eq!(paths(&o), ["real/a.yaml"]);
        assert_eq!(o.1.len(), 1, "{:?}", o.1);
        assert!(
            o.1[0].starts_with("a.yaml:1:1: symbolic link to \"real/a.yaml\" refused"),
            "{:?}",
            o.1
        );
        let errors = o.2.unwrap_err();
        assert!(
            errors[0].starts_with("a.yaml:1:1: symbolic link"),
            "{errors:?}"
        );
    }

    #[test]
    fn symlinked_directory_is_refused_from_both_sources() {
        let o = both(&[
            Entry::File(b"shared/a.yaml", CLUSTER, false),
            Entry::Link(b"clusters", "shared"),
        ]);
        assert_eq!(paths(&o), ["shared/a.yaml"]);
        assert!(
            o.1[0].starts_with("clusters:1:1: symbolic link to \"shared\""),
            "{:?}",
            o.1
        );
        assert!(o.2.is_err());
    }

    #[test]
    fn submodule_is_refused_from_both_sources() {
        let o = both(&[
            Entry::File(b"a.yaml", CLUSTER, false),
            Entry::Submodule(b"vendor/fleet"),
        ]);
        assert_eq!(paths(&o), ["a.yaml"]);
        assert_eq!(o.1.len(), 1, "{:?}", o.1);
        assert!(
            o.1[0].starts_with("vendor/fleet:1:1: submodule refused"),
            "{:?}",
            o.1
        );
        assert!(o.2.is_err());
    }

    #[test]
    fn non_utf8_names_are_refused_when_they_could_be_manifests() {
        let o = both(&[
            Entry::File(b"a.yaml", CLUSTER, false),
            Entry::File(b"b\xff.yaml", CLUSTER, false),
            Entry::File(b"d\xfe/c.yaml", CLUSTER, false),
            Entry::File(b"notes\xff.txt", b"x", false),
        ]);
        assert_eq!(paths(&o), ["a.yaml"]);
        assert_eq!(
            o.1,
            [
                "b\u{fffd}.yaml:1:1: the name is not valid UTF-8; rename it (manifest paths must be UTF-8)",
                "d\u{fffd}:1:1: the name is not valid UTF-8; rename it (manifest paths must be UTF-8)",
            ]
        );
    }

    #[test]
    fn non_utf8_content_is_refused_identically_with_its_position() {
        let o = both(&[
            Entry::File(b"a.yaml", CLUSTER, false),
            Entry::File(b"b.yaml", b"kind: Link\nspec: \xff\n", false),
        ]);
        assert_eq!(paths(&o), ["a.yaml", "b.yaml"]);
        assert_eq!(
            o.2,
            Err(vec![
                "b.yaml:2:7: file is not valid UTF-8 (byte 0xff); manifests must be UTF-8".into()
            ])
        );
    }

    #[test]
    fn fifo_named_like_a_manifest_is_refused_without_blocking() {
        let dir = on_disk(&[Entry::File(b"a.yaml", CLUSTER, false)]);
        let fifo = dir.path().join("p.yaml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let files = read(Source::Dir(dir.path())).unwrap();
        assert_eq!(files.files.len(), 1);
        assert_eq!(
            files.refused[0].to_string(),
            "p.yaml:1:1: a FIFO refused: manifests must be regular files"
        );
    }

    /// An uninitialised submodule is an empty directory in a checkout: it is recognised from the
    /// enclosing repository's `.gitmodules`, as the gitlink is in the tree.
    #[test]
    fn uninitialised_submodule_of_the_enclosing_checkout_is_refused() {
        let dir = on_disk(&[Entry::File(b"fleet/a.yaml", CLUSTER, false)]);
        git2::Repository::init(dir.path()).unwrap();
        std::fs::write(
            dir.path().join(".gitmodules"),
            "[submodule \"shared\"]\n\tpath = fleet/shared\n\turl = ../shared.git\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("fleet/shared")).unwrap();
        let files = read(Source::Dir(&dir.path().join("fleet"))).unwrap();
        assert_eq!(files.files.len(), 1);
        assert_eq!(files.refused.len(), 1, "{:?}", files.refused);
        assert!(
            files.refused[0]
                .to_string()
                .starts_with("shared:1:1: submodule refused"),
            "{:?}",
            files.refused
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 24,
            failure_persistence: None,
            ..Default::default()
        })]

        /// Random trees of files (plain and executable), links, submodules, odd names and odd
        /// contents read the same from a directory and from a Git tree.
        #[test]
        fn random_trees_read_identically_from_both_sources(
            picks in proptest::collection::vec((0usize..7, 0usize..5, 0usize..4), 1..7)
        ) {
            const SUFFIXES: [&[u8]; 7] =
                [b".yaml", b".yml", b".txt", b"\xff.yaml", b"/x.yaml", b".d/y.yml", b"/.h.yaml"];
            const CONTENTS: [&[u8]; 4] = [CLUSTER, b"kind: [", b"a: \xff\n", b""];
            // Each entry lives under its own `e<i>` prefix, so no path is both a file and a dir.
            let paths: Vec<Vec<u8>> = picks
                .iter()
                .enumerate()
                .map(|(i, (suffix, _, _))| [format!("e{i}").as_bytes(), SUFFIXES[*suffix]].concat())
                .collect();
            let entries: Vec<Entry<'_>> = picks
                .iter()
                .zip(&paths)
                .map(|((_, kind, content), path)| match kind {
                    0 | 1 => Entry::File(path, CONTENTS[*content], *kind == 1),
                    2 => Entry::Link(path, "e0.yaml"),
                    _ => Entry::Submodule(path),
                })
                .collect();
            // `both` asserts the two sources agree on files, refusals and the parse result.
            let o = both(&entries);
            // Links with a UTF-8, non-hidden name are refused as links (suffixes 3 and 6 are
            // refused for their name or skipped as hidden).
            let links = picks
                .iter()
                .filter(|(suffix, k, _)| *k == 2 && ![3, 6].contains(suffix))
                .count();
            let refused_links = o.1.iter().filter(|r| r.contains("symbolic link")).count();
            proptest::prop_assert_eq!(links, refused_links);
        }
    }

    /// A commit of thousands of nested trees must not overflow the walk's stack: nesting past
    /// the limit is refused at the same path from both sources.
    #[test]
    fn nesting_past_the_limit_is_refused_identically() {
        let deep: Vec<u8> = "d/".repeat(MAX_DEPTH + 5).into_bytes();
        let path = [deep.as_slice(), b"a.yaml"].concat();
        let shallow = [&deep[..2 * MAX_DEPTH], b"b.yaml"].concat();
        let o = both(&[
            Entry::File(&path, CLUSTER, false),
            Entry::File(&shallow, CLUSTER, false),
        ]);
        assert_eq!(o.0.len(), 1, "{:?}", paths(&o));
        let limit = "d/".repeat(MAX_DEPTH + 1);
        assert_eq!(
            o.1,
            [format!(
                "{}:1:1: directories nested more than {MAX_DEPTH} levels deep are not read",
                limit.trim_end_matches('/')
            )]
        );
        // A deeper Git tree is cut at the limit too, on a small stack (loose-object writes make
        // building much deeper trees slow in a test; the walk stops at MAX_DEPTH either way).
        let git_dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(git_dir.path()).unwrap();
        let mut id = repo.treebuilder(None).unwrap().write().unwrap();
        for _ in 0..200 {
            let mut b = repo.treebuilder(None).unwrap();
            b.insert("d", id, 0o040000).unwrap();
            id = b.write().unwrap();
        }
        let at = git_dir.path().to_path_buf();
        let files = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let repo = git2::Repository::open_bare(at).unwrap();
                let tree = repo.find_tree(id).unwrap();
                read(Source::Tree {
                    repo: &repo,
                    tree: &tree,
                })
                .unwrap()
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert_eq!(files.refused.len(), 1);
    }

    #[test]
    fn a_checkout_root_with_dot_git_is_read_as_a_directory() {
        let dir = on_disk(&[Entry::File(b"a.yaml", CLUSTER, false)]);
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        let files = read(Source::Dir(dir.path())).unwrap();
        assert_eq!(files.files.len(), 1);
        assert!(files.refused.is_empty(), "{:?}", files.refused);
    }
}
