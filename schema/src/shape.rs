//! The response's shape, as the GraphQL spec requires it, whatever path answered.
//!
//! async-graphql resolves an object's fields concurrently in a `FuturesUnordered` and inserts
//! each into the object as it completes (async-graphql issue #612), so a field whose resolver
//! awaits (a DataLoader, a table load) can come back after one that was requested later, and
//! two identical requests may answer in different orders. It also drops a field whose resolver
//! failed (a role guard, say) instead of answering `null`.
//!
//! [`normalize`] fixes both in one pass over the answer, guided by the request's document and
//! the schema's types (spec §6.3 "Executing Selection Sets", §6.4.4 "Handling Field Errors",
//! §7.1.2 "Serialized Map Ordering"):
//! - every object's keys are put in the order `CollectFields()` gives them (selection order,
//!   fragments expanded in place; a key first requested by a fragment sits where the fragment
//!   is);
//! - a field an error points at (`errors[].path`) that is missing becomes `null`; when its type
//!   is non-null the `null` propagates to the nearest nullable parent, up to `data` itself.
//!
//! Keys already in order are left in place (the plain pass, [`crate::plain`], answers in order),
//! so the common case is one read-only walk.

use async_graphql::{
    Name, PathSegment, Response, Value,
    indexmap::IndexMap,
    parser::types::{
        DocumentOperations, ExecutableDocument, Field, OperationType, Selection, SelectionSet,
    },
    registry::Registry,
};

/// Puts `resp` in spec shape for the operation `operation_name` of `doc` (see the module doc).
pub(crate) fn normalize(
    resp: &mut Response,
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    registry: &Registry,
) {
    let Some((ty, set)) = operation(doc, operation_name, registry) else {
        return;
    };
    for err in &resp.errors {
        null_at(&mut resp.data, &err.path);
    }
    if matches!(resp.data, Value::Null) {
        return;
    }
    let walker = Walker { doc, registry };
    // The root object: when a non-null root field is null, `data` is null.
    if !walker.value(&mut resp.data, &[set], &format!("{ty}!")) {
        resp.data = Value::Null;
    }
}

/// The root type and selection of the operation that ran.
fn operation<'d>(
    doc: &'d ExecutableDocument,
    name: Option<&str>,
    registry: &Registry,
) -> Option<(String, &'d SelectionSet)> {
    let op = match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(n)) => ops.get(n)?,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
        (DocumentOperations::Multiple(_), None) => return None,
    };
    let ty = match op.node.ty {
        OperationType::Query => registry.query_type.clone(),
        OperationType::Mutation => registry.mutation_type.clone()?,
        OperationType::Subscription => registry.subscription_type.clone()?,
    };
    Some((ty, &op.node.selection_set.node))
}

/// Puts a `null` where `path` ends, when the field is missing (a failed resolver's field).
fn null_at(data: &mut Value, path: &[PathSegment]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = data;
    for seg in parents {
        cur = match (seg, cur) {
            (PathSegment::Field(k), Value::Object(map)) => match map.get_mut(k.as_str()) {
                Some(v) => v,
                None => return,
            },
            (PathSegment::Index(i), Value::List(items)) => match items.get_mut(*i) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    if let (PathSegment::Field(k), Value::Object(map)) = (last, cur) {
        let key = Name::new(k);
        if !map.contains_key(&key) {
            map.insert(key, Value::Null);
        }
    }
}

/// One response key of an object: the fields merged under it and their type.
struct Entry<'d> {
    key: &'d Name,
    ty: Option<String>,
    sets: Vec<&'d SelectionSet>,
}

struct Walker<'d> {
    doc: &'d ExecutableDocument,
    registry: &'d Registry,
}

impl<'d> Walker<'d> {
    /// Shapes `v` of type `ty` (GraphQL type syntax, e.g. `[Mirror!]!`) selected by `sets`.
    /// `false` when `v` is `null` but `ty` is non-null: the parent must become `null`.
    fn value(&self, v: &mut Value, sets: &[&'d SelectionSet], ty: &str) -> bool {
        let (inner, non_null) = match ty.strip_suffix('!') {
            Some(t) => (t, true),
            None => (ty, false),
        };
        let ok = match v {
            Value::Null => return !non_null,
            Value::List(items) => match inner.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                Some(item_ty) => self.list(items, sets, item_ty),
                None => true,
            },
            Value::Object(map) => {
                let plan = self.plan(sets, inner);
                self.object(map, &plan)
            }
            _ => true,
        };
        if !ok {
            *v = Value::Null;
            return !non_null;
        }
        true
    }

    /// Shapes a list's items of type `item_ty`; `false` when a non-null item is `null`. Items
    /// that are objects share one plan (a page of 100 mirrors plans its selection once).
    fn list(&self, items: &mut [Value], sets: &[&'d SelectionSet], item_ty: &str) -> bool {
        let (named, non_null) = match item_ty.strip_suffix('!') {
            Some(t) => (t, true),
            None => (item_ty, false),
        };
        if named.starts_with('[') {
            return items.iter_mut().all(|item| self.value(item, sets, item_ty));
        }
        let mut plan: Option<Vec<Entry<'d>>> = None;
        for item in items {
            match item {
                Value::Object(map) => {
                    let plan = plan.get_or_insert_with(|| self.plan(sets, named));
                    if !self.object(map, plan) {
                        *item = Value::Null;
                        if non_null {
                            return false;
                        }
                    }
                }
                Value::Null if non_null => return false,
                _ => {}
            }
        }
        true
    }

    /// Shapes one object by its plan; `false` when a non-null field of it is `null`.
    fn object(&self, map: &mut IndexMap<Name, Value>, plan: &[Entry<'d>]) -> bool {
        for entry in plan {
            if let Some(v) = map.get_mut(entry.key) {
                let ok = match &entry.ty {
                    Some(ty) => self.value(v, &entry.sets, ty),
                    // Unknown type (introspection's own types): order only, nullable.
                    None => self.value(v, &entry.sets, "?"),
                };
                if !ok {
                    return false;
                }
            }
        }
        reorder(map, plan);
        true
    }

    /// The response keys of `sets` on an object of type `ty`, in `CollectFields()` order.
    fn plan(&self, sets: &[&'d SelectionSet], ty: &str) -> Vec<Entry<'d>> {
        let mut plan: Vec<Entry<'d>> = Vec::new();
        for set in sets {
            self.collect(set, ty, ty, &mut plan, 0);
        }
        plan
    }

    fn collect(
        &self,
        set: &'d SelectionSet,
        ty: &str,
        within: &str,
        plan: &mut Vec<Entry<'d>>,
        depth: usize,
    ) {
        // Fragment cycles are rejected by validation; this only bounds a malformed document.
        if depth > 64 {
            return;
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let f: &'d Field = &f.node;
                    let key = &f.response_key().node;
                    // Selection sets are small: a scan beats hashing.
                    match plan.iter_mut().find(|e| e.key == key) {
                        Some(e) => e.sets.push(&f.selection_set.node),
                        None => {
                            plan.push(Entry {
                                key,
                                ty: self.field_type(within, ty, f.name.node.as_str()),
                                sets: vec![&f.selection_set.node],
                            });
                        }
                    }
                }
                Selection::InlineFragment(frag) => {
                    let cond = frag
                        .node
                        .type_condition
                        .as_ref()
                        .map_or(within, |c| c.node.on.node.as_str());
                    self.collect(&frag.node.selection_set.node, ty, cond, plan, depth + 1);
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(frag) = self.doc.fragments.get(&spread.node.fragment_name.node) {
                        let cond = frag.node.type_condition.node.on.node.as_str();
                        self.collect(&frag.node.selection_set.node, ty, cond, plan, depth + 1);
                    }
                }
            }
        }
    }

    /// The declared type of field `name`, looked up on the fragment's type, then the parent's.
    fn field_type(&self, within: &str, parent: &str, name: &str) -> Option<String> {
        [within, parent].iter().find_map(|t| {
            self.registry
                .types
                .get(*t)
                .and_then(|meta| meta.field_by_name(name))
                .map(|f| f.ty.clone())
        })
    }
}

/// Puts `map`'s keys in `plan` order (keys the plan does not know stay after them).
fn reorder(map: &mut IndexMap<Name, Value>, plan: &[Entry<'_>]) {
    let mut expected = plan.iter().filter(|e| map.contains_key(e.key));
    let in_order = map.keys().all(|k| match expected.next() {
        Some(e) => e.key == k,
        None => true,
    });
    if in_order {
        return;
    }
    let mut old = std::mem::take(map);
    map.reserve(old.len());
    for e in plan {
        if let Some(v) = old.swap_remove(e.key) {
            map.insert(e.key.clone(), v);
        }
    }
    // `swap_remove` moved the rest around; the rest is what the plan does not know.
    for (k, v) in old {
        map.insert(k, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{ServerError, parser::parse_query};

    /// No types known: order and nulls only (every field counts as nullable).
    fn untyped() -> Registry {
        Registry {
            query_type: "Query".into(),
            ..Registry::default()
        }
    }

    fn object(pairs: Vec<(&str, Value)>) -> Value {
        Value::Object(pairs.into_iter().map(|(k, v)| (Name::new(k), v)).collect())
    }

    #[test]
    fn keys_follow_the_request_even_across_fragments() {
        let doc = parse_query("{ b ...F a { z x } } fragment F on Query { a { y } }").unwrap();
        let a = object(vec![
            ("x", Value::from(1)),
            ("y", Value::from(2)),
            ("z", Value::from(3)),
        ]);
        let mut resp = Response::new(object(vec![("a", a), ("b", Value::from(0))]));
        normalize(&mut resp, &doc, None, &untyped());
        let json = serde_json::to_string(&resp.data).unwrap();
        // CollectFields: `b`, then the fragment's `a` (merged with the later `a`): y, z, x.
        assert_eq!(json, r#"{"b":0,"a":{"y":2,"z":3,"x":1}}"#);
    }

    #[test]
    fn a_failed_field_is_null_where_it_was_asked_for() {
        let doc = parse_query("{ a { x w } b }").unwrap();
        let a = object(vec![("w", Value::from(5))]);
        let mut resp = Response::new(object(vec![("b", Value::from(0)), ("a", a)]));
        let mut err = ServerError::new("forbidden", None);
        err.path = vec![
            PathSegment::Field("a".into()),
            PathSegment::Field("x".into()),
        ];
        resp.errors.push(err);
        normalize(&mut resp, &doc, None, &untyped());
        let json = serde_json::to_string(&resp.data).unwrap();
        assert_eq!(json, r#"{"a":{"x":null,"w":5},"b":0}"#);
    }
}
