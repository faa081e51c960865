//! The in-memory index of one cluster's Services, Endpoints and Namespaces (Linkerd's index
//! pattern): watch events `apply` / `delete` / `reset` it; planners and appliers read it.
//!
//! Objects are reduced to the plain domain types of [`linkplane_core::plan`] on the way in, so
//! the index is cheap (20,000 mirrors fit in a few tens of MB) and testable without I/O. The same
//! index serves a cluster as a *target* (its exported Services) and as a *source* (the mirrors
//! actually present, and which namespaces exist); federation reads it too.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use linkplane_core::plan::{RemoteEndpoints, RemoteService};

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

/// An Endpoints object as indexed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexedEndpoints {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels (ownership checks).
    pub labels: BTreeMap<String, String>,
    /// Annotations (compared against the desired ones).
    pub annotations: BTreeMap<String, String>,
    /// Subsets and resourceVersion.
    pub endpoints: RemoteEndpoints,
}

/// One kind's objects, with watcher restart semantics: between `begin_reset` and `finish_reset`
/// objects are buffered, then swapped in atomically (an object missing from the re-list was
/// deleted while the watch was down).
#[derive(Debug, Clone)]
pub struct KindIndex<T> {
    objects: BTreeMap<ObjectKey, T>,
    buffer: Option<BTreeMap<ObjectKey, T>>,
}

impl<T> Default for KindIndex<T> {
    fn default() -> Self {
        Self {
            objects: BTreeMap::new(),
            buffer: None,
        }
    }
}

impl<T: Clone + PartialEq> KindIndex<T> {
    /// Adds or replaces an object; true when it changed.
    pub fn apply(&mut self, key: ObjectKey, value: T) -> bool {
        if self.objects.get(&key) == Some(&value) {
            return false;
        }
        self.objects.insert(key, value);
        true
    }

    /// Removes an object; true when it was present.
    pub fn delete(&mut self, key: &ObjectKey) -> bool {
        self.objects.remove(key).is_some()
    }

    /// Starts a re-list.
    pub fn begin_reset(&mut self) {
        self.buffer = Some(BTreeMap::new());
    }

    /// Adds an object seen during a re-list.
    pub fn reset_apply(&mut self, key: ObjectKey, value: T) {
        self.buffer
            .get_or_insert_with(BTreeMap::new)
            .insert(key, value);
    }

    /// Completes a re-list; returns the keys whose object changed, appeared or vanished.
    pub fn finish_reset(&mut self) -> Vec<ObjectKey> {
        let new = self.buffer.take().unwrap_or_default();
        let mut changed: Vec<ObjectKey> = self
            .objects
            .iter()
            .filter(|(k, v)| new.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        changed.extend(
            new.keys()
                .filter(|k| !self.objects.contains_key(*k))
                .cloned(),
        );
        self.objects = new;
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
    fn reset_drops_objects_missing_from_the_relist_and_reports_them() {
        let mut idx = KindIndex::<u32>::default();
        idx.apply(key("a", "gone"), 1);
        idx.apply(key("a", "same"), 1);
        idx.apply(key("a", "changed"), 1);
        idx.begin_reset();
        idx.reset_apply(key("a", "same"), 1);
        idx.reset_apply(key("a", "changed"), 2);
        idx.reset_apply(key("b", "new"), 1);
        // Reads during a re-list still see the previous state.
        assert_eq!(idx.get("a", "gone"), Some(&1));
        let mut changed = idx.finish_reset();
        changed.sort();
        assert_eq!(
            changed,
            vec![key("a", "changed"), key("a", "gone"), key("b", "new")]
        );
        assert_eq!(idx.get("a", "gone"), None);
        assert_eq!(idx.len(), 3);
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
