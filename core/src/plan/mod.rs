//! Desired-state planning: remote objects + link + policies → the mirror objects that should exist.
//!
//! Pure functions over plain domain types (no Kubernetes types, no I/O), so every Linkerd rule is
//! unit-tested here and the reconciler in `linkplane-mirror` only diffs and writes. Start with
//! [`mirror::plan_service`]; the inputs are [`RemoteService`], [`RemoteEndpoints`] and
//! [`MirrorContext`], the output a [`Plan`].
//!
//! A federated planner (`<svc>-federated`) belongs next to [`mirror`] as its own module, reusing
//! the same remote types and [`copy`] rules.

pub mod copy;
pub mod federation;
pub mod mcs;
pub mod mirror;

use std::collections::BTreeMap;

use crate::{Cluster, ExportPolicy, Link, MirrorMode};

/// A Service port's `targetPort`: a number or a named container port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntOrString {
    /// A port number.
    Int(i32),
    /// A named port.
    String(String),
}

/// One port of a Service, as far as mirroring cares (`nodePort`/`appProtocol` are dropped).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServicePort {
    /// Port name (required by Kubernetes when a Service has several ports).
    pub name: Option<String>,
    /// `TCP`, `UDP` or `SCTP`; `None` means Kubernetes' default (TCP).
    pub protocol: Option<String>,
    /// Service port.
    pub port: i32,
    /// Container port the Service forwards to.
    pub target_port: Option<IntOrString>,
}

/// One port of an Endpoints subset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointPort {
    /// Port name, matching the Service port name.
    pub name: Option<String>,
    /// Protocol.
    pub protocol: Option<String>,
    /// Port number.
    pub port: i32,
}

/// A Service in a target cluster, reduced to what mirroring reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteService {
    /// Namespace (the mirror goes to the same namespace name).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels (selectors and policies read these; most are copied).
    pub labels: BTreeMap<String, String>,
    /// Annotations (copied, except the excluded and topology ones).
    pub annotations: BTreeMap<String, String>,
    /// Ports, remapped onto the mirror.
    pub ports: Vec<ServicePort>,
    /// `clusterIP: None`.
    pub headless: bool,
    /// `metadata.resourceVersion`, recorded as `mirror.linkerd.io/remote-resource-version`.
    pub resource_version: String,
    /// A `ServiceExport` of the same name exists (KEP-1645): links with MCS export it like
    /// the export label does.
    pub service_export: bool,
    /// `spec.sessionAffinity` when set (`ClientIP`); MCS imports carry it.
    pub session_affinity: Option<String>,
}

/// An address of a remote Endpoints subset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteAddress {
    /// Pod IP.
    pub ip: String,
    /// `hostname` (StatefulSet pods, or `spec.hostname` + `subdomain`).
    pub hostname: Option<String>,
}

/// A subset of a remote Endpoints object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteSubset {
    /// Ready addresses.
    pub addresses: Vec<RemoteAddress>,
    /// Not-ready addresses.
    pub not_ready_addresses: Vec<RemoteAddress>,
    /// Container ports.
    pub ports: Vec<EndpointPort>,
}

/// The Endpoints of a remote Service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteEndpoints {
    /// `metadata.resourceVersion` (recorded on headless endpoint mirrors).
    pub resource_version: String,
    /// Subsets as Kubernetes reports them.
    pub subsets: Vec<RemoteSubset>,
}

impl RemoteEndpoints {
    /// True when at least one subset has a ready address: Linkerd's emptiness rule.
    pub fn has_ready_addresses(&self) -> bool {
        self.subsets.iter().any(|s| !s.addresses.is_empty())
    }

    /// True when some address, ready or not, has a hostname: the headless-mirror condition.
    pub fn has_hostnames(&self) -> bool {
        self.subsets.iter().any(|s| {
            s.addresses
                .iter()
                .chain(&s.not_ready_addresses)
                .any(|a| a.hostname.as_deref().is_some_and(|h| !h.is_empty()))
        })
    }
}

/// What the reconciler knows about the target's gateway for one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayView {
    /// Resolved gateway IPs, sorted lexicographically (Linkerd's order); empty if none resolved.
    pub addresses: Vec<String>,
    /// False once the probe failure threshold is reached; addresses then go not-ready.
    pub alive: bool,
}

/// Everything fixed for one link while planning its services.
#[derive(Debug, Clone, Copy)]
pub struct MirrorContext<'a> {
    /// The link.
    pub link: &'a Link,
    /// The cluster exporting services (mirror-name suffix, gateway, cluster domain).
    pub target: &'a Cluster,
    /// The cluster receiving the mirrors (the consumer, for policies).
    pub source: &'a Cluster,
    /// Every export policy.
    pub policies: &'a [ExportPolicy],
    /// The target gateway as currently resolved and probed.
    pub gateway: &'a GatewayView,
}

/// An endpoint mirror as it exists in the source cluster: what it was last written for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedEndpointMirror {
    /// The remote pod address it stands for (`linkplane.io/remote-address`), if recorded.
    pub remote_address: Option<String>,
    /// Its `mirror.linkerd.io/remote-resource-version`, if any.
    pub resource_version: Option<String>,
}

/// What the source cluster already holds for one mirror, where the plan depends on it.
///
/// Per-host endpoint mirrors carry the remote Endpoints' `resourceVersion`, which moves whenever
/// *any* pod of the headless Service changes. An endpoint mirror keeps the version it was
/// written with until its own pod address changes, so one pod's restart rewrites one endpoint
/// mirror, not all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Endpoint mirrors of the root, by name.
    pub endpoint_mirrors: BTreeMap<String, ObservedEndpointMirror>,
}

/// The state of one selected service, as reported to Postgres.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The mirror should exist as planned.
    Mirrored,
    /// The local namespace is missing and the link does not create namespaces.
    MissingNamespace,
    /// Export policies exist for the target and none allows this export.
    PolicyDenied(Vec<String>),
    /// The service cannot be mirrored as it is (e.g. gateway mode without a gateway).
    Invalid(String),
}

/// A namespace to create in the source cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredNamespace {
    /// Name.
    pub name: String,
    /// `mirrored-service: "true"` and `cluster-name: <target>`.
    pub labels: BTreeMap<String, String>,
}

/// A mirror Service as it should be, compared field by field by the applier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredService {
    /// Namespace.
    pub namespace: String,
    /// Name (at most 63 characters).
    pub name: String,
    /// Labels, complete: the applier replaces the whole map.
    pub labels: BTreeMap<String, String>,
    /// Annotations, complete.
    pub annotations: BTreeMap<String, String>,
    /// Ports.
    pub ports: Vec<ServicePort>,
    /// `clusterIP: None` (only the root of a headless mirror).
    pub headless: bool,
}

/// An Endpoints address: an IP we know, or the ClusterIP Kubernetes allocates to a Service we
/// create (headless roots point at their per-host endpoint mirrors).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum AddressIp {
    /// A literal IP.
    Ip(String),
    /// The ClusterIP of the named Service in the same namespace.
    ClusterIpOf(String),
}

/// One desired Endpoints address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DesiredAddress {
    /// IP.
    pub ip: AddressIp,
    /// Hostname (headless roots only).
    pub hostname: Option<String>,
}

/// One desired Endpoints subset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DesiredSubset {
    /// Ready addresses.
    pub addresses: Vec<DesiredAddress>,
    /// Not-ready addresses (gateway dead).
    pub not_ready_addresses: Vec<DesiredAddress>,
    /// Ports.
    pub ports: Vec<EndpointPort>,
}

/// A mirror Endpoints as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredEndpoints {
    /// Namespace.
    pub namespace: String,
    /// Name (same as its Service).
    pub name: String,
    /// Labels, complete.
    pub labels: BTreeMap<String, String>,
    /// Annotations, complete.
    pub annotations: BTreeMap<String, String>,
    /// Subsets; empty when the target has no ready endpoints.
    pub subsets: Vec<DesiredSubset>,
}

/// A per-host endpoint mirror of a headless service: its Service and Endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointMirror {
    /// The ClusterIP Service `<host>-<target>`.
    pub service: DesiredService,
    /// Its gateway Endpoints.
    pub endpoints: DesiredEndpoints,
}

/// Every object one exported service needs in the source cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredMirror {
    /// Mode it is mirrored in.
    pub mode: MirrorMode,
    /// The namespace to create first, when missing and the link creates namespaces.
    pub namespace: Option<DesiredNamespace>,
    /// The mirror Service.
    pub service: DesiredService,
    /// Its Endpoints; `None` in remote-discovery mode (a leftover one is deleted).
    pub endpoints: Option<DesiredEndpoints>,
    /// Headless endpoint mirrors; every other endpoint mirror of this root is deleted.
    pub endpoint_mirrors: Vec<EndpointMirror>,
}

/// What should happen for one (link, remote Service) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Not selected by the link (or the remote Service is gone): no mirror, no state row.
    Unselected,
    /// Selected, but no mirror may exist: delete any owned mirror, record the outcome.
    Absent {
        /// Mode the link selected it in.
        mode: MirrorMode,
        /// Mirror name it would have.
        local_name: String,
        /// Why.
        outcome: Outcome,
    },
    /// Selected but cannot be planned now: leave whatever exists, record the outcome.
    Hold {
        /// Mode.
        mode: MirrorMode,
        /// Mirror name.
        local_name: String,
        /// Why.
        outcome: Outcome,
    },
    /// Write these objects.
    Mirror(Box<DesiredMirror>),
}
