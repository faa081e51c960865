//! Turning a cluster's [`CredentialsRef`] into a Kubernetes client, without ever logging the
//! credential: kubeconfig text lives in a [`SecretString`] until it is parsed.

use std::{
    collections::HashMap,
    future::Future,
    hash::{Hash, Hasher},
    path::PathBuf,
    pin::Pin,
    sync::{Arc, Mutex},
};

use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};
use linkplane_core::{Cluster, CredentialsRef};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

/// A boxed future, for the object-safe [`CredentialResolver`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Supplies kubeconfigs stored by the API (`CredentialsRef::Stored`, encrypted in Postgres).
/// The server implements it over `linkplane_store::credentials`; without one, `Stored`
/// credentials fail with a clear error.
pub trait CredentialResolver: Send + Sync + 'static {
    /// The kubeconfig YAML stored for `cluster`, or an error message (never the secret).
    fn kubeconfig<'a>(&'a self, cluster: &'a str) -> BoxFuture<'a, Result<SecretString, String>>;
}

/// Where the management cluster (the one linkplane runs in) is, for `SecretRef` credentials.
#[derive(Clone, Default)]
pub struct Credentials {
    /// Kubeconfig of the management cluster; `None` = in-cluster service account.
    pub management_kubeconfig: Option<PathBuf>,
    /// Namespace of `SecretRef`s without one (`POD_NAMESPACE` by default).
    pub default_namespace: Option<String>,
    /// Resolver for `Stored` credentials.
    pub resolver: Option<Arc<dyn CredentialResolver>>,
    /// The clients built so far, one per cluster (shared by clones of this value).
    pub clients: ClientCache,
}

/// One [`Client`] per cluster, shared by every task that reads or writes that cluster: its
/// watches and writers, and every remote-access pair and link clean-up that reaches it as a
/// source or as a target. A `Client` is a connection pool, so sharing it is what keeps the
/// connections to a cluster proportional to the requests in flight rather than to the number of
/// links touching it (at 100 clusters, a client per `(source, target)` pair meant 9,900 pools,
/// each with its own TLS connections; see BENCHMARKS.md, fleet scale).
///
/// An entry is keyed by the cluster's name and remembers a fingerprint of the kubeconfig text
/// and `spec.apiServer` it was built from: rotated credentials or a moved API server build a
/// fresh client (the old pool closes once its last user drops it). Writes are fenced per user
/// by wrapping the shared client ([`fenced_client`](crate::lease::fenced_client)), never here.
///
/// Built once per cluster even when thousands of tasks ask at the same moment (a fleet's start:
/// every remote-access pair asks for its source's and its target's client at once): callers of
/// one cluster wait for the first build instead of each building, and handshaking with, a client
/// of their own.
#[derive(Clone, Default)]
pub struct ClientCache(Arc<Mutex<HashMap<String, Slot>>>);

/// One cluster's client and the fingerprint it was built from; the async lock is held while
/// building.
type Slot = Arc<tokio::sync::Mutex<Option<(u64, Client)>>>;

impl ClientCache {
    fn slot(&self, cluster: &str) -> Slot {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(cluster.to_string())
            .or_default()
            .clone()
    }

    /// Clusters with a client cached.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when no client has been built yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a cluster's client is built from (the kubeconfig text and the API server URL), hashed:
/// it only decides whether a cached client is still current, and is never logged or stored.
fn fingerprint(cluster: &Cluster, yaml: &SecretString) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    yaml.expose_secret().hash(&mut h);
    cluster.spec.api_server.hash(&mut h);
    h.finish()
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("management_kubeconfig", &self.management_kubeconfig)
            .field("default_namespace", &self.default_namespace)
            .field("resolver", &self.resolver.is_some())
            .field("clients", &self.clients.len())
            .finish()
    }
}

impl Credentials {
    /// A client for `cluster`: the credentials and CA of its kubeconfig, talking to its
    /// `spec.apiServer` (see [`cluster_config`]). The same client (connection pool) while
    /// neither changes: see [`ClientCache`].
    pub async fn client(&self, cluster: &Cluster) -> Result<Client> {
        let yaml = self.kubeconfig(cluster).await?;
        let fp = fingerprint(cluster, &yaml);
        let slot = self.clients.slot(&cluster.name);
        let mut slot = slot.lock().await;
        if let Some((f, c)) = slot.as_ref()
            && *f == fp
        {
            return Ok(c.clone());
        }
        let config = cluster_config(cluster, &yaml).await?;
        let client = Client::try_from(config).map_err(Error::kube(format!(
            "building the client of {}",
            cluster.name
        )))?;
        *slot = Some((fp, client.clone()));
        Ok(client)
    }

    async fn kubeconfig(&self, cluster: &Cluster) -> Result<SecretString> {
        let err = |reason: String| Error::Credentials {
            cluster: cluster.name.clone(),
            reason,
        };
        match &cluster.spec.credentials {
            CredentialsRef::KubeconfigFile(path) => tokio::fs::read_to_string(path)
                .await
                .map(SecretString::from)
                .map_err(|e| err(format!("reading kubeconfig file {path:?}: {e}"))),
            CredentialsRef::SecretRef(r) => {
                let namespace = r
                    .namespace
                    .clone()
                    .or_else(|| self.default_namespace.clone())
                    .ok_or_else(|| {
                        err("secretRef has no namespace and no --credentials-namespace is set".into())
                    })?;
                let client = self.management_client().await.map_err(|e| {
                    err(format!("connecting to the management cluster: {}", e.chain()))
                })?;
                let secret = Api::<Secret>::namespaced(client, &namespace)
                    .get_opt(&r.name)
                    .await
                    .map_err(|e| err(format!("reading Secret {namespace}/{}: {e}", r.name)))?
                    .ok_or_else(|| err(format!("Secret {namespace}/{} not found", r.name)))?;
                let bytes = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(&r.key))
                    .ok_or_else(|| {
                        err(format!("Secret {namespace}/{} has no key {:?}", r.name, r.key))
                    })?;
                String::from_utf8(bytes.0.clone())
                    .map(SecretString::from)
                    .map_err(|_| err(format!("key {:?} of Secret {namespace}/{} is not UTF-8", r.key, r.name)))
            }
            CredentialsRef::Stored => match &self.resolver {
                Some(r) => r.kubeconfig(&cluster.name).await.map_err(err),
                None => Err(err(
                    "credentials are stored in the database but no credential resolver is configured"
                        .into(),
                )),
            },
        }
    }

    /// The TLS settings (CA, insecure flag, server name) of `cluster`'s kubeconfig, current
    /// context: what a kubeconfig written for another reader needs to trust the same server.
    /// Never its user credentials.
    pub(crate) async fn tls_of(&self, cluster: &Cluster) -> Result<ClusterTls> {
        use base64::Engine as _;
        let yaml = self.kubeconfig(cluster).await?;
        let err = |reason: String| Error::Credentials {
            cluster: cluster.name.clone(),
            reason,
        };
        let config = Kubeconfig::from_yaml(yaml.expose_secret())
            .map_err(|_| err("its kubeconfig does not parse".into()))?;
        let context = config
            .current_context
            .as_deref()
            .and_then(|c| config.contexts.iter().find(|x| x.name == c))
            .and_then(|c| c.context.as_ref());
        let entry = context
            .and_then(|c| config.clusters.iter().find(|x| x.name == c.cluster))
            .or(config.clusters.first())
            .and_then(|c| c.cluster.as_ref());
        let Some(entry) = entry else {
            return Ok(ClusterTls::default());
        };
        let ca_data = match (
            &entry.certificate_authority_data,
            &entry.certificate_authority,
        ) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(path)) => {
                let pem = tokio::fs::read(path)
                    .await
                    .map_err(|e| err(format!("reading its CA file {path:?}: {e}")))?;
                Some(base64::engine::general_purpose::STANDARD.encode(pem))
            }
            (None, None) => None,
        };
        Ok(ClusterTls {
            ca_data,
            insecure: entry.insecure_skip_tls_verify.unwrap_or(false),
            server_name: entry.tls_server_name.clone(),
        })
    }

    async fn management_client(&self) -> Result<Client> {
        match &self.management_kubeconfig {
            Some(path) => {
                let yaml =
                    tokio::fs::read_to_string(path)
                        .await
                        .map_err(|e| Error::Credentials {
                            cluster: "management".into(),
                            reason: format!("reading {path:?}: {e}"),
                        })?;
                client_from_kubeconfig("management", &SecretString::from(yaml)).await
            }
            None => {
                let config = Config::incluster().map_err(|e| Error::Credentials {
                    cluster: "management".into(),
                    reason: format!("in-cluster configuration: {e}"),
                })?;
                Client::try_from(config).map_err(Error::kube("building the management client"))
            }
        }
    }
}

/// The client configuration of `cluster`: its kubeconfig (current context) supplies the
/// credentials and CA, and `spec.apiServer` is the server, so the URL the API reports is the
/// one the reconciler talks to. A kubeconfig whose server differs is used with the manifest's
/// URL, and the difference is logged once per (cluster, kubeconfig server, apiServer).
pub async fn cluster_config(cluster: &Cluster, yaml: &SecretString) -> Result<Config> {
    let mut config = config_from_kubeconfig(&cluster.name, yaml).await?;
    let wanted = cluster.spec.api_server.trim_end_matches('/');
    let from_kubeconfig = config.cluster_url.to_string();
    if from_kubeconfig.trim_end_matches('/') != wanted {
        config.cluster_url = wanted.parse().map_err(|e| Error::Credentials {
            cluster: cluster.name.clone(),
            reason: format!("spec.apiServer {wanted:?} is not a URL: {e}"),
        })?;
        let key = (
            cluster.name.clone(),
            from_kubeconfig.clone(),
            wanted.to_string(),
        );
        let first = OVERRIDDEN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
        if first {
            tracing::warn!(
                cluster = %cluster.name,
                kubeconfig_server = %from_kubeconfig,
                api_server = %wanted,
                "the kubeconfig names another server than spec.apiServer: using spec.apiServer with the kubeconfig's credentials and CA"
            );
        }
    }
    Ok(config)
}

/// (cluster, kubeconfig server, apiServer) differences already logged.
static OVERRIDDEN: std::sync::Mutex<std::collections::BTreeSet<(String, String, String)>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Checks kubeconfig text before it is stored: it parses, names a current context that exists,
/// whose cluster has an `http(s)` server URL and whose user carries a credential. Messages name
/// contexts, clusters and users, never the text itself (it holds the credential).
pub fn check_kubeconfig(yaml: &str) -> std::result::Result<(), String> {
    let config = Kubeconfig::from_yaml(yaml).map_err(|_| {
        "it is not a kubeconfig (YAML parser details withheld: they could quote the credential)"
            .to_string()
    })?;
    let current = config
        .current_context
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or("it has no current-context")?;
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == current)
        .and_then(|c| c.context.as_ref())
        .ok_or_else(|| format!("its current-context {current:?} is not among its contexts"))?;
    let cluster_name = &context.cluster;
    let cluster = config
        .clusters
        .iter()
        .find(|c| &c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| {
            format!("context {current:?} names cluster {cluster_name:?}, which it does not define")
        })?;
    let server = cluster
        .server
        .as_deref()
        .ok_or_else(|| format!("cluster {cluster_name:?} has no server URL"))?;
    let authority = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
    match authority {
        Some(a) if !a.is_empty() && !a.contains(char::is_whitespace) => {}
        _ => {
            return Err(format!(
                "cluster {cluster_name:?} has server {server:?}, not an http(s) URL"
            ));
        }
    }
    let user_name = context
        .user
        .as_deref()
        .ok_or_else(|| format!("context {current:?} names no user"))?;
    let user = config
        .auth_infos
        .iter()
        .find(|u| u.name == user_name)
        .and_then(|u| u.auth_info.as_ref())
        .ok_or_else(|| {
            format!("context {current:?} names user {user_name:?}, which it does not define")
        })?;
    let has_credential = user.token.is_some()
        || user.token_file.is_some()
        || user.exec.is_some()
        || user.auth_provider.is_some()
        || (user.username.is_some() && user.password.is_some())
        || ((user.client_certificate.is_some() || user.client_certificate_data.is_some())
            && (user.client_key.is_some() || user.client_key_data.is_some()));
    if !has_credential {
        return Err(format!(
            "user {user_name:?} carries no credential (token, client certificate and key, exec or auth provider)"
        ));
    }
    Ok(())
}

/// Builds a client from kubeconfig text (its current context).
pub async fn client_from_kubeconfig(cluster: &str, yaml: &SecretString) -> Result<Client> {
    let config = config_from_kubeconfig(cluster, yaml).await?;
    Client::try_from(config).map_err(Error::kube(format!("building the client of {cluster}")))
}

async fn config_from_kubeconfig(cluster: &str, yaml: &SecretString) -> Result<Config> {
    // The YAML parser's message quotes the offending line, which may hold a token: withhold it.
    let kubeconfig = Kubeconfig::from_yaml(yaml.expose_secret()).map_err(|_| Error::Credentials {
        cluster: cluster.to_string(),
        reason: "the kubeconfig is not valid YAML (parser details withheld: they could quote the credential)".into(),
    })?;
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|source| Error::Kubeconfig {
            cluster: cluster.to_string(),
            source,
        })
}

/// TLS settings of linkplane's kubeconfig for a cluster, copied into the Secret's kubeconfig
/// (never its user credentials).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterTls {
    /// Base64 PEM CA bundle (`certificate-authority-data`).
    pub ca_data: Option<String>,
    /// `insecure-skip-tls-verify`.
    pub insecure: bool,
    /// `tls-server-name`.
    pub server_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stored_credentials_without_resolver_fail_clearly() {
        let c = Cluster::new("east", "https://e", CredentialsRef::Stored);
        let Err(err) = Credentials::default().client(&c).await else {
            panic!("expected an error")
        };
        assert!(err.to_string().contains("no credential resolver"), "{err}");
    }

    #[tokio::test]
    async fn missing_kubeconfig_file_names_the_path_not_the_content() {
        let c = Cluster::new(
            "east",
            "https://e",
            CredentialsRef::KubeconfigFile("/nonexistent/kc".into()),
        );
        let Err(err) = Credentials::default().client(&c).await else {
            panic!("expected an error")
        };
        assert!(err.to_string().contains("/nonexistent/kc"), "{err}");
    }

    const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://old.example:6443\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t0ken\n";

    /// Issue 14, point 5: `spec.apiServer` is the server; the kubeconfig gives credentials.
    #[tokio::test]
    async fn api_server_overrides_the_kubeconfig_server() {
        let yaml = SecretString::from(KUBECONFIG);
        let c = Cluster::new("east", "https://new.example:443", CredentialsRef::Stored);
        let config = cluster_config(&c, &yaml).await.unwrap();
        assert_eq!(config.cluster_url.host(), Some("new.example"));
        assert_eq!(config.cluster_url.port_u16(), Some(443));
        assert_eq!(
            config
                .auth_info
                .token
                .as_ref()
                .map(|t| t.expose_secret().to_string())
                .as_deref(),
            Some("t0ken"),
            "credentials still come from the kubeconfig"
        );
        let same = Cluster::new("east", "https://old.example:6443/", CredentialsRef::Stored);
        let config = cluster_config(&same, &yaml).await.unwrap();
        assert_eq!(config.cluster_url.host(), Some("old.example"));
        let bad = Cluster::new("east", "not a url", CredentialsRef::Stored);
        let Err(err) = cluster_config(&bad, &yaml).await else {
            panic!("expected an error")
        };
        assert!(err.to_string().contains("apiServer"), "{err}");
        assert!(!err.chain().contains("t0ken"));
    }

    /// Issue 15: `setClusterCredentials` accepted any string. What kubectl needs to talk to a
    /// cluster (client-go's `clientcmd` validation: current context, its cluster's server, its
    /// user's credential) is checked before storing, and no message quotes the credential.
    #[test]
    fn kubeconfigs_are_checked_before_they_are_stored() {
        let good = |server: &str, user: &str| {
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: {server}\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\nusers:\n- name: u\n  user:\n{user}\n"
            )
        };
        let token = "    token: s3cr3t-token";
        assert_eq!(
            check_kubeconfig(&good("https://10.0.0.1:6443", token)),
            Ok(())
        );
        let certs = "    client-certificate-data: AAAA\n    client-key-data: BBBB";
        assert_eq!(check_kubeconfig(&good("https://api.east", certs)), Ok(()));
        for (yaml, want) in [
            ("just a string".to_string(), "not a kubeconfig"),
            ("token: s3cr3t-token: [".to_string(), "not a kubeconfig"),
            (
                good("https://a", token).replace("current-context: c", "current-context: x"),
                "\"x\" is not among",
            ),
            (
                good("https://a", token).replace("current-context: c\n", ""),
                "no current-context",
            ),
            (
                good("https://a", token).replace("cluster: k", "cluster: nope"),
                "\"nope\", which it does not define",
            ),
            (good("ftp://a", token), "not an http(s) URL"),
            (
                good("https://a", "    client-key-data: BBBB"),
                "carries no credential",
            ),
            (
                good("https://a", token).replace("user: u", "user: who"),
                "\"who\", which it does not define",
            ),
        ] {
            let err = check_kubeconfig(&yaml).expect_err(&yaml);
            assert!(err.contains(want), "{err:?} should say {want:?}");
            assert!(!err.contains("s3cr3t"), "{err:?} quotes the credential");
        }
    }

    #[tokio::test]
    async fn garbage_kubeconfig_is_reported_without_echoing_it() {
        let Err(err) =
            client_from_kubeconfig("east", &SecretString::from("token: hunter2: [")).await
        else {
            panic!("expected an error")
        };
        assert!(!err.chain().contains("hunter2"), "{}", err.chain());
    }
}
