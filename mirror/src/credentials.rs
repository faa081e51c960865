//! Turning a cluster's [`CredentialsRef`] into a Kubernetes client, without ever logging the
//! credential: kubeconfig text lives in a [`SecretString`] until it is parsed.

use std::{future::Future, path::PathBuf, pin::Pin, sync::Arc};

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
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("management_kubeconfig", &self.management_kubeconfig)
            .field("default_namespace", &self.default_namespace)
            .field("resolver", &self.resolver.is_some())
            .finish()
    }
}

impl Credentials {
    /// A client for `cluster`.
    pub async fn client(&self, cluster: &Cluster) -> Result<Client> {
        let yaml = self.kubeconfig(cluster).await?;
        client_from_kubeconfig(&cluster.name, &yaml).await
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

/// Builds a client from kubeconfig text (its current context).
pub async fn client_from_kubeconfig(cluster: &str, yaml: &SecretString) -> Result<Client> {
    // The YAML parser's message quotes the offending line, which may hold a token: withhold it.
    let kubeconfig = Kubeconfig::from_yaml(yaml.expose_secret()).map_err(|_| Error::Credentials {
        cluster: cluster.to_string(),
        reason: "the kubeconfig is not valid YAML (parser details withheld: they could quote the credential)".into(),
    })?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|source| Error::Kubeconfig {
            cluster: cluster.to_string(),
            source,
        })?;
    Client::try_from(config).map_err(Error::kube(format!("building the client of {cluster}")))
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
