//! One module per verb.
pub mod apply;
pub mod autoscale;
pub mod cluster;
pub mod delete;
pub mod edit;
pub mod expose;
pub mod get;
pub mod label;
pub mod logs;
pub mod misc;
pub mod node;
pub mod patch;
pub mod run;
pub mod schedule;
pub mod top;
pub mod wait;
pub mod workloads;
