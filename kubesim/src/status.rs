//! Kubernetes `Status` errors: the code, reason and details a real API server answers with.

use serde_json::{Value, json};

/// One field-level cause of a 422 `Invalid` (or a field-manager conflict).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cause {
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

/// A failed API request, rendered as a `Status` object with `code` as the HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details.name`, `details.group`, `details.kind` when the error is about one object.
    pub details: Option<Box<(String, String, String)>>,
    pub causes: Vec<Cause>,
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            causes: Vec::new(),
        }
    }

    fn about(mut self, name: &str, group: &str, plural: &str) -> Self {
        self.details = Some(Box::new((
            name.to_string(),
            group.to_string(),
            plural.to_string(),
        )));
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// A denied request about one resource (`apierrors.NewForbidden`): `<resource>[.<group>]
    /// ["<name>"] is forbidden: <why>`.
    pub fn forbidden_about(group: &str, plural: &str, name: &str, why: &str) -> Self {
        let what = qualified(group, plural);
        let message = if name.is_empty() {
            format!("{what} is forbidden: {why}")
        } else {
            format!("{what} \"{name}\" is forbidden: {why}")
        };
        Self::new(403, "Forbidden", message).about(name, group, plural)
    }

    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        let what = if group.is_empty() {
            plural.to_string()
        } else {
            format!("{plural}.{group}")
        };
        Self::new(404, "NotFound", format!("{what} \"{name}\" not found"))
            .about(name, group, plural)
    }

    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        let what = qualified(group, plural);
        Self::new(
            409,
            "AlreadyExists",
            format!("{what} \"{name}\" already exists"),
        )
        .about(name, group, plural)
    }

    pub fn conflict(group: &str, plural: &str, name: &str, why: &str) -> Self {
        let what = qualified(group, plural);
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {what} \"{name}\": {why}"),
        )
        .about(name, group, plural)
    }

    pub fn stale(group: &str, plural: &str, name: &str) -> Self {
        Self::conflict(
            group,
            plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn apply_conflict(group: &str, plural: &str, name: &str, causes: Vec<Cause>) -> Self {
        let n = causes.len();
        let list: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.message, c.field))
            .collect();
        let plural_s = if n == 1 { "" } else { "s" };
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Apply failed with {n} conflict{plural_s}: {}",
                list.join(", ")
            ),
        )
        .about(name, group, plural);
        e.causes = causes;
        e
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn invalid(kind: &str, group: &str, plural: &str, name: &str, causes: Vec<Cause>) -> Self {
        let parts: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if parts.len() == 1 {
            parts.join("")
        } else {
            format!("[{}]", parts.join(", "))
        };
        // `apierrors.NewInvalid` names the kind qualified by its group (`Role.rbac…`).
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {joined}", qualified(group, kind)),
        )
        .about(name, group, plural);
        if let Some(d) = e.details.as_mut() {
            d.2 = kind.to_string();
        }
        e.causes = causes;
        e
    }

    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    /// The client accepts no media type kubesim produces (it answers JSON only).
    pub fn not_acceptable() -> Self {
        Self::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml, application/json;stream=watch",
        )
    }

    pub fn too_many_requests() -> Self {
        Self::new(
            429,
            "TooManyRequests",
            "too many requests (injected by kubesim)",
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The `Status` JSON body.
    pub fn to_json(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let mut details = serde_json::Map::new();
        if let Some(d) = &self.details {
            let (name, group, kind) = &**d;
            details.insert("name".into(), json!(name));
            if !group.is_empty() {
                details.insert("group".into(), json!(group));
            }
            details.insert("kind".into(), json!(kind));
        }
        if !self.causes.is_empty() {
            let causes: Vec<Value> = self
                .causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if self.code == 429 {
            details.insert("retryAfterSeconds".into(), json!(1));
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

/// A field cause for `Invalid`.
pub(crate) fn cause(reason: &'static str, field: &str, message: impl Into<String>) -> Cause {
    Cause {
        reason,
        message: message.into(),
        field: field.to_string(),
    }
}
