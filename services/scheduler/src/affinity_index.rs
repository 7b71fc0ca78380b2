//! Pod (anti-)affinity bookkeeping kept incrementally in the [`Snapshot`](crate::snapshot::Snapshot):
//! for each pod label class ([`crate::affinity::class_of`]: namespace and labels) and each
//! shared affinity term set ([`crate::affinity::terms_of`]), the nodes holding such pods and
//! how many each holds. The snapshot updates it on every pod and node change, so
//! InterPodAffinity's PreFilter and PreScore match each class or term set once and add its
//! per-node counts, instead of walking every pod of the cluster per cycle: O(classes + the
//! nodes holding the matching classes) instead of O(pods).
//!
//! The counts are by node index, not by topology domain, so a node's label change needs no
//! update here (the domain is read from the node when a cycle counts), and a cycle may ask for
//! any topology key.
use std::sync::Arc;

use coxswain_api::v1;

use crate::affinity::{Class, FastMap, SharedTerms};

/// The pods of one label class: a representative pod (any pod of the class: affinity terms
/// only read a pod's namespace and labels, which the class fixes) and pods per node index.
#[derive(Debug, Clone)]
pub struct ClassEntry {
    /// Keeps the class id alive while pods of it are counted.
    pub class: Class,
    pub pod: Arc<v1::Pod>,
    pub nodes: FastMap<u32, u32>,
}

/// The pods sharing one affinity term set, per node index.
#[derive(Debug, Clone)]
pub struct TermsEntry {
    pub terms: SharedTerms,
    pub nodes: FastMap<u32, u32>,
}

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct AffinityIndex {
    classes: FastMap<u32, ClassEntry>,
    terms: FastMap<u32, TermsEntry>,
}

fn inc(nodes: &mut FastMap<u32, u32>, node: usize, by: u32) {
    *nodes.entry(node as u32).or_default() += by;
}

/// Decrement; true when the map became empty.
fn dec(nodes: &mut FastMap<u32, u32>, node: usize) -> bool {
    if let Some(c) = nodes.get_mut(&(node as u32)) {
        *c -= 1;
        if *c == 0 {
            nodes.remove(&(node as u32));
        }
    }
    nodes.is_empty()
}

impl AffinityIndex {
    /// A pod of `class` (with affinity `terms`, if any) was added to node `node`.
    pub fn add(
        &mut self,
        node: usize,
        pod: &Arc<v1::Pod>,
        class: &Class,
        terms: Option<&SharedTerms>,
    ) {
        let e = self.classes.entry(class.id).or_insert_with(|| ClassEntry {
            class: Arc::clone(class),
            pod: Arc::clone(pod),
            nodes: FastMap::default(),
        });
        inc(&mut e.nodes, node, 1);
        if let Some(t) = terms {
            let e = self.terms.entry(t.id).or_insert_with(|| TermsEntry {
                terms: Arc::clone(t),
                nodes: FastMap::default(),
            });
            inc(&mut e.nodes, node, 1);
        }
    }

    /// A pod of class `class` (with term set `terms`) left node `node`.
    pub fn remove(&mut self, node: usize, class: u32, terms: Option<u32>) {
        self.remove_class(node, class);
        if let Some(t) = terms {
            self.remove_terms(node, t);
        }
    }

    /// One pod of class `class` left node `node`.
    pub fn remove_class(&mut self, node: usize, class: u32) {
        if let Some(e) = self.classes.get_mut(&class) {
            if dec(&mut e.nodes, node) {
                self.classes.remove(&class);
            }
        }
    }

    /// One pod with term set `terms` left node `node`.
    pub fn remove_terms(&mut self, node: usize, terms: u32) {
        if let Some(e) = self.terms.get_mut(&terms) {
            if dec(&mut e.nodes, node) {
                self.terms.remove(&terms);
            }
        }
    }

    /// The node at index `from` now sits at index `to` (the snapshot's swap-remove of a node),
    /// holding pods of `classes` and term sets `terms` (one entry per pod).
    pub fn moved(
        &mut self,
        from: usize,
        to: usize,
        classes: impl Iterator<Item = u32>,
        terms: impl Iterator<Item = u32>,
    ) {
        for c in classes {
            if let Some(e) = self.classes.get_mut(&c) {
                if let Some(n) = e.nodes.remove(&(from as u32)) {
                    inc(&mut e.nodes, to, n);
                }
            }
        }
        for t in terms {
            if let Some(e) = self.terms.get_mut(&t) {
                if let Some(n) = e.nodes.remove(&(from as u32)) {
                    inc(&mut e.nodes, to, n);
                }
            }
        }
    }

    /// Every label class with pods on some node.
    pub fn classes(&self) -> impl Iterator<Item = &ClassEntry> {
        self.classes.values()
    }

    /// Every affinity term set of pods on some node.
    pub fn term_sets(&self) -> impl Iterator<Item = &TermsEntry> {
        self.terms.values()
    }

    /// Pods counted (for tests: equals the pods on the snapshot's nodes).
    pub fn pod_count(&self) -> usize {
        self.classes
            .values()
            .flat_map(|e| e.nodes.values())
            .map(|c| *c as usize)
            .sum()
    }
}
