//! The manifest format: Kubernetes-style YAML documents declaring clusters, links and export
//! policies, parsed and validated as one revision.
//!
//! ```yaml
//! apiVersion: linkplane.io/v1alpha1
//! kind: Link
//! metadata:
//!   name: west-from-east
//! spec:
//!   source: west   # receives the mirrors
//!   target: east   # exports its services
//! ```
//!
//! [`parse_files`] is pure: it takes file contents and returns either a complete, valid
//! [`Revision`] or every problem found, each located as `path/file.yaml:line:col: message`.
//! Nothing is half-accepted: one error rejects the revision.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use linkplane_core::{
    Cluster, ClusterSpec, CredentialsRef, ExportPolicy, ExportPolicySpec, Link, LinkSpec,
    ValidationErrors,
};
use serde::de::DeserializeOwned;

use crate::yaml::{self, Node, Pos, Value};

/// The only manifest API version.
pub const API_VERSION: &str = "linkplane.io/v1alpha1";

/// Kinds a manifest may declare, in apply order (clusters before the links that use them).
pub const KINDS: [&str; 3] = ["Cluster", "ExportPolicy", "Link"];

/// One problem in a revision, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// Path relative to the source's directory, with `/` separators.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

/// Every problem of a rejected revision, sorted by file and position.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl Diagnostics {
    /// The messages as `file:line:col: message` strings (what `sync_history.errors` stores).
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

/// Where a declared object was written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// File, relative to the source's directory.
    pub file: String,
    /// Position of the document's start.
    pub pos: Pos,
}

impl Origin {
    /// A diagnostic at this object's document.
    pub fn diagnostic(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            line: self.pos.line,
            col: self.pos.col,
            message: message.into(),
        }
    }
}

/// An object with the place it was declared.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared<T> {
    /// The object.
    pub value: T,
    /// Its document.
    pub origin: Origin,
}

/// A complete, valid set of desired objects: what one Git revision declares.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Revision {
    /// Clusters by name.
    pub clusters: BTreeMap<String, Declared<Cluster>>,
    /// Links by name.
    pub links: BTreeMap<String, Declared<Link>>,
    /// Export policies by name.
    pub policies: BTreeMap<String, Declared<ExportPolicy>>,
}

impl Revision {
    /// Objects per kind, for summaries.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        BTreeMap::from([
            ("Cluster", self.clusters.len()),
            ("ExportPolicy", self.policies.len()),
            ("Link", self.links.len()),
        ])
    }

    /// Total number of objects.
    pub fn len(&self) -> usize {
        self.clusters.len() + self.links.len() + self.policies.len()
    }

    /// True when the revision declares nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One input file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path relative to the source's directory, `/`-separated.
    pub path: String,
    /// Raw contents.
    pub content: Vec<u8>,
}

/// True for file names the parser reads.
pub fn is_manifest_file(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// A parsed document, before cross-object validation.
struct Doc {
    file: String,
    node: Node,
}

impl Doc {
    fn at(&self, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
        }
    }

    fn origin(&self) -> Origin {
        Origin {
            file: self.file.clone(),
            pos: self.node.pos,
        }
    }
}

/// Parses and validates a whole revision. Files must be sorted (as [`crate::reader::read`]
/// returns them); the result is the same for the same input.
pub fn parse_files(files: &[SourceFile]) -> Result<Revision, Diagnostics> {
    let mut diags = Vec::new();
    let mut rev = Revision::default();
    // Duplicate detection keeps the first declaration's origin for the message, so everything
    // after the (parallel) YAML step runs in file order.
    for (file, parsed) in files.iter().zip(parse_yaml(files)) {
        let Some(parsed) = parsed else {
            diags.push(not_utf8(file));
            continue;
        };
        let nodes = match parsed {
            Ok(nodes) => nodes,
            Err(e) => {
                diags.push(Diagnostic {
                    file: file.path.clone(),
                    line: e.pos.line,
                    col: e.pos.col,
                    message: format!("invalid YAML: {}", e.message),
                });
                continue;
            }
        };
        for node in nodes {
            let doc = Doc {
                file: file.path.clone(),
                node,
            };
            parse_doc(&doc, &mut rev, &mut diags);
        }
    }
    cross_validate(&rev, &mut diags);
    if diags.is_empty() {
        Ok(rev)
    } else {
        diags.sort();
        diags.dedup();
        Err(Diagnostics(diags))
    }
}

/// The diagnostic for a file that is not UTF-8, at its first invalid byte.
fn not_utf8(file: &SourceFile) -> Diagnostic {
    let (line, col, byte) = match std::str::from_utf8(&file.content) {
        Ok(_) => (1, 1, None),
        Err(e) => {
            let valid = &file.content[..e.valid_up_to()];
            // The prefix is valid UTF-8 by definition; count lines and characters in it.
            let text = std::str::from_utf8(valid).unwrap_or_default();
            let line_start = text.rfind('\n').map_or(0, |i| i + 1);
            let line = text.matches('\n').count() + 1;
            let col = text[line_start..].chars().count() + 1;
            (line, col, file.content.get(e.valid_up_to()).copied())
        }
    };
    Diagnostic {
        file: file.path.clone(),
        line: u32::try_from(line).unwrap_or(u32::MAX),
        col: u32::try_from(col).unwrap_or(u32::MAX),
        message: match byte {
            Some(b) => format!("file is not valid UTF-8 (byte 0x{b:02x}); manifests must be UTF-8"),
            None => "file is not valid UTF-8; manifests must be UTF-8".into(),
        },
    }
}

/// Below this much YAML a revision is parsed on the calling thread: threads cost more than they
/// save. (A 10,000-object revision is ~2 MB; its YAML takes ~300 ms on one core.)
const PARALLEL_YAML_BYTES: usize = 256 * 1024;

/// One file's YAML documents; `None` when the file is not UTF-8.
type Parsed = Option<Result<Vec<Node>, yaml::SyntaxError>>;

/// The YAML documents of each file, in file order (`None`: not UTF-8). YAML parsing is most of a
/// revision's parse time and files are independent, so large revisions spread it over the
/// machine's cores; the result does not depend on how.
fn parse_yaml(files: &[SourceFile]) -> Vec<Parsed> {
    let one = |f: &SourceFile| {
        std::str::from_utf8(&f.content)
            .ok()
            .map(yaml::parse_documents)
    };
    let bytes: usize = files.iter().map(|f| f.content.len()).sum();
    let threads = if bytes < PARALLEL_YAML_BYTES {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(files.len())
            .max(1)
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut parsed: Vec<(usize, Parsed)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("yaml-parse".into())
                    .stack_size(YAML_STACK_BYTES)
                    .spawn_scoped(scope, || {
                        let mut out = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(f) = files.get(i) else { break };
                            out.push((i, one(f)));
                        }
                        out
                    })
                    .ok()
            })
            .collect();
        workers
            .into_iter()
            // A panicking parser thread (there is a fuzz test that none does) loses its
            // files' results; they are reported below as unparsable, never re-parsed on a
            // caller's thread with a smaller stack.
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    parsed.sort_by_key(|(i, _)| *i);
    let mut parsed = parsed.into_iter().peekable();
    files
        .iter()
        .enumerate()
        .map(|(i, _)| match parsed.next_if(|(j, _)| *j == i) {
            Some((_, r)) => r,
            None => Some(Err(yaml::SyntaxError {
                pos: yaml::Pos { line: 1, col: 1 },
                message: "the YAML parser failed on this file".into(),
            })),
        })
        .collect()
}

/// Stack of each YAML parsing thread. serde-saphyr bounds nesting (64 block levels, and its
/// flow-collection limit), but a debug build's deserializer frames for 64 levels overflowed
/// the 2 MiB of a `spawn_blocking` thread and aborted the server on a hostile revision. The
/// size is reserved address space, touched only as deep as a document really nests.
const YAML_STACK_BYTES: usize = 64 * 1024 * 1024;

const CREDENTIAL_HINT: &str = "credentials never go in Git: reference them with \
                               spec.credentials.kubeconfigFile or spec.credentials.secretRef";

/// Keys that only appear in kubeconfigs or secrets.
const SECRET_KEYS: [&str; 7] = [
    "client-key-data",
    "client-certificate-data",
    "certificate-authority-data",
    "token",
    "password",
    "kubeconfig",
    "privateKey",
];

/// Flags kubeconfig- or key-looking content anywhere in a document.
fn check_inline_secrets(doc: &Doc, diags: &mut Vec<Diagnostic>) {
    doc.node.walk(&mut |key, node| {
        if let Some(k) = key
            && SECRET_KEYS.contains(&k.name.as_str())
        {
            diags.push(doc.at(
                k.pos,
                format!(
                    "{:?} looks like inline credential material; {CREDENTIAL_HINT}",
                    k.name
                ),
            ));
            return;
        }
        if let Value::Str(s) = &node.value {
            let pem = s.contains("-----BEGIN ");
            let kubeconfig = s.contains("clusters:")
                && (s.contains("users:") || s.contains("contexts:"))
                || s.contains("kind: Config");
            if pem || kubeconfig {
                diags.push(doc.at(
                    node.pos,
                    format!(
                        "value looks like an inline {}; {CREDENTIAL_HINT}",
                        if pem {
                            "key or certificate"
                        } else {
                            "kubeconfig"
                        }
                    ),
                ));
            }
        }
    });
}

fn parse_doc(doc: &Doc, rev: &mut Revision, diags: &mut Vec<Diagnostic>) {
    let root = &doc.node;
    let Value::Map(entries) = &root.value else {
        diags.push(doc.at(
            root.pos,
            format!(
                "a manifest must be a mapping with apiVersion, kind, metadata and spec (got {})",
                root.type_name()
            ),
        ));
        return;
    };
    let before = diags.len();
    check_inline_secrets(doc, diags);
    for (k, _) in entries {
        if !["apiVersion", "kind", "metadata", "spec"].contains(&k.name.as_str()) {
            diags.push(doc.at(
                k.pos,
                format!(
                    "unknown field {:?}, expected one of apiVersion, kind, metadata, spec",
                    k.name
                ),
            ));
        }
    }
    match root.get("apiVersion") {
        None => diags.push(doc.at(root.pos, "missing field \"apiVersion\"")),
        Some(v) if v.as_str() == Some(API_VERSION) => {}
        Some(v) => diags.push(doc.at(
            v.pos,
            format!(
                "unsupported apiVersion {}; expected {API_VERSION:?}",
                describe(v)
            ),
        )),
    }
    let kind = match root.get("kind") {
        None => {
            diags.push(doc.at(root.pos, "missing field \"kind\""));
            None
        }
        Some(v) => match v.as_str() {
            Some(k) if KINDS.contains(&k) => Some(k),
            _ => {
                diags.push(doc.at(
                    v.pos,
                    format!(
                        "unknown kind {}; expected one of Cluster, Link, ExportPolicy",
                        describe(v)
                    ),
                ));
                None
            }
        },
    };
    let name = parse_metadata(doc, diags);
    let spec = match root.get("spec") {
        Some(s) => Some(s),
        None => {
            diags.push(doc.at(root.pos, "missing field \"spec\""));
            None
        }
    };
    let (Some(kind), Some(name), Some(spec)) = (kind, name, spec) else {
        return;
    };
    if diags.len() > before {
        return;
    }
    let origin = doc.origin();
    match kind {
        "Cluster" => {
            if let Some(spec) = decode_spec::<ClusterSpec>(doc, spec, diags) {
                if let CredentialsRef::KubeconfigFile(path) = &spec.credentials
                    && (path.contains('\n') || path.len() > 4096)
                {
                    diags.push(doc.at(
                        root.locate("spec.credentials.kubeconfigFile"),
                        format!("kubeconfigFile must be a file path; {CREDENTIAL_HINT}"),
                    ));
                    return;
                }
                let value = Cluster { name, spec };
                report_validation(doc, value.validate(), diags);
                insert(doc, "Cluster", &mut rev.clusters, value, origin, diags);
            }
        }
        "Link" => {
            if let Some(spec) = decode_spec::<LinkSpec>(doc, spec, diags) {
                let value = Link { name, spec };
                report_validation(doc, value.validate(), diags);
                insert(doc, "Link", &mut rev.links, value, origin, diags);
            }
        }
        _ => {
            if let Some(spec) = decode_spec::<ExportPolicySpec>(doc, spec, diags) {
                let value = ExportPolicy { name, spec };
                report_validation(doc, value.validate(), diags);
                insert(doc, "ExportPolicy", &mut rev.policies, value, origin, diags);
            }
        }
    }
}

fn describe(node: &Node) -> String {
    match node.as_str() {
        Some(s) => format!("{s:?}"),
        None => node.type_name().to_string(),
    }
}

fn insert<T>(
    doc: &Doc,
    kind: &str,
    map: &mut BTreeMap<String, Declared<T>>,
    value: T,
    origin: Origin,
    diags: &mut Vec<Diagnostic>,
) where
    T: Named,
{
    let name = value.name().to_string();
    if let Some(first) = map.get(&name) {
        diags.push(doc.at(
            doc.node.locate("metadata.name"),
            format!(
                "duplicate {kind} {name:?}; first declared at {}:{}:{}",
                first.origin.file, first.origin.pos.line, first.origin.pos.col
            ),
        ));
        return;
    }
    map.insert(name, Declared { value, origin });
}

trait Named {
    fn name(&self) -> &str;
}
impl Named for Cluster {
    fn name(&self) -> &str {
        &self.name
    }
}
impl Named for Link {
    fn name(&self) -> &str {
        &self.name
    }
}
impl Named for ExportPolicy {
    fn name(&self) -> &str {
        &self.name
    }
}

fn parse_metadata(doc: &Doc, diags: &mut Vec<Diagnostic>) -> Option<String> {
    let root = &doc.node;
    let Some(meta) = root.get("metadata") else {
        diags.push(doc.at(root.pos, "missing field \"metadata\""));
        return None;
    };
    let Value::Map(entries) = &meta.value else {
        diags.push(doc.at(
            meta.pos,
            format!("metadata must be a mapping (got {})", meta.type_name()),
        ));
        return None;
    };
    for (k, v) in entries {
        match k.name.as_str() {
            "name" => {}
            // Accepted for familiarity with Kubernetes tooling; informational only.
            "labels" | "annotations" => {
                let ok = match &v.value {
                    Value::Map(m) => m.iter().all(|(_, v)| matches!(v.value, Value::Str(_))),
                    Value::Null => true,
                    _ => false,
                };
                if !ok {
                    diags.push(doc.at(
                        v.pos,
                        format!("metadata.{} must map strings to strings", k.name),
                    ));
                }
            }
            other => diags.push(doc.at(
                k.pos,
                format!(
                    "unknown field {other:?} in metadata, expected one of name, labels, annotations"
                ),
            )),
        }
    }
    match meta.get("name") {
        None => {
            diags.push(doc.at(meta.pos, "missing field \"metadata.name\""));
            None
        }
        Some(n) => match n.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                diags.push(doc.at(
                    n.pos,
                    format!("metadata.name must be a string (got {})", n.type_name()),
                ));
                None
            }
        },
    }
}

/// Deserializes `spec` into a core type, mapping serde's error path back to a position.
fn decode_spec<T: DeserializeOwned>(
    doc: &Doc,
    spec: &Node,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let json = spec.to_json();
    match serde_path_to_error::deserialize::<_, T>(json) {
        Ok(v) => Some(v),
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let inner = e.into_inner().to_string();
            let pos = match unknown_field(&inner) {
                Some(field) => {
                    // The path may or may not already end with the unknown key.
                    let parent = path
                        .strip_suffix(field)
                        .map(|p| p.trim_end_matches('.'))
                        .unwrap_or(&path);
                    spec.locate_key(parent, field)
                }
                None => spec.locate(&path),
            };
            let full = if path.is_empty() {
                "spec".to_string()
            } else {
                format!("spec.{path}")
            };
            diags.push(doc.at(pos, format!("{full}: {inner}")));
            None
        }
    }
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    rest.split('`').next()
}

fn report_validation(doc: &Doc, result: Result<(), ValidationErrors>, diags: &mut Vec<Diagnostic>) {
    if let Err(errs) = result {
        for e in errs.0 {
            diags.push(doc.at(doc.node.locate(&e.path), e.to_string()));
        }
    }
}

/// Checks that span objects: references, pairs, mirror-name collisions, policy reach.
///
/// Rules (documented in docs/gitops.md):
/// - a link's `spec.source` and `spec.target` name clusters declared in the same revision;
/// - at most one link per (source, target) pair;
/// - **mirror-name collisions**: mirrors of target `t` in source `s` are named `<svc>-<t>`, so
///   for two targets `a` ≠ `b` linked into the same source, `<x>-<a>` = `<y>-<b>` is possible
///   for some service names exactly when `a` ends with `-<b>` (then `y = x-<prefix>`). Such
///   pairs are rejected. Federated services are named `<svc>-federated` in the source, so a
///   target named `federated` or ending in `-federated` is rejected when any link into that
///   source enables federation (`federatedServiceSelector` not null). The rule is sound for the
///   untruncated names; shortened names carry a hash of the full name, which keeps them apart.
/// - **policy reach**: an export policy whose `targetClusterSelector` matches no declared cluster
///   would silently do nothing and is rejected, as is one whose `consumerClusterSelector`
///   matches no declared cluster (it could never allow anything).
fn cross_validate(rev: &Revision, diags: &mut Vec<Diagnostic>) {
    let mut pairs: BTreeMap<(&str, &str), &Declared<Link>> = BTreeMap::new();
    for (name, link) in &rev.links {
        let spec = &link.value.spec;
        for (field, cluster) in [("source", &spec.source), ("target", &spec.target)] {
            if !rev.clusters.contains_key(cluster) {
                diags.push(link.origin.diagnostic(format!(
                    "Link {name:?}: spec.{field} names cluster {cluster:?}, which this revision does not declare"
                )));
            }
        }
        if let Some(other) = pairs.insert((&spec.source, &spec.target), link) {
            diags.push(link.origin.diagnostic(format!(
                "Link {name:?}: link {:?} ({}:{}:{}) already links source {:?} to target {:?}; one link per cluster pair",
                other.value.name,
                other.origin.file,
                other.origin.pos.line,
                other.origin.pos.col,
                spec.source,
                spec.target
            )));
        }
    }
    // Mirror-name collisions, per source cluster.
    let mut by_source: BTreeMap<&str, Vec<&Declared<Link>>> = BTreeMap::new();
    for link in rev.links.values() {
        by_source
            .entry(link.value.spec.source.as_str())
            .or_default()
            .push(link);
    }
    for (source, links) in &by_source {
        let federation = links
            .iter()
            .any(|l| l.value.spec.federated_service_selector.is_some());
        let targets: BTreeSet<&str> = links.iter().map(|l| l.value.spec.target.as_str()).collect();
        for link in links {
            let a = link.value.spec.target.as_str();
            for b in &targets {
                if a != *b && a.ends_with(&format!("-{b}")) {
                    let prefix = &a[..a.len() - b.len() - 1];
                    diags.push(link.origin.diagnostic(format!(
                        "Link {:?}: mirrors of target {a:?} and of target {b:?} could collide in source cluster {source:?} \
                         (service \"x\" of {a:?} and service \"x-{prefix}\" of {b:?} would both be named \"x-{a}\"); \
                         rename one of the clusters",
                        link.value.name
                    )));
                }
            }
            if federation && (a == "federated" || a.ends_with("-federated")) {
                diags.push(link.origin.diagnostic(format!(
                    "Link {:?}: target cluster {a:?} would produce mirrors named like federated services \
                     (\"<svc>-federated\") in source cluster {source:?}; rename the cluster or disable federation",
                    link.value.name
                )));
            }
        }
    }
    // Policy reach.
    let clusters: Vec<&Cluster> = rev.clusters.values().map(|c| &c.value).collect();
    for (name, policy) in &rev.policies {
        let spec = &policy.value.spec;
        for (field, selector) in [
            ("targetClusterSelector", &spec.target_cluster_selector),
            ("consumerClusterSelector", &spec.consumer_cluster_selector),
        ] {
            if let Some(sel) = selector
                && !clusters.iter().any(|c| sel.matches(&c.selector_labels()))
            {
                diags.push(policy.origin.diagnostic(format!(
                    "ExportPolicy {name:?}: spec.{field} matches no cluster declared in this revision; \
                     the policy would have no effect"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            content: content.as_bytes().to_vec(),
        }
    }

    fn errors(files: &[SourceFile]) -> Vec<String> {
        parse_files(files).unwrap_err().to_strings()
    }

    const CLUSTERS: &str = "\
apiVersion: linkplane.io/v1alpha1
kind: Cluster
metadata:
  name: east
spec:
  apiServer: https://east.example.com:6443
  credentials:
    kubeconfigFile: /etc/linkplane/east.kubeconfig
  gateway:
    addresses: [10.0.0.1]
  labels:
    env: prod
---
apiVersion: linkplane.io/v1alpha1
kind: Cluster
metadata:
  name: west
spec:
  apiServer: https://west.example.com:6443
  credentials:
    secretRef:
      name: west-kubeconfig
";

    const LINK: &str = "\
apiVersion: linkplane.io/v1alpha1
kind: Link
metadata:
  name: west-from-east
spec:
  source: west
  target: east
";

    #[test]
    fn valid_revision_parses_with_linkerd_defaults() {
        let rev =
            parse_files(&[file("clusters.yaml", CLUSTERS), file("links/l.yml", LINK)]).unwrap();
        assert_eq!(rev.clusters.len(), 2);
        let link = &rev.links["west-from-east"];
        assert_eq!(link.value.spec, LinkSpec::new("west", "east"));
        assert_eq!(link.origin.file, "links/l.yml");
        assert_eq!(
            rev.clusters["east"]
                .value
                .spec
                .gateway
                .as_ref()
                .unwrap()
                .port,
            4143
        );
        assert_eq!(rev.clusters["west"].origin.pos.line, 14);
    }

    /// Hostile nesting is refused with a position and never aborts the process, even when the
    /// caller's thread has the 2 MiB stack of a `spawn_blocking` thread (the server parses there;
    /// 64 block levels of a large revision aborted it before the parser got its own stack).
    #[test]
    fn deeply_nested_yaml_is_refused_on_a_small_caller_stack() {
        let head =
            "apiVersion: linkplane.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: a\nspec:\n";
        let flow = format!("{head}  x: {}{}\n", "[".repeat(5_000), "]".repeat(5_000));
        let block: String = std::iter::once(format!("{head}  x:\n"))
            .chain((0..400).map(|i| format!("{}k:\n", "  ".repeat(i + 2))))
            .collect();
        // Large enough to take the parallel path too.
        let padding = format!("# {}\n", "x".repeat(PARALLEL_YAML_BYTES));
        let files = vec![
            file("flow.yaml", &flow),
            file("block.yaml", &block),
            file("pad.yaml", &padding),
        ];
        let errs = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || errors(&files))
            .unwrap()
            .join()
            .expect("parsing on a 2 MiB thread must not overflow");
        assert!(
            errs.iter().any(|e| e.starts_with("flow.yaml:6:")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.starts_with("block.yaml:")),
            "{errs:?}"
        );
    }

    #[test]
    fn validation_errors_point_at_the_field() {
        let bad = CLUSTERS.replace(
            "addresses: [10.0.0.1]",
            "addresses: [10.0.0.1]\n    port: 0",
        );
        assert_eq!(
            errors(&[file("c.yaml", &bad)]),
            ["c.yaml:11:11: spec.gateway.port: must be between 1 and 65535 (got 0)"]
        );
    }

    #[test]
    fn unknown_field_points_at_the_key() {
        let bad = LINK.replace("  target: east\n", "  target: east\n  tagret: x\n");
        let errs = errors(&[file("c.yaml", CLUSTERS), file("l.yaml", &bad)]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("l.yaml:8:3: spec.tagret: unknown field `tagret`"),
            "{errs:?}"
        );
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let bad = CLUSTERS.replace(
            "addresses: [10.0.0.1]",
            "addresses: [10.0.0.1]\n    port: many",
        );
        let errs = errors(&[file("c.yaml", &bad)]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("c.yaml:11:11: spec.gateway.port: invalid type"),
            "{errs:?}"
        );
    }

    #[test]
    fn unknown_kind_and_api_version_are_reported() {
        let bad = LINK
            .replace("kind: Link", "kind: Lnk")
            .replace("v1alpha1", "v2");
        assert_eq!(
            errors(&[file("l.yaml", &bad)]),
            [
                "l.yaml:1:13: unsupported apiVersion \"linkplane.io/v2\"; expected \"linkplane.io/v1alpha1\"",
                "l.yaml:2:7: unknown kind \"Lnk\"; expected one of Cluster, Link, ExportPolicy"
            ]
        );
    }

    #[test]
    fn non_utf8_content_is_located_at_the_first_invalid_byte() {
        let mut content = b"kind: Link\nmetadata:\n  name: \xc3\xa9t\xff\n".to_vec();
        let errs = errors(&[SourceFile {
            path: "l.yaml".into(),
            content: content.clone(),
        }]);
        assert_eq!(
            errs,
            ["l.yaml:3:11: file is not valid UTF-8 (byte 0xff); manifests must be UTF-8"]
        );
        content.truncate(3);
        content.push(0xfe);
        assert!(
            errors(&[SourceFile {
                path: "m.yaml".into(),
                content,
            }])[0]
                .starts_with("m.yaml:1:4: file is not valid UTF-8")
        );
    }

    #[test]
    fn syntax_error_is_located() {
        let errs = errors(&[file("bad.yaml", "kind: [Link\nspec: x\n")]);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("bad.yaml:"), "{errs:?}");
        assert!(errs[0].contains("invalid YAML"), "{errs:?}");
    }

    #[test]
    fn large_revisions_parse_the_same_on_many_threads() {
        // Enough files and bytes for the parallel YAML step; the first declaration of a
        // duplicated name must still win, and every file's errors keep their location.
        let policy = |i: usize| {
            format!(
                "---\napiVersion: linkplane.io/v1alpha1\nkind: ExportPolicy\nmetadata:\n  name: p{i:05}\nspec:\n  namespaces:\n    deny: [kube-system]\n"
            )
        };
        let mut files = vec![file("a.yaml", CLUSTERS)];
        for f in 0..26 {
            let text: String = (f * 100..(f + 1) * 100).map(policy).collect();
            files.push(file(&format!("p/{f:02}.yaml"), &text));
        }
        assert!(files.iter().map(|f| f.content.len()).sum::<usize>() > PARALLEL_YAML_BYTES);
        let rev = parse_files(&files).unwrap();
        assert_eq!(rev.policies.len(), 2600);
        assert_eq!(rev.policies["p02599"].origin.file, "p/25.yaml");
        files.push(file("z/dup.yaml", &policy(7)));
        files.push(file("z/zz.yaml", "kind: [\n"));
        assert_eq!(
            errors(&files),
            [
                "z/dup.yaml:5:9: duplicate ExportPolicy \"p00007\"; first declared at p/00.yaml:58:1",
                "z/zz.yaml:1:7: invalid YAML: unclosed bracket '[' at line 1, column 7",
            ]
        );
    }

    #[test]
    fn duplicates_dangling_and_pairs_are_rejected() {
        let dup = format!(
            "{LINK}---\n{}",
            LINK.replace("target: east", "target: nowhere")
        );
        let pair = LINK.replace("west-from-east", "again");
        let errs = errors(&[
            file("a.yaml", CLUSTERS),
            file("b.yaml", &dup),
            file("c.yaml", &pair),
        ]);
        assert_eq!(
            errs,
            [
                "b.yaml:1:1: Link \"west-from-east\": link \"again\" (c.yaml:1:1) already links source \"west\" to target \"east\"; one link per cluster pair",
                "b.yaml:12:9: duplicate Link \"west-from-east\"; first declared at b.yaml:1:1",
            ]
        );
        let dangling = LINK.replace("target: east", "target: nowhere");
        assert_eq!(
            errors(&[file("a.yaml", CLUSTERS), file("b.yaml", &dangling)]),
            [
                "b.yaml:1:1: Link \"west-from-east\": spec.target names cluster \"nowhere\", which this revision does not declare"
            ]
        );
    }

    #[test]
    fn source_equal_to_target_is_rejected_at_the_field() {
        let bad = LINK.replace("target: east", "target: west");
        assert_eq!(
            errors(&[file("a.yaml", CLUSTERS), file("b.yaml", &bad)]),
            ["b.yaml:7:11: spec.target: must differ from spec.source (both are \"west\")"]
        );
    }

    fn cluster(name: &str) -> String {
        format!(
            "---\napiVersion: linkplane.io/v1alpha1\nkind: Cluster\nmetadata: {{name: {name}}}\nspec:\n  apiServer: https://{name}\n  credentials: {{kubeconfigFile: /k/{name}}}\n"
        )
    }
    fn link(name: &str, source: &str, target: &str) -> String {
        format!(
            "---\napiVersion: linkplane.io/v1alpha1\nkind: Link\nmetadata: {{name: {name}}}\nspec: {{source: {source}, target: {target}}}\n"
        )
    }

    #[test]
    fn colliding_mirror_suffixes_are_rejected() {
        let text = [
            cluster("hub"),
            cluster("east"),
            cluster("us-east"),
            link("a", "hub", "east"),
            link("b", "hub", "us-east"),
        ]
        .concat();
        let errs = errors(&[file("x.yaml", &text)]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("could collide in source cluster \"hub\""),
            "{errs:?}"
        );
        // Different sources: no collision.
        let ok = [
            cluster("hub"),
            cluster("hub2"),
            cluster("east"),
            cluster("us-east"),
            link("a", "hub", "east"),
            link("b", "hub2", "us-east"),
        ]
        .concat();
        assert!(parse_files(&[file("x.yaml", &ok)]).is_ok());
    }

    #[test]
    fn federated_suffix_target_is_rejected_when_federation_is_on() {
        let text = [
            cluster("hub"),
            cluster("eu-federated"),
            link("a", "hub", "eu-federated"),
        ]
        .concat();
        let errs = errors(&[file("x.yaml", &text)]);
        assert!(errs[0].contains("like federated services"), "{errs:?}");
        let off = text.replace(
            "spec: {source: hub, target: eu-federated}",
            "spec: {source: hub, target: eu-federated, federatedServiceSelector: null}",
        );
        assert!(parse_files(&[file("x.yaml", &off)]).is_ok());
    }

    #[test]
    fn inline_credentials_are_rejected() {
        let bad = CLUSTERS.replace(
            "kubeconfigFile: /etc/linkplane/east.kubeconfig",
            "kubeconfigFile: |\n      apiVersion: v1\n      kind: Config\n      clusters: []",
        );
        let errs = errors(&[file("c.yaml", &bad)]);
        assert!(
            errs.iter().any(|e| e.contains("inline kubeconfig")),
            "{errs:?}"
        );
        let bad = CLUSTERS.replace(
            "kubeconfigFile: /etc/linkplane/east.kubeconfig",
            "token: abc",
        );
        let errs = errors(&[file("c.yaml", &bad)]);
        assert!(
            errs[0].starts_with("c.yaml:8:5: \"token\" looks like inline credential"),
            "{errs:?}"
        );
    }

    #[test]
    fn policy_selecting_no_cluster_is_rejected_and_core_rules_apply() {
        let policy = "apiVersion: linkplane.io/v1alpha1\nkind: ExportPolicy\nmetadata:\n  name: p\nspec:\n  targetClusterSelector:\n    matchLabels: {env: staging}\n  modes: []\n";
        let errs = errors(&[file("c.yaml", CLUSTERS), file("p.yaml", policy)]);
        assert_eq!(
            errs,
            [
                "p.yaml:1:1: ExportPolicy \"p\": spec.targetClusterSelector matches no cluster declared in this revision; the policy would have no effect",
                "p.yaml:8:10: spec.modes: must list at least one of gateway, remote-discovery, federated",
            ]
        );
    }

    #[test]
    fn non_mapping_and_missing_fields_are_reported() {
        let errs = errors(&[file("a.yaml", "- 1\n"), file("b.yaml", "kind: Link\n")]);
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].starts_with("a.yaml:1:1: a manifest must be a mapping"));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_files(&[SourceFile { path: "f.yaml".into(), content: bytes }]);
        }

        #[test]
        fn parser_never_panics_on_yamlish_text(text in "[a-zA-Z:{}\\[\\], \\n\\-#&*!|>'\"0-9.]{0,400}") {
            let _ = parse_files(&[file("f.yaml", &text)]);
        }

        #[test]
        fn parser_never_panics_on_mutated_manifests(cut in 0usize..400, insert in "[:\\-\\[{ \\n]{0,3}") {
            let mut text = format!("{CLUSTERS}---\n{LINK}");
            let at = cut.min(text.len());
            if text.is_char_boundary(at) {
                text.insert_str(at, &insert);
            }
            let _ = parse_files(&[file("f.yaml", &text)]);
        }
    }
}
