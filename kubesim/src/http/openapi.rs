//! Minimal OpenAPI v3 documents: enough for kubectl to see that the server supports the
//! `fieldValidation` query parameter (so it validates server-side instead of downloading
//! schemas) and to map kinds to paths. Built-in schemas are not published; a custom type's
//! schema is (from its CRD, as apiextensions-apiserver publishes it), which is what
//! `kubectl explain` reads.

use serde_json::{Map, Value, json};

use crate::cluster::ClusterInner;
use crate::resources::ResourceType;

/// The OpenAPI definition name of a type: reversed group, version, kind
/// (`io.x-k8s.multicluster.v1alpha1.ServiceExport`), as upstream names CRD schemas.
pub(crate) fn definition_name(r: &ResourceType) -> String {
    let mut parts: Vec<&str> = r.group.split('.').collect();
    parts.reverse();
    format!("{}.{}.{}", parts.join("."), r.version, r.kind)
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: the index of group-version documents.
pub(crate) fn root(types: &[&'static ResourceType]) -> Value {
    let mut paths = Map::new();
    for r in types {
        let p = gv_path(r.group, r.version);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=kubesim")}),
        );
    }
    json!({"paths": paths})
}

fn param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

/// `/openapi/v3/api/v1` and `/openapi/v3/apis/<group>/<version>`.
pub(crate) fn group_version(cluster: &ClusterInner, group: &str, version: &str) -> Option<Value> {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for (idx, served) in cluster.store.custom_types() {
        let r = crate::resources::rt(idx);
        if r.group != group || r.version != version {
            continue;
        }
        let mut schema = served.schema.clone();
        schema["x-kubernetes-group-version-kind"] =
            json!([{"group": r.group, "version": r.version, "kind": r.kind}]);
        if schema.get("properties").is_some_and(Value::is_object) {
            schema["properties"]["metadata"] = json!({
                "description": "Standard object's metadata.",
                "allOf": [{"$ref": format!("#/components/schemas/{OBJECT_META}")}],
            });
        }
        schemas.insert(definition_name(r), schema);
        schemas.insert(
            OBJECT_META.to_string(),
            json!({
                "description": "ObjectMeta is metadata that all persisted resources must have.",
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "Name must be unique within a namespace."},
                    "namespace": {"type": "string", "description": "Namespace defines the space within which each name must be unique."},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Map of string keys and values that can be used to organize and categorize objects."},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Annotations is an unstructured key value map."},
                },
            }),
        );
    }
    for r in crate::http::discovery::served(cluster)
        .into_iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let base = if r.group.is_empty() {
            format!("/api/{}", r.version)
        } else {
            format!("/apis/{}/{}", r.group, r.version)
        };
        let collection = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{base}/{}", r.plural)
        };
        let write_params = vec![
            param("dryRun"),
            param("fieldManager"),
            param("fieldValidation"),
        ];
        let mut patch_params = write_params.clone();
        patch_params.push(param("force"));
        let op = |action: &str, params: &Vec<Value>| {
            json!({
                "operationId": format!("{action}{}", r.kind),
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            })
        };
        paths.insert(
            collection.clone(),
            json!({
                "get": op("list", &vec![]),
                "post": op("post", &write_params),
                "delete": op("deletecollection", &vec![]),
            }),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": op("get", &vec![]),
                "put": op("put", &write_params),
                "patch": op("patch", &patch_params),
                "delete": op("delete", &vec![param("dryRun")]),
            }),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
