//! NodeAffinity: the pod's `nodeSelector` (every label equal) AND its required node affinity
//! (`nodeSelectorTerms` ORed; within a term `matchExpressions` and `matchFields` ANDed).
//!
//! Operators: `In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`. `NotIn` and `DoesNotExist`
//! match a node without the key; `Gt`/`Lt` compare integers (an absent or non-integer label
//! does not match). `matchFields` supports `metadata.name` with `In`/`NotIn` and one value. A
//! term with neither expressions nor fields matches nothing, as does an empty terms list; an
//! invalid requirement (unknown operator, wrong number of values) makes its term match nothing.
//!
//! Score: the summed weights of the matching preferred terms, normalized to 0..=100 over the
//! feasible nodes.
use std::collections::BTreeMap;

use coxswain_api::v1;

use crate::affinity::lookup_label_id;
use crate::framework::{
    default_normalize_score, ClusterEvent, CycleState, Filter, NodeScore, Plugin, PreFilter,
    PreScore, Score, ScoreExtensions, Status, MAX_NODE_SCORE,
};
use crate::nodeset::NodeSet;
use crate::snapshot::{node_labels, node_name, pod_spec, NodeInfo, Snapshot};

pub const NAME: &str = "NodeAffinity";
pub const ERR_REASON: &str = "node(s) didn't match Pod's node affinity/selector";

/// Can the requirement be parsed as upstream's labels.NewRequirement parses it: a valid label
/// key, and label values for `In`/`NotIn`? A term with one that cannot matches nothing.
pub fn parsable(r: &v1::NodeSelectorRequirement) -> bool {
    use coxswain_api::validation::{is_qualified_name, is_valid_label_value};
    is_qualified_name(&r.key).is_empty()
        && (!matches!(r.operator.as_str(), "In" | "NotIn")
            || r.values.iter().all(|v| is_valid_label_value(v).is_empty()))
}

/// Does one requirement match the value found (None: key absent)?
pub fn requirement_matches(r: &v1::NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = &r.values;
    match r.operator.as_str() {
        "In" => !values.is_empty() && value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => !values.is_empty() && value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => values.is_empty() && value.is_some(),
        "DoesNotExist" => values.is_empty() && value.is_none(),
        op @ ("Gt" | "Lt") => {
            let [bound] = values.as_slice() else {
                return false;
            };
            let (Ok(bound), Some(Ok(v))) = (bound.parse::<i64>(), value.map(str::parse::<i64>))
            else {
                return false;
            };
            if op == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// Does a node selector term match the node?
pub fn term_matches(term: &v1::NodeSelectorTerm, node: &v1::Node) -> bool {
    if term.match_expressions.is_empty() && term.match_fields.is_empty() {
        return false;
    }
    let labels = node_labels(node);
    term.match_expressions
        .iter()
        .all(|r| parsable(r) && requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && term.match_fields.iter().all(|r| {
            r.key == "metadata.name"
                && matches!(r.operator.as_str(), "In" | "NotIn")
                && r.values.len() == 1
                && requirement_matches(r, Some(node_name(node)))
        })
}

/// Does the required node selector (terms ORed) match the node?
pub fn node_selector_matches(sel: &v1::NodeSelector, node: &v1::Node) -> bool {
    sel.node_selector_terms
        .iter()
        .any(|t| term_matches(t, node))
}

fn required(pod: &v1::Pod) -> Option<&v1::NodeSelector> {
    pod_spec(pod)
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()
}

fn preferred(pod: &v1::Pod) -> &[v1::PreferredSchedulingTerm] {
    pod_spec(pod)
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .map_or(&[], |na| {
            &na.preferred_during_scheduling_ignored_during_execution
        })
}

fn selector_matches(sel: &BTreeMap<String, String>, node: &v1::Node) -> bool {
    let labels = node_labels(node);
    sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The pod's `nodeSelector` and required node affinity both match the node.
pub fn pod_matches_node_selector_and_affinity(pod: &v1::Pod, node: &v1::Node) -> bool {
    selector_matches(&pod_spec(pod).node_selector, node)
        && required(pod).is_none_or(|r| node_selector_matches(r, node))
}

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
    /// Same rules as [`requirement_matches`], validated once.
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
struct CompiledTerm {
    exprs: Vec<Req>,
    /// `matchFields` on `metadata.name` (anything else makes the term match nothing).
    fields: Vec<Req>,
    never: bool,
}

impl CompiledTerm {
    fn new(t: &v1::NodeSelectorTerm) -> CompiledTerm {
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

    fn matches(&self, node: &NodeInfo) -> bool {
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
struct Compiled {
    /// Interned (key, value) pairs; None when a pair can match no node.
    selector: Option<Vec<(u32, u32)>>,
    /// None: no required node affinity.
    required: Option<Vec<CompiledTerm>>,
    /// The plugin's `addedAffinity` required terms (None: none).
    added: Option<Vec<CompiledTerm>>,
    /// Exactly the nodes [`Compiled::matches`] passes, from the snapshot's label index (None
    /// when a `Gt`/`Lt` requirement needs each node's value parsed).
    set: Option<NodeSet>,
}

impl Compiled {
    fn new(pod: &v1::Pod, added: Option<&v1::NodeSelector>) -> Compiled {
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
    fn node_set(&self, snapshot: &Snapshot) -> Option<NodeSet> {
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

    fn matches(&self, node: &NodeInfo) -> bool {
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
struct PreferredCompiled(Vec<(i64, CompiledTerm)>);

/// The plugin, with its args (NodeAffinityArgs): `addedAffinity` applies to every pod of the
/// profile, its required terms ANDed with the pod's, its preferred terms added to the score.
#[derive(Default)]
pub struct NodeAffinity {
    added: Option<v1::NodeAffinity>,
}

impl NodeAffinity {
    /// NodeAffinityArgs: `{addedAffinity: <NodeAffinity>}` (or none).
    pub fn from_args(args: &serde_json::Value) -> Result<NodeAffinity, String> {
        let mut p = NodeAffinity::default();
        let m = match args {
            serde_json::Value::Null => return Ok(p),
            serde_json::Value::Object(m) => m,
            _ => return Err("NodeAffinityArgs: must be an object".into()),
        };
        if let Some(k) = m.keys().find(|k| k.as_str() != "addedAffinity") {
            return Err(format!("{k}: unknown field {k:?}"));
        }
        if let Some(a) = m.get("addedAffinity") {
            let na: v1::NodeAffinity = serde_path_to_error::deserialize(a.clone())
                .map_err(|e| format!("addedAffinity.{}: {}", e.path(), e.inner()))?;
            if let Some(r) = &na.required_during_scheduling_ignored_during_execution {
                if r.node_selector_terms.is_empty() {
                    return Err("addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term".into());
                }
            }
            p.added = Some(na);
        }
        Ok(p)
    }

    fn added_required(&self) -> Option<&v1::NodeSelector> {
        self.added
            .as_ref()?
            .required_during_scheduling_ignored_during_execution
            .as_ref()
    }

    fn added_preferred(&self) -> &[v1::PreferredSchedulingTerm] {
        self.added.as_ref().map_or(&[], |a| {
            &a.preferred_during_scheduling_ignored_during_execution
        })
    }
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd, ClusterEvent::NodeLabel]
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilter> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
    fn as_pre_score(&self) -> Option<&dyn PreScore> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn Score> {
        Some(self)
    }
}

impl PreFilter for NodeAffinity {
    fn pre_filter(&self, state: &mut CycleState, pod: &v1::Pod, snapshot: &Snapshot) -> Status {
        if pod_spec(pod).node_selector.is_empty()
            && required(pod).is_none()
            && self.added_required().is_none()
        {
            return Status::skip();
        }
        let mut c = Compiled::new(pod, self.added_required());
        c.set = c.node_set(snapshot);
        state.write(c);
        Status::success()
    }
}

impl Filter for NodeAffinity {
    fn filter(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Status {
        let ok = match state.read::<Compiled>() {
            Some(c) => c.matches(node),
            // Called without PreFilter (as a single check): match directly.
            None => {
                pod_matches_node_selector_and_affinity(pod, &node.node)
                    && self
                        .added_required()
                        .is_none_or(|r| node_selector_matches(r, &node.node))
            }
        };
        if ok {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON)
        }
    }

    fn candidates<'a>(&self, state: &'a CycleState) -> Option<&'a NodeSet> {
        state.read::<Compiled>()?.set.as_ref()
    }
}

impl PreScore for NodeAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &v1::Pod,
        _: &Snapshot,
        _: &[&NodeInfo],
    ) -> Status {
        if preferred(pod).is_empty() && self.added_preferred().is_empty() {
            return Status::skip();
        }
        state.write(PreferredCompiled(
            preferred(pod)
                .iter()
                .chain(self.added_preferred())
                .filter(|t| t.weight != 0)
                .filter_map(|t| {
                    Some((
                        i64::from(t.weight),
                        CompiledTerm::new(t.preference.as_ref()?),
                    ))
                })
                .collect(),
        ));
        Status::success()
    }
}

impl Score for NodeAffinity {
    fn score(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> i64 {
        if let Some(c) = state.read::<PreferredCompiled>() {
            return c
                .0
                .iter()
                .filter(|(_, t)| t.matches(node))
                .map(|(w, _)| w)
                .sum();
        }
        preferred(pod)
            .iter()
            .chain(self.added_preferred())
            .filter(|t| t.weight != 0)
            .filter(|t| {
                t.preference
                    .as_ref()
                    .is_some_and(|p| term_matches(p, &node.node))
            })
            .map(|t| i64::from(t.weight))
            .sum()
    }
    fn score_extensions(&self) -> Option<&dyn ScoreExtensions> {
        Some(self)
    }
}

impl ScoreExtensions for NodeAffinity {
    fn normalize(&self, _: &CycleState, _: &v1::Pod, scores: &mut [NodeScore]) {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_that_cannot_be_parsed_matches_nothing() {
        let node = v1::Node {
            metadata: Some(v1::ObjectMeta {
                name: "n1".into(),
                labels: [("zone".to_string(), "a".to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let term = |key: &str, op: &str, values: &[&str]| v1::NodeSelectorTerm {
            match_expressions: vec![v1::NodeSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: values.iter().map(|v| v.to_string()).collect(),
            }],
            ..Default::default()
        };
        assert!(term_matches(&term("zone", "In", &["a"]), &node));
        // An invalid label value in the term: it cannot be parsed, so it matches nothing, even
        // with NotIn (which would otherwise match).
        assert!(!term_matches(&term("zone", "In", &["a", "-bad-"]), &node));
        assert!(!term_matches(&term("zone", "NotIn", &["b!"]), &node));
        assert!(!term_matches(&term("bad key!", "Exists", &[]), &node));
        assert!(!term_matches(&term("bad key!", "DoesNotExist", &[]), &node));
        let sel = v1::NodeSelector {
            node_selector_terms: vec![term("zone", "NotIn", &["b!"]), term("zone", "In", &["a"])],
        };
        assert!(
            node_selector_matches(&sel, &node),
            "the other term still matches"
        );
    }
    use crate::framework::Code;
    use crate::plugins::testutil::*;

    #[test]
    fn operators() {
        for (op, values, label, want) in [
            ("In", vec!["a", "b"], Some("a"), true),
            ("In", vec!["a", "b"], Some("c"), false),
            ("In", vec!["a"], None, false),
            ("In", vec![], Some("a"), false),
            ("NotIn", vec!["a"], Some("b"), true),
            ("NotIn", vec!["a"], Some("a"), false),
            ("NotIn", vec!["a"], None, true),
            ("Exists", vec![], Some(""), true),
            ("Exists", vec![], None, false),
            ("Exists", vec!["a"], Some("a"), false),
            ("DoesNotExist", vec![], None, true),
            ("DoesNotExist", vec![], Some("x"), false),
            ("Gt", vec!["5"], Some("6"), true),
            ("Gt", vec!["5"], Some("5"), false),
            ("Gt", vec!["5"], Some("abc"), false),
            ("Gt", vec!["5"], None, false),
            ("Gt", vec!["x"], Some("6"), false),
            ("Gt", vec!["1", "2"], Some("6"), false),
            ("Lt", vec!["5"], Some("4"), true),
            ("Lt", vec!["5"], Some("-10"), true),
            ("Lt", vec!["5"], Some("5"), false),
            ("Bogus", vec!["a"], Some("a"), false),
        ] {
            assert_eq!(
                requirement_matches(&req("k", op, &values), label),
                want,
                "{op} {values:?} {label:?}"
            );
        }
    }

    fn affinity_pod(terms: Vec<v1::NodeSelectorTerm>) -> v1::Pod {
        let mut p = pod("p", &[]);
        affinity(&mut p).node_affinity = Some(v1::NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(v1::NodeSelector {
                node_selector_terms: terms,
            }),
            ..Default::default()
        });
        p
    }

    fn term(exprs: Vec<v1::NodeSelectorRequirement>) -> v1::NodeSelectorTerm {
        v1::NodeSelectorTerm {
            match_expressions: exprs,
            ..Default::default()
        }
    }

    #[test]
    fn required_terms() {
        let n = node("node1", &[("zone", "a"), ("disk", "ssd")]);
        let fields = |op: &str, v: &[&str]| v1::NodeSelectorTerm {
            match_fields: vec![req("metadata.name", op, v)],
            ..Default::default()
        };
        for (terms, want) in [
            (vec![], false),
            (vec![term(vec![])], false),
            (vec![term(vec![req("zone", "In", &["a"])])], true),
            // ANDed within a term.
            (
                vec![term(vec![
                    req("zone", "In", &["a"]),
                    req("disk", "In", &["hdd"]),
                ])],
                false,
            ),
            // ORed across terms.
            (
                vec![
                    term(vec![req("zone", "In", &["b"])]),
                    term(vec![req("disk", "Exists", &[])]),
                ],
                true,
            ),
            (
                vec![term(vec![]), term(vec![req("zone", "In", &["a"])])],
                true,
            ),
            (vec![fields("In", &["node1"])], true),
            (vec![fields("In", &["node2"])], false),
            (vec![fields("NotIn", &["node2"])], true),
            (vec![fields("Exists", &[])], false),
            (
                vec![v1::NodeSelectorTerm {
                    match_expressions: vec![req("zone", "In", &["a"])],
                    match_fields: vec![req("metadata.name", "In", &["node2"])],
                }],
                false,
            ),
        ] {
            let p = affinity_pod(terms.clone());
            let s =
                NodeAffinity::default().filter(&CycleState::new(), &p, &info(n.clone(), vec![]));
            assert_eq!(s.is_success(), want, "{terms:?}");
            if !want {
                assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
                assert_eq!(s.message(), ERR_REASON);
            }
        }
    }

    #[test]
    fn added_affinity_args_apply_to_every_pod() {
        let plugin = NodeAffinity::from_args(&serde_json::json!({"addedAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 5, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}]
        }}))
        .expect("args");
        let pod = affinity_pod(vec![term(vec![req("kind", "Exists", &[])])]);
        let ok = node("ok", &[("zone", "a"), ("kind", "x"), ("disk", "ssd")]);
        let other_zone = node("b", &[("zone", "b"), ("kind", "x")]);
        let no_kind = node("c", &[("zone", "a")]);
        for (n, want) in [(&ok, true), (&other_zone, false), (&no_kind, false)] {
            // With PreFilter's compiled state (labels interned first, as the cache does) and
            // without.
            let ni = info(n.clone(), vec![]);
            let mut st = CycleState::new();
            let _ = plugin.pre_filter(&mut st, &pod, &Snapshot::default());
            assert_eq!(plugin.filter(&st, &pod, &ni).is_success(), want);
            assert_eq!(
                plugin
                    .filter(&CycleState::new(), &pod, &info(n.clone(), vec![]))
                    .is_success(),
                want
            );
        }
        assert_eq!(
            plugin.score(&CycleState::new(), &pod, &info(ok.clone(), vec![])),
            5
        );
        // A pod with no affinity of its own is still held to the added terms.
        let plain = v1::Pod::default();
        assert!(!plugin
            .filter(
                &CycleState::new(),
                &plain,
                &info(other_zone.clone(), vec![])
            )
            .is_success());
        assert!(NodeAffinity::from_args(&serde_json::json!({"bogus": 1})).is_err());
        assert!(
            NodeAffinity::from_args(&serde_json::json!({"addedAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}))
            .is_err()
        );
    }

    #[test]
    fn node_selector_and_affinity_are_anded() {
        let n = node("n", &[("zone", "a"), ("disk", "ssd")]);
        let mut p = affinity_pod(vec![term(vec![req("zone", "In", &["a"])])]);
        spec(&mut p).node_selector = labels(&[("disk", "ssd")]);
        assert!(pod_matches_node_selector_and_affinity(&p, &n));
        spec(&mut p).node_selector = labels(&[("disk", "hdd")]);
        assert!(!pod_matches_node_selector_and_affinity(&p, &n));
        let mut plain = pod("p", &[]);
        spec(&mut plain).node_selector = labels(&[("zone", "a")]);
        assert!(pod_matches_node_selector_and_affinity(&plain, &n));
        assert!(NodeAffinity::default()
            .pre_filter(
                &mut CycleState::new(),
                &pod("q", &[]),
                &snapshot(vec![], vec![])
            )
            .is_skip());
    }

    #[test]
    fn preferred_score() {
        let mut p = pod("p", &[]);
        affinity(&mut p).node_affinity = Some(v1::NodeAffinity {
            preferred_during_scheduling_ignored_during_execution: vec![
                v1::PreferredSchedulingTerm {
                    weight: 2,
                    preference: Some(term(vec![req("zone", "In", &["a"])])),
                },
                v1::PreferredSchedulingTerm {
                    weight: 5,
                    preference: Some(term(vec![req("disk", "In", &["ssd"])])),
                },
                v1::PreferredSchedulingTerm {
                    weight: 9,
                    preference: Some(term(vec![])),
                },
            ],
            ..Default::default()
        });
        let nodes = [
            node("n1", &[("zone", "a")]),
            node("n2", &[("zone", "a"), ("disk", "ssd")]),
            node("n3", &[]),
        ];
        let st = CycleState::new();
        let mut scores: Vec<NodeScore> = nodes
            .iter()
            .map(|n| NodeScore {
                name: node_name(n).into(),
                score: NodeAffinity::default().score(&st, &p, &info(n.clone(), vec![])),
            })
            .collect();
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [2, 7, 0]
        );
        NodeAffinity::default().normalize(&st, &p, &mut scores);
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [28, 100, 0]
        );
    }
}
