//! The watch cache: every object in memory as its encoded bytes plus the few fields selectors and
//! the garbage collector need, the retained window of change events, and indexes by uid and
//! owner. It has one writer, the task that applies the backend's change feed; everything else
//! reads it.
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use coxswain_api::selector::{supported_fields, FieldSelector, LabelSelector};
use coxswain_api::v1::ObjectMeta;
use coxswain_api::{Kind, Object};
use prost::Message;

use crate::backend::{Change, KeyValue};

/// The backend key of an object: "/registry/pods/default/web-1", "/registry/nodes/node1".
pub fn backend_key(kind: Kind, namespace: &str, name: &str) -> String {
    format!(
        "/registry/{}/{}",
        kind.plural(),
        map_key(kind, namespace, name)
    )
}

/// The key of an object within its kind: "namespace/name", or "name" when cluster-scoped.
pub fn map_key(kind: Kind, namespace: &str, name: &str) -> String {
    if kind.namespaced() {
        format!("{namespace}/{name}")
    } else {
        name.to_string()
    }
}

fn parse_backend_key(key: &str) -> Option<(Kind, &str)> {
    let rest = key.strip_prefix("/registry/")?;
    let (plural, mkey) = rest.split_once('/')?;
    let kind = Kind::ALL.iter().copied().find(|k| k.plural() == plural)?;
    Some((kind, mkey))
}

/// Protobuf bytes that, appended to an encoded object, set its metadata.resourceVersion: a
/// message field that occurs twice is merged, and a scalar's last occurrence wins. Every kind
/// message has metadata at field 3.
fn resource_version_suffix(revision: i64) -> Vec<u8> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct MetaOnly {
        #[prost(message, optional, tag = "3")]
        metadata: Option<ObjectMeta>,
    }
    MetaOnly {
        metadata: Some(ObjectMeta {
            resource_version: revision.to_string(),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

/// Append the resourceVersion to encoded object bytes.
pub fn with_resource_version(raw: &[u8], revision: i64) -> Bytes {
    let suffix = resource_version_suffix(revision);
    let mut v = Vec::with_capacity(raw.len() + suffix.len());
    v.extend_from_slice(raw);
    v.extend_from_slice(&suffix);
    Bytes::from(v)
}

/// Strings packed into one allocation, separated by NUL, which no label, name, uid or field
/// value contains. Keeps the per-object overhead of the cache to a few allocations.
#[derive(Debug, Clone, Default)]
pub struct Packed(Box<str>);

impl Packed {
    fn new<'a>(parts: impl IntoIterator<Item = &'a str>) -> Packed {
        let mut s = String::new();
        for (i, p) in parts.into_iter().enumerate() {
            if i > 0 {
                s.push('\0');
            }
            s.push_str(p);
        }
        Packed(s.into_boxed_str())
    }

    /// The parts; none for an empty pack (so packs must not hold a single empty part).
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let empty = self.0.is_empty();
        self.0.split('\0').filter(move |_| !empty)
    }

    fn get(&self, i: usize) -> Option<&str> {
        self.0.split('\0').nth(i)
    }
}

/// One object as the cache holds it.
#[derive(Debug)]
pub struct Stored {
    pub kind: Kind,
    /// The key within its kind, "namespace/name" or "name" (see [`map_key`]).
    key: Box<str>,
    /// The revision of the object's last write (its resourceVersion).
    pub revision: i64,
    /// The full protobuf encoding, resourceVersion included.
    pub bytes: Bytes,
    /// Labels as key, value, key, value, …
    labels: Packed,
    /// Values of the kind's selectable fields beyond metadata.*, in `supported_fields` order.
    fields: Packed,
    pub uid: Box<str>,
    /// uids of the owners in metadata.ownerReferences.
    owners: Packed,
    /// metadata.deletionTimestamp is set.
    pub deleting: bool,
    /// The x-request-id of the write that made this revision, if it carried one.
    pub request_id: Option<Arc<str>>,
}

impl Stored {
    fn build(kind: Kind, revision: i64, raw: &[u8]) -> Result<Stored, prost::DecodeError> {
        let obj = kind.decode(raw)?;
        Ok(Stored::from_object(
            &obj,
            revision,
            with_resource_version(raw, revision),
        ))
    }

    /// The entry for `obj`, whose encoding `raw` is about to be written, built by the writer
    /// from the object it already has: the cache then need not decode what was just encoded
    /// ([`Cache::expect_built`]). Revision and resourceVersion are set when it is applied.
    pub fn prebuilt(obj: &Object, raw: Bytes) -> Stored {
        Stored::from_object(obj, 0, raw)
    }

    fn from_object(obj: &Object, revision: i64, bytes: Bytes) -> Stored {
        let meta = obj.meta();
        let kind = obj.kind();
        let values: Vec<String> = supported_fields(kind)
            .iter()
            .filter(|f| !f.starts_with("metadata."))
            .map(|f| coxswain_api::selector::field_value(obj, f).unwrap_or_default())
            .collect();
        Stored {
            kind,
            key: map_key(kind, &meta.namespace, &meta.name).into_boxed_str(),
            revision,
            bytes,
            labels: Packed::new(
                meta.labels
                    .iter()
                    .flat_map(|(k, v)| [k.as_str(), v.as_str()]),
            ),
            fields: Packed::new(values.iter().map(String::as_str)),
            uid: meta.uid.as_str().into(),
            owners: Packed::new(
                meta.owner_references
                    .iter()
                    .map(|r| r.uid.as_str())
                    .filter(|u| !u.is_empty()),
            ),
            deleting: !meta.deletion_timestamp.is_empty(),
            request_id: None,
        }
    }

    /// The key within its kind: "namespace/name", or "name" when cluster-scoped.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn namespace(&self) -> &str {
        if self.kind.namespaced() {
            self.key.split_once('/').map_or("", |(ns, _)| ns)
        } else {
            ""
        }
    }

    pub fn name(&self) -> &str {
        if self.kind.namespaced() {
            self.key.split_once('/').map_or(&self.key, |(_, n)| n)
        } else {
            &self.key
        }
    }

    /// uids of the owners in metadata.ownerReferences.
    pub fn owners(&self) -> impl Iterator<Item = &str> {
        self.owners.iter()
    }

    pub fn has_owners(&self) -> bool {
        self.owners.iter().next().is_some()
    }

    /// The object, decoded.
    pub fn decode(&self) -> Object {
        // The bytes were produced from a decodable object; a failure here is a bug, and the
        // empty object of the kind is the least harmful answer.
        self.kind
            .decode(&self.bytes)
            .unwrap_or_else(|_| self.kind.empty())
    }

    /// Every label as (key, value).
    pub fn label_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut it = self.labels.iter();
        std::iter::from_fn(move || Some((it.next()?, it.next()?)))
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        let mut it = self.labels.iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            if k == key {
                return Some(v);
            }
        }
        None
    }

    pub fn field(&self, field: &str) -> Option<String> {
        match field {
            "metadata.name" => return Some(self.name().to_string()),
            "metadata.namespace" => return Some(self.namespace().to_string()),
            _ => {}
        }
        supported_fields(self.kind)
            .iter()
            .filter(|f| !f.starts_with("metadata."))
            .position(|f| *f == field)
            .and_then(|i| self.fields.get(i))
            .map(str::to_string)
    }

    pub fn matches(&self, labels: &LabelSelector, fields: &FieldSelector) -> bool {
        (labels.is_everything() || labels.matches_with(&|k| self.label(k)))
            && (fields.is_empty() || fields.matches_with(&|f| self.field(f)))
    }

    /// The object as a google.protobuf.Any, without decoding it.
    pub fn to_any(&self) -> prost_types::Any {
        prost_types::Any {
            type_url: self.kind.type_url(),
            value: self.bytes.to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watchers see it.
#[derive(Debug)]
pub struct Event {
    pub revision: i64,
    pub typ: EventType,
    /// The object after the change; for a deletion its last state at the deletion's revision.
    pub object: Arc<Stored>,
    /// The object before the change (None for ADDED).
    pub prev: Option<Arc<Stored>>,
}

/// Per kind, the revision of the last change applied to an object of that kind (0: none since
/// the cache was built), readable without the cache's lock ([`Cache::kind_revisions`]). A
/// change is recorded here before the revision that holds it is published, so whoever has
/// seen a write acknowledged reads a revision at least as high: the RBAC authorizer keys its
/// decoded roles and bindings on it instead of looking at the cache at every request.
#[derive(Debug)]
pub struct KindRevisions(Box<[std::sync::atomic::AtomicI64]>);

impl KindRevisions {
    fn new() -> KindRevisions {
        KindRevisions(
            Kind::ALL
                .iter()
                .map(|_| std::sync::atomic::AtomicI64::new(0))
                .collect(),
        )
    }

    pub fn get(&self, kind: Kind) -> i64 {
        self.0[kind as usize].load(std::sync::atomic::Ordering::Acquire)
    }

    fn set(&self, kind: Kind, revision: i64) {
        self.0[kind as usize].fetch_max(revision, std::sync::atomic::Ordering::Release);
    }
}

pub struct Cache {
    /// The revision of the last change applied.
    pub revision: i64,
    /// Per kind, the last change's revision (shared, read without this cache's lock).
    kind_revisions: Arc<KindRevisions>,
    /// Events with revision <= compacted are no longer retained.
    pub compacted: i64,
    objects: HashMap<Kind, BTreeMap<String, Arc<Stored>>>,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    /// uid → (kind, map key)
    uids: HashMap<Box<str>, (Kind, String)>,
    /// owner uid → dependents (kind, map key)
    dependents: HashMap<Box<str>, BTreeSet<(Kind, String)>>,
    /// The allocators' RangeAllocation records (`/registry/ranges/...`): key → (bytes,
    /// mod_revision). Not objects: no events, no watch.
    ranges: HashMap<String, (Bytes, i64)>,
    /// Writes in flight, by backend key: what the change that commits them takes.
    pending: HashMap<String, Pending>,
}

/// What a write in flight leaves for the change that commits it.
#[derive(Default)]
struct Pending {
    /// A write carrying a request id: (the mod_revision it compares against, the id). The
    /// change that replaces exactly that revision takes it.
    id: Option<(i64, Arc<str>)>,
    /// The entry the writer built from its decoded object ([`Stored::prebuilt`]), its `bytes`
    /// the exact value written. The change of that key with exactly those bytes takes it
    /// instead of decoding them.
    built: Option<Stored>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.id.is_none() && self.built.is_none()
    }
}

/// At most this many request ids wait for their writes (one per write in flight).
const MAX_PENDING_IDS: usize = 4096;

impl Cache {
    /// A cache holding `kvs` at `revision`, retaining at most `history_limit` events.
    pub fn new(revision: i64, kvs: Vec<KeyValue>, history_limit: usize) -> Cache {
        let mut c = Cache {
            revision,
            kind_revisions: Arc::new(KindRevisions::new()),
            compacted: revision,
            objects: HashMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            uids: HashMap::new(),
            dependents: HashMap::new(),
            ranges: HashMap::new(),
            pending: HashMap::new(),
        };
        for kv in kvs {
            if kv.key.starts_with(crate::alloc::RANGES_PREFIX) {
                c.ranges.insert(kv.key, (kv.value, kv.mod_revision));
                continue;
            }
            let Some((kind, mkey)) = parse_backend_key(&kv.key) else {
                tracing::warn!(key = %kv.key, "ignoring a stored key of no known kind");
                continue;
            };
            match Stored::build(kind, kv.mod_revision, &kv.value) {
                Ok(s) => {
                    let s = Arc::new(s);
                    c.index(kind, mkey, &s);
                    c.objects
                        .entry(kind)
                        .or_default()
                        .insert(mkey.to_string(), s);
                }
                Err(e) => {
                    tracing::error!(key = %kv.key, error = %e, "undecodable stored object skipped")
                }
            }
        }
        c
    }

    /// A write of backend `key` over its revision `prev` (0: absent) carries request `id`: the
    /// change that commits it is stamped with the id (see [`Stored::request_id`]).
    pub fn expect_request_id(&mut self, key: &str, prev: i64, id: &Arc<str>) {
        if let Some(p) = self.pending_slot(key) {
            p.id = Some((prev, id.clone()));
        }
    }

    /// The pending slot of `key`, made if there is room (one per write in flight).
    fn pending_slot(&mut self, key: &str) -> Option<&mut Pending> {
        if self.pending.len() >= MAX_PENDING_IDS && !self.pending.contains_key(key) {
            return None;
        }
        Some(self.pending.entry(key.to_string()).or_default())
    }

    /// Take what `pick` takes from `key`'s slot, dropping the slot once it is empty.
    fn take_pending<T>(
        &mut self,
        key: &str,
        pick: impl FnOnce(&mut Pending) -> Option<T>,
    ) -> Option<T> {
        if self.pending.is_empty() {
            return None;
        }
        let p = self.pending.get_mut(key)?;
        let taken = pick(p);
        if p.is_empty() {
            self.pending.remove(key);
        }
        taken
    }

    /// The write of `key` carrying `id` is over (committed and applied, or failed).
    pub fn forget_request_id(&mut self, key: &str, id: &Arc<str>) {
        self.take_pending(key, |p| p.id.take_if(|(_, i)| Arc::ptr_eq(i, id)));
    }

    /// A write of backend `key` with the value `built.bytes` is in flight, and `built` is the
    /// entry for it ([`Stored::prebuilt`]).
    pub fn expect_built(&mut self, key: &str, built: Stored) {
        if let Some(p) = self.pending_slot(key) {
            p.built = Some(built);
        }
    }

    /// The write of `key` with value `raw` is over (committed and applied, or failed).
    pub fn forget_built(&mut self, key: &str, raw: &Bytes) {
        self.take_pending(key, |p| {
            p.built
                .take_if(|b| b.bytes.as_ptr() == raw.as_ptr() && b.bytes.len() == raw.len())
        });
    }

    /// The entry built by the writer of this very value of `key`, if one waits (the bytes
    /// must be equal: a racing writer's entry for another value is not taken).
    fn take_built(&mut self, key: &str, raw: &Bytes) -> Option<Stored> {
        self.take_pending(key, |p| {
            p.built.take_if(|b| {
                (b.bytes.as_ptr() == raw.as_ptr() && b.bytes.len() == raw.len()) || b.bytes == *raw
            })
        })
    }

    /// The id waiting for the change of `key` that replaces revision `prev` (0: a create).
    fn take_request_id(&mut self, key: &str, prev: i64) -> Option<Arc<str>> {
        self.take_pending(key, |p| p.id.take_if(|(p, _)| *p == prev).map(|(_, id)| id))
    }

    fn index(&mut self, kind: Kind, mkey: &str, s: &Stored) {
        if !s.uid.is_empty() {
            self.uids.insert(s.uid.clone(), (kind, mkey.to_string()));
        }
        for o in s.owners.iter() {
            self.dependents
                .entry(o.into())
                .or_default()
                .insert((kind, mkey.to_string()));
        }
    }

    fn unindex(&mut self, kind: Kind, mkey: &str, s: &Stored) {
        if self
            .uids
            .get(&s.uid)
            .is_some_and(|(k, m)| *k == kind && m == mkey)
        {
            self.uids.remove(&s.uid);
        }
        for o in s.owners.iter() {
            if let Some(set) = self.dependents.get_mut(o) {
                set.remove(&(kind, mkey.to_string()));
                if set.is_empty() {
                    self.dependents.remove(o);
                }
            }
        }
    }

    /// Per kind, the revision of the last change applied ([`KindRevisions`]).
    pub fn kind_revisions(&self) -> Arc<KindRevisions> {
        self.kind_revisions.clone()
    }

    /// Apply one committed change from the backend's feed.
    pub fn apply(&mut self, change: Change) -> Option<Arc<Event>> {
        self.revision = self.revision.max(change.revision);
        if change.key.starts_with(crate::alloc::RANGES_PREFIX) {
            match change.value {
                Some(v) => self.ranges.insert(change.key, (v, change.revision)),
                None => self.ranges.remove(&change.key),
            };
            return None;
        }
        let Some((kind, mkey)) = parse_backend_key(&change.key) else {
            tracing::warn!(key = %change.key, "ignoring a change to a key of no known kind");
            return None;
        };
        let prev = self.objects.get(&kind).and_then(|m| m.get(mkey)).cloned();
        if let Some(p) = &prev {
            self.unindex(kind, mkey, p);
        }
        let request_id = self.take_request_id(&change.key, prev.as_ref().map_or(0, |p| p.revision));
        let event = match change.value {
            Some(raw) => {
                let built = match self.take_built(&change.key, &raw) {
                    Some(b) => Ok(Stored {
                        revision: change.revision,
                        bytes: with_resource_version(&raw, change.revision),
                        ..b
                    }),
                    None => Stored::build(kind, change.revision, &raw),
                };
                let stored = match built {
                    Ok(s) => Arc::new(Stored { request_id, ..s }),
                    Err(e) => {
                        tracing::error!(key = %change.key, error = %e, "undecodable object in feed");
                        return None;
                    }
                };
                self.index(kind, mkey, &stored);
                self.objects
                    .entry(kind)
                    .or_default()
                    .insert(mkey.to_string(), stored.clone());
                let typ = if prev.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                Event {
                    revision: change.revision,
                    typ,
                    object: stored,
                    prev,
                }
            }
            None => {
                let prev = prev?;
                if let Some(m) = self.objects.get_mut(&kind) {
                    m.remove(mkey);
                }
                let last = Stored {
                    bytes: with_resource_version(&prev.bytes, change.revision),
                    revision: change.revision,
                    kind: prev.kind,
                    key: prev.key.clone(),
                    labels: prev.labels.clone(),
                    fields: prev.fields.clone(),
                    uid: prev.uid.clone(),
                    owners: prev.owners.clone(),
                    deleting: prev.deleting,
                    request_id,
                };
                Event {
                    revision: change.revision,
                    typ: EventType::Deleted,
                    object: Arc::new(last),
                    prev: Some(prev),
                }
            }
        };
        self.kind_revisions.set(kind, change.revision);
        let event = Arc::new(event);
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            if let Some(e) = self.history.pop_front() {
                self.compacted = e.revision;
            }
        }
        Some(event)
    }

    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Arc<Stored>> {
        self.objects
            .get(&kind)?
            .get(&map_key(kind, namespace, name))
            .cloned()
    }

    /// A RangeAllocation record and its mod_revision.
    pub fn range_allocation(&self, key: &str) -> Option<(Bytes, i64)> {
        self.ranges.get(key).cloned()
    }

    pub fn get_by_key(&self, kind: Kind, mkey: &str) -> Option<Arc<Stored>> {
        self.objects.get(&kind)?.get(mkey).cloned()
    }

    pub fn get_by_uid(&self, uid: &str) -> Option<Arc<Stored>> {
        let (kind, mkey) = self.uids.get(uid)?;
        self.get_by_key(*kind, mkey)
    }

    /// Dependents of an owner uid.
    pub fn dependents_of(&self, uid: &str) -> Vec<Arc<Stored>> {
        self.dependents
            .get(uid)
            .map(|set| {
                set.iter()
                    .filter_map(|(k, m)| self.get_by_key(*k, m))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Objects of a kind in key order, optionally in one namespace, from the map key `start`
    /// on (inclusive; a continue token's start is the last key of the page before, then "\0").
    pub fn range<'a>(
        &'a self,
        kind: Kind,
        namespace: Option<&'a str>,
        start: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = &'a Arc<Stored>> + 'a> {
        use std::ops::Bound;
        let Some(m) = self.objects.get(&kind) else {
            return Box::new(std::iter::empty());
        };
        let prefix = match namespace {
            Some(ns) if kind.namespaced() => Some(format!("{ns}/")),
            _ => None,
        };
        // A start before the namespace's keys starts at its first.
        let start = match (start, &prefix) {
            (Some(s), Some(p)) if s < p.as_str() => Bound::Included(p.clone()),
            (Some(s), _) => Bound::Included(s.to_string()),
            (None, Some(p)) => Bound::Included(p.clone()),
            (None, None) => Bound::Unbounded,
        };
        let iter = m.range((start, Bound::Unbounded));
        match prefix {
            Some(p) => Box::new(
                iter.take_while(move |(k, _)| k.starts_with(&p))
                    .map(|(_, v)| v),
            ),
            None => Box::new(iter.map(|(_, v)| v)),
        }
    }

    pub fn count(&self, kind: Kind) -> usize {
        self.objects.get(&kind).map_or(0, |m| m.len())
    }

    /// Retained events after `revision`, or Err(oldest retained) when some are gone.
    pub fn events_after(&self, revision: i64) -> Result<impl Iterator<Item = &Arc<Event>>, i64> {
        if revision < self.compacted {
            return Err(self.compacted + 1);
        }
        let start = self.history.partition_point(|e| e.revision <= revision);
        Ok(self.history.range(start..))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1;

    fn pod(name: &str, labels: &[(&str, &str)]) -> Bytes {
        let p = v1::Pod {
            metadata: Some(ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                uid: format!("uid-{name}"),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            }),
            spec: Some(v1::PodSpec {
                node_name: "node1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        Bytes::from(p.encode_to_vec())
    }

    #[test]
    fn appended_resource_version_wins_and_keeps_the_rest() {
        let raw = pod("a", &[("app", "x")]);
        let twice = with_resource_version(&with_resource_version(&raw, 5), 9);
        let obj = Kind::Pod.decode(&twice).expect("decodes");
        assert_eq!(obj.meta().resource_version, "9");
        assert_eq!(obj.meta().name, "a");
        assert_eq!(obj.meta().labels.get("app").map(String::as_str), Some("x"));
    }

    #[test]
    fn history_window_and_too_old() {
        let mut c = Cache::new(0, vec![], 2);
        for (i, n) in ["a", "b", "c"].iter().enumerate() {
            let key = backend_key(Kind::Pod, "default", n);
            c.apply(Change {
                revision: i as i64 + 1,
                key,
                value: Some(pod(n, &[])),
            });
        }
        assert_eq!(c.revision, 3);
        assert_eq!(c.compacted, 1);
        assert_eq!(c.events_after(1).map(|i| i.count()), Ok(2));
        assert_eq!(c.events_after(2).map(|i| i.count()), Ok(1));
        assert!(c.events_after(0).is_err());
        let s = c.get(Kind::Pod, "default", "b").expect("stored");
        assert_eq!(s.field("spec.nodeName").as_deref(), Some("node1"));
        assert_eq!(s.decode().meta().resource_version, "2");
    }

    #[test]
    fn packed_strings_round_trip() {
        assert_eq!(Packed::new([]).iter().count(), 0);
        let p = Packed::new(["a", "", "c"]);
        assert_eq!(p.iter().collect::<Vec<_>>(), vec!["a", "", "c"]);
        assert_eq!(p.get(1), Some(""));
        let mut c = Cache::new(0, vec![], 10);
        let key = backend_key(Kind::Pod, "default", "l");
        c.apply(Change {
            revision: 1,
            key,
            value: Some(pod("l", &[("app", "x"), ("tier", "")])),
        });
        let s = c.get(Kind::Pod, "default", "l").expect("stored");
        assert_eq!(
            (s.label("app"), s.label("tier"), s.label("nope")),
            (Some("x"), Some(""), None)
        );
        assert_eq!(
            (s.namespace(), s.name(), s.key()),
            ("default", "l", "default/l")
        );
    }

    #[test]
    fn owner_index_follows_changes() {
        let mut c = Cache::new(0, vec![], 100);
        let mut p = v1::Pod::decode(pod("a", &[]).as_ref()).expect("decodes");
        p.metadata
            .as_mut()
            .expect("meta")
            .owner_references
            .push(v1::OwnerReference {
                uid: "owner".into(),
                ..Default::default()
            });
        let key = backend_key(Kind::Pod, "default", "a");
        c.apply(Change {
            revision: 1,
            key: key.clone(),
            value: Some(Bytes::from(p.encode_to_vec())),
        });
        assert_eq!(c.dependents_of("owner").len(), 1);
        assert!(c.get_by_uid("uid-a").is_some());
        let ev = c
            .apply(Change {
                revision: 2,
                key,
                value: None,
            })
            .expect("event");
        assert_eq!(ev.typ, EventType::Deleted);
        assert_eq!(ev.object.decode().meta().resource_version, "2");
        assert!(c.dependents_of("owner").is_empty());
        assert!(c.get_by_uid("uid-a").is_none());
    }

    #[test]
    fn range_by_namespace_prefix() {
        let mut c = Cache::new(0, vec![], 100);
        for (i, (ns, n)) in [("a", "x"), ("a-b", "y"), ("a", "z"), ("b", "w")]
            .iter()
            .enumerate()
        {
            let mut p = v1::Pod::decode(pod(n, &[]).as_ref()).expect("decodes");
            p.metadata.as_mut().expect("meta").namespace = ns.to_string();
            let key = backend_key(Kind::Pod, ns, n);
            c.apply(Change {
                revision: i as i64 + 1,
                key,
                value: Some(Bytes::from(p.encode_to_vec())),
            });
        }
        let names: Vec<_> = c
            .range(Kind::Pod, Some("a"), None)
            .map(|s| s.name().to_string())
            .collect();
        assert_eq!(names, vec!["x", "z"]);
        assert_eq!(c.range(Kind::Pod, None, None).count(), 4);
    }

    #[test]
    fn a_prebuilt_entry_is_taken_only_for_its_exact_bytes() {
        let mut c = Cache::new(0, vec![], 10);
        let key = backend_key(Kind::Pod, "default", "a");
        let obj_of = |raw: &Bytes| Kind::Pod.decode(raw).expect("decodes");
        // A racing writer's entry (other labels) waits when another value commits: the cache
        // decodes the committed value and leaves the entry alone.
        let mine = pod("a", &[("app", "mine")]);
        let theirs = pod("a", &[("app", "theirs")]);
        c.expect_built(&key, Stored::prebuilt(&obj_of(&mine), mine.clone()));
        c.apply(Change {
            revision: 1,
            key: key.clone(),
            value: Some(theirs.clone()),
        });
        let s = c.get(Kind::Pod, "default", "a").expect("stored");
        assert_eq!(s.label("app"), Some("theirs"));
        assert_eq!(s.decode().meta().resource_version, "1");
        assert_eq!(c.pending.len(), 1);
        // The entry's own bytes (here an equal copy, not the same buffer) take it.
        let copy = Bytes::from(mine.to_vec());
        c.apply(Change {
            revision: 2,
            key: key.clone(),
            value: Some(copy),
        });
        let s = c.get(Kind::Pod, "default", "a").expect("stored");
        assert_eq!(s.label("app"), Some("mine"));
        assert_eq!(s.uid.as_ref(), "uid-a");
        assert_eq!(s.field("spec.nodeName").as_deref(), Some("node1"));
        assert_eq!(s.revision, 2);
        assert_eq!(s.decode().meta().resource_version, "2");
        assert_eq!(c.get_by_uid("uid-a").map(|s| s.revision), Some(2));
        assert!(c.pending.is_empty());
        // Forgetting is by buffer: another writer's entry stays.
        c.expect_built(&key, Stored::prebuilt(&obj_of(&theirs), theirs.clone()));
        c.forget_built(&key, &mine);
        assert_eq!(c.pending.len(), 1);
        c.forget_built(&key, &theirs);
        assert!(c.pending.is_empty());
    }
}
