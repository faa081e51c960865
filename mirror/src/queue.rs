//! A keyed work queue: a key is queued at most once, a key being processed is never processed
//! concurrently, and a key changed while processing is processed again afterwards.

use std::{
    collections::{HashSet, VecDeque},
    hash::Hash,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::Notify;

struct State<K> {
    queue: VecDeque<K>,
    queued: HashSet<K>,
    active: HashSet<K>,
    dirty: HashSet<K>,
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
            })),
            notify: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        // A poisoned lock only means a worker panicked mid-update; the sets stay consistent
        // enough to keep serving (worst case a key is processed once more).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` unless already queued; marks it dirty if it is being processed.
    pub fn add(&self, key: K) {
        let mut s = self.lock();
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

    /// Queues `key` after `delay` (retries).
    pub fn add_after(&self, key: K, delay: Duration) {
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    /// Waits for the next key and marks it active; call [`done`](Self::done) afterwards.
    pub async fn next(&self) -> K {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if let Some(key) = s.queue.pop_front() {
                    s.queued.remove(&key);
                    s.active.insert(key.clone());
                    let more = !s.queue.is_empty();
                    drop(s);
                    if more {
                        self.notify.notify_one();
                    }
                    return key;
                }
            }
            notified.await;
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

    /// Keys waiting or being processed.
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
