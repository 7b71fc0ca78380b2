//! The embedded backends: one writer thread that sequences transactions, checks compares,
//! assigns revisions and group-commits every transaction waiting at that moment in one durable
//! write (one fsync for many clients), then feeds the changes to the store.
//!
//! Persistence is either a redb file in the data directory (durable: a transaction is fsync'd
//! before it is acknowledged) or nothing (in-memory, for tests and throw-away clusters).
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;

use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use super::{
    Backend, BackendError, BoxFuture, Change, KeyValue, Op, Snapshot, Started, Txn, TxnResult,
};

/// key → (mod_revision, value)
const OBJECTS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("objects");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION_KEY: &str = "revision";

/// Most transactions committed in one durable write.
const MAX_BATCH: usize = 4096;

#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Directory of the redb file; None: in memory only.
    pub data_dir: Option<PathBuf>,
    /// redb page cache, bytes.
    pub cache_bytes: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            data_dir: None,
            cache_bytes: 16 << 20,
        }
    }
}

enum Request {
    Txn(Txn, oneshot::Sender<Result<TxnResult, BackendError>>),
    Start(oneshot::Sender<Result<Started, BackendError>>),
}

/// The embedded backend (redb file or memory).
pub struct EmbeddedBackend {
    tx: std_mpsc::Sender<Request>,
    name: &'static str,
}

trait Persist: Send {
    fn snapshot(&self) -> Result<Snapshot, BackendError>;
    fn write(&mut self, revision: i64, changes: &[Change]) -> Result<(), BackendError>;
}

struct MemoryPersist {
    kvs: HashMap<String, KeyValue>,
    revision: i64,
}

impl Persist for MemoryPersist {
    fn snapshot(&self) -> Result<Snapshot, BackendError> {
        let mut kvs: Vec<KeyValue> = self.kvs.values().cloned().collect();
        kvs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Snapshot {
            revision: self.revision,
            kvs,
        })
    }
    fn write(&mut self, revision: i64, changes: &[Change]) -> Result<(), BackendError> {
        for c in changes {
            match &c.value {
                Some(v) => {
                    let kv = KeyValue {
                        key: c.key.clone(),
                        value: v.clone(),
                        mod_revision: c.revision,
                    };
                    self.kvs.insert(c.key.clone(), kv);
                }
                None => {
                    self.kvs.remove(&c.key);
                }
            }
        }
        self.revision = revision;
        Ok(())
    }
}

struct RedbPersist {
    db: Database,
}

fn io<E: std::fmt::Display>(e: E) -> BackendError {
    BackendError::Io(e.to_string())
}

impl RedbPersist {
    fn open(dir: &std::path::Path, cache_bytes: usize) -> Result<Self, BackendError> {
        crate::util::create_private_dir(dir).map_err(io)?;
        let file = dir.join("coxswain.redb");
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(&file)
            .map_err(io)?;
        crate::util::make_private(&file, 0o600).map_err(io)?;
        // Make sure the tables exist so readers never see "table does not exist".
        let w = db.begin_write().map_err(io)?;
        {
            w.open_table(OBJECTS).map_err(io)?;
            w.open_table(META).map_err(io)?;
        }
        w.commit().map_err(io)?;
        Ok(RedbPersist { db })
    }
}

impl Persist for RedbPersist {
    fn snapshot(&self) -> Result<Snapshot, BackendError> {
        let r = self.db.begin_read().map_err(io)?;
        let meta = r.open_table(META).map_err(io)?;
        let revision = meta
            .get(REVISION_KEY)
            .map_err(io)?
            .map(|v| v.value())
            .unwrap_or(0) as i64;
        let objects = r.open_table(OBJECTS).map_err(io)?;
        let mut kvs = Vec::new();
        for row in objects.iter().map_err(io)? {
            let (k, v) = row.map_err(io)?;
            let (rev, bytes) = v.value();
            kvs.push(KeyValue {
                key: k.value().to_string(),
                value: Bytes::copy_from_slice(bytes),
                mod_revision: rev as i64,
            });
        }
        Ok(Snapshot { revision, kvs })
    }

    fn write(&mut self, revision: i64, changes: &[Change]) -> Result<(), BackendError> {
        let w = self.db.begin_write().map_err(io)?;
        {
            let mut objects = w.open_table(OBJECTS).map_err(io)?;
            for c in changes {
                match &c.value {
                    Some(v) => {
                        objects
                            .insert(c.key.as_str(), (c.revision as u64, v.as_ref()))
                            .map_err(io)?;
                    }
                    None => {
                        objects.remove(c.key.as_str()).map_err(io)?;
                    }
                }
            }
            let mut meta = w.open_table(META).map_err(io)?;
            meta.insert(REVISION_KEY, revision as u64).map_err(io)?;
        }
        // Default durability is Immediate: commit returns after fsync.
        w.commit().map_err(io)
    }
}

impl EmbeddedBackend {
    /// Open the backend: a redb file under `opts.data_dir`, or memory when it is None.
    pub fn open(opts: EmbeddedOptions) -> Result<EmbeddedBackend, BackendError> {
        let (persist, name): (Box<dyn Persist>, &'static str) = match &opts.data_dir {
            Some(dir) => (Box::new(RedbPersist::open(dir, opts.cache_bytes)?), "redb"),
            None => (
                Box::new(MemoryPersist {
                    kvs: HashMap::new(),
                    revision: 0,
                }),
                "memory",
            ),
        };
        let snapshot = persist.snapshot()?;
        let mut writer = Writer {
            persist,
            revision: snapshot.revision,
            mod_revisions: snapshot
                .kvs
                .iter()
                .map(|kv| (kv.key.clone(), kv.mod_revision))
                .collect(),
            feeds: Vec::new(),
            failed: None,
        };
        let (tx, rx) = std_mpsc::channel();
        std::thread::Builder::new()
            .name(format!("coxswain-{name}-writer"))
            .spawn(move || writer.run(rx))
            .map_err(io)?;
        Ok(EmbeddedBackend { tx, name })
    }

    /// An in-memory backend.
    pub fn memory() -> EmbeddedBackend {
        // Opening memory cannot fail but for thread spawn failure, which is fatal anyway.
        match Self::open(EmbeddedOptions::default()) {
            Ok(b) => b,
            Err(e) => panic!("cannot start the in-memory backend: {e}"),
        }
    }
}

struct Writer {
    persist: Box<dyn Persist>,
    revision: i64,
    mod_revisions: HashMap<String, i64>,
    feeds: Vec<mpsc::UnboundedSender<Vec<Change>>>,
    failed: Option<String>,
}

impl Writer {
    fn run(&mut self, rx: std_mpsc::Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut txns = Vec::new();
            let mut next = Some(first);
            while let Some(req) = next.take() {
                match req {
                    Request::Txn(t, reply) => txns.push((t, reply)),
                    Request::Start(reply) => {
                        // Commit what came before, so the snapshot includes it.
                        self.commit(std::mem::take(&mut txns));
                        let _ = reply.send(self.start());
                    }
                }
                if txns.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            self.commit(txns);
        }
    }

    fn start(&mut self) -> Result<Started, BackendError> {
        let snap = self.persist.snapshot()?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.feeds.push(tx);
        Ok((snap, rx))
    }

    fn commit(&mut self, txns: Vec<(Txn, oneshot::Sender<Result<TxnResult, BackendError>>)>) {
        if txns.is_empty() {
            return;
        }
        if let Some(why) = &self.failed {
            for (_, reply) in txns {
                let _ = reply.send(Err(BackendError::Failed(why.clone())));
            }
            return;
        }
        let mut changes = Vec::new();
        let mut results = Vec::with_capacity(txns.len());
        for (txn, reply) in txns {
            let conflict = txn.compares.iter().find_map(|(key, want)| {
                let have = self.mod_revisions.get(key).copied().unwrap_or(0);
                (have != *want).then(|| TxnResult::Conflict {
                    key: key.clone(),
                    mod_revision: have,
                })
            });
            if let Some(c) = conflict {
                results.push((reply, c));
                continue;
            }
            if txn.ops.is_empty() {
                results.push((
                    reply,
                    TxnResult::Committed {
                        revision: self.revision,
                    },
                ));
                continue;
            }
            self.revision += 1;
            let revision = self.revision;
            for op in txn.ops {
                match op {
                    Op::Put { key, value } => {
                        self.mod_revisions.insert(key.clone(), revision);
                        changes.push(Change {
                            revision,
                            key,
                            value: Some(value),
                        });
                    }
                    Op::Delete { key } => {
                        if self.mod_revisions.remove(&key).is_some() {
                            changes.push(Change {
                                revision,
                                key,
                                value: None,
                            });
                        }
                    }
                }
            }
            results.push((reply, TxnResult::Committed { revision }));
        }
        if !changes.is_empty() {
            let start = std::time::Instant::now();
            let written = self.persist.write(self.revision, &changes);
            metrics::histogram!("coxswain_storage_commit_duration_seconds")
                .record(start.elapsed().as_secs_f64());
            metrics::histogram!("coxswain_storage_commit_batch_size").record(results.len() as f64);
            if let Err(e) = written {
                // The sequenced state no longer matches what is durable: refuse all further
                // writes rather than acknowledge anything that may be lost. Restart recovers
                // from the durable state.
                let why = e.to_string();
                self.failed = Some(why.clone());
                for (reply, r) in results {
                    let _ = match r {
                        TxnResult::Committed { .. } => {
                            reply.send(Err(BackendError::Failed(why.clone())))
                        }
                        c => reply.send(Ok(c)),
                    };
                }
                return;
            }
            self.feeds.retain(|f| f.send(changes.clone()).is_ok());
        }
        for (reply, r) in results {
            let _ = reply.send(Ok(r));
        }
    }
}

impl Backend for EmbeddedBackend {
    fn name(&self) -> &'static str {
        self.name
    }

    fn start(&self) -> BoxFuture<'_, Result<Started, BackendError>> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            self.tx
                .send(Request::Start(tx))
                .map_err(|_| BackendError::Stopped)?;
            rx.await.map_err(|_| BackendError::Stopped)?
        })
    }

    fn txn(&self, txn: Txn) -> BoxFuture<'_, Result<TxnResult, BackendError>> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            self.tx
                .send(Request::Txn(txn, tx))
                .map_err(|_| BackendError::Stopped)?;
            rx.await.map_err(|_| BackendError::Stopped)?
        })
    }
}
