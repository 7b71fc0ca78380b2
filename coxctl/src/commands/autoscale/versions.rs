//! The HorizontalPodAutoscaler as the API server serves it at the version asked for
//! (`get hpa` → autoscaling/v2, `get hpa.v1.autoscaling` → autoscaling/v1, also v2beta2 and
//! v2beta1), with upstream's conversions (pkg/apis/autoscaling/v1 and v2beta1 conversion.go):
//! autoscaling/v1 keeps only targetCPUUtilizationPercentage / currentCPUUtilizationPercentage
//! and carries the rest in the round-trip annotations: the other metrics
//! (`autoscaling.alpha.kubernetes.io/metrics`), every current metric (`…/current-metrics`), the
//! behavior (`…/behavior`, Go's field names: upstream marshals its internal type) and the
//! conditions (`…/conditions`), each as JSON in v1's (v2beta1-shaped) types and field order.
use coxswain_api::Kind;
use serde_json::{json, Value};

pub const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
pub const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
pub const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
pub const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";

/// The autoscaling version a `get` asks for: `hpa.v1.autoscaling`, `hpa.v1.autoscaling/NAME`,
/// `horizontalpodautoscalers.v2beta2.autoscaling`; "v2" (the preferred version) otherwise.
pub fn requested_version(resources: &[String]) -> &'static str {
    let first = resources.first().map(String::as_str).unwrap_or("");
    let versioned = resources
        .iter()
        .filter(|r| r.contains('/'))
        .map(String::as_str)
        .chain(first.split(','));
    for part in versioned {
        let ty = part.split('/').next().unwrap_or("");
        let mut dots = ty.split('.');
        let base = dots.next().unwrap_or("");
        let (Some(version), Some(_group)) = (dots.next(), dots.next()) else {
            continue;
        };
        if Kind::parse(base) != Some(Kind::HorizontalPodAutoscaler) {
            continue;
        }
        for v in ["v1", "v2", "v2beta1", "v2beta2"] {
            if version.eq_ignore_ascii_case(v) {
                return v;
            }
        }
    }
    "v2"
}

/// Convert an HPA already in the v2 shape to `version`.
pub fn convert(v: &mut Value, version: &str) {
    if v["kind"] != "HorizontalPodAutoscaler" {
        return;
    }
    match version {
        "v1" => to_v1(v),
        "v2beta1" => to_v2beta1(v),
        "v2beta2" => v["apiVersion"] = json!("autoscaling/v2beta2"),
        _ => {}
    }
}

/// A JSON object written in Go's struct field order (serde_json's maps sort their keys):
/// `omitempty` fields are skipped when null.
#[derive(Default)]
struct Go(Vec<(&'static str, String)>);

impl Go {
    fn new() -> Go {
        Go::default()
    }
    /// A plain value (skipped when null).
    fn v(mut self, k: &'static str, v: &Value) -> Go {
        if !v.is_null() {
            self.0.push((k, v.to_string()));
        }
        self
    }
    /// Already-encoded JSON.
    fn raw(mut self, k: &'static str, text: String) -> Go {
        self.0.push((k, text));
        self
    }
    fn text(self) -> String {
        let body: Vec<String> = self
            .0
            .into_iter()
            .map(|(k, v)| format!("{}:{v}", Value::from(k)))
            .collect();
        format!("{{{}}}", body.join(","))
    }
}

/// A non-pointer Quantity: "0" when unset.
fn quantity(v: &Value) -> Value {
    if v.is_null() {
        json!("0")
    } else {
        v.clone()
    }
}

/// CrossVersionObjectReference: kind, name, apiVersion.
fn go_ref(v: &Value) -> String {
    Go::new()
        .v("kind", &v["kind"])
        .v("name", &v["name"])
        .v("apiVersion", &v["apiVersion"])
        .text()
}

/// A *LabelSelector (None when nil): matchLabels, matchExpressions (key, operator, values).
fn go_selector(v: &Value) -> Option<String> {
    if v.is_null() {
        return None;
    }
    let exprs = v["matchExpressions"].as_array().map(|a| {
        let items: Vec<String> = a
            .iter()
            .map(|e| {
                Go::new()
                    .v("key", &e["key"])
                    .v("operator", &e["operator"])
                    .v("values", &e["values"])
                    .text()
            })
            .collect();
        format!("[{}]", items.join(","))
    });
    let mut g = Go::new().v("matchLabels", &v["matchLabels"]);
    if let Some(e) = exprs {
        g = g.raw("matchExpressions", e);
    }
    Some(g.text())
}

fn with_selector(g: Go, k: &'static str, v: &Value) -> Go {
    match go_selector(v) {
        Some(t) => g.raw(k, t),
        None => g,
    }
}

/// v2 MetricSpec → v1/v2beta1 MetricSpec (JSON text in Go's order).
fn metric_spec(m: &Value) -> String {
    let t = &m["type"];
    let target = |s: &Value| s["target"].clone();
    let (key, body) = match t.as_str().unwrap_or("") {
        "Resource" => {
            let r = &m["resource"];
            let g = Go::new()
                .v("name", &r["name"])
                .v("targetAverageUtilization", &target(r)["averageUtilization"])
                .v("targetAverageValue", &target(r)["averageValue"]);
            ("resource", g.text())
        }
        "ContainerResource" => {
            let r = &m["containerResource"];
            let g = Go::new()
                .v("name", &r["name"])
                .v("targetAverageUtilization", &target(r)["averageUtilization"])
                .v("targetAverageValue", &target(r)["averageValue"])
                .v("container", &quantity_str(&r["container"]));
            ("containerResource", g.text())
        }
        "Pods" => {
            let p = &m["pods"];
            let g = Go::new()
                .v("metricName", &quantity_str(&p["metric"]["name"]))
                .v("targetAverageValue", &quantity(&target(p)["averageValue"]));
            (
                "pods",
                with_selector(g, "selector", &p["metric"]["selector"]).text(),
            )
        }
        "Object" => {
            let o = &m["object"];
            let g = Go::new()
                .raw("target", go_ref(&o["describedObject"]))
                .v("metricName", &quantity_str(&o["metric"]["name"]))
                .v("targetValue", &quantity(&target(o)["value"]));
            let g = with_selector(g, "selector", &o["metric"]["selector"])
                .v("averageValue", &target(o)["averageValue"]);
            ("object", g.text())
        }
        "External" => {
            let e = &m["external"];
            let g = Go::new().v("metricName", &quantity_str(&e["metric"]["name"]));
            let g = with_selector(g, "metricSelector", &e["metric"]["selector"])
                .v("targetValue", &target(e)["value"])
                .v("targetAverageValue", &target(e)["averageValue"]);
            ("external", g.text())
        }
        _ => return Go::new().v("type", t).text(),
    };
    Go::new().v("type", t).raw(key, body).text()
}

/// A non-omitempty string: "" when unset.
fn quantity_str(v: &Value) -> Value {
    if v.is_null() {
        json!("")
    } else {
        v.clone()
    }
}

/// v2 MetricStatus → v1/v2beta1 MetricStatus (JSON text in Go's order).
fn metric_status(m: &Value) -> String {
    let t = &m["type"];
    let cur = |s: &Value| s["current"].clone();
    let (key, body) = match t.as_str().unwrap_or("") {
        "Resource" => {
            let r = &m["resource"];
            let g = Go::new()
                .v("name", &r["name"])
                .v("currentAverageUtilization", &cur(r)["averageUtilization"])
                .v("currentAverageValue", &quantity(&cur(r)["averageValue"]));
            ("resource", g.text())
        }
        "ContainerResource" => {
            let r = &m["containerResource"];
            let g = Go::new()
                .v("name", &r["name"])
                .v("currentAverageUtilization", &cur(r)["averageUtilization"])
                .v("currentAverageValue", &quantity(&cur(r)["averageValue"]))
                .v("container", &quantity_str(&r["container"]));
            ("containerResource", g.text())
        }
        "Pods" => {
            let p = &m["pods"];
            let g = Go::new()
                .v("metricName", &quantity_str(&p["metric"]["name"]))
                .v("currentAverageValue", &quantity(&cur(p)["averageValue"]));
            (
                "pods",
                with_selector(g, "selector", &p["metric"]["selector"]).text(),
            )
        }
        "Object" => {
            let o = &m["object"];
            let g = Go::new()
                .raw("target", go_ref(&o["describedObject"]))
                .v("metricName", &quantity_str(&o["metric"]["name"]))
                .v("currentValue", &quantity(&cur(o)["value"]));
            let g = with_selector(g, "selector", &o["metric"]["selector"])
                .v("averageValue", &cur(o)["averageValue"]);
            ("object", g.text())
        }
        "External" => {
            let e = &m["external"];
            let g = Go::new().v("metricName", &quantity_str(&e["metric"]["name"]));
            let g = with_selector(g, "metricSelector", &e["metric"]["selector"])
                .v("currentValue", &quantity(&cur(e)["value"]))
                .v("currentAverageValue", &cur(e)["averageValue"]);
            ("external", g.text())
        }
        _ => return Go::new().v("type", t).text(),
    };
    Go::new().v("type", t).raw(key, body).text()
}

/// HorizontalPodAutoscalerCondition in Go's field order.
fn condition(c: &Value) -> String {
    Go::new()
        .v("type", &c["type"])
        .v("status", &c["status"])
        .v("lastTransitionTime", &c["lastTransitionTime"])
        .v("reason", &c["reason"])
        .v("message", &c["message"])
        .text()
}

/// The internal HPAScalingRules as Go's encoding/json writes an untagged struct (nil
/// pointers as null).
fn go_rules(r: &Value) -> String {
    if r.is_null() {
        return "null".into();
    }
    let policies = match r["policies"].as_array() {
        None => "null".to_string(),
        Some(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|p| {
                    Go::new()
                        .v("Type", &quantity_str(&p["type"]))
                        .v("Value", &json!(p["value"].as_i64().unwrap_or(0)))
                        .v(
                            "PeriodSeconds",
                            &json!(p["periodSeconds"].as_i64().unwrap_or(0)),
                        )
                        .text()
                })
                .collect();
            format!("[{}]", items.join(","))
        }
    };
    let or_null = |v: &Value| v.to_string();
    Go::new()
        .raw(
            "StabilizationWindowSeconds",
            or_null(&r["stabilizationWindowSeconds"]),
        )
        .raw("SelectPolicy", or_null(&r["selectPolicy"]))
        .raw("Policies", policies)
        .raw("Tolerance", or_null(&r["tolerance"]))
        .text()
}

fn go_behavior(b: &Value) -> String {
    Go::new()
        .raw("ScaleUp", go_rules(&b["scaleUp"]))
        .raw("ScaleDown", go_rules(&b["scaleDown"]))
        .text()
}

/// A list of encoded items.
fn list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(","))
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn is_cpu_utilization(m: &Value) -> bool {
    m["type"] == "Resource"
        && m["resource"]["name"] == "cpu"
        && !m["resource"]["target"]["averageUtilization"].is_null()
}

/// Convert_autoscaling_HorizontalPodAutoscaler_To_v1_HorizontalPodAutoscaler.
fn to_v1(v: &mut Value) {
    v["apiVersion"] = json!("autoscaling/v1");
    let spec = v["spec"].clone();
    let status = v["status"].clone();
    let metrics: Vec<Value> = spec["metrics"].as_array().cloned().unwrap_or_default();
    let current: Vec<Value> = status["currentMetrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();

    let mut annotations = v["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for k in [METRICS, CURRENT_METRICS, CONDITIONS, BEHAVIOR] {
        annotations.remove(k);
    }
    let others: Vec<&Value> = metrics.iter().filter(|m| !is_cpu_utilization(m)).collect();
    if !others.is_empty() {
        let text = list(others.into_iter().map(metric_spec));
        annotations.insert(METRICS.into(), Value::String(text));
    }
    if !current.is_empty() {
        let text = list(current.iter().map(metric_status));
        annotations.insert(CURRENT_METRICS.into(), Value::String(text));
    }
    if !spec["behavior"].is_null() {
        annotations.insert(
            BEHAVIOR.into(),
            Value::String(go_behavior(&spec["behavior"])),
        );
    }
    if !conditions.is_empty() {
        let text = list(conditions.iter().map(condition));
        annotations.insert(CONDITIONS.into(), Value::String(text));
    }
    if annotations.is_empty() {
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("annotations");
        }
    } else if v["metadata"].is_object() {
        v["metadata"]["annotations"] = Value::Object(annotations);
    }

    // The spec: the first cpu Resource metric's utilization.
    let target = metrics
        .iter()
        .find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu")
        .map(|m| m["resource"]["target"]["averageUtilization"].clone())
        .unwrap_or(Value::Null);
    if let Some(s) = v["spec"].as_object_mut() {
        s.remove("metrics");
        s.remove("behavior");
        if !target.is_null() {
            s.insert("targetCPUUtilizationPercentage".into(), target);
        }
    }
    let cur_cpu = current
        .iter()
        .filter(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu")
        .filter_map(|m| {
            let u = &m["resource"]["current"]["averageUtilization"];
            (!u.is_null()).then(|| u.clone())
        })
        .next_back();
    if let Some(st) = v["status"].as_object_mut() {
        st.remove("currentMetrics");
        st.remove("conditions");
        if let Some(u) = cur_cpu {
            st.insert("currentCPUUtilizationPercentage".into(), u);
        }
    }
}

/// autoscaling/v2beta1: the v1-shaped metric types in spec.metrics and status.currentMetrics,
/// the conditions in the status, no behavior (carried in its annotation, as upstream's
/// v2beta1 conversion does).
fn to_v2beta1(v: &mut Value) {
    v["apiVersion"] = json!("autoscaling/v2beta1");
    let behavior = v["spec"]["behavior"].clone();
    if let Some(s) = v["spec"].as_object_mut() {
        if let Some(m) = s.get_mut("metrics").and_then(Value::as_array_mut) {
            m.iter_mut().for_each(|x| *x = parsed(&metric_spec(x)));
        }
        s.remove("behavior");
    }
    if let Some(st) = v["status"].as_object_mut() {
        if let Some(m) = st.get_mut("currentMetrics").and_then(Value::as_array_mut) {
            m.iter_mut().for_each(|x| *x = parsed(&metric_status(x)));
        }
    }
    if !behavior.is_null() && v["metadata"].is_object() {
        if !v["metadata"]["annotations"].is_object() {
            v["metadata"]["annotations"] = json!({});
        }
        v["metadata"]["annotations"][BEHAVIOR] = Value::String(go_behavior(&behavior));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa() -> Value {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"maxReplicas": 3, "minReplicas": 1,
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}
                ]},
            "status": {"currentReplicas": 3, "desiredReplicas": 3,
                "currentMetrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 150, "averageValue": "150m"}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "current": {"averageValue": "7"}}}
                ],
                "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale",
                    "message": "m", "lastTransitionTime": "2026-12-06T06:25:50Z"}]}})
    }

    #[test]
    fn v1_keeps_the_cpu_fields_and_carries_the_rest_in_annotations() {
        let mut v = hpa();
        convert(&mut v, "v1");
        assert_eq!(v["apiVersion"], "autoscaling/v1");
        assert_eq!(v["spec"]["targetCPUUtilizationPercentage"], 50);
        assert!(v["spec"].get("metrics").is_none());
        assert_eq!(v["status"]["currentCPUUtilizationPercentage"], 150);
        assert!(v["status"].get("currentMetrics").is_none());
        assert!(v["status"].get("conditions").is_none());
        let a = &v["metadata"]["annotations"];
        assert_eq!(
            a[METRICS],
            r#"[{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"10"}}]"#
        );
        assert_eq!(
            a[CURRENT_METRICS],
            r#"[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":150,"currentAverageValue":"150m"}},{"type":"Pods","pods":{"metricName":"qps","currentAverageValue":"7"}}]"#
        );
        assert_eq!(
            a[CONDITIONS],
            r#"[{"type":"AbleToScale","status":"True","lastTransitionTime":"2026-12-06T06:25:50Z","reason":"SucceededRescale","message":"m"}]"#
        );
        assert!(a.get(BEHAVIOR).is_none());
    }

    #[test]
    fn v1_behavior_and_stale_round_trip_annotations() {
        let mut v = hpa();
        v["metadata"]["annotations"] = json!({CONDITIONS: "stale", "keep": "me"});
        v["spec"]["metrics"] = json!([]);
        v["status"] = json!({"currentReplicas": 1, "desiredReplicas": 1});
        v["spec"]["behavior"] = json!({"scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}});
        convert(&mut v, "v1");
        let a = &v["metadata"]["annotations"];
        assert_eq!(a["keep"], "me");
        assert!(a.get(CONDITIONS).is_none(), "{a}");
        assert_eq!(
            a[BEHAVIOR],
            r#"{"ScaleUp":null,"ScaleDown":{"StabilizationWindowSeconds":300,"SelectPolicy":"Max","Policies":[{"Type":"Percent","Value":100,"PeriodSeconds":15}],"Tolerance":null}}"#
        );
        assert!(v["spec"].get("targetCPUUtilizationPercentage").is_none());
        assert!(v["spec"].get("behavior").is_none());
    }

    #[test]
    fn v2beta1_shapes_and_the_requested_version() {
        let mut v = hpa();
        convert(&mut v, "v2beta1");
        assert_eq!(v["apiVersion"], "autoscaling/v2beta1");
        assert_eq!(
            v["spec"]["metrics"][0],
            json!({"type": "Resource", "resource": {"name": "cpu", "targetAverageUtilization": 50}})
        );
        assert_eq!(
            v["status"]["currentMetrics"][1]["pods"]["currentAverageValue"],
            "7"
        );
        assert_eq!(v["status"]["conditions"][0]["type"], "AbleToScale");
        let r =
            |a: &[&str]| requested_version(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(r(&["hpa"]), "v2");
        assert_eq!(r(&["hpa.autoscaling"]), "v2");
        assert_eq!(r(&["hpa.v1.autoscaling", "web"]), "v1");
        assert_eq!(
            r(&["horizontalpodautoscalers.v2beta2.autoscaling"]),
            "v2beta2"
        );
        assert_eq!(r(&["hpa.v1.autoscaling/web"]), "v1");
        assert_eq!(r(&["pods,hpa.v2beta1.autoscaling"]), "v2beta1");
        assert_eq!(r(&["deploy.v1.apps"]), "v2");
    }
}
