//! Authorization: the RBAC authorizer over the stored Roles, ClusterRoles, RoleBindings and
//! ClusterRoleBindings (kubernetes `plugin/pkg/auth/authorizer/rbac/rbac.go` and
//! `pkg/registry/rbac/validation/rule.go` `VisitRulesFor`), the `403 Forbidden` it leads to
//! (apiserver `endpoints/handlers/responsewriters/errors.go` `forbiddenMessage`), and
//! `SelfSubjectAccessReview`, which answers from the same rules (`kubectl auth can-i`).
//!
//! `system:masters` (the admin token) bypasses RBAC. The bootstrap policy every cluster has is
//! built in rather than stored: any authenticated user may read discovery and the other
//! non-resource paths (`system:discovery`, `system:public-info-viewer`) and create
//! self-subject reviews (`system:basic-user`).

use serde_json::{Value, json};

use crate::auth::User;
use crate::resources::{CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult};
use crate::store::Store;

/// What a request asks to do (apiserver `authorizer.Attributes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attributes {
    pub verb: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// `Some(path)` for a non-resource request.
    pub path: Option<String>,
}

impl Attributes {
    fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// The answer and its reason, as `SubjectAccessReviewStatus` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub allowed: bool,
    pub reason: String,
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == "*" || x == want)
}

/// `RuleAllows`: verb, API group, resource (with `*/subresource`) and resource names, or verb
/// and non-resource URL (exact, `*`, or a `prefix*`).
pub(crate) fn rule_allows(attrs: &Attributes, rule: &Value) -> bool {
    let verbs = strings(rule, "verbs");
    if !has(&verbs, &attrs.verb) {
        return false;
    }
    if let Some(path) = &attrs.path {
        return strings(rule, "nonResourceURLs").iter().any(|u| {
            u == "*" || u == path || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
        });
    }
    if !has(&strings(rule, "apiGroups"), &attrs.api_group) {
        return false;
    }
    let combined = attrs.combined_resource();
    let resource_ok = strings(rule, "resources").iter().any(|r| {
        r == "*"
            || *r == combined
            || (!attrs.subresource.is_empty()
                && r.len() == attrs.subresource.len() + 2
                && r.starts_with("*/")
                && r.ends_with(&attrs.subresource))
    });
    if !resource_ok {
        return false;
    }
    let names = strings(rule, "resourceNames");
    names.is_empty() || names.contains(&attrs.name)
}

/// `appliesToUser`: a service account subject without a namespace takes the binding's.
fn subject_matches(user: &User, subject: &Value, binding_ns: &str) -> bool {
    let s = |k: &str| subject.get(k).and_then(Value::as_str).unwrap_or("");
    match s("kind") {
        "User" => user.name == s("name"),
        "Group" => user.groups.iter().any(|g| g == s("name")),
        "ServiceAccount" => {
            let ns = if s("namespace").is_empty() {
                binding_ns
            } else {
                s("namespace")
            };
            !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{}", s("name"))
        }
        _ => false,
    }
}

/// `describeSubject`, for the reason of an allowed request.
fn describe_subject(subject: &Value, binding_ns: &str) -> String {
    let s = |k: &str| subject.get(k).and_then(Value::as_str).unwrap_or("");
    if s("kind") == "ServiceAccount" {
        let ns = if s("namespace").is_empty() {
            binding_ns
        } else {
            s("namespace")
        };
        return format!("ServiceAccount \"{}/{ns}\"", s("name"));
    }
    format!("{} \"{}\"", s("kind"), s("name"))
}

fn all(store: &Store, r: usize, ns: Option<&str>) -> Vec<Value> {
    store
        .list(
            r,
            ns,
            &LabelSelector::default(),
            &FieldSelector::default(),
            None,
            None,
        )
        .map(|p| p.items.iter().filter_map(|o| o.value().ok()).collect())
        .unwrap_or_default()
}

fn role_rules(store: &Store, role_ref: &Value, binding_ns: &str) -> Vec<Value> {
    let name = role_ref.get("name").and_then(Value::as_str).unwrap_or("");
    let role = match role_ref.get("kind").and_then(Value::as_str) {
        Some("ClusterRole") => store.get(CLUSTER_ROLES, "", name),
        Some("Role") => store.get(ROLES, binding_ns, name),
        _ => return Vec::new(),
    };
    role.ok()
        .and_then(|o| o.value().ok())
        .and_then(|v| v.get("rules").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

/// The built-in bootstrap policy for authenticated users.
fn bootstrap(user: &User, attrs: &Attributes) -> Option<Decision> {
    if !user.groups.iter().any(|g| g == "system:authenticated") {
        return None;
    }
    let allowed_by = |binding: &str| Decision {
        allowed: true,
        reason: format!(
            "RBAC: allowed by ClusterRoleBinding \"{binding}\" of ClusterRole \"{binding}\" to Group \"system:authenticated\""
        ),
    };
    match &attrs.path {
        Some(_) if attrs.verb == "get" => Some(allowed_by("system:discovery")),
        None if attrs.verb == "create"
            && (attrs.api_group == "authorization.k8s.io"
                && matches!(
                    attrs.resource.as_str(),
                    "selfsubjectaccessreviews" | "selfsubjectrulesreviews"
                )
                || attrs.api_group == "authentication.k8s.io"
                    && attrs.resource == "selfsubjectreviews") =>
        {
            Some(allowed_by("system:basic-user"))
        }
        _ => None,
    }
}

/// Decides a request: cluster role bindings first, then the role bindings of the request's
/// namespace, as `VisitRulesFor` walks them; the first allowing rule wins.
pub(crate) fn authorize(store: &Store, user: &User, attrs: &Attributes) -> Decision {
    if user.is_admin() {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    if let Some(d) = bootstrap(user, attrs) {
        return d;
    }
    for crb in all(store, CLUSTER_ROLE_BINDINGS, None) {
        let Some(subject) = crb
            .get("subjects")
            .and_then(Value::as_array)
            .and_then(|s| s.iter().find(|s| subject_matches(user, s, "")))
        else {
            continue;
        };
        let role_ref = crb.get("roleRef").cloned().unwrap_or(Value::Null);
        if role_rules(store, &role_ref, "")
            .iter()
            .any(|r| rule_allows(attrs, r))
        {
            return Decision {
                allowed: true,
                reason: format!(
                    "RBAC: allowed by ClusterRoleBinding \"{}\" of {} \"{}\" to {}",
                    crb.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                    role_ref.get("kind").and_then(Value::as_str).unwrap_or(""),
                    role_ref.get("name").and_then(Value::as_str).unwrap_or(""),
                    describe_subject(subject, "")
                ),
            };
        }
    }
    if !attrs.namespace.is_empty() {
        for rb in all(store, ROLE_BINDINGS, Some(&attrs.namespace)) {
            let Some(subject) = rb.get("subjects").and_then(Value::as_array).and_then(|s| {
                s.iter()
                    .find(|s| subject_matches(user, s, &attrs.namespace))
            }) else {
                continue;
            };
            let role_ref = rb.get("roleRef").cloned().unwrap_or(Value::Null);
            if role_rules(store, &role_ref, &attrs.namespace)
                .iter()
                .any(|r| rule_allows(attrs, r))
            {
                return Decision {
                    allowed: true,
                    reason: format!(
                        "RBAC: allowed by RoleBinding \"{}/{}\" of {} \"{}\" to {}",
                        rb.pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or(""),
                        attrs.namespace,
                        role_ref.get("kind").and_then(Value::as_str).unwrap_or(""),
                        role_ref.get("name").and_then(Value::as_str).unwrap_or(""),
                        describe_subject(subject, &attrs.namespace)
                    ),
                };
            }
        }
    }
    Decision {
        allowed: false,
        reason: String::new(),
    }
}

/// The `403` a denied request gets: `<resource>[.<group>] ["<name>"] is forbidden: User "…"
/// cannot <verb> resource "…" in API group "…" in the namespace "…"` (or `at the cluster
/// scope`, or `cannot <verb> path "…"`).
pub(crate) fn forbidden(user: &User, attrs: &Attributes) -> ApiError {
    let why = match &attrs.path {
        Some(path) => format!(
            "User \"{}\" cannot {} path \"{path}\"",
            user.name, attrs.verb
        ),
        None if !attrs.namespace.is_empty() => format!(
            "User \"{}\" cannot {} resource \"{}\" in API group \"{}\" in the namespace \"{}\"",
            user.name,
            attrs.verb,
            attrs.combined_resource(),
            attrs.api_group,
            attrs.namespace
        ),
        None => format!(
            "User \"{}\" cannot {} resource \"{}\" in API group \"{}\" at the cluster scope",
            user.name,
            attrs.verb,
            attrs.combined_resource(),
            attrs.api_group
        ),
    };
    if attrs.path.is_some() || attrs.resource.is_empty() {
        return ApiError::forbidden(format!("forbidden: {why}"));
    }
    ApiError::forbidden_about(&attrs.api_group, &attrs.resource, &attrs.name, &why)
}

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`: may I? Answers from the
/// same authorizer as real requests.
pub(crate) fn self_subject_access_review(
    store: &Store,
    user: &User,
    body: &Value,
) -> ApiResult<Value> {
    let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let ra = spec.get("resourceAttributes").filter(|v| v.is_object());
    let nra = spec.get("nonResourceAttributes").filter(|v| v.is_object());
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let attrs = match (ra, nra) {
        (Some(ra), None) => Attributes {
            verb: s(ra, "verb"),
            api_group: s(ra, "group"),
            api_version: s(ra, "version"),
            resource: s(ra, "resource"),
            subresource: s(ra, "subresource"),
            namespace: s(ra, "namespace"),
            name: s(ra, "name"),
            path: None,
        },
        (None, Some(nra)) => Attributes {
            verb: s(nra, "verb"),
            path: Some(s(nra, "path")),
            ..Attributes::default()
        },
        _ => {
            return Err(ApiError::invalid(
                "SelfSubjectAccessReview",
                "authorization.k8s.io",
                "SelfSubjectAccessReview",
                "",
                vec![crate::status::cause(
                    "FieldValueInvalid",
                    "spec.resourceAttributes",
                    "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )],
            ));
        }
    };
    let decision = authorize(store, user, &attrs);
    let mut status = json!({"allowed": decision.allowed});
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    let mut metadata = body.get("metadata").cloned().unwrap_or_else(|| json!({}));
    metadata["creationTimestamp"] = Value::Null;
    Ok(json!({
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": metadata,
        "spec": spec,
        "status": status,
    }))
}

/// Non-resource URLs of the bootstrap `system:discovery` and `system:public-info-viewer`
/// roles.
const DISCOVERY_URLS: &[&str] = &[
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
];

/// `POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews` (what `kubectl auth can-i
/// --list` asks): every rule that applies to the caller in `spec.namespace`, as the RBAC rule
/// resolver lists them (`pkg/registry/rbac/validation/rule.go` `RulesFor`), the bootstrap
/// roles included.
pub(crate) fn self_subject_rules_review(
    store: &Store,
    user: &User,
    body: &Value,
) -> ApiResult<Value> {
    let namespace = body
        .pointer("/spec/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if namespace.is_empty() {
        return Err(ApiError::bad_request("no namespace on request"));
    }
    let mut rules: Vec<Value> = Vec::new();
    if user.is_admin() {
        // cluster-admin
        rules.push(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        rules.push(json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
    }
    rules.push(
        json!({"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]}),
    );
    rules.push(
        json!({"verbs": ["create"], "apiGroups": ["authentication.k8s.io"],
        "resources": ["selfsubjectreviews"]}),
    );
    rules.push(json!({"verbs": ["get"], "nonResourceURLs": DISCOVERY_URLS}));
    for crb in all(store, CLUSTER_ROLE_BINDINGS, None) {
        let applies = crb
            .get("subjects")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|s| subject_matches(user, s, "")));
        if applies {
            let role_ref = crb.get("roleRef").cloned().unwrap_or(Value::Null);
            rules.extend(role_rules(store, &role_ref, ""));
        }
    }
    for rb in all(store, ROLE_BINDINGS, Some(namespace)) {
        let applies = rb
            .get("subjects")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|s| subject_matches(user, s, namespace)));
        if applies {
            let role_ref = rb.get("roleRef").cloned().unwrap_or(Value::Null);
            rules.extend(role_rules(store, &role_ref, namespace));
        }
    }
    let pick = |rule: &Value, keys: &[&str]| {
        let mut out = serde_json::Map::new();
        for k in keys {
            if let Some(v) = rule
                .get(*k)
                .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            {
                out.insert((*k).to_string(), v.clone());
            }
        }
        Value::Object(out)
    };
    let (non_resource, resource): (Vec<&Value>, Vec<&Value>) = rules.iter().partition(|r| {
        r.get("nonResourceURLs")
            .is_some_and(|u| u.as_array().is_some_and(|a| !a.is_empty()))
    });
    let resource_rules: Vec<Value> = resource
        .iter()
        .map(|r| pick(r, &["verbs", "apiGroups", "resources", "resourceNames"]))
        .collect();
    let non_resource_rules: Vec<Value> = non_resource
        .iter()
        .map(|r| pick(r, &["verbs", "nonResourceURLs"]))
        .collect();
    let mut metadata = body.get("metadata").cloned().unwrap_or_else(|| json!({}));
    metadata["creationTimestamp"] = Value::Null;
    Ok(json!({
        "kind": "SelfSubjectRulesReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": metadata,
        "spec": {"namespace": namespace},
        "status": {
            "resourceRules": resource_rules,
            "nonResourceRules": non_resource_rules,
            "incomplete": false,
        },
    }))
}

/// Attributes of a resource request against a served type.
pub(crate) fn resource_attributes(
    verb: &str,
    resource: usize,
    namespace: Option<&str>,
    name: Option<&str>,
    subresource: Option<&str>,
) -> Attributes {
    let rt = crate::resources::rt(resource);
    Attributes {
        verb: verb.to_string(),
        api_group: rt.group.to_string(),
        api_version: rt.version.to_string(),
        resource: rt.plural.to_string(),
        subresource: subresource.unwrap_or("").to_string(),
        namespace: namespace.unwrap_or("").to_string(),
        name: name.unwrap_or("").to_string(),
        path: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::RBAC_GROUP;

    fn attrs(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: "shop".into(),
            name: name.into(),
            ..Attributes::default()
        }
    }

    /// `plugin/pkg/auth/authorizer/rbac/rbac.go` `RuleAllows` with
    /// `pkg/apis/rbac/v1/evaluation_helpers.go` (`VerbMatches`, `APIGroupMatches`,
    /// `ResourceMatches`, `ResourceNameMatches`, `NonResourceURLMatches`).
    #[test]
    fn rules_match_like_the_rbac_authorizer() {
        let rule = json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["services", "*/status"],
                          "resourceNames": ["web"]});
        assert!(rule_allows(&attrs("get", "", "services", "", "web"), &rule));
        assert!(
            !rule_allows(&attrs("get", "", "services", "", "api"), &rule),
            "resourceNames"
        );
        assert!(
            !rule_allows(&attrs("watch", "", "services", "", "web"), &rule),
            "verb"
        );
        assert!(
            !rule_allows(&attrs("get", "apps", "services", "", "web"), &rule),
            "group"
        );
        assert!(
            rule_allows(&attrs("get", "", "pods", "status", "web"), &rule),
            "*/status"
        );
        assert!(
            !rule_allows(&attrs("get", "", "services", "proxy", "web"), &rule),
            "subresource"
        );
        let wild = json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]});
        assert!(rule_allows(
            &attrs("deletecollection", "x.io", "things", "", ""),
            &wild
        ));
        let create = json!({"verbs": ["create"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]});
        assert!(
            !rule_allows(&attrs("create", "", "configmaps", "", ""), &create),
            "create has no name, so resourceNames never allow it"
        );
        let urls = json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/metrics/*"]});
        let path = |p: &str| Attributes {
            verb: "get".into(),
            path: Some(p.into()),
            ..Attributes::default()
        };
        assert!(rule_allows(&path("/healthz"), &urls));
        assert!(rule_allows(&path("/metrics/x"), &urls));
        assert!(!rule_allows(&path("/version"), &urls));
    }

    /// `pkg/registry/rbac/validation/rule.go` `appliesToUser`.
    #[test]
    fn subjects_match_users_groups_and_service_accounts() {
        let robot = User::service_account("shop", "robot");
        assert!(subject_matches(
            &robot,
            &json!({"kind": "ServiceAccount", "name": "robot"}),
            "shop"
        ));
        assert!(!subject_matches(
            &robot,
            &json!({"kind": "ServiceAccount", "name": "robot"}),
            "other"
        ));
        assert!(!subject_matches(
            &robot,
            &json!({"kind": "ServiceAccount", "name": "robot"}),
            ""
        ));
        assert!(subject_matches(
            &robot,
            &json!({"kind": "ServiceAccount", "name": "robot", "namespace": "shop"}),
            "other"
        ));
        assert!(subject_matches(
            &robot,
            &json!({"kind": "Group", "name": "system:serviceaccounts:shop"}),
            ""
        ));
        assert!(subject_matches(
            &robot,
            &json!({"kind": "User", "name": "system:serviceaccount:shop:robot"}),
            ""
        ));
    }

    /// apiserver `endpoints/handlers/responsewriters/errors.go` `forbiddenMessage` wrapped by
    /// `apierrors.NewForbidden`.
    #[test]
    fn forbidden_messages_have_the_upstream_shape() {
        let robot = User::service_account("shop", "robot");
        let e = forbidden(&robot, &attrs("list", "", "services", "", ""));
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "services is forbidden: User \"system:serviceaccount:shop:robot\" cannot list resource \"services\" in API group \"\" in the namespace \"shop\""
        );
        let mut a = attrs("get", RBAC_GROUP, "clusterroles", "", "admin");
        a.namespace.clear();
        assert_eq!(
            forbidden(&robot, &a).message,
            "clusterroles.rbac.authorization.k8s.io \"admin\" is forbidden: User \"system:serviceaccount:shop:robot\" cannot get resource \"clusterroles\" in API group \"rbac.authorization.k8s.io\" at the cluster scope"
        );
        let e = forbidden(
            &robot,
            &attrs("create", "", "serviceaccounts", "token", "robot"),
        );
        assert!(
            e.message.starts_with("serviceaccounts \"robot\" is forbidden: User \"system:serviceaccount:shop:robot\" cannot create resource \"serviceaccounts/token\""),
            "{}",
            e.message
        );
    }
}
