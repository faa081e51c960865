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

use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use async_graphql::{
    Context, ContextSelectionSet, Executor, MergedObject, MergedSubscription, ObjectType,
    OutputType, Positioned, Request, Response, Schema, ServerError, ServerResult, Value,
    futures_util::stream::BoxStream,
    parser::types::{ExecutableDocument, Field},
    registry::Registry,
    resolver_utils::{ContainerType, resolve_container},
};
use futures::StreamExt as _;
use linkplane_store::{Store, credentials::CredentialsKey};

pub use auth::{Principal, Role};
pub use db::Db;
pub use domain::git::{BoxFuture, SyncError, SyncReport, SyncService};
pub use error::{ApiError, code_of, codes};

use domain::{
    cluster::{ClusterMutation, ClusterQuery},
    events::{EventHub, EventSubscription},
    federation::FederationQuery,
    git::{GitMutation, GitQuery},
    link::{LinkMutation, LinkQuery},
    mirror::MirrorQuery,
    policy::PolicyQuery,
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
    GitQuery,
    TopologyQuery,
    TokenQuery,
);

/// Every mutation root, merged.
#[derive(MergedObject, Default)]
pub struct Mutation(LinkMutation, ClusterMutation, GitMutation, TokenMutation);

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
}

impl Default for Limits {
    /// Depth 12 fits `topology { edges { source { incomingLinks { mirrors { edges { node { link
    /// { name } } } } } } } }` with room to spare; complexity 20,000 allows a 100-node page with
    /// ~200 fields per node; 32 KiB is far above hand-written queries.
    fn default() -> Self {
        Limits {
            max_depth: 12,
            max_complexity: 20_000,
            max_query_bytes: 32 * 1024,
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
}

/// The API: schema plus the counted database handle. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    schema: ApiSchema,
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
struct ParsedQueries(Mutex<HashMap<String, ExecutableDocument>>);

/// Distinct queries kept; past it the cache starts over. Bounds memory to this many times the
/// query size limit, and any realistic set of dashboards fits.
const PARSED_QUERIES: usize = 256;

impl ParsedQueries {
    /// Gives `request` its parsed document, from the cache or parsed now. A query that does not
    /// parse, or is over `max_bytes`, is left to the schema, which handles it as usual.
    fn attach(&self, request: &mut Request, max_bytes: usize) {
        if request.query.len() > max_bytes {
            return;
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
                    return;
                };
                let mut docs = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                if docs.len() >= PARSED_QUERIES {
                    docs.clear();
                }
                docs.insert(request.query.clone(), doc.clone());
                doc
            }
        };
        request.set_parsed_query(doc);
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
        };
        let schema = builder()
            .limit_depth(options.limits.max_depth)
            .limit_complexity(options.limits.max_complexity)
            // Bounds recursion in the parser and validator regardless of selection depth.
            .limit_recursive_depth(32)
            .limit_directives(8)
            .data(db.clone())
            .data(ctx)
            .finish();
        Api {
            schema,
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
        let request = request.into();
        if let Some(refused) = self.refusal(&request) {
            return self.finish(refused);
        }
        let resp = self.schema.execute(self.prepare(request, principal)).await;
        self.finish(resp)
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

    /// Gives every error a code and reports the codes to the error observer. Every response
    /// leaving [`Api`] passes through here.
    fn finish(&self, mut resp: Response) -> Response {
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

/// The SDL of the schema, as committed in `schema/schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// Lets async-graphql's transports (WebSocket) run requests through the same preparation.
/// Session data must carry the caller's [`Principal`] (set on `connection_init`).
impl Executor for Api {
    async fn execute(&self, request: Request) -> Response {
        if let Some(refused) = self.refusal(&request) {
            return self.finish(refused);
        }
        let mut request = request.data(db::request_loader(&self.db));
        self.parsed
            .attach(&mut request, self.limits.max_query_bytes);
        let resp = self.schema.execute(request).await;
        self.finish(resp)
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<async_graphql::Data>>,
    ) -> BoxStream<'static, Response> {
        if let Some(refused) = self.refusal(&request) {
            return futures::stream::once(futures::future::ready(self.finish(refused))).boxed();
        }
        let api = self.clone();
        self.schema
            .execute_stream_with_session_data(
                request.data(db::subscription_loader(&self.db)),
                session_data.unwrap_or_default(),
            )
            .map(move |resp| api.finish(resp))
            .boxed()
    }
}
