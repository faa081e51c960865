//! Field ownership (`metadata.managedFields`) and server-side apply.
//!
//! A field path is a list of elements in the `FieldsV1` spelling: `f:name` for a map field and
//! `k:{"port":80}` for an element of a list with a merge key. Leaves are scalars, atomic lists
//! and empty maps. Updates give the fields they change to their manager; an apply conflicts with
//! another manager that owns a field the applied configuration sets to a different value.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::patch::strategic_merge;
use crate::resources::list_merge_key;
use crate::status::{Cause, cause};

/// One field path in `FieldsV1` spelling.
pub(crate) type FieldPath = Vec<String>;
/// A set of owned leaf fields.
pub(crate) type FieldSet = BTreeSet<FieldPath>;

/// Metadata fields the server owns; never tracked.
const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ManagedEntry {
    pub manager: String,
    pub operation: String,
    pub subresource: String,
    pub api_version: String,
    pub time: String,
    pub fields: FieldSet,
}

/// The leaf fields an object (or an applied configuration) sets. `status_only` selects the
/// fields of the status subresource instead of the main resource.
pub(crate) fn leaf_fields(resource: usize, obj: &Value, status_only: bool) -> FieldSet {
    let mut out = FieldSet::new();
    let Value::Object(m) = obj else { return out };
    for (k, v) in m {
        let wanted = match k.as_str() {
            "apiVersion" | "kind" => false,
            "status" => status_only,
            _ => !status_only,
        };
        if !wanted {
            continue;
        }
        let mut fp = vec![format!("f:{k}")];
        let mut names = vec![k.as_str()];
        if k == "metadata" {
            if let Value::Object(meta) = v {
                for (mk, mv) in meta {
                    if SYSTEM_METADATA.contains(&mk.as_str()) {
                        continue;
                    }
                    fp.push(format!("f:{mk}"));
                    names.push(mk);
                    walk(resource, mv, &mut fp, &mut names, &mut out);
                    fp.pop();
                    names.pop();
                }
            }
            continue;
        }
        walk(resource, v, &mut fp, &mut names, &mut out);
    }
    out
}

fn walk<'a>(
    resource: usize,
    v: &'a Value,
    fp: &mut FieldPath,
    names: &mut Vec<&'a str>,
    out: &mut FieldSet,
) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                fp.push(format!("f:{k}"));
                names.push(k);
                walk(resource, child, fp, names, out);
                fp.pop();
                names.pop();
            }
        }
        Value::Array(items) => {
            let key = list_merge_key(resource, names);
            let keyed = key.filter(|k| items.iter().all(|i| i.get(*k).is_some()));
            match keyed {
                Some(k) if !items.is_empty() => {
                    for item in items {
                        let id = item.get(k).cloned().unwrap_or(Value::Null);
                        fp.push(format!("k:{}", json!({ k: id })));
                        walk(resource, item, fp, names, out);
                        fp.pop();
                    }
                }
                _ => {
                    out.insert(fp.clone());
                }
            }
        }
        _ => {
            out.insert(fp.clone());
        }
    }
}

/// The value at a field path, if present.
pub(crate) fn get_path<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for el in path {
        cur = step(cur, el)?;
    }
    Some(cur)
}

fn step<'a>(cur: &'a Value, el: &str) -> Option<&'a Value> {
    if let Some(name) = el.strip_prefix("f:") {
        return cur.get(name);
    }
    let key: Value = serde_json::from_str(el.strip_prefix("k:")?).ok()?;
    let Value::Object(key) = key else { return None };
    cur.as_array()?
        .iter()
        .find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)))
}

/// Removes the value at a field path (an element path removes the list element).
fn remove_path(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for el in parents {
        let next = if let Some(name) = el.strip_prefix("f:") {
            cur.get_mut(name)
        } else {
            element_index(cur, el).and_then(move |i| cur.get_mut(i))
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(name) = last.strip_prefix("f:") {
        if let Value::Object(m) = cur {
            m.remove(name);
        }
    } else if let Some(i) = element_index(cur, last)
        && let Value::Array(a) = cur
    {
        a.remove(i);
    }
}

fn element_index(cur: &Value, el: &str) -> Option<usize> {
    let key: Value = serde_json::from_str(el.strip_prefix("k:")?).ok()?;
    let Value::Object(key) = key else { return None };
    cur.as_array()?
        .iter()
        .position(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)))
}

/// Renders a field path for a conflict message: `.spec.ports[port=80].targetPort`.
fn display_path(path: &[String]) -> String {
    let mut s = String::new();
    for el in path {
        if let Some(name) = el.strip_prefix("f:") {
            s.push('.');
            s.push_str(name);
        } else if let Some(key) = el.strip_prefix("k:") {
            let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(key)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            s.push_str(&format!("[{}]", parts.join(",")));
        }
    }
    s
}

/// Reads `metadata.managedFields`.
pub(crate) fn read_entries(obj: &Value) -> Vec<ManagedEntry> {
    let Some(Value::Array(items)) = obj.pointer("/metadata/managedFields") else {
        return Vec::new();
    };
    items
        .iter()
        .map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let mut fields = FieldSet::new();
            if let Some(tree) = e.get("fieldsV1") {
                tree_to_set(tree, &mut Vec::new(), &mut fields);
            }
            ManagedEntry {
                manager: s("manager"),
                operation: s("operation"),
                subresource: s("subresource"),
                api_version: s("apiVersion"),
                time: s("time"),
                fields,
            }
        })
        .collect()
}

fn tree_to_set(tree: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
    let Value::Object(m) = tree else { return };
    if (m.is_empty() || m.contains_key(".")) && !prefix.is_empty() {
        out.insert(prefix.clone());
    }
    for (k, v) in m {
        if k == "." {
            continue;
        }
        prefix.push(k.clone());
        tree_to_set(v, prefix, out);
        prefix.pop();
    }
}

fn set_to_tree(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for (i, el) in path.iter().enumerate() {
            let entry = cur
                .entry(el.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else { break };
            if i + 1 == path.len() && !next.is_empty() {
                next.insert(".".into(), json!({}));
            }
            cur = next;
        }
    }
    mark_dots(&mut root, set, &mut Vec::new());
    Value::Object(root)
}

/// A node that is itself owned and also has owned children gets a `"."` entry.
fn mark_dots(node: &mut Map<String, Value>, set: &FieldSet, prefix: &mut FieldPath) {
    let keys: Vec<String> = node.keys().cloned().collect();
    for k in keys {
        if k == "." {
            continue;
        }
        prefix.push(k.clone());
        if let Some(Value::Object(child)) = node.get_mut(&k) {
            let has_children = child.keys().any(|c| c != ".");
            if has_children && set.contains(prefix) {
                child.insert(".".into(), json!({}));
            }
            mark_dots(child, set, prefix);
        }
        prefix.pop();
    }
}

/// Writes entries back into `metadata.managedFields` (omitting empty ones).
pub(crate) fn write_entries(obj: &mut Value, entries: &[ManagedEntry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": set_to_tree(&e.fields),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Records a non-apply write (create, update, patch) by `manager`: it owns the fields it
/// changed; fields that disappeared are owned by nobody.
pub(crate) fn record_update(
    resource: usize,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
    api_version: &str,
    now: &str,
) {
    let status_only = subresource == "status";
    let new_fields = leaf_fields(resource, new, status_only);
    let mut entries = old.map(read_entries).unwrap_or_default();
    let (changed, removed): (FieldSet, FieldSet) = match old {
        Some(old) => {
            let old_fields = leaf_fields(resource, old, status_only);
            let changed = new_fields
                .iter()
                .filter(|p| get_path(old, p) != get_path(new, p))
                .cloned()
                .collect();
            let removed = old_fields.difference(&new_fields).cloned().collect();
            (changed, removed)
        }
        None => (new_fields, FieldSet::new()),
    };
    if changed.is_empty() && removed.is_empty() && old.is_some() {
        write_entries(new, &entries);
        return;
    }
    for e in &mut entries {
        e.fields
            .retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    if !changed.is_empty() {
        match entries.iter_mut().find(|e| {
            e.manager == manager && e.operation == "Update" && e.subresource == subresource
        }) {
            Some(e) => {
                e.fields.extend(changed);
                e.time = now.to_string();
            }
            None => entries.push(ManagedEntry {
                manager: manager.to_string(),
                operation: "Update".into(),
                subresource: subresource.to_string(),
                api_version: api_version.to_string(),
                time: now.to_string(),
                fields: changed,
            }),
        }
    }
    write_entries(new, &entries);
}

/// Server-side apply of `applied` by `manager` onto `current` (an empty object when creating).
/// Returns the merged object with updated `managedFields`, or the conflicts.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply(
    resource: usize,
    current: &Value,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: &str,
    api_version: &str,
    now: &str,
) -> Result<Value, Vec<Cause>> {
    let status_only = subresource == "status";
    let applied_fields = leaf_fields(resource, applied, status_only);
    let mut entries = read_entries(current);
    let is_mine = |e: &ManagedEntry| {
        e.manager == manager && e.operation == "Apply" && e.subresource == subresource
    };

    let mut conflicts = Vec::new();
    for e in entries.iter_mut().filter(|e| !is_mine(e)) {
        let clashing: Vec<FieldPath> = e
            .fields
            .intersection(&applied_fields)
            .filter(|p| get_path(current, p) != get_path(applied, p))
            .cloned()
            .collect();
        if clashing.is_empty() {
            continue;
        }
        if force {
            e.fields.retain(|p| !clashing.contains(p));
        } else {
            for p in clashing {
                let using = if e.operation == "Update" {
                    format!(" using {}", e.api_version)
                } else {
                    String::new()
                };
                conflicts.push(cause(
                    "FieldManagerConflict",
                    &display_path(&p),
                    format!("conflict with \"{}\"{using}", e.manager),
                ));
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }

    let previous: FieldSet = entries
        .iter()
        .filter(|e| is_mine(e))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let others: FieldSet = entries
        .iter()
        .filter(|e| !is_mine(e))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let mut merged = current.clone();
    let dropped: Vec<&FieldPath> = previous
        .iter()
        .filter(|p| !applied_fields.contains(*p) && !others.contains(*p))
        .collect();
    // A list element whose key field nobody applies any more goes away as a whole.
    for p in &dropped {
        if let [.., element, last] = p.as_slice()
            && element.starts_with("k:")
            && let Some(key) = last.strip_prefix("f:")
            && element.contains(&format!("\"{key}\""))
        {
            remove_path(&mut merged, &p[..p.len() - 1]);
        }
    }
    for p in &dropped {
        remove_path(&mut merged, p);
    }
    strategic_merge(resource, &mut merged, applied);

    entries.retain(|e| !is_mine(e));
    entries.push(ManagedEntry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        subresource: subresource.to_string(),
        api_version: api_version.to_string(),
        time: now.to_string(),
        fields: applied_fields,
    });
    write_entries(&mut merged, &entries);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::SERVICES;

    fn svc(port_target: i64, label: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "labels": {"app": label}},
            "spec": {"ports": [{"port": 80, "targetPort": port_target}]}
        })
    }

    #[test]
    fn leaf_fields_key_list_elements_by_merge_key() {
        let f = leaf_fields(SERVICES, &svc(8080, "web"), false);
        let paths: Vec<String> = f.iter().map(|p| display_path(p)).collect();
        assert_eq!(
            paths,
            vec![
                ".metadata.labels.app",
                ".spec.ports[port=80].port",
                ".spec.ports[port=80].targetPort"
            ]
        );
    }

    #[test]
    fn managed_fields_round_trip_through_fields_v1() {
        let mut obj = svc(8080, "web");
        record_update(SERVICES, None, &mut obj, "a", "", "v1", "t");
        let entries = read_entries(&obj);
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0].fields,
            leaf_fields(SERVICES, &svc(1, "x"), false)
        );
    }

    #[test]
    fn second_manager_conflicts_unless_forced() {
        let base = apply(
            SERVICES,
            &json!({}),
            &svc(8080, "web"),
            "alice",
            false,
            "",
            "v1",
            "t",
        )
        .unwrap();
        // Same values: shared ownership, no conflict.
        assert!(
            apply(
                SERVICES,
                &base,
                &svc(8080, "web"),
                "bob",
                false,
                "",
                "v1",
                "t"
            )
            .is_ok()
        );
        let err = apply(
            SERVICES,
            &base,
            &svc(9090, "web"),
            "bob",
            false,
            "",
            "v1",
            "t",
        )
        .unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].field, ".spec.ports[port=80].targetPort");
        assert_eq!(err[0].message, "conflict with \"alice\"");
        let forced = apply(
            SERVICES,
            &base,
            &svc(9090, "web"),
            "bob",
            true,
            "",
            "v1",
            "t",
        )
        .unwrap();
        assert_eq!(forced["spec"]["ports"][0]["targetPort"], 9090);
        let alice = read_entries(&forced)
            .into_iter()
            .find(|e| e.manager == "alice")
            .unwrap();
        assert!(
            !alice
                .fields
                .iter()
                .any(|p| p.last().unwrap() == "f:targetPort")
        );
    }

    #[test]
    fn apply_removes_fields_the_manager_stopped_applying() {
        let first = json!({"metadata": {"name": "web", "labels": {"a": "1", "b": "2"}},
            "spec": {"ports": [{"port": 80}, {"port": 81}]}});
        let second = json!({"metadata": {"name": "web", "labels": {"a": "1"}},
            "spec": {"ports": [{"port": 80}]}});
        let obj = apply(SERVICES, &json!({}), &first, "m", false, "", "v1", "t").unwrap();
        let obj = apply(SERVICES, &obj, &second, "m", false, "", "v1", "t").unwrap();
        assert_eq!(obj["metadata"]["labels"], json!({"a": "1"}));
        assert_eq!(obj["spec"]["ports"], json!([{"port": 80}]));
    }

    #[test]
    fn an_update_takes_ownership_and_then_conflicts_with_apply() {
        let obj = apply(
            SERVICES,
            &json!({}),
            &svc(8080, "web"),
            "m",
            false,
            "",
            "v1",
            "t",
        )
        .unwrap();
        let mut edited = obj.clone();
        edited["metadata"]["labels"]["app"] = json!("edited");
        record_update(
            SERVICES,
            Some(&obj),
            &mut edited,
            "kubectl-edit",
            "",
            "v1",
            "t",
        );
        let err = apply(
            SERVICES,
            &edited,
            &svc(8080, "web"),
            "m",
            false,
            "",
            "v1",
            "t",
        )
        .unwrap_err();
        assert_eq!(err[0].message, "conflict with \"kubectl-edit\" using v1");
        assert_eq!(err[0].field, ".metadata.labels.app");
    }
}
