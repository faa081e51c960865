//! Server-side printing: the `Table` (meta.k8s.io/v1) that `kubectl get` asks for, with the
//! columns a real API server prints for each type.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Query;
use crate::store::Obj;

fn col(name: &str, ty: &str, format: &str, priority: u8) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": name, "priority": priority})
}

fn columns(kind: &str) -> Vec<Value> {
    let name = col("Name", "string", "name", 0);
    let age = col("Age", "string", "", 0);
    match kind {
        "Service" => vec![
            name,
            col("Type", "string", "", 0),
            col("Cluster-IP", "string", "", 0),
            col("External-IP", "string", "", 0),
            col("Port(s)", "string", "", 0),
            age,
            col("Selector", "string", "", 1),
        ],
        "Namespace" => vec![name, col("Status", "string", "", 0), age],
        "ConfigMap" => vec![name, col("Data", "integer", "", 0), age],
        "Secret" => vec![
            name,
            col("Type", "string", "", 0),
            col("Data", "integer", "", 0),
            age,
        ],
        "Endpoints" => vec![name, col("Endpoints", "string", "", 0), age],
        "EndpointSlice" => vec![
            name,
            col("AddressType", "string", "", 0),
            col("Ports", "string", "", 0),
            col("Endpoints", "string", "", 0),
            age,
        ],
        "Lease" => vec![name, col("Holder", "string", "", 0), age],
        "ServiceAccount" => vec![name, col("Secrets", "integer", "", 0), age],
        "Role" | "ClusterRole" => vec![name, col("Created At", "date", "", 0)],
        "RoleBinding" | "ClusterRoleBinding" => vec![
            name,
            col("Role", "string", "", 0),
            age,
            col("Users", "string", "", 1),
            col("Groups", "string", "", 1),
            col("ServiceAccounts", "string", "", 1),
        ],
        _ => vec![name, age],
    }
}

/// `kubectl`'s short age: `45s`, `3m20s`, `5h`, `2d`.
fn age(created: Option<&str>) -> String {
    let Some(t) = created.and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok()) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    match secs {
        s if s < 120 => format!("{s}s"),
        _ if m < 10 && secs % 60 != 0 => format!("{m}m{}s", secs % 60),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 && m % 60 != 0 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if h < 192 && h % 24 != 0 => format!("{d}d{}h", h % 24),
        _ => format!("{d}d"),
    }
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn or_none(x: String) -> String {
    if x.is_empty() { "<none>".into() } else { x }
}

fn cells(kind: &str, v: &Value) -> Vec<Value> {
    let name = json!(s(v, "/metadata/name"));
    let age = json!(age(v
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)));
    let count = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_object)
            .map_or(0, |m| m.len())
    };
    match kind {
        "Service" => {
            let ty = s(v, "/spec/type");
            let ports: Vec<String> = v
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                    let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    match p.get("nodePort").and_then(Value::as_i64) {
                        Some(np) => format!("{port}:{np}/{proto}"),
                        None => format!("{port}/{proto}"),
                    }
                })
                .collect();
            let external = match ty {
                "LoadBalancer" => {
                    let ips: Vec<&str> = v
                        .pointer("/status/loadBalancer/ingress")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|i| i.get("ip").or(i.get("hostname")).and_then(Value::as_str))
                        .collect();
                    if ips.is_empty() {
                        "<pending>".into()
                    } else {
                        ips.join(",")
                    }
                }
                "ExternalName" => s(v, "/spec/externalName").to_string(),
                _ => "<none>".into(),
            };
            let selector: Vec<String> = v
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or("")))
                .collect();
            let cluster_ip = if ty == "ExternalName" {
                "<none>"
            } else {
                s(v, "/spec/clusterIP")
            };
            vec![
                name,
                json!(ty),
                json!(cluster_ip),
                json!(external),
                json!(or_none(ports.join(","))),
                age,
                json!(or_none(selector.join(","))),
            ]
        }
        "Namespace" => vec![name, json!(s(v, "/status/phase")), age],
        "ConfigMap" => vec![name, json!(count("/data") + count("/binaryData")), age],
        "Secret" => vec![name, json!(s(v, "/type")), json!(count("/data")), age],
        "Endpoints" => {
            let mut eps = Vec::new();
            for subset in v
                .get("subsets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let ports: Vec<i64> = subset
                    .get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.get("port").and_then(Value::as_i64))
                    .collect();
                for a in subset
                    .get("addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let ip = a.get("ip").and_then(Value::as_str).unwrap_or("");
                    if ports.is_empty() {
                        eps.push(ip.to_string());
                    }
                    for p in &ports {
                        eps.push(format!("{ip}:{p}"));
                    }
                }
            }
            vec![name, json!(or_none(eps.join(","))), age]
        }
        "EndpointSlice" => {
            let ports: Vec<String> = v
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("port").and_then(Value::as_i64).map(|p| p.to_string()))
                .collect();
            let addrs: Vec<&str> = v
                .get("endpoints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|e| {
                    e.get("addresses")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                })
                .filter_map(Value::as_str)
                .collect();
            vec![
                name,
                json!(s(v, "/addressType")),
                json!(or_none(ports.join(","))),
                json!(or_none(addrs.join(","))),
                age,
            ]
        }
        "Lease" => vec![
            name,
            json!(or_none(s(v, "/spec/holderIdentity").to_string())),
            age,
        ],
        "ServiceAccount" => {
            let secrets = v
                .get("secrets")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            vec![name, json!(secrets), age]
        }
        "Role" | "ClusterRole" => vec![name, json!(s(v, "/metadata/creationTimestamp"))],
        "RoleBinding" | "ClusterRoleBinding" => {
            let subjects = |kind: &str| {
                let names: Vec<String> = v
                    .get("subjects")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|x| s(x, "/kind") == kind)
                    .map(|x| match (kind, s(x, "/namespace")) {
                        ("ServiceAccount", ns) => format!("{ns}/{}", s(x, "/name")),
                        _ => s(x, "/name").to_string(),
                    })
                    .collect();
                json!(names.join(", "))
            };
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    s(v, "/roleRef/kind"),
                    s(v, "/roleRef/name")
                )),
                age,
                subjects("User"),
                subjects("Group"),
                subjects("ServiceAccount"),
            ]
        }
        _ => vec![name, age],
    }
}

/// The columns of a custom type: `Name`, then its `additionalPrinterColumns`
/// (apiextensions-apiserver `tableconvertor`); `Age` only when none are declared.
fn custom_column_defs(custom: &[Value]) -> Vec<Value> {
    let mut out = vec![col("Name", "string", "name", 0)];
    if custom.is_empty() {
        out.push(col("Age", "date", "", 0));
    }
    for c in custom {
        let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
        let mut d = col(
            text("name"),
            text("type"),
            text("format"),
            c.get("priority").and_then(Value::as_u64).unwrap_or(0) as u8,
        );
        d["description"] = json!(text("description"));
        out.push(d);
    }
    out
}

/// A simple JSONPath (`.spec.type`, `.metadata.creationTimestamp`) of a printer column.
fn json_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path
        .trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
    {
        cur = cur.get(part)?;
    }
    Some(cur)
}

fn custom_cells(custom: &[Value], v: &Value) -> Vec<Value> {
    let mut out = vec![json!(s(v, "/metadata/name"))];
    if custom.is_empty() {
        out.push(json!(age(v
            .pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str))));
    }
    for c in custom {
        let path = c.get("jsonPath").and_then(Value::as_str).unwrap_or("");
        let ty = c.get("type").and_then(Value::as_str).unwrap_or("string");
        let cell = match json_path(v, path) {
            None => Value::Null,
            Some(x) if ty == "date" => json!(age(x.as_str())),
            Some(Value::String(x)) => json!(x),
            Some(x @ (Value::Number(_) | Value::Bool(_))) => x.clone(),
            Some(x) => json!(x.to_string()),
        };
        out.push(cell);
    }
    out
}

/// One table row, with the object as `includeObject` asks (`Metadata` by default). `custom`
/// are the printer columns of a custom type.
pub(crate) fn row(custom: &[Value], kind: &str, v: &Value, include: Option<&str>) -> Value {
    let cells = if custom.is_empty() && !custom_kind(kind) {
        cells(kind, v)
    } else {
        custom_cells(custom, v)
    };
    let mut row = json!({"cells": cells});
    match include {
        Some("None") => {}
        Some("Object") => row["object"] = v.clone(),
        _ => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": v.get("metadata").cloned().unwrap_or(json!({})),
            })
        }
    }
    row
}

/// Whether a kind is not one of the built-in kinds printed by [`columns`].
fn custom_kind(kind: &str) -> bool {
    !crate::resources::RESOURCES.iter().any(|r| r.kind == kind)
}

/// A `Table` of objects of resource type `r` (`custom`: its printer columns if custom).
pub(crate) fn table(
    custom: &[Value],
    r: usize,
    items: &[Arc<Obj>],
    rv: Option<u64>,
    query: &Query,
    cont: Option<&str>,
) -> Value {
    let kind = crate::resources::rt(r).kind;
    let is_custom = crate::resources::rt(r).custom;
    let include = query.get("includeObject");
    let rows: Vec<Value> = items
        .iter()
        .filter_map(|o| serde_json::from_slice::<Value>(&o.json).ok())
        .map(|v| row(custom, kind, &v, include))
        .collect();
    let mut meta = json!({});
    if let Some(rv) = rv {
        meta["resourceVersion"] = json!(rv.to_string());
    }
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": if is_custom { custom_column_defs(custom) } else { columns(kind) },
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_rows_print_like_kubectl() {
        let svc = json!({"metadata": {"name": "web", "creationTimestamp": "2000-01-01T00:00:00Z"},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.5", "selector": {"app": "web"},
                     "ports": [{"port": 80, "nodePort": 30001, "protocol": "TCP"}]}});
        let c = cells("Service", &svc);
        assert_eq!(c[0], "web");
        assert_eq!(c[2], "10.96.0.5");
        assert_eq!(c[4], "80:30001/TCP");
        assert_eq!(c[6], "app=web");
        assert!(c[5].as_str().unwrap().ends_with('d'));
    }
}
