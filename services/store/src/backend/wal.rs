//! The write-ahead log in front of the redb file, as etcd's WAL in front of bbolt: a commit group
//! is one record appended to the current segment and made durable with one `fdatasync`; redb is
//! brought up to date later, in batches, by the checkpointer (`embedded.rs`), and a segment is
//! deleted once redb holds everything in it.
//!
//! Layout: `<data-dir>/wal/<seq, 16 hex digits>.wal`, segments preallocated to their size (the
//! file length is set when the segment is created, so an append does not change it). A record is
//! `len: u32 LE | crc32(payload): u32 LE | payload`; a zero length ends the log (the rest of a
//! preallocated segment is zeros). Payload: `revision: i64 | count: u32 | count × change`, a
//! change being `revision: i64 | key len: u32 | key | 0 (delete) or 1 (put) | [value len: u32 |
//! value]`. Only the last segment can end in a torn record (a segment is sealed after its last
//! record is durable): a short or corrupt record there ends the log, and it is cut.
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{BackendError, Change};

const HEADER: usize = 8;
/// A record longer than this is corrupt (no commit group comes near it).
const MAX_RECORD: usize = 1 << 30;

fn io<E: std::fmt::Display>(e: E) -> BackendError {
    BackendError::Io(e.to_string())
}

fn corrupt(path: &Path, offset: u64, why: &str) -> BackendError {
    BackendError::Io(format!(
        "write-ahead log {} is corrupt at offset {offset}: {why}",
        path.display()
    ))
}

/// One decoded commit group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    /// The writer's revision after the group (covers transactions that changed nothing).
    pub revision: i64,
    pub changes: Vec<Change>,
}

/// Encode a commit group's record (header and payload) into `buf`, replacing its contents.
pub(super) fn encode(revision: i64, changes: &[Change], buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&[0; HEADER]);
    buf.extend_from_slice(&revision.to_le_bytes());
    buf.extend_from_slice(&(changes.len() as u32).to_le_bytes());
    for c in changes {
        buf.extend_from_slice(&c.revision.to_le_bytes());
        buf.extend_from_slice(&(c.key.len() as u32).to_le_bytes());
        buf.extend_from_slice(c.key.as_bytes());
        match &c.value {
            None => buf.push(0),
            Some(v) => {
                buf.push(1);
                buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
                buf.extend_from_slice(v);
            }
        }
    }
    let len = (buf.len() - HEADER) as u32;
    let crc = crc32fast::hash(&buf[HEADER..]);
    buf[0..4].copy_from_slice(&len.to_le_bytes());
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// A cursor over a payload; every read is bounds-checked (a CRC-valid payload is still decoded
/// defensively).
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

fn decode_payload(p: &[u8]) -> Option<Record> {
    let mut c = Cursor(p);
    let revision = c.i64()?;
    let n = c.u32()? as usize;
    let mut changes = Vec::with_capacity(n.min(p.len() / 13));
    for _ in 0..n {
        let revision = c.i64()?;
        let klen = c.u32()? as usize;
        let key = std::str::from_utf8(c.take(klen)?).ok()?.to_string();
        let value = match c.take(1)?[0] {
            0 => None,
            1 => {
                let vlen = c.u32()? as usize;
                Some(Bytes::copy_from_slice(c.take(vlen)?))
            }
            _ => return None,
        };
        changes.push(Change {
            revision,
            key,
            value,
        });
    }
    c.0.is_empty().then_some(Record { revision, changes })
}

/// Decode the records of one segment's contents. Returns them and the length of the valid
/// prefix: what follows it is empty (zeros), torn or corrupt.
pub(super) fn decode(data: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while data.len() - at >= HEADER {
        let len = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let crc = u32::from_le_bytes([data[at + 4], data[at + 5], data[at + 6], data[at + 7]]);
        if len == 0 || len > MAX_RECORD || data.len() - at - HEADER < len {
            break;
        }
        let payload = &data[at + HEADER..at + HEADER + len];
        if crc32fast::hash(payload) != crc {
            break;
        }
        match decode_payload(payload) {
            Some(r) => records.push(r),
            None => break,
        }
        at += HEADER + len;
    }
    (records, at)
}

/// Segment files: (sequence number, path).
pub(super) type Segments = Vec<(u64, PathBuf)>;

/// The segment files in `dir`, in order.
pub(super) fn segments(dir: &Path) -> Result<Segments, BackendError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| u64::from_str_radix(n, 16).ok());
        if let Some(seq) = seq {
            out.push((seq, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Read every record in the log under `dir`, in order. A torn or corrupt record ends the last
/// segment (what follows it was never acknowledged); anywhere else it is an error.
pub(super) fn read_all(dir: &Path) -> Result<(Vec<Record>, Segments), BackendError> {
    let segs = segments(dir)?;
    let mut records = Vec::new();
    for (i, (_, path)) in segs.iter().enumerate() {
        let mut data = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut data))
            .map_err(io)?;
        let (mut recs, valid) = decode(&data);
        let last = i + 1 == segs.len();
        if !last && data[valid..].iter().any(|b| *b != 0) {
            return Err(corrupt(
                path,
                valid as u64,
                "a bad record before the last segment",
            ));
        }
        if last && data[valid..].iter().any(|b| *b != 0) {
            tracing::warn!(
                segment = %path.display(),
                offset = valid,
                "cutting a torn record at the end of the write-ahead log"
            );
        }
        records.append(&mut recs);
    }
    Ok((records, segs))
}

fn fsync_dir(dir: &Path) -> Result<(), BackendError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

/// The segment being appended to.
pub(super) struct Wal {
    dir: PathBuf,
    file: File,
    path: PathBuf,
    seq: u64,
    offset: u64,
    segment_bytes: u64,
    buf: Vec<u8>,
}

impl Wal {
    /// Start a new, empty segment numbered `seq` in `dir`.
    pub fn create(dir: &Path, seq: u64, segment_bytes: u64) -> Result<Wal, BackendError> {
        let (file, path) = new_segment(dir, seq, segment_bytes)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            file,
            path,
            seq,
            offset: 0,
            segment_bytes,
            buf: Vec::new(),
        })
    }

    /// Append one commit group and make it durable. Returns the path of the segment sealed to
    /// make room, if any: everything in it is durable and it may go once redb holds it.
    pub fn append(
        &mut self,
        revision: i64,
        changes: &[Change],
    ) -> Result<Option<PathBuf>, BackendError> {
        let mut buf = std::mem::take(&mut self.buf);
        encode(revision, changes, &mut buf);
        let mut sealed = None;
        if self.offset > 0 && self.offset + buf.len() as u64 + HEADER as u64 > self.segment_bytes {
            let (file, path) = new_segment(&self.dir, self.seq + 1, self.segment_bytes)?;
            self.seq += 1;
            self.file = file;
            self.offset = 0;
            sealed = Some(std::mem::replace(&mut self.path, path));
        }
        let written = write_at(&self.file, &buf, self.offset).and_then(|_| self.file.sync_data());
        self.buf = buf;
        written.map_err(io)?;
        self.offset += self.buf.len() as u64;
        Ok(sealed)
    }

    /// The segment being appended to.
    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(unix)]
fn write_at(f: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    f.write_all_at(buf, offset)
}

#[cfg(not(unix))]
fn write_at(mut f: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(offset))?;
    f.write_all(buf)
}

/// Create segment `seq`: 0600, its length set to `segment_bytes` (zeros) and that made durable
/// with the directory entry, so appends only write data.
fn new_segment(dir: &Path, seq: u64, segment_bytes: u64) -> Result<(File, PathBuf), BackendError> {
    let path = dir.join(format!("{seq:016x}.wal"));
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(&path).map_err(io)?;
    file.set_len(segment_bytes).map_err(io)?;
    file.flush().map_err(io)?;
    file.sync_all().map_err(io)?;
    fsync_dir(dir)?;
    Ok((file, path))
}

/// Remove segments (redb holds everything in them) and make that durable.
pub(super) fn remove(dir: &Path, paths: &[PathBuf]) -> Result<(), BackendError> {
    if paths.is_empty() {
        return Ok(());
    }
    for p in paths {
        match std::fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    fsync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(rev: i64, key: &str, value: &str) -> Change {
        Change {
            revision: rev,
            key: key.into(),
            value: Some(Bytes::from(value.to_string())),
        }
    }

    fn del(rev: i64, key: &str) -> Change {
        Change {
            revision: rev,
            key: key.into(),
            value: None,
        }
    }

    #[test]
    fn records_round_trip() {
        let changes = vec![
            put(5, "/registry/a", "one"),
            del(6, "/registry/b"),
            put(6, "/registry/c", ""),
        ];
        let mut buf = Vec::new();
        encode(6, &changes, &mut buf);
        let mut two = buf.clone();
        encode(9, &[], &mut buf);
        two.extend_from_slice(&buf);
        two.extend_from_slice(&[0; 64]);
        let (recs, valid) = decode(&two);
        assert_eq!(valid, two.len() - 64);
        assert_eq!(
            recs,
            vec![
                Record {
                    revision: 6,
                    changes
                },
                Record {
                    revision: 9,
                    changes: vec![]
                }
            ]
        );
    }

    #[test]
    fn a_torn_or_corrupt_tail_ends_the_log() {
        let mut log = Vec::new();
        let mut buf = Vec::new();
        encode(1, &[put(1, "/registry/a", "one")], &mut buf);
        log.extend_from_slice(&buf);
        let first = log.len();
        encode(2, &[put(2, "/registry/b", "two")], &mut buf);
        // Short: every proper prefix of the second record is cut.
        for cut in first..first + buf.len() {
            let mut torn = log.clone();
            torn.extend_from_slice(&buf[..cut - first]);
            let (recs, valid) = decode(&torn);
            assert_eq!((recs.len(), valid), (1, first), "cut at {cut}");
        }
        // Corrupt: a flipped payload byte fails the CRC.
        let mut bad = log.clone();
        let mut flipped = buf.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        bad.extend_from_slice(&flipped);
        assert_eq!(decode(&bad).0.len(), 1);
        // A huge length is not read past the data.
        let mut huge = log.clone();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0xff; 12]);
        assert_eq!(decode(&huge), (decode(&log).0, first));
    }

    #[test]
    fn segments_rotate_and_read_back_in_order_with_the_tail_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut wal = Wal::create(dir.path(), 1, 256).expect("create");
        let mut sealed = Vec::new();
        for i in 1..=20 {
            let v = "x".repeat(40);
            if let Some(p) = wal
                .append(i, &[put(i, &format!("/registry/k{i}"), &v)])
                .expect("append")
            {
                sealed.push(p);
            }
        }
        assert!(sealed.len() >= 5, "{} segments sealed", sealed.len());
        // A torn append at the end of the current segment.
        let current = wal.path().to_path_buf();
        let len = std::fs::metadata(&current).expect("stat").len();
        assert_eq!(len, 256, "preallocated: appends do not change the length");
        let mut garbage = Vec::new();
        encode(21, &[put(21, "/registry/k21", "torn")], &mut garbage);
        garbage.truncate(garbage.len() - 3);
        let (recs, _) = decode(&std::fs::read(&current).expect("read"));
        let end: usize = recs
            .iter()
            .map(|r| {
                let mut b = Vec::new();
                encode(r.revision, &r.changes, &mut b);
                b.len()
            })
            .sum();
        write_at(
            &File::options().write(true).open(&current).expect("open"),
            &garbage,
            end as u64,
        )
        .expect("write");
        let (recs, segs) = read_all(dir.path()).expect("read all");
        assert_eq!(segs.len(), sealed.len() + 1);
        let revs: Vec<i64> = recs.iter().map(|r| r.revision).collect();
        assert_eq!(revs, (1..=20).collect::<Vec<_>>());
        // Corruption in a sealed segment is an error, not a silent cut.
        let mut first = std::fs::read(&sealed[0]).expect("read");
        first[HEADER + 2] ^= 1;
        std::fs::write(&sealed[0], first).expect("write");
        assert!(read_all(dir.path()).is_err());
    }
}
