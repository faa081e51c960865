//! What the reconcilers work from: the configuration [`Snapshot`] (clusters, links, policies as
//! last read from Postgres), the [`Options`] the server maps its flags onto, and the mirror
//! queue's key. Plain values: every other module may read them, they depend on none.

use std::{collections::BTreeMap, time::Duration};

use linkplane_core::{Cluster, ExportPolicy, Link};

use crate::{credentials::Credentials, lease::LeaseOptions};

/// A unit of work: mirror `(namespace, service)` of `link`'s target into its source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MirrorKey {
    /// Link name.
    pub link: String,
    /// Namespace.
    pub namespace: String,
    /// Remote Service name.
    pub service: String,
}

/// A link as the supervisor runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkEntry {
    /// The link.
    pub link: Link,
    /// Operator pause: keep mirrors, change nothing.
    pub paused: bool,
}

/// The configuration the reconcilers work from, replaced wholesale on every change.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Clusters by name.
    pub clusters: BTreeMap<String, Cluster>,
    /// Links by name.
    pub links: BTreeMap<String, LinkEntry>,
    /// Every export policy.
    pub policies: Vec<ExportPolicy>,
}

impl Snapshot {
    /// Links whose target is `cluster`.
    pub fn links_targeting<'a>(&'a self, cluster: &'a str) -> impl Iterator<Item = &'a LinkEntry> {
        self.links
            .values()
            .filter(move |l| l.link.spec.target == cluster)
    }

    /// Links whose source is `cluster`.
    pub fn links_into<'a>(&'a self, cluster: &'a str) -> impl Iterator<Item = &'a LinkEntry> {
        self.links
            .values()
            .filter(move |l| l.link.spec.source == cluster)
    }
}

/// Runtime options (the server maps its flags onto these).
#[derive(Debug, Clone)]
pub struct Options {
    /// Writes in flight per source cluster.
    pub concurrency: usize,
    /// Full resync interval: the safety net, not the main path.
    pub resync_interval: Duration,
    /// How often batched mirror states are flushed to Postgres.
    pub status_flush: Duration,
    /// How to obtain cluster credentials.
    pub credentials: Credentials,
    /// An identical Kubernetes Event is written at most once per this interval (its count is
    /// aggregated meanwhile).
    pub event_interval: Duration,
    /// Lifetime asked for remote-discovery tokens (TokenRequest `expirationSeconds`; the API
    /// server may shorten it). Renewed at two thirds of the lifetime it grants.
    pub remote_token_lifetime: Duration,
    /// Renew remote-discovery tokens at least this often (tests; operators wanting faster
    /// rotation). `None`: at two thirds of their lifetime.
    pub remote_token_refresh: Option<Duration>,
    /// Cluster leases shared with other replicas on the same database; `None` runs every
    /// cluster here (a single replica, or the reconcilers tested alone).
    pub lease: Option<LeaseOptions>,
    /// A cluster whose watches run but whose writes have failed transiently (5xx, 429,
    /// timeouts, refused connections), with no reconcile succeeding since, for this long is
    /// `Degraded`: long enough that a blip or a rolling API-server restart does not flap it,
    /// short enough to show before the per-key backoff reaches its one-minute cap.
    pub degraded_after: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 32,
            resync_interval: Duration::from_secs(600),
            status_flush: Duration::from_millis(50),
            credentials: Credentials::default(),
            event_interval: Duration::from_secs(300),
            remote_token_lifetime: Duration::from_secs(365 * 24 * 3600),
            remote_token_refresh: None,
            lease: None,
            degraded_after: Duration::from_secs(30),
        }
    }
}
