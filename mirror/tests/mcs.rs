//! Kubernetes Multi-Cluster Services (KEP-1645) through the running supervisor: the SIG
//! Multicluster conformance expectations that apply to a control plane, each a kubesim
//! scenario through the real kube client (kubesim serves the MCS CRDs linkplane installs).
//! Each test names the conformance case it pins (mcs-api `conformance/`).

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, DynamicObject, ListParams, PostParams},
};
use linkplane_core::McsSpec;
use linkplane_mirror::mcs::{service_export, service_import};
use serde_json::{Value, json};
use support::*;

/// west consumes from east and north, MCS on (CRDs installed by linkplane).
async fn fleet(pool: sqlx::PgPool) -> (Env, Client, Client, Client) {
    let env = Env::start(pool, &["west", "east", "north"]).await;
    let (west, east, north) = (
        env.client("west").await,
        env.client("east").await,
        env.client("north").await,
    );
    for target in ["east", "north"] {
        env.link("west", target, |s| s.mcs = Some(McsSpec::default()))
            .await;
    }
    (env, west, east, north)
}

/// Creates `ns/name`'s ServiceExport once linkplane has installed the CRD.
async fn export_it(client: &Client, ns: &str, name: &str) {
    create_ns(client, ns).await;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &service_export());
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
        "metadata": {"name": name, "namespace": ns},
    }))
    .unwrap();
    eventually("ServiceExport created (CRD installed)", || async {
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
}

async fn unexport(client: &Client, ns: &str, name: &str) {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &service_export());
    api.delete(name, &DeleteParams::default()).await.unwrap();
}

async fn import_of(client: &Client, ns: &str, name: &str) -> Option<DynamicObject> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &service_import());
    api.get_opt(name).await.ok().flatten()
}

async fn slices_of(client: &Client, ns: &str, name: &str) -> Vec<EndpointSlice> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    api.list(
        &ListParams::default().labels(&format!("multicluster.kubernetes.io/service-name={name}")),
    )
    .await
    .map(|l| l.items)
    .unwrap_or_default()
}

fn slice_ips(slices: &[EndpointSlice]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in slices {
        let cluster = s.labels()["multicluster.kubernetes.io/source-cluster"].clone();
        let ips = out.entry(cluster).or_default();
        for e in &s.endpoints {
            ips.extend(e.addresses.iter().cloned());
        }
        ips.sort();
    }
    out
}

/// `(status, reason)` of condition `ty` of `ns/name`'s ServiceExport.
async fn condition(client: &Client, ns: &str, name: &str, ty: &str) -> Option<(String, String)> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &service_export());
    let o = api.get_opt(name).await.ok().flatten()?;
    let c = o.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)?
        .clone();
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
    ))
}

async fn wait_condition(client: &Client, ns: &str, name: &str, ty: &str, want: (&str, &str)) {
    eventually(&format!("{ns}/{name} {ty}={want:?}"), || async {
        let got = condition(client, ns, name, ty).await;
        let want = Some((want.0.to_string(), want.1.to_string()));
        ok_if(got == want, || format!("{got:?}"))
    })
    .await;
}

async fn wait_import(
    client: &Client,
    ns: &str,
    name: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    eventually(&format!("ServiceImport {ns}/{name}"), || async {
        let o = import_of(client, ns, name).await.ok_or("absent")?;
        ok_if(check(&o.data), || format!("{:?}", o.data))
    })
    .await;
    import_of(client, ns, name).await.unwrap().data
}

/// The MCS rows the API reads (`mcs_exports`, `mcs_imports`), as recorded by the reconciler.
async fn recorded(
    env: &Env,
) -> (
    Vec<linkplane_store::mcs::McsExportStatus>,
    Vec<linkplane_store::mcs::McsImportStatus>,
) {
    use linkplane_store::{mcs, windows};
    let window = windows::Window {
        after: None,
        before: None,
        backward: false,
        limit: 100,
    };
    let mut conn = env.store.acquire().await.unwrap();
    let exports = windows::mcs_exports(&mut conn, &mcs::McsExportFilter::default(), &window)
        .await
        .unwrap();
    let imports = windows::mcs_imports(&mut conn, &mcs::McsImportFilter::default(), &window)
        .await
        .unwrap();
    (
        exports.into_iter().map(|r| r.status).collect(),
        imports.into_iter().map(|r| r.status).collect(),
    )
}

/// Conformance "ServiceExport → ServiceImport": exporting a Service creates a ServiceImport
/// of the same name in the same namespace of the consumer (type ClusterSetIP, the Service's
/// ports, sessionAffinity), EndpointSlices labelled with the service name, the source cluster
/// and `endpointslice.kubernetes.io/managed-by`, carrying the exporting cluster's endpoints;
/// the export is `Valid`, `Ready` and not `Conflict`ed. The Linkerd mirror (remote-discovery,
/// the default `exportMode`) exists side by side. Conformance "endpoints follow pods": an
/// endpoint change in the exporting cluster reaches the slice.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn a_service_export_yields_an_import_and_slices_beside_the_mirror(pool: sqlx::PgPool) {
    let (env, west, east, _north) = fleet(pool).await;
    create_ns(&east, "shop").await;
    create_ns(&west, "shop").await;
    create_svc(
        &east,
        &service("shop", "web", &[("app", "web")], &[("http", 80)]),
    )
    .await;
    set_endpoints(&east, "shop", "web", &[("10.1.0.1", None)], &[]).await;
    export_it(&east, "shop", "web").await;

    let import = wait_import(&west, "shop", "web", |d| {
        d["spec"]["type"] == "ClusterSetIP"
    })
    .await;
    assert_eq!(
        import["spec"]["ports"],
        json!([{"name": "http", "port": 80, "protocol": "TCP"}])
    );
    assert_eq!(import["spec"]["sessionAffinity"], "None");
    eventually("status.clusters", || async {
        let d = import_of(&west, "shop", "web").await.ok_or("absent")?.data;
        ok_if(
            d["status"]["clusters"] == json!([{"cluster": "east"}]),
            || format!("{d:?}"),
        )
    })
    .await;
    eventually("slice from east", || async {
        let ips = slice_ips(&slices_of(&west, "shop", "web").await);
        ok_if(
            ips.get("east") == Some(&vec!["10.1.0.1".to_string()]),
            || format!("{ips:?}"),
        )
    })
    .await;
    let slices = slices_of(&west, "shop", "web").await;
    assert_eq!(
        slices[0].labels()["endpointslice.kubernetes.io/managed-by"],
        "mcs-controller.linkplane.io"
    );
    assert_eq!(slices[0].ports.as_ref().unwrap()[0].port, Some(8080));

    wait_condition(&east, "shop", "web", "Valid", ("True", "Valid")).await;
    wait_condition(&east, "shop", "web", "Ready", ("True", "Ready")).await;
    wait_condition(&east, "shop", "web", "Conflict", ("False", "NoConflicts")).await;

    // The Linkerd mirror of the same decision, in remote-discovery mode.
    eventually("Linkerd mirror web-east", || async {
        let s = get_svc(&west, "shop", "web-east").await.ok_or("absent")?;
        let l = labels(&s);
        ok_if(
            l.get("multicluster.linkerd.io/remote-discovery")
                .map(String::as_str)
                == Some("east"),
            || format!("{l:?}"),
        )
    })
    .await;

    // Endpoints follow pods.
    set_endpoints(
        &east,
        "shop",
        "web",
        &[("10.1.0.2", None), ("10.1.0.3", None)],
        &[],
    )
    .await;
    eventually("slice follows the endpoints", || async {
        let ips = slice_ips(&slices_of(&west, "shop", "web").await);
        ok_if(
            ips.get("east") == Some(&vec!["10.1.0.2".to_string(), "10.1.0.3".to_string()]),
            || format!("{ips:?}"),
        )
    })
    .await;
    // The exporting cluster imports nothing.
    assert!(import_of(&east, "shop", "web").await.is_none());
    env.shutdown().await;
}

/// Conformance "unexport → import removed": deleting the ServiceExport removes the
/// ServiceImport, the EndpointSlices and the Linkerd mirror from the consumer.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn unexporting_removes_the_import_slices_and_mirror(pool: sqlx::PgPool) {
    let (env, west, east, _north) = fleet(pool).await;
    create_ns(&west, "shop").await;
    export(&east, "shop", "web", ("app", "other")).await;
    export_it(&east, "shop", "web").await;
    wait_import(&west, "shop", "web", |_| true).await;
    eventually("mirror", || async {
        ok_if(get_svc(&west, "shop", "web-east").await.is_some(), || {
            "absent".into()
        })
    })
    .await;
    unexport(&east, "shop", "web").await;
    eventually("import, slices and mirror removed", || async {
        let i = import_of(&west, "shop", "web").await.is_some();
        let s = slices_of(&west, "shop", "web").await.len();
        let m = get_svc(&west, "shop", "web-east").await.is_some();
        ok_if(!i && s == 0 && !m, || {
            format!("import {i}, slices {s}, mirror {m}")
        })
    })
    .await;
    env.shutdown().await;
}

/// Conformance "namespace sameness": `shop/web` exported from two clusters is one
/// ServiceImport listing both clusters, with one EndpointSlice per cluster; a Service of
/// the same name in another namespace is a different import.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn exports_from_two_clusters_are_one_import(pool: sqlx::PgPool) {
    let (env, west, east, north) = fleet(pool).await;
    create_ns(&west, "shop").await;
    export(&east, "shop", "web", ("app", "web")).await;
    export(&north, "shop", "web", ("app", "web")).await;
    set_endpoints(&north, "shop", "web", &[("10.2.0.1", None)], &[]).await;
    export_it(&east, "shop", "web").await;
    export_it(&north, "shop", "web").await;
    wait_import(&west, "shop", "web", |d| {
        d["status"]["clusters"] == json!([{"cluster": "east"}, {"cluster": "north"}])
    })
    .await;
    eventually("one slice per cluster", || async {
        let ips = slice_ips(&slices_of(&west, "shop", "web").await);
        let want = BTreeMap::from([
            ("east".to_string(), vec!["10.1.0.1".to_string()]),
            ("north".to_string(), vec!["10.2.0.1".to_string()]),
        ]);
        ok_if(ips == want, || format!("{ips:?}"))
    })
    .await;
    // Another namespace, another import.
    create_ns(&west, "billing").await;
    export(&north, "billing", "web", ("app", "web")).await;
    export_it(&north, "billing", "web").await;
    wait_import(&west, "billing", "web", |d| {
        d["status"]["clusters"] == json!([{"cluster": "north"}])
    })
    .await;
    // Unexporting one cluster keeps the import with the other.
    unexport(&north, "shop", "web").await;
    wait_import(&west, "shop", "web", |d| {
        d["status"]["clusters"] == json!([{"cluster": "east"}])
    })
    .await;
    eventually("north's slice removed", || async {
        let ips = slice_ips(&slices_of(&west, "shop", "web").await);
        ok_if(!ips.contains_key("north"), || format!("{ips:?}"))
    })
    .await;
    env.shutdown().await;
}

/// Conformance "port conflict": the same port name with another number in a newer export
/// sets `Conflict=True` (`PortConflict`) on the exports; the import keeps the oldest
/// export's port. Conformance "type conflict": a headless export against an older
/// ClusterSetIP one is a `TypeConflict`, the import stays ClusterSetIP.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn conflicts_are_resolved_by_the_oldest_export(pool: sqlx::PgPool) {
    let (env, west, east, north) = fleet(pool).await;
    create_ns(&west, "shop").await;
    export(&east, "shop", "web", ("app", "web")).await;
    export_it(&east, "shop", "web").await;
    wait_import(&west, "shop", "web", |_| true).await;
    // ServiceExport creation timestamps have second resolution.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    create_ns(&north, "shop").await;
    create_svc(
        &north,
        &service("shop", "web", &[("app", "web")], &[("http", 8080)]),
    )
    .await;
    export_it(&north, "shop", "web").await;
    wait_condition(&north, "shop", "web", "Conflict", ("True", "PortConflict")).await;
    wait_condition(&east, "shop", "web", "Conflict", ("True", "PortConflict")).await;
    let import = wait_import(&west, "shop", "web", |d| {
        d["status"]["clusters"] == json!([{"cluster": "east"}, {"cluster": "north"}])
    })
    .await;
    assert_eq!(
        import["spec"]["ports"],
        json!([{"name": "http", "port": 80, "protocol": "TCP"}]),
        "the oldest export's port"
    );
    // The API's rows (issue 20): both exports are `Conflict` with the reason the KEP's condition
    // carries, and west's import is recorded in conflict, from both clusters.
    eventually("conflict recorded for the API", || async {
        use linkplane_store::mcs::{McsConditionType, McsExportState, McsImportState};
        let (exports, imports) = recorded(&env).await;
        let conflicted: Vec<(&str, Option<&str>)> = exports
            .iter()
            .filter(|e| e.namespace == "shop" && e.service == "web")
            .filter(|e| e.state == McsExportState::Conflict && e.in_conflict())
            .map(|e| {
                (
                    e.cluster.as_str(),
                    e.condition(McsConditionType::Conflict)
                        .map(|c| c.reason.as_str()),
                )
            })
            .collect();
        let import = imports
            .iter()
            .find(|i| i.cluster == "west" && i.service == "web");
        ok_if(
            conflicted
                == [
                    ("east", Some("PortConflict")),
                    ("north", Some("PortConflict")),
                ]
                && import.is_some_and(|i| {
                    i.state == McsImportState::Conflict
                        && i.source_clusters == ["east", "north"]
                        && i.message.starts_with("PortConflict")
                }),
            || format!("{exports:?} {imports:?}"),
        )
    })
    .await;

    // Type conflict: north's web becomes headless with the same port.
    delete_svc(&north, "shop", "web").await;
    let mut headless = service("shop", "web", &[("app", "web")], &[("http", 80)]);
    headless.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    create_svc(&north, &headless).await;
    wait_condition(&north, "shop", "web", "Conflict", ("True", "TypeConflict")).await;
    wait_import(&west, "shop", "web", |d| {
        d["spec"]["type"] == "ClusterSetIP"
    })
    .await;

    // Resolved: the conflicting export goes away.
    unexport(&north, "shop", "web").await;
    wait_condition(&east, "shop", "web", "Conflict", ("False", "NoConflicts")).await;
    // …and so do its row and the conflict in the API's rows.
    eventually("resolution recorded for the API", || async {
        use linkplane_store::mcs::{McsExportState, McsImportState};
        let (exports, imports) = recorded(&env).await;
        let web: Vec<(&str, McsExportState, &[String])> = exports
            .iter()
            .filter(|e| e.service == "web")
            .map(|e| (e.cluster.as_str(), e.state, e.imported_by.as_slice()))
            .collect();
        let import = imports
            .iter()
            .find(|i| i.cluster == "west" && i.service == "web");
        ok_if(
            web == [("east", McsExportState::Exported, &["west".to_string()][..])]
                && import.is_some_and(|i| {
                    i.state == McsImportState::Imported && i.source_clusters == ["east"]
                }),
            || format!("{exports:?} {imports:?}"),
        )
    })
    .await;
    env.shutdown().await;
}

/// Conformance "headless": a headless Service is imported as `Headless` and its slices keep
/// the pods' hostnames.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn a_headless_export_is_a_headless_import(pool: sqlx::PgPool) {
    let (env, west, east, _north) = fleet(pool).await;
    create_ns(&west, "db").await;
    create_ns(&east, "db").await;
    let mut headless = service("db", "pg", &[("app", "pg")], &[("tcp", 5432)]);
    headless.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    create_svc(&east, &headless).await;
    set_endpoints(&east, "db", "pg", &[("10.1.0.7", Some("pg-0"))], &[]).await;
    export_it(&east, "db", "pg").await;
    wait_import(&west, "db", "pg", |d| d["spec"]["type"] == "Headless").await;
    eventually("slice keeps hostnames", || async {
        let slices = slices_of(&west, "db", "pg").await;
        let hosts: Vec<Option<String>> = slices
            .iter()
            .flat_map(|s| s.endpoints.iter().map(|e| e.hostname.clone()))
            .collect();
        ok_if(hosts == [Some("pg-0".to_string())], || format!("{hosts:?}"))
    })
    .await;
    env.shutdown().await;
}

/// Conformance "export without a Service": the export is `Valid=False` (`NoService`) and
/// nothing is imported; creating the Service later imports it.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn an_export_without_a_service_is_invalid(pool: sqlx::PgPool) {
    let (env, west, east, _north) = fleet(pool).await;
    create_ns(&west, "shop").await;
    export_it(&east, "shop", "ghost").await;
    wait_condition(&east, "shop", "ghost", "Valid", ("False", "NoService")).await;
    wait_condition(&east, "shop", "ghost", "Ready", ("False", "Pending")).await;
    assert!(import_of(&west, "shop", "ghost").await.is_none());
    create_svc(&east, &service("shop", "ghost", &[], &[("http", 80)])).await;
    wait_condition(&east, "shop", "ghost", "Valid", ("True", "Valid")).await;
    wait_import(&west, "shop", "ghost", |_| true).await;
    env.shutdown().await;
}
