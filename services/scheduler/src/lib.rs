//! The coxswain scheduler: kube-scheduler's scheduling framework and its in-tree plugins, as
//! pure functions over a [`Snapshot`] of nodes and the pods bound (or assumed) on them.
//!
//! - [`snapshot`]: [`NodeInfo`] (a node, its pods, their summed requests and host ports) and
//!   [`Snapshot`], with incremental `add_pod`/`remove_pod` (the scheduler's "assume").
//! - [`framework`]: the extension-point traits, [`Status`], [`CycleState`], the plugin
//!   [`Registry`], [`Profile`] and [`schedule_one`] (one scheduling cycle: PreFilter, Filter,
//!   PostFilter, PreScore, Score, normalize, weigh, select).
//! - [`plugins`]: one module per in-tree plugin, registered in [`plugins::in_tree_registry`].
//!
//! Nothing here talks to the store or the network; a later layer feeds snapshots in and binds.

pub mod framework;
pub mod plugins;
pub mod snapshot;

pub use framework::{
    num_feasible_nodes_to_find, schedule_one, schedule_one_at, Code, CycleState, FitError,
    NodeScore, NodeScores, PluginScore, Profile, Registry, ScheduleResult, Status,
    DEFAULT_SCHEDULER_NAME, MAX_NODE_SCORE,
};
pub use snapshot::{HostPort, NodeInfo, Resources, Snapshot};

#[cfg(test)]
mod scenarios;
