//! coxswain's node agent (the kubelet): registers a Node, heartbeats through a Lease, runs the
//! pods bound to it over a [`runtime::Runtime`] (real processes or simulated), and serves their
//! logs and usage over the `coxswain.v1.NodeAgent` gRPC service.
pub mod agent;
pub mod builtin;
pub mod catalog;
pub mod cell;
pub mod crilog;
pub mod duration;
pub mod exec;
pub mod net;
pub mod node_stats;
pub mod pod;
#[cfg(test)]
mod pod_tests;
pub mod projected;
pub mod resource_metrics;
pub mod runtime;
pub mod service;
pub mod status;
pub mod volumes;
mod writer;
