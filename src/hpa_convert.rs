//! HorizontalPodAutoscaler manifests of the older versions read as the API server converts
//! them (pkg/apis/autoscaling/v1 and v2beta1 conversion.go), before decoding into the one
//! message that holds both shapes:
//! - autoscaling/v2beta1: its metric sources (`targetAverageUtilization`, `metricName`,
//!   `targetValue`, …) become v2's `metric` + `target`;
//! - autoscaling/v1 and v2beta1: the round-trip annotations are read and dropped — the other
//!   metrics (`autoscaling.alpha.kubernetes.io/metrics`, v1 only; the cpu target then becomes
//!   the first metric) and the behavior (`…/behavior`, Go's field names in any case, as
//!   encoding/json reads them); the conditions and current metrics are status and dropped.
//! - autoscaling/v2beta2 is v2's shape.
use serde_json::{json, Map, Value};

use crate::error::FieldError;
use crate::Error;

pub const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
pub const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
pub const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
pub const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";

fn set(m: &mut Map<String, Value>, k: &str, v: Option<&Value>) {
    if let Some(v) = v.filter(|v| !v.is_null()) {
        m.insert(k.into(), v.clone());
    }
}

fn identifier(name: Option<&Value>, selector: Option<&Value>) -> Value {
    let mut m = Map::new();
    set(&mut m, "name", name);
    set(&mut m, "selector", selector);
    Value::Object(m)
}

fn target(type_: &str, fields: &[(&str, Option<&Value>)]) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(type_));
    for (k, v) in fields {
        set(&mut m, k, *v);
    }
    Value::Object(m)
}

/// One v2beta1 (or v1 annotation) MetricSpec as v2.
fn metric_v2(m: &Value) -> Value {
    let Some(obj) = m.as_object() else {
        return m.clone();
    };
    let t = obj.get("type").and_then(Value::as_str).unwrap_or("");
    let mut out = Map::new();
    out.insert("type".into(), json!(t));
    let src = |k: &str| obj.get(k).and_then(Value::as_object);
    match t {
        "Resource" | "ContainerResource" => {
            let key = if t == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            if let Some(r) = src(key) {
                let util = r.get("targetAverageUtilization");
                let avg = r.get("targetAverageValue");
                let ty = if util.is_some_and(|u| !u.is_null()) {
                    "Utilization"
                } else {
                    "AverageValue"
                };
                let mut s = Map::new();
                set(&mut s, "name", r.get("name"));
                set(&mut s, "container", r.get("container"));
                s.insert(
                    "target".into(),
                    target(ty, &[("averageValue", avg), ("averageUtilization", util)]),
                );
                out.insert(key.into(), Value::Object(s));
            }
        }
        "Pods" => {
            if let Some(p) = src("pods") {
                out.insert(
                    "pods".into(),
                    json!({"metric": identifier(p.get("metricName"), p.get("selector")),
                        "target": target("AverageValue", &[("averageValue", p.get("targetAverageValue"))])}),
                );
            }
        }
        "Object" => {
            if let Some(o) = src("object") {
                let avg = o.get("averageValue").filter(|v| !v.is_null());
                let ty = if avg.is_some() {
                    "AverageValue"
                } else {
                    "Value"
                };
                let mut s = Map::new();
                set(&mut s, "describedObject", o.get("target"));
                s.insert(
                    "metric".into(),
                    identifier(o.get("metricName"), o.get("selector")),
                );
                s.insert(
                    "target".into(),
                    target(
                        ty,
                        &[("value", o.get("targetValue")), ("averageValue", avg)],
                    ),
                );
                out.insert("object".into(), Value::Object(s));
            }
        }
        "External" => {
            if let Some(e) = src("external") {
                let value = e.get("targetValue").filter(|v| !v.is_null());
                let ty = if value.is_some() {
                    "Value"
                } else {
                    "AverageValue"
                };
                out.insert(
                    "external".into(),
                    json!({"metric": identifier(e.get("metricName"), e.get("metricSelector")),
                        "target": target(ty, &[("value", value), ("averageValue", e.get("targetAverageValue"))])}),
                );
            }
        }
        _ => return m.clone(),
    }
    Value::Object(out)
}

/// Go's encoding/json matches field names case-insensitively: the behavior annotation holds
/// the internal type's names (`ScaleUp`, `StabilizationWindowSeconds`, …).
fn lower_camel(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let mut c = k.chars();
                    let k = match c.next() {
                        Some(f) => f.to_lowercase().chain(c).collect(),
                        None => String::new(),
                    };
                    (k, lower_camel(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lower_camel).collect()),
        other => other.clone(),
    }
}

fn annotation_json(annotations: &Map<String, Value>, key: &str) -> Result<Option<Value>, Error> {
    let Some(text) = annotations.get(key).and_then(Value::as_str) else {
        return Ok(None);
    };
    serde_json::from_str(text).map(Some).map_err(|e| {
        Error::Invalid(vec![FieldError::new(
            format!("metadata.annotations[{key}]"),
            format!("Invalid value: {text:?}: {e}"),
        )])
    })
}

/// Rewrite an HPA manifest of `api_version` into v2's shape (in place).
pub fn to_v2(json: &mut Value, api_version: &str) -> Result<(), Error> {
    if !matches!(api_version, "autoscaling/v1" | "autoscaling/v2beta1") {
        return Ok(());
    }
    let annotations = json
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let other_metrics = if api_version == "autoscaling/v1" {
        annotation_json(&annotations, METRICS)?
    } else {
        None
    };
    let behavior = annotation_json(&annotations, BEHAVIOR)?;
    if let Some(a) = json
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        for k in [METRICS, CURRENT_METRICS, CONDITIONS, BEHAVIOR] {
            a.remove(k);
        }
    }
    let Some(spec) = json.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if api_version == "autoscaling/v2beta1" {
        if let Some(ms) = spec.get_mut("metrics").and_then(Value::as_array_mut) {
            ms.iter_mut().for_each(|m| *m = metric_v2(m));
        }
    }
    if let Some(Value::Array(others)) = other_metrics {
        if !others.is_empty() {
            let mut metrics = Vec::new();
            if let Some(pct) = spec.remove("targetCPUUtilizationPercentage") {
                metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": pct}}}));
            }
            metrics.extend(others.iter().map(metric_v2));
            spec.insert("metrics".into(), Value::Array(metrics));
        }
    }
    if let Some(b) = behavior.filter(|b| !b.is_null()) {
        spec.insert("behavior".into(), lower_camel(&b));
    }
    if let Some(st) = json.get_mut("status").and_then(Value::as_object_mut) {
        if api_version == "autoscaling/v2beta1" {
            // v2beta1 statuses are the controller's to write; their old shape is not kept.
            st.remove("currentMetrics");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::manifest::parse_manifests;
    use crate::Object;

    fn parse(text: &str) -> crate::v1::HorizontalPodAutoscaler {
        let mut p = parse_manifests(text).expect("parse");
        match p.remove(0).object {
            Object::HorizontalPodAutoscaler(h) => h,
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn v2beta1_metric_sources_read_as_v2() {
        let h = parse(
            r#"apiVersion: autoscaling/v2beta1
kind: HorizontalPodAutoscaler
metadata: {name: h}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d}
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: cpu, targetAverageUtilization: 50}
  - type: Resource
    resource: {name: memory, targetAverageValue: 100Mi}
  - type: Pods
    pods: {metricName: qps, targetAverageValue: "10"}
  - type: Object
    object:
      target: {apiVersion: v1, kind: Service, name: web}
      metricName: requests
      targetValue: "2k"
  - type: External
    external: {metricName: queue, metricSelector: {matchLabels: {q: a}}, targetAverageValue: "30"}
"#,
        );
        let m = h.spec.expect("spec").metrics;
        let t = |i: usize| -> (String, String, String, Option<i32>) {
            let tg = match m[i].r#type.as_str() {
                "Resource" => m[i].resource.as_ref().unwrap().target.clone(),
                "Pods" => m[i].pods.as_ref().unwrap().target.clone(),
                "Object" => m[i].object.as_ref().unwrap().target.clone(),
                _ => m[i].external.as_ref().unwrap().target.clone(),
            }
            .unwrap();
            (
                tg.r#type,
                tg.value,
                tg.average_value,
                tg.average_utilization,
            )
        };
        assert_eq!(t(0), ("Utilization".into(), "".into(), "".into(), Some(50)));
        assert_eq!(
            t(1),
            ("AverageValue".into(), "".into(), "100Mi".into(), None)
        );
        assert_eq!(t(2), ("AverageValue".into(), "".into(), "10".into(), None));
        assert_eq!(t(3), ("Value".into(), "2k".into(), "".into(), None));
        assert_eq!(t(4), ("AverageValue".into(), "".into(), "30".into(), None));
        assert_eq!(
            m[2].pods.as_ref().unwrap().metric.as_ref().unwrap().name,
            "qps"
        );
        let o = m[3].object.as_ref().unwrap();
        assert_eq!(o.described_object.as_ref().unwrap().kind, "Service");
        assert_eq!(o.metric.as_ref().unwrap().name, "requests");
        let e = m[4].external.as_ref().unwrap().metric.as_ref().unwrap();
        assert_eq!(e.selector.as_ref().unwrap().match_labels["q"], "a");
    }

    #[test]
    fn v1_round_trip_annotations_become_metrics_and_behavior() {
        let h = parse(
            r#"apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: h
  annotations:
    keep: me
    autoscaling.alpha.kubernetes.io/metrics: '[{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"10"}}]'
    autoscaling.alpha.kubernetes.io/behavior: '{"ScaleUp":null,"ScaleDown":{"StabilizationWindowSeconds":60,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":1,"PeriodSeconds":15}],"Tolerance":null}}'
    autoscaling.alpha.kubernetes.io/conditions: '[]'
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d}
  maxReplicas: 5
  targetCPUUtilizationPercentage: 70
"#,
        );
        let meta = h.metadata.expect("meta");
        assert_eq!(
            meta.annotations.keys().collect::<Vec<_>>(),
            ["keep"],
            "round-trip annotations are dropped"
        );
        let spec = h.spec.expect("spec");
        assert_eq!(spec.target_cpu_utilization_percentage, None);
        assert_eq!(spec.metrics.len(), 2);
        let cpu = spec.metrics[0].resource.as_ref().unwrap();
        assert_eq!(cpu.target.as_ref().unwrap().average_utilization, Some(70));
        assert_eq!(spec.metrics[1].r#type, "Pods");
        let down = spec.behavior.expect("behavior").scale_down.expect("down");
        assert_eq!(down.stabilization_window_seconds, Some(60));
        assert_eq!(down.policies[0].period_seconds, 15);

        let bad = parse_manifests(
            "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\n  annotations:\n    autoscaling.alpha.kubernetes.io/metrics: 'nope'\nspec:\n  maxReplicas: 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            bad.contains("metadata.annotations[autoscaling.alpha.kubernetes.io/metrics]"),
            "{bad}"
        );
        // Without the annotation a v1 manifest keeps its own shape.
        let h = parse("apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n  maxReplicas: 3\n  targetCPUUtilizationPercentage: 20\n");
        let spec = h.spec.unwrap();
        assert_eq!(spec.target_cpu_utilization_percentage, Some(20));
        assert!(spec.metrics.is_empty());
    }
}
