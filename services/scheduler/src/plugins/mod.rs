//! The in-tree plugins, one module each, and [`in_tree_registry`] (one line per plugin).
use std::sync::Arc;

use crate::framework::Registry;

pub mod balanced_allocation;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;

#[cfg(test)]
pub(crate) mod testutil;

/// Every in-tree plugin by name.
pub fn in_tree_registry() -> Registry {
    let mut r = Registry::new();
    let reg = |r: &mut Registry, name, f| r.register(name, f).expect("unique plugin names");
    reg(&mut r, node_name::NAME, || Arc::new(node_name::NodeName));
    reg(&mut r, node_unschedulable::NAME, || {
        Arc::new(node_unschedulable::NodeUnschedulable)
    });
    reg(&mut r, node_resources_fit::NAME, || {
        Arc::new(node_resources_fit::NodeResourcesFit)
    });
    reg(&mut r, balanced_allocation::NAME, || {
        Arc::new(balanced_allocation::BalancedAllocation)
    });
    reg(&mut r, node_ports::NAME, || Arc::new(node_ports::NodePorts));
    reg(&mut r, node_affinity::NAME, || {
        Arc::new(node_affinity::NodeAffinity)
    });
    reg(&mut r, taint_toleration::NAME, || {
        Arc::new(taint_toleration::TaintToleration)
    });
    reg(&mut r, inter_pod_affinity::NAME, || {
        Arc::new(inter_pod_affinity::InterPodAffinity::default())
    });
    reg(&mut r, pod_topology_spread::NAME, || {
        Arc::new(pod_topology_spread::PodTopologySpread)
    });
    r
}

/// kube-scheduler's default filter order (of the plugins coxswain has).
pub const DEFAULT_FILTERS: &[&str] = &[
    node_unschedulable::NAME,
    node_name::NAME,
    taint_toleration::NAME,
    node_affinity::NAME,
    node_ports::NAME,
    node_resources_fit::NAME,
    pod_topology_spread::NAME,
    inter_pod_affinity::NAME,
];

/// kube-scheduler's default score plugins and weights (ImageLocality omitted).
pub const DEFAULT_SCORES: &[(&str, i64)] = &[
    (taint_toleration::NAME, 3),
    (node_affinity::NAME, 2),
    (node_resources_fit::NAME, 1),
    (pod_topology_spread::NAME, 2),
    (inter_pod_affinity::NAME, 2),
    (balanced_allocation::NAME, 1),
];
