//! The mirror route: which `(link, namespace, service)` keys an event concerns, queued on the
//! source cluster's mirror queue for `apply`'s workers; and the link-wide states a cluster's
//! failure or recovery gives its links.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use linkplane_core::naming::{CLUSTER_NAME_LABEL, MIRRORED_SERVICE_LABEL};

use crate::{
    cluster::ClusterRuntime,
    config::{LinkEntry, MirrorKey},
    index::Kind,
    ownership::{Labels, Ownership},
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
        let mut links = Vec::new();
        for entry in snap.links.values() {
            let touches = entry.link.spec.source == cluster || entry.link.spec.target == cluster;
            if touches && shared.leases.may_write(&entry.link.spec.source) {
                shared.status.send(StatusMsg::LinkRecovered {
                    link: entry.link.name.clone(),
                });
                links.push(entry.link.name.as_str());
            }
        }
        shared.enqueue_links(&links);
    }

    /// Full resync of each link writing into `cluster`: the links that only read its exports
    /// saw no change.
    fn on_gained(&self, shared: &Shared, cluster: &str) {
        let snap = shared.snapshot();
        let links: Vec<&str> = snap
            .links
            .values()
            .filter(|e| e.link.spec.source == cluster)
            .map(|e| e.link.name.as_str())
            .collect();
        shared.enqueue_links(&links);
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
        self.on_links(shared, &[entry]);
    }

    /// [`on_link`](Self::on_link) for many links, reading each source's index once: a cluster
    /// (re)synced or gained has N−1 links, and a scan of its whole index per link was N−1 scans.
    fn on_links(&self, shared: &Shared, entries: &[&LinkEntry]) {
        let mut by_source: BTreeMap<&str, Vec<&LinkEntry>> = BTreeMap::new();
        for e in entries {
            by_source.entry(&e.link.spec.source).or_default().push(e);
        }
        for (source, entries) in by_source {
            let Some(source) = shared.runtime(source) else {
                continue;
            };
            if !source.knows_mirrors() {
                continue;
            }
            // Each ready link's keys, starting from its target's Services.
            let mut keys: Vec<(&LinkEntry, BTreeSet<(String, String)>)> = entries
                .into_iter()
                .filter_map(|e| {
                    let target = shared.runtime(&e.link.spec.target)?;
                    if !target.is_synced() {
                        return None;
                    }
                    let idx = target.index();
                    Some((e, idx.services.iter().map(|(k, _)| k.clone()).collect()))
                })
                .collect();
            // Every mirror the links own, linkplane's and (when they adopt them) Linkerd's: a
            // mirror whose remote Service is gone is collected by its key's reconcile. A link
            // owns only objects labelled with its target's name (`Ownership::owns`), so one pass
            // over the index buckets them by that label.
            {
                let mut by_target: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
                for (i, (e, _)) in keys.iter().enumerate() {
                    by_target.entry(&e.link.spec.target).or_default().push(i);
                }
                let owners: Vec<Ownership<'_>> = keys
                    .iter()
                    .map(|(e, _)| Ownership::of_link(&e.link.spec))
                    .collect();
                let idx = source.index();
                // Services hold their labels as a map, Endpoints in the index's compact form.
                let objects = idx
                    .services
                    .iter()
                    .map(|(k, s)| (k, &s.service.labels as &dyn Labels))
                    .chain(
                        idx.endpoints
                            .iter()
                            .map(|(k, e)| (k, &e.labels as &dyn Labels)),
                    );
                for ((ns, name), labels) in objects {
                    let Some(links) = labels
                        .label(CLUSTER_NAME_LABEL)
                        .and_then(|t| by_target.get(t))
                    else {
                        continue;
                    };
                    for &i in links {
                        if let Some(remote) = owners[i].remote_of(name, labels) {
                            keys[i].1.insert((ns.clone(), remote));
                        }
                    }
                }
            }
            for (entry, keys) in keys {
                let link_name = &entry.link.name;
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
        }
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
