//! The scheduler in the real `coxswain up` (and alone as `coxswain scheduler`) over real gRPC:
//! the seed placement scenarios S32–S38 with their manifests, FailedScheduling events and
//! conditions, Explain through `coxctl` and the real grpcurl, ListProfiles, two schedulers
//! side by side, and extenders (the example extender steering placement; failing extenders
//! ignorable or not), and a BindBatch with one conflicting binding. Nodes are Node objects the
//! test creates; no agent runs.
//!
//! Needs the `coxswain` and `coxctl` binaries built (`cargo build -p coxswain -p coxctl`;
//! `cargo test --workspace` builds them).

mod bind_batch;
mod common;
mod extenders;
mod schedulers;
mod seed;
