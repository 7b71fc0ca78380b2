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
//!
//! An event about an operation not yet done can be decided ahead ([`Recorder::prepare_normal_at`]):
//! the correlator decides now, and a new Event can then ride in the operation's own request (the
//! scheduler's `Scheduled` Event in its BindBatch). Once the operation is done the decision stands
//! (a repeat's patch, or a create that did not ride, is written as any other); if it failed, the
//! correlator forgets the event, as if it had never been recorded.
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
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
}

/// What the recorder's background task is sent.
enum Msg {
    /// An event to correlate and write.
    Record(Record),
    /// A write already decided: a prepared event's, once its operation was done.
    Write(EventKey, Op),
}

/// The correlator and what builds an Event, shared by the recorder's task and the callers that
/// prepare an event ahead.
struct Shared {
    component: String,
    host: String,
    state: std::sync::Mutex<State>,
}

struct State {
    correlator: Correlator,
    /// The last second formatted: events come many to a second.
    stamp: (u64, String),
}

impl Shared {
    fn new(component: &str, host: &str) -> Shared {
        Shared {
            component: component.to_string(),
            host: host.to_string(),
            state: std::sync::Mutex::new(State {
                correlator: Correlator::default(),
                stamp: (u64::MAX, String::new()),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Correlate `r` and build the write it comes to (None: the spam filter skips it). With
    /// `undo`, what correlating changed is kept there, to be taken back.
    fn decide(&self, r: Record, undo: Option<&mut Undo>) -> Option<(EventKey, Op)> {
        let since_epoch =
            r.at.duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
        let (write, now) = {
            let mut st = self.state();
            let write =
                st.correlator
                    .correlate_with(&r, Instant::now(), since_epoch.as_nanos(), undo);
            if st.stamp.0 != since_epoch.as_secs() {
                st.stamp = (
                    since_epoch.as_secs(),
                    format_rfc3339(since_epoch.as_secs() as i64),
                );
            }
            (write, st.stamp.1.clone())
        };
        let (namespace, name, message, count, first) = match write {
            Write::Skip => return None,
            Write::Patch {
                name,
                namespace,
                message,
                count,
                first_secs,
            } => (
                namespace,
                name,
                message,
                count,
                Some(format_rfc3339(first_secs as i64)),
            ),
            Write::Create {
                name,
                namespace,
                message,
            } => (namespace, name, message, 1, None),
        };
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
                component: self.component.clone(),
                host: self.host.clone(),
            }),
            first_timestamp: first.unwrap_or_else(|| now.clone()),
            last_timestamp: now,
            count,
            r#type: r.type_.into(),
            reporting_component: self.component.clone(),
            reporting_instance: self.host.clone(),
            ..Default::default()
        };
        let op = if count == 1 {
            Op::Create(Box::new(event))
        } else {
            Op::Patch(Box::new(event))
        };
        Some(((namespace, name), op))
    }
}

/// An event decided ahead of the operation it reports ([`Recorder::prepare_normal_at`]). Then
/// exactly one of [`Prepared::done`] (the operation happened) and [`Prepared::cancel`] (it did
/// not); dropped without either, it is cancelled.
pub struct Prepared {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    /// None: the spam filter skips it.
    write: Option<(EventKey, Op)>,
    /// Until done or cancelled.
    undo: Option<Undo>,
}

impl Prepared {
    /// The new Event to create along with the operation, when the correlator decided on one
    /// (None for a repeat of an Event already written, whose patch follows `done`, and for a
    /// filtered one).
    pub fn event(&self) -> Option<&Event> {
        match &self.write {
            Some((_, Op::Create(e))) => Some(e),
            _ => None,
        }
    }

    /// The operation happened. `carried`: the store's answer for the Event when it rode in the
    /// operation's request — its admission (decoded, authorized, validated; the store creates it
    /// after answering, and a later repeat whose patch finds it missing creates it whole); None
    /// when it did not ride (or the store did not know how to take it), so the recorder writes
    /// it now, as any other.
    pub fn done(mut self, carried: Option<Result<(), crate::Error>>) {
        self.undo = None;
        match (self.write.take(), carried) {
            (None, _) => metrics::counter!("coxswain_events_filtered_total").increment(1),
            (Some((key, op)), None) => {
                if self.tx.try_send(Msg::Write(key, op)).is_err() {
                    metrics::counter!("coxswain_events_dropped_total").increment(1);
                }
            }
            (Some(_), Some(Ok(()))) => {}
            (Some(_), Some(Err(e))) => tracing::debug!(error = %e, "event create failed"),
        }
    }

    /// The operation did not happen: nothing is written and the correlator forgets the event.
    pub fn cancel(self) {}
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some(u) = self.undo.take() {
            self.shared.state().correlator.undo(u);
        }
    }
}

const QUEUE: usize = 8192;
const IN_FLIGHT: usize = 32;
const REMEMBERED: usize = 8192;

impl Recorder {
    /// `component` as in `source.component` ("default-scheduler", "kubelet", …); `host` the
    /// node for node-local components, else "".
    pub fn new(client: Client, component: &str, host: &str) -> Recorder {
        Recorder::with_sink(client, component, host)
    }

    fn with_sink<S: Sink>(sink: S, component: &str, host: &str) -> Recorder {
        let (tx, rx) = mpsc::channel(QUEUE);
        let shared = Arc::new(Shared::new(component, host));
        tokio::spawn(run(sink, Arc::clone(&shared), rx));
        Recorder { tx, shared }
    }

    /// [`Recorder::normal_at`] for an operation about to be issued: the correlator decides now
    /// (so that a new Event can ride in the operation's request: [`Prepared::event`]), and the
    /// caller says afterwards whether the operation happened.
    pub fn prepare_normal_at(
        &self,
        object: &ObjectRef,
        reason: &str,
        message: impl Into<String>,
        at: std::time::SystemTime,
    ) -> Prepared {
        let r = Record {
            object: object.clone(),
            type_: "Normal",
            reason: reason.to_string(),
            message: message.into(),
            at,
        };
        let mut undo = Undo::default();
        let write = self.shared.decide(r, Some(&mut undo));
        Prepared {
            tx: self.tx.clone(),
            shared: Arc::clone(&self.shared),
            write,
            undo: Some(undo),
        }
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
        if self.tx.try_send(Msg::Record(r)).is_err() {
            metrics::counter!("coxswain_events_dropped_total").increment(1);
        }
    }
}

/// What the recorder remembers of an Event it wrote, to fold repeats into it.
struct Seen {
    namespace: String,
    name: String,
    count: i32,
    /// The first occurrence's second since the epoch (its firstTimestamp).
    first_secs: u64,
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
    /// A repeat: the Event's new count (with what a create of it needs, should it be gone).
    Patch {
        name: String,
        namespace: String,
        message: String,
        count: i32,
        first_secs: u64,
    },
    Skip,
}

/// What one correlation changed, to take it back ([`Correlator::undo`]).
#[derive(Default)]
struct Undo {
    aggregate: Option<String>,
    /// The message it added to the aggregate's set, and the one it removed from it.
    added: Option<String>,
    removed: Option<String>,
    /// The de-duplication key, and whether it was new (else its count was bumped).
    seen: Option<(String, bool)>,
    /// The spam bucket it took a token from.
    token: Option<String>,
}

impl Correlator {
    #[cfg(test)]
    fn correlate(&mut self, r: &Record, now: Instant, nanos: u128) -> Write {
        self.correlate_with(r, now, nanos, None)
    }

    /// Take back a correlation, as if the event had never been recorded (the aggregate's last
    /// time excepted). Entries forgotten since (the maps are bounded) are left alone.
    fn undo(&mut self, u: Undo) {
        if let Some(agg) = u.aggregate.and_then(|k| self.aggregates.get_mut(&k)) {
            // Re-insert first: the message removed may be the one added.
            if let Some(m) = u.removed {
                agg.messages.insert(m);
            }
            if let Some(m) = u.added {
                agg.messages.remove(&m);
            }
        }
        match u.seen {
            Some((k, true)) => {
                self.seen.remove(&k);
            }
            Some((k, false)) => {
                if let Some(s) = self.seen.get_mut(&k) {
                    s.count -= 1;
                }
            }
            None => {}
        }
        if let Some(b) = u.token.and_then(|k| self.buckets.get_mut(&k)) {
            b.tokens = (b.tokens + 1.0).min(SPAM_BURST);
        }
    }

    fn correlate_with(
        &mut self,
        r: &Record,
        now: Instant,
        nanos: u128,
        mut undo: Option<&mut Undo>,
    ) -> Write {
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
        let added = agg.messages.insert(r.message.clone());
        agg.last = now;
        if let Some(u) = undo.as_deref_mut() {
            u.aggregate = Some(aggregate_key.clone());
            u.added = added.then(|| r.message.clone());
        }
        let (key, message) = if agg.messages.len() < AGGREGATE_MAX_EVENTS {
            (
                join(&[&aggregate_key, &o.field_path, &r.message]),
                r.message.clone(),
            )
        } else {
            // Keep the set from growing; every further similar event is the aggregate.
            if let Some(m) = agg.messages.iter().next().cloned() {
                agg.messages.remove(&m);
                if let Some(u) = undo.as_deref_mut() {
                    u.removed = Some(m);
                }
            }
            (
                aggregate_key,
                format!("(combined from similar events): {}", r.message),
            )
        };
        if let Some(u) = undo.as_deref_mut() {
            u.seen = Some((key.clone(), !self.seen.contains_key(&key)));
        }
        let write = match self.seen.get_mut(&key) {
            Some(s) => {
                s.count += 1;
                Write::Patch {
                    name: s.name.clone(),
                    namespace: s.namespace.clone(),
                    message,
                    count: s.count,
                    first_secs: s.first_secs,
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
                        first_secs: (nanos / 1_000_000_000) as u64,
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
        if let Some(u) = undo.as_deref_mut() {
            u.token = Some(object.clone());
        }
        let b = self.buckets.entry(object).or_insert(Bucket {
            tokens: SPAM_BURST,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * SPAM_REFILL_PER_SEC).min(SPAM_BURST);
        b.last = now;
        if b.tokens < 1.0 {
            if let Some(u) = undo {
                u.token = None;
            }
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
    /// A repeat: `count` and `lastTimestamp` of the stored Event; if it is gone (NotFound), the
    /// whole `event` is created instead, as client-go's recordToSink does.
    fn patch(&self, event: Event) -> impl std::future::Future<Output = ()> + Send;
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

    async fn patch(&self, event: Event) {
        let patch =
            serde_json::json!({"count": event.count, "lastTimestamp": event.last_timestamp});
        let meta = event.metadata.as_ref().cloned().unwrap_or_default();
        match Client::patch::<Event>(self, &meta.namespace, &meta.name, &patch).await {
            Ok(_) => {}
            // Gone (deleted, expired, or its create not committed yet): create it whole.
            Err(crate::Error::NotFound(_)) => Sink::create(self, event).await,
            Err(e) => tracing::debug!(error = %e, "event update failed"),
        }
    }
}

/// One write of one Event.
enum Op {
    Create(Box<Event>),
    /// A repeat: the Event with its new count and lastTimestamp.
    Patch(Box<Event>),
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
                    (Some(Op::Create(_)), Op::Patch(event)) => Some(Op::Create(event)),
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
                Op::Patch(event) => sink.patch(*event).await,
            }
            drop(permit);
            let _ = done.send(key);
        });
    }
}

async fn run<S: Sink>(sink: S, shared: Arc<Shared>, mut rx: mpsc::Receiver<Msg>) {
    let (mut writer, mut done_rx) = Writer::new(sink);
    loop {
        let msg = tokio::select! {
            // Finished writes first, so a waiting write starts as soon as its turn comes.
            biased;
            Some(key) = done_rx.recv() => {
                writer.finished(key).await;
                continue;
            }
            m = rx.recv() => match m {
                Some(m) => m,
                None => break,
            },
        };
        let (key, op) = match msg {
            Msg::Write(key, op) => (key, op),
            Msg::Record(r) => match shared.decide(r, None) {
                Some(w) => w,
                None => {
                    metrics::counter!("coxswain_events_filtered_total").increment(1);
                    continue;
                }
            },
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
mod tests;
