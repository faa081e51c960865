//! The gateway / remote-discovery mirror planner (linkerd-compat §2.2–§2.6, §3.1, §5).

use std::collections::{BTreeMap, BTreeSet};

use super::{
    AddressIp, DesiredAddress, DesiredEndpoints, DesiredMirror, DesiredNamespace, DesiredService,
    DesiredSubset, EndpointMirror, EndpointPort, GatewayView, MirrorContext, Observed, Outcome,
    Plan, RemoteEndpoints, RemoteService, ServicePort,
    copy::{copied_annotations, copied_labels},
};
use crate::{
    LinkSpec, MirrorMode,
    naming::{
        CLUSTER_NAME_LABEL, FULL_NAME_ANNOTATION, GeneratedName, HEADLESS_MIRROR_SVC_NAME_LABEL,
        LINKPLANE_REMOTE_SERVICE_LABEL, MIRRORED_SERVICE_LABEL, REMOTE_ADDRESS_ANNOTATION,
        REMOTE_DISCOVERY_KEY, REMOTE_GATEWAY_IDENTITY_ANNOTATION,
        REMOTE_RESOURCE_VERSION_ANNOTATION, REMOTE_SERVICE_LABEL, REMOTE_SVC_FQ_NAME_ANNOTATION,
        endpoint_mirror_name, mirror_service_name, remote_fq_name,
    },
    policy::{ExportRequest, PolicyDecision, evaluate},
    selector::selects,
};

/// The mode a link mirrors a Service with these labels in: remote discovery wins over gateway
/// when both selectors match (Linkerd), `None` when neither does.
pub fn selected_mode(link: &LinkSpec, labels: &BTreeMap<String, String>) -> Option<MirrorMode> {
    if selects(link.remote_discovery_selector.as_ref(), labels) {
        Some(MirrorMode::RemoteDiscovery)
    } else if selects(link.selector.as_ref(), labels) {
        Some(MirrorMode::Gateway)
    } else {
        None
    }
}

/// The mode a link with MCS mirrors a Service exported by a `ServiceExport` in (when no label
/// selector selected it): `spec.mcs.exportMode`.
pub fn mcs_mode(link: &LinkSpec, svc: &RemoteService) -> Option<MirrorMode> {
    if !svc.service_export {
        return None;
    }
    link.mcs_enabled().map(|m| m.export_mode)
}

/// Plans the mirror of one remote Service for one link.
///
/// `service` is `None` when the remote Service does not exist (deleted): nothing should be
/// mirrored. `endpoints` is the remote Service's Endpoints, if any. `namespace_exists` says
/// whether the source cluster has the namespace already.
pub fn plan_service(
    ctx: &MirrorContext<'_>,
    service: Option<&RemoteService>,
    endpoints: Option<&RemoteEndpoints>,
    namespace_exists: bool,
) -> Plan {
    plan_service_observed(
        ctx,
        service,
        endpoints,
        namespace_exists,
        &Observed::default(),
    )
}

/// [`plan_service`], given what the source cluster already holds for this mirror (endpoint
/// mirrors keep their `remote-resource-version` until their own address changes).
pub fn plan_service_observed(
    ctx: &MirrorContext<'_>,
    service: Option<&RemoteService>,
    endpoints: Option<&RemoteEndpoints>,
    namespace_exists: bool,
    observed: &Observed,
) -> Plan {
    let Some(svc) = service else {
        return Plan::Unselected;
    };
    let spec = &ctx.link.spec;
    let Some(mode) = selected_mode(spec, &svc.labels).or_else(|| mcs_mode(spec, svc)) else {
        return Plan::Unselected;
    };
    let target = ctx.target;
    let name = mirror_service_name(&svc.name, &target.name);
    let local_name = name.name.clone();

    let decision = evaluate(
        ctx.policies,
        &ExportRequest {
            target,
            consumer: ctx.source,
            namespace: &svc.namespace,
            service_labels: &svc.labels,
            mode,
        },
    );
    if let PolicyDecision::Denied(policies) = decision {
        return Plan::Absent {
            mode,
            local_name,
            outcome: Outcome::PolicyDenied(policies),
        };
    }

    let namespace = if namespace_exists {
        None
    } else if spec.create_namespaces {
        Some(DesiredNamespace {
            name: svc.namespace.clone(),
            labels: BTreeMap::from([
                (MIRRORED_SERVICE_LABEL.to_string(), "true".to_string()),
                (CLUSTER_NAME_LABEL.to_string(), target.name.clone()),
            ]),
        })
    } else {
        return Plan::Absent {
            mode,
            local_name,
            outcome: Outcome::MissingNamespace,
        };
    };

    let gateway = if mode == MirrorMode::Gateway {
        let Some(gw) = &target.spec.gateway else {
            return Plan::Hold {
                mode,
                local_name,
                outcome: Outcome::Invalid(format!(
                    "cluster {:?} has no gateway: gateway-mode mirrors cannot get endpoints",
                    target.name
                )),
            };
        };
        if ctx.gateway.addresses.is_empty() {
            return Plan::Hold {
                mode,
                local_name,
                outcome: Outcome::Invalid(format!(
                    "no gateway address of cluster {:?} resolved ({})",
                    target.name,
                    gw.addresses.join(",")
                )),
            };
        }
        Some((gw.port as i32, gw.identity.as_str()))
    } else {
        None
    };

    let headless = mode == MirrorMode::Gateway
        && spec.enable_headless_services
        && svc.headless
        && endpoints.is_some_and(RemoteEndpoints::has_hostnames);
    if headless && svc.ports.is_empty() {
        return Plan::Absent {
            mode,
            local_name,
            outcome: Outcome::Invalid(
                "Skipped mirroring service: object spec has no exposed ports".into(),
            ),
        };
    }

    let domain = &target.spec.cluster_domain;
    let fq = remote_fq_name(&svc.name, &svc.namespace, domain);
    let base_labels = mirror_labels(ctx, svc);

    let mut service_labels = base_labels.clone();
    if mode == MirrorMode::RemoteDiscovery {
        service_labels.insert(REMOTE_DISCOVERY_KEY.to_string(), target.name.clone());
        service_labels.insert(REMOTE_SERVICE_LABEL.to_string(), svc.name.clone());
    }
    let mut annotations = copied_annotations(&svc.annotations, &spec.excluded_annotations);
    annotations.insert(REMOTE_SVC_FQ_NAME_ANNOTATION.to_string(), fq.clone());
    annotations.insert(
        REMOTE_RESOURCE_VERSION_ANNOTATION.to_string(),
        svc.resource_version.clone(),
    );
    add_full_name(&mut annotations, &name);
    let service = DesiredService {
        namespace: svc.namespace.clone(),
        name: local_name.clone(),
        labels: service_labels,
        annotations,
        ports: mirror_ports(&svc.ports),
        headless,
    };

    let mut endpoint_mirrors = Vec::new();
    let endpoints = gateway.map(|(gw_port, identity)| {
        let annotations = endpoints_annotations(&fq, identity);
        let subsets = match endpoints {
            Some(eps) if headless => {
                let root = Root {
                    labels: &base_labels,
                    name: &local_name,
                    gw_port,
                    identity,
                };
                let (subsets, mirrors) = headless_subsets(ctx, svc, eps, &root, observed);
                endpoint_mirrors = mirrors;
                subsets
            }
            Some(eps) if eps.has_ready_addresses() => {
                gateway_subsets(&svc.ports, ctx.gateway, gw_port)
            }
            _ => vec![],
        };
        DesiredEndpoints {
            namespace: svc.namespace.clone(),
            name: local_name.clone(),
            labels: base_labels.clone(),
            annotations,
            subsets,
        }
    });

    Plan::Mirror(Box::new(DesiredMirror {
        mode,
        namespace,
        service,
        endpoints,
        endpoint_mirrors,
    }))
}

/// Copied labels plus the ownership labels every mirror object carries.
fn mirror_labels(ctx: &MirrorContext<'_>, svc: &RemoteService) -> BTreeMap<String, String> {
    let mut labels = copied_labels(&svc.labels, &ctx.link.spec.excluded_labels);
    labels.insert(MIRRORED_SERVICE_LABEL.to_string(), "true".to_string());
    labels.insert(CLUSTER_NAME_LABEL.to_string(), ctx.target.name.clone());
    labels.insert(LINKPLANE_REMOTE_SERVICE_LABEL.to_string(), svc.name.clone());
    labels
}

fn add_full_name(annotations: &mut BTreeMap<String, String>, name: &GeneratedName) {
    if let Some(full) = &name.full_name {
        annotations.insert(FULL_NAME_ANNOTATION.to_string(), full.clone());
    }
}

fn endpoints_annotations(fq: &str, identity: &str) -> BTreeMap<String, String> {
    let mut annotations =
        BTreeMap::from([(REMOTE_SVC_FQ_NAME_ANNOTATION.to_string(), fq.to_string())]);
    if !identity.is_empty() {
        annotations.insert(
            REMOTE_GATEWAY_IDENTITY_ANNOTATION.to_string(),
            identity.to_string(),
        );
    }
    annotations
}

/// `name`, `protocol`, `port`, `targetPort` of each remote port; `nodePort`/`appProtocol` dropped.
fn mirror_ports(ports: &[ServicePort]) -> Vec<ServicePort> {
    ports.to_vec()
}

/// One subset on the gateway addresses, each Service port at the gateway port; addresses are
/// not-ready while the gateway is dead. No subset at all when the Service has no ports.
fn gateway_subsets(ports: &[ServicePort], gw: &GatewayView, gw_port: i32) -> Vec<DesiredSubset> {
    if ports.is_empty() {
        return vec![];
    }
    let addresses = gw
        .addresses
        .iter()
        .map(|ip| DesiredAddress {
            ip: AddressIp::Ip(ip.clone()),
            hostname: None,
        })
        .collect();
    let ports = ports
        .iter()
        .map(|p| EndpointPort {
            name: p.name.clone(),
            protocol: p.protocol.clone(),
            port: gw_port,
        })
        .collect();
    vec![with_liveness(addresses, ports, gw.alive)]
}

fn with_liveness(
    addresses: Vec<DesiredAddress>,
    ports: Vec<EndpointPort>,
    alive: bool,
) -> DesiredSubset {
    if alive {
        DesiredSubset {
            addresses,
            not_ready_addresses: vec![],
            ports,
        }
    } else {
        DesiredSubset {
            addresses: vec![],
            not_ready_addresses: addresses,
            ports,
        }
    }
}

/// What every endpoint mirror of a headless root shares.
struct Root<'a> {
    labels: &'a BTreeMap<String, String>,
    name: &'a str,
    gw_port: i32,
    identity: &'a str,
}

/// The headless root's subsets (each ready named address → the ClusterIP of its endpoint
/// mirror, container ports verbatim) and the per-host endpoint mirrors (§5).
fn headless_subsets(
    ctx: &MirrorContext<'_>,
    svc: &RemoteService,
    eps: &RemoteEndpoints,
    root: &Root<'_>,
    observed: &Observed,
) -> (Vec<DesiredSubset>, Vec<EndpointMirror>) {
    let target = ctx.target;
    let domain = &target.spec.cluster_domain;
    let mut subsets = Vec::new();
    let mut mirrors = Vec::new();
    let mut seen = BTreeSet::new();
    for subset in &eps.subsets {
        let mut addresses = Vec::new();
        for addr in &subset.addresses {
            let Some(host) = addr.hostname.as_deref().filter(|h| !h.is_empty()) else {
                continue;
            };
            let name = endpoint_mirror_name(host, &target.name);
            addresses.push(DesiredAddress {
                ip: AddressIp::ClusterIpOf(name.name.clone()),
                hostname: Some(host.to_string()),
            });
            if !seen.insert(name.name.clone()) {
                continue;
            }
            let mut labels = root.labels.clone();
            labels.insert(
                HEADLESS_MIRROR_SVC_NAME_LABEL.to_string(),
                root.name.to_string(),
            );
            let host_fq = format!(
                "{host}.{}",
                remote_fq_name(&svc.name, &svc.namespace, domain)
            );
            // The version it was written with, while its own pod keeps its address.
            let version = observed
                .endpoint_mirrors
                .get(&name.name)
                .filter(|o| o.remote_address.as_deref() == Some(addr.ip.as_str()))
                .and_then(|o| o.resource_version.clone())
                .unwrap_or_else(|| eps.resource_version.clone());
            let mut annotations = BTreeMap::from([
                (REMOTE_RESOURCE_VERSION_ANNOTATION.to_string(), version),
                (REMOTE_SVC_FQ_NAME_ANNOTATION.to_string(), host_fq.clone()),
                (REMOTE_ADDRESS_ANNOTATION.to_string(), addr.ip.clone()),
            ]);
            add_full_name(&mut annotations, &name);
            mirrors.push(EndpointMirror {
                service: DesiredService {
                    namespace: svc.namespace.clone(),
                    name: name.name.clone(),
                    labels: labels.clone(),
                    annotations,
                    ports: mirror_ports(&svc.ports),
                    headless: false,
                },
                endpoints: DesiredEndpoints {
                    namespace: svc.namespace.clone(),
                    name: name.name,
                    labels,
                    annotations: endpoints_annotations(&host_fq, root.identity),
                    subsets: gateway_subsets(&svc.ports, ctx.gateway, root.gw_port),
                },
            });
        }
        if !addresses.is_empty() {
            subsets.push(with_liveness(
                addresses,
                subset.ports.clone(),
                ctx.gateway.alive,
            ));
        }
    }
    (subsets, mirrors)
}

#[cfg(test)]
mod tests;
