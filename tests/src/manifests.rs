//! Kubernetes manifests as plain JSON values, parsed from (multi-document) YAML.

use serde_json::Value;

use crate::{Error, Result};

/// Parses every YAML document in `text` (separated by `---`), skipping empty ones.
pub fn parse(text: &str) -> Result<Vec<Value>> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| Error::Yaml(e.to_string()))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// `kind/name` (with `namespace/` in front when set), for messages.
pub fn id(obj: &Value) -> String {
    let kind = obj["kind"].as_str().unwrap_or("?");
    let name = obj["metadata"]["name"].as_str().unwrap_or("?");
    match obj["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// The objects of `kind`.
pub fn of_kind<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

/// The one object of `kind`, or an error naming how many there were.
pub fn one<'a>(objs: &'a [Value], kind: &str) -> Result<&'a Value> {
    match of_kind(objs, kind).as_slice() {
        [one] => Ok(one),
        other => Err(Error::Yaml(format!(
            "expected exactly one {kind}, found {}",
            other.len()
        ))),
    }
}
