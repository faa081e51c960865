//! Watches through the real kube-rs client: raw watch streams, and a `watcher` + reflector
//! that must end up equal to the server's state through 410s, severed watches and restarts.

// Helpers outside #[test] functions panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::ResourceExt;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;

mod support;
use support::sim_with_window as sim;

/// `ADDED name`, `MODIFIED name`, `DELETED name` for a change event; `None` for the others.
fn change_line(ev: &WatchEvent<Service>) -> Option<String> {
    let (verb, s) = match ev {
        WatchEvent::Added(s) => ("ADDED", s),
        WatchEvent::Modified(s) => ("MODIFIED", s),
        WatchEvent::Deleted(s) => ("DELETED", s),
        _ => return None,
    };
    Some(format!("{verb} {}", s.name_any()))
}

fn service(name: &str, app: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"ports": [{"port": 80}]}
    }))
    .unwrap()
}

#[tokio::test]
async fn watch_streams_selected_events_and_bookmarks() {
    let (_sim, east, _dir) = sim(100).await;
    let api: Api<Service> = Api::namespaced(east.client().await.unwrap(), "default");
    api.create(&PostParams::default(), &service("before", "x"))
        .await
        .unwrap();
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let wp = WatchParams {
        bookmarks: true,
        ..WatchParams::default().labels("app=x").timeout(20)
    };
    let mut stream = Box::pin(api.watch(&wp, &rv).await.unwrap());

    api.create(&PostParams::default(), &service("other", "y"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &service("web", "x"))
        .await
        .unwrap();
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"a": "b"}}})),
    )
    .await
    .unwrap();
    api.delete("web", &DeleteParams::default()).await.unwrap();

    let mut seen = Vec::new();
    let mut bookmark = None;
    while bookmark.is_none() || seen.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("events and a bookmark arrive")
            .unwrap()
            .unwrap();
        match ev {
            WatchEvent::Bookmark(b) => bookmark = Some(b.metadata.resource_version),
            WatchEvent::Error(e) => panic!("unexpected error event {e:?}"),
            change => seen.push(change_line(&change).expect("a change event")),
        }
    }
    assert_eq!(seen, vec!["ADDED web", "MODIFIED web", "DELETED web"]);
    let bookmark: u64 = bookmark.unwrap().parse().unwrap();
    assert!(
        bookmark >= east.resource_version() - 1,
        "bookmarks carry a current version"
    );
}

#[tokio::test]
async fn severed_watches_end_and_can_resume_without_losing_events() {
    let (_sim, east, _dir) = sim(100).await;
    let api: Api<Service> = Api::namespaced(east.client().await.unwrap(), "default");
    let mut stream = Box::pin(
        api.watch(&WatchParams::default().timeout(30), "0")
            .await
            .unwrap(),
    );
    api.create(&PostParams::default(), &service("a", "x"))
        .await
        .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    let WatchEvent::Added(a) = first else {
        panic!("expected ADDED, got {first:?}")
    };
    east.faults().sever_watches();
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap();
    assert!(end.is_none(), "a severed watch ends");
    api.create(&PostParams::default(), &service("b", "x"))
        .await
        .unwrap();
    let mut resumed = Box::pin(
        api.watch(
            &WatchParams::default().timeout(30),
            &a.resource_version().unwrap(),
        )
        .await
        .unwrap(),
    );
    match resumed.next().await.unwrap().unwrap() {
        WatchEvent::Added(b) => assert_eq!(b.name_any(), "b"),
        other => panic!("expected ADDED b, got {other:?}"),
    }
}

/// name -> resourceVersion, as the server has it.
async fn server_state(api: &Api<Service>) -> BTreeMap<String, String> {
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| (s.name_any(), s.resource_version().unwrap()))
        .collect()
}

async fn assert_converges(api: &Api<Service>, store: &reflector::Store<Service>, phase: &str) {
    let want = server_state(api).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let have: BTreeMap<String, String> = store
            .state()
            .iter()
            .map(|s| (s.name_any(), s.resource_version().unwrap()))
            .collect();
        if have == want {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{phase}: reflector never converged\nwant {want:?}\nhave {have:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn churn(api: &Api<Service>, round: usize) {
    for i in 0..8 {
        api.create(
            &PostParams::default(),
            &service(&format!("r{round}-{i}"), "x"),
        )
        .await
        .unwrap();
    }
    for i in 0..4 {
        api.patch(
            &format!("r{round}-{i}"),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"round": round.to_string()}}})),
        )
        .await
        .unwrap();
    }
    for i in 4..6 {
        api.delete(&format!("r{round}-{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn reflector_stays_consistent_through_410s_severed_watches_and_restarts() {
    // A window of 5 events per type: any reconnect after more churn than that is a 410.
    let (_sim, east, _dir) = sim(5).await;
    let client = east.client().await.unwrap();
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    churn(&api, 0).await;

    let (reader, writer) = reflector::store();
    let relists = Arc::new(AtomicUsize::new(0));
    let counter = relists.clone();
    let stream = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .inspect(move |ev| {
            if matches!(ev, Ok(watcher::Event::Init)) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
    let task = tokio::spawn(async move {
        let mut stream = Box::pin(stream);
        while stream.next().await.is_some() {}
    });
    reader.wait_until_ready().await.unwrap();
    assert_converges(&api, &reader, "initial list").await;
    assert_eq!(relists.load(Ordering::SeqCst), 1);

    churn(&api, 1).await;
    assert_converges(&api, &reader, "live events").await;

    // 410: another type's write moves the cluster's resourceVersion past the last Service
    // event the watcher saw; history is forgotten and the watch cut, so the re-watch from
    // that older version gets 410 Gone and must relist.
    churn(&api, 2).await;
    assert_converges(&api, &reader, "before expiry").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "bump"}})).unwrap(),
    )
    .await
    .unwrap();
    east.faults().expire_watch_history();
    east.faults().sever_watches();
    churn(&api, 3).await;
    assert_converges(&api, &reader, "after 410").await;
    assert!(
        relists.load(Ordering::SeqCst) >= 2,
        "the 410 forced a relist"
    );

    // Severed watch with history available: resumes without a relist.
    let before = relists.load(Ordering::SeqCst);
    east.faults().sever_watches();
    tokio::time::sleep(Duration::from_millis(100)).await;
    api.create(&PostParams::default(), &service("after-sever", "x"))
        .await
        .unwrap();
    assert_converges(&api, &reader, "after sever").await;
    assert_eq!(
        relists.load(Ordering::SeqCst),
        before,
        "no relist was needed"
    );

    // Restart: the listener goes away (connections cut), comes back on the same port.
    let url = east.url();
    east.faults().stop_api().await;
    assert!(
        api.list(&ListParams::default()).await.is_err(),
        "the API is down"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    east.faults().start_api().await.unwrap();
    assert_eq!(east.url(), url);
    churn(&api, 4).await;
    assert_converges(&api, &reader, "after restart").await;

    task.abort();
}

/// apiserver watch cache (`staging/src/k8s.io/apiserver/pkg/storage/cacher/cache_watcher.go`
/// `convertToWatchEvent`): a watch with a label selector sees an object that starts matching
/// as ADDED and one that stops matching as DELETED (with its last matching content), never a
/// MODIFIED it could not select, and nothing of changes outside its selection.
#[tokio::test]
async fn selector_watches_see_objects_enter_and_leave_their_selection() {
    let (_sim, east, _dir) = sim(100).await;
    let api: Api<Service> = Api::namespaced(east.client().await.unwrap(), "default");
    let rv = east.resource_version().to_string();
    let wp = WatchParams::default().labels("app=x").timeout(20);
    let mut stream = Box::pin(api.watch(&wp, &rv).await.unwrap());
    let label = |app: &str| Patch::Merge(json!({"metadata": {"labels": {"app": app}}}));
    api.create(&PostParams::default(), &service("web", "y"))
        .await
        .unwrap();
    api.patch("web", &PatchParams::default(), &label("x"))
        .await
        .unwrap();
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"a": "b"}}})),
    )
    .await
    .unwrap();
    let left = api
        .patch("web", &PatchParams::default(), &label("y"))
        .await
        .unwrap();
    api.delete("web", &DeleteParams::default()).await.unwrap();
    // A marker that enters the selection last: everything before it has been delivered.
    api.create(&PostParams::default(), &service("marker", "x"))
        .await
        .unwrap();

    let mut seen = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("events arrive")
            .unwrap()
            .unwrap();
        let (kind, svc) = match ev {
            WatchEvent::Added(s) => ("ADDED", s),
            WatchEvent::Modified(s) => ("MODIFIED", s),
            WatchEvent::Deleted(s) => ("DELETED", s),
            other => panic!("unexpected {other:?}"),
        };
        if svc.name_any() == "marker" {
            break;
        }
        seen.push((kind, svc));
    }
    let kinds: Vec<&str> = seen.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, vec!["ADDED", "MODIFIED", "DELETED"]);
    let (_, gone) = &seen[2];
    assert_eq!(gone.labels().get("app").map(String::as_str), Some("x"));
    assert_eq!(gone.resource_version(), left.resource_version());
}

/// `!key` selects objects *without* the key, whatever a present key's value (even `""`), and
/// the bare `key` exactly the others: apimachinery `labels/selector.go`, the parser turns `!` +
/// key into `selection.DoesNotExist`, whose `Requirement.Matches` is `!ls.Has(r.key)`, and a
/// bare key into `selection.Exists` (`ls.Has(r.key)`). A watch under it sees an object that gains
/// the key leave as DELETED and one that loses it enter as ADDED (`cache_watcher.go`
/// `convertToWatchEvent`). linkplane watches clusters it does not own with
/// `!mirror.linkerd.io/mirrored-service`, so they must behave exactly so.
#[tokio::test]
async fn exists_and_does_not_exist_selectors_split_objects_by_the_key() {
    const KEY: &str = "mirror.linkerd.io/mirrored-service";
    let (_sim, east, _dir) = sim(100).await;
    let api: Api<Service> = Api::namespaced(east.client().await.unwrap(), "default");
    let with_key = |name: &str, value: &str| {
        let mut s = service(name, "x");
        s.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(KEY.to_string(), value.to_string());
        s
    };
    for s in [
        service("web", "x"),
        with_key("web-west", "true"),
        with_key("empty-value", ""),
    ] {
        api.create(&PostParams::default(), &s).await.unwrap();
    }
    let selector = format!("!{KEY}");
    let listed = api
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap();
    let names: Vec<String> = listed.items.iter().map(|s| s.name_any()).collect();
    assert_eq!(names, vec!["web"], "a key with an empty value still exists");
    // The bare key: the complement, which a replica adds for the mirrors of a cluster it
    // gains. Each list is logged with its selector, as the
    // audit Event's `requestURI` carries it.
    let mark = east.request_mark();
    let mut exists: Vec<String> = api
        .list(&ListParams::default().labels(KEY))
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| s.name_any())
        .collect();
    exists.sort();
    assert_eq!(exists, vec!["empty-value", "web-west"]);
    let logged: Vec<Option<String>> = east
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.verb == "list")
        .map(|r| r.label_selector)
        .collect();
    assert_eq!(logged, vec![Some(KEY.to_string())]);

    let rv = listed.metadata.resource_version.unwrap();
    let wp = WatchParams::default().labels(&selector).timeout(20);
    let mut stream = Box::pin(api.watch(&wp, &rv).await.unwrap());
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {KEY: "true"}}})),
    )
    .await
    .unwrap();
    api.patch(
        "web-west",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {KEY: null}}})),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("events arrive")
            .unwrap()
            .unwrap();
        seen.push(change_line(&ev).unwrap_or_else(|| panic!("unexpected {ev:?}")));
    }
    assert_eq!(seen, vec!["DELETED web", "ADDED web-west"]);
}

/// A watch from a resourceVersion that has left the retained window gets an ERROR event with
/// a `410 Expired` Status (apiserver `cacher/watch_cache.go` `getAllEventsSinceLocked`:
/// `too old resource version`), instead of a replay.
#[tokio::test]
async fn a_watch_from_before_the_window_gets_410_expired() {
    let (_sim, east, _dir) = sim(3).await;
    let api: Api<Service> = Api::namespaced(east.client().await.unwrap(), "default");
    let first = api
        .create(&PostParams::default(), &service("s0", "x"))
        .await
        .unwrap()
        .resource_version()
        .unwrap();
    for i in 1..6 {
        api.create(&PostParams::default(), &service(&format!("s{i}"), "x"))
            .await
            .unwrap();
    }
    let mut stream = Box::pin(
        api.watch(&WatchParams::default().timeout(10), &first)
            .await
            .unwrap(),
    );
    match stream.next().await {
        Some(Ok(WatchEvent::Error(e))) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(e.message.starts_with("too old resource version"), "{e:?}");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert!(
        stream.next().await.is_none(),
        "the watch ends after the error"
    );
}

/// kube-rs `watcher` (kube-runtime `watcher.rs`: on a 410 it drops the resourceVersion and
/// re-lists) recovers when the window has moved on while it was away: with a label selector,
/// objects that entered and left the selection meanwhile end up right in the reflector.
#[tokio::test]
async fn watcher_relists_after_410_and_ends_with_the_right_store() {
    // Three events per type: any reconnect after more churn than that is a 410.
    let (_sim, east, _dir) = sim(3).await;
    let api: Api<Service> = Api::namespaced(east.client().await.unwrap(), "default");
    for i in 0..4 {
        api.create(&PostParams::default(), &service(&format!("s{i}"), "x"))
            .await
            .unwrap();
    }
    let (reader, writer) = reflector::store();
    let relists = Arc::new(AtomicUsize::new(0));
    let counter = relists.clone();
    let stream = watcher(api.clone(), watcher::Config::default().labels("app=x"))
        .default_backoff()
        .reflect(writer)
        .inspect(move |ev| {
            if matches!(ev, Ok(watcher::Event::Init)) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
    let task = tokio::spawn(async move {
        let mut stream = Box::pin(stream);
        while stream.next().await.is_some() {}
    });
    reader.wait_until_ready().await.unwrap();
    assert_eq!(reader.state().len(), 4);

    // Move the cluster's resourceVersion past the last event the watcher saw (a write of
    // another type), forget the history and cut the watch: its resume is a 410. Meanwhile
    // s0 leaves the selection, s9 enters it and s1 is deleted.
    let cms: Api<ConfigMap> = Api::namespaced(api.clone().into_client(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "bump"}})).unwrap(),
    )
    .await
    .unwrap();
    east.faults().expire_watch_history();
    east.faults().sever_watches();
    let label = |app: &str| Patch::Merge(json!({"metadata": {"labels": {"app": app}}}));
    api.patch("s0", &PatchParams::default(), &label("y"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &service("s9", "y"))
        .await
        .unwrap();
    api.patch("s9", &PatchParams::default(), &label("x"))
        .await
        .unwrap();
    api.delete("s1", &DeleteParams::default()).await.unwrap();
    for i in 0..4 {
        api.create(&PostParams::default(), &service(&format!("other{i}"), "z"))
            .await
            .unwrap();
    }

    let want = ["s2", "s3", "s9"];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut have: Vec<String> = reader.state().iter().map(|s| s.name_any()).collect();
        have.sort();
        if have == want {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reflector never converged: {have:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        relists.load(Ordering::SeqCst) >= 2,
        "the 410 forced a re-list"
    );
    task.abort();
}

/// Open watches are counted while their stream lives and by who holds them, as the API server's
/// `apiserver_longrunning_requests{verb="WATCH"}` gauge counts them (by group and resource; the
/// user agent is what the audit log's `userAgent` adds): a watch the client drops is no longer
/// counted, and a list is never counted.
#[tokio::test]
async fn open_watches_are_counted_while_their_stream_lives() {
    let (_sim, east, _dir) = sim(100).await;
    let client = east.client().await.unwrap();
    let api: Api<Service> = Api::all(client.clone());
    api.list(&ListParams::default()).await.unwrap();
    assert!(east.open_watches().is_empty(), "a list is not a watch");
    assert!(
        east.open_connections() >= 1,
        "the list's connection is open"
    );

    let wp = WatchParams::default().timeout(60);
    let mut services = Box::pin(api.watch(&wp, "0").await.unwrap());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut maps = Box::pin(cms.watch(&wp, "0").await.unwrap());
    // The watch request is answered (headers sent) once an event or nothing arrives; poll once
    // with a create so both streams are surely established.
    Api::<Service>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &service("w", "x"))
        .await
        .unwrap();
    assert!(matches!(
        services.next().await,
        Some(Ok(WatchEvent::Added(_)))
    ));
    let open = east.open_watches();
    let resources: Vec<(&str, &str, usize)> = open
        .iter()
        .map(|(w, n)| (w.group.as_str(), w.resource.as_str(), *n))
        .collect();
    assert_eq!(resources, vec![("", "configmaps", 1), ("", "services", 1)]);

    drop(services);
    tokio::time::timeout(Duration::from_secs(10), async {
        while east.open_watches().len() != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the dropped watch is no longer counted");
    assert_eq!(east.open_watches()[0].0.resource, "configmaps");
    let _ = maps.as_mut();
}
