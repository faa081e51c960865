//! The in-memory index of one cluster's Services, Endpoints and Namespaces (Linkerd's index
//! pattern): watch events `apply` / `delete` / `reset` it; planners and appliers read it.
//!
//! Objects are reduced to the plain domain types of [`linkplane_core::plan`] on the way in, so
//! the index is cheap (20,000 mirrors fit in a few tens of MB) and testable without I/O. The same
//! index serves a cluster as a *target* (its exported Services) and as a *source* (the mirrors
//! actually present, and which namespaces exist); federation reads it too.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use linkplane_core::{
    naming::HEADLESS_MIRROR_SVC_NAME_LABEL,
    plan::{RemoteEndpoints, RemoteService},
};

/// `(namespace, name)`.
pub type ObjectKey = (String, String);

/// Kinds in a watch set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Services.
    Service,
    /// Endpoints.
    Endpoints,
    /// Namespaces.
    Namespace,
}

/// A Service as indexed: the planner's view plus what the applier needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexedService {
    /// Labels, annotations, ports, headless, resourceVersion.
    pub service: RemoteService,
    /// `spec.clusterIP` (`None` when unset or `"None"`).
    pub cluster_ip: Option<String>,
    /// `metadata.creationTimestamp` (federation's "oldest member wins").
    pub created_at: Option<DateTime<Utc>>,
}

/// An Endpoints object as indexed. Its namespace and name are the index key's: not held twice.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexedEndpoints {
    /// Labels (ownership checks).
    pub labels: CompactMap,
    /// Annotations (compared against the desired ones).
    pub annotations: CompactMap,
    /// Subsets and resourceVersion.
    pub endpoints: RemoteEndpoints,
}

/// An index entry that may belong to a group of objects in its namespace, found without a
/// scan: an endpoint mirror belongs to the mirror it serves (label
/// `mirror.linkerd.io/headless-mirror-svc-name`). Every reconcile asks for its mirror's group,
/// and a scan of the namespace instead was most of the CPU of a takeover at 100 clusters
/// (2,000 mirrors per namespace, one label lookup each, twice per reconcile).
pub trait Grouped {
    /// The name of the group, if any.
    fn group(&self) -> Option<&str> {
        None
    }
}

impl Grouped for IndexedService {
    fn group(&self) -> Option<&str> {
        self.service
            .labels
            .get(HEADLESS_MIRROR_SVC_NAME_LABEL)
            .map(String::as_str)
    }
}

impl Grouped for IndexedEndpoints {}

impl Grouped for BTreeMap<String, String> {}

/// A small string map held as one sorted boxed slice: what the index keeps of an object's
/// labels or annotations when nothing needs a `BTreeMap` of them.
///
/// A `BTreeMap<String, String>` allocates a whole leaf node (11 slots, ~560 bytes) however few
/// entries it has, plus a `String` with spare capacity per key and value; a mirror's Endpoints
/// has two maps of 3–6 entries, so the nodes alone were ~1.1 KB of its ~2.3 KB entry (heap
/// profile, issue 19). Here the entries take one exact-size allocation and one per string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompactMap(Box<[(Box<str>, Box<str>)]>);

impl CompactMap {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_ref())
    }

    /// True when `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when this holds exactly the entries of `map` (drift detection compares the live
    /// object against the desired map).
    pub fn same_as(&self, map: &BTreeMap<String, String>) -> bool {
        self.len() == map.len()
            && self
                .iter()
                .zip(map)
                .all(|((k, v), (mk, mv))| k == mk && v == mv)
    }

    /// As a `BTreeMap`.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl From<&BTreeMap<String, String>> for CompactMap {
    fn from(map: &BTreeMap<String, String>) -> Self {
        // A BTreeMap iterates in key order: the slice is sorted for `get`'s binary search.
        CompactMap(
            map.iter()
                .map(|(k, v)| (Box::from(k.as_str()), Box::from(v.as_str())))
                .collect(),
        )
    }
}

/// One kind's objects. A watch's re-list replaces the objects that watch lists, at once
/// ([`replace_listed`](KindIndex::replace_listed)): an object missing from the re-list was
/// deleted while the watch was down, and reads during a re-list still see the previous state.
#[derive(Debug, Clone)]
pub struct KindIndex<T> {
    objects: BTreeMap<ObjectKey, T>,
    /// `(namespace, group)` → names of its members ([`Grouped`]).
    groups: BTreeMap<ObjectKey, BTreeSet<String>>,
}

impl<T> Default for KindIndex<T> {
    fn default() -> Self {
        Self {
            objects: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }
}

impl<T: Clone + PartialEq + Grouped> KindIndex<T> {
    /// Adds or replaces an object; true when it changed.
    pub fn apply(&mut self, key: ObjectKey, value: T) -> bool {
        if self.objects.get(&key) == Some(&value) {
            return false;
        }
        let now = value.group().map(str::to_string);
        self.join_group(&key, &value);
        if let Some(old) = self.objects.insert(key.clone(), value) {
            self.leave_group(&key, &old, now.as_deref());
        }
        true
    }

    /// Removes an object; true when it was present.
    pub fn delete(&mut self, key: &ObjectKey) -> bool {
        match self.objects.remove(key) {
            Some(old) => {
                self.leave_group(key, &old, None);
                true
            }
            None => false,
        }
    }

    fn join_group(&mut self, (ns, name): &ObjectKey, value: &T) {
        if let Some(g) = value.group() {
            self.groups
                .entry((ns.clone(), g.to_string()))
                .or_default()
                .insert(name.clone());
        }
    }

    /// Takes `old`'s membership back unless the object's new value (group `now`) kept it.
    fn leave_group(&mut self, (ns, name): &ObjectKey, old: &T, now: Option<&str>) {
        let Some(g) = old.group() else { return };
        if now == Some(g) {
            return;
        }
        let gk = (ns.clone(), g.to_string());
        if let Some(members) = self.groups.get_mut(&gk) {
            members.remove(name);
            if members.is_empty() {
                self.groups.remove(&gk);
            }
        }
    }

    fn regroup(&mut self) {
        let mut groups: BTreeMap<ObjectKey, BTreeSet<String>> = BTreeMap::new();
        for ((ns, name), v) in &self.objects {
            if let Some(g) = v.group() {
                groups
                    .entry((ns.clone(), g.to_string()))
                    .or_default()
                    .insert(name.clone());
            }
        }
        self.groups = groups;
    }

    /// The members of group `group` in `namespace`.
    pub fn in_group<'a>(
        &'a self,
        namespace: &str,
        group: &str,
    ) -> impl Iterator<Item = &'a T> + 'a {
        let ns = namespace.to_string();
        let names = self.groups.get(&(ns.clone(), group.to_string()));
        names
            .into_iter()
            .flatten()
            .filter_map(move |n| self.objects.get(&(ns.clone(), n.clone())))
    }

    /// Removes an object if `listed_by_watch` says it is one the deleting watch lists; true when
    /// removed. Two watches with disjoint label selectors can feed one kind: when a label change
    /// moves an object from one to the other, the API server sends DELETED on one and ADDED on
    /// the other, in no order between them, and the DELETED must not remove the new copy.
    pub fn delete_if(&mut self, key: &ObjectKey, listed_by_watch: impl Fn(&T) -> bool) -> bool {
        if self.objects.get(key).is_some_and(listed_by_watch) {
            return self.delete(key);
        }
        false
    }

    /// A watch's re-list completed: `listed` replaces every object for which
    /// `listed_by_watch` holds (objects another watch lists stay). Returns the keys whose object
    /// changed, appeared or vanished.
    pub fn replace_listed(
        &mut self,
        listed: BTreeMap<ObjectKey, T>,
        listed_by_watch: impl Fn(&T) -> bool,
    ) -> Vec<ObjectKey> {
        let mut changed: Vec<ObjectKey> = self
            .objects
            .iter()
            .filter(|(k, v)| listed_by_watch(v) && listed.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        changed.extend(
            listed
                .keys()
                .filter(|k| !self.objects.contains_key(*k))
                .cloned(),
        );
        self.objects.retain(|_, v| !listed_by_watch(v));
        self.objects.extend(listed);
        self.regroup();
        changed
    }

    /// The object under `key`.
    pub fn get(&self, namespace: &str, name: &str) -> Option<&T> {
        self.objects.get(&(namespace.to_string(), name.to_string()))
    }

    /// Every object of one namespace.
    pub fn in_namespace<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = &'a T> + 'a {
        self.objects
            .range((namespace.to_string(), String::new())..)
            .take_while(move |((ns, _), _)| ns == namespace)
            .map(|(_, v)| v)
    }

    /// Every object.
    pub fn iter(&self) -> impl Iterator<Item = (&ObjectKey, &T)> {
        self.objects.iter()
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// Everything linkplane watches in one cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterIndex {
    /// Services of every namespace.
    pub services: KindIndex<IndexedService>,
    /// Endpoints of every namespace.
    pub endpoints: KindIndex<IndexedEndpoints>,
    /// Namespaces (keyed `("", name)`), with their labels.
    pub namespaces: KindIndex<BTreeMap<String, String>>,
}

impl ClusterIndex {
    /// True when the namespace exists.
    pub fn has_namespace(&self, namespace: &str) -> bool {
        self.namespaces.get("", namespace).is_some()
    }

    /// Names of every namespace.
    pub fn namespace_names(&self) -> BTreeSet<String> {
        self.namespaces
            .iter()
            .map(|((_, n), _)| n.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ns: &str, n: &str) -> ObjectKey {
        (ns.into(), n.into())
    }

    impl Grouped for u32 {}

    fn endpoint_mirror(root: Option<&str>) -> IndexedService {
        let mut s = IndexedService::default();
        if let Some(r) = root {
            s.service
                .labels
                .insert(HEADLESS_MIRROR_SVC_NAME_LABEL.into(), r.into());
        }
        s
    }

    fn members(idx: &KindIndex<IndexedService>, ns: &str, root: &str) -> usize {
        idx.in_group(ns, root).count()
    }

    #[test]
    fn groups_follow_applies_deletes_and_relists() {
        let mut idx = KindIndex::<IndexedService>::default();
        idx.apply(key("a", "h0-web"), endpoint_mirror(Some("web")));
        idx.apply(key("a", "h1-web"), endpoint_mirror(Some("web")));
        idx.apply(key("b", "h0-web"), endpoint_mirror(Some("web")));
        idx.apply(key("a", "web"), endpoint_mirror(None));
        assert_eq!(members(&idx, "a", "web"), 2);
        assert_eq!(members(&idx, "b", "web"), 1);
        // Relabelled to another root, then unlabelled: membership moves, then goes.
        idx.apply(key("a", "h1-web"), endpoint_mirror(Some("api")));
        assert_eq!(
            (members(&idx, "a", "web"), members(&idx, "a", "api")),
            (1, 1)
        );
        idx.apply(key("a", "h1-web"), endpoint_mirror(None));
        assert_eq!(members(&idx, "a", "api"), 0);
        idx.delete(&key("a", "h0-web"));
        assert_eq!(members(&idx, "a", "web"), 0);
        let listed = BTreeMap::from([(key("a", "h2-web"), endpoint_mirror(Some("web")))]);
        idx.replace_listed(listed, |_| true);
        assert_eq!(
            (members(&idx, "a", "web"), members(&idx, "b", "web")),
            (1, 0)
        );
    }

    #[test]
    fn apply_reports_only_real_changes() {
        let mut idx = KindIndex::<u32>::default();
        assert!(idx.apply(key("a", "x"), 1));
        assert!(!idx.apply(key("a", "x"), 1));
        assert!(idx.apply(key("a", "x"), 2));
        assert!(idx.delete(&key("a", "x")));
        assert!(!idx.delete(&key("a", "x")));
    }

    #[test]
    fn a_relist_drops_objects_missing_from_it_and_reports_them() {
        let mut idx = KindIndex::<u32>::default();
        idx.apply(key("a", "gone"), 1);
        idx.apply(key("a", "same"), 1);
        idx.apply(key("a", "changed"), 1);
        let listed = BTreeMap::from([
            (key("a", "same"), 1),
            (key("a", "changed"), 2),
            (key("b", "new"), 1),
        ]);
        let mut changed = idx.replace_listed(listed, |_| true);
        changed.sort();
        assert_eq!(
            changed,
            vec![key("a", "changed"), key("a", "gone"), key("b", "new")]
        );
        assert_eq!(idx.get("a", "gone"), None);
        assert_eq!(idx.len(), 3);
    }

    // Two watches feed one kind: even values stand for mirrors (one label selector), odd ones
    // for everything else (its negation, `!key`).
    #[test]
    fn a_relist_replaces_only_what_its_watch_lists() {
        let mirror = |v: &u32| v.is_multiple_of(2);
        let mut idx = KindIndex::<u32>::default();
        idx.apply(key("a", "export"), 1);
        idx.apply(key("a", "mirror-gone"), 2);
        idx.apply(key("a", "mirror-kept"), 4);
        let changed = idx.replace_listed(BTreeMap::from([(key("a", "mirror-kept"), 4)]), mirror);
        assert_eq!(changed, vec![key("a", "mirror-gone")]);
        assert_eq!(
            idx.get("a", "export"),
            Some(&1),
            "the other watch's object stays"
        );
        assert_eq!(idx.len(), 2);
    }

    // A label change moves an object between two watches' selectors: DELETED on one, ADDED on
    // the other, in either order (apimachinery's cache_watcher sends a DELETED when an object
    // stops matching a watch's selector and an ADDED when it starts to).
    #[test]
    fn a_delete_from_the_other_watch_keeps_the_moved_object() {
        let mirror = |v: &u32| v.is_multiple_of(2);
        let export = |v: &u32| !v.is_multiple_of(2);
        let mut idx = KindIndex::<u32>::default();
        idx.apply(key("a", "x"), 2);
        // ADDED (as an export) first, then the mirrors watch's DELETED.
        idx.apply(key("a", "x"), 3);
        assert!(!idx.delete_if(&key("a", "x"), mirror));
        assert_eq!(idx.get("a", "x"), Some(&3));
        // The other order: DELETED from the exports watch, then ADDED to the mirrors watch.
        assert!(idx.delete_if(&key("a", "x"), export));
        idx.apply(key("a", "x"), 4);
        assert_eq!(idx.get("a", "x"), Some(&4));
    }

    #[test]
    fn compact_map_looks_up_and_compares_like_the_map_it_was_built_from() {
        let map = BTreeMap::from([
            (
                "mirror.linkerd.io/mirrored-service".to_string(),
                "true".to_string(),
            ),
            ("app".to_string(), "web".to_string()),
            ("b".to_string(), String::new()),
        ]);
        let c = CompactMap::from(&map);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("app"), Some("web"));
        assert_eq!(c.get("b"), Some(""));
        assert_eq!(c.get("mirror.linkerd.io/mirrored-service"), Some("true"));
        assert_eq!(c.get("zzz"), None);
        assert!(!c.contains_key("a"));
        assert!(c.same_as(&map));
        assert_eq!(c.to_map(), map);
        // One entry changed, added or removed is a difference.
        let mut other = map.clone();
        other.insert("app".into(), "api".into());
        assert!(!c.same_as(&other));
        other = map.clone();
        other.insert("c".into(), "1".into());
        assert!(!c.same_as(&other));
        other = map.clone();
        other.remove("b");
        assert!(!c.same_as(&other));
        assert!(CompactMap::default().same_as(&BTreeMap::new()));
    }

    #[test]
    fn namespace_scan_stays_inside_the_namespace() {
        let mut idx = KindIndex::<u32>::default();
        idx.apply(key("a", "1"), 1);
        idx.apply(key("ab", "2"), 2);
        idx.apply(key("b", "3"), 3);
        assert_eq!(idx.in_namespace("a").copied().collect::<Vec<_>>(), vec![1]);
        assert_eq!(idx.in_namespace("ab").copied().collect::<Vec<_>>(), vec![2]);
        assert!(idx.in_namespace("c").next().is_none());
    }
}
