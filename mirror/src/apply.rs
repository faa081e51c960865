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
        CLUSTER_NAME_LABEL, MIRRORED_SERVICE_LABEL, REMOTE_ADDRESS_ANNOTATION,
        REMOTE_RESOURCE_VERSION_ANNOTATION, mirror_service_name,
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
    backoff::Retry,
    cluster::ClusterRuntime,
    config::MirrorKey,
    convert::{
        Indexed, endpoints_diff, endpoints_object, namespace_object, resolve_endpoints,
        service_diff, service_object,
    },
    error::{Error, Result},
    events::{EventType, Regarding},
    index::{IndexedEndpoints, IndexedService},
    ownership::Ownership,
    shared::Shared,
    slim::{SlimEndpoints, SlimService},
    status::StatusMsg,
    worker::run_worker,
};

/// Runs reconciles from `rt`'s queue forever (one of `concurrency` workers).
pub(crate) async fn worker(rt: Arc<ClusterRuntime>, shared: Arc<Shared>) {
    let (rt, shared) = (&rt, &shared);
    run_worker(
        &rt.queue,
        rt,
        shared,
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
    if !target_rt.is_synced() || !rt.knows_mirrors() || target_rt.is_failing() || rt.is_failing() {
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
            .in_group(ns, root)
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

/// What [`Applier::ensure`] found: the object as it now is, or why it may not be written.
pub(crate) enum Ensured<T> {
    Ok(T),
    Conflict(String),
}

impl<T> Ensured<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Ensured<U> {
        match self {
            Ensured::Ok(t) => Ensured::Ok(f(t)),
            Ensured::Conflict(m) => Ensured::Conflict(m),
        }
    }
}

/// A kind the applier writes (Service, Endpoints): what [`Applier::ensure`] and
/// [`Applier::delete`] need beyond [`Indexed`].
pub(crate) trait Written:
    Indexed<Scope = k8s_openapi::NamespaceResourceScope> + serde::Serialize
{
    /// `Service`, `Endpoints`: messages and the write counter's `kind` label.
    const KIND_NAME: &'static str;
    /// `a Service`, `an Endpoints`: conflict messages.
    const ARTICLE: &'static str;
    /// How an indexed object's labels are held.
    type Labels: crate::ownership::Labels + ?Sized;
    /// Labels of an indexed object (ownership).
    fn labels_of(entry: &Self::Entry) -> &Self::Labels;
    /// resourceVersion of an indexed object (replace precondition).
    fn resource_version(entry: &Self::Entry) -> &str;
}

impl Written for SlimService {
    const KIND_NAME: &'static str = "Service";
    const ARTICLE: &'static str = "a Service";
    type Labels = BTreeMap<String, String>;
    fn labels_of(entry: &IndexedService) -> &BTreeMap<String, String> {
        &entry.service.labels
    }
    fn resource_version(entry: &IndexedService) -> &str {
        &entry.service.resource_version
    }
}

impl Written for SlimEndpoints {
    const KIND_NAME: &'static str = "Endpoints";
    const ARTICLE: &'static str = "an Endpoints";
    type Labels = crate::index::CompactMap;
    fn labels_of(entry: &IndexedEndpoints) -> &crate::index::CompactMap {
        &entry.labels
    }
    fn resource_version(entry: &IndexedEndpoints) -> &str {
        &entry.endpoints.resource_version
    }
}

impl Applier<'_> {
    fn count(&self, kind: &str, reason: &str) {
        self.metrics
            .record_write(&self.rt.cluster.name, kind, reason);
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
            for ensured in [svc?.map(drop), endpoints?] {
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
                    self.delete::<SlimEndpoints>(ns, &d.service.name, "mode-change")
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

    /// Makes `namespace/name` of kind `K` what `build` makes, with the fewest writes: created
    /// when absent (a 409 means our index is behind: the live object is read and compared),
    /// left alone when `diff` finds nothing to change, replaced with a `resourceVersion`
    /// precondition otherwise, or deleted and created when `recreate` says a field that differs
    /// is immutable. An object we do not own is never touched. Returns the object as written
    /// or found, also recorded in the index ([`ClusterRuntime::remember`]).
    ///
    /// `build(None)` is a new object; `build(Some(actual))` the replacement of `actual`.
    async fn ensure<K: Written>(
        &self,
        namespace: &str,
        name: &str,
        build: impl Fn(Option<&K::Entry>) -> K,
        diff: impl Fn(&K::Entry) -> Option<&'static str>,
        recreate: impl Fn(&K::Entry) -> bool,
    ) -> Result<Ensured<K::Entry>> {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let what = format!("{} {namespace}/{name}", K::KIND_NAME);
        let mut actual = K::slot(&self.rt.index()).get(namespace, name).cloned();
        if actual.is_none() {
            match api.create(&PostParams::default(), &build(None)).await {
                Ok(created) => {
                    self.count(K::KIND_NAME, "missing");
                    return Ok(Ensured::Ok(self.rt.remember(&created)));
                }
                Err(e) if is_code(&e, 409) => {
                    // Our index is behind: read the live object and carry on with it.
                    let live = api
                        .get_opt(name)
                        .await
                        .map_err(Error::kube(format!("reading {what}")))?;
                    actual = live.as_ref().map(Indexed::entry);
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
        if !self.owner.owns(K::labels_of(&a)) {
            return Ok(Ensured::Conflict(self.owner.refusal(
                &format!("{} {name}", K::ARTICLE),
                namespace,
                K::labels_of(&a),
            )));
        }
        let Some(reason) = diff(&a) else {
            return Ok(Ensured::Ok(a));
        };
        if recreate(&a) {
            self.delete::<K>(namespace, name, reason).await?;
            let created = api
                .create(&PostParams::default(), &build(None))
                .await
                .map_err(Error::kube(format!("recreating {what}")))?;
            self.count(K::KIND_NAME, reason);
            return Ok(Ensured::Ok(self.rt.remember(&created)));
        }
        let mut obj = build(Some(&a));
        obj.meta_mut().resource_version = Some(K::resource_version(&a).to_string());
        let replaced = api
            .replace(name, &PostParams::default(), &obj)
            .await
            .map_err(Error::kube(format!("updating {what}")))?;
        self.count(K::KIND_NAME, reason);
        Ok(Ensured::Ok(self.rt.remember(&replaced)))
    }

    /// [`ensure`](Self::ensure) for a mirror Service; its ClusterIP (endpoint mirrors point at
    /// it). `clusterIP` is immutable, so a change of headlessness recreates it.
    pub(crate) async fn ensure_service(
        &self,
        d: &DesiredService,
    ) -> Result<Ensured<Option<String>>> {
        let ensured = self
            .ensure::<SlimService>(
                &d.namespace,
                &d.name,
                |a| SlimService(service_object(d, a.and_then(|a| a.cluster_ip.clone()))),
                |a| {
                    service_diff(a, d).map(|r| {
                        if a.service.headless != d.headless {
                            "headless"
                        } else {
                            r
                        }
                    })
                },
                |a| a.service.headless != d.headless,
            )
            .await?;
        Ok(ensured.map(|s| s.cluster_ip))
    }

    /// [`ensure`](Self::ensure) for a mirror's Endpoints, once every address it points at is
    /// known (`cluster_ips`: ClusterIPs just written, then the index's).
    async fn ensure_endpoints(
        &self,
        d: &DesiredEndpoints,
        cluster_ips: &BTreeMap<String, String>,
    ) -> Result<Ensured<()>> {
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
        let ensured = self
            .ensure::<SlimEndpoints>(
                &d.namespace,
                &d.name,
                |_| SlimEndpoints(endpoints_object(d, &resolved)),
                |a| endpoints_diff(a, d, &resolved),
                |_| false,
            )
            .await?;
        Ok(ensured.map(|_| ()))
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
            .in_group(ns, root)
            .filter(|s| self.owner.owns(&s.service.labels))
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
            self.delete::<SlimService>(ns, name, reason).await?;
        }
        if eps_owned {
            self.delete::<SlimEndpoints>(ns, name, reason).await?;
        }
        Ok(())
    }

    async fn delete_pair(&self, ns: &str, name: &str, reason: &str) -> Result<()> {
        self.delete::<SlimService>(ns, name, reason).await?;
        let has_eps = self
            .rt
            .index()
            .endpoints
            .get(ns, name)
            .is_some_and(|e| self.owner.owns(&e.labels));
        if has_eps {
            self.delete::<SlimEndpoints>(ns, name, reason).await?;
        }
        Ok(())
    }

    /// Deletes `ns/name` of kind `K` (gone already is fine) and forgets it in the index.
    pub(crate) async fn delete<K: Written>(
        &self,
        ns: &str,
        name: &str,
        reason: &str,
    ) -> Result<()> {
        let api: Api<K> = Api::namespaced(self.client.clone(), ns);
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                self.count(K::KIND_NAME, reason);
                self.rt.forget::<K>(ns, name);
                Ok(())
            }
            Err(e) if is_code(&e, 404) => Ok(()),
            Err(e) => Err(Error::kube(format!(
                "deleting {} {ns}/{name}",
                K::KIND_NAME
            ))(e)),
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
