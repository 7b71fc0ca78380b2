//! Durations on the command line: Go-style ("500ms", "10s", "1m30s") or bare seconds — the
//! project's one parser, in `coxswain_api::duration`.
pub use coxswain_api::duration::parse_flag as parse;
