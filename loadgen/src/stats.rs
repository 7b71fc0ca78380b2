//! What a run measured: per-worker-thread recorders (an HDR histogram of latencies in
//! microseconds, status codes, errors by kind, bytes) merged into a [`Summary`] at the end, and
//! the live counters the progress line and the timeline read while the run goes on.
//!
//! A latency is recorded once: into its thread's [`Live`] interval histogram, which the reader
//! (progress line, timeline) folds into the thread's running total as it takes each interval;
//! at the end the total and the last interval become the [`Recorder`]'s histogram. Recording
//! never allocates: the histograms' buckets, the status table and the error table are sized up
//! front. Only the first message of each error kind is kept (one allocation per kind).
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// The largest latency recorded (an hour, in microseconds); longer ones saturate.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds")
}

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    ConnectRefused,
    ConnectTimeout,
    Connect,
    Timeout,
    /// The server closed the connection before the response was complete.
    ClosedMidResponse,
    Reset,
    InvalidResponse,
    Other,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::ConnectRefused,
        ErrorKind::ConnectTimeout,
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::ClosedMidResponse,
        ErrorKind::Reset,
        ErrorKind::InvalidResponse,
        ErrorKind::Other,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// A stable name for reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connection refused",
            ErrorKind::ConnectTimeout => "connect timeout",
            ErrorKind::Connect => "connect error",
            ErrorKind::Timeout => "request timeout",
            ErrorKind::ClosedMidResponse => "connection closed before the response completed",
            ErrorKind::Reset => "connection reset",
            ErrorKind::InvalidResponse => "invalid HTTP response",
            ErrorKind::Other => "other error",
        }
    }
}

const KINDS: usize = ErrorKind::ALL.len();
/// Status codes 0..=999 are counted by code.
const STATUS_SLOTS: usize = 1000;

/// One worker thread's tallies.
pub struct Recorder {
    pub latency: Histogram<u64>,
    pub status: Box<[u64; STATUS_SLOTS]>,
    pub errors: [u64; KINDS],
    pub first_error: [Option<String>; KINDS],
    pub bytes: u64,
    /// Requests cut off by the end of the run while in flight (not counted as requests).
    pub cancelled: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            latency: new_histogram(),
            status: Box::new([0; STATUS_SLOTS]),
            errors: [0; KINDS],
            first_error: Default::default(),
            bytes: 0,
            cancelled: 0,
        }
    }
}

impl Recorder {
    pub fn response(&mut self, status: u16, latency: Duration, bytes: u64) {
        self.latency.saturating_record(micros(latency));
        self.tally(status, bytes);
    }

    /// A response whose latency went to the thread's [`Live`] (see [`Live::drain_latency`]).
    pub fn tally(&mut self, status: u16, bytes: u64) {
        self.status[(status as usize).min(STATUS_SLOTS - 1)] += 1;
        self.bytes += bytes;
    }

    pub fn error(&mut self, kind: ErrorKind, message: impl FnOnce() -> String) {
        let i = kind.index();
        self.errors[i] += 1;
        if self.first_error[i].is_none() {
            self.first_error[i] = Some(message());
        }
    }
}

fn micros(latency: Duration) -> u64 {
    (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US)
}

/// What a thread publishes while running, read by the progress line and the timeline: one
/// uncontended lock per response (the reader takes it once per interval).
#[derive(Default)]
pub struct Live {
    inner: Mutex<LiveInner>,
}

struct LiveInner {
    counts: Counts,
    /// Latencies since the last [`Live::take_interval`].
    interval: Histogram<u64>,
    /// Latencies of the intervals taken so far.
    taken: Histogram<u64>,
}

impl Default for LiveInner {
    fn default() -> Self {
        LiveInner {
            counts: Counts::default(),
            interval: new_histogram(),
            taken: new_histogram(),
        }
    }
}

impl Live {
    pub fn response(&self, latency: Duration, bytes: u64) {
        if let Ok(mut l) = self.inner.lock() {
            l.interval.saturating_record(micros(latency));
            l.counts.responses += 1;
            l.counts.bytes += bytes;
        }
    }

    pub fn error(&self) {
        if let Ok(mut l) = self.inner.lock() {
            l.counts.errors += 1;
        }
    }

    /// Adds this thread's interval latencies into `into` and starts a new interval.
    pub fn take_interval(&self, into: &mut Histogram<u64>) {
        if let Ok(mut l) = self.inner.lock() {
            let l = &mut *l;
            let _ = into.add(&l.interval);
            let _ = l.taken.add(&l.interval);
            l.interval.reset();
        }
    }

    /// Adds every latency this thread recorded into `into` (at the end of the run).
    pub fn drain_latency(&self, into: &mut Histogram<u64>) {
        if let Ok(mut l) = self.inner.lock() {
            let l = &mut *l;
            let _ = into.add(&l.taken);
            let _ = into.add(&l.interval);
            l.taken.reset();
            l.interval.reset();
        }
    }

    pub fn counts(&self) -> Counts {
        self.inner.lock().map(|l| l.counts).unwrap_or_default()
    }
}

/// Totals so far across threads.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    pub responses: u64,
    pub errors: u64,
    pub bytes: u64,
}

impl Counts {
    pub fn requests(&self) -> u64 {
        self.responses + self.errors
    }
}

pub fn counts(lives: &[Live]) -> Counts {
    let mut c = Counts::default();
    for l in lives.iter().map(Live::counts) {
        c.responses += l.responses;
        c.errors += l.errors;
        c.bytes += l.bytes;
    }
    c
}

/// The merged result of a run.
pub struct Summary {
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
    /// (code, count), ascending by code.
    pub status: Vec<(u16, u64)>,
    /// (kind, count, first message), only kinds that happened.
    pub errors: Vec<(ErrorKind, u64, String)>,
    pub bytes: u64,
    pub cancelled: u64,
    /// Open loop: requests the schedule asked for by the end (None in closed loop).
    pub scheduled: Option<u64>,
}

impl Summary {
    pub fn merge(recorders: Vec<Recorder>, elapsed: Duration, scheduled: Option<u64>) -> Summary {
        let mut latency = new_histogram();
        let mut status = [0u64; STATUS_SLOTS];
        let mut errors = [0u64; KINDS];
        let mut first: [Option<String>; KINDS] = Default::default();
        let (mut bytes, mut cancelled) = (0, 0);
        for r in recorders {
            let _ = latency.add(&r.latency);
            for (i, n) in r.status.iter().enumerate() {
                status[i] += n;
            }
            for i in 0..KINDS {
                errors[i] += r.errors[i];
                if first[i].is_none() {
                    first[i] = r.first_error[i].clone();
                }
            }
            bytes += r.bytes;
            cancelled += r.cancelled;
        }
        Summary {
            elapsed,
            latency,
            status: status
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(c, n)| (c as u16, *n))
                .collect(),
            errors: ErrorKind::ALL
                .iter()
                .filter(|k| errors[k.index()] > 0)
                .map(|k| {
                    (
                        *k,
                        errors[k.index()],
                        first[k.index()].clone().unwrap_or_default(),
                    )
                })
                .collect(),
            bytes,
            cancelled,
            scheduled,
        }
    }

    pub fn responses(&self) -> u64 {
        self.status.iter().map(|(_, n)| n).sum()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.iter().map(|(_, n, _)| n).sum()
    }

    /// Requests that completed: a response or an error.
    pub fn requests(&self) -> u64 {
        self.responses() + self.error_count()
    }

    pub fn rps(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.requests() as f64 / s
        } else {
            0.0
        }
    }

    /// Errors as a fraction of requests (0 when there were none).
    pub fn error_rate(&self) -> f64 {
        match self.requests() {
            0 => 0.0,
            n => self.error_count() as f64 / n as f64,
        }
    }

    /// A latency quantile in milliseconds (0 when nothing was recorded).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        if self.latency.is_empty() {
            0.0
        } else {
            self.latency.max() as f64 / 1000.0
        }
    }

    pub fn min_ms(&self) -> f64 {
        if self.latency.is_empty() {
            0.0
        } else {
            self.latency.min() as f64 / 1000.0
        }
    }

    pub fn mean_ms(&self) -> f64 {
        if self.latency.is_empty() {
            0.0
        } else {
            self.latency.mean() / 1000.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_recorders() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for i in 1..=100 {
            a.response(200, Duration::from_millis(i), 10);
        }
        b.response(503, Duration::from_millis(500), 5);
        b.error(ErrorKind::Timeout, || "t1".into());
        b.error(ErrorKind::Timeout, || "t2".into());
        let s = Summary::merge(vec![a, b], Duration::from_secs(2), None);
        assert_eq!(s.requests(), 103);
        assert_eq!(s.responses(), 101);
        assert_eq!(s.status, vec![(200, 100), (503, 1)]);
        assert_eq!(s.errors, vec![(ErrorKind::Timeout, 2, "t1".into())]);
        assert_eq!(s.bytes, 1005);
        assert!((s.rps() - 51.5).abs() < 1e-9);
        assert!(
            (s.quantile_ms(0.5) - 51.0).abs() < 0.1,
            "{}",
            s.quantile_ms(0.5)
        );
        assert!((s.max_ms() - 500.0).abs() < 0.5);
    }

    #[test]
    fn live_latencies_reach_the_intervals_and_the_total_once() {
        let live = Live::default();
        for i in 1..=10 {
            live.response(Duration::from_millis(i), 100);
        }
        live.error();
        let mut first = new_histogram();
        live.take_interval(&mut first);
        assert_eq!(first.len(), 10);
        for _ in 0..5 {
            live.response(Duration::from_millis(50), 1);
        }
        let mut second = new_histogram();
        live.take_interval(&mut second);
        assert_eq!(second.len(), 5);
        assert!(second.min().abs_diff(50_000) < 100, "{}", second.min());
        live.response(Duration::from_millis(70), 1);
        let c = live.counts();
        assert_eq!((c.responses, c.errors, c.bytes), (16, 1, 1006));
        let mut total = new_histogram();
        live.drain_latency(&mut total);
        assert_eq!(total.len(), 16);
        assert!(total.max().abs_diff(70_000) < 100, "{}", total.max());
        let mut again = new_histogram();
        live.drain_latency(&mut again);
        assert_eq!(again.len(), 0);
    }
}
