//! The node lifecycle controller in the real `coxswain up` over real gRPC, with shortened
//! timers, and the node verbs of the real `coxctl`. The nodes here are Node objects the test
//! creates; a fake kubelet in the test renews their Leases, posts Ready, and finishes graceful
//! pod deletions, and can be stopped per node.
//!
//! Needs the `coxswain` and `coxctl` binaries built (`cargo build -p coxswain -p coxctl`;
//! `cargo test --workspace` builds them).

mod agents;
mod common;
mod health;
mod verbs;
