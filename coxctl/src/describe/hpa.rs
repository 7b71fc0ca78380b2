//! `describe hpa` in kubectl's layout (kubernetes/kubectl pkg/describe/describe.go @eb83633,
//! describeHorizontalPodAutoscalerV2, checked field by field): Metrics as
//! "( current / target )", Min/Max replicas, Behavior, "<Kind> pods: N current / M desired",
//! Conditions. autoscaling/v1-shaped objects are read as the v2 shape the API server converts
//! them to.
use serde_json::{json, Value};

use super::{header, ts, W};
use crate::jv::{arr, at, i, opt_i, s};

/// spec.metrics, or the v1 targetCPUUtilizationPercentage (80% when unset) as a metric.
fn metrics(o: &Value) -> (Vec<Value>, Vec<Value>) {
    let specs = arr(o, "spec.metrics").to_vec();
    let statuses = arr(o, "status.currentMetrics").to_vec();
    if !specs.is_empty() {
        return (specs, statuses);
    }
    let t = opt_i(o, "spec.targetCPUUtilizationPercentage").unwrap_or(80);
    let spec = json!({"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": t}}});
    let mut st = statuses;
    if st.is_empty() {
        if let Some(c) = opt_i(o, "status.currentCPUUtilizationPercentage") {
            st.push(json!({"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": c}}}));
        }
    }
    (vec![spec], st)
}

/// The current value kubectl prints: "<unknown>" when the status has no entry of this
/// section at the metric's index, else the field's value ("<nil>", Go's String of a nil
/// Quantity, when the entry lacks it).
fn current(st: Option<&Value>, section: &str, field: &str) -> Option<String> {
    let v = st.map(|x| at(x, section)).filter(|x| !x.is_null())?;
    let c = s(v, &format!("current.{field}"));
    Some(if c.is_empty() {
        "<nil>".into()
    } else {
        c.into_owned()
    })
}

fn resource_line(w: &mut W, head: String, spec: &Value, st: Option<&Value>, section: &str) {
    let src = at(spec, section);
    let avg = s(src, "target.averageValue");
    if !avg.is_empty() {
        let c = current(st, section, "averageValue").unwrap_or_else(|| "<unknown>".into());
        w.line(1, format!("{head}:\t{c} / {avg}"));
        return;
    }
    // Only an entry with averageUtilization counts; its averageValue may be "<nil>".
    let c = match current(st, section, "averageUtilization").filter(|u| u != "<nil>") {
        Some(u) => format!(
            "{u}% ({})",
            current(st, section, "averageValue").unwrap_or_default()
        ),
        None => "<unknown>".into(),
    };
    let t = opt_i(src, "target.averageUtilization")
        .map(|t| format!("{t}%"))
        .unwrap_or_else(|| "<auto>".into());
    // kubectl writes the second part at LEVEL_1 on the same line: two spaces in between.
    w.line(
        1,
        format!("{head}  (as a percentage of request):\t{c} / {t}"),
    );
}

fn direction(w: &mut W, label: &str, r: &Value) {
    if r.is_null() {
        return;
    }
    w.line(1, format!("{label}:"));
    if let Some(win) = opt_i(r, "stabilizationWindowSeconds") {
        w.line(2, format!("Stabilization Window: {win} seconds"));
    }
    let policies = arr(r, "policies");
    if !policies.is_empty() {
        let sp = s(r, "selectPolicy");
        w.line(
            2,
            format!(
                "Select Policy: {}",
                if sp.is_empty() { "Max".into() } else { sp }
            ),
        );
        w.line(2, "Policies:");
        for p in policies {
            w.line(
                3,
                format!(
                    "- Type: {}\tValue: {}\tPeriod: {} seconds",
                    s(p, "type"),
                    i(p, "value"),
                    i(p, "periodSeconds")
                ),
            );
        }
    }
}

pub(super) fn describe_hpa(w: &mut W, o: &Value) {
    // Name, Namespace, Labels, Annotations, then CreationTimestamp (not the common order).
    header(w, o, true, false);
    w.line(
        0,
        format!(
            "CreationTimestamp:\t{}",
            ts(o, "metadata.creationTimestamp")
        ),
    );
    w.line(
        0,
        format!(
            "Reference:\t{}/{}",
            s(o, "spec.scaleTargetRef.kind"),
            s(o, "spec.scaleTargetRef.name")
        ),
    );
    w.line(0, "Metrics:\t( current / target )");
    let (specs, statuses) = metrics(o);
    for (idx, m) in specs.iter().enumerate() {
        let st = statuses.get(idx);
        match s(m, "type").as_ref() {
            "External" => {
                let name = s(m, "external.metric.name");
                let av = s(m, "external.target.averageValue");
                if !av.is_empty() {
                    let c = current(st, "external", "averageValue")
                        .unwrap_or_else(|| "<unknown>".into());
                    w.line(1, format!("{name:?} (target average value):\t{c} / {av}"));
                } else {
                    let c = current(st, "external", "value").unwrap_or_else(|| "<unknown>".into());
                    let t = s(m, "external.target.value");
                    w.line(1, format!("{name:?} (target value):\t{c} / {t}"));
                }
            }
            "Pods" => {
                let c = current(st, "pods", "averageValue").unwrap_or_else(|| "<unknown>".into());
                w.line(
                    1,
                    format!(
                        "{:?} on pods:\t{c} / {}",
                        s(m, "pods.metric.name"),
                        s(m, "pods.target.averageValue")
                    ),
                );
            }
            "Object" => {
                let head = format!(
                    "\"{}\" on {}/{} ",
                    s(m, "object.metric.name"),
                    s(m, "object.describedObject.kind"),
                    s(m, "object.describedObject.name")
                );
                if s(m, "object.target.type") == "AverageValue" {
                    let c =
                        current(st, "object", "averageValue").unwrap_or_else(|| "<unknown>".into());
                    w.line(
                        1,
                        format!(
                            "{head}(target average value):\t{c} / {}",
                            s(m, "object.target.averageValue")
                        ),
                    );
                } else {
                    let c = current(st, "object", "value").unwrap_or_else(|| "<unknown>".into());
                    w.line(
                        1,
                        format!(
                            "{head}(target value):\t{c} / {}",
                            s(m, "object.target.value")
                        ),
                    );
                }
            }
            "Resource" => {
                let head = format!("resource {} on pods", s(m, "resource.name"));
                resource_line(w, head, m, st, "resource");
            }
            "ContainerResource" => {
                let head = format!(
                    "resource {} of container \"{}\" on pods",
                    s(m, "containerResource.name"),
                    s(m, "containerResource.container")
                );
                resource_line(w, head, m, st, "containerResource");
            }
            other => w.line(1, format!("<unknown metric type {other:?}>")),
        }
    }
    let min = opt_i(o, "spec.minReplicas")
        .map(|m| m.to_string())
        .unwrap_or_else(|| "<unset>".into());
    w.line(0, format!("Min replicas:\t{min}"));
    w.line(0, format!("Max replicas:\t{}", i(o, "spec.maxReplicas")));
    let b = at(o, "spec.behavior");
    if !b.is_null() {
        w.line(0, "Behavior:");
        direction(w, "Scale Up", at(b, "scaleUp"));
        direction(w, "Scale Down", at(b, "scaleDown"));
    }
    w.line(
        0,
        format!(
            "{} pods:\t{} current / {} desired",
            s(o, "spec.scaleTargetRef.kind"),
            i(o, "status.currentReplicas"),
            i(o, "status.desiredReplicas")
        ),
    );
    let conds = arr(o, "status.conditions");
    if !conds.is_empty() {
        w.line(0, "Conditions:");
        w.line(1, "Type\tStatus\tReason\tMessage");
        w.line(1, "----\t------\t------\t-------");
        for c in conds {
            w.line(
                1,
                format!(
                    "{}\t{}\t{}\t{}",
                    s(c, "type"),
                    s(c, "status"),
                    s(c, "reason"),
                    s(c, "message")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{describe_object, Related};
    use coxswain_api::Kind;
    use serde_json::json;

    #[test]
    fn describe_hpa_like_kubectl() {
        let h = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "nginx", "namespace": "default", "creationTimestamp": "2026-12-06T04:09:09Z"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "nginx"}, "minReplicas": 1, "maxReplicas": 10,
                "targetCPUUtilizationPercentage": 2},
            "status": {"currentReplicas": 1, "desiredReplicas": 4,
                "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 305, "averageValue": "610m"}}}],
                "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale", "message": "the HPA controller was able to update the target scale to 4"}]}});
        let out = describe_object(Kind::HorizontalPodAutoscaler, &h, &Related::default(), 0);
        assert!(out.contains("Reference:"), "{out}");
        assert!(
            out.contains(
                "Metrics:                                               ( current / target )"
            ),
            "{out}"
        );
        assert!(
            out.contains("  resource cpu on pods  (as a percentage of request):  305% (610m) / 2%"),
            "{out}"
        );
        assert!(
            out.contains(
                "Deployment pods:                                       1 current / 4 desired"
            ),
            "{out}"
        );
        assert!(out.contains("  AbleToScale  True    SucceededRescale  the HPA controller was able to update the target scale to 4"), "{out}");
    }
}
