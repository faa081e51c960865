//! Federated services: one `<svc>-federated` Service over every member (Linkerd §4), with
//! linkplane's additions.
//!
//! Rules, all decided here so they are unit-tested without I/O:
//! - **Members** are the candidates the reconciler found: the source cluster's own Service (the
//!   local member) and each linked target's Service, selected by the link's
//!   `federatedServiceSelector`. Headless members are **rejected** (visible state, never silent).
//! - **Annotation order** is deterministic: `multicluster.linkerd.io/remote-discovery` lists remote
//!   members sorted by cluster name, so restarts and event order never reshuffle it.
//! - **Source of truth** for labels, annotations and conflicting ports is the **oldest** member
//!   (creationTimestamp, then cluster name), as in the Kubernetes multi-cluster services API
//!   (KEP-1645: "the oldest export wins"). It is recomputed on every change, so when that member
//!   leaves the next-oldest takes over (Linkerd never recomputes).
//! - **Ports follow the members**: the union of admitted members' ports, keyed by port number.
//!   Two members defining the same number with a different name or protocol, or the same name on
//!   different numbers, conflict: the oldest definition wins and the state is `Conflict` with a
//!   message naming both. (Linkerd freezes ports at the first member's, its issue #13680.)
//! - **Unreachable members stay listed**: a member whose cluster cannot be reached keeps its last
//!   known Service in the annotation and ports (state `Unreachable`), so a network blip does not
//!   drain traffic from healthy clusters' clients' views or flap the Service. It leaves only when
//!   its cluster answers again without it.
//! - A `<svc>-federated` we did not create is never modified: `Conflict`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    DesiredNamespace, DesiredService, RemoteService, ServicePort,
    copy::{copied_annotations, copied_labels},
};
use crate::naming::{
    CLUSTER_NAME_LABEL, FULL_NAME_ANNOTATION, LOCAL_DISCOVERY_ANNOTATION, MIRRORED_SERVICE_LABEL,
    REMOTE_DISCOVERY_KEY, federated_service_name,
};

/// Why a headless Service cannot join (Linkerd's own message).
pub const HEADLESS_REJECTED: &str = "Headless service cannot join federated service";

/// One candidate member of a federated service.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    /// Cluster holding the member Service.
    pub cluster: &'a str,
    /// True for the source cluster's own Service.
    pub is_local: bool,
    /// The Service as last seen.
    pub service: &'a RemoteService,
    /// Its `creationTimestamp`; unknown sorts last.
    pub created_at: Option<DateTime<Utc>>,
    /// False when its cluster is currently unreachable (the Service is the last one seen).
    pub reachable: bool,
    /// Label exclusions of the link it came through.
    pub excluded_labels: &'a [String],
    /// Annotation exclusions of the link it came through.
    pub excluded_annotations: &'a [String],
}

/// What exists locally under the federated name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalObject {
    /// Nothing.
    Absent,
    /// A Service we created (`mirror.linkerd.io/mirrored-service` without `cluster-name`).
    Owned,
    /// A Service someone else created: never touched.
    Foreign,
}

/// Everything fixed for one federated service in one source cluster.
#[derive(Debug, Clone, Copy)]
pub struct FederationContext<'a> {
    /// The namespace (every member shares it).
    pub namespace: &'a str,
    /// The base service name (every member shares it).
    pub service: &'a str,
    /// Whether the namespace exists in the source cluster.
    pub namespace_exists: bool,
    /// Whether a link into this source cluster creates missing namespaces.
    pub create_namespace: bool,
    /// What exists locally under `<svc>-federated`.
    pub local_object: LocalObject,
}

/// A member's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberState {
    /// Listed.
    Member,
    /// Listed with its last known Service; its cluster is unreachable.
    Unreachable,
    /// Not admitted; the reason.
    Rejected(String),
}

/// One member as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMember {
    /// Cluster.
    pub cluster: String,
    /// Local member.
    pub is_local: bool,
    /// Outcome.
    pub state: MemberState,
    /// Creation time.
    pub created_at: Option<DateTime<Utc>>,
}

/// The federated service's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FederationOutcome {
    /// Written as planned.
    Federated,
    /// Written, but members disagree on ports (the message says how it was resolved); or blocked
    /// by a Service we do not own (nothing written).
    Conflict(String),
    /// The namespace is missing and no link creates it: nothing written.
    MissingNamespace,
    /// Members exist but none can join (e.g. all headless): nothing written.
    Rejected(String),
    /// No member at all: any owned federated Service is deleted and the state forgotten.
    Empty,
}

/// What should exist for one federated service in one source cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedPlan {
    /// The Service to write; `None` means delete an owned one (and write nothing).
    pub service: Option<DesiredService>,
    /// Namespace to create first.
    pub namespace: Option<DesiredNamespace>,
    /// The state to record.
    pub outcome: FederationOutcome,
    /// Members in annotation order: local first, then remote by cluster name; rejected last.
    pub members: Vec<PlannedMember>,
    /// The `remote-discovery` annotation value (empty when there is no remote member).
    pub remote_discovery: String,
    /// Whether `local-discovery` is set.
    pub local_discovery: bool,
    /// Name of the federated Service.
    pub local_name: String,
}

/// Plans the federated Service for `ctx` from its candidate `members`.
pub fn plan_federated(ctx: &FederationContext<'_>, members: &[Member<'_>]) -> FederatedPlan {
    let name = federated_service_name(ctx.service);
    let mut admitted: Vec<&Member<'_>> = members.iter().filter(|m| !m.service.headless).collect();
    // Oldest first: the source of truth is admitted[0].
    admitted.sort_by(|a, b| {
        (a.created_at.is_none(), a.created_at, a.cluster).cmp(&(
            b.created_at.is_none(),
            b.created_at,
            b.cluster,
        ))
    });
    let mut planned: Vec<PlannedMember> = Vec::with_capacity(members.len());
    let mut by_order: Vec<&Member<'_>> = admitted.clone();
    by_order.sort_by(|a, b| (!a.is_local, a.cluster).cmp(&(!b.is_local, b.cluster)));
    for m in &by_order {
        planned.push(PlannedMember {
            cluster: m.cluster.to_string(),
            is_local: m.is_local,
            state: if m.reachable {
                MemberState::Member
            } else {
                MemberState::Unreachable
            },
            created_at: m.created_at,
        });
    }
    let mut rejected: Vec<&Member<'_>> = members.iter().filter(|m| m.service.headless).collect();
    rejected.sort_by(|a, b| (!a.is_local, a.cluster).cmp(&(!b.is_local, b.cluster)));
    for m in &rejected {
        planned.push(PlannedMember {
            cluster: m.cluster.to_string(),
            is_local: m.is_local,
            state: MemberState::Rejected(HEADLESS_REJECTED.to_string()),
            created_at: m.created_at,
        });
    }
    let remote_discovery = by_order
        .iter()
        .filter(|m| !m.is_local)
        .map(|m| format!("{}@{}", ctx.service, m.cluster))
        .collect::<Vec<_>>()
        .join(",");
    let local_discovery = by_order.iter().any(|m| m.is_local);
    let mut plan = FederatedPlan {
        service: None,
        namespace: None,
        outcome: FederationOutcome::Empty,
        members: planned,
        remote_discovery,
        local_discovery,
        local_name: name.name.clone(),
    };
    let Some(oldest) = admitted.first() else {
        if !rejected.is_empty() {
            let who: Vec<String> = rejected
                .iter()
                .map(|m| format!("{}@{}", ctx.service, m.cluster))
                .collect();
            plan.outcome = FederationOutcome::Rejected(format!(
                "no member can join: {} ({HEADLESS_REJECTED})",
                who.join(", ")
            ));
        }
        return plan;
    };
    if ctx.local_object == LocalObject::Foreign {
        plan.outcome = FederationOutcome::Conflict(format!(
            "a Service named {} exists in namespace {} and was not created by linkplane; it is left untouched",
            name.name, ctx.namespace
        ));
        return plan;
    }
    if !ctx.namespace_exists {
        if !ctx.create_namespace {
            plan.outcome = FederationOutcome::MissingNamespace;
            return plan;
        }
        plan.namespace = Some(DesiredNamespace {
            name: ctx.namespace.to_string(),
            labels: BTreeMap::from([(MIRRORED_SERVICE_LABEL.to_string(), "true".to_string())]),
        });
    }
    let (ports, conflicts) = merge_ports(ctx.service, &admitted);
    let mut labels = copied_labels(&oldest.service.labels, oldest.excluded_labels);
    labels.remove(CLUSTER_NAME_LABEL);
    labels.insert(MIRRORED_SERVICE_LABEL.to_string(), "true".to_string());
    let mut annotations =
        copied_annotations(&oldest.service.annotations, oldest.excluded_annotations);
    annotations.remove(REMOTE_DISCOVERY_KEY);
    annotations.remove(LOCAL_DISCOVERY_ANNOTATION);
    if !plan.remote_discovery.is_empty() {
        annotations.insert(
            REMOTE_DISCOVERY_KEY.to_string(),
            plan.remote_discovery.clone(),
        );
    }
    if local_discovery {
        annotations.insert(
            LOCAL_DISCOVERY_ANNOTATION.to_string(),
            ctx.service.to_string(),
        );
    }
    if let Some(full) = &name.full_name {
        annotations.insert(FULL_NAME_ANNOTATION.to_string(), full.clone());
    }
    plan.service = Some(DesiredService {
        namespace: ctx.namespace.to_string(),
        name: name.name,
        labels,
        annotations,
        ports,
        headless: false,
    });
    plan.outcome = if conflicts.is_empty() {
        FederationOutcome::Federated
    } else {
        FederationOutcome::Conflict(conflicts.join("; "))
    };
    plan
}

/// Union of the members' ports, oldest definition first; returns the ports sorted by number and
/// one message per conflict.
fn merge_ports(service: &str, oldest_first: &[&Member<'_>]) -> (Vec<ServicePort>, Vec<String>) {
    let mut by_number: BTreeMap<i32, (ServicePort, &str)> = BTreeMap::new();
    let mut conflicts = Vec::new();
    let protocol = |p: &ServicePort| p.protocol.clone().unwrap_or_else(|| "TCP".into());
    for m in oldest_first {
        for p in &m.service.ports {
            let port = ServicePort {
                name: p.name.clone(),
                protocol: p.protocol.clone(),
                port: p.port,
                target_port: p.target_port.clone(),
            };
            if let Some((kept, owner)) = by_number.get(&p.port) {
                if kept.name != p.name || protocol(kept) != protocol(p) {
                    conflicts.push(format!(
                        "port {}: {service}@{owner} (oldest) defines {}/{}, {service}@{} defines {}/{}; using {service}@{owner}'s",
                        p.port,
                        kept.name.as_deref().unwrap_or(""),
                        protocol(kept),
                        m.cluster,
                        p.name.as_deref().unwrap_or(""),
                        protocol(p),
                    ));
                }
                continue;
            }
            let name_clash = p.name.as_ref().and_then(|n| {
                by_number
                    .values()
                    .find(|(k, _)| k.name.as_ref() == Some(n))
                    .map(|(k, owner)| (k.port, *owner))
            });
            if let Some((other, owner)) = name_clash {
                conflicts.push(format!(
                    "port name {:?}: {service}@{owner} (oldest) uses it for port {other}, {service}@{} for port {}; \
                     using {service}@{owner}'s",
                    p.name.as_deref().unwrap_or(""),
                    m.cluster,
                    p.port,
                ));
                continue;
            }
            by_number.insert(p.port, (port, m.cluster));
        }
    }
    (by_number.into_values().map(|(p, _)| p).collect(), conflicts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::IntOrString;
    use chrono::TimeZone;

    fn svc(ports: &[(&str, i32)]) -> RemoteService {
        RemoteService {
            namespace: "shop".into(),
            name: "web".into(),
            labels: BTreeMap::from([
                ("app".to_string(), "web".to_string()),
                (
                    "mirror.linkerd.io/federated".to_string(),
                    "member".to_string(),
                ),
            ]),
            annotations: BTreeMap::new(),
            ports: ports
                .iter()
                .map(|(n, p)| ServicePort {
                    name: Some(n.to_string()),
                    protocol: Some("TCP".into()),
                    port: *p,
                    target_port: Some(IntOrString::Int(*p)),
                })
                .collect(),
            headless: false,
            resource_version: "1".into(),
            service_export: false,
            session_affinity: None,
        }
    }

    fn at(secs: i64) -> Option<DateTime<Utc>> {
        Utc.timestamp_opt(secs, 0).single()
    }

    fn member<'a>(
        cluster: &'a str,
        local: bool,
        service: &'a RemoteService,
        created: i64,
    ) -> Member<'a> {
        Member {
            cluster,
            is_local: local,
            service,
            created_at: at(created),
            reachable: true,
            excluded_labels: &[],
            excluded_annotations: &[],
        }
    }

    fn ctx() -> FederationContext<'static> {
        FederationContext {
            namespace: "shop",
            service: "web",
            namespace_exists: true,
            create_namespace: false,
            local_object: LocalObject::Absent,
        }
    }

    #[test]
    fn three_members_including_local_get_linkerd_annotations_in_name_order() {
        let (a, b, c) = (
            svc(&[("http", 80)]),
            svc(&[("http", 80)]),
            svc(&[("http", 80)]),
        );
        let members = [
            member("west", false, &a, 3),
            member("local", true, &b, 2),
            member("east", false, &c, 1),
        ];
        let plan = plan_federated(&ctx(), &members);
        let s = plan.service.expect("service planned");
        assert_eq!(s.name, "web-federated");
        assert_eq!(
            s.annotations.get(REMOTE_DISCOVERY_KEY).map(String::as_str),
            Some("web@east,web@west")
        );
        assert_eq!(
            s.annotations
                .get(LOCAL_DISCOVERY_ANNOTATION)
                .map(String::as_str),
            Some("web")
        );
        assert_eq!(
            s.labels.get(MIRRORED_SERVICE_LABEL).map(String::as_str),
            Some("true")
        );
        assert!(!s.labels.contains_key(CLUSTER_NAME_LABEL));
        assert!(
            !s.labels.contains_key("mirror.linkerd.io/federated"),
            "mirror.linkerd.io labels never copied"
        );
        assert_eq!(plan.outcome, FederationOutcome::Federated);
        let order: Vec<&str> = plan.members.iter().map(|m| m.cluster.as_str()).collect();
        assert_eq!(order, ["local", "east", "west"]);
    }

    #[test]
    fn order_does_not_depend_on_input_order() {
        let (a, b) = (svc(&[("http", 80)]), svc(&[("http", 80)]));
        let one = plan_federated(
            &ctx(),
            &[member("b", false, &a, 1), member("a", false, &b, 2)],
        );
        let two = plan_federated(
            &ctx(),
            &[member("a", false, &b, 2), member("b", false, &a, 1)],
        );
        assert_eq!(one, two);
        assert_eq!(one.remote_discovery, "web@a,web@b");
    }

    #[test]
    fn ports_are_the_union_and_follow_member_changes() {
        let (a, b) = (svc(&[("http", 80)]), svc(&[("http", 80), ("grpc", 9090)]));
        let plan = plan_federated(
            &ctx(),
            &[member("east", false, &a, 1), member("west", false, &b, 2)],
        );
        let ports: Vec<i32> = plan
            .service
            .expect("planned")
            .ports
            .iter()
            .map(|p| p.port)
            .collect();
        assert_eq!(ports, [80, 9090]);
    }

    #[test]
    fn conflicting_port_definition_oldest_wins_and_is_reported() {
        let (old, young) = (svc(&[("http", 8080)]), svc(&[("grpc", 8080)]));
        let plan = plan_federated(
            &ctx(),
            &[
                member("west", false, &young, 20),
                member("east", false, &old, 10),
            ],
        );
        let s = plan.service.expect("still written");
        assert_eq!(s.ports.len(), 1);
        assert_eq!(s.ports[0].name.as_deref(), Some("http"));
        assert_eq!(
            plan.outcome,
            FederationOutcome::Conflict(
                "port 8080: web@east (oldest) defines http/TCP, web@west defines grpc/TCP; using web@east's".into()
            )
        );
    }

    #[test]
    fn same_port_name_on_different_numbers_conflicts() {
        let (old, young) = (svc(&[("http", 80)]), svc(&[("http", 8080)]));
        let plan = plan_federated(
            &ctx(),
            &[
                member("east", false, &old, 1),
                member("west", false, &young, 2),
            ],
        );
        assert_eq!(plan.service.expect("written").ports.len(), 1);
        assert!(
            matches!(plan.outcome, FederationOutcome::Conflict(ref m) if m.starts_with("port name \"http\""))
        );
    }

    #[test]
    fn metadata_comes_from_the_oldest_and_is_recomputed_when_it_leaves() {
        let mut old = svc(&[("http", 80)]);
        old.labels.insert("tier".into(), "gold".into());
        let mut young = svc(&[("http", 80)]);
        young.labels.insert("tier".into(), "silver".into());
        let both = plan_federated(
            &ctx(),
            &[
                member("east", false, &old, 1),
                member("west", false, &young, 2),
            ],
        );
        assert_eq!(
            both.service
                .expect("written")
                .labels
                .get("tier")
                .map(String::as_str),
            Some("gold")
        );
        let after_leave = plan_federated(&ctx(), &[member("west", false, &young, 2)]);
        assert_eq!(
            after_leave
                .service
                .expect("written")
                .labels
                .get("tier")
                .map(String::as_str),
            Some("silver")
        );
    }

    #[test]
    fn headless_member_is_rejected_visibly() {
        let ok = svc(&[("http", 80)]);
        let mut headless = svc(&[("http", 80)]);
        headless.headless = true;
        let plan = plan_federated(
            &ctx(),
            &[
                member("east", false, &ok, 1),
                member("west", false, &headless, 2),
            ],
        );
        assert_eq!(plan.remote_discovery, "web@east");
        assert_eq!(
            plan.members[1].state,
            MemberState::Rejected(HEADLESS_REJECTED.into())
        );
        let only = plan_federated(&ctx(), &[member("west", false, &headless, 2)]);
        assert!(only.service.is_none());
        assert_eq!(
            only.outcome,
            FederationOutcome::Rejected(format!(
                "no member can join: web@west ({HEADLESS_REJECTED})"
            ))
        );
    }

    #[test]
    fn no_member_means_delete() {
        let plan = plan_federated(&ctx(), &[]);
        assert_eq!(plan.outcome, FederationOutcome::Empty);
        assert!(plan.service.is_none());
    }

    #[test]
    fn foreign_federated_service_is_a_conflict_and_untouched() {
        let a = svc(&[("http", 80)]);
        let c = FederationContext {
            local_object: LocalObject::Foreign,
            ..ctx()
        };
        let plan = plan_federated(&c, &[member("east", false, &a, 1)]);
        assert!(plan.service.is_none());
        assert!(
            matches!(plan.outcome, FederationOutcome::Conflict(ref m) if m.contains("not created by linkplane"))
        );
    }

    #[test]
    fn missing_namespace_is_skipped_or_created() {
        let a = svc(&[("http", 80)]);
        let c = FederationContext {
            namespace_exists: false,
            ..ctx()
        };
        assert_eq!(
            plan_federated(&c, &[member("east", false, &a, 1)]).outcome,
            FederationOutcome::MissingNamespace
        );
        let c = FederationContext {
            namespace_exists: false,
            create_namespace: true,
            ..ctx()
        };
        let plan = plan_federated(&c, &[member("east", false, &a, 1)]);
        assert!(plan.namespace.is_some() && plan.service.is_some());
    }

    #[test]
    fn unreachable_member_stays_listed() {
        let (a, b) = (svc(&[("http", 80)]), svc(&[("http", 80)]));
        let mut down = member("west", false, &b, 2);
        down.reachable = false;
        let plan = plan_federated(&ctx(), &[member("east", false, &a, 1), down]);
        assert_eq!(plan.remote_discovery, "web@east,web@west");
        assert_eq!(plan.members[1].state, MemberState::Unreachable);
    }

    #[test]
    fn local_only_member_sets_only_local_discovery() {
        let a = svc(&[("http", 80)]);
        let plan = plan_federated(&ctx(), &[member("west", true, &a, 1)]);
        let s = plan.service.expect("written");
        assert!(!s.annotations.contains_key(REMOTE_DISCOVERY_KEY));
        assert_eq!(
            s.annotations
                .get(LOCAL_DISCOVERY_ANNOTATION)
                .map(String::as_str),
            Some("web")
        );
    }
}
