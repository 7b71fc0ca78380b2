//! coxswain's workload controllers.
//!
//! - Pure logic (no store, no gRPC, no clock: objects and "now" in, decisions out), table
//!   tested: [`rollout`] (Deployment), [`replicaset`], [`job`], [`cron`], [`daemonset`],
//!   [`statefulset`], [`endpoints`], [`endpointslice`]. Kubernetes' upstream controllers are
//!   the reference for the behaviour.
//! - The runtime ([`runtime`]: reconcile runner, expectations, owner references) and the
//!   [`manager`] (shared informers, queues, event routing).
//! - The reconcile loops: [`replicaset_ctrl`], [`deployment_ctrl`], [`job_ctrl`],
//!   [`daemonset_ctrl`], [`statefulset_ctrl`], [`cronjob_ctrl`], [`endpoints_ctrl`] (Endpoints
//!   and EndpointSlices).
//! - [`workloads`]: the `coxswain.v1.Workloads` gRPC service (scale, set image, rollout verbs).

pub mod cron;
pub mod endpoints;
pub mod endpointslice;
pub mod endpointslice_mirroring;
pub mod job;
pub mod replicaset;
pub mod rollout;
pub use coxswain_api::time;
/// The tz database loader CronJob `spec.timeZone` uses (shared with admission).
pub use coxswain_api::tz;

pub mod clusterrole_aggregation_ctrl;
pub mod cronjob_ctrl;
pub mod daemonset;
pub mod daemonset_ctrl;
pub mod deployment_ctrl;
pub mod endpoints_ctrl;
pub mod job_ctrl;
pub mod manager;
pub mod ns_publisher;
pub mod podctl;
pub mod replicaset_ctrl;
pub mod revisions;
pub mod rootca_ctrl;
pub mod runtime;
pub mod serviceaccounts_ctrl;
pub mod statefulset;
pub mod statefulset_ctrl;
pub mod volume;
pub mod volume_ctrl;
pub mod workloads;
