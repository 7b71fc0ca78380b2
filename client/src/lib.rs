//! The client side of coxswain, shared by every component that is not the store (scheduler,
//! controllers, node agents): a typed client over the ObjectStore gRPC service, shared
//! informers (list + watch into an indexed cache), a de-duplicating work queue with rate-limited
//! requeue, and an event recorder.
//!
//! The shape follows kube-rs and client-go: components read from informer caches, write through
//! the client, and drive reconciles from a work queue fed by informer event handlers.
pub mod authz;
pub mod client;
pub mod config;
pub mod error;
pub mod events;
pub mod failover;
pub mod informer;
pub mod leaderelection;
pub mod queue;
pub mod request_id;
pub mod scheme;
pub mod shared;
pub mod trace;

pub use client::{object_key, Client, DeleteParams, ListParams, WatchEvent};
pub use coxswain_api::{v1, Kind, Object, Resource};
pub use error::{Error, Result};
pub use events::{ObjectRef, Recorder};
pub use informer::{Cache, Event, Informer};
pub use queue::{RateLimit, WorkQueue};
pub use shared::SharedInformers;
