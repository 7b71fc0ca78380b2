//! Builders for the table tests: upstream's test fixtures (pods named test-pod-N with two
//! containers, each requesting the resource and using the level; metrics with a 1-minute
//! window) as Pod and PodMetrics objects, sent through `Autoscaler.Recommend`.
#![allow(dead_code)]
use std::sync::Arc;

use coxswain_autoscaler::engine::{Config, Engine};
use coxswain_autoscaler::metrics::FakeMetrics;
use coxswain_autoscaler::service::AutoscalerService;
use coxswain_autoscaler::v1::autoscaler_server::Autoscaler;
use coxswain_autoscaler::v1::{
    Condition, Container, ContainerMetrics, Decision, ObjectMeta, Pod, PodMetrics, PodMetricsList,
    PodSpec, PodStatus, RecommendRequest, ResourceRequirements, Scenario, ScenarioPods,
};
use coxswain_client::{Client, Informer};

pub const NOW: &str = "2026-12-06T12:00:00Z";
pub const NOW_SECS: i64 = 1_796_558_400;

pub fn at(offset_secs: i64) -> String {
    coxswain_api::time::format_rfc3339(NOW_SECS + offset_secs)
}

/// A pod as upstream's fixture: Running, Ready=`ready`, started at `start` (RFC 3339).
#[derive(Clone)]
pub struct P {
    pub ready: &'static str,
    pub phase: &'static str,
    pub start: String,
    pub deleted: bool,
    pub request: Option<&'static str>,
}

impl Default for P {
    fn default() -> Self {
        P {
            ready: "True",
            phase: "Running",
            // Upstream's zero start time: long ago.
            start: "1970-01-01T00:00:00Z".into(),
            deleted: false,
            request: Some("1.0"),
        }
    }
}

/// Upstream's hotCPUCreationTime (now: within the initialization period).
pub fn hot() -> String {
    at(0)
}
/// Upstream's coolCPUCreationTime (3 minutes ago, past a 2-minute initialization period).
pub fn cool() -> String {
    at(-180)
}

pub fn pods(resource: &str, specs: &[P]) -> Vec<Pod> {
    specs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let container = |n: &str| Container {
                name: n.into(),
                image: "nginx".into(),
                resources: p.request.map(|r| ResourceRequirements {
                    requests: [(resource.to_string(), r.to_string())]
                        .into_iter()
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            Pod {
                api_version: "v1".into(),
                kind: "Pod".into(),
                metadata: Some(ObjectMeta {
                    name: format!("test-pod-{i}"),
                    namespace: "test-namespace".into(),
                    labels: [("name".to_string(), "test-pod".to_string())]
                        .into_iter()
                        .collect(),
                    deletion_timestamp: if p.deleted { at(0) } else { String::new() },
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container("container0"), container("container1")],
                    ..Default::default()
                }),
                status: Some(PodStatus {
                    phase: p.phase.into(),
                    start_time: p.start.clone(),
                    conditions: vec![Condition {
                        r#type: "Ready".into(),
                        status: p.ready.into(),
                        // Readiness settled when the pod started.
                        last_transition_time: p.start.clone(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }
        })
        .collect()
}

/// PodMetrics for test-pod-0.. with `levels` (milli) per container, sampled `ts` with a 1m window.
pub fn pod_metrics(resource: &str, levels: &[i64], ts: &str) -> PodMetricsList {
    PodMetricsList {
        items: levels
            .iter()
            .enumerate()
            .map(|(i, l)| PodMetrics {
                metadata: Some(ObjectMeta {
                    name: format!("test-pod-{i}"),
                    namespace: "test-namespace".into(),
                    ..Default::default()
                }),
                timestamp: ts.into(),
                window: "1m".into(),
                containers: (0..2)
                    .map(|c| ContainerMetrics {
                        name: format!("container{c}"),
                        usage: [(resource.to_string(), format!("{l}m"))]
                            .into_iter()
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The service over an engine with no store behind it (every input comes from the scenario)
/// and upstream's testing periods (2m CPU initialization, 10s readiness delay).
pub fn service() -> AutoscalerService {
    AutoscalerService::new(engine())
}

/// The engine behind [`service`].
pub fn engine() -> Arc<Engine> {
    let client = Client::lazy("http://127.0.0.1:9").expect("client");
    let mut config = Config::default();
    config.decide.calc.cpu_initialization_period_ms = 120_000;
    config.decide.calc.initial_readiness_delay_ms = 10_000;
    let engine = Engine::new(
        client,
        Arc::new(FakeMetrics::default()),
        coxswain_metrics::select::with_label_index(Informer::<Pod>::detached()).start(),
        config,
    );
    Arc::new(engine)
}

pub fn hpa(metrics_yaml: &str, min: i32, max: i32, behavior_yaml: &str) -> String {
    format!(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\n  namespace: test-namespace\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: d\n  minReplicas: {min}\n  maxReplicas: {max}\n  metrics:\n{metrics_yaml}{behavior_yaml}"
    )
}

pub fn cpu_utilization(target: i32) -> String {
    format!("  - type: Resource\n    resource:\n      name: cpu\n      target:\n        type: Utilization\n        averageUtilization: {target}\n")
}

pub fn scenario(current: i32, pods: Vec<Pod>, metrics: Option<PodMetricsList>) -> Scenario {
    Scenario {
        spec_replicas: Some(current),
        selector: Some("name=test-pod".into()),
        pods: Some(ScenarioPods { items: pods }),
        pod_metrics: metrics,
        now: NOW.into(),
        replace_memory: true,
        ..Default::default()
    }
}

pub async fn recommend(manifest: String, s: Scenario) -> Result<Decision, tonic::Status> {
    recommend_with(&service(), manifest, s).await
}

pub async fn recommend_with(
    svc: &AutoscalerService,
    manifest: String,
    s: Scenario,
) -> Result<Decision, tonic::Status> {
    svc.recommend(tonic::Request::new(RecommendRequest {
        manifest,
        scenario: Some(s),
        ..Default::default()
    }))
    .await
    .map(|r| r.into_inner())
}
