//! Security, end to end on a real `coxswain`: the data directory's permissions and encryption
//! at rest, authentication (certificates, tokens, anonymous), RBAC, containers' users, and
//! /metrics over TLS.

mod at_rest;
mod authn;
mod common;
mod metrics_tls;
mod rbac;
mod run_as;
