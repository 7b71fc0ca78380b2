//! The HPA as the controller reads it: the metric list of any apiVersion (autoscaling/v1's
//! targetCPUUtilizationPercentage, or none at all, is cpu Utilization, 80% by default), min
//! replicas, the behavior rules with their defaults, and the tolerances.
use coxswain_api::quantity::Quantity;
use coxswain_api::v1::{
    HorizontalPodAutoscalerSpec, LabelSelector, MetricSpec, MetricTarget, ResourceMetricSource,
};

use crate::behavior::Rules;
use crate::calc::Tolerances;

/// The default CPU target when none is given.
pub const DEFAULT_CPU_UTILIZATION: i32 = 80;

/// A cpu Utilization metric.
pub fn cpu_utilization_metric(percent: i32) -> MetricSpec {
    MetricSpec {
        r#type: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: "cpu".into(),
            target: Some(MetricTarget {
                r#type: "Utilization".into(),
                average_utilization: Some(percent),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// The metrics the controller evaluates (v2 shape whatever the stored apiVersion).
pub fn metrics(spec: &HorizontalPodAutoscalerSpec) -> Vec<MetricSpec> {
    if !spec.metrics.is_empty() {
        return spec.metrics.clone();
    }
    vec![cpu_utilization_metric(
        spec.target_cpu_utilization_percentage
            .unwrap_or(DEFAULT_CPU_UTILIZATION),
    )]
}

pub fn min_replicas(spec: &HorizontalPodAutoscalerSpec) -> i32 {
    spec.min_replicas.unwrap_or(1)
}

/// The behavior rules, None when spec.behavior is unset (the legacy path).
pub fn rules(
    spec: &HorizontalPodAutoscalerSpec,
    default_down_window_s: i32,
) -> Option<(Rules, Rules)> {
    let b = spec.behavior.as_ref()?;
    Some((
        Rules::from_spec(b.scale_up.as_ref(), true, default_down_window_s),
        Rules::from_spec(b.scale_down.as_ref(), false, default_down_window_s),
    ))
}

/// tolerancesForHpa: the controller's tolerance, replaced per direction by the behavior's
/// `tolerance` fields.
pub fn tolerances(spec: &HorizontalPodAutoscalerSpec, default: f64) -> Tolerances {
    let mut t = Tolerances {
        down: default,
        up: default,
    };
    let q = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| Quantity::parse(s).ok())
            .map(|q| q.nano_value() as f64 / 1e9)
    };
    if let Some(b) = &spec.behavior {
        if let Some(v) = b.scale_down.as_ref().and_then(|r| q(&r.tolerance)) {
            t.down = v;
        }
        if let Some(v) = b.scale_up.as_ref().and_then(|r| q(&r.tolerance)) {
            t.up = v;
        }
    }
    t
}

/// Go's `%+v` of a `*metav1.LabelSelector`, as upstream puts it in metric names.
pub fn go_selector(sel: Option<&LabelSelector>) -> String {
    let Some(s) = sel else {
        return "nil".into();
    };
    let labels: String = s
        .match_labels
        .iter()
        .map(|(k, v)| format!("{k}: {v},"))
        .collect();
    let exprs: String = s
        .match_expressions
        .iter()
        .map(|e| {
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                e.key,
                e.operator,
                e.values.join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"
    )
}
