//! `linkplane import linkerd`: linkplane Cluster and Link manifests equivalent to the Linkerd
//! `Link` resources (multicluster.linkerd.io/v1alpha3, linkerd-compat §1) of one cluster, for the
//! migration in `docs/migrating-from-linkerd.md`.
//!
//! The cluster read is the *source* of every Link in it. Each Link's target becomes a Cluster
//! (its API server read from the Link's credentials Secret, its gateway and probe from the Link)
//! and a Link into the source. Credentials are never printed: every Cluster gets a `secretRef`
//! naming Linkerd's Secret, to be copied where linkplane reads Secrets.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, ListParams},
    config::Kubeconfig,
};
use serde_json::Value;

use crate::error::{Error, Result};

/// A Linkerd `Link` as read from the API.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkerdLink {
    /// Its namespace (where its credentials Secret lives).
    pub namespace: String,
    /// Its name (the target cluster's, by convention).
    pub name: String,
    /// `spec`, as served.
    pub spec: Value,
}

/// Reads every Linkerd Link of the cluster behind `client` and the API server named in each
/// Link's credentials Secret, and returns the manifests (YAML, `---`-separated).
pub async fn linkerd_manifests(
    client: Client,
    source: &str,
    source_server: &str,
) -> Result<String> {
    let ar = ApiResource {
        group: "multicluster.linkerd.io".into(),
        version: "v1alpha3".into(),
        api_version: "multicluster.linkerd.io/v1alpha3".into(),
        kind: "Link".into(),
        plural: "links".into(),
    };
    let list = match Api::<DynamicObject>::all_with(client.clone(), &ar)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list.items,
        // No Link CRD: Linkerd's multicluster extension is not installed, nothing to import.
        Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
        Err(e) => {
            return Err(Error::kube(
                "listing Linkerd Links (links.multicluster.linkerd.io)",
            )(e));
        }
    };
    let mut links = Vec::new();
    let mut servers = BTreeMap::new();
    for obj in list {
        let namespace = obj.metadata.namespace.clone().unwrap_or_default();
        let name = obj.metadata.name.clone().unwrap_or_default();
        let spec = obj.data.get("spec").cloned().unwrap_or(Value::Null);
        let target = str_of(&spec, "targetClusterName")
            .unwrap_or(&name)
            .to_string();
        let secret = str_of(&spec, "clusterCredentialsSecret")
            .map(str::to_string)
            .unwrap_or_else(|| format!("cluster-credentials-{target}"));
        let found = Api::<Secret>::namespaced(client.clone(), &namespace)
            .get_opt(&secret)
            .await
            .map_err(Error::kube(format!("reading Secret {namespace}/{secret}")))?;
        if let Some(server) = found.as_ref().and_then(kubeconfig_server) {
            servers.insert(target, server);
        }
        links.push(LinkerdLink {
            namespace,
            name,
            spec,
        });
    }
    Ok(manifests(source, source_server, &links, &servers))
}

/// The `server` of a credentials Secret's kubeconfig (current context), never its credentials.
fn kubeconfig_server(secret: &Secret) -> Option<String> {
    let bytes = secret.data.as_ref()?.get("kubeconfig")?;
    let kc = Kubeconfig::from_yaml(std::str::from_utf8(&bytes.0).ok()?).ok()?;
    let context = kc
        .current_context
        .as_deref()
        .or_else(|| kc.contexts.first().map(|c| c.name.as_str()))?;
    let cluster = kc
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .cluster
        .clone();
    kc.clusters
        .iter()
        .find(|c| c.name == cluster)?
        .cluster
        .as_ref()?
        .server
        .clone()
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A YAML scalar: JSON string syntax is valid YAML and needs no escaping rules of its own.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A JSON value (selectors) as inline YAML (JSON flow syntax).
fn flow(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// The manifests for `links` read from cluster `source` (whose API server is `source_server`);
/// `servers` maps target cluster names to the API servers their credentials name.
pub fn manifests(
    source: &str,
    source_server: &str,
    links: &[LinkerdLink],
    servers: &BTreeMap<String, String>,
) -> String {
    let mut docs = vec![cluster_doc(
        source,
        source_server,
        None,
        "linkerd-multicluster",
    )];
    for l in links {
        let spec = &l.spec;
        let target = str_of(spec, "targetClusterName").unwrap_or(&l.name);
        let server = servers
            .get(target)
            .map(String::as_str)
            .unwrap_or("https://REPLACE-ME:6443");
        docs.push(cluster_doc(target, server, Some(spec), &l.namespace));
        docs.push(link_doc(source, target, spec));
    }
    docs.join("---\n")
}

fn cluster_doc(name: &str, server: &str, link: Option<&Value>, secret_ns: &str) -> String {
    let mut out = format!(
        "# Imported from Linkerd. Credentials are not copied: make the Secret below available\n\
         # where linkplane reads Secrets (--credentials-namespace), or use kubeconfigFile.\n\
         apiVersion: linkplane.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: {}\nspec:\n  apiServer: {}\n  credentials:\n    secretRef: {{name: {}, namespace: {}, key: kubeconfig}}\n",
        q(name),
        q(server),
        q(&format!("cluster-credentials-{name}")),
        q(secret_ns),
    );
    let Some(spec) = link else {
        return out;
    };
    if let Some(domain) = str_of(spec, "targetClusterDomain") {
        out.push_str(&format!("  clusterDomain: {}\n", q(domain)));
    }
    let addresses: Vec<&str> = str_of(spec, "gatewayAddress")
        .map(|a| {
            a.split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if addresses.is_empty() {
        out.push_str("  # no gatewayAddress: a flat (remote-discovery) link, no gateway\n");
        return out;
    }
    let quoted: Vec<String> = addresses.iter().map(|a| q(a)).collect();
    out.push_str(&format!(
        "  gateway:\n    addresses: [{}]\n",
        quoted.join(", ")
    ));
    if let Some(port) = str_of(spec, "gatewayPort") {
        out.push_str(&format!("    port: {port}\n"));
    }
    if let Some(id) = str_of(spec, "gatewayIdentity") {
        out.push_str(&format!("    identity: {}\n", q(id)));
    }
    if let Some(probe) = spec.get("probeSpec").filter(|p| p.is_object()) {
        out.push_str("    probe:\n");
        for (key, field) in [
            ("path", "path"),
            ("port", "port"),
            ("period", "period"),
            ("timeout", "timeout"),
            ("failureThreshold", "failureThreshold"),
        ] {
            if let Some(v) = str_of(probe, key) {
                // v1alpha1 periods were integer seconds ("3"): linkplane wants a duration.
                let v = if key == "period" && v.chars().all(|c| c.is_ascii_digit()) {
                    format!("{v}s")
                } else {
                    v.to_string()
                };
                let v = if matches!(key, "port" | "failureThreshold") {
                    v
                } else {
                    q(&v)
                };
                out.push_str(&format!("      {field}: {v}\n"));
            }
        }
    }
    out
}

fn link_doc(source: &str, target: &str, spec: &Value) -> String {
    let mut out = format!(
        "apiVersion: linkplane.io/v1alpha1\nkind: Link\nmetadata:\n  name: {}\nspec:\n  source: {}\n  target: {}\n",
        q(&format!("{source}-from-{target}")),
        q(source),
        q(target),
    );
    // Linkerd's selectors as they are (a missing one selects nothing there, and here `null`).
    for key in [
        "selector",
        "remoteDiscoverySelector",
        "federatedServiceSelector",
    ] {
        out.push_str(&format!(
            "  {key}: {}\n",
            flow(spec.get(key).unwrap_or(&Value::Null))
        ));
    }
    for key in ["excludedLabels", "excludedAnnotations"] {
        if let Some(v) = spec
            .get(key)
            .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        {
            out.push_str(&format!("  {key}: {}\n", flow(v)));
        }
    }
    out.push_str(concat!(
        "  # Linkerd's controller flags -enable-headless-services and -enable-namespace-creation\n",
        "  # are not on the Link: set these to what its controller ran with.\n",
        "  enableHeadlessServices: false\n",
        "  createNamespaces: false\n",
        "  # Mirrors Linkerd wrote are adopted; false leaves them alone while Linkerd still runs.\n",
        "  adoptLinkerdMirrors: true\n",
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn east() -> LinkerdLink {
        LinkerdLink {
            namespace: "linkerd-multicluster".into(),
            name: "east".into(),
            spec: json!({
                "targetClusterName": "east",
                "targetClusterDomain": "cluster.local",
                "clusterCredentialsSecret": "cluster-credentials-east",
                "gatewayAddress": "203.0.113.7,gw.east.example.com",
                "gatewayPort": "4143",
                "gatewayIdentity": "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.cluster.local",
                "probeSpec": {"path": "/ready", "port": "4191", "period": "3", "timeout": "30s", "failureThreshold": "3"},
                "selector": {"matchLabels": {"mirror.linkerd.io/exported": "true"}},
                "remoteDiscoverySelector": {"matchLabels": {"mirror.linkerd.io/exported": "remote-discovery"}},
                "federatedServiceSelector": {"matchLabels": {"mirror.linkerd.io/federated": "member"}},
                "excludedLabels": ["evil.linkerd/*"]
            }),
        }
    }

    /// linkerd-compat §1.1: every Link field maps onto a Cluster (gateway, probe, domain) or a
    /// Link (selectors, exclusions); the integer-seconds probe period of v1alpha1 becomes a
    /// duration; credentials become a secretRef, never content. (This output passes
    /// `linkplane validate`.)
    #[test]
    fn a_linkerd_link_becomes_a_cluster_and_a_link() {
        let servers =
            BTreeMap::from([("east".to_string(), "https://east.example:6443".to_string())]);
        let out = manifests("west", "https://west.example:6443", &[east()], &servers);
        let docs: Vec<&str> = out.split("---\n").collect();
        assert_eq!(docs.len(), 3, "{out}");
        assert!(
            docs[0].contains("name: \"west\"") && docs[0].contains("https://west.example:6443")
        );
        let c = docs[1];
        for needle in [
            "kind: Cluster",
            "name: \"east\"",
            "apiServer: \"https://east.example:6443\"",
            "secretRef: {name: \"cluster-credentials-east\", namespace: \"linkerd-multicluster\", key: kubeconfig}",
            "addresses: [\"203.0.113.7\", \"gw.east.example.com\"]",
            "port: 4143",
            "period: \"3s\"",
            "failureThreshold: 3",
            "clusterDomain: \"cluster.local\"",
        ] {
            assert!(c.contains(needle), "{needle} missing from:\n{c}");
        }
        let l = docs[2];
        for needle in [
            "kind: Link",
            "name: \"west-from-east\"",
            "target: \"east\"",
            "selector: {\"matchLabels\":{\"mirror.linkerd.io/exported\":\"true\"}}",
            "excludedLabels: [\"evil.linkerd/*\"]",
            "  adoptLinkerdMirrors: true",
            "  enableHeadlessServices: false",
        ] {
            assert!(l.contains(needle), "{needle} missing from:\n{l}");
        }
    }

    #[test]
    fn a_flat_link_has_no_gateway_and_an_unknown_server_is_marked() {
        let mut flat = east();
        flat.spec = json!({"targetClusterName": "east",
                           "remoteDiscoverySelector": {"matchLabels": {"mirror.linkerd.io/exported": "remote-discovery"}}});
        let out = manifests("west", "https://w", &[flat], &BTreeMap::new());
        assert!(out.contains("REPLACE-ME"));
        assert!(!out.contains("gateway:"));
        assert!(out.contains("  selector: null"));
    }

    #[test]
    fn only_the_server_is_read_from_a_credentials_secret() {
        let kc = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://east.example:6443\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\nusers:\n- name: u\n  user:\n    token: s3cret\n";
        let secret = Secret {
            data: Some(BTreeMap::from([(
                "kubeconfig".to_string(),
                k8s_openapi::ByteString(kc.as_bytes().to_vec()),
            )])),
            ..Secret::default()
        };
        assert_eq!(
            kubeconfig_server(&secret).as_deref(),
            Some("https://east.example:6443")
        );
    }
}
