//! The Helm chart (`charts/linkplane`), rendered by a real Helm.
//!
//! Helm (and kubectl) come from `scripts/lib/helm.sh`, which installs pinned, checksum-verified
//! binaries into `target/tools` on first use; when that is impossible these tests fail, they never
//! skip. What is checked: `helm lint --strict`; every rendered document parses and carries what
//! Kubernetes requires for its kind, with cross-references (selectors, named ports, roleRefs,
//! backends) resolved; `values.schema.json` rejects bad values at install time; the default render
//! is byte-identical to `charts/linkplane/tests/golden/default.yaml` (regenerate with
//! `UPDATE_GOLDEN=1 cargo nextest run -p linkplane-e2e --test chart`); the chart maps exactly the
//! environment variables `linkplane serve --help` lists.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
};

use base64::Engine as _;
use linkplane_e2e::{binary, cmd, manifests, read_to_string, repo_root, tools};
use serde_json::Value;

const RELEASE: &str = "linkplane";
const NAMESPACE: &str = "linkplane";

fn chart_dir() -> PathBuf {
    repo_root().join("charts/linkplane")
}

fn values_file(name: &str) -> PathBuf {
    chart_dir().join("tests/values").join(name)
}

/// `helm template` with the given extra arguments; returns the whole captured output.
fn helm_template(args: &[&str]) -> cmd::Output {
    let home = tempfile::tempdir().expect("temp dir");
    let mut c = tools::helm(home.path()).expect("helm is installable (scripts/lib/helm.sh)");
    c.args([
        "template",
        RELEASE,
        "charts/linkplane",
        "--namespace",
        NAMESPACE,
    ])
    .args(args);
    cmd::run(&mut c).expect("helm runs")
}

/// Renders with values files (relative to `charts/linkplane/tests/values`) and `--set`s.
fn render(values: &[&str], sets: &[&str]) -> String {
    let mut args = Vec::new();
    let paths: Vec<String> = values
        .iter()
        .map(|v| values_file(v).display().to_string())
        .collect();
    for p in &paths {
        args.extend(["--values", p.as_str()]);
    }
    for s in sets {
        args.extend(["--set", s]);
    }
    let out = helm_template(&args);
    assert!(
        out.success,
        "{} failed:\n{}{}",
        out.command, out.stdout, out.stderr
    );
    out.stdout
}

fn render_objects(values: &[&str], sets: &[&str]) -> Vec<Value> {
    let text = render(values, sets);
    let objs = manifests::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    validate_all(&objs);
    objs
}

/// A values file written to a temp dir, for rejection cases.
fn temp_values(yaml: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("values.yaml");
    std::fs::write(&path, yaml).expect("write values");
    let p = path.display().to_string();
    (dir, p)
}

/// Asserts that installing with `yaml` (on top of a valid database URL) fails, mentioning `needle`.
#[track_caller]
fn assert_rejected(yaml: &str, needle: &str) {
    let (_dir, path) = temp_values(yaml);
    let out = helm_template(&[
        "--values",
        &values_file("default.yaml").display().to_string(),
        "--values",
        &path,
    ]);
    assert!(
        !out.success,
        "helm accepted bad values:\n{yaml}\n--- rendered ---\n{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(needle),
        "helm rejected\n{yaml}\nbut its message does not mention {needle:?}:\n{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Per-kind validation: what the API server would require, plus cross-references inside the
// release. An unknown kind fails, so a new template cannot slip in unchecked.

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{}: {pointer} must be a non-empty string",
                manifests::id(obj)
            )
        })
}

fn arr_at<'a>(obj: &'a Value, pointer: &str) -> &'a Vec<Value> {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| panic!("{}: {pointer} must be a non-empty list", manifests::id(obj)))
}

fn map_at<'a>(obj: &'a Value, pointer: &str) -> &'a serde_json::Map<String, Value> {
    obj.pointer(pointer)
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| panic!("{}: {pointer} must be a non-empty map", manifests::id(obj)))
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_dns_subdomain(s)
}

fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && (s.is_empty()
            || (s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && s.as_bytes()[0].is_ascii_alphanumeric()
                && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()))
}

fn port_number(v: &Value, what: &str) -> u64 {
    let p = v
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: port must be an integer, got {v}"));
    assert!((1..=65535).contains(&p), "{what}: port {p} out of range");
    p
}

/// `matchLabels` ⊆ `labels`.
fn selects(selector: &serde_json::Map<String, Value>, labels: &Value) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn validate_common(obj: &Value) {
    let id = manifests::id(obj);
    str_at(obj, "/apiVersion");
    str_at(obj, "/kind");
    let name = str_at(obj, "/metadata/name");
    assert!(
        is_dns_subdomain(name),
        "{id}: name {name:?} is not a DNS subdomain"
    );
    let ns = str_at(obj, "/metadata/namespace");
    assert!(
        is_dns_label(ns),
        "{id}: namespace {ns:?} is not a DNS label"
    );
    let labels = map_at(obj, "/metadata/labels");
    for (k, v) in labels {
        let v = v
            .as_str()
            .unwrap_or_else(|| panic!("{id}: label {k} is not a string"));
        assert!(
            is_label_value(v),
            "{id}: label {k}={v:?} is not a valid label value"
        );
    }
    assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm", "{id}");
    if let Some(ann) = obj.pointer("/metadata/annotations") {
        for (k, v) in ann.as_object().expect("annotations are a map") {
            assert!(v.is_string(), "{id}: annotation {k} is not a string");
        }
    }
}

fn validate_pod_spec(owner: &Value, spec: &Value) {
    let id = manifests::id(owner);
    let volumes: BTreeSet<&str> = spec["volumes"]
        .as_array()
        .map(|v| v.iter().map(|v| str_at(v, "/name")).collect())
        .unwrap_or_default();
    for c in arr_at(spec, "/containers") {
        let cname = str_at(c, "/name");
        assert!(is_dns_label(cname), "{id}: container name {cname:?}");
        str_at(c, "/image");
        let ports: BTreeSet<&str> = c["ports"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        port_number(&p["containerPort"], &id);
                        str_at(p, "/name")
                    })
                    .collect()
            })
            .unwrap_or_default();
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if let Some(p) = c.get(probe) {
                let port = &p["httpGet"]["port"];
                match port.as_str() {
                    Some(named) => assert!(
                        ports.contains(named),
                        "{id}: {probe} uses port {named:?}, not declared"
                    ),
                    None => {
                        port_number(port, &id);
                    }
                }
                str_at(p, "/httpGet/path");
            }
        }
        for e in c["env"].as_array().into_iter().flatten() {
            let name = str_at(e, "/name");
            assert!(
                e.get("value").is_some_and(Value::is_string) || e.get("valueFrom").is_some(),
                "{id}: env {name} has neither a string value nor valueFrom"
            );
            if let Some(r) = e.pointer("/valueFrom/secretKeyRef") {
                str_at(r, "/name");
                str_at(r, "/key");
            }
        }
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            let v = str_at(m, "/name");
            assert!(volumes.contains(v), "{id}: mount of undeclared volume {v}");
            assert!(str_at(m, "/mountPath").starts_with('/'), "{id}: mountPath");
        }
        let sc = &c["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true, "{id}/{cname}: runAsNonRoot");
        assert_eq!(
            sc["readOnlyRootFilesystem"], true,
            "{id}/{cname}: readOnlyRootFilesystem"
        );
        assert_eq!(
            sc["allowPrivilegeEscalation"], false,
            "{id}/{cname}: allowPrivilegeEscalation"
        );
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{id}/{cname}: caps"
        );
        assert_eq!(
            sc["seccompProfile"]["type"], "RuntimeDefault",
            "{id}/{cname}: seccomp"
        );
    }
    let psc = &spec["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true, "{id}: pod runAsNonRoot");
    assert_ne!(psc["runAsUser"], 0, "{id}: pod runs as root");
}

/// Validates every object, and the references between them.
fn validate_all(objs: &[Value]) {
    assert!(!objs.is_empty(), "nothing rendered");
    let mut seen = BTreeSet::new();
    for obj in objs {
        validate_common(obj);
        let id = manifests::id(obj);
        assert!(seen.insert(id.clone()), "{id} rendered twice");
        let api = str_at(obj, "/apiVersion");
        let kind = str_at(obj, "/kind");
        let expected_api = match kind {
            "ConfigMap" | "Secret" | "Service" | "ServiceAccount" => "v1",
            "Deployment" => "apps/v1",
            "Job" => "batch/v1",
            "Role" | "RoleBinding" => "rbac.authorization.k8s.io/v1",
            "Ingress" | "NetworkPolicy" => "networking.k8s.io/v1",
            "PodDisruptionBudget" => "policy/v1",
            "ServiceMonitor" => "monitoring.coreos.com/v1",
            other => panic!("{id}: kind {other} has no checks here; add them"),
        };
        assert_eq!(api, expected_api, "{id}: apiVersion");
        match kind {
            "ConfigMap" => {
                for (k, v) in map_at(obj, "/data") {
                    assert!(v.is_string(), "{id}: data.{k} must be a string, got {v}");
                }
            }
            "Secret" => {
                for (k, v) in map_at(obj, "/data") {
                    let s = v.as_str().unwrap_or_default();
                    base64::engine::general_purpose::STANDARD
                        .decode(s)
                        .unwrap_or_else(|e| panic!("{id}: data.{k} is not base64: {e}"));
                }
            }
            "ServiceAccount" => {}
            "Deployment" => {
                let sel = map_at(obj, "/spec/selector/matchLabels");
                assert!(
                    selects(sel, &obj["spec"]["template"]["metadata"]["labels"]),
                    "{id}: selector does not match the pod template labels"
                );
                validate_pod_spec(obj, &obj["spec"]["template"]["spec"]);
            }
            "Job" => {
                let spec = &obj["spec"]["template"]["spec"];
                let rp = str_at(spec, "/restartPolicy");
                assert!(
                    ["Never", "OnFailure"].contains(&rp),
                    "{id}: restartPolicy {rp}"
                );
                validate_pod_spec(obj, spec);
            }
            "Service" => {
                let sel = map_at(obj, "/spec/selector");
                let pods: Vec<_> = manifests::of_kind(objs, "Deployment")
                    .into_iter()
                    .filter(|d| selects(sel, &d["spec"]["template"]["metadata"]["labels"]))
                    .collect();
                assert_eq!(pods.len(), 1, "{id}: selects {} Deployments", pods.len());
                let container_ports: Vec<&Value> =
                    pods[0]["spec"]["template"]["spec"]["containers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                        .collect();
                for p in arr_at(obj, "/spec/ports") {
                    port_number(&p["port"], &id);
                    let target = &p["targetPort"];
                    let found = container_ports
                        .iter()
                        .any(|cp| cp["name"] == *target || cp["containerPort"] == *target);
                    assert!(found, "{id}: targetPort {target} is no container port");
                }
            }
            "Role" => {
                for r in arr_at(obj, "/rules") {
                    arr_at(r, "/apiGroups");
                    arr_at(r, "/resources");
                    arr_at(r, "/verbs");
                }
            }
            "RoleBinding" => {
                assert_eq!(
                    str_at(obj, "/roleRef/apiGroup"),
                    "rbac.authorization.k8s.io"
                );
                assert_eq!(
                    str_at(obj, "/roleRef/kind"),
                    "Role",
                    "{id}: only namespaced roles"
                );
                let role = str_at(obj, "/roleRef/name");
                let ns = str_at(obj, "/metadata/namespace");
                assert!(
                    manifests::of_kind(objs, "Role")
                        .iter()
                        .any(|r| r["metadata"]["name"] == role && r["metadata"]["namespace"] == ns),
                    "{id}: roleRef {role} is not rendered in {ns}"
                );
                for s in arr_at(obj, "/subjects") {
                    assert_eq!(str_at(s, "/kind"), "ServiceAccount", "{id}");
                    str_at(s, "/name");
                    str_at(s, "/namespace");
                }
            }
            "Ingress" => {
                for rule in arr_at(obj, "/spec/rules") {
                    for p in arr_at(rule, "/http/paths") {
                        assert!(str_at(p, "/path").starts_with('/'), "{id}: path");
                        str_at(p, "/pathType");
                        let svc = str_at(p, "/backend/service/name");
                        let port = str_at(p, "/backend/service/port/name");
                        assert!(
                            manifests::of_kind(objs, "Service").iter().any(|s| {
                                s["metadata"]["name"] == svc
                                    && s["spec"]["ports"]
                                        .as_array()
                                        .is_some_and(|ps| ps.iter().any(|x| x["name"] == port))
                            }),
                            "{id}: backend {svc}:{port} is not a rendered Service port"
                        );
                    }
                }
            }
            "NetworkPolicy" => {
                map_at(obj, "/spec/podSelector/matchLabels");
                arr_at(obj, "/spec/policyTypes");
            }
            "PodDisruptionBudget" => {
                map_at(obj, "/spec/selector/matchLabels");
                let min = obj["spec"].get("minAvailable").is_some();
                let max = obj["spec"].get("maxUnavailable").is_some();
                assert!(
                    min ^ max,
                    "{id}: exactly one of minAvailable/maxUnavailable"
                );
            }
            "ServiceMonitor" => {
                map_at(obj, "/spec/selector/matchLabels");
                for e in arr_at(obj, "/spec/endpoints") {
                    str_at(e, "/port");
                    str_at(e, "/path");
                }
            }
            _ => unreachable!("checked above"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn the_pinned_real_helm_is_installed() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = cmd::run_ok(
        tools::helm(home.path())
            .expect("helm installs")
            .args(["version", "--short"]),
    )
    .expect("helm version");
    if std::env::var_os("LINKPLANE_HELM").is_none() {
        assert!(
            out.stdout.starts_with(tools::HELM_VERSION),
            "expected helm {}, got {}",
            tools::HELM_VERSION,
            out.stdout
        );
    }
}

#[test]
fn chart_passes_helm_lint_strict() {
    let home = tempfile::tempdir().expect("temp dir");
    for values in [
        &["default.yaml"][..],
        &["all-features.yaml"],
        &["default.yaml", "all-secrets.yaml"],
    ] {
        let mut args = vec![
            "lint".to_string(),
            "--strict".into(),
            "charts/linkplane".into(),
        ];
        for v in values {
            args.extend(["--values".into(), values_file(v).display().to_string()]);
        }
        let out = cmd::run(tools::helm(home.path()).expect("helm installs").args(&args))
            .expect("helm runs");
        assert!(
            out.success,
            "helm lint with {values:?}:\n{}{}",
            out.stdout, out.stderr
        );
        assert!(out.stdout.contains("0 chart(s) failed"), "{}", out.stdout);
    }
}

#[test]
fn default_values_render_the_committed_golden_file() {
    let rendered = render(&["default.yaml"], &[]);
    let golden = chart_dir().join("tests/golden/default.yaml");
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&golden, &rendered).expect("write golden file");
    }
    let want = read_to_string(&golden).expect("golden file (create it with UPDATE_GOLDEN=1)");
    if rendered != want {
        let first = rendered
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(rendered.lines().count().min(want.lines().count()));
        panic!(
            "the default render differs from {} from line {} on:\n  rendered: {:?}\n  golden:   {:?}\n\
             If the change is intended, regenerate it: UPDATE_GOLDEN=1 cargo nextest run -p linkplane-e2e --test chart",
            golden.display(),
            first + 1,
            rendered.lines().nth(first),
            want.lines().nth(first),
        );
    }
}

#[test]
fn default_render_is_valid_and_has_the_expected_objects() {
    let objs = render_objects(&["default.yaml"], &[]);
    let kinds: BTreeMap<String, usize> = objs.iter().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(o["kind"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        m
    });
    let want: BTreeMap<String, usize> = [
        ("ConfigMap", 1),
        ("Deployment", 1),
        ("PodDisruptionBudget", 1),
        ("Role", 1),
        ("RoleBinding", 1),
        ("Secret", 1),
        ("Service", 1),
        ("ServiceAccount", 1),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(kinds, want);

    let deploy = manifests::one(&objs, "Deployment").expect("deployment");
    let c = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["args"], serde_json::json!(["serve"]));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(c["image"], "example.invalid/linkplane:0.1.0");
    assert!(c["resources"]["requests"]["memory"].is_string());

    let secret = manifests::one(&objs, "Secret").expect("secret");
    let url = base64::engine::general_purpose::STANDARD
        .decode(str_at(secret, "/data/database-url"))
        .expect("base64");
    assert_eq!(
        String::from_utf8(url).expect("utf8"),
        "postgres://linkplane:change-me@postgres.linkplane.svc:5432/linkplane"
    );
    let cm = manifests::one(&objs, "ConfigMap").expect("configmap");
    assert_eq!(
        cm["data"]["LINKPLANE_NO_MIGRATE"], "false",
        "migrates on start by default"
    );
    assert_eq!(cm["data"]["LINKPLANE_LISTEN"], "0.0.0.0:8080");
}

#[test]
fn every_optional_feature_renders_valid_manifests() {
    let objs = render_objects(&["all-features.yaml"], &[]);
    for kind in [
        "ServiceMonitor",
        "NetworkPolicy",
        "Ingress",
        "PodDisruptionBudget",
        "Job",
    ] {
        assert_eq!(manifests::of_kind(&objs, kind).len(), 1, "one {kind}");
    }
    assert!(
        manifests::of_kind(&objs, "Secret").is_empty(),
        "existingSecret: the chart creates no Secret"
    );
    let deploy = manifests::one(&objs, "Deployment").expect("deployment");
    let pod = &deploy["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(
        c["image"],
        "registry.example.com/platform/linkplane@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    assert_eq!(
        c["ports"][0]["containerPort"], 9090,
        "port taken from config.listen"
    );
    assert_eq!(pod["serviceAccountName"], "linkplane-sa");
    let db = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "DATABASE_URL")
        .expect("DATABASE_URL env");
    assert_eq!(db["valueFrom"]["secretKeyRef"]["name"], "linkplane-secrets");
    assert_eq!(db["valueFrom"]["secretKeyRef"]["key"], "url");

    let cm = manifests::one(&objs, "ConfigMap").expect("configmap");
    assert_eq!(
        cm["data"]["LINKPLANE_TLS_CERT_FILE"],
        "/etc/linkplane/tls/tls.crt"
    );
    assert_eq!(
        cm["data"]["LINKPLANE_TLS_KEY_FILE"],
        "/etc/linkplane/tls/tls.key"
    );
    assert_eq!(
        cm["data"]["LINKPLANE_CORS_ALLOWED_ORIGINS"],
        "https://dash.example.com,https://ops.example.com"
    );
    assert_eq!(
        cm["data"]["LINKPLANE_MAX_BODY_BYTES"], "4194304",
        "no float formatting"
    );
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert_eq!(c[probe]["httpGet"]["scheme"], "HTTPS", "{probe} with TLS");
    }
    let tls = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == "tls")
        .expect("tls volume");
    assert_eq!(tls["secret"]["secretName"], "linkplane-tls");

    let np = manifests::one(&objs, "NetworkPolicy").expect("netpol");
    assert_eq!(
        np["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    let pdb = manifests::one(&objs, "PodDisruptionBudget").expect("pdb");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let sm = manifests::one(&objs, "ServiceMonitor").expect("servicemonitor");
    assert_eq!(sm["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["scheme"], "https");
}

#[test]
fn job_migrations_run_migrate_in_a_pre_upgrade_hook_and_the_server_skips_them() {
    let objs = render_objects(&["all-features.yaml"], &[]);
    let job = manifests::one(&objs, "Job").expect("migration job");
    assert_eq!(
        job["metadata"]["annotations"]["helm.sh/hook"],
        "pre-install,pre-upgrade"
    );
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["args"], serde_json::json!(["migrate"]));
    assert!(
        c["env"]
            .as_array()
            .expect("env")
            .iter()
            .any(|e| e["name"] == "DATABASE_URL"
                && e["valueFrom"]["secretKeyRef"]["name"] == "linkplane-secrets"),
        "the Job reads the database URL from the existing Secret"
    );
    let cm = manifests::one(&objs, "ConfigMap").expect("configmap");
    assert_eq!(cm["data"]["LINKPLANE_NO_MIGRATE"], "true");
}

#[test]
fn rbac_only_reads_secrets_in_named_namespaces_and_nothing_cluster_wide() {
    for values in ["default.yaml", "all-features.yaml"] {
        let objs = render_objects(&[values], &[]);
        for o in &objs {
            let kind = o["kind"].as_str().unwrap_or_default();
            assert!(
                !kind.starts_with("Cluster"),
                "{values}: {}",
                manifests::id(o)
            );
        }
        for role in manifests::of_kind(&objs, "Role") {
            let rules = role["rules"].as_array().expect("rules");
            assert_eq!(rules.len(), 1, "{}", manifests::id(role));
            assert_eq!(rules[0]["apiGroups"], serde_json::json!([""]));
            assert_eq!(rules[0]["resources"], serde_json::json!(["secrets"]));
            assert_eq!(
                rules[0]["verbs"],
                serde_json::json!(["get", "list", "watch"])
            );
        }
    }
    let objs = render_objects(&["all-features.yaml"], &[]);
    let namespaces: BTreeSet<&str> = manifests::of_kind(&objs, "Role")
        .iter()
        .map(|r| str_at(r, "/metadata/namespace"))
        .collect();
    assert_eq!(
        namespaces,
        BTreeSet::from(["cluster-credentials", NAMESPACE])
    );
    let role = manifests::of_kind(&objs, "Role")[0];
    assert_eq!(
        role["rules"][0]["resourceNames"],
        serde_json::json!(["cluster-credentials-east", "cluster-credentials-west"])
    );
}

#[test]
fn optional_secrets_become_files_in_the_mounted_secret() {
    let objs = render_objects(&["default.yaml", "all-secrets.yaml"], &[]);
    let secret = manifests::one(&objs, "Secret").expect("secret");
    let keys: BTreeSet<&str> = secret["data"]
        .as_object()
        .expect("data")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "bootstrap-admin-token",
            "credentials-key",
            "database-url",
            "git-ssh-key",
            "git-token",
            "webhook-secret"
        ])
    );
    let deploy = manifests::one(&objs, "Deployment").expect("deployment");
    let pod = &deploy["spec"]["template"]["spec"];
    let env: BTreeMap<&str, &Value> = pod["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| (e["name"].as_str().unwrap_or_default(), &e["value"]))
        .collect();
    assert_eq!(
        env["LINKPLANE_WEBHOOK_SECRET_FILE"],
        "/etc/linkplane/secrets/webhook-secret"
    );
    assert_eq!(
        env["LINKPLANE_GIT_TOKEN_FILE"],
        "/etc/linkplane/secrets/git-token"
    );
    assert_eq!(
        env["LINKPLANE_GIT_SSH_KEY_FILE"],
        "/etc/linkplane/secrets/git-ssh-key"
    );
    assert_eq!(
        env["LINKPLANE_CREDENTIALS_KEY_FILE"],
        "/etc/linkplane/secrets/credentials-key"
    );
    let token = pod["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "LINKPLANE_BOOTSTRAP_ADMIN_TOKEN")
        .expect("bootstrap token env");
    assert_eq!(
        token["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "linkplane", "key": "bootstrap-admin-token"})
    );
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == "secrets")
        .expect("secrets volume");
    assert_eq!(volume["secret"]["secretName"], "linkplane");
    assert_eq!(volume["secret"]["defaultMode"], 0o440);

    // Without values, no file flag points at a missing file.
    let objs = render_objects(&["default.yaml"], &[]);
    let deploy = manifests::one(&objs, "Deployment").expect("deployment");
    let names: Vec<&str> = deploy["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    // The replica name comes from the pod (downward API), not from a file.
    assert_eq!(names, ["DATABASE_URL", "LINKPLANE_REPLICA_NAME"]);
}

#[test]
fn rendering_without_a_database_url_fails_with_a_clear_message() {
    let out = helm_template(&[]);
    assert!(
        !out.success,
        "rendered without a database URL:\n{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("set secrets.databaseUrl (DATABASE_URL) or secrets.existingSecret"),
        "{}",
        out.stderr
    );
}

#[test]
fn schema_rejects_unknown_keys_anywhere() {
    assert_rejected(
        "replicas: 2\n",
        "additional properties 'replicas' not allowed",
    );
    assert_rejected(
        "config:\n  logLevel: debug\n",
        "additional properties 'logLevel'",
    );
}

#[test]
fn schema_rejects_values_of_the_wrong_type() {
    assert_rejected("replicaCount: two\n", "/replicaCount");
    assert_rejected(
        "config:\n  databaseMaxConnections: \"16\"\n",
        "/config/databaseMaxConnections",
    );
    assert_rejected("rbac:\n  create: \"yes\"\n", "/rbac/create");
}

#[test]
fn schema_rejects_out_of_range_numbers() {
    assert_rejected("replicaCount: -1\n", "/replicaCount");
    assert_rejected(
        "config:\n  databaseMaxConnections: 0\n",
        "/config/databaseMaxConnections",
    );
    assert_rejected("service:\n  port: 70000\n", "/service/port");
}

#[test]
fn schema_rejects_bad_enums_and_formats() {
    assert_rejected("config:\n  logFormat: xml\n", "/config/logFormat");
    assert_rejected("config:\n  listen: \"8080\"\n", "/config/listen");
    assert_rejected(
        "secrets:\n  databaseUrl: mysql://db/linkplane\n",
        "/secrets/databaseUrl",
    );
    assert_rejected("migrations:\n  mode: sometimes\n", "/migrations/mode");
    assert_rejected(
        "config:\n  resyncInterval: \"600\"\n",
        "/config/resyncInterval",
    );
    assert_rejected("config:\n  gitRef: main\n", "/config/gitRef");
    assert_rejected(
        "secrets:\n  bootstrapAdminToken: too-short\n",
        "/secrets/bootstrapAdminToken",
    );
    assert_rejected(
        "secrets:\n  credentialsKey: not-a-key\n",
        "/secrets/credentialsKey",
    );
    assert_rejected(
        "config:\n  corsAllowedOrigins: [dash.example.com]\n",
        "/config/corsAllowedOrigins/0",
    );
    assert_rejected("image:\n  digest: latest\n", "/image/digest");
    assert_rejected(
        "rbac:\n  extraNamespaces: [Not_A_Namespace]\n",
        "/rbac/extraNamespaces/0",
    );
}

#[test]
fn schema_rejects_job_migrations_without_an_existing_secret() {
    assert_rejected("migrations:\n  mode: job\n", "/secrets/existingSecret");
}

#[test]
fn pdb_min_available_wins_over_the_default_max_unavailable() {
    let objs = render_objects(
        &["default.yaml"],
        &[
            "podDisruptionBudget.enabled=true",
            "podDisruptionBudget.minAvailable=50%",
        ],
    );
    let pdb = manifests::one(&objs, "PodDisruptionBudget").expect("pdb");
    assert_eq!(pdb["spec"]["minAvailable"], "50%");
    assert!(pdb["spec"].get("maxUnavailable").is_none());

    let objs = render_objects(&["default.yaml"], &["podDisruptionBudget.enabled=true"]);
    let pdb = manifests::one(&objs, "PodDisruptionBudget").expect("pdb");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);

    assert_rejected(
        "podDisruptionBudget:\n  enabled: true\n  maxUnavailable: null\n",
        "needs podDisruptionBudget.minAvailable or podDisruptionBudget.maxUnavailable",
    );
}

/// Environment variables named in `linkplane serve --help` (`[env: NAME=...]`).
fn server_env_vars() -> BTreeSet<String> {
    let bin = binary::linkplane().expect("build linkplane");
    let out = cmd::run_ok(std::process::Command::new(bin).args(["serve", "--help"]))
        .expect("linkplane serve --help");
    let vars: BTreeSet<String> = out
        .stdout
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| {
            let end = rest.find(['=', ']'])?;
            Some(rest[..end].to_string())
        })
        .collect();
    assert!(
        vars.contains("DATABASE_URL"),
        "unexpected help format:\n{}",
        out.stdout
    );
    vars
}

/// Environment variables the chart sets on the server container (ConfigMap keys + env entries).
fn chart_env_vars(objs: &[Value]) -> BTreeSet<String> {
    let cm = manifests::one(objs, "ConfigMap").expect("configmap");
    let deploy = manifests::one(objs, "Deployment").expect("deployment");
    let extra: BTreeSet<&str> = ["RUST_BACKTRACE"].into();
    cm["data"]
        .as_object()
        .expect("data")
        .keys()
        .cloned()
        .chain(
            deploy["spec"]["template"]["spec"]["containers"][0]["env"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["name"].as_str())
                .filter(|n| !extra.contains(n))
                .map(String::from),
        )
        .collect()
}

/// Server variables the chart deliberately leaves unset, each with its reason.
const NOT_MAPPED: &[(&str, &str)] = &[
    (
        "LINKPLANE_WEBHOOK_SECRET",
        "the chart passes the webhook secret as a file (LINKPLANE_WEBHOOK_SECRET_FILE), \
         so it never sits in the pod's environment",
    ),
    (
        "LINKPLANE_GIT_TOKEN_ENV",
        "the chart passes the Git token as a file (LINKPLANE_GIT_TOKEN_FILE)",
    ),
    (
        "LINKPLANE_CREDENTIALS_KEY",
        "the chart passes the credential-encryption key as a file (LINKPLANE_CREDENTIALS_KEY_FILE)",
    ),
];

#[test]
fn chart_maps_exactly_the_flags_of_linkplane_serve() {
    let server = server_env_vars();
    let renders = [
        vec!["default.yaml"],
        vec!["all-features.yaml"],
        vec!["default.yaml", "all-secrets.yaml"],
    ];
    let mut everything = BTreeSet::new();
    for values in &renders {
        let chart = chart_env_vars(&render_objects(values, &[]));
        let unknown: Vec<_> = chart.difference(&server).collect();
        assert!(
            unknown.is_empty(),
            "{values:?}: the chart sets {unknown:?}, which `linkplane serve` does not read"
        );
        everything.extend(chart);
    }
    for (var, why) in NOT_MAPPED {
        assert!(
            server.contains(*var),
            "{var} is listed as deliberately unmapped ({why}) but the server no longer reads it"
        );
        assert!(
            !everything.contains(*var),
            "{var} is set although listed as unmapped"
        );
        everything.insert(var.to_string());
    }
    let unmapped: Vec<_> = server.difference(&everything).collect();
    assert!(
        unmapped.is_empty(),
        "`linkplane serve` reads {unmapped:?}, which the chart does not map: add each to \
         charts/linkplane/values.yaml (config.* or secrets.*), templates/configmap.yaml or \
         _helpers.tpl (linkplane.secretEnv), values.schema.json and tests/values/all-features.yaml"
    );
}

// ---------------------------------------------------------------------------------------------
// Applying to a cluster: kubesim speaks the Kubernetes API for core kinds (Namespace, Service,
// Secret, ConfigMap, ...); the rendered objects of those kinds go through real `kubectl apply
// --server-side` and are read back. Kinds kubesim does not serve (Deployment, RBAC, ...) are
// covered by the render checks above.

/// `kubectl` against `kubeconfig`, requiring success.
fn kubectl_ok(kubeconfig: &std::path::Path, home: &std::path::Path, args: &[&str]) -> cmd::Output {
    cmd::run_ok(
        tools::kubectl(kubeconfig, home)
            .expect("kubectl is installable (scripts/lib/helm.sh)")
            .args(args),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Kinds the cluster serves, as `(group/version, kind)` pairs, from `kubectl api-resources`.
fn served_kinds(
    kubeconfig: &std::path::Path,
    home: &std::path::Path,
) -> BTreeSet<(String, String)> {
    let out = kubectl_ok(
        kubeconfig,
        home,
        &["api-resources", "--no-headers", "-o", "wide"],
    );
    // Columns: NAME SHORTNAMES? APIVERSION NAMESPACED KIND VERBS [CATEGORIES]. SHORTNAMES may be
    // empty, so find APIVERSION as the column before "true"/"false".
    out.stdout
        .lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let i = cols.iter().position(|c| *c == "true" || *c == "false")?;
            Some((cols.get(i - 1)?.to_string(), cols.get(i + 1)?.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_core_objects_apply_to_a_kubesim_cluster_with_kubectl_server_side() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = kubesim::Simulator::start(kubesim::SimOptions {
        clusters: vec!["management".into()],
        dir: dir.path().join("sim"),
        ..kubesim::SimOptions::default()
    })
    .await
    .expect("kubesim starts");
    let cluster = sim.cluster("management").expect("cluster");
    let kubeconfig = cluster.kubeconfig_path();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");

    let served = served_kinds(&kubeconfig, &home);
    let objs = render_objects(&["default.yaml"], &[]);
    let (applicable, left_out): (Vec<&Value>, Vec<&Value>) = objs.iter().partition(|o| {
        served.contains(&(
            o["apiVersion"].as_str().unwrap_or_default().to_string(),
            o["kind"].as_str().unwrap_or_default().to_string(),
        ))
    });
    let applied_kinds: BTreeSet<&str> = applicable
        .iter()
        .filter_map(|o| o["kind"].as_str())
        .collect();
    assert!(
        ["ConfigMap", "Secret", "Service"]
            .iter()
            .all(|k| applied_kinds.contains(k)),
        "kubesim should serve ConfigMap, Secret and Service; it serves {served:?}"
    );
    eprintln!(
        "applying {} objects; not served by kubesim: {:?}",
        applicable.len(),
        left_out
            .iter()
            .map(|o| manifests::id(o))
            .collect::<Vec<_>>()
    );

    let manifest = dir.path().join("rendered.yaml");
    let text: String = std::iter::once(
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
            .to_string(),
    )
    .chain(applicable.iter().map(|o| o.to_string()))
    .collect::<Vec<_>>()
    .join("\n---\n");
    std::fs::write(&manifest, text).expect("write manifest");
    let manifest = manifest.display().to_string();

    for round in 0..2 {
        // The second round re-applies unchanged objects: server-side apply must be idempotent.
        let out = kubectl_ok(
            &kubeconfig,
            &home,
            &[
                "apply",
                "--server-side",
                "--field-manager=helm",
                "-f",
                &manifest,
            ],
        );
        for o in &applicable {
            // kubectl names a grouped kind with its group, as against a real API server:
            // `role.rbac.authorization.k8s.io/x`, but `service/x` for the core group.
            let kind = o["kind"].as_str().unwrap_or_default().to_lowercase();
            let resource = match o["apiVersion"].as_str().unwrap_or_default().split_once('/') {
                Some((group, _)) => format!("{kind}.{group}"),
                None => kind,
            };
            let line = format!(
                "{resource}/{} serverside-applied",
                o["metadata"]["name"].as_str().unwrap_or_default()
            );
            assert!(
                out.stdout.contains(&line),
                "round {round}: missing {line:?} in:\n{}",
                out.stdout
            );
        }
    }

    for o in &applicable {
        let kind = o["kind"].as_str().unwrap_or_default().to_lowercase();
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        let got = kubectl_ok(
            &kubeconfig,
            &home,
            &[
                "get",
                &kind,
                name,
                "-n",
                NAMESPACE,
                "-o",
                "json",
                "--show-managed-fields",
            ],
        );
        let live: Value = serde_json::from_str(&got.stdout).expect("kubectl -o json");
        assert_eq!(
            live["metadata"]["labels"], o["metadata"]["labels"],
            "{kind}/{name} labels"
        );
        match kind.as_str() {
            "configmap" | "secret" => {
                assert_eq!(live["data"], o["data"], "{kind}/{name} data");
            }
            "service" => {
                assert_eq!(live["spec"]["selector"], o["spec"]["selector"]);
                assert_eq!(
                    live["spec"]["ports"][0]["port"],
                    o["spec"]["ports"][0]["port"]
                );
                assert_eq!(live["spec"]["ports"][0]["targetPort"], "http");
                assert!(
                    live["spec"]["clusterIP"].is_string(),
                    "the API server allocated a clusterIP"
                );
            }
            _ => assert_eq!(live["metadata"]["name"], name),
        }
        let managers: Vec<&str> = live["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["manager"].as_str())
            .collect();
        assert!(
            managers.contains(&"helm"),
            "{kind}/{name}: field managers {managers:?}"
        );
    }
    sim.shutdown().await;
}

#[test]
fn the_manifest_checks_catch_a_weakened_security_context_or_a_broken_reference() {
    // The per-kind checks above must be able to fail: feed them renders that are valid for Helm but
    // wrong for us, and expect each to be caught.
    let cases: [(&[&str], &str); 3] = [
        (
            &["securityContext.readOnlyRootFilesystem=false"],
            "readOnlyRootFilesystem",
        ),
        (
            &["podSecurityContext.runAsNonRoot=false"],
            "pod runAsNonRoot",
        ),
        (
            &["livenessProbe.httpGet.port=metrics"],
            "livenessProbe uses port",
        ),
    ];
    for (sets, needle) in cases {
        let text = render(&["default.yaml"], sets);
        let objs = manifests::parse(&text).expect("parses");
        let caught = std::panic::catch_unwind(|| validate_all(&objs))
            .expect_err(&format!("{sets:?} passed the checks"));
        let message = caught
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| caught.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        assert!(message.contains(needle), "{sets:?}: {message}");
    }
}
