//! The HorizontalPodAutoscaler: Kubernetes' podautoscaler (pkg/controller/podautoscaler) to
//! the letter, and `coxswain.v1.Autoscaler`, which explains each decision.
//!
//! - [`calc`]: the replica calculator (pure).
//! - [`behavior`]: stabilization windows and scaling policies over the controller's memory (pure).
//! - [`spec`]: the HPA of any apiVersion as the controller reads it.
//! - [`decide`]: one reconcile as a pure function from inputs to a [`v1::Decision`].
//! - [`metrics`]: the metrics client trait (gRPC `coxswain.v1.Metrics` in production).
//! - [`selectors`]: the HPAs' target selectors, indexed for the AmbiguousSelector check.
//! - [`controller`]: the loop (informers, work queue, scale writes, status, Events).
//! - [`service`]: the `coxswain.v1.Autoscaler` gRPC service (Recommend, History).
pub mod behavior;
pub mod calc;
pub mod controller;
pub mod decide;
pub mod engine;
pub mod metric;
pub mod metrics;
pub mod selectors;
pub mod service;
pub mod spec;

pub use coxswain_api::v1;
