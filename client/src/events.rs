//! Events, recorded as Kubernetes' components record them: an Event object in the involved
//! object's namespace ("default" for cluster-scoped objects), named `<object>.<hex time>`; a
//! repeat of the same (object, type, reason, message) bumps `count` and `lastTimestamp` of the
//! same Event instead of creating another. Recording never blocks the caller: events go
//! through a bounded channel to a background task and are dropped (and counted) when it is
//! full.
use std::collections::HashMap;
use std::sync::Arc;

use coxswain_api::time::now_rfc3339;
use coxswain_api::v1::{Event, EventSource, ObjectMeta, ObjectReference};
use coxswain_api::Resource;
use tokio::sync::{mpsc, Semaphore};

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

    fn record(&self, object: &ObjectRef, type_: &'static str, reason: &str, message: String) {
        let r = Record {
            object: object.clone(),
            type_,
            reason: reason.to_string(),
            message,
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

async fn run(client: Client, component: String, host: String, mut rx: mpsc::Receiver<Record>) {
    let mut seen: HashMap<(String, String, &'static str, String, String), Seen> = HashMap::new();
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(r) = rx.recv().await {
        let o = &r.object.0;
        let key = (
            if o.uid.is_empty() {
                format!("{}/{}/{}", o.kind, o.namespace, o.name)
            } else {
                o.uid.clone()
            },
            o.field_path.clone(),
            r.type_,
            r.reason.clone(),
            r.message.clone(),
        );
        let now = now_rfc3339();
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let client = client.clone();
        if let Some(s) = seen.get_mut(&key) {
            s.count += 1;
            let (ns, name, count) = (s.namespace.clone(), s.name.clone(), s.count);
            tokio::spawn(async move {
                let patch = serde_json::json!({"count": count, "lastTimestamp": now});
                if let Err(e) = client.patch::<Event>(&ns, &name, &patch).await {
                    tracing::debug!(error = %e, "event update failed");
                }
                drop(permit);
            });
            continue;
        }
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        let namespace = if o.namespace.is_empty() {
            "default".to_string()
        } else {
            o.namespace.clone()
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!("{}.{:x}", o.name, nanos);
        seen.insert(
            key,
            Seen {
                namespace: namespace.clone(),
                name: name.clone(),
                count: 1,
            },
        );
        let event = Event {
            metadata: Some(ObjectMeta {
                name,
                namespace,
                ..Default::default()
            }),
            involved_object: Some(r.object.0),
            reason: r.reason,
            message: r.message,
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
        tokio::spawn(async move {
            if let Err(e) = client.create(&event).await {
                tracing::debug!(error = %e, "event create failed");
            }
            drop(permit);
        });
    }
}
