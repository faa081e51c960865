//! Answering selections of plain fields in one synchronous pass, without a future per field.
//!
//! async-graphql resolves every field of every object through its own boxed future, polled in a
//! `FuturesUnordered` with the object's other fields, and merges the results into a map: about a
//! microsecond per field. The fleet-wide answers are thousands of fields (a page of 100 mirrors
//! is 1,300, `topology` at 50 clusters 1,600), and that overhead alone cost two to three times
//! the SQL fetching the rows.
//!
//! A type's plain fields are declared once, in a [`plain_object!`] table: each entry is one body
//! that yields the field's typed value, expanded twice, into the async-graphql resolver and into
//! the type's [`Plain`] arm, so the two paths cannot drift apart. The table has no place for a
//! guard: a guarded field (or one with arguments, or a batched load of its own) is written among
//! the entries as an ordinary `async fn` resolver, and the plain pass never answers it. No field
//! is answered here by name otherwise, except the Relay connection fields of async-graphql's own
//! page types (`relay`). Wrapped in [`Fast`] (or a page of it in [`FastConnection`]) a value
//! answers a selection in one pass when every selected field is plain, and through the resolvers
//! otherwise (fragments, directives other than `@skip`/`@include`, which async-graphql removes
//! before executing, arguments, general fields): the fast path is an optimisation, never the only
//! way to a field. Type names and type info are the wrapped type's, so the SDL is unchanged.
//! `schema/tests/plain.rs` enumerates every field of every type from introspection and checks
//! that both paths answer alike for each role, and that every field of [`field_tables`] was
//! answered by the pass in it.

use std::{
    borrow::Cow,
    cell::Cell,
    future::Future,
    sync::atomic::{AtomicU64, Ordering},
};

use async_graphql::{
    Context, ContextSelectionSet, ID, ObjectType, OutputType, Positioned, ScalarType, ServerResult,
    Value,
    connection::{Connection, Edge, EmptyFields},
    indexmap::IndexMap,
    parser::types::{Field, Selection, SelectionSet},
    registry::Registry,
    resolver_utils::enum_value,
};

use chrono::{DateTime, Utc};

use crate::{
    common::tables,
    db::{LoadError, Loader, RequestLoader},
    error::ApiError,
};

/// Why a selection cannot be answered in the plain pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    /// A per-request table is not loaded yet (recorded in [`Cx`]); load it and try again.
    Load,
    /// The selection needs the general path.
    General,
}

/// The per-request tables a plain field may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    /// Links.
    Links,
    /// Gateway health.
    Gateways,
    /// Reconciler status.
    Reconcilers,
    /// Which clusters have stored credentials.
    Credentials,
    /// Mirror counts.
    Counts,
}

const TABLES: [Table; 5] = [
    Table::Links,
    Table::Gateways,
    Table::Reconcilers,
    Table::Credentials,
    Table::Counts,
];

impl Table {
    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// What a plain pass reads: the request's tables, and which of them it found missing.
pub(crate) struct Cx<'a> {
    /// The per-request tables.
    pub(crate) tables: &'a Loader,
    missing: Cell<u8>,
}

impl<'a> Cx<'a> {
    /// `Ok(value)` when the table is loaded, else records it as missing.
    pub(crate) fn need<T>(&self, table: Table, value: Option<T>) -> Result<T, Miss> {
        value.ok_or_else(|| {
            self.missing.set(self.missing.get() | table.bit());
            Miss::Load
        })
    }
}

/// A type whose fields can be computed synchronously; implemented by [`plain_object!`] only.
///
/// The plain pass runs no guards: only the table's plain entries, which cannot carry one, are
/// answered here; every other field answers [`Miss::General`].
pub(crate) trait Plain: OutputType {
    /// The GraphQL names of the fields the plain pass answers: the table's plain entries.
    const FIELDS: &'static [&'static str];

    /// The value of `field` (named `name`; its sub-selection in `field.selection_set`), or why
    /// it cannot be computed here. Fields not listed return [`Miss::General`].
    fn plain(&self, cx: &Cx<'_>, name: &str, field: &Field) -> Result<Value, Miss>;
}

/// One object: every selected field of `value`, in selection order, keyed by alias or name.
pub(crate) fn object<T: Plain + ?Sized>(
    value: &T,
    cx: &Cx<'_>,
    set: &SelectionSet,
) -> Result<Value, Miss> {
    fields(set, |name, field| {
        if name == "__typename" {
            Ok(Value::String(value.introspection_type_name().into_owned()))
        } else {
            value.plain(cx, name, field)
        }
    })
}

/// The object a selection set asks for: `value` of each selected field, in selection order,
/// keyed by alias or name. Fragments, directives and arguments go to the general path, and so
/// does the same key twice (`{ a: x a: x }`, or sub-selections to merge: its merging rules
/// apply). A field that misses a table does not end the pass: the other fields may miss other
/// tables, all loaded at once.
fn fields(
    set: &SelectionSet,
    mut value: impl FnMut(&str, &Field) -> Result<Value, Miss>,
) -> Result<Value, Miss> {
    let mut map = IndexMap::with_capacity(set.items.len());
    let mut load = false;
    for item in &set.items {
        let Selection::Field(field) = &item.node else {
            return Err(Miss::General);
        };
        let field = &field.node;
        if !field.directives.is_empty() || !field.arguments.is_empty() {
            return Err(Miss::General);
        }
        match value(field.name.node.as_str(), field) {
            Ok(v) => {
                if map.insert(field.response_key().node.clone(), v).is_some() {
                    return Err(Miss::General);
                }
            }
            Err(Miss::Load) => load = true,
            Err(Miss::General) => return Err(Miss::General),
        }
    }
    if load {
        return Err(Miss::Load);
    }
    Ok(Value::Object(map))
}

/// A list of objects (the first miss ends it: the other items need the same tables).
pub(crate) fn list<'v, T: Plain + 'v>(
    items: impl IntoIterator<Item = &'v T>,
    cx: &Cx<'_>,
    set: &SelectionSet,
) -> Result<Value, Miss> {
    let items = items.into_iter();
    let mut out = Vec::with_capacity(items.size_hint().0);
    for item in items {
        out.push(object(item, cx, set)?);
    }
    Ok(Value::List(out))
}

/// A string field.
pub(crate) fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// A nullable string field.
pub(crate) fn opt_string(s: Option<&str>) -> Value {
    s.map_or(Value::Null, string)
}

/// Runs `plain` (loading the tables it finds missing, then again) or, when it cannot answer,
/// `general`.
async fn drive<G, F>(
    ctx: &ContextSelectionSet<'_>,
    plain: impl Fn(&Cx<'_>) -> Result<Value, Miss>,
    general: G,
) -> ServerResult<Value>
where
    G: FnOnce() -> F,
    F: Future<Output = ServerResult<Value>>,
{
    let Some(loader) = ctx.data_opt::<RequestLoader>() else {
        GENERAL.fetch_add(1, Ordering::Relaxed);
        return general().await;
    };
    let tables = loader.loader();
    // Each round loads at least one more table; a few rounds cover the dependencies.
    for _ in 0..TABLES.len() {
        let cx = Cx {
            tables,
            missing: Cell::new(0),
        };
        match plain(&cx) {
            Ok(v) => {
                ANSWERED.fetch_add(1, Ordering::Relaxed);
                return Ok(v);
            }
            Err(Miss::General) => break,
            Err(Miss::Load) => {
                // One after the other, so they share the request's kept connection (one pool
                // acquire, whose ping is a round trip of its own, instead of one per table).
                let missing = cx.missing.get();
                for &t in TABLES.iter().filter(|t| missing & t.bit() != 0) {
                    // A failed load: the general path reports the error where the field is.
                    if tables.load(t).await.is_err() {
                        GENERAL.fetch_add(1, Ordering::Relaxed);
                        return general().await;
                    }
                }
            }
        }
    }
    GENERAL.fetch_add(1, Ordering::Relaxed);
    general().await
}

/// Values (objects, pages) the plain pass answered whole, since the process started.
static ANSWERED: AtomicU64 = AtomicU64::new(0);
/// Values a [`Fast`] or [`FastConnection`] handed to the resolvers after the plain pass refused
/// their selection (a failed table load included).
static GENERAL: AtomicU64 = AtomicU64::new(0);

/// How many values the plain pass answered, and how many it handed to the resolvers, since the
/// process started. The equivalence test (`schema/tests/plain.rs`) checks with it that its
/// plain selections really took the plain pass and its forced ones really did not.
#[doc(hidden)]
pub fn pass_counts() -> (u64, u64) {
    (
        ANSWERED.load(Ordering::Relaxed),
        GENERAL.load(Ordering::Relaxed),
    )
}

impl Loader {
    /// Loads `table` (a no-op when it is loaded).
    async fn load(&self, table: Table) -> Result<(), LoadError> {
        match table {
            Table::Links => self.links().await.map(drop),
            Table::Gateways => self.gateways().await.map(drop),
            Table::Reconcilers => self.reconcilers().await.map(drop),
            Table::Credentials => self.stored_credentials().await.map(drop),
            Table::Counts => self.counts().await.map(drop),
        }
    }
}

/// `T`, answered by the plain pass when it can.
pub(crate) struct Fast<T>(pub T);

impl<T: Plain> OutputType for Fast<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        drive(
            ctx,
            |cx| object(&self.0, cx, &ctx.item.node),
            || self.0.resolve(ctx, field),
        )
        .await
    }
}

/// The fields of async-graphql's Relay types (`<N>Connection`, `<N>Edge`, `PageInfo`), which
/// the plain pass answers for a [`FastConnection`]: fixed by the Relay connection spec and
/// resolved by async-graphql itself, so no resolver of ours, and no guard, is behind them. Listed
/// once here; [`field_tables`] reports them and the equivalence test covers them.
mod relay {
    pub(super) const PAGE_INFO: &str = "pageInfo";
    pub(super) const EDGES: &str = "edges";
    pub(super) const NODES: &str = "nodes";
    /// A connection's own fields (its extra fields, e.g. `totalCount`, are its table's).
    pub(super) const CONNECTION: [&str; 3] = [PAGE_INFO, EDGES, NODES];
    pub(super) const CURSOR: &str = "cursor";
    pub(super) const NODE: &str = "node";
    pub(super) const EDGE: [&str; 2] = [CURSOR, NODE];
    pub(super) const PAGE_INFO_TYPE: &str = "PageInfo";
    pub(super) const HAS_PREVIOUS_PAGE: &str = "hasPreviousPage";
    pub(super) const HAS_NEXT_PAGE: &str = "hasNextPage";
    pub(super) const START_CURSOR: &str = "startCursor";
    pub(super) const END_CURSOR: &str = "endCursor";
    pub(super) const PAGE_INFO_FIELDS: [&str; 4] =
        [HAS_PREVIOUS_PAGE, HAS_NEXT_PAGE, START_CURSOR, END_CURSOR];
}

/// Declares which types the plain pass answers (every `plain_object!` type, and every
/// `FastConnection<N, E>` in use) for [`field_tables`]; a unit test checks the sources hold no
/// other.
macro_rules! registry {
    (
        objects: [$($o:ident),* $(,)?]
        flattened: [$($f:ident),* $(,)?]
        pages: [$(($n:ident, $e:ident)),* $(,)?]
    ) => {
        /// Every type the plain pass answers, by GraphQL name, with the fields it answers of
        /// each: a `plain_object!` table's plain entries; for a page type the Relay fields plus
        /// its extra fields' entries. What the equivalence test (`schema/tests/plain.rs`) checks
        /// it covers, from the schema's introspection.
        #[doc(hidden)]
        pub fn field_tables() -> Vec<(String, Vec<&'static str>)> {
            let mut out = vec![(relay::PAGE_INFO_TYPE.to_string(), relay::PAGE_INFO_FIELDS.to_vec())];
            $(out.push((<$o as OutputType>::type_name().into_owned(), <$o as Plain>::FIELDS.to_vec()));)*
            $(
                let mut page = relay::CONNECTION.to_vec();
                page.extend_from_slice(<$e as Plain>::FIELDS);
                out.push((<FastConnection<$n, $e> as OutputType>::type_name().into_owned(), page));
                out.push((
                    <Edge<String, $n, EmptyFields> as OutputType>::type_name().into_owned(),
                    relay::EDGE.to_vec(),
                ));
            )*
            out.sort();
            out.dedup();
            out
        }

        #[cfg(test)]
        const REGISTERED_OBJECTS: &[&str] = &[$(stringify!($o),)* $(stringify!($f)),*];
        #[cfg(test)]
        const REGISTERED_PAGES: &[&str] = &[$(concat!(stringify!($n), ", ", stringify!($e))),*];
    };
}

use crate::{
    common::Total,
    domain::{
        cluster::{ClusterNode, ReconcilerInfo},
        link::{GatewayProbe, LinkNode},
        mirror::{Mirror, MirrorCounts, MirrorTotal},
        topology::Topology,
    },
};

registry! {
    objects: [ClusterNode, LinkNode, GatewayProbe, ReconcilerInfo, Mirror, MirrorCounts, Topology]
    // A page's extra fields: not types of the schema, their fields are the page's.
    flattened: [Total, MirrorTotal]
    pages: [(ClusterNode, Total), (LinkNode, Total), (Mirror, MirrorTotal)]
}

/// A connection without fields of its own: nothing for the plain pass to answer.
impl Plain for EmptyFields {
    const FIELDS: &'static [&'static str] = &[];

    fn plain(&self, _: &Cx<'_>, _: &str, _: &Field) -> Result<Value, Miss> {
        Err(Miss::General)
    }
}

/// A page of `N` (`N`Connection / `N`Edge in the schema) with the extra fields `E`, answered by
/// the plain pass when it can.
pub(crate) struct FastConnection<N: OutputType, E: ObjectType = EmptyFields>(
    pub Connection<String, N, E>,
);

impl<N: Plain, E: Plain + ObjectType> FastConnection<N, E> {
    fn plain(&self, cx: &Cx<'_>, set: &SelectionSet) -> Result<Value, Miss> {
        let page = &self.0;
        fields(set, |name, field| {
            let sub = &field.selection_set.node;
            Ok(match name {
                "__typename" => Value::String(Self::type_name().into_owned()),
                relay::PAGE_INFO => page_info(page, sub)?,
                relay::EDGES => {
                    let mut edges = Vec::with_capacity(page.edges.len());
                    for edge in &page.edges {
                        edges.push(edge_object(edge, cx, sub)?);
                    }
                    Value::List(edges)
                }
                relay::NODES => list(page.edges.iter().map(|e| &e.node), cx, sub)?,
                other => page.additional_fields.plain(cx, other, field)?,
            })
        })
    }
}

fn page_info<N: OutputType, E: ObjectType>(
    page: &Connection<String, N, E>,
    set: &SelectionSet,
) -> Result<Value, Miss> {
    fields(set, |name, _| {
        Ok(match name {
            "__typename" => string(relay::PAGE_INFO_TYPE),
            relay::HAS_PREVIOUS_PAGE => Value::Boolean(page.has_previous_page),
            relay::HAS_NEXT_PAGE => Value::Boolean(page.has_next_page),
            relay::START_CURSOR => opt_string(page.edges.first().map(|e| e.cursor.as_str())),
            relay::END_CURSOR => opt_string(page.edges.last().map(|e| e.cursor.as_str())),
            _ => return Err(Miss::General),
        })
    })
}

fn edge_object<N: Plain>(
    edge: &Edge<String, N, async_graphql::connection::EmptyFields>,
    cx: &Cx<'_>,
    set: &SelectionSet,
) -> Result<Value, Miss> {
    fields(set, |name, field| {
        Ok(match name {
            "__typename" => Value::String(
                Edge::<String, N, async_graphql::connection::EmptyFields>::type_name().into_owned(),
            ),
            relay::CURSOR => string(&edge.cursor),
            relay::NODE => object(&edge.node, cx, &field.selection_set.node)?,
            _ => return Err(Miss::General),
        })
    })
}

impl<N: Plain, E: Plain + ObjectType> OutputType for FastConnection<N, E> {
    fn type_name() -> Cow<'static, str> {
        Connection::<String, N, E>::type_name()
    }

    fn qualified_type_name() -> String {
        Connection::<String, N, E>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        Connection::<String, N, E>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        drive(
            ctx,
            |cx| self.plain(cx, &ctx.item.node),
            || self.0.resolve(ctx, field),
        )
        .await
    }
}

/// A field's typed value as the plain pass encodes it: as async-graphql encodes it, with an
/// object's sub-selection answered by its own plain pass.
pub(crate) trait ToPlain {
    /// The value for a selection (`set` is empty for leaves).
    fn to_plain(&self, cx: &Cx<'_>, set: &SelectionSet) -> Result<Value, Miss>;
}

impl<T: ToPlain + ?Sized> ToPlain for &T {
    fn to_plain(&self, cx: &Cx<'_>, set: &SelectionSet) -> Result<Value, Miss> {
        (**self).to_plain(cx, set)
    }
}

impl ToPlain for str {
    fn to_plain(&self, _: &Cx<'_>, _: &SelectionSet) -> Result<Value, Miss> {
        Ok(string(self))
    }
}

impl<T: ToPlain> ToPlain for Option<T> {
    fn to_plain(&self, cx: &Cx<'_>, set: &SelectionSet) -> Result<Value, Miss> {
        self.as_ref()
            .map_or(Ok(Value::Null), |v| v.to_plain(cx, set))
    }
}

impl<T: ToPlain> ToPlain for [T] {
    /// The first miss ends the list: the other items need the same tables.
    fn to_plain(&self, cx: &Cx<'_>, set: &SelectionSet) -> Result<Value, Miss> {
        let mut out = Vec::with_capacity(self.len());
        for item in self {
            out.push(item.to_plain(cx, set)?);
        }
        Ok(Value::List(out))
    }
}

impl<T: ToPlain> ToPlain for Vec<T> {
    fn to_plain(&self, cx: &Cx<'_>, set: &SelectionSet) -> Result<Value, Miss> {
        self.as_slice().to_plain(cx, set)
    }
}

/// Scalars, encoded by their [`ScalarType`].
macro_rules! plain_scalars {
    ($($t:ty),* $(,)?) => {$(
        impl ToPlain for $t {
            fn to_plain(&self, _: &Cx<'_>, _: &SelectionSet) -> Result<Value, Miss> {
                Ok(ScalarType::to_value(self))
            }
        }
    )*};
}

plain_scalars!(String, ID, bool, i32, i64, f64, DateTime<Utc>);

/// GraphQL enums a plain field may return, encoded by name.
macro_rules! plain_enums {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::plain::ToPlain for $t {
            fn to_plain(
                &self,
                _: &$crate::plain::Cx<'_>,
                _: &async_graphql::parser::types::SelectionSet,
            ) -> Result<async_graphql::Value, $crate::plain::Miss> {
                Ok($crate::plain::enum_to_value(*self))
            }
        }
    )*};
}
pub(crate) use plain_enums;

/// An enum's value (for [`plain_enums!`]).
pub(crate) fn enum_to_value<T: async_graphql::resolver_utils::EnumType>(v: T) -> Value {
    enum_value(v)
}

/// Resolves a plain entry through async-graphql: the entry's body, with the per-request tables it
/// finds missing loaded first (as the plain pass loads them).
pub(crate) async fn resolve<T>(
    ctx: &Context<'_>,
    body: impl Fn(&Cx<'_>) -> Result<T, Miss>,
) -> async_graphql::Result<T> {
    let tables = tables(ctx)?;
    for _ in 0..=TABLES.len() {
        let cx = Cx {
            tables,
            missing: Cell::new(0),
        };
        match body(&cx) {
            Ok(v) => return Ok(v),
            Err(Miss::General) => break,
            Err(Miss::Load) => {
                let missing = cx.missing.get();
                for &t in TABLES.iter().filter(|t| missing & t.bit() != 0) {
                    tables.load(t).await?;
                }
            }
        }
    }
    // An entry's body misses only tables, each loaded above; reaching here is a bug.
    tracing::error!("a plain field's body did not settle after loading its tables");
    Err(ApiError::Internal.into())
}

/// A GraphQL object whose plain fields are declared once (see the module's doc).
///
/// ```ignore
/// plain_object! {
///     #[Object(name = "Link")]
///     impl LinkNode {
///         plain(this, cx) {
///             /// Name.
///             "name" name -> &str { &this.0.stored.value.name }
///             /// An ordinary resolver: guarded, with arguments, or a load of its own.
///             async fn source(&self, ctx: &Context<'_>) -> Result<Option<ClusterNode>> { … }
///         }
///     }
/// }
/// ```
///
/// A plain entry is the field's GraphQL name, the resolver's Rust name (with its visibility),
/// the value's type, and a body computing it from `this` (the value) and `cx` (the per-request
/// tables: `cx.need(…)?`). It takes doc comments and nothing else: no `#[graphql(guard …)]`,
/// arguments or complexity, which is what keeps guarded fields out of the pass. An entry written
/// as an `async fn` is an ordinary resolver the plain pass never answers; entries keep their
/// order, which is the schema's field order. A new table's type goes into `registry!` too (the
/// unit test `every_plain_type_is_registered` fails otherwise), so the equivalence test sees it.
macro_rules! plain_object {
    // The attributes before `impl` are moved token by token, `#` included, so that they keep
    // the caller's span: `#[Object]` defines `child_complexity` at its call site, and a
    // `complexity = "…"` string (the caller's) must see it.
    (@head [$($attr:tt)*]
        impl $ty:ident {
            plain($this:ident, $cx:ident) { $($entries:tt)* }
        }
    ) => {
        $crate::plain::plain_object!(@munch [$($attr)*] $ty ($this, $cx) [] [] { $($entries)* });
    };
    (@head [$($attr:tt)*] $t:tt $($rest:tt)*) => {
        $crate::plain::plain_object!(@head [$($attr)* $t] $($rest)*);
    };
    // A plain entry.
    (@munch $attrs:tt $ty:ident ($this:ident, $cx:ident) [$($res:tt)*] [$($arm:tt)*] {
        $(#[doc = $doc:literal])*
        $gql:literal $vis:vis $field:ident -> $ret:ty $body:block
        $($rest:tt)*
    }) => {
        $crate::plain::plain_object!(@munch $attrs $ty ($this, $cx) [
            $($res)*
            $(#[doc = $doc])*
            #[graphql(name = $gql)]
            $vis async fn $field(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<$ret> {
                let $this = self;
                let _ = $this;
                $crate::plain::resolve(ctx, |$cx| -> Result<$ret, $crate::plain::Miss> {
                    let _ = $cx;
                    Ok($body)
                })
                .await
            }
        ] [
            $($arm)*
            ($gql, $ret, $body)
        ] { $($rest)* });
    };
    // An ordinary resolver.
    (@munch $attrs:tt $ty:ident ($this:ident, $cx:ident) [$($res:tt)*] $arms:tt {
        $(#[$m:meta])*
        $vis:vis async fn $name:ident ($($args:tt)*) -> $r:ty $fbody:block
        $($rest:tt)*
    }) => {
        $crate::plain::plain_object!(@munch $attrs $ty ($this, $cx) [
            $($res)*
            $(#[$m])*
            $vis async fn $name($($args)*) -> $r $fbody
        ] $arms { $($rest)* });
    };
    (@munch [$($attr:tt)*] $ty:ident ($this:ident, $cx:ident) [$($res:tt)*]
        [$(($gql:literal, $ret:ty, $body:block))*] {}) => {
        $($attr)*
        impl $ty {
            $($res)*
        }

        impl $crate::plain::Plain for $ty {
            const FIELDS: &'static [&'static str] = &[$($gql),*];

            #[allow(unused_variables)]
            fn plain(
                &self,
                $cx: &$crate::plain::Cx<'_>,
                name: &str,
                field: &async_graphql::parser::types::Field,
            ) -> Result<async_graphql::Value, $crate::plain::Miss> {
                let $this = self;
                match name {
                    $($gql => {
                        let value: $ret = $body;
                        $crate::plain::ToPlain::to_plain(&value, $cx, &field.selection_set.node)
                    })*
                    _ => Err($crate::plain::Miss::General),
                }
            }
        }

        impl $crate::plain::ToPlain for $ty {
            fn to_plain(
                &self,
                cx: &$crate::plain::Cx<'_>,
                set: &async_graphql::parser::types::SelectionSet,
            ) -> Result<async_graphql::Value, $crate::plain::Miss> {
                $crate::plain::object(self, cx, set)
            }
        }
    };
    ($($input:tt)*) => {
        $crate::plain::plain_object!(@head [] $($input)*);
    };
}
pub(crate) use plain_object;

#[cfg(test)]
mod tests {
    use std::{collections::BTreeSet, fs, path::Path};

    /// Every `.rs` file under `dir`, with its text.
    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in fs::read_dir(dir).expect("schema/src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = fs::read_to_string(&path).expect("a source file is readable");
                out.push((path.display().to_string(), text));
            }
        }
    }

    /// `field_tables` (hence the equivalence test) sees every type the plain pass can answer:
    /// each `plain_object!` table and each `FastConnection<N, E>` in the sources is registered.
    #[test]
    fn every_plain_type_is_registered() {
        let mut files = Vec::new();
        sources(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let (mut objects, mut pages) = (BTreeSet::new(), BTreeSet::new());
        for (path, text) in &files {
            if path.ends_with("plain.rs") {
                continue;
            }
            for (i, _) in text.match_indices("plain_object! {") {
                let after = &text[i..];
                let imp = after
                    .find("\n    impl ")
                    .expect("a plain_object! has an impl");
                let name: String = after[imp + 10..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                objects.insert(name);
            }
            for (i, _) in text.match_indices("FastConnection<") {
                let rest = &text[i + "FastConnection<".len()..];
                let args = &rest[..rest.find('>').expect("FastConnection<..> closes")];
                pages.insert(args.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
        let registered: BTreeSet<String> = super::REGISTERED_OBJECTS
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(objects, registered, "plain_object! types vs registry!");
        let registered: BTreeSet<String> = super::REGISTERED_PAGES
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            pages, registered,
            "FastConnection<N, E> in use vs registry!"
        );
    }
}
