//! A worker of the tokio loops (the open loop, HTTP/2, `--engine hyper`): it takes the next
//! request when it may go, sends it through hyper or the fast HTTP/1.1 path, and records what
//! happened.
use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONNECTION;
use http::{Request, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::conn::{fast_exchange, tcp};
use super::{Failure, Shared, TIMER_SLOP};
use crate::h1;
use crate::stats::{ErrorKind, Recorder};

type Body = Full<Bytes>;
/// One HTTP/2 connection shared by a thread's workers; the lock keeps them from all dialing
/// at once when it is (re)established.
pub(super) type H2Slot = Rc<tokio::sync::Mutex<Option<http2::SendRequest<Body>>>>;

pub(super) struct Worker {
    pub(super) sh: Arc<Shared>,
    pub(super) t: usize,
    pub(super) rec: Rc<RefCell<Recorder>>,
    pub(super) h1: Option<http1::SendRequest<Body>>,
    /// The fast path's kept-alive connection.
    pub(super) fast: Option<h1::Conn>,
    /// The read buffer and head memo of the fast path's last closed connection, for the next.
    pub(super) spare: Option<h1::Reader>,
    /// The fast path's connect timeout, one timer moved forward per connection (as the request
    /// timer in [`Worker::run`]; `tokio::time::timeout` would register and remove a timer per
    /// connection, a tenth of a request's cost without keep-alive).
    pub(super) connect_timer: Pin<Box<Sleep>>,
    pub(super) h2: H2Slot,
    pub(super) stop: watch::Receiver<bool>,
}

/// Whether a request may go, and the time its latency counts from.
enum Next {
    Go(Instant),
    Done,
}

impl Worker {
    pub(super) async fn run(&mut self) {
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
