//! Conversions between Kubernetes objects and the plain types of the index and the planner, and
//! the field-by-field comparison that keeps writes minimal.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::{
    api::core::v1::{
        EndpointAddress, EndpointPort as K8sEndpointPort, EndpointSubset, Endpoints, Namespace,
        Service, ServicePort as K8sServicePort, ServiceSpec,
    },
    apimachinery::pkg::{apis::meta::v1::ObjectMeta, util::intstr::IntOrString as K8sIntOrString},
};
use linkplane_core::naming::MIRRORED_SERVICE_LABEL;
use linkplane_core::plan::{
    AddressIp, DesiredEndpoints, DesiredNamespace, DesiredService, EndpointPort, IntOrString,
    RemoteAddress, RemoteEndpoints, RemoteService, RemoteSubset, ServicePort,
};

use crate::{
    index::{
        ClusterIndex, CompactMap, IndexedEndpoints, IndexedService, Kind, KindIndex, ObjectKey,
    },
    slim::{SlimEndpoints, SlimNamespace, SlimService},
};

fn map(m: &Option<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    m.clone().unwrap_or_default()
}

/// Reduces a Service to its indexed form.
pub fn index_service(svc: &Service) -> IndexedService {
    let meta = &svc.metadata;
    let spec = svc.spec.as_ref();
    let cluster_ip = spec.and_then(|s| s.cluster_ip.clone());
    let headless = cluster_ip.as_deref() == Some("None");
    IndexedService {
        service: RemoteService {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            labels: map(&meta.labels),
            annotations: map(&meta.annotations),
            ports: spec
                .and_then(|s| s.ports.as_ref())
                .map(|ports| ports.iter().map(service_port).collect())
                .unwrap_or_default(),
            headless,
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            service_export: false,
            session_affinity: spec.and_then(|s| s.session_affinity.clone()),
        },
        cluster_ip: cluster_ip.filter(|ip| ip != "None" && !ip.is_empty()),
        created_at: meta.creation_timestamp.as_ref().map(|t| {
            chrono::DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond() as u32)
                .unwrap_or_default()
        }),
    }
}

fn service_port(p: &K8sServicePort) -> ServicePort {
    ServicePort {
        name: p.name.clone(),
        protocol: p.protocol.clone(),
        port: p.port,
        target_port: p.target_port.as_ref().map(|t| match t {
            K8sIntOrString::Int(i) => IntOrString::Int(*i),
            K8sIntOrString::String(s) => IntOrString::String(s.clone()),
        }),
    }
}

/// Reduces an Endpoints object to its indexed form.
pub fn index_endpoints(eps: &Endpoints) -> IndexedEndpoints {
    let meta = &eps.metadata;
    let address = |a: &EndpointAddress| RemoteAddress {
        ip: a.ip.clone(),
        hostname: a.hostname.clone(),
    };
    let compact =
        |m: &Option<BTreeMap<String, String>>| m.as_ref().map(CompactMap::from).unwrap_or_default();
    IndexedEndpoints {
        labels: compact(&meta.labels),
        annotations: compact(&meta.annotations),
        endpoints: RemoteEndpoints {
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            subsets: eps
                .subsets
                .iter()
                .flatten()
                .map(|s| RemoteSubset {
                    addresses: s.addresses.iter().flatten().map(address).collect(),
                    not_ready_addresses: s
                        .not_ready_addresses
                        .iter()
                        .flatten()
                        .map(address)
                        .collect(),
                    ports: s
                        .ports
                        .iter()
                        .flatten()
                        .map(|p| EndpointPort {
                            name: p.name.clone(),
                            protocol: p.protocol.clone(),
                            port: p.port,
                        })
                        .collect(),
                })
                .collect(),
        },
    }
}

/// A Namespace's labels.
pub fn index_namespace(ns: &Namespace) -> BTreeMap<String, String> {
    map(&ns.metadata.labels)
}

fn meta(
    namespace: Option<&str>,
    name: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels.clone()),
        annotations: (!annotations.is_empty()).then(|| annotations.clone()),
        ..ObjectMeta::default()
    }
}

/// The Namespace object to create.
pub fn namespace_object(ns: &DesiredNamespace) -> Namespace {
    Namespace {
        metadata: meta(None, &ns.name, &ns.labels, &BTreeMap::new()),
        ..Namespace::default()
    }
}

/// The Service object to write. `cluster_ip` keeps an allocated ClusterIP on replace
/// (the field is immutable).
pub fn service_object(d: &DesiredService, cluster_ip: Option<String>) -> Service {
    Service {
        metadata: meta(Some(&d.namespace), &d.name, &d.labels, &d.annotations),
        spec: Some(ServiceSpec {
            ports: Some(
                d.ports
                    .iter()
                    .map(|p| K8sServicePort {
                        name: p.name.clone(),
                        protocol: p.protocol.clone(),
                        port: p.port,
                        target_port: p.target_port.as_ref().map(|t| match t {
                            IntOrString::Int(i) => K8sIntOrString::Int(*i),
                            IntOrString::String(s) => K8sIntOrString::String(s.clone()),
                        }),
                        ..K8sServicePort::default()
                    })
                    .collect(),
            ),
            cluster_ip: if d.headless {
                Some("None".into())
            } else {
                cluster_ip
            },
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// Resolves [`AddressIp::ClusterIpOf`] references; `None` while a referenced Service has no
/// ClusterIP yet.
pub fn resolve_endpoints(
    d: &DesiredEndpoints,
    cluster_ip_of: impl Fn(&str) -> Option<String>,
) -> Option<RemoteEndpoints> {
    let mut subsets = Vec::with_capacity(d.subsets.len());
    for s in &d.subsets {
        let resolve = |addrs: &[linkplane_core::plan::DesiredAddress]| {
            addrs
                .iter()
                .map(|a| {
                    Some(RemoteAddress {
                        ip: match &a.ip {
                            AddressIp::Ip(ip) => ip.clone(),
                            AddressIp::ClusterIpOf(name) => cluster_ip_of(name)?,
                        },
                        hostname: a.hostname.clone(),
                    })
                })
                .collect::<Option<Vec<_>>>()
        };
        subsets.push(RemoteSubset {
            addresses: resolve(&s.addresses)?,
            not_ready_addresses: resolve(&s.not_ready_addresses)?,
            ports: s.ports.clone(),
        });
    }
    Some(RemoteEndpoints {
        resource_version: String::new(),
        subsets,
    })
}

/// The Endpoints object to write.
pub fn endpoints_object(d: &DesiredEndpoints, resolved: &RemoteEndpoints) -> Endpoints {
    let address = |a: &RemoteAddress| EndpointAddress {
        ip: a.ip.clone(),
        hostname: a.hostname.clone(),
        ..EndpointAddress::default()
    };
    Endpoints {
        metadata: meta(Some(&d.namespace), &d.name, &d.labels, &d.annotations),
        subsets: Some(
            resolved
                .subsets
                .iter()
                .map(|s| EndpointSubset {
                    addresses: (!s.addresses.is_empty())
                        .then(|| s.addresses.iter().map(address).collect()),
                    not_ready_addresses: (!s.not_ready_addresses.is_empty())
                        .then(|| s.not_ready_addresses.iter().map(address).collect()),
                    ports: Some(
                        s.ports
                            .iter()
                            .map(|p| K8sEndpointPort {
                                name: p.name.clone(),
                                protocol: p.protocol.clone(),
                                port: p.port,
                                ..K8sEndpointPort::default()
                            })
                            .collect(),
                    ),
                })
                .collect(),
        ),
    }
}

fn proto(p: &Option<String>) -> &str {
    p.as_deref().unwrap_or("TCP")
}

/// Service ports as a set keyed by name and port, with server defaults applied (protocol TCP,
/// `targetPort` = `port`): the order of `spec.ports` carries no meaning.
fn port_set(ports: &[ServicePort]) -> BTreeSet<(Option<&str>, i32, &str, IntOrString)> {
    ports
        .iter()
        .map(|p| {
            (
                p.name.as_deref().filter(|n| !n.is_empty()),
                p.port,
                proto(&p.protocol),
                p.target_port.clone().unwrap_or(IntOrString::Int(p.port)),
            )
        })
        .collect()
}

/// The first field of a live Service that differs from the desired one (`labels`,
/// `annotations`, `headless`, `ports`), or `None` when it already is as desired. Labels and
/// annotations compare as maps, ports as a set by name and port.
pub fn service_diff(actual: &IndexedService, desired: &DesiredService) -> Option<&'static str> {
    let a = &actual.service;
    if a.labels != desired.labels {
        Some("labels")
    } else if a.annotations != desired.annotations {
        Some("annotations")
    } else if a.headless != desired.headless {
        Some("headless")
    } else if port_set(&a.ports) != port_set(&desired.ports) {
        Some("ports")
    } else {
        None
    }
}

/// An Endpoints port as the API server stores it (protocol defaulted to TCP, empty name = none).
type PortKey = (Option<String>, String, i32);

/// What Endpoints subsets *mean*, however they are packed: for each port, the addresses that
/// offer it and whether each is ready there. The API server re-packs every write
/// (`RepackSubsets`: every (address, port) pair expanded; addresses de-duplicated by IP, the
/// first one seen kept whole; a not-ready pairing wins over a ready one; ports offered by the
/// same addresses merged into one subset; everything sorted), so two layouts with the same
/// meaning read back identically and must compare equal. Subsets without ports carry no
/// (address, port) pair and are left out (servers differ on whether they keep them).
pub fn endpoints_semantics(
    subsets: &[RemoteSubset],
) -> BTreeMap<PortKey, BTreeMap<String, (Option<String>, bool)>> {
    let mut hostnames: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    let mut by_port: BTreeMap<PortKey, BTreeMap<&str, bool>> = BTreeMap::new();
    for s in subsets {
        if s.ports.is_empty() {
            continue;
        }
        for (addrs, ready) in [(&s.addresses, true), (&s.not_ready_addresses, false)] {
            for a in addrs {
                hostnames
                    .entry(a.ip.as_str())
                    .or_insert(a.hostname.as_deref().filter(|h| !h.is_empty()));
            }
            for p in &s.ports {
                let key = (
                    p.name.clone().filter(|n| !n.is_empty()),
                    proto(&p.protocol).to_string(),
                    p.port,
                );
                let entry = by_port.entry(key).or_default();
                for a in addrs {
                    let slot = entry.entry(a.ip.as_str()).or_insert(ready);
                    *slot = *slot && ready;
                }
            }
        }
    }
    by_port
        .into_iter()
        .filter(|(_, addrs)| !addrs.is_empty())
        .map(|(port, addrs)| {
            let addrs = addrs
                .into_iter()
                .map(|(ip, ready)| {
                    let host = hostnames.get(ip).copied().flatten().map(str::to_string);
                    (ip.to_string(), (host, ready))
                })
                .collect();
            (port, addrs)
        })
        .collect()
}

/// The first field of a live Endpoints that differs from the desired one (`labels`,
/// `annotations`, `subsets`), or `None`. Subsets compare by meaning ([`endpoints_semantics`]).
pub fn endpoints_diff(
    actual: &IndexedEndpoints,
    desired: &DesiredEndpoints,
    resolved: &RemoteEndpoints,
) -> Option<&'static str> {
    if !actual.labels.same_as(&desired.labels) {
        Some("labels")
    } else if !actual.annotations.same_as(&desired.annotations) {
        Some("annotations")
    } else if endpoints_semantics(&actual.endpoints.subsets)
        != endpoints_semantics(&resolved.subsets)
    {
        Some("subsets")
    } else {
        None
    }
}

/// A watched type and its place in a [`ClusterIndex`]: one impl per type (kubert's
/// `IndexNamespacedResource<T>`), so the watch loop is generic over it and a type can only ever
/// be indexed into its own [`KindIndex`].
pub(crate) trait Indexed:
    kube::Resource<DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The kind, for routing and logs.
    const KIND: Kind;
    /// What the index keeps of an object.
    type Entry: Clone + PartialEq + crate::index::Grouped;
    /// The index entry of this object.
    fn entry(&self) -> Self::Entry;
    /// This type's objects in `idx`.
    fn slot(idx: &ClusterIndex) -> &KindIndex<Self::Entry>;
    /// This type's objects in `idx`, for writing.
    fn slot_mut(idx: &mut ClusterIndex) -> &mut KindIndex<Self::Entry>;
    /// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
    fn key(&self) -> ObjectKey {
        let meta = self.meta();
        (
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        )
    }
    /// Labels.
    fn labels(&self) -> BTreeMap<String, String> {
        self.meta().labels.clone().unwrap_or_default()
    }
    /// Whether the entry is a mirror or federated Service (or its Endpoints): labelled
    /// `mirror.linkerd.io/mirrored-service`, the label the watches' selectors split on.
    fn is_mirror(_entry: &Self::Entry) -> bool {
        false
    }
}

impl Indexed for SlimService {
    const KIND: Kind = Kind::Service;
    type Entry = IndexedService;
    fn entry(&self) -> IndexedService {
        index_service(&self.0)
    }
    fn is_mirror(entry: &IndexedService) -> bool {
        entry.service.labels.contains_key(MIRRORED_SERVICE_LABEL)
    }
    fn slot(idx: &ClusterIndex) -> &KindIndex<IndexedService> {
        &idx.services
    }
    fn slot_mut(idx: &mut ClusterIndex) -> &mut KindIndex<IndexedService> {
        &mut idx.services
    }
}

impl Indexed for SlimEndpoints {
    const KIND: Kind = Kind::Endpoints;
    type Entry = IndexedEndpoints;
    fn entry(&self) -> IndexedEndpoints {
        index_endpoints(&self.0)
    }
    fn is_mirror(entry: &IndexedEndpoints) -> bool {
        entry.labels.contains_key(MIRRORED_SERVICE_LABEL)
    }
    fn slot(idx: &ClusterIndex) -> &KindIndex<IndexedEndpoints> {
        &idx.endpoints
    }
    fn slot_mut(idx: &mut ClusterIndex) -> &mut KindIndex<IndexedEndpoints> {
        &mut idx.endpoints
    }
}

impl Indexed for SlimNamespace {
    const KIND: Kind = Kind::Namespace;
    type Entry = BTreeMap<String, String>;
    fn entry(&self) -> BTreeMap<String, String> {
        index_namespace(&self.0)
    }
    fn slot(idx: &ClusterIndex) -> &KindIndex<BTreeMap<String, String>> {
        &idx.namespaces
    }
    fn slot_mut(idx: &mut ClusterIndex) -> &mut KindIndex<BTreeMap<String, String>> {
        &mut idx.namespaces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> DesiredService {
        DesiredService {
            namespace: "shop".into(),
            name: "web-east".into(),
            labels: BTreeMap::from([("a".into(), "b".into())]),
            annotations: BTreeMap::new(),
            ports: vec![ServicePort {
                name: Some("http".into()),
                protocol: None,
                port: 80,
                target_port: None,
            }],
            headless: false,
        }
    }

    #[test]
    fn written_service_reads_back_as_matching_with_server_defaults() {
        let d = desired();
        let mut obj = service_object(&d, None);
        // The API server fills defaults; they must not count as drift.
        let spec = obj.spec.as_mut().unwrap();
        spec.cluster_ip = Some("10.96.0.10".into());
        let port = &mut spec.ports.as_mut().unwrap()[0];
        port.protocol = Some("TCP".into());
        port.target_port = Some(K8sIntOrString::Int(80));
        let idx = index_service(&obj);
        assert_eq!(service_diff(&idx, &d), None);
        assert_eq!(idx.cluster_ip.as_deref(), Some("10.96.0.10"));
        let mut changed = d.clone();
        changed.ports[0].port = 81;
        assert_eq!(service_diff(&idx, &changed), Some("ports"));
        let mut relabelled = d;
        relabelled.labels.clear();
        assert_eq!(service_diff(&idx, &relabelled), Some("labels"));
    }

    fn port(name: &str, port: i32) -> EndpointPort {
        EndpointPort {
            name: Some(name.into()),
            protocol: None,
            port,
        }
    }

    fn addr(ip: &str, host: Option<&str>) -> RemoteAddress {
        RemoteAddress {
            ip: ip.into(),
            hostname: host.map(str::to_string),
        }
    }

    fn subset(ready: &[&str], not_ready: &[&str], ports: &[(&str, i32)]) -> RemoteSubset {
        RemoteSubset {
            addresses: ready.iter().map(|ip| addr(ip, None)).collect(),
            not_ready_addresses: not_ready.iter().map(|ip| addr(ip, None)).collect(),
            ports: ports.iter().map(|(n, p)| port(n, *p)).collect(),
        }
    }

    /// Issue 14: the API server re-packs and re-orders subsets, addresses and ports; a mirror
    /// written in Linkerd's order reads back in upstream's and must not count as drift.
    #[test]
    fn endpoints_compare_by_meaning_not_by_layout() {
        // As written: gateway IPs sorted as strings, ports in Service order.
        let written = vec![subset(
            &["10.0.0.10", "10.0.0.9"],
            &[],
            &[("http", 4143), ("admin", 4143), ("grpc", 4143)],
        )];
        // As read back: addresses by IP bytes, ports by hash, protocol defaulted.
        let mut read = subset(
            &["10.0.0.9", "10.0.0.10"],
            &[],
            &[("grpc", 4143), ("http", 4143), ("admin", 4143)],
        );
        for p in &mut read.ports {
            p.protocol = Some("TCP".into());
        }
        assert_eq!(
            endpoints_semantics(&written),
            endpoints_semantics(&[read.clone()])
        );
        // Split by port into two subsets with the same addresses: RepackSubsets merges them.
        let split = vec![
            subset(&["10.0.0.9", "10.0.0.10"], &[], &[("http", 4143)]),
            subset(
                &["10.0.0.10", "10.0.0.9"],
                &[],
                &[("admin", 4143), ("grpc", 4143)],
            ),
        ];
        assert_eq!(endpoints_semantics(&written), endpoints_semantics(&split));
        // Duplicates collapse; a not-ready pairing wins over a ready one.
        let dup = vec![
            subset(&["10.0.0.9"], &[], &[("http", 4143)]),
            subset(&[], &["10.0.0.9"], &[("http", 4143)]),
        ];
        assert_eq!(
            endpoints_semantics(&dup),
            endpoints_semantics(&[subset(&[], &["10.0.0.9"], &[("http", 4143)])])
        );
        // Real differences still show: readiness, a port, an address.
        let dead = vec![subset(
            &[],
            &["10.0.0.10", "10.0.0.9"],
            &[("http", 4143), ("admin", 4143), ("grpc", 4143)],
        )];
        assert_ne!(endpoints_semantics(&written), endpoints_semantics(&dead));
        let fewer = vec![subset(&["10.0.0.9"], &[], &[("http", 4143)])];
        assert_ne!(
            endpoints_semantics(&split[..1]),
            endpoints_semantics(&fewer)
        );
        let moved = vec![subset(&["10.0.0.9", "10.0.0.10"], &[], &[("http", 4144)])];
        assert_ne!(
            endpoints_semantics(&split[..1]),
            endpoints_semantics(&moved)
        );
        // Empty and portless layouts mean nothing.
        assert!(endpoints_semantics(&[subset(&["10.0.0.1"], &[], &[])]).is_empty());
    }

    #[test]
    fn endpoints_hostnames_are_part_of_the_meaning() {
        let with = |h: &str| RemoteSubset {
            addresses: vec![addr("10.96.0.5", Some(h))],
            not_ready_addresses: vec![],
            ports: vec![port("tcp", 6379)],
        };
        assert_ne!(
            endpoints_semantics(&[with("web-0")]),
            endpoints_semantics(&[with("web-1")])
        );
        assert_eq!(
            endpoints_semantics(&[with("web-0")]),
            endpoints_semantics(&[with("web-0")])
        );
    }

    #[test]
    fn service_ports_compare_by_name_and_port_and_report_the_first_difference() {
        let mut d = desired();
        d.ports.push(ServicePort {
            name: Some("grpc".into()),
            protocol: Some("TCP".into()),
            port: 9090,
            target_port: Some(IntOrString::String("grpc".into())),
        });
        let obj = service_object(&d, None);
        let mut idx = index_service(&obj);
        idx.service.ports.reverse();
        assert_eq!(
            service_diff(&idx, &d),
            None,
            "port order carries no meaning"
        );
        let mut renamed = d.clone();
        renamed.ports[1].name = Some("rpc".into());
        assert_eq!(service_diff(&idx, &renamed), Some("ports"));
        let mut annotated = d.clone();
        annotated.annotations.insert("x".into(), "y".into());
        assert_eq!(service_diff(&idx, &annotated), Some("annotations"));
        let mut headless = d;
        headless.headless = true;
        assert_eq!(service_diff(&idx, &headless), Some("headless"));
    }

    #[test]
    fn headless_service_is_written_with_cluster_ip_none() {
        let mut d = desired();
        d.headless = true;
        let obj = service_object(&d, Some("10.0.0.1".into()));
        assert_eq!(obj.spec.unwrap().cluster_ip.as_deref(), Some("None"));
    }

    #[test]
    fn cluster_ip_references_resolve_or_wait() {
        use linkplane_core::plan::{DesiredAddress, DesiredSubset};
        let d = DesiredEndpoints {
            namespace: "shop".into(),
            name: "web-east".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            subsets: vec![DesiredSubset {
                addresses: vec![DesiredAddress {
                    ip: AddressIp::ClusterIpOf("web-0-east".into()),
                    hostname: Some("web-0".into()),
                }],
                not_ready_addresses: vec![],
                ports: vec![],
            }],
        };
        assert_eq!(resolve_endpoints(&d, |_| None), None);
        let r = resolve_endpoints(&d, |n| (n == "web-0-east").then(|| "10.1.1.1".into())).unwrap();
        assert_eq!(r.subsets[0].addresses[0].ip, "10.1.1.1");
        let obj = endpoints_object(&d, &r);
        let idx = index_endpoints(&obj);
        assert_eq!(endpoints_diff(&idx, &d, &r), None);
    }
}
