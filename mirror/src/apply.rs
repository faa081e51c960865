//! The applier: plans one `(link, namespace, service)` key from the indexes and makes the
//! source cluster match with the fewest writes (an object whose owned fields already match is
//! never rewritten). Local objects we do not own are never touched.

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::api::core::v1::{Endpoints, Namespace, Service};
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
};
use linkplane_core::{
    MirrorMode,
    naming::{
        CLUSTER_NAME_LABEL, HEADLESS_MIRROR_SVC_NAME_LABEL, MIRRORED_SERVICE_LABEL,
        REMOTE_ADDRESS_ANNOTATION, REMOTE_RESOURCE_VERSION_ANNOTATION, mirror_service_name,
    },
    plan::{
        DesiredEndpoints, DesiredMirror, DesiredNamespace, DesiredService, MirrorContext, Observed,
        ObservedEndpointMirror, Outcome, Plan, mirror::plan_service_observed,
    },
};
use linkplane_store::mirrors::{MirrorState, MirrorStatus};
use tracing::Instrument;

use crate::{
    Metrics,
    convert::{
        endpoints_diff, endpoints_object, index_endpoints, index_service, namespace_object,
        resolve_endpoints, service_diff, service_object,
    },
    error::{Error, Result},
    events::{EventType, Regarding},
    index::IndexedService,
    ownership::Ownership,
    queue::Retry,
    runtime::{ClusterRuntime, Kind, MirrorKey, Shared},
    slim::{SlimEndpoints, SlimService},
    status::StatusMsg,
};

/// Runs reconciles from `rt`'s queue forever (one of `concurrency` workers).
pub(crate) async fn worker(rt: Arc<ClusterRuntime>, shared: Arc<Shared>) {
    let (rt, shared) = (&rt, &shared);
    crate::queue::run_worker(
        &rt.queue,
        &rt.cluster.name,
        &shared.metrics,
        "mirror",
        |key: MirrorKey| async move {
            let span = tracing::info_span!(
                "reconcile",
                cluster = %rt.cluster.name,
                link = %key.link,
                namespace = %key.namespace,
                service = %key.service
            );
            reconcile(rt, shared, &key).instrument(span).await
        },
    )
    .await;
}

enum Applied {
    Done,
    Conflict(String),
}

async fn reconcile(rt: &Arc<ClusterRuntime>, shared: &Shared, key: &MirrorKey) -> Result<()> {
    let snap = shared.snapshot();
    let Some(entry) = snap.links.get(&key.link) else {
        return Ok(());
    };
    let link = &entry.link;
    if entry.paused || link.spec.source != rt.cluster.name {
        return Ok(());
    }
    // Fencing, once per write batch (the client checks again per request): another replica
    // holds this cluster, or our lease lapsed. Its owner plans the key from its own watches.
    if !shared.leases.may_write(&rt.cluster.name) {
        return Ok(());
    }
    let (Some(target), Some(source)) = (
        snap.clusters.get(&link.spec.target),
        snap.clusters.get(&link.spec.source),
    ) else {
        return Ok(());
    };
    let Some(target_rt) = shared.runtime(&link.spec.target) else {
        return Ok(());
    };
    let Some(client) = rt.client() else {
        return Ok(());
    };
    // Until both indexes listed once, and while either cluster is unreachable, hold: an
    // incomplete or stale index must never turn into deletions or a false "Mirrored".
    if !target_rt.is_synced() || !rt.is_synced() || target_rt.is_failing() || rt.is_failing() {
        return Ok(());
    }
    let exported = shared
        .mcs
        .is_exported(&link.spec.target, &key.namespace, &key.service);
    let (svc, eps) = {
        let idx = target_rt.index();
        (
            idx.services.get(&key.namespace, &key.service).map(|s| {
                let mut svc = s.service.clone();
                svc.service_export = exported;
                svc
            }),
            idx.endpoints
                .get(&key.namespace, &key.service)
                .map(|e| e.endpoints.clone()),
        )
    };
    let local_name = mirror_service_name(&key.service, &link.spec.target).name;
    let (ns_exists, observed) = {
        let idx = rt.index();
        (
            idx.has_namespace(&key.namespace),
            observe(&idx, &key.namespace, &local_name),
        )
    };
    let gateway = shared.gateway(&link.spec.target);
    let ctx = MirrorContext {
        link,
        target,
        source,
        policies: &snap.policies,
        gateway: &gateway,
    };
    let plan = plan_service_observed(&ctx, svc.as_ref(), eps.as_ref(), ns_exists, &observed);
    let applier = Applier {
        client,
        rt,
        metrics: &shared.metrics,
        owner: Ownership::of_link(&link.spec),
    };
    let status = |mode: MirrorMode,
                  local_name: &str,
                  headless: bool,
                  state: MirrorState,
                  message: String| {
        MirrorStatus {
            link: link.name.clone(),
            source_cluster: link.spec.source.clone(),
            target_cluster: link.spec.target.clone(),
            namespace: key.namespace.clone(),
            remote_name: key.service.clone(),
            local_name: local_name.to_string(),
            mode: mode.as_str().to_string(),
            headless,
            state,
            message,
        }
    };
    let source_event = |kind: EventType, reason: &'static str, name: &str, message: String| {
        shared.events.record(
            applier.client.clone(),
            &rt.cluster.name,
            Regarding {
                namespace: key.namespace.clone(),
                name: name.to_string(),
            },
            kind,
            reason,
            message,
        );
    };
    match plan {
        Plan::Unselected => {
            applier
                .remove(&key.namespace, &local_name, "unexported")
                .await?;
            shared.status.send(StatusMsg::Delete {
                link: link.name.clone(),
                namespace: key.namespace.clone(),
                name: key.service.clone(),
            });
        }
        Plan::Absent {
            mode,
            local_name,
            outcome,
        } => {
            let reason = match outcome {
                Outcome::PolicyDenied(_) => "policy-denied",
                Outcome::MissingNamespace | Outcome::Mirrored => "unexported",
                Outcome::Invalid(_) => "invalid",
            };
            applier.remove(&key.namespace, &local_name, reason).await?;
            // Linkerd records a skipped export on the target Service, in the target cluster
            // (the source has no namespace to hold the event).
            let skipped = match &outcome {
                Outcome::MissingNamespace => {
                    Some("Skipped mirroring service: namespace does not exist".to_string())
                }
                Outcome::Invalid(m) if m.starts_with("Skipped mirroring service") => {
                    Some(m.clone())
                }
                _ => None,
            };
            if let (Some(message), Some(target_client)) = (skipped, target_rt.client()) {
                shared.events.record(
                    target_client,
                    &link.spec.target,
                    Regarding {
                        namespace: key.namespace.clone(),
                        name: key.service.clone(),
                    },
                    EventType::Normal,
                    "ServiceMirroringSkipped",
                    message,
                );
            }
            let (state, message) = outcome_state(&outcome);
            shared.status.send(StatusMsg::Upsert(status(
                mode,
                &local_name,
                false,
                state,
                message,
            )));
        }
        Plan::Hold {
            mode,
            local_name,
            outcome,
        } => {
            let (state, message) = outcome_state(&outcome);
            shared.status.send(StatusMsg::Upsert(status(
                mode,
                &local_name,
                false,
                state,
                message,
            )));
        }
        Plan::Mirror(d) => {
            let name = d.service.name.clone();
            let headless = d.service.headless;
            match applier.apply(&d).await {
                Ok(Applied::Done) => shared.status.send(StatusMsg::Upsert(status(
                    d.mode,
                    &name,
                    headless,
                    MirrorState::Mirrored,
                    String::new(),
                ))),
                Ok(Applied::Conflict(msg)) => {
                    source_event(EventType::Warning, "MirrorConflict", &name, msg.clone());
                    shared.status.send(StatusMsg::Upsert(status(
                        d.mode,
                        &name,
                        headless,
                        MirrorState::Conflict,
                        msg,
                    )))
                }
                Err(e) => {
                    // Stale-view failures (409s on our own last write) are routine; retried
                    // silently. Anything else is visible, and a refusal that retrying cannot
                    // fix says so.
                    if e.retry_class() != Retry::Soon {
                        source_event(EventType::Warning, "MirrorError", &name, e.chain());
                    }
                    match e.retry_class() {
                        Retry::Soon => {}
                        Retry::Transient => shared.status.send(StatusMsg::Upsert(status(
                            d.mode,
                            &name,
                            headless,
                            MirrorState::Error,
                            e.chain(),
                        ))),
                        Retry::Permanent => shared.status.send(StatusMsg::Upsert(status(
                            d.mode,
                            &name,
                            headless,
                            MirrorState::Error,
                            format!(
                                "{} (refused by the API server: retried every few minutes \
                                 until the object or the fleet changes)",
                                e.chain()
                            ),
                        ))),
                    }
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// The endpoint mirrors of root `root` in `ns` as the source holds them (their recorded
/// address and version), so the plan keeps the version of those whose pod did not move.
fn observe(idx: &crate::index::ClusterIndex, ns: &str, root: &str) -> Observed {
    Observed {
        endpoint_mirrors: idx
            .services
            .in_namespace(ns)
            .filter(|s| {
                s.service
                    .labels
                    .get(HEADLESS_MIRROR_SVC_NAME_LABEL)
                    .map(String::as_str)
                    == Some(root)
            })
            .map(|s| {
                let a = &s.service.annotations;
                (
                    s.service.name.clone(),
                    ObservedEndpointMirror {
                        remote_address: a.get(REMOTE_ADDRESS_ANNOTATION).cloned(),
                        resource_version: a.get(REMOTE_RESOURCE_VERSION_ANNOTATION).cloned(),
                    },
                )
            })
            .collect(),
    }
}

fn outcome_state(o: &Outcome) -> (MirrorState, String) {
    match o {
        Outcome::Mirrored => (MirrorState::Mirrored, String::new()),
        Outcome::MissingNamespace => (
            MirrorState::MissingNamespace,
            "Namespace does not exist".into(),
        ),
        Outcome::PolicyDenied(p) => (
            MirrorState::PolicyDenied,
            format!(
                "no export policy allows this export (consulted: {})",
                p.join(", ")
            ),
        ),
        Outcome::Invalid(m) => (MirrorState::Error, m.clone()),
    }
}

fn is_code(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// Writes into `rt`'s cluster, touching only the objects `owner` owns ([`Ownership`]).
pub(crate) struct Applier<'a> {
    pub(crate) client: Client,
    pub(crate) rt: &'a Arc<ClusterRuntime>,
    pub(crate) metrics: &'a Metrics,
    pub(crate) owner: Ownership<'a>,
}

pub(crate) enum Ensured {
    Ok(Option<String>),
    Conflict(String),
}

impl Applier<'_> {
    fn count(&self, kind: &str, reason: &str) {
        self.metrics
            .record_write(&self.rt.cluster.name, kind, reason);
    }

    fn services(&self, ns: &str) -> Api<SlimService> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn endpoints(&self, ns: &str) -> Api<SlimEndpoints> {
        Api::namespaced(self.client.clone(), ns)
    }

    async fn apply(&self, d: &DesiredMirror) -> Result<Applied> {
        if let Some(ns) = &d.namespace {
            self.create_namespace(ns).await?;
        }
        let ns = &d.service.namespace;
        let mut cluster_ips = BTreeMap::new();
        if let (Some(eps), false, true) = (
            &d.endpoints,
            d.service.headless,
            d.endpoint_mirrors.is_empty(),
        ) {
            // The common case: Service and Endpoints do not depend on each other, so write both
            // at once (halves the latency per mirror). Objects we do not own are never touched:
            // checked first, as the writes no longer wait for each other.
            if let Some(conflict) = self.foreign(&d.service.namespace, &d.service.name) {
                return Ok(Applied::Conflict(conflict));
            }
            let no_ips = BTreeMap::new();
            let (svc, endpoints) = tokio::join!(
                self.ensure_service(&d.service),
                self.ensure_endpoints(eps, &no_ips)
            );
            for ensured in [svc?, endpoints?] {
                if let Ensured::Conflict(m) = ensured {
                    return Ok(Applied::Conflict(m));
                }
            }
            for stale in self.endpoint_mirrors(ns, &d.service.name) {
                self.delete_pair(ns, &stale, "stale-endpoint-mirror")
                    .await?;
            }
            return Ok(Applied::Done);
        }
        match self.ensure_service(&d.service).await? {
            Ensured::Conflict(m) => return Ok(Applied::Conflict(m)),
            Ensured::Ok(_) => {}
        }
        for em in &d.endpoint_mirrors {
            match self.ensure_service(&em.service).await? {
                Ensured::Conflict(m) => return Ok(Applied::Conflict(m)),
                Ensured::Ok(ip) => {
                    if let Some(ip) = ip {
                        cluster_ips.insert(em.service.name.clone(), ip);
                    }
                }
            }
            if let Ensured::Conflict(m) = self
                .ensure_endpoints(&em.endpoints, &BTreeMap::new())
                .await?
            {
                return Ok(Applied::Conflict(m));
            }
        }
        // Endpoint mirrors of this root that are no longer produced: same namespace only.
        let keep: Vec<&str> = d
            .endpoint_mirrors
            .iter()
            .map(|e| e.service.name.as_str())
            .collect();
        for stale in self.endpoint_mirrors(ns, &d.service.name) {
            if !keep.contains(&stale.as_str()) {
                self.delete_pair(ns, &stale, "stale-endpoint-mirror")
                    .await?;
            }
        }
        match &d.endpoints {
            Some(e) => {
                if let Ensured::Conflict(m) = self.ensure_endpoints(e, &cluster_ips).await? {
                    return Ok(Applied::Conflict(m));
                }
            }
            None => {
                // Remote-discovery: a gateway-mode leftover Endpoints goes.
                let leftover = self
                    .rt
                    .index()
                    .endpoints
                    .get(ns, &d.service.name)
                    .is_some_and(|e| self.owner.owns(&e.labels));
                if leftover {
                    self.delete_endpoints(ns, &d.service.name, "mode-change")
                        .await?;
                }
            }
        }
        Ok(Applied::Done)
    }

    pub(crate) async fn create_namespace(&self, ns: &DesiredNamespace) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        match api
            .create(&PostParams::default(), &namespace_object(ns))
            .await
        {
            Ok(_) => {
                self.count("Namespace", "missing");
                Ok(())
            }
            Err(e) if is_code(&e, 409) => Ok(()),
            Err(e) => Err(Error::kube(format!("creating namespace {}", ns.name))(e)),
        }
    }

    pub(crate) async fn ensure_service(&self, d: &DesiredService) -> Result<Ensured> {
        let api = self.services(&d.namespace);
        let what = format!("Service {}/{}", d.namespace, d.name);
        let mut actual = self.rt.index().services.get(&d.namespace, &d.name).cloned();
        if actual.is_none() {
            match api
                .create(
                    &PostParams::default(),
                    &SlimService(service_object(d, None)),
                )
                .await
            {
                Ok(created) => {
                    self.count("Service", "missing");
                    return Ok(Ensured::Ok(self.rt.remember_service(&created.0)));
                }
                Err(e) if is_code(&e, 409) => {
                    // Our index is behind: read the live object and carry on with it.
                    let live = api
                        .get_opt(&d.name)
                        .await
                        .map_err(Error::kube(format!("reading {what}")))?;
                    actual = live.as_ref().map(|s| index_service(&s.0));
                    if actual.is_none() {
                        return Err(Error::Retry(format!("{what} vanished while creating it")));
                    }
                }
                Err(e) => return Err(Error::kube(format!("creating {what}"))(e)),
            }
        }
        let Some(a) = actual else {
            return Err(Error::Retry(format!("{what} unknown")));
        };
        if !self.owner.owns(&a.service.labels) {
            return Ok(Ensured::Conflict(self.owner.refusal(
                &format!("a Service {}", d.name),
                &d.namespace,
                &a.service.labels,
            )));
        }
        let Some(reason) = service_diff(&a, d) else {
            return Ok(Ensured::Ok(a.cluster_ip));
        };
        if a.service.headless != d.headless {
            // clusterIP is immutable: recreate.
            self.delete_service(&d.namespace, &d.name, "headless")
                .await?;
            let created = api
                .create(
                    &PostParams::default(),
                    &SlimService(service_object(d, None)),
                )
                .await
                .map_err(Error::kube(format!("recreating {what}")))?;
            self.count("Service", "headless");
            return Ok(Ensured::Ok(self.rt.remember_service(&created.0)));
        }
        self.replace_service(&api, d, &a, &what, reason).await
    }

    async fn replace_service(
        &self,
        api: &Api<SlimService>,
        d: &DesiredService,
        a: &IndexedService,
        what: &str,
        reason: &str,
    ) -> Result<Ensured> {
        let mut obj = service_object(d, a.cluster_ip.clone());
        obj.metadata.resource_version = Some(a.service.resource_version.clone());
        let replaced = api
            .replace(&d.name, &PostParams::default(), &SlimService(obj))
            .await
            .map_err(Error::kube(format!("updating {what}")))?;
        self.count("Service", reason);
        Ok(Ensured::Ok(self.rt.remember_service(&replaced.0)))
    }

    async fn ensure_endpoints(
        &self,
        d: &DesiredEndpoints,
        cluster_ips: &BTreeMap<String, String>,
    ) -> Result<Ensured> {
        let resolved = {
            let idx = self.rt.index();
            resolve_endpoints(d, |name| {
                cluster_ips.get(name).cloned().or_else(|| {
                    idx.services
                        .get(&d.namespace, name)
                        .and_then(|s| s.cluster_ip.clone())
                })
            })
        };
        let Some(resolved) = resolved else {
            return Err(Error::Retry(format!(
                "endpoint mirrors of {}/{} have no ClusterIP yet",
                d.namespace, d.name
            )));
        };
        let api = self.endpoints(&d.namespace);
        let what = format!("Endpoints {}/{}", d.namespace, d.name);
        let mut actual = self
            .rt
            .index()
            .endpoints
            .get(&d.namespace, &d.name)
            .cloned();
        if actual.is_none() {
            match api
                .create(
                    &PostParams::default(),
                    &SlimEndpoints(endpoints_object(d, &resolved)),
                )
                .await
            {
                Ok(created) => {
                    self.count("Endpoints", "missing");
                    self.rt.remember_endpoints(&created.0);
                    return Ok(Ensured::Ok(None));
                }
                Err(e) if is_code(&e, 409) => {
                    let live = api
                        .get_opt(&d.name)
                        .await
                        .map_err(Error::kube(format!("reading {what}")))?;
                    actual = live.as_ref().map(|e| index_endpoints(&e.0));
                    if actual.is_none() {
                        return Err(Error::Retry(format!("{what} vanished while creating it")));
                    }
                }
                Err(e) => return Err(Error::kube(format!("creating {what}"))(e)),
            }
        }
        let Some(a) = actual else {
            return Err(Error::Retry(format!("{what} unknown")));
        };
        if !self.owner.owns(&a.labels) {
            return Ok(Ensured::Conflict(self.owner.refusal(
                &format!("an Endpoints {}", d.name),
                &d.namespace,
                &a.labels,
            )));
        }
        let Some(reason) = endpoints_diff(&a, d, &resolved) else {
            return Ok(Ensured::Ok(None));
        };
        let mut obj = endpoints_object(d, &resolved);
        obj.metadata.resource_version = Some(a.endpoints.resource_version.clone());
        let replaced = api
            .replace(&d.name, &PostParams::default(), &SlimEndpoints(obj))
            .await
            .map_err(Error::kube(format!("updating {what}")))?;
        self.count("Endpoints", reason);
        self.rt.remember_endpoints(&replaced.0);
        Ok(Ensured::Ok(None))
    }

    /// Why `ns/name` must not be written, when the index holds a Service or Endpoints of that
    /// name that we do not own.
    fn foreign(&self, ns: &str, name: &str) -> Option<String> {
        let idx = self.rt.index();
        if let Some(s) = idx.services.get(ns, name)
            && !self.owner.owns(&s.service.labels)
        {
            return Some(
                self.owner
                    .refusal(&format!("a Service {name}"), ns, &s.service.labels),
            );
        }
        if let Some(e) = idx.endpoints.get(ns, name)
            && !self.owner.owns(&e.labels)
        {
            return Some(
                self.owner
                    .refusal(&format!("an Endpoints {name}"), ns, &e.labels),
            );
        }
        None
    }

    /// Names of the endpoint mirrors of root `root` in `ns` that we own.
    fn endpoint_mirrors(&self, ns: &str, root: &str) -> Vec<String> {
        self.rt
            .index()
            .services
            .in_namespace(ns)
            .filter(|s| {
                self.owner.owns(&s.service.labels)
                    && s.service
                        .labels
                        .get(HEADLESS_MIRROR_SVC_NAME_LABEL)
                        .map(String::as_str)
                        == Some(root)
            })
            .map(|s| s.service.name.clone())
            .collect()
    }

    /// Deletes the mirror `name` in `ns` (Service, Endpoints, endpoint mirrors) if we own it.
    async fn remove(&self, ns: &str, name: &str, reason: &str) -> Result<()> {
        for em in self.endpoint_mirrors(ns, name) {
            self.delete_pair(ns, &em, reason).await?;
        }
        let (svc_owned, eps_owned) = {
            let idx = self.rt.index();
            (
                idx.services
                    .get(ns, name)
                    .is_some_and(|s| self.owner.owns(&s.service.labels)),
                idx.endpoints
                    .get(ns, name)
                    .is_some_and(|e| self.owner.owns(&e.labels)),
            )
        };
        if svc_owned {
            self.delete_service(ns, name, reason).await?;
        }
        if eps_owned {
            self.delete_endpoints(ns, name, reason).await?;
        }
        Ok(())
    }

    async fn delete_pair(&self, ns: &str, name: &str, reason: &str) -> Result<()> {
        self.delete_service(ns, name, reason).await?;
        let has_eps = self
            .rt
            .index()
            .endpoints
            .get(ns, name)
            .is_some_and(|e| self.owner.owns(&e.labels));
        if has_eps {
            self.delete_endpoints(ns, name, reason).await?;
        }
        Ok(())
    }

    pub(crate) async fn delete_service(&self, ns: &str, name: &str, reason: &str) -> Result<()> {
        match self
            .services(ns)
            .delete(name, &DeleteParams::default())
            .await
        {
            Ok(_) => {
                self.count("Service", reason);
                self.rt.forget(Kind::Service, ns, name);
                Ok(())
            }
            Err(e) if is_code(&e, 404) => Ok(()),
            Err(e) => Err(Error::kube(format!("deleting Service {ns}/{name}"))(e)),
        }
    }

    async fn delete_endpoints(&self, ns: &str, name: &str, reason: &str) -> Result<()> {
        match self
            .endpoints(ns)
            .delete(name, &DeleteParams::default())
            .await
        {
            Ok(_) => {
                self.count("Endpoints", reason);
                self.rt.forget(Kind::Endpoints, ns, name);
                Ok(())
            }
            Err(e) if is_code(&e, 404) => Ok(()),
            Err(e) => Err(Error::kube(format!("deleting Endpoints {ns}/{name}"))(e)),
        }
    }
}

/// Deletes every mirror of `target` in the source cluster that the removed link owned (link
/// removed with `cleanupOnUnlink`; Linkerd-written ones only if it adopted them). Lists through
/// the API, not the index, so nothing is missed.
pub(crate) async fn cleanup(
    client: Client,
    source: &str,
    target: &str,
    adopt_linkerd: bool,
    metrics: &Metrics,
) -> Result<usize> {
    let owner = Ownership::Mirrors {
        target,
        adopt_linkerd,
    };
    let selector = format!("{MIRRORED_SERVICE_LABEL}=true,{CLUSTER_NAME_LABEL}={target}");
    let lp = kube::api::ListParams::default().labels(&selector);
    let (mut services, mut endpoints) = (0u64, 0u64);
    let svcs: Api<Service> = Api::all(client.clone());
    for s in svcs
        .list(&lp)
        .await
        .map_err(Error::kube(format!("listing mirrors of {target}")))?
    {
        if !owner.owns(s.metadata.labels.as_ref().unwrap_or(&BTreeMap::new())) {
            continue;
        }
        let (Some(ns), Some(name)) = (s.metadata.namespace, s.metadata.name) else {
            continue;
        };
        match Api::<Service>::namespaced(client.clone(), &ns)
            .delete(&name, &DeleteParams::default())
            .await
        {
            Ok(_) => services += 1,
            Err(e) if is_code(&e, 404) => {}
            Err(e) => return Err(Error::kube(format!("deleting Service {ns}/{name}"))(e)),
        }
    }
    let eps: Api<Endpoints> = Api::all(client.clone());
    for e in eps
        .list(&lp)
        .await
        .map_err(Error::kube(format!("listing mirror Endpoints of {target}")))?
    {
        if !owner.owns(e.metadata.labels.as_ref().unwrap_or(&BTreeMap::new())) {
            continue;
        }
        let (Some(ns), Some(name)) = (e.metadata.namespace, e.metadata.name) else {
            continue;
        };
        match Api::<Endpoints>::namespaced(client.clone(), &ns)
            .delete(&name, &DeleteParams::default())
            .await
        {
            Ok(_) => endpoints += 1,
            Err(e) if is_code(&e, 404) => {}
            Err(e) => return Err(Error::kube(format!("deleting Endpoints {ns}/{name}"))(e)),
        }
    }
    metrics.record_writes(source, "Service", "unlinked", services);
    metrics.record_writes(source, "Endpoints", "unlinked", endpoints);
    Ok((services + endpoints) as usize)
}
