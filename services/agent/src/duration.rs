//! Go-style durations ("500ms", "10s", "1m30s", "2h"): the project's one parser, in
//! `coxswain_api::duration`.
pub use coxswain_api::duration::parse as parse_duration;
