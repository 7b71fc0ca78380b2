//! The coxswain object store.
//!
//! - [`backend`]: where bytes live (the embedded redb file, memory, or etcd), behind one
//!   trait shaped like etcd's KV API.
//! - [`cache`]: the in-memory watch cache fed by the backend's change feed.
//! - [`store`]: Kubernetes API-server semantics (admission, optimistic concurrency,
//!   finalizers, apply, watch).
//! - [`alloc`]: Service ClusterIP and NodePort allocation.
//! - [`encryption`]: encryption at rest (`EncryptionConfiguration`), a backend wrapper.
//! - [`gc`]: the garbage collector (ownerReferences, propagation policies) and namespace deleter.
//! - [`authn`], [`rbac`]: who is calling (tokens, client certificates) and what they may do;
//!   [`authz`]: the one authorizer (Node, then RBAC) the server's every service asks.
//! - [`server`]: the `coxswain.v1.ObjectStore` gRPC service.
pub mod alloc;
pub mod authn;
pub mod authz;
pub mod backend;
pub mod bootstrap;
pub mod cache;
pub mod encryption;
pub mod error;
pub mod escalation;
mod fanout;
pub mod gc;
pub mod kubelet_auth;
pub mod node_authz;
pub mod rbac;
pub mod reviews;
pub mod sa_admission;
pub mod satoken;
pub mod server;
pub mod state_metrics;
pub mod store;
#[cfg(test)]
mod test_builders;
pub mod tokens;
pub mod util;

pub use error::StoreError;
pub use store::{Store, StoreConfig};
