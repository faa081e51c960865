//! A keyed work queue: a key is queued at most once, a key being processed is never processed
//! concurrently, and a key changed while processing is processed again afterwards.
//!
//! Failed keys come back after a per-key exponential backoff with jitter kept inside the queue
//! (as client-go's rate-limited workqueue and kube-runtime's `error_policy` do): a 500 or 429
//! storm costs O(keys × log(time)) requests instead of one every second or two per key, and a
//! write the API server refuses for good (a 422) is retried only every few minutes. Success
//! resets a key's backoff; an event for a waiting key processes it at once.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    hash::Hash,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

use crate::backoff::Retry;

struct State<K> {
    queue: VecDeque<K>,
    queued: HashSet<K>,
    active: HashSet<K>,
    dirty: HashSet<K>,
    /// Consecutive failures per key (absent = none).
    failures: HashMap<K, u32>,
    /// Keys waiting out a backoff, by due time (and a sequence number for uniqueness).
    waiting: BTreeMap<(Instant, u64), K>,
    /// The `waiting` entry of each waiting key.
    waiting_at: HashMap<K, (Instant, u64)>,
    seq: u64,
}

/// See the module docs. Cheap to clone.
pub struct WorkQueue<K> {
    state: Arc<Mutex<State<K>>>,
    notify: Arc<Notify>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            notify: self.notify.clone(),
        }
    }
}

impl<K: Clone + Eq + Hash + Send + 'static> Default for WorkQueue<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq + Hash + Send + 'static> WorkQueue<K> {
    /// An empty queue.
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                queue: VecDeque::new(),
                queued: HashSet::new(),
                active: HashSet::new(),
                dirty: HashSet::new(),
                failures: HashMap::new(),
                waiting: BTreeMap::new(),
                waiting_at: HashMap::new(),
                seq: 0,
            })),
            notify: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        // A poisoned lock only means a worker panicked mid-update; the sets stay consistent
        // enough to keep serving (worst case a key is processed once more).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` unless already queued; marks it dirty if it is being processed. A key
    /// waiting out a backoff is queued at once: an event may be what fixes it.
    pub fn add(&self, key: K) {
        let mut s = self.lock();
        if let Some(at) = s.waiting_at.remove(&key) {
            s.waiting.remove(&at);
        }
        if s.active.contains(&key) {
            s.dirty.insert(key);
            return;
        }
        if s.queued.insert(key.clone()) {
            s.queue.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Records a failure of `key` (call after [`done`](Self::done)) and queues it again after
    /// its backoff, unless it is already queued or processing (an event came meanwhile).
    /// Returns the delay chosen.
    pub fn retry(&self, key: K, class: Retry) -> Duration {
        let mut s = self.lock();
        let failures = {
            let n = s.failures.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let delay = class.delay(failures);
        if s.queued.contains(&key) || s.active.contains(&key) || s.waiting_at.contains_key(&key) {
            return delay;
        }
        s.seq += 1;
        let at = (Instant::now() + delay, s.seq);
        s.waiting.insert(at, key.clone());
        s.waiting_at.insert(key, at);
        drop(s);
        // Wake a worker so it sleeps until the new earliest due time.
        self.notify.notify_one();
        delay
    }

    /// Forgets `key`'s failures: it succeeded.
    pub fn forget(&self, key: &K) {
        self.lock().failures.remove(key);
    }

    /// Waits for the next key and marks it active; call [`done`](Self::done) afterwards.
    pub async fn next(&self) -> K {
        loop {
            let notified = self.notify.notified();
            let wake_at = {
                let mut s = self.lock();
                let now = Instant::now();
                while let Some(entry) = s.waiting.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let key = entry.remove();
                    s.waiting_at.remove(&key);
                    if s.active.contains(&key) {
                        s.dirty.insert(key);
                    } else if s.queued.insert(key.clone()) {
                        s.queue.push_back(key);
                    }
                }
                if let Some(key) = s.queue.pop_front() {
                    s.queued.remove(&key);
                    s.active.insert(key.clone());
                    let more = !s.queue.is_empty() || !s.waiting.is_empty();
                    drop(s);
                    if more {
                        self.notify.notify_one();
                    }
                    return key;
                }
                s.waiting.first_key_value().map(|((at, _), _)| *at)
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks `key` finished; requeues it if it changed meanwhile.
    pub fn done(&self, key: &K) {
        let mut s = self.lock();
        s.active.remove(key);
        if s.dirty.remove(key) && s.queued.insert(key.clone()) {
            s.queue.push_back(key.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Keys waiting or being processed (not those waiting out a backoff).
    pub fn len(&self) -> usize {
        let s = self.lock();
        s.queue.len() + s.active.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn duplicate_keys_are_queued_once() {
        let q = WorkQueue::new();
        q.add(1);
        q.add(1);
        q.add(2);
        assert_eq!(q.next().await, 1);
        assert_eq!(q.next().await, 2);
        assert_eq!(q.len(), 2);
        q.done(&1);
        q.done(&2);
        assert_eq!(q.len(), 0);
    }

    /// Issue 15: a 500 storm cost ~1 request per key every 1-2 s. With per-key exponential
    /// backoff, ten minutes of failures cost each key O(log(time)) attempts.
    #[tokio::test(start_paused = true)]
    async fn a_failing_key_is_retried_with_exponential_backoff() {
        let q = WorkQueue::new();
        let keys = 60;
        for k in 0..keys {
            q.add(k);
        }
        let mut attempts = 0u32;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(600) {
            let k = tokio::select! {
                k = q.next() => k,
                _ = tokio::time::sleep(Duration::from_secs(600) - start.elapsed()) => break,
            };
            attempts += 1;
            q.done(&k);
            q.retry(k, Retry::Transient);
        }
        // 250 ms doubling to 60 s (45 s on average with jitter): ~9 attempts to reach the cap,
        // then about one every 45 s: ~21 each, where a 1-2 s retry made ~400.
        assert!(
            attempts <= keys * 25,
            "{attempts} attempts for {keys} keys in 10 min"
        );
        assert!(
            attempts >= keys * 8,
            "every key kept being retried: {attempts}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn success_resets_the_backoff_and_an_event_skips_the_wait() {
        let q = WorkQueue::new();
        q.add("a");
        for _ in 0..10 {
            let k = q.next().await;
            q.done(&k);
            q.retry(k, Retry::Permanent);
            tokio::time::advance(Duration::from_secs(700)).await;
        }
        let k = q.next().await;
        q.done(&k);
        let long = q.retry(k, Retry::Transient);
        assert!(
            long >= Duration::from_secs(30),
            "{long:?}: failures accumulate"
        );
        // An event for the waiting key processes it at once.
        q.add("a");
        let t0 = Instant::now();
        let k = q.next().await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
        q.done(&k);
        q.forget(&k);
        let short = q.retry(k, Retry::Transient);
        assert!(
            short <= Duration::from_millis(250),
            "{short:?}: reset on success"
        );
    }

    #[test]
    fn permanent_refusals_back_off_to_minutes() {
        assert!(Retry::Permanent.delay(1) >= Duration::from_secs(15));
        assert!(Retry::Permanent.delay(20) <= Duration::from_secs(600));
        assert!(Retry::Permanent.delay(20) >= Duration::from_secs(300));
        assert!(Retry::Soon.delay(1) <= Duration::from_millis(25));
    }

    #[tokio::test]
    async fn key_changed_while_active_is_processed_again() {
        let q = WorkQueue::new();
        q.add("a");
        let k = q.next().await;
        q.add("a");
        assert_eq!(q.lock().queue.len(), 0, "not queued while active");
        q.done(&k);
        assert_eq!(q.next().await, "a");
    }
}
