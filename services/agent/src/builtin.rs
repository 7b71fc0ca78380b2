//! The built-in workloads the process runtime runs for catalog images (served by the coxswain
//! binary itself: `coxswain builtin …`), and the supervisor that wraps user commands.
//!
//! Every one of them dies with the agent (Linux parent-death signal), so a killed agent never
//! leaves servers holding pod addresses.
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod filecache;
use filecache::FileCache;
pub use filecache::FileCacheConfig;

/// Asks the kernel to send `SIGKILL` (or `SIGUSR1` for the supervisor) when the parent exits;
/// exits at once when the parent is already gone ([`ParentDeath`] without a named parent: a
/// parent that is pid 1 counts as gone, unless a death signal was set already by the `run-as`
/// wrapper that exec'd this process after checking its parent by pid, which may be pid 1).
pub fn die_with_parent(kill: bool) {
    ParentDeath::new(None).arm(kill);
}

/// A process that must not outlive its parent: the `run-as` wrapper (whose parent is the agent),
/// the first process of a container's PID namespace (whose parent is the wrapper), a built-in
/// workload.
///
/// The kernel's parent-death signal (`PR_SET_PDEATHSIG`) is only sent for a parent that dies
/// after it was set, and a change of credentials (the wrapper becoming the container's user)
/// clears it. So [`ParentDeath::arm`] sets it and then checks that the parent is still the one
/// expected: a parent that died before was replaced by a reaper, and the process exits. Arm
/// again after every change of credentials.
///
/// The first process of a PID namespace has no parent in it (`getppid` is 0): it reads its real
/// parent in the host's `/proc`, through `/proc/self` opened by [`ParentDeath::new`] before it
/// mounts the namespace's own `/proc`. Its death signal is kept across the exec of the
/// container's program (which is neither set-user-ID nor given file capabilities: its ambient
/// capability does not count), so a program that never sets one itself still dies with the
/// wrapper, and the kernel then kills the rest of the namespace.
pub struct ParentDeath {
    /// The parent's pid (in this process's namespace; for the first process of a namespace, in
    /// the numbering of the host's `/proc`).
    expected: Option<i32>,
    /// The host's `/proc/self` of the first process of a PID namespace.
    host_proc: Option<std::os::fd::OwnedFd>,
}

/// Where a process that must die with its parent learns whether it is still its parent's.
#[derive(Debug, PartialEq, Eq)]
enum Parent {
    Alive,
    Gone,
    /// The first process of a namespace with no parent named: it cannot tell, and relies on
    /// the death signal its first process had set (kept across exec).
    Unknown,
}

impl ParentDeath {
    /// Before the process changes its view of `/proc`. `expected`: the parent's pid, as the
    /// parent gave it (the agent its own, the wrapper its own as its `/proc` names it); without
    /// one, a parent that is pid 1 (the usual reaper) counts as gone.
    pub fn new(expected: Option<i32>) -> ParentDeath {
        use rustix::fs::{Mode, OFlags};
        let host_proc = match (expected, rustix::process::getppid()) {
            (Some(_), None) => rustix::fs::open(
                "/proc/self",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok(),
            _ => None,
        };
        ParentDeath {
            expected,
            host_proc,
        }
    }

    /// Sets this process's parent-death signal, `SIGKILL` (else `SIGUSR1`, for a process that
    /// handles it), then exits 137 (as if killed) when the parent is gone already, or cannot be
    /// checked although it was named.
    pub fn arm(&self, kill: bool) {
        let sig = if kill {
            rustix::process::Signal::KILL
        } else {
            rustix::process::Signal::USR1
        };
        // A signal set already, kept across exec, was set by the wrapper that exec'd this
        // process once it had checked its parent by pid: it has stood since, and is only
        // replaced here. (Without a pid, pid 1 as the parent would be taken for a reaper,
        // though it may be the agent itself, a container's entrypoint.)
        let inherited = self.expected.is_none()
            && rustix::process::parent_process_death_signal().is_ok_and(|s| s.is_some());
        let _ = rustix::process::set_parent_process_death_signal(Some(sig));
        if inherited {
            return;
        }
        match self.parent() {
            Ok(Parent::Alive | Parent::Unknown) => {}
            Ok(Parent::Gone) => std::process::exit(137),
            Err(e) => {
                eprintln!("coxswain: cannot tell whether the parent is alive: {e}");
                std::process::exit(137)
            }
        }
    }

    fn parent(&self) -> std::io::Result<Parent> {
        let ppid = match rustix::process::getppid() {
            Some(p) => p.as_raw_nonzero().get(),
            None => match &self.host_proc {
                Some(fd) => host_ppid(fd)?,
                None if self.expected.is_some() => {
                    return Err(std::io::Error::other(
                        "the first process of a PID namespace without the host's /proc",
                    ))
                }
                None => return Ok(Parent::Unknown),
            },
        };
        let alive = match self.expected {
            Some(p) => ppid == p,
            None => ppid != 1,
        };
        Ok(if alive { Parent::Alive } else { Parent::Gone })
    }
}

/// The parent pid in `/proc/<pid>/stat` (field 4) through the directory `proc_pid`.
fn host_ppid(proc_pid: &std::os::fd::OwnedFd) -> std::io::Result<i32> {
    use rustix::fs::{Mode, OFlags};
    use std::io::Read as _;
    let fd = rustix::fs::openat(
        proc_pid,
        "stat",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut stat = String::new();
    std::fs::File::from(fd).read_to_string(&mut stat)?;
    parse_stat_ppid(&stat)
        .ok_or_else(|| std::io::Error::other(format!("no parent pid in {stat:?}")))
}

/// Field 4 of a `/proc/<pid>/stat` line: after the command name in parentheses (which may hold
/// any character, parentheses and spaces included), the state, then the parent's pid.
fn parse_stat_ppid(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

async fn term_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    let mut quit = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::quit()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = quit.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

fn now_log() -> String {
    coxswain_api::time::now_rfc3339()
}

/// What the web server answers.
#[derive(Clone)]
pub enum WebKind {
    /// Files of a docroot: `/` is index.html; missing files are 404. Served from memory as
    /// nginx's `open_file_cache` does (`filecache`), looked at again once per `cache.valid`.
    Static {
        root: PathBuf,
        cache: FileCacheConfig,
    },
    /// Burns `millis` of CPU per request and answers "OK!".
    CpuBurner(u64),
}

/// What a running server answers: [`WebKind`] with the docroot's cache.
#[derive(Clone)]
enum Site {
    Static(Arc<FileCache>),
    CpuBurner(u64),
}

/// Serves HTTP on addr:port for every port until SIGTERM/SIGQUIT, then shuts down gracefully as
/// nginx's graceful quit does (the official image stops nginx with SIGQUIT): the listening sockets
/// close, but every connection the kernel already completed is still accepted and answered, a
/// request being read or served is finished, and idle keep-alive connections are closed; the
/// process exits 0 once no connection is left (the agent's SIGKILL after the grace period bounds
/// a slow client).
///
/// Closing a listener with connections still in its accept queue would reset them: a client (or
/// the service proxy, which chose this pod a moment before its endpoint left) would see its
/// request vanish with no answer. A connection refused at connect time, after the close, is one
/// the proxy retries on the next endpoint.
pub async fn serve_web(addr: IpAddr, ports: &[u16], kind: WebKind) -> anyhow::Result<()> {
    die_with_parent(true);
    serve_web_until(addr, ports, kind, |_| {}, term_signal()).await
}

/// nginx's listen backlog on Linux (`NGX_LISTEN_BACKLOG`, the `listen ... backlog=` default).
/// tokio's `TcpListener::bind` listens with 128: a burst of new connections (a load test
/// without keep-alive, a proxy's reconnects) overflowed its accept queue, and every dropped
/// SYN cost its client a one-second retransmit that nginx would not have caused.
const LISTEN_BACKLOG: u32 = 511;

/// A listening socket as nginx opens one: SO_REUSEADDR, backlog [`LISTEN_BACKLOG`].
fn listen(sa: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match sa {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(sa)?;
    socket.listen(LISTEN_BACKLOG)
}

/// [`serve_web`]'s server: `ready` gets the bound addresses; `shutdown` starts the graceful exit.
async fn serve_web_until(
    addr: IpAddr,
    ports: &[u16],
    kind: WebKind,
    ready: impl FnOnce(Vec<SocketAddr>),
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let (mut listeners, mut bound) = (vec![], vec![]);
    for p in ports {
        let sa = SocketAddr::new(addr, *p);
        let l = listen(sa).with_context(|| format!("bind() to {sa} failed"))?;
        println!("{} coxswain builtin web: listening on {sa}", now_log());
        bound.push(l.local_addr()?);
        listeners.push(l);
    }
    let kind = match kind {
        WebKind::Static { root, cache } => Site::Static(Arc::new(FileCache::new(root, cache))),
        WebKind::CpuBurner(ms) => Site::CpuBurner(ms),
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    // Every connection task holds a clone of `alive`; `drained` ends once all are dropped.
    let (alive, mut drained) = tokio::sync::mpsc::channel::<()>(1);
    let mut acceptors = vec![];
    for l in listeners {
        let kind = kind.clone();
        let stop = stop.clone();
        let mut stopped = stop.clone();
        let alive = alive.clone();
        acceptors.push(tokio::spawn(async move {
            let serve = |s: TcpStream, peer: SocketAddr| {
                let (kind, stop, alive) = (kind.clone(), stop.clone(), alive.clone());
                tokio::spawn(async move {
                    let _ = handle(s, peer, &kind, stop).await;
                    drop(alive);
                });
            };
            loop {
                tokio::select! {
                    r = l.accept() => {
                        if let Ok((s, peer)) = r {
                            serve(s, peer);
                        }
                    }
                    _ = stopped.changed() => break,
                }
            }
            // Take what the kernel has already queued, then close the listener.
            let Ok(l) = l.into_std() else { return };
            while let Ok((s, peer)) = l.accept() {
                if let Ok(s) = TcpStream::from_std(s) {
                    serve(s, peer);
                }
            }
        }));
    }
    drop(alive);
    ready(bound);
    shutdown.await;
    println!(
        "{} coxswain builtin web: gracefully shutting down",
        now_log()
    );
    let _ = stop_tx.send(true);
    for a in acceptors {
        let _ = a.await;
    }
    let _ = drained.recv().await;
    println!("{} coxswain builtin web: exiting", now_log());
    Ok(())
}

/// A body up to this size is copied behind the head and sent with it in one write; a larger
/// one is written after it.
const BODY_IN_HEAD: usize = 64 * 1024;

const NOT_FOUND: &str = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// Serves one connection: HTTP/1.1 keep-alive (as nginx), several requests in turn, until the
/// client closes, asks `Connection: close`, speaks HTTP/1.0 without keep-alive, or sends a head
/// over 64 KiB. Once `stop` turns true (graceful shutdown) the request under way, or a new
/// connection's first request, is finished and answered with `Connection: close`, and a
/// keep-alive connection idle between requests is closed.
async fn handle(
    mut s: TcpStream,
    peer: SocketAddr,
    kind: &Site,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let _ = s.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let mut served = 0u64;
    loop {
        // Read until a whole head is buffered (bytes after it belong to the next request).
        let head_len = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if let Some(i) = buf.windows(2).position(|w| w == b"\n\n") {
                break i + 2;
            }
            if buf.len() > 64 * 1024 {
                return Ok(());
            }
            let n = if buf.is_empty() && served > 0 {
                // Idle between requests: a graceful shutdown closes the connection here, unless
                // the next request has already arrived. (A new connection is always given its
                // first request: its client connected before the listener closed.)
                if *stop.borrow() {
                    match s.try_read(&mut chunk) {
                        Ok(n) if n > 0 => n,
                        _ => return Ok(()),
                    }
                } else {
                    tokio::select! {
                        r = s.read(&mut chunk) => r?,
                        r = stop.changed() => {
                            if r.is_err() {
                                return Ok(());
                            }
                            continue;
                        }
                    }
                }
            } else {
                s.read(&mut chunk).await?
            };
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_len]).to_string();
        buf.drain(..head_len);
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_string())
            })
        };
        // A request body (rare for this server) is read and dropped.
        let mut body_left: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while body_left > 0 {
            if buf.is_empty() {
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let take = body_left.min(buf.len());
            buf.drain(..take);
            body_left -= take;
        }
        let line = head.lines().next().unwrap_or("").to_string();
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("/").to_string();
        let version = parts.next().unwrap_or("HTTP/1.0");
        let connection = header("connection")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let keep_alive = !*stop.borrow()
            && if version == "HTTP/1.1" {
                !connection.contains("close")
            } else {
                connection.contains("keep-alive")
            };
        let agent = header("user-agent").unwrap_or_else(|| "-".into());
        let file = match kind {
            Site::Static(cache) => cache.get(&path).await,
            Site::CpuBurner(ms) => {
                let ms = *ms;
                let _ = tokio::task::spawn_blocking(move || burn(Duration::from_millis(ms))).await;
                None
            }
        };
        let (code, reason, body): (u16, &str, &[u8]) = match (kind, &file) {
            (Site::CpuBurner(_), _) => (200, "OK", b"OK!"),
            (Site::Static(_), None) => (404, "Not Found", NOT_FOUND.as_bytes()),
            (Site::Static(_), Some(f))
                if (method == "GET" || method == "HEAD")
                    && filecache::not_modified(
                        f,
                        header("if-modified-since").as_deref(),
                        header("if-none-match").as_deref(),
                    ) =>
            {
                (304, "Not Modified", b"")
            }
            (Site::Static(_), Some(f)) => (200, "OK", &f.body),
        };
        let connection = if keep_alive { "keep-alive" } else { "close" };
        let mut resp = Vec::with_capacity(256 + body.len().min(BODY_IN_HEAD));
        // Content-Length, as nginx, except on a 304 (which has no body).
        let _ = match code {
            304 => write!(resp, "HTTP/1.1 {code} {reason}\r\nServer: coxswain\r\nContent-Type: text/html\r\n"),
            _ => write!(
                resp,
                "HTTP/1.1 {code} {reason}\r\nServer: coxswain\r\nContent-Type: text/html\r\nContent-Length: {}\r\n",
                body.len()
            ),
        };
        if let (Some(f), 200 | 304) = (&file, code) {
            let _ = write!(
                resp,
                "Last-Modified: {}\r\nETag: {}\r\n",
                f.last_modified, f.etag
            );
        }
        let _ = write!(resp, "Connection: {connection}\r\n\r\n");
        let body = if method == "HEAD" { &b""[..] } else { body };
        if body.len() <= BODY_IN_HEAD {
            resp.extend_from_slice(body);
            s.write_all(&resp).await?;
        } else {
            s.write_all(&resp).await?;
            s.write_all(body).await?;
        }
        served += 1;
        // The access log, as nginx writes it. A closed stdout must not kill the connection
        // (println! panics on a broken pipe), so a failed write is ignored.
        let _ = writeln!(
            std::io::stdout().lock(),
            "{} - - [{}] \"{line}\" {code} {} \"-\" \"{agent}\"",
            peer.ip(),
            now_log(),
            body.len()
        );
        if !keep_alive {
            s.shutdown().await?;
            return Ok(());
        }
    }
}

/// Spins on the CPU for `d` of this thread's CPU time (wall time as the bound when CPU time is
/// unavailable).
fn burn(d: Duration) {
    let t0 = Instant::now();
    let cpu0 = thread_cpu();
    let mut x: u64 = 1;
    loop {
        for _ in 0..10_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
        }
        std::hint::black_box(x);
        let spent = match (cpu0, thread_cpu()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => t0.elapsed(),
        };
        if spent >= d || t0.elapsed() >= d * 20 {
            break;
        }
    }
}

fn thread_cpu() -> Option<Duration> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Some(Duration::new(t.tv_sec as u64, t.tv_nsec as u32))
}

/// Prints `message` at once and then every `interval` until SIGTERM (exit 0).
pub async fn print(message: &str, interval: Duration) {
    die_with_parent(true);
    let tick = async {
        let mut t = tokio::time::interval(interval.max(Duration::from_millis(10)));
        loop {
            t.tick().await;
            println!("{message}");
        }
    };
    tokio::select! {
        _ = tick => {},
        _ = term_signal() => {},
    }
}

/// A long-running process that does nothing until SIGTERM (exit 0).
pub async fn idle() {
    die_with_parent(true);
    term_signal().await;
}

/// Runs `argv` as the container's process, dies with the agent (killing the whole process
/// group), and exits with the child's status (128+signal when it was killed).
pub async fn supervise(argv: &[String]) -> i32 {
    // The handler first: as the first process of a PID namespace the supervisor ignores a
    // signal it has no handler for, the parent-death signal included. Until it is armed here,
    // the SIGKILL its first process set (kept across exec) stands in.
    let mut usr1 =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()).ok();
    // SIGTERM reaches the child through the process group; the supervisor outlives it.
    let _term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    die_with_parent(usr1.is_none());
    let Some(first) = argv.first() else {
        eprintln!("supervise: no command");
        return 127;
    };
    let mut child = match tokio::process::Command::new(first).args(&argv[1..]).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("exec: \"{first}\": {e}");
            return 127;
        }
    };
    let parent_died = async {
        match usr1.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        st = child.wait() => st.map_or(128, crate::runtime::process::exit_code),
        _ = parent_died => {
            let me = rustix::process::getpid();
            let _ = rustix::process::kill_process_group(me, rustix::process::Signal::KILL);
            137
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_parent_pid_is_read_after_the_command_name() {
        assert_eq!(parse_stat_ppid("371 (sleep) S 12 371 1 0"), Some(12));
        // A command name may hold spaces and parentheses.
        assert_eq!(parse_stat_ppid("5 (a) b (c) R 4 5 5"), Some(4));
        assert_eq!(parse_stat_ppid("5 (x"), None);
        assert_eq!(parse_stat_ppid("5 (x) S"), None);
    }

    #[test]
    fn a_living_parent_is_alive_and_this_process_is_not_its_own_parent() {
        let me = ParentDeath::new(Some(std::os::unix::process::parent_id() as i32));
        assert_eq!(me.parent().expect("parent"), Parent::Alive);
        let other = ParentDeath::new(Some(std::process::id() as i32));
        assert_eq!(other.parent().expect("parent"), Parent::Gone);
    }

    async fn start(
        dir: &Path,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        std::fs::write(dir.join("index.html"), "hello").expect("index");
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let root = dir.to_path_buf();
        let server = tokio::spawn(async move {
            serve_web_until(
                IpAddr::from([127, 0, 0, 1]),
                &[0],
                WebKind::Static {
                    root,
                    cache: FileCacheConfig::default(),
                },
                move |a| {
                    let _ = addr_tx.send(a[0]);
                },
                async {
                    let _ = stop_rx.await;
                },
            )
            .await
        });
        (addr_rx.await.expect("bound"), stop_tx, server)
    }

    async fn read_all(s: &mut TcpStream) -> String {
        let mut out = vec![];
        let _ = s.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A burst of connections beyond tokio's default backlog (128) completes its handshakes
    /// while nothing accepts: the accept queue holds them, as nginx's 511 does.
    #[tokio::test]
    async fn the_listener_queues_a_burst_of_connections_as_nginx() {
        let l = listen(SocketAddr::from(([127, 0, 0, 1], 0))).expect("listen");
        let addr = l.local_addr().expect("addr");
        let burst = 400;
        let mut connects = tokio::task::JoinSet::new();
        for _ in 0..burst {
            connects.spawn(TcpStream::connect(addr));
        }
        // With a full accept queue the kernel drops every SYN (and its retries) until something
        // accepts, which nothing here does: a backlog too small never completes the burst.
        let all = tokio::time::timeout(Duration::from_secs(10), connects.join_all())
            .await
            .expect("every connection completes at once");
        assert_eq!(all.iter().filter(|c| c.is_ok()).count(), burst);
        drop(l);
    }

    /// Reads one response whose head has a Content-Length (or none: no body) off a kept-alive
    /// connection: (head, body).
    async fn read_response(s: &mut TcpStream, head_only: bool) -> (String, String) {
        let mut buf = vec![];
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..i + 4]).into_owned();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |v| v.trim().parse().expect("length"));
                let want = if head_only { 0 } else { len };
                while buf.len() < i + 4 + want {
                    let n = s.read(&mut chunk).await.expect("read");
                    assert!(n > 0, "closed mid-body");
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = String::from_utf8_lossy(&buf[i + 4..]).into_owned();
                return (head, body);
            }
            let n = s.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed before a response: {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn header_of<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
    }

    /// GET, HEAD, 404 and conditional requests on one kept-alive connection, as nginx answers
    /// them: Content-Type and Content-Length, Last-Modified and ETag of the file, 304 when the
    /// client's copy is current.
    #[tokio::test]
    async fn files_are_served_with_nginx_s_headers_on_a_kept_alive_connection() {
        let dir = std::env::temp_dir().join(format!("coxswain-web-h-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let (addr, stop, server) = start(&dir).await;
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut ask = async |req: &str, head_only: bool| {
            s.write_all(req.as_bytes()).await.expect("write");
            read_response(&mut s, head_only).await
        };
        let (head, body) = ask("GET / HTTP/1.1\r\nHost: x\r\n\r\n", false).await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(header_of(&head, "Content-Type"), Some("text/html"));
        assert_eq!(header_of(&head, "Content-Length"), Some("5"));
        assert_eq!(header_of(&head, "Connection"), Some("keep-alive"));
        assert_eq!(body, "hello");
        let modified = header_of(&head, "Last-Modified")
            .expect("Last-Modified")
            .to_string();
        let etag = header_of(&head, "ETag").expect("ETag").to_string();
        assert!(modified.ends_with(" GMT"), "{modified}");
        assert!(etag.starts_with('"') && etag.ends_with("-5\""), "{etag}");
        // HEAD: the same head, no body.
        let (head, body) = ask("HEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\n", true).await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(header_of(&head, "Content-Length"), Some("5"));
        assert_eq!(body, "");
        // The client's copy is current: 304, no body.
        let (head, body) = ask(
            &format!("GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n"),
            false,
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{head}");
        assert_eq!(header_of(&head, "ETag"), Some(etag.as_str()));
        assert_eq!(body, "");
        let (head, _) = ask(
            &format!("GET / HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: {modified}\r\n\r\n"),
            false,
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 304 "), "{head}");
        let (head, body) = ask(
            "GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"other\"\r\n\r\n",
            false,
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(body, "hello");
        // Missing: nginx's 404 page; a file created later is served at once (404s are not
        // cached).
        let (head, body) = ask("GET /later.html HTTP/1.1\r\nHost: x\r\n\r\n", false).await;
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
        assert_eq!(header_of(&head, "Last-Modified"), None);
        assert!(body.contains("404 Not Found"), "{body}");
        std::fs::write(dir.join("later.html"), "later").expect("write");
        let (head, body) = ask(
            "GET /later.html?v=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            false,
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(header_of(&head, "Connection"), Some("close"));
        assert_eq!(body, "later");
        assert_eq!(read_all(&mut s).await, "", "closed after Connection: close");
        stop.send(()).expect("stop");
        server.await.expect("join").expect("serve");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn graceful_shutdown_answers_connections_already_made() {
        let dir = std::env::temp_dir().join(format!("coxswain-web-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let (addr, stop, server) = start(&dir).await;
        // Connected but silent when the shutdown starts (a proxy that chose this pod a moment
        // before its endpoint left): its request is still answered.
        let mut early = TcpStream::connect(addr).await.expect("connect");
        // A keep-alive connection that already had its answer and is idle: closed.
        let mut idle = TcpStream::connect(addr).await.expect("connect");
        idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut first = [0u8; 512];
        let n = idle.read(&mut first).await.expect("read");
        assert!(String::from_utf8_lossy(&first[..n]).contains("keep-alive"));
        stop.send(()).expect("stop");
        // The listener closes: a new connection is refused (the proxy then dials the next
        // endpoint).
        let refused = async {
            loop {
                if TcpStream::connect(addr).await.is_err() {
                    break;
                }
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), refused)
            .await
            .expect("the listener closes");
        assert_eq!(read_all(&mut idle).await, "", "idle keep-alive closed");
        assert!(!server.is_finished(), "waits for the early connection");
        early
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let answer = read_all(&mut early).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.contains("Connection: close"), "{answer}");
        assert!(answer.ends_with("hello"), "{answer}");
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("exits once drained")
            .expect("join")
            .expect("serve");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
