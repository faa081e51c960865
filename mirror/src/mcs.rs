//! Kubernetes Multi-Cluster Services (KEP-1645, `multicluster.x-k8s.io/v1alpha1`) for links
//! with `spec.mcs`: `ServiceExport`s in, `ServiceImport`s and EndpointSlices out, next to the
//! Linkerd mirrors.
//!
//! One model: a `ServiceExport` only marks the Service of its name as exported
//! ([`linkplane_core::plan::RemoteService::service_export`]); the mirror planner decides per
//! link whether the consumer sees it (selectors, `spec.mcs.exportMode`, export policies,
//! namespaces) and the mirror applier writes the Linkerd mirror as for an export label. This
//! module renders the *same* decisions as MCS objects: every export the planner plans a mirror
//! for is a member of [`linkplane_core::plan::mcs::plan_import`], which yields the consumer's
//! `ServiceImport` (one per namespace/name over every exporting cluster: namespace sameness)
//! and EndpointSlices, and the conflict verdict. It then writes the exports' conditions
//! (`Valid`, `Ready`, `Conflict`).
//!
//! Hooks into the runtime are small: [`Mcs::is_exported`] is read by the mirror applier, a
//! `ServiceExport` change re-plans the key through `Shared::on_change`, and watch events of
//! Services/Endpoints wake this module's reconcile pass ([`Mcs::wake`]). The pass is a full
//! pass over MCS links (their exports are few); it also runs every [`RESYNC`] as a safety net.
//!
//! After a pass, each cluster's exports (with the conditions written) and imports (as written)
//! go to Postgres (`mcs_exports`, `mcs_imports`) for the API, through the durable state writer
//! the mirror states use: rows of a cluster are replaced as a whole, by the replica holding its
//! lease, and only when they changed.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::{
    Api, Client, ResourceExt,
    api::{
        ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    },
    runtime::{WatchStreamExt, watcher},
};
use linkplane_core::plan::{
    MirrorContext, Plan,
    mcs::{
        DesiredImport, MANAGED_BY, MANAGED_BY_LABEL, Member, SERVICE_NAME_LABEL,
        SOURCE_CLUSTER_LABEL, export_state, plan_import,
    },
    mirror::plan_service,
};
use linkplane_store::{
    Store,
    mcs::{
        ConditionStatus, McsCondition, McsConditionType, McsExportState, McsExportStatus,
        McsImportState, McsImportStatus, McsPort,
    },
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::Instrument;

pub(crate) mod state;

use crate::{
    config::{LinkEntry, Snapshot},
    index::Kind,
    routing::{Change, Route},
    shared::Shared,
};
use state::{Export, ExportKey, StateKey, StateRows};

/// The MCS API group.
pub const GROUP: &str = "multicluster.x-k8s.io";
/// The MCS API version served.
pub const VERSION: &str = "v1alpha1";
/// The field manager of every MCS write.
const MANAGER: &str = "linkplane-mcs";
/// Full-pass interval (the safety net; watch events wake the pass).
const RESYNC: Duration = Duration::from_secs(10);
/// The ServiceExport CRD linkplane installs.
pub const SERVICE_EXPORT_CRD: &str =
    include_str!("../crds/serviceexports.multicluster.x-k8s.io.yaml");
/// The ServiceImport CRD linkplane installs.
pub const SERVICE_IMPORT_CRD: &str =
    include_str!("../crds/serviceimports.multicluster.x-k8s.io.yaml");

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, kind), plural)
}

/// `ServiceExport`.
pub fn service_export() -> ApiResource {
    resource("ServiceExport", "serviceexports")
}

/// `ServiceImport`.
pub fn service_import() -> ApiResource {
    resource("ServiceImport", "serviceimports")
}

/// MCS's route: watch events and (re)syncs wake the pass, reloads say whether any link has
/// MCS on. The pass itself runs in [`run`], started by the supervisor.
pub(crate) struct McsRoute;

impl Route<Shared> for McsRoute {
    fn on_change(&self, shared: &Shared, _: &Change<'_>) {
        shared.mcs.on_event();
    }

    fn on_synced(&self, shared: &Shared, _cluster: &str) {
        shared.mcs.on_event();
    }

    fn on_reload(&self, shared: &std::sync::Arc<Shared>, _old: &Snapshot, new: &Snapshot) {
        shared.mcs.on_reload(new);
    }
}

/// Runs MCS until the task is aborted: one pass per wake-up or [`RESYNC`].
pub(crate) async fn run(shared: Arc<Shared>) {
    struct StopWatchers(Arc<Shared>);
    impl Drop for StopWatchers {
        fn drop(&mut self) {
            self.0.mcs.stop_all();
        }
    }
    let _guard = StopWatchers(shared.clone());
    let sink = spawn_state_writer(shared.store.clone(), shared.options.status_flush);
    let mut tick = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // The safety net rewrites what differs from the clusters, not from memory.
                shared.mcs.written.lock().unwrap_or_else(|e| e.into_inner()).clear();
            }
            () = shared.mcs.wake.notified() => {
                // Coalesce a burst of watch events into one pass.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        pass(&shared, &sink)
            .instrument(tracing::info_span!("mcs_pass"))
            .await;
    }
}

/// One link's decision about one export: `(link, consumer, imported or why not)`.
type Verdict = (String, String, Result<(), String>);
/// Every link's decision about each `(exporter, namespace, name)`.
type Verdicts = HashMap<(String, String, String), Vec<Verdict>>;

async fn pass(shared: &Arc<Shared>, sink: &StateSink) {
    let snap = shared.snapshot();
    let links: Vec<_> = snap
        .links
        .values()
        .filter(|l| !l.paused && l.link.spec.mcs_enabled().is_some())
        .collect();
    let mut exporters = BTreeSet::new();
    let mut consumers = BTreeSet::new();
    let mut install = BTreeSet::new();
    for l in &links {
        let spec = &l.link.spec;
        exporters.insert(spec.target.clone());
        consumers.insert(spec.source.clone());
        if spec.mcs_enabled().is_some_and(|m| m.install) {
            install.insert(spec.source.clone());
            install.insert(spec.target.clone());
        }
    }
    for cluster in &install {
        install_crds(shared, cluster).await;
    }
    sync_watchers(shared, &exporters);

    let mut verdicts: Verdicts = HashMap::new();
    let mut conflicts: HashMap<(String, String), Option<linkplane_core::plan::mcs::Conflict>> =
        HashMap::new();
    let mut exporters_of: HashMap<(String, String), Vec<String>> = HashMap::new();
    for consumer in &consumers {
        let Some(crt) = shared.runtime(consumer) else {
            continue;
        };
        let Some(client) = crt.client() else { continue };
        if !crt.is_synced() || crt.is_failing() {
            continue;
        }
        let Some(source) = snap.clusters.get(consumer) else {
            continue;
        };
        // Every (namespace, name) exported to this consumer, by link.
        let mut complete = true;
        let mut keys: BTreeMap<ExportKey, Vec<&LinkEntry>> = BTreeMap::new();
        for l in links.iter().filter(|l| &l.link.spec.source == consumer) {
            let target = &l.link.spec.target;
            let trt = shared.runtime(target);
            if !shared.mcs.synced(target) || !trt.as_ref().is_some_and(|t| t.is_synced()) {
                complete = false;
                continue;
            }
            for key in shared.mcs.exports_of(target).into_keys() {
                keys.entry(key).or_default().push(l);
            }
        }
        let mut desired: Vec<(DesiredImport, Option<linkplane_core::plan::mcs::Conflict>)> =
            Vec::new();
        for ((ns, name), entries) in &keys {
            let mut owned = Vec::new();
            for entry in entries {
                let spec = &entry.link.spec;
                let Some(trt) = shared.runtime(&spec.target) else {
                    continue;
                };
                let Some(target) = snap.clusters.get(&spec.target) else {
                    continue;
                };
                let (svc, eps) = {
                    let idx = trt.index();
                    (
                        idx.services.get(ns, name).map(|s| s.service.clone()),
                        idx.endpoints.get(ns, name).map(|e| e.endpoints.clone()),
                    )
                };
                let exported_at = shared
                    .mcs
                    .exports_of(&spec.target)
                    .get(&(ns.clone(), name.clone()))
                    .and_then(|e| e.created);
                let key3 = (spec.target.clone(), ns.clone(), name.clone());
                let Some(mut svc) = svc else {
                    verdicts.entry(key3).or_default().push((
                        entry.link.name.clone(),
                        consumer.clone(),
                        Err("the Service does not exist".into()),
                    ));
                    continue;
                };
                svc.service_export = true;
                let gateway = shared.gateway(&spec.target);
                let ctx = MirrorContext {
                    link: &entry.link,
                    target,
                    source,
                    policies: &snap.policies,
                    gateway: &gateway,
                };
                let ns_exists = crt.index().has_namespace(ns);
                match plan_service(&ctx, Some(&svc), eps.as_ref(), ns_exists) {
                    Plan::Mirror(_) => {
                        verdicts.entry(key3).or_default().push((
                            entry.link.name.clone(),
                            consumer.clone(),
                            Ok(()),
                        ));
                        owned.push((spec.target.clone(), svc, eps, exported_at));
                    }
                    Plan::Absent { outcome, .. } | Plan::Hold { outcome, .. } => {
                        verdicts.entry(key3).or_default().push((
                            entry.link.name.clone(),
                            consumer.clone(),
                            Err(format!("not imported into {consumer}: {outcome:?}")),
                        ));
                    }
                    Plan::Unselected => {}
                }
            }
            let members: Vec<Member<'_>> = owned
                .iter()
                .map(|(c, s, e, at)| Member {
                    cluster: c,
                    service: s,
                    endpoints: e.as_ref(),
                    exported_at: *at,
                })
                .collect();
            let plan = plan_import(ns, name, &members);
            for (c, ..) in &owned {
                exporters_of
                    .entry((ns.clone(), name.clone()))
                    .or_default()
                    .push(c.clone());
            }
            if let Some(import) = plan.import {
                let slot = conflicts.entry((ns.clone(), name.clone())).or_insert(None);
                if slot.is_none() {
                    *slot = plan.conflict.clone();
                }
                desired.push((import, plan.conflict));
            }
        }
        // With leases, each cluster's imports are written by the replica holding its lease.
        if shared.leases.may_write(consumer) {
            let imports: Vec<DesiredImport> = desired.iter().map(|(d, _)| d.clone()).collect();
            let failed = write_consumer(shared, consumer, &client, &imports, complete).await;
            // A partial view (some exporter not listed yet) would drop rows that still hold.
            if complete {
                let rows = desired
                    .iter()
                    .map(|(d, c)| {
                        import_status(
                            consumer,
                            d,
                            c.as_ref(),
                            failed.get(&(d.namespace.clone(), d.name.clone())),
                        )
                    })
                    .collect();
                record(
                    shared,
                    sink,
                    StateKey::Imports(consumer.clone()),
                    StateRows::Imports(rows),
                );
            }
        }
    }
    for exporter in &exporters {
        write_export_status(shared, sink, exporter, &verdicts, &conflicts, &exporters_of).await;
    }
    // Clusters no MCS link involves any more hold no rows (their lease holder clears them).
    for cluster in snap.clusters.keys() {
        if !shared.leases.may_write(cluster) {
            continue;
        }
        if !exporters.contains(cluster) {
            record(
                shared,
                sink,
                StateKey::Exports(cluster.clone()),
                StateRows::Exports(vec![]),
            );
        }
        if !consumers.contains(cluster) {
            record(
                shared,
                sink,
                StateKey::Imports(cluster.clone()),
                StateRows::Imports(vec![]),
            );
        }
    }
    record_metrics(shared);
}

/// Installs both CRDs into `cluster` once (server-side apply, so a newer shape is kept in
/// step).
async fn install_crds(shared: &Shared, cluster: &str) {
    if !shared.leases.may_write(cluster) {
        return;
    }
    if shared
        .mcs
        .installed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(cluster)
    {
        return;
    }
    let Some(client) = shared.runtime(cluster).and_then(|r| r.client()) else {
        return;
    };
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client);
    for yaml in [SERVICE_EXPORT_CRD, SERVICE_IMPORT_CRD] {
        let body: Value = match serde_saphyr::from_str(yaml) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "embedded MCS CRD is not valid YAML");
                return;
            }
        };
        let name = body["metadata"]["name"].as_str().unwrap_or("").to_string();
        if let Err(e) = crds
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
        {
            tracing::warn!(cluster, crd = %name, error = %e, "cannot install MCS CRD");
            return;
        }
    }
    tracing::info!(cluster, "installed the MCS CRDs");
    shared
        .mcs
        .installed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(cluster.to_string());
}

/// One `ServiceExport` watch per exporting cluster.
fn sync_watchers(shared: &Arc<Shared>, wanted: &BTreeSet<String>) {
    let mut w = shared
        .mcs
        .watchers
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let stale: Vec<String> = w
        .keys()
        .filter(|c| !wanted.contains(*c) || shared.runtime(c).is_none())
        .cloned()
        .collect();
    for c in stale {
        if let Some(t) = w.remove(&c) {
            t.abort();
        }
        shared
            .mcs
            .exports
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&c);
    }
    for c in wanted {
        if w.contains_key(c) {
            continue;
        }
        let Some(client) = shared.runtime(c).and_then(|r| r.client()) else {
            continue;
        };
        let task = tokio::spawn(watch_exports(shared.clone(), c.clone(), client));
        w.insert(c.clone(), task);
    }
}

fn export_of(obj: &DynamicObject) -> Export {
    Export {
        created: obj.metadata.creation_timestamp.as_ref().and_then(|t| {
            chrono::DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond() as u32)
        }),
        generation: obj.metadata.generation,
        conditions: obj
            .data
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    }
}

async fn watch_exports(shared: Arc<Shared>, cluster: String, client: Client) {
    let api: Api<DynamicObject> = Api::all_with(client, &service_export());
    let mut pending: BTreeMap<ExportKey, Export> = BTreeMap::new();
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(ev) = stream.next().await {
        let changed: Vec<ExportKey> = match ev {
            Ok(watcher::Event::Init) => {
                pending.clear();
                vec![]
            }
            Ok(watcher::Event::InitApply(o)) => {
                pending.insert(
                    (o.namespace().unwrap_or_default(), o.name_any()),
                    export_of(&o),
                );
                vec![]
            }
            Ok(watcher::Event::InitDone) => {
                let mut all = shared
                    .mcs
                    .exports
                    .write()
                    .unwrap_or_else(|e| e.into_inner());
                let old = all.insert(cluster.clone(), std::mem::take(&mut pending));
                let new = all.get(&cluster).cloned().unwrap_or_default();
                let mut keys: BTreeSet<ExportKey> = new.keys().cloned().collect();
                keys.extend(old.unwrap_or_default().into_keys());
                keys.into_iter().collect()
            }
            Ok(watcher::Event::Apply(o)) => {
                let key = (o.namespace().unwrap_or_default(), o.name_any());
                let mut all = shared
                    .mcs
                    .exports
                    .write()
                    .unwrap_or_else(|e| e.into_inner());
                let known = all
                    .get(&cluster)
                    .and_then(|m| m.get(&key))
                    .map(|e| e.created);
                all.entry(cluster.clone())
                    .or_default()
                    .insert(key.clone(), export_of(&o));
                // A status-only change (ours) re-plans nothing.
                if known == Some(export_of(&o).created) {
                    vec![]
                } else {
                    vec![key]
                }
            }
            Ok(watcher::Event::Delete(o)) => {
                let key = (o.namespace().unwrap_or_default(), o.name_any());
                if let Some(m) = shared
                    .mcs
                    .exports
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_mut(&cluster)
                {
                    m.remove(&key);
                }
                vec![key]
            }
            Err(e) => {
                tracing::debug!(cluster = %cluster, error = %e, "ServiceExport watch failed (CRD missing?)");
                vec![]
            }
        };
        for (ns, name) in &changed {
            // The export decides the Linkerd mirror too: re-plan the key for every link.
            shared.on_change(&cluster, Kind::Service, ns, name, &BTreeMap::new());
        }
        shared.mcs.wake();
    }
}

fn import_body(d: &DesiredImport) -> Value {
    let ports: Vec<Value> = d
        .ports
        .iter()
        .map(|p| {
            let mut v = json!({"port": p.port, "protocol": p.protocol});
            if let Some(n) = &p.name {
                v["name"] = json!(n);
            }
            v
        })
        .collect();
    json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "ServiceImport",
        "metadata": {
            "name": d.name,
            "namespace": d.namespace,
            "labels": {"app.kubernetes.io/managed-by": MANAGED_BY},
        },
        "spec": {
            "type": d.ty.as_str(),
            "ports": ports,
            "sessionAffinity": d.session_affinity,
        },
    })
}

fn slice_body(d: &DesiredImport, s: &linkplane_core::plan::mcs::DesiredSlice) -> Value {
    let endpoints: Vec<Value> = s
        .endpoints
        .iter()
        .map(|e| {
            let mut v = json!({"addresses": [e.ip], "conditions": {"ready": e.ready}});
            if let Some(h) = &e.hostname {
                v["hostname"] = json!(h);
            }
            v
        })
        .collect();
    let ports: Vec<Value> = s
        .ports
        .iter()
        .map(|p| {
            let mut v = json!({"port": p.port, "protocol": p.protocol.clone().unwrap_or_else(|| "TCP".into())});
            if let Some(n) = &p.name {
                v["name"] = json!(n);
            }
            v
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": s.name,
            "namespace": d.namespace,
            "labels": {
                SERVICE_NAME_LABEL: d.name,
                SOURCE_CLUSTER_LABEL: s.cluster,
                MANAGED_BY_LABEL: MANAGED_BY,
            },
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    })
}

/// Applies `body` unless it is what was last written; `Err` says why the write failed.
async fn apply_if_changed(
    shared: &Shared,
    api: &Api<DynamicObject>,
    cluster: &str,
    kind: &'static str,
    body: Value,
    status: bool,
) -> Result<(), String> {
    let ns = body["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let name = body["metadata"]["name"].as_str().unwrap_or("").to_string();
    let key = (cluster.to_string(), kind, ns, name.clone());
    if shared
        .mcs
        .written
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        == Some(&body)
    {
        return Ok(());
    }
    let pp = PatchParams::apply(MANAGER).force();
    let res = if status {
        api.patch_status(&name, &pp, &Patch::Apply(&body)).await
    } else {
        api.patch(&name, &pp, &Patch::Apply(&body)).await
    };
    match res {
        Ok(_) => {
            shared.metrics.record_write(cluster, kind, "mcs");
            shared
                .mcs
                .written
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, body);
            Ok(())
        }
        Err(e) => {
            tracing::warn!(cluster, kind, name = %name, error = %e, "MCS write failed");
            Err(format!("writing {kind} {name}: {e}"))
        }
    }
}

fn forget(shared: &Shared, cluster: &str, kind: &'static str, ns: &str, name: &str) {
    shared
        .mcs
        .written
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&(cluster.to_string(), kind, ns.to_string(), name.to_string()));
}

/// Writes the consumer's imports and slices, and (when every exporter listed) deletes ours
/// that are no longer desired. Returns the first failed write of each import, by key.
async fn write_consumer(
    shared: &Shared,
    consumer: &str,
    client: &Client,
    desired: &[DesiredImport],
    complete: bool,
) -> HashMap<ExportKey, String> {
    let mut failed: HashMap<ExportKey, String> = HashMap::new();
    let slice_ar = ApiResource::erase::<EndpointSlice>(&());
    let mut want_imports = BTreeSet::new();
    let mut want_slices = BTreeSet::new();
    for d in desired {
        let imports: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &d.namespace, &service_import());
        let mut results = vec![
            apply_if_changed(
                shared,
                &imports,
                consumer,
                "ServiceImport",
                import_body(d),
                false,
            )
            .await,
        ];
        let clusters: Vec<Value> = d.clusters.iter().map(|c| json!({"cluster": c})).collect();
        let status = json!({
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "kind": "ServiceImport",
            "metadata": {"name": d.name, "namespace": d.namespace},
            "status": {"clusters": clusters},
        });
        results.push(
            apply_if_changed(
                shared,
                &imports,
                consumer,
                "ServiceImport/status",
                status,
                true,
            )
            .await,
        );
        want_imports.insert((d.namespace.clone(), d.name.clone()));
        let slices: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &d.namespace, &slice_ar);
        for s in &d.slices {
            results.push(
                apply_if_changed(
                    shared,
                    &slices,
                    consumer,
                    "EndpointSlice",
                    slice_body(d, s),
                    false,
                )
                .await,
            );
            want_slices.insert((d.namespace.clone(), s.name.clone()));
        }
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            failed.insert((d.namespace.clone(), d.name.clone()), e);
        }
    }
    if !complete {
        return failed;
    }
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"));
    let all_imports: Api<DynamicObject> = Api::all_with(client.clone(), &service_import());
    if let Ok(list) = all_imports.list(&lp).await {
        for o in list.items {
            let key = (o.namespace().unwrap_or_default(), o.name_any());
            if !want_imports.contains(&key) {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), &key.0, &service_import());
                if api.delete(&key.1, &DeleteParams::default()).await.is_ok() {
                    shared
                        .metrics
                        .record_write(consumer, "ServiceImport", "mcs-delete");
                }
                forget(shared, consumer, "ServiceImport", &key.0, &key.1);
                forget(shared, consumer, "ServiceImport/status", &key.0, &key.1);
            }
        }
    }
    let lp = ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    let all_slices: Api<DynamicObject> = Api::all_with(client.clone(), &slice_ar);
    if let Ok(list) = all_slices.list(&lp).await {
        for o in list.items {
            let key = (o.namespace().unwrap_or_default(), o.name_any());
            if !want_slices.contains(&key) {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), &key.0, &slice_ar);
                if api.delete(&key.1, &DeleteParams::default()).await.is_ok() {
                    shared
                        .metrics
                        .record_write(consumer, "EndpointSlice", "mcs-delete");
                }
                forget(shared, consumer, "EndpointSlice", &key.0, &key.1);
            }
        }
    }
    failed
}

/// A condition, keeping `lastTransitionTime` when the status did not change.
fn condition(
    old: &[Value],
    ty: &str,
    ok: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> Value {
    let status = if ok { "True" } else { "False" };
    let since = old
        .iter()
        .find(|c| c["type"] == ty && c["status"] == status)
        .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_string))
        .unwrap_or_else(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let mut c = json!({"type": ty, "status": status, "reason": reason, "message": message,
                       "lastTransitionTime": since});
    if let Some(g) = generation {
        c["observedGeneration"] = json!(g);
    }
    c
}

/// The KEP-1645 conditions of one export: `Valid` (the Service exists and is not
/// ExternalName), `Ready` (imported into every MCS consumer linked to it), `Conflict`.
fn export_conditions(
    old: &Export,
    has_service: bool,
    external_name: bool,
    verdicts: &[Verdict],
    conflict: Option<&linkplane_core::plan::mcs::Conflict>,
) -> Vec<Value> {
    let g = old.generation;
    let o = &old.conditions;
    let valid = if !has_service {
        condition(
            o,
            "Valid",
            false,
            "NoService",
            "the Service to export does not exist",
            g,
        )
    } else if external_name {
        condition(
            o,
            "Valid",
            false,
            "InvalidServiceType",
            "ExternalName Services cannot be exported",
            g,
        )
    } else {
        condition(o, "Valid", true, "Valid", "the Service is exported", g)
    };
    let failed: Vec<&str> = verdicts
        .iter()
        .filter_map(|(_, _, r)| r.as_ref().err().map(String::as_str))
        .collect();
    let imported: Vec<&str> = verdicts
        .iter()
        .filter(|(_, _, r)| r.is_ok())
        .map(|(_, c, _)| c.as_str())
        .collect();
    let ready = if has_service && !verdicts.is_empty() && failed.is_empty() {
        condition(
            o,
            "Ready",
            true,
            "Ready",
            &format!("imported into {}", imported.join(", ")),
            g,
        )
    } else {
        let why = if failed.is_empty() {
            "no cluster imports this service".to_string()
        } else {
            failed.join("; ")
        };
        condition(o, "Ready", false, "Pending", &why, g)
    };
    let conflict = match conflict {
        Some(c) => condition(o, "Conflict", true, c.reason, &c.message, g),
        None => condition(o, "Conflict", false, "NoConflicts", "", g),
    };
    vec![valid, ready, conflict]
}

async fn write_export_status(
    shared: &Shared,
    sink: &StateSink,
    exporter: &str,
    verdicts: &Verdicts,
    conflicts: &HashMap<(String, String), Option<linkplane_core::plan::mcs::Conflict>>,
    exporters_of: &HashMap<(String, String), Vec<String>>,
) {
    let Some(rt) = shared.runtime(exporter) else {
        return;
    };
    let Some(client) = rt.client() else { return };
    // Until its ServiceExports listed, the cluster's rows stay as they are.
    if !rt.is_synced() || !shared.leases.may_write(exporter) || !shared.mcs.synced(exporter) {
        return;
    }
    let mut rows = Vec::new();
    for ((ns, name), export) in shared.mcs.exports_of(exporter) {
        let (has_service, external_name) = {
            let idx = rt.index();
            let s = idx.services.get(&ns, &name);
            (s.is_some(), false)
        };
        let v = verdicts
            .get(&(exporter.to_string(), ns.clone(), name.clone()))
            .cloned()
            .unwrap_or_default();
        // The conflict is reported on every export that takes part in the import.
        let conflict = exporters_of
            .get(&(ns.clone(), name.clone()))
            .filter(|cs| cs.iter().any(|c| c == exporter))
            .and_then(|_| conflicts.get(&(ns.clone(), name.clone())))
            .and_then(Option::as_ref);
        let conditions = export_conditions(&export, has_service, external_name, &v, conflict);
        rows.push(export_status(
            exporter,
            &ns,
            &name,
            &export,
            &conditions,
            &v,
        ));
        let same = conditions.len() == export.conditions.len()
            && conditions.iter().all(|c| {
                export.conditions.iter().any(|o| {
                    ["type", "status", "reason", "message", "observedGeneration"]
                        .iter()
                        .all(|k| o.get(*k) == c.get(*k))
                })
            });
        if same {
            continue;
        }
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &service_export());
        let body = json!({
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "kind": "ServiceExport",
            "metadata": {"name": name, "namespace": ns},
            "status": {"conditions": conditions},
        });
        forget(shared, exporter, "ServiceExport/status", &ns, &name);
        // A failed write is logged there and retried on the next pass.
        let _ = apply_if_changed(shared, &api, exporter, "ServiceExport/status", body, true).await;
    }
    record(
        shared,
        sink,
        StateKey::Exports(exporter.to_string()),
        StateRows::Exports(rows),
    );
}

/// One replace, the unit the durable writer keeps (newest per key) across outages.
#[derive(Debug)]
struct StateWrite(StateKey, StateRows);

/// Sender side of the MCS state writer.
struct StateSink(mpsc::UnboundedSender<StateWrite>);

fn spawn_state_writer(store: Store, flush: Duration) -> StateSink {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(crate::status::run_durable(
        store,
        flush,
        rx,
        "committing MCS states",
        crate::status::AsIs,
    ));
    StateSink(tx)
}

impl crate::status::StateOp for StateWrite {
    type Key = StateKey;

    fn key(&self) -> StateKey {
        self.0.clone()
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut linkplane_store::PgConnection,
    ) -> futures::future::BoxFuture<'a, linkplane_store::Result<()>> {
        Box::pin(async move {
            match (&self.0, &self.1) {
                (StateKey::Exports(c), StateRows::Exports(rows)) => {
                    linkplane_store::mcs::replace_exports(conn, c, rows).await
                }
                (StateKey::Imports(c), StateRows::Imports(rows)) => {
                    linkplane_store::mcs::replace_imports(conn, c, rows).await
                }
                // `record` pairs keys and rows of one kind; nothing else is ever sent.
                _ => Ok(()),
            }
        })
    }
}

/// Sends a cluster's rows to the writer unless they are what was last sent.
fn record(shared: &Shared, sink: &StateSink, key: StateKey, mut rows: StateRows) {
    match &mut rows {
        StateRows::Exports(r) => {
            r.sort_by(|a, b| (&a.namespace, &a.service).cmp(&(&b.namespace, &b.service)))
        }
        StateRows::Imports(r) => {
            r.sort_by(|a, b| (&a.namespace, &a.service).cmp(&(&b.namespace, &b.service)))
        }
    }
    let mut recorded = shared
        .mcs
        .recorded
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if recorded.get(&key) == Some(&rows) {
        return;
    }
    recorded.insert(key.clone(), rows.clone());
    // The writer lives as long as the MCS task; a send after shutdown is moot.
    let _ = sink.0.send(StateWrite(key, rows));
}

/// Sets `linkplane_mcs_exports{cluster, state}` and `linkplane_mcs_imports{cluster, state}`
/// from the rows last recorded by this replica (the clusters it holds).
fn record_metrics(shared: &Shared) {
    let recorded = shared
        .mcs
        .recorded
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    for (key, rows) in recorded.iter() {
        match (key, rows) {
            (StateKey::Exports(c), StateRows::Exports(rows)) => {
                for st in McsExportState::ALL {
                    let n = rows.iter().filter(|r| r.state == *st).count();
                    shared.metrics.set_mcs_exports(c, st.as_str(), n);
                }
            }
            (StateKey::Imports(c), StateRows::Imports(rows)) => {
                for st in McsImportState::ALL {
                    let n = rows.iter().filter(|r| r.state == *st).count();
                    shared.metrics.set_mcs_imports(c, st.as_str(), n);
                }
            }
            _ => {}
        }
    }
}

/// The row of one export: its conditions as written, summed up in a state.
fn export_status(
    exporter: &str,
    ns: &str,
    name: &str,
    export: &Export,
    conditions: &[Value],
    verdicts: &[Verdict],
) -> McsExportStatus {
    let conditions: Vec<McsCondition> = conditions
        .iter()
        .filter_map(|c| serde_json::from_value(c.clone()).ok())
        .collect();
    let holds = |kind| {
        conditions
            .iter()
            .any(|c| c.kind == kind && c.status == ConditionStatus::True)
    };
    let state = export_state(
        holds(McsConditionType::Valid),
        holds(McsConditionType::Ready),
        holds(McsConditionType::Conflict),
    );
    let links: BTreeSet<String> = verdicts.iter().map(|(l, _, _)| l.clone()).collect();
    let imported_by: BTreeSet<String> = verdicts
        .iter()
        .filter(|(_, _, r)| r.is_ok())
        .map(|(_, c, _)| c.clone())
        .collect();
    McsExportStatus {
        cluster: exporter.to_string(),
        namespace: ns.to_string(),
        service: name.to_string(),
        state,
        conditions,
        links: links.into_iter().collect(),
        imported_by: imported_by.into_iter().collect(),
        exported_at: export.created,
    }
}

/// The row of one import written into `consumer`.
fn import_status(
    consumer: &str,
    d: &DesiredImport,
    conflict: Option<&linkplane_core::plan::mcs::Conflict>,
    failed: Option<&String>,
) -> McsImportStatus {
    let (state, message) = match (failed, conflict) {
        (Some(e), _) => (McsImportState::Error, e.clone()),
        (None, Some(c)) => (
            McsImportState::Conflict,
            format!("{}: {}", c.reason, c.message),
        ),
        (None, None) => (McsImportState::Imported, String::new()),
    };
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    McsImportStatus {
        cluster: consumer.to_string(),
        namespace: d.namespace.clone(),
        service: d.name.clone(),
        ty: d.ty,
        ports: d
            .ports
            .iter()
            .map(|p| McsPort {
                name: p.name.clone(),
                protocol: p.protocol.clone(),
                port: p.port,
            })
            .collect(),
        session_affinity: d.session_affinity.clone(),
        source_clusters: d.clusters.clone(),
        endpoint_slices: count(d.slices.len()),
        ready_endpoints: count(
            d.slices
                .iter()
                .flat_map(|s| &s.endpoints)
                .filter(|e| e.ready)
                .count(),
        ),
        state,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(conds: Vec<Value>) -> Export {
        Export {
            created: None,
            generation: Some(1),
            conditions: conds,
        }
    }

    /// KEP-1645 conditions: a missing Service is `Valid=False/NoService`; an import into every
    /// consumer is `Ready=True`; a conflict is `Conflict=True` with its reason.
    #[test]
    fn export_conditions_follow_the_kep() {
        let none = export_conditions(&export(vec![]), false, false, &[], None);
        assert_eq!(
            (none[0]["status"].as_str(), none[0]["reason"].as_str()),
            (Some("False"), Some("NoService"))
        );
        assert_eq!(none[1]["reason"], "Pending");
        let ok = export_conditions(
            &export(vec![]),
            true,
            false,
            &[("west-from-east".into(), "west".into(), Ok(()))],
            Some(&linkplane_core::plan::mcs::Conflict {
                reason: "PortConflict",
                message: "m".into(),
            }),
        );
        assert_eq!(ok[0]["status"], "True");
        assert_eq!(
            (ok[1]["status"].as_str(), ok[1]["message"].as_str()),
            (Some("True"), Some("imported into west"))
        );
        assert_eq!(
            (ok[2]["status"].as_str(), ok[2]["reason"].as_str()),
            (Some("True"), Some("PortConflict"))
        );
        assert_eq!(ok[2]["observedGeneration"], 1);
        // lastTransitionTime is kept while the status stays.
        let mut old = ok.clone();
        old[0]["lastTransitionTime"] = json!("2000-01-01T00:00:00Z");
        let again = export_conditions(
            &export(old),
            true,
            false,
            &[("west-from-east".into(), "west".into(), Ok(()))],
            None,
        );
        assert_eq!(again[0]["lastTransitionTime"], "2000-01-01T00:00:00Z");
        assert_eq!(again[2]["reason"], "NoConflicts");
    }

    #[test]
    fn the_embedded_crds_parse() {
        for y in [SERVICE_EXPORT_CRD, SERVICE_IMPORT_CRD] {
            let v: Value = serde_saphyr::from_str(y).unwrap();
            assert_eq!(v["spec"]["group"], GROUP);
        }
    }
}
