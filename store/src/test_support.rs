//! Small builders for store tests.

use linkplane_core::{Cluster, CredentialsRef};

/// A valid cluster named `name` with a kubeconfig file reference.
pub fn cluster(name: &str) -> Cluster {
    Cluster::new(
        name,
        format!("https://{name}.example.com:6443"),
        CredentialsRef::KubeconfigFile(format!("/etc/linkplane/{name}.kubeconfig")),
    )
}
