//! CustomResourceDefinitions through the real kube-rs client and the real `kubectl`: a CRD is
//! established and served (discovery, CRUD, selectors, watch, `/status`, schema validation,
//! defaults, pruning), and deleting it deletes its objects. Each test names the upstream
//! (apiextensions-apiserver) rule it pins.

// Helpers outside #[test] functions panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

const SERVICE_EXPORT_CRD: &str =
    include_str!("../../mirror/crds/serviceexports.multicluster.x-k8s.io.yaml");
const SERVICE_IMPORT_CRD: &str =
    include_str!("../../mirror/crds/serviceimports.multicluster.x-k8s.io.yaml");

mod support;
use support::sim;

fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                      "shortNames": ["wd"], "categories": ["all"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "required": ["size"], "properties": {
                            "size": {"type": "integer", "minimum": 0},
                            "mode": {"type": "string", "enum": ["Fast", "Slow"], "default": "Fast"},
                        }},
                        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                    },
                }},
            }],
        },
    })
}

fn widgets(client: &Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    Api::namespaced_with(client.clone(), ns, &ar)
}

async fn create_crd(client: &Client, crd: Value) -> CustomResourceDefinition {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(crd).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    // Clients wait for Established, as against a real API server.
    for _ in 0..50 {
        let got = crds.get(&crd.name_any()).await.unwrap();
        let established = got
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if established {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("CRD {} never became Established", crd.name_any());
}

/// Naming/establishing controllers: a new CRD gets `NamesAccepted` and `Established`
/// (`acceptedNames` with the defaulted `listKind`), and its group version appears in
/// discovery (`/apis`, `/apis/<group>`, `/apis/<group>/<version>` with short names,
/// categories and the status subresource).
#[tokio::test(flavor = "multi_thread")]
async fn a_crd_is_established_and_discovered() {
    let (_sim, east, _dir) = sim().await;
    let client = east.client().await.unwrap();
    let crd = create_crd(&client, widget_crd()).await;
    let status = crd.status.unwrap();
    let conds: Vec<(String, String)> = status
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| (c.type_, c.status))
        .collect();
    assert!(conds.contains(&("NamesAccepted".into(), "True".into())));
    assert_eq!(
        status.accepted_names.unwrap().list_kind.as_deref(),
        Some("WidgetList")
    );
    assert_eq!(status.stored_versions, Some(vec!["v1".to_string()]));

    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    let group = discovery
        .groups()
        .find(|g| g.name() == "example.com")
        .expect("the CRD's group is discovered");
    let (ar, caps) = group.recommended_kind("Widget").unwrap();
    assert_eq!(ar.plural, "widgets");
    assert!(
        caps.subresources
            .iter()
            .any(|(s, _)| s.plural.ends_with("status")),
        "{:?}",
        caps.subresources
    );
    let raw: Value = client
        .request(
            http::Request::get("/apis/example.com/v1")
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let widget = raw["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "widgets")
        .unwrap();
    assert_eq!(widget["shortNames"], json!(["wd"]));
    assert_eq!(widget["categories"], json!(["all"]));
    assert_eq!(widget["namespaced"], json!(true));
}

/// Custom objects: CRUD, label and `metadata.name` field selectors, defaults applied on
/// create (`default: Fast`), unknown fields pruned, `/status` ignoring spec changes and the
/// main resource ignoring status changes (apiextensions `strategy.go` `PrepareForUpdate`).
#[tokio::test(flavor = "multi_thread")]
async fn custom_objects_have_crud_selectors_defaults_pruning_and_status() {
    let (_sim, east, _dir) = sim().await;
    let client = east.client().await.unwrap();
    create_crd(&client, widget_crd()).await;
    let api = widgets(&client, "default");
    let mk = |name: &str, app: &str, size: i64| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"size": size, "unknown": "dropped"},
            "extra": {"also": "dropped"},
        }))
        .unwrap()
    };
    let a = api
        .create(&PostParams::default(), &mk("a", "x", 1))
        .await
        .unwrap();
    api.create(&PostParams::default(), &mk("b", "y", 2))
        .await
        .unwrap();
    assert_eq!(a.data["spec"]["mode"], "Fast", "defaulted on create");
    assert!(a.data["spec"].get("unknown").is_none(), "pruned");
    assert!(a.data.get("extra").is_none(), "pruned at the root");
    assert_eq!(a.metadata.generation, Some(1));

    let by_label = api
        .list(&ListParams::default().labels("app=y"))
        .await
        .unwrap();
    assert_eq!(
        by_label
            .items
            .iter()
            .map(|o| o.name_any())
            .collect::<Vec<_>>(),
        ["b"]
    );
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=a"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let everywhere = Api::<DynamicObject>::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("example.com", "v1", "Widget"),
            "widgets",
        ),
    );
    assert_eq!(
        everywhere
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    // Main resource: status changes are ignored.
    let pp = PatchParams::default();
    let patched = api
        .patch(
            "a",
            &pp,
            &Patch::Merge(json!({"spec": {"size": 5}, "status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["size"], 5);
    assert!(patched.data.get("status").is_none());
    assert_eq!(patched.metadata.generation, Some(2));
    // Status subresource: spec changes are ignored, generation stays.
    let st = api
        .patch_status(
            "a",
            &pp,
            &Patch::Merge(json!({"spec": {"size": 9}, "status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(st.data["status"]["ready"], true);
    assert_eq!(st.data["spec"]["size"], 5);
    assert_eq!(st.metadata.generation, Some(2));

    // Strategic merge patch is not supported for custom resources (415).
    let err = api
        .patch("a", &pp, &Patch::Strategic(json!({"spec": {"size": 6}})))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 415),
        "{err:?}"
    );

    api.delete("b", &DeleteParams::default()).await.unwrap();
    assert!(matches!(api.get("b").await, Err(kube::Error::Api(ref s)) if s.code == 404));
}

/// Validation by the structural schema answers `422 Invalid` with one cause per field, in
/// the shapes of apiextensions `validation.ConvertErrors` (type, required, enum).
#[tokio::test(flavor = "multi_thread")]
async fn invalid_custom_objects_are_rejected_with_causes() {
    let (_sim, east, _dir) = sim().await;
    let client = east.client().await.unwrap();
    create_crd(&client, widget_crd()).await;
    let api = widgets(&client, "default");
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "bad"},
        "spec": {"mode": "Medium"},
        "status": {"ready": "yes"},
    }))
    .unwrap();
    let err = api.create(&PostParams::default(), &bad).await.unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status
            .message
            .starts_with("Widget.example.com \"bad\" is invalid: ["),
        "{}",
        status.message
    );
    assert!(
        status.message.contains(
            "spec.mode: Unsupported value: \"Medium\": supported values: \"Fast\", \"Slow\""
        ),
        "{}",
        status.message
    );
    assert!(
        status.message.contains("spec.size: Required value"),
        "{}",
        status.message
    );
    assert!(
        status.message.contains(
            "status.ready: Invalid value: \"string\": status.ready in body must be of type boolean: \"string\""
        ),
        "{}",
        status.message
    );

    // An invalid CRD is rejected too (the name must be <plural>.<group>).
    let mut crd = widget_crd();
    crd["metadata"]["name"] = json!("gadgets.example.com");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let err = crds
        .create(
            &PostParams::default(),
            &serde_json::from_value(crd).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422 && s.message.contains("must be spec.names.plural+\".\"+spec.group")),
        "{err:?}"
    );
}

/// Watches of custom objects stream ADDED/MODIFIED/DELETED; deleting the CRD deletes every
/// object (the `customresourcecleanup` finalizer's work) and stops serving the type (404).
#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_crd_deletes_its_objects() {
    let (_sim, east, _dir) = sim().await;
    let client = east.client().await.unwrap();
    create_crd(&client, widget_crd()).await;
    let api = widgets(&client, "default");
    let stream = api.watch(&WatchParams::default(), "0").await.unwrap();
    let mut stream = stream.boxed();
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"size": 1},
    }))
    .unwrap();
    api.create(&PostParams::default(), &w).await.unwrap();
    let first = stream.try_next().await.unwrap().unwrap();
    assert!(matches!(first, WatchEvent::Added(ref o) if o.name_any() == "w"));

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    let next = stream.try_next().await.unwrap().unwrap();
    assert!(
        matches!(next, WatchEvent::Deleted(ref o) if o.name_any() == "w"),
        "{next:?}"
    );
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );

    // Recreating the CRD serves an empty collection again.
    create_crd(&client, widget_crd()).await;
    assert!(
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// The MCS CRDs (KEP-1645) as linkplane installs them: `ServiceImport` validation of
/// `spec.type`'s enum and `ips`'s `maxItems`, and `ServiceExport` status conditions as a
/// `map` list keyed by `type` (server-side apply merges them by key).
#[tokio::test(flavor = "multi_thread")]
async fn the_mcs_crds_validate_and_merge_like_upstream() {
    let (_sim, east, _dir) = sim().await;
    let client = east.client().await.unwrap();
    for y in [SERVICE_EXPORT_CRD, SERVICE_IMPORT_CRD] {
        let v: Value = serde_saphyr::from_str(y).unwrap();
        create_crd(&client, v).await;
    }
    let gvk = |k: &str, p: &str| {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("multicluster.x-k8s.io", "v1alpha1", k),
            p,
        )
    };
    let imports = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "default",
        &gvk("ServiceImport", "serviceimports"),
    );
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
        "metadata": {"name": "web"},
        "spec": {"type": "LoadBalancer", "ips": ["10.0.0.1", "10.0.0.2"], "ports": [{"port": 80}]},
    }))
    .unwrap();
    let err = imports
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err();
    let kube::Error::Api(s) = err else { panic!() };
    assert_eq!(s.code, 422);
    assert!(
        s.message
            .contains("spec.ips: Too many: 2: must have at most 1 items"),
        "{}",
        s.message
    );
    assert!(
        s.message
            .contains("spec.type: Unsupported value: \"LoadBalancer\""),
        "{}",
        s.message
    );

    let exports = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "default",
        &gvk("ServiceExport", "serviceexports"),
    );
    let ex: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
        "metadata": {"name": "web"},
    }))
    .unwrap();
    exports.create(&PostParams::default(), &ex).await.unwrap();
    let cond = |ty: &str, status: &str| {
        json!({"type": ty, "status": status, "reason": "Test", "message": "",
               "lastTransitionTime": "2025-01-01T00:00:00Z"})
    };
    let apply = |conds: Vec<Value>, manager: &str| {
        let body = json!({
            "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
            "metadata": {"name": "web"}, "status": {"conditions": conds},
        });
        let exports = exports.clone();
        let pp = PatchParams::apply(manager).force();
        async move {
            exports
                .patch_status("web", &pp, &Patch::Apply(body))
                .await
                .unwrap()
        }
    };
    apply(vec![cond("Valid", "True")], "a").await;
    let merged = apply(vec![cond("Ready", "True")], "b").await;
    let types: Vec<&str> = merged.data["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["Valid", "Ready"],
        "map list merged by key across managers"
    );
    let mut dup = merged.clone();
    dup.data["status"]["conditions"] = json!([cond("Valid", "True"), cond("Valid", "False")]);
    let err = exports
        .replace_status("web", &PostParams::default(), &dup)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422 && s.message.contains("status.conditions[1]: Duplicate value: {\"type\":\"Valid\"}")),
        "{err:?}"
    );
}

/// Server-side apply of a `map` list on `/status`: an element the manager no longer applies
/// is removed (structured-merge-diff: a list-map element is owned by its key fields).
#[tokio::test(flavor = "multi_thread")]
async fn apply_drops_map_list_elements_no_longer_applied() {
    let (_sim, east, _dir) = sim().await;
    let client = east.client().await.unwrap();
    for y in [SERVICE_EXPORT_CRD, SERVICE_IMPORT_CRD] {
        let v: Value = serde_saphyr::from_str(y).unwrap();
        create_crd(&client, v).await;
    }
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("multicluster.x-k8s.io", "v1alpha1", "ServiceImport"),
        "serviceimports",
    );
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), "default", &ar);
    let pp = PatchParams::apply("m").force();
    let base = json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
                      "metadata": {"name": "web"}});
    let mut spec = base.clone();
    spec["spec"] = json!({"type": "ClusterSetIP", "ports": [{"port": 80}]});
    api.patch("web", &pp, &Patch::Apply(spec)).await.unwrap();
    // A status apply of a missing object is 404 (only the main resource is created).
    let err = api
        .patch_status("nope", &pp, &Patch::Apply(base.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );
    let mut st = base.clone();
    st["status"] = json!({"clusters": [{"cluster": "a"}, {"cluster": "b"}]});
    api.patch_status("web", &pp, &Patch::Apply(st.clone()))
        .await
        .unwrap();
    st["status"] = json!({"clusters": [{"cluster": "a"}]});
    let got = api
        .patch_status("web", &pp, &Patch::Apply(st))
        .await
        .unwrap();
    assert_eq!(got.data["status"]["clusters"], json!([{"cluster": "a"}]));
    assert_eq!(
        got.data["spec"]["type"], "ClusterSetIP",
        "the main resource's fields stay"
    );
}

async fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .env("KUBECACHEDIR", kubeconfig.with_extension("cache"))
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn ok(kubeconfig: &Path, args: &[&str]) -> String {
    let (success, stdout, stderr) = kubectl(kubeconfig, args).await;
    assert!(success, "kubectl {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// The CRD lifecycle with `kubectl`: apply the CRD, wait for `Established`, apply an object,
/// `get` it by plural, short name and category (printer columns), `explain` it from the
/// published OpenAPI v3 schema, and delete the CRD.
#[tokio::test(flavor = "multi_thread")]
async fn kubectl_crd_lifecycle() {
    let (_sim, east, dir) = sim().await;
    let kc = east.kubeconfig_path();
    let crd_file = dir.path().join("crd.yaml");
    std::fs::write(&crd_file, SERVICE_IMPORT_CRD).unwrap();
    ok(&kc, &["apply", "-f", crd_file.to_str().unwrap()]).await;
    ok(
        &kc,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=10s",
            "crd/serviceimports.multicluster.x-k8s.io",
        ],
    )
    .await;
    let obj = dir.path().join("si.yaml");
    std::fs::write(
        &obj,
        "apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata:
  name: web
spec:
  type: ClusterSetIP
  ips: [10.100.0.1]
  ports:
  - {name: http, port: 80, protocol: TCP}
",
    )
    .unwrap();
    ok(&kc, &["apply", "-f", obj.to_str().unwrap()]).await;
    let out = ok(&kc, &["get", "serviceimports"]).await;
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "TYPE", "IP", "AGE"], "{out}");
    assert!(
        out.contains("web") && out.contains("ClusterSetIP") && out.contains("10.100.0.1"),
        "{out}"
    );
    let short = ok(&kc, &["get", "svcim", "web", "-o", "jsonpath={.spec.type}"]).await;
    assert_eq!(short, "ClusterSetIP");
    // Re-applying a changed manifest (client-side apply: a merge patch for custom types).
    std::fs::write(
        &obj,
        std::fs::read_to_string(&obj)
            .unwrap()
            .replace("ClusterSetIP", "Headless"),
    )
    .unwrap();
    ok(&kc, &["apply", "-f", obj.to_str().unwrap()]).await;
    let ty = ok(
        &kc,
        &[
            "get",
            "serviceimport.multicluster.x-k8s.io/web",
            "-o",
            "jsonpath={.spec.type}",
        ],
    )
    .await;
    assert_eq!(ty, "Headless");
    let explain = ok(&kc, &["explain", "serviceimports.spec.type"]).await;
    assert!(explain.contains("ClusterSetIP or Headless"), "{explain}");
    ok(
        &kc,
        &["delete", "crd", "serviceimports.multicluster.x-k8s.io"],
    )
    .await;
    let (success, _, stderr) = kubectl(&kc, &["get", "serviceimports"]).await;
    // Either discovery no longer lists the type or (from kubectl's discovery cache) the
    // collection answers 404, as against a real API server.
    assert!(
        !success
            && (stderr.contains("the server doesn't have a resource type")
                || stderr.contains("the server could not find the requested resource")),
        "{stderr}"
    );
}
