//! Open-loop arrival schedules: a constant rate (`--rate`) or a ramping arrival rate
//! (`--stages 30s:50,2m:500,1m:0`, k6's `ramping-arrival-rate`: each stage moves the rate
//! linearly from the previous stage's target to its own over its duration).
//!
//! Pure: the schedule answers "when is request k due?" (the inverse of the cumulative number of
//! arrivals N(t)); the engine turns that into sleeps and measures latency from that time
//! (coordinated-omission correction, as wrk2).
use std::time::Duration;

/// One stage: the rate goes linearly from the previous target to `target` over `duration`.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    /// Requests per second at the end of the stage.
    pub target: f64,
}

/// The largest rate a schedule may ask for (requests per second).
pub const MAX_RATE: f64 = 10_000_000.0;

#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    start_rate: f64,
    stages: Vec<Stage>,
    /// Cumulative arrivals at the start of each stage.
    starts: Vec<f64>,
    /// Start time (seconds) of each stage.
    offsets: Vec<f64>,
}

impl Schedule {
    /// A constant `rate` for `duration`.
    pub fn constant(rate: f64, duration: Duration) -> Result<Schedule, String> {
        Schedule::new(
            rate,
            vec![Stage {
                duration,
                target: rate,
            }],
        )
    }

    pub fn new(start_rate: f64, stages: Vec<Stage>) -> Result<Schedule, String> {
        check_rate(start_rate)?;
        if stages.is_empty() {
            return Err("no stages".into());
        }
        let mut starts = Vec::with_capacity(stages.len());
        let mut offsets = Vec::with_capacity(stages.len());
        let (mut n, mut t, mut r0) = (0.0, 0.0, start_rate);
        for s in &stages {
            check_rate(s.target)?;
            starts.push(n);
            offsets.push(t);
            let d = s.duration.as_secs_f64();
            n += (r0 + s.target) / 2.0 * d;
            t += d;
            r0 = s.target;
        }
        Ok(Schedule {
            start_rate,
            stages,
            starts,
            offsets,
        })
    }

    /// Parses `30s:50,2m:500,1m:0` (duration:target rate per second).
    pub fn parse_stages(start_rate: f64, s: &str) -> Result<Schedule, String> {
        let mut stages = vec![];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (d, r) = part
                .split_once(':')
                .ok_or_else(|| format!("stage {part:?}: want DURATION:RATE, e.g. 30s:50"))?;
            let duration = crate::duration(d).map_err(|e| format!("stage {part:?}: {e}"))?;
            let target: f64 = r
                .trim()
                .parse()
                .map_err(|_| format!("stage {part:?}: rate {r:?} is not a number"))?;
            check_rate(target).map_err(|e| format!("stage {part:?}: {e}"))?;
            stages.push(Stage { duration, target });
        }
        if stages.is_empty() {
            return Err(format!("no stages in {s:?}"));
        }
        Schedule::new(start_rate, stages)
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The whole schedule's length.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    fn stage_at(&self, t: f64) -> Option<(usize, f64)> {
        for (i, s) in self.stages.iter().enumerate() {
            let d = s.duration.as_secs_f64();
            let tau = t - self.offsets[i];
            if tau < d {
                return Some((i, tau.max(0.0)));
            }
        }
        None
    }

    fn rate_before(&self, i: usize) -> f64 {
        if i == 0 {
            self.start_rate
        } else {
            self.stages[i - 1].target
        }
    }

    /// The asked rate at time `t` since the start (0 after the end).
    pub fn rate_at(&self, t: Duration) -> f64 {
        match self.stage_at(t.as_secs_f64()) {
            Some((i, tau)) => {
                let d = self.stages[i].duration.as_secs_f64();
                let r0 = self.rate_before(i);
                r0 + (self.stages[i].target - r0) * tau / d
            }
            None => 0.0,
        }
    }

    /// N(t): the number of arrivals due in [0, t].
    pub fn expected(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        match self.stage_at(t) {
            Some((i, tau)) => {
                let d = self.stages[i].duration.as_secs_f64();
                let r0 = self.rate_before(i);
                let a = (self.stages[i].target - r0) / (2.0 * d);
                self.starts[i] + r0 * tau + a * tau * tau
            }
            None => self.total(),
        }
    }

    /// All arrivals of the schedule.
    pub fn total(&self) -> f64 {
        let last = self.stages.len() - 1;
        let r0 = self.rate_before(last);
        self.starts[last]
            + (r0 + self.stages[last].target) / 2.0 * self.stages[last].duration.as_secs_f64()
    }

    /// When request `k` (0-based) is due: the time t with N(t) = k; None when the schedule ends
    /// before it.
    pub fn time_of(&self, k: u64) -> Option<Duration> {
        let k = k as f64;
        // The last stage whose start count is <= k.
        let i = self.starts.partition_point(|&n| n <= k).checked_sub(1)?;
        let s = &self.stages[i];
        let d = s.duration.as_secs_f64();
        let r0 = self.rate_before(i);
        let a = (s.target - r0) / (2.0 * d);
        let m = k - self.starts[i];
        let tau = if m <= 0.0 {
            0.0
        } else {
            // a τ² + r0 τ = m; the stable form of the smallest non-negative root.
            let disc = r0 * r0 + 4.0 * a * m;
            if disc < 0.0 {
                return None;
            }
            let den = r0 + disc.sqrt();
            if den <= 0.0 {
                return None;
            }
            2.0 * m / den
        };
        if !tau.is_finite() {
            return None;
        }
        if tau >= d {
            // Rounding at a stage's end: due at that end unless it was the last stage.
            return (i + 1 < self.stages.len())
                .then(|| Duration::from_secs_f64(self.offsets[i] + d));
        }
        Some(Duration::from_secs_f64(self.offsets[i] + tau))
    }
}

fn check_rate(r: f64) -> Result<(), String> {
    if !r.is_finite() || r < 0.0 {
        return Err(format!("rate {r} must be a number >= 0"));
    }
    if r > MAX_RATE {
        return Err(format!("rate {r} is above the maximum {MAX_RATE}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn constant_rate_spaces_requests_evenly() {
        let s = Schedule::constant(100.0, secs(2.0)).unwrap();
        assert_eq!(s.time_of(0), Some(Duration::ZERO));
        assert!((s.time_of(50).unwrap().as_secs_f64() - 0.5).abs() < 1e-9);
        assert!((s.time_of(199).unwrap().as_secs_f64() - 1.99).abs() < 1e-9);
        assert_eq!(s.time_of(200), None);
        assert_eq!(s.total(), 200.0);
    }

    #[test]
    fn ramps_follow_the_integral_of_the_rate() {
        // 0 → 100/s over 10 s, hold 100/s for 10 s, 100 → 0 over 10 s.
        let s = Schedule::parse_stages(0.0, "10s:100,10s:100,10s:0").unwrap();
        assert_eq!(s.total(), 500.0 + 1000.0 + 500.0);
        assert_eq!(s.duration(), secs(30.0));
        // Ramp up: N(t) = 5 t², so request 125 is due at 5 s.
        assert!((s.time_of(125).unwrap().as_secs_f64() - 5.0).abs() < 1e-9);
        assert!((s.rate_at(secs(5.0)) - 50.0).abs() < 1e-9);
        // Hold: request 500 + 100 is due at 11 s.
        assert!((s.time_of(600).unwrap().as_secs_f64() - 11.0).abs() < 1e-9);
        // Ramp down: N(20 + τ) = 1500 + 100 τ − 5 τ²; at τ = 10 all 2000 are due.
        let t = s.time_of(1995).unwrap().as_secs_f64();
        assert!((t - 20.0 - 9.0).abs() < 1e-6, "{t}");
        assert_eq!(s.time_of(2000), None);
        // Monotone everywhere.
        let mut last = Duration::ZERO;
        for k in 0..2000 {
            let t = s.time_of(k).unwrap();
            assert!(t >= last, "k={k}");
            last = t;
            assert!((s.expected(t) - k as f64).abs() < 1e-6, "k={k}");
        }
    }

    #[test]
    fn zero_rate_stages_pause() {
        let s = Schedule::parse_stages(10.0, "1s:10,5s:0,1s:0,1s:10").unwrap();
        // 10 in the first second, 25 in the ramp down, none while at 0, 5 in the ramp up.
        assert_eq!(s.total(), 10.0 + 25.0 + 5.0);
        let t = s.time_of(36).unwrap().as_secs_f64();
        assert!(t > 7.0 && t < 8.0, "{t}");
        assert_eq!(s.time_of(40), None);
    }

    #[test]
    fn bad_stages_are_refused() {
        assert!(Schedule::parse_stages(0.0, "30s").is_err());
        assert!(Schedule::parse_stages(0.0, "30s:-1").is_err());
        assert!(Schedule::parse_stages(0.0, "30x:5").is_err());
        assert!(Schedule::parse_stages(0.0, "30s:nan").is_err());
        assert!(Schedule::parse_stages(0.0, "").is_err());
        assert!(Schedule::parse_stages(0.0, "1s:1e12").is_err());
    }
}
