//! The closed loop's HTTP/1.1 fast path as wrk runs it: one event loop per worker thread over
//! epoll (through mio), each connection a small state machine (connect, write the prepared
//! request, read and frame the response with [`h1::Reader`], record), no tasks and no runtime.
//!
//! Why a loop of our own and not tokio here: on the 2 cores this project runs on, the client
//! takes its CPU from the server it measures, so every microsecond per request counts. With
//! tokio (a current-thread runtime and a task per connection) loadgen made fewer system calls
//! per request than wrk but spent 1.4× (keep-alive) to 2× (a connection per request) wrk's user
//! CPU per request, nearly all of it in the runtime: waking and scheduling a task per response,
//! the timer wheel, a clock read per timer, an `epoll_ctl` to remove each closed socket. This
//! loop does per response what wrk does: one `epoll_wait` for all the connections it finds
//! ready, a `read` until the response is complete, one clock read to time it, the next request
//! written once every response of that wake-up was read (wrk writes on the next wake-up).
//!
//! Only the closed loop (`-c` with `-n`/`-z`) over the fast path runs here, where the rate is
//! the client's own speed. The open loop (`--rate`, `--stages`: requests due at times, timers)
//! and hyper's paths (HTTP/2, `--engine hyper`) stay on tokio ([`engine`](crate::engine)).
//!
//! What it keeps exact, as the tokio path did:
//! - latency from the moment a worker took its request (before a connect) to the read that
//!   completed the response, one clock read each (the clock is read per request, not per turn:
//!   a turn that handles many connections would otherwise shift the later ones' times);
//! - the request timeout (`-t`, from the request's start, connect included) and the connect
//!   timeout, to the wake-up: the loop sleeps until the earliest deadline among the requests in
//!   flight (found by a sweep; every request started after it ends later), not on a tick;
//! - a kept-alive connection that fails before any byte of the response came back was closed by
//!   the server while idle: the request goes again on a new connection, not counted as failed;
//! - `-z` cuts off the requests in flight at the end (cancelled, not requests); `-n` is the
//!   shared countdown; a stop request lets the requests in flight finish.
//!
//! Sockets are edge-triggered (mio's mode): a connection is read until its response is complete,
//! the read comes back short (the socket is drained: a later arrival is a new edge) or would
//! block. A closed socket leaves the epoll set by its `close`, without an `epoll_ctl`.
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::engine::Failure;
use crate::h1::{self, Reader, Wire};
use crate::stats::{ErrorKind, Live, Recorder};

/// Requests longer than this are sent with TCP_NODELAY. A request written in one `write` whose
/// every earlier small segment was acknowledged is never held by Nagle's algorithm (Linux's
/// Minshall variant): so it is in this loop, where a connection's next request goes only after
/// the response to the last one (whose segments acknowledge it). Only a write the send buffer
/// splits could leave a small segment behind; below this size it cannot (the smallest default
/// send buffer is 16 KiB), so the loop saves a `setsockopt` per connection.
const NODELAY_ABOVE: usize = 4096;

/// What a thread's loop runs.
pub struct Ctx<'a> {
    pub addr: std::net::SocketAddr,
    pub wire: &'a Wire,
    pub keepalive: bool,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// `-z`: the end of the run.
    pub end: Option<Instant>,
    /// `-n`: the requests left to all threads.
    pub remaining: Option<&'a AtomicI64>,
    pub stop: &'a AtomicBool,
    pub live: &'a Live,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between requests (its next one goes at the end of the turn).
    Idle,
    /// Waiting for the connection to be made, the request not yet written.
    Connecting,
    /// Part of the request was written (how much).
    Writing(usize),
    Reading,
    /// No more requests for this worker.
    Done,
}

struct Conn {
    sock: Option<TcpStream>,
    phase: Phase,
    reader: Reader,
    /// When the request started: latency counts from here.
    from: Instant,
    /// `from` + the request timeout.
    deadline: Instant,
    connect_deadline: Instant,
    /// The socket carried an earlier response.
    reused: bool,
    /// The peer closed its end (an event said so): read to the end, and no reuse.
    peer_closed: bool,
    /// The socket became readable before the request was all written (an early answer, the
    /// close of an idle connection): read as soon as it is.
    read_pending: bool,
}

impl Conn {
    fn in_flight(&self) -> bool {
        matches!(
            self.phase,
            Phase::Connecting | Phase::Writing(_) | Phase::Reading
        )
    }
}

/// Runs `workers` closed-loop workers on this thread until they are done, recording into `rec`.
pub fn run(ctx: &Ctx<'_>, workers: usize, rec: &mut Recorder) -> io::Result<()> {
    let now = Instant::now();
    let mut l = Loop {
        ctx,
        rec,
        poll: Poll::new()?,
        conns: (0..workers)
            .map(|_| Conn {
                sock: None,
                phase: Phase::Idle,
                reader: Reader::new(),
                from: now,
                deadline: now,
                connect_deadline: now,
                reused: false,
                peer_closed: false,
                read_pending: false,
            })
            .collect(),
        ready: (0..workers).rev().collect(),
        active: workers,
    };
    l.run()
}

struct Loop<'a, 'b> {
    ctx: &'a Ctx<'b>,
    rec: &'a mut Recorder,
    poll: Poll,
    conns: Vec<Conn>,
    /// Workers whose next request goes at the end of this turn.
    ready: Vec<usize>,
    /// Workers not done.
    active: usize,
}

impl Loop<'_, '_> {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(self.conns.len().clamp(16, 1024));
        // The earliest deadline of a request in flight (none before the first requests).
        let mut next_sweep = Instant::now() + self.ctx.timeout.min(self.ctx.connect_timeout);
        loop {
            // The next requests, back to back: every response this wake-up brought was read.
            while let Some(i) = self.ready.pop() {
                self.start(i);
            }
            if self.active == 0 {
                return Ok(());
            }
            let now = Instant::now();
            let end = self.ctx.end;
            if end.is_some_and(|e| now >= e) || now >= next_sweep {
                // At the end, only what timed out before it is a timeout.
                let at = end.map_or(now, |e| now.min(e));
                next_sweep = self.sweep(at);
                if end.is_some_and(|e| now >= e) {
                    self.cut();
                    return Ok(());
                }
                continue;
            }
            let until = end.map_or(next_sweep, |e| e.min(next_sweep));
            // (mio rounds the wait up to epoll's milliseconds.)
            let wait = until.saturating_duration_since(now);
            match self.poll.poll(&mut events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                let closed = ev.is_read_closed() || ev.is_error();
                self.event(ev.token().0, ev.is_readable() || closed, closed);
            }
        }
    }

    /// Whether a worker may send another request (as the tokio loop's `next`).
    fn next(&self, now: Instant) -> bool {
        if self.ctx.stop.load(Ordering::Relaxed) || self.ctx.end.is_some_and(|e| now >= e) {
            return false;
        }
        // Only with `-n`: a shared counter is a cache line both threads write.
        self.ctx
            .remaining
            .is_none_or(|r| r.fetch_sub(1, Ordering::Relaxed) > 0)
    }

    /// Worker `i` starts its next request, on its kept-alive connection or a new one.
    fn start(&mut self, i: usize) {
        let now = Instant::now();
        if !self.next(now) {
            let c = &mut self.conns[i];
            c.phase = Phase::Done;
            c.sock = None;
            self.active -= 1;
            return;
        }
        let timeout = self.ctx.timeout;
        let c = &mut self.conns[i];
        c.from = now;
        c.deadline = later(now, timeout);
        if c.sock.is_none() {
            return self.dial(i);
        }
        if let Err(e) = c.reader.begin(self.ctx.wire.is_head()) {
            return self.fail(i, Failure::Fast(e));
        }
        c.phase = Phase::Writing(0);
        self.write(i);
    }

    /// A new connection for worker `i`'s request, and the request written at once: on loopback
    /// the handshake is done by the time `connect` returns, so the write needs no wake-up to
    /// learn that the socket became writable. When it is not done yet the write would block,
    /// and the worker waits for the socket to become writable (or the connect timeout).
    fn dial(&mut self, i: usize) {
        let ctx = self.ctx;
        let c = &mut self.conns[i];
        c.sock = None;
        c.reused = false;
        c.peer_closed = false;
        c.read_pending = false;
        c.reader.reset();
        if let Err(e) = c.reader.begin(ctx.wire.is_head()) {
            return self.fail(i, Failure::Fast(e));
        }
        let addr = ctx.addr;
        let sock = match socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM.nonblocking(),
            Some(socket2::Protocol::TCP),
        ) {
            Ok(s) => s,
            Err(e) => return self.fail(i, Failure::connect(e)),
        };
        let wire = ctx.wire.as_bytes();
        if wire.len() > NODELAY_ABOVE {
            let _ = sock.set_tcp_nodelay(true);
        }
        match sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return self.fail(i, Failure::connect(e)),
        }
        let mut s = TcpStream::from_std(sock.into());
        let phase = match s.write(wire) {
            Ok(n) if n == wire.len() => Phase::Reading,
            Ok(n) => Phase::Writing(n),
            // Still connecting.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                c.connect_deadline = later(Instant::now(), ctx.connect_timeout);
                Phase::Connecting
            }
            // A write can only fail here because the connection was not made (refused...).
            Err(e) => return self.fail(i, Failure::connect(e)),
        };
        // Without keep-alive, a connection whose request went out whole has nothing left to
        // write: it waits for readability only. Registered for writability too, the socket
        // (writable at once) would bring one more event per connection, and the loop one more
        // `epoll_wait` per turn that does not sleep (about half of them: 0.42-0.54 -> 0.27 per
        // request against the built-in web server, 1,000 connections). A kept-alive connection
        // writes again later, so it keeps both.
        let interest = if phase == Phase::Reading && !ctx.keepalive {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        if let Err(e) = self.poll.registry().register(&mut s, Token(i), interest) {
            return self.fail(i, Failure::connect(e));
        }
        c.sock = Some(s);
        c.phase = phase;
    }

    /// An event on worker `i`'s socket: readable, and whether the peer closed its end.
    fn event(&mut self, i: usize, readable: bool, closed: bool) {
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        // An edge says it once: the end of the stream is not signalled again after a short read
        // took the bytes before it.
        c.peer_closed |= closed;
        if readable && c.phase != Phase::Reading {
            c.read_pending = true;
        }
        match c.phase {
            Phase::Connecting => {
                let Some(s) = &c.sock else { return };
                match s.take_error() {
                    Ok(None) => {}
                    Ok(Some(e)) | Err(e) => return self.fail(i, Failure::connect(e)),
                }
                c.phase = Phase::Writing(0);
                self.write(i);
            }
            Phase::Writing(_) => self.write(i),
            Phase::Reading if readable => self.read(i),
            Phase::Reading => {}
            Phase::Idle | Phase::Done => {}
        }
    }

    /// Writes the rest of worker `i`'s request; then reads if the socket was seen readable.
    fn write(&mut self, i: usize) {
        let wire = self.ctx.wire.as_bytes();
        let c = &mut self.conns[i];
        let Phase::Writing(mut at) = c.phase else {
            return;
        };
        let Some(s) = c.sock.as_mut() else { return };
        while at < wire.len() {
            match s.write(&wire[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // A new connection still being made, or a full send buffer: the socket's
                    // next writable edge resumes here.
                    // (The connect deadline was set when the connection was dialled.)
                    c.phase = if at == 0 && !c.reused {
                        Phase::Connecting
                    } else {
                        Phase::Writing(at)
                    };
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.retry_or_fail(i, h1::Error::Io(e)),
            }
        }
        c.phase = Phase::Reading;
        if std::mem::take(&mut c.read_pending) {
            self.read(i);
        }
    }

    /// Reads worker `i`'s response until it is complete, the socket is drained or it ends.
    fn read(&mut self, i: usize) {
        let c = &mut self.conns[i];
        let Some(s) = c.sock.as_mut() else { return };
        loop {
            let space = match c.reader.space() {
                Ok(b) => b,
                Err(e) => return self.fail(i, Failure::Fast(e)),
            };
            let room = space.len();
            match s.read(space) {
                Ok(0) => {
                    return match c.reader.eof() {
                        Ok(r) => self.complete(i, r),
                        Err(e) => self.retry_or_fail(i, e),
                    };
                }
                Ok(n) => {
                    c.reader.filled(n);
                    match c.reader.advance() {
                        Ok(Some(r)) => return self.complete(i, r),
                        Ok(None) => {}
                        Err(e) => return self.fail(i, Failure::Fast(e)),
                    }
                    // A short read drained the socket: more data is a new edge, unless the peer
                    // closed (then the end is read now).
                    if n < room && !c.peer_closed {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.retry_or_fail(i, h1::Error::Io(e)),
            }
        }
    }

    /// Worker `i`'s response is complete.
    fn complete(&mut self, i: usize, r: h1::Response) {
        let done = Instant::now();
        let c = &mut self.conns[i];
        self.rec.tally(r.status, r.bytes);
        self.ctx
            .live
            .response(done.saturating_duration_since(c.from), r.bytes);
        if self.ctx.keepalive && r.reusable && !c.peer_closed {
            c.reused = true;
        } else {
            c.sock = None;
        }
        c.phase = Phase::Idle;
        self.ready.push(i);
    }

    /// Worker `i`'s request failed (the connection is closed).
    fn fail(&mut self, i: usize, f: Failure) {
        let c = &mut self.conns[i];
        c.sock = None;
        c.phase = Phase::Idle;
        self.rec.error(f.kind(), || f.message());
        self.ctx.live.error();
        self.ready.push(i);
    }

    /// A failure of the connection itself: on a kept-alive connection before any byte of the
    /// response came back, the server closed it while idle, and the request goes again on a new
    /// connection (its latency still counts from its start).
    fn retry_or_fail(&mut self, i: usize, e: h1::Error) {
        let c = &self.conns[i];
        let idle_close = matches!(e, h1::Error::Closed | h1::Error::Io(_));
        if idle_close && c.reused && c.reader.nothing_received() {
            return self.dial(i);
        }
        self.fail(i, Failure::Fast(e))
    }

    /// Fails the requests whose deadline passed by `now`; returns the earliest deadline left.
    fn sweep(&mut self, now: Instant) -> Instant {
        let timeout = self.ctx.timeout;
        // A request started after now ends after this.
        let mut next = later(now, timeout.min(self.ctx.connect_timeout));
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            if !c.in_flight() {
                continue;
            }
            if c.phase == Phase::Connecting && now >= c.connect_deadline {
                self.fail(i, Failure::Timeout(ErrorKind::ConnectTimeout));
            } else if now >= c.deadline {
                self.fail(
                    i,
                    Failure::Io(
                        ErrorKind::Timeout,
                        io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("no complete response within {timeout:?}"),
                        ),
                    ),
                );
            } else {
                next = next.min(c.deadline);
                if c.phase == Phase::Connecting {
                    next = next.min(c.connect_deadline);
                }
            }
        }
        next
    }

    /// The end of the run: what is still in flight is cut off.
    fn cut(&mut self) {
        for c in &mut self.conns {
            if c.in_flight() {
                self.rec.cancelled += 1;
            }
            c.sock = None;
            c.phase = Phase::Done;
        }
        self.ready.clear();
        self.active = 0;
    }
}

/// `t + d`, or far in the future when that does not fit.
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .unwrap_or_else(|| t + Duration::from_secs(100 * 365 * 24 * 3600))
}
