//! Patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch
//! (maps merge, lists with a merge key merge by that key, other lists are replaced).

use serde_json::{Map, Value};

use crate::resources::list_merge_key;

/// Applies an RFC 7386 merge patch: objects merge recursively, `null` deletes, anything else
/// replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in patch {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Applies an RFC 6902 JSON patch document. The error says which operation failed and why.
pub(crate) fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let Value::Array(ops) = patch else {
        return Err("a JSON patch must be an array of operations".into());
    };
    for (i, op) in ops.iter().enumerate() {
        apply_op(target, op).map_err(|e| format!("operation {i}: {e}"))?;
    }
    Ok(())
}

fn apply_op(target: &mut Value, op: &Value) -> Result<(), String> {
    let name = op
        .get("op")
        .and_then(Value::as_str)
        .ok_or("missing \"op\"")?;
    let path = op
        .get("path")
        .and_then(Value::as_str)
        .ok_or("missing \"path\"")?;
    let value = || op.get("value").cloned().ok_or("missing \"value\"");
    let from = || {
        op.get("from")
            .and_then(Value::as_str)
            .ok_or("missing \"from\"")
    };
    match name {
        "add" => add(target, path, value()?),
        "remove" => remove(target, path).map(drop),
        "replace" => {
            let v = value()?;
            let slot = target
                .pointer_mut(path)
                .ok_or_else(|| format!("path {path:?} does not exist"))?;
            *slot = v;
            Ok(())
        }
        "move" => {
            let v = remove(target, from()?)?;
            add(target, path, v)
        }
        "copy" => {
            let from = from()?;
            let v = target
                .pointer(from)
                .cloned()
                .ok_or_else(|| format!("path {from:?} does not exist"))?;
            add(target, path, v)
        }
        "test" => {
            let v = value()?;
            if target.pointer(path) == Some(&v) {
                Ok(())
            } else {
                Err(format!("test failed: value at {path:?} differs"))
            }
        }
        other => Err(format!("unknown operation {other:?}")),
    }
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let Some(idx) = path.rfind('/') else {
        return Err(format!("invalid JSON pointer {path:?}"));
    };
    let last = path[idx + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..idx].to_string(), last))
}

fn add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    let parent = target
        .pointer_mut(&parent)
        .ok_or_else(|| format!("parent of {path:?} does not exist"))?;
    match parent {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| format!("invalid array index {last:?}"))?;
            if i > a.len() {
                return Err(format!("array index {i} out of bounds"));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("parent of {path:?} is not a container")),
    }
}

fn remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let parent = target
        .pointer_mut(&parent)
        .ok_or_else(|| format!("parent of {path:?} does not exist"))?;
    match parent {
        Value::Object(m) => m
            .remove(&last)
            .ok_or_else(|| format!("path {path:?} does not exist")),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("invalid array index {last:?}"))?;
            if i >= a.len() {
                return Err(format!("array index {i} out of bounds"));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!("parent of {path:?} is not a container")),
    }
}

/// Applies a strategic merge patch to an object of the given resource type. Also used to merge a
/// server-side-apply configuration into the live object (same list semantics, no directives).
pub(crate) fn strategic_merge(resource: usize, target: &mut Value, patch: &Value) {
    let mut path = Vec::new();
    merge_value(resource, target, patch, &mut path);
}

fn merge_value(resource: usize, target: &mut Value, patch: &Value, path: &mut Vec<String>) {
    let Value::Object(patch) = patch else {
        *target = strip_directives(patch);
        return;
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip_directives(&Value::Object(patch.clone()));
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(gone)) = (t.get_mut(field), v) {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            // $setElementOrder/…, $retainKeys, $patch: ordering and pruning hints we do not need.
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        path.push(k.clone());
        match v {
            Value::Object(_) => {
                merge_value(resource, t.entry(k.clone()).or_insert(Value::Null), v, path)
            }
            Value::Array(items) => {
                let names: Vec<&str> = path.iter().map(String::as_str).collect();
                match (list_merge_key(resource, &names), t.get_mut(k)) {
                    (Some(key), Some(Value::Array(existing))) => {
                        merge_list(resource, existing, items, key, path)
                    }
                    _ => {
                        let kept: Vec<Value> = items
                            .iter()
                            .filter(|i| i.get("$patch").is_none())
                            .map(strip_directives)
                            .collect();
                        t.insert(k.clone(), Value::Array(kept));
                    }
                }
            }
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
        path.pop();
    }
}

fn merge_list(
    resource: usize,
    existing: &mut Vec<Value>,
    items: &[Value],
    key: &str,
    path: &mut Vec<String>,
) {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *existing = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .map(strip_directives)
            .collect();
        return;
    }
    for item in items {
        let id = item.get(key);
        let pos = id.and_then(|id| existing.iter().position(|e| e.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(p), true) => {
                existing.remove(p);
            }
            (None, true) => {}
            (Some(p), false) => merge_value(resource, &mut existing[p], item, path),
            (None, false) => existing.push(strip_directives(item)),
        }
    }
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{CONFIGMAPS_FOR_TESTS, SERVICES};
    use serde_json::json;

    #[test]
    fn merge_patch_merges_objects_and_deletes_nulls() {
        let mut v = json!({"a": {"b": 1, "c": 2}, "d": [1, 2]});
        merge_patch(&mut v, &json!({"a": {"b": null, "e": 3}, "d": [3]}));
        assert_eq!(v, json!({"a": {"c": 2, "e": 3}, "d": [3]}));
    }

    #[test]
    fn json_patch_supports_all_operations() {
        let mut v = json!({"a": [1, 2], "b": {"c": "x"}});
        let ops = json!([
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "add", "path": "/a/0", "value": 0},
            {"op": "remove", "path": "/a/1"},
            {"op": "replace", "path": "/b/c", "value": "y"},
            {"op": "copy", "from": "/b/c", "path": "/b/d"},
            {"op": "move", "from": "/b/d", "path": "/e"},
            {"op": "test", "path": "/e", "value": "y"},
            {"op": "add", "path": "/f~1g", "value": true}
        ]);
        json_patch(&mut v, &ops).unwrap();
        assert_eq!(
            v,
            json!({"a": [0, 2, 3], "b": {"c": "y"}, "e": "y", "f/g": true})
        );
    }

    #[test]
    fn json_patch_reports_failing_operations() {
        let mut v = json!({"a": 1});
        let err =
            json_patch(&mut v, &json!([{"op": "test", "path": "/a", "value": 2}])).unwrap_err();
        assert!(err.contains("test failed"), "{err}");
        assert!(json_patch(&mut v, &json!([{"op": "remove", "path": "/zz"}])).is_err());
        assert!(json_patch(&mut v, &json!({"op": "add"})).is_err());
    }

    #[test]
    fn strategic_merge_merges_service_ports_by_port() {
        let mut svc = json!({"spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "grpc", "port": 9090}
        ]}});
        strategic_merge(
            SERVICES,
            &mut svc,
            &json!({"spec": {
                "$setElementOrder/ports": [{"port": 80}, {"port": 9090}, {"port": 443}],
                "ports": [
                    {"port": 80, "targetPort": 8081},
                    {"port": 9090, "$patch": "delete"},
                    {"name": "https", "port": 443}
                ]
            }}),
        );
        assert_eq!(
            svc["spec"]["ports"],
            json!([
                {"name": "http", "port": 80, "targetPort": 8081},
                {"name": "https", "port": 443}
            ])
        );
    }

    #[test]
    fn strategic_merge_replaces_lists_without_merge_key() {
        let mut ep = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}]}], "data": {"a": "1"}});
        strategic_merge(
            CONFIGMAPS_FOR_TESTS,
            &mut ep,
            &json!({"subsets": [{"addresses": [{"ip": "10.0.0.2"}]}], "data": {"a": null, "b": "2"}}),
        );
        assert_eq!(
            ep,
            json!({"subsets": [{"addresses": [{"ip": "10.0.0.2"}]}], "data": {"b": "2"}})
        );
    }
}
