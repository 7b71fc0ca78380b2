//! End-to-end tests of the workload controllers with pods that really run: `coxswain up
//! --runtime sim` (simulated node agents, scripted by `sim.coxswain.io/*` annotations) and the
//! scheduler. Invariants are checked on every poll: one DaemonSet pod per node, StatefulSet
//! ordering, CronJob concurrency.

mod common;
mod cronjob;
mod daemonset;
mod job;
mod statefulset;
