//! Kubernetes Events (core/v1) about mirroring, so `kubectl describe` and `kubectl get events`
//! show why a Service is not mirrored, as Linkerd's service mirror records them.
//!
//! - A skipped export is recorded where Linkerd records it (linkerd-compat §2.3, §5): on the
//!   *target* Service in the target cluster, `Normal ServiceMirroringSkipped` with Linkerd's
//!   message (`Skipped mirroring service: namespace does not exist`, `… object spec has no
//!   exposed ports`). The source cluster has no place for it: the namespace is missing there.
//! - A conflict or a failed write is recorded in the source cluster, on the mirror Service (in
//!   its namespace, which exists): `Warning MirrorConflict` / `Warning MirrorError`.
//!
//! Aggregated like client-go's event correlator, so a hot loop cannot flood an API server:
//! an identical event (same object, type, reason, message) only increments a count in memory,
//! written (`count`, `lastTimestamp`) at most once per `interval` (5 min); and each object may
//! start at most [`BURST`] distinct events, then one more per `interval` (a token bucket).
//! Recording never blocks a reconcile: writes run on their own tasks and failures are logged.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{Event, EventSource, ObjectReference},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};

/// Distinct events one object may start before the bucket has to refill (client-go: 25).
pub(crate) const BURST: u32 = 25;

/// Entries not seen for this long are forgotten (bounds memory).
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// The object an event is about (a Service).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Regarding {
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    cluster: String,
    regarding: Regarding,
    kind: EventType,
    reason: &'static str,
    message: String,
}

struct Seen {
    /// Name of the Event object.
    event: String,
    count: i32,
    first: k8s_openapi::jiff::Timestamp,
    last_seen: Instant,
    last_written: Instant,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
struct State {
    seen: HashMap<Key, Seen>,
    buckets: HashMap<(String, Regarding), Bucket>,
}

/// Records Events, aggregated (see the module docs).
pub(crate) struct Recorder {
    state: Mutex<State>,
    interval: Duration,
}

impl Recorder {
    /// A recorder writing an identical event at most once per `interval`.
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            state: Mutex::default(),
            interval,
        }
    }

    /// Records one occurrence of an event about `regarding` in `cluster` (through `client`).
    pub(crate) fn record(
        self: &Arc<Self>,
        client: Client,
        cluster: &str,
        regarding: Regarding,
        kind: EventType,
        reason: &'static str,
        message: String,
    ) {
        let now = Instant::now();
        let key = Key {
            cluster: cluster.to_string(),
            regarding,
            kind,
            reason,
            message,
        };
        let write = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.seen
                .retain(|_, s| now.duration_since(s.last_seen) < FORGET_AFTER);
            match st.seen.get_mut(&key) {
                Some(s) => {
                    s.count += 1;
                    s.last_seen = now;
                    if now.duration_since(s.last_written) < self.interval {
                        return;
                    }
                    s.last_written = now;
                    Write::Update {
                        event: s.event.clone(),
                        count: s.count,
                        first: s.first,
                    }
                }
                None => {
                    let bucket_key = (key.cluster.clone(), key.regarding.clone());
                    let interval = self.interval.as_secs_f64().max(0.001);
                    let bucket = st.buckets.entry(bucket_key).or_insert(Bucket {
                        tokens: f64::from(BURST),
                        at: now,
                    });
                    bucket.tokens = (bucket.tokens
                        + now.duration_since(bucket.at).as_secs_f64() / interval)
                        .min(f64::from(BURST));
                    bucket.at = now;
                    if bucket.tokens < 1.0 {
                        tracing::debug!(cluster, reason, "event dropped: too many for one object");
                        return;
                    }
                    bucket.tokens -= 1.0;
                    let first = k8s_openapi::jiff::Timestamp::now();
                    let event = format!(
                        "{}.{:x}",
                        key.regarding.name,
                        first.as_nanosecond() as u64 ^ rand::random::<u32>() as u64
                    );
                    st.seen.insert(
                        key.clone(),
                        Seen {
                            event: event.clone(),
                            count: 1,
                            first,
                            last_seen: now,
                            last_written: now,
                        },
                    );
                    Write::Create { event }
                }
            }
        };
        tokio::spawn(async move {
            if let Err(e) = write.run(&client, &key).await {
                tracing::debug!(cluster = %key.cluster, reason = key.reason, error = %e, "recording an event");
            }
        });
    }
}

enum Write {
    Create {
        event: String,
    },
    Update {
        event: String,
        count: i32,
        first: k8s_openapi::jiff::Timestamp,
    },
}

impl Write {
    async fn run(self, client: &Client, key: &Key) -> Result<(), kube::Error> {
        let api: Api<Event> = Api::namespaced(client.clone(), &key.regarding.namespace);
        let now = k8s_openapi::jiff::Timestamp::now();
        match self {
            Write::Create { event } => {
                api.create(
                    &PostParams::default(),
                    &event_object(key, &event, 1, now, now),
                )
                .await?;
            }
            Write::Update {
                event,
                count,
                first,
            } => {
                let patch = serde_json::json!({"count": count, "lastTimestamp": Time(now)});
                match api
                    .patch(&event, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Err(kube::Error::Api(s)) if s.code == 404 => {
                        // Expired (API servers keep events for an hour): write it again.
                        api.create(
                            &PostParams::default(),
                            &event_object(key, &event, count, first, now),
                        )
                        .await?;
                    }
                    other => {
                        other?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn event_object(
    key: &Key,
    name: &str,
    count: i32,
    first: k8s_openapi::jiff::Timestamp,
    last: k8s_openapi::jiff::Timestamp,
) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(key.regarding.namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Service".into()),
            namespace: Some(key.regarding.namespace.clone()),
            name: Some(key.regarding.name.clone()),
            ..ObjectReference::default()
        },
        reason: Some(key.reason.to_string()),
        message: Some(key.message.clone()),
        type_: Some(key.kind.as_str().to_string()),
        count: Some(count),
        first_timestamp: Some(Time(first)),
        last_timestamp: Some(Time(last)),
        source: Some(EventSource {
            component: Some("linkplane".into()),
            host: None,
        }),
        reporting_component: Some("linkplane".into()),
        reporting_instance: Some("linkplane".into()),
        ..Event::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn events(client: &Client) -> Vec<Event> {
        Api::<Event>::namespaced(client.clone(), "default")
            .list(&Default::default())
            .await
            .unwrap()
            .items
    }

    async fn wait_for(client: &Client, n: usize, ok: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        for _ in 0..100 {
            let list = events(client).await;
            if list.len() == n && ok(&list) {
                return list;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("events did not converge: {:?}", events(client).await);
    }

    fn web() -> Regarding {
        Regarding {
            namespace: "default".into(),
            name: "web".into(),
        }
    }

    /// client-go's correlator: identical events are one Event whose `count` grows, written at
    /// most once per interval; one object may start at most 25 distinct events at once.
    #[tokio::test]
    async fn identical_events_aggregate_and_distinct_ones_are_rate_limited() {
        crate::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let sim = kubesim::Simulator::start(kubesim::SimOptions {
            clusters: vec!["east".into()],
            dir: dir.path().to_path_buf(),
            ..kubesim::SimOptions::default()
        })
        .await
        .unwrap();
        let client = sim.cluster("east").unwrap().client().await.unwrap();
        let rec = Arc::new(Recorder::new(Duration::from_millis(300)));
        let record = |msg: &str| {
            rec.record(
                client.clone(),
                "east",
                web(),
                EventType::Warning,
                "MirrorError",
                msg.to_string(),
            )
        };
        for _ in 0..10 {
            record("boom");
        }
        wait_for(&client, 1, |l| l[0].count == Some(1)).await;
        tokio::time::sleep(Duration::from_millis(350)).await;
        record("boom");
        let l = wait_for(&client, 1, |l| l[0].count == Some(11)).await;
        assert_eq!(l[0].reason.as_deref(), Some("MirrorError"));
        // A hot loop with a new message each time: the bucket allows BURST (24 more).
        let slow = Arc::new(Recorder::new(Duration::from_secs(3600)));
        for i in 0..100 {
            slow.record(
                client.clone(),
                "east",
                web(),
                EventType::Warning,
                "MirrorError",
                format!("failure {i}"),
            );
        }
        wait_for(&client, 1 + BURST as usize, |_| true).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(events(&client).await.len(), 1 + BURST as usize);
        sim.shutdown().await;
    }
}
