//! One federation reconcile: gather the candidates of `(namespace, service)` for a source
//! cluster from the indexes, plan with [`plan_federated`], write with the mirror's applier
//! (Service only, never Endpoints) and record the state.

use std::sync::Arc;

use linkplane_core::{
    MirrorMode,
    naming::federated_service_name,
    plan::{
        RemoteService,
        federation::{
            FederatedPlan, FederationContext, FederationOutcome, LocalObject, Member,
            MemberState as PlannedState, plan_federated,
        },
    },
    policy::{ExportRequest, evaluate},
    selector::selects,
};
use linkplane_store::federation::{FederatedState, FederatedStatus, MemberState, MemberStatus};
use tracing::Instrument;

use super::state::FedKey;
use crate::{
    apply::{Applier, Ensured},
    cluster::ClusterRuntime,
    error::Result,
    ownership::{Ownership, is_collectable, is_generated, is_owned_federated},
    shared::Shared,
    slim::SlimService,
    worker::run_worker,
};

/// Runs federation reconciles from `rt`'s federation queue forever.
pub(super) async fn worker(rt: Arc<ClusterRuntime>, shared: Arc<Shared>) {
    let (rt, shared) = (&rt, &shared);
    run_worker(
        &rt.federation,
        rt,
        shared,
        "federation",
        |key: FedKey| async move {
            let span = tracing::info_span!(
                "federate",
                cluster = %rt.cluster.name,
                namespace = %key.namespace,
                service = %key.service
            );
            if !shared.leases.may_write(&rt.cluster.name) {
                // Fencing: another replica owns this cluster (or our lease lapsed).
                return Ok(());
            }
            reconcile(rt, shared, &key).instrument(span).await
        },
    )
    .await;
}

/// A candidate as copied out of an index (the plan borrows from these).
struct Candidate {
    cluster: String,
    is_local: bool,
    service: RemoteService,
    created_at: Option<chrono::DateTime<chrono::Utc>>,
    reachable: bool,
    excluded_labels: Vec<String>,
    excluded_annotations: Vec<String>,
}

/// What the indexes say about one key, or `None` to hold (an index not listed yet).
struct Inputs {
    candidates: Vec<Candidate>,
    namespace_exists: bool,
    create_namespace: bool,
    local_object: LocalObject,
    /// The owned federated Service may be deleted (it carries a discovery annotation).
    collectable: bool,
}

fn gather(rt: &ClusterRuntime, shared: &Shared, key: &FedKey) -> Option<Inputs> {
    let snap = shared.snapshot();
    let source = &rt.cluster.name;
    let source_cluster = snap.clusters.get(source)?;
    let links: Vec<_> = snap.links_into(source).collect();
    let mut candidates = Vec::new();
    let fed_name = federated_service_name(&key.service).name;
    let (namespace_exists, local_object, collectable) = {
        let idx = rt.index();
        if let Some(s) = idx.services.get(&key.namespace, &key.service) {
            let lender = links.iter().find(|l| {
                selects(
                    l.link.spec.federated_service_selector.as_ref(),
                    &s.service.labels,
                )
            });
            if let (Some(l), false) = (lender, is_generated(s)) {
                candidates.push(Candidate {
                    cluster: source.clone(),
                    is_local: true,
                    service: s.service.clone(),
                    created_at: s.created_at,
                    reachable: true,
                    excluded_labels: l.link.spec.excluded_labels.clone(),
                    excluded_annotations: l.link.spec.excluded_annotations.clone(),
                });
            }
        }
        let local_object = match idx.services.get(&key.namespace, &fed_name) {
            None => LocalObject::Absent,
            Some(s) if is_owned_federated(s) => LocalObject::Owned,
            Some(_) => LocalObject::Foreign,
        };
        let collectable = idx
            .services
            .get(&key.namespace, &fed_name)
            .is_some_and(is_collectable);
        (idx.has_namespace(&key.namespace), local_object, collectable)
    };
    for l in &links {
        let spec = &l.link.spec;
        if spec.target == *source || candidates.iter().any(|c| c.cluster == spec.target) {
            continue;
        }
        let (Some(target_rt), Some(target_cluster)) = (
            shared.runtime(&spec.target),
            snap.clusters.get(&spec.target),
        ) else {
            continue;
        };
        if !target_rt.is_synced() {
            // Never listed: its members are unknown, not absent.
            return None;
        }
        let idx = target_rt.index();
        let Some(s) = idx.services.get(&key.namespace, &key.service) else {
            continue;
        };
        if is_generated(s) || !selects(spec.federated_service_selector.as_ref(), &s.service.labels)
        {
            continue;
        }
        let allowed = evaluate(
            &snap.policies,
            &ExportRequest {
                target: target_cluster,
                consumer: source_cluster,
                namespace: &key.namespace,
                service_labels: &s.service.labels,
                mode: MirrorMode::Federated,
            },
        )
        .is_allowed();
        if !allowed {
            continue;
        }
        candidates.push(Candidate {
            cluster: spec.target.clone(),
            is_local: false,
            service: s.service.clone(),
            created_at: s.created_at,
            reachable: !target_rt.is_failing(),
            excluded_labels: spec.excluded_labels.clone(),
            excluded_annotations: spec.excluded_annotations.clone(),
        });
    }
    Some(Inputs {
        candidates,
        namespace_exists,
        create_namespace: links.iter().any(|l| l.link.spec.create_namespaces),
        local_object,
        collectable,
    })
}

async fn reconcile(rt: &Arc<ClusterRuntime>, shared: &Shared, key: &FedKey) -> Result<()> {
    // Until the source's own objects (its federated Services among them) listed once, and while
    // it is unreachable, hold.
    if !rt.knows_mirrors() || rt.is_failing() {
        return Ok(());
    }
    let Some(client) = rt.client() else {
        return Ok(());
    };
    let Some(inputs) = gather(rt, shared, key) else {
        return Ok(());
    };
    let members: Vec<Member<'_>> = inputs
        .candidates
        .iter()
        .map(|c| Member {
            cluster: &c.cluster,
            is_local: c.is_local,
            service: &c.service,
            created_at: c.created_at,
            reachable: c.reachable,
            excluded_labels: &c.excluded_labels,
            excluded_annotations: &c.excluded_annotations,
        })
        .collect();
    let ctx = FederationContext {
        namespace: &key.namespace,
        service: &key.service,
        namespace_exists: inputs.namespace_exists,
        create_namespace: inputs.create_namespace,
        local_object: inputs.local_object,
    };
    let plan = plan_federated(&ctx, &members);
    let source = rt.cluster.name.as_str();
    let applier = Applier {
        client,
        rt,
        metrics: &shared.metrics,
        owner: Ownership::Federated,
    };
    let fed = &shared.federation;
    if let Some(ns) = &plan.namespace {
        applier.create_namespace(ns).await?;
    }
    let mut written_conflict = None;
    match &plan.service {
        Some(d) => match applier.ensure_service(d).await {
            Ok(Ensured::Ok(_)) => {}
            Ok(Ensured::Conflict(m)) => written_conflict = Some(m),
            Err(e) => {
                if e.kind() != "conflict" && e.kind() != "retry" {
                    fed.record(status(source, key, &plan, FederatedState::Error, e.chain()));
                }
                return Err(e);
            }
        },
        None if inputs.collectable => {
            applier
                .delete::<SlimService>(&key.namespace, &plan.local_name, "no-members")
                .await?;
        }
        None => {}
    }
    let (state, message) = match (&plan.outcome, written_conflict) {
        (_, Some(m)) => (FederatedState::Conflict, m),
        (FederationOutcome::Empty, None) => {
            fed.forget(source, &key.namespace, &key.service);
            return Ok(());
        }
        (FederationOutcome::Federated, None) => (FederatedState::Federated, String::new()),
        (FederationOutcome::Conflict(m), None) => (FederatedState::Conflict, m.clone()),
        (FederationOutcome::MissingNamespace, None) => (
            FederatedState::MissingNamespace,
            "Namespace does not exist".into(),
        ),
        (FederationOutcome::Rejected(m), None) => (FederatedState::Rejected, m.clone()),
    };
    fed.record(status(source, key, &plan, state, message));
    Ok(())
}

fn status(
    source: &str,
    key: &FedKey,
    plan: &FederatedPlan,
    state: FederatedState,
    message: String,
) -> FederatedStatus {
    FederatedStatus {
        source_cluster: source.to_string(),
        namespace: key.namespace.clone(),
        service: key.service.clone(),
        local_name: plan.local_name.clone(),
        state,
        message,
        remote_discovery: plan.remote_discovery.clone(),
        local_discovery: plan.local_discovery,
        members: plan
            .members
            .iter()
            .map(|m| {
                let (state, message) = match &m.state {
                    PlannedState::Member => (MemberState::Member, String::new()),
                    PlannedState::Unreachable => (
                        MemberState::Unreachable,
                        format!(
                            "cluster {} is unreachable; its last known Service stays listed",
                            m.cluster
                        ),
                    ),
                    PlannedState::Rejected(r) => (MemberState::Rejected, r.clone()),
                };
                MemberStatus {
                    cluster: m.cluster.clone(),
                    is_local: m.is_local,
                    state,
                    message,
                    member_since: m.created_at,
                }
            })
            .collect(),
    }
}
