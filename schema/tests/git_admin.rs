//! Git source administration through the API (add, update, remove, pin, unpin, suspend,
//! resume), its role guards, the read-only flag-declared source, and the audit log every
//! mutation lands in.
#![allow(clippy::unwrap_used)]

mod support;

use linkplane_core::GitSource;
use linkplane_schema::{Api, Principal, Role};
use linkplane_store::{git_sources, tokens};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use support::{api, as_role};

async fn run(api: &Api, principal: Option<Principal>, query: &str) -> Value {
    serde_json::to_value(api.execute(query, principal).await).unwrap()
}

fn data(resp: &Value) -> &Value {
    assert!(resp.get("errors").is_none(), "errors: {}", resp["errors"]);
    &resp["data"]
}

fn code(resp: &Value) -> &str {
    resp["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {resp}"))
}

const ADD: &str = r#"mutation { addGitSource(input: {
    name: "fleet", url: "https://git.example.com/fleet.git", gitRef: "branch:prod",
    path: "clusters", pollInterval: "5m", selfHeal: true }) {
  name url gitRef path pollInterval selfHeal pinnedRevision suspended readOnly status } }"#;

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn operators_add_update_and_remove_git_sources(pool: sqlx::PgPool) {
    let api = api(pool.clone());
    let viewer = run(&api, as_role(Role::Viewer), ADD).await;
    assert_eq!(code(&viewer), "FORBIDDEN");
    let resp = run(&api, as_role(Role::Operator), ADD).await;
    assert_eq!(
        data(&resp)["addGitSource"],
        json!({"name": "fleet", "url": "https://git.example.com/fleet.git", "gitRef": "branch:prod",
               "path": "clusters", "pollInterval": "5m", "selfHeal": true, "pinnedRevision": null,
               "suspended": false, "readOnly": false, "status": "UNKNOWN"})
    );
    // Stored as the GitOps engine reads it.
    let mut conn = pool.acquire().await.unwrap();
    let stored = git_sources::get(&mut conn, "fleet").await.unwrap().unwrap();
    assert_eq!(stored.source.spec.path, "clusters");
    // The same name again.
    assert_eq!(
        code(&run(&api, as_role(Role::Operator), ADD).await),
        "CONFLICT"
    );
    // Invalid specs are refused with the reason.
    for (bad, why) in [
        (r#"name: "Bad_Name", url: "https://x/r.git""#, "name"),
        (
            r#"name: "x", url: "https://x/r.git", gitRef: "main""#,
            "gitRef",
        ),
        (r#"name: "x", url: "https://u:tok@x/r.git""#, "credentials"),
        (
            r#"name: "x", url: "https://x/r.git", pruneLimit: 0"#,
            "pruneLimit",
        ),
        (
            r#"name: "x", url: "https://x/r.git", pollInterval: "soon""#,
            "pollInterval",
        ),
    ] {
        let resp = run(
            &api,
            as_role(Role::Operator),
            &format!("mutation {{ addGitSource(input: {{ {bad} }}) {{ name }} }}"),
        )
        .await;
        assert_eq!(code(&resp), "BAD_USER_INPUT", "{bad}");
        assert!(
            resp["errors"][0]["message"].as_str().unwrap().contains(why),
            "{bad}: {resp}"
        );
    }
    // Credentials by reference name server files: admins only.
    let with_auth = r#"mutation { addGitSource(input: { name: "private", url: "https://x/r.git",
        auth: { tokenFile: "/etc/linkplane/git-token" } }) { name } }"#;
    assert_eq!(
        code(&run(&api, as_role(Role::Operator), with_auth).await),
        "FORBIDDEN"
    );
    data(&run(&api, as_role(Role::Admin), with_auth).await);
    // Update keeps the name; renaming is refused.
    let update = r#"mutation { updateGitSource(name: "fleet", input: {
        name: "fleet", url: "https://git.example.com/fleet.git", gitRef: "tag:v2" }) {
        gitRef path selfHeal } }"#;
    let resp = run(&api, as_role(Role::Operator), update).await;
    assert_eq!(
        data(&resp)["updateGitSource"],
        json!({"gitRef": "tag:v2", "path": ".", "selfHeal": false})
    );
    let rename = r#"mutation { updateGitSource(name: "fleet", input: {
        name: "other", url: "https://git.example.com/fleet.git" }) { name } }"#;
    assert_eq!(
        code(&run(&api, as_role(Role::Operator), rename).await),
        "BAD_USER_INPUT"
    );
    let missing = r#"mutation { updateGitSource(name: "nope", input: {
        name: "nope", url: "https://git.example.com/fleet.git" }) { name } }"#;
    assert_eq!(
        code(&run(&api, as_role(Role::Operator), missing).await),
        "NOT_FOUND"
    );
    let remove = r#"mutation { removeGitSource(name: "fleet") }"#;
    assert_eq!(
        data(&run(&api, as_role(Role::Operator), remove).await)["removeGitSource"],
        true
    );
    assert!(
        git_sources::get(&mut conn, "fleet")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        code(&run(&api, as_role(Role::Operator), remove).await),
        "NOT_FOUND"
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn the_flag_declared_source_is_read_only_but_can_be_pinned(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let source: GitSource =
        serde_json::from_value(json!({"name": "default", "spec": {"url": "file:///srv/fleet"}}))
            .unwrap();
    git_sources::upsert(&mut conn, &source).await.unwrap();
    git_sources::set_flag_source(&mut conn, Some("default"))
        .await
        .unwrap();
    let api = api(pool);
    let update = r#"mutation { updateGitSource(name: "default", input: {
        name: "default", url: "https://elsewhere/r.git" }) { name } }"#;
    let resp = run(&api, as_role(Role::Admin), update).await;
    assert_eq!(code(&resp), "READ_ONLY");
    assert!(
        resp["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("--git-*")
    );
    let resp = run(
        &api,
        as_role(Role::Admin),
        r#"mutation { removeGitSource(name: "default") }"#,
    )
    .await;
    assert_eq!(code(&resp), "READ_ONLY");
    // Operational state is the API's, whoever declares the spec (as for Git-owned links).
    let resp = run(
        &api,
        as_role(Role::Operator),
        r#"mutation { pinGitSource(source: "default", revision: "0123456789abcdef0123456789abcdef01234567") {
            readOnly pinnedRevision } }"#,
    )
    .await;
    assert_eq!(
        data(&resp)["pinGitSource"],
        json!({"readOnly": true, "pinnedRevision": "0123456789abcdef0123456789abcdef01234567"})
    );
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn pin_unpin_suspend_and_resume_change_the_source(pool: sqlx::PgPool) {
    let api = api(pool.clone());
    data(&run(&api, as_role(Role::Operator), ADD).await);
    for (m, bad) in [
        (
            r#"pinGitSource(source: "fleet", revision: "abc1234") { pinnedRevision }"#,
            false,
        ),
        (
            r#"pinGitSource(source: "fleet", revision: "not-a-commit") { pinnedRevision }"#,
            true,
        ),
    ] {
        let resp = run(
            &api,
            as_role(Role::Operator),
            &format!("mutation {{ {m} }}"),
        )
        .await;
        if bad {
            assert_eq!(code(&resp), "BAD_USER_INPUT");
        } else {
            assert_eq!(data(&resp)["pinGitSource"]["pinnedRevision"], "abc1234");
        }
    }
    let resp = run(
        &api,
        as_role(Role::Operator),
        r#"mutation { unpinGitSource(source: "fleet") { pinnedRevision } }"#,
    )
    .await;
    assert_eq!(data(&resp)["unpinGitSource"]["pinnedRevision"], Value::Null);
    let resp = run(
        &api,
        as_role(Role::Operator),
        r#"mutation { suspendGitSource(source: "fleet") { suspended } }"#,
    )
    .await;
    assert_eq!(data(&resp)["suspendGitSource"]["suspended"], true);
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        git_sources::get(&mut conn, "fleet")
            .await
            .unwrap()
            .unwrap()
            .suspended
    );
    let resp = run(
        &api,
        as_role(Role::Operator),
        r#"mutation { resumeGitSource(source: "fleet") { suspended } }"#,
    )
    .await;
    assert_eq!(data(&resp)["resumeGitSource"]["suspended"], false);
    for m in [
        r#"suspendGitSource(source: "nope") { name }"#,
        r#"pinGitSource(source: "nope", revision: "abc1234") { name }"#,
    ] {
        let resp = run(
            &api,
            as_role(Role::Operator),
            &format!("mutation {{ {m} }}"),
        )
        .await;
        assert_eq!(code(&resp), "NOT_FOUND", "{m}");
    }
    let resp = run(
        &api,
        as_role(Role::Viewer),
        r#"mutation { suspendGitSource(source: "fleet") { name } }"#,
    )
    .await;
    assert_eq!(code(&resp), "FORBIDDEN");
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn every_mutation_is_audited_without_its_secrets(pool: sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let (op_info, _) = tokens::issue(&mut conn, tokens::Role::Operator, "ci-bot")
        .await
        .unwrap();
    let (viewer_info, viewer_secret) = tokens::issue(&mut conn, tokens::Role::Viewer, "alice")
        .await
        .unwrap();
    assert!(!viewer_secret.expose_secret().is_empty());
    let operator = Some(Principal {
        token_id: Some(op_info.id),
        role: Role::Operator,
    });
    let viewer = Some(Principal {
        token_id: Some(viewer_info.id),
        role: Role::Viewer,
    });
    let api = api(pool);
    data(&run(&api, operator, ADD).await);
    // Refused by the role guard: recorded as FORBIDDEN.
    run(
        &api,
        viewer,
        r#"mutation { suspendGitSource(source: "fleet") { name } }"#,
    )
    .await;
    // A kubeconfig passed as a variable never reaches the log.
    let resp = api
        .execute(
            async_graphql::Request::new(
                r#"mutation ($k: String!) { setClusterCredentials(cluster: "east", kubeconfig: $k) { cluster } }"#,
            )
            .variables(async_graphql::Variables::from_json(
                json!({"k": "apiVersion: v1\nusers: [{user: {token: s3cr3t}}]"}),
            )),
            operator,
        )
        .await;
    assert!(!resp.errors.is_empty(), "no credentials key configured");
    // Queries are not audited.
    run(&api, operator, "{ gitSources { edges { cursor } } }").await;

    let log = run(
        &api,
        operator,
        "{ auditLog(first: 10) { edges { cursor node { who role mutation arguments result when } } pageInfo { hasNextPage } } }",
    )
    .await;
    let entries = data(&log)["auditLog"]["edges"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{log}");
    let node = |i: usize| &entries[i]["node"];
    // Newest first.
    assert_eq!(node(0)["mutation"], "setClusterCredentials");
    assert_eq!(node(0)["who"], "ci-bot");
    assert_eq!(node(0)["role"], "OPERATOR");
    assert_eq!(
        node(0)["arguments"],
        json!({"cluster": "east", "kubeconfig": "<redacted>"})
    );
    assert_eq!(node(0)["result"], "UNAVAILABLE");
    assert!(!log.to_string().contains("s3cr3t"));
    assert_eq!(node(1)["mutation"], "suspendGitSource");
    assert_eq!(node(1)["who"], "alice");
    assert_eq!(node(1)["role"], "VIEWER");
    assert_eq!(node(1)["result"], "FORBIDDEN");
    assert_eq!(node(2)["mutation"], "addGitSource");
    assert_eq!(node(2)["result"], "OK");
    assert_eq!(node(2)["arguments"]["input"]["name"], "fleet");
    assert!(node(2)["when"].as_str().unwrap().contains('T'));
    // Paging.
    let after = entries[0]["cursor"].as_str().unwrap();
    let page = run(
        &api,
        operator,
        &format!(r#"{{ auditLog(first: 1, after: "{after}") {{ edges {{ node {{ mutation }} }} pageInfo {{ hasNextPage }} }} }}"#),
    )
    .await;
    assert_eq!(
        data(&page)["auditLog"],
        json!({"edges": [{"node": {"mutation": "suspendGitSource"}}], "pageInfo": {"hasNextPage": true}})
    );
    // Viewers cannot read it.
    let resp = run(&api, viewer, "{ auditLog { edges { cursor } } }").await;
    assert_eq!(code(&resp), "FORBIDDEN");
}
