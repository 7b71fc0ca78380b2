//! End-to-end tests of the workload controllers and the Workloads service on the real `coxswain
//! up` binary. Until node agents run pods, a "fake kubelet" in the test moves pods through their
//! phases with UpdateStatus (Running + Ready, or Succeeded/Failed), and invariants are checked
//! on every poll while the controllers work.

mod common;
mod deployment;
mod job;
mod own_process;
mod replicaset;
mod statefulset;
