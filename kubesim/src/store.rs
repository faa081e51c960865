//! The in-memory object store of one cluster: a table per resource type keyed by
//! (namespace, name), one resourceVersion counter, a bounded event window per type for watch
//! resumption and a broadcast channel per type for live watchers.
//!
//! Objects are kept as serialized JSON bytes (plus their labels for selector matching), so a
//! list is a concatenation and a stored Service costs well under a kilobyte. Every method takes
//! the lock briefly and never across an `.await`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::admission::{self, Allocator, now};
use crate::apply;
use crate::crd::{self, Served};
use crate::patch;
use crate::resources::{CRDS, ENDPOINTS, NAMESPACES, RESOURCES, SERVICE_ACCOUNTS, SERVICES};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult};

/// Namespaces every cluster starts with, as a kubeadm cluster has them.
const INITIAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];
/// Namespaces that may not be deleted (403, as Kubernetes answers).
const UNDELETABLE_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];
/// Live-watcher channel capacity; a watcher that falls this far behind is closed and must
/// resume from its last resourceVersion (as a real API server closes slow watchers).
const WATCH_CHANNEL_CAPACITY: usize = 16_384;

/// One stored object.
#[derive(Debug)]
pub(crate) struct Obj {
    pub rv: u64,
    pub namespace: Box<str>,
    pub name: Box<str>,
    pub labels: Box<[(Box<str>, Box<str>)]>,
    pub json: Bytes,
}

impl Obj {
    /// The stored object parsed back (for a write).
    pub fn value(&self) -> ApiResult<Value> {
        serde_json::from_slice(&self.json)
            .map_err(|e| ApiError::internal(format!("stored object is corrupt: {e}")))
    }

    /// The same content stamped with another resourceVersion.
    fn at_version(&self, rv: u64) -> Option<Obj> {
        let mut v = self.value().ok()?;
        v["metadata"]["resourceVersion"] = json!(rv.to_string());
        Some(Obj {
            rv,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            labels: self.labels.clone(),
            json: Bytes::from(serde_json::to_vec(&v).ok()?),
        })
    }

    /// Whether it is selected by both selectors.
    pub fn selected(&self, labels: &LabelSelector, fields: &FieldSelector) -> bool {
        fields.matches(&self.namespace, &self.name)
            && labels.matches(|k| {
                self.labels
                    .iter()
                    .find(|(a, _)| &**a == k)
                    .map(|(_, v)| &**v)
            })
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    /// The watch event `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as watchers see it.
#[derive(Debug)]
pub(crate) struct Event {
    pub kind: EventType,
    pub obj: Arc<Obj>,
    /// The object before a MODIFIED change: a selecting watcher decides from both states.
    pub prev: Option<Arc<Obj>>,
}

impl Event {
    /// What a watcher of namespace `ns` with these selectors sees of this change, as the
    /// apiserver watch cache decides it (`staging/src/k8s.io/apiserver/pkg/storage/cacher/
    /// cache_watcher.go` `convertToWatchEvent`): a modification that makes the object match
    /// is ADDED, one that makes it stop matching is DELETED (carrying the previous content
    /// at the event's resourceVersion), and one that never matches is not seen.
    pub fn for_watcher(
        &self,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Option<(EventType, Arc<Obj>)> {
        let passes = |o: &Obj| ns.is_none_or(|n| &*o.namespace == n) && o.selected(labels, fields);
        match self.kind {
            EventType::Added | EventType::Deleted => {
                passes(&self.obj).then(|| (self.kind, self.obj.clone()))
            }
            EventType::Modified => {
                let now = passes(&self.obj);
                let before = self.prev.as_deref().is_some_and(passes);
                match (before, now) {
                    (true, true) => Some((EventType::Modified, self.obj.clone())),
                    (false, true) => Some((EventType::Added, self.obj.clone())),
                    (true, false) => {
                        let prev = self.prev.as_deref()?;
                        Some((EventType::Deleted, Arc::new(prev.at_version(self.obj.rv)?)))
                    }
                    (false, false) => None,
                }
            }
        }
    }
}

struct Table {
    objects: BTreeMap<Key, Arc<Obj>>,
    events: VecDeque<Arc<Event>>,
    /// Every event with a resourceVersion above this is still in `events`.
    history_start: u64,
    tx: broadcast::Sender<Arc<Event>>,
}

impl Table {
    fn new() -> Self {
        Self {
            objects: BTreeMap::new(),
            events: VecDeque::new(),
            history_start: 0,
            tx: broadcast::channel(WATCH_CHANNEL_CAPACITY).0,
        }
    }
}

struct Data {
    tables: Vec<Table>,
    /// Custom types this cluster serves (established CRDs), by table number.
    custom: BTreeMap<usize, Served>,
    rv: u64,
    window: usize,
    alloc: Allocator,
}

/// Who is writing, and how.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteCtx {
    /// `fieldManager`, or a name derived from the user agent.
    pub manager: String,
    /// `dryRun=All`: validate and default but store nothing.
    pub dry_run: bool,
    /// `force` for server-side apply.
    pub force: bool,
}

/// The patch formats the API accepts, by content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

/// A list answer.
pub(crate) struct ListPage {
    pub items: Vec<Arc<Obj>>,
    pub rv: u64,
    pub continue_token: Option<String>,
    pub remaining: usize,
}

/// What a new watch starts from.
pub(crate) struct WatchStart {
    pub initial: Vec<Arc<Event>>,
    pub rx: broadcast::Receiver<Arc<Event>>,
}

/// Delete preconditions (`DeleteOptions.preconditions`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

/// The object store of one cluster.
pub(crate) struct Store {
    data: Mutex<Data>,
}

/// Table key: (namespace, name); the namespace is empty for cluster-scoped types.
type Key = (Box<str>, Box<str>);

fn key(ns: &str, name: &str) -> Key {
    (ns.into(), name.into())
}

impl Store {
    /// A store with the initial namespaces and an event window of `window` events per type.
    pub fn new(window: usize) -> Self {
        let tables = RESOURCES.iter().map(|_| Table::new()).collect();
        let store = Self {
            data: Mutex::new(Data {
                tables,
                custom: BTreeMap::new(),
                rv: 0,
                window: window.max(1),
                alloc: Allocator::default(),
            }),
        };
        let ctx = WriteCtx {
            manager: "kube-apiserver".into(),
            ..WriteCtx::default()
        };
        for ns in INITIAL_NAMESPACES {
            // Cannot fail: the names are valid and the store is empty.
            let _ = store.create(NAMESPACES, None, json!({"metadata": {"name": ns}}), &ctx);
        }
        store
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        // A panic while holding the lock leaves consistent data (every write is one commit).
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Finds a served resource type by group, version and plural: a built-in one, or a
    /// custom one whose CRD is established in this cluster.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<usize> {
        crate::resources::find(group, version, plural).or_else(|| {
            let d = self.lock();
            d.custom.keys().copied().find(|r| {
                let t = crate::resources::rt(*r);
                t.group == group && t.version == version && t.plural == plural
            })
        })
    }

    /// The custom types this cluster serves.
    pub fn custom_types(&self) -> Vec<(usize, Served)> {
        let d = self.lock();
        d.custom.iter().map(|(r, s)| (*r, s.clone())).collect()
    }

    /// How a custom type is served (its schema and printer columns), if it is one.
    pub fn served(&self, r: usize) -> Option<Served> {
        self.lock().custom.get(&r).cloned()
    }

    /// The newest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// One object.
    pub fn get(&self, r: usize, ns: &str, name: &str) -> ApiResult<Arc<Obj>> {
        let d = self.lock();
        d.tables[r]
            .objects
            .get(&key(ns, name))
            .cloned()
            .ok_or_else(|| not_found(r, name))
    }

    /// A page of a list. `ns` of `None` lists across namespaces.
    pub fn list(
        &self,
        r: usize,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> ApiResult<ListPage> {
        let (start_after, token_rv) = match continue_token {
            Some(t) if !t.is_empty() => {
                let (rv, k) = decode_continue(t)
                    .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
                (Some(k), Some(rv))
            }
            _ => (None, None),
        };
        let d = self.lock();
        let table = &d.tables[r];
        let lower = match (&start_after, ns) {
            (Some(k), _) => std::ops::Bound::Excluded(k.clone()),
            (None, Some(ns)) => std::ops::Bound::Included(key(ns, "")),
            (None, None) => std::ops::Bound::Unbounded,
        };
        let mut items = Vec::new();
        let mut more = false;
        let mut last_key = None;
        let limit = limit.filter(|l| *l > 0);
        let mut remaining = 0;
        for (k, obj) in table.objects.range((lower, std::ops::Bound::Unbounded)) {
            if let Some(ns) = ns
                && &*k.0 != ns
            {
                break;
            }
            if !obj.selected(labels, fields) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                more = true;
                remaining += 1;
                continue;
            }
            last_key = Some(k.clone());
            items.push(obj.clone());
        }
        let rv = token_rv.unwrap_or(d.rv);
        let continue_token = if more {
            last_key.map(|k| encode_continue(rv, &k))
        } else {
            None
        };
        Ok(ListPage {
            items,
            rv,
            continue_token,
            remaining,
        })
    }

    /// Creates an object (`ns` is the request's namespace for namespaced types).
    pub fn create(
        &self,
        r: usize,
        ns: Option<&str>,
        mut obj: Value,
        ctx: &WriteCtx,
    ) -> ApiResult<Arc<Obj>> {
        admission::check_type_and_namespace(r, &mut obj, ns)?;
        let mut d = self.lock();
        d.create_locked(r, ns, obj, ctx, None)
    }

    /// Replaces an object (PUT). A resourceVersion in the body must match the stored one.
    pub fn update(
        &self,
        r: usize,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        subresource: &str,
        ctx: &WriteCtx,
    ) -> ApiResult<Arc<Obj>> {
        admission::check_type_and_namespace(r, &mut obj, ns)?;
        check_name(&obj, name)?;
        let mut d = self.lock();
        let nsk = ns.unwrap_or("");
        let Some(current) = d.tables[r].objects.get(&key(nsk, name)).cloned() else {
            if r == ENDPOINTS || crate::resources::rt(r).kind == "Event" {
                // These types allow create-on-update, as in Kubernetes.
                return d.create_locked(r, ns, obj, ctx, None);
            }
            return Err(not_found(r, name));
        };
        if let Some(rv) = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && !rv.is_empty()
            && rv != current.rv.to_string()
        {
            return Err(stale(r, name));
        }
        let old = current.value()?;
        d.update_locked(r, &old, obj, subresource, ctx)
    }

    /// Patches an object; a server-side apply creates it when missing.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        r: usize,
        ns: Option<&str>,
        name: &str,
        ty: PatchType,
        body: &Value,
        subresource: &str,
        ctx: &WriteCtx,
    ) -> ApiResult<(Arc<Obj>, bool)> {
        let rt = crate::resources::rt(r);
        let mut d = self.lock();
        let nsk = ns.unwrap_or("");
        let current = d.tables[r].objects.get(&key(nsk, name)).cloned();
        let Some(current) = current else {
            // Only the main resource may be created by an apply: a subresource of a missing
            // object is `404` (apiserver `patchResource` on a status store).
            if ty != PatchType::Apply || !subresource.is_empty() {
                return Err(not_found(r, name));
            }
            let mut applied = body.clone();
            admission::check_type_and_namespace(r, &mut applied, ns)?;
            check_name(&applied, name)?;
            let stamp = now();
            let empty = json!({"metadata": {"name": name}});
            let merged = apply::apply(
                r,
                &empty,
                &applied,
                &ctx.manager,
                ctx.force,
                subresource,
                &rt.api_version(),
                &stamp,
            )
            .map_err(|c| ApiError::apply_conflict(rt.group, rt.plural, name, c))?;
            let obj = d.create_locked(r, ns, merged, ctx, Some(()))?;
            return Ok((obj, true));
        };
        let old = current.value()?;
        let mut new = old.clone();
        let stamp = now();
        match ty {
            PatchType::Merge => patch::merge_patch(&mut new, body),
            PatchType::Strategic => patch::strategic_merge(r, &mut new, body),
            PatchType::Json => patch::json_patch(&mut new, body).map_err(|e| {
                ApiError::invalid(
                    rt.kind,
                    rt.group,
                    rt.plural,
                    name,
                    vec![crate::status::cause("FieldValueInvalid", "", e)],
                )
            })?,
            PatchType::Apply => {
                let mut applied = body.clone();
                admission::check_type_and_namespace(r, &mut applied, ns)?;
                check_name(&applied, name)?;
                new = apply::apply(
                    r,
                    &old,
                    &applied,
                    &ctx.manager,
                    ctx.force,
                    subresource,
                    &rt.api_version(),
                    &stamp,
                )
                .map_err(|c| ApiError::apply_conflict(rt.group, rt.plural, name, c))?;
            }
        }
        if new.pointer("/metadata/resourceVersion") != old.pointer("/metadata/resourceVersion")
            && new
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .is_some()
        {
            return Err(stale(r, name));
        }
        admission::check_type_and_namespace(r, &mut new, ns)?;
        check_name(&new, name)?;
        let ctx = if ty == PatchType::Apply {
            WriteCtx {
                manager: String::new(),
                ..ctx.clone()
            }
        } else {
            ctx.clone()
        };
        let obj = d.update_locked(r, &old, new, subresource, &ctx)?;
        Ok((obj, false))
    }

    /// Deletes an object; with finalizers it only gets a `deletionTimestamp`.
    pub fn delete(
        &self,
        r: usize,
        ns: Option<&str>,
        name: &str,
        pre: &Preconditions,
        dry_run: bool,
    ) -> ApiResult<Arc<Obj>> {
        let mut d = self.lock();
        let nsk = ns.unwrap_or("");
        let current = d.tables[r]
            .objects
            .get(&key(nsk, name))
            .cloned()
            .ok_or_else(|| not_found(r, name))?;
        if let Some(uid) = &pre.uid {
            let actual = current.value()?;
            if actual.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid.as_str()) {
                let rt = crate::resources::rt(r);
                return Err(ApiError::conflict(
                    rt.group,
                    rt.plural,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        actual
                            .pointer("/metadata/uid")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                    ),
                ));
            }
        }
        if let Some(rv) = &pre.resource_version
            && *rv != current.rv.to_string()
        {
            return Err(stale(r, name));
        }
        if r == NAMESPACES && UNDELETABLE_NAMESPACES.contains(&name) {
            return Err(ApiError::forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        if dry_run {
            return Ok(current);
        }
        d.delete_locked(r, &current)
    }

    /// Deletes every selected object of a collection.
    pub fn delete_collection(
        &self,
        r: usize,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        dry_run: bool,
    ) -> ApiResult<Vec<Arc<Obj>>> {
        let mut d = self.lock();
        let victims: Vec<Arc<Obj>> = d.tables[r]
            .objects
            .values()
            .filter(|o| ns.is_none_or(|ns| &*o.namespace == ns) && o.selected(labels, fields))
            .filter(|o| !(r == NAMESPACES && UNDELETABLE_NAMESPACES.contains(&&*o.name)))
            .cloned()
            .collect();
        if dry_run {
            return Ok(victims);
        }
        victims.iter().map(|v| d.delete_locked(r, v)).collect()
    }

    /// Starts a watch. `rv` of `None` (or 0) sends the current objects as ADDED first; otherwise
    /// the retained events after `rv` are replayed, or `410 Expired` if they are gone.
    pub fn watch(
        &self,
        r: usize,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        rv: Option<u64>,
    ) -> ApiResult<WatchStart> {
        let d = self.lock();
        let table = &d.tables[r];
        let selected =
            |o: &Obj| ns.is_none_or(|ns| &*o.namespace == ns) && o.selected(labels, fields);
        let initial = match rv {
            None | Some(0) => table
                .objects
                .values()
                .filter(|o| selected(o))
                .map(|o| {
                    Arc::new(Event {
                        kind: EventType::Added,
                        obj: o.clone(),
                        prev: None,
                    })
                })
                .collect(),
            Some(rv) => {
                if rv < table.history_start {
                    return Err(ApiError::gone(format!(
                        "too old resource version: {rv} ({})",
                        table.history_start
                    )));
                }
                table
                    .events
                    .iter()
                    .filter(|e| e.obj.rv > rv)
                    .filter_map(|e| e.for_watcher(ns, labels, fields))
                    .map(|(kind, obj)| {
                        Arc::new(Event {
                            kind,
                            obj,
                            prev: None,
                        })
                    })
                    .collect()
            }
        };
        Ok(WatchStart {
            initial,
            rx: table.tx.subscribe(),
        })
    }

    /// Forgets all watch history: any watch from an older resourceVersion gets `410`.
    pub fn expire_history(&self) {
        let mut d = self.lock();
        let rv = d.rv;
        for t in &mut d.tables {
            t.events.clear();
            t.history_start = rv;
        }
    }

    /// Number of stored objects of a resource type.
    pub fn stored_count(&self, r: usize) -> usize {
        self.lock().tables[r].objects.len()
    }

    /// Total stored object bytes and count for a resource type (benchmarks report it).
    pub fn stored_bytes(&self, r: usize) -> (usize, usize) {
        let d = self.lock();
        let t = &d.tables[r];
        let bytes = t
            .objects
            .values()
            .map(|o| {
                o.json.len()
                    + o.namespace.len() * 2
                    + o.name.len() * 2
                    + o.labels
                        .iter()
                        .map(|(k, v)| k.len() + v.len() + 48)
                        .sum::<usize>()
                    + std::mem::size_of::<Obj>()
                    + 2 * std::mem::size_of::<(String, String)>()
            })
            .sum();
        (bytes, t.objects.len())
    }
}

impl Data {
    fn create_locked(
        &mut self,
        r: usize,
        ns: Option<&str>,
        mut obj: Value,
        ctx: &WriteCtx,
        applied: Option<()>,
    ) -> ApiResult<Arc<Obj>> {
        let rt = crate::resources::rt(r);
        if let Some(ns) = ns {
            match self.tables[NAMESPACES].objects.get(&key("", ns)) {
                None => return Err(not_found(NAMESPACES, ns)),
                Some(n) if n.json.windows(17).any(|w| w == b"deletionTimestamp") => {
                    return Err(ApiError::forbidden(format!(
                        "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        rt.plural,
                        obj.pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                    )));
                }
                Some(_) => {}
            }
        }
        admission::default_create(r, &mut obj, &mut self.alloc)?;
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let release = |alloc: &mut Allocator, obj: &Value| {
            if r == SERVICES {
                alloc.release_service(obj);
            }
        };
        if let Err(e) = self
            .admit_custom(r, &mut obj)
            .and_then(|()| admission::validate(r, &obj))
        {
            release(&mut self.alloc, &obj);
            return Err(e);
        }
        if r == ENDPOINTS {
            crate::endpoints::canonicalize(&mut obj);
        }
        if self.tables[r]
            .objects
            .contains_key(&key(ns.unwrap_or(""), &name))
        {
            release(&mut self.alloc, &obj);
            return Err(ApiError::already_exists(rt.group, rt.plural, &name));
        }
        if applied.is_none() {
            apply::record_update(
                r,
                None,
                &mut obj,
                &ctx.manager,
                "",
                &rt.api_version(),
                &now(),
            );
        }
        if ctx.dry_run {
            release(&mut self.alloc, &obj);
            return self.build(r, obj, self.rv);
        }
        let created = self.commit(r, EventType::Added, obj)?;
        if r == CRDS {
            // The naming and establishing controllers accept the names and serve the types
            // right after the create (the response still shows the CRD without conditions,
            // as clients then wait for `Established`).
            self.establish(&name)?;
        }
        if r == NAMESPACES {
            // The service-account controller gives every namespace a `default` ServiceAccount
            // (kubernetes `pkg/controller/serviceaccount/serviceaccounts_controller.go`), which
            // `kubectl create token default` and pods without `serviceAccountName` rely on.
            let controller = WriteCtx {
                manager: "kube-controller-manager".into(),
                ..WriteCtx::default()
            };
            let _ = self.create_locked(
                SERVICE_ACCOUNTS,
                Some(&name),
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}}),
                &controller,
                None,
            );
        }
        Ok(created)
    }

    fn update_locked(
        &mut self,
        r: usize,
        old: &Value,
        mut obj: Value,
        subresource: &str,
        ctx: &WriteCtx,
    ) -> ApiResult<Arc<Obj>> {
        let rt = crate::resources::rt(r);
        if rt.status {
            if subresource == "status" {
                // The status subresource changes status only (and the field ownership of
                // that write: managedFields is maintained by every write).
                let status = obj.get("status").cloned();
                let managed = obj.pointer("/metadata/managedFields").cloned();
                obj = old.clone();
                if let Some(m) = managed {
                    obj["metadata"]["managedFields"] = m;
                }
                match status {
                    Some(s) => obj["status"] = s,
                    None => {
                        if let Value::Object(m) = &mut obj {
                            m.remove("status");
                        }
                    }
                }
            } else if r != NAMESPACES {
                match old.get("status") {
                    Some(s) => obj["status"] = s.clone(),
                    None => {
                        if let Value::Object(m) = &mut obj {
                            m.remove("status");
                        }
                    }
                }
            }
        }
        let mut scratch = Allocator::default();
        let alloc = if ctx.dry_run {
            &mut scratch
        } else {
            &mut self.alloc
        };
        admission::default_update(r, old, &mut obj, alloc)?;
        self.admit_custom(r, &mut obj)?;
        admission::validate(r, &obj)?;
        if r == ENDPOINTS {
            crate::endpoints::canonicalize(&mut obj);
        }
        if !ctx.manager.is_empty() {
            apply::record_update(
                r,
                Some(old),
                &mut obj,
                &ctx.manager,
                subresource,
                &rt.api_version(),
                &now(),
            );
        }
        let mut unchanged = obj.clone();
        unchanged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if let Value::Object(m) = &mut unchanged["metadata"] {
            m.remove("managedFields");
        }
        let mut old_cmp = old.clone();
        if let Value::Object(m) = &mut old_cmp["metadata"] {
            m.remove("managedFields");
        }
        if unchanged == old_cmp {
            // A no-op write does not bump the resourceVersion nor notify watchers.
            let ns = old
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("");
            let name = old
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if let Some(o) = self.tables[r].objects.get(&key(ns, name)) {
                return Ok(o.clone());
            }
        }
        if ctx.dry_run {
            return self.build(r, obj, self.rv);
        }
        let deleting = obj.pointer("/metadata/deletionTimestamp").is_some();
        let no_finalizers = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if deleting && no_finalizers {
            let built = self.commit(r, EventType::Modified, obj)?;
            return self.remove(r, &built);
        }
        let updated = self.commit(r, EventType::Modified, obj)?;
        if r == CRDS && subresource != "status" {
            self.establish(&updated.name.clone())?;
            if let Some(o) = self.tables[CRDS].objects.get(&key("", &updated.name)) {
                return Ok(o.clone());
            }
        }
        Ok(updated)
    }

    /// Prunes, defaults and validates a custom object by its version's schema.
    fn admit_custom(&self, r: usize, obj: &mut Value) -> ApiResult<()> {
        let Some(served) = self.custom.get(&r) else {
            return Ok(());
        };
        crd::admit(&served.schema, obj).map_err(|causes| {
            let t = crate::resources::rt(r);
            ApiError::invalid(
                t.kind,
                t.group,
                t.plural,
                obj.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                causes,
            )
        })
    }

    /// Plays the CRD naming and establishing controllers for one CRD: decides whether its
    /// names are accepted, writes `status` (conditions `NamesAccepted` and `Established`,
    /// `acceptedNames`, `storedVersions`) and serves its versions when accepted.
    fn establish(&mut self, name: &str) -> ApiResult<()> {
        let Some(current) = self.tables[CRDS].objects.get(&key("", name)).cloned() else {
            return Ok(());
        };
        let v = current.value()?;
        if v.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(());
        }
        let others: Vec<Value> = self.tables[CRDS]
            .objects
            .values()
            .filter_map(|o| o.value().ok())
            .collect();
        let conflict = crd::names_conflict(&v, &others);
        let accepted = conflict.is_none();
        let status = crd::status(&v, conflict, &now());
        self.custom.retain(|_, s| s.crd != name);
        if accepted {
            for (r, served) in crd::served_types(&v) {
                while self.tables.len() <= r {
                    self.tables.push(Table::new());
                }
                self.custom.insert(r, served);
            }
        }
        if v.get("status") != Some(&status) {
            let mut new = v;
            new["status"] = status;
            self.commit(CRDS, EventType::Modified, new)?;
        }
        Ok(())
    }

    /// The CRD cleanup (finalizer) controller: deleting a CRD deletes every object of its
    /// types and stops serving them.
    fn cleanup_crd(&mut self, name: &str) -> ApiResult<()> {
        let types: Vec<usize> = self
            .custom
            .iter()
            .filter(|(_, s)| s.crd == name)
            .map(|(r, _)| *r)
            .collect();
        for r in types {
            let all: Vec<Arc<Obj>> = self.tables[r].objects.values().cloned().collect();
            for o in all {
                let mut obj = o.value()?;
                obj["metadata"]["resourceVersion"] = json!(o.rv.to_string());
                self.commit(r, EventType::Deleted, obj)?;
            }
            self.custom.remove(&r);
        }
        Ok(())
    }

    fn delete_locked(&mut self, r: usize, current: &Arc<Obj>) -> ApiResult<Arc<Obj>> {
        let mut obj = current.value()?;
        let has_finalizers = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if r == NAMESPACES {
            if obj.pointer("/metadata/deletionTimestamp").is_none() {
                obj["metadata"]["deletionTimestamp"] = json!(now());
                obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                obj["status"] = json!({"phase": "Terminating"});
                self.commit(r, EventType::Modified, obj)?;
            }
            // Play the namespace controller: delete everything inside.
            let ns = current.name.clone();
            for t in 0..self.tables.len() {
                if t == NAMESPACES {
                    continue;
                }
                let inside: Vec<Arc<Obj>> = self.tables[t]
                    .objects
                    .range(key(&ns, "")..)
                    .take_while(|(k, _)| *k.0 == *ns)
                    .map(|(_, o)| o.clone())
                    .collect();
                for o in inside {
                    self.delete_locked(t, &o)?;
                }
            }
            return self
                .finish_namespace(&ns)
                .map(|o| o.unwrap_or_else(|| current.clone()));
        }
        if has_finalizers {
            if obj.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(current.clone());
            }
            obj["metadata"]["deletionTimestamp"] = json!(now());
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            return self.commit(r, EventType::Modified, obj);
        }
        self.remove(r, current)
    }

    /// Removes an object for good (DELETED event) with the side effects controllers would have.
    fn remove(&mut self, r: usize, current: &Arc<Obj>) -> ApiResult<Arc<Obj>> {
        if r == CRDS {
            self.cleanup_crd(&current.name.clone())?;
        }
        let mut obj = current.value()?;
        if r == SERVICES {
            self.alloc.release_service(&obj);
        }
        obj["metadata"]["resourceVersion"] = json!(current.rv.to_string());
        let deleted = self.commit(r, EventType::Deleted, obj)?;
        if r == SERVICES
            && let Some(ep) = self.tables[ENDPOINTS]
                .objects
                .get(&key(&current.namespace, &current.name))
                .cloned()
        {
            // The endpoints controller removes a Service's Endpoints with it.
            self.delete_locked(ENDPOINTS, &ep)?;
        }
        if !current.namespace.is_empty() {
            self.finish_namespace(&current.namespace.clone())?;
        }
        Ok(deleted)
    }

    /// Removes a terminating namespace once it is empty. Returns the DELETED namespace.
    fn finish_namespace(&mut self, ns: &str) -> ApiResult<Option<Arc<Obj>>> {
        let Some(nsobj) = self.tables[NAMESPACES].objects.get(&key("", ns)).cloned() else {
            return Ok(None);
        };
        if !nsobj.json.windows(17).any(|w| w == b"deletionTimestamp") {
            return Ok(None);
        }
        let empty = self
            .tables
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != NAMESPACES)
            .all(|(_, t)| {
                t.objects
                    .range(key(ns, "")..)
                    .next()
                    .is_none_or(|(k, _)| &*k.0 != ns)
            });
        if !empty {
            return Ok(None);
        }
        let obj = nsobj.value()?;
        self.commit(NAMESPACES, EventType::Deleted, obj).map(Some)
    }

    fn build(&self, r: usize, mut obj: Value, rv: u64) -> ApiResult<Arc<Obj>> {
        let _ = r;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let m = &obj["metadata"];
        let text = |k: &str| -> Box<str> { m.get(k).and_then(Value::as_str).unwrap_or("").into() };
        let (namespace, name) = (text("namespace"), text("name"));
        let labels = m
            .get("labels")
            .and_then(Value::as_object)
            .map(|l| {
                l.iter()
                    .map(|(k, v)| (k.as_str().into(), v.as_str().unwrap_or("").into()))
                    .collect()
            })
            .unwrap_or_default();
        let mut json = serde_json::to_vec(&obj)
            .map_err(|e| ApiError::internal(format!("cannot serialize object: {e}")))?;
        // `to_vec` grows by doubling; a stored object keeps only what it uses.
        json.shrink_to_fit();
        Ok(Arc::new(Obj {
            rv,
            namespace,
            name,
            labels,
            json: Bytes::from(json),
        }))
    }

    /// Stores one change: new resourceVersion, table, event window, live watchers.
    fn commit(&mut self, r: usize, kind: EventType, obj: Value) -> ApiResult<Arc<Obj>> {
        let rv = self.rv + 1;
        let built = self.build(r, obj, rv)?;
        self.rv = rv;
        let window = self.window;
        let t = &mut self.tables[r];
        let k = key(&built.namespace, &built.name);
        let prev = if kind == EventType::Modified {
            t.objects.get(&k).cloned()
        } else {
            None
        };
        if kind == EventType::Deleted {
            t.objects.remove(&k);
        } else {
            t.objects.insert(k, built.clone());
        }
        let event = Arc::new(Event {
            kind,
            obj: built.clone(),
            prev,
        });
        t.events.push_back(event.clone());
        while t.events.len() > window {
            if let Some(old) = t.events.pop_front() {
                t.history_start = old.obj.rv;
            }
        }
        // No receivers is fine: nobody is watching this type.
        let _ = t.tx.send(event);
        Ok(built)
    }
}

fn not_found(r: usize, name: &str) -> ApiError {
    let rt = crate::resources::rt(r);
    ApiError::not_found(rt.group, rt.plural, name)
}

fn stale(r: usize, name: &str) -> ApiError {
    let rt = crate::resources::rt(r);
    ApiError::stale(rt.group, rt.plural, name)
}

fn check_name(obj: &Value, name: &str) -> ApiResult<()> {
    match obj.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) if n == name => Ok(()),
        None | Some("") => Ok(()),
        Some(n) => Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        ))),
    }
}

fn encode_continue(rv: u64, k: &Key) -> String {
    use base64::Engine;
    let raw = json!({"rv": rv, "ns": k.0, "name": k.1}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(token: &str) -> Option<(u64, Key)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    Some((
        v.get("rv")?.as_u64()?,
        (
            v.get("ns")?.as_str()?.into(),
            v.get("name")?.as_str()?.into(),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> WriteCtx {
        WriteCtx {
            manager: "test".into(),
            ..WriteCtx::default()
        }
    }

    fn svc(name: &str, app: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"app": app}}, "spec": {"ports": [{"port": 80}]}})
    }

    #[test]
    fn list_pages_with_continue_tokens() {
        let s = Store::new(100);
        for i in 0..5 {
            s.create(
                SERVICES,
                Some("default"),
                svc(&format!("s{i}"), "a"),
                &ctx(),
            )
            .unwrap();
        }
        let all = LabelSelector::default();
        let nf = FieldSelector::default();
        let p1 = s
            .list(SERVICES, Some("default"), &all, &nf, Some(2), None)
            .unwrap();
        assert_eq!(p1.items.len(), 2);
        assert_eq!(p1.remaining, 3);
        let p2 = s
            .list(
                SERVICES,
                Some("default"),
                &all,
                &nf,
                Some(10),
                p1.continue_token.as_deref(),
            )
            .unwrap();
        let names: Vec<&str> = p2.items.iter().map(|o| &*o.name).collect();
        assert_eq!(names, vec!["s2", "s3", "s4"]);
        assert_eq!(
            p2.rv, p1.rv,
            "pages report the first page's resourceVersion"
        );
        assert!(p2.continue_token.is_none());
    }

    #[test]
    fn watch_from_an_expired_version_is_gone() {
        let s = Store::new(2);
        for i in 0..4 {
            s.create(
                SERVICES,
                Some("default"),
                svc(&format!("s{i}"), "a"),
                &ctx(),
            )
            .unwrap();
        }
        let all = LabelSelector::default();
        let nf = FieldSelector::default();
        let err = s.watch(SERVICES, None, &all, &nf, Some(1)).err().unwrap();
        assert_eq!((err.code, err.reason), (410, "Expired"));
        let rv = s.current_rv();
        let ok = s.watch(SERVICES, None, &all, &nf, Some(rv - 1)).unwrap();
        assert_eq!(ok.initial.len(), 1);
        s.expire_history();
        assert_eq!(
            s.watch(SERVICES, None, &all, &nf, Some(rv - 1))
                .err()
                .unwrap()
                .code,
            410
        );
    }

    /// apiserver watch cache `cache_watcher.go` `convertToWatchEvent`: a selecting watcher
    /// sees a modification that enters its selection as ADDED and one that leaves it as
    /// DELETED with the previous content at the new resourceVersion; replays decide alike.
    #[test]
    fn selector_transitions_are_added_and_deleted() {
        let s = Store::new(100);
        let start = s.current_rv();
        s.create(SERVICES, Some("default"), svc("web", "y"), &ctx())
            .unwrap();
        let relabel = |app: &str| {
            let mut v = s.get(SERVICES, "default", "web").unwrap().value().unwrap();
            v["metadata"]["labels"]["app"] = json!(app);
            s.update(SERVICES, Some("default"), "web", v, "", &ctx())
                .unwrap()
        };
        relabel("x");
        let mut v = s.get(SERVICES, "default", "web").unwrap().value().unwrap();
        v["metadata"]["annotations"] = json!({"a": "b"});
        s.update(SERVICES, Some("default"), "web", v, "", &ctx())
            .unwrap();
        let left = relabel("y");
        let app_x = LabelSelector::parse("app=x").unwrap();
        let replay = s
            .watch(
                SERVICES,
                None,
                &app_x,
                &FieldSelector::default(),
                Some(start),
            )
            .unwrap()
            .initial;
        let seen: Vec<(&str, String, u64)> = replay
            .iter()
            .map(|e| {
                let v = e.obj.value().unwrap();
                (
                    e.kind.as_str(),
                    v["metadata"]["labels"]["app"].as_str().unwrap().to_string(),
                    e.obj.rv,
                )
            })
            .collect();
        assert_eq!(
            seen.iter()
                .map(|(k, a, _)| (*k, a.as_str()))
                .collect::<Vec<_>>(),
            vec![("ADDED", "x"), ("MODIFIED", "x"), ("DELETED", "x")],
            "the DELETED event carries the last matching content"
        );
        let deleted = &replay[2].obj;
        assert_eq!(deleted.rv, left.rv);
        assert_eq!(
            deleted.value().unwrap()["metadata"]["resourceVersion"],
            json!(left.rv.to_string())
        );
        let everything = s
            .watch(
                SERVICES,
                None,
                &LabelSelector::default(),
                &FieldSelector::default(),
                Some(start),
            )
            .unwrap()
            .initial;
        let kinds: Vec<&str> = everything.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, vec!["ADDED", "MODIFIED", "MODIFIED", "MODIFIED"]);
    }

    #[test]
    fn finalizers_delay_deletion_until_removed() {
        let s = Store::new(100);
        let mut v = svc("web", "a");
        v["metadata"]["finalizers"] = json!(["example.com/keep"]);
        s.create(SERVICES, Some("default"), v, &ctx()).unwrap();
        let marked = s
            .delete(
                SERVICES,
                Some("default"),
                "web",
                &Preconditions::default(),
                false,
            )
            .unwrap();
        assert!(
            marked
                .value()
                .unwrap()
                .pointer("/metadata/deletionTimestamp")
                .is_some()
        );
        let mut cur = s.get(SERVICES, "default", "web").unwrap().value().unwrap();
        cur["metadata"]["finalizers"] = json!([]);
        s.update(SERVICES, Some("default"), "web", cur, "", &ctx())
            .unwrap();
        assert_eq!(s.get(SERVICES, "default", "web").err().unwrap().code, 404);
    }

    #[test]
    fn deleting_a_namespace_deletes_its_objects() {
        let s = Store::new(100);
        s.create(
            NAMESPACES,
            None,
            json!({"metadata": {"name": "team"}}),
            &ctx(),
        )
        .unwrap();
        s.create(SERVICES, Some("team"), svc("web", "a"), &ctx())
            .unwrap();
        s.delete(NAMESPACES, None, "team", &Preconditions::default(), false)
            .unwrap();
        assert_eq!(s.get(SERVICES, "team", "web").err().unwrap().code, 404);
        assert_eq!(s.get(NAMESPACES, "", "team").err().unwrap().code, 404);
        let err = s
            .delete(
                NAMESPACES,
                None,
                "default",
                &Preconditions::default(),
                false,
            )
            .err()
            .unwrap();
        assert_eq!(err.code, 403);
    }

    #[test]
    fn deleting_a_service_deletes_its_endpoints() {
        let s = Store::new(100);
        s.create(SERVICES, Some("default"), svc("web", "a"), &ctx())
            .unwrap();
        s.create(
            ENDPOINTS,
            Some("default"),
            json!({"metadata": {"name": "web"}, "subsets": []}),
            &ctx(),
        )
        .unwrap();
        s.delete(
            SERVICES,
            Some("default"),
            "web",
            &Preconditions::default(),
            false,
        )
        .unwrap();
        assert_eq!(s.get(ENDPOINTS, "default", "web").err().unwrap().code, 404);
    }

    #[test]
    fn stale_updates_conflict_and_noop_updates_keep_the_version() {
        let s = Store::new(100);
        let created = s
            .create(SERVICES, Some("default"), svc("web", "a"), &ctx())
            .unwrap();
        let v = created.value().unwrap();
        let same = s
            .update(SERVICES, Some("default"), "web", v.clone(), "", &ctx())
            .unwrap();
        assert_eq!(same.rv, created.rv);
        let mut changed = v.clone();
        changed["metadata"]["labels"]["app"] = json!("b");
        s.update(
            SERVICES,
            Some("default"),
            "web",
            changed.clone(),
            "",
            &ctx(),
        )
        .unwrap();
        let err = s
            .update(SERVICES, Some("default"), "web", changed, "", &ctx())
            .err()
            .unwrap();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
    }
}
