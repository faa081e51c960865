use std::collections::BTreeMap;

use super::*;
use crate::{
    Cluster, CredentialsRef, ExportPolicy, ExportPolicySpec, GatewaySpec, LabelSelector, Link,
    ProbeSpec,
    plan::{IntOrString, Observed, ObservedEndpointMirror, RemoteAddress, RemoteSubset},
    policy::NamespaceFilter,
};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn east() -> Cluster {
    let mut c = Cluster::new("east", "https://e", CredentialsRef::Stored);
    c.spec.gateway = Some(GatewaySpec {
        addresses: vec!["gw.east".into()],
        port: 4143,
        identity: "gw-id".into(),
        probe: ProbeSpec::default(),
    });
    c
}

fn west() -> Cluster {
    Cluster::new("west", "https://w", CredentialsRef::Stored)
}

fn gw(alive: bool) -> GatewayView {
    GatewayView {
        addresses: vec!["10.0.0.1".into(), "10.0.0.2".into()],
        alive,
    }
}

fn svc(labels: &[(&str, &str)]) -> RemoteService {
    RemoteService {
        namespace: "shop".into(),
        name: "web".into(),
        labels: map(labels),
        annotations: map(&[("team", "a")]),
        ports: vec![
            ServicePort {
                name: Some("http".into()),
                protocol: Some("TCP".into()),
                port: 80,
                target_port: Some(IntOrString::Int(8080)),
            },
            ServicePort {
                name: Some("grpc".into()),
                protocol: Some("TCP".into()),
                port: 9090,
                target_port: Some(IntOrString::String("grpc".into())),
            },
        ],
        headless: false,
        resource_version: "42".into(),
        service_export: false,
        session_affinity: None,
    }
}

fn ready_eps() -> RemoteEndpoints {
    RemoteEndpoints {
        resource_version: "7".into(),
        subsets: vec![RemoteSubset {
            addresses: vec![RemoteAddress {
                ip: "192.168.0.1".into(),
                hostname: None,
            }],
            not_ready_addresses: vec![],
            ports: vec![EndpointPort {
                name: Some("http".into()),
                protocol: Some("TCP".into()),
                port: 8080,
            }],
        }],
    }
}

const GATEWAY: &[(&str, &str)] = &[("mirror.linkerd.io/exported", "true"), ("app", "web")];
const FLAT: &[(&str, &str)] = &[
    ("mirror.linkerd.io/exported", "remote-discovery"),
    ("app", "web"),
];

struct Fx {
    link: Link,
    target: Cluster,
    source: Cluster,
    policies: Vec<ExportPolicy>,
    gateway: GatewayView,
}

impl Fx {
    fn new() -> Self {
        Self {
            link: Link::new("west-east", "west", "east"),
            target: east(),
            source: west(),
            policies: vec![],
            gateway: gw(true),
        }
    }
    fn plan(
        &self,
        svc: Option<&RemoteService>,
        eps: Option<&RemoteEndpoints>,
        ns_exists: bool,
    ) -> Plan {
        let ctx = MirrorContext {
            link: &self.link,
            target: &self.target,
            source: &self.source,
            policies: &self.policies,
            gateway: &self.gateway,
        };
        plan_service(&ctx, svc, eps, ns_exists)
    }
    fn mirror(&self, svc: &RemoteService, eps: Option<&RemoteEndpoints>) -> DesiredMirror {
        match self.plan(Some(svc), eps, true) {
            Plan::Mirror(m) => *m,
            other => panic!("expected a mirror, got {other:?}"),
        }
    }
}

#[test]
fn gateway_mode_mirror_service_has_linkerd_labels_annotations_and_ports() {
    let fx = Fx::new();
    let m = fx.mirror(&svc(GATEWAY), Some(&ready_eps()));
    assert_eq!(m.mode, MirrorMode::Gateway);
    assert_eq!(m.namespace, None);
    let s = &m.service;
    assert_eq!(
        (s.namespace.as_str(), s.name.as_str()),
        ("shop", "web-east")
    );
    assert_eq!(
        s.labels,
        map(&[
            ("app", "web"),
            ("mirror.linkerd.io/mirrored-service", "true"),
            ("mirror.linkerd.io/cluster-name", "east"),
            ("linkplane.io/remote-service", "web"),
        ])
    );
    assert_eq!(
        s.annotations,
        map(&[
            ("team", "a"),
            (
                "mirror.linkerd.io/remote-svc-fq-name",
                "web.shop.svc.cluster.local"
            ),
            ("mirror.linkerd.io/remote-resource-version", "42"),
        ])
    );
    assert_eq!(s.ports, svc(GATEWAY).ports);
    assert!(!s.headless);
}

#[test]
fn gateway_mode_endpoints_point_at_the_gateway_port_per_service_port() {
    let fx = Fx::new();
    let eps = fx
        .mirror(&svc(GATEWAY), Some(&ready_eps()))
        .endpoints
        .unwrap();
    assert_eq!(eps.name, "web-east");
    assert_eq!(
        eps.labels,
        map(&[
            ("app", "web"),
            ("mirror.linkerd.io/mirrored-service", "true"),
            ("mirror.linkerd.io/cluster-name", "east"),
            ("linkplane.io/remote-service", "web"),
        ])
    );
    assert_eq!(
        eps.annotations,
        map(&[
            (
                "mirror.linkerd.io/remote-svc-fq-name",
                "web.shop.svc.cluster.local"
            ),
            ("mirror.linkerd.io/remote-gateway-identity", "gw-id"),
        ])
    );
    assert_eq!(eps.subsets.len(), 1);
    let sub = &eps.subsets[0];
    assert_eq!(
        sub.addresses,
        vec![
            DesiredAddress {
                ip: AddressIp::Ip("10.0.0.1".into()),
                hostname: None
            },
            DesiredAddress {
                ip: AddressIp::Ip("10.0.0.2".into()),
                hostname: None
            },
        ]
    );
    assert!(sub.not_ready_addresses.is_empty());
    assert_eq!(
        sub.ports,
        vec![
            EndpointPort {
                name: Some("http".into()),
                protocol: Some("TCP".into()),
                port: 4143
            },
            EndpointPort {
                name: Some("grpc".into()),
                protocol: Some("TCP".into()),
                port: 4143
            },
        ]
    );
}

#[test]
fn endpoints_are_empty_when_target_has_no_ready_addresses_or_no_endpoints() {
    let fx = Fx::new();
    let mut not_ready = ready_eps();
    not_ready.subsets[0].not_ready_addresses = std::mem::take(&mut not_ready.subsets[0].addresses);
    for eps in [None, Some(&not_ready), Some(&RemoteEndpoints::default())] {
        let m = fx.mirror(&svc(GATEWAY), eps);
        assert_eq!(m.endpoints.unwrap().subsets, vec![], "{eps:?}");
    }
}

#[test]
fn dead_gateway_moves_every_address_to_not_ready() {
    let mut fx = Fx::new();
    fx.gateway = gw(false);
    let sub = fx
        .mirror(&svc(GATEWAY), Some(&ready_eps()))
        .endpoints
        .unwrap()
        .subsets
        .remove(0);
    assert!(sub.addresses.is_empty());
    assert_eq!(sub.not_ready_addresses.len(), 2);
}

#[test]
fn empty_gateway_identity_is_not_written() {
    let mut fx = Fx::new();
    fx.target.spec.gateway.as_mut().unwrap().identity = String::new();
    let eps = fx.mirror(&svc(GATEWAY), None).endpoints.unwrap();
    assert!(
        !eps.annotations
            .contains_key("mirror.linkerd.io/remote-gateway-identity")
    );
}

#[test]
fn remote_discovery_mirror_has_flat_labels_and_no_endpoints() {
    let fx = Fx::new();
    let m = fx.mirror(&svc(FLAT), Some(&ready_eps()));
    assert_eq!(m.mode, MirrorMode::RemoteDiscovery);
    assert_eq!(m.endpoints, None);
    assert_eq!(
        m.service.labels,
        map(&[
            ("app", "web"),
            ("mirror.linkerd.io/mirrored-service", "true"),
            ("mirror.linkerd.io/cluster-name", "east"),
            ("multicluster.linkerd.io/remote-discovery", "east"),
            ("multicluster.linkerd.io/remote-service", "web"),
            ("linkplane.io/remote-service", "web"),
        ])
    );
}

#[test]
fn remote_discovery_wins_when_both_selectors_match() {
    let mut fx = Fx::new();
    fx.link.spec.selector = Some(LabelSelector::label("app", "web"));
    assert_eq!(
        fx.mirror(&svc(FLAT), None).mode,
        MirrorMode::RemoteDiscovery
    );
}

#[test]
fn remote_discovery_does_not_need_a_gateway() {
    let mut fx = Fx::new();
    fx.target.spec.gateway = None;
    fx.gateway.addresses.clear();
    assert_eq!(
        fx.mirror(&svc(FLAT), None).mode,
        MirrorMode::RemoteDiscovery
    );
}

#[test]
fn unlabelled_or_deleted_services_are_not_selected() {
    let fx = Fx::new();
    assert_eq!(
        fx.plan(Some(&svc(&[("app", "web")])), None, true),
        Plan::Unselected
    );
    assert_eq!(fx.plan(None, None, true), Plan::Unselected);
}

#[test]
fn empty_selector_selects_nothing() {
    let mut fx = Fx::new();
    fx.link.spec.selector = Some(LabelSelector::default());
    fx.link.spec.remote_discovery_selector = None;
    assert_eq!(fx.plan(Some(&svc(GATEWAY)), None, true), Plan::Unselected);
}

#[test]
fn missing_namespace_is_skipped_unless_the_link_creates_namespaces() {
    let mut fx = Fx::new();
    assert_eq!(
        fx.plan(Some(&svc(GATEWAY)), None, false),
        Plan::Absent {
            mode: MirrorMode::Gateway,
            local_name: "web-east".into(),
            outcome: Outcome::MissingNamespace
        }
    );
    fx.link.spec.create_namespaces = true;
    let Plan::Mirror(m) = fx.plan(Some(&svc(GATEWAY)), None, false) else {
        panic!("expected a mirror")
    };
    assert_eq!(
        m.namespace,
        Some(DesiredNamespace {
            name: "shop".into(),
            labels: map(&[
                ("mirror.linkerd.io/mirrored-service", "true"),
                ("mirror.linkerd.io/cluster-name", "east"),
            ])
        })
    );
}

#[test]
fn policy_denial_is_reported_with_the_policies_consulted() {
    let mut fx = Fx::new();
    fx.policies = vec![ExportPolicy {
        name: "only-prod".into(),
        spec: ExportPolicySpec {
            target_cluster_selector: None,
            namespaces: NamespaceFilter {
                allow: vec!["prod-*".into()],
                deny: vec![],
            },
            service_selector: None,
            modes: MirrorMode::ALL.to_vec(),
            consumer_cluster_selector: None,
        },
    }];
    assert_eq!(
        fx.plan(Some(&svc(GATEWAY)), None, true),
        Plan::Absent {
            mode: MirrorMode::Gateway,
            local_name: "web-east".into(),
            outcome: Outcome::PolicyDenied(vec!["only-prod".into()])
        }
    );
    fx.policies[0].spec.namespaces.allow.push("shop".into());
    assert!(matches!(
        fx.plan(Some(&svc(GATEWAY)), None, true),
        Plan::Mirror(_)
    ));
}

#[test]
fn policy_modes_are_checked_against_the_selected_mode() {
    let mut fx = Fx::new();
    fx.policies = vec![ExportPolicy {
        name: "flat-only".into(),
        spec: ExportPolicySpec {
            target_cluster_selector: None,
            namespaces: NamespaceFilter::default(),
            service_selector: None,
            modes: vec![MirrorMode::RemoteDiscovery],
            consumer_cluster_selector: None,
        },
    }];
    assert!(matches!(
        fx.plan(Some(&svc(GATEWAY)), None, true),
        Plan::Absent {
            outcome: Outcome::PolicyDenied(_),
            ..
        }
    ));
    assert!(matches!(
        fx.plan(Some(&svc(FLAT)), None, true),
        Plan::Mirror(_)
    ));
}

#[test]
fn gateway_mode_without_gateway_holds_with_a_reason() {
    let mut fx = Fx::new();
    fx.target.spec.gateway = None;
    let Plan::Hold { outcome, .. } = fx.plan(Some(&svc(GATEWAY)), None, true) else {
        panic!("expected hold")
    };
    assert!(matches!(outcome, Outcome::Invalid(m) if m.contains("no gateway")));
    let mut fx = Fx::new();
    fx.gateway.addresses.clear();
    let Plan::Hold { outcome, .. } = fx.plan(Some(&svc(GATEWAY)), None, true) else {
        panic!("expected hold")
    };
    assert!(matches!(outcome, Outcome::Invalid(m) if m.contains("gw.east")));
}

#[test]
fn excluded_labels_and_annotations_are_not_copied_but_opaque_ports_are() {
    let mut fx = Fx::new();
    fx.link.spec.excluded_labels = vec!["evil.io/*".into(), "app".into()];
    fx.link.spec.excluded_annotations = vec!["config.linkerd.io/*".into(), "team".into()];
    let mut s = svc(GATEWAY);
    s.labels.insert("evil.io/x".into(), "1".into());
    s.labels.insert("keep".into(), "1".into());
    s.annotations
        .insert("config.linkerd.io/opaque-ports".into(), "3306".into());
    s.annotations
        .insert("service.kubernetes.io/topology-mode".into(), "auto".into());
    let m = fx.mirror(&s, None);
    assert_eq!(m.service.labels.get("keep").map(String::as_str), Some("1"));
    assert!(!m.service.labels.contains_key("app"));
    assert!(!m.service.labels.contains_key("evil.io/x"));
    assert!(!m.service.labels.contains_key("mirror.linkerd.io/exported"));
    assert!(!m.service.annotations.contains_key("team"));
    assert!(
        !m.service
            .annotations
            .contains_key("service.kubernetes.io/topology-mode")
    );
    assert_eq!(
        m.service
            .annotations
            .get("config.linkerd.io/opaque-ports")
            .map(String::as_str),
        Some("3306")
    );
    // Excluded labels are not copied onto Endpoints either.
    assert!(!m.endpoints.unwrap().labels.contains_key("app"));
}

#[test]
fn long_names_are_shortened_with_the_full_name_annotation() {
    let fx = Fx::new();
    let mut s = svc(GATEWAY);
    s.name = "a-service-with-a-really-quite-long-name-that-goes-on-for-ever".into();
    let m = fx.mirror(&s, None);
    assert!(m.service.name.len() <= 63, "{}", m.service.name);
    assert_eq!(
        m.service
            .annotations
            .get("linkplane.io/full-name")
            .map(String::as_str),
        Some(format!("{}-east", s.name).as_str())
    );
    assert_eq!(
        m.service
            .labels
            .get("linkplane.io/remote-service")
            .map(String::as_str),
        Some(s.name.as_str())
    );
    assert_eq!(m.endpoints.unwrap().name, m.service.name);
}

fn headless_fx() -> (Fx, RemoteService, RemoteEndpoints) {
    let mut fx = Fx::new();
    fx.link.spec.enable_headless_services = true;
    let mut s = svc(GATEWAY);
    s.headless = true;
    let eps = RemoteEndpoints {
        resource_version: "99".into(),
        subsets: vec![RemoteSubset {
            addresses: vec![
                RemoteAddress {
                    ip: "192.168.0.1".into(),
                    hostname: Some("web-0".into()),
                },
                RemoteAddress {
                    ip: "192.168.0.2".into(),
                    hostname: None,
                },
                RemoteAddress {
                    ip: "192.168.0.3".into(),
                    hostname: Some("web-1".into()),
                },
            ],
            not_ready_addresses: vec![RemoteAddress {
                ip: "192.168.0.4".into(),
                hostname: Some("web-2".into()),
            }],
            ports: vec![EndpointPort {
                name: Some("http".into()),
                protocol: Some("TCP".into()),
                port: 8080,
            }],
        }],
    };
    (fx, s, eps)
}

#[test]
fn headless_service_gets_per_host_endpoint_mirrors() {
    let (fx, s, eps) = headless_fx();
    let m = fx.mirror(&s, Some(&eps));
    assert!(m.service.headless);
    let names: Vec<_> = m
        .endpoint_mirrors
        .iter()
        .map(|e| e.service.name.as_str())
        .collect();
    assert_eq!(names, ["web-0-east", "web-1-east"]);
    let em = &m.endpoint_mirrors[0];
    assert_eq!(
        em.service
            .labels
            .get("mirror.linkerd.io/headless-mirror-svc-name")
            .map(String::as_str),
        Some("web-east")
    );
    assert_eq!(
        em.service.annotations,
        map(&[
            ("mirror.linkerd.io/remote-resource-version", "99"),
            (
                "mirror.linkerd.io/remote-svc-fq-name",
                "web-0.web.shop.svc.cluster.local"
            ),
            ("linkplane.io/remote-address", "192.168.0.1"),
        ])
    );
    assert!(!em.service.headless);
    assert_eq!(em.endpoints.subsets[0].ports[0].port, 4143);
    let root = m.endpoints.unwrap();
    assert_eq!(root.subsets.len(), 1);
    assert_eq!(
        root.subsets[0].addresses,
        vec![
            DesiredAddress {
                ip: AddressIp::ClusterIpOf("web-0-east".into()),
                hostname: Some("web-0".into())
            },
            DesiredAddress {
                ip: AddressIp::ClusterIpOf("web-1-east".into()),
                hostname: Some("web-1".into())
            },
        ]
    );
    // Container ports are copied verbatim onto the root's Endpoints.
    assert_eq!(root.subsets[0].ports[0].port, 8080);
}

#[test]
fn headless_without_hostnames_or_with_headless_disabled_is_a_plain_gateway_mirror() {
    let (mut fx, s, mut eps) = headless_fx();
    fx.link.spec.enable_headless_services = false;
    let m = fx.mirror(&s, Some(&eps));
    assert!(!m.service.headless && m.endpoint_mirrors.is_empty());
    fx.link.spec.enable_headless_services = true;
    for sub in &mut eps.subsets {
        for a in sub.addresses.iter_mut().chain(&mut sub.not_ready_addresses) {
            a.hostname = None;
        }
    }
    let m = fx.mirror(&s, Some(&eps));
    assert!(!m.service.headless && m.endpoint_mirrors.is_empty());
    assert_eq!(m.endpoints.unwrap().subsets.len(), 1);
}

#[test]
fn headless_service_without_ports_is_invalid() {
    let (fx, mut s, eps) = headless_fx();
    s.ports.clear();
    assert!(matches!(
        fx.plan(Some(&s), Some(&eps), true),
        Plan::Absent {
            outcome: Outcome::Invalid(_),
            ..
        }
    ));
}

#[test]
fn headless_root_endpoints_follow_gateway_liveness() {
    let (mut fx, s, eps) = headless_fx();
    fx.gateway.alive = false;
    let m = fx.mirror(&s, Some(&eps));
    let root = m.endpoints.unwrap();
    assert!(root.subsets[0].addresses.is_empty());
    assert_eq!(root.subsets[0].not_ready_addresses.len(), 2);
    assert!(
        m.endpoint_mirrors[0].endpoints.subsets[0]
            .addresses
            .is_empty()
    );
}

#[test]
fn target_cluster_domain_is_used_in_the_fq_name() {
    let mut fx = Fx::new();
    fx.target.spec.cluster_domain = "east.example".into();
    let m = fx.mirror(&svc(GATEWAY), None);
    assert_eq!(
        m.service
            .annotations
            .get("mirror.linkerd.io/remote-svc-fq-name")
            .map(String::as_str),
        Some("web.shop.svc.east.example")
    );
}

/// Issue 14 / linkerd-compat §5: one pod of a headless Service changing moves the remote
/// Endpoints' resourceVersion, but only that pod's endpoint mirror takes the new version; the
/// others keep theirs and are not rewritten.
#[test]
fn endpoint_mirrors_keep_their_version_until_their_own_address_changes() {
    let (fx, s, mut eps) = headless_fx();
    let first = fx.mirror(&s, Some(&eps));
    let observed = Observed {
        endpoint_mirrors: first
            .endpoint_mirrors
            .iter()
            .map(|em| {
                let a = &em.service.annotations;
                (
                    em.service.name.clone(),
                    ObservedEndpointMirror {
                        remote_address: a.get("linkplane.io/remote-address").cloned(),
                        resource_version: a
                            .get("mirror.linkerd.io/remote-resource-version")
                            .cloned(),
                    },
                )
            })
            .collect(),
    };
    // web-1 moves to a new pod IP.
    eps.resource_version = "100".into();
    eps.subsets[0].addresses[2].ip = "192.168.0.9".into();
    let ctx = MirrorContext {
        link: &fx.link,
        target: &fx.target,
        source: &fx.source,
        policies: &fx.policies,
        gateway: &fx.gateway,
    };
    let Plan::Mirror(m) = plan_service_observed(&ctx, Some(&s), Some(&eps), true, &observed) else {
        panic!("expected a mirror")
    };
    let version = |i: usize| {
        m.endpoint_mirrors[i].service.annotations["mirror.linkerd.io/remote-resource-version"]
            .clone()
    };
    assert_eq!(
        m.endpoint_mirrors[0].service,
        first.endpoint_mirrors[0].service
    );
    assert_eq!(version(0), "99", "web-0 did not change");
    assert_eq!(version(1), "100", "web-1 moved");
    assert_eq!(
        m.endpoint_mirrors[1].service.annotations["linkplane.io/remote-address"],
        "192.168.0.9"
    );
    // Without knowledge of the source (first write), every endpoint mirror gets the current one.
    let fresh = fx.mirror(&s, Some(&eps));
    assert_eq!(
        fresh.endpoint_mirrors[0].service.annotations["mirror.linkerd.io/remote-resource-version"],
        "100"
    );
}
