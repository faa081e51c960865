//! Remote-discovery credentials (issue 14 point 1): what linkplane writes so Linkerd's
//! destination controller can resolve flat and federated mirrors (linkerd-compat §1.4, §3.3).
//! kubesim over HTTPS, real Postgres, the real kube client built from the Secret's kubeconfig.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::{
    core::v1::{Endpoints, Namespace, Secret, Service, ServiceAccount},
    discovery::v1::EndpointSlice,
    rbac::v1::{ClusterRole, ClusterRoleBinding},
};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, PostParams},
    runtime::watcher,
};
use linkplane_mirror::{Options, remote_access};
use linkplane_store::{
    links,
    remote_credentials::{self, RemoteCredentialState},
};
use support::*;

async fn secret(client: &Client, ns: &str, name: &str) -> Option<Secret> {
    Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()
}

fn kubeconfig_of(s: &Secret) -> String {
    let bytes = &s.data.as_ref().unwrap()[remote_access::KUBECONFIG_KEY];
    String::from_utf8(bytes.0.clone()).unwrap()
}

/// The kube client a Linkerd destination controller would build from the Secret.
async fn client_from(s: &Secret) -> Client {
    let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig_of(s)).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    Client::try_from(config).unwrap()
}

fn code(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API status, got {other}"),
    }
}

async fn state(
    env: &Env,
    source: &str,
    target: &str,
) -> Option<remote_credentials::RemoteCredential> {
    let mut conn = env.store.acquire().await.unwrap();
    remote_credentials::list(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.source_cluster == source && r.target_cluster == target)
}

/// Waits until the pair's recorded state is `want`.
async fn state_becomes(env: &Env, source: &str, target: &str, want: RemoteCredentialState) {
    eventually(&format!("{source}->{target} state {want:?}"), || async {
        let s = state(env, source, target).await;
        ok_if(s.as_ref().is_some_and(|s| s.state() == want), || {
            format!("{s:?}")
        })
    })
    .await;
}

/// Upstream rules pinned: the Secret shape Linkerd's destination cluster store accepts
/// (`cluster_store.go`: type `mirror.linkerd.io/remote-kubeconfig`, label
/// `multicluster.linkerd.io/cluster-name`, annotations trust-domain and cluster-domain, data key
/// `kubeconfig`); RBAC of the issued token as the API server enforces it (403 outside the
/// ClusterRole's rules).
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn secret_has_linkerds_shape_and_least_privilege(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    let west = env.client("west").await;
    let east = env.client("east").await;
    create_ns(&west, "linkerd").await;
    env.update_cluster("east", |c| c.spec.trust_domain = "east.trust".into())
        .await;
    env.link("west", "east", |_| {}).await;

    let name = "cluster-credentials-east";
    eventually("secret written", || async {
        ok_if(secret(&west, "linkerd", name).await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    let s = secret(&west, "linkerd", name).await.unwrap();
    assert_eq!(
        s.type_.as_deref(),
        Some("mirror.linkerd.io/remote-kubeconfig")
    );
    let labels = s.metadata.labels.clone().unwrap();
    assert_eq!(labels["multicluster.linkerd.io/cluster-name"], "east");
    let ann = s.metadata.annotations.clone().unwrap();
    assert_eq!(ann["multicluster.linkerd.io/trust-domain"], "east.trust");
    assert_eq!(
        ann["multicluster.linkerd.io/cluster-domain"],
        "cluster.local"
    );
    let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig_of(&s)).unwrap();
    let server = kc.clusters[0].cluster.as_ref().unwrap().server.clone();
    assert_eq!(
        server.as_deref(),
        Some(env.sim.cluster("east").unwrap().url().as_str())
    );
    // linkplane's own admin credential never leaves linkplane.
    let admin = env.sim.cluster("east").unwrap().kubeconfig_yaml();
    let token = kc.auth_infos[0]
        .auth_info
        .as_ref()
        .unwrap()
        .token
        .clone()
        .unwrap();
    use secrecy::ExposeSecret;
    assert!(
        !admin.contains(token.expose_secret()),
        "the Secret carries the admin token"
    );

    // The kubeconfig works against the target for what remote discovery reads...
    let remote = client_from(&s).await;
    create_svc(&east, &service("default", "web", &[FLAT], &[("http", 80)])).await;
    let svcs = Api::<Service>::all(remote.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        svcs.items
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some("web"))
    );
    Api::<Endpoints>::all(remote.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    Api::<EndpointSlice>::all(remote.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    // ...and is refused everything else.
    let svc = service("default", "intruder", &[], &[("http", 80)]);
    let err = Api::<Service>::namespaced(remote.clone(), "default")
        .create(&PostParams::default(), &svc)
        .await
        .unwrap_err();
    assert_eq!(code(err), 403);
    let err = Api::<Secret>::namespaced(remote.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert_eq!(code(err), 403);
    let err = Api::<Secret>::namespaced(remote.clone(), remote_access::TARGET_NAMESPACE)
        .get("anything")
        .await
        .unwrap_err();
    assert_eq!(code(err), 403);

    let row = state(&env, "west", "east").await.unwrap();
    assert_eq!(row.state, "Issued");
    assert!(row.expires_at.unwrap() > row.issued_at.unwrap());
    assert_eq!(
        env.metrics.remote_access.state_of("west", "east"),
        Some(RemoteCredentialState::Issued)
    );
    env.shutdown().await;
}

/// A gateway-only link (both flat and federated selectors off) gets no credentials.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn gateway_only_links_get_no_credentials(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    let west = env.client("west").await;
    create_ns(&west, "linkerd").await;
    env.link("west", "east", |s| {
        s.remote_discovery_selector = None;
        s.federated_service_selector = None;
    })
    .await;
    env.settle(&["west", "east"], Duration::from_millis(500))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        secret(&west, "linkerd", "cluster-credentials-east")
            .await
            .is_none()
    );
    assert!(state(&env, "west", "east").await.is_none());
    env.shutdown().await;
}

/// A state write that fails (here: refused by a trigger; at a fleet's cold start, a busy pool's
/// acquire timeout) is retried until it is recorded. The pair sleeps until its token's renewal
/// after a pass, so a lost write used to leave the API without the pair's state for hours.
/// Nothing here depends on API server behaviour beyond what the other tests pin (the Secret
/// written as Linkerd's `cluster_store.go` reads it); the failure is injected in PostgreSQL.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn a_state_write_that_failed_is_retried_until_recorded(pool: sqlx::PgPool) {
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_credentials() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON remote_credentials
             FOR EACH ROW EXECUTE FUNCTION refuse_credentials();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let env = Env::start(pool.clone(), &["east", "west"]).await;
    let west = env.client("west").await;
    create_ns(&west, "linkerd").await;
    env.link("west", "east", |_| {}).await;
    eventually("the Secret written", || async {
        ok_if(
            secret(&west, "linkerd", "cluster-credentials-east")
                .await
                .is_some(),
            || "absent".into(),
        )
    })
    .await;
    // Its state could not be written.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(state(&env, "west", "east").await.is_none());
    sqlx::raw_sql("DROP TRIGGER refuse ON remote_credentials")
        .execute(&pool)
        .await
        .unwrap();
    state_becomes(&env, "west", "east", RemoteCredentialState::Issued).await;
    env.shutdown().await;
}

/// linkplane never creates Linkerd's namespace: the state says it is missing, and the Secret
/// follows within seconds of the namespace being created (a watch, not the resync).
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn missing_namespace_is_reported_then_watched(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    let west = env.client("west").await;
    env.update_cluster("west", |c| c.spec.linkerd_namespace = "l5d".into())
        .await;
    env.link("west", "east", |_| {}).await;
    state_becomes(
        &env,
        "west",
        "east",
        RemoteCredentialState::NamespaceMissing,
    )
    .await;
    let row = state(&env, "west", "east").await.unwrap();
    assert!(row.message.contains("l5d"), "{}", row.message);
    assert_eq!(row.namespace, "l5d");
    let ns: Api<Namespace> = Api::all(west.clone());
    assert!(
        ns.get_opt("l5d").await.unwrap().is_none(),
        "linkplane created it"
    );
    // Nothing is created in the target while the source has no Linkerd.
    let east = env.client("east").await;
    let sa: Api<ServiceAccount> = Api::namespaced(east, remote_access::TARGET_NAMESPACE);
    assert!(
        sa.get_opt(&remote_access::access_name("west"))
            .await
            .unwrap()
            .is_none()
    );

    create_ns(&west, "l5d").await;
    let t0 = tokio::time::Instant::now();
    eventually("secret after the namespace appears", || async {
        ok_if(
            secret(&west, "l5d", "cluster-credentials-east")
                .await
                .is_some(),
            || "absent".into(),
        )
    })
    .await;
    // The default resync is 10 minutes: only the watch explains this.
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    state_becomes(&env, "west", "east", RemoteCredentialState::Issued).await;
    env.shutdown().await;
}

/// Rotation under a running watch: the Secret is replaced in place (never absent) before the
/// token expires; a watch opened with the previous token keeps running (the API server
/// authenticates a request when it starts) and the previous token stays valid until its own
/// expiry; a client built from the new Secret works. Upstream: TokenRequest's minimum lifetime
/// is 10 minutes, so the test shortens the renewal period instead.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn rotation_keeps_a_valid_secret_and_running_watches(pool: sqlx::PgPool) {
    let mut env = Env::start(pool, &["east", "west"]).await;
    env.stop_supervisor().await;
    env.start_supervisor_with(Options {
        concurrency: 8,
        remote_token_lifetime: Duration::from_secs(600),
        remote_token_refresh: Some(Duration::from_secs(2)),
        ..Options::default()
    })
    .await;
    let west = env.client("west").await;
    let east = env.client("east").await;
    create_ns(&west, "linkerd").await;
    env.link("west", "east", |_| {}).await;
    let name = "cluster-credentials-east";
    eventually("secret written", || async {
        ok_if(secret(&west, "linkerd", name).await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    let first = secret(&west, "linkerd", name).await.unwrap();
    let old_client = client_from(&first).await;
    let api: Api<Service> = Api::namespaced(old_client.clone(), "default");
    let mut events = Box::pin(watcher(api, watcher::Config::default()));
    // Wait for the initial list.
    loop {
        if let Some(Ok(watcher::Event::InitDone)) = events.next().await {
            break;
        }
    }

    // Watch the Secret meanwhile: it must never be deleted.
    let secret_api: Api<Secret> = Api::namespaced(west.clone(), "linkerd");
    let mut secret_events = Box::pin(watcher(
        secret_api,
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    ));
    let deleted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = deleted.clone();
    let observer = tokio::spawn(async move {
        while let Some(ev) = secret_events.next().await {
            if let Ok(watcher::Event::Delete(_)) = ev {
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });

    eventually("the Secret rotated", || async {
        let now = secret(&west, "linkerd", name).await.unwrap();
        ok_if(kubeconfig_of(&now) != kubeconfig_of(&first), || {
            "same token".into()
        })
    })
    .await;
    let second = secret(&west, "linkerd", name).await.unwrap();
    assert_eq!(
        second.metadata.uid, first.metadata.uid,
        "replaced in place, not recreated"
    );

    // The watch opened with the old token still delivers events.
    create_svc(
        &east,
        &service("default", "after-rotation", &[], &[("http", 80)]),
    )
    .await;
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = events.next().await {
            if let Ok(watcher::Event::Apply(s)) = ev
                && s.metadata.name.as_deref() == Some("after-rotation")
            {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(got, "the watch with the old token stopped delivering");
    // The old token is still valid (a fresh request re-authenticates), and so is the new one.
    Api::<Service>::all(old_client)
        .list(&ListParams::default())
        .await
        .unwrap();
    Api::<Service>::all(client_from(&second).await)
        .list(&ListParams::default())
        .await
        .unwrap();
    let row = state(&env, "west", "east").await.unwrap();
    assert!(row.expires_at.unwrap() > chrono::Utc::now() + chrono::Duration::seconds(500));
    assert!(
        !deleted.load(std::sync::atomic::Ordering::SeqCst),
        "the Secret was deleted during rotation"
    );
    observer.abort();
    env.shutdown().await;
}

/// Unlink (cleanupOnUnlink, the default) removes the Secret in the source and the
/// ServiceAccount, ClusterRole and binding in the target; the issued token stops working.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn unlink_removes_everything_on_both_sides(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    let west = env.client("west").await;
    let east = env.client("east").await;
    create_ns(&west, "linkerd").await;
    let link = env.link("west", "east", |_| {}).await;
    let name = "cluster-credentials-east";
    eventually("secret written", || async {
        ok_if(secret(&west, "linkerd", name).await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    let s = secret(&west, "linkerd", name).await.unwrap();
    let remote = client_from(&s).await;
    let access = remote_access::access_name("west");
    let sa: Api<ServiceAccount> = Api::namespaced(east.clone(), remote_access::TARGET_NAMESPACE);
    assert!(sa.get_opt(&access).await.unwrap().is_some());

    {
        let mut conn = env.store.acquire().await.unwrap();
        links::delete(&mut conn, &link.name).await.unwrap();
    }
    eventually("everything removed", || async {
        let secret_gone = secret(&west, "linkerd", name).await.is_none();
        let sa_gone = sa.get_opt(&access).await.unwrap().is_none();
        let role_gone = Api::<ClusterRole>::all(east.clone())
            .get_opt(&access)
            .await
            .unwrap()
            .is_none();
        let binding_gone = Api::<ClusterRoleBinding>::all(east.clone())
            .get_opt(&access)
            .await
            .unwrap()
            .is_none();
        let row_gone = state(&env, "west", "east").await.is_none();
        ok_if(
            secret_gone && sa_gone && role_gone && binding_gone && row_gone,
            || format!("secret {secret_gone} sa {sa_gone} role {role_gone} binding {binding_gone} row {row_gone}"),
        )
    })
    .await;
    // A deleted service account's tokens are invalid (401).
    let err = Api::<Service>::all(remote)
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert_eq!(code(err), 401);
    let _ = Api::<Namespace>::all(west)
        .delete("linkerd", &DeleteParams::default())
        .await;
    env.shutdown().await;
}

/// A restart re-uses the token in the Secret (not due for renewal) and finds the target-side
/// objects as they should be: no TokenRequest, no write on either side (Linkerd's cluster store
/// reads a Secret on add only, so a needless rotation would also be invisible to it).
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn restart_issues_no_token_and_writes_nothing(pool: sqlx::PgPool) {
    let mut env = Env::start(pool, &["east", "west"]).await;
    let west = env.client("west").await;
    create_ns(&west, "linkerd").await;
    env.link("west", "east", |_| {}).await;
    state_becomes(&env, "west", "east", RemoteCredentialState::Issued).await;
    let before = secret(&west, "linkerd", "cluster-credentials-east")
        .await
        .unwrap();
    env.stop_supervisor().await;
    let marks: Vec<(&str, u64)> = ["west", "east"]
        .into_iter()
        .map(|c| (c, env.sim.cluster(c).unwrap().request_mark()))
        .collect();
    env.start_supervisor().await;
    // The new supervisor's pass reads the Secret; give it time to (wrongly) write after that.
    eventually("the Secret read again", || async {
        let read = env
            .sim
            .cluster("west")
            .unwrap()
            .requests_since(marks[0].1)
            .into_iter()
            .any(|r| r.resource == "secrets" && r.verb == "get");
        ok_if(read, || "not yet".into())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ours = [
        "secrets",
        "serviceaccounts",
        "clusterroles",
        "clusterrolebindings",
        "namespaces",
    ];
    for (c, mark) in marks {
        let writes: Vec<String> = env
            .writes_since(c, mark)
            .into_iter()
            .filter(|r| ours.contains(&r.resource.as_str()))
            .map(|r| format!("{} {}/{:?}", r.verb, r.resource, r.subresource))
            .collect();
        assert!(writes.is_empty(), "{c}: {writes:?}");
    }
    let after = secret(&west, "linkerd", "cluster-credentials-east")
        .await
        .unwrap();
    assert_eq!(
        before.metadata.resource_version,
        after.metadata.resource_version
    );
    env.shutdown().await;
}
