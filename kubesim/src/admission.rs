//! What the API server does to an object before it is stored: defaulting (uid, timestamps,
//! Service cluster IPs and ports, Secret `stringData`) and validation (`422 Invalid` causes).

use std::collections::HashSet;
use std::net::Ipv4Addr;

use crate::names::{dns1035_label, dns1123_label, dns1123_subdomain, label_value, qualified_name};
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::resources::{
    CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, NAMESPACES, RBAC_GROUP, ROLE_BINDINGS, ROLES, SECRETS,
    SERVICES,
};
use crate::status::{ApiError, ApiResult, Cause, cause};

/// The Service cluster-IP range, `10.96.0.0/12` as kubeadm defaults it.
const SERVICE_CIDR_BASE: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const SERVICE_CIDR_SIZE: u32 = 1 << 20;
/// NodePort range, as Kubernetes defaults it.
const NODE_PORTS: std::ops::RangeInclusive<u32> = 30000..=32767;

/// Allocations a cluster hands out: Service cluster IPs and node ports.
#[derive(Debug, Default)]
pub(crate) struct Allocator {
    ips: HashSet<u32>,
    next_ip: u32,
    node_ports: HashSet<u32>,
}

impl Allocator {
    fn allocate_ip(&mut self) -> ApiResult<Ipv4Addr> {
        // Skip .0 (network) and .1 (the `kubernetes` Service in a real cluster).
        for _ in 0..SERVICE_CIDR_SIZE {
            self.next_ip = (self.next_ip + 1) % SERVICE_CIDR_SIZE;
            if self.next_ip < 2 {
                continue;
            }
            let ip = SERVICE_CIDR_BASE + self.next_ip;
            if self.ips.insert(ip) {
                return Ok(Ipv4Addr::from(ip));
            }
        }
        Err(ApiError::internal(
            "the service cluster IP range is exhausted",
        ))
    }

    fn allocate_node_port(&mut self) -> ApiResult<u32> {
        NODE_PORTS
            .clone()
            .find(|p| self.node_ports.insert(*p))
            .ok_or_else(|| ApiError::internal("the node port range is exhausted"))
    }

    /// Gives back what a deleted Service held.
    pub fn release_service(&mut self, svc: &Value) {
        if let Some(ip) = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Ipv4Addr>().ok())
        {
            self.ips.remove(&u32::from(ip));
        }
        for p in ports(svc) {
            if let Some(np) = p.get("nodePort").and_then(Value::as_u64) {
                self.node_ports.remove(&(np as u32));
            }
        }
    }
}

fn ports(svc: &Value) -> Vec<&Value> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// The current time in the RFC 3339 form Kubernetes uses (`2024-01-01T00:00:00Z`).
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn meta(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

/// Checks `apiVersion`/`kind` and the namespace against the request and fills them in.
pub(crate) fn check_type_and_namespace(
    resource: usize,
    obj: &mut Value,
    namespace: Option<&str>,
) -> ApiResult<()> {
    let rt = crate::resources::rt(resource);
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    let api_version = rt.api_version();
    if let Some(v) = obj.get("apiVersion").and_then(Value::as_str)
        && v != api_version
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({api_version})"
        )));
    }
    if let Some(k) = obj.get("kind").and_then(Value::as_str)
        && k != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(rt.kind);
    let m = meta(obj);
    match namespace {
        Some(ns) => {
            if let Some(given) = m.get("namespace").and_then(Value::as_str)
                && !given.is_empty()
                && given != ns
            {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            m.insert("namespace".into(), json!(ns));
        }
        None => {
            m.remove("namespace");
        }
    }
    Ok(())
}

/// Defaults a new object. `alloc` hands out Service IPs and node ports.
pub(crate) fn default_create(
    resource: usize,
    obj: &mut Value,
    alloc: &mut Allocator,
) -> ApiResult<()> {
    let now = now();
    {
        let m = meta(obj);
        let name_empty = m
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if name_empty
            && let Some(prefix) = m.get("generateName").and_then(Value::as_str)
            && !prefix.is_empty()
        {
            let name = format!("{prefix}{}", random_suffix());
            m.insert("name".into(), json!(name));
        }
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(now));
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("resourceVersion");
        m.remove("selfLink");
        if obj.get("spec").is_some() {
            meta(obj).insert("generation".into(), json!(1));
        }
    }
    match resource {
        NAMESPACES => {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        SERVICES => default_service(obj, None, alloc)?,
        SECRETS => default_secret(obj),
        _ => {}
    }
    Ok(())
}

/// Defaults an update: identity fields come from the stored object, `generation` moves when
/// the spec changes, Service allocations are kept and are immutable.
pub(crate) fn default_update(
    resource: usize,
    old: &Value,
    obj: &mut Value,
    alloc: &mut Allocator,
) -> ApiResult<()> {
    for key in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old.pointer(&format!("/metadata/{key}")) {
            Some(v) => {
                meta(obj).insert(key.into(), v.clone());
            }
            None => {
                meta(obj).remove(key);
            }
        }
    }
    if matches!(resource, ROLE_BINDINGS | CLUSTER_ROLE_BINDINGS)
        && obj.get("roleRef") != old.get("roleRef")
    {
        // `ValidateRoleBindingUpdate`: the role a binding grants never changes.
        let rt = crate::resources::rt(resource);
        return Err(ApiError::invalid(
            rt.kind,
            rt.group,
            rt.plural,
            str_at(obj, "/metadata/name").unwrap_or(""),
            vec![cause(
                "FieldValueInvalid",
                "roleRef",
                format!(
                    "Invalid value: {}: cannot change roleRef",
                    obj.get("roleRef").cloned().unwrap_or(Value::Null)
                ),
            )],
        ));
    }
    match resource {
        NAMESPACES => {
            obj["status"] = old
                .get("status")
                .cloned()
                .unwrap_or(json!({"phase": "Active"}));
        }
        SERVICES => default_service(obj, Some(old), alloc)?,
        SECRETS => default_secret(obj),
        _ => {}
    }
    let spec_of = |v: &Value| {
        let mut v = v.clone();
        if let Value::Object(m) = &mut v {
            m.remove("metadata");
            m.remove("status");
        }
        v
    };
    if obj.get("spec").is_some() && spec_of(old) != spec_of(obj) {
        let g = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta(obj).insert("generation".into(), json!(g + 1));
    }
    Ok(())
}

fn random_suffix() -> String {
    // The alphabet Kubernetes uses for generateName (no vowels, no confusable characters).
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn default_secret(obj: &mut Value) {
    if obj.get("type").is_none() {
        obj["type"] = json!("Opaque");
    }
    if let Some(Value::Object(string_data)) =
        obj.as_object_mut().and_then(|m| m.remove("stringData"))
    {
        if !obj.get("data").is_some_and(Value::is_object) {
            obj["data"] = json!({});
        }
        for (k, v) in string_data {
            let raw = v.as_str().unwrap_or_default();
            obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(raw));
        }
    }
}

fn default_service(obj: &mut Value, old: Option<&Value>, alloc: &mut Allocator) -> ApiResult<()> {
    if !obj.get("spec").is_some_and(Value::is_object) {
        obj["spec"] = json!({});
    }
    let spec = &mut obj["spec"];
    if spec.get("type").is_none() {
        spec["type"] = json!("ClusterIP");
    }
    let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if spec.get("sessionAffinity").is_none() {
        spec["sessionAffinity"] = json!("None");
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for p in ports.iter_mut() {
            if !p.is_object() {
                continue;
            }
            if p.get("protocol").is_none() {
                p["protocol"] = json!("TCP");
            }
            if p.get("targetPort").is_none()
                && let Some(port) = p.get("port").cloned()
            {
                p["targetPort"] = port;
            }
        }
    }
    if ty == "ExternalName" {
        return Ok(());
    }
    let requested = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let old_ip = old
        .and_then(|o| str_at(o, "/spec/clusterIP"))
        .map(str::to_string);
    let ip = match (old_ip, requested.as_str()) {
        (Some(old_ip), "") => old_ip,
        (Some(old_ip), req) if req == old_ip => old_ip,
        (Some(old_ip), req) => {
            return Err(ApiError::invalid(
                "Service",
                "",
                "services",
                str_at(obj, "/metadata/name").unwrap_or(""),
                vec![cause(
                    "FieldValueInvalid",
                    "spec.clusterIPs[0]",
                    format!("Invalid value: \"{req}\": may not change once set (was {old_ip})"),
                )],
            ));
        }
        (None, "") => alloc.allocate_ip()?.to_string(),
        (None, "None") => "None".to_string(),
        (None, req) => {
            let name = str_at(obj, "/metadata/name").unwrap_or("").to_string();
            let invalid = |msg: String| {
                ApiError::invalid(
                    "Service",
                    "",
                    "services",
                    &name,
                    vec![cause("FieldValueInvalid", "spec.clusterIPs", msg)],
                )
            };
            let parsed: Ipv4Addr = req.parse().map_err(|_| {
                invalid(format!(
                    "Invalid value: \"{req}\": must be a valid IP address"
                ))
            })?;
            let n = u32::from(parsed);
            if !(SERVICE_CIDR_BASE..SERVICE_CIDR_BASE + SERVICE_CIDR_SIZE).contains(&n) {
                return Err(invalid(format!(
                    "Invalid value: \"{req}\": failed to allocate IP {req}: the provided IP ({req}) is not in the valid range. The range of valid IPs is 10.96.0.0/12"
                )));
            }
            if !alloc.ips.insert(n) {
                return Err(invalid(format!(
                    "Invalid value: \"{req}\": failed to allocate IP {req}: provided IP is already allocated"
                )));
            }
            req.to_string()
        }
    };
    let spec = &mut obj["spec"];
    spec["clusterIP"] = json!(ip);
    spec["clusterIPs"] = json!([ip]);
    if ip != "None" || spec.get("ipFamilies").is_none() {
        spec["ipFamilies"] = json!(["IPv4"]);
        spec["ipFamilyPolicy"] = json!("SingleStack");
    }
    if spec.get("internalTrafficPolicy").is_none() {
        spec["internalTrafficPolicy"] = json!("Cluster");
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        if spec.get("externalTrafficPolicy").is_none() {
            spec["externalTrafficPolicy"] = json!("Cluster");
        }
        let old_ports = old.map(ports).unwrap_or_default();
        if let Some(Value::Array(ports)) = spec.get_mut("ports") {
            for p in ports.iter_mut() {
                if p.get("nodePort").is_some() {
                    continue;
                }
                let kept = old_ports
                    .iter()
                    .find(|o| o.get("port") == p.get("port"))
                    .and_then(|o| o.get("nodePort"))
                    .cloned();
                p["nodePort"] = match kept {
                    Some(np) => np,
                    None => json!(alloc.allocate_node_port()?),
                };
            }
        }
        if ty == "LoadBalancer" && spec.get("allocateLoadBalancerNodePorts").is_none() {
            spec["allocateLoadBalancerNodePorts"] = json!(true);
        }
    }
    if obj.get("status").is_none() {
        obj["status"] = json!({"loadBalancer": {}});
    }
    Ok(())
}

/// Validates an object about to be stored; the causes become a `422 Invalid`.
pub(crate) fn validate(resource: usize, obj: &Value) -> ApiResult<()> {
    let rt = crate::resources::rt(resource);
    let mut causes: Vec<Cause> = Vec::new();
    let name = str_at(obj, "/metadata/name").unwrap_or("");
    // One cause per broken rule, as `ValidateObjectMeta` appends one `field.Invalid` per message.
    let check = |causes: &mut Vec<Cause>, field: &str, value: &str, errs: Vec<String>| {
        for e in errs {
            causes.push(cause(
                "FieldValueInvalid",
                field,
                format!("Invalid value: \"{value}\": {e}"),
            ));
        }
    };
    if name.is_empty() {
        causes.push(cause(
            "FieldValueRequired",
            "metadata.name",
            "Required value: name or generateName is required",
        ));
    } else if resource == NAMESPACES || resource == SERVICES {
        // Namespaces: `ValidateNamespaceName` (DNS-1123 label); Services:
        // `ValidateServiceName` (DNS-1035 label).
        let errs = if resource == SERVICES {
            dns1035_label(name)
        } else {
            dns1123_label(name)
        };
        check(&mut causes, "metadata.name", name, errs);
    } else if matches!(
        resource,
        ROLES | CLUSTER_ROLES | ROLE_BINDINGS | CLUSTER_ROLE_BINDINGS
    ) {
        // RBAC names are path segments (`ValidateRBACName`), so `system:controller:x` is valid.
        check(
            &mut causes,
            "metadata.name",
            name,
            path_segment(name).err().into_iter().collect(),
        );
    } else {
        check(&mut causes, "metadata.name", name, dns1123_subdomain(name));
    }
    if let Some(Value::Object(labels)) = obj.pointer("/metadata/labels") {
        for (k, v) in labels {
            check(&mut causes, "metadata.labels", k, qualified_name(k));
            match v.as_str() {
                Some(s) => check(&mut causes, "metadata.labels", s, label_value(s)),
                None => check(
                    &mut causes,
                    "metadata.labels",
                    k,
                    vec!["label values must be strings".into()],
                ),
            }
        }
    }
    if let Some(Value::Object(annotations)) = obj.pointer("/metadata/annotations") {
        for k in annotations.keys() {
            check(&mut causes, "metadata.annotations", k, qualified_name(k));
        }
    }
    match resource {
        ROLES | CLUSTER_ROLES => validate_rules(obj, resource == ROLES, &mut causes),
        ROLE_BINDINGS | CLUSTER_ROLE_BINDINGS => {
            validate_binding(obj, resource == ROLE_BINDINGS, &mut causes)
        }
        SECRETS => validate_secret(obj, &mut causes),
        SERVICES => validate_service(obj, &mut causes),
        crate::resources::CRDS => causes.extend(crate::crd::validate_crd(obj)),
        r if crate::resources::rt(r).kind == "Endpoints" => validate_endpoints(obj, &mut causes),
        r if crate::resources::rt(r).kind == "EndpointSlice" => validate_slice(obj, &mut causes),
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            rt.kind, rt.group, rt.plural, name, causes,
        ))
    }
}

/// `path.IsValidPathSegmentName`: what RBAC object names must be.
fn path_segment(name: &str) -> Result<(), String> {
    if name == "." || name == ".." {
        return Err(format!("may not be '{name}'"));
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            return Err(format!("may not contain '{bad}'"));
        }
    }
    Ok(())
}

fn strings<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn json_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// kubernetes `pkg/apis/rbac/validation/validation.go` `ValidatePolicyRule`.
fn validate_rules(obj: &Value, namespaced: bool, causes: &mut Vec<Cause>) {
    for (i, rule) in obj
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = |f: &str| format!("rules[{i}].{f}");
        if strings(rule, "verbs").is_empty() {
            causes.push(cause(
                "FieldValueRequired",
                &field("verbs"),
                "Required value: verbs must contain at least one value",
            ));
        }
        let urls = strings(rule, "nonResourceURLs");
        if !urls.is_empty() {
            if namespaced {
                causes.push(cause(
                    "FieldValueInvalid",
                    &field("nonResourceURLs"),
                    format!(
                        "Invalid value: {}: namespaced rules cannot apply to non-resource URLs",
                        json_list(&urls)
                    ),
                ));
            }
            if ["apiGroups", "resources", "resourceNames"]
                .iter()
                .any(|k| !strings(rule, k).is_empty())
            {
                causes.push(cause(
                    "FieldValueInvalid",
                    &field("nonResourceURLs"),
                    format!(
                        "Invalid value: {}: rules cannot apply to both regular resources and non-resource URLs",
                        json_list(&urls)
                    ),
                ));
            }
            continue;
        }
        if rule
            .get("apiGroups")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            causes.push(cause(
                "FieldValueRequired",
                &field("apiGroups"),
                "Required value: resource rules must supply at least one api group",
            ));
        }
        if strings(rule, "resources").is_empty() {
            causes.push(cause(
                "FieldValueRequired",
                &field("resources"),
                "Required value: resource rules must supply at least one resource",
            ));
        }
    }
}

fn not_supported(field: &str, value: &str, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
    cause(
        "FieldValueNotSupported",
        field,
        format!(
            "Unsupported value: \"{value}\": supported values: {}",
            list.join(", ")
        ),
    )
}

/// kubernetes `pkg/apis/rbac/validation/validation.go` `ValidateRoleBinding` and
/// `ValidateRoleBindingSubject`.
fn validate_binding(obj: &Value, namespaced: bool, causes: &mut Vec<Cause>) {
    let role_ref = obj.get("roleRef").cloned().unwrap_or(json!({}));
    let api_group = str_at(&role_ref, "/apiGroup").unwrap_or("");
    if api_group != RBAC_GROUP {
        causes.push(not_supported("roleRef.apiGroup", api_group, &[RBAC_GROUP]));
    }
    let kind = str_at(&role_ref, "/kind").unwrap_or("");
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        causes.push(not_supported("roleRef.kind", kind, kinds));
    }
    match str_at(&role_ref, "/name").unwrap_or("") {
        "" => causes.push(cause(
            "FieldValueRequired",
            "roleRef.name",
            "Required value",
        )),
        name => {
            if let Err(e) = path_segment(name) {
                causes.push(cause(
                    "FieldValueInvalid",
                    "roleRef.name",
                    format!("Invalid value: \"{name}\": {e}"),
                ));
            }
        }
    }
    for (i, subject) in obj
        .get("subjects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = |f: &str| format!("subjects[{i}].{f}");
        let name = str_at(subject, "/name").unwrap_or("");
        if name.is_empty() {
            causes.push(cause(
                "FieldValueRequired",
                &field("name"),
                "Required value",
            ));
        }
        let group = str_at(subject, "/apiGroup").unwrap_or("");
        match str_at(subject, "/kind").unwrap_or("") {
            "ServiceAccount" => {
                let errs = if name.is_empty() {
                    Vec::new()
                } else {
                    dns1123_subdomain(name)
                };
                for e in errs {
                    causes.push(cause(
                        "FieldValueInvalid",
                        &field("name"),
                        format!("Invalid value: \"{name}\": {e}"),
                    ));
                }
                if !group.is_empty() {
                    causes.push(not_supported(&field("apiGroup"), group, &[""]));
                }
                if !namespaced && str_at(subject, "/namespace").is_none_or(str::is_empty) {
                    causes.push(cause(
                        "FieldValueRequired",
                        &field("namespace"),
                        "Required value",
                    ));
                }
            }
            "User" | "Group" => {
                if group != RBAC_GROUP {
                    causes.push(not_supported(&field("apiGroup"), group, &[RBAC_GROUP]));
                }
            }
            other => causes.push(not_supported(
                &field("kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
}

/// kubernetes `pkg/apis/core/validation/validation.go` `ValidateSecret`: a service account
/// token Secret names its service account.
fn validate_secret(obj: &Value, causes: &mut Vec<Cause>) {
    if str_at(obj, "/type") == Some(crate::auth::SA_TOKEN_SECRET_TYPE)
        && obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(crate::auth::SA_NAME_ANNOTATION))
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        causes.push(cause(
            "FieldValueRequired",
            &format!("metadata.annotations[{}]", crate::auth::SA_NAME_ANNOTATION),
            "Required value",
        ));
    }
}

fn port_number(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64)
}

fn check_port(field: &str, v: Option<&Value>, causes: &mut Vec<Cause>) {
    match port_number(v) {
        None => causes.push(cause("FieldValueRequired", field, "Required value")),
        Some(p) if !(1..=65535).contains(&p) => causes.push(cause(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {p}: must be between 1 and 65535, inclusive"),
        )),
        Some(_) => {}
    }
}

fn validate_service(obj: &Value, causes: &mut Vec<Cause>) {
    let ty = str_at(obj, "/spec/type").unwrap_or("ClusterIP");
    if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&ty) {
        causes.push(cause(
            "FieldValueNotSupported",
            "spec.type",
            format!(
                "Unsupported value: \"{ty}\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
            ),
        ));
    }
    let headless = str_at(obj, "/spec/clusterIP") == Some("None");
    let ports = ports(obj);
    if ty == "ExternalName" {
        if str_at(obj, "/spec/externalName").is_none_or(str::is_empty) {
            causes.push(cause(
                "FieldValueRequired",
                "spec.externalName",
                "Required value",
            ));
        }
    } else if ports.is_empty() && !headless {
        causes.push(cause("FieldValueRequired", "spec.ports", "Required value"));
    }
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let field = format!("spec.ports[{i}]");
        check_port(&format!("{field}.port"), p.get("port"), causes);
        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() && ports.len() > 1 {
            causes.push(cause(
                "FieldValueRequired",
                &format!("{field}.name"),
                "Required value",
            ));
        } else if !name.is_empty() {
            for e in dns1123_label(name) {
                causes.push(cause(
                    "FieldValueInvalid",
                    &format!("{field}.name"),
                    format!("Invalid value: \"{name}\": {e}"),
                ));
            }
            if !names.insert(name) {
                causes.push(cause(
                    "FieldValueDuplicate",
                    &format!("{field}.name"),
                    format!("Duplicate value: \"{name}\""),
                ));
            }
        }
        let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
        if !["TCP", "UDP", "SCTP"].contains(&proto) {
            causes.push(cause(
                "FieldValueNotSupported",
                &format!("{field}.protocol"),
                format!(
                    "Unsupported value: \"{proto}\": supported values: \"SCTP\", \"TCP\", \"UDP\""
                ),
            ));
        }
        if let Some(tp) = p.get("targetPort")
            && let Some(n) = tp.as_i64()
            && !(1..=65535).contains(&n)
        {
            causes.push(cause(
                "FieldValueInvalid",
                &format!("{field}.targetPort"),
                format!("Invalid value: {n}: must be between 1 and 65535, inclusive"),
            ));
        }
    }
}

fn validate_endpoints(obj: &Value, causes: &mut Vec<Cause>) {
    let Some(Value::Array(subsets)) = obj.get("subsets") else {
        return;
    };
    for (i, s) in subsets.iter().enumerate() {
        for list in ["addresses", "notReadyAddresses"] {
            for (j, a) in s
                .get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let ip = a.get("ip").and_then(Value::as_str).unwrap_or("");
                if ip.parse::<std::net::IpAddr>().is_err() {
                    causes.push(cause(
                        "FieldValueInvalid",
                        &format!("subsets[{i}].{list}[{j}].ip"),
                        format!("Invalid value: \"{ip}\": must be a valid IP address"),
                    ));
                }
            }
        }
        for (j, p) in s
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            check_port(
                &format!("subsets[{i}].ports[{j}].port"),
                p.get("port"),
                causes,
            );
        }
    }
}

fn validate_slice(obj: &Value, causes: &mut Vec<Cause>) {
    match obj.get("addressType").and_then(Value::as_str) {
        Some("IPv4" | "IPv6" | "FQDN") => {}
        Some(other) => causes.push(cause(
            "FieldValueNotSupported",
            "addressType",
            format!(
                "Unsupported value: \"{other}\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""
            ),
        )),
        None => causes.push(cause("FieldValueRequired", "addressType", "Required value")),
    }
    for (i, e) in obj
        .get("endpoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if e.get("addresses")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            causes.push(cause(
                "FieldValueRequired",
                &format!("endpoints[{i}].addresses"),
                "Required value: must contain at least 1 address",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_defaults_match_kubernetes() {
        let mut alloc = Allocator::default();
        let mut svc = json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}});
        default_create(SERVICES, &mut svc, &mut alloc).unwrap();
        assert_eq!(
            svc["spec"]["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["clusterIP"], "10.96.0.2");
        assert_eq!(svc["metadata"]["generation"], 1);
        let mut headless = json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}});
        default_create(SERVICES, &mut headless, &mut alloc).unwrap();
        assert_eq!(headless["spec"]["clusterIP"], "None");
        assert!(
            validate(SERVICES, &headless).is_ok(),
            "headless services need no ports"
        );
    }

    #[test]
    fn cluster_ip_is_immutable_and_kept_when_omitted() {
        let mut alloc = Allocator::default();
        let mut svc = json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}});
        default_create(SERVICES, &mut svc, &mut alloc).unwrap();
        let mut update = json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 81}]}});
        default_update(SERVICES, &svc, &mut update, &mut alloc).unwrap();
        assert_eq!(update["spec"]["clusterIP"], svc["spec"]["clusterIP"]);
        assert_eq!(update["metadata"]["generation"], 2);
        let mut change = update.clone();
        change["spec"]["clusterIP"] = json!("10.96.9.9");
        let err = default_update(SERVICES, &update, &mut change, &mut alloc).unwrap_err();
        assert_eq!(err.code, 422);
    }

    #[test]
    fn validation_reports_every_bad_field() {
        let svc = json!({"metadata": {"name": "Bad_Name", "labels": {"ok": "-no-"}},
            "spec": {"ports": [{"port": 0}, {"name": "b", "port": 70000}]}});
        let err = validate(SERVICES, &svc).unwrap_err();
        assert_eq!(err.code, 422);
        let fields: Vec<&str> = err.causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "metadata.name",
                "metadata.labels",
                "spec.ports[0].port",
                "spec.ports[0].name",
                "spec.ports[1].port"
            ]
        );
        let missing = json!({"metadata": {"name": "web"}, "spec": {}});
        let err = validate(SERVICES, &missing).unwrap_err();
        assert_eq!(err.causes[0].field, "spec.ports");
    }

    #[test]
    fn secret_string_data_is_encoded_into_data() {
        let mut s = json!({"metadata": {"name": "s"}, "stringData": {"token": "abc"}});
        default_create(SECRETS, &mut s, &mut Allocator::default()).unwrap();
        assert_eq!(s["data"]["token"], "YWJj");
        assert_eq!(s["type"], "Opaque");
        assert!(s.get("stringData").is_none());
    }
}
