//! Node agents end to end on the real binary: `coxswain up --nodes 2 --runtime process` with
//! shortened timers, the seed-002 pod manifests bound by spec.nodeName, real HTTP GETs to pod
//! IPs, `coxctl logs`, and the sim runtime.
//!
//! Each test uses its own pod network octet so parallel clusters never share pod IPs.

mod common;
mod containers;
mod images;
mod nodes;
mod runtimes;
mod separate_agent;
mod volumes;
