//! The real `kubectl` binary against kubesim: discovery, create, client-side and server-side
//! apply, get with label selectors, get --watch, every patch type and delete.

// Helpers outside #[test] functions panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::process::Command;

mod support;
use support::sim;

fn kubectl_cmd(kubeconfig: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        // Keep kubectl's discovery cache out of the user's home.
        .env("KUBECACHEDIR", kubeconfig.with_extension("cache"))
        .stdin(Stdio::null());
    cmd
}

/// Runs kubectl; returns (success, stdout, stderr).
async fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let out = kubectl_cmd(kubeconfig, args).output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs kubectl and fails the test unless it succeeds; returns stdout.
async fn ok(kubeconfig: &Path, args: &[&str]) -> String {
    let (success, stdout, stderr) = kubectl(kubeconfig, args).await;
    assert!(success, "kubectl {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

fn manifest(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web, tier: frontend}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: admin, port: 9990}
";

#[tokio::test(flavor = "multi_thread")]
async fn api_resources_lists_every_served_type() {
    let (_sim, east, _dir) = sim().await;
    let out = ok(&east.kubeconfig_path(), &["api-resources", "--no-headers"]).await;
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for want in [
        "configmaps",
        "endpoints",
        "events",
        "namespaces",
        "secrets",
        "services",
        "leases",
        "endpointslices",
    ] {
        assert!(names.contains(&want), "{want} missing from:\n{out}");
    }
    let svc = out.lines().find(|l| l.starts_with("services")).unwrap();
    assert!(
        svc.contains("svc") && svc.contains("true") && svc.contains("Service"),
        "{svc}"
    );
    let ver = ok(&east.kubeconfig_path(), &["version"]).await;
    assert!(ver.contains("Server Version: v1.33.0-kubesim"), "{ver}");
}

#[tokio::test(flavor = "multi_thread")]
async fn create_get_with_label_selectors_and_delete() {
    let (_sim, east, dir) = sim().await;
    let kc = east.kubeconfig_path();
    let f = manifest(dir.path(), "svc.yaml", SERVICE);
    let out = ok(&kc, &["create", "-f", f.to_str().unwrap()]).await;
    assert_eq!(out.trim(), "service/web created");
    let (success, _, stderr) = kubectl(&kc, &["create", "-f", f.to_str().unwrap()]).await;
    assert!(!success);
    assert!(
        stderr.contains("AlreadyExists") || stderr.contains("already exists"),
        "{stderr}"
    );
    let other = manifest(
        dir.path(),
        "other.yaml",
        &SERVICE
            .replace("name: web", "name: api")
            .replace("tier: frontend", "tier: backend"),
    );
    ok(&kc, &["create", "-f", other.to_str().unwrap()]).await;

    let out = ok(&kc, &["get", "svc", "-l", "tier=frontend"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("NAME")
            && lines[0].contains("CLUSTER-IP")
            && lines[0].contains("PORT(S)"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("web ") && lines[1].contains("80/TCP,9990/TCP"),
        "{out}"
    );
    let out = ok(
        &kc,
        &[
            "get",
            "svc",
            "-l",
            "tier in (frontend,backend)",
            "-o",
            "name",
        ],
    )
    .await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["service/api", "service/web"]
    );
    let out = ok(
        &kc,
        &[
            "get",
            "svc",
            "-l",
            "tier!=frontend",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    )
    .await;
    assert_eq!(out, "api");
    let out = ok(
        &kc,
        &["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"],
    )
    .await;
    assert!(out.starts_with("10.96."), "{out}");

    let out = ok(&kc, &["delete", "svc", "web"]).await;
    assert_eq!(out.trim(), "service \"web\" deleted");
    let (success, _, stderr) = kubectl(&kc, &["get", "svc", "web"]).await;
    assert!(!success);
    assert!(
        stderr.contains("NotFound") && stderr.contains("services \"web\" not found"),
        "{stderr}"
    );
    let out = ok(&kc, &["delete", "-f", other.to_str().unwrap()]).await;
    assert!(out.contains("service \"api\" deleted"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_side_apply_creates_then_three_way_merges() {
    let (_sim, east, dir) = sim().await;
    let kc = east.kubeconfig_path();
    let f = manifest(dir.path(), "svc.yaml", SERVICE);
    assert_eq!(
        ok(&kc, &["apply", "-f", f.to_str().unwrap()]).await.trim(),
        "service/web created"
    );
    let last = ok(
        &kc,
        &[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}",
        ],
    )
    .await;
    assert!(last.contains("\"targetPort\":8080"), "{last}");

    // Someone else adds a label; the manifest changes a port and drops another.
    ok(&kc, &["label", "svc", "web", "added-by=hand"]).await;
    let changed = SERVICE
        .replace("targetPort: 8080", "targetPort: 8081")
        .replace("  - {name: admin, port: 9990}\n", "");
    let f = manifest(dir.path(), "svc.yaml", &changed);
    assert_eq!(
        ok(&kc, &["apply", "-f", f.to_str().unwrap()]).await.trim(),
        "service/web configured"
    );
    let ports = ok(
        &kc,
        &[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={range .spec.ports[*]}{.name}={.targetPort} {end}",
        ],
    )
    .await;
    assert_eq!(
        ports.trim(),
        "http=8081",
        "the dropped port is gone, the kept one merged"
    );
    let labels = ok(
        &kc,
        &[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.metadata.labels.added-by}",
        ],
    )
    .await;
    assert_eq!(labels, "hand", "fields not in the manifest are left alone");
    assert_eq!(
        ok(&kc, &["apply", "-f", f.to_str().unwrap()]).await.trim(),
        "service/web unchanged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_side_apply_reports_conflicts_and_forces() {
    let (_sim, east, dir) = sim().await;
    let kc = east.kubeconfig_path();
    let f = manifest(dir.path(), "svc.yaml", SERVICE);
    let path = f.to_str().unwrap().to_string();
    assert_eq!(
        ok(&kc, &["apply", "--server-side", "-f", &path])
            .await
            .trim(),
        "service/web serverside-applied"
    );
    let changed = manifest(
        dir.path(),
        "svc2.yaml",
        &SERVICE.replace("targetPort: 8080", "targetPort: 7070"),
    );
    let changed = changed.to_str().unwrap().to_string();
    let (success, _, stderr) = kubectl(
        &kc,
        &[
            "apply",
            "--server-side",
            "--field-manager=rival",
            "-f",
            &changed,
        ],
    )
    .await;
    assert!(!success);
    assert!(
        stderr.contains("Apply failed with 1 conflict: conflict with \"kubectl\""),
        "{stderr}"
    );
    assert!(
        stderr.contains(".spec.ports[port=80].targetPort"),
        "{stderr}"
    );
    ok(
        &kc,
        &[
            "apply",
            "--server-side",
            "--field-manager=rival",
            "--force-conflicts",
            "-f",
            &changed,
        ],
    )
    .await;
    let out = ok(
        &kc,
        &[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.spec.ports[0].targetPort}",
        ],
    )
    .await;
    assert_eq!(out, "7070");
    let managers = ok(
        &kc,
        &[
            "get",
            "svc",
            "web",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ],
    )
    .await;
    assert!(
        managers.contains("kubectl") && managers.contains("rival"),
        "{managers}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_supports_strategic_merge_and_json_patches() {
    let (_sim, east, dir) = sim().await;
    let kc = east.kubeconfig_path();
    let f = manifest(dir.path(), "svc.yaml", SERVICE);
    ok(&kc, &["create", "-f", f.to_str().unwrap()]).await;
    let out = ok(
        &kc,
        &[
            "patch",
            "svc",
            "web",
            "-p",
            r#"{"spec":{"ports":[{"port":9990,"targetPort":9991}]}}"#,
        ],
    )
    .await;
    assert_eq!(out.trim(), "service/web patched");
    let ports = ok(
        &kc,
        &[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={range .spec.ports[*]}{.port}:{.targetPort} {end}",
        ],
    )
    .await;
    assert_eq!(
        ports.trim(),
        "80:8080 9990:9991",
        "strategic merge keyed the port list by port"
    );
    ok(
        &kc,
        &[
            "patch",
            "svc",
            "web",
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"tier":null,"env":"prod"}}}"#,
        ],
    )
    .await;
    ok(
        &kc,
        &[
            "patch",
            "svc",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/ports/0/targetPort","value":8181}]"#,
        ],
    )
    .await;
    let out = ok(
        &kc,
        &[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.metadata.labels.env}/{.metadata.labels.tier}/{.spec.ports[0].targetPort}",
        ],
    )
    .await;
    assert_eq!(out, "prod//8181");
    let (success, _, stderr) = kubectl(
        &kc,
        &[
            "patch",
            "svc",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"test","path":"/spec/type","value":"NodePort"}]"#,
        ],
    )
    .await;
    assert!(!success, "a failed JSON-patch test is refused: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn get_watch_prints_events_as_they_happen() {
    let (_sim, east, dir) = sim().await;
    let kc = east.kubeconfig_path();
    let mut child = kubectl_cmd(
        &kc,
        &[
            "get",
            "svc",
            "--watch",
            "--output-watch-events",
            "--no-headers",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .kill_on_drop(true)
    .spawn()
    .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Give the watch time to start before the first change.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let f = manifest(dir.path(), "svc.yaml", SERVICE);
    ok(&kc, &["create", "-f", f.to_str().unwrap()]).await;
    ok(&kc, &["label", "svc", "web", "changed=yes"]).await;
    ok(&kc, &["delete", "svc", "web"]).await;
    let mut events = Vec::new();
    while events.len() < 3 {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("watch events arrive")
            .unwrap()
            .expect("kubectl keeps watching");
        let mut words = line.split_whitespace();
        events.push(format!(
            "{} {}",
            words.next().unwrap_or(""),
            words.next().unwrap_or("")
        ));
    }
    assert_eq!(events, vec!["ADDED web", "MODIFIED web", "DELETED web"]);
    child.kill().await.unwrap();
}

/// Runs a `kubectl create …` generator with `-o json` and parses what the server answered.
async fn create_json(kubeconfig: &Path, args: &[&str]) -> serde_json::Value {
    let mut full = vec!["create"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    let out = ok(kubeconfig, &full).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("kubectl {full:?}: {e}\n{out}"))
}

/// kubectl's generator sub-commands use client-go typed clients, which send built-in kinds as
/// protobuf (`application/vnd.kubernetes.protobuf`: the `k8s\0` magic and a `runtime.Unknown`
/// envelope, apimachinery `runtime/serializer/protobuf/protobuf.go`); the server answers in
/// JSON when the client also accepts it (`handlers/negotiation`). Pins that each sub-command
/// reaches the store with the fields it set and the server's defaults applied.
#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_generators_send_protobuf_and_work() {
    let (_sim, east, _dir) = sim().await;
    let kc = east.kubeconfig_path();

    // The request really is protobuf: kubectl logs its request headers at -v=8.
    let (success, _, stderr) = kubectl(&kc, &["create", "namespace", "shop", "-v=8"]).await;
    assert!(success, "{stderr}");
    assert!(
        stderr.lines().any(
            |l| l.contains("Content-Type") && l.contains("application/vnd.kubernetes.protobuf")
        ),
        "kubectl did not send protobuf:\n{stderr}"
    );
    let ns = serde_json::from_str::<serde_json::Value>(
        &ok(&kc, &["get", "namespace", "shop", "-o", "json"]).await,
    )
    .unwrap();
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["spec"]["finalizers"], serde_json::json!(["kubernetes"]));

    let ns = create_json(&kc, &["namespace", "team"]).await;
    assert_eq!(
        (ns["kind"].as_str(), ns["apiVersion"].as_str()),
        (Some("Namespace"), Some("v1"))
    );
    assert_eq!(ns["metadata"]["name"], "team");
    assert!(ns["metadata"]["uid"].is_string() && ns["metadata"]["creationTimestamp"].is_string());

    let secret = create_json(
        &kc,
        &[
            "secret",
            "generic",
            "creds",
            "-n",
            "shop",
            "--from-literal=user=admin",
            "--from-literal=pass=s3cr3t",
        ],
    )
    .await;
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["metadata"]["namespace"], "shop");
    assert_eq!(
        secret["data"],
        serde_json::json!({"user": "YWRtaW4=", "pass": "czNjcjN0"})
    );

    let cm = create_json(
        &kc,
        &[
            "configmap",
            "settings",
            "-n",
            "shop",
            "--from-literal=mode=fast",
            "--from-literal=empty=",
        ],
    )
    .await;
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["data"], serde_json::json!({"mode": "fast", "empty": ""}));

    let svc = create_json(
        &kc,
        &["service", "clusterip", "web", "-n", "shop", "--tcp=80:8080"],
    )
    .await;
    assert_eq!(svc["kind"], "Service");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["selector"], serde_json::json!({"app": "web"}));
    assert_eq!(svc["metadata"]["labels"], serde_json::json!({"app": "web"}));
    assert_eq!(
        svc["spec"]["ports"],
        serde_json::json!([{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}])
    );
    let ip = svc["spec"]["clusterIP"].as_str().unwrap();
    assert!(
        ip.starts_with("10.9"),
        "allocated from the service CIDR: {ip}"
    );
    assert_eq!(svc["spec"]["clusterIPs"], serde_json::json!([ip]));
    assert!(
        svc["spec"].get("publishNotReadyAddresses").is_none(),
        "omitempty fields stay omitted: {svc}"
    );
    let headless = create_json(
        &kc,
        &[
            "service",
            "clusterip",
            "db",
            "-n",
            "shop",
            "--clusterip=None",
        ],
    )
    .await;
    assert_eq!(headless["spec"]["clusterIP"], "None");

    let sa = create_json(&kc, &["serviceaccount", "robot", "-n", "shop"]).await;
    assert_eq!(
        (sa["kind"].as_str(), sa["apiVersion"].as_str()),
        (Some("ServiceAccount"), Some("v1"))
    );
    assert_eq!(sa["metadata"]["namespace"], "shop");
    let listed = ok(&kc, &["get", "serviceaccounts", "-n", "shop", "-o", "name"]).await;
    assert!(
        listed.lines().any(|l| l == "serviceaccount/robot"),
        "{listed}"
    );

    // Errors answer protobuf requests as they answer JSON ones.
    let (success, _, stderr) = kubectl(&kc, &["create", "namespace", "shop"]).await;
    assert!(!success && stderr.contains("AlreadyExists"), "{stderr}");
}

/// Runs kubectl as a bearer token (kubectl's `--token` overrides the kubeconfig's).
async fn kubectl_as(kubeconfig: &Path, token: &str, args: &[&str]) -> (bool, String, String) {
    let mut full = args.to_vec();
    full.extend_from_slice(&["--token", token]);
    kubectl(kubeconfig, &full).await
}

/// `kubectl auth can-i` (a SelfSubjectAccessReview): "yes" with exit 0, "no" with exit 1.
async fn can_i(kubeconfig: &Path, token: &str, args: &[&str]) -> bool {
    let mut full = vec!["auth", "can-i"];
    full.extend_from_slice(args);
    let (success, stdout, stderr) = kubectl_as(kubeconfig, token, &full).await;
    let answer = stdout.trim();
    assert!(
        (success && answer == "yes") || (!success && answer == "no"),
        "kubectl auth can-i {args:?}: {stdout}\n{stderr}"
    );
    success
}

/// A service account's token (`kubectl create token`: the TokenRequest subresource,
/// kubernetes `pkg/registry/core/serviceaccount/storage/token.go`) is authorized by the RBAC
/// authorizer (`plugin/pkg/auth/authorizer/rbac/rbac.go`: verb, API group, resource,
/// namespace, resourceNames; a ClusterRole granted by a RoleBinding only in that namespace),
/// denials are upstream's `403` message (`responsewriters/errors.go` `forbiddenMessage`), and
/// `kubectl auth can-i` answers from the same rules (`--list`: the rule resolver's `RulesFor`).
/// kubectl sends the RBAC objects, the TokenRequest and the reviews as protobuf.
#[tokio::test(flavor = "multi_thread")]
async fn service_account_tokens_are_authorized_by_rbac() {
    let (_sim, east, _dir) = sim().await;
    let kc = east.kubeconfig_path();
    ok(&kc, &["create", "namespace", "shop"]).await;
    ok(&kc, &["create", "serviceaccount", "robot", "-n", "shop"]).await;
    ok(&kc, &["create", "configmap", "settings", "-n", "shop"]).await;
    ok(&kc, &["create", "configmap", "other", "-n", "shop"]).await;
    let token = ok(
        &kc,
        &["create", "token", "robot", "-n", "shop", "--duration=20m"],
    )
    .await
    .trim()
    .to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    // No binding yet: everything but discovery and reviews is forbidden.
    let (success, _, stderr) = kubectl_as(&kc, &token, &["get", "services", "-n", "shop"]).await;
    assert!(!success);
    assert!(
        stderr.contains(
            "Error from server (Forbidden): services is forbidden: User \"system:serviceaccount:shop:robot\" cannot list resource \"services\" in API group \"\" in the namespace \"shop\""
        ),
        "{stderr}"
    );
    assert!(!can_i(&kc, &token, &["list", "services", "-n", "shop"]).await);

    ok(
        &kc,
        &[
            "create",
            "role",
            "reader",
            "--verb=get,list,watch",
            "--resource=services",
            "-n",
            "shop",
        ],
    )
    .await;
    ok(
        &kc,
        &[
            "create",
            "rolebinding",
            "robot-reads",
            "--role=reader",
            "--serviceaccount=shop:robot",
            "-n",
            "shop",
        ],
    )
    .await;
    assert!(can_i(&kc, &token, &["list", "services", "-n", "shop"]).await);
    assert!(can_i(&kc, &token, &["watch", "services", "-n", "shop"]).await);
    assert!(
        !can_i(&kc, &token, &["create", "services", "-n", "shop"]).await,
        "verb"
    );
    assert!(
        !can_i(&kc, &token, &["list", "services", "-n", "default"]).await,
        "namespace"
    );
    assert!(
        !can_i(&kc, &token, &["list", "configmaps", "-n", "shop"]).await,
        "resource"
    );
    let (success, stdout, stderr) =
        kubectl_as(&kc, &token, &["get", "services", "-n", "shop"]).await;
    assert!(success, "{stdout}{stderr}");

    // resourceNames: one ConfigMap, not the other.
    ok(
        &kc,
        &[
            "create",
            "role",
            "one-cm",
            "--verb=get",
            "--resource=configmaps",
            "--resource-name=settings",
            "-n",
            "shop",
        ],
    )
    .await;
    ok(
        &kc,
        &[
            "create",
            "rolebinding",
            "robot-cm",
            "--role=one-cm",
            "--serviceaccount=shop:robot",
            "-n",
            "shop",
        ],
    )
    .await;
    let (success, _, stderr) =
        kubectl_as(&kc, &token, &["get", "configmap", "settings", "-n", "shop"]).await;
    assert!(success, "{stderr}");
    let (success, _, stderr) =
        kubectl_as(&kc, &token, &["get", "configmap", "other", "-n", "shop"]).await;
    assert!(!success);
    assert!(
        stderr.contains("configmaps \"other\" is forbidden: User \"system:serviceaccount:shop:robot\" cannot get resource \"configmaps\""),
        "{stderr}"
    );

    // A ClusterRole through a RoleBinding applies in the binding's namespace only.
    ok(
        &kc,
        &[
            "create",
            "clusterrole",
            "secret-reader",
            "--verb=get,list",
            "--resource=secrets",
        ],
    )
    .await;
    ok(
        &kc,
        &[
            "create",
            "rolebinding",
            "robot-secrets",
            "--clusterrole=secret-reader",
            "--serviceaccount=shop:robot",
            "-n",
            "shop",
        ],
    )
    .await;
    assert!(can_i(&kc, &token, &["list", "secrets", "-n", "shop"]).await);
    assert!(!can_i(&kc, &token, &["list", "secrets", "-n", "default"]).await);
    assert!(!can_i(&kc, &token, &["list", "secrets", "--all-namespaces"]).await);

    // `kubectl auth can-i --list` (a SelfSubjectRulesReview) lists what applies in `shop`.
    let (success, list, stderr) =
        kubectl_as(&kc, &token, &["auth", "can-i", "--list", "-n", "shop"]).await;
    assert!(success, "{stderr}");
    let services = list
        .lines()
        .find(|l| l.starts_with("services "))
        .unwrap_or_else(|| panic!("no services rule in:\n{list}"));
    assert!(services.contains("[get list watch]"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("configmaps ") && l.contains("[settings]")),
        "{list}"
    );
    assert!(!list.contains("namespaces"), "{list}");

    // The admin token stays all-powerful; the RBAC objects list like any other.
    let bindings = ok(&kc, &["get", "rolebindings", "-n", "shop", "-o", "name"]).await;
    assert_eq!(bindings.lines().count(), 3, "{bindings}");
    let out = ok(&kc, &["auth", "can-i", "delete", "namespaces"]).await;
    assert_eq!(out.trim(), "yes");

    // An unknown token is 401.
    let (success, _, stderr) = kubectl_as(&kc, "not-a-token", &["get", "services"]).await;
    assert!(!success);
    assert!(
        stderr.contains("Unauthorized") || stderr.contains("must be logged in"),
        "{stderr}"
    );
}

/// Every namespace gets a `default` ServiceAccount from the service-account controller
/// (kubernetes `pkg/controller/serviceaccount/serviceaccounts_controller.go`), so the first thing
/// a tutorial does after `kubectl create namespace`, `kubectl create token default`, works.
/// Upstream the controller creates it asynchronously (a client racing it can see a brief 404);
/// kubesim creates it in the same write, so this test cannot catch code that relies on it being
/// there at once.
#[tokio::test(flavor = "multi_thread")]
async fn every_namespace_has_a_default_service_account() {
    let (_sim, east, dir) = sim().await;
    let kc = east.kubeconfig_path();
    for ns in ["default", "kube-system", "kube-public"] {
        ok(&kc, &["get", "serviceaccount", "default", "-n", ns]).await;
    }
    ok(&kc, &["create", "namespace", "shop"]).await;
    let manifest_path = manifest(
        dir.path(),
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: applied\n",
    );
    ok(
        &kc,
        &[
            "apply",
            "--server-side",
            "-f",
            &manifest_path.display().to_string(),
        ],
    )
    .await;
    for ns in ["shop", "applied"] {
        let token = ok(&kc, &["create", "token", "default", "-n", ns])
            .await
            .trim()
            .to_string();
        assert_eq!(token.split('.').count(), 3, "a JWT in {ns}: {token}");
    }
}
