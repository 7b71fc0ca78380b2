//! One reconcile of one HPA as a pure function (upstream's `reconcileAutoscaler`,
//! `computeReplicasForMetrics` and the `computeStatusFor*Metric` functions): from the HPA, the
//! target's scale, the selected pods, the fetched metric values, the controller's memory and
//! `now` to a [`Decision`] — desired replicas, per-metric proposals, the stabilization and
//! limits, the conditions, the Events and the status, with their reasons. The controller loop
//! and `Autoscaler.Recommend` both call [`decide`]; only the loop writes anything.
use coxswain_api::selector::LabelSelector;
use coxswain_api::v1::{
    Condition, Decision, DecisionEvent, ExternalMetricValue, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerStatus, MetricProposal, MetricSpec, MetricStatus, MetricValue,
    PodMetrics, PolicyLimit, ScaleLimit, SetAsidePod, Stabilization, TimedReplicas,
};

use crate::behavior::{self, Memory, Rules};
use crate::calc::{format_time_ms, CalcConfig, PodInfo, Tolerances, Trace};
use crate::metric::{compute_for_metric, Failure};
use crate::spec;

/// The controller's settings that shape a decision.
#[derive(Debug, Clone, Copy)]
pub struct DecideConfig {
    pub tolerance: f64,
    pub calc: CalcConfig,
    pub downscale_stabilization_ms: i64,
}

impl Default for DecideConfig {
    fn default() -> Self {
        DecideConfig {
            tolerance: 0.1,
            calc: CalcConfig::default(),
            downscale_stabilization_ms: 300_000,
        }
    }
}

/// The target's scale subresource.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scale {
    pub spec_replicas: i32,
    pub status_replicas: i32,
    pub selector: String,
}

/// What was fetched for one metric (aligned with the evaluated metric list). `Err` holds the
/// metrics client's error.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum MetricInput {
    Resource(Result<Vec<PodMetrics>, String>),
    Pods(Result<Vec<MetricValue>, String>),
    Object(Result<MetricValue, String>),
    External(Result<Vec<ExternalMetricValue>, String>),
    /// Nothing to fetch (an unknown type, or a spec error).
    None,
}

/// Everything a decision reads.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The scale, or why it could not be read (FailedGetScale).
    pub scale: Result<Scale, String>,
    /// The pods the selector matches.
    pub pods: Vec<PodInfo>,
    pub metrics: Vec<MetricInput>,
    pub now_ms: i64,
    /// The HPAs ("ns/name") whose targets' selectors select any of these pods, this one
    /// included; more than one is upstream's AmbiguousSelector. Empty: not checked.
    pub controlling: Vec<String>,
}

/// The conditions as the controller edits them (setCondition).
struct Conds<'a> {
    list: Vec<Condition>,
    now: &'a str,
}

impl Conds<'_> {
    fn set(&mut self, type_: &str, status: bool, reason: &str, message: impl Into<String>) {
        let status = if status { "True" } else { "False" };
        let message = message.into();
        match self.list.iter_mut().find(|c| c.r#type == type_) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = self.now.to_string();
                }
                c.status = status.into();
                c.reason = reason.into();
                c.message = message;
            }
            None => self.list.push(Condition {
                r#type: type_.into(),
                status: status.into(),
                reason: reason.into(),
                message,
                last_transition_time: self.now.to_string(),
                ..Default::default()
            }),
        }
    }
}

fn event(type_: &str, reason: &str, message: impl Into<String>) -> DecisionEvent {
    DecisionEvent {
        r#type: type_.into(),
        reason: reason.into(),
        message: message.into(),
    }
}

/// Decide. `mem` is updated as upstream updates its memory during a reconcile (the initial and
/// the new recommendation); scale events are stored by [`record_rescale`] once the scale write
/// succeeded.
pub fn decide(
    hpa: &HorizontalPodAutoscaler,
    inputs: &Inputs,
    mem: &mut Memory,
    cfg: &DecideConfig,
) -> Decision {
    let now_ms = inputs.now_ms;
    let now = coxswain_api::time::format_rfc3339(now_ms.div_euclid(1000));
    let meta = hpa.metadata.clone().unwrap_or_default();
    let hspec = hpa.spec.clone().unwrap_or_default();
    let status_in = hpa.status.clone().unwrap_or_default();
    let target = hspec.scale_target_ref.clone().unwrap_or_default();
    let min = spec::min_replicas(&hspec);
    let max = hspec.max_replicas;
    let mut d = Decision {
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        time: format_time_ms(now_ms),
        reference: format!("{}/{}", target.kind, target.name),
        min_replicas: min,
        max_replicas: max,
        metric_desired_replicas: -1,
        ..Default::default()
    };
    let mut conds = Conds {
        list: status_in.conditions.clone(),
        now: &now,
    };
    let reference = format!("{}/{}/{}", target.kind, meta.namespace, target.name);
    let mut status = HorizontalPodAutoscalerStatus {
        observed_generation: (meta.generation != 0).then_some(meta.generation),
        last_scale_time: status_in.last_scale_time.clone(),
        current_replicas: status_in.current_replicas,
        desired_replicas: status_in.desired_replicas,
        current_metrics: status_in.current_metrics.clone(),
        ..Default::default()
    };

    let scale = match &inputs.scale {
        Ok(s) => s.clone(),
        Err(e) => {
            d.events.push(event("Warning", "FailedGetScale", e.clone()));
            conds.set(
                "AbleToScale",
                false,
                "FailedGetScale",
                format!("the HPA controller was unable to get the target's current scale: {e}"),
            );
            d.path = "FailedGetScale".into();
            d.error = format!("failed to query scale subresource for {reference}: {e}");
            d.desired_replicas = status.desired_replicas;
            status.conditions = conds.list;
            d.conditions = status.conditions.clone();
            d.status = Some(status);
            return d;
        }
    };
    conds.set(
        "AbleToScale",
        true,
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale",
    );
    let current = scale.spec_replicas;
    d.current_replicas = current;
    d.status_replicas = scale.status_replicas;
    behavior::record_initial(mem, current, now_ms);

    let mut desired = 0;
    let mut rescale = true;
    let mut rescale_reason = String::new();
    let mut metric_statuses: Vec<MetricStatus> = Vec::new();
    if current == 0 && min != 0 {
        desired = 0;
        rescale = false;
        d.path = "ScalingDisabled".into();
        conds.set(
            "ScalingActive",
            false,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
        );
    } else if current > max {
        d.path = "AboveMax".into();
        rescale_reason = "Current number of replicas above Spec.MaxReplicas".into();
        desired = max;
    } else if current < min {
        d.path = "BelowMin".into();
        rescale_reason = "Current number of replicas below Spec.MinReplicas".into();
        desired = min;
    } else {
        d.path = "Metrics".into();
        let specs = spec::metrics(&hspec);
        let tol = spec::tolerances(&hspec, cfg.tolerance);
        let (proposed, metric_name, statuses, err) = compute_for_metrics(
            &specs,
            &meta.namespace,
            &scale,
            inputs,
            tol,
            cfg,
            &mut conds,
            &mut d,
        );
        metric_statuses = statuses;
        d.metric_desired_replicas = proposed;
        d.metric_name = metric_name.clone();
        if proposed == -1 {
            let err = err.unwrap_or_default();
            status.current_replicas = current;
            status.current_metrics = metric_statuses;
            status.conditions = conds.list;
            d.events.push(event(
                "Warning",
                "FailedComputeMetricsReplicas",
                err.clone(),
            ));
            d.path = "FailedComputeMetricsReplicas".into();
            d.error = format!(
                "failed to compute desired number of replicas based on listed metrics for {reference}: {err}"
            );
            d.desired_replicas = status.desired_replicas;
            d.conditions = status.conditions.clone();
            d.status = Some(status);
            return d;
        }
        if let Some(e) = err {
            d.error = e;
        }
        let mut rescale_metric = String::new();
        if proposed > desired {
            desired = proposed;
            rescale_metric = metric_name;
        }
        if desired > current {
            rescale_reason = format!("{rescale_metric} above target");
        }
        if desired < current {
            rescale_reason = "All metrics below target".into();
        }
        desired = match spec::rules(&hspec, (cfg.downscale_stabilization_ms / 1000) as i32) {
            None => normalize_legacy(
                mem, current, desired, min, max, cfg, now_ms, &mut conds, &mut d,
            ),
            Some((up, down)) => normalize_with_behaviors(
                mem, current, desired, min, max, &up, &down, now_ms, &mut conds, &mut d,
            ),
        };
        rescale = desired != current;
    }

    if rescale {
        conds.set(
            "AbleToScale",
            true,
            "SucceededRescale",
            format!("the HPA controller was able to update the target scale to {desired}"),
        );
        d.events.push(event(
            "Normal",
            "SuccessfulRescale",
            format!("New size: {desired}; reason: {rescale_reason}"),
        ));
        status.last_scale_time = now.clone();
    } else {
        desired = current;
    }
    d.rescale = rescale;
    d.rescale_reason = rescale_reason;
    d.desired_replicas = desired;
    status.current_replicas = current;
    status.desired_replicas = desired;
    if hspec.metrics.is_empty() {
        status.current_cpu_utilization_percentage = metric_statuses.iter().find_map(|m| {
            let r = m.resource.as_ref()?;
            (r.name == "cpu").then(|| r.current.as_ref()?.average_utilization)?
        });
    }
    status.current_metrics = metric_statuses;
    status.conditions = conds.list;
    d.conditions = status.conditions.clone();
    d.status = Some(status);
    d
}

/// The scale write failed: the decision as upstream then records it.
pub fn fail_rescale(d: &mut Decision, error: &str, now: &str) {
    d.events.retain(|e| e.reason != "SuccessfulRescale");
    d.events.push(event(
        "Warning",
        "FailedRescale",
        format!(
            "New size: {}; reason: {}; error: {error}",
            d.desired_replicas, d.rescale_reason
        ),
    ));
    let mut conds = Conds {
        list: std::mem::take(&mut d.conditions),
        now,
    };
    conds.set(
        "AbleToScale",
        false,
        "FailedUpdateScale",
        format!("the HPA controller was unable to update the target scale: {error}"),
    );
    d.conditions = conds.list;
    if let Some(st) = d.status.as_mut() {
        st.conditions = d.conditions.clone();
    }
    d.error = format!("failed to rescale {}: {error}", d.reference);
}

/// After a successful scale write: remember the scale event for the rate policies.
pub fn record_rescale(
    hpa: &HorizontalPodAutoscaler,
    d: &Decision,
    mem: &mut Memory,
    cfg: &DecideConfig,
    now_ms: i64,
) {
    let hspec = hpa.spec.clone().unwrap_or_default();
    if let Some((up, down)) = spec::rules(&hspec, (cfg.downscale_stabilization_ms / 1000) as i32) {
        behavior::store_scale_event(
            mem,
            &up,
            &down,
            d.current_replicas,
            d.desired_replicas,
            now_ms,
        );
    }
}

fn timed(r: &behavior::Recommendation) -> TimedReplicas {
    TimedReplicas {
        replicas: r.replicas,
        time: format_time_ms(r.at_ms),
    }
}

#[allow(clippy::too_many_arguments)]
fn normalize_legacy(
    mem: &mut Memory,
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
    cfg: &DecideConfig,
    now_ms: i64,
    conds: &mut Conds,
    d: &mut Decision,
) -> i32 {
    let s = behavior::stabilize_legacy(mem, desired, cfg.downscale_stabilization_ms, now_ms);
    let reason = if s.recommendation != desired {
        conds.set("AbleToScale", true, s.reason, s.message);
        s.reason
    } else {
        conds.set(
            "AbleToScale",
            true,
            "ReadyForNewScale",
            "recommended size matches current size",
        );
        "ReadyForNewScale"
    };
    d.stabilization = Some(Stabilization {
        mode: "legacy".into(),
        up_window_seconds: 0,
        down_window_seconds: (cfg.downscale_stabilization_ms / 1000) as i32,
        window: s.window.iter().map(timed).collect(),
        up_recommendation: s.up_recommendation,
        down_recommendation: s.down_recommendation,
        recommendation: s.recommendation,
        reason: reason.into(),
    });
    let l = behavior::limit_legacy(current, s.recommendation, min, max);
    conds.set(
        "ScalingLimited",
        l.desired != s.recommendation,
        l.reason,
        l.message,
    );
    d.limit = Some(ScaleLimit {
        reason: l.reason.into(),
        message: l.message.into(),
        rate_limit: l.rate_limit,
        limiting_policy: if l.reason == "ScaleUpLimit" {
            "max(2x current, 4) (no behavior)".into()
        } else {
            String::new()
        },
        ..Default::default()
    });
    l.desired
}

#[allow(clippy::too_many_arguments)]
fn normalize_with_behaviors(
    mem: &mut Memory,
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
    up: &Rules,
    down: &Rules,
    now_ms: i64,
    conds: &mut Conds,
    d: &mut Decision,
) -> i32 {
    let s = behavior::stabilize_with_behaviors(mem, current, desired, up, down, now_ms);
    let reason = if s.recommendation != desired {
        conds.set("AbleToScale", true, s.reason, s.message);
        s.reason
    } else {
        conds.set(
            "AbleToScale",
            true,
            "ReadyForNewScale",
            "recommended size matches current size",
        );
        "ReadyForNewScale"
    };
    d.stabilization = Some(Stabilization {
        mode: "behavior".into(),
        up_window_seconds: up.window_seconds,
        down_window_seconds: down.window_seconds,
        window: s.window.iter().map(timed).collect(),
        up_recommendation: s.up_recommendation,
        down_recommendation: s.down_recommendation,
        recommendation: s.recommendation,
        reason: reason.into(),
    });
    let l =
        behavior::limit_with_behaviors(mem, current, s.recommendation, min, max, up, down, now_ms);
    conds.set(
        "ScalingLimited",
        l.desired != s.recommendation,
        l.reason,
        l.message,
    );
    let rules = if s.recommendation > current { up } else { down };
    d.limit = Some(ScaleLimit {
        reason: l.reason.into(),
        message: l.message.into(),
        select_policy: rules.select_policy.clone(),
        policies: l
            .policies
            .iter()
            .map(|(p, start, proposed)| PolicyLimit {
                r#type: p.r#type.clone(),
                value: p.value,
                period_seconds: p.period_seconds,
                period_start_replicas: *start,
                proposed: *proposed,
            })
            .collect(),
        rate_limit: l.rate_limit,
        limiting_policy: l
            .limiting_policy
            .map(|p| format!("{} {} per {}s", p.r#type, p.value, p.period_seconds))
            .unwrap_or_else(|| {
                if l.reason.ends_with("Limit") && rules.select_policy == "Disabled" {
                    "selectPolicy Disabled".into()
                } else {
                    String::new()
                }
            }),
    });
    l.desired
}

/// computeReplicasForMetrics: (largest proposal or -1, its metric name, statuses, error).
#[allow(clippy::too_many_arguments)]
fn compute_for_metrics(
    specs: &[MetricSpec],
    ns: &str,
    scale: &Scale,
    inputs: &Inputs,
    tol: Tolerances,
    cfg: &DecideConfig,
    conds: &mut Conds,
    d: &mut Decision,
) -> (i32, String, Vec<MetricStatus>, Option<String>) {
    // validateAndParseSelector
    if scale.selector.is_empty() {
        d.events
            .push(event("Warning", "SelectorRequired", "selector is required"));
        conds.set(
            "ScalingActive",
            false,
            "InvalidSelector",
            "the HPA target's scale is missing a selector",
        );
        return (
            -1,
            String::new(),
            vec![],
            Some("selector is required".into()),
        );
    }
    if let Err(e) = LabelSelector::parse(&scale.selector) {
        let msg =
            format!("couldn't convert selector into a corresponding internal selector object: {e}");
        d.events
            .push(event("Warning", "InvalidSelector", msg.clone()));
        conds.set("ScalingActive", false, "InvalidSelector", msg.clone());
        return (-1, String::new(), vec![], Some(msg));
    }
    if inputs.controlling.len() > 1 {
        let msg = format!(
            "pods by selector {} are controlled by multiple HPAs: [{}]",
            scale.selector,
            inputs.controlling.join(" ")
        );
        d.events
            .push(event("Warning", "AmbiguousSelector", msg.clone()));
        conds.set("ScalingActive", false, "AmbiguousSelector", msg);
        return (
            -1,
            String::new(),
            vec![],
            Some("selector is ambiguous".into()),
        );
    }
    let mut statuses = vec![MetricStatus::default(); specs.len()];
    let mut replicas = 0;
    let mut metric = String::new();
    let mut invalid = 0;
    let mut first: Option<(Failure, String)> = None;
    for (i, m) in specs.iter().enumerate() {
        let input = inputs.metrics.get(i).cloned().unwrap_or(MetricInput::None);
        let mut trace = Trace::default();
        let r = compute_for_metric(
            m,
            scale,
            &input,
            inputs,
            ns,
            tol,
            cfg,
            &mut trace,
            &mut statuses[i],
        );
        let mut p = MetricProposal {
            index: i as i32,
            r#type: m.r#type.clone(),
            usage_ratio: trace.usage_ratio,
            new_usage_ratio: trace.new_usage_ratio,
            ready_pods: trace.ready_pods,
            set_aside: trace
                .set_aside
                .iter()
                .map(|(n, r, v)| SetAsidePod {
                    name: n.clone(),
                    reason: r.clone(),
                    stand_in: *v,
                })
                .collect(),
            outcome: trace.outcome.clone(),
            tolerance_down: tol.down,
            tolerance_up: tol.up,
            ..Default::default()
        };
        match r {
            Ok((proposal, name)) => {
                p.replicas = Some(proposal.replicas);
                p.metric_name = name.clone();
                p.current = Some(statuses[i].clone());
                p.timestamp = format_time_ms(proposal.timestamp_ms);
                if replicas == 0 || proposal.replicas > replicas {
                    replicas = proposal.replicas;
                    metric = name;
                }
            }
            Err((f, wrapped)) => {
                d.events.push(event("Warning", f.reason, f.error.clone()));
                p.error = wrapped.clone();
                p.error_reason = f.reason.into();
                if invalid == 0 {
                    first = Some((f, wrapped));
                }
                invalid += 1;
            }
        }
        d.metrics.push(p);
    }
    let err = first.as_ref().map(|(_, w)| {
        format!(
            "invalid metrics ({invalid} invalid out of {}), first error is: {w}",
            specs.len()
        )
    });
    if invalid >= specs.len() || (invalid > 0 && replicas < scale.spec_replicas) {
        if let Some((f, _)) = &first {
            conds.set(
                "ScalingActive",
                false,
                f.reason,
                format!(
                    "the HPA was unable to compute the replica count: {}",
                    f.error
                ),
            );
        }
        return (-1, String::new(), statuses, err);
    }
    conds.set(
        "ScalingActive",
        true,
        "ValidMetricFound",
        format!("the HPA was able to successfully calculate a replica count from {metric}"),
    );
    (replicas, metric, statuses, err)
}
