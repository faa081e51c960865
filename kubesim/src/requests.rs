//! The request log: every resource request a cluster answered (verb, resource, namespace, name,
//! user, user agent, status code, time received), as an API server's audit log records them at
//! the `Metadata` level. Tests and benchmarks read it to count what a client really sent, e.g.
//! that a controller restarted against an unchanged cluster writes nothing, or that a paused
//! replica wrote nothing between resuming and re-acquiring its lease.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    /// The `labelSelector` of a list or watch, as the audit Event's `requestURI` carries it.
    pub label_selector: Option<String>,
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

    /// Every retained request with `seq >= mark`, oldest first. Entries are in `seq` order, so
    /// the start is found by binary search: a caller polling with an advancing mark pays for the
    /// new entries only, not for the whole log under the lock every request must take.
    pub fn since(&self, mark: u64) -> Vec<LoggedRequest> {
        let inner = self.lock();
        let start = inner.entries.partition_point(|r| r.seq < mark);
        inner.entries.range(start..).cloned().collect()
    }
}

/// One open watch: what it watches and who holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpenWatch {
    /// API group (`""` for core).
    pub group: String,
    /// Plural resource name, e.g. `services`.
    pub resource: String,
    /// The client's `User-Agent` header.
    pub user_agent: Option<String>,
}

/// The watches and connections a cluster holds open right now, like the API server's
/// `apiserver_longrunning_requests{verb="WATCH"}` gauge (by group and resource) plus the
/// client's user agent, so a benchmark counts watch sets per client instead of inferring them.
#[derive(Default)]
pub(crate) struct OpenRequests {
    watches: Arc<Mutex<BTreeMap<OpenWatch, usize>>>,
    connections: Arc<AtomicUsize>,
}

/// Counts one open watch until dropped (when the stream ends or its connection closes).
pub(crate) struct WatchGuard {
    key: OpenWatch,
    watches: Arc<Mutex<BTreeMap<OpenWatch, usize>>>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let mut w = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = w.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                w.remove(&self.key);
            }
        }
    }
}

/// Counts one open connection until dropped.
pub(crate) struct ConnectionGuard(Arc<AtomicUsize>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl OpenRequests {
    /// Registers a watch; it counts until the guard is dropped.
    pub fn watch(&self, key: OpenWatch) -> WatchGuard {
        *self
            .watches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default() += 1;
        WatchGuard {
            key,
            watches: self.watches.clone(),
        }
    }

    /// Registers a connection; it counts until the guard is dropped.
    pub fn connection(&self) -> ConnectionGuard {
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(self.connections.clone())
    }

    /// Open watches by what and who, with their count.
    pub fn watches(&self) -> Vec<(OpenWatch, usize)> {
        self.watches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, n)| (k.clone(), *n))
            .collect()
    }

    /// Open client connections (TCP, whatever the protocol on top).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
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
            label_selector: None,
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
        // An advancing mark: only what came after it, nothing once it passed the end.
        assert_eq!(log.since(2).iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);
        assert!(log.since(log.mark()).is_empty());
    }

    #[test]
    fn open_watches_count_until_their_guards_drop() {
        let open = OpenRequests::default();
        let key = |r: &str| OpenWatch {
            group: String::new(),
            resource: r.into(),
            user_agent: Some("a".into()),
        };
        let a = open.watch(key("services"));
        let b = open.watch(key("services"));
        let c = open.watch(key("endpoints"));
        let conn = open.connection();
        assert_eq!(
            open.watches(),
            vec![(key("endpoints"), 1), (key("services"), 2)]
        );
        assert_eq!(open.connections(), 1);
        drop((a, c, conn));
        assert_eq!(open.watches(), vec![(key("services"), 1)]);
        assert_eq!(open.connections(), 0);
        drop(b);
        assert!(open.watches().is_empty());
    }
}
