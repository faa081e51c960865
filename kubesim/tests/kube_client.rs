//! The real kube-rs client against kubesim over HTTPS: verbs, semantics and every error code.

// Helpers outside #[test] functions panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Service};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::{Status, response::StatusSummary};
use kube::{Client, ResourceExt};
use kubesim::{SimCluster, Simulator, WriteFailure};
use serde_json::json;

mod support;

async fn sim() -> (Simulator, SimCluster, tempfile::TempDir) {
    support::sim_with_window(50).await
}

/// A client that does not retry 429s by itself, so tests see them.
async fn client_without_retry(yaml: &str) -> Client {
    let kc = kube::config::Kubeconfig::from_yaml(yaml).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    config.default_retry = false;
    Client::try_from(config).unwrap()
}

fn service(name: &str, labels: &[(&str, &str)], port: i32) -> Service {
    serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        },
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port}]}
    }))
    .unwrap()
}

fn api_error(err: kube::Error) -> Status {
    match err {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_defaults_services_like_kubernetes() {
    let (_sim, east, _dir) = sim().await;
    let api: Api<Service> = Api::namespaced(east.client().await.unwrap(), "default");
    let created = api
        .create(
            &PostParams::default(),
            &service("web", &[("app", "web")], 80),
        )
        .await
        .unwrap();
    let spec = created.spec.clone().unwrap();
    assert!(spec.cluster_ip.as_deref().unwrap().starts_with("10.96."));
    let port = &spec.ports.unwrap()[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert_eq!(
        port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80))
    );
    assert!(created.uid().is_some());
    assert!(created.creation_timestamp().is_some());
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.resource_version().unwrap().parse::<u64>().unwrap() > 0);

    let mut generated = service("ignored", &[], 81);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let g = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    assert!(
        g.name_any().starts_with("gen-") && g.name_any().len() == 9,
        "{}",
        g.name_any()
    );

    let mut headless = service("headless", &[], 80);
    headless.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    let h = api.create(&PostParams::default(), &headless).await.unwrap();
    assert_eq!(h.spec.unwrap().cluster_ip.as_deref(), Some("None"));

    let got = api.get("web").await.unwrap();
    assert_eq!(got.resource_version(), created.resource_version());
}

#[tokio::test]
async fn list_supports_selectors_paging_and_namespaces() {
    let (_sim, east, _dir) = sim().await;
    let client = east.client().await.unwrap();
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "other"}})).unwrap(),
    )
    .await
    .unwrap();
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    for (name, tier) in [("a", "fe"), ("b", "be"), ("c", "db"), ("d", "")] {
        let labels: Vec<(&str, &str)> = if tier.is_empty() {
            vec![("app", "x")]
        } else {
            vec![("app", "x"), ("tier", tier)]
        };
        api.create(&PostParams::default(), &service(name, &labels, 80))
            .await
            .unwrap();
    }
    Api::<Service>::namespaced(client.clone(), "other")
        .create(&PostParams::default(), &service("e", &[("app", "y")], 80))
        .await
        .unwrap();
    let names = |l: kube::core::ObjectList<Service>| {
        l.items.iter().map(|s| s.name_any()).collect::<Vec<_>>()
    };
    let q = |s: &str| ListParams::default().labels(s);
    assert_eq!(names(api.list(&q("tier=fe")).await.unwrap()), vec!["a"]);
    assert_eq!(names(api.list(&q("tier==be")).await.unwrap()), vec!["b"]);
    assert_eq!(
        names(api.list(&q("tier!=fe")).await.unwrap()),
        vec!["b", "c", "d"]
    );
    assert_eq!(
        names(api.list(&q("tier in (fe,db)")).await.unwrap()),
        vec!["a", "c"]
    );
    assert_eq!(
        names(api.list(&q("tier notin (fe,db)")).await.unwrap()),
        vec!["b", "d"]
    );
    assert_eq!(
        names(api.list(&q("tier")).await.unwrap()),
        vec!["a", "b", "c"]
    );
    assert_eq!(names(api.list(&q("!tier")).await.unwrap()), vec!["d"]);
    let by_name = ListParams::default().fields("metadata.name=c");
    assert_eq!(names(api.list(&by_name).await.unwrap()), vec!["c"]);
    let all: Api<Service> = Api::all(client.clone());
    assert_eq!(
        names(all.list(&q("app")).await.unwrap()),
        vec!["a", "b", "c", "d", "e"]
    );
    let other_ns = ListParams::default().fields("metadata.namespace=other");
    assert_eq!(names(all.list(&other_ns).await.unwrap()), vec!["e"]);

    let page1 = api.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(names(page1.clone()), vec!["a", "b", "c"]);
    let token = page1.metadata.continue_.clone().unwrap();
    assert_eq!(page1.metadata.remaining_item_count, Some(1));
    let page2 = api
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(names(page2.clone()), vec!["d"]);
    assert!(page2.metadata.continue_.is_none());
    assert_eq!(
        page1.metadata.resource_version,
        page2.metadata.resource_version
    );
}

#[tokio::test]
async fn replace_with_a_stale_resource_version_is_a_409_conflict() {
    let (_sim, east, _dir) = sim().await;
    let api: Api<Service> = Api::namespaced(east.client().await.unwrap(), "default");
    let created = api
        .create(&PostParams::default(), &service("web", &[], 80))
        .await
        .unwrap();
    let mut first = created.clone();
    first.labels_mut().insert("edit".into(), "one".into());
    let updated = api
        .replace("web", &PostParams::default(), &first)
        .await
        .unwrap();
    assert_ne!(updated.resource_version(), created.resource_version());
    assert_eq!(
        updated.spec.as_ref().unwrap().cluster_ip,
        created.spec.as_ref().unwrap().cluster_ip
    );

    let mut second = created.clone();
    second.labels_mut().insert("edit".into(), "two".into());
    let err = api_error(
        api.replace("web", &PostParams::default(), &second)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message.contains("the object has been modified"),
        "{}",
        err.message
    );
    assert_eq!(api.get("web").await.unwrap().labels()["edit"], "one");
}

#[tokio::test]
async fn all_patch_types_apply() {
    let (_sim, east, _dir) = sim().await;
    let api: Api<Service> = Api::namespaced(east.client().await.unwrap(), "default");
    let mut svc = service("web", &[("app", "web")], 80);
    svc.spec
        .as_mut()
        .unwrap()
        .ports
        .as_mut()
        .unwrap()
        .push(serde_json::from_value(json!({"name": "grpc", "port": 9090})).unwrap());
    api.create(&PostParams::default(), &svc).await.unwrap();
    let pp = PatchParams::default();

    let merged = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"app": null, "tier": "fe"}}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.labels().get("tier").map(String::as_str), Some("fe"));
    assert!(!merged.labels().contains_key("app"));

    // kube's typed JSON patch needs an optional feature; send the RFC 6902 document raw.
    let client = east.client().await.unwrap();
    let req = http::Request::patch("/api/v1/namespaces/default/services/web")
        .header("content-type", "application/json-patch+json")
        .body(
            serde_json::to_vec(&json!([
                {"op": "replace", "path": "/spec/ports/0/targetPort", "value": 8080},
                {"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}
            ]))
            .unwrap(),
        )
        .unwrap();
    let json_patched: Service = client.request(req).await.unwrap();
    assert_eq!(json_patched.annotations()["a"], "b");

    let strategic = api
        .patch(
            "web",
            &pp,
            &Patch::Strategic(json!({"spec": {"ports": [
                {"port": 80, "targetPort": 8081},
                {"port": 9090, "$patch": "delete"}
            ]}})),
        )
        .await
        .unwrap();
    let ports = strategic.spec.unwrap().ports.unwrap();
    assert_eq!(ports.len(), 1, "the grpc port was deleted by merge key");
    assert_eq!(
        ports[0].name.as_deref(),
        Some("http"),
        "the http port was merged, not replaced"
    );
}

#[tokio::test]
async fn server_side_apply_conflicts_between_managers_unless_forced() {
    let (_sim, east, _dir) = sim().await;
    let api: Api<Service> = Api::namespaced(east.client().await.unwrap(), "default");
    let desired = |target: i32, label: &str| {
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "labels": {"owner": label}},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": target}]}
        })
    };
    let alice = PatchParams::apply("alice");
    let created = api
        .patch("web", &alice, &Patch::Apply(desired(8080, "alice")))
        .await
        .unwrap();
    assert_eq!(created.labels()["owner"], "alice");
    let managers: Vec<String> = created
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, vec!["alice"]);

    // Re-applying the same configuration is a no-op.
    let again = api
        .patch("web", &alice, &Patch::Apply(desired(8080, "alice")))
        .await
        .unwrap();
    assert_eq!(again.resource_version(), created.resource_version());

    let bob = PatchParams::apply("bob");
    let err = api_error(
        api.patch("web", &bob, &Patch::Apply(desired(9090, "bob")))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message.contains("conflict with \"alice\""),
        "{}",
        err.message
    );
    assert!(
        err.message.contains(".spec.ports[port=80].targetPort"),
        "{}",
        err.message
    );

    let forced = api
        .patch(
            "web",
            &bob.clone().force(),
            &Patch::Apply(desired(9090, "bob")),
        )
        .await
        .unwrap();
    assert_eq!(forced.labels()["owner"], "bob");
    assert_eq!(
        forced.spec.unwrap().ports.unwrap()[0].target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(9090))
    );
    // Now alice is the one who conflicts.
    let err = api_error(
        api.patch("web", &alice, &Patch::Apply(desired(8080, "alice")))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    assert!(
        err.message.contains("conflict with \"bob\""),
        "{}",
        err.message
    );

    // A field dropped from a manager's configuration is removed when no one else owns it.
    let api_cm: Api<ConfigMap> = Api::namespaced(east.client().await.unwrap(), "default");
    let cm = |data: serde_json::Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
    api_cm
        .patch("c", &alice, &Patch::Apply(cm(json!({"a": "1", "b": "2"}))))
        .await
        .unwrap();
    let pruned = api_cm
        .patch("c", &alice, &Patch::Apply(cm(json!({"a": "1"}))))
        .await
        .unwrap();
    assert_eq!(pruned.data.unwrap().keys().collect::<Vec<_>>(), vec!["a"]);
}

#[tokio::test]
async fn deletion_honours_finalizers_namespaces_and_endpoints() {
    let (_sim, east, _dir) = sim().await;
    let client = east.client().await.unwrap();
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");

    // Selector-less Service: its Endpoints go with it.
    let mut plain = service("plain", &[], 80);
    plain.spec.as_mut().unwrap().selector = None;
    api.create(&PostParams::default(), &plain).await.unwrap();
    eps.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "plain"},
            "subsets": [{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"port": 80}]}]}))
        .unwrap(),
    )
    .await
    .unwrap();
    api.delete("plain", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(eps.get("plain").await.unwrap_err()).code, 404);

    // Finalizers: deletion only marks the object until they are removed.
    let mut kept = service("kept", &[], 80);
    kept.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &kept).await.unwrap();
    api.delete("kept", &DeleteParams::default()).await.unwrap();
    let marked = api.get("kept").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    api.patch(
        "kept",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_error(api.get("kept").await.unwrap_err()).code, 404);

    // deletecollection with a selector.
    for n in ["x1", "x2", "y1"] {
        let app = if n.starts_with('x') { "x" } else { "y" };
        api.create(&PostParams::default(), &service(n, &[("app", app)], 80))
            .await
            .unwrap();
    }
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=x"),
    )
    .await
    .unwrap();
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| s.name_any())
        .collect();
    assert_eq!(left, vec!["y1"]);

    // Deleting a namespace deletes what is in it.
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap(),
    )
    .await
    .unwrap();
    let team: Api<Service> = Api::namespaced(client.clone(), "team");
    team.create(&PostParams::default(), &service("web", &[], 80))
        .await
        .unwrap();
    nss.delete("team", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(team.get("web").await.unwrap_err()).code, 404);
    assert_eq!(api_error(nss.get("team").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn every_error_is_a_status_with_the_right_code_and_reason() {
    let (_sim, east, _dir) = sim().await;
    let client = east.client().await.unwrap();
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &service("web", &[], 80))
        .await
        .unwrap();
    let check = |err: kube::Error, code: u16, reason: &str| {
        let e = api_error(err);
        assert_eq!((e.code, e.reason.as_str()), (code, reason), "{}", e.message);
        assert_eq!(e.status, Some(StatusSummary::Failure));
        e
    };

    // 400: a malformed selector; a body whose name differs from the URL.
    check(
        api.list(&ListParams::default().labels("a in (b"))
            .await
            .unwrap_err(),
        400,
        "BadRequest",
    );
    let mut renamed = api.get("web").await.unwrap();
    renamed.metadata.name = Some("other".into());
    check(
        api.replace("web", &PostParams::default(), &renamed)
            .await
            .unwrap_err(),
        400,
        "BadRequest",
    );

    // 401: no token, and a wrong token.
    let yaml = east.kubeconfig_yaml();
    let token_line = yaml
        .lines()
        .find(|l| l.trim_start().starts_with("token:"))
        .unwrap();
    let wrong = client_without_retry(&yaml.replace(token_line, "    token: not-the-token")).await;
    check(
        Api::<Service>::namespaced(wrong, "default")
            .get("web")
            .await
            .unwrap_err(),
        401,
        "Unauthorized",
    );
    let anonymous = client_without_retry(&yaml.replace(token_line, "    username: nobody")).await;
    check(
        Api::<Service>::namespaced(anonymous, "default")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
        401,
        "Unauthorized",
    );

    // 403: the default namespace may not be deleted.
    let nss: Api<Namespace> = Api::all(client.clone());
    let e = check(
        nss.delete("default", &DeleteParams::default())
            .await
            .unwrap_err(),
        403,
        "Forbidden",
    );
    assert!(e.message.contains("may not be deleted"));

    // 404: a missing object, and a missing namespace on create.
    let e = check(api.get("missing").await.unwrap_err(), 404, "NotFound");
    assert_eq!(e.message, "services \"missing\" not found");
    let nowhere: Api<Service> = Api::namespaced(client.clone(), "nowhere");
    check(
        nowhere
            .create(&PostParams::default(), &service("web", &[], 80))
            .await
            .unwrap_err(),
        404,
        "NotFound",
    );

    // 405: POST to an object URL.
    let req = http::Request::post("/api/v1/namespaces/default/services/web")
        .header("content-type", "application/json")
        .body(b"{}".to_vec())
        .unwrap();
    check(
        client.request::<Service>(req).await.unwrap_err(),
        405,
        "MethodNotAllowed",
    );

    // 409: AlreadyExists and Conflict.
    check(
        api.create(&PostParams::default(), &service("web", &[], 80))
            .await
            .unwrap_err(),
        409,
        "AlreadyExists",
    );
    let stale = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            resource_version: Some("1".into()),
            uid: None,
        }),
        ..DeleteParams::default()
    };
    check(
        api.delete("web", &stale).await.unwrap_err(),
        409,
        "Conflict",
    );

    // 410: a watch from a version outside the retained window; an exact list of an old version.
    east.faults().expire_watch_history();
    let mut events = Box::pin(api.watch(&WatchParams::default(), "1").await.unwrap());
    use futures::StreamExt;
    match events.next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected a 410 error event, got {other:?}"),
    }
    let req = http::Request::get(
        "/api/v1/namespaces/default/services?resourceVersion=1&resourceVersionMatch=Exact",
    )
    .body(Vec::new())
    .unwrap();
    check(
        client.request::<serde_json::Value>(req).await.unwrap_err(),
        410,
        "Expired",
    );

    // 415: an unknown patch content type.
    let req = http::Request::patch("/api/v1/namespaces/default/services/web")
        .header("content-type", "text/plain")
        .body(b"x".to_vec())
        .unwrap();
    check(
        client.request::<Service>(req).await.unwrap_err(),
        415,
        "UnsupportedMediaType",
    );

    // 422: bad names, missing ports, bad port numbers — all reported as causes.
    let mut bad = service("Bad_Name", &[], 0);
    bad.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 70000;
    let e = check(
        api.create(&PostParams::default(), &bad).await.unwrap_err(),
        422,
        "Invalid",
    );
    assert!(e.message.contains("metadata.name"), "{}", e.message);
    assert!(e.message.contains("spec.ports[0].port"), "{}", e.message);
    let mut portless = service("portless", &[], 80);
    portless.spec.as_mut().unwrap().ports = None;
    let e = check(
        api.create(&PostParams::default(), &portless)
            .await
            .unwrap_err(),
        422,
        "Invalid",
    );
    assert!(
        e.message.contains("spec.ports: Required value"),
        "{}",
        e.message
    );

    // 429 and 500 when injected; reads are unaffected; clearing restores writes.
    let no_retry = client_without_retry(&yaml).await;
    let api_nr: Api<Service> = Api::namespaced(no_retry, "default");
    east.faults()
        .fail_writes(1.0, WriteFailure::TooManyRequests);
    check(
        api_nr
            .create(&PostParams::default(), &service("w2", &[], 80))
            .await
            .unwrap_err(),
        429,
        "TooManyRequests",
    );
    east.faults().fail_writes(1.0, WriteFailure::InternalError);
    check(
        api_nr
            .create(&PostParams::default(), &service("w2", &[], 80))
            .await
            .unwrap_err(),
        500,
        "InternalError",
    );
    assert!(api_nr.get("web").await.is_ok());
    east.faults().clear();
    api_nr
        .create(&PostParams::default(), &service("w2", &[], 80))
        .await
        .unwrap();
}

/// The Endpoints registry canonicalizes `subsets` on every write (kubernetes
/// `pkg/registry/core/endpoint/strategy.go` `Canonicalize` → `pkg/api/endpoints/util.go`
/// `RepackSubsets`/`SortSubsets`): a client writing its own order reads back the canonical
/// one (merged by port set, addresses by IP bytes, ports by hash, protocol defaulted), and
/// rewriting the same endpoints in yet another order is a no-op.
#[tokio::test]
async fn endpoints_are_stored_in_upstream_canonical_order() {
    let (_sim, east, _dir) = sim().await;
    let api: Api<Endpoints> = Api::namespaced(east.client().await.unwrap(), "default");
    let written = |subsets: serde_json::Value| -> Endpoints {
        serde_json::from_value(json!({"metadata": {"name": "web"}, "subsets": subsets})).unwrap()
    };
    let ports = [
        json!({"name": "http", "port": 80}),
        json!({"name": "admin", "port": 9990}),
        json!({"name": "grpc", "port": 8080, "appProtocol": "h2c"}),
    ];
    let created = api
        .create(
            &PostParams::default(),
            &written(json!([
                {"addresses": [{"ip": "10.0.0.9"}], "ports": [ports[1], ports[0]]},
                {"addresses": [{"ip": "10.0.0.10"}], "ports": [ports[0], ports[1]]},
                {"addresses": [{"ip": "10.0.0.10"}, {"ip": "10.0.0.9"}], "ports": [ports[2]]},
            ])),
        )
        .await
        .unwrap();
    let subsets = created.subsets.clone().unwrap();
    assert_eq!(
        subsets.len(),
        1,
        "one port set offered by one address set: {subsets:?}"
    );
    let ips: Vec<&str> = subsets[0]
        .addresses
        .iter()
        .flatten()
        .map(|a| a.ip.as_str())
        .collect();
    assert_eq!(ips, vec!["10.0.0.10", "10.0.0.9"], "sorted by IP bytes");
    let names: Vec<&str> = subsets[0]
        .ports
        .iter()
        .flatten()
        .map(|p| p.name.as_deref().unwrap_or(""))
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["admin", "grpc", "http"]);
    assert!(
        subsets[0]
            .ports
            .iter()
            .flatten()
            .all(|p| p.protocol.as_deref() == Some("TCP")),
        "SetDefaults_EndpointPort defaults the protocol"
    );
    let got = api.get("web").await.unwrap();
    assert_eq!(got.subsets, created.subsets);

    // The same endpoints in another order: canonically equal, so no write happens.
    let mut reordered = written(json!([
        {"addresses": [{"ip": "10.0.0.9"}, {"ip": "10.0.0.10"}], "ports": [ports[2], ports[1], ports[0]]},
    ]));
    reordered.metadata.resource_version = got.metadata.resource_version.clone();
    let replaced = api
        .replace("web", &PostParams::default(), &reordered)
        .await
        .unwrap();
    assert_eq!(replaced.subsets, created.subsets);
    assert_eq!(
        replaced.metadata.resource_version, got.metadata.resource_version,
        "a canonically identical write does not bump the resourceVersion"
    );
    // A client that compares in its own (written) order sees a difference, as on a real cluster.
    assert_ne!(replaced.subsets, reordered.subsets);
}
