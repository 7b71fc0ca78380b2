//! One module per verb.
pub mod apply;
pub mod autoscale;
pub mod delete;
pub mod expose;
pub mod get;
pub mod label;
pub mod logs;
pub mod misc;
pub mod node;
pub mod schedule;
pub mod top;
pub mod wait;
pub mod workloads;
