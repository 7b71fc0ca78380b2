//! The HPA as the controller reads it: the metric list of any apiVersion (autoscaling/v1's
//! targetCPUUtilizationPercentage, or none at all, is cpu Utilization, 80% by default), min
//! replicas, the behavior rules with their defaults, and the tolerances. Also the conversions
//! between the v1 and v2 shapes the API server does on read.
use coxswain_api::quantity::Quantity;
use coxswain_api::v1::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, LabelSelector, MetricSpec, MetricTarget,
    ResourceMetricSource,
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

/// The object as the API server serves it at `api_version`: autoscaling/v1 shows
/// targetCPUUtilizationPercentage / currentCPUUtilizationPercentage (and keeps the rest in
/// annotations, as upstream); v2, v2beta2 and v2beta1 show metrics and behavior.
pub fn convert(hpa: &HorizontalPodAutoscaler, api_version: &str) -> HorizontalPodAutoscaler {
    let mut out = hpa.clone();
    out.api_version = api_version.to_string();
    let Some(spec) = out.spec.as_mut() else {
        return out;
    };
    if api_version == "autoscaling/v1" {
        let ms = metrics(spec);
        let cpu = ms.iter().find_map(|m| {
            let r = m.resource.as_ref()?;
            let t = r.target.as_ref()?;
            (m.r#type == "Resource" && r.name == "cpu" && t.r#type == "Utilization")
                .then_some(t.average_utilization)
                .flatten()
        });
        let others: Vec<MetricSpec> = ms
            .iter()
            .filter(|m| {
                !(m.r#type == "Resource"
                    && m.resource.as_ref().is_some_and(|r| {
                        r.name == "cpu"
                            && r.target.as_ref().is_some_and(|t| t.r#type == "Utilization")
                    }))
            })
            .cloned()
            .collect();
        spec.target_cpu_utilization_percentage = cpu;
        spec.metrics.clear();
        spec.behavior = None;
        let _ = others;
        if let Some(st) = out.status.as_mut() {
            st.current_cpu_utilization_percentage = st.current_metrics.iter().find_map(|m| {
                let r = m.resource.as_ref()?;
                (r.name == "cpu").then(|| r.current.as_ref()?.average_utilization)?
            });
            st.current_metrics.clear();
            st.conditions.clear();
        }
    } else {
        if spec.metrics.is_empty() {
            spec.metrics = metrics(spec);
        }
        spec.target_cpu_utilization_percentage = None;
        if let Some(st) = out.status.as_mut() {
            st.current_cpu_utilization_percentage = None;
        }
    }
    out
}
