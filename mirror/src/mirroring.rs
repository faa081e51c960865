//! The mirror route: which `(link, namespace, service)` keys an event concerns, queued on the
//! source cluster's mirror queue for `apply`'s workers; and the link-wide states a cluster's
//! failure or recovery gives its links.

use std::{collections::BTreeSet, sync::Arc};

use linkplane_core::naming::MIRRORED_SERVICE_LABEL;

use crate::{
    cluster::ClusterRuntime,
    config::{LinkEntry, MirrorKey},
    index::Kind,
    ownership::Ownership,
    routing::{Change, Route},
    shared::Shared,
    status::StatusMsg,
};

/// See the module docs.
pub(crate) struct MirrorRoute;

fn enqueue(shared: &Shared, entry: &LinkEntry, namespace: &str, service: &str) {
    // A source another replica writes: its owner plans the key (the worker would drop it).
    if !shared.leases.may_write(&entry.link.spec.source) {
        return;
    }
    if let Some(rt) = shared.runtime(&entry.link.spec.source) {
        rt.queue.add(MirrorKey {
            link: entry.link.name.clone(),
            namespace: namespace.to_string(),
            service: service.to_string(),
        });
    }
}

impl Route<Shared> for MirrorRoute {
    fn on_change(&self, shared: &Shared, c: &Change<'_>) {
        let snap = shared.snapshot();
        match c.kind {
            Kind::Service | Kind::Endpoints => {
                for entry in snap.links_targeting(c.cluster) {
                    enqueue(shared, entry, c.namespace, c.name);
                }
                // One of our mirrors changed (or was deleted by hand): re-check it.
                if c.labels.contains_key(MIRRORED_SERVICE_LABEL) {
                    for entry in snap.links_into(c.cluster) {
                        let owner = Ownership::of_link(&entry.link.spec);
                        if let Some(remote) = owner.remote_of(c.name, c.labels) {
                            enqueue(shared, entry, c.namespace, &remote);
                        }
                    }
                }
            }
            Kind::Namespace => {
                for entry in snap.links_into(c.cluster) {
                    if let Some(target) = shared.runtime(&entry.link.spec.target) {
                        let names: Vec<String> = target
                            .index()
                            .services
                            .in_namespace(c.name)
                            .map(|s| s.service.name.clone())
                            .collect();
                        for svc in names {
                            enqueue(shared, entry, c.name, &svc);
                        }
                    }
                }
            }
        }
    }

    /// Full resync of each link touching `cluster`.
    fn on_synced(&self, shared: &Shared, cluster: &str) {
        let snap = shared.snapshot();
        for entry in snap.links.values() {
            let touches = entry.link.spec.source == cluster || entry.link.spec.target == cluster;
            if touches && shared.leases.may_write(&entry.link.spec.source) {
                shared.status.send(StatusMsg::LinkRecovered {
                    link: entry.link.name.clone(),
                });
                shared.enqueue_link(&entry.link.name);
            }
        }
    }

    /// Full resync of each link writing into `cluster`: the links that only read its exports
    /// saw no change.
    fn on_gained(&self, shared: &Shared, cluster: &str) {
        let snap = shared.snapshot();
        for entry in snap.links.values() {
            if entry.link.spec.source == cluster && shared.leases.may_write(cluster) {
                shared.enqueue_link(&entry.link.name);
            }
        }
    }

    /// Every mirror of every link touching `cluster` is in error.
    fn on_failed(&self, shared: &Shared, cluster: &str, message: &str) {
        let snap = shared.snapshot();
        for entry in snap.links.values() {
            let spec = &entry.link.spec;
            if (spec.source == cluster || spec.target == cluster)
                && shared.leases.may_write(&spec.source)
            {
                shared.status.send(StatusMsg::LinkError {
                    link: entry.link.name.clone(),
                    message: format!("cluster {cluster} is unreachable: {message}"),
                });
            }
        }
    }

    /// Queues every key of the link: each target Service, and each mirror we own in the source
    /// (so orphans are garbage-collected), and forgets state rows of anything else. Only once
    /// both clusters' indexes are synced.
    fn on_link(&self, shared: &Shared, entry: &LinkEntry) {
        let spec = &entry.link.spec;
        let link_name = &entry.link.name;
        let (Some(source), Some(target)) =
            (shared.runtime(&spec.source), shared.runtime(&spec.target))
        else {
            return;
        };
        if !source.knows_mirrors() || !target.is_synced() {
            return;
        }
        let mut keys: BTreeSet<(String, String)> = {
            let idx = target.index();
            idx.services.iter().map(|(k, _)| k.clone()).collect()
        };
        {
            // Every mirror the link owns, linkplane's and (when it adopts them) Linkerd's: a
            // mirror whose remote Service is gone is collected by its key's reconcile.
            let owner = Ownership::of_link(spec);
            let idx = source.index();
            for ((ns, name), s) in idx.services.iter() {
                if let Some(remote) = owner.remote_of(name, &s.service.labels) {
                    keys.insert((ns.clone(), remote));
                }
            }
            for ((ns, name), e) in idx.endpoints.iter() {
                if let Some(remote) = owner.remote_of(name, &e.labels) {
                    keys.insert((ns.clone(), remote));
                }
            }
        }
        for (ns, name) in &keys {
            source.queue.add(MirrorKey {
                link: link_name.clone(),
                namespace: ns.clone(),
                service: name.clone(),
            });
        }
        shared.status.send(StatusMsg::Retain {
            link: link_name.clone(),
            keep: keys.into_iter().collect(),
        });
    }

    fn start(&self, shared: &Arc<Shared>, rt: &Arc<ClusterRuntime>) {
        for _ in 0..shared.options.concurrency.max(1) {
            rt.push_task(tokio::spawn(crate::apply::worker(
                rt.clone(),
                shared.clone(),
            )));
        }
    }
}
