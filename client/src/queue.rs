//! A work queue with client-go's semantics: a key queued many times is handed out once; a key
//! is never handed to two workers at once (added again while being processed, it is queued
//! again when the worker calls `done`); failed keys come back after a per-key exponential
//! back-off; delayed adds for "requeue after". Time is tokio's, so tests can pause it.
//!
//! A queue made with [`WorkQueue::named`] records client-go's workqueue metrics under its name:
//! `workqueue_depth`, `workqueue_adds_total`, `workqueue_retries_total`,
//! `workqueue_queue_duration_seconds` (add → handed out) and `workqueue_work_duration_seconds`
//! (handed out → done).
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Per-key exponential back-off: `base * 2^failures`, capped at `max`.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub base: Duration,
    pub max: Duration,
}

impl Default for RateLimit {
    /// client-go's default per-item limiter: 5 ms doubling to 1000 s.
    fn default() -> Self {
        RateLimit {
            base: Duration::from_millis(5),
            max: Duration::from_secs(1000),
        }
    }
}

impl RateLimit {
    /// The delay after `failures` earlier failures.
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

struct State<K> {
    queue: VecDeque<K>,
    dirty: HashSet<K>,
    processing: HashSet<K>,
    failures: HashMap<K, u32>,
    /// Keys with a delayed add pending, and when it fires.
    waiting: HashMap<K, Instant>,
    /// When each queued key was added, and when each processing key was handed out (named
    /// queues only: the metrics).
    added_at: HashMap<K, Instant>,
    started_at: HashMap<K, Instant>,
    /// The request id of the watch event that last added each key (crate::trace), until the
    /// key is handed out and taken with [`WorkQueue::take_request_id`].
    request_ids: HashMap<K, std::sync::Arc<str>>,
    shutdown: bool,
}

/// At most this many keys of one queue keep a request id.
const MAX_REQUEST_IDS: usize = 4096;

struct Inner<K> {
    state: Mutex<State<K>>,
    notify: Notify,
    limit: RateLimit,
    metrics: Option<QueueMetrics>,
}

/// client-go's workqueue metrics of one named queue.
struct QueueMetrics {
    depth: metrics::Gauge,
    adds: metrics::Counter,
    retries: metrics::Counter,
    queue_duration: metrics::Histogram,
    work_duration: metrics::Histogram,
}

impl QueueMetrics {
    fn new(name: &'static str) -> QueueMetrics {
        QueueMetrics {
            depth: metrics::gauge!("workqueue_depth", "name" => name),
            adds: metrics::counter!("workqueue_adds_total", "name" => name),
            retries: metrics::counter!("workqueue_retries_total", "name" => name),
            queue_duration: metrics::histogram!("workqueue_queue_duration_seconds", "name" => name),
            work_duration: metrics::histogram!("workqueue_work_duration_seconds", "name" => name),
        }
    }
}

/// A de-duplicating, rate-limited work queue. Cheap to clone.
pub struct WorkQueue<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        WorkQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static> WorkQueue<K> {
    pub fn new(limit: RateLimit) -> Self {
        Self::build(limit, None)
    }

    /// A queue recording the workqueue metrics under `name` (bounded: one per controller).
    pub fn named(limit: RateLimit, name: &'static str) -> Self {
        Self::build(limit, Some(QueueMetrics::new(name)))
    }

    fn build(limit: RateLimit, metrics: Option<QueueMetrics>) -> Self {
        WorkQueue {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    dirty: HashSet::new(),
                    processing: HashSet::new(),
                    failures: HashMap::new(),
                    waiting: HashMap::new(),
                    added_at: HashMap::new(),
                    started_at: HashMap::new(),
                    request_ids: HashMap::new(),
                    shutdown: false,
                }),
                notify: Notify::new(),
                limit,
                metrics,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue a key (no-op when it is queued already).
    pub fn add(&self, key: K) {
        let id = crate::trace::event_id();
        let mut st = self.lock();
        if st.shutdown {
            return;
        }
        if let Some(id) = id {
            if st.request_ids.len() < MAX_REQUEST_IDS || st.request_ids.contains_key(&key) {
                st.request_ids.insert(key.clone(), id);
            }
        }
        if st.dirty.contains(&key) {
            return;
        }
        st.dirty.insert(key.clone());
        if let Some(m) = &self.inner.metrics {
            m.adds.increment(1);
            st.added_at.entry(key.clone()).or_insert_with(Instant::now);
        }
        if st.processing.contains(&key) {
            return;
        }
        st.queue.push_back(key);
        if let Some(m) = &self.inner.metrics {
            m.depth.set(st.queue.len() as f64);
        }
        drop(st);
        self.inner.notify.notify_one();
    }

    /// Queue a key after `delay` (an earlier pending add of the same key wins).
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let at = Instant::now() + delay;
        // The id of the event (or of the failed reconcile) asking for the delayed add is kept
        // for the key's next reconcile, whichever add hands it out first: a retried reconcile
        // still carries the request id of the change it reconciles. An id already pending for
        // the key wins: it came from a change made after this one's reconcile took its own id
        // (a `coxctl scale` landing while the reconcile it retries was in flight).
        let id = crate::trace::event_id();
        {
            let mut st = self.lock();
            if st.shutdown {
                return;
            }
            if let Some(id) = id {
                if st.request_ids.len() < MAX_REQUEST_IDS {
                    st.request_ids.entry(key.clone()).or_insert(id);
                }
            }
            match st.waiting.get(&key) {
                Some(t) if *t <= at => return,
                _ => {
                    st.waiting.insert(key.clone(), at);
                }
            }
        }
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            {
                let mut st = q.lock();
                if st.waiting.get(&key) == Some(&at) {
                    st.waiting.remove(&key);
                } else if st.waiting.get(&key).is_some_and(|t| *t < at) {
                    // An earlier add replaced this one and has not fired yet: it will add.
                    return;
                }
            }
            q.add(key);
        });
    }

    /// Queue a key after its back-off, and count a failure for it.
    pub fn add_rate_limited(&self, key: K) {
        let delay = {
            let mut st = self.lock();
            let n = st.failures.entry(key.clone()).or_insert(0);
            let d = self.inner.limit.delay(*n);
            *n = n.saturating_add(1);
            if let Some(m) = &self.inner.metrics {
                m.retries.increment(1);
            }
            d
        };
        self.add_after(key, delay);
    }

    /// Failures counted for a key since the last `forget`.
    pub fn failures(&self, key: &K) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Reset a key's back-off (after it was processed successfully).
    pub fn forget(&self, key: &K) {
        self.lock().failures.remove(key);
    }

    /// The next key to process; None once the queue is shut down. Call `done` when finished.
    pub async fn next(&self) -> Option<K> {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.lock();
                if st.shutdown {
                    return None;
                }
                if let Some(k) = st.queue.pop_front() {
                    st.dirty.remove(&k);
                    st.processing.insert(k.clone());
                    if let Some(m) = &self.inner.metrics {
                        let now = Instant::now();
                        if let Some(t) = st.added_at.remove(&k) {
                            m.queue_duration.record((now - t).as_secs_f64());
                        }
                        st.started_at.insert(k.clone(), now);
                        m.depth.set(st.queue.len() as f64);
                    }
                    let more = !st.queue.is_empty();
                    drop(st);
                    if more {
                        // Wake another worker for the rest.
                        self.inner.notify.notify_one();
                    }
                    return Some(k);
                }
            }
            notified.await;
        }
    }

    /// Finish processing a key; if it was added meanwhile, it is queued again.
    pub fn done(&self, key: &K) {
        let mut st = self.lock();
        st.processing.remove(key);
        if !st.dirty.contains(key) && !st.waiting.contains_key(key) && !st.request_ids.is_empty() {
            st.request_ids.remove(key);
        }
        if let Some(m) = &self.inner.metrics {
            if let Some(t) = st.started_at.remove(key) {
                m.work_duration.record(t.elapsed().as_secs_f64());
            }
        }
        if st.dirty.contains(key) {
            st.queue.push_back(key.clone());
            if let Some(m) = &self.inner.metrics {
                m.depth.set(st.queue.len() as f64);
            }
            drop(st);
            self.inner.notify.notify_one();
        }
    }

    /// The request id of the watch event that last queued `key` (handed out by [`Self::next`]),
    /// taken: the runner reconciles the key with it ([`crate::trace::scope`]).
    pub fn take_request_id(&self, key: &K) -> Option<std::sync::Arc<str>> {
        let mut st = self.lock();
        if st.request_ids.is_empty() {
            return None;
        }
        st.request_ids.remove(key)
    }

    /// Keys waiting to be handed out.
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stop handing out keys: every `next` returns None.
    pub fn shutdown(&self) {
        self.lock().shutdown = true;
        self.inner.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> WorkQueue<String> {
        WorkQueue::new(RateLimit {
            base: Duration::from_secs(1),
            max: Duration::from_secs(8),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limited_retry_keeps_the_request_id_that_queued_it() {
        let q = q();
        let id: std::sync::Arc<str> = "trace-1".into();
        crate::trace::with_event(Some(&id), || q.add("a".into()));
        let k = q.next().await.unwrap();
        let taken = q.take_request_id(&k);
        assert_eq!(taken.as_deref(), Some("trace-1"));
        // The reconcile failed: the retry is queued under the same id, after the back-off.
        crate::trace::with_event(taken.as_ref(), || q.add_rate_limited(k.clone()));
        q.done(&k);
        assert!(q.is_empty());
        assert_eq!(q.next().await.as_deref(), Some("a"));
        assert_eq!(q.take_request_id(&k).as_deref(), Some("trace-1"));
        // Failed again, and a watch event without an id queued the key meanwhile: the run that
        // comes first (the event's, at once) carries the id.
        crate::trace::with_event(Some(&id), || q.add_rate_limited(k.clone()));
        q.add(k.clone());
        q.done(&k);
        assert_eq!(q.next().await.as_deref(), Some("a"));
        assert_eq!(q.take_request_id(&k).as_deref(), Some("trace-1"));
        q.done(&k);
        // A change lands while a reconcile is in flight, and that reconcile fails: the run
        // after the back-off carries the newer change's id, not the retried one's.
        let newer: std::sync::Arc<str> = "trace-2".into();
        crate::trace::with_event(Some(&id), || q.add("a".into()));
        let k = q.next().await.unwrap();
        let taken = q.take_request_id(&k);
        crate::trace::with_event(Some(&newer), || q.add(k.clone()));
        crate::trace::with_event(taken.as_ref(), || q.add_rate_limited(k.clone()));
        q.done(&k);
        assert_eq!(q.next().await.as_deref(), Some("a"));
        assert_eq!(q.take_request_id(&k).as_deref(), Some("trace-2"));
        q.done(&k);
        // A delayed add made outside any event carries none.
        q.add_after("b".into(), Duration::from_secs(1));
        assert_eq!(q.next().await.as_deref(), Some("b"));
        assert_eq!(q.take_request_id(&"b".to_string()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_queued_twice_is_handed_out_once() {
        let q = q();
        q.add("a".into());
        q.add("a".into());
        q.add("b".into());
        assert_eq!(q.len(), 2);
        assert_eq!(q.next().await.as_deref(), Some("a"));
        assert_eq!(q.next().await.as_deref(), Some("b"));
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_added_while_processing_waits_for_done() {
        let q = q();
        q.add("a".into());
        let k = q.next().await.unwrap();
        q.add("a".into());
        assert!(q.is_empty(), "not handed out twice at once");
        q.done(&k);
        assert_eq!(q.next().await.as_deref(), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_requeues_back_off_exponentially_until_forgotten() {
        let q = q();
        for expect in [1u64, 2, 4, 8, 8] {
            let t0 = Instant::now();
            q.add_rate_limited("a".into());
            let k = q.next().await.unwrap();
            q.done(&k);
            assert_eq!(Instant::now() - t0, Duration::from_secs(expect));
        }
        assert_eq!(q.failures(&"a".to_string()), 5);
        q.forget(&"a".to_string());
        let t0 = Instant::now();
        q.add_rate_limited("a".into());
        q.next().await.unwrap();
        assert_eq!(Instant::now() - t0, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn add_after_delivers_no_earlier_than_asked() {
        let q = q();
        let t0 = Instant::now();
        q.add_after("a".into(), Duration::from_secs(5));
        q.add_after("a".into(), Duration::from_secs(9));
        assert_eq!(q.next().await.as_deref(), Some("a"));
        assert!(Instant::now() - t0 >= Duration::from_secs(5));
        assert!(Instant::now() - t0 < Duration::from_secs(9));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_releases_waiting_workers() {
        let q = q();
        let w = {
            let q = q.clone();
            tokio::spawn(async move { q.next().await })
        };
        tokio::task::yield_now().await;
        q.shutdown();
        assert_eq!(w.await.unwrap(), None);
    }
}
