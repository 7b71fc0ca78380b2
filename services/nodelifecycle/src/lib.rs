//! Node lifecycle, the control-plane side (Kubernetes' node lifecycle controller, its
//! NoExecute taint-eviction controller, and the pod garbage collector):
//!
//! - `health`: heartbeat tracking, Unknown conditions, condition/unschedulable taints (pure);
//! - `taints`: toleration matching and the eviction decision (pure);
//! - `disruption`: zone states and the per-zone NoExecute tainting rate (pure);
//! - `podgc`: pod garbage collection (orphaned, out-of-service, terminated pods);
//! - `controller`: the informers, the node monitor loop and the eviction worker.
pub mod controller;
pub mod disruption;
pub mod health;
pub mod podgc;
pub mod taints;

pub use controller::{start, Config, Handle};
