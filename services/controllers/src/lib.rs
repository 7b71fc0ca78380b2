//! Pure logic of coxswain's workload controllers (Deployment, ReplicaSet, Job, CronJob).
//!
//! Nothing here touches the store, gRPC or a clock: every function takes the objects and the
//! current time (plain seconds since the Unix epoch, UTC) as arguments and returns a decision.
//! The reconcile loops that read and write objects live elsewhere and call into this crate.
//! Kubernetes' upstream controllers are the reference for the behaviour.

pub mod cron;
pub mod job;
pub mod replicaset;
pub mod rollout;
pub use coxswain_api::time;
