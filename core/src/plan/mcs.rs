//! The Kubernetes Multi-Cluster Services rendering (KEP-1645) of what a consumer cluster
//! imports: one `ServiceImport` per `(namespace, service)` over every exporting cluster
//! ("namespace sameness"), EndpointSlices per exporting cluster, and the conflict verdict the
//! exports' `Conflict` condition shows.
//!
//! Which exports a consumer sees is not decided here: the mirror planner
//! ([`super::mirror::plan_service`]) decides it per link (selectors, `ServiceExport`s, export
//! policies, namespaces); every export it plans a mirror for is a [`Member`] here. The Linkerd
//! mirrors and these objects are two renderings of that one decision.
//!
//! Rules (KEP-1645 "Constraints and Conflict Resolution"):
//! - the oldest export (by `ServiceExport` creation, then cluster name) wins a conflict;
//! - type: the import is `Headless` when the winner's Service is headless, else
//!   `ClusterSetIP`; an export of the other type is a `TypeConflict`;
//! - ports: the union of the exports' ports, keyed by name (or number when unnamed); a port of
//!   a newer export with the same key and another number or protocol is a `PortConflict`
//!   (the winner's definition is used);
//! - `sessionAffinity` is the winner's;
//! - a conflict is reported on every export of the service (the KEP sets the condition on all
//!   of them), and every export keeps contributing endpoints.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{EndpointPort, RemoteEndpoints, RemoteService};
use crate::status::McsExportState;

/// The label naming the multi-cluster service an EndpointSlice belongs to.
pub const SERVICE_NAME_LABEL: &str = "multicluster.kubernetes.io/service-name";
/// The label naming the cluster an EndpointSlice's endpoints come from.
pub const SOURCE_CLUSTER_LABEL: &str = "multicluster.kubernetes.io/source-cluster";
/// The EndpointSlice controller label; ours is [`MANAGED_BY`].
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`] (and of `app.kubernetes.io/managed-by` on imports).
pub const MANAGED_BY: &str = "mcs-controller.linkplane.io";

/// One export of the service to this consumer.
#[derive(Debug, Clone)]
pub struct Member<'a> {
    /// The exporting cluster.
    pub cluster: &'a str,
    /// Its Service.
    pub service: &'a RemoteService,
    /// Its Endpoints.
    pub endpoints: Option<&'a RemoteEndpoints>,
    /// When its `ServiceExport` was created.
    pub exported_at: Option<DateTime<Utc>>,
}

/// `ServiceImport.spec.type`, declared once in the status vocabulary (the store keeps it too).
pub use crate::status::McsImportType as ImportType;

/// The one-word state of an export from its three conditions (precedence in
/// [`McsExportState`]'s doc): lists filter and count by it.
pub fn export_state(valid: bool, ready: bool, conflict: bool) -> McsExportState {
    match (valid, conflict, ready) {
        (false, _, _) => McsExportState::Invalid,
        (true, true, _) => McsExportState::Conflict,
        (true, false, true) => McsExportState::Exported,
        (true, false, false) => McsExportState::Pending,
    }
}

/// A port of the import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportPort {
    /// Name.
    pub name: Option<String>,
    /// Protocol (`TCP` when the Service left it out).
    pub protocol: String,
    /// Port.
    pub port: i32,
}

/// An endpoint of a slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceEndpoint {
    /// Pod IP.
    pub ip: String,
    /// Hostname (headless services).
    pub hostname: Option<String>,
    /// `conditions.ready`.
    pub ready: bool,
}

/// One EndpointSlice of one exporting cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredSlice {
    /// Object name.
    pub name: String,
    /// The exporting cluster.
    pub cluster: String,
    /// Endpoints.
    pub endpoints: Vec<SliceEndpoint>,
    /// Ports.
    pub ports: Vec<EndpointPort>,
}

/// What the consumer should hold for one `(namespace, service)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredImport {
    /// Namespace (the exports' namespace).
    pub namespace: String,
    /// Name (the exported Service's name).
    pub name: String,
    /// Type.
    pub ty: ImportType,
    /// Ports.
    pub ports: Vec<ImportPort>,
    /// `ClientIP` or `None`.
    pub session_affinity: String,
    /// Exporting clusters, sorted.
    pub clusters: Vec<String>,
    /// EndpointSlices.
    pub slices: Vec<DesiredSlice>,
}

/// A conflict between exports of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// `TypeConflict` or `PortConflict`.
    pub reason: &'static str,
    /// What conflicts, and how it was resolved.
    pub message: String,
}

/// The plan for one consumer and `(namespace, service)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportPlan {
    /// `None`: no export reaches the consumer; delete what we hold.
    pub import: Option<DesiredImport>,
    /// The first conflict found, reported on every export.
    pub conflict: Option<Conflict>,
}

fn port_key(p: &ImportPort) -> String {
    p.name.clone().unwrap_or_else(|| p.port.to_string())
}

/// An EndpointSlice name for `service` from `cluster` (part `i`), at most 63 characters.
pub fn slice_name(service: &str, cluster: &str, i: usize) -> String {
    let base = if i == 0 {
        format!("{service}-{cluster}")
    } else {
        format!("{service}-{cluster}-{i}")
    };
    crate::naming::GeneratedName::fit(base).name
}

/// Plans the import of `namespace/name` from `members`.
pub fn plan_import(namespace: &str, name: &str, members: &[Member<'_>]) -> ImportPlan {
    let mut sorted: Vec<&Member<'_>> = members.iter().collect();
    sorted.sort_by(|a, b| {
        (a.exported_at.is_none(), a.exported_at, a.cluster).cmp(&(
            b.exported_at.is_none(),
            b.exported_at,
            b.cluster,
        ))
    });
    let Some(winner) = sorted.first() else {
        return ImportPlan {
            import: None,
            conflict: None,
        };
    };
    let ty = if winner.service.headless {
        ImportType::Headless
    } else {
        ImportType::ClusterSetIp
    };
    let mut conflict = None;
    let mut ports: Vec<ImportPort> = Vec::new();
    for m in &sorted {
        let mty = if m.service.headless {
            ImportType::Headless
        } else {
            ImportType::ClusterSetIp
        };
        if mty != ty && conflict.is_none() {
            conflict = Some(Conflict {
                reason: "TypeConflict",
                message: format!(
                    "cluster {} exports a {} service but the oldest export, in cluster {}, is {}; the import is {}",
                    m.cluster,
                    mty.as_str(),
                    winner.cluster,
                    ty.as_str(),
                    ty.as_str()
                ),
            });
        }
        for p in &m.service.ports {
            let ip = ImportPort {
                name: p.name.clone(),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                port: p.port,
            };
            match ports.iter().find(|q| port_key(q) == port_key(&ip)) {
                None => ports.push(ip),
                Some(q) if *q == ip => {}
                Some(q) => {
                    if conflict.is_none() {
                        conflict = Some(Conflict {
                            reason: "PortConflict",
                            message: format!(
                                "port {:?} of cluster {} is {}/{} but the older export of cluster {} has {}/{}; using {}/{}",
                                port_key(&ip),
                                m.cluster,
                                ip.port,
                                ip.protocol,
                                winner.cluster,
                                q.port,
                                q.protocol,
                                q.port,
                                q.protocol
                            ),
                        });
                    }
                }
            }
        }
    }
    let mut clusters: Vec<String> = sorted.iter().map(|m| m.cluster.to_string()).collect();
    clusters.sort();
    clusters.dedup();
    let mut slices = Vec::new();
    let mut by_cluster: Vec<&Member<'_>> = sorted.clone();
    by_cluster.sort_by(|a, b| a.cluster.cmp(b.cluster));
    for m in by_cluster {
        // One slice per distinct port set of the cluster's Endpoints subsets.
        let mut groups: BTreeMap<Vec<EndpointPort>, Vec<SliceEndpoint>> = BTreeMap::new();
        for s in m.endpoints.map(|e| e.subsets.as_slice()).unwrap_or(&[]) {
            let mut key = s.ports.clone();
            key.sort();
            let eps = groups.entry(key).or_default();
            for (list, ready) in [(&s.addresses, true), (&s.not_ready_addresses, false)] {
                for a in list {
                    eps.push(SliceEndpoint {
                        ip: a.ip.clone(),
                        hostname: a.hostname.clone(),
                        ready,
                    });
                }
            }
        }
        if groups.is_empty() {
            groups.insert(Vec::new(), Vec::new());
        }
        for (i, (ports, mut endpoints)) in groups.into_iter().enumerate() {
            endpoints.sort_by(|a, b| a.ip.cmp(&b.ip));
            slices.push(DesiredSlice {
                name: slice_name(name, m.cluster, i),
                cluster: m.cluster.to_string(),
                endpoints,
                ports,
            });
        }
    }
    ImportPlan {
        import: Some(DesiredImport {
            namespace: namespace.to_string(),
            name: name.to_string(),
            ty,
            ports,
            session_affinity: winner
                .service
                .session_affinity
                .clone()
                .unwrap_or_else(|| "None".into()),
            clusters,
            slices,
        }),
        conflict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{RemoteAddress, RemoteSubset, ServicePort};

    fn svc(headless: bool, ports: &[(&str, i32, &str)]) -> RemoteService {
        RemoteService {
            namespace: "shop".into(),
            name: "web".into(),
            ports: ports
                .iter()
                .map(|(n, p, proto)| ServicePort {
                    name: Some(n.to_string()),
                    protocol: Some(proto.to_string()),
                    port: *p,
                    target_port: None,
                })
                .collect(),
            headless,
            service_export: true,
            ..RemoteService::default()
        }
    }

    fn eps(ips: &[&str]) -> RemoteEndpoints {
        RemoteEndpoints {
            resource_version: "1".into(),
            subsets: vec![RemoteSubset {
                addresses: ips
                    .iter()
                    .map(|ip| RemoteAddress {
                        ip: ip.to_string(),
                        hostname: None,
                    })
                    .collect(),
                not_ready_addresses: vec![],
                ports: vec![EndpointPort {
                    name: Some("http".into()),
                    protocol: Some("TCP".into()),
                    port: 8080,
                }],
            }],
        }
    }

    fn at(s: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(s, 0)
    }

    /// Namespace sameness: exports of `shop/web` from two clusters are one import over both,
    /// with one EndpointSlice per cluster.
    #[test]
    fn exports_of_one_service_are_one_import() {
        let (a, b) = (
            svc(false, &[("http", 80, "TCP")]),
            svc(false, &[("http", 80, "TCP")]),
        );
        let (ea, eb) = (eps(&["10.0.0.1"]), eps(&["10.1.0.1", "10.1.0.2"]));
        let plan = plan_import(
            "shop",
            "web",
            &[
                Member {
                    cluster: "west",
                    service: &b,
                    endpoints: Some(&eb),
                    exported_at: at(2),
                },
                Member {
                    cluster: "east",
                    service: &a,
                    endpoints: Some(&ea),
                    exported_at: at(1),
                },
            ],
        );
        let import = plan.import.unwrap();
        assert_eq!(plan.conflict, None);
        assert_eq!(import.ty, ImportType::ClusterSetIp);
        assert_eq!(import.clusters, ["east", "west"]);
        let slices: Vec<(&str, usize)> = import
            .slices
            .iter()
            .map(|s| (s.name.as_str(), s.endpoints.len()))
            .collect();
        assert_eq!(slices, [("web-east", 1), ("web-west", 2)]);
        assert_eq!(import.session_affinity, "None");
    }

    /// KEP-1645 conflict resolution: the oldest export wins the type; a conflict is reported.
    #[test]
    fn type_conflicts_are_resolved_by_the_oldest_export() {
        let (old, new) = (
            svc(true, &[("http", 80, "TCP")]),
            svc(false, &[("http", 80, "TCP")]),
        );
        let plan = plan_import(
            "shop",
            "web",
            &[
                Member {
                    cluster: "a",
                    service: &new,
                    endpoints: None,
                    exported_at: at(5),
                },
                Member {
                    cluster: "b",
                    service: &old,
                    endpoints: None,
                    exported_at: at(1),
                },
            ],
        );
        assert_eq!(plan.import.unwrap().ty, ImportType::Headless);
        let c = plan.conflict.unwrap();
        assert_eq!(c.reason, "TypeConflict");
        assert!(
            c.message.contains("oldest export, in cluster b"),
            "{}",
            c.message
        );
    }

    /// Ports are the union; a same-named port with another number is a `PortConflict` and the
    /// oldest export's definition is used.
    #[test]
    fn port_conflicts_keep_the_oldest_definition() {
        let old = svc(false, &[("http", 80, "TCP")]);
        let new = svc(false, &[("http", 8080, "TCP"), ("grpc", 9090, "TCP")]);
        let plan = plan_import(
            "shop",
            "web",
            &[
                Member {
                    cluster: "old",
                    service: &old,
                    endpoints: None,
                    exported_at: at(1),
                },
                Member {
                    cluster: "new",
                    service: &new,
                    endpoints: None,
                    exported_at: at(2),
                },
            ],
        );
        let ports: Vec<(Option<String>, i32)> = plan
            .import
            .unwrap()
            .ports
            .into_iter()
            .map(|p| (p.name, p.port))
            .collect();
        assert_eq!(
            ports,
            [(Some("http".into()), 80), (Some("grpc".into()), 9090)]
        );
        assert_eq!(plan.conflict.unwrap().reason, "PortConflict");
    }

    #[test]
    fn no_members_is_no_import_and_long_names_are_shortened() {
        assert_eq!(plan_import("shop", "web", &[]).import, None);
        let long = slice_name(&"s".repeat(60), "cluster", 0);
        assert!(long.len() <= 63, "{long}");
        assert_ne!(long, slice_name(&"s".repeat(61), "cluster", 0));
    }

    /// The summary follows the conditions: an invalid export is `Invalid` whatever else holds
    /// (KEP-1645 sets `Ready=False` with it anyway); a conflict shows even while imported.
    #[test]
    fn export_state_follows_the_conditions_by_precedence() {
        assert_eq!(export_state(false, true, true), McsExportState::Invalid);
        assert_eq!(export_state(true, true, true), McsExportState::Conflict);
        assert_eq!(export_state(true, false, true), McsExportState::Conflict);
        assert_eq!(export_state(true, true, false), McsExportState::Exported);
        assert_eq!(export_state(true, false, false), McsExportState::Pending);
    }
}
