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

use crate::framework::{
    default_normalize_score, ClusterEvent, CycleState, Filter, NodeScore, Plugin, PreFilter,
    PreScore, Score, ScoreExtensions, Status, MAX_NODE_SCORE,
};
use crate::nodeset::NodeSet;
use crate::snapshot::{node_labels, node_name, pod_spec, NodeInfo, Snapshot};

mod compiled;
#[cfg(test)]
mod tests;

use compiled::{Compiled, CompiledTerm, PreferredCompiled};

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
