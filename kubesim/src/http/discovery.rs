//! Discovery: `/version`, `/api`, `/apis`, and the resource lists per group version. Served in
//! the legacy (non-aggregated) form, which kubectl and kube-rs fall back to.

use http::{HeaderMap, Method, Response};
use serde_json::{Value, json};

use super::{Body, error_response, json_response};
use crate::cluster::ClusterInner;
use crate::resources::{RESOURCES, ResourceType, rt};
use crate::status::ApiError;

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Answers a discovery path, or `None` when the path is not one.
pub(crate) fn route(
    cluster: &ClusterInner,
    method: &Method,
    _headers: &HeaderMap,
    segs: &[&str],
) -> Option<Response<Body>> {
    let body = match segs {
        ["version"] => version(),
        ["api"] => json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": cluster.addr.to_string()}
            ]
        }),
        ["apis"] => {
            let types = served(cluster);
            json!({
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": all_groups(&types).iter().map(|g| group(&types, g)).collect::<Vec<_>>(),
            })
        }
        ["api", "v1"] => resource_list(&served(cluster), "", "v1")?,
        ["apis", g] => {
            let types = served(cluster);
            if !all_groups(&types).contains(g) {
                return Some(error_response(&ApiError::path_not_found()));
            }
            let mut v = group(&types, g);
            v["kind"] = json!("APIGroup");
            v["apiVersion"] = json!("v1");
            v
        }
        ["apis", g, v] => resource_list(&served(cluster), g, v)?,
        ["openapi", "v3"] => super::openapi::root(&served(cluster)),
        ["openapi", "v3", "api", v] => super::openapi::group_version(cluster, "", v)?,
        ["openapi", "v3", "apis", g, v] => super::openapi::group_version(cluster, g, v)?,
        ["openapi", ..] => return Some(error_response(&ApiError::path_not_found())),
        _ => return None,
    };
    if method != Method::GET {
        return Some(error_response(&ApiError::method_not_allowed(
            method.as_str(),
        )));
    }
    Some(json_response(200, body.to_string()))
}

/// The group of the review APIs kubesim answers (no stored type of its own).
const AUTHORIZATION_GROUP: &str = "authorization.k8s.io";

/// The types a cluster serves: the built-in ones, then those of its established CRDs.
pub(crate) fn served(cluster: &ClusterInner) -> Vec<&'static ResourceType> {
    RESOURCES
        .iter()
        .chain(cluster.store.custom_types().into_iter().map(|(r, _)| rt(r)))
        .collect()
}

fn all_groups(types: &[&'static ResourceType]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in types {
        if !r.group.is_empty() && !out.contains(&r.group) {
            out.push(r.group);
        }
    }
    out.push(AUTHORIZATION_GROUP);
    out
}

/// Resources that are not stored types: the TokenRequest subresource and the self-subject
/// review endpoints, create-only as upstream lists them.
fn virtual_resources(group: &str, version: &str) -> Vec<Value> {
    match (group, version) {
        ("", "v1") => vec![json!({
            "name": "serviceaccounts/token",
            "singularName": "",
            "namespaced": true,
            "group": "authentication.k8s.io",
            "version": "v1",
            "kind": "TokenRequest",
            "verbs": ["create"],
        })],
        (AUTHORIZATION_GROUP, "v1") => vec![
            json!({
                "name": "selfsubjectaccessreviews",
                "singularName": "selfsubjectaccessreview",
                "namespaced": false,
                "kind": "SelfSubjectAccessReview",
                "verbs": ["create"],
            }),
            json!({
                "name": "selfsubjectrulesreviews",
                "singularName": "selfsubjectrulesreview",
                "namespaced": false,
                "kind": "SelfSubjectRulesReview",
                "verbs": ["create"],
            }),
        ],
        _ => Vec::new(),
    }
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-kubesim",
        "gitCommit": "kubesim",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

fn group(types: &[&'static ResourceType], name: &str) -> Value {
    let mut versions: Vec<&str> = Vec::new();
    for r in types.iter().filter(|r| r.group == name) {
        if !versions.contains(&r.version) {
            versions.push(r.version);
        }
    }
    if versions.is_empty() {
        versions.push("v1");
    }
    let gvs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": gvs, "preferredVersion": gvs[0]})
}

fn resource_list(types: &[&'static ResourceType], group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in types
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resources.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
            "shortNames": r.short_names,
            "categories": r.categories,
            "storageVersionHash": "",
        }));
        if r.status {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    resources.extend(virtual_resources(group, version));
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }))
}
