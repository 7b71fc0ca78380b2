//! Events, recorded as Kubernetes' components record them (client-go's EventCorrelator): an
//! Event object in the involved object's namespace ("default" for cluster-scoped objects),
//! named `<object>.<hex time>`.
//!
//! - A repeat of the same (object, type, reason, message) bumps `count` and `lastTimestamp` of
//!   the same Event instead of creating another.
//! - Similar events (same object, type and reason, different messages) are aggregated once 10
//!   distinct messages arrive within 10 minutes: further ones fold into one Event whose message
//!   starts with "(combined from similar events): ".
//! - A spam filter allows each source+object a burst of 25 writes, refilled at one per 5
//!   minutes; writes beyond it are dropped (a ReplicaSet creating 10,000 pods writes 25
//!   events, not 10,000).
//!
//! Recording never blocks the caller: events go through a bounded channel to a background task
//! and are dropped (and counted) when it is full.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::time::format_rfc3339;
use coxswain_api::v1::{Event, EventSource, ObjectMeta, ObjectReference};
use coxswain_api::Resource;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use crate::client::Client;

/// The object an event is about.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectRef(pub ObjectReference);

impl ObjectRef {
    pub fn from_resource<R: Resource>(o: &R) -> ObjectRef {
        let m = o.metadata();
        ObjectRef(ObjectReference {
            kind: R::KIND.as_str().into(),
            namespace: m.namespace.clone(),
            name: m.name.clone(),
            uid: m.uid.clone(),
            api_version: R::KIND.api_version().into(),
            resource_version: m.resource_version.clone(),
            field_path: String::new(),
        })
    }

    /// The same reference with a fieldPath ("spec.containers{web}").
    pub fn with_field_path(mut self, path: impl Into<String>) -> ObjectRef {
        self.0.field_path = path.into();
        self
    }
}

impl<R: Resource> From<&R> for ObjectRef {
    fn from(o: &R) -> Self {
        ObjectRef::from_resource(o)
    }
}

struct Record {
    object: ObjectRef,
    type_: &'static str,
    reason: String,
    message: String,
    /// When it happened: taken at the call, as client-go's recorder does, not when the queue
    /// reaches it — the Event's name and timestamps come from it.
    at: std::time::SystemTime,
}

/// Records events for one component. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Record>,
}

const QUEUE: usize = 8192;
const IN_FLIGHT: usize = 32;
const REMEMBERED: usize = 8192;

impl Recorder {
    /// `component` as in `source.component` ("default-scheduler", "kubelet", …); `host` the
    /// node for node-local components, else "".
    pub fn new(client: Client, component: &str, host: &str) -> Recorder {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(client, component.to_string(), host.to_string(), rx));
        Recorder { tx }
    }

    pub fn normal(&self, object: &ObjectRef, reason: &str, message: impl Into<String>) {
        self.record(object, "Normal", reason, message.into());
    }

    pub fn warning(&self, object: &ObjectRef, reason: &str, message: impl Into<String>) {
        self.record(object, "Warning", reason, message.into());
    }

    /// A Normal event that happened at `at` (earlier than the call): the scheduler's Scheduled
    /// event carries the moment the binding was issued, so it sorts before anything the node
    /// did with the bound pod.
    pub fn normal_at(
        &self,
        object: &ObjectRef,
        reason: &str,
        message: impl Into<String>,
        at: std::time::SystemTime,
    ) {
        self.record_at(object, "Normal", reason, message.into(), at);
    }

    fn record(&self, object: &ObjectRef, type_: &'static str, reason: &str, message: String) {
        self.record_at(object, type_, reason, message, std::time::SystemTime::now());
    }

    fn record_at(
        &self,
        object: &ObjectRef,
        type_: &'static str,
        reason: &str,
        message: String,
        at: std::time::SystemTime,
    ) {
        let r = Record {
            object: object.clone(),
            type_,
            reason: reason.to_string(),
            message,
            at,
        };
        if self.tx.try_send(r).is_err() {
            metrics::counter!("coxswain_events_dropped_total").increment(1);
        }
    }
}

/// What the recorder remembers of an Event it wrote, to fold repeats into it.
struct Seen {
    namespace: String,
    name: String,
    count: i32,
}

/// Distinct messages are aggregated from the 10th within this window (client-go's defaults).
const AGGREGATE_MAX_EVENTS: usize = 10;
const AGGREGATE_WINDOW: Duration = Duration::from_secs(600);
/// Spam filter: burst per source+object, and its refill rate (one per 5 minutes).
const SPAM_BURST: f64 = 25.0;
const SPAM_REFILL_PER_SEC: f64 = 1.0 / 300.0;

struct Aggregate {
    messages: HashSet<String>,
    last: Instant,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// client-go's EventCorrelator: aggregation, de-duplication and the spam filter.
#[derive(Default)]
struct Correlator {
    aggregates: HashMap<String, Aggregate>,
    seen: HashMap<String, Seen>,
    buckets: HashMap<String, Bucket>,
}

/// What to write for one recorded event.
#[derive(Debug, PartialEq)]
enum Write {
    Create {
        name: String,
        namespace: String,
        message: String,
    },
    Patch {
        name: String,
        namespace: String,
        count: i32,
    },
    Skip,
}

impl Correlator {
    fn correlate(&mut self, r: &Record, now: Instant, nanos: u128) -> Write {
        if self.seen.len() >= REMEMBERED {
            self.seen.clear();
        }
        if self.aggregates.len() >= REMEMBERED {
            self.aggregates.clear();
        }
        if self.buckets.len() >= REMEMBERED {
            self.buckets.clear();
        }
        let o = &r.object.0;
        // The keys are joined by hand: `format!` costs several times more, once per event.
        let object = join(&[&o.kind, &o.namespace, &o.name, &o.uid, &o.api_version]);
        let aggregate_key = join(&[&object, r.type_, &r.reason]);
        let agg = self
            .aggregates
            .entry(aggregate_key.clone())
            .or_insert_with(|| Aggregate {
                messages: HashSet::new(),
                last: now,
            });
        if now.saturating_duration_since(agg.last) > AGGREGATE_WINDOW {
            agg.messages.clear();
        }
        agg.messages.insert(r.message.clone());
        agg.last = now;
        let (key, message) = if agg.messages.len() < AGGREGATE_MAX_EVENTS {
            (
                join(&[&aggregate_key, &o.field_path, &r.message]),
                r.message.clone(),
            )
        } else {
            // Keep the set from growing; every further similar event is the aggregate.
            if let Some(m) = agg.messages.iter().next().cloned() {
                agg.messages.remove(&m);
            }
            (
                aggregate_key,
                format!("(combined from similar events): {}", r.message),
            )
        };
        let write = match self.seen.get_mut(&key) {
            Some(s) => {
                s.count += 1;
                Write::Patch {
                    name: s.name.clone(),
                    namespace: s.namespace.clone(),
                    count: s.count,
                }
            }
            None => {
                let namespace = if o.namespace.is_empty() {
                    "default".to_string()
                } else {
                    o.namespace.clone()
                };
                let name = format!("{}.{:x}", o.name, nanos);
                self.seen.insert(
                    key,
                    Seen {
                        namespace: namespace.clone(),
                        name: name.clone(),
                        count: 1,
                    },
                );
                Write::Create {
                    name,
                    namespace,
                    message,
                }
            }
        };
        // The spam filter, per source (this recorder) and object, on every write.
        let b = self.buckets.entry(object).or_insert(Bucket {
            tokens: SPAM_BURST,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * SPAM_REFILL_PER_SEC).min(SPAM_BURST);
        b.last = now;
        if b.tokens < 1.0 {
            return Write::Skip;
        }
        b.tokens -= 1.0;
        write
    }
}

/// `parts` joined by NUL (which no part holds): a cache key.
fn join(parts: &[&str]) -> String {
    let mut k = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push('\u{0}');
        }
        k.push_str(p);
    }
    k
}

/// Where the recorder's writes go: the store in production, a recorder of calls in tests.
trait Sink: Clone + Send + Sync + 'static {
    fn create(&self, event: Event) -> impl std::future::Future<Output = ()> + Send;
    fn patch(
        &self,
        namespace: String,
        name: String,
        count: i32,
        last_timestamp: String,
    ) -> impl std::future::Future<Output = ()> + Send;
}

impl Sink for Client {
    /// As [`Client::create`] (the same lease fence, request id and request), without decoding
    /// the stored Event the store answers with: the recorder does not read it.
    async fn create(&self, event: Event) {
        if let Err(e) = crate::leaderelection::check_write("create", Event::KIND.as_str()) {
            tracing::debug!(error = %e, "event create failed");
            return;
        }
        let req = crate::trace::outgoing(coxswain_api::v1::CreateRequest {
            object: Some(prost_types::Any {
                type_url: Event::KIND.type_url(),
                value: prost::Message::encode_to_vec(&event),
            }),
            dry_run: false,
        });
        if let Err(s) = self.raw().create(req).await {
            let e: crate::Error = s.into();
            tracing::debug!(error = %e, "event create failed");
        }
    }

    async fn patch(&self, namespace: String, name: String, count: i32, last_timestamp: String) {
        let patch = serde_json::json!({"count": count, "lastTimestamp": last_timestamp});
        if let Err(e) = Client::patch::<Event>(self, &namespace, &name, &patch).await {
            tracing::debug!(error = %e, "event update failed");
        }
    }
}

/// One write of one Event.
enum Op {
    Create(Box<Event>),
    Patch { count: i32, last_timestamp: String },
}

type EventKey = (String, String);

/// Issues the writes, at most one in flight per Event (by namespace/name). Of the writes that
/// arrive for an Event while one is in flight only the newest waits, so a patch never overtakes
/// the create it patches nor a later patch, and the stored count only moves forward.
struct Writer<S> {
    sink: S,
    permits: Arc<Semaphore>,
    /// Events with a write in flight, and the write waiting behind it.
    busy: HashMap<EventKey, Option<Op>>,
    done_tx: mpsc::UnboundedSender<EventKey>,
}

impl<S: Sink> Writer<S> {
    fn new(sink: S) -> (Writer<S>, mpsc::UnboundedReceiver<EventKey>) {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let w = Writer {
            sink,
            permits: Arc::new(Semaphore::new(IN_FLIGHT)),
            busy: HashMap::new(),
            done_tx,
        };
        (w, done_rx)
    }

    async fn submit(&mut self, key: EventKey, op: Op) {
        match self.busy.get_mut(&key) {
            Some(waiting) => {
                *waiting = match (waiting.take(), op) {
                    // Only if a create is still waiting (never in practice: names are unique
                    // per create): it takes the newer count.
                    (
                        Some(Op::Create(mut event)),
                        Op::Patch {
                            count,
                            last_timestamp,
                        },
                    ) => {
                        event.count = count;
                        event.last_timestamp = last_timestamp;
                        Some(Op::Create(event))
                    }
                    (_, op) => Some(op),
                }
            }
            None => {
                self.busy.insert(key.clone(), None);
                self.start(key, op).await;
            }
        }
    }

    /// A write of `key` finished: start the one waiting behind it, if any.
    async fn finished(&mut self, key: EventKey) {
        match self.busy.get_mut(&key).and_then(Option::take) {
            Some(op) => self.start(key, op).await,
            None => {
                self.busy.remove(&key);
            }
        }
    }

    async fn start(&self, key: EventKey, op: Op) {
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return;
        };
        let sink = self.sink.clone();
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            match op {
                Op::Create(event) => sink.create(*event).await,
                Op::Patch {
                    count,
                    last_timestamp,
                } => {
                    sink.patch(key.0.clone(), key.1.clone(), count, last_timestamp)
                        .await
                }
            }
            drop(permit);
            let _ = done.send(key);
        });
    }
}

async fn run<S: Sink>(sink: S, component: String, host: String, mut rx: mpsc::Receiver<Record>) {
    let mut correlator = Correlator::default();
    // The last second formatted: events come many to a second.
    let mut stamp: (u64, String) = (u64::MAX, String::new());
    let (mut writer, mut done_rx) = Writer::new(sink);
    loop {
        let r = tokio::select! {
            // Finished writes first, so a waiting write starts as soon as its turn comes.
            biased;
            Some(key) = done_rx.recv() => {
                writer.finished(key).await;
                continue;
            }
            r = rx.recv() => match r {
                Some(r) => r,
                None => break,
            },
        };
        let since_epoch =
            r.at.duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
        let nanos = since_epoch.as_nanos();
        let write = correlator.correlate(&r, Instant::now(), nanos);
        if stamp.0 != since_epoch.as_secs() {
            stamp = (
                since_epoch.as_secs(),
                format_rfc3339(since_epoch.as_secs() as i64),
            );
        }
        let now = stamp.1.clone();
        let (key, op) = match write {
            Write::Skip => {
                metrics::counter!("coxswain_events_filtered_total").increment(1);
                continue;
            }
            Write::Patch {
                name,
                namespace,
                count,
            } => (
                (namespace, name),
                Op::Patch {
                    count,
                    last_timestamp: now,
                },
            ),
            Write::Create {
                name,
                namespace,
                message,
            } => {
                let event = Event {
                    metadata: Some(ObjectMeta {
                        name: name.clone(),
                        namespace: namespace.clone(),
                        ..Default::default()
                    }),
                    involved_object: Some(r.object.0),
                    reason: r.reason,
                    message,
                    source: Some(EventSource {
                        component: component.clone(),
                        host: host.clone(),
                    }),
                    first_timestamp: now.clone(),
                    last_timestamp: now,
                    count: 1,
                    r#type: r.type_.into(),
                    reporting_component: component.clone(),
                    reporting_instance: host.clone(),
                    ..Default::default()
                };
                ((namespace, name), Op::Create(Box::new(event)))
            }
        };
        writer.submit(key, op).await;
    }
    // Every recorder is gone: let the writes already accepted finish, in order.
    while !writer.busy.is_empty() {
        let Some(key) = done_rx.recv().await else {
            break;
        };
        writer.finished(key).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, reason: &str, message: &str) -> Record {
        Record {
            object: ObjectRef(ObjectReference {
                kind: "ReplicaSet".into(),
                namespace: "default".into(),
                name: name.into(),
                uid: format!("uid-{name}"),
                api_version: "apps/v1".into(),
                ..Default::default()
            }),
            type_: "Normal",
            reason: reason.into(),
            message: message.into(),
            at: std::time::SystemTime::now(),
        }
    }

    fn creates_and_patches(ws: &[Write]) -> (usize, usize, usize) {
        ws.iter().fold((0, 0, 0), |(c, p, s), w| match w {
            Write::Create { .. } => (c + 1, p, s),
            Write::Patch { .. } => (c, p + 1, s),
            Write::Skip => (c, p, s + 1),
        })
    }

    /// Applies writes after a random delay each, as a store under concurrent load may, and
    /// keeps what it applied in the order it applied it.
    #[derive(Clone)]
    struct Jittery {
        applied: Arc<std::sync::Mutex<Vec<(String, i32, bool)>>>,
        rng: Arc<std::sync::Mutex<rand::rngs::StdRng>>,
    }

    impl Jittery {
        fn new(seed: u64) -> Jittery {
            use rand::SeedableRng;
            Jittery {
                applied: Default::default(),
                rng: Arc::new(std::sync::Mutex::new(rand::rngs::StdRng::seed_from_u64(
                    seed,
                ))),
            }
        }

        async fn delay(&self) {
            use rand::Rng;
            let ms = self.rng.lock().unwrap().random_range(0..20);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    impl Sink for Jittery {
        async fn create(&self, event: Event) {
            self.delay().await;
            let name = event.metadata.unwrap().name;
            self.applied.lock().unwrap().push((name, event.count, true));
        }

        async fn patch(&self, _: String, name: String, count: i32, _: String) {
            self.delay().await;
            self.applied.lock().unwrap().push((name, count, false));
        }
    }

    /// The regression test for writes racing: with writes that take random times, every Event's
    /// create lands first, its counts only grow, and the last count is the number recorded.
    #[tokio::test(start_paused = true)]
    async fn writes_of_one_event_apply_in_order_and_the_latest_count_wins() {
        for seed in 0..20 {
            let sink = Jittery::new(seed);
            let (tx, rx) = mpsc::channel(QUEUE);
            let task = tokio::spawn(run(sink.clone(), "c".into(), String::new(), rx));
            // 25 repeats (the spam filter's burst) on each of four objects, interleaved.
            for _ in 0..25 {
                for o in ["a", "b", "c", "d"] {
                    tx.send(rec(o, "BackOff", "Back-off restarting failed container"))
                        .await
                        .unwrap();
                }
            }
            drop(tx);
            task.await.unwrap();
            let applied = sink.applied.lock().unwrap().clone();
            let mut last: HashMap<String, i32> = HashMap::new();
            for (name, count, create) in applied {
                match last.get(&name) {
                    None => assert!(create, "seed {seed}: {name} patched before its create"),
                    Some(&prev) => assert!(
                        !create && count > prev,
                        "seed {seed}: {name} went from {prev} to {count}"
                    ),
                }
                last.insert(name, count);
            }
            assert_eq!(last.len(), 4);
            assert!(last.values().all(|&c| c == 25), "seed {seed}: {last:?}");
        }
    }

    #[test]
    fn repeats_fold_into_one_event_with_a_count() {
        let mut c = Correlator::default();
        let t = Instant::now();
        let a = c.correlate(&rec("rs", "BackOff", "same"), t, 1);
        let b = c.correlate(&rec("rs", "BackOff", "same"), t, 2);
        let Write::Create { name, .. } = a else {
            panic!("{a:?}")
        };
        assert_eq!(
            b,
            Write::Patch {
                name,
                namespace: "default".into(),
                count: 2
            }
        );
    }

    #[test]
    fn the_tenth_distinct_message_starts_one_combined_event() {
        let mut c = Correlator::default();
        let t = Instant::now();
        let ws: Vec<Write> = (0..12)
            .map(|i| {
                c.correlate(
                    &rec("rs", "SuccessfulCreate", &format!("Created pod: p{i}")),
                    t,
                    i,
                )
            })
            .collect();
        assert_eq!(creates_and_patches(&ws), (10, 2, 0));
        match &ws[9] {
            Write::Create { message, .. } => {
                assert_eq!(message, "(combined from similar events): Created pod: p9")
            }
            w => panic!("{w:?}"),
        }
        assert!(matches!(ws[11], Write::Patch { count: 3, .. }));
    }

    #[test]
    fn one_object_gets_a_burst_of_25_writes_then_one_per_five_minutes() {
        let mut c = Correlator::default();
        let t = Instant::now();
        let ws: Vec<Write> = (0..1000)
            .map(|i| {
                c.correlate(
                    &rec("rs", "SuccessfulCreate", &format!("Created pod: p{i}")),
                    t,
                    i,
                )
            })
            .collect();
        assert_eq!(creates_and_patches(&ws), (10, 15, 975));
        // Other objects have their own budget.
        assert!(matches!(
            c.correlate(&rec("other", "SuccessfulCreate", "x"), t, 5000),
            Write::Create { .. }
        ));
        let later = t + Duration::from_secs(300);
        assert!(matches!(
            c.correlate(
                &rec("rs", "SuccessfulCreate", "Created pod: late"),
                later,
                6000
            ),
            Write::Patch { .. }
        ));
        assert_eq!(
            c.correlate(
                &rec("rs", "SuccessfulCreate", "Created pod: later"),
                later,
                6001
            ),
            Write::Skip
        );
    }
}
