//! The GraphQL topology API: what is connected to what across the fleet, and is it healthy.
//!
//! Start at [`Api`]: it builds the schema from one query/mutation module per domain
//! ([`domain`]), merged, with the limits of [`Limits`], and prepares each request with the
//! caller's [`Principal`] and a fresh batching loader ([`db::Loader`]). Resolvers reach Postgres
//! only through [`Db`], which counts SQL statements so tests can assert that a query's cost does
//! not grow with the fleet. Errors carry a stable `extensions.code` ([`error::codes`]).
//!
//! The HTTP layer (the server crate) authenticates bearer tokens and hands the role in; this
//! crate enforces roles per field with [`auth::RoleGuard`] and never exposes a credential.

pub mod admission;
pub mod auth;
mod common;
pub mod db;
pub mod domain;
pub mod error;
mod plain;
mod relay;
mod shape;

use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use async_graphql::{
    Context, ContextSelectionSet, Executor, MergedObject, MergedSubscription, ObjectType,
    OutputType, Positioned, Request, Response, Schema, ServerError, ServerResult, SubscriptionType,
    Value,
    futures_util::stream::BoxStream,
    parser::types::{ExecutableDocument, Field},
    registry::Registry,
    resolver_utils::{ContainerType, resolve_container},
};
use futures::StreamExt as _;
use linkplane_store::{Store, credentials::CredentialsKey};

pub use auth::{Principal, Role};
pub use db::Db;
pub use domain::git::{
    BoxFuture, PlannedObject, PlannedRevision, SyncError, SyncReport, SyncService,
};
pub use error::{ApiError, code_of, codes};
/// For the plain pass's equivalence test (`schema/tests/plain.rs`): which fields the pass
/// answers, and how often it answered or handed a value to the resolvers.
#[doc(hidden)]
pub use plain::{field_tables as plain_field_tables, pass_counts as plain_pass_counts};

use domain::{
    audit::AuditQuery,
    cluster::{ClusterMutation, ClusterQuery},
    events::{EventHub, EventSubscription},
    federation::FederationQuery,
    git::{GitMutation, GitQuery, GitSourceMutation},
    link::{LinkMutation, LinkQuery},
    mcs::McsQuery,
    mirror::MirrorQuery,
    node::NodeQuery,
    policy::PolicyQuery,
    replicas::ReplicaQuery,
    server_info::ServerInfoQuery,
    tokens::{TokenMutation, TokenQuery},
    topology::TopologyQuery,
};

/// Every query root, merged.
#[derive(MergedObject, Default)]
pub struct Query(
    ClusterQuery,
    LinkQuery,
    PolicyQuery,
    MirrorQuery,
    FederationQuery,
    McsQuery,
    GitQuery,
    TopologyQuery,
    TokenQuery,
    AuditQuery,
    ReplicaQuery,
    NodeQuery,
    ServerInfoQuery,
);

/// Every mutation root, merged.
#[derive(MergedObject, Default)]
pub struct Mutation(
    LinkMutation,
    ClusterMutation,
    GitMutation,
    GitSourceMutation,
    TokenMutation,
);

/// Every subscription root, merged.
#[derive(MergedSubscription, Default)]
pub struct Subscription(EventSubscription);

/// The schema type. Query and mutation roots require a caller on every field
/// ([`RequireCaller`]); the subscription field carries its own role guard.
pub type ApiSchema = Schema<RequireCaller<Query>, RequireCaller<Mutation>, Subscription>;

/// A root type whose every field answers `UNAUTHENTICATED` without a [`Principal`] in the
/// request data; introspection (`__schema`, `__type`, `__typename`) is answered before it.
///
/// This is a wrapper rather than a schema extension on purpose: async-graphql runs every field
/// of every request through a slower path (a `ResolveInfo` built per field, with a registry
/// lookup and type-name formatting, and one boxed extension future per field) as soon as any
/// extension is registered, which tripled the cost of a 100-mirror page. Checking only root
/// fields here keeps that path off. Type name and type info are the wrapped type's, so the SDL is
/// unchanged.
#[derive(Default)]
pub struct RequireCaller<T>(T);

impl<T: ContainerType> OutputType for RequireCaller<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        resolve_container(ctx, self).await
    }
}

impl<T: ContainerType> ContainerType for RequireCaller<T> {
    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<Value>> {
        if ctx.data_opt::<Principal>().is_none() {
            let err: async_graphql::Error = ApiError::Unauthenticated.into();
            return Err(err.into_server_error(ctx.item.pos));
        }
        self.0.resolve_field(ctx).await
    }
}

impl<T: ObjectType> ObjectType for RequireCaller<T> {}

/// Query limits, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum selection depth.
    pub max_depth: usize,
    /// Maximum complexity (each field costs 1; paged fields multiply by their page size).
    pub max_complexity: usize,
    /// Maximum query document size in bytes.
    pub max_query_bytes: usize,
    /// Maximum selection depth of an introspection-only operation (one whose root fields are
    /// all `__schema`, `__type` or `__typename`): counted apart so every common client's
    /// introspection query passes (graphql-js's `getIntrospectionQuery()` nests 15 deep:
    /// nine `ofType` levels under `__schema { types { fields { args { type`).
    pub max_introspection_depth: usize,
}

impl Default for Limits {
    /// Depth 12 fits `topology { edges { source { incomingLinks { mirrors { edges { node { link
    /// { name } } } } } } } }` with room to spare; complexity 200,000 allows a dashboard's
    /// `clusters → mirrors → node` at the default page sizes (100 clusters × 100 mirrors, ~18
    /// fields each) while a page of 500 under a page of 500 is refused; 32 KiB is far above
    /// hand-written queries; introspection depth 20 leaves room over graphql-js's 15.
    fn default() -> Self {
        Limits {
            max_depth: 12,
            max_complexity: 200_000,
            max_query_bytes: 32 * 1024,
            max_introspection_depth: 20,
        }
    }
}

/// Schema-wide dependencies the resolvers use besides the database.
#[derive(Clone)]
pub struct ApiContext {
    /// The GitOps engine, when it runs (`syncNow` answers `UNAVAILABLE` otherwise).
    pub sync: Option<Arc<dyn SyncService>>,
    /// The key sealing stored kubeconfigs (`setClusterCredentials` answers `UNAVAILABLE` without).
    pub credentials_key: Option<Arc<CredentialsKey>>,
    /// The shared event feed of subscriptions.
    pub events: Arc<EventHub>,
    /// Checks a kubeconfig before `setClusterCredentials` stores it.
    pub kubeconfig_check: Option<KubeconfigCheck>,
    /// The prober's recent results per target gateway (`GatewayProbe.latency`).
    pub probe_windows: Option<linkplane_core::probes::ProbeWindows>,
}

/// Checks kubeconfig text, answering why it is unusable (never quoting it). The server passes
/// the mirror's check, which knows what a Kubernetes client needs; this crate knows no Kubernetes.
pub type KubeconfigCheck = fn(&str) -> Result<(), String>;

/// Called with the code of every error answered (for metrics).
pub type ErrorObserver = Arc<dyn Fn(&str) + Send + Sync>;

/// Options of [`Api::new`].
#[derive(Clone, Default)]
pub struct ApiOptions {
    /// Limits.
    pub limits: Limits,
    /// The GitOps engine.
    pub sync: Option<Arc<dyn SyncService>>,
    /// The credentials key.
    pub credentials_key: Option<Arc<CredentialsKey>>,
    /// Error observer.
    pub on_error: Option<ErrorObserver>,
    /// Kubeconfig check of `setClusterCredentials`.
    pub kubeconfig_check: Option<KubeconfigCheck>,
    /// The mirror's probe windows, when this process runs the gateway prober.
    pub probe_windows: Option<linkplane_core::probes::ProbeWindows>,
}

/// The API: schema plus the counted database handle. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    schema: ApiSchema,
    /// The same schema with the introspection depth limit, for introspection-only operations.
    introspection: ApiSchema,
    /// The schema's types, for shaping responses ([`shape`]).
    registry: Arc<Registry>,
    db: Db,
    limits: Limits,
    on_error: Option<ErrorObserver>,
    parsed: Arc<ParsedQueries>,
}

/// Parsed query documents by query text. Dashboards and scripts send the same few queries over
/// and over, and parsing (a PEG parser) was a tenth of a 100-mirror page's time; a clone of the
/// parsed document costs a fraction of that. Only parsing is skipped: depth, directive,
/// complexity and validation checks run on every request.
#[derive(Default)]
struct ParsedQueries(Mutex<HashMap<String, Arc<ExecutableDocument>>>);

/// Distinct queries kept; past it the cache starts over. Bounds memory to this many times the
/// query size limit, and any realistic set of dashboards fits.
const PARSED_QUERIES: usize = 256;

impl ParsedQueries {
    /// Gives `request` its parsed document, from the cache or parsed now, and returns it. A
    /// query that does not parse, or is over `max_bytes`, is left to the schema, which handles
    /// it as usual.
    fn attach(&self, request: &mut Request, max_bytes: usize) -> Option<Arc<ExecutableDocument>> {
        if request.query.len() > max_bytes {
            return None;
        }
        let cached = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&request.query)
            .cloned();
        let doc = match cached {
            Some(doc) => doc,
            None => {
                let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
                    return None;
                };
                let doc = Arc::new(doc);
                let mut docs = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                if docs.len() >= PARSED_QUERIES {
                    docs.clear();
                }
                docs.insert(request.query.clone(), doc.clone());
                doc
            }
        };
        request.set_parsed_query((*doc).clone());
        Some(doc)
    }
}

impl Api {
    /// Builds the schema over `store`.
    pub fn new(store: Store, options: ApiOptions) -> Self {
        let db = Db::new(store.clone());
        let ctx = ApiContext {
            sync: options.sync,
            credentials_key: options.credentials_key,
            events: Arc::new(EventHub::new(store)),
            kubeconfig_check: options.kubeconfig_check,
            probe_windows: options.probe_windows,
        };
        let build = |max_depth: usize| {
            builder()
                .limit_depth(max_depth)
                .limit_complexity(options.limits.max_complexity)
                // Bounds recursion in the parser and validator regardless of selection depth.
                .limit_recursive_depth(32)
                .limit_directives(8)
                .data(db.clone())
                .data(ctx.clone())
                .finish()
        };
        Api {
            schema: build(options.limits.max_depth),
            introspection: build(options.limits.max_introspection_depth),
            registry: Arc::new(registry()),
            db,
            limits: options.limits,
            on_error: options.on_error,
            parsed: Arc::default(),
        }
    }

    /// The schema. Running it directly skips [`Api::execute`]'s size limit and error codes on
    /// async-graphql's own errors (parsing, validation); role checks still apply.
    pub fn schema(&self) -> &ApiSchema {
        &self.schema
    }

    /// The counted database handle.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Adds the caller and a fresh loader to a request. Every request must pass through here.
    pub fn prepare(&self, request: impl Into<Request>, principal: Option<Principal>) -> Request {
        let mut request = request.into().data(db::request_loader(&self.db));
        self.parsed
            .attach(&mut request, self.limits.max_query_bytes);
        if let Some(p) = principal {
            request = request.data(p);
        }
        request
    }

    /// Runs a request for `principal`, enforcing the query size limit first.
    pub async fn execute(
        &self,
        request: impl Into<Request>,
        principal: Option<Principal>,
    ) -> Response {
        let mut request = request.into();
        if let Some(p) = principal {
            request = request.data(p);
        }
        self.run(request).await
    }

    /// Runs a query or mutation (the caller's data already in `request`): refusal, the parsed
    /// document from the cache, the schema whose limits fit the operation, the spec's response
    /// shape ([`shape`]) and error codes.
    async fn run(&self, request: Request) -> Response {
        if let Some(refused) = self.refusal(&request) {
            return self.finish(refused, false);
        }
        let principal = principal_of(&request.data);
        let mut request = request.data(db::request_loader(&self.db));
        let doc = self
            .parsed
            .attach(&mut request, self.limits.max_query_bytes);
        let operation = request.operation_name.clone();
        let mutations = match (&doc, &principal) {
            (Some(doc), Some(_)) => {
                domain::audit::mutations(doc, operation.as_deref(), &request.variables)
            }
            _ => Vec::new(),
        };
        let introspective = doc
            .as_deref()
            .is_some_and(|d| introspection_only(d, operation.as_deref()));
        let schema = if introspective {
            &self.introspection
        } else {
            &self.schema
        };
        let mut resp = schema.execute(request).await;
        if let Some(doc) = &doc {
            shape::normalize(&mut resp, doc, operation.as_deref(), &self.registry);
        }
        let resp = self.finish(resp, introspective);
        if let Some(p) = &principal {
            domain::audit::record(&self.db, p, mutations, &resp).await;
        }
        resp
    }

    /// Refuses, before anything parses it, a request over the size limit, nested too deep
    /// (the parser recurses: see [`admission`]) or carrying a NUL character. Every transport
    /// (HTTP, WebSocket queries and subscriptions) passes through here.
    fn refusal(&self, request: &Request) -> Option<Response> {
        let message = if request.query.len() > self.limits.max_query_bytes {
            format!(
                "query is {} bytes, more than the limit of {} (--graphql-max-query-bytes)",
                request.query.len(),
                self.limits.max_query_bytes
            )
        } else if let Err(rejection) = admission::check(request) {
            rejection.message()
        } else {
            return None;
        };
        let mut err = ServerError::new(message, None);
        error::ensure_codes(std::slice::from_mut(&mut err));
        Some(Response::from_errors(vec![err]))
    }

    /// Gives every error a code, names the limit, its value and its flag in async-graphql's
    /// limit errors, and reports the codes to the error observer. Every response leaving
    /// [`Api`] passes through here.
    fn finish(&self, mut resp: Response, introspective: bool) -> Response {
        for err in &mut resp.errors {
            if err.message == "Query is nested too deep." {
                err.message = if introspective {
                    format!(
                        "the query is nested too deep: an introspection query may nest at most \
                         {} levels (--graphql-max-introspection-depth)",
                        self.limits.max_introspection_depth
                    )
                } else {
                    format!(
                        "the query is nested too deep: at most {} levels \
                         (--graphql-max-depth; introspection-only queries: {}, \
                         --graphql-max-introspection-depth)",
                        self.limits.max_depth, self.limits.max_introspection_depth
                    )
                };
            } else if err.message == "Query is too complex." {
                err.message = format!(
                    "the query is too complex: its cost is over the limit of {} \
                     (--graphql-max-complexity; each field costs 1, a paged field its `first` \
                     times its selection)",
                    self.limits.max_complexity
                );
            }
        }
        error::ensure_codes(&mut resp.errors);
        if let Some(observe) = &self.on_error {
            for e in &resp.errors {
                observe(code_of(e));
            }
        }
        resp
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

fn builder()
-> async_graphql::SchemaBuilder<RequireCaller<Query>, RequireCaller<Mutation>, Subscription> {
    Schema::build(
        RequireCaller::default(),
        RequireCaller::default(),
        Subscription::default(),
    )
}

/// The caller in a request's (or session's) data.
fn principal_of(data: &async_graphql::Data) -> Option<Principal> {
    data.get(&std::any::TypeId::of::<Principal>())
        .and_then(|d| d.downcast_ref::<Principal>())
        .copied()
}

/// Whether the operation `operation` of `doc` is a subscription (an unknown operation goes to
/// the subscription path, which reports the error as before).
fn is_subscription(doc: &ExecutableDocument, operation: Option<&str>) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    match (&doc.operations, operation) {
        (DocumentOperations::Single(op), _) => op.node.ty == OperationType::Subscription,
        (DocumentOperations::Multiple(ops), Some(n)) => ops
            .get(n)
            .is_none_or(|op| op.node.ty == OperationType::Subscription),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops
            .values()
            .next()
            .is_none_or(|op| op.node.ty == OperationType::Subscription),
        (DocumentOperations::Multiple(_), None) => true,
    }
}

/// The schema's types, as the schema registers them (without introspection's own types).
fn registry() -> Registry {
    let mut registry = Registry {
        query_type: Query::type_name().into_owned(),
        mutation_type: Some(Mutation::type_name().into_owned()),
        subscription_type: Some(<Subscription as SubscriptionType>::type_name().into_owned()),
        ..Registry::default()
    };
    RequireCaller::<Query>::create_type_info(&mut registry);
    RequireCaller::<Mutation>::create_type_info(&mut registry);
    <Subscription as SubscriptionType>::create_type_info(&mut registry);
    registry
}

/// Whether the operation that runs selects only introspection at its root (`__schema`,
/// `__type`, `__typename`, through fragments too): such an operation reads the schema, never
/// data, and is held to the introspection depth limit instead of the data one.
fn introspection_only(doc: &ExecutableDocument, operation: Option<&str>) -> bool {
    use async_graphql::parser::types::{
        DocumentOperations, OperationType, Selection, SelectionSet,
    };
    fn only(doc: &ExecutableDocument, set: &SelectionSet, depth: usize) -> bool {
        depth < 16
            && set.items.iter().all(|item| match &item.node {
                Selection::Field(f) => f.node.name.node.starts_with("__"),
                Selection::InlineFragment(frag) => {
                    only(doc, &frag.node.selection_set.node, depth + 1)
                }
                Selection::FragmentSpread(spread) => doc
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .is_some_and(|f| only(doc, &f.node.selection_set.node, depth + 1)),
            })
    }
    let op = match (&doc.operations, operation) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => match ops.get(name) {
            Some(op) => op,
            None => return false,
        },
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => match ops.values().next() {
            Some(op) => op,
            None => return false,
        },
        (DocumentOperations::Multiple(_), None) => return false,
    };
    op.node.ty == OperationType::Query && only(doc, &op.node.selection_set.node, 0)
}

/// The SDL of the schema, as committed in `schema/schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// Lets async-graphql's transports (WebSocket) run requests through the same preparation.
/// Session data must carry the caller's [`Principal`] (set on `connection_init`).
impl Executor for Api {
    async fn execute(&self, request: Request) -> Response {
        self.run(request).await
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<async_graphql::Data>>,
    ) -> BoxStream<'static, Response> {
        if let Some(refused) = self.refusal(&request) {
            return futures::stream::once(futures::future::ready(self.finish(refused, false)))
                .boxed();
        }
        // Queries and mutations sent over the WebSocket answer exactly as over HTTP (limits,
        // response shape, audit): run them through `run` with the session's caller.
        let doc = async_graphql::parser::parse_query(&request.query).ok();
        if !doc
            .as_ref()
            .is_none_or(|d| is_subscription(d, request.operation_name.as_deref()))
        {
            let mut request = request;
            if let Some(p) = session_data.as_deref().and_then(principal_of) {
                request = request.data(p);
            }
            let api = self.clone();
            return futures::stream::once(async move { api.run(request).await }).boxed();
        }
        let api = self.clone();
        let operation = request.operation_name.clone();
        self.schema
            .execute_stream_with_session_data(
                request.data(db::subscription_loader(&self.db)),
                session_data.unwrap_or_default(),
            )
            .map(move |mut resp| {
                if let Some(doc) = &doc {
                    shape::normalize(&mut resp, doc, operation.as_deref(), &api.registry);
                }
                api.finish(resp, false)
            })
            .boxed()
    }
}
