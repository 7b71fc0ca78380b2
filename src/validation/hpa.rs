//! HorizontalPodAutoscaler specs (autoscaling/v2).
use super::*;

pub(super) fn validate_hpa_spec(e: &mut Errs, spec: &v1::HorizontalPodAutoscalerSpec) {
    match &spec.scale_target_ref {
        None => {
            required(e, "spec.scaleTargetRef.kind", "");
            required(e, "spec.scaleTargetRef.name", "");
        }
        Some(r) => {
            if r.kind.is_empty() {
                required(e, "spec.scaleTargetRef.kind", "");
            }
            if r.name.is_empty() {
                required(e, "spec.scaleTargetRef.name", "");
            } else {
                check(
                    e,
                    "spec.scaleTargetRef.name",
                    &r.name,
                    is_dns1123_subdomain(&r.name),
                );
            }
        }
    }
    let min = spec.min_replicas.unwrap_or(1);
    if min < 1 {
        invalid(
            e,
            "spec.minReplicas",
            min,
            "must be greater than or equal to 1",
        );
    }
    if spec.max_replicas < 1 {
        invalid(
            e,
            "spec.maxReplicas",
            spec.max_replicas,
            "must be greater than 0",
        );
    } else if spec.max_replicas < min {
        invalid(
            e,
            "spec.maxReplicas",
            spec.max_replicas,
            "must be greater than or equal to `minReplicas`",
        );
    }
    if let Some(t) = spec.target_cpu_utilization_percentage {
        if t < 1 {
            invalid(
                e,
                "spec.targetCPUUtilizationPercentage",
                t,
                "must be greater than 0",
            );
        }
    }
    for (i, m) in spec.metrics.iter().enumerate() {
        let p = format!("spec.metrics[{i}]");
        let (expected, target) = match m.r#type.as_str() {
            "Resource" => {
                if let Some(r) = &m.resource {
                    if r.name.is_empty() {
                        required(e, format!("{p}.resource.name"), "");
                    }
                }
                ("resource", m.resource.as_ref().map(|r| r.target.as_ref()))
            }
            "ContainerResource" => {
                if let Some(r) = &m.container_resource {
                    if r.container.is_empty() {
                        required(e, format!("{p}.containerResource.container"), "");
                    }
                }
                (
                    "containerResource",
                    m.container_resource.as_ref().map(|r| r.target.as_ref()),
                )
            }
            "Pods" => ("pods", m.pods.as_ref().map(|r| r.target.as_ref())),
            "Object" => ("object", m.object.as_ref().map(|r| r.target.as_ref())),
            "External" => ("external", m.external.as_ref().map(|r| r.target.as_ref())),
            other => {
                unsupported(
                    e,
                    format!("{p}.type"),
                    other,
                    &[
                        "ContainerResource",
                        "External",
                        "Object",
                        "Pods",
                        "Resource",
                    ],
                );
                continue;
            }
        };
        let Some(target) = target else {
            required(
                e,
                format!("{p}.{expected}"),
                &format!(
                    "must populate information for the given metric source (type {})",
                    m.r#type
                ),
            );
            continue;
        };
        let tp = format!("{p}.{expected}.target");
        let Some(t) = target else {
            required(e, tp, "");
            continue;
        };
        match t.r#type.as_str() {
            "Utilization" => match t.average_utilization {
                None => required(
                    e,
                    format!("{tp}.averageUtilization"),
                    "must set averageUtilization when type is Utilization",
                ),
                Some(u) if u <= 0 => invalid(
                    e,
                    format!("{tp}.averageUtilization"),
                    u,
                    "must be greater than 0",
                ),
                _ => {}
            },
            "Value" => {
                if t.value.is_empty() {
                    required(
                        e,
                        format!("{tp}.value"),
                        "must set value when type is Value",
                    );
                } else if let Some(q) = validate_quantity(e, &format!("{tp}.value"), &t.value) {
                    if q.sign() <= 0 {
                        invalid_str(e, format!("{tp}.value"), &t.value, "must be positive");
                    }
                }
            }
            "AverageValue" => {
                if t.average_value.is_empty() {
                    required(
                        e,
                        format!("{tp}.averageValue"),
                        "must set averageValue when type is AverageValue",
                    );
                } else if let Some(q) =
                    validate_quantity(e, &format!("{tp}.averageValue"), &t.average_value)
                {
                    if q.sign() <= 0 {
                        invalid_str(
                            e,
                            format!("{tp}.averageValue"),
                            &t.average_value,
                            "must be positive",
                        );
                    }
                }
            }
            other => unsupported(
                e,
                format!("{tp}.type"),
                other,
                &["AverageValue", "Utilization", "Value"],
            ),
        }
    }
    if let Some(b) = &spec.behavior {
        for (name, r) in [("scaleUp", &b.scale_up), ("scaleDown", &b.scale_down)] {
            let Some(r) = r else { continue };
            let p = format!("spec.behavior.{name}");
            if let Some(w) = r.stabilization_window_seconds {
                if !(0..=3600).contains(&w) {
                    invalid(
                        e,
                        format!("{p}.stabilizationWindowSeconds"),
                        w,
                        "must be less than or equal to 3600",
                    );
                }
            }
            if let Some(sp) = &r.select_policy {
                one_of(
                    e,
                    &format!("{p}.selectPolicy"),
                    sp,
                    &["Disabled", "Max", "Min"],
                    false,
                );
            }
            for (i, pol) in r.policies.iter().enumerate() {
                let pp = format!("{p}.policies[{i}]");
                one_of(
                    e,
                    &format!("{pp}.type"),
                    &pol.r#type,
                    &["Percent", "Pods"],
                    false,
                );
                if pol.value <= 0 {
                    invalid(
                        e,
                        format!("{pp}.value"),
                        pol.value,
                        "must be greater than zero",
                    );
                }
                if !(1..=1800).contains(&pol.period_seconds) {
                    invalid(
                        e,
                        format!("{pp}.periodSeconds"),
                        pol.period_seconds,
                        "must be greater than zero and less than or equal to 1800",
                    );
                }
            }
        }
    }
}
