//! Pass/fail criteria (`--threshold 'p99<200ms'`, `--threshold 'errors<1%'`), as k6's
//! thresholds: any that fails makes the run exit with code 99.
//!
//! `METRIC OP VALUE` with OP one of `<`, `<=`, `>`, `>=`, `==` and METRIC one of
//! - `p50`, `p90`, `p95`, `p99`, `p99.9` (or `p999`), `pNN.N`, `min`, `avg`/`mean`, `max`:
//!   latency, VALUE a duration (`200ms`, `1.5s`, `250us`);
//! - `errors`: VALUE a percentage of the requests (`1%`) or a count (`0`);
//! - `rps`, `requests`: numbers.
use std::fmt;

use crate::stats::Summary;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Metric {
    Quantile(f64),
    Min,
    Mean,
    Max,
    ErrorRate,
    ErrorCount,
    Rps,
    Requests,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    text: String,
    metric: Metric,
    op: Op,
    /// Milliseconds for latencies, a fraction for error rates, a number otherwise.
    value: f64,
}

/// A threshold checked against a run.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub threshold: String,
    pub actual: String,
    pub ok: bool,
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Threshold {
    pub fn parse(s: &str) -> Result<Threshold, String> {
        let text: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let bad = |why: &str| format!("threshold {s:?}: {why}");
        let pos = text
            .find(['<', '>', '='])
            .ok_or_else(|| bad("want METRIC<VALUE, e.g. p99<200ms or errors<1%"))?;
        let (name, rest) = text.split_at(pos);
        let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = rest.strip_prefix("==") {
            (Op::Eq, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Op::Lt, v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (Op::Gt, v)
        } else {
            return Err(bad("the operator must be <, <=, >, >= or =="));
        };
        if value.is_empty() {
            return Err(bad("no value"));
        }
        let latency = |v: &str| -> Result<f64, String> {
            let d = crate::duration(v).map_err(|e| bad(&e))?;
            Ok(d.as_secs_f64() * 1000.0)
        };
        let number = |v: &str| -> Result<f64, String> {
            v.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| bad(&format!("{v:?} is not a number")))
        };
        let (metric, value) = match name {
            "min" => (Metric::Min, latency(value)?),
            "avg" | "mean" => (Metric::Mean, latency(value)?),
            "max" => (Metric::Max, latency(value)?),
            "rps" => (Metric::Rps, number(value)?),
            "requests" => (Metric::Requests, number(value)?),
            "errors" => match value.strip_suffix('%') {
                Some(p) => (Metric::ErrorRate, number(p)? / 100.0),
                None => (Metric::ErrorCount, number(value)?),
            },
            "p999" => (Metric::Quantile(0.999), latency(value)?),
            p if p.starts_with('p') => {
                let q: f64 = p[1..]
                    .parse()
                    .ok()
                    .filter(|q: &f64| *q > 0.0 && *q <= 100.0)
                    .ok_or_else(|| bad(&format!("unknown percentile {p:?}")))?;
                (Metric::Quantile(q / 100.0), latency(value)?)
            }
            m => {
                return Err(bad(&format!(
                "unknown metric {m:?} (p50, p90, p99, p99.9, min, avg, max, errors, rps, requests)"
            )))
            }
        };
        Ok(Threshold {
            text,
            metric,
            op,
            value,
        })
    }

    pub fn check(&self, s: &Summary) -> Verdict {
        let actual = match self.metric {
            Metric::Quantile(q) => s.quantile_ms(q),
            Metric::Min => s.min_ms(),
            Metric::Mean => s.mean_ms(),
            Metric::Max => s.max_ms(),
            Metric::ErrorRate => s.error_rate(),
            Metric::ErrorCount => s.error_count() as f64,
            Metric::Rps => s.rps(),
            Metric::Requests => s.requests() as f64,
        };
        let ok = match self.op {
            Op::Lt => actual < self.value,
            Op::Le => actual <= self.value,
            Op::Gt => actual > self.value,
            Op::Ge => actual >= self.value,
            Op::Eq => actual == self.value,
        };
        let shown = match self.metric {
            Metric::ErrorRate => format!("{:.3}%", actual * 100.0),
            Metric::ErrorCount | Metric::Requests => format!("{actual}"),
            Metric::Rps => format!("{actual:.1}"),
            _ => format!("{actual:.3}ms"),
        };
        Verdict {
            threshold: self.text.clone(),
            actual: shown,
            ok,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{ErrorKind, Recorder};
    use std::time::Duration;

    fn summary() -> Summary {
        let mut r = Recorder::default();
        for i in 1..=99 {
            r.response(200, Duration::from_millis(i), 0);
        }
        r.error(ErrorKind::Timeout, String::new);
        Summary::merge(vec![r], Duration::from_secs(1), None)
    }

    #[test]
    fn checks_latency_and_errors() {
        let s = summary();
        let ok = |t: &str| Threshold::parse(t).unwrap().check(&s).ok;
        assert!(ok("p99<200ms"));
        assert!(!ok("p99<50ms"));
        assert!(ok("p50 <= 51ms"));
        assert!(ok("p99.9<1s"));
        assert!(ok("p999<1s"));
        assert!(ok("max<100ms"));
        assert!(ok("errors<2%"));
        assert!(!ok("errors<1%"));
        assert!(ok("errors<=1"));
        assert!(!ok("errors==0"));
        assert!(ok("rps>=100"));
        assert!(ok("requests==100"));
    }

    #[test]
    fn refuses_bad_thresholds() {
        for t in [
            "p99",
            "p99<",
            "p99<fast",
            "p0<1s",
            "p101<1s",
            "latency<1s",
            "errors<x%",
            "p99!1s",
        ] {
            let e = Threshold::parse(t).unwrap_err();
            assert!(e.contains("threshold"), "{t}: {e}");
        }
    }
}
