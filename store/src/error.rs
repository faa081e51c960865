//! The store's error type: database failures mapped by meaning at this boundary.

/// What can go wrong talking to Postgres, classified so callers can answer users precisely.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint failed: the object (or an equivalent one) already exists.
    #[error("{kind} {name:?} already exists")]
    Conflict {
        /// Object kind, e.g. `Link`.
        kind: &'static str,
        /// The conflicting name, or the constraint when no single name applies.
        name: String,
    },
    /// The object does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// Object kind.
        kind: &'static str,
        /// The missing name.
        name: String,
    },
    /// A reference to another object is dangling, or an object is still referenced.
    #[error("{kind} {name:?}: {reason}")]
    Reference {
        /// Object kind.
        kind: &'static str,
        /// Object name.
        name: String,
        /// Which reference failed.
        reason: String,
    },
    /// A check constraint failed (e.g. a link whose source equals its target).
    #[error("{kind} {name:?} is invalid: {reason}")]
    Invalid {
        /// Object kind.
        kind: &'static str,
        /// Object name.
        name: String,
        /// The violated constraint.
        reason: String,
    },
    /// A bulk write met an object that another owner manages; the whole batch was undone.
    /// (Git never takes over an API-owned object or another source's, even when one appears
    /// between planning and writing.)
    #[error("{kind} {name:?} is managed by {owner}; {writer} may not change it")]
    Owned {
        /// Object kind.
        kind: &'static str,
        /// Object name.
        name: String,
        /// Who manages it.
        owner: crate::Owner,
        /// Who tried to write it.
        writer: crate::Owner,
    },
    /// A stored JSON document no longer deserializes into the domain type.
    #[error("stored {kind} {name:?} cannot be decoded")]
    Corrupt {
        /// Object kind.
        kind: &'static str,
        /// Object name.
        name: String,
        /// The decoding failure.
        #[source]
        source: serde_json::Error,
    },
    /// PostgreSQL could not be reached at all (refused, DNS, TLS, authentication): the
    /// driver's cause, not the pool's "timed out".
    #[error("cannot connect to PostgreSQL at {addr}")]
    Unreachable {
        /// `host:port` (or the socket path) from the URL.
        addr: String,
        /// The driver's error for one direct attempt.
        #[source]
        source: sqlx::Error,
    },
    /// Any other database failure.
    #[error("database error while {action}")]
    Database {
        /// What the store was doing.
        action: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying migrations failed.
    #[error("applying database migrations failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Maps a driver error for an operation on one named object.
    pub(crate) fn from_sqlx(
        kind: &'static str,
        name: &str,
        action: &'static str,
        err: sqlx::Error,
    ) -> Self {
        if let sqlx::Error::Database(db) = &err {
            let constraint = db.constraint().unwrap_or_default().to_string();
            match db.code().as_deref() {
                Some("23505") => {
                    return StoreError::Conflict {
                        kind,
                        name: name.to_string(),
                    };
                }
                Some("23503") => {
                    return StoreError::Reference {
                        kind,
                        name: name.to_string(),
                        reason: reference_reason(&constraint, db.message()),
                    };
                }
                Some("23514") => {
                    return StoreError::Invalid {
                        kind,
                        name: name.to_string(),
                        reason: constraint,
                    };
                }
                _ => {}
            }
        }
        StoreError::Database {
            action,
            source: err,
        }
    }

    /// True for integrity-constraint violations (SQLSTATE class 23): a bulk statement that fails
    /// this way is replayed row by row to name the offending object.
    pub(crate) fn is_constraint(err: &sqlx::Error) -> bool {
        matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("23")))
    }

    /// True when the database could not be reached or went away (connection refused or reset,
    /// pool timeout, server shutting down or not yet accepting connections): nothing about the
    /// request was wrong, and the same write succeeds once the database is back.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database { source, .. } | StoreError::Unreachable { source, .. } => {
                driver_unavailable(source)
            }
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(source)) => {
                driver_unavailable(source)
            }
            _ => false,
        }
    }

    /// True when a string value was refused by PostgreSQL's encoding rules (a NUL byte, which
    /// `text` cannot hold: SQLSTATE 22021 or 22P05): the caller's input was invalid.
    pub fn is_invalid_text(&self) -> bool {
        matches!(self, StoreError::Database { source: sqlx::Error::Database(db), .. }
            if matches!(db.code().as_deref(), Some("22021" | "22P05")))
    }

    /// Wraps a driver error that has no single object to blame.
    pub(crate) fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| StoreError::Database { action, source }
    }
}

/// A vocabulary column's value as its enum (`linkplane_core::status`). A value outside the set
/// (every such column has a CHECK listing it, so a newer server's value or a hand-edited row)
/// fails as that column's decode error, as `#[sqlx(try_from = "String")]` did before the
/// queries were checked at compile time: the checked macros only decode sqlx's own types.
pub(crate) fn vocabulary<T>(column: &'static str, value: &str) -> Result<T, sqlx::Error>
where
    T: std::str::FromStr<Err = linkplane_core::status::UnknownValue>,
{
    value.parse().map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: Box::new(e),
    })
}

/// Connection-level failures, and the SQLSTATEs of a server that is going away or not ready:
/// class 08 (connection exception), 57P01–57P03 (admin/crash shutdown, cannot connect now) and
/// 53300 (too many connections).
fn driver_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

fn reference_reason(constraint: &str, message: &str) -> String {
    match constraint {
        "links_source_cluster_fkey" => "spec.source names a cluster that does not exist".into(),
        "links_target_cluster_fkey" => {
            if message.contains("still referenced") || message.contains("update or delete") {
                "the cluster is still used by a link (as target)".into()
            } else {
                "spec.target names a cluster that does not exist".into()
            }
        }
        _ if message.contains("update or delete") => "it is still referenced by a link".into(),
        _ => format!("reference check {constraint} failed"),
    }
}
