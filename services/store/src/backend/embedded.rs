//! The embedded backends: one writer thread that sequences transactions, checks compares,
//! assigns revisions and group-commits every transaction waiting at that moment in one durable
//! write (one fsync for many clients), then feeds the changes to the store.
//!
//! Persistence is either durable or nothing (in-memory, for tests and throw-away clusters).
//! Durable, as etcd (its WAL in front of bbolt): a commit group is appended to the write-ahead log
//! (`wal.rs`) and fdatasync'd once before it is acknowledged; the checkpointer thread applies the
//! log to the redb file in the data directory in batches behind it (every
//! `WalOptions::checkpoint_interval`), and deletes log segments redb holds. Opening replays the
//! log beyond redb's revision. A snapshot (`Backend::start`) checkpoints first, so it reads redb.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use super::wal::{self, Wal};
use super::{
    Backend, BackendError, BoxFuture, Change, KeyValue, Op, Snapshot, Started, Txn, TxnResult,
};

/// key → (mod_revision, value)
const OBJECTS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("objects");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION_KEY: &str = "revision";

/// Most transactions committed in one durable write.
const MAX_BATCH: usize = 4096;

/// Commit groups the checkpointer may fall behind by; the writer waits beyond (so memory stays
/// bounded when redb is slower than the log).
const CHECKPOINT_BACKLOG: usize = 4096;

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

fn io<E: std::fmt::Display>(e: E) -> BackendError {
    BackendError::Io(e.to_string())
}

/// The redb file: the state as of the last checkpoint.
fn open_db(dir: &Path, cache_bytes: usize) -> Result<Database, BackendError> {
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
    Ok(db)
}

fn db_revision(db: &Database) -> Result<i64, BackendError> {
    let r = db.begin_read().map_err(io)?;
    let meta = r.open_table(META).map_err(io)?;
    Ok(meta
        .get(REVISION_KEY)
        .map_err(io)?
        .map(|v| v.value())
        .unwrap_or(0) as i64)
}

fn db_snapshot(db: &Database) -> Result<Snapshot, BackendError> {
    let revision = db_revision(db)?;
    let r = db.begin_read().map_err(io)?;
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

/// Apply changes to redb in one transaction and commit it durably (fsync).
fn db_apply<'a>(
    db: &Database,
    revision: i64,
    changes: impl IntoIterator<Item = &'a Change>,
) -> Result<(), BackendError> {
    let w = db.begin_write().map_err(io)?;
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

/// How the write-ahead log runs.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A segment's preallocated size; the log moves to a new segment when the next record does
    /// not fit.
    pub segment_bytes: u64,
    /// Longest an acknowledged write waits in the log before it is applied to redb.
    pub checkpoint_interval: Duration,
    /// Apply to redb earlier once this many changes wait.
    pub checkpoint_changes: usize,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: 64 << 20,
            checkpoint_interval: Duration::from_millis(100),
            checkpoint_changes: 10_000,
        }
    }
}

/// Work for the checkpointer, in log order.
enum Ckpt {
    /// A durable commit group: the writer's revision after it, and its changes.
    Apply(i64, Vec<Change>),
    /// A segment whose records all came in earlier `Apply`s: delete it once they are in redb.
    Sealed(PathBuf),
    /// Apply everything so far now and answer.
    Flush(std_mpsc::SyncSender<Result<(), BackendError>>),
}

/// Durable persistence: the write-ahead log, and redb brought up to date behind it.
struct WalPersist {
    wal: Wal,
    db: Arc<Database>,
    ckpt: std_mpsc::SyncSender<Ckpt>,
    /// Set by the checkpointer when redb cannot be written: writes stop.
    failed: Arc<OnceLock<String>>,
}

impl WalPersist {
    fn open(dir: &Path, cache_bytes: usize, opts: WalOptions) -> Result<Self, BackendError> {
        let db = open_db(dir, cache_bytes)?;
        let wal_dir = dir.join("wal");
        crate::util::create_private_dir(&wal_dir).map_err(io)?;
        // Replay what the log holds beyond redb's last checkpoint (a crash, or a kill, came
        // before the checkpointer applied it), then start an empty log.
        let (records, segs) = wal::read_all(&wal_dir)?;
        let applied = db_revision(&db)?;
        let replay: Vec<&wal::Record> = records.iter().filter(|r| r.revision > applied).collect();
        if let Some(last) = replay.last() {
            tracing::info!(
                records = replay.len(),
                from = applied,
                to = last.revision,
                "replaying the write-ahead log into redb"
            );
            db_apply(
                &db,
                last.revision,
                replay.iter().flat_map(|r| r.changes.iter()),
            )?;
        }
        let next = segs.last().map(|(seq, _)| seq + 1).unwrap_or(1);
        let old: Vec<PathBuf> = segs.into_iter().map(|(_, p)| p).collect();
        wal::remove(&wal_dir, &old)?;
        let wal = Wal::create(&wal_dir, next, opts.segment_bytes)?;
        let db = Arc::new(db);
        let failed = Arc::new(OnceLock::new());
        let (ckpt, rx) = std_mpsc::sync_channel(CHECKPOINT_BACKLOG);
        let checkpointer = Checkpointer {
            db: db.clone(),
            wal_dir,
            opts,
            failed: failed.clone(),
        };
        std::thread::Builder::new()
            .name("coxswain-redb-checkpoint".into())
            .spawn(move || checkpointer.run(rx))
            .map_err(io)?;
        Ok(WalPersist {
            wal,
            db,
            ckpt,
            failed,
        })
    }

    fn flush(&self) -> Result<(), BackendError> {
        let (tx, rx) = std_mpsc::sync_channel(1);
        self.ckpt
            .send(Ckpt::Flush(tx))
            .map_err(|_| BackendError::Stopped)?;
        rx.recv().map_err(|_| BackendError::Stopped)?
    }
}

impl Persist for WalPersist {
    fn snapshot(&self) -> Result<Snapshot, BackendError> {
        self.flush()?;
        db_snapshot(&self.db)
    }

    fn write(&mut self, revision: i64, changes: &[Change]) -> Result<(), BackendError> {
        if let Some(why) = self.failed.get() {
            return Err(BackendError::Failed(why.clone()));
        }
        let sealed = self.wal.append(revision, changes)?;
        let stopped = |_| BackendError::Failed("the redb checkpointer stopped".into());
        if let Some(p) = sealed {
            self.ckpt.send(Ckpt::Sealed(p)).map_err(stopped)?;
        }
        self.ckpt
            .send(Ckpt::Apply(revision, changes.to_vec()))
            .map_err(stopped)
    }
}

/// Applies the log to redb in batches, behind the writer, and deletes segments redb holds.
struct Checkpointer {
    db: Arc<Database>,
    wal_dir: PathBuf,
    opts: WalOptions,
    failed: Arc<OnceLock<String>>,
}

impl Checkpointer {
    fn run(self, rx: std_mpsc::Receiver<Ckpt>) {
        let mut closed = false;
        while !closed {
            let Ok(first) = rx.recv() else { break };
            let deadline = Instant::now() + self.opts.checkpoint_interval;
            let mut revision = None;
            let mut changes = Vec::new();
            let mut sealed = Vec::new();
            let mut flushes = Vec::new();
            let mut next = Some(first);
            loop {
                match next.take() {
                    Some(Ckpt::Apply(rev, mut c)) => {
                        revision = Some(rev);
                        changes.append(&mut c);
                    }
                    Some(Ckpt::Sealed(p)) => sealed.push(p),
                    Some(Ckpt::Flush(reply)) => flushes.push(reply),
                    None => {}
                }
                if !flushes.is_empty() || changes.len() >= self.opts.checkpoint_changes {
                    break;
                }
                let wait = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(wait) {
                    Ok(m) => next = Some(m),
                    Err(std_mpsc::RecvTimeoutError::Timeout) => break,
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            let done = self.checkpoint(revision, &changes, &sealed);
            if let Err(e) = &done {
                tracing::error!(error = %e, "applying the write-ahead log to redb failed; writes stop");
                let _ = self.failed.set(e.to_string());
            }
            for f in flushes {
                let _ = f.send(done.clone());
            }
            if done.is_err() {
                break;
            }
        }
    }

    fn checkpoint(
        &self,
        revision: Option<i64>,
        changes: &[Change],
        sealed: &[PathBuf],
    ) -> Result<(), BackendError> {
        if let Some(why) = self.failed.get() {
            return Err(BackendError::Failed(why.clone()));
        }
        if let Some(revision) = revision {
            db_apply(&self.db, revision, changes)?;
        }
        wal::remove(&self.wal_dir, sealed)
    }
}

impl EmbeddedBackend {
    /// Open the backend: a redb file under `opts.data_dir` with its write-ahead log, or memory
    /// when it is None.
    pub fn open(opts: EmbeddedOptions) -> Result<EmbeddedBackend, BackendError> {
        Self::open_with(opts, WalOptions::default())
    }

    /// `open` with the write-ahead log's settings.
    pub fn open_with(
        opts: EmbeddedOptions,
        wal_opts: WalOptions,
    ) -> Result<EmbeddedBackend, BackendError> {
        let (persist, name): (Box<dyn Persist>, &'static str) = match &opts.data_dir {
            Some(dir) => (
                Box::new(WalPersist::open(dir, opts.cache_bytes, wal_opts)?),
                "redb",
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str) -> Txn {
        Txn {
            compares: vec![],
            ops: vec![Op::Put {
                key: key.into(),
                value: Bytes::from(value.to_string()),
            }],
        }
    }

    fn opts(dir: &Path) -> EmbeddedOptions {
        EmbeddedOptions {
            data_dir: Some(dir.to_path_buf()),
            cache_bytes: 1 << 20,
        }
    }

    /// Open, retrying while the previous backend on `dir` is still closing (its threads exit
    /// once it is dropped; redb allows one open per file).
    async fn reopen(dir: &Path, wal: WalOptions) -> EmbeddedBackend {
        let mut last = None;
        for _ in 0..2000 {
            match EmbeddedBackend::open_with(opts(dir), wal.clone()) {
                Ok(b) => return b,
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("reopen: {last:?}");
    }

    fn never_checkpoint() -> WalOptions {
        WalOptions {
            checkpoint_interval: Duration::from_secs(3600),
            checkpoint_changes: usize::MAX,
            ..Default::default()
        }
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for e in std::fs::read_dir(from).expect("read_dir") {
            let e = e.expect("entry");
            let dest = to.join(e.file_name());
            if e.file_type().expect("type").is_dir() {
                copy_dir(&e.path(), &dest);
            } else {
                std::fs::copy(e.path(), dest).expect("copy");
            }
        }
    }

    fn wal_files(dir: &Path) -> usize {
        wal::segments(&dir.join("wal")).expect("segments").len()
    }

    #[tokio::test]
    async fn an_acknowledged_write_survives_a_crash_before_its_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = EmbeddedBackend::open_with(opts(dir.path()), never_checkpoint()).expect("open");
        let (snap, _feed) = b.start().await.expect("start");
        assert_eq!(snap.revision, 0);
        for i in 0..50 {
            let r = b
                .txn(put(&format!("/registry/k{i:02}"), "v"))
                .await
                .expect("txn");
            assert_eq!(r, TxnResult::Committed { revision: i + 1 });
        }
        let r = b
            .txn(Txn::delete_if("/registry/k07".into(), 8))
            .await
            .expect("delete");
        assert_eq!(r, TxnResult::Committed { revision: 51 });
        // The data directory as a kill -9 leaves it: redb still at the last checkpoint.
        let image = tempfile::tempdir().expect("tempdir");
        copy_dir(dir.path(), image.path());
        drop(b);
        {
            let db = Database::create(image.path().join("coxswain.redb")).expect("redb");
            assert_eq!(
                db_revision(&db).expect("revision"),
                0,
                "not checkpointed yet"
            );
        }
        let b = EmbeddedBackend::open(opts(image.path())).expect("open the image");
        let (snap, _feed) = b.start().await.expect("start");
        assert_eq!(snap.revision, 51);
        assert_eq!(snap.kvs.len(), 49);
        assert!(snap.kvs.iter().all(|kv| kv.key != "/registry/k07"));
        let k3 = snap
            .kvs
            .iter()
            .find(|kv| kv.key == "/registry/k03")
            .expect("k03");
        assert_eq!(k3.mod_revision, 4);
        // The log was replayed into redb and restarted empty; revisions go on.
        assert_eq!(wal_files(image.path()), 1);
        let r = b
            .txn(Txn::put_if("/registry/k03".into(), 4, Bytes::from("w")))
            .await;
        assert_eq!(r.expect("txn"), TxnResult::Committed { revision: 52 });
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = EmbeddedBackend::open_with(opts(dir.path()), never_checkpoint()).expect("open");
        for i in 0..3 {
            b.txn(put(&format!("/registry/k{i}"), "v"))
                .await
                .expect("txn");
        }
        let image = tempfile::tempdir().expect("tempdir");
        copy_dir(dir.path(), image.path());
        drop(b);
        // A fourth record, half written when the machine stopped: never acknowledged.
        let (_, seg) = wal::segments(&image.path().join("wal"))
            .expect("segments")
            .pop()
            .expect("a segment");
        let mut data = std::fs::read(&seg).expect("read");
        let (recs, end) = wal::decode(&data);
        assert_eq!(recs.len(), 3);
        let mut torn = Vec::new();
        let c = Change {
            revision: 4,
            key: "/registry/torn".into(),
            value: Some(Bytes::from("x")),
        };
        wal::encode(4, &[c], &mut torn);
        data[end..end + torn.len() - 2].copy_from_slice(&torn[..torn.len() - 2]);
        std::fs::write(&seg, &data).expect("write");
        let b = EmbeddedBackend::open(opts(image.path())).expect("open");
        let (snap, _feed) = b.start().await.expect("start");
        assert_eq!(snap.revision, 3);
        let keys: Vec<&str> = snap.kvs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["/registry/k0", "/registry/k1", "/registry/k2"]);
        let r = b.txn(put("/registry/k3", "v")).await.expect("txn");
        assert_eq!(r, TxnResult::Committed { revision: 4 });
    }

    #[tokio::test]
    async fn checkpoints_apply_the_log_to_redb_and_delete_sealed_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = WalOptions {
            segment_bytes: 1024,
            ..never_checkpoint()
        };
        let b = EmbeddedBackend::open_with(opts(dir.path()), wal.clone()).expect("open");
        let (_, mut feed) = b.start().await.expect("start");
        let value = "v".repeat(200);
        for i in 0..40 {
            b.txn(put(&format!("/registry/k{i:02}"), &value))
                .await
                .expect("txn");
        }
        let fed: usize = std::iter::from_fn(|| feed.try_recv().ok())
            .map(|c| c.len())
            .sum();
        assert_eq!(fed, 40, "every acknowledged change is on the feed");
        assert!(wal_files(dir.path()) > 5, "the log rotated");
        // A snapshot checkpoints first: redb holds everything, and only the current segment is
        // left.
        let (snap, _feed2) = b.start().await.expect("start");
        assert_eq!((snap.revision, snap.kvs.len()), (40, 40));
        assert_eq!(wal_files(dir.path()), 1);
        b.txn(put("/registry/last", "v")).await.expect("txn");
        drop(b);
        // Closing checkpoints what is left; the reopened backend continues.
        let b = reopen(dir.path(), wal).await;
        let (snap, _feed) = b.start().await.expect("start");
        assert_eq!((snap.revision, snap.kvs.len()), (41, 41));
        let r = b.txn(put("/registry/next", "v")).await.expect("txn");
        assert_eq!(r, TxnResult::Committed { revision: 42 });
    }

    #[tokio::test]
    async fn the_interval_checkpoints_without_a_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = WalOptions {
            checkpoint_interval: Duration::from_millis(5),
            ..Default::default()
        };
        let b = EmbeddedBackend::open_with(opts(dir.path()), wal).expect("open");
        b.txn(put("/registry/a", "v")).await.expect("txn");
        // Read redb's revision from copies of its file (redb allows one open per file).
        let copies = tempfile::tempdir().expect("tempdir");
        let mut rev = 0;
        for i in 0..2000 {
            let copy = copies.path().join(format!("{i}.redb"));
            std::fs::copy(dir.path().join("coxswain.redb"), &copy).expect("copy");
            rev = db_revision(&Database::create(&copy).expect("redb")).expect("revision");
            if rev == 1 {
                break;
            }
            std::fs::remove_file(&copy).expect("remove the copy");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(rev, 1, "redb caught up with the log");
    }
}
