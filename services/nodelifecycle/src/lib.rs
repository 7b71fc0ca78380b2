//! Node lifecycle, the control-plane side (Kubernetes' node lifecycle controller and its
//! NoExecute taint-eviction controller):
//!
//! - `health`: heartbeat tracking, Unknown conditions, condition/unschedulable taints (pure);
//! - `taints`: toleration matching and the eviction decision (pure);
//! - `disruption`: zone states and the per-zone NoExecute tainting rate (pure);
//! - `controller`: the informers, the node monitor loop and the eviction worker.
pub mod controller;
pub mod disruption;
pub mod health;
pub mod taints;

pub use controller::{start, Config, Handle};
