//! One scenario per mirroring rule, through the running supervisor, against kubesim clusters
//! over HTTPS and a fresh Postgres database per test.

mod support;

use kube::Client;
use linkplane_core::{
    ExportPolicy, ExportPolicySpec, MirrorMode, NamespaceFilter,
    naming::HEADLESS_MIRROR_SVC_NAME_LABEL,
};
use linkplane_store::{Owner, links, mirrors::MirrorState, policies};
use support::*;

const GW_ID: &str =
    "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.cluster.local";

/// The scenarios' usual fleet: `east` exports `shop/web`, `west` (with namespace `shop`) links
/// to it. Returns the environment and the two clusters' clients.
async fn west_links_east_exporting_web(pool: sqlx::PgPool) -> (Env, Client, Client) {
    let env = Env::start(pool, &["east", "west"]).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    create_ns(&west, "shop").await;
    export(&east, "shop", "web", EXPORTED).await;
    env.link("west", "east", |_| {}).await;
    (env, east, west)
}

/// Waits until `web-east`'s Endpoints in `west` point at east's gateway.
async fn gateway_endpoints_mirrored(west: &Client) {
    eventually("mirror endpoints", || async {
        let eps = get_eps(west, "shop", "web-east")
            .await
            .ok_or("no endpoints")?;
        ok_if(ips(&eps).0 == ["127.0.0.1"], || format!("{:?}", ips(&eps)))
    })
    .await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn exported_service_is_mirrored_with_gateway_endpoints(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    create_ns(&west, "shop").await;
    let remote = export(&east, "shop", "web", EXPORTED).await;
    env.link("west", "east", |_| {}).await;

    gateway_endpoints_mirrored(&west).await;
    let svc = get_svc(&west, "shop", "web-east").await.unwrap();
    assert_eq!(
        labels(&svc),
        map(&[
            ("app", "web"),
            ("mirror.linkerd.io/mirrored-service", "true"),
            ("mirror.linkerd.io/cluster-name", "east"),
            ("linkplane.io/remote-service", "web"),
        ])
    );
    let ann = annotations(&svc);
    assert_eq!(
        ann["mirror.linkerd.io/remote-svc-fq-name"],
        "web.shop.svc.cluster.local"
    );
    assert_eq!(
        ann["mirror.linkerd.io/remote-resource-version"],
        remote.metadata.resource_version.unwrap()
    );
    let port = &svc.spec.unwrap().ports.unwrap()[0];
    assert_eq!((port.name.as_deref(), port.port), (Some("http"), 80));
    let eps = get_eps(&west, "shop", "web-east").await.unwrap();
    let sub = &eps.subsets.unwrap()[0];
    assert_eq!(sub.ports.as_ref().unwrap()[0].port, 4143);
    assert_eq!(
        eps.metadata.annotations.unwrap()["mirror.linkerd.io/remote-gateway-identity"],
        GW_ID
    );
    eventually("state row", || async {
        let row = env.row("west-east", "shop", "web").await.ok_or("no row")?;
        ok_if(row.status.state == MirrorState::Mirrored, || {
            format!("{row:?}")
        })
    })
    .await;
    env.shutdown().await;
}

/// docs/mirroring.md, "Minimal writes" and "Own writes go straight into the index": the
/// applier compares the labels and annotations it owns on a mirror's Endpoints as maps, and a
/// watch event that differs from what it wrote (an edit by hand) is reconciled back. Linkerd's
/// service mirror writes the same `mirror.linkerd.io/remote-gateway-identity` annotation and
/// mirror labels on a gateway mirror's Endpoints. Pins the index's compact form of those maps
/// (issue 19): a changed value, an added label and a removed annotation are each drift.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn hand_edited_mirror_endpoints_labels_and_annotations_are_repaired(pool: sqlx::PgPool) {
    let (env, _, west) = west_links_east_exporting_web(pool).await;
    gateway_endpoints_mirrored(&west).await;
    let written = get_eps(&west, "shop", "web-east").await.unwrap();
    let (want_labels, want_annotations) = (
        written.metadata.labels.clone().unwrap(),
        written.metadata.annotations.clone().unwrap(),
    );
    assert_eq!(
        want_annotations["mirror.linkerd.io/remote-gateway-identity"],
        GW_ID
    );
    let api = kube::Api::<k8s_openapi::api::core::v1::Endpoints>::namespaced(west.clone(), "shop");
    type Edit = fn(&mut k8s_openapi::api::core::v1::Endpoints);
    let edits: [(&str, Edit); 3] = [
        ("a changed annotation", |e| {
            e.metadata.annotations.as_mut().unwrap().insert(
                "mirror.linkerd.io/remote-gateway-identity".into(),
                "someone-else".into(),
            );
        }),
        ("an added label", |e| {
            e.metadata
                .labels
                .as_mut()
                .unwrap()
                .insert("edited".into(), "by-hand".into());
        }),
        ("a removed annotation", |e| {
            e.metadata
                .annotations
                .as_mut()
                .unwrap()
                .remove("mirror.linkerd.io/remote-gateway-identity");
        }),
    ];
    for (what, edit) in edits {
        let mut eps = get_eps(&west, "shop", "web-east").await.unwrap();
        edit(&mut eps);
        eps.metadata.managed_fields = None;
        let edited_rv = api
            .replace("web-east", &Default::default(), &eps)
            .await
            .unwrap()
            .metadata
            .resource_version;
        eventually(&format!("{what} repaired"), || async {
            let eps = get_eps(&west, "shop", "web-east").await.ok_or("gone")?;
            ok_if(
                eps.metadata.resource_version != edited_rv
                    && eps.metadata.labels.as_ref() == Some(&want_labels)
                    && eps.metadata.annotations.as_ref() == Some(&want_annotations),
                || format!("{:?} {:?}", eps.metadata.labels, eps.metadata.annotations),
            )
        })
        .await;
    }
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn mirror_follows_the_export_label_being_removed_and_added(pool: sqlx::PgPool) {
    let (env, east, west) = west_links_east_exporting_web(pool).await;
    eventually("mirrored", || async {
        ok_if(get_svc(&west, "shop", "web-east").await.is_some(), || {
            "absent".into()
        })
    })
    .await;

    patch_labels(&east, "shop", "web", &[("app", "web")]).await;
    eventually("unexported", || async {
        ok_if(
            get_svc(&west, "shop", "web-east").await.is_none()
                && get_eps(&west, "shop", "web-east").await.is_none()
                && env.row("west-east", "shop", "web").await.is_none(),
            || "still there".into(),
        )
    })
    .await;

    patch_labels(&east, "shop", "web", &[EXPORTED, ("app", "web")]).await;
    eventually("re-exported", || async {
        ok_if(get_eps(&west, "shop", "web-east").await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn remote_deletion_deletes_the_mirror(pool: sqlx::PgPool) {
    let (env, east, west) = west_links_east_exporting_web(pool).await;
    eventually("mirrored", || async {
        ok_if(get_eps(&west, "shop", "web-east").await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    delete_svc(&east, "shop", "web").await;
    eventually("deleted", || async {
        ok_if(
            get_svc(&west, "shop", "web-east").await.is_none()
                && get_eps(&west, "shop", "web-east").await.is_none(),
            || "still there".into(),
        )
    })
    .await;
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn port_change_is_mirrored_and_unchanged_mirrors_are_not_rewritten(pool: sqlx::PgPool) {
    let (env, east, west) = west_links_east_exporting_web(pool).await;
    eventually("mirrored", || async {
        ok_if(get_eps(&west, "shop", "web-east").await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    let svc_rv = get_svc(&west, "shop", "web-east")
        .await
        .unwrap()
        .metadata
        .resource_version;
    let eps_rv = get_eps(&west, "shop", "web-east")
        .await
        .unwrap()
        .metadata
        .resource_version;

    // Pod churn on the target (still non-empty) and a policy change (full pass): no writes.
    set_endpoints(&east, "shop", "web", &[("10.1.0.2", None)], &[]).await;
    {
        let mut conn = env.store.acquire().await.unwrap();
        let p = ExportPolicy {
            name: "all".into(),
            spec: ExportPolicySpec {
                target_cluster_selector: None,
                namespaces: NamespaceFilter::default(),
                service_selector: None,
                modes: MirrorMode::ALL.to_vec(),
                consumer_cluster_selector: None,
            },
        };
        policies::upsert(&mut conn, &p, &Owner::Api).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        get_svc(&west, "shop", "web-east")
            .await
            .unwrap()
            .metadata
            .resource_version,
        svc_rv
    );
    assert_eq!(
        get_eps(&west, "shop", "web-east")
            .await
            .unwrap()
            .metadata
            .resource_version,
        eps_rv
    );

    let api = kube::Api::<k8s_openapi::api::core::v1::Service>::namespaced(east.clone(), "shop");
    let mut remote = api.get("web").await.unwrap();
    remote.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 8081;
    api.replace("web", &Default::default(), &remote)
        .await
        .unwrap();
    eventually("port changed", || async {
        let svc = get_svc(&west, "shop", "web-east").await.ok_or("absent")?;
        let port = svc.spec.unwrap().ports.unwrap()[0].port;
        ok_if(port == 8081, || format!("port {port}"))
    })
    .await;
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn mode_switches_both_ways(pool: sqlx::PgPool) {
    let (env, east, west) = west_links_east_exporting_web(pool).await;
    eventually("gateway mode", || async {
        ok_if(get_eps(&west, "shop", "web-east").await.is_some(), || {
            "no endpoints".into()
        })
    })
    .await;

    patch_labels(&east, "shop", "web", &[FLAT, ("app", "web")]).await;
    eventually("flat mode", || async {
        let svc = get_svc(&west, "shop", "web-east").await.ok_or("absent")?;
        let l = labels(&svc);
        ok_if(
            l.get("multicluster.linkerd.io/remote-discovery")
                .map(String::as_str)
                == Some("east")
                && l.get("multicluster.linkerd.io/remote-service")
                    .map(String::as_str)
                    == Some("web")
                && get_eps(&west, "shop", "web-east").await.is_none(),
            || format!("{l:?}"),
        )
    })
    .await;
    eventually("flat row", || async {
        let row = env.row("west-east", "shop", "web").await.ok_or("no row")?;
        ok_if(row.status.mode == "remote-discovery", || format!("{row:?}"))
    })
    .await;

    patch_labels(&east, "shop", "web", &[EXPORTED, ("app", "web")]).await;
    eventually("gateway mode again", || async {
        let svc = get_svc(&west, "shop", "web-east").await.ok_or("absent")?;
        ok_if(
            !labels(&svc).contains_key("multicluster.linkerd.io/remote-discovery")
                && get_eps(&west, "shop", "web-east").await.is_some(),
            || format!("{:?}", labels(&svc)),
        )
    })
    .await;
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn headless_service_gets_endpoint_mirrors_per_hostname(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    create_ns(&west, "db").await;
    create_ns(&east, "db").await;
    let mut svc = service("db", "pg", &[EXPORTED], &[("pg", 5432)]);
    svc.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    create_svc(&east, &svc).await;
    set_endpoints(
        &east,
        "db",
        "pg",
        &[("10.2.0.1", Some("pg-0")), ("10.2.0.2", Some("pg-1"))],
        &[],
    )
    .await;
    env.link("west", "east", |s| s.enable_headless_services = true)
        .await;

    eventually("headless root endpoints", || async {
        let eps = get_eps(&west, "db", "pg-east")
            .await
            .ok_or("no root endpoints")?;
        let hosts: Vec<_> = eps
            .subsets
            .iter()
            .flatten()
            .flat_map(|s| s.addresses.iter().flatten())
            .map(|a| a.hostname.clone().unwrap_or_default())
            .collect();
        ok_if(hosts == ["pg-0", "pg-1"], || format!("{hosts:?}"))
    })
    .await;
    let root = get_svc(&west, "db", "pg-east").await.unwrap();
    assert_eq!(root.spec.unwrap().cluster_ip.as_deref(), Some("None"));
    let host0 = get_svc(&west, "db", "pg-0-east").await.unwrap();
    assert_eq!(labels(&host0)[HEADLESS_MIRROR_SVC_NAME_LABEL], "pg-east");
    assert_eq!(
        annotations(&host0)["mirror.linkerd.io/remote-svc-fq-name"],
        "pg-0.pg.db.svc.cluster.local"
    );
    let root_eps = get_eps(&west, "db", "pg-east").await.unwrap();
    let first = &root_eps.subsets.as_ref().unwrap()[0]
        .addresses
        .as_ref()
        .unwrap()[0];
    assert_eq!(Some(first.ip.clone()), host0.spec.unwrap().cluster_ip);
    assert_eq!(
        ips(&get_eps(&west, "db", "pg-0-east").await.unwrap()).0,
        ["127.0.0.1"]
    );

    // A host goes away: its endpoint mirror goes too.
    set_endpoints(&east, "db", "pg", &[("10.2.0.1", Some("pg-0"))], &[]).await;
    eventually("pg-1 endpoint mirror removed", || async {
        ok_if(get_svc(&west, "db", "pg-1-east").await.is_none(), || {
            "still there".into()
        })
    })
    .await;
    assert!(get_svc(&west, "db", "pg-0-east").await.is_some());
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn missing_namespace_is_reported_then_mirrored_when_it_appears(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    export(&east, "shop", "web", EXPORTED).await;
    env.link("west", "east", |_| {}).await;
    eventually("MissingNamespace", || async {
        let row = env.row("west-east", "shop", "web").await.ok_or("no row")?;
        ok_if(row.status.state == MirrorState::MissingNamespace, || {
            format!("{row:?}")
        })
    })
    .await;
    assert!(get_svc(&west, "shop", "web-east").await.is_none());
    create_ns(&west, "shop").await;
    eventually("mirrored once the namespace exists", || async {
        let row = env.row("west-east", "shop", "web").await.ok_or("no row")?;
        ok_if(
            row.status.state == MirrorState::Mirrored
                && get_svc(&west, "shop", "web-east").await.is_some(),
            || format!("{row:?}"),
        )
    })
    .await;
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn namespace_is_created_when_the_link_says_so(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    export(&east, "shop", "web", EXPORTED).await;
    env.link("west", "east", |s| s.create_namespaces = true)
        .await;
    eventually("mirrored", || async {
        ok_if(get_svc(&west, "shop", "web-east").await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    let ns = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(west.clone())
        .get("shop")
        .await
        .unwrap();
    assert_eq!(
        ns.metadata.labels.unwrap(),
        map(&[
            ("mirror.linkerd.io/mirrored-service", "true"),
            ("mirror.linkerd.io/cluster-name", "east"),
        ])
    );
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn conflicting_local_service_is_never_touched(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    create_ns(&west, "shop").await;
    let mine = create_svc(
        &west,
        &service("shop", "web-east", &[("owner", "me")], &[("x", 1)]),
    )
    .await;
    export(&east, "shop", "web", EXPORTED).await;
    env.link("west", "east", |_| {}).await;
    eventually("Conflict", || async {
        let row = env.row("west-east", "shop", "web").await.ok_or("no row")?;
        ok_if(row.status.state == MirrorState::Conflict, || {
            format!("{row:?}")
        })
    })
    .await;
    let now = get_svc(&west, "shop", "web-east").await.unwrap();
    assert_eq!(
        now.metadata.resource_version,
        mine.metadata.resource_version
    );
    assert!(get_eps(&west, "shop", "web-east").await.is_none());
    // Unexporting never deletes it either.
    patch_labels(&east, "shop", "web", &[]).await;
    eventually("row gone", || async {
        ok_if(env.row("west-east", "shop", "web").await.is_none(), || {
            "row".into()
        })
    })
    .await;
    assert!(get_svc(&west, "shop", "web-east").await.is_some());
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn excluded_labels_and_annotations_are_not_copied(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    create_ns(&west, "shop").await;
    create_ns(&east, "shop").await;
    let mut svc = service(
        "shop",
        "web",
        &[
            EXPORTED,
            ("evil.linkerd/a", "1"),
            ("evil", "2"),
            ("good", "3"),
            ("good.linkerd/c", "4"),
        ],
        &[("http", 80)],
    );
    svc.metadata.annotations = Some(map(&[
        ("evil.linkerd/x", "1"),
        ("good", "2"),
        ("config.linkerd.io/opaque-ports", "80"),
        ("service.kubernetes.io/topology-mode", "auto"),
    ]));
    create_svc(&east, &svc).await;
    env.link("west", "east", |s| {
        s.excluded_labels = vec!["evil.linkerd/*".into(), "evil".into()];
        s.excluded_annotations = vec!["evil.linkerd/*".into(), "config.linkerd.io/*".into()];
    })
    .await;
    eventually("mirrored", || async {
        ok_if(get_svc(&west, "shop", "web-east").await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    let m = get_svc(&west, "shop", "web-east").await.unwrap();
    let l = labels(&m);
    assert!(
        l.contains_key("good") && l.contains_key("good.linkerd/c"),
        "{l:?}"
    );
    assert!(
        !l.contains_key("evil") && !l.contains_key("evil.linkerd/a"),
        "{l:?}"
    );
    assert!(!l.contains_key("mirror.linkerd.io/exported"));
    let a = annotations(&m);
    assert_eq!(a.get("good").map(String::as_str), Some("2"));
    assert_eq!(
        a.get("config.linkerd.io/opaque-ports").map(String::as_str),
        Some("80")
    );
    assert!(
        !a.contains_key("evil.linkerd/x") && !a.contains_key("service.kubernetes.io/topology-mode")
    );
    // No endpoints on the target: the mirror Endpoints exists but is empty.
    let eps = get_eps(&west, "shop", "web-east").await.unwrap();
    assert!(eps.subsets.unwrap_or_default().is_empty());
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn dead_gateway_makes_endpoints_not_ready_and_recovery_restores_them(pool: sqlx::PgPool) {
    let (env, _, west) = west_links_east_exporting_web(pool).await;
    eventually("ready", || async {
        let eps = get_eps(&west, "shop", "web-east").await.ok_or("absent")?;
        ok_if(ips(&eps).0.len() == 1, || format!("{:?}", ips(&eps)))
    })
    .await;
    env.sim
        .cluster("east")
        .unwrap()
        .faults()
        .set_gateway(kubesim::GatewayMode::Failing);
    eventually("not ready", || async {
        let eps = get_eps(&west, "shop", "web-east").await.ok_or("absent")?;
        let (r, n) = ips(&eps);
        ok_if(r.is_empty() && n == ["127.0.0.1"], || {
            format!("{r:?} {n:?}")
        })
    })
    .await;
    let mut conn = env.store.acquire().await.unwrap();
    let health = linkplane_store::gateways::list(&mut conn).await.unwrap();
    assert!(!health[0].alive, "{health:?}");
    drop(conn);
    env.sim
        .cluster("east")
        .unwrap()
        .faults()
        .set_gateway(kubesim::GatewayMode::Healthy);
    eventually("ready again", || async {
        let eps = get_eps(&west, "shop", "web-east").await.ok_or("absent")?;
        let (r, n) = ips(&eps);
        ok_if(r == ["127.0.0.1"] && n.is_empty(), || {
            format!("{r:?} {n:?}")
        })
    })
    .await;
    let labels = vec![("target_cluster_name", "east".to_string())];
    assert_eq!(env.metrics.gateway_alive.get_or_create(&labels).get(), 1);
    assert!(env.metrics.endpoint_repairs.get_or_create(&labels).get() >= 2);
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn gateway_address_change_reaches_every_endpoints(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    create_ns(&west, "shop").await;
    export(&east, "shop", "web", EXPORTED).await;
    export(&east, "shop", "api", EXPORTED).await;
    env.link("west", "east", |_| {}).await;
    eventually("mirrored", || async {
        ok_if(get_eps(&west, "shop", "api-east").await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    env.update_cluster("east", |c| {
        let gw = c.spec.gateway.as_mut().unwrap();
        gw.addresses = vec!["127.0.0.1".into(), "10.9.9.9".into(), "10.9.9.10".into()];
    })
    .await;
    for name in ["web-east", "api-east"] {
        eventually("new addresses", || async {
            let eps = get_eps(&west, "shop", name).await.ok_or("absent")?;
            let (r, _) = ips(&eps);
            ok_if(r == ["10.9.9.10", "10.9.9.9", "127.0.0.1"], || {
                format!("{r:?}")
            })
        })
        .await;
    }
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn deleting_a_link_cleans_up_its_mirrors_unless_told_to_keep_them(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west", "north"]).await;
    let (east, north, west) = (
        env.client("east").await,
        env.client("north").await,
        env.client("west").await,
    );
    create_ns(&west, "shop").await;
    export(&east, "shop", "web", EXPORTED).await;
    export(&north, "shop", "web", EXPORTED).await;
    env.link("west", "east", |_| {}).await;
    env.link("west", "north", |s| s.cleanup_on_unlink = false)
        .await;
    eventually("both mirrored", || async {
        ok_if(
            get_eps(&west, "shop", "web-east").await.is_some()
                && get_eps(&west, "shop", "web-north").await.is_some(),
            || "absent".into(),
        )
    })
    .await;
    {
        let mut conn = env.store.acquire().await.unwrap();
        links::delete(&mut conn, "west-east").await.unwrap();
        links::delete(&mut conn, "west-north").await.unwrap();
    }
    eventually("east mirrors cleaned up", || async {
        ok_if(
            get_svc(&west, "shop", "web-east").await.is_none()
                && get_eps(&west, "shop", "web-east").await.is_none(),
            || "still there".into(),
        )
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        get_svc(&west, "shop", "web-north").await.is_some(),
        "kept with cleanupOnUnlink: false"
    );
    assert!(env.rows("west-east").await.is_empty());
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn a_link_removed_while_the_server_is_down_is_cleaned_up_on_start(pool: sqlx::PgPool) {
    let mut env = Env::start(pool, &["east", "west", "north"]).await;
    let (east, west, north) = (
        env.client("east").await,
        env.client("west").await,
        env.client("north").await,
    );
    create_ns(&west, "shop").await;
    create_ns(&north, "shop").await;
    export(&east, "shop", "web", EXPORTED).await;
    env.link("west", "east", |_| {}).await;
    env.link("north", "east", |_| {}).await;
    eventually("mirrored into both", || async {
        ok_if(
            get_eps(&west, "shop", "web-east").await.is_some()
                && get_eps(&north, "shop", "web-east").await.is_some(),
            || "absent".into(),
        )
    })
    .await;
    env.stop_supervisor().await;
    {
        // What a Git sync applied during a restart does: the link row goes while no supervisor
        // runs, so no in-memory "link went away" ever happens.
        let mut conn = env.store.acquire().await.unwrap();
        links::delete(&mut conn, "north-east").await.unwrap();
    }
    env.start_supervisor().await;
    eventually("north's mirrors of east cleaned up", || async {
        ok_if(
            get_svc(&north, "shop", "web-east").await.is_none()
                && get_eps(&north, "shop", "web-east").await.is_none(),
            || "still there".into(),
        )
    })
    .await;
    eventually("the request is completed", || async {
        let mut conn = env.store.acquire().await.unwrap();
        let pending = linkplane_store::link_cleanups::list(&mut conn)
            .await
            .unwrap();
        ok_if(pending.is_empty(), || format!("{pending:?}"))
    })
    .await;
    assert!(
        get_svc(&west, "shop", "web-east").await.is_some(),
        "other links untouched"
    );
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn a_link_removed_while_its_source_is_unreachable_is_cleaned_up_when_it_returns(
    pool: sqlx::PgPool,
) {
    let (env, _, west) = west_links_east_exporting_web(pool).await;
    eventually("mirrored", || async {
        ok_if(get_eps(&west, "shop", "web-east").await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    let faults = env.sim.cluster("west").unwrap().faults();
    faults.stop_api().await;
    {
        let mut conn = env.store.acquire().await.unwrap();
        links::delete(&mut conn, "west-east").await.unwrap();
    }
    // Give the clean-up time to fail at least once against the stopped API server.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    {
        let mut conn = env.store.acquire().await.unwrap();
        let pending = linkplane_store::link_cleanups::list(&mut conn)
            .await
            .unwrap();
        assert_eq!(pending.len(), 1, "kept until done: {pending:?}");
    }
    faults.start_api().await.unwrap();
    eventually("cleaned up once west answers", || async {
        ok_if(get_svc(&west, "shop", "web-east").await.is_none(), || {
            "still there".into()
        })
    })
    .await;
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn long_mirror_names_are_shortened_with_the_full_name_annotation(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    create_ns(&west, "shop").await;
    let long = "a-service-with-a-really-quite-long-name-that-goes-on-for-ever";
    export(&east, "shop", long, EXPORTED).await;
    env.link("west", "east", |_| {}).await;
    let expected = linkplane_core::naming::mirror_service_name(long, "east").name;
    assert!(expected.len() <= 63);
    eventually("mirrored", || async {
        ok_if(get_eps(&west, "shop", &expected).await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    let svc = get_svc(&west, "shop", &expected).await.unwrap();
    assert_eq!(
        annotations(&svc)["linkplane.io/full-name"],
        format!("{long}-east")
    );
    eventually("row with the short name", || async {
        let row = env.row("west-east", "shop", long).await.ok_or("no row")?;
        ok_if(row.status.local_name == expected, || format!("{row:?}"))
    })
    .await;
    // And it is removed by the same name when unexported.
    delete_svc(&east, "shop", long).await;
    eventually("deleted", || async {
        ok_if(get_svc(&west, "shop", &expected).await.is_none(), || {
            "still there".into()
        })
    })
    .await;
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn policy_denies_then_allows_without_restart(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    create_ns(&west, "shop").await;
    let mut policy = ExportPolicy {
        name: "prod-only".into(),
        spec: ExportPolicySpec {
            target_cluster_selector: None,
            namespaces: NamespaceFilter {
                allow: vec!["prod-*".into()],
                deny: vec![],
            },
            service_selector: None,
            modes: MirrorMode::ALL.to_vec(),
            consumer_cluster_selector: None,
        },
    };
    {
        let mut conn = env.store.acquire().await.unwrap();
        policies::upsert(&mut conn, &policy, &Owner::Api)
            .await
            .unwrap();
    }
    export(&east, "shop", "web", EXPORTED).await;
    env.link("west", "east", |_| {}).await;
    eventually("denied", || async {
        let row = env.row("west-east", "shop", "web").await.ok_or("no row")?;
        ok_if(row.status.state == MirrorState::PolicyDenied, || {
            format!("{row:?}")
        })
    })
    .await;
    assert!(get_svc(&west, "shop", "web-east").await.is_none());
    policy.spec.namespaces.allow.push("shop".into());
    {
        let mut conn = env.store.acquire().await.unwrap();
        policies::upsert(&mut conn, &policy, &Owner::Api)
            .await
            .unwrap();
    }
    eventually("allowed", || async {
        ok_if(get_eps(&west, "shop", "web-east").await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    // And denying again removes it.
    policy.spec.namespaces.deny.push("shop".into());
    policy.spec.namespaces.allow = vec!["*".into()];
    {
        let mut conn = env.store.acquire().await.unwrap();
        policies::upsert(&mut conn, &policy, &Owner::Api)
            .await
            .unwrap();
    }
    eventually("denied again", || async {
        ok_if(get_svc(&west, "shop", "web-east").await.is_none(), || {
            "still there".into()
        })
    })
    .await;
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn restart_collects_orphans_and_recreates_missing_mirrors(pool: sqlx::PgPool) {
    let mut env = Env::start(pool, &["east", "west"]).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    create_ns(&west, "shop").await;
    create_ns(&west, "other").await;
    export(&east, "shop", "web", EXPORTED).await;
    export(&east, "shop", "api", EXPORTED).await;
    // A same-named headless root in another namespace, with an endpoint mirror there.
    create_ns(&east, "other").await;
    let mut headless = service("other", "api", &[EXPORTED], &[("http", 80)]);
    headless.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    create_svc(&east, &headless).await;
    set_endpoints(&east, "other", "api", &[("10.2.0.1", Some("x-0"))], &[]).await;
    env.link("west", "east", |s| s.enable_headless_services = true)
        .await;
    eventually("mirrored", || async {
        ok_if(
            get_eps(&west, "shop", "web-east").await.is_some()
                && get_eps(&west, "shop", "api-east").await.is_some()
                && get_svc(&west, "other", "x-0-east").await.is_some(),
            || "absent".into(),
        )
    })
    .await;
    let x0 = get_svc(&west, "other", "x-0-east").await.unwrap();
    assert_eq!(labels(&x0)[HEADLESS_MIRROR_SVC_NAME_LABEL], "api-east");
    env.stop_supervisor().await;
    // While down: a remote service goes (orphan) and a mirror is deleted by hand (missing).
    delete_svc(&east, "shop", "api").await;
    delete_svc(&west, "shop", "web-east").await;

    env.start_supervisor().await;
    eventually("orphan collected, missing recreated", || async {
        ok_if(
            get_svc(&west, "shop", "api-east").await.is_none()
                && get_svc(&west, "shop", "web-east").await.is_some()
                && env.row("west-east", "shop", "api").await.is_none(),
            || "not yet".into(),
        )
    })
    .await;
    assert!(
        get_svc(&west, "other", "x-0-east").await.is_some(),
        "endpoint mirrors are scoped to their own namespace"
    );
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn one_target_cluster_down_does_not_stop_the_others(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west", "north"]).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    let north = env.client("north").await;
    create_ns(&west, "shop").await;
    export(&north, "shop", "db", EXPORTED).await;
    env.link("west", "north", |_| {}).await;
    eventually("north mirrored", || async {
        ok_if(get_svc(&west, "shop", "db-north").await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    env.sim.cluster("north").unwrap().faults().stop_api().await;
    env.sim.cluster("north").unwrap().faults().sever_watches();
    env.link("west", "east", |_| {}).await;
    export(&east, "shop", "web", EXPORTED).await;
    eventually("east mirrored while north is down", || async {
        ok_if(get_eps(&west, "shop", "web-east").await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    eventually("north reported failed", || async {
        let mut conn = env.store.acquire().await.map_err(|e| e.to_string())?;
        let all = linkplane_store::reconcilers::list(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let north = all
            .iter()
            .find(|s| s.cluster == "north")
            .ok_or("no north status")?;
        ok_if(
            north.state == linkplane_store::reconcilers::ReconcilerState::Failed,
            || format!("{north:?}"),
        )
    })
    .await;
    eventually("north's mirrors in error, kept in place", || async {
        let row = env.row("west-north", "shop", "db").await.ok_or("no row")?;
        ok_if(row.status.state == MirrorState::Error, || {
            format!("{row:?}")
        })
    })
    .await;
    assert!(get_svc(&west, "shop", "db-north").await.is_some());
    env.sim
        .cluster("north")
        .unwrap()
        .faults()
        .start_api()
        .await
        .unwrap();
    eventually("north recovered", || async {
        let row = env.row("west-north", "shop", "db").await.ok_or("no row")?;
        ok_if(row.status.state == MirrorState::Mirrored, || {
            format!("{row:?}")
        })
    })
    .await;
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn credential_change_restarts_the_cluster_reconciler(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    env.update_cluster("east", |c| {
        c.spec.credentials =
            linkplane_core::CredentialsRef::KubeconfigFile("/nonexistent/east.kubeconfig".into());
    })
    .await;
    create_ns(&west, "shop").await;
    export(&east, "shop", "web", EXPORTED).await;
    env.link("west", "east", |_| {}).await;
    eventually("east failed on credentials", || async {
        let mut conn = env.store.acquire().await.map_err(|e| e.to_string())?;
        let all = linkplane_store::reconcilers::list(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let s = all
            .iter()
            .find(|s| s.cluster == "east")
            .ok_or("no status")?;
        ok_if(
            s.state == linkplane_store::reconcilers::ReconcilerState::Failed
                && s.message.contains("/nonexistent/east.kubeconfig"),
            || format!("{s:?}"),
        )
    })
    .await;
    assert!(get_svc(&west, "shop", "web-east").await.is_none());
    env.update_cluster("east", |_| {}).await;
    eventually("mirrored with the new credentials", || async {
        ok_if(get_eps(&west, "shop", "web-east").await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    env.shutdown().await;
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn paused_link_keeps_mirrors_and_changes_nothing(pool: sqlx::PgPool) {
    let (env, east, west) = west_links_east_exporting_web(pool).await;
    eventually("mirrored", || async {
        ok_if(get_eps(&west, "shop", "web-east").await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    {
        let mut conn = env.store.acquire().await.unwrap();
        links::set_paused(&mut conn, "west-east", true)
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    delete_svc(&east, "shop", "web").await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(
        get_svc(&west, "shop", "web-east").await.is_some(),
        "paused: nothing changes"
    );
    {
        let mut conn = env.store.acquire().await.unwrap();
        links::set_paused(&mut conn, "west-east", false)
            .await
            .unwrap();
    }
    eventually("resumed", || async {
        ok_if(get_svc(&west, "shop", "web-east").await.is_none(), || {
            "still there".into()
        })
    })
    .await;
    env.shutdown().await;
}

/// The reconciler state of `cluster`, as the API reads it.
async fn reconciler_of(
    env: &Env,
    cluster: &str,
) -> Result<linkplane_store::reconcilers::ReconcilerStatus, String> {
    let mut conn = env.store.acquire().await.map_err(|e| e.to_string())?;
    linkplane_store::reconcilers::list(&mut conn)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|s| s.cluster == cluster)
        .ok_or_else(|| format!("no {cluster} status"))
}

// Upstream rule pinned: apimachinery's `errors.IsInternalError` / `IsTooManyRequests` /
// `IsServerTimeout` (k8s.io/apimachinery/pkg/api/errors) mark 500, 429 and 504 as failures of
// the server, not of the request, which client-go retries (`rest.Request` retries 429 and
// 5xx). Such failures, persistent while the watches still run, are what `Degraded` means:
// the cluster answers reads but takes no writes. A success ends it.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn cluster_whose_writes_keep_failing_is_degraded_until_one_succeeds(pool: sqlx::PgPool) {
    use linkplane_store::reconcilers::ReconcilerState;
    let mut env = Env::start_idle(pool, &["east", "west"]).await;
    env.start_supervisor_with(linkplane_mirror::Options {
        concurrency: 8,
        degraded_after: std::time::Duration::from_secs(1),
        ..linkplane_mirror::Options::default()
    })
    .await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    create_ns(&west, "shop").await;
    export(&east, "shop", "web", EXPORTED).await;
    env.link("west", "east", |_| {}).await;
    eventually("web mirrored, west running", || async {
        let st = reconciler_of(&env, "west").await?;
        ok_if(
            get_svc(&west, "shop", "web-east").await.is_some()
                && st.state == ReconcilerState::Running,
            || format!("{st:?}"),
        )
    })
    .await;

    let faults = env.sim.cluster("west").unwrap().faults();
    faults.fail_writes(1.0, kubesim::WriteFailure::InternalError);
    export(&east, "shop", "api", EXPORTED).await;
    eventually("west degraded", || async {
        let st = reconciler_of(&env, "west").await?;
        ok_if(
            st.state == ReconcilerState::Degraded
                && st.message.starts_with("writes failing for ")
                && st.message.contains("shop/api-east"),
            || format!("{st:?}"),
        )
    })
    .await;
    let degraded = env
        .metrics
        .writes_degraded
        .get_or_create(&vec![("cluster", "west".to_string())])
        .get();
    assert_eq!(
        degraded, 1,
        "linkplane_cluster_writes_degraded{{cluster=west}}"
    );
    // Only the cluster written into: east's watches and (absent) writes are fine.
    let east_state = reconciler_of(&env, "east").await.unwrap().state;
    assert_eq!(east_state, ReconcilerState::Running);
    // Reads still work, and nothing was deleted while writes failed.
    assert!(get_svc(&west, "shop", "web-east").await.is_some());

    faults.clear();
    eventually("west running again, api mirrored", || async {
        let st = reconciler_of(&env, "west").await?;
        ok_if(
            st.state == ReconcilerState::Running
                && get_svc(&west, "shop", "api-east").await.is_some(),
            || format!("{st:?}"),
        )
    })
    .await;
    let degraded = env
        .metrics
        .writes_degraded
        .get_or_create(&vec![("cluster", "west".to_string())])
        .get();
    assert_eq!(degraded, 0);
    env.shutdown().await;
}
