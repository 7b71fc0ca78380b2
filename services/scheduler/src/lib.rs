//! The coxswain scheduler: kube-scheduler's scheduling framework and its in-tree plugins, as
//! pure functions over a [`Snapshot`] of nodes and the pods bound (or assumed) on them, and the
//! loop that runs them against the store.
//!
//! Pure (no I/O):
//! - [`snapshot`]: [`NodeInfo`] (a node, its pods, their summed requests and host ports) and
//!   [`Snapshot`], with incremental `add_pod`/`remove_pod` (the scheduler's "assume").
//! - [`framework`]: the extension-point traits, [`Status`], [`CycleState`], the plugin
//!   [`Registry`], [`Profile`] and [`schedule_one`] (one scheduling cycle: PreFilter, Filter,
//!   PostFilter, PreScore, Score, normalize, weigh, select).
//! - [`plugins`]: one module per in-tree plugin, registered in [`plugins::in_tree_registry`].
//! - [`config`]: `KubeSchedulerConfiguration` YAML → profiles.
//! - [`queue`]: the active / back-off / unschedulable queues.
//! - [`cache`]: the snapshot kept current by events, with assumed pods.
//! - [`explain`]: a dry run that keeps every plugin's verdict and score.
//! - [`metrics`]: the framework's extension-point, plugin (sampled) and preemption metrics.
//!
//! I/O:
//! - [`extender`]: calls to out-of-process `coxswain.v1.SchedulerExtender`s.
//! - [`runner`]: the scheduling loop (informers, queue, cycles, bind, events).
//! - [`service`]: the `coxswain.v1.Scheduler` gRPC service (Explain, ListProfiles).

pub mod affinity;
pub mod affinity_index;
pub mod binder;
pub mod cache;
pub mod config;
pub mod explain;
pub mod extender;
pub mod framework;
pub mod metrics;
pub mod nodeset;
pub mod plugins;
pub mod queue;
pub mod runner;
pub mod service;
pub mod snapshot;

pub use config::{ConfigError, SchedulerConfig};
pub use framework::{
    num_feasible_nodes_to_find, schedule_one, schedule_one_at, Code, CycleState, FitError,
    NodeScore, NodeScores, PluginScore, Profile, Registry, ScheduleError, ScheduleResult, Status,
    DEFAULT_SCHEDULER_NAME, MAX_NODE_SCORE,
};
pub use snapshot::{HostPort, NodeInfo, Resources, Snapshot};

#[cfg(test)]
mod gating_tests;
#[cfg(test)]
mod property;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod score_property;
