//! The watch cache: every object in memory as its encoded bytes plus the few fields selectors and
//! the garbage collector need, the retained window of change events, and indexes by uid and
//! owner. It has one writer, the task that applies the backend's change feed; everything else
//! reads it.
mod pending;
mod stored;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use coxswain_api::Kind;

use crate::backend::{Change, KeyValue};
use pending::Pending;
use stored::parse_backend_key;
pub use stored::{backend_key, map_key, with_resource_version, Packed, Stored};

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
                // The indexes change only with the uid or the owners (most writes are status
                // updates: 10,000 dependents of one ReplicaSet made each apply a remove and an
                // insert in a 10,000-entry set).
                match &prev {
                    Some(p) if p.uid == stored.uid && p.owners == stored.owners => {}
                    Some(p) => {
                        self.unindex(kind, mkey, p);
                        self.index(kind, mkey, &stored);
                    }
                    None => self.index(kind, mkey, &stored),
                }
                let objects = self.objects.entry(kind).or_default();
                match objects.get_mut(mkey) {
                    Some(slot) => *slot = stored.clone(),
                    None => {
                        objects.insert(mkey.to_string(), stored.clone());
                    }
                }
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
                self.unindex(kind, mkey, &prev);
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
    use coxswain_api::v1::ObjectMeta;
    use prost::Message;

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
    fn owner_index_follows_updates_that_change_owners_or_uid() {
        let mut c = Cache::new(0, vec![], 100);
        let key = backend_key(Kind::Pod, "default", "a");
        let with = |owner: &str, uid: &str, label: &str| {
            let mut p = v1::Pod::decode(pod("a", &[("l", label)]).as_ref()).expect("decodes");
            let m = p.metadata.as_mut().expect("meta");
            m.uid = uid.into();
            if !owner.is_empty() {
                m.owner_references.push(v1::OwnerReference {
                    uid: owner.into(),
                    ..Default::default()
                });
            }
            Some(Bytes::from(p.encode_to_vec()))
        };
        let mut rev = 0;
        let mut put = |c: &mut Cache, value| {
            rev += 1;
            c.apply(Change {
                revision: rev,
                key: key.clone(),
                value,
            })
        };
        put(&mut c, with("o1", "u1", "x"));
        // Same owners and uid, other labels: the indexes stay.
        put(&mut c, with("o1", "u1", "y"));
        assert_eq!(c.dependents_of("o1").len(), 1);
        assert_eq!(c.get_by_uid("u1").map(|s| s.revision), Some(2));
        // Another owner.
        put(&mut c, with("o2", "u1", "y"));
        assert!(c.dependents_of("o1").is_empty());
        assert_eq!(c.dependents_of("o2").len(), 1);
        // No owner, another uid (a recreated object under the same key).
        put(&mut c, with("", "u2", "y"));
        assert!(c.dependents_of("o2").is_empty());
        assert!(c.get_by_uid("u1").is_none());
        assert_eq!(c.get_by_uid("u2").map(|s| s.revision), Some(4));
        put(&mut c, None);
        assert!(c.get_by_uid("u2").is_none());
        assert_eq!(c.count(Kind::Pod), 0);
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
