//! NodeAffinity's terms compiled once per cycle: operators parsed and checked, keys and values
//! interned, so matching a node is id lookups and comparisons, and whole terms answer from the
//! snapshot's label index ([`NodeSet`]s).
use coxswain_api::v1;

use super::{parsable, required};
use crate::affinity::lookup_label_id;
use crate::nodeset::NodeSet;
use crate::snapshot::{pod_spec, NodeInfo, Snapshot};

/// A requirement's operator, checked once per cycle ([`Compiled`]); `Never` for an invalid
/// requirement (its term matches nothing).
#[derive(Debug, Clone, Copy)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
    Never,
}

#[derive(Debug, Clone)]
struct Req {
    key: String,
    /// The interned key and values ([`crate::affinity::label_id`]); None when no node label
    /// ever had that string (so no node can have it).
    key_id: Option<u32>,
    value_ids: Vec<u32>,
    op: Op,
    values: Vec<String>,
}

impl Req {
    /// Same rules as [`requirement_matches`](super::requirement_matches), validated once.
    fn new(r: &v1::NodeSelectorRequirement) -> Req {
        let v = &r.values;
        let int = || match v.as_slice() {
            [b] => b.parse::<i64>().ok(),
            _ => None,
        };
        let op = match r.operator.as_str() {
            "In" if !v.is_empty() => Op::In,
            "NotIn" if !v.is_empty() => Op::NotIn,
            "Exists" if v.is_empty() => Op::Exists,
            "DoesNotExist" if v.is_empty() => Op::DoesNotExist,
            "Gt" => int().map_or(Op::Never, Op::Gt),
            "Lt" => int().map_or(Op::Never, Op::Lt),
            _ => Op::Never,
        };
        Req {
            key: r.key.clone(),
            key_id: lookup_label_id(&r.key),
            value_ids: r.values.iter().filter_map(|v| lookup_label_id(v)).collect(),
            op,
            values: r.values.clone(),
        }
    }

    #[inline]
    fn matches(&self, value: Option<&str>) -> bool {
        match self.op {
            Op::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotIn => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::Gt(b) => value
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > b),
            Op::Lt(b) => value
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < b),
            Op::Never => false,
        }
    }

    /// The nodes this requirement matches, from the snapshot's label index; None for `Gt`/`Lt`
    /// (they compare parsed values, which the index does not know).
    fn node_set(&self, snapshot: &Snapshot) -> Option<NodeSet> {
        let n = snapshot.len();
        let x = snapshot.label_index();
        let with_values = || {
            let mut s = NodeSet::empty(n);
            if let Some(k) = self.key_id {
                for &v in &self.value_ids {
                    s.insert_all(x.with_pair(k, v));
                }
            }
            s
        };
        let with_key = || NodeSet::from_indices(n, self.key_id.map_or(&[], |k| x.with_key(k)));
        Some(match self.op {
            Op::In => with_values(),
            Op::NotIn => {
                let mut s = with_values();
                s.complement();
                s
            }
            Op::Exists => with_key(),
            Op::DoesNotExist => {
                let mut s = with_key();
                s.complement();
                s
            }
            Op::Gt(_) | Op::Lt(_) => return None,
            Op::Never => NodeSet::empty(n),
        })
    }

    /// The nodes whose name this `matchFields` requirement (`metadata.name`, `In`/`NotIn`, one
    /// value: checked by [`CompiledTerm`]) matches.
    fn name_set(&self, snapshot: &Snapshot) -> NodeSet {
        let n = snapshot.len();
        let mut s = NodeSet::empty(n);
        if let Some(i) = self.values.first().and_then(|v| snapshot.index_of(v)) {
            s.insert(i);
        }
        match self.op {
            Op::In => s,
            Op::NotIn => {
                s.complement();
                s
            }
            _ => NodeSet::empty(n),
        }
    }

    /// Against a node's labels, by interned ids (Gt/Lt parse the value).
    #[inline]
    fn matches_node(&self, node: &NodeInfo) -> bool {
        let id = self.key_id.and_then(|k| node.label_value_id(k));
        match self.op {
            Op::In => id.is_some_and(|v| self.value_ids.contains(&v)),
            Op::NotIn => id.is_none_or(|v| !self.value_ids.contains(&v)),
            Op::Exists => id.is_some(),
            Op::DoesNotExist => id.is_none(),
            Op::Gt(_) | Op::Lt(_) => self.matches(node.labels().get(&self.key).map(String::as_str)),
            Op::Never => false,
        }
    }
}

/// A node selector term compiled once per cycle: operators parsed and checked, so matching a
/// node is label lookups and comparisons only, with no allocation.
#[derive(Debug, Clone)]
pub(super) struct CompiledTerm {
    exprs: Vec<Req>,
    /// `matchFields` on `metadata.name` (anything else makes the term match nothing).
    fields: Vec<Req>,
    never: bool,
}

impl CompiledTerm {
    pub(super) fn new(t: &v1::NodeSelectorTerm) -> CompiledTerm {
        let fields_ok = t.match_fields.iter().all(|r| {
            r.key == "metadata.name"
                && matches!(r.operator.as_str(), "In" | "NotIn")
                && r.values.len() == 1
        });
        CompiledTerm {
            exprs: t
                .match_expressions
                .iter()
                .map(|r| {
                    let mut q = Req::new(r);
                    if !parsable(r) {
                        q.op = Op::Never;
                    }
                    q
                })
                .collect(),
            fields: t.match_fields.iter().map(Req::new).collect(),
            never: (t.match_expressions.is_empty() && t.match_fields.is_empty()) || !fields_ok,
        }
    }

    pub(super) fn matches(&self, node: &NodeInfo) -> bool {
        if self.never {
            return false;
        }
        self.exprs.iter().all(|r| r.matches_node(node))
            && self.fields.iter().all(|r| r.matches(Some(node.name())))
    }

    /// The nodes the term matches, from the label index (None: a `Gt`/`Lt` requirement).
    fn node_set(&self, snapshot: &Snapshot) -> Option<NodeSet> {
        if self.never {
            return Some(NodeSet::empty(snapshot.len()));
        }
        let mut s = NodeSet::full(snapshot.len());
        for r in &self.exprs {
            s.intersect(&r.node_set(snapshot)?);
        }
        for r in &self.fields {
            s.intersect(&r.name_set(snapshot));
        }
        Some(s)
    }
}

/// The nodes any of the terms match (None: some term cannot be answered from the index).
fn terms_set(terms: &[CompiledTerm], snapshot: &Snapshot) -> Option<NodeSet> {
    let mut s = NodeSet::empty(snapshot.len());
    for t in terms {
        s.union(&t.node_set(snapshot)?);
    }
    Some(s)
}

/// The pod's `nodeSelector` and required node affinity, compiled in PreFilter.
pub(super) struct Compiled {
    /// Interned (key, value) pairs; None when a pair can match no node.
    selector: Option<Vec<(u32, u32)>>,
    /// None: no required node affinity.
    required: Option<Vec<CompiledTerm>>,
    /// The plugin's `addedAffinity` required terms (None: none).
    added: Option<Vec<CompiledTerm>>,
    /// Exactly the nodes [`Compiled::matches`] passes, from the snapshot's label index (None
    /// when a `Gt`/`Lt` requirement needs each node's value parsed).
    pub(super) set: Option<NodeSet>,
}

impl Compiled {
    pub(super) fn new(pod: &v1::Pod, added: Option<&v1::NodeSelector>) -> Compiled {
        Compiled {
            set: None,
            added: added.map(|r| {
                r.node_selector_terms
                    .iter()
                    .map(CompiledTerm::new)
                    .collect()
            }),
            selector: pod_spec(pod)
                .node_selector
                .iter()
                .map(|(k, v)| Some((lookup_label_id(k)?, lookup_label_id(v)?)))
                .collect(),
            required: required(pod).map(|r| {
                r.node_selector_terms
                    .iter()
                    .map(CompiledTerm::new)
                    .collect()
            }),
        }
    }

    /// The nodes of the snapshot that [`Compiled::matches`] passes, from the label index.
    pub(super) fn node_set(&self, snapshot: &Snapshot) -> Option<NodeSet> {
        let n = snapshot.len();
        let x = snapshot.label_index();
        let mut s = NodeSet::full(n);
        match &self.selector {
            None => return Some(NodeSet::empty(n)),
            Some(sel) => {
                for &(k, v) in sel {
                    s.intersect(&NodeSet::from_indices(n, x.with_pair(k, v)));
                }
            }
        }
        if let Some(ts) = &self.required {
            s.intersect(&terms_set(ts, snapshot)?);
        }
        if let Some(ts) = &self.added {
            s.intersect(&terms_set(ts, snapshot)?);
        }
        Some(s)
    }

    pub(super) fn matches(&self, node: &NodeInfo) -> bool {
        self.selector
            .as_ref()
            .is_some_and(|sel| sel.iter().all(|(k, v)| node.label_value_id(*k) == Some(*v)))
            && self
                .required
                .as_ref()
                .is_none_or(|ts| ts.iter().any(|t| t.matches(node)))
            && self
                .added
                .as_ref()
                .is_none_or(|ts| ts.iter().any(|t| t.matches(node)))
    }
}

/// The pod's preferred terms, compiled in PreScore.
pub(super) struct PreferredCompiled(pub(super) Vec<(i64, CompiledTerm)>);
