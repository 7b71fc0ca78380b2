//! The built-in web server's cache of static files. The official nginx image configures no
//! `open_file_cache`: its worker opens and stats the file on every request, so a page rewritten
//! in place (`kubectl exec … -- sh -c 'echo pod1 > /usr/share/nginx/html/index.html'`, seed 002)
//! is served at once. That is the default here too (`valid` = 0): every request looks at the
//! file with one `stat` of its known path, inline as nginx's event loop does (a stat of a file
//! whose dentry and inode are cached is a few microseconds, cheaper than a hand-off to the
//! blocking pool); only when the file changed (device, inode, size or mtime: what nginx's cache
//! compares, and the `Last-Modified` and `ETag` nginx sends) or is not known yet is it read
//! again, on tokio's blocking pool, never on the reactor. So a kept-alive request costs one
//! `stat` instead of an open, a read and two stats.
//!
//! With `valid` > 0 (`coxswain builtin web --open-file-cache-valid`) it is nginx's
//! `open_file_cache` with `open_file_cache_valid`: a file read or checked is served from memory
//! without a system call until `valid` has passed. A file changed less than `valid` ago is
//! looked at again once it is twice as old as it was when read (a page read 10 ms after its
//! write is looked at again 10 ms later, then after 20 ms, ...): a docroot being written (a
//! sidecar's `echo > index.html`, an updated ConfigMap volume) is not served half-written for a
//! whole period.
//!
//! Missing files are not cached (nginx's `open_file_cache_errors off`): a 404 looks at the
//! filesystem each time, so a file created later is served at once.
//!
//! Bounded (`--open-file-cache-max`, `--open-file-cache-max-bytes`): at most 1,000 URL paths
//! and 32 MiB of file contents by default. A file larger than a sixteenth of the byte cap (2 MiB
//! by default) is read on every request and not kept. When an entry would pass either cap, the
//! least recently used entries are dropped first.
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// The cache's period and caps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileCacheConfig {
    /// How long a file read or checked is served without looking at it again (0: it is
    /// looked at on every request, as nginx without `open_file_cache`).
    pub valid: Duration,
    /// How many URL paths are kept.
    pub max_entries: usize,
    /// How many bytes of file contents are kept, in all.
    pub max_bytes: usize,
}

impl Default for FileCacheConfig {
    fn default() -> Self {
        FileCacheConfig {
            valid: Duration::ZERO,
            max_entries: 1000,
            max_bytes: 32 << 20,
        }
    }
}

/// A file as served: its bytes and its validators.
#[derive(Debug)]
pub struct File {
    pub body: Arc<[u8]>,
    /// The `Last-Modified` value (an HTTP date, as nginx's).
    pub last_modified: String,
    /// The `ETag` value, nginx's `"<mtime hex>-<size hex>"`.
    pub etag: String,
}

/// What tells a file's version: nginx's open file cache compares the inode (`uniq`), the size
/// and the mtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

impl FileId {
    fn of(m: &std::fs::Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }
}

struct Entry {
    file: Arc<File>,
    path: PathBuf,
    id: FileId,
    /// Served without a look at the filesystem until then.
    fresh_until: Instant,
    /// The cache's use counter when last served (the least recent is dropped first).
    used: u64,
    /// Read at least [`SETTLE`] after its mtime: a later write cannot share that mtime, so an
    /// unchanged (inode, size, mtime) means unchanged bytes. A file read sooner is read again
    /// at each look until it is settled (a same-size rewrite within the filesystem's timestamp
    /// granularity, a few milliseconds, would otherwise go unseen).
    settled: bool,
}

/// How long after its last change a file read is known to have all of that change.
const SETTLE: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    bytes: usize,
    uses: u64,
}

/// The static files of one docroot, by URL path (query and fragment dropped).
pub struct FileCache {
    root: Arc<Path>,
    config: FileCacheConfig,
    inner: Mutex<Inner>,
}

/// What a look at the filesystem found: the file's path, its version, its contents (the known
/// ones when the version is the known one).
type Found = (PathBuf, FileId, Arc<File>);

impl FileCache {
    pub fn new(root: PathBuf, config: FileCacheConfig) -> FileCache {
        FileCache {
            root: root.into(),
            config,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The file for a request's path, or `None` (404).
    pub async fn get(&self, request_path: &str) -> Option<Arc<File>> {
        let key = request_path.split(['?', '#']).next().unwrap_or("/");
        let now = Instant::now();
        let known = {
            let mut inner = self.lock();
            inner.uses += 1;
            let uses = inner.uses;
            match inner.map.get_mut(key) {
                Some(e) if now < e.fresh_until => {
                    e.used = uses;
                    return Some(e.file.clone());
                }
                // nginx without open_file_cache: one stat of the known file, inline.
                Some(e)
                    if self.config.valid.is_zero()
                        && e.settled
                        && std::fs::metadata(&e.path)
                            .is_ok_and(|m| m.is_file() && FileId::of(&m) == e.id) =>
                {
                    e.used = uses;
                    return Some(e.file.clone());
                }
                Some(e) if e.settled => Some((e.path.clone(), e.id, e.file.clone())),
                Some(_) => None,
                None => None,
            }
        };
        let (root, owned_key) = (self.root.clone(), key.to_string());
        let max_file = self.max_file_bytes();
        let found = tokio::task::spawn_blocking(move || look(&root, &owned_key, known, max_file))
            .await
            .ok()
            .flatten();
        let now = Instant::now();
        let mut inner = self.lock();
        inner.uses += 1;
        let uses = inner.uses;
        remove(&mut inner, key);
        let (path, id, file) = found?;
        let len = file.body.len();
        if len <= max_file && self.config.max_entries > 0 {
            while inner.map.len() >= self.config.max_entries
                || inner.bytes + len > self.config.max_bytes
            {
                let Some(lru) = inner
                    .map
                    .iter()
                    .min_by_key(|(_, e)| e.used)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                remove(&mut inner, &lru);
            }
            inner.bytes += len;
            let fresh_until = now + fresh_for(self.config.valid, id);
            inner.map.insert(
                key.to_string(),
                Entry {
                    file: file.clone(),
                    path,
                    id,
                    fresh_until,
                    used: uses,
                    settled: age(id) >= SETTLE,
                },
            );
        }
        Some(file)
    }

    /// The largest file kept: a sixteenth of the byte cap.
    fn max_file_bytes(&self) -> usize {
        self.config.max_bytes / 16
    }

    /// (entries, bytes) held.
    #[cfg(test)]
    fn size(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.map.len(), inner.bytes)
    }
}

fn remove(inner: &mut Inner, key: &str) {
    if let Some(e) = inner.map.remove(key) {
        inner.bytes -= e.file.body.len();
    }
}

/// How long a file just read or checked is served without a look: `valid`, or for a file
/// changed less than `valid` ago, as long as its age (so it is looked at again at twice its
/// age).
fn fresh_for(valid: Duration, id: FileId) -> Duration {
    valid.min(age(id))
}

/// How long ago the file last changed (0 for an mtime in the future).
fn age(id: FileId) -> Duration {
    let mtime = SystemTime::UNIX_EPOCH
        + Duration::new(
            id.mtime.0.max(0) as u64,
            id.mtime.1.clamp(0, 999_999_999) as u32,
        );
    SystemTime::now()
        .duration_since(mtime)
        .unwrap_or(Duration::ZERO)
}

/// The file a URL path names under `root`: `/` and directories are their index.html; `..` is
/// never followed.
pub fn file_for(root: &Path, path: &str) -> Option<PathBuf> {
    let path = path.split(['?', '#']).next().unwrap_or("/");
    if path.split('/').any(|seg| seg == "..") {
        return None;
    }
    let mut p = root.join(path.trim_start_matches('/'));
    if path.ends_with('/') || p.is_dir() {
        p = p.join("index.html");
    }
    p.is_file().then_some(p)
}

/// Resolves and stats the URL path's file (blocking): the `known` contents when it is still the
/// known version, else its contents read; `None` when there is no such file.
fn look(root: &Path, key: &str, known: Option<Found>, max_file: usize) -> Option<Found> {
    use std::io::Read as _;
    let path = file_for(root, key)?;
    let mut f = std::fs::File::open(&path).ok()?;
    let meta = f.metadata().ok()?;
    let id = FileId::of(&meta);
    if let Some(known) = known.filter(|(p, k, _)| *p == path && *k == id) {
        return Some(known);
    }
    let mut body = Vec::with_capacity((meta.len() as usize).min(max_file.max(1) * 2));
    f.read_to_end(&mut body).ok()?;
    // nginx's validators come from the same fstat as the bytes; a file that changed while it
    // was read keeps the size of what was read.
    let id = FileId {
        len: body.len() as u64,
        ..id
    };
    let file = File {
        last_modified: http_date(id.mtime.0),
        etag: format!("\"{:x}-{:x}\"", id.mtime.0, id.len),
        body: body.into(),
    };
    Some((path, id, Arc::new(file)))
}

/// An IMF-fixdate (RFC 9110 §5.6.7), as nginx's `Last-Modified`: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(secs: i64) -> String {
    use coxswain_api::time::{civil_from_days, weekday};
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[weekday(days) as usize],
        MONTHS[m as usize - 1],
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Whether a GET or HEAD with these conditional headers is answered 304 Not Modified, as
/// nginx's not-modified filter decides (`if_modified_since exact`): when either header is
/// present, `If-Modified-Since` (if present) equals `Last-Modified` and `If-None-Match` (if
/// present) lists the `ETag` (weakly compared) or is `*`.
pub fn not_modified(
    file: &File,
    if_modified_since: Option<&str>,
    if_none_match: Option<&str>,
) -> bool {
    if if_modified_since.is_none() && if_none_match.is_none() {
        return false;
    }
    if if_modified_since.is_some_and(|ims| ims.trim() != file.last_modified) {
        return false;
    }
    if let Some(inm) = if_none_match {
        let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
        let ours = strip(&file.etag);
        let listed = inm.split(',').any(|t| t.trim() == "*" || strip(t) == ours);
        if !listed {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docroot(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("coxswain-filecache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("tmp");
        dir
    }

    /// Writes `body` with an mtime an hour ago (a file not being written).
    fn write_old(path: &Path, body: &str, hours_ago: u64) {
        std::fs::write(path, body).expect("write");
        let f = std::fs::File::options()
            .write(true)
            .open(path)
            .expect("open");
        f.set_modified(SystemTime::now() - Duration::from_secs(3600 * hours_ago))
            .expect("mtime");
    }

    fn text(f: &File) -> &str {
        std::str::from_utf8(&f.body).expect("utf8")
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_file_is_served_once_the_period_has_passed() {
        let dir = docroot("period");
        write_old(&dir.join("index.html"), "first", 2);
        let config = FileCacheConfig {
            valid: Duration::from_secs(60),
            ..FileCacheConfig::default()
        };
        let cache = FileCache::new(dir.clone(), config);
        assert_eq!(text(&cache.get("/").await.expect("/")), "first");
        // The same file under another version: kept from memory until the period ends.
        write_old(&dir.join("index.html"), "second", 1);
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(text(&cache.get("/?x=1").await.expect("/")), "first");
        tokio::time::advance(Duration::from_secs(1)).await;
        let f = cache.get("/").await.expect("/");
        assert_eq!(text(&f), "second");
        assert_eq!(
            f.etag,
            format!("\"{:x}-6\"", cache_mtime(&dir.join("index.html")))
        );
        // Unchanged since: the same bytes, looked at once per period.
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(Arc::ptr_eq(&f, &cache.get("/").await.expect("/")));
        // Removed: 404 at the next look, and not cached (a new file is served at once).
        std::fs::remove_file(dir.join("index.html")).expect("rm");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(cache.get("/").await.is_none());
        assert_eq!(cache.size(), (0, 0));
        assert!(cache.get("/new.html").await.is_none());
        write_old(&dir.join("new.html"), "new", 1);
        assert_eq!(text(&cache.get("/new.html").await.expect("new")), "new");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The default, as the official nginx image (no open_file_cache): a page rewritten in place
    /// is served at once, without waiting for any period; unchanged bytes are not read again.
    #[tokio::test]
    async fn by_default_a_rewritten_page_is_served_at_once() {
        let dir = docroot("default");
        let page = dir.join("index.html");
        write_old(&page, "nginx", 2);
        let cache = FileCache::new(dir.clone(), FileCacheConfig::default());
        let f = cache.get("/").await.expect("/");
        assert_eq!(text(&f), "nginx");
        assert!(
            Arc::ptr_eq(&f, &cache.get("/").await.expect("/")),
            "unchanged: kept"
        );
        // `echo pod1 > index.html`: the same inode, another size and mtime.
        std::fs::write(&page, "pod1\n").expect("rewrite");
        assert_eq!(text(&cache.get("/").await.expect("/")), "pod1\n");
        // A rewrite of the same size whose mtime the filesystem's granularity left unchanged:
        // the file was read within SETTLE of its change, so it is read again, not trusted.
        let mtime = std::fs::metadata(&page)
            .expect("stat")
            .modified()
            .expect("mtime");
        std::fs::write(&page, "pod2\n").expect("rewrite");
        std::fs::File::options()
            .write(true)
            .open(&page)
            .expect("open")
            .set_modified(mtime)
            .expect("mtime");
        assert_eq!(text(&cache.get("/").await.expect("/")), "pod2\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn cache_mtime(p: &Path) -> i64 {
        std::fs::metadata(p).expect("stat").mtime()
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_just_written_is_looked_at_again_soon() {
        let dir = docroot("young");
        // Caught mid-write: the start of the page, written just now.
        std::fs::write(dir.join("index.html"), "<html>").expect("write");
        let cache = FileCache::new(dir.clone(), FileCacheConfig::default());
        assert_eq!(text(&cache.get("/").await.expect("/")), "<html>");
        std::fs::write(dir.join("index.html"), "<html>whole</html>").expect("write");
        // Its age when read was well under the period (60 s): looked at again after as long,
        // here half the period later.
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(
            text(&cache.get("/").await.expect("/")),
            "<html>whole</html>"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(start_paused = true)]
    async fn entries_and_bytes_are_capped_least_recently_used_first() {
        let dir = docroot("caps");
        for (name, len) in [("a", 10), ("b", 10), ("c", 10), ("big", 100)] {
            write_old(&dir.join(name), &"x".repeat(len), 1);
        }
        let config = FileCacheConfig {
            max_entries: 2,
            max_bytes: 16 * 25,
            ..FileCacheConfig::default()
        };
        let cache = FileCache::new(dir.clone(), config);
        let a = cache.get("/a").await.expect("a");
        cache.get("/b").await.expect("b");
        // a used after b: b is the least recently used when c comes.
        assert!(Arc::ptr_eq(&a, &cache.get("/a").await.expect("a")));
        cache.get("/c").await.expect("c");
        assert_eq!(cache.size(), (2, 20));
        assert!(
            Arc::ptr_eq(&a, &cache.get("/a").await.expect("a")),
            "a kept"
        );
        // Over a sixteenth of the byte cap: served, never kept.
        assert_eq!(cache.get("/big").await.expect("big").body.len(), 100);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(start_paused = true)]
    async fn the_byte_cap_drops_the_least_recently_used() {
        let dir = docroot("bytes");
        for i in 0..17 {
            write_old(&dir.join(i.to_string()), &"x".repeat(25), 1);
        }
        // 400 bytes: sixteen files of 25 bytes (the largest kept), not seventeen.
        let config = FileCacheConfig {
            max_entries: 100,
            max_bytes: 400,
            ..FileCacheConfig::default()
        };
        let cache = FileCache::new(dir.clone(), config);
        let first = cache.get("/0").await.expect("0");
        for i in 1..16 {
            cache.get(&format!("/{i}")).await.expect("file");
        }
        assert_eq!(cache.size(), (16, 400));
        // 0 used again: 1 is now the least recently used, and makes room for 16.
        assert!(Arc::ptr_eq(&first, &cache.get("/0").await.expect("0")));
        let one = cache.get("/1").await.expect("1");
        let _ = cache.get("/0").await;
        for i in 2..16 {
            let _ = cache.get(&format!("/{i}")).await;
        }
        cache.get("/16").await.expect("16");
        assert_eq!(cache.size(), (16, 400));
        assert!(
            Arc::ptr_eq(&first, &cache.get("/0").await.expect("0")),
            "0 kept"
        );
        assert!(
            !Arc::ptr_eq(&one, &cache.get("/1").await.expect("1")),
            "1 read again"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn http_dates_and_conditional_requests_are_nginx_s() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        let f = File {
            body: Arc::from(&b"x"[..]),
            last_modified: http_date(784_111_777),
            etag: "\"2ebc8fa1-1\"".into(),
        };
        assert!(!not_modified(&f, None, None));
        assert!(not_modified(
            &f,
            Some("Sun, 06 Nov 1994 08:49:37 GMT"),
            None
        ));
        assert!(!not_modified(
            &f,
            Some("Sun, 06 Nov 1994 08:49:38 GMT"),
            None
        ));
        assert!(not_modified(&f, None, Some("\"a\", W/\"2ebc8fa1-1\"")));
        assert!(not_modified(&f, None, Some("*")));
        assert!(!not_modified(&f, None, Some("\"2ebc8fa1-2\"")));
        // Both present: both must match.
        assert!(!not_modified(
            &f,
            Some("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some("\"other\"")
        ));
    }
}
