//! `loadgen`: an HTTP load generator for coxswain — closed loop as hey, constant arrival rate
//! with coordinated-omission correction as wrk2, ramping arrival rates as k6 — against a URL or a
//! Service resolved through the object store.
//!
//! - [`engine`]: worker threads issuing requests and recording into per-thread histograms;
//! - [`h1`]: the HTTP/1.1 fast path (a request serialized once, responses framed in place);
//! - [`evloop`]: the closed loop over that path, an epoll loop per thread as wrk's;
//! - [`schedule`]: the open-loop arrival schedules (pure);
//! - [`stats`], [`report`], [`threshold`]: what was measured, how it is shown, pass/fail;
//! - [`target`]: URL parsing and Service resolution;
//! - [`cli`]: the command line over all of them;
//! - [`hpa`], [`plot`]: `loadgen hpa`, the load with the HPA sampled beside it, and its plot.
pub mod cli;
pub mod engine;
pub mod evloop;
pub mod h1;
pub mod hpa;
pub mod plot;
pub mod report;
pub mod schedule;
pub mod stats;
pub mod target;
pub mod threshold;

use std::time::Duration;

/// Durations on the command line: Go-style (`500ms`, `1m30s`) or a bare number of seconds (as
/// hey's `-t 5`): the project's one parser, `coxswain_api::duration::parse_flag`.
pub fn duration(s: &str) -> Result<Duration, String> {
    coxswain_api::duration::parse_flag(s)
}
