//! `coxctl autoscale TYPE NAME --min --max --cpu-percent` (kubectl's: creates an
//! autoscaling/v2 HorizontalPodAutoscaler named after the target, "… autoscaled"), and
//! `coxctl autoscale explain HPA` (the latest decision of the controller, from
//! `coxswain.v1.Autoscaler`, with why).
use clap::Args;
use coxswain_api::v1::autoscaler_client::AutoscalerClient;
use coxswain_api::v1::{
    CrossVersionObjectReference, Decision, HistoryRequest, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerSpec, MetricStatus, ObjectMeta, RecommendRequest,
};
use coxswain_api::{Kind, Object};

use crate::client::{from_status, other, Client, Result};

pub mod versions;

#[derive(Debug, Args)]
pub struct AutoscaleArgs {
    /// TYPE NAME or TYPE/NAME (deployment, replicaset, statefulset); or `explain HPA`.
    #[arg(required = true, num_args = 1..=2)]
    pub resource: Vec<String>,
    /// The lower limit for the number of pods (unset: 1).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub min: i32,
    /// The upper limit for the number of pods.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub max: i32,
    /// The target average CPU utilization over all the pods (unset: the controller's 80%).
    #[arg(long = "cpu-percent", default_value_t = -1, allow_negative_numbers = true)]
    pub cpu_percent: i32,
    /// The name of the HPA (default: the target's).
    #[arg(long)]
    pub name: Option<String>,
}

pub async fn run(client: &mut Client, a: &AutoscaleArgs, ns: &str) -> Result<()> {
    if a.resource.first().map(String::as_str) == Some("explain") {
        let name = a
            .resource
            .get(1)
            .ok_or_else(|| other("autoscale explain needs the HPA's name"))?;
        return explain(client, name, ns).await;
    }
    let (kind, name) = match a.resource.as_slice() {
        [one] => one
            .split_once('/')
            .map(|(k, n)| (k.to_string(), n.to_string()))
            .ok_or_else(|| other(format!("you must specify a name: {one}")))?,
        [k, n] => (k.clone(), n.clone()),
        _ => return Err(other("one resource is required")),
    };
    let kind = Kind::parse(&kind).ok_or_else(|| {
        other(format!(
            "the server doesn't have a resource type \"{kind}\""
        ))
    })?;
    if !matches!(
        kind,
        Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet
    ) {
        return Err(other(format!(
            "cannot autoscale a {}: not scalable",
            kind.as_str()
        )));
    }
    if a.max < 1 {
        return Err(other(format!(
            "--max=MAXPODS is required and must be at least 1, max: {}",
            a.max
        )));
    }
    if a.max < a.min {
        return Err(other(format!(
            "--max=MAXPODS must be larger or equal to --min=MINPODS, max: {}, min: {}",
            a.max, a.min
        )));
    }
    // The target must exist (kubectl reads it first).
    client.get(kind, ns, &name).await?;
    let hpa_name = a.name.clone().unwrap_or_else(|| name.clone());
    let mut spec = HorizontalPodAutoscalerSpec {
        scale_target_ref: Some(CrossVersionObjectReference {
            kind: kind.as_str().into(),
            name,
            api_version: kind.api_version().into(),
        }),
        min_replicas: (a.min >= 0).then_some(a.min),
        max_replicas: a.max,
        ..Default::default()
    };
    if a.cpu_percent >= 0 {
        spec.metrics.push(coxswain_api::v1::MetricSpec {
            r#type: "Resource".into(),
            resource: Some(coxswain_api::v1::ResourceMetricSource {
                name: "cpu".into(),
                target: Some(coxswain_api::v1::MetricTarget {
                    r#type: "Utilization".into(),
                    average_utilization: Some(a.cpu_percent),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        });
    }
    let hpa = HorizontalPodAutoscaler {
        api_version: "autoscaling/v2".into(),
        kind: "HorizontalPodAutoscaler".into(),
        metadata: Some(ObjectMeta {
            name: hpa_name.clone(),
            namespace: ns.into(),
            ..Default::default()
        }),
        spec: Some(spec),
        status: None,
    };
    client.create(&Object::HorizontalPodAutoscaler(hpa)).await?;
    println!("horizontalpodautoscaler.autoscaling/{hpa_name} autoscaled");
    Ok(())
}

fn current(m: &MetricStatus) -> String {
    let v = m
        .resource
        .as_ref()
        .and_then(|r| r.current.clone())
        .or_else(|| {
            m.container_resource
                .as_ref()
                .and_then(|r| r.current.clone())
        })
        .or_else(|| m.pods.as_ref().and_then(|r| r.current.clone()))
        .or_else(|| m.object.as_ref().and_then(|r| r.current.clone()))
        .or_else(|| m.external.as_ref().and_then(|r| r.current.clone()))
        .unwrap_or_default();
    let mut parts = Vec::new();
    if let Some(u) = v.average_utilization {
        parts.push(format!("{u}%"));
    }
    if !v.average_value.is_empty() {
        parts.push(format!("average {}", v.average_value));
    }
    if !v.value.is_empty() {
        parts.push(format!("value {}", v.value));
    }
    parts.join(", ")
}

/// The explanation of one decision, as text.
pub fn explain_text(d: &Decision) -> String {
    let mut o = String::new();
    let mut line = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    line(format!(
        "HorizontalPodAutoscaler {}/{} at {} -> {}",
        d.namespace, d.name, d.time, d.reference
    ));
    line(format!(
        "Replicas: {} current (status {}), min {}, max {}",
        d.current_replicas, d.status_replicas, d.min_replicas, d.max_replicas
    ));
    line(format!("Path: {}", d.path));
    if !d.metrics.is_empty() {
        line("Metrics:".into());
    }
    for m in &d.metrics {
        match m.replicas {
            Some(r) => line(format!(
                "  [{}] {}: {} -> proposes {r} replicas",
                m.index,
                m.metric_name,
                m.current.as_ref().map(current).unwrap_or_default()
            )),
            None => line(format!(
                "  [{}] {} failed ({}): {}",
                m.index, m.r#type, m.error_reason, m.error
            )),
        }
        let mut calc = Vec::new();
        if let Some(r) = m.usage_ratio {
            calc.push(format!("usage ratio {r:.3}"));
        }
        if let Some(r) = m.new_usage_ratio {
            calc.push(format!("recomputed ratio {r:.3}"));
        }
        if m.ready_pods > 0 {
            calc.push(format!("{} ready pods", m.ready_pods));
        }
        calc.push(format!(
            "tolerance -{}/+{}",
            m.tolerance_down, m.tolerance_up
        ));
        line(format!("      {}", calc.join(", ")));
        for p in &m.set_aside {
            let stand_in = p
                .stand_in
                .map(|v| format!(", counted as {v}m"))
                .unwrap_or_default();
            line(format!(
                "      set aside: {} ({}{stand_in})",
                p.name, p.reason
            ));
        }
        if !m.outcome.is_empty() {
            line(format!("      outcome: {}", m.outcome));
        }
    }
    if d.metric_desired_replicas >= 0 && !d.metric_name.is_empty() {
        line(format!(
            "Largest proposal: {} ({})",
            d.metric_desired_replicas, d.metric_name
        ));
    }
    if let Some(s) = &d.stabilization {
        let window: Vec<String> = s.window.iter().map(|r| r.replicas.to_string()).collect();
        line(format!(
            "Stabilization ({}; up window {}s, down window {}s): recommendations [{}] -> {} ({})",
            s.mode,
            s.up_window_seconds,
            s.down_window_seconds,
            window.join(", "),
            s.recommendation,
            s.reason
        ));
    }
    if let Some(l) = &d.limit {
        let policy = if l.limiting_policy.is_empty() {
            String::new()
        } else {
            format!(" (limited by {})", l.limiting_policy)
        };
        line(format!("Limit: {}: {}{policy}", l.reason, l.message));
    }
    let action = if d.rescale {
        format!("scale to {} ({})", d.desired_replicas, d.rescale_reason)
    } else {
        "no change".into()
    };
    line(format!(
        "Desired replicas: {} -> {action}",
        d.desired_replicas
    ));
    if !d.conditions.is_empty() {
        line("Conditions:".into());
        for c in &d.conditions {
            line(format!(
                "  {} {} {}: {}",
                c.r#type, c.status, c.reason, c.message
            ));
        }
    }
    if !d.events.is_empty() {
        line("Events:".into());
        for e in &d.events {
            line(format!("  {} {}: {}", e.r#type, e.reason, e.message));
        }
    }
    if !d.error.is_empty() {
        line(format!("Error: {}", d.error));
    }
    o
}

async fn explain(client: &mut Client, name: &str, ns: &str) -> Result<()> {
    let mut svc = AutoscalerClient::new(client.channel());
    let h = svc
        .history(HistoryRequest {
            namespace: ns.into(),
            name: name.into(),
            limit: 1,
        })
        .await
        .map_err(from_status)?
        .into_inner();
    let d = match h.decisions.into_iter().last() {
        Some(d) => d,
        // Not evaluated yet: what the controller would decide now.
        None => svc
            .recommend(RecommendRequest {
                namespace: ns.into(),
                name: name.into(),
                ..Default::default()
            })
            .await
            .map_err(from_status)?
            .into_inner(),
    };
    print!("{}", explain_text(&d));
    Ok(())
}

/// The object as the API server serves it at the autoscaling version `get` asks for (see
/// [`versions`]).
pub fn served_as(v: &mut serde_json::Value, resources: &[String]) {
    served_as_v2(v);
    versions::convert(v, versions::requested_version(resources));
}

/// The object as the API server serves it at autoscaling/v2 (what `get -o yaml|json` shows):
/// an autoscaling/v1-shaped spec's targetCPUUtilizationPercentage becomes the cpu Utilization
/// metric (80% when unset), and the v1-only status field goes.
pub fn served_as_v2(v: &mut serde_json::Value) {
    if v["kind"] != "HorizontalPodAutoscaler" || v["apiVersion"] == "autoscaling/v1" {
        return;
    }
    let Some(spec) = v.get_mut("spec").and_then(|s| s.as_object_mut()) else {
        return;
    };
    let target = spec.remove("targetCPUUtilizationPercentage");
    let has_metrics = spec
        .get("metrics")
        .and_then(|m| m.as_array())
        .is_some_and(|m| !m.is_empty());
    if !has_metrics {
        let pct = target.and_then(|t| t.as_i64()).unwrap_or(80);
        spec.insert(
            "metrics".into(),
            serde_json::json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": pct}}}]),
        );
    }
    if let Some(st) = v.get_mut("status").and_then(|s| s.as_object_mut()) {
        st.remove("currentCPUUtilizationPercentage");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_shape_is_served_as_v2() {
        let mut v = serde_json::json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "spec": {"maxReplicas": 10, "targetCPUUtilizationPercentage": 2},
            "status": {"currentCPUUtilizationPercentage": 55, "currentReplicas": 1}});
        served_as_v2(&mut v);
        assert_eq!(
            v["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            2
        );
        assert!(v["spec"].get("targetCPUUtilizationPercentage").is_none());
        assert!(v["status"].get("currentCPUUtilizationPercentage").is_none());
        let d = Decision::default();
        assert!(explain_text(&d).contains("Desired replicas: 0 -> no change"));
    }
}
