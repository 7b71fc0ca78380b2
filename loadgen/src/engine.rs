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
//! HTTP/1.1 goes through [`h1`], which writes a request serialized once and frames
//! responses in place (why it is not hyper: see that module); HTTP/2 (prior
//! knowledge), requests with a user-given Transfer-Encoding, and `--engine hyper` go through
//! hyper's client connection, which per request allocates what its `Request` needs (the cloned
//! header map); bodies are shared `Bytes`.
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::{HeaderMap, HeaderValue, CONNECTION, HOST, USER_AGENT};
use http::{Method, Uri};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::schedule::Schedule;
use crate::stats::{self, Counts, ErrorKind, Live, Recorder, Summary};
use crate::target::Target;
use crate::{evloop, h1};

mod conn;
mod failure;
mod worker;

pub(crate) use failure::Failure;
use worker::{H2Slot, Worker};

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
