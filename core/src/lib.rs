//! The domain of linkplane, free of I/O: clusters, links, export policies and Git sources; the
//! rules that validate them; label-selector matching; and the naming contract shared with
//! Linkerd's multicluster extension.
//!
//! Start with [`cluster::Cluster`] and [`link::Link`]; [`naming`] holds the exact label and
//! annotation strings a Linkerd control plane reads off our mirrors. Every other crate in the
//! workspace depends on this one and this one depends on nothing of theirs.

pub mod cluster;
pub mod duration;
pub mod git_source;
pub mod glob;
pub mod link;
pub mod naming;
pub mod plan;
pub mod policy;
pub mod probes;
pub mod selector;
pub mod status;
pub mod validation;

pub use cluster::{Cluster, ClusterSpec, CredentialsRef, GatewaySpec, ProbeSpec, SecretRef};
pub use duration::Duration;
pub use git_source::{GitAuth, GitRef, GitSource, GitSourceSpec};
pub use link::{Link, LinkSpec, McsSpec};
pub use policy::{ExportPolicy, ExportPolicySpec, MirrorMode, NamespaceFilter, PolicyDecision};
pub use selector::{LabelSelector, Operator, Requirement};
pub use validation::{ValidationError, ValidationErrors};
