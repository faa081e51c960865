//! Discovery: `/version`, `/api`, `/apis`, and the resource lists per group version. Served in
//! the legacy (non-aggregated) form, which kubectl and kube-rs fall back to.

use http::{HeaderMap, Method, Response};
use serde_json::{Value, json};

use super::{Body, error_response, json_response};
use crate::cluster::ClusterInner;
use crate::resources::{RESOURCES, groups};
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
        ["apis"] => json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": all_groups().iter().map(|g| group(g)).collect::<Vec<_>>(),
        }),
        ["api", "v1"] => resource_list("", "v1")?,
        ["apis", g] => {
            if !all_groups().contains(g) {
                return Some(error_response(&ApiError::path_not_found()));
            }
            let mut v = group(g);
            v["kind"] = json!("APIGroup");
            v["apiVersion"] = json!("v1");
            v
        }
        ["apis", g, v] => resource_list(g, v)?,
        ["openapi", "v3"] => super::openapi::root(),
        ["openapi", "v3", "api", v] => super::openapi::group_version("", v)?,
        ["openapi", "v3", "apis", g, v] => super::openapi::group_version(g, v)?,
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

fn all_groups() -> Vec<&'static str> {
    let mut g = groups();
    g.push(AUTHORIZATION_GROUP);
    g
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

fn group(name: &str) -> Value {
    let version = RESOURCES
        .iter()
        .find(|r| r.group == name)
        .map(|r| r.version)
        .unwrap_or("v1");
    let gv = json!({"groupVersion": format!("{name}/{version}"), "version": version});
    json!({"name": name, "versions": [gv], "preferredVersion": gv})
}

fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in RESOURCES
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
            "categories": if r.kind == "Service" { vec!["all"] } else { vec![] },
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
