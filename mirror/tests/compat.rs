//! Linkerd in the real world (issue 14): behaviours a real API server or a real Linkerd shows,
//! through the running supervisor against kubesim (which re-packs Endpoints as the API server
//! does) and a fresh Postgres database per test. Harness: `support`.

#![allow(clippy::unwrap_used)]

mod support;

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use linkplane_core::naming::{HEADLESS_MIRROR_SVC_NAME_LABEL, REMOTE_RESOURCE_VERSION_ANNOTATION};
use linkplane_mirror::{Metrics, Options};
use linkplane_store::mirrors::MirrorState;
use support::*;

const MEMBER: (&str, &str) = ("mirror.linkerd.io/federated", "member");

/// Writes `ns/name`'s Endpoints: each address `(ip, hostname)` ready, offering every port.
async fn put_endpoints(
    client: &Client,
    ns: &str,
    name: &str,
    addresses: &[(&str, Option<&str>)],
    ports: &[(&str, i32)],
) {
    let subsets = vec![EndpointSubset {
        addresses: Some(
            addresses
                .iter()
                .map(|(ip, host)| EndpointAddress {
                    ip: ip.to_string(),
                    hostname: host.map(str::to_string),
                    ..EndpointAddress::default()
                })
                .collect(),
        ),
        not_ready_addresses: None,
        ports: Some(
            ports
                .iter()
                .map(|(n, p)| EndpointPort {
                    name: Some(n.to_string()),
                    port: *p,
                    ..EndpointPort::default()
                })
                .collect(),
        ),
    }];
    let api: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    let mut eps = Endpoints {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..ObjectMeta::default()
        },
        subsets: Some(subsets),
    };
    match api.get_opt(name).await.unwrap() {
        Some(old) => {
            eps.metadata.resource_version = old.metadata.resource_version;
            api.replace(name, &PostParams::default(), &eps)
                .await
                .unwrap();
        }
        None => {
            api.create(&PostParams::default(), &eps).await.unwrap();
        }
    }
}

/// A headless `ns/name` with `pods` StatefulSet-style pods (`name-0` …) on two ports.
async fn headless(client: &Client, ns: &str, name: &str, pods: usize) {
    let mut svc = service(
        ns,
        name,
        &[EXPORTED, ("app", name)],
        &[("tcp", 6379), ("metrics", 9121)],
    );
    svc.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    create_svc(client, &svc).await;
    let hosts: Vec<(String, String)> = (0..pods)
        .map(|i| (format!("10.3.{i}.{}", 250 - i), format!("{name}-{i}")))
        .collect();
    let addrs: Vec<(&str, Option<&str>)> = hosts
        .iter()
        .map(|(ip, h)| (ip.as_str(), Some(h.as_str())))
        .collect();
    put_endpoints(
        client,
        ns,
        name,
        &addrs,
        &[("tcp", 6379), ("metrics", 9121)],
    )
    .await;
}

/// Every shape of mirror, in `shop` of east, linked into west; west has its own federated
/// member too. Returns once everything is mirrored and the fleet is quiet.
async fn fleet(env: &Env) {
    let (east, west) = (env.client("east").await, env.client("west").await);
    create_ns(&east, "shop").await;
    create_ns(&west, "shop").await;
    // Multi-port gateway mirror: its Endpoints' ports are re-ordered by the API server.
    create_svc(
        &east,
        &service(
            "shop",
            "api",
            &[EXPORTED, ("app", "api")],
            &[
                ("metrics", 9100),
                ("admin", 9990),
                ("grpc", 9090),
                ("http", 80),
            ],
        ),
    )
    .await;
    put_endpoints(
        &east,
        "shop",
        "api",
        &[("10.1.0.9", None), ("10.1.0.10", None)],
        &[
            ("http", 8080),
            ("grpc", 9090),
            ("admin", 9990),
            ("metrics", 9100),
        ],
    )
    .await;
    // Headless with three pods: the root's addresses are ClusterIPs of endpoint mirrors.
    headless(&east, "shop", "cache", 3).await;
    // Flat (remote discovery).
    export(&east, "shop", "search", FLAT).await;
    // Federated, with a member on both sides.
    for c in [&east, &west] {
        create_svc(
            c,
            &service("shop", "cart", &[MEMBER, ("app", "cart")], &[("http", 80)]),
        )
        .await;
    }
    env.link("west", "east", |s| s.enable_headless_services = true)
        .await;
    eventually("every mirror", || async {
        let rows = env.rows("west-east").await;
        let mirrored = rows
            .iter()
            .filter(|r| r.status.state == MirrorState::Mirrored)
            .count();
        ok_if(
            mirrored == 3
                && get_svc(&west, "shop", "cart-federated").await.is_some()
                && get_svc(&west, "shop", "cache-2-east").await.is_some(),
            || format!("{rows:?}"),
        )
    })
    .await;
    env.settle(&["east", "west"], Duration::from_millis(1500))
        .await;
}

/// Issue 14, point 3: the API server re-packs and re-orders Endpoints, so comparing in order
/// rewrote every multi-port gateway mirror and every headless root on each restart, resync and
/// event. An unchanged fleet must cost zero writes after a restart and across resyncs, counted
/// by the write counter and by the API server's own request log.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn a_restart_and_resyncs_of_an_unchanged_fleet_write_nothing(pool: sqlx::PgPool) {
    let mut env = Env::start(pool, &["east", "west"]).await;
    fleet(&env).await;
    let west = env.client("west").await;
    // The mirror Endpoints really were re-ordered by the server (the case being pinned).
    let api = get_eps(&west, "shop", "api-east").await.unwrap();
    let ports: Vec<_> = api.subsets.unwrap()[0]
        .ports
        .clone()
        .unwrap()
        .into_iter()
        .map(|p| p.name.unwrap())
        .collect();
    assert_ne!(
        ports,
        ["metrics", "admin", "grpc", "http"],
        "not re-ordered"
    );

    env.stop_supervisor().await;
    env.metrics = Metrics::default();
    let (west_mark, east_mark) = (
        env.sim.cluster("west").unwrap().request_mark(),
        env.sim.cluster("east").unwrap().request_mark(),
    );
    env.start_supervisor_with(Options {
        concurrency: 8,
        resync_interval: Duration::from_millis(700),
        ..Options::default()
    })
    .await;
    env.settle(&["east", "west"], Duration::from_millis(1500))
        .await;
    // Resyncs: the timer (every 0.7 s), and relists after every watch is cut and its history
    // forgotten (410 → full pass over every link touching the cluster).
    for c in ["east", "west"] {
        let faults = env.sim.cluster(c).unwrap().faults();
        faults.expire_watch_history();
        faults.sever_watches();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    env.settle(&["east", "west"], Duration::from_millis(1500))
        .await;

    let writes = env.writes_since("west", west_mark);
    assert!(writes.is_empty(), "writes into west: {writes:#?}");
    assert!(env.writes_since("east", east_mark).is_empty());
    assert_eq!(env.metrics.total_writes("west"), 0);
    assert_eq!(env.metrics.total_writes("east"), 0);
    // It did look: the request log shows the lists and watches of a full restart.
    let reads = env.sim.cluster("west").unwrap().requests_since(west_mark);
    assert!(
        reads
            .iter()
            .any(|r| r.verb == "list" && r.resource == "endpoints")
    );
    env.shutdown().await;
}

/// Linkerd-compat §5 and issue 14, point 3: when one pod of a headless Service moves, only
/// that pod's endpoint mirror takes the remote Endpoints' new resourceVersion; the other
/// endpoint mirrors keep theirs and are not written.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn one_pod_moving_rewrites_only_its_own_endpoint_mirror(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    fleet(&env).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    let versions = || async {
        let mut out = BTreeMap::new();
        for i in 0..3 {
            let s = get_svc(&west, "shop", &format!("cache-{i}-east"))
                .await
                .unwrap();
            out.insert(
                i,
                (
                    s.metadata.resource_version.clone().unwrap(),
                    annotations(&s)[REMOTE_RESOURCE_VERSION_ANNOTATION].clone(),
                    labels(&s)[HEADLESS_MIRROR_SVC_NAME_LABEL].clone(),
                ),
            );
        }
        out
    };
    let before = versions().await;
    let mark = env.sim.cluster("west").unwrap().request_mark();
    // cache-1 is rescheduled with a new IP.
    put_endpoints(
        &east,
        "shop",
        "cache",
        &[
            ("10.3.0.250", Some("cache-0")),
            ("10.3.9.9", Some("cache-1")),
            ("10.3.2.248", Some("cache-2")),
        ],
        &[("tcp", 6379), ("metrics", 9121)],
    )
    .await;
    let remote_rv = Api::<Endpoints>::namespaced(east.clone(), "shop")
        .get("cache")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    eventually("cache-1 follows", || async {
        let now = versions().await;
        ok_if(now[&1].1 == remote_rv, || format!("{now:?}"))
    })
    .await;
    env.settle(&["east", "west"], Duration::from_millis(1000))
        .await;
    let after = versions().await;
    assert_eq!(after[&0], before[&0], "cache-0 untouched");
    assert_eq!(after[&2], before[&2], "cache-2 untouched");
    assert_ne!(after[&1].0, before[&1].0);
    let writes = env.writes_since("west", mark);
    let names: Vec<_> = writes
        .iter()
        .map(|w| {
            format!(
                "{} {}/{}",
                w.verb,
                w.resource,
                w.name.clone().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(names, ["update services/cache-1-east"], "{writes:#?}");
    env.shutdown().await;
}

/// A Service and its Endpoints in `ns` as Linkerd's service mirror writes them for `target`:
/// its two labels (no linkplane label), `remote-resource-version`, the gateway address.
async fn linkerd_mirror(
    client: &Client,
    ns: &str,
    name: &str,
    target: &str,
    extra: &[(&str, &str)],
) {
    let mut l = vec![
        ("mirror.linkerd.io/mirrored-service", "true"),
        ("mirror.linkerd.io/cluster-name", target),
    ];
    l.extend_from_slice(extra);
    let mut svc = service(ns, name, &l, &[("http", 80)]);
    svc.metadata.annotations = Some(map(&[
        ("mirror.linkerd.io/remote-resource-version", "1"),
        (
            "mirror.linkerd.io/remote-svc-fq-name",
            "x.shop.svc.cluster.local",
        ),
    ]));
    create_svc(client, &svc).await;
    let eps = Endpoints {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: Some(map(&l)),
            ..ObjectMeta::default()
        },
        subsets: Some(vec![EndpointSubset {
            addresses: Some(vec![EndpointAddress {
                ip: "192.0.2.1".into(),
                ..EndpointAddress::default()
            }]),
            not_ready_addresses: None,
            ports: Some(vec![EndpointPort {
                name: Some("http".into()),
                port: 4143,
                ..EndpointPort::default()
            }]),
        }]),
    };
    Api::<Endpoints>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &eps)
        .await
        .unwrap();
}

/// What `linkerd multicluster link` leaves in west: a live mirror (`web`), orphans whose
/// remote Service is gone (`gone`, a headless endpoint mirror of `pg`), and objects that are
/// not mirrors of east (Linkerd's probe Service, a mirror of north).
async fn linkerd_leftovers(west: &Client) {
    create_ns(west, "shop").await;
    linkerd_mirror(west, "shop", "web-east", "east", &[]).await;
    linkerd_mirror(west, "shop", "gone-east", "east", &[]).await;
    linkerd_mirror(
        west,
        "shop",
        "pg-0-east",
        "east",
        &[("mirror.linkerd.io/headless-mirror-svc-name", "pg-east")],
    )
    .await;
    linkerd_mirror(west, "shop", "web-north", "north", &[]).await;
    create_svc(
        west,
        &service(
            "shop",
            "probe-gateway-east",
            &[
                ("mirror.linkerd.io/mirrored-gateway", "true"),
                ("mirror.linkerd.io/cluster-name", "east"),
            ],
            &[("mc-probe", 4191)],
        ),
    )
    .await;
}

/// Issue 14, point 2, and linkerd-compat §2.9: mirrors carrying Linkerd's
/// `mirrored-service`/`cluster-name` labels for the link's target are linkplane's: the live one
/// is adopted (updated), those whose remote Service is gone are garbage-collected at start-up
/// and whenever one appears later (Linkerd's reverse mapping: strip `-<target>`, or the
/// `headless-mirror-svc-name` of an endpoint mirror). Objects that are not mirrors of that
/// target are never touched.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn linkerd_written_mirrors_are_adopted_and_collected(pool: sqlx::PgPool) {
    let mut env = Env::start(pool, &["east", "west"]).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    export(&east, "shop", "web", EXPORTED).await;
    linkerd_leftovers(&west).await;
    let untouched = |name: &'static str| {
        let west = west.clone();
        async move {
            get_svc(&west, "shop", name)
                .await
                .and_then(|s| s.metadata.resource_version)
        }
    };
    let probe_rv = untouched("probe-gateway-east").await;
    let north_rv = untouched("web-north").await;
    env.link("west", "east", |_| {}).await;
    eventually("adopted and collected", || async {
        let web = get_svc(&west, "shop", "web-east").await.ok_or("web gone")?;
        ok_if(
            labels(&web)
                .get("linkplane.io/remote-service")
                .map(String::as_str)
                == Some("web")
                && get_svc(&west, "shop", "gone-east").await.is_none()
                && get_eps(&west, "shop", "gone-east").await.is_none()
                && get_svc(&west, "shop", "pg-0-east").await.is_none()
                && get_eps(&west, "shop", "pg-0-east").await.is_none(),
            || format!("{:?}", labels(&web)),
        )
    })
    .await;
    let eps = get_eps(&west, "shop", "web-east").await.unwrap();
    assert_eq!(ips(&eps).0, ["127.0.0.1"], "adopted Endpoints repaired");
    assert_eq!(untouched("probe-gateway-east").await, probe_rv);
    assert_eq!(untouched("web-north").await, north_rv);

    // An orphan appearing while running (a Linkerd controller still writing), and one left
    // while linkplane was down, go too.
    linkerd_mirror(&west, "shop", "late-east", "east", &[]).await;
    eventually("late orphan collected", || async {
        ok_if(get_svc(&west, "shop", "late-east").await.is_none(), || {
            "still there".into()
        })
    })
    .await;
    env.stop_supervisor().await;
    linkerd_mirror(&west, "shop", "down-east", "east", &[]).await;
    env.start_supervisor().await;
    eventually("orphan collected at start-up", || async {
        ok_if(
            get_svc(&west, "shop", "down-east").await.is_none()
                && get_eps(&west, "shop", "down-east").await.is_none(),
            || "still there".into(),
        )
    })
    .await;
    assert!(env.metrics.writes("west", "Service", "unexported") >= 3);
    env.shutdown().await;
}

/// Issue 14, point 2: `adoptLinkerdMirrors: false` keeps Linkerd-written mirrors untouched (a
/// team migrating while Linkerd still runs): not updated, not collected, not deleted with the
/// link; the blocked export is a visible conflict. linkplane's own mirrors still go.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn without_adoption_linkerd_mirrors_are_left_alone(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    export(&east, "shop", "web", EXPORTED).await;
    export(&east, "shop", "api", EXPORTED).await;
    linkerd_leftovers(&west).await;
    let rv = |name: &'static str| {
        let west = west.clone();
        async move {
            get_svc(&west, "shop", name)
                .await
                .and_then(|s| s.metadata.resource_version)
        }
    };
    let before = (
        rv("web-east").await,
        rv("gone-east").await,
        rv("pg-0-east").await,
    );
    env.link("west", "east", |s| s.adopt_linkerd_mirrors = false)
        .await;
    eventually("conflict reported, own mirror written", || async {
        let row = env.row("west-east", "shop", "web").await.ok_or("no row")?;
        ok_if(
            row.status.state == MirrorState::Conflict
                && row.status.message.contains("adoptLinkerdMirrors: false")
                && get_eps(&west, "shop", "api-east").await.is_some(),
            || format!("{row:?}"),
        )
    })
    .await;
    env.settle(&["east", "west"], Duration::from_millis(1000))
        .await;
    assert_eq!(
        (
            rv("web-east").await,
            rv("gone-east").await,
            rv("pg-0-east").await
        ),
        before
    );
    let mut conn = env.store.acquire().await.unwrap();
    linkplane_store::links::delete(&mut conn, "west-east")
        .await
        .unwrap();
    drop(conn);
    eventually("own mirror cleaned up on unlink", || async {
        ok_if(get_svc(&west, "shop", "api-east").await.is_none(), || {
            "api-east still there".into()
        })
    })
    .await;
    assert_eq!(
        (
            rv("web-east").await,
            rv("gone-east").await,
            rv("pg-0-east").await
        ),
        before,
        "Linkerd's mirrors survive the unlink"
    );
    env.shutdown().await;
}

/// Linkerd-compat §2.3 and issue 14, point 4: a Service skipped because its namespace is
/// missing in the source gets Linkerd's `Normal ServiceMirroringSkipped "Skipped mirroring
/// service: namespace does not exist"` on the target Service (where Linkerd records it; the
/// source has no such namespace to hold it). Repeats are aggregated: twenty more reconciles of
/// the key write no new Event, so a hot loop cannot flood the API server.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn a_skipped_export_is_an_event_on_the_target_service_and_repeats_are_aggregated(
    pool: sqlx::PgPool,
) {
    use k8s_openapi::api::core::v1::Event;
    let env = Env::start(pool, &["east", "west"]).await;
    let east = env.client("east").await;
    export(&east, "shop", "web", EXPORTED).await;
    env.link("west", "east", |_| {}).await;
    let events = Api::<Event>::namespaced(east.clone(), "shop");
    eventually("event recorded", || async {
        let list = events.list(&Default::default()).await.unwrap().items;
        ok_if(list.len() == 1, || format!("{list:?}"))
    })
    .await;
    let ev = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(ev.type_.as_deref(), Some("Normal"));
    assert_eq!(ev.reason.as_deref(), Some("ServiceMirroringSkipped"));
    assert_eq!(
        ev.message.as_deref(),
        Some("Skipped mirroring service: namespace does not exist")
    );
    let obj = &ev.involved_object;
    assert_eq!(
        (
            obj.kind.as_deref(),
            obj.namespace.as_deref(),
            obj.name.as_deref()
        ),
        (Some("Service"), Some("shop"), Some("web"))
    );
    assert_eq!(ev.count, Some(1));

    let mark = env.sim.cluster("east").unwrap().request_mark();
    for i in 0..20 {
        let api = Api::<k8s_openapi::api::core::v1::Service>::namespaced(east.clone(), "shop");
        let mut svc = api.get("web").await.unwrap();
        svc.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert("touch".into(), i.to_string());
        api.replace("web", &PostParams::default(), &svc)
            .await
            .unwrap();
    }
    env.settle(&["east", "west"], Duration::from_millis(1000))
        .await;
    let event_writes: Vec<_> = env
        .writes_since("east", mark)
        .into_iter()
        .filter(|r| r.resource == "events")
        .collect();
    assert!(event_writes.is_empty(), "{event_writes:#?}");
    assert_eq!(
        events.list(&Default::default()).await.unwrap().items.len(),
        1
    );
    env.shutdown().await;
}

/// The `gateway_*` samples of `target` in the OpenMetrics text of `registry`.
fn gateway_samples(registry: &prometheus_client::registry::Registry, target: &str) -> Vec<String> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
    let needle = format!("target_cluster_name=\"{target}\"");
    out.lines()
        .filter(|l| l.starts_with("gateway_") && l.contains(&needle))
        .map(str::to_string)
        .collect()
}

fn sample(samples: &[String], prefix: &str) -> Option<f64> {
    samples
        .iter()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Issue 14 (gateway metrics): one prober per target gateway, shared by every link into it,
/// so two links into `east` do not double `gateway_probes`; the metrics keep Linkerd's names
/// and labels (§7.1) and stay while any link still uses the gateway.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn one_prober_per_target_gateway_shared_by_every_link(pool: sqlx::PgPool) {
    let mut env = Env::start(pool, &["east", "west", "north"]).await;
    env.stop_supervisor().await;
    let mut registry = prometheus_client::registry::Registry::default();
    env.metrics = Metrics::new(&mut registry);
    env.start_supervisor().await;
    env.link("west", "east", |_| {}).await;
    env.link("north", "east", |_| {}).await;
    let probes = || {
        sample(
            &gateway_samples(&registry, "east"),
            "gateway_probes_total{target_cluster_name=\"east\",probe_successful=\"true\"}",
        )
        .unwrap_or(0.0)
    };
    eventually("probing", || async {
        ok_if(probes() >= 1.0, || "no probe yet".into())
    })
    .await;
    // Probe period 300 ms (+ up to 10% jitter): one prober makes at most ~10 probes in 3 s,
    // one per link would make ~20.
    let before = probes();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = probes() - before;
    assert!(
        (3.0..=12.0).contains(&during),
        "{during} probes in 3 s with two links into east"
    );
    let samples = gateway_samples(&registry, "east");
    assert_eq!(
        sample(&samples, "gateway_enabled{"),
        Some(1.0),
        "{samples:?}"
    );
    assert_eq!(sample(&samples, "gateway_alive{"), Some(1.0), "{samples:?}");

    // One link goes: the other still uses the gateway, so its metrics stay and it is probed.
    let mut conn = env.store.acquire().await.unwrap();
    linkplane_store::links::delete(&mut conn, "north-east")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_one = probes();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(probes() > after_one, "still probed for west-east");
    let samples = gateway_samples(&registry, "east");
    assert_eq!(
        sample(&samples, "gateway_enabled{"),
        Some(1.0),
        "{samples:?}"
    );

    // The last one goes: no link uses the gateway, its metrics go.
    linkplane_store::links::delete(&mut conn, "west-east")
        .await
        .unwrap();
    drop(conn);
    eventually("metrics removed", || async {
        let s = gateway_samples(&registry, "east");
        ok_if(sample(&s, "gateway_enabled{").is_none(), || {
            format!("{s:?}")
        })
    })
    .await;
    env.shutdown().await;
}

/// Issue 14, point 5: `spec.apiServer` is the server linkplane talks to; the kubeconfig only
/// supplies credentials and CA. A kubeconfig naming a dead server still works when apiServer is
/// right, and a wrong apiServer fails although the kubeconfig's server is right.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn api_server_is_the_server_the_reconciler_talks_to(pool: sqlx::PgPool) {
    let env = Env::start(pool, &["east", "west"]).await;
    let (east, west) = (env.client("east").await, env.client("west").await);
    create_ns(&west, "shop").await;
    export(&east, "shop", "web", EXPORTED).await;
    let sim_west = env.sim.cluster("west").unwrap();
    let stale = sim_west
        .kubeconfig_yaml()
        .replace(&sim_west.url(), "https://127.0.0.1:9");
    assert_ne!(stale, sim_west.kubeconfig_yaml());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("west.kubeconfig");
    std::fs::write(&path, stale).unwrap();
    env.update_cluster("west", |c| {
        c.spec.credentials =
            linkplane_core::CredentialsRef::KubeconfigFile(path.display().to_string());
    })
    .await;
    env.link("west", "east", |_| {}).await;
    eventually("mirrored through spec.apiServer", || async {
        ok_if(get_eps(&west, "shop", "web-east").await.is_some(), || {
            "absent".into()
        })
    })
    .await;

    // The other way round: the kubeconfig is right, apiServer points nowhere.
    env.update_cluster("east", |c| c.spec.api_server = "https://127.0.0.1:9".into())
        .await;
    eventually("east fails", || async {
        let mut conn = env.store.acquire().await.unwrap();
        let rows = linkplane_store::reconcilers::list(&mut conn).await.unwrap();
        let east = rows.iter().find(|r| r.cluster == "east");
        ok_if(
            east.is_some_and(|r| r.state == linkplane_store::reconcilers::ReconcilerState::Failed),
            || format!("{rows:?}"),
        )
    })
    .await;
    env.shutdown().await;
}
