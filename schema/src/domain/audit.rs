//! The audit log: every mutation an authenticated caller ran or was refused, recorded by
//! [`crate::Api`] after it answers (so guard refusals and failures are recorded too), and the
//! `auditLog` query (operator role).

use async_graphql::{
    Context, ID, Json, Name, Object, Positioned, Response, SimpleObject, Variables,
    connection::Connection,
    parser::types::{DocumentOperations, ExecutableDocument, OperationType, Selection},
};
use chrono::{DateTime, Utc};
use linkplane_store::{audit, tokens, windows};

use crate::{
    Db, Principal,
    auth::{Role, RoleGuard},
    common::{db, with_fields},
    db::one,
    error::{ApiResult, code_of},
    relay::{self, Paging},
};

/// Argument names whose values are never stored (`setClusterCredentials(kubeconfig:)`, …).
const SECRET_ARGUMENTS: [&str; 6] = [
    "kubeconfig",
    "token",
    "password",
    "secret",
    "privateKey",
    "credentials",
];

/// One recorded mutation.
#[derive(SimpleObject, Debug, Clone)]
pub struct AuditEntry {
    /// Row id (also the cursor).
    pub id: ID,
    /// The caller's token name when it ran (`in-process` for callers without a token).
    pub who: String,
    /// The caller's token id, while the token exists.
    pub token_id: Option<ID>,
    /// The caller's role.
    pub role: Role,
    /// When it ran.
    pub when: DateTime<Utc>,
    /// The mutation field, e.g. `pinGitSource`.
    pub mutation: String,
    /// Its arguments, variables resolved; secrets (a kubeconfig, …) read `"<redacted>"`.
    pub arguments: Json<serde_json::Value>,
    /// `OK`, or the `extensions.code` of the error it answered (`FORBIDDEN`, `NOT_FOUND`, …).
    pub result: String,
}

impl From<audit::Entry> for AuditEntry {
    fn from(e: audit::Entry) -> Self {
        AuditEntry {
            id: ID(e.id.to_string()),
            who: e.token_name,
            token_id: e.token_id.map(|t| ID(t.to_string())),
            role: tokens::Role::parse(&e.role).map_or(Role::Viewer, Into::into),
            when: e.at,
            mutation: e.mutation,
            arguments: Json(e.arguments),
            result: e.result,
        }
    }
}

/// `totalCount` of the audit log.
pub struct AuditTotal;

#[Object]
impl AuditTotal {
    /// How many mutations are recorded (one `count(*)` when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        one!(db(ctx)?, |c| audit::count(c))
    }
}

/// Audit queries.
#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Mutations run through the API, newest first (operator role; `null` with a `FORBIDDEN`
    /// error for viewers). `first`/`after` page towards older entries, `last`/`before` towards
    /// newer ones.
    #[graphql(
        guard = "RoleGuard(Role::Operator)",
        complexity = "relay::complexity(first, last, child_complexity)"
    )]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Option<Connection<String, AuditEntry, AuditTotal>>> {
        let paging = Paging::new(
            first,
            after.as_deref(),
            last,
            before.as_deref(),
            relay::id_cursor,
        )?;
        let window = paging.window();
        let rows = one!(db(ctx)?, |c| windows::audit(c, &window))?;
        let page = paging.connection(rows.into_iter().map(AuditEntry::from).collect(), |e| {
            e.id.to_string()
        });
        let conn = with_fields(page, AuditTotal);
        Ok(Some(conn))
    }
}

fn store_role(role: Role) -> tokens::Role {
    match role {
        Role::Viewer => tokens::Role::Viewer,
        Role::Operator => tokens::Role::Operator,
        Role::Admin => tokens::Role::Admin,
    }
}

/// Replaces the values of secret arguments, at any depth, by `"<redacted>"`.
fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if SECRET_ARGUMENTS.iter().any(|s| k.eq_ignore_ascii_case(s)) {
                    *v = serde_json::Value::String("<redacted>".into());
                } else {
                    redact(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// The mutations of a mutation operation: (response key, field name, arguments as JSON with
/// variables resolved and secrets redacted). Empty for queries and subscriptions.
pub(crate) fn mutations(
    doc: &ExecutableDocument,
    operation: Option<&str>,
    variables: &Variables,
) -> Vec<(Name, String, serde_json::Value)> {
    let op = match (&doc.operations, operation) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(n)) => match ops.get(n) {
            Some(op) => op,
            None => return Vec::new(),
        },
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => match ops.values().next() {
            Some(op) => op,
            None => return Vec::new(),
        },
        (DocumentOperations::Multiple(_), None) => return Vec::new(),
    };
    if op.node.ty != OperationType::Mutation {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut stack: Vec<&Positioned<Selection>> =
        op.node.selection_set.node.items.iter().rev().collect();
    let mut guard = 0;
    while let Some(item) = stack.pop() {
        guard += 1;
        if guard > 1000 {
            break;
        }
        match &item.node {
            Selection::Field(f) => {
                let name = f.node.name.node.to_string();
                if name.starts_with("__") {
                    continue;
                }
                let mut args = serde_json::Map::new();
                for (k, v) in &f.node.arguments {
                    let value = v
                        .node
                        .clone()
                        .into_const_with(|var| variables.get(&var).cloned().ok_or(()))
                        .ok()
                        .and_then(|c| c.into_json().ok())
                        .unwrap_or(serde_json::Value::Null);
                    args.insert(k.node.to_string(), value);
                }
                let mut args = serde_json::Value::Object(args);
                redact(&mut args);
                out.push((f.node.response_key().node.clone(), name, args));
            }
            Selection::InlineFragment(frag) => {
                stack.extend(frag.node.selection_set.node.items.iter().rev());
            }
            Selection::FragmentSpread(spread) => {
                if let Some(frag) = doc.fragments.get(&spread.node.fragment_name.node) {
                    stack.extend(frag.node.selection_set.node.items.iter().rev());
                }
            }
        }
    }
    out
}

/// Records the mutations of an answered request for `principal`. A failure to record is
/// logged, never answered: the mutation already happened.
pub(crate) async fn record(
    db: &Db,
    principal: &Principal,
    mutations: Vec<(Name, String, serde_json::Value)>,
    resp: &Response,
) {
    if mutations.is_empty() {
        return;
    }
    // Errors without a path (validation, limits) refused the whole operation.
    let refused = resp.errors.iter().find(|e| e.path.is_empty()).map(code_of);
    let mut conn = match db.conn(mutations.len() as u64).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = ?e, "cannot record API mutations in the audit log");
            return;
        }
    };
    for (key, mutation, arguments) in mutations {
        let failed = resp.errors.iter().find(|e| {
            matches!(e.path.first(), Some(async_graphql::PathSegment::Field(f)) if f.as_str() == key.as_str())
        });
        let result = failed.map(code_of).or(refused).unwrap_or("OK");
        let entry = audit::NewEntry {
            token_id: principal.token_id,
            role: store_role(principal.role),
            mutation: &mutation,
            arguments,
            result,
        };
        if let Err(e) = audit::record(&mut conn, &entry).await {
            tracing::error!(error = %e, %mutation, "cannot record an API mutation in the audit log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_variables_resolved() {
        let doc = async_graphql::parser::parse_query(
            "mutation ($k: String!) { a: setClusterCredentials(cluster: \"east\", kubeconfig: $k) { cluster } \
             pinGitSource(source: \"fleet\", revision: \"abc1234\") { name } }",
        )
        .unwrap();
        let vars = Variables::from_json(serde_json::json!({"k": "apiVersion: v1 …"}));
        let m = mutations(&doc, None, &vars);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0.as_str(), "a");
        assert_eq!(m[0].1, "setClusterCredentials");
        assert_eq!(
            m[0].2,
            serde_json::json!({"cluster": "east", "kubeconfig": "<redacted>"})
        );
        assert_eq!(
            m[1].2,
            serde_json::json!({"source": "fleet", "revision": "abc1234"})
        );
        let q = async_graphql::parser::parse_query("{ clusters { edges { cursor } } }").unwrap();
        assert!(mutations(&q, None, &vars).is_empty());
    }
}
