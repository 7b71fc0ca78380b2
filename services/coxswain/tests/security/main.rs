//! Security, end to end on a real `coxswain`: the data directory's permissions and encryption
//! at rest, authentication (certificates, tokens, anonymous), RBAC, containers' users,
//! /metrics over TLS, and a client's wrong URL scheme.

mod at_rest;
mod authn;
mod common;
mod metrics_tls;
mod rbac;
mod run_as;
mod scheme;
