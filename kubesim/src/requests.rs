//! The request log: every resource request a cluster answered (verb, resource, namespace, name,
//! user, user agent, status code, time received), as an API server's audit log records them at
//! the `Metadata` level. Tests and benchmarks read it to count what a client really sent, e.g.
//! that a controller restarted against an unchanged cluster writes nothing, or that a paused
//! replica wrote nothing between resuming and re-acquiring its lease.

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Entries kept per cluster; older ones are dropped (a long `linkplane sim` run stays bounded).
const CAPACITY: usize = 200_000;

/// One resource request, as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// Position in the cluster's log (starts at 0, never reused).
    pub seq: u64,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete` or `deletecollection`.
    pub verb: String,
    /// API group (`""` for core).
    pub group: String,
    /// Plural resource name, e.g. `services`.
    pub resource: String,
    /// Subresource (`status`, `token`), if any.
    pub subresource: Option<String>,
    /// Namespace, if namespaced.
    pub namespace: Option<String>,
    /// Object name, for requests on one object.
    pub name: Option<String>,
    /// The authenticated user (`kubernetes-admin`, `system:serviceaccount:<ns>:<name>`).
    pub user: String,
    /// The HTTP status code answered.
    pub code: u16,
    /// The client's `User-Agent` header, as the audit log's `userAgent` records it (tells apart
    /// processes that share one credential, e.g. the replicas of one controller).
    pub user_agent: Option<String>,
    /// When the request arrived, before any injected latency (the audit Event's
    /// `requestReceivedTimestamp`): lets a test order a client's writes against events outside
    /// the API server, such as a process resuming or a lease being taken in PostgreSQL.
    pub received_at: DateTime<Utc>,
}

impl LoggedRequest {
    /// True for the verbs that change state (whether or not the write succeeded).
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
}

#[derive(Default)]
struct Inner {
    entries: VecDeque<LoggedRequest>,
    next: u64,
}

/// A cluster's bounded request log.
#[derive(Default)]
pub(crate) struct RequestLog {
    inner: Mutex<Inner>,
}

impl RequestLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a request (its `seq` is assigned here).
    pub fn record(&self, mut req: LoggedRequest) {
        let mut inner = self.lock();
        req.seq = inner.next;
        inner.next += 1;
        if inner.entries.len() == CAPACITY {
            inner.entries.pop_front();
        }
        inner.entries.push_back(req);
    }

    /// The `seq` the next request will get: a mark for [`since`](Self::since).
    pub fn mark(&self) -> u64 {
        self.lock().next
    }

    /// Every retained request with `seq >= mark`, oldest first.
    pub fn since(&self, mark: u64) -> Vec<LoggedRequest> {
        self.lock()
            .entries
            .iter()
            .filter(|r| r.seq >= mark)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(verb: &str) -> LoggedRequest {
        LoggedRequest {
            seq: 0,
            verb: verb.into(),
            group: String::new(),
            resource: "services".into(),
            subresource: None,
            namespace: Some("shop".into()),
            name: None,
            user: "kubernetes-admin".into(),
            code: 200,
            user_agent: Some("linkplane/0.1.0 (replica a)".into()),
            received_at: Utc::now(),
        }
    }

    #[test]
    fn marks_select_later_requests_and_writes_are_told_apart() {
        let log = RequestLog::default();
        log.record(req("list"));
        let mark = log.mark();
        log.record(req("create"));
        log.record(req("get"));
        let later = log.since(mark);
        assert_eq!(later.len(), 2);
        assert_eq!(later[0].seq, 1);
        assert!(later[0].is_write());
        assert!(!later[1].is_write());
        assert_eq!(log.since(0).len(), 3);
    }
}
