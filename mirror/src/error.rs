//! Errors of the mirror runtime.

use crate::backoff::Retry;

/// What went wrong while connecting to a cluster or writing a mirror.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster's kubeconfig could not be obtained (file, Secret or stored credentials).
    #[error("credentials of cluster {cluster:?}: {reason}")]
    Credentials {
        /// Cluster name.
        cluster: String,
        /// What failed (never the credential itself).
        reason: String,
    },
    /// The kubeconfig was obtained but is not usable.
    #[error("kubeconfig of cluster {cluster:?} is invalid")]
    Kubeconfig {
        /// Cluster name.
        cluster: String,
        /// Parse or load error.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// A Kubernetes API call failed.
    #[error("{action}")]
    Kube {
        /// What we were doing, e.g. `creating Service shop/web-east`.
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] linkplane_store::StoreError),
    /// A write cannot proceed yet (e.g. a ClusterIP not allocated); retried.
    #[error("{0}")]
    Retry(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a client error with what we were doing.
    pub fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let action = action.into();
        move |source| Error::Kube { action, source }
    }

    /// HTTP status of an API error, if this is one.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Error::Kube {
                source: kube::Error::Api(status),
                ..
            } => Some(status.code),
            _ => None,
        }
    }

    /// A bounded label for metrics: `conflict`, `not_found`, `api`, `connect`, `credentials`, ….
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Credentials { .. } | Error::Kubeconfig { .. } => "credentials",
            Error::Kube {
                source: kube::Error::Api(s),
                ..
            } => match s.code {
                409 => "conflict",
                404 => "not_found",
                401 | 403 => "unauthorized",
                _ => "api",
            },
            Error::Kube { .. } => "connect",
            Error::Store(_) => "store",
            Error::Retry(_) => "retry",
        }
    }

    /// How soon a reconcile that failed with this error may run again (see [`Retry`]).
    ///
    /// 409 (our index behind our own write), 404 (the object went away) and not-yet-ready
    /// writes are stale views; 408, 429 and 5xx, connection failures and database failures are
    /// transient; every other 4xx is the API server refusing the write itself (client-go treats
    /// them the same way: `IsConflict`/`IsNotFound` re-plan, `IsTooManyRequests` and server
    /// errors back off, `IsInvalid`/`IsBadRequest`/`IsForbidden` need a change to succeed).
    pub fn retry_class(&self) -> Retry {
        match self {
            Error::Retry(_) => Retry::Soon,
            Error::Kube {
                source: kube::Error::Api(s),
                ..
            } => match s.code {
                404 | 409 => Retry::Soon,
                408 | 429 | 500.. => Retry::Transient,
                _ => Retry::Permanent,
            },
            Error::Kube { .. } | Error::Store(_) => Retry::Transient,
            Error::Credentials { .. } | Error::Kubeconfig { .. } => Retry::Permanent,
        }
    }

    /// True when the failure is the API server's, the network's or the database's and says
    /// nothing about the object: what a cluster whose writes keep failing this way is
    /// [`Degraded`](linkplane_core::status::ReconcilerState::Degraded) for.
    pub fn is_transient(&self) -> bool {
        self.retry_class() == Retry::Transient
    }

    /// The full message with causes, for state rows and logs.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cur = std::error::Error::source(self);
        while let Some(e) = cur {
            out.push_str(": ");
            out.push_str(&e.to_string());
            cur = e.source();
        }
        out
    }
}
