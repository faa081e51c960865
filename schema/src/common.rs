//! Small shared pieces: request data access, label selectors, Relay paging over sorted lists.

use std::collections::BTreeMap;

use async_graphql::{
    Context, SimpleObject,
    connection::{Connection, Edge},
};
use linkplane_core::LabelSelector as CoreSelector;

use crate::{
    db::{Db, Loader, RequestLoader},
    error::ApiError,
};

/// Largest page a client may ask for; bounds memory and keeps complexity estimates honest.
pub const MAX_PAGE: i32 = 500;
/// Page size when `first` is omitted.
pub const DEFAULT_PAGE: i32 = 100;

/// The per-request loader.
pub(crate) fn loader<'a>(ctx: &Context<'a>) -> Result<&'a RequestLoader, ApiError> {
    ctx.data_opt::<RequestLoader>().ok_or_else(|| {
        tracing::error!("GraphQL request without a loader: build requests with Api::request");
        ApiError::Internal
    })
}

/// The per-request fleet tables (clusters, links, gateways, reconcilers, counts), looked up
/// directly: no batching window to wait for.
pub(crate) fn tables<'a>(ctx: &Context<'a>) -> Result<&'a Loader, ApiError> {
    Ok(loader(ctx)?.loader())
}

/// The counted database handle.
pub(crate) fn db<'a>(ctx: &Context<'a>) -> Result<&'a Db, ApiError> {
    ctx.data_opt::<Db>().ok_or_else(|| {
        tracing::error!("schema built without a Db");
        ApiError::Internal
    })
}

/// Validated `first`.
pub(crate) fn page_size(first: Option<i32>) -> Result<usize, ApiError> {
    let first = first.unwrap_or(DEFAULT_PAGE);
    if !(0..=MAX_PAGE).contains(&first) {
        return Err(ApiError::BadUserInput(format!(
            "`first` must be between 0 and {MAX_PAGE}"
        )));
    }
    Ok(first as usize)
}

/// `totalCount` of a connection whose whole list was in hand (clusters, links, Git sources,
/// policies): computed with the page, no statement of its own.
#[derive(Debug, Clone, Copy)]
pub struct Total {
    /// How many items there are over every page.
    pub total_count: i64,
}

crate::plain::plain_object! {
    #[async_graphql::Object]
    impl Total {
        plain(this, cx) {
            /// How many items there are over every page.
            "totalCount" total_count -> i64 { this.total_count }
        }
    }
}

/// The same page with the connection fields `fields` added.
pub(crate) fn with_fields<T: async_graphql::OutputType, E: async_graphql::ObjectType>(
    page: Connection<String, T>,
    fields: E,
) -> Connection<String, T, E> {
    let mut out =
        Connection::with_additional_fields(page.has_previous_page, page.has_next_page, fields);
    out.edges = page.edges;
    out
}

/// Pages a list already sorted by `cursor` (names sort as strings) in either direction, with
/// the Relay Cursor Connections spec's rules (see [`crate::relay`]): `first`/`after` forward,
/// `last`/`before` backward, both bounds and both counts allowed, negative counts refused.
pub(crate) fn page_sorted_both<T: async_graphql::OutputType>(
    items: impl IntoIterator<Item = T>,
    cursor: impl Fn(&T) -> String,
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> Result<Connection<String, T>, ApiError> {
    let paging = crate::relay::Paging::new(
        first,
        after.as_deref(),
        last,
        before.as_deref(),
        |c: &str| Ok(c.to_string()),
    )?;
    Ok(paging.page_sorted(items.into_iter().collect(), &cursor, &cursor))
}

/// Builds a connection from rows fetched with one look-ahead row.
pub(crate) fn page_fetched<T: async_graphql::OutputType>(
    mut rows: Vec<T>,
    cursor: impl Fn(&T) -> String,
    first: usize,
    has_previous: bool,
) -> Connection<String, T> {
    let has_next = rows.len() > first;
    rows.truncate(first);
    let mut conn = Connection::new(has_previous, has_next);
    conn.edges
        .extend(rows.into_iter().map(|t| Edge::new(cursor(&t), t)));
    conn
}

/// Parses a numeric id cursor.
pub(crate) fn id_cursor(after: Option<&str>) -> Result<i64, ApiError> {
    match after {
        None => Ok(0),
        Some(a) => a
            .parse::<i64>()
            .map_err(|_| ApiError::BadUserInput(format!("invalid cursor {a:?}"))),
    }
}

/// A Kubernetes label.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// Labels as a list, in key order.
pub(crate) fn labels(map: &BTreeMap<String, String>) -> Vec<Label> {
    map.iter()
        .map(|(k, v)| Label {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// One requirement of a label selector.
#[derive(SimpleObject, Debug, Clone)]
pub struct SelectorRequirement {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values for `In` / `NotIn`.
    pub values: Vec<String>,
}

/// A Kubernetes label selector.
#[derive(SimpleObject, Debug, Clone)]
pub struct LabelSelector {
    /// Exact matches.
    pub match_labels: Vec<Label>,
    /// Set-based requirements.
    pub match_expressions: Vec<SelectorRequirement>,
}

impl From<&CoreSelector> for LabelSelector {
    fn from(s: &CoreSelector) -> Self {
        LabelSelector {
            match_labels: labels(&s.match_labels),
            match_expressions: s
                .match_expressions
                .iter()
                .map(|r| SelectorRequirement {
                    key: r.key.clone(),
                    operator: r.operator.as_str().to_string(),
                    values: r.values.clone(),
                })
                .collect(),
        }
    }
}
