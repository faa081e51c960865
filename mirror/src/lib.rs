//! Per-cluster reconcilers that mirror exported services between linked clusters.
//!
//! [`Supervisor::start`] is the entry point: it reads clusters, links and export policies from
//! Postgres, follows their changes (LISTEN/NOTIFY), and runs one [`ClusterRuntime`] per cluster
//! that any link touches — one watch set (Services, Endpoints, Namespaces) feeding an in-memory
//! [`index::ClusterIndex`], shared by every link, and one write queue for the mirrors written
//! *into* that cluster. Each key `(link, namespace, service)` is planned by the pure
//! [`linkplane_core::plan::mirror::plan_service`] and written by a thin applier (`apply`) that
//! only writes what differs. Gateway addresses and liveness come from one prober per target
//! cluster ([`gateway`]); every mirror's state lands in Postgres in batches. Which local objects
//! may be written is decided in one place, `ownership`.
//!
//! Reading order: `supervisor` (wiring, configuration reloads) → `shared` (state, dispatch) and
//! `routing` (the `Route` trait every reconciler implements) → `watch` (cluster watch loop into
//! `cluster::ClusterRuntime`'s index) → `mirroring` (events to mirror keys) → `worker` (the
//! generic queue worker) → `apply` → `index` / `convert`. Federation (`<svc>-federated`),
//! Kubernetes Multi-Cluster Services ([`mcs`]: `ServiceImport`s and EndpointSlices for links with
//! `spec.mcs`) and remote-discovery credentials ([`remote_access`]) are routes like mirroring,
//! reading the same indexes through [`SupervisorHandle::runtime`].

mod apply;
mod backoff;
mod cluster;
mod config;
mod convert;
pub mod credentials;
mod error;
mod events;
mod federation;
pub mod gateway;
pub mod import;
pub mod index;
pub mod lease;
pub mod mcs;
mod metrics;
mod mirroring;
mod ownership;
mod queue;
pub mod remote_access;
mod routing;
mod shared;
mod slim;
mod status;
mod supervisor;
mod watch;
mod worker;

pub use cluster::{ClusterRuntime, WatchScope};
pub use config::{LinkEntry, MirrorKey, Options, Snapshot};
pub use credentials::{CredentialResolver, Credentials};
pub use error::{Error, Result};
pub use lease::{LeaseOptions, LeaseTable};
pub use metrics::Metrics;
pub use supervisor::{Supervisor, SupervisorHandle, install_crypto_provider};
