//! Normalization of the metrics' proposal, as upstream's horizontal.go: the legacy path
//! (`spec.behavior` unset: downscale stabilization over `--horizontal-pod-autoscaler-downscale-
//! stabilization`, then min/max and the 2x-or-4 scale-up limit) and the behavior path
//! (stabilization windows in both directions, then the Pods/Percent policies over the recorded
//! scale events, selectPolicy Max/Min/Disabled). The per-HPA memory (recommendations and scale
//! events) is a plain value; `now` is an argument.
use coxswain_api::v1::{HpaScalingPolicy, HpaScalingRules};

/// A recommendation (unstabilized) at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recommendation {
    pub replicas: i32,
    pub at_ms: i64,
}

/// A scale event: the change in replicas at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleEvent {
    pub change: i32,
    pub at_ms: i64,
    pub outdated: bool,
}

/// What the controller remembers of one HPA between syncs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memory {
    pub recommendations: Vec<Recommendation>,
    pub up_events: Vec<ScaleEvent>,
    pub down_events: Vec<ScaleEvent>,
}

/// The scaling rules in effect for one direction (defaults filled in).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub window_seconds: i32,
    /// Max, Min or Disabled.
    pub select_policy: String,
    pub policies: Vec<HpaScalingPolicy>,
}

fn policy(t: &str, value: i32, period: i32) -> HpaScalingPolicy {
    HpaScalingPolicy {
        r#type: t.into(),
        value,
        period_seconds: period,
    }
}

impl Rules {
    /// The rules of `r` with upstream's defaults for what is unset; the scale-down window
    /// defaults to the controller's `--horizontal-pod-autoscaler-downscale-stabilization`.
    pub fn from_spec(r: Option<&HpaScalingRules>, up: bool, default_down_window_s: i32) -> Rules {
        let default_policies = if up {
            vec![policy("Pods", 4, 15), policy("Percent", 100, 15)]
        } else {
            vec![policy("Percent", 100, 15)]
        };
        let window_default = if up { 0 } else { default_down_window_s };
        match r {
            None => Rules {
                window_seconds: window_default,
                select_policy: "Max".into(),
                policies: default_policies,
            },
            Some(r) => Rules {
                window_seconds: r.stabilization_window_seconds.unwrap_or(window_default),
                select_policy: r.select_policy.clone().unwrap_or_else(|| "Max".into()),
                policies: if r.policies.is_empty() {
                    default_policies
                } else {
                    r.policies.clone()
                },
            },
        }
    }
}

/// The outcome of stabilization.
#[derive(Debug, Clone, PartialEq)]
pub struct Stabilized {
    pub recommendation: i32,
    pub up_recommendation: i32,
    pub down_recommendation: i32,
    /// The recommendations inside the windows, the new one last.
    pub window: Vec<Recommendation>,
    /// ScaleUpStabilized / ScaleDownStabilized (when it differs from the proposal) and message.
    pub reason: &'static str,
    pub message: &'static str,
}

/// recordInitialRecommendation: the first sync remembers the current replicas.
pub fn record_initial(mem: &mut Memory, current: i32, now_ms: i64) {
    if mem.recommendations.is_empty() {
        mem.recommendations.push(Recommendation {
            replicas: current,
            at_ms: now_ms,
        });
    }
}

fn record(mem: &mut Memory, old: Option<usize>, desired: i32, now_ms: i64) {
    let r = Recommendation {
        replicas: desired,
        at_ms: now_ms,
    };
    match old {
        Some(i) => mem.recommendations[i] = r,
        None => mem.recommendations.push(r),
    }
}

/// stabilizeRecommendation (legacy): the highest recommendation within the downscale window.
pub fn stabilize_legacy(mem: &mut Memory, desired: i32, window_ms: i64, now_ms: i64) -> Stabilized {
    let cutoff = now_ms - window_ms;
    let mut max = desired;
    let mut old = None;
    let mut window = Vec::new();
    for (i, r) in mem.recommendations.iter().enumerate() {
        if r.at_ms < cutoff {
            old = Some(i);
        } else {
            window.push(*r);
            max = max.max(r.replicas);
        }
    }
    record(mem, old, desired, now_ms);
    window.push(Recommendation {
        replicas: desired,
        at_ms: now_ms,
    });
    Stabilized {
        recommendation: max,
        up_recommendation: desired,
        down_recommendation: max,
        window,
        reason: "ScaleDownStabilized",
        message: "recent recommendations were higher than current one, applying the highest recent recommendation",
    }
}

/// stabilizeRecommendationWithBehaviors.
pub fn stabilize_with_behaviors(
    mem: &mut Memory,
    current: i32,
    desired: i32,
    up: &Rules,
    down: &Rules,
    now_ms: i64,
) -> Stabilized {
    let up_cutoff = now_ms - i64::from(up.window_seconds) * 1000;
    let down_cutoff = now_ms - i64::from(down.window_seconds) * 1000;
    let (mut up_rec, mut down_rec) = (desired, desired);
    let mut old = None;
    let mut window = Vec::new();
    for (i, r) in mem.recommendations.iter().enumerate() {
        let (in_up, in_down) = (r.at_ms > up_cutoff, r.at_ms > down_cutoff);
        if in_up {
            up_rec = up_rec.min(r.replicas);
        }
        if in_down {
            down_rec = down_rec.max(r.replicas);
        }
        if in_up || in_down {
            window.push(*r);
        }
        if r.at_ms < up_cutoff && r.at_ms < down_cutoff {
            old = Some(i);
        }
    }
    let mut recommendation = current;
    if recommendation < up_rec {
        recommendation = up_rec;
    }
    if recommendation > down_rec {
        recommendation = down_rec;
    }
    record(mem, old, desired, now_ms);
    window.push(Recommendation {
        replicas: desired,
        at_ms: now_ms,
    });
    let (reason, message) = if desired >= current {
        (
            "ScaleUpStabilized",
            "recent recommendations were lower than current one, applying the lowest recent recommendation",
        )
    } else {
        (
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, applying the highest recent recommendation",
        )
    };
    Stabilized {
        recommendation,
        up_recommendation: up_rec,
        down_recommendation: down_rec,
        window,
        reason,
        message,
    }
}

/// The limit applied after stabilization.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Limited {
    pub desired: i32,
    pub reason: &'static str,
    pub message: &'static str,
    /// Per policy: (policy, period start replicas, proposed bound).
    pub policies: Vec<(HpaScalingPolicy, i32, i32)>,
    pub rate_limit: i32,
    /// The policy whose bound was selected, when the rate limited the change.
    pub limiting_policy: Option<HpaScalingPolicy>,
}

const WITHIN: (&str, &str) = (
    "DesiredWithinRange",
    "the desired count is within the acceptable range",
);

/// convertDesiredReplicasWithRules (legacy): min, max and the scale-up limit max(2x, 4).
pub fn limit_legacy(current: i32, desired: i32, min: i32, max: i32) -> Limited {
    let scale_up_limit = (2.0 * f64::from(current)).max(4.0) as i32;
    let (max_allowed, reason, message) = if max > scale_up_limit {
        (
            scale_up_limit,
            "ScaleUpLimit",
            "the desired replica count is increasing faster than the maximum scale rate",
        )
    } else {
        (
            max,
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        )
    };
    let mut out = Limited {
        desired,
        reason: WITHIN.0,
        message: WITHIN.1,
        rate_limit: scale_up_limit,
        ..Default::default()
    };
    if desired < min {
        out.desired = min;
        out.reason = "TooFewReplicas";
        out.message = "the desired replica count is less than the minimum replica count";
    } else if desired > max_allowed {
        out.desired = max_allowed;
        out.reason = reason;
        out.message = message;
    }
    out
}

/// getReplicasChangePerPeriod.
fn change_in_period(period_s: i32, events: &[ScaleEvent], now_ms: i64) -> i32 {
    let cutoff = now_ms - i64::from(period_s) * 1000;
    events
        .iter()
        .filter(|e| e.at_ms > cutoff)
        .map(|e| e.change)
        .sum()
}

/// calculateScaleUpLimitWithScalingRules / calculateScaleDownLimitWithBehaviors, with each
/// policy's bound.
fn rate_limit(
    current: i32,
    mem: &Memory,
    rules: &Rules,
    up: bool,
    now_ms: i64,
) -> (i32, Vec<(HpaScalingPolicy, i32, i32)>, Option<usize>) {
    if rules.select_policy == "Disabled" {
        return (current, vec![], None);
    }
    let min_change = rules.select_policy == "Min";
    // Scaling up, the largest change is the highest bound; scaling down, the lowest.
    let pick_max = up != min_change;
    let mut result: Option<(i32, usize)> = None;
    let mut per = Vec::new();
    for (i, p) in rules.policies.iter().enumerate() {
        let added = change_in_period(p.period_seconds, &mem.up_events, now_ms);
        let deleted = change_in_period(p.period_seconds, &mem.down_events, now_ms);
        let start = current - added + deleted;
        let proposed = match (p.r#type.as_str(), up) {
            ("Pods", true) => start + p.value,
            ("Pods", false) => start - p.value,
            ("Percent", true) => {
                (f64::from(start) * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32
            }
            ("Percent", false) => (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)) as i32,
            _ => continue,
        };
        per.push((p.clone(), start, proposed));
        let better = match result {
            None => true,
            Some((r, _)) => {
                if pick_max {
                    proposed > r
                } else {
                    proposed < r
                }
            }
        };
        if better {
            result = Some((proposed, i));
        }
    }
    match result {
        Some((r, i)) => (r, per, Some(i)),
        // No policy: upstream's MinInt32/MaxInt32 start value.
        None => (if pick_max { i32::MIN } else { i32::MAX }, per, None),
    }
}

/// convertDesiredReplicasWithBehaviorRate.
#[allow(clippy::too_many_arguments)]
pub fn limit_with_behaviors(
    mem: &Memory,
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
    up: &Rules,
    down: &Rules,
    now_ms: i64,
) -> Limited {
    let mut out = Limited {
        desired,
        reason: WITHIN.0,
        message: WITHIN.1,
        ..Default::default()
    };
    if desired > current {
        let (mut limit, per, idx) = rate_limit(current, mem, up, true, now_ms);
        out.policies = per;
        if limit < current {
            limit = current;
        }
        out.rate_limit = limit;
        let (allowed, reason, message, by_rate) = if max > limit {
            (
                limit,
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate",
                true,
            )
        } else {
            (
                max,
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
                false,
            )
        };
        if desired > allowed {
            out.desired = allowed;
            out.reason = reason;
            out.message = message;
            if by_rate {
                out.limiting_policy = idx.map(|i| up.policies[i].clone());
            }
        }
    } else if desired < current {
        let (mut limit, per, idx) = rate_limit(current, mem, down, false, now_ms);
        out.policies = per;
        if limit > current {
            limit = current;
        }
        out.rate_limit = limit;
        let (allowed, reason, message, by_rate) = if min < limit {
            (
                limit,
                "ScaleDownLimit",
                "the desired replica count is decreasing faster than the maximum scale rate",
                true,
            )
        } else {
            (
                min,
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
                false,
            )
        };
        if desired < allowed {
            out.desired = allowed;
            out.reason = reason;
            out.message = message;
            if by_rate {
                out.limiting_policy = idx.map(|i| down.policies[i].clone());
            }
        }
    }
    out
}

/// storeScaleEvent: remember a successful rescale for the rate policies (behavior path only),
/// reusing an entry older than the longest policy period.
pub fn store_scale_event(
    mem: &mut Memory,
    up: &Rules,
    down: &Rules,
    prev: i32,
    new: i32,
    now_ms: i64,
) {
    let (events, rules, change) = if new > prev {
        (&mut mem.up_events, up, new - prev)
    } else {
        (&mut mem.down_events, down, prev - new)
    };
    let longest = rules
        .policies
        .iter()
        .map(|p| p.period_seconds)
        .max()
        .unwrap_or(0);
    let cutoff = now_ms - i64::from(longest) * 1000;
    let mut old = None;
    for (i, e) in events.iter_mut().enumerate() {
        if e.at_ms < cutoff {
            e.outdated = true;
        }
        if e.outdated {
            old = Some(i);
        }
    }
    let ev = ScaleEvent {
        change,
        at_ms: now_ms,
        outdated: false,
    };
    match old {
        Some(i) => events[i] = ev,
        None => events.push(ev),
    }
}
