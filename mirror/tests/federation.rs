//! Federated services (`<svc>-federated`) through the running supervisor, against kubesim
//! clusters over HTTPS and a fresh Postgres database per test. Harness: `support`.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::{Api, Client, api::PostParams};
use linkplane_store::federation::{self, FederatedState, FederatedStatus, MemberState};
use support::*;

const MEMBER: (&str, &str) = ("mirror.linkerd.io/federated", "member");
const REMOTE: &str = "multicluster.linkerd.io/remote-discovery";
const LOCAL: &str = "multicluster.linkerd.io/local-discovery";

impl Env {
    async fn fed_row(&self, source: &str, ns: &str, svc: &str) -> Option<FederatedStatus> {
        let mut conn = self.store.acquire().await.unwrap();
        federation::list(&mut conn, Some(source), Some(ns), 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.status)
            .find(|s| s.service == svc)
    }
}

/// `ns/name` labelled as a federation member, created in `client`'s cluster (namespace too).
async fn member(client: &Client, ns: &str, name: &str, ports: &[(&str, i32)]) -> Service {
    create_ns(client, ns).await;
    create_svc(client, &service(ns, name, &[MEMBER, ("app", name)], ports)).await
}

fn ann(svc: &Service, key: &str) -> Option<String> {
    annotations(svc).get(key).cloned()
}

fn ports(svc: &Service) -> Vec<(String, i32)> {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.name.unwrap_or_default(), p.port))
        .collect()
}

/// Waits until `source` has `ns/<svc>-federated` with these discovery annotations.
async fn wait_discovery(
    client: &Client,
    ns: &str,
    svc: &str,
    remote: Option<&str>,
    local: bool,
) -> Service {
    let name = format!("{svc}-federated");
    eventually(&format!("{name} discovery"), || async {
        let s = get_svc(client, ns, &name).await.ok_or("absent")?;
        let got = (ann(&s, REMOTE), ann(&s, LOCAL));
        let want = (remote.map(str::to_string), local.then(|| svc.to_string()));
        ok_if(got == want, || format!("{got:?} != {want:?}"))
    })
    .await;
    get_svc(client, ns, &name).await.unwrap()
}

async fn wait_state(env: &Env, source: &str, svc: &str, state: FederatedState) -> FederatedStatus {
    eventually(&format!("{svc} state {state:?}"), || async {
        let row = env.fed_row(source, "shop", svc).await.ok_or("no row")?;
        ok_if(row.state == state, || format!("{row:?}"))
    })
    .await;
    env.fed_row(source, "shop", svc).await.unwrap()
}

/// west receives from east and north (west is the source cluster; its own `web` is local).
async fn three(pool: sqlx::PgPool) -> (Env, Client, Client, Client) {
    let env = Env::start(pool, &["west", "east", "north"]).await;
    let (west, east, north) = (
        env.client("west").await,
        env.client("east").await,
        env.client("north").await,
    );
    env.link("west", "east", |_| {}).await;
    env.link("west", "north", |_| {}).await;
    (env, west, east, north)
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn members_from_three_clusters_including_local_join_one_federated_service(
    pool: sqlx::PgPool,
) {
    let (env, west, east, north) = three(pool).await;
    member(&north, "shop", "web", &[("http", 80)]).await;
    member(&west, "shop", "web", &[("http", 80)]).await;
    member(&east, "shop", "web", &[("http", 80)]).await;

    let svc = wait_discovery(&west, "shop", "web", Some("web@east,web@north"), true).await;
    assert_eq!(
        labels(&svc),
        map(&[
            ("app", "web"),
            ("mirror.linkerd.io/mirrored-service", "true")
        ]),
        "oldest member's labels minus mirror.linkerd.io/*, plus mirrored-service; no cluster-name"
    );
    assert_eq!(ports(&svc), [("http".to_string(), 80)]);
    assert!(svc.spec.as_ref().unwrap().selector.is_none(), "no selector");
    assert!(
        get_eps(&west, "shop", "web-federated").await.is_none(),
        "never an Endpoints"
    );
    // Only source clusters get one: east and north receive nothing.
    assert!(get_svc(&east, "shop", "web-federated").await.is_none());
    assert!(get_svc(&north, "shop", "web-federated").await.is_none());

    eventually("state row of three members", || async {
        let row = env.fed_row("west", "shop", "web").await.ok_or("no row")?;
        ok_if(row.remote_discovery == "web@east,web@north", || {
            format!("{row:?}")
        })
    })
    .await;
    let row = env.fed_row("west", "shop", "web").await.unwrap();
    assert_eq!(row.state, FederatedState::Federated);
    assert!(row.local_discovery);
    let members: Vec<(&str, bool, MemberState)> = row
        .members
        .iter()
        .map(|m| (m.cluster.as_str(), m.is_local, m.state))
        .collect();
    assert_eq!(members.len(), 3, "{members:?}");
    assert!(members.contains(&("west", true, MemberState::Member)));
    assert!(members.contains(&("east", false, MemberState::Member)));
    assert!(members.contains(&("north", false, MemberState::Member)));
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn members_leave_by_label_removal_and_deletion_and_the_last_one_deletes_it(
    pool: sqlx::PgPool,
) {
    let (env, west, east, north) = three(pool).await;
    member(&west, "shop", "web", &[("http", 80)]).await;
    member(&east, "shop", "web", &[("http", 80)]).await;
    member(&north, "shop", "web", &[("http", 80)]).await;
    wait_discovery(&west, "shop", "web", Some("web@east,web@north"), true).await;

    // Label removed in east: leaves.
    patch_labels(&east, "shop", "web", &[("app", "web")]).await;
    wait_discovery(&west, "shop", "web", Some("web@north"), true).await;
    // Deleted in north: leaves.
    delete_svc(&north, "shop", "web").await;
    wait_discovery(&west, "shop", "web", None, true).await;
    eventually("state lists the local member only", || async {
        let row = env.fed_row("west", "shop", "web").await.ok_or("no row")?;
        ok_if(
            row.members.len() == 1 && row.remote_discovery.is_empty(),
            || format!("{row:?}"),
        )
    })
    .await;
    // East joins again.
    patch_labels(&east, "shop", "web", &[MEMBER, ("app", "web")]).await;
    wait_discovery(&west, "shop", "web", Some("web@east"), true).await;
    // The local member and then the last one leave: the Service and its state go.
    delete_svc(&west, "shop", "web").await;
    wait_discovery(&west, "shop", "web", Some("web@east"), false).await;
    patch_labels(&east, "shop", "web", &[("app", "web")]).await;
    eventually("federated service deleted, state forgotten", || async {
        ok_if(
            get_svc(&west, "shop", "web-federated").await.is_none()
                && env.fed_row("west", "shop", "web").await.is_none(),
            || "still there".into(),
        )
    })
    .await;
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn ports_follow_the_members(pool: sqlx::PgPool) {
    let (env, west, east, _north) = three(pool).await;
    member(&west, "shop", "web", &[("http", 80)]).await;
    member(&east, "shop", "web", &[("http", 80)]).await;
    wait_discovery(&west, "shop", "web", Some("web@east"), true).await;

    let api = Api::<Service>::namespaced(east.clone(), "shop");
    let mut s = api.get("web").await.unwrap();
    let spec = s.spec.as_mut().unwrap();
    let mut admin = spec.ports.as_ref().unwrap()[0].clone();
    admin.name = Some("admin".into());
    admin.port = 9090;
    admin.target_port = None;
    spec.ports.as_mut().unwrap().push(admin);
    api.replace("web", &PostParams::default(), &s)
        .await
        .unwrap();

    eventually("port added", || async {
        let s = get_svc(&west, "shop", "web-federated")
            .await
            .ok_or("absent")?;
        let p = ports(&s);
        ok_if(
            p == [("http".to_string(), 80), ("admin".to_string(), 9090)],
            || format!("{p:?}"),
        )
    })
    .await;
    wait_state(&env, "west", "web", FederatedState::Federated).await;
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn conflicting_ports_keep_the_oldest_definition_until_it_leaves(pool: sqlx::PgPool) {
    let (env, west, east, _north) = three(pool).await;
    member(&west, "shop", "web", &[("http", 80)]).await;
    // creationTimestamp has a one-second resolution.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    member(&east, "shop", "web", &[("grpc", 80)]).await;

    let row = wait_state(&env, "west", "web", FederatedState::Conflict).await;
    assert!(
        row.message.contains("port 80") && row.message.contains("web@west (oldest)"),
        "{}",
        row.message
    );
    let svc = wait_discovery(&west, "shop", "web", Some("web@east"), true).await;
    assert_eq!(ports(&svc), [("http".to_string(), 80)], "oldest wins");

    // The oldest member leaves: the next oldest becomes the source of truth.
    delete_svc(&west, "shop", "web").await;
    eventually("east's ports", || async {
        let s = get_svc(&west, "shop", "web-federated")
            .await
            .ok_or("absent")?;
        ok_if(ports(&s) == [("grpc".to_string(), 80)], || {
            format!("{:?}", ports(&s))
        })
    })
    .await;
    wait_state(&env, "west", "web", FederatedState::Federated).await;
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn headless_member_is_rejected_visibly(pool: sqlx::PgPool) {
    let (env, west, east, _north) = three(pool).await;
    member(&west, "shop", "web", &[("http", 80)]).await;
    let mut headless = service("shop", "web", &[MEMBER, ("app", "web")], &[("http", 80)]);
    headless.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    create_ns(&east, "shop").await;
    create_svc(&east, &headless).await;

    eventually("east listed", || async {
        let row = env.fed_row("west", "shop", "web").await.ok_or("no row")?;
        ok_if(row.members.iter().any(|m| m.cluster == "east"), || {
            format!("{row:?}")
        })
    })
    .await;
    let row = env.fed_row("west", "shop", "web").await.unwrap();
    assert_eq!(row.state, FederatedState::Federated);
    let east_member = row.members.iter().find(|m| m.cluster == "east");
    let east_member = east_member.unwrap_or_else(|| panic!("east listed: {row:?}"));
    assert_eq!(east_member.state, MemberState::Rejected);
    assert_eq!(
        east_member.message,
        "Headless service cannot join federated service"
    );
    let svc = wait_discovery(&west, "shop", "web", None, true).await;
    assert!(ann(&svc, REMOTE).is_none());
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn user_owned_federated_service_is_never_modified(pool: sqlx::PgPool) {
    let (env, west, east, _north) = three(pool).await;
    create_ns(&west, "shop").await;
    let mine = create_svc(
        &west,
        &service("shop", "web-federated", &[("owner", "me")], &[("x", 1)]),
    )
    .await;
    member(&east, "shop", "web", &[("http", 80)]).await;

    let row = wait_state(&env, "west", "web", FederatedState::Conflict).await;
    assert!(
        row.message.contains("not created by linkplane"),
        "{}",
        row.message
    );
    let now = get_svc(&west, "shop", "web-federated").await.unwrap();
    assert_eq!(
        now.metadata.resource_version, mine.metadata.resource_version,
        "untouched"
    );
    assert_eq!(labels(&now), map(&[("owner", "me")]));
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn missing_namespace_is_reported_then_federated_once_created(pool: sqlx::PgPool) {
    let (env, west, east, _north) = three(pool).await;
    member(&east, "shop", "web", &[("http", 80)]).await;

    let row = wait_state(&env, "west", "web", FederatedState::MissingNamespace).await;
    assert_eq!(row.members.len(), 1);
    assert!(get_svc(&west, "shop", "web-federated").await.is_none());

    create_ns(&west, "shop").await;
    wait_discovery(&west, "shop", "web", Some("web@east"), false).await;
    wait_state(&env, "west", "web", FederatedState::Federated).await;
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn restart_keeps_the_annotation_and_does_not_rewrite(pool: sqlx::PgPool) {
    let (mut env, west, east, north) = three(pool).await;
    create_ns(&west, "shop").await;
    // Join order north, east: the annotation is by cluster name, not join order.
    member(&north, "shop", "web", &[("http", 80)]).await;
    wait_discovery(&west, "shop", "web", Some("web@north"), false).await;
    member(&east, "shop", "web", &[("http", 80)]).await;
    let before = wait_discovery(&west, "shop", "web", Some("web@east,web@north"), false).await;

    env.stop_supervisor().await;
    env.start_supervisor().await;
    // Proof that the new supervisor made its full pass: a new federated service converges.
    member(&east, "shop", "api", &[("http", 80)]).await;
    wait_discovery(&west, "shop", "api", Some("api@east"), false).await;
    eventually("queues drained", || async {
        let n = env.handle.as_ref().unwrap().federation_pending();
        ok_if(n == 0, || format!("{n} pending"))
    })
    .await;

    let after = get_svc(&west, "shop", "web-federated").await.unwrap();
    assert_eq!(ann(&after, REMOTE).as_deref(), Some("web@east,web@north"));
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "not rewritten"
    );
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn unreachable_member_stays_listed(pool: sqlx::PgPool) {
    let (env, west, east, north) = three(pool).await;
    member(&west, "shop", "web", &[("http", 80)]).await;
    member(&east, "shop", "web", &[("http", 80)]).await;
    member(&north, "shop", "web", &[("http", 80)]).await;
    let before = wait_discovery(&west, "shop", "web", Some("web@east,web@north"), true).await;

    let faults = env.sim.cluster("north").unwrap().faults();
    faults.stop_api().await;
    faults.sever_watches();
    eventually("north unreachable", || async {
        let row = env.fed_row("west", "shop", "web").await.ok_or("no row")?;
        let north = row.members.iter().find(|m| m.cluster == "north");
        ok_if(
            north.is_some_and(|m| m.state == MemberState::Unreachable),
            || format!("{row:?}"),
        )
    })
    .await;
    let row = env.fed_row("west", "shop", "web").await.unwrap();
    assert_eq!(row.state, FederatedState::Federated);
    let during = get_svc(&west, "shop", "web-federated").await.unwrap();
    assert_eq!(ann(&during, REMOTE).as_deref(), Some("web@east,web@north"));
    assert_eq!(
        during.metadata.resource_version, before.metadata.resource_version,
        "no flap while north is down"
    );
    // Another member still changes things while north is down.
    patch_labels(&east, "shop", "web", &[("app", "web")]).await;
    wait_discovery(&west, "shop", "web", Some("web@north"), true).await;

    faults.start_api().await.unwrap();
    eventually("north back", || async {
        let row = env.fed_row("west", "shop", "web").await.ok_or("no row")?;
        ok_if(
            row.members
                .iter()
                .any(|m| m.cluster == "north" && m.state == MemberState::Member),
            || format!("{row:?}"),
        )
    })
    .await;
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn owned_federated_service_without_members_is_collected_at_start(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["west", "east"]).await;
    let west = env.client("west").await;
    create_ns(&west, "shop").await;
    let owned = [("mirror.linkerd.io/mirrored-service", "true")];
    let mut orphan = service("shop", "old-federated", &owned, &[("http", 80)]);
    orphan.metadata.annotations = Some(map(&[(REMOTE, "old@gone")]));
    create_svc(&west, &orphan).await;
    // Same labels but no discovery annotation: not provably ours, never collected.
    let bare = create_svc(
        &west,
        &service("shop", "bare-federated", &owned, &[("http", 80)]),
    )
    .await;
    // A live federated service proves the full pass ran.
    member(&west, "shop", "web", &[("http", 80)]).await;
    env.link("west", "east", |_| {}).await;

    wait_discovery(&west, "shop", "web", None, true).await;
    eventually("orphan collected", || async {
        ok_if(
            get_svc(&west, "shop", "old-federated").await.is_none(),
            || "still there".into(),
        )
    })
    .await;
    let still = get_svc(&west, "shop", "bare-federated").await.unwrap();
    assert_eq!(
        still.metadata.resource_version,
        bare.metadata.resource_version
    );
    env.shutdown().await;
}
