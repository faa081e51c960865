//! The plain pass (`schema/src/plain.rs`) answers exactly as async-graphql's resolvers, for every
//! field it answers, for every role: selections are built from the schema's own introspection
//! (not a hand-picked list), run once as written and once with every object's selection wrapped
//! in an inline fragment on its own type (the pass refuses fragments, so every value goes through
//! the general executor), and the two responses must be identical, data and errors alike.
//! GraphQL's own rule pinned here: an inline fragment whose type condition is the object's own
//! type does not change a response (October 2021 spec, §6.3.2 CollectFields: its fields are
//! collected as if written in place, in order), so any difference is the pass's. (Not
//! `@include(if: true)`: async-graphql removes `@skip`/`@include` from the document before
//! executing it, `remove_skipped_selection` in its `schema.rs`, so the pass never sees them.)
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use linkplane_schema::{Api, ApiOptions, Limits, Role, plain_field_tables, plain_pass_counts};
use linkplane_store::Store;
use serde_json::Value;
use support::{as_role, seed_fleet};

const ROLES: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

/// Object nesting below a root field: enough for `clusters { edges { node { gatewayProbes {`.
const MAX_DEPTH: usize = 5;

/// Values for required arguments, by (field, argument): the seeded fleet's names.
const ARGS: &[(&str, &str, &str)] = &[
    ("cluster", "name", "\"c01\""),
    ("link", "name", "\"c00-from-c01\""),
    ("blastRadius", "cluster", "\"c01\""),
];

const INTROSPECTION: &str = "{ __schema { queryType { name } types { name kind
  fields { name args { name defaultValue type { ...T } } type { ...T } } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

/// A field as introspection describes it.
struct FieldInfo {
    name: String,
    /// Names of the arguments without a default that are non-null.
    required: Vec<String>,
    /// The named type under lists and non-nulls, and its kind.
    ty: String,
    kind: String,
}

/// Object types by name, with their fields.
struct Types(BTreeMap<String, Vec<FieldInfo>>);

/// The named type of an introspected type reference.
fn named(t: &Value) -> (String, String) {
    let mut t = t;
    while t["name"].is_null() {
        t = &t["ofType"];
    }
    (
        t["name"].as_str().unwrap().to_string(),
        t["kind"].as_str().unwrap().to_string(),
    )
}

impl Types {
    fn from_introspection(schema: &Value) -> (Self, String) {
        let mut out = BTreeMap::new();
        for t in schema["types"].as_array().unwrap() {
            if t["kind"] != "OBJECT" {
                continue;
            }
            let name = t["name"].as_str().unwrap();
            if name.starts_with("__") {
                continue;
            }
            let fields = t["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    let (ty, kind) = named(&f["type"]);
                    FieldInfo {
                        name: f["name"].as_str().unwrap().to_string(),
                        required: f["args"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .filter(|a| {
                                a["type"]["kind"] == "NON_NULL" && a["defaultValue"].is_null()
                            })
                            .map(|a| a["name"].as_str().unwrap().to_string())
                            .collect(),
                        ty,
                        kind,
                    }
                })
                .collect();
            out.insert(name.to_string(), fields);
        }
        let query = schema["queryType"]["name"].as_str().unwrap().to_string();
        (Types(out), query)
    }
}

/// A selected field: its name, arguments, and sub-selection (empty for leaves).
struct Sel {
    ty: String,
    name: String,
    args: String,
    sub: Vec<Sel>,
}

/// Which fields a selection takes.
#[derive(Clone, Copy)]
enum Mode<'a> {
    /// Every field the schema has (to the depth bound, with fixture arguments).
    All,
    /// Only what the plain pass answers: the registered tables' fields, nothing of other types.
    Plain(&'a BTreeMap<String, BTreeSet<String>>),
}

/// `name(args)` for a field whose required arguments the fixtures have, else `None`.
fn arguments(f: &FieldInfo) -> Option<String> {
    let mut args = Vec::new();
    for a in &f.required {
        let (_, _, v) = ARGS
            .iter()
            .find(|(field, arg, _)| *field == f.name && arg == a)?;
        args.push(format!("{a}: {v}"));
    }
    Some(if args.is_empty() {
        String::new()
    } else {
        format!("({})", args.join(", "))
    })
}

/// The selection of type `ty` under `path` (the types above it), or `None` when empty.
fn select(types: &Types, ty: &str, mode: Mode<'_>, path: &mut Vec<String>) -> Option<Vec<Sel>> {
    let fields = types.0.get(ty)?;
    if path.len() > MAX_DEPTH || path.iter().any(|p| p == ty) {
        return None;
    }
    let table = match mode {
        Mode::All => None,
        Mode::Plain(tables) => Some(tables.get(ty)?),
    };
    path.push(ty.to_string());
    let mut out = vec![Sel {
        ty: ty.to_string(),
        name: "__typename".into(),
        args: String::new(),
        sub: Vec::new(),
    }];
    for f in fields {
        if table.is_some_and(|t| !t.contains(&f.name)) {
            continue;
        }
        let Some(args) = arguments(f) else {
            continue;
        };
        let sub = match f.kind.as_str() {
            "SCALAR" | "ENUM" => Vec::new(),
            "OBJECT" => match select(types, &f.ty, mode, path) {
                Some(sub) => sub,
                None => continue,
            },
            // Interfaces and unions (`node`): not reached by the plain pass.
            _ => continue,
        };
        out.push(Sel {
            ty: ty.to_string(),
            name: f.name.clone(),
            args,
            sub,
        });
    }
    path.pop();
    // `__typename` alone selects nothing of the type.
    (out.len() > 1).then_some(out)
}

/// The selection as GraphQL text; `force` wraps every object's selection in `... on <Type>`.
fn render(sels: &[Sel], force: bool, out: &mut String) {
    for s in sels {
        out.push(' ');
        out.push_str(&s.name);
        out.push_str(&s.args);
        if !s.sub.is_empty() {
            match force {
                true => out.push_str(&format!(" {{ ... on {} {{", s.sub[0].ty)),
                false => out.push_str(" {"),
            }
            render(&s.sub, force, out);
            out.push_str(if force { " } }" } else { " }" });
        }
    }
}

/// Every (type, field) in a selection.
fn fields_of(sels: &[Sel], out: &mut BTreeSet<(String, String)>) {
    for s in sels {
        if s.name != "__typename" {
            out.insert((s.ty.clone(), s.name.clone()));
        }
        fields_of(&s.sub, out);
    }
}

/// Whether type `ty` (within the depth bound) reaches a type the plain pass answers.
fn reaches(sels: &[Sel], tables: &BTreeMap<String, BTreeSet<String>>) -> bool {
    sels.iter()
        .any(|s| tables.contains_key(&s.ty) || reaches(&s.sub, tables))
}

/// The API with limits wide enough for whole-schema selections (the default 32 KiB document
/// limit is for hand-written queries; depth and complexity are what the bound above makes).
fn api(pool: sqlx::PgPool) -> Api {
    Api::new(
        Store::from_pool(pool),
        ApiOptions {
            limits: Limits {
                max_depth: 32,
                max_complexity: usize::MAX / 2,
                max_query_bytes: 4 << 20,
                ..Limits::default()
            },
            ..ApiOptions::default()
        },
    )
}

/// The response as compared, and as JSON. Compared: the data as encoded (key order included)
/// and each error's message, path and extensions; not its `locations`, which point into the
/// document, and the two documents differ by their directives.
async fn run(api: &Api, role: Role, query: &str) -> (String, Value) {
    let resp = api.execute(query, as_role(role)).await;
    let mut compared = serde_json::to_string(&resp.data).unwrap();
    for e in &resp.errors {
        compared.push('\n');
        compared.push_str(&serde_json::to_string(&(&e.message, &e.path, &e.extensions)).unwrap());
    }
    (compared, serde_json::to_value(&resp).unwrap())
}

/// Asserts `a == b`, showing where they first differ.
fn assert_same(a: &str, b: &str, what: &str) {
    if a == b {
        return;
    }
    let at = a
        .bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = at.saturating_sub(300);
    let show = |s: &str| {
        s.get(from..(at + 300).min(s.len()))
            .unwrap_or("")
            .to_string()
    };
    panic!(
        "{what}: responses differ at byte {at}\nplain pass: …{}…\nresolvers:  …{}…",
        show(a),
        show(b)
    );
}

/// A fleet with something in every plain field: four clusters in a ring of links, mirrors in
/// two states, probes alive and dead, one with an error and no latency, a degraded reconciler.
async fn fleet(pool: &sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    seed_fleet(&mut conn, 4, 3).await;
    linkplane_store::gateways::record(&mut conn, "c01-from-c02", false, None, 3, Some("timeout"))
        .await
        .unwrap();
}

/// The registered tables, by GraphQL type name.
fn tables() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (ty, fields) in plain_field_tables() {
        out.entry(ty)
            .or_default()
            .extend(fields.into_iter().map(String::from));
    }
    out
}

#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn plain_pass_answers_every_field_like_the_resolvers_for_every_role(pool: sqlx::PgPool) {
    fleet(&pool).await;
    let api = api(pool);
    let (_, intro) = run(&api, Role::Viewer, INTROSPECTION).await;
    assert!(intro.get("errors").is_none(), "{intro}");
    let (types, query) = Types::from_introspection(&intro["data"]["__schema"]);
    let tables = tables();
    // Every registered type is one the schema has, with the fields it lists.
    for (ty, fields) in &tables {
        let known: BTreeSet<&str> = types
            .0
            .get(ty)
            .unwrap_or_else(|| panic!("plain table {ty} is not a type of the schema"))
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        for f in fields {
            assert!(known.contains(f.as_str()), "{ty}.{f} is not in the schema");
        }
    }
    let roots = types.0.get(&query).unwrap();
    let mut covered = BTreeSet::new();
    let mut plain_roots = 0;
    for role in ROLES {
        for root in roots {
            for mode in [Mode::All, Mode::Plain(&tables)] {
                let (Some(args), "OBJECT") = (arguments(root), root.kind.as_str()) else {
                    continue;
                };
                let Some(sub) = select(&types, &root.ty, mode, &mut vec![query.clone()]) else {
                    continue;
                };
                let sels = [Sel {
                    ty: query.clone(),
                    name: root.name.clone(),
                    args,
                    sub,
                }];
                if !reaches(&sels, &tables) {
                    continue;
                }
                let (mut normal, mut forced) = (String::from("{"), String::from("{"));
                render(&sels, false, &mut normal);
                render(&sels, true, &mut forced);
                normal.push_str(" }");
                forced.push_str(" }");

                let (answered_before, _) = plain_pass_counts();
                let (fast, fast_json) = run(&api, role, &normal).await;
                let (answered_fast, _) = plain_pass_counts();
                let (slow, _) = run(&api, role, &forced).await;
                let (answered_slow, _) = plain_pass_counts();
                assert_same(&fast, &slow, &format!("{role:?} {}", root.name));
                // The forced run went through the resolvers only.
                assert_eq!(
                    answered_slow, answered_fast,
                    "{role:?}: forced run took the plain pass: {forced}"
                );
                if let Mode::Plain(_) = mode {
                    // The plain selection took the pass, without an error, and answered something.
                    assert!(
                        answered_fast > answered_before,
                        "{role:?}: the plain pass answered nothing of {normal}"
                    );
                    assert!(fast_json.get("errors").is_none(), "{role:?}: {fast}");
                    assert!(!fast_json["data"][&root.name].is_null(), "{role:?}: {fast}");
                    fields_of(&sels, &mut covered);
                    plain_roots += 1;
                }
                if let (Role::Viewer, Mode::All) = (role, mode) {
                    // What the viewer may not read is no plain field: a guarded field cannot
                    // be in a table.
                    for e in fast_json["errors"].as_array().into_iter().flatten() {
                        if e["extensions"]["code"] == "FORBIDDEN" {
                            let field = e["path"]
                                .as_array()
                                .and_then(|p| p.iter().rev().find_map(Value::as_str))
                                .unwrap();
                            assert!(
                                tables.values().all(|t| !t.contains(field)),
                                "guarded field {field} is in a plain table"
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(
        plain_roots >= 3 * ROLES.len(),
        "only {plain_roots} plain roots"
    );
    // Every field of every table went through the pass in some selection above.
    let missing: Vec<String> = tables
        .iter()
        .flat_map(|(ty, fields)| fields.iter().map(move |f| (ty.clone(), f.clone())))
        .filter(|tf| !covered.contains(tf))
        .map(|(ty, f)| format!("{ty}.{f}"))
        .collect();
    // `MirrorTotal` has no plain field; `Total`'s `totalCount` is reached through the pages.
    assert!(
        missing.is_empty(),
        "plain fields no selection covered: {missing:?}"
    );
}

/// A guarded field is an ordinary resolver the plain pass never answers: denied to a viewer
/// with the same error at the same path on both paths, answered to an operator on both.
#[sqlx::test(migrator = "linkplane_store::MIGRATOR")]
async fn a_guarded_field_is_denied_alike_on_both_paths(pool: sqlx::PgPool) {
    fleet(&pool).await;
    let api = api(pool);
    let normal = r#"{ cluster(name: "c01") { name credentialsReference } clusters { nodes { name credentialsReference } } }"#;
    let forced = r#"{ cluster(name: "c01") { ... on Cluster { name credentialsReference } }
        clusters { ... on ClusterConnection { nodes { ... on Cluster { name credentialsReference } } } } }"#;
    let (viewer, viewer_json) = run(&api, Role::Viewer, normal).await;
    assert_same(&viewer, &run(&api, Role::Viewer, forced).await.0, "viewer");
    let errors = viewer_json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 5, "{viewer}");
    assert!(
        errors
            .iter()
            .all(|e| e["extensions"]["code"] == "FORBIDDEN"),
        "{viewer}"
    );
    assert_eq!(
        errors[0]["path"],
        serde_json::json!(["cluster", "credentialsReference"])
    );
    assert!(viewer_json["data"]["cluster"]["credentialsReference"].is_null());
    assert_eq!(viewer_json["data"]["cluster"]["name"], "c01");
    let (operator, operator_json) = run(&api, Role::Operator, normal).await;
    assert_same(
        &operator,
        &run(&api, Role::Operator, forced).await.0,
        "operator",
    );
    assert!(operator_json.get("errors").is_none(), "{operator}");
    assert_eq!(
        operator_json["data"]["cluster"]["credentialsReference"],
        "/etc/linkplane/c1.kubeconfig"
    );
    assert!(
        !tables()["Cluster"].contains("credentialsReference"),
        "a guarded field is in Cluster's plain table"
    );
}
