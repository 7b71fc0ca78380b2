//! Durations on the command line: Go's `time.ParseDuration` ("500ms", "10s", "1m30s"), as
//! Kubernetes' flags take them — the project's one parser, in `coxswain_api::duration`.
pub use coxswain_api::duration::parse;
