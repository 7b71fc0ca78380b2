//! Parsed pod-affinity terms. A pod's terms are parsed once, when the pod is added to a
//! [`NodeInfo`](crate::snapshot::NodeInfo) (as kube-scheduler's `PodInfo`), not per cycle.
//!
//! A term's namespaces default to its owner pod's namespace; a `namespaceSelector` matches
//! namespaces by the snapshot's namespace labels (`{}` matches every namespace); a missing or
//! invalid `labelSelector` matches no pod.
use std::collections::{BTreeMap, BTreeSet};

use coxswain_api::selector::LabelSelector;
use coxswain_api::v1;

use crate::snapshot::{pod_labels, pod_namespace, pod_spec, Snapshot};

/// A parsed affinity term.
#[derive(Debug, Clone)]
pub struct Term {
    pub namespaces: BTreeSet<String>,
    pub namespace_selector: Option<LabelSelector>,
    pub selector: LabelSelector,
    pub topology_key: String,
    /// [`label_id`] of `topology_key`.
    pub topology_key_id: u32,
    pub weight: i64,
}

impl Term {
    pub fn new(t: &v1::PodAffinityTerm, owner: &v1::Pod, weight: i64) -> Term {
        let mut namespaces: BTreeSet<String> = t.namespaces.iter().cloned().collect();
        if namespaces.is_empty() && t.namespace_selector.is_none() {
            namespaces.insert(pod_namespace(owner).to_string());
        }
        Term {
            namespaces,
            namespace_selector: t.namespace_selector.as_ref().map(|s| {
                LabelSelector::from_proto(Some(s)).unwrap_or_else(|_| LabelSelector::nothing())
            }),
            selector: LabelSelector::from_proto(t.label_selector.as_ref())
                .unwrap_or_else(|_| LabelSelector::nothing()),
            topology_key: t.topology_key.clone(),
            topology_key_id: label_id(&t.topology_key),
            weight,
        }
    }

    pub fn matches(&self, pod: &v1::Pod, snapshot: Option<&Snapshot>) -> bool {
        let ns = pod_namespace(pod);
        let empty = BTreeMap::new();
        let ns_ok = self.namespaces.contains(ns)
            || self.namespace_selector.as_ref().is_some_and(|s| {
                s.matches(
                    snapshot
                        .and_then(|s| s.namespace_labels.get(ns))
                        .unwrap_or(&empty),
                )
            });
        ns_ok && self.selector.matches(pod_labels(pod))
    }
}

/// A pod's parsed pod-affinity terms.
#[derive(Debug, Clone, Default)]
pub struct Terms {
    pub required_affinity: Vec<Term>,
    pub required_anti: Vec<Term>,
    pub preferred_affinity: Vec<Term>,
    pub preferred_anti: Vec<Term>,
}

/// Parse a pod's pod-affinity and anti-affinity terms.
pub fn terms(pod: &v1::Pod) -> Terms {
    let a = pod_spec(pod).affinity.as_ref();
    let pa = a.and_then(|a| a.pod_affinity.as_ref());
    let paa = a.and_then(|a| a.pod_anti_affinity.as_ref());
    let req = |ts: &[v1::PodAffinityTerm]| ts.iter().map(|t| Term::new(t, pod, 1)).collect();
    let pref = |ts: &[v1::WeightedPodAffinityTerm]| {
        ts.iter()
            .filter_map(|w| {
                Some(Term::new(
                    w.pod_affinity_term.as_ref()?,
                    pod,
                    i64::from(w.weight),
                ))
            })
            .collect()
    };
    Terms {
        required_affinity: pa.map_or(vec![], |p| {
            req(&p.required_during_scheduling_ignored_during_execution)
        }),
        required_anti: paa.map_or(vec![], |p| {
            req(&p.required_during_scheduling_ignored_during_execution)
        }),
        preferred_affinity: pa.map_or(vec![], |p| {
            pref(&p.preferred_during_scheduling_ignored_during_execution)
        }),
        preferred_anti: paa.map_or(vec![], |p| {
            pref(&p.preferred_during_scheduling_ignored_during_execution)
        }),
    }
}

/// FNV-1a: a fast hasher for the short string keys of per-cycle maps (topology keys and
/// values). Not DoS-resistant; the keys come from the cluster's own labels.
#[derive(Default, Clone, Copy)]
pub struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// A HashMap with [`Fnv`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

/// Label strings (node label keys and values) interned to ids, so per-node topology lookups
/// and per-domain counts compare integers instead of strings. Ids are never released: the
/// table grows with the distinct node label keys and values the process has seen.
static LABEL_IDS: std::sync::LazyLock<std::sync::Mutex<FastMap<String, u32>>> =
    std::sync::LazyLock::new(Default::default);

/// The id of a label key or value (interned on first sight).
pub fn label_id(s: &str) -> u32 {
    let mut m = LABEL_IDS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&id) = m.get(s) {
        return id;
    }
    let id = m.len() as u32;
    m.insert(s.to_string(), id);
    id
}

/// The id of a label key or value if any node label ever had it (no node can have a string
/// that was never interned).
pub fn lookup_label_id(s: &str) -> Option<u32> {
    LABEL_IDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(s)
        .copied()
}

/// A node's labels as (key id, value id), sorted by key id.
pub fn label_ids(labels: &BTreeMap<String, String>) -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = labels
        .iter()
        .map(|(k, val)| (label_id(k), label_id(val)))
        .collect();
    v.sort_unstable();
    v
}

/// Counts per topology domain, keyed by (topology key id, node's value id) (see
/// [`label_id`]): no strings hashed or copied per pod counted or node looked up.
#[derive(Debug, Default, Clone)]
pub struct DomainCounts {
    counts: FastMap<u64, i64>,
    /// The distinct topology keys counted.
    keys: Vec<u32>,
}

fn domain(key: u32, value: u32) -> u64 {
    (u64::from(key) << 32) | u64::from(value)
}

impl DomainCounts {
    /// Add `by` for the node's value of `key` (nothing when the node lacks the key).
    pub fn add_for(&mut self, node: &crate::snapshot::NodeInfo, key: u32, by: i64) {
        if let Some(v) = node.label_value_id(key) {
            if !self.keys.contains(&key) {
                self.keys.push(key);
            }
            *self.counts.entry(domain(key, v)).or_default() += by;
        }
    }

    /// The count for the node's value of `key`; None when the node lacks the key.
    pub fn get_for(&self, node: &crate::snapshot::NodeInfo, key: u32) -> Option<i64> {
        let v = node.label_value_id(key)?;
        Some(self.counts.get(&domain(key, v)).copied().unwrap_or(0))
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Every (key, value) entry with its count, ordered (tests compare two ways of counting).
    #[cfg(test)]
    pub fn canonical(&self) -> std::collections::BTreeMap<u64, i64> {
        self.counts.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Does any of the node's (key, value) labels have a positive count?
    pub fn any_positive(&self, node: &crate::snapshot::NodeInfo) -> bool {
        self.keys.iter().any(|&k| {
            node.label_value_id(k)
                .and_then(|v| self.counts.get(&domain(k, v)))
                .is_some_and(|c| *c > 0)
        })
    }

    pub fn sum_for(&self, node: &crate::snapshot::NodeInfo) -> i64 {
        self.keys
            .iter()
            .filter_map(|&k| self.counts.get(&domain(k, node.label_value_id(k)?)))
            .sum()
    }
}

struct Interner<T> {
    ids: std::collections::HashMap<String, u32>,
    slots: Vec<Option<(String, std::sync::Weak<Interned<T>>)>>,
    free: Vec<u32>,
}

/// A handle on an interned value; the id is released when the last handle drops.
#[derive(Debug)]
pub struct Interned<T> {
    pub id: u32,
    pub value: T,
    release: fn(u32),
}

impl<T> Drop for Interned<T> {
    fn drop(&mut self) {
        (self.release)(self.id);
    }
}

impl<T> Default for Interner<T> {
    fn default() -> Interner<T> {
        Interner {
            ids: std::collections::HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Interner<T> {
    fn intern(
        &mut self,
        key: String,
        make: impl FnOnce() -> T,
        release: fn(u32),
    ) -> std::sync::Arc<Interned<T>> {
        if let Some(&id) = self.ids.get(&key) {
            if let Some(Some((_, w))) = self.slots.get(id as usize) {
                if let Some(a) = w.upgrade() {
                    return a;
                }
            }
        }
        let id = self.free.pop().unwrap_or(self.slots.len() as u32);
        if id as usize == self.slots.len() {
            self.slots.push(None);
        }
        let a = std::sync::Arc::new(Interned {
            id,
            value: make(),
            release,
        });
        self.slots[id as usize] = Some((key.clone(), std::sync::Arc::downgrade(&a)));
        self.ids.insert(key, id);
        a
    }

    fn release(&mut self, id: u32) {
        if let Some(slot) = self.slots.get_mut(id as usize) {
            if slot.as_ref().is_some_and(|(_, w)| w.strong_count() == 0) {
                let (k, _) = slot.take().expect("checked");
                if self.ids.get(&k) == Some(&id) {
                    self.ids.remove(&k);
                }
                self.free.push(id);
            }
        }
    }
}

type Global<T> = std::sync::LazyLock<std::sync::Mutex<Interner<T>>>;
static CLASSES: Global<()> = std::sync::LazyLock::new(Default::default);
static TERM_SETS: Global<Terms> = std::sync::LazyLock::new(Default::default);

fn release_class(id: u32) {
    if let Ok(mut i) = CLASSES.lock() {
        i.release(id);
    }
}

fn release_terms(id: u32) {
    if let Ok(mut i) = TERM_SETS.lock() {
        i.release(id);
    }
}

/// A pod's label class: pods with the same namespace and labels share it (affinity terms
/// match them alike).
pub type Class = std::sync::Arc<Interned<()>>;
/// A pod's parsed terms, shared by pods with identical affinity in the same namespace.
pub type SharedTerms = std::sync::Arc<Interned<Terms>>;

pub fn class_of(pod: &v1::Pod) -> Class {
    let mut key = pod_namespace(pod).to_string();
    for (k, v) in pod_labels(pod) {
        key.push('\0');
        key.push_str(k);
        key.push('=');
        key.push_str(v);
    }
    CLASSES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .intern(key, || (), release_class)
}

pub fn terms_of(pod: &v1::Pod) -> SharedTerms {
    use prost::Message;
    let mut key = pod_namespace(pod).to_string();
    key.push('\0');
    if let Some(a) = pod_spec(pod).affinity.as_ref() {
        for b in a.encode_to_vec() {
            key.push_str(&format!("{b:02x}"));
        }
    }
    TERM_SETS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .intern(key, || terms(pod), release_terms)
}
