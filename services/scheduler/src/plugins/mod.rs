//! The in-tree plugins, one module each, and [`in_tree_registry`] (one line per plugin).
use std::sync::Arc;

use crate::framework::{Plugin, PluginArgs, Registry};

pub mod balanced_allocation;
pub mod default_preemption;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;
pub mod volume_binding;

#[cfg(test)]
pub(crate) mod testutil;

/// For plugins without arguments: accept none (or `{}`), reject anything else.
pub fn no_args(p: impl Plugin + 'static, args: &PluginArgs) -> Result<Arc<dyn Plugin>, String> {
    match args {
        PluginArgs::Null => Ok(Arc::new(p)),
        PluginArgs::Object(m) if m.is_empty() => Ok(Arc::new(p)),
        _ => Err(format!("plugin {} takes no args", p.name())),
    }
}

/// Every in-tree plugin by name.
pub fn in_tree_registry() -> Registry {
    let mut r = Registry::new();
    let mut reg = |name, f| r.register(name, f).expect("unique plugin names");
    reg(node_name::NAME, |a| no_args(node_name::NodeName, a));
    reg(node_unschedulable::NAME, |a| {
        no_args(node_unschedulable::NodeUnschedulable, a)
    });
    reg(node_resources_fit::NAME, |a| {
        Ok(Arc::new(node_resources_fit::NodeResourcesFit::from_args(
            a,
        )?))
    });
    reg(balanced_allocation::NAME, |a| {
        no_args(balanced_allocation::BalancedAllocation, a)
    });
    reg(node_ports::NAME, |a| no_args(node_ports::NodePorts, a));
    reg(node_affinity::NAME, |a| {
        Ok(Arc::new(node_affinity::NodeAffinity::from_args(a)?))
    });
    reg(taint_toleration::NAME, |a| {
        no_args(taint_toleration::TaintToleration, a)
    });
    reg(inter_pod_affinity::NAME, |a| {
        Ok(Arc::new(inter_pod_affinity::InterPodAffinity::from_args(
            a,
        )?))
    });
    reg(pod_topology_spread::NAME, |a| {
        no_args(pod_topology_spread::PodTopologySpread, a)
    });
    reg(default_preemption::NAME, |a| {
        no_args(default_preemption::DefaultPreemption, a)
    });
    reg(volume_binding::NAME, |a| {
        no_args(volume_binding::VolumeBinding, a)
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
    volume_binding::NAME,
    pod_topology_spread::NAME,
    inter_pod_affinity::NAME,
];

/// kube-scheduler's default PostFilter plugins.
pub const DEFAULT_POST_FILTERS: &[&str] = &[default_preemption::NAME];

/// kube-scheduler's default score plugins and weights (ImageLocality omitted).
pub const DEFAULT_SCORES: &[(&str, i64)] = &[
    (taint_toleration::NAME, 3),
    (node_affinity::NAME, 2),
    (node_resources_fit::NAME, 1),
    (pod_topology_spread::NAME, 2),
    (inter_pod_affinity::NAME, 2),
    (balanced_allocation::NAME, 1),
];
