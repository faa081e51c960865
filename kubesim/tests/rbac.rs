//! Service accounts, tokens and RBAC through the real kube-rs client: TokenRequest, the token
//! controller's legacy Secrets, authentication (401) and authorization (403) of service-account
//! tokens against stored rules, SelfSubjectAccessReview, and RBAC object validation.

// Helpers outside #[test] functions panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::core::Status;
use kube::{Client, ResourceExt};
use kubesim::SimCluster;
use serde_json::{Value, json};

mod support;
use support::sim;

/// A client that authenticates with `token` instead of the kubeconfig's admin token, without
/// retries so tests see every error.
async fn client_as(cluster: &SimCluster, token: &str) -> Client {
    let kc = kube::config::Kubeconfig::from_yaml(&cluster.kubeconfig_with_token(token)).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    config.default_retry = false;
    Client::try_from(config).unwrap()
}

fn api_error(err: kube::Error) -> Status {
    match err {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

async fn setup(admin: &Client) {
    Api::<Namespace>::all(admin.clone())
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "shop"}})),
        )
        .await
        .unwrap();
    Api::<ServiceAccount>::namespaced(admin.clone(), "shop")
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "robot"}})),
        )
        .await
        .unwrap();
}

async fn request_token(admin: &Client, seconds: i64) -> Result<TokenRequest, kube::Error> {
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "shop");
    let tr: TokenRequest = from(json!({"spec": {"expirationSeconds": seconds}}));
    sas.create_subresource("token", "robot", &PostParams::default(), &tr)
        .await
}

async fn can_i(client: &Client, attrs: Value) -> (bool, Option<String>) {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let review = api
        .create(
            &PostParams::default(),
            &from(json!({"spec": {"resourceAttributes": attrs}})),
        )
        .await
        .unwrap();
    let status = review.status.unwrap();
    (status.allowed, status.reason)
}

/// TokenRequest (`pkg/registry/core/serviceaccount/storage/token.go`, validation in
/// `pkg/apis/authentication/validation`): defaults (one hour, the API server's audience),
/// the ten-minute minimum, the upstream claims, and 404 for a missing service account. A
/// token stops authenticating when its service account is deleted
/// (`pkg/serviceaccount/jwt.go` validator).
#[tokio::test]
async fn token_requests_issue_bound_tokens() {
    let (_sim, east, _dir) = sim().await;
    let admin = east.client().await.unwrap();
    setup(&admin).await;
    let tr = request_token(&admin, 3600).await.unwrap();
    let spec = tr.spec;
    assert_eq!(
        spec.audiences,
        vec!["https://kubernetes.default.svc.cluster.local".to_string()]
    );
    assert_eq!(spec.expiration_seconds, Some(3600));
    let status = tr.status.unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(status.token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "system:serviceaccount:shop:robot");
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["name"], "robot");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );

    let err = api_error(request_token(&admin, 60).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message
            .contains("spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"),
        "{}",
        err.message
    );
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "shop");
    let err = api_error(
        sas.create_subresource::<TokenRequest, TokenRequest>(
            "token",
            "ghost",
            &PostParams::default(),
            &from(json!({})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "serviceaccounts \"ghost\" not found")
    );

    // The token authenticates (a 403, not a 401) until its service account is gone.
    let robot = client_as(&east, &status.token).await;
    let services: Api<Service> = Api::namespaced(robot.clone(), "shop");
    let err = api_error(services.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(err.code, 403);
    sas.delete("robot", &DeleteParams::default()).await.unwrap();
    let err = api_error(services.list(&ListParams::default()).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (401, "Unauthorized"));
}

/// The token controller (`pkg/controller/serviceaccount/tokens_controller.go`) fills a
/// `kubernetes.io/service-account-token` Secret with `token`, `namespace` and `ca.crt`; the
/// token authenticates while the Secret holds it (`pkg/serviceaccount/legacy.go`). Such a
/// Secret must name its service account (`ValidateSecret`).
#[tokio::test]
async fn legacy_token_secrets_are_filled_and_authenticate_while_they_exist() {
    let (_sim, east, _dir) = sim().await;
    let admin = east.client().await.unwrap();
    setup(&admin).await;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "shop");
    let err = api_error(
        secrets
            .create(
                &PostParams::default(),
                &from(json!({"metadata": {"name": "bad"}, "type": "kubernetes.io/service-account-token"})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .contains("metadata.annotations[kubernetes.io/service-account.name]: Required value"),
        "{}",
        err.message
    );
    secrets
        .create(
            &PostParams::default(),
            &from(json!({
                "metadata": {"name": "robot-token",
                             "annotations": {"kubernetes.io/service-account.name": "robot"}},
                "type": "kubernetes.io/service-account-token",
            })),
        )
        .await
        .unwrap();
    let filled = secrets.get("robot-token").await.unwrap();
    let data = filled.data.clone().unwrap();
    assert_eq!(data["namespace"].0, b"shop");
    assert!(String::from_utf8_lossy(&data["ca.crt"].0).contains("BEGIN CERTIFICATE"));
    let sa_uid = Api::<ServiceAccount>::namespaced(admin.clone(), "shop")
        .get("robot")
        .await
        .unwrap()
        .uid();
    assert_eq!(
        filled
            .annotations()
            .get("kubernetes.io/service-account.uid"),
        sa_uid.as_ref()
    );
    let token = String::from_utf8(data["token"].0.clone()).unwrap();

    let robot = client_as(&east, &token).await;
    let (allowed, _) = can_i(
        &robot,
        json!({"verb": "list", "resource": "services", "namespace": "shop"}),
    )
    .await;
    assert!(
        !allowed,
        "authenticated as the service account, which may not list"
    );
    secrets
        .delete("robot-token", &DeleteParams::default())
        .await
        .unwrap();
    let err = api_error(
        Api::<Service>::namespaced(robot, "shop")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 401, "the Secret is gone, so is the token");
}

/// RBAC authorization (`plugin/pkg/auth/authorizer/rbac/rbac.go`): ClusterRoleBindings apply
/// everywhere, `*/subresource` rules, `resourceNames` (create has no name, so never
/// matches), denials as `403` Status with `details` (`apierrors.NewForbidden`), and
/// SelfSubjectAccessReview reasons naming the binding that allowed (`authorizingVisitor`).
#[tokio::test]
async fn rbac_rules_decide_requests_and_reviews() {
    let (_sim, east, _dir) = sim().await;
    let admin = east.client().await.unwrap();
    setup(&admin).await;
    let token = request_token(&admin, 3600)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let robot = client_as(&east, &token).await;

    let denied = api_error(
        Api::<ConfigMap>::namespaced(robot.clone(), "shop")
            .get("settings")
            .await
            .unwrap_err(),
    );
    assert_eq!((denied.code, denied.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        denied.message,
        "configmaps \"settings\" is forbidden: User \"system:serviceaccount:shop:robot\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"shop\""
    );
    let details = denied.details.unwrap();
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("settings", "configmaps")
    );

    Api::<ClusterRole>::all(admin.clone())
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "status-and-one-cm"}, "rules": [
                {"verbs": ["get", "patch"], "apiGroups": [""], "resources": ["*/status"]},
                {"verbs": ["get", "update", "create"], "apiGroups": [""], "resources": ["configmaps"],
                 "resourceNames": ["settings"]},
            ]})),
        )
        .await
        .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "robot-everywhere"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "status-and-one-cm"},
                "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "shop"}]})),
        )
        .await
        .unwrap();
    let attrs = |verb: &str, resource: &str, sub: &str, ns: &str, name: &str| json!({"verb": verb, "resource": resource, "subresource": sub, "namespace": ns, "name": name});
    let (allowed, reason) =
        can_i(&robot, attrs("get", "services", "status", "default", "web")).await;
    assert!(allowed);
    assert_eq!(
        reason.as_deref(),
        Some(
            "RBAC: allowed by ClusterRoleBinding \"robot-everywhere\" of ClusterRole \"status-and-one-cm\" to ServiceAccount \"robot/shop\""
        )
    );
    assert!(
        !can_i(&robot, attrs("get", "services", "", "default", "web"))
            .await
            .0
    );
    assert!(
        can_i(
            &robot,
            attrs("get", "configmaps", "", "kube-system", "settings")
        )
        .await
        .0
    );
    assert!(
        !can_i(
            &robot,
            attrs("get", "configmaps", "", "kube-system", "other")
        )
        .await
        .0
    );
    assert!(
        !can_i(&robot, attrs("create", "configmaps", "", "shop", ""))
            .await
            .0,
        "create carries no name"
    );

    // The same rules decide real requests.
    let cms: Api<ConfigMap> = Api::namespaced(robot.clone(), "shop");
    let err = api_error(
        cms.create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "settings"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 403);
    Api::<ConfigMap>::namespaced(admin.clone(), "shop")
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "settings"}})),
        )
        .await
        .unwrap();
    cms.get("settings").await.unwrap();

    // A Role binding in `shop` grants list and watch there only; the watch streams.
    Api::<Role>::namespaced(admin.clone(), "shop")
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "watcher"},
                "rules": [{"verbs": ["list", "watch"], "apiGroups": [""], "resources": ["configmaps"]}]})),
        )
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), "shop")
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "robot-watches"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "watcher"},
                "subjects": [{"kind": "ServiceAccount", "name": "robot"}]})),
        )
        .await
        .unwrap();
    let (allowed, reason) = can_i(&robot, attrs("watch", "configmaps", "", "shop", "")).await;
    assert!(allowed);
    assert_eq!(
        reason.as_deref(),
        Some(
            "RBAC: allowed by RoleBinding \"robot-watches/shop\" of Role \"watcher\" to ServiceAccount \"robot/shop\""
        )
    );
    assert_eq!(
        cms.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    let mut stream = Box::pin(
        cms.watch(&WatchParams::default().timeout(5), "0")
            .await
            .unwrap(),
    );
    use futures::StreamExt;
    match stream.next().await {
        Some(Ok(WatchEvent::Added(cm))) => assert_eq!(cm.name_any(), "settings"),
        other => panic!("expected ADDED settings, got {other:?}"),
    }
    let elsewhere: Api<ConfigMap> = Api::namespaced(robot.clone(), "default");
    assert_eq!(
        api_error(elsewhere.list(&ListParams::default()).await.unwrap_err()).code,
        403
    );
    let all: Api<ConfigMap> = Api::all(robot.clone());
    let err = api_error(all.list(&ListParams::default()).await.unwrap_err());
    assert!(
        err.message.ends_with(
            "cannot list resource \"configmaps\" in API group \"\" at the cluster scope"
        ),
        "{}",
        err.message
    );

    // The admin is never restricted, and discovery is open to every authenticated caller.
    assert!(
        can_i(&admin, attrs("delete", "namespaces", "", "", "kube-system"))
            .await
            .0
    );
    robot.apiserver_version().await.unwrap();
    // The public helper builds the same kind of client.
    let same = east.client_with_token(&token).await.unwrap();
    Api::<ConfigMap>::namespaced(same, "shop")
        .get("settings")
        .await
        .unwrap();
}

/// RBAC validation (`pkg/apis/rbac/validation/validation.go`): rules need verbs, API groups
/// and resources; bindings need a supported roleRef and subjects; roleRef is immutable.
/// Names are path segments, so `system:` names are valid.
#[tokio::test]
async fn rbac_objects_are_validated() {
    let (_sim, east, _dir) = sim().await;
    let admin = east.client().await.unwrap();
    setup(&admin).await;
    let roles: Api<Role> = Api::namespaced(admin.clone(), "shop");
    let err = api_error(
        roles
            .create(
                &PostParams::default(),
                &from(json!({"metadata": {"name": "bad"}, "rules": [
                    {"verbs": [], "apiGroups": [""], "resources": ["services"]},
                    {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
                    {"verbs": ["get"]},
                ]})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .starts_with("Role.rbac.authorization.k8s.io \"bad\" is invalid: ["),
        "{}",
        err.message
    );
    let fields: Vec<String> = err
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert_eq!(
        fields,
        vec![
            "rules[0].verbs",
            "rules[1].nonResourceURLs",
            "rules[2].apiGroups",
            "rules[2].resources"
        ]
    );
    roles
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "system:reader"},
                "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["services"]}]})),
        )
        .await
        .unwrap();

    let crbs: Api<ClusterRoleBinding> = Api::all(admin.clone());
    let err = api_error(
        crbs.create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "bad"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "x"},
                "subjects": [{"kind": "ServiceAccount", "name": "robot"}, {"kind": "Robot", "name": "r"}]})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains(
            "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\""
        ),
        "{}",
        err.message
    );
    assert!(
        err.message
            .contains("subjects[0].namespace: Required value"),
        "{}",
        err.message
    );
    assert!(
        err.message
            .contains("subjects[1].kind: Unsupported value: \"Robot\""),
        "{}",
        err.message
    );

    let rbs: Api<RoleBinding> = Api::namespaced(admin.clone(), "shop");
    let mut rb: RoleBinding = rbs
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "b"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "system:reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "robot"}]})),
        )
        .await
        .unwrap();
    rb.role_ref.name = "other".into();
    let err = api_error(
        rbs.replace("b", &PostParams::default(), &rb)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains("cannot change roleRef"),
        "{}",
        err.message
    );
}
