//! The scheduling queue, as kube-scheduler's `PriorityQueue`:
//! - **active**: pods ready to be tried, highest `spec.priority` first, then oldest (the
//!   `PrioritySort` QueueSort);
//! - **back-off**: pods that failed recently wait `initial * 2^(attempts-1)`, capped at `max`
//!   (1 s doubling to 10 s by default), counted from when they failed;
//! - **unschedulable**: pods no node fit. They leave only when a [`ClusterEvent`] that one of
//!   the plugins that rejected them cares about happens (node added, labels/taints changed, a
//!   pod deleted, …), or after `unschedulable_timeout` (5 min, a safety net). A pod whose
//!   back-off has not expired goes to the back-off queue instead of active.
//!
//! An event that arrives while a pod is being scheduled ("in flight") is remembered: if that
//! pod then fails, it goes to back-off rather than unschedulable, so the event is not lost.
//! Time is tokio's, so the queue is testable with a paused clock.
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::v1;
use tokio::time::Instant;

use crate::framework::ClusterEvent;
use crate::snapshot::{pod_name, pod_namespace, pod_spec};

/// Queue timings.
#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Unschedulable pods are retried at least this often.
    pub unschedulable_timeout: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            unschedulable_timeout: Duration::from_secs(300),
        }
    }
}

/// `namespace/name`.
pub fn pod_key(pod: &v1::Pod) -> String {
    format!("{}/{}", pod_namespace(pod), pod_name(pod))
}

/// A pod handed out by [`SchedulingQueue::pop`].
#[derive(Debug, Clone)]
pub struct QueuedPod {
    pub key: String,
    pub pod: Arc<v1::Pod>,
    /// Scheduling attempts so far, this one included.
    pub attempts: u32,
    /// When the pod was first queued.
    pub initial: Instant,
    /// The scheduling cycle this attempt belongs to.
    pub cycle: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Active,
    Backoff,
    Unschedulable,
    InFlight,
}

#[derive(Debug)]
struct Entry {
    pod: Arc<v1::Pod>,
    attempts: u32,
    initial: Instant,
    /// When it entered its current queue.
    timestamp: Instant,
    /// When it last failed (back-off counts from here).
    last_failure: Option<Instant>,
    at: Where,
    gen: u64,
    /// Unschedulable: the events that may help it.
    events: BTreeSet<ClusterEvent>,
    /// In flight: the pod object changed meanwhile.
    updated_in_flight: bool,
}

#[derive(Debug, PartialEq, Eq)]
struct ActiveItem {
    priority: i32,
    timestamp: Instant,
    seq: u64,
    key: String,
    gen: u64,
}

impl Ord for ActiveItem {
    fn cmp(&self, o: &Self) -> Ordering {
        self.priority
            .cmp(&o.priority)
            .then_with(|| o.timestamp.cmp(&self.timestamp))
            .then_with(|| o.seq.cmp(&self.seq))
    }
}

impl PartialOrd for ActiveItem {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// The three queues (see the module docs).
#[derive(Debug)]
pub struct SchedulingQueue {
    cfg: QueueConfig,
    entries: HashMap<String, Entry>,
    active: BinaryHeap<ActiveItem>,
    backoff: BinaryHeap<Reverse<(Instant, u64, String, u64)>>,
    seq: u64,
    gen: u64,
    cycle: u64,
    /// The cycle at which the last cluster event arrived.
    move_request_cycle: u64,
}

fn priority(pod: &v1::Pod) -> i32 {
    pod_spec(pod).priority.unwrap_or(0)
}

impl SchedulingQueue {
    pub fn new(cfg: QueueConfig) -> SchedulingQueue {
        SchedulingQueue {
            cfg,
            entries: HashMap::new(),
            active: BinaryHeap::new(),
            backoff: BinaryHeap::new(),
            seq: 0,
            gen: 0,
            cycle: 0,
            move_request_cycle: 0,
        }
    }

    pub fn config(&self) -> QueueConfig {
        self.cfg
    }

    /// Pods known to the queue (in any queue or in flight).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// (active, back-off, unschedulable, in flight) counts.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for e in self.entries.values() {
            match e.at {
                Where::Active => c.0 += 1,
                Where::Backoff => c.1 += 1,
                Where::Unschedulable => c.2 += 1,
                Where::InFlight => c.3 += 1,
            }
        }
        c
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    fn push_active(&mut self, key: &str, now: Instant) {
        self.gen += 1;
        self.seq += 1;
        let gen = self.gen;
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        e.at = Where::Active;
        e.timestamp = now;
        e.gen = gen;
        self.active.push(ActiveItem {
            priority: priority(&e.pod),
            timestamp: now,
            seq: self.seq,
            key: key.to_string(),
            gen,
        });
    }

    fn backoff_duration(&self, attempts: u32) -> Duration {
        let mut d = self.cfg.initial_backoff;
        for _ in 1..attempts {
            if d > self.cfg.max_backoff.saturating_sub(d) {
                return self.cfg.max_backoff;
            }
            d += d;
        }
        d.min(self.cfg.max_backoff)
    }

    fn backoff_expiry(&self, e: &Entry) -> Option<Instant> {
        e.last_failure
            .map(|t| t + self.backoff_duration(e.attempts.max(1)))
    }

    /// To the back-off queue if still backing off, else active.
    fn requeue(&mut self, key: &str, now: Instant) {
        let Some(e) = self.entries.get(key) else {
            return;
        };
        match self.backoff_expiry(e) {
            Some(t) if t > now => {
                self.gen += 1;
                let gen = self.gen;
                let e = self.entries.get_mut(key).expect("present");
                e.at = Where::Backoff;
                e.timestamp = now;
                e.gen = gen;
                self.seq += 1;
                self.backoff
                    .push(Reverse((t, self.seq, key.to_string(), gen)));
            }
            _ => self.push_active(key, now),
        }
    }

    /// A new pending pod, or a new version of one. A changed spec or labels of an
    /// unschedulable pod moves it to active (or back-off).
    pub fn add(&mut self, pod: Arc<v1::Pod>, now: Instant) {
        let key = pod_key(&pod);
        match self.entries.get_mut(&key) {
            None => {
                self.entries.insert(
                    key.clone(),
                    Entry {
                        pod,
                        attempts: 0,
                        initial: now,
                        timestamp: now,
                        last_failure: None,
                        at: Where::Active,
                        gen: 0,
                        events: BTreeSet::new(),
                        updated_in_flight: false,
                    },
                );
                self.push_active(&key, now);
            }
            Some(e) => {
                let changed = e.pod.spec != pod.spec
                    || e.pod.metadata.as_ref().map(|m| &m.labels)
                        != pod.metadata.as_ref().map(|m| &m.labels);
                e.pod = pod;
                match e.at {
                    Where::InFlight => e.updated_in_flight |= changed,
                    Where::Unschedulable if changed => self.requeue(&key, now),
                    _ => {}
                }
            }
        }
    }

    /// Forget a pod (deleted, bound elsewhere, or no longer ours).
    pub fn delete(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Move expired back-offs to active and long-unschedulable pods out (call before
    /// [`Self::pop`]).
    pub fn flush(&mut self, now: Instant) {
        while let Some(Reverse((t, _, key, gen))) = self.backoff.peek().cloned() {
            if t > now {
                break;
            }
            self.backoff.pop();
            if self
                .entries
                .get(&key)
                .is_some_and(|e| e.gen == gen && e.at == Where::Backoff)
            {
                self.push_active(&key, now);
            }
        }
        let timeout = self.cfg.unschedulable_timeout;
        let stale: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.at == Where::Unschedulable && now - e.timestamp >= timeout)
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.requeue(&k, now);
        }
    }

    /// The next time something leaves the back-off queue or the unschedulable timeout fires.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let b = self.backoff.iter().map(|Reverse((t, ..))| *t).min();
        let u = self
            .entries
            .values()
            .filter(|e| e.at == Where::Unschedulable)
            .map(|e| e.timestamp + self.cfg.unschedulable_timeout)
            .min();
        match (b, u) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The highest-priority, oldest active pod; it is in flight until
    /// [`Self::done`], [`Self::unschedulable`] or [`Self::error`].
    pub fn pop(&mut self) -> Option<QueuedPod> {
        while let Some(item) = self.active.pop() {
            let Some(e) = self.entries.get_mut(&item.key) else {
                continue;
            };
            if e.gen != item.gen || e.at != Where::Active {
                continue;
            }
            self.cycle += 1;
            e.at = Where::InFlight;
            e.attempts += 1;
            e.updated_in_flight = false;
            return Some(QueuedPod {
                key: item.key,
                pod: Arc::clone(&e.pod),
                attempts: e.attempts,
                initial: e.initial,
                cycle: self.cycle,
            });
        }
        None
    }

    /// Scheduled (assumed): the queue forgets the pod.
    pub fn done(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// No node fit; `events` are those that may help. If such an event (any event) arrived
    /// while the pod was in flight, or the pod changed, it goes to back-off instead.
    pub fn unschedulable(&mut self, qp: &QueuedPod, events: BTreeSet<ClusterEvent>, now: Instant) {
        let moved = self.move_request_cycle >= qp.cycle;
        let Some(e) = self.entries.get_mut(&qp.key) else {
            return;
        };
        if e.at != Where::InFlight {
            return;
        }
        e.last_failure = Some(now);
        if moved || e.updated_in_flight || events.is_empty() {
            self.requeue(&qp.key, now);
            return;
        }
        self.gen += 1;
        e.at = Where::Unschedulable;
        e.timestamp = now;
        e.gen = self.gen;
        e.events = events;
    }

    /// An error (a plugin Error, a failed bind, an unreachable extender): back-off.
    pub fn error(&mut self, qp: &QueuedPod, now: Instant) {
        self.retry(&qp.key, now);
    }

    /// Put a known pod (in flight, or assumed then failed to bind) back with back-off.
    pub fn retry(&mut self, key: &str, now: Instant) {
        if let Some(e) = self.entries.get_mut(key) {
            e.last_failure = Some(now);
            self.requeue(key, now);
        }
    }

    /// Re-add a pod whose binding failed after the queue forgot it.
    pub fn add_failed_binding(&mut self, pod: Arc<v1::Pod>, attempts: u32, now: Instant) {
        let key = pod_key(&pod);
        self.entries.insert(
            key.clone(),
            Entry {
                pod,
                attempts,
                initial: now,
                timestamp: now,
                last_failure: Some(now),
                at: Where::Backoff,
                gen: 0,
                events: BTreeSet::new(),
                updated_in_flight: false,
            },
        );
        self.requeue(&key, now);
    }

    /// A cluster event: move the unschedulable pods it may help.
    pub fn on_event(&mut self, ev: ClusterEvent, now: Instant) {
        self.move_request_cycle = self.cycle;
        let keys: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.at == Where::Unschedulable && e.events.contains(&ev))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.requeue(&k, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, prio: i32) -> Arc<v1::Pod> {
        Arc::new(v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            spec: Some(v1::PodSpec {
                priority: Some(prio),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn events(e: &[ClusterEvent]) -> BTreeSet<ClusterEvent> {
        e.iter().copied().collect()
    }

    #[tokio::test(start_paused = true)]
    async fn priority_then_age() {
        let mut q = SchedulingQueue::new(QueueConfig::default());
        let now = Instant::now();
        q.add(pod("a", 0), now);
        tokio::time::advance(Duration::from_millis(1)).await;
        q.add(pod("b", 10), Instant::now());
        tokio::time::advance(Duration::from_millis(1)).await;
        q.add(pod("c", 0), Instant::now());
        let order: Vec<String> = std::iter::from_fn(|| q.pop().map(|p| p.key)).collect();
        assert_eq!(order, ["default/b", "default/a", "default/c"]);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_to_the_cap() {
        let q = SchedulingQueue::new(QueueConfig::default());
        let d: Vec<u64> = (1..=6).map(|a| q.backoff_duration(a).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 10, 10]);
        let mut q = SchedulingQueue::new(QueueConfig::default());
        q.add(pod("a", 0), Instant::now());
        let p = q.pop().unwrap();
        q.error(&p, Instant::now());
        q.flush(Instant::now());
        assert!(q.pop().is_none(), "backing off");
        tokio::time::advance(Duration::from_millis(999)).await;
        q.flush(Instant::now());
        assert!(q.pop().is_none());
        tokio::time::advance(Duration::from_millis(1)).await;
        q.flush(Instant::now());
        let p = q.pop().unwrap();
        assert_eq!(p.attempts, 2);
        q.error(&p, Instant::now());
        tokio::time::advance(Duration::from_millis(1999)).await;
        q.flush(Instant::now());
        assert!(q.pop().is_none());
        assert_eq!(
            q.next_wakeup(),
            Some(Instant::now() + Duration::from_millis(1))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unschedulable_pods_wait_for_a_relevant_event() {
        let mut q = SchedulingQueue::new(QueueConfig::default());
        q.add(pod("a", 0), Instant::now());
        let p = q.pop().unwrap();
        q.unschedulable(&p, events(&[ClusterEvent::NodeLabel]), Instant::now());
        tokio::time::advance(Duration::from_secs(30)).await;
        q.flush(Instant::now());
        assert!(q.pop().is_none(), "no polling");
        q.on_event(ClusterEvent::AssignedPodDelete, Instant::now());
        q.flush(Instant::now());
        assert!(q.pop().is_none(), "an irrelevant event");
        q.on_event(ClusterEvent::NodeLabel, Instant::now());
        assert_eq!(q.pop().unwrap().key, "default/a");
    }

    #[tokio::test(start_paused = true)]
    async fn a_relevant_event_during_backoff_waits_for_the_backoff() {
        let mut q = SchedulingQueue::new(QueueConfig::default());
        q.add(pod("a", 0), Instant::now());
        let p = q.pop().unwrap();
        q.unschedulable(&p, events(&[ClusterEvent::NodeAdd]), Instant::now());
        q.on_event(ClusterEvent::NodeAdd, Instant::now());
        assert!(q.pop().is_none());
        tokio::time::advance(Duration::from_secs(1)).await;
        q.flush(Instant::now());
        assert!(q.pop().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_while_in_flight_is_not_lost() {
        let mut q = SchedulingQueue::new(QueueConfig::default());
        q.add(pod("a", 0), Instant::now());
        let p = q.pop().unwrap();
        q.on_event(ClusterEvent::NodeAdd, Instant::now());
        q.unschedulable(&p, events(&[ClusterEvent::NodeLabel]), Instant::now());
        tokio::time::advance(Duration::from_secs(1)).await;
        q.flush(Instant::now());
        assert!(q.pop().is_some(), "went to back-off, not unschedulable");
    }

    #[tokio::test(start_paused = true)]
    async fn unschedulable_timeout_is_a_safety_net() {
        let mut q = SchedulingQueue::new(QueueConfig {
            unschedulable_timeout: Duration::from_secs(60),
            ..Default::default()
        });
        q.add(pod("a", 0), Instant::now());
        let p = q.pop().unwrap();
        q.unschedulable(&p, events(&[ClusterEvent::NodeAdd]), Instant::now());
        assert_eq!(
            q.next_wakeup(),
            Some(Instant::now() + Duration::from_secs(60))
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        q.flush(Instant::now());
        assert!(q.pop().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn updates_and_deletes() {
        let mut q = SchedulingQueue::new(QueueConfig::default());
        q.add(pod("a", 0), Instant::now());
        let p = q.pop().unwrap();
        q.unschedulable(&p, events(&[ClusterEvent::NodeAdd]), Instant::now());
        // A status-only update does not move it.
        q.add(pod("a", 0), Instant::now());
        tokio::time::advance(Duration::from_secs(2)).await;
        q.flush(Instant::now());
        assert!(q.pop().is_none());
        // A spec change does.
        q.add(pod("a", 5), Instant::now());
        assert_eq!(
            q.pop().unwrap().pod.spec.as_ref().unwrap().priority,
            Some(5)
        );
        q.add(pod("b", 0), Instant::now());
        q.delete("default/b");
        assert!(q.pop().is_none());
    }
}
