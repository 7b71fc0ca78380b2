//! Storage backends: where objects live durably. One trait, the shape of etcd's KV API
//! (revisions, compare-and-swap transactions, a change feed), so the embedded backends (redb
//! file, memory) and the etcd backend are interchangeable; one conformance suite
//! (`tests/conformance.rs`: the backend contract and the store's API semantics) runs against
//! every implementation.
//!
//! Backends know keys and bytes only; objects, validation and watch filtering live above them.
//! Every key is under `/registry/` (Kubernetes' layout); the etcd backend maps that root to its
//! `--etcd-prefix`.
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use tokio::sync::mpsc;

mod embedded;
mod etcd;
pub(crate) mod revisions;
mod wal;

pub use embedded::{EmbeddedBackend, EmbeddedOptions, WalOptions};
pub use etcd::{EtcdBackend, EtcdOptions};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One stored key with the revision of its last write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    pub mod_revision: i64,
}

/// Everything stored, read at one revision.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub revision: i64,
    pub kvs: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put { key: String, value: Bytes },
    Delete { key: String },
}

/// A compare-and-swap transaction, as etcd's Txn: every compare must hold (the key's
/// mod_revision equals the given one; 0 means "absent"), then every op is applied atomically at
/// one new revision.
#[derive(Debug, Clone, Default)]
pub struct Txn {
    pub compares: Vec<(String, i64)>,
    pub ops: Vec<Op>,
}

impl Txn {
    pub fn put_if(key: String, mod_revision: i64, value: Bytes) -> Txn {
        Txn {
            compares: vec![(key.clone(), mod_revision)],
            ops: vec![Op::Put { key, value }],
        }
    }

    pub fn delete_if(key: String, mod_revision: i64) -> Txn {
        Txn {
            compares: vec![(key.clone(), mod_revision)],
            ops: vec![Op::Delete { key }],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnResult {
    /// Applied and durable at this revision.
    Committed { revision: i64 },
    /// A compare failed: the key is at this mod_revision (0: absent). Nothing was written.
    Conflict { key: String, mod_revision: i64 },
}

/// One committed change. `value` None: the key was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub revision: i64,
    pub key: String,
    pub value: Option<Bytes>,
}

#[derive(Debug, thiserror::Error, Clone)]
pub enum BackendError {
    #[error("storage I/O: {0}")]
    Io(String),
    #[error("storage backend stopped")]
    Stopped,
    #[error("storage backend failed earlier and refuses writes: {0}")]
    Failed(String),
    /// The backend cannot be reached now (etcd down or unreachable); the request may be retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A read at a revision the backend has compacted away (etcd's ErrCompacted).
    #[error("storage: revision {0} has been compacted")]
    Compacted(i64),
    /// A read at a revision the backend has not reached (etcd's ErrFutureRev).
    #[error("storage: revision {0} is a future revision")]
    FutureRevision(i64),
}

/// Keys read at a past revision ([`Backend::range_at`]).
#[derive(Debug, Clone, Default)]
pub struct RangePage {
    pub kvs: Vec<KeyValue>,
    /// More keys follow in the range (the read stopped at its limit).
    pub more: bool,
    /// Keys in the whole range from the start at that revision, beyond the limit too (etcd's
    /// RangeResponse.count).
    pub count: i64,
}

/// What `Backend::start` yields: the contents, and the feed of later changes.
pub type Started = (Snapshot, mpsc::UnboundedReceiver<Vec<Change>>);

/// A storage backend.
pub trait Backend: Send + Sync + 'static {
    /// A short name for logs and metrics ("redb", "memory", "etcd").
    fn name(&self) -> &'static str;

    /// The current contents and a feed of every change committed after them, in revision order,
    /// in batches. Called once by the store that owns the backend.
    fn start(&self) -> BoxFuture<'_, Result<Started, BackendError>>;

    /// Apply a transaction. Returns once the result is durable; the change reaches the feed
    /// before this returns.
    fn txn(&self, txn: Txn) -> BoxFuture<'_, Result<TxnResult, BackendError>>;

    /// The backend's current revision, for a backend that other processes write too (several
    /// store replicas on one etcd): a store whose cache has reached it has seen every write
    /// acknowledged before this was asked (upstream's `GetCurrentResourceVersion`, KEP-2340).
    /// None for a backend only this store writes: its cache holds every acknowledged write.
    fn current_revision(&self) -> BoxFuture<'_, Result<Option<i64>, BackendError>> {
        Box::pin(async { Ok(None) })
    }

    /// Every key starting with `prefix` (which ends in '/'), read from the backend itself at
    /// its current revision: a consistent list for a store whose cache cannot catch up
    /// (upstream's fallback from the watch cache to etcd). None for a backend only this store
    /// writes, whose cache is always current.
    fn list_prefix(&self, _prefix: &str) -> BoxFuture<'_, Result<Option<Snapshot>, BackendError>> {
        Box::pin(async { Ok(None) })
    }

    /// At most `limit` keys starting with `prefix` (which ends in '/'), from `start` on (a key
    /// under `prefix`, inclusive), as they were at `revision`: etcd's Range at a revision, for
    /// a page of a list pinned to its first page's revision that the store's cache no longer
    /// holds. [`BackendError::Compacted`] below the backend's history,
    /// [`BackendError::FutureRevision`] above its revision. None for a backend only this store
    /// writes: it keeps no past states, the store's watch history is all there is.
    fn range_at(
        &self,
        _prefix: &str,
        _start: &str,
        _revision: i64,
        _limit: usize,
    ) -> BoxFuture<'_, Result<Option<RangePage>, BackendError>> {
        Box::pin(async { Ok(None) })
    }
}
