//! The final report (text as hey, JSON, CSV) and the per-interval timeline rows. Reads a
//! finished [`Summary`]; never touches the engine.
use std::fmt::Write;

use serde_json::{json, Map, Value};

use crate::stats::Summary;
use crate::threshold::Verdict;

/// One progress interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Seconds since the start, at the end of the interval.
    pub elapsed: f64,
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    /// Open loop: the asked rate at the end of the interval.
    pub asked_rps: Option<f64>,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// What was run, for the report's header.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub target: String,
    pub method: String,
    pub protocol: String,
    pub threads: usize,
    pub concurrency: usize,
    pub mode: String,
}

pub struct Report<'a> {
    pub info: &'a RunInfo,
    pub summary: &'a Summary,
    pub timeline: &'a [Sample],
    pub verdicts: &'a [Verdict],
}

fn secs(ms: f64) -> f64 {
    ms / 1000.0
}

impl Report<'_> {
    pub fn json(&self) -> Value {
        let s = self.summary;
        let status: Map<String, Value> = s
            .status
            .iter()
            .map(|(c, n)| (c.to_string(), json!(n)))
            .collect();
        let errors: Map<String, Value> = s
            .errors
            .iter()
            .map(|(k, n, _)| (k.name().to_string(), json!(n)))
            .collect();
        let error_messages: Map<String, Value> = s
            .errors
            .iter()
            .map(|(k, _, m)| (k.name().to_string(), json!(m)))
            .collect();
        let mut v = json!({
            "target": self.info.target,
            "method": self.info.method,
            "protocol": self.info.protocol,
            "mode": self.info.mode,
            "threads": self.info.threads,
            "concurrency": self.info.concurrency,
            "duration_s": s.elapsed.as_secs_f64(),
            "requests": s.requests(),
            "responses": s.responses(),
            "rps": s.rps(),
            "errors": s.error_count(),
            "error_rate": s.error_rate(),
            "errors_by_kind": errors,
            "error_messages": error_messages,
            "status": status,
            "bytes": s.bytes,
            "cancelled": s.cancelled,
            "latency_ms": {
                "min": s.min_ms(),
                "mean": s.mean_ms(),
                "p50": s.quantile_ms(0.50),
                "p90": s.quantile_ms(0.90),
                "p95": s.quantile_ms(0.95),
                "p99": s.quantile_ms(0.99),
                "p999": s.quantile_ms(0.999),
                "max": s.max_ms(),
            },
            "thresholds": self.verdicts.iter().map(|v| json!({
                "threshold": v.threshold, "actual": v.actual, "ok": v.ok,
            })).collect::<Vec<_>>(),
            "timeline": self.timeline.iter().map(sample_json).collect::<Vec<_>>(),
        });
        if let Some(n) = s.scheduled {
            v["scheduled"] = json!(n);
            v["missed"] = json!(n.saturating_sub(s.requests() + s.cancelled));
        }
        v
    }

    /// The timeline, one row per interval, then a `total` row.
    pub fn csv(&self) -> String {
        let mut out = String::from(CSV_HEADER);
        out.push('\n');
        for r in self.timeline {
            out.push_str(&csv_row(r));
            out.push('\n');
        }
        let s = self.summary;
        let _ = writeln!(
            out,
            "total,{},{},{:.3},,{:.3},{:.3},{:.3},{:.3}",
            s.requests(),
            s.error_count(),
            s.rps(),
            s.quantile_ms(0.5),
            s.quantile_ms(0.9),
            s.quantile_ms(0.99),
            s.max_ms()
        );
        out
    }

    pub fn text(&self) -> String {
        let s = self.summary;
        let i = self.info;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "Target: {} ({} {}, {})",
            i.target, i.method, i.protocol, i.mode
        );
        let _ = writeln!(
            o,
            "        {} threads, {} connections\n",
            i.threads, i.concurrency
        );
        let _ = writeln!(o, "Summary:");
        let _ = writeln!(o, "  Total:\t{:.4} secs", s.elapsed.as_secs_f64());
        let _ = writeln!(
            o,
            "  Requests:\t{} ({} errors)",
            s.requests(),
            s.error_count()
        );
        let _ = writeln!(o, "  Slowest:\t{:.4} secs", secs(s.max_ms()));
        let _ = writeln!(o, "  Fastest:\t{:.4} secs", secs(s.min_ms()));
        let _ = writeln!(o, "  Average:\t{:.4} secs", secs(s.mean_ms()));
        let _ = writeln!(o, "  Requests/sec:\t{:.2}", s.rps());
        let _ = writeln!(o, "  Total data:\t{} bytes", s.bytes);
        if s.responses() > 0 {
            let _ = writeln!(o, "  Size/request:\t{} bytes", s.bytes / s.responses());
        }
        if let Some(n) = s.scheduled {
            let _ = writeln!(
                o,
                "  Scheduled:\t{n} (sent {}, missed {})",
                s.requests() + s.cancelled,
                n.saturating_sub(s.requests() + s.cancelled)
            );
        }
        if s.cancelled > 0 {
            let _ = writeln!(o, "  Cut off at the end:\t{}", s.cancelled);
        }
        if !s.latency.is_empty() {
            let _ = writeln!(o, "\nResponse time histogram:");
            o.push_str(&histogram_text(s));
            let _ = writeln!(o, "\nLatency distribution:");
            for (label, q) in [
                ("10%", 0.10),
                ("25%", 0.25),
                ("50%", 0.50),
                ("75%", 0.75),
                ("90%", 0.90),
                ("95%", 0.95),
                ("99%", 0.99),
                ("99.9%", 0.999),
            ] {
                let _ = writeln!(o, "  {label} in {:.4} secs", secs(s.quantile_ms(q)));
            }
        }
        if !s.status.is_empty() {
            let _ = writeln!(o, "\nStatus code distribution:");
            for (c, n) in &s.status {
                let _ = writeln!(o, "  [{c}]\t{n} responses");
            }
        }
        if !s.errors.is_empty() {
            let _ = writeln!(o, "\nError distribution:");
            for (k, n, m) in &s.errors {
                let _ = writeln!(o, "  [{n}]\t{}: {m}", k.name());
            }
        }
        if !self.verdicts.is_empty() {
            let _ = writeln!(o, "\nThresholds:");
            for v in self.verdicts {
                let mark = if v.ok { "ok  " } else { "FAIL" };
                let _ = writeln!(o, "  {mark} {} (actual {})", v.threshold, v.actual);
            }
        }
        o
    }
}

pub const CSV_HEADER: &str = "elapsed_s,requests,errors,rps,asked_rps,p50_ms,p90_ms,p99_ms,max_ms";

pub fn csv_row(r: &Sample) -> String {
    format!(
        "{:.3},{},{},{:.3},{},{:.3},{:.3},{:.3},{:.3}",
        r.elapsed,
        r.requests,
        r.errors,
        r.rps,
        r.asked_rps.map(|a| format!("{a:.3}")).unwrap_or_default(),
        r.p50_ms,
        r.p90_ms,
        r.p99_ms,
        r.max_ms
    )
}

fn sample_json(r: &Sample) -> Value {
    json!({
        "elapsed_s": r.elapsed, "requests": r.requests, "errors": r.errors, "rps": r.rps,
        "asked_rps": r.asked_rps, "p50_ms": r.p50_ms, "p90_ms": r.p90_ms, "p99_ms": r.p99_ms,
        "max_ms": r.max_ms,
    })
}

/// hey's histogram: 11 marks evenly from the fastest to the slowest, each with the responses
/// at most that slow (and slower than the previous mark).
fn histogram_text(s: &Summary) -> String {
    let (lo, hi) = (s.latency.min(), s.latency.max());
    let marks: Vec<u64> = (0..=10).map(|i| lo + (hi - lo) * i / 10).collect();
    let mut counts = [0u64; 11];
    for v in s.latency.iter_recorded() {
        let x = v.value_iterated_to();
        let b = marks.iter().position(|m| x <= *m).unwrap_or(10);
        counts[b] += v.count_at_value();
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1);
    let mut o = String::new();
    for (m, c) in marks.iter().zip(counts) {
        let bar = "■".repeat((c * 40 / top) as usize);
        let _ = writeln!(o, "  {:.3} [{c}]\t|{bar}", *m as f64 / 1e6);
    }
    o
}
