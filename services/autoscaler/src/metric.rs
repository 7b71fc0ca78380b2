//! Each metric's proposal (upstream's computeReplicasForMetric and computeStatusFor*Metric):
//! the fetched values turned into the replica calculator's inputs, its answer into the
//! metric's status, and its failure into the condition reason, the Event and the error text
//! upstream writes.
use std::collections::BTreeMap;

use coxswain_api::quantity::Quantity;
use coxswain_api::selector::LabelSelector;
use coxswain_api::v1::{
    ContainerResourceMetricStatus, ExternalMetricStatus, MetricIdentifier, MetricSpec,
    MetricStatus, MetricTarget, MetricValueStatus, ObjectMetricStatus, PodMetrics,
    PodsMetricStatus, ResourceMetricStatus,
};

use crate::calc::{
    self, parse_duration_ms, parse_time_ms, PodInfo, PodMetric, PodMetricsInfo, Proposal,
    Tolerances, Trace,
};
use crate::decide::{DecideConfig, Inputs, MetricInput, Scale};
use crate::spec;

/// A metric's failure: the condition reason and the error (the Event's text).
pub struct Failure {
    pub reason: &'static str,
    pub error: String,
}

fn milli(v: i64) -> String {
    Quantity::from_milli(v).canonical()
}

fn target_milli(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    Quantity::parse(s).ok().map(|q| q.milli_value())
}

fn resource_info(
    items: &[PodMetrics],
    resource: &str,
    container: &str,
) -> Result<(PodMetricsInfo, i64), String> {
    if items.is_empty() {
        return Err("no metrics returned from resource metrics API".into());
    }
    let mut out = PodMetricsInfo::new();
    for m in items {
        let meta = m.metadata.clone().unwrap_or_default();
        let sample = |v: i64| PodMetric {
            value: v,
            timestamp_ms: parse_time_ms(&m.timestamp).unwrap_or(0),
            window_ms: parse_duration_ms(&m.window).unwrap_or(0),
        };
        let usage = |u: &BTreeMap<String, String>| {
            u.get(resource)
                .map(|q| Quantity::parse(q).map(|q| q.milli_value()).unwrap_or(0))
        };
        if !container.is_empty() {
            let Some(c) = m.containers.iter().find(|c| c.name == container) else {
                return Err(format!(
                    "failed to get container metrics: container {container} not present in metrics for pod {}/{}",
                    meta.namespace, meta.name
                ));
            };
            if let Some(v) = usage(&c.usage) {
                out.insert(meta.name.clone(), sample(v));
            }
        } else {
            let mut sum = 0;
            let mut missing = m.containers.is_empty();
            for c in &m.containers {
                match usage(&c.usage) {
                    Some(v) => sum += v,
                    None => {
                        missing = true;
                        break;
                    }
                }
            }
            if !missing {
                out.insert(meta.name.clone(), sample(sum));
            }
        }
    }
    let ts = parse_time_ms(&items[0].timestamp).unwrap_or(0);
    Ok((out, ts))
}

fn fail(
    reason: &'static str,
    error: String,
    wrap: String,
) -> Result<(Proposal, String), (Failure, String)> {
    Err((Failure { reason, error }, wrap))
}

/// A Value target of an Object or External metric: the measured (usage, timestamp) against the
/// target, as upstream's usage ratio over the spec replicas.
fn value_proposal(
    (usage, ts): (i64, i64),
    target_milli: i64,
    spec_replicas: i32,
    tol: Tolerances,
    pods: &[PodInfo],
    trace: &mut Trace,
) -> Result<Proposal, String> {
    calc::usage_ratio_replicas(
        spec_replicas,
        usage as f64 / target_milli as f64,
        tol,
        pods,
        trace,
    )
    .map(|n| Proposal {
        replicas: n,
        utilization: None,
        value: usage,
        timestamp_ms: ts,
    })
}

fn target_of(m: &MetricSpec) -> MetricTarget {
    let t = match m.r#type.as_str() {
        "Resource" => m.resource.as_ref().and_then(|r| r.target.clone()),
        "ContainerResource" => m.container_resource.as_ref().and_then(|r| r.target.clone()),
        "Pods" => m.pods.as_ref().and_then(|r| r.target.clone()),
        "Object" => m.object.as_ref().and_then(|r| r.target.clone()),
        "External" => m.external.as_ref().and_then(|r| r.target.clone()),
        _ => None,
    };
    t.unwrap_or_default()
}

/// computeReplicasForMetric with the computeStatusFor*Metric functions. Err: the failure
/// (condition reason and Event text) and the error as computeReplicasForMetric wraps it.
#[allow(clippy::too_many_arguments)]
pub fn compute_for_metric(
    m: &MetricSpec,
    scale: &Scale,
    input: &MetricInput,
    inputs: &Inputs,
    ns: &str,
    tol: Tolerances,
    cfg: &DecideConfig,
    trace: &mut Trace,
    status: &mut MetricStatus,
) -> Result<(Proposal, String), (Failure, String)> {
    let (spec_replicas, status_replicas) = (scale.spec_replicas, scale.status_replicas);
    let target = target_of(m);
    let now = inputs.now_ms;
    match m.r#type.as_str() {
        "Resource" | "ContainerResource" => {
            let container_kind = m.r#type == "ContainerResource";
            let (name, container) = if container_kind {
                let c = m.container_resource.clone().unwrap_or_default();
                (c.name, c.container)
            } else {
                (m.resource.clone().unwrap_or_default().name, String::new())
            };
            let reason = if container_kind {
                "FailedGetContainerResourceMetric"
            } else {
                "FailedGetResourceMetric"
            };
            let wrap = |e: &str| {
                if container_kind {
                    format!("failed to get {container} container metric value: {e}")
                } else {
                    format!("failed to get {name} resource metric value: {e}")
                }
            };
            let fetched = match input {
                MetricInput::Resource(Ok(items)) => resource_info(items, &name, &container)
                    .map_err(|e| format!("unable to get metrics for resource {name}: {e}")),
                MetricInput::Resource(Err(e)) => Err(format!(
                    "unable to get metrics for resource {name}: unable to fetch metrics from resource metrics API: {e}"
                )),
                _ => Err(format!("unable to get metrics for resource {name}: no metrics returned from resource metrics API")),
            };
            let result = if let Some(avg) = target_milli(&target.average_value) {
                fetched
                    .and_then(|(info, ts)| {
                        calc::plain_replicas(
                            spec_replicas,
                            avg,
                            name == "cpu",
                            tol,
                            &inputs.pods,
                            info,
                            ts,
                            &cfg.calc,
                            now,
                            trace,
                        )
                    })
                    .map(|p| (p, format!("{name} resource")))
                    .map_err(|e| format!("failed to get {name} usage: {e}"))
            } else if let Some(util) = target.average_utilization {
                fetched
                    .and_then(|(info, ts)| {
                        calc::resource_replicas(
                            spec_replicas,
                            util,
                            &name,
                            tol,
                            &inputs.pods,
                            info,
                            ts,
                            &container,
                            &cfg.calc,
                            now,
                            trace,
                        )
                    })
                    .map(|p| {
                        let n = if container_kind {
                            format!("{name} container resource utilization (percentage of request)")
                        } else {
                            format!("{name} resource utilization (percentage of request)")
                        };
                        (p, n)
                    })
                    .map_err(|e| format!("failed to get {name} utilization: {e}"))
            } else {
                Err("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into())
            };
            match result {
                Ok((p, n)) => {
                    let current = MetricValueStatus {
                        average_value: milli(p.value),
                        average_utilization: p.utilization,
                        ..Default::default()
                    };
                    *status = if container_kind {
                        MetricStatus {
                            r#type: m.r#type.clone(),
                            container_resource: Some(ContainerResourceMetricStatus {
                                name,
                                current: Some(current),
                                container,
                            }),
                            ..Default::default()
                        }
                    } else {
                        MetricStatus {
                            r#type: m.r#type.clone(),
                            resource: Some(ResourceMetricStatus {
                                name,
                                current: Some(current),
                            }),
                            ..Default::default()
                        }
                    };
                    Ok((p, n))
                }
                Err(e) => {
                    let w = wrap(&e);
                    fail(reason, e, w)
                }
            }
        }
        "Pods" => {
            let src = m.pods.clone().unwrap_or_default();
            let id = src.metric.clone().unwrap_or_default();
            let wrap = |e: &str| format!("failed to get pods metric value: {e}");
            if let Err(e) = LabelSelector::from_proto(id.selector.as_ref()) {
                return fail("FailedGetPodsMetric", e.to_string(), wrap(&e.to_string()));
            }
            let avg = target_milli(&target.average_value).unwrap_or(0);
            let r = match input {
                MetricInput::Pods(Ok(items)) if !items.is_empty() => {
                    let info: PodMetricsInfo = items
                        .iter()
                        .map(|v| {
                            let name = v.described_object.clone().unwrap_or_default().name;
                            let value = Quantity::parse(&v.value)
                                .map(|q| q.milli_value())
                                .unwrap_or(0);
                            let window_ms = if v.window_seconds > 0 {
                                v.window_seconds * 1000
                            } else {
                                60_000
                            };
                            (
                                name,
                                PodMetric {
                                    value,
                                    timestamp_ms: parse_time_ms(&v.timestamp).unwrap_or(0),
                                    window_ms,
                                },
                            )
                        })
                        .collect();
                    let ts = parse_time_ms(&items[0].timestamp).unwrap_or(0);
                    calc::plain_replicas(
                        spec_replicas,
                        avg,
                        false,
                        tol,
                        &inputs.pods,
                        info,
                        ts,
                        &cfg.calc,
                        now,
                        trace,
                    )
                }
                MetricInput::Pods(Err(e)) => Err(format!("unable to get metric {}: {e}", id.name)),
                _ => Err(format!(
                    "unable to get metric {}: no metrics returned from custom metrics API",
                    id.name
                )),
            };
            match r {
                Ok(p) => {
                    *status = MetricStatus {
                        r#type: "Pods".into(),
                        pods: Some(PodsMetricStatus {
                            metric: Some(MetricIdentifier {
                                name: id.name.clone(),
                                selector: id.selector.clone(),
                            }),
                            current: Some(MetricValueStatus {
                                average_value: milli(p.value),
                                ..Default::default()
                            }),
                        }),
                        ..Default::default()
                    };
                    Ok((p, format!("pods metric {}", id.name)))
                }
                Err(e) => {
                    let w = wrap(&e);
                    fail("FailedGetPodsMetric", e, w)
                }
            }
        }
        "Object" => {
            let src = m.object.clone().unwrap_or_default();
            let id = src.metric.clone().unwrap_or_default();
            let obj = src.described_object.clone().unwrap_or_default();
            let wrap = |e: &str| format!("failed to get object metric value: {e}");
            if let Err(e) = LabelSelector::from_proto(id.selector.as_ref()) {
                return fail("FailedGetObjectMetric", e.to_string(), wrap(&e.to_string()));
            }
            let value = match input {
                MetricInput::Object(Ok(v)) => Ok((
                    Quantity::parse(&v.value)
                        .map(|q| q.milli_value())
                        .unwrap_or(0),
                    parse_time_ms(&v.timestamp).unwrap_or(0),
                )),
                MetricInput::Object(Err(e)) => Err(e.clone()),
                _ => Err("no metrics returned from custom metrics API".to_string()),
            }
            .map_err(|e| {
                format!(
                    "unable to get metric {}: {} on {} {}/{}",
                    id.name, obj.kind, ns, obj.name, e
                )
            });
            let ident = Some(MetricIdentifier {
                name: id.name.clone(),
                selector: id.selector.clone(),
            });
            if target.r#type == "Value" && !target.value.is_empty() {
                let tv = target_milli(&target.value).unwrap_or(0);
                let r = value
                    .and_then(|m| value_proposal(m, tv, spec_replicas, tol, &inputs.pods, trace));
                match r {
                    Ok(p) => {
                        *status = MetricStatus {
                            r#type: "Object".into(),
                            object: Some(ObjectMetricStatus {
                                metric: ident,
                                current: Some(MetricValueStatus {
                                    value: milli(p.value),
                                    ..Default::default()
                                }),
                                described_object: Some(obj.clone()),
                            }),
                            ..Default::default()
                        };
                        Ok((p, format!("{} metric {}", obj.kind, id.name)))
                    }
                    Err(e) => {
                        let w = wrap(&e);
                        fail("FailedGetObjectMetric", e, w)
                    }
                }
            } else if target.r#type == "AverageValue" && !target.average_value.is_empty() {
                let tv = target_milli(&target.average_value).unwrap_or(0);
                match value {
                    Ok((usage, ts)) => {
                        let (n, per) =
                            calc::per_pod_replicas(status_replicas, usage, tv, tol, trace);
                        *status = MetricStatus {
                            r#type: "Object".into(),
                            object: Some(ObjectMetricStatus {
                                metric: ident,
                                current: Some(MetricValueStatus {
                                    average_value: milli(per),
                                    ..Default::default()
                                }),
                                described_object: Some(obj.clone()),
                            }),
                            ..Default::default()
                        };
                        let p = Proposal {
                            replicas: n,
                            utilization: None,
                            value: per,
                            timestamp_ms: ts,
                        };
                        Ok((
                            p,
                            format!(
                                "external metric {}({})",
                                id.name,
                                spec::go_selector(id.selector.as_ref())
                            ),
                        ))
                    }
                    Err(e) => {
                        let e2 = format!("failed to get {} object metric: {e}", id.name);
                        let w = wrap(&e2);
                        fail("FailedGetObjectMetric", e, w)
                    }
                }
            } else {
                let e = "invalid object metric source: neither a value target nor an average value target was set".to_string();
                let w = wrap(&e);
                fail("FailedGetObjectMetric", e, w)
            }
        }
        "External" => {
            let src = m.external.clone().unwrap_or_default();
            let id = src.metric.clone().unwrap_or_default();
            let name = id.name.clone();
            let wrap = |e: &str| format!("failed to get {name} external metric value: {e}");
            let sum = match input {
                MetricInput::External(Ok(items)) if !items.is_empty() => Ok((
                    items
                        .iter()
                        .map(|v| {
                            Quantity::parse(&v.value)
                                .map(|q| q.milli_value())
                                .unwrap_or(0)
                        })
                        .sum::<i64>(),
                    parse_time_ms(&items[0].timestamp).unwrap_or(0),
                )),
                MetricInput::External(Err(e)) => Err(e.clone()),
                _ => Err("no metrics returned from external metrics API".to_string()),
            }
            .map_err(|e| {
                format!(
                    "unable to get external metric {}/{}/{}: {e}",
                    ns,
                    name,
                    spec::go_selector(id.selector.as_ref())
                )
            });
            let ident = Some(MetricIdentifier {
                name: name.clone(),
                selector: id.selector.clone(),
            });
            let proposal_name = format!(
                "external metric {}({})",
                name,
                spec::go_selector(id.selector.as_ref())
            );
            if let Some(tv) = target_milli(&target.average_value) {
                match sum {
                    Ok((usage, ts)) => {
                        let (n, per) =
                            calc::per_pod_replicas(status_replicas, usage, tv, tol, trace);
                        *status = MetricStatus {
                            r#type: "External".into(),
                            external: Some(ExternalMetricStatus {
                                metric: ident,
                                current: Some(MetricValueStatus {
                                    average_value: milli(per),
                                    ..Default::default()
                                }),
                            }),
                            ..Default::default()
                        };
                        Ok((
                            Proposal {
                                replicas: n,
                                utilization: None,
                                value: per,
                                timestamp_ms: ts,
                            },
                            proposal_name,
                        ))
                    }
                    Err(e) => {
                        let w = wrap(&format!("failed to get {name} external metric: {e}"));
                        fail("FailedGetExternalMetric", e, w)
                    }
                }
            } else if let Some(tv) = target_milli(&target.value) {
                let r = sum
                    .and_then(|m| value_proposal(m, tv, spec_replicas, tol, &inputs.pods, trace));
                match r {
                    Ok(p) => {
                        *status = MetricStatus {
                            r#type: "External".into(),
                            external: Some(ExternalMetricStatus {
                                metric: ident,
                                current: Some(MetricValueStatus {
                                    value: milli(p.value),
                                    ..Default::default()
                                }),
                            }),
                            ..Default::default()
                        };
                        Ok((p, proposal_name))
                    }
                    Err(e) => {
                        let w = wrap(&format!("failed to get external metric {name}: {e}"));
                        fail("FailedGetExternalMetric", e, w)
                    }
                }
            } else {
                let e = "invalid external metric source: neither a value target nor an average value target was set".to_string();
                let w = wrap(&e);
                fail("FailedGetExternalMetric", e, w)
            }
        }
        other => {
            let e = format!("unknown metric source type {other:?}");
            fail("InvalidMetricSourceType", e.clone(), e)
        }
    }
}
