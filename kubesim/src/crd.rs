//! CustomResourceDefinitions (`apiextensions.k8s.io/v1`): validating a CRD, deciding the
//! types it defines and whether its names are accepted (the naming controller), and admitting
//! custom objects by the version's structural schema: defaulting, pruning and validation, as
//! `k8s.io/apiextensions-apiserver` does them.
//!
//! Upstream rules pinned here (each has a test below):
//! - `metadata.name` must be `<spec.names.plural>.<spec.group>` (`ValidateCustomResourceDefinition`).
//! - `spec.versions` needs exactly one `storage: true` version; every version needs
//!   `schema.openAPIV3Schema`, and the schema is structural: every node has a `type` unless it
//!   is `x-kubernetes-int-or-string` or `x-kubernetes-preserve-unknown-fields`
//!   (`pkg/apis/apiextensions/validation`, `pkg/apiserver/schema/validation.go`).
//! - `x-kubernetes-list-type: map` needs `x-kubernetes-list-map-keys`.
//! - Names conflicting with another CRD of the group get `NamesAccepted=False` (reason
//!   `PluralConflict` / `KindConflict`) and are not served (`Established` stays `False`)
//!   (`pkg/controller/status/naming_controller.go`).
//! - Custom objects: defaults from `default` fill missing fields; unknown fields are pruned
//!   unless `x-kubernetes-preserve-unknown-fields`; validation causes are those of
//!   `pkg/apiserver/validation/validation.go` `ConvertErrors` (`Invalid value: ...: <path> in
//!   body must be of type <t>`, `Required value`, `Unsupported value`, `Too many`, `Too long`,
//!   `Duplicate value` for `set`/`map` lists).

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::resources::{CustomType, register};
use crate::status::{Cause, cause};

/// One served version of an established CRD, as a store serves it.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    /// The CRD's name (`<plural>.<group>`).
    pub crd: String,
    /// `schema.openAPIV3Schema` of the version.
    pub schema: Value,
    /// `additionalPrinterColumns` of the version.
    pub columns: Vec<Value>,
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn strings(v: &Value, p: &str) -> Vec<String> {
    v.pointer(p)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Validation causes of a CRD (create and update).
pub(crate) fn validate_crd(crd: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let group = s(crd, "/spec/group");
    let plural = s(crd, "/spec/names/plural");
    let kind = s(crd, "/spec/names/kind");
    let name = s(crd, "/metadata/name");
    if group.is_empty() {
        causes.push(cause("FieldValueRequired", "spec.group", "Required value"));
    } else if !group.contains('.') {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.group",
            format!("Invalid value: \"{group}\": should be a domain with at least one dot"),
        ));
    }
    if plural.is_empty() {
        causes.push(cause(
            "FieldValueRequired",
            "spec.names.plural",
            "Required value",
        ));
    }
    if kind.is_empty() {
        causes.push(cause(
            "FieldValueRequired",
            "spec.names.kind",
            "Required value",
        ));
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(cause(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let scope = s(crd, "/spec/scope");
    if !matches!(scope, "Namespaced" | "Cluster") {
        causes.push(cause(
            "FieldValueNotSupported",
            "spec.scope",
            format!(
                "Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""
            ),
        ));
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.versions",
            "Invalid value: null: must have exactly one version marked as storage version",
        ));
    }
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if !versions.is_empty() && storage != 1 {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.versions",
            format!(
                "Invalid value: {}: must have exactly one version marked as storage version",
                json!(versions)
            ),
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        if s(v, "/name").is_empty() {
            causes.push(cause(
                "FieldValueRequired",
                &format!("{path}.name"),
                "Required value",
            ));
        }
        match v.pointer("/schema/openAPIV3Schema") {
            None => causes.push(cause(
                "FieldValueRequired",
                &format!("{path}.schema.openAPIV3Schema"),
                "Required value: schemas are required",
            )),
            Some(schema) => {
                if schema.get("type").and_then(Value::as_str) != Some("object") {
                    causes.push(cause(
                        "FieldValueInvalid",
                        &format!("{path}.schema.openAPIV3Schema.type"),
                        format!(
                            "Invalid value: \"{}\": must be object at the root",
                            s(schema, "/type")
                        ),
                    ));
                }
                structural(
                    schema,
                    &format!("{path}.schema.openAPIV3Schema"),
                    &mut causes,
                );
            }
        }
    }
    causes
}

/// The structural-schema rules (`pkg/apiserver/schema/validation.go`) kubesim checks.
fn structural(schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true);
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("");
    if ty.is_empty() && !preserve && !int_or_string {
        causes.push(cause(
            "FieldValueRequired",
            &format!("{path}.type"),
            "Required value: must not be empty for specified object fields",
        ));
    }
    if ty == "array" && schema.get("items").is_none() {
        causes.push(cause(
            "FieldValueRequired",
            &format!("{path}.items"),
            "Required value: must be specified",
        ));
    }
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        None | Some("atomic" | "set") => {}
        Some("map") => {
            if strings(schema, "/x-kubernetes-list-map-keys").is_empty() {
                causes.push(cause(
                    "FieldValueRequired",
                    &format!("{path}.x-kubernetes-list-map-keys"),
                    "Required value: must not be empty if x-kubernetes-list-type is map",
                ));
            }
        }
        Some(other) => causes.push(cause(
            "FieldValueNotSupported",
            &format!("{path}.x-kubernetes-list-type"),
            format!(
                "Unsupported value: \"{other}\": supported values: \"atomic\", \"map\", \"set\""
            ),
        )),
    }
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (k, v) in props {
            structural(v, &format!("{path}.properties[{k}]"), causes);
        }
    }
    if let Some(items) = schema.get("items")
        && items.is_object()
    {
        structural(items, &format!("{path}.items"), causes);
    }
    if let Some(ap) = schema.get("additionalProperties")
        && ap.is_object()
    {
        structural(ap, &format!("{path}.additionalProperties"), causes);
    }
}

/// The map-type lists of a schema (dotted path, single merge key), for patch and apply.
fn merge_keys(schema: &Value, path: &mut Vec<String>, out: &mut Vec<(String, String)>) {
    if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map")
        && let [key] = strings(schema, "/x-kubernetes-list-map-keys").as_slice()
    {
        out.push((path.join("."), key.clone()));
    }
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (k, v) in props {
            path.push(k.clone());
            merge_keys(v, path, out);
            path.pop();
        }
    }
}

/// The types an (accepted) CRD defines: one per served version.
pub(crate) fn served_types(crd: &Value) -> Vec<(usize, Served)> {
    let group = s(crd, "/spec/group").to_string();
    let names = |k: &str| s(crd, &format!("/spec/names/{k}")).to_string();
    let plural = names("plural");
    let kind = names("kind");
    let singular = match names("singular") {
        x if x.is_empty() => kind.to_ascii_lowercase(),
        x => x,
    };
    let namespaced = s(crd, "/spec/scope") == "Namespaced";
    let mut out = Vec::new();
    for v in crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let schema = v
            .pointer("/schema/openAPIV3Schema")
            .cloned()
            .unwrap_or(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
        let mut keys = Vec::new();
        merge_keys(&schema, &mut Vec::new(), &mut keys);
        let t = CustomType {
            group: group.clone(),
            version: s(v, "/name").to_string(),
            kind: kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            namespaced,
            short_names: strings(crd, "/spec/names/shortNames"),
            status: v.pointer("/subresources/status").is_some(),
            categories: strings(crd, "/spec/names/categories"),
            merge_keys: keys,
        };
        out.push((
            register(&t),
            Served {
                crd: s(crd, "/metadata/name").to_string(),
                schema,
                columns: v
                    .get("additionalPrinterColumns")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            },
        ));
    }
    out
}

/// Why a CRD's names are not accepted, given the other CRDs of the cluster (naming
/// controller): `(reason, message)`.
pub(crate) fn names_conflict(crd: &Value, others: &[Value]) -> Option<(&'static str, String)> {
    let group = s(crd, "/spec/group");
    let plural = s(crd, "/spec/names/plural");
    let kind = s(crd, "/spec/names/kind");
    for o in others {
        if s(o, "/metadata/name") == s(crd, "/metadata/name") || s(o, "/spec/group") != group {
            continue;
        }
        // Only CRDs whose names are accepted hold them.
        let accepted = o.pointer("/status/acceptedNames").unwrap_or(&Value::Null);
        if s(accepted, "/plural") == plural {
            return Some(("PluralConflict", format!("\"{plural}\" is already in use")));
        }
        if s(accepted, "/kind") == kind {
            return Some(("KindConflict", format!("\"{kind}\" is already in use")));
        }
    }
    None
}

/// The status the naming and establishing controllers give a CRD.
pub(crate) fn status(crd: &Value, conflict: Option<(&'static str, String)>, now: &str) -> Value {
    let old = crd.get("status").cloned().unwrap_or(json!({}));
    let prev = |ty: &str| {
        old.get("conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| s(c, "/type") == ty).cloned())
    };
    let condition = |ty: &str, ok: bool, reason: &str, message: &str| {
        let status = if ok { "True" } else { "False" };
        let since = match prev(ty) {
            Some(p) if s(&p, "/status") == status => s(&p, "/lastTransitionTime").to_string(),
            _ => now.to_string(),
        };
        json!({"type": ty, "status": status, "lastTransitionTime": since,
               "reason": reason, "message": message})
    };
    let mut names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    if names.get("singular").is_none()
        && let Some(k) = names.get("kind").and_then(Value::as_str)
    {
        names["singular"] = json!(k.to_ascii_lowercase());
    }
    if names.get("listKind").is_none()
        && let Some(k) = names.get("kind").and_then(Value::as_str)
    {
        names["listKind"] = json!(format!("{k}List"));
    }
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    let mut stored_versions: Vec<Value> = old
        .get("storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in stored {
        if !stored_versions.contains(&v) {
            stored_versions.push(v);
        }
    }
    let conditions = match &conflict {
        None => vec![
            condition("NamesAccepted", true, "NoConflicts", "no conflicts found"),
            condition(
                "Established",
                true,
                "InitialNamesAccepted",
                "the initial names have been accepted",
            ),
        ],
        Some((reason, message)) => vec![
            condition("NamesAccepted", false, reason, message),
            condition(
                "Established",
                false,
                "NotAccepted",
                "not all names are accepted",
            ),
        ],
    };
    let accepted = if conflict.is_none() {
        names
    } else {
        old.get("acceptedNames")
            .cloned()
            .unwrap_or(json!({"plural": "", "kind": ""}))
    };
    json!({"conditions": conditions, "acceptedNames": accepted, "storedVersions": stored_versions})
}

// ---------------------------------------------------------------------------------------------
// Custom objects.

/// Prepares a custom object for storage: defaults, prunes, validates. `Err` carries the
/// `422` causes.
pub(crate) fn admit(schema: &Value, obj: &mut Value) -> Result<(), Vec<Cause>> {
    default(schema, obj);
    prune_root(schema, obj);
    let mut causes = Vec::new();
    if let Value::Object(m) = &*obj
        && let Some(Value::Object(props)) = schema.get("properties")
    {
        for (k, sub) in props {
            if matches!(k.as_str(), "metadata" | "apiVersion" | "kind") {
                continue;
            }
            if let Some(v) = m.get(k) {
                validate(sub, v, k, &mut causes);
            }
        }
        for r in strings(schema, "/required") {
            if !matches!(r.as_str(), "metadata" | "apiVersion" | "kind") && !m.contains_key(&r) {
                causes.push(cause("FieldValueRequired", &r, "Required value"));
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(causes)
    }
}

/// Fills in `default`s of missing properties, recursively (`structuraldefaulting.Default`).
pub(crate) fn default(schema: &Value, v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (k, sub) in props {
                    if !m.contains_key(k)
                        && let Some(d) = sub.get("default")
                    {
                        m.insert(k.clone(), d.clone());
                    }
                    if let Some(child) = m.get_mut(k) {
                        default(sub, child);
                    }
                }
            } else if let Some(ap) = schema.get("additionalProperties")
                && ap.is_object()
            {
                for child in m.values_mut() {
                    default(ap, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for child in items {
                    default(sub, child);
                }
            }
        }
        _ => {}
    }
}

fn preserves(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

fn prune_root(schema: &Value, obj: &mut Value) {
    let Value::Object(m) = obj else { return };
    if preserves(schema) {
        return;
    }
    let props = schema.get("properties").and_then(Value::as_object);
    m.retain(|k, _| {
        matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
            || props.is_some_and(|p| p.contains_key(k))
    });
    if let Some(props) = props {
        for (k, sub) in props {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(child) = m.get_mut(k) {
                prune(sub, child);
            }
        }
    }
}

/// Drops fields the schema does not specify (`pkg/apiserver/schema/pruning`).
pub(crate) fn prune(schema: &Value, v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(props)) = schema.get("properties") {
                if !preserves(schema) {
                    m.retain(|k, _| props.contains_key(k));
                }
                for (k, sub) in props {
                    if let Some(child) = m.get_mut(k) {
                        prune(sub, child);
                    }
                }
            } else if let Some(ap) = schema.get("additionalProperties") {
                if ap.is_object() {
                    for child in m.values_mut() {
                        prune(ap, child);
                    }
                }
            } else if !preserves(schema) {
                m.clear();
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for child in items {
                    prune(sub, child);
                }
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// How `field.Invalid` prints a value (Go `%#v`-like: strings quoted, numbers bare).
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

fn number_type_ok(want: &str, v: &Value) -> bool {
    match want {
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    }
}

/// Validates one value against its schema, pushing causes with `path` as field.
fn validate(schema: &Value, v: &Value, path: &str, causes: &mut Vec<Cause>) {
    if v.is_null() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true);
    if int_or_string {
        if !(v.is_string() || v.as_i64().is_some()) {
            causes.push(cause(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: {}: {path} in body must be of type integer,string: {}",
                    shown(v),
                    format_args!("\"{}\"", type_name(v))
                ),
            ));
        }
        return;
    }
    if let Some(want) = schema.get("type").and_then(Value::as_str)
        && !number_type_ok(want, v)
    {
        causes.push(cause(
            "FieldValueTypeInvalid",
            path,
            format!(
                "Invalid value: \"{}\": {path} in body must be of type {want}: \"{}\"",
                type_name(v),
                type_name(v)
            ),
        ));
        return;
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(shown).collect();
        causes.push(cause(
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                shown(v),
                list.join(", ")
            ),
        ));
    }
    match v {
        Value::String(text) => {
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && text.len() as u64 > max
            {
                causes.push(cause(
                    "FieldValueTooLong",
                    path,
                    format!("Too long: may not be more than {max} bytes"),
                ));
            }
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && (text.len() as u64) < min
            {
                causes.push(cause(
                    "FieldValueInvalid",
                    path,
                    format!(
                        "Invalid value: {}: {path} in body should be at least {min} chars long",
                        shown(v)
                    ),
                ));
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(p)
                && !re.is_match(text)
            {
                causes.push(cause(
                    "FieldValueInvalid",
                    path,
                    format!(
                        "Invalid value: {}: {path} in body should match '{p}'",
                        shown(v)
                    ),
                ));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && x < min
            {
                causes.push(cause(
                    "FieldValueInvalid",
                    path,
                    format!(
                        "Invalid value: {n}: {path} in body should be greater than or equal to {min}"
                    ),
                ));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && x > max
            {
                causes.push(cause(
                    "FieldValueInvalid",
                    path,
                    format!(
                        "Invalid value: {n}: {path} in body should be less than or equal to {max}"
                    ),
                ));
            }
            if schema.get("format").and_then(Value::as_str) == Some("int32")
                && n.as_i64().is_some_and(|i| i32::try_from(i).is_err())
            {
                causes.push(cause(
                    "FieldValueInvalid",
                    path,
                    format!("Invalid value: {n}: {path} in body must be of type int32: \"{n}\""),
                ));
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                causes.push(cause(
                    "FieldValueTooMany",
                    path,
                    format!("Too many: {}: must have at most {max} items", items.len()),
                ));
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                causes.push(cause(
                    "FieldValueInvalid",
                    path,
                    format!(
                        "Invalid value: {}: {path} in body should have at least {min} items",
                        items.len()
                    ),
                ));
            }
            if let Some(sub) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate(sub, item, &format!("{path}[{i}]"), causes);
                }
            }
            list_type(schema, items, path, causes);
        }
        Value::Object(m) => {
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (k, sub) in props {
                    if let Some(child) = m.get(k) {
                        validate(sub, child, &format!("{path}.{k}"), causes);
                    }
                }
            } else if let Some(ap) = schema.get("additionalProperties")
                && ap.is_object()
            {
                for (k, child) in m {
                    validate(ap, child, &format!("{path}[{k}]"), causes);
                }
            }
            for r in strings(schema, "/required") {
                if !m.contains_key(&r) {
                    causes.push(cause(
                        "FieldValueRequired",
                        &format!("{path}.{r}"),
                        "Required value",
                    ));
                }
            }
        }
        _ => {}
    }
}

/// `x-kubernetes-list-type` `set` (unique items) and `map` (unique keys): duplicates are
/// `Duplicate value` causes on the later item (`pkg/apiserver/schema/listtype`).
fn list_type(schema: &Value, items: &[Value], path: &str, causes: &mut Vec<Cause>) {
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                if !seen.insert(item.to_string()) {
                    causes.push(cause(
                        "FieldValueDuplicate",
                        &format!("{path}[{i}]"),
                        format!("Duplicate value: {item}"),
                    ));
                }
            }
        }
        Some("map") => {
            let keys = strings(schema, "/x-kubernetes-list-map-keys");
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                let mut k = Map::new();
                for key in &keys {
                    k.insert(key.clone(), item.get(key).cloned().unwrap_or(Value::Null));
                }
                let k = Value::Object(k);
                if !seen.insert(k.to_string()) {
                    causes.push(cause(
                        "FieldValueDuplicate",
                        &format!("{path}[{i}]"),
                        format!("Duplicate value: {k}"),
                    ));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": schema()},
                }],
            },
        })
    }

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "size": {"type": "integer", "format": "int32", "minimum": 0},
                        "mode": {"type": "string", "enum": ["Fast", "Slow"], "default": "Fast"},
                        "ips": {"type": "array", "maxItems": 1, "items": {"type": "string"}},
                        "tags": {"type": "array", "x-kubernetes-list-type": "set",
                                 "items": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "ports": {"type": "array", "x-kubernetes-list-type": "map",
                                  "x-kubernetes-list-map-keys": ["name"],
                                  "items": {"type": "object",
                                            "properties": {"name": {"type": "string"},
                                                           "port": {"type": "integer"}}}},
                    },
                },
                "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
            },
        })
    }

    /// `ValidateCustomResourceDefinition`: the name is `<plural>.<group>`, one storage
    /// version, schemas required and structural (every node typed).
    #[test]
    fn crd_validation_pins_upstream_rules() {
        assert!(validate_crd(&crd()).is_empty());
        let mut bad = crd();
        bad["metadata"]["name"] = json!("gadgets.example.com");
        bad["spec"]["versions"][0]["storage"] = json!(false);
        bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["loose"] = json!({"description": "no type"});
        let fields: Vec<String> = validate_crd(&bad).into_iter().map(|c| c.field).collect();
        assert_eq!(
            fields,
            vec![
                "metadata.name",
                "spec.versions",
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[loose].type",
            ]
        );
        let mut no_schema = crd();
        no_schema["spec"]["versions"][0]
            .as_object_mut()
            .unwrap()
            .remove("schema");
        let c = validate_crd(&no_schema);
        assert_eq!(c[0].message, "Required value: schemas are required");
    }

    /// Defaults fill missing fields; unknown fields are pruned except under
    /// `x-kubernetes-preserve-unknown-fields`; `apiVersion`, `kind`, `metadata` stay.
    #[test]
    fn defaults_and_pruning() {
        let mut obj = json!({
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "a"},
            "spec": {"size": 1, "bogus": true, "free": {"anything": {"x": 1}}},
            "extra": 1,
        });
        admit(&schema(), &mut obj).unwrap();
        assert_eq!(obj["spec"]["mode"], "Fast");
        assert!(obj.get("extra").is_none());
        assert!(obj["spec"].get("bogus").is_none());
        assert_eq!(obj["spec"]["free"]["anything"]["x"], 1);
        assert_eq!(obj["metadata"]["name"], "a");
    }

    /// `ConvertErrors` shapes: type, required, enum, maxItems, minimum, set and map
    /// duplicates.
    #[test]
    fn validation_causes_have_upstream_shapes() {
        let mut obj = json!({
            "metadata": {"name": "a"},
            "spec": {"mode": "Medium", "ips": ["1.1.1.1", "2.2.2.2"], "tags": ["x", "x"],
                     "ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]},
            "status": {"ready": "yes"},
        });
        let causes = admit(&schema(), &mut obj).unwrap_err();
        let got: Vec<(String, String)> = causes.into_iter().map(|c| (c.field, c.message)).collect();
        let want = [
            ("spec.ips", "Too many: 2: must have at most 1 items"),
            (
                "spec.mode",
                "Unsupported value: \"Medium\": supported values: \"Fast\", \"Slow\"",
            ),
            ("spec.ports[1]", "Duplicate value: {\"name\":\"http\"}"),
            ("spec.tags[1]", "Duplicate value: \"x\""),
            ("spec.size", "Required value"),
            (
                "status.ready",
                "Invalid value: \"string\": status.ready in body must be of type boolean: \"string\"",
            ),
        ];
        for (f, m) in want {
            assert!(
                got.iter().any(|(gf, gm)| gf == f && gm == m),
                "missing {f}: {m} in {got:?}"
            );
        }
        let mut neg = json!({"metadata": {"name": "a"}, "spec": {"size": -1}});
        let c = admit(&schema(), &mut neg).unwrap_err();
        assert_eq!(
            c[0].message,
            "Invalid value: -1: spec.size in body should be greater than or equal to 0"
        );
    }

    /// Naming controller: a second CRD claiming an accepted plural of the group is not
    /// accepted (`PluralConflict`) and not established.
    #[test]
    fn conflicting_names_are_not_accepted() {
        let mut first = crd();
        first["status"] = status(&first, None, "t");
        assert_eq!(first["status"]["conditions"][1]["type"], "Established");
        assert_eq!(first["status"]["acceptedNames"]["listKind"], "WidgetList");
        let mut second = crd();
        second["metadata"]["name"] = json!("widgets2.example.com");
        second["spec"]["names"]["kind"] = json!("Widget2");
        let conflict = names_conflict(&second, &[first.clone()]);
        assert_eq!(conflict.as_ref().map(|c| c.0), Some("PluralConflict"));
        let st = status(&second, conflict, "t");
        assert_eq!(st["conditions"][0]["status"], "False");
        assert_eq!(st["conditions"][1]["status"], "False");
    }

    #[test]
    fn map_lists_give_merge_keys() {
        let mut keys = Vec::new();
        merge_keys(&schema(), &mut Vec::new(), &mut keys);
        assert_eq!(keys, vec![("spec.ports".to_string(), "name".to_string())]);
    }
}
