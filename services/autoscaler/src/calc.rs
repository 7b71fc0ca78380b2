//! The replica calculator, as upstream's `pkg/controller/podautoscaler/replica_calculator.go`:
//! pure functions from the target's pods and the metric values to a replica proposal. Nothing
//! here reads a clock or the network; `now` and every input are arguments, and each function
//! fills a [`Trace`] that says how it got its answer (for `Autoscaler.Recommend`).
//!
//! Values are milli-units (`Quantity::milli_value`), as upstream's metrics clients return them.
use std::collections::BTreeMap;

use coxswain_api::quantity::Quantity;
use coxswain_api::v1::Pod;

/// One pod's metric value with its sample's timestamp and window (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PodMetric {
    pub value: i64,
    pub timestamp_ms: i64,
    pub window_ms: i64,
}

/// Pod name → metric.
pub type PodMetricsInfo = BTreeMap<String, PodMetric>;

/// What the calculator needs of a pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodInfo {
    pub name: String,
    pub phase: String,
    pub deleted: bool,
    /// The Ready condition: (status == "True", status == "False", lastTransitionTime ms).
    pub ready: Option<ReadyCondition>,
    pub start_ms: Option<i64>,
    /// Containers (and restartable init containers) with their requests in milli-units.
    pub containers: Vec<(String, BTreeMap<String, i64>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyCondition {
    pub is_true: bool,
    pub is_false: bool,
    pub last_transition_ms: i64,
}

impl PodInfo {
    /// From a Pod object.
    pub fn from_pod(p: &Pod) -> PodInfo {
        let meta = p.metadata.clone().unwrap_or_default();
        let status = p.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .find(|c| c.r#type == "Ready")
            .map(|c| ReadyCondition {
                is_true: c.status == "True",
                is_false: c.status == "False",
                last_transition_ms: parse_time_ms(&c.last_transition_time).unwrap_or(0),
            });
        let mut containers = Vec::new();
        if let Some(spec) = &p.spec {
            let restartable = spec
                .init_containers
                .iter()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            for c in spec.containers.iter().chain(restartable) {
                let requests = c
                    .resources
                    .as_ref()
                    .map(|r| {
                        r.requests
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    Quantity::parse(v).map(|q| q.milli_value()).unwrap_or(0),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                containers.push((c.name.clone(), requests));
            }
        }
        PodInfo {
            name: meta.name,
            phase: status.phase,
            deleted: !meta.deletion_timestamp.is_empty(),
            ready,
            start_ms: parse_time_ms(&status.start_time),
            containers,
        }
    }

    /// Running and Ready (podutil.IsPodReady).
    fn running_and_ready(&self) -> bool {
        self.phase == "Running" && self.ready.is_some_and(|r| r.is_true)
    }
}

/// RFC 3339 with optional fractional seconds → milliseconds since the epoch.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    let secs = coxswain_api::time::parse_rfc3339(s)?;
    let mut ms = 0;
    if let Some(dot) = s.find('.') {
        let digits: String = s[dot + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .chain("000".chars())
            .take(3)
            .collect();
        ms = digits.parse().unwrap_or(0);
    }
    Some(secs * 1000 + ms)
}

/// Milliseconds since the epoch → RFC 3339 (fraction only when there is one).
pub fn format_time_ms(ms: i64) -> String {
    let base = coxswain_api::time::format_rfc3339(ms.div_euclid(1000));
    match ms.rem_euclid(1000) {
        0 => base,
        f => format!("{}.{f:03}Z", base.trim_end_matches('Z')),
    }
}

/// A Go-style duration ("15s", "1.5s", "500ms", "1m30s") → milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let d = coxswain_api::duration::parse(s).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// The tolerances around a ratio of 1.0 within which nothing changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    pub down: f64,
    pub up: f64,
}

impl Tolerances {
    pub fn is_within(&self, ratio: f64) -> bool {
        (1.0 - self.down) <= ratio && ratio <= (1.0 + self.up)
    }
}

/// The calculator's settings (the controller's flags).
#[derive(Debug, Clone, Copy)]
pub struct CalcConfig {
    pub cpu_initialization_period_ms: i64,
    pub initial_readiness_delay_ms: i64,
}

impl Default for CalcConfig {
    fn default() -> Self {
        CalcConfig {
            cpu_initialization_period_ms: 300_000,
            initial_readiness_delay_ms: 30_000,
        }
    }
}

/// How a proposal came about.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    pub usage_ratio: Option<f64>,
    pub new_usage_ratio: Option<f64>,
    pub ready_pods: i32,
    /// (pod, reason, stand-in value used in the recomputed ratio).
    pub set_aside: Vec<(String, String, Option<i64>)>,
    pub outcome: String,
}

/// A proposal: replicas, the current value (utilization percent for Utilization targets),
/// the raw value (milli-units; average per pod) and the metrics' timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Proposal {
    pub replicas: i32,
    pub utilization: Option<i32>,
    pub value: i64,
    pub timestamp_ms: i64,
}

#[derive(Default)]
struct Groups {
    ready: i32,
    unready: Vec<(String, &'static str)>,
    missing: Vec<String>,
    ignored: Vec<(String, &'static str)>,
}

/// groupPods: deleted/Failed pods are ignored, Pending ones unready, pods without metrics
/// missing, and — for cpu only — pods unready by the readiness rules.
fn group_pods(
    pods: &[PodInfo],
    metrics: &PodMetricsInfo,
    cpu: bool,
    cfg: &CalcConfig,
    now_ms: i64,
) -> Groups {
    let mut g = Groups::default();
    for pod in pods {
        if pod.deleted {
            g.ignored.push((pod.name.clone(), "deleted"));
            continue;
        }
        if pod.phase == "Failed" {
            g.ignored.push((pod.name.clone(), "failed"));
            continue;
        }
        if pod.phase == "Pending" {
            g.unready.push((pod.name.clone(), "pending"));
            continue;
        }
        let Some(metric) = metrics.get(&pod.name) else {
            g.missing.push(pod.name.clone());
            continue;
        };
        if cpu {
            let unready = match (pod.ready, pod.start_ms) {
                (Some(cond), Some(start)) => {
                    if start + cfg.cpu_initialization_period_ms > now_ms {
                        // Within the initialization period: unready, or no whole metric window
                        // since the last transition.
                        if cond.is_false {
                            Some("unready")
                        } else if metric.timestamp_ms < cond.last_transition_ms + metric.window_ms {
                            Some("initializing")
                        } else {
                            None
                        }
                    } else if cond.is_false
                        && start + cfg.initial_readiness_delay_ms > cond.last_transition_ms
                    {
                        // Unready and never been ready.
                        Some("unready")
                    } else {
                        None
                    }
                }
                _ => Some("unready"),
            };
            if let Some(why) = unready {
                g.unready.push((pod.name.clone(), why));
                continue;
            }
        }
        g.ready += 1;
    }
    g
}

/// calculatePodRequests: the sum of the named container's (or every container's) requests of
/// `resource` per pod; a container without one is an error.
pub fn pod_requests(
    pods: &[PodInfo],
    container: &str,
    resource: &str,
) -> Result<BTreeMap<String, i64>, String> {
    let mut out = BTreeMap::new();
    for pod in pods {
        let mut sum = 0i64;
        for (name, requests) in &pod.containers {
            if container.is_empty() || container == name {
                match requests.get(resource) {
                    Some(v) => sum += v,
                    None => {
                        return Err(format!(
                            "missing request for {resource} in container {name} of Pod {}",
                            pod.name
                        ))
                    }
                }
            }
        }
        out.insert(pod.name.clone(), sum);
    }
    Ok(out)
}

/// GetResourceUtilizationRatio: (ratio, utilization percent, raw average).
pub fn utilization_ratio(
    metrics: &PodMetricsInfo,
    requests: &BTreeMap<String, i64>,
    target: i32,
) -> Result<(f64, i32, i64), String> {
    let (mut total, mut req_total, mut n) = (0i64, 0i64, 0i64);
    for (name, m) in metrics {
        let Some(r) = requests.get(name) else {
            continue;
        };
        total += m.value;
        req_total += r;
        n += 1;
    }
    if req_total == 0 {
        return Err("no metrics returned matched known pods".into());
    }
    let utilization = ((total * 100) / req_total) as i32;
    Ok((
        f64::from(utilization) / f64::from(target),
        utilization,
        total / n,
    ))
}

/// GetMetricUsageRatio: (ratio, average).
pub fn usage_ratio(metrics: &PodMetricsInfo, target: i64) -> (f64, i64) {
    let total: i64 = metrics.values().map(|m| m.value).sum();
    let avg = total / (metrics.len().max(1) as i64);
    (avg as f64 / target as f64, avg)
}

fn ceil(x: f64) -> i32 {
    x.ceil() as i32
}

/// GetResourceReplicas: a Utilization target (`container` empty: whole pods).
#[allow(clippy::too_many_arguments)]
pub fn resource_replicas(
    current: i32,
    target_utilization: i32,
    resource: &str,
    tol: Tolerances,
    pods: &[PodInfo],
    mut metrics: PodMetricsInfo,
    timestamp_ms: i64,
    container: &str,
    cfg: &CalcConfig,
    now_ms: i64,
    trace: &mut Trace,
) -> Result<Proposal, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let g = group_pods(pods, &metrics, resource == "cpu", cfg, now_ms);
    note_groups(trace, &g);
    for (p, _) in g.ignored.iter().chain(g.unready.iter()) {
        metrics.remove(p);
    }
    if metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let requests = pod_requests(pods, container, resource)?;
    let (ratio, utilization, raw) = utilization_ratio(&metrics, &requests, target_utilization)?;
    trace.usage_ratio = Some(ratio);
    let done = |replicas| Proposal {
        replicas,
        utilization: Some(utilization),
        value: raw,
        timestamp_ms,
    };
    let scale_up_with_unready = !g.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && g.missing.is_empty() {
        if tol.is_within(ratio) {
            trace.outcome = "within tolerance".into();
            return Ok(done(current));
        }
        trace.outcome = "scaled by ratio over ready pods".into();
        return Ok(done(ceil(ratio * f64::from(g.ready))));
    }
    if !g.missing.is_empty() {
        if ratio < 1.0 {
            // Scale-down: missing pods use 100% of their request (or the target when above).
            let fallback = i64::from(target_utilization.max(100));
            for p in &g.missing {
                let v = requests.get(p).copied().unwrap_or(0) * fallback / 100;
                metrics.insert(
                    p.clone(),
                    PodMetric {
                        value: v,
                        ..Default::default()
                    },
                );
                stand_in(trace, p, v);
            }
        } else if ratio > 1.0 {
            for p in &g.missing {
                metrics.insert(p.clone(), PodMetric::default());
                stand_in(trace, p, 0);
            }
        }
    }
    if scale_up_with_unready {
        for (p, _) in &g.unready {
            metrics.insert(p.clone(), PodMetric::default());
            stand_in(trace, p, 0);
        }
    }
    let (new_ratio, _, _) = utilization_ratio(&metrics, &requests, target_utilization)?;
    trace.new_usage_ratio = Some(new_ratio);
    finish(current, ratio, new_ratio, metrics.len(), tol, trace).map(done)
}

/// The common end of the per-pod calculations once stand-ins are in.
fn finish(
    current: i32,
    ratio: f64,
    new_ratio: f64,
    counted: usize,
    tol: Tolerances,
    trace: &mut Trace,
) -> Result<i32, String> {
    if tol.is_within(new_ratio) {
        trace.outcome = "recomputed ratio within tolerance".into();
        return Ok(current);
    }
    if (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0) {
        trace.outcome = "recomputed ratio would flip the scale direction".into();
        return Ok(current);
    }
    let n = ceil(new_ratio * counted as f64);
    if (new_ratio < 1.0 && n > current) || (new_ratio > 1.0 && n < current) {
        trace.outcome = "the pods counted would flip the scale direction".into();
        return Ok(current);
    }
    trace.outcome = "scaled by the recomputed ratio".into();
    Ok(n)
}

fn note_groups(trace: &mut Trace, g: &Groups) {
    trace.ready_pods = g.ready;
    for (p, why) in g.ignored.iter().chain(g.unready.iter()) {
        trace.set_aside.push((p.clone(), (*why).to_string(), None));
    }
    for p in &g.missing {
        trace.set_aside.push((p.clone(), "missing".into(), None));
    }
}

fn stand_in(trace: &mut Trace, pod: &str, v: i64) {
    if let Some(e) = trace.set_aside.iter_mut().find(|e| e.0 == pod) {
        e.2 = Some(v);
    }
}

/// calcPlainMetricReplicas: an AverageValue target over the pods (resource AverageValue with
/// `cpu` deciding the readiness rules, and Pods metrics with `cpu` false).
#[allow(clippy::too_many_arguments)]
pub fn plain_replicas(
    current: i32,
    target: i64,
    cpu: bool,
    tol: Tolerances,
    pods: &[PodInfo],
    mut metrics: PodMetricsInfo,
    timestamp_ms: i64,
    cfg: &CalcConfig,
    now_ms: i64,
    trace: &mut Trace,
) -> Result<Proposal, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let g = group_pods(pods, &metrics, cpu, cfg, now_ms);
    note_groups(trace, &g);
    for (p, _) in g.ignored.iter().chain(g.unready.iter()) {
        metrics.remove(p);
    }
    if metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let (ratio, usage) = usage_ratio(&metrics, target);
    trace.usage_ratio = Some(ratio);
    let done = |replicas| Proposal {
        replicas,
        utilization: None,
        value: usage,
        timestamp_ms,
    };
    let scale_up_with_unready = !g.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && g.missing.is_empty() {
        if tol.is_within(ratio) {
            trace.outcome = "within tolerance".into();
            return Ok(done(current));
        }
        trace.outcome = "scaled by ratio over ready pods".into();
        return Ok(done(ceil(ratio * f64::from(g.ready))));
    }
    if !g.missing.is_empty() {
        // Scale-down: missing pods use exactly the target; scale-up: nothing.
        let v = if ratio < 1.0 { target } else { 0 };
        for p in &g.missing {
            metrics.insert(
                p.clone(),
                PodMetric {
                    value: v,
                    ..Default::default()
                },
            );
            stand_in(trace, p, v);
        }
    }
    if scale_up_with_unready {
        for (p, _) in &g.unready {
            metrics.insert(p.clone(), PodMetric::default());
            stand_in(trace, p, 0);
        }
    }
    let (new_ratio, _) = usage_ratio(&metrics, target);
    trace.new_usage_ratio = Some(new_ratio);
    finish(current, ratio, new_ratio, metrics.len(), tol, trace).map(done)
}

/// getReadyPodsCount: Running and Ready pods.
fn ready_pods_count(pods: &[PodInfo]) -> Result<i32, String> {
    if pods.is_empty() {
        return Err(
            "unable to calculate ready pods: no pods returned by selector while calculating replica count"
                .into(),
        );
    }
    Ok(pods.iter().filter(|p| p.running_and_ready()).count() as i32)
}

/// getUsageRatioReplicaCount: a Value target of an Object or External metric.
pub fn usage_ratio_replicas(
    current: i32,
    ratio: f64,
    tol: Tolerances,
    pods: &[PodInfo],
    trace: &mut Trace,
) -> Result<i32, String> {
    trace.usage_ratio = Some(ratio);
    if current != 0 {
        if tol.is_within(ratio) {
            trace.outcome = "within tolerance".into();
            return Ok(current);
        }
        let ready = ready_pods_count(pods)?;
        trace.ready_pods = ready;
        trace.outcome = "scaled by ratio over ready pods".into();
        Ok(ceil(ratio * f64::from(ready)))
    } else {
        trace.outcome = "scaled from zero by the ratio".into();
        Ok(ceil(ratio))
    }
}

/// GetObjectPerPodMetricReplicas / GetExternalPerPodMetricReplicas: an AverageValue target of
/// an Object or External metric. Returns (replicas, usage per pod).
pub fn per_pod_replicas(
    status_replicas: i32,
    usage: i64,
    target_average: i64,
    tol: Tolerances,
    trace: &mut Trace,
) -> (i32, i64) {
    let mut replicas = status_replicas;
    let ratio = usage as f64 / (target_average as f64 * f64::from(replicas));
    trace.usage_ratio = Some(ratio);
    if tol.is_within(ratio) {
        trace.outcome = "within tolerance".into();
    } else {
        replicas = ceil(usage as f64 / target_average as f64);
        trace.outcome = "usage divided by the target average".into();
    }
    (
        replicas,
        (usage as f64 / f64::from(status_replicas)).ceil() as i64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_time_ms("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(parse_time_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_time_ms("nope"), None);
        assert_eq!(format_time_ms(1500), "1970-01-01T00:00:01.500Z");
        assert_eq!(format_time_ms(1000), "1970-01-01T00:00:01Z");
        assert_eq!(parse_duration_ms("15s"), Some(15_000));
        assert_eq!(parse_duration_ms("1.5s"), Some(1_500));
        assert_eq!(parse_duration_ms("1m30s"), Some(90_000));
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("x"), None);
    }

    #[test]
    fn tolerance_bounds_are_inclusive() {
        let t = Tolerances { down: 0.1, up: 0.1 };
        assert!(t.is_within(1.1) && t.is_within(0.9) && t.is_within(1.0));
        assert!(!t.is_within(1.11) && !t.is_within(0.89));
    }
}
