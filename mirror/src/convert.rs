//! Conversions between Kubernetes objects and the plain types of the index and the planner, and
//! the field-by-field comparison that keeps writes minimal.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        EndpointAddress, EndpointPort as K8sEndpointPort, EndpointSubset, Endpoints, Namespace,
        Service, ServicePort as K8sServicePort, ServiceSpec,
    },
    apimachinery::pkg::{apis::meta::v1::ObjectMeta, util::intstr::IntOrString as K8sIntOrString},
};
use linkplane_core::plan::{
    AddressIp, DesiredEndpoints, DesiredNamespace, DesiredService, EndpointPort, IntOrString,
    RemoteAddress, RemoteEndpoints, RemoteService, RemoteSubset, ServicePort,
};

use crate::index::{IndexedEndpoints, IndexedService};

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
    IndexedEndpoints {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        labels: map(&meta.labels),
        annotations: map(&meta.annotations),
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

fn same_ports(actual: &[ServicePort], desired: &[ServicePort]) -> bool {
    actual.len() == desired.len()
        && actual.iter().zip(desired).all(|(a, d)| {
            let tp = |p: &ServicePort| p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
            a.name == d.name
                && proto(&a.protocol) == proto(&d.protocol)
                && a.port == d.port
                && tp(a) == tp(d)
        })
}

/// True when the live Service already has every field we own as desired.
pub fn service_matches(actual: &IndexedService, desired: &DesiredService) -> bool {
    let a = &actual.service;
    a.labels == desired.labels
        && a.annotations == desired.annotations
        && a.headless == desired.headless
        && same_ports(&a.ports, &desired.ports)
}

/// True when the live Endpoints already has every field we own as desired.
pub fn endpoints_match(
    actual: &IndexedEndpoints,
    desired: &DesiredEndpoints,
    resolved: &RemoteEndpoints,
) -> bool {
    let norm = |s: &RemoteSubset| {
        (
            s.addresses.clone(),
            s.not_ready_addresses.clone(),
            s.ports
                .iter()
                .map(|p| (p.name.clone(), proto(&p.protocol).to_string(), p.port))
                .collect::<Vec<_>>(),
        )
    };
    actual.labels == desired.labels
        && actual.annotations == desired.annotations
        && actual.endpoints.subsets.len() == resolved.subsets.len()
        && actual
            .endpoints
            .subsets
            .iter()
            .zip(&resolved.subsets)
            .all(|(a, d)| norm(a) == norm(d))
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
        assert!(service_matches(&idx, &d));
        assert_eq!(idx.cluster_ip.as_deref(), Some("10.96.0.10"));
        let mut changed = d.clone();
        changed.ports[0].port = 81;
        assert!(!service_matches(&idx, &changed));
        let mut relabelled = d;
        relabelled.labels.clear();
        assert!(!service_matches(&idx, &relabelled));
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
        assert!(endpoints_match(&idx, &d, &r));
    }
}
