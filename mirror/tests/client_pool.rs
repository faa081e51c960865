//! One client per cluster (`Credentials::client`, `ClientCache`): every user of a cluster (its
//! watches and writers, each remote-access pair and link clean-up reaching it) shares one
//! connection pool, so the connections a cluster's API server holds follow the requests in
//! flight, not the number of links touching the cluster. kubesim counts the connections from
//! the server's side.
//!
//! Upstream rules pinned: HTTP/1.1 persistent connections (RFC 9112 §9.3: a connection stays
//! open for further requests unless either side says `Connection: close`), which the API
//! server's Go `net/http` server keeps (its `IdleTimeout`; kube-apiserver sends no `close` on
//! ordinary responses); so a shared pool reuses one connection for sequential requests, and
//! a client of its own opens a connection of its own. kubesim counts *open* connections, as a
//! server's connection-state tracking would (`net/http` `ConnState` New→Closed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, api::ListParams};
use linkplane_core::{Cluster, CredentialsRef};
use linkplane_mirror::Credentials;

async fn sim() -> (kubesim::Simulator, Cluster, tempfile::TempDir) {
    linkplane_mirror::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let sim = kubesim::Simulator::start(kubesim::SimOptions {
        clusters: vec!["east".into()],
        dir: dir.path().to_path_buf(),
        ..kubesim::SimOptions::default()
    })
    .await
    .unwrap();
    let c = sim.cluster("east").unwrap();
    let cluster = Cluster::new(
        "east",
        c.url(),
        CredentialsRef::KubeconfigFile(c.kubeconfig_path().display().to_string()),
    );
    (sim, cluster, dir)
}

/// Callers that each ask for the cluster's client, all at once (as a fleet's pairs do when they
/// start), get the one client and reuse the connection the first request opened: with a client
/// per caller each would open (and keep, for the pool's idle timeout) connections of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_of_one_cluster_share_its_connections() {
    let (sim, cluster, _dir) = sim().await;
    let east = sim.cluster("east").unwrap();
    let creds = Credentials::default();
    let before = east.open_connections();
    let first = creds.client(&cluster).await.unwrap();
    Api::<ConfigMap>::all(first)
        .list_metadata(&ListParams::default())
        .await
        .unwrap();
    let opened = east.open_connections() - before;
    assert_eq!(opened, 1, "one request, one connection");
    // Asked for all at once, as a fleet's pairs do at start: still the one client.
    let clients = futures::future::join_all((0..20).map(|_| creds.client(&cluster))).await;
    for client in clients {
        Api::<ConfigMap>::all(client.unwrap())
            .list_metadata(&ListParams::default())
            .await
            .unwrap();
    }
    // hyper's pool may open a second connection when a request is checked out before the last
    // response's connection is back in the idle list; 20 clients of their own would hold 21.
    let opened = east.open_connections() - before;
    assert!(
        opened <= 2,
        "20 more callers reuse the first one's pool, yet {opened} connections are open"
    );
    assert_eq!(creds.clients.len(), 1);
}

/// A cluster whose kubeconfig changed (rotated credentials) gets a fresh client: the cache never
/// serves a client built from credentials that are no longer configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_kubeconfig_builds_a_new_client() {
    let (sim, cluster, dir) = sim().await;
    let east = sim.cluster("east").unwrap();
    let creds = Credentials::default();
    // Held to the end: kubesim counts *open* connections, and a dropped client closes its own.
    let old = creds.client(&cluster).await.unwrap();
    Api::<ConfigMap>::all(old.clone())
        .list_metadata(&ListParams::default())
        .await
        .unwrap();
    let before = east.open_connections();
    // The same credentials, in another file with other text: another fingerprint.
    let text = std::fs::read_to_string(east.kubeconfig_path()).unwrap();
    let copy = dir.path().join("rotated.kubeconfig");
    std::fs::write(&copy, format!("{text}\n# rotated\n")).unwrap();
    let mut rotated = cluster.clone();
    rotated.spec.credentials = CredentialsRef::KubeconfigFile(copy.display().to_string());
    let client = creds.client(&rotated).await.unwrap();
    Api::<ConfigMap>::all(client)
        .list_metadata(&ListParams::default())
        .await
        .unwrap();
    assert!(
        east.open_connections() > before,
        "the new client opened a connection of its own"
    );
    assert_eq!(creds.clients.len(), 1, "still one entry for the cluster");
    drop(old);
}
