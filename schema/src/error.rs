//! Errors as clients see them: a message and a stable `extensions.code`.
//!
//! Internal causes (database failures, corrupt rows) are logged in full here and answered with a
//! generic message, so nothing about the deployment leaks through the API.

use async_graphql::ErrorExtensions as _;
use linkplane_store::StoreError;

/// Every error a resolver can answer, each with its wire code.
///
/// Deliberately not `Display`/`std::error::Error`: async-graphql converts any `Display` type into
/// an error *without* a code, so this type only becomes a GraphQL error through the conversion
/// below, which always sets `extensions.code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No valid bearer token.
    Unauthenticated,
    /// The token's role is too low for this field.
    Forbidden(&'static str),
    /// The named object does not exist.
    NotFound(String),
    /// The request collides with existing state (e.g. editing a Git-owned object).
    Conflict(String),
    /// An argument is invalid.
    BadUserInput(String),
    /// A dependency is not configured or not reachable (e.g. no credentials key, no GitOps engine).
    Unavailable(String),
    /// The object is declared by the server's flags and cannot be changed through the API.
    ReadOnly(String),
    /// Anything else; the cause was logged.
    Internal,
}

impl ApiError {
    /// The message clients see.
    pub fn message(&self) -> String {
        match self {
            ApiError::Unauthenticated => {
                "authentication required: send `Authorization: Bearer <token>`".into()
            }
            ApiError::Forbidden(role) => format!("this requires the {role} role"),
            ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::BadUserInput(m)
            | ApiError::Unavailable(m)
            | ApiError::ReadOnly(m) => m.clone(),
            ApiError::Internal => "internal error (logged on the server)".into(),
        }
    }

    /// The stable `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => codes::UNAUTHENTICATED,
            ApiError::Forbidden(_) => codes::FORBIDDEN,
            ApiError::NotFound(_) => codes::NOT_FOUND,
            ApiError::Conflict(_) => codes::CONFLICT,
            ApiError::BadUserInput(_) => codes::BAD_USER_INPUT,
            ApiError::Unavailable(_) => codes::UNAVAILABLE,
            ApiError::ReadOnly(_) => codes::READ_ONLY,
            ApiError::Internal => codes::INTERNAL,
        }
    }

    /// Logs `cause` and answers [`ApiError::Internal`].
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "internal error answering a GraphQL request");
        ApiError::Internal
    }
}

/// The values of `extensions.code`.
pub mod codes {
    /// No or invalid token.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// Role too low.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// Unknown object.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// Conflicts with existing state.
    pub const CONFLICT: &str = "CONFLICT";
    /// Invalid argument, or a query rejected by parsing, validation or limits.
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    /// A dependency is missing or down.
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    /// Server-side failure.
    pub const INTERNAL: &str = "INTERNAL";
    /// The HTTP request is not a GraphQL request: wrong content type, or a body that is not
    /// JSON of the request's shape (answered by the HTTP layer before the schema runs).
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    /// The HTTP request body is larger than `--max-body-bytes`.
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    /// The object is declared by the server's flags (`--git-*`) and cannot be changed through
    /// the API; change the flags instead.
    pub const READ_ONLY: &str = "READ_ONLY";
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            StoreError::Conflict { .. } => ApiError::Conflict(e.to_string()),
            StoreError::Reference { .. } | StoreError::Invalid { .. } => {
                ApiError::BadUserInput(e.to_string())
            }
            ref other if other.is_invalid_text() => ApiError::BadUserInput(
                "a string argument is not valid text (it contains a NUL character)".into(),
            ),
            ref other if other.is_unavailable() => {
                tracing::warn!(error = %other, "database unavailable while answering a request");
                ApiError::Unavailable("the database is unavailable; try again shortly".into())
            }
            other => ApiError::internal(&other),
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        let code = e.code();
        async_graphql::Error::new(e.message()).extend_with(|_, ext| ext.set("code", code))
    }
}

/// Resolver result.
pub type ApiResult<T> = Result<T, ApiError>;

/// The code of an error as answered; errors raised by async-graphql itself (parsing, validation,
/// depth/complexity limits, argument coercion) carry none and count as `BAD_USER_INPUT`.
pub fn code_of(err: &async_graphql::ServerError) -> &str {
    err.extensions
        .as_ref()
        .and_then(|e| e.get("code"))
        .and_then(|v| match v {
            async_graphql::Value::String(s) => Some(s.as_str()),
            _ => None,
        })
        .unwrap_or(codes::BAD_USER_INPUT)
}

/// Gives every error of `errors` a code (see [`code_of`]).
pub(crate) fn ensure_codes(errors: &mut [async_graphql::ServerError]) {
    for err in errors {
        if err
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some())
        {
            continue;
        }
        err.extensions
            .get_or_insert_with(Default::default)
            .set("code", codes::BAD_USER_INPUT);
    }
}
