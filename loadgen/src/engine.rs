//! The engine: worker threads that issue requests and record what happened.
//!
//! As wrk: `--threads` OS threads, each owning its share of the connections, so a
//! connection's requests and its statistics never leave one thread. The closed loop over the
//! HTTP/1.1 fast path runs on an epoll loop per thread ([`evloop`], wrk's design); everything
//! else (the open loop, HTTP/2, `--engine hyper`) on a single-threaded tokio runtime per thread. Each thread has one [`Recorder`] (status codes, errors, bytes), merged into a
//! [`Summary`] when the run ends; latencies and running counts go to the thread's [`Live`] (one
//! uncontended lock per response), which the progress line reads and which hands its latencies
//! to the recorder at the end.
//!
//! Loops:
//! - closed (`-c`, `-n`, `-z`, as hey): each of `-c` workers sends its next request when the
//!   previous one finished; `-n` is a shared countdown, `-z` a deadline that cuts off requests
//!   in flight (counted as cancelled, not as requests);
//! - open ([`Schedule`]: `--rate`, `--stages`): request k is due at the schedule's time t(k);
//!   whichever worker is free takes the next k, waits until t(k) and sends. Latency counts from
//!   t(k), so time spent queued behind a slow server is measured (wrk2's coordinated-omission
//!   correction) — except the timer's own lateness (≤ [`TIMER_SLOP`]) when the worker was idle
//!   waiting. In-flight requests finish (bounded by the timeout) when the schedule ends.
//!
//! HTTP/1.1 goes through [`h1`](crate::h1), which writes a request serialized once and frames
//! responses in place (why it is not hyper: see that module); HTTP/2 (prior
//! knowledge), requests with a user-given Transfer-Encoding, and `--engine hyper` go through
//! hyper's client connection, which per request allocates what its `Request` needs (the cloned
//! header map); bodies are shared `Bytes`.
use std::cell::RefCell;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::{HeaderMap, HeaderValue, CONNECTION, HOST, USER_AGENT};
use http::{Method, Request, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::schedule::Schedule;
use crate::stats::{self, Counts, ErrorKind, Live, Recorder, Summary};
use crate::target::Target;
use crate::{evloop, h1};

/// A wake-up this late after a request's due time is the timer's, not the server's.
pub const TIMER_SLOP: Duration = Duration::from_millis(2);

/// The HTTP/1.1 client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// loadgen's own keep-alive loop ([`h1`]).
    #[default]
    Fast,
    /// hyper's client connection.
    Hyper,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    pub target: Target,
    pub method: Method,
    /// Extra request headers (Host and User-Agent are added unless given).
    pub headers: HeaderMap,
    pub body: Bytes,
    pub http2: bool,
    pub keepalive: bool,
    /// The HTTP/1.1 client (HTTP/2 is always hyper's).
    pub engine: Engine,
    /// Concurrent requests (closed loop: workers; open loop: the most in flight).
    pub concurrency: usize,
    /// HTTP/2: connections shared by the workers (at least one per thread).
    pub connections: usize,
    pub threads: usize,
    pub requests: Option<u64>,
    pub duration: Option<Duration>,
    pub schedule: Option<Schedule>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

struct Shared {
    cfg: Config,
    start: Instant,
    end: Option<Instant>,
    remaining: AtomicI64,
    tickets: AtomicU64,
    stop: AtomicBool,
    live: Vec<Live>,
    uri: Uri,
    headers: HeaderMap,
    /// The request as the fast HTTP/1.1 path writes it (None: hyper's path).
    wire: Option<h1::Wire>,
    finished: watch::Sender<usize>,
}

/// A run in progress.
pub struct Run {
    shared: Arc<Shared>,
    stop_tx: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<Recorder>>,
    finished: watch::Receiver<usize>,
}

impl Run {
    /// Starts the worker threads; the run begins at once.
    pub fn start(cfg: Config) -> Result<Run, String> {
        if cfg.requests.is_none() && cfg.duration.is_none() && cfg.schedule.is_none() {
            return Err("a run needs a bound: a request count, a duration or stages".into());
        }
        let mut concurrency = cfg.concurrency.max(1);
        if let Some(n) = cfg.requests {
            concurrency = concurrency.min(n.max(1) as usize);
        }
        let threads = cfg.threads.clamp(1, concurrency);
        let (uri, headers) = request_parts(&cfg)?;
        let wire = if cfg.http2 || cfg.engine == Engine::Hyper {
            None
        } else {
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            h1::Wire::new(&cfg.method, path, &headers, &cfg.body)
        };
        // The closed loop over the fast path runs on [`evloop`], without a runtime.
        let own_loop = wire.is_some() && cfg.schedule.is_none();
        let runtimes = (0..threads)
            .map(|_| {
                if own_loop {
                    return Ok(None);
                }
                // I/O and timers only: no signal or child-process driver polled on every turn.
                tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build()
                    .map(Some)
                    .map_err(|e| format!("starting a worker runtime: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (finished_tx, finished) = watch::channel(0usize);
        let (stop_tx, stop_rx) = watch::channel(false);
        let start = Instant::now();
        let end = match (&cfg.schedule, cfg.duration) {
            (Some(s), _) => Some(start + s.duration()),
            (None, Some(d)) => Some(start + d),
            _ => None,
        };
        let shared = Arc::new(Shared {
            remaining: AtomicI64::new(
                cfg.requests
                    .map(|n| n.min(i64::MAX as u64) as i64)
                    .unwrap_or(i64::MAX),
            ),
            tickets: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            live: (0..threads).map(|_| Live::default()).collect(),
            uri,
            headers,
            wire,
            finished: finished_tx,
            start,
            end,
            cfg,
        });
        let h2_conns = shared.cfg.connections.max(threads);
        let mut handles = vec![];
        for (t, rt) in runtimes.into_iter().enumerate() {
            // Spread workers and HTTP/2 connections evenly over the threads.
            let workers = concurrency / threads + usize::from(t < concurrency % threads);
            let conns = h2_conns / threads + usize::from(t < h2_conns % threads);
            let sh = shared.clone();
            let stop = stop_rx.clone();
            let h = std::thread::Builder::new()
                .name(format!("loadgen-{t}"))
                .spawn(move || thread_main(sh, t, workers, conns, rt, stop))
                .map_err(|e| format!("starting a worker thread: {e}"))?;
            handles.push(h);
        }
        Ok(Run {
            shared,
            stop_tx,
            threads: handles,
            finished,
        })
    }

    pub fn started(&self) -> Instant {
        self.shared.start
    }

    pub fn elapsed(&self) -> Duration {
        self.shared.start.elapsed()
    }

    /// The planned length (None for a run bounded by a request count only).
    pub fn planned(&self) -> Option<Duration> {
        self.shared.end.map(|e| e - self.shared.start)
    }

    pub fn counts(&self) -> Counts {
        stats::counts(&self.shared.live)
    }

    /// Latencies recorded since the last call, added into `into`.
    pub fn take_interval(&self, into: &mut Histogram<u64>) {
        for l in &self.shared.live {
            l.take_interval(into);
        }
    }

    /// Open loop: requests due by now (capped by `-n`).
    pub fn due(&self) -> Option<f64> {
        let s = self.shared.cfg.schedule.as_ref()?;
        let n = s.expected(self.elapsed());
        Some(match self.shared.cfg.requests {
            Some(cap) => n.min(cap as f64),
            None => n,
        })
    }

    /// Open loop: the rate the schedule asks for now.
    pub fn asked_rate(&self) -> Option<f64> {
        let s = self.shared.cfg.schedule.as_ref()?;
        Some(s.rate_at(self.elapsed()))
    }

    /// Asks the workers to stop after their current request (Ctrl-C).
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = self.stop_tx.send(true);
    }

    /// Waits until every worker thread has finished.
    pub async fn finished(&mut self) {
        let n = self.threads.len();
        let _ = self.finished.wait_for(|f| *f >= n).await;
    }

    /// Merges the threads' recorders (call after [`Run::finished`]).
    pub fn join(self) -> Summary {
        let elapsed = self.shared.start.elapsed();
        let recorders = self
            .threads
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        let scheduled = self.shared.cfg.schedule.as_ref().map(|s| {
            let n = s.total().ceil() as u64;
            self.shared.cfg.requests.map_or(n, |cap| n.min(cap))
        });
        // Open loop: arrivals were asked over the whole schedule, even when the last one was due
        // (and done) before its end.
        let elapsed = match &self.shared.cfg.schedule {
            Some(s) if !self.shared.stop.load(Ordering::Relaxed) => elapsed.max(s.duration()),
            _ => elapsed,
        };
        Summary::merge(recorders, elapsed, scheduled)
    }
}

fn request_parts(cfg: &Config) -> Result<(Uri, HeaderMap), String> {
    let t = &cfg.target;
    let uri: Uri = if cfg.http2 {
        format!("http://{}{}", t.authority, t.path)
    } else {
        t.path.clone()
    }
    .parse()
    .map_err(|e| format!("request URI {:?}: {e}", t.path))?;
    let mut headers = cfg.headers.clone();
    if !cfg.http2 && !headers.contains_key(HOST) {
        headers.insert(
            HOST,
            HeaderValue::from_str(&t.authority).map_err(|e| format!("Host header: {e}"))?,
        );
    }
    if !headers.contains_key(USER_AGENT) {
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("loadgen/", env!("CARGO_PKG_VERSION"))),
        );
    }
    if !cfg.keepalive && !cfg.http2 {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    Ok((uri, headers))
}

fn thread_main(
    sh: Arc<Shared>,
    t: usize,
    workers: usize,
    conns: usize,
    rt: Option<tokio::runtime::Runtime>,
    stop: watch::Receiver<bool>,
) -> Recorder {
    let Some(rt) = rt else {
        return evloop_main(sh, t, workers);
    };
    let rec = Rc::new(RefCell::new(Recorder::default()));
    let local = tokio::task::LocalSet::new();
    let slots: Vec<H2Slot> = (0..conns.max(1))
        .map(|_| Rc::new(tokio::sync::Mutex::new(None)))
        .collect();
    local.block_on(&rt, async {
        let mut hs = Vec::with_capacity(workers);
        for w in 0..workers {
            let mut wk = Worker {
                sh: sh.clone(),
                t,
                rec: rec.clone(),
                h1: None,
                fast: None,
                spare: None,
                connect_timer: Box::pin(tokio::time::sleep(sh.cfg.connect_timeout)),
                h2: slots[w % slots.len()].clone(),
                stop: stop.clone(),
            };
            hs.push(tokio::task::spawn_local(async move { wk.run().await }));
        }
        for h in hs {
            let _ = h.await;
        }
    });
    drop(local);
    drop(rt);
    let mut r = std::mem::take(&mut *rec.borrow_mut());
    sh.live[t].drain_latency(&mut r.latency);
    sh.finished.send_modify(|n| *n += 1);
    r
}

/// A worker thread of the closed loop over the fast path ([`evloop`]).
fn evloop_main(sh: Arc<Shared>, t: usize, workers: usize) -> Recorder {
    let mut r = Recorder::default();
    if let Some(wire) = &sh.wire {
        let ctx = evloop::Ctx {
            addr: sh.cfg.target.addr,
            wire,
            keepalive: sh.cfg.keepalive,
            timeout: sh.cfg.timeout,
            connect_timeout: sh.cfg.connect_timeout,
            end: sh.end.map(Instant::into_std),
            remaining: sh.cfg.requests.map(|_| &sh.remaining),
            stop: &sh.stop,
            live: &sh.live[t],
        };
        if let Err(e) = evloop::run(&ctx, workers, &mut r) {
            r.error(ErrorKind::Other, || format!("the event loop failed: {e}"));
            sh.live[t].error();
        }
    }
    sh.live[t].drain_latency(&mut r.latency);
    sh.finished.send_modify(|n| *n += 1);
    r
}

type Body = Full<Bytes>;
/// One HTTP/2 connection shared by a thread's workers; the lock keeps them from all dialing
/// at once when it is (re)established.
type H2Slot = Rc<tokio::sync::Mutex<Option<http2::SendRequest<Body>>>>;

/// Why a request failed, kept as the source error until a message is needed.
pub(crate) enum Failure {
    Io(ErrorKind, std::io::Error),
    Hyper(hyper::Error),
    Timeout(ErrorKind),
    Fast(h1::Error),
}

impl Failure {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Failure::Io(k, _) | Failure::Timeout(k) => *k,
            Failure::Hyper(e) => classify(e),
            Failure::Fast(h1::Error::Io(e)) => io_kind(e),
            Failure::Fast(h1::Error::Closed) => ErrorKind::ClosedMidResponse,
            Failure::Fast(h1::Error::Invalid(_)) => ErrorKind::InvalidResponse,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            Failure::Io(_, e) => e.to_string(),
            Failure::Hyper(e) => {
                let mut s = e.to_string();
                let mut src = std::error::Error::source(e);
                while let Some(c) = src {
                    s.push_str(": ");
                    s.push_str(&c.to_string());
                    src = c.source();
                }
                s
            }
            Failure::Timeout(k) => k.name().to_string(),
            Failure::Fast(h1::Error::Io(e)) => e.to_string(),
            Failure::Fast(h1::Error::Closed) => ErrorKind::ClosedMidResponse.name().to_string(),
            Failure::Fast(h1::Error::Invalid(m)) => m.clone(),
        }
    }
}

fn classify(e: &hyper::Error) -> ErrorKind {
    if e.is_incomplete_message() {
        return ErrorKind::ClosedMidResponse;
    }
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        return ErrorKind::InvalidResponse;
    }
    if e.is_timeout() {
        return ErrorKind::Timeout;
    }
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return io_kind(io);
        }
        src = c.source();
    }
    if e.is_canceled() || e.is_closed() {
        return ErrorKind::ClosedMidResponse;
    }
    ErrorKind::Other
}

fn io_kind(e: &std::io::Error) -> ErrorKind {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => ErrorKind::Reset,
        std::io::ErrorKind::UnexpectedEof => ErrorKind::ClosedMidResponse,
        _ => ErrorKind::Other,
    }
}

struct Worker {
    sh: Arc<Shared>,
    t: usize,
    rec: Rc<RefCell<Recorder>>,
    h1: Option<http1::SendRequest<Body>>,
    /// The fast path's kept-alive connection.
    fast: Option<h1::Conn>,
    /// The read buffer and head memo of the fast path's last closed connection, for the next.
    spare: Option<h1::Reader>,
    /// The fast path's connect timeout, one timer moved forward per connection (as the request
    /// timer in [`Worker::run`]; `tokio::time::timeout` would register and remove a timer per
    /// connection, a tenth of a request's cost without keep-alive).
    connect_timer: Pin<Box<Sleep>>,
    h2: H2Slot,
    stop: watch::Receiver<bool>,
}

/// Whether a request may go, and the time its latency counts from.
enum Next {
    Go(Instant),
    Done,
}

impl Worker {
    async fn run(&mut self) {
        // One timer for all of this worker's requests, moved forward per request: a later
        // deadline only updates the registered entry (no timer-wheel insert and removal per
        // request, as `tokio::time::timeout` would do).
        let timer = tokio::time::sleep_until(Instant::now() + self.sh.cfg.timeout);
        tokio::pin!(timer);
        let closed = self.sh.cfg.schedule.is_none();
        // Closed loop with keep-alive: the next request waits for the other responses this
        // event-loop turn brought (see [`Worker::batch`]).
        let batch = closed && self.sh.cfg.keepalive;
        loop {
            let from = match self.next().await {
                Next::Go(from) => from,
                Next::Done => return,
            };
            // Closed loop: `from` was read just now.
            let sent = if closed { from } else { Instant::now() };
            let mut deadline = sent + self.sh.cfg.timeout;
            // Closed loop with a duration: the end cuts off what is in flight.
            let cut = closed && self.sh.end.is_some_and(|e| e < deadline);
            if cut {
                deadline = self.sh.end.unwrap_or(deadline);
            }
            timer.as_mut().reset(deadline);
            let out = tokio::select! {
                biased;
                r = self.exchange() => Ok(r),
                _ = timer.as_mut() => Err(()),
            };
            let done = Instant::now();
            let live = &self.sh.live[self.t];
            match out {
                Ok(Ok((status, bytes))) => {
                    let lat = done.saturating_duration_since(from);
                    self.rec.borrow_mut().tally(status, bytes);
                    live.response(lat, bytes);
                }
                Err(_) if cut => {
                    self.rec.borrow_mut().cancelled += 1;
                    return;
                }
                Ok(Err(f)) => {
                    self.h1 = None;
                    self.fast = None;
                    self.rec.borrow_mut().error(f.kind(), || f.message());
                    live.error();
                }
                Err(_) => {
                    self.h1 = None;
                    self.fast = None;
                    let timeout = self.sh.cfg.timeout;
                    self.rec.borrow_mut().error(ErrorKind::Timeout, || {
                        format!("no complete response within {timeout:?}")
                    });
                    live.error();
                }
            }
            if batch {
                Self::batch().await;
            }
        }
    }

    /// Yields until the runtime has polled for I/O again (tokio defers a yielding task's wake-up
    /// to after that poll), so the responses that arrived together are all read before any
    /// worker writes its next request: the requests then go out back to back, as wrk's loop
    /// writes them (it re-arms EPOLLOUT on a response and writes on the next `epoll_wait`).
    ///
    /// Measured with keep-alive against the built-in web server (64 connections, 2 threads;
    /// `perf stat` syscall tracepoints on the tool and on the server; two runs of 6 rounds, each
    /// round loadgen unbatched, batched and wrk back to back, medians): the server's context
    /// switches per request 2.69 → 2.51 and 2.36 → 2.19 (under wrk 2.22 and 2.50), loadgen's
    /// own 0.40 → 0.32 and 0.36 → 0.31 (wrk 0.33 and 0.35), for one more non-blocking
    /// `epoll_wait` per turn (0.4 → 0.65 per request; wrk 0.65 and 0.72). CPU per request
    /// moved within the noise of the loaded machine (loadgen 16.1 → 15.8 and 16.7 → 15.5 µs).
    async fn batch() {
        tokio::task::yield_now().await;
    }

    async fn next(&mut self) -> Next {
        let sh = &*self.sh;
        if sh.stop.load(Ordering::Relaxed) {
            return Next::Done;
        }
        let Some(schedule) = &sh.cfg.schedule else {
            let now = Instant::now();
            if sh.end.is_some_and(|e| now >= e) {
                return Next::Done;
            }
            // Only with `-n`: a shared counter is a cache line both threads write.
            if sh.cfg.requests.is_some() && sh.remaining.fetch_sub(1, Ordering::Relaxed) <= 0 {
                return Next::Done;
            }
            return Next::Go(now);
        };
        let k = sh.tickets.fetch_add(1, Ordering::Relaxed);
        if sh.cfg.requests.is_some_and(|n| k >= n) {
            return Next::Done;
        }
        let Some(at) = schedule.time_of(k) else {
            return Next::Done;
        };
        let due = sh.start + at;
        if due <= Instant::now() {
            return Next::Go(due);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = self.stop.wait_for(|s| *s) => return Next::Done,
        }
        let now = Instant::now();
        if now.saturating_duration_since(due) <= TIMER_SLOP {
            Next::Go(now)
        } else {
            Next::Go(due)
        }
    }

    fn request(&self) -> Request<Body> {
        let sh = &*self.sh;
        let mut r = Request::new(Full::new(sh.cfg.body.clone()));
        *r.method_mut() = sh.cfg.method.clone();
        *r.uri_mut() = sh.uri.clone();
        *r.headers_mut() = sh.headers.clone();
        if sh.cfg.http2 {
            *r.version_mut() = Version::HTTP_2;
        }
        r
    }

    async fn exchange(&mut self) -> Result<(u16, u64), Failure> {
        if let Some(w) = &self.sh.wire {
            return fast_exchange(
                &mut self.fast,
                &mut self.spare,
                self.connect_timer.as_mut(),
                &self.sh.cfg,
                w,
            )
            .await;
        }
        let resp = if self.sh.cfg.http2 {
            let mut s = self.h2_sender().await?;
            s.ready().await.map_err(Failure::Hyper)?;
            s.send_request(self.request())
                .await
                .map_err(Failure::Hyper)?
        } else {
            let keep = self.sh.cfg.keepalive;
            let mut s = match self.h1.take() {
                Some(s) if !s.is_closed() => s,
                _ => self.h1_connect().await?,
            };
            if s.ready().await.is_err() {
                // The server closed the idle connection: that is not this request's failure.
                s = self.h1_connect().await?;
                s.ready().await.map_err(Failure::Hyper)?;
            }
            let resp = s
                .send_request(self.request())
                .await
                .map_err(Failure::Hyper)?;
            let close = resp.version() == Version::HTTP_10
                || resp
                    .headers()
                    .get(CONNECTION)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            if keep && !close {
                self.h1 = Some(s);
            }
            resp
        };
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(Failure::Hyper)?;
            if let Some(d) = frame.data_ref() {
                n += d.len() as u64;
            }
        }
        Ok((status, n))
    }

    async fn tcp(&self) -> Result<TcpStream, Failure> {
        tcp(&self.sh.cfg).await
    }

    async fn h1_connect(&self) -> Result<http1::SendRequest<Body>, Failure> {
        let io = TokioIo::new(self.tcp().await?);
        let (sender, conn) = http1::handshake(io).await.map_err(Failure::Hyper)?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    async fn h2_sender(&self) -> Result<http2::SendRequest<Body>, Failure> {
        if !self.sh.cfg.keepalive {
            return self.h2_connect().await;
        }
        let mut slot = self.h2.lock().await;
        if let Some(s) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Ok(s.clone());
        }
        let s = self.h2_connect().await?;
        *slot = Some(s.clone());
        Ok(s)
    }

    async fn h2_connect(&self) -> Result<http2::SendRequest<Body>, Failure> {
        let io = TokioIo::new(self.tcp().await?);
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(Failure::Hyper)?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

async fn tcp(cfg: &Config) -> Result<TcpStream, Failure> {
    let addr: SocketAddr = cfg.target.addr;
    connected(tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(addr)).await)
}

/// A new connection for the fast path, with the request already written when it could be.
///
/// A non-blocking connect, then the request written at once: on loopback the kernel has done the
/// handshake by the time `connect` returns, so the write goes out without a turn of the event
/// loop to learn that the socket became writable (tokio's `TcpStream::connect` and wrk both wait
/// for that event). When the handshake is not done yet the write finds nothing to write to
/// (EAGAIN) and this waits for the connection as `TcpStream::connect` does, on the caller's timer
/// (one per worker, moved forward: no timer registered and removed per connection). Returns the
/// stream and how many bytes of the request went out.
async fn dial(
    cfg: &Config,
    mut timer: Pin<&mut Sleep>,
    w: &h1::Wire,
) -> Result<(TcpStream, usize), Failure> {
    use std::io::Write;
    let addr = cfg.target.addr;
    let connect_err = |e: std::io::Error| {
        let kind = if e.kind() == std::io::ErrorKind::ConnectionRefused {
            ErrorKind::ConnectRefused
        } else {
            ErrorKind::Connect
        };
        Failure::Io(kind, e)
    };
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM.nonblocking(),
        Some(socket2::Protocol::TCP),
    )
    .map_err(connect_err)?;
    let _ = sock.set_tcp_nodelay(true);
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(connect_err(e)),
    }
    let std: std::net::TcpStream = sock.into();
    let sent = match (&std).write(w.as_bytes()) {
        Ok(n) => Some(n),
        // Still connecting.
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
        // A write can only fail here because the connection was not made (refused...).
        Err(e) => return Err(connect_err(e)),
    };
    let s = TcpStream::from_std(std).map_err(connect_err)?;
    if let Some(n) = sent {
        return Ok((s, n));
    }
    timer.as_mut().reset(Instant::now() + cfg.connect_timeout);
    let r = tokio::select! {
        biased;
        r = s.writable() => r,
        _ = timer => return Err(Failure::Timeout(ErrorKind::ConnectTimeout)),
    };
    r.map_err(connect_err)?;
    if let Some(e) = s.take_error().map_err(connect_err)? {
        return Err(connect_err(e));
    }
    Ok((s, 0))
}

fn connected<E>(r: Result<std::io::Result<TcpStream>, E>) -> Result<TcpStream, Failure> {
    match r {
        Err(_) => Err(Failure::Timeout(ErrorKind::ConnectTimeout)),
        Ok(Err(e)) => Err(Failure::Io(
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                ErrorKind::ConnectRefused
            } else {
                ErrorKind::Connect
            },
            e,
        )),
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
    }
}

/// One request on the fast HTTP/1.1 path, over the kept-alive connection when there is one.
async fn fast_exchange(
    kept: &mut Option<h1::Conn>,
    spare: &mut Option<h1::Reader>,
    mut timer: Pin<&mut Sleep>,
    cfg: &Config,
    w: &h1::Wire,
) -> Result<(u16, u64), Failure> {
    let r = match kept.take() {
        Some(mut c) => match c.exchange(w).await {
            // A kept-alive connection that fails before any byte of the response came back was
            // closed by the server while idle: not this request's failure; it goes on a new one.
            Err(h1::Error::Closed | h1::Error::Io(_)) if c.nothing_received() => {
                let (s, sent) = dial(cfg, timer, w).await?;
                c = h1::Conn::new(s, Some(c.into_reader()));
                let r = c.exchange_after(w, sent).await;
                r.map(|r| (r, c))
            }
            r => r.map(|r| (r, c)),
        },
        None => {
            let (s, sent) = dial(cfg, timer.as_mut(), w).await?;
            let mut c = h1::Conn::new(s, spare.take());
            let r = c.exchange_after(w, sent).await;
            r.map(|r| (r, c))
        }
    };
    let (r, c) = r.map_err(Failure::Fast)?;
    if cfg.keepalive && r.reusable {
        *kept = Some(c);
    } else {
        *spare = Some(c.into_reader());
    }
    Ok((r.status, r.bytes))
}
