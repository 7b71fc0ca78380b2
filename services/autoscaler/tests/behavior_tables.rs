//! The horizontal controller's normalization (horizontal_test.go's facts): the legacy limits,
//! stabilization windows, scaling policies over past scale events, selectPolicy, the per-HPA
//! tolerance, the replica-count branches, invalid metrics, conditions and Events — through
//! `Autoscaler.Recommend`, with the controller's memory given by the scenario.
mod common;

use common::*;
use coxswain_autoscaler::v1::autoscaler_server::Autoscaler;
use coxswain_autoscaler::v1::{
    Decision, ExternalMetricValue, ExternalMetricValueList, RecommendRequest, TimedReplicas,
};

/// An External AverageValue metric whose proposal is exactly `desired` (usage / 1 per pod).
fn external_avg() -> String {
    "  - type: External\n    external:\n      metric:\n        name: qps\n      target:\n        type: AverageValue\n        averageValue: '1'\n".into()
}

fn tr(replicas: i32, offset: i64) -> TimedReplicas {
    TimedReplicas {
        replicas,
        time: at(offset),
    }
}

#[derive(Default)]
struct Mem {
    recs: Vec<TimedReplicas>,
    up: Vec<TimedReplicas>,
    down: Vec<TimedReplicas>,
}

async fn decide(
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
    behavior: &str,
    mem: Mem,
) -> Decision {
    let mut s = scenario(
        current,
        pods("cpu", &vec![P::default(); current.max(1) as usize]),
        None,
    );
    s.external_metrics.insert(
        "qps".into(),
        ExternalMetricValueList {
            items: vec![ExternalMetricValue {
                metric_name: "qps".into(),
                timestamp: NOW.into(),
                value: desired.to_string(),
                ..Default::default()
            }],
        },
    );
    s.recommendations = mem.recs;
    s.scale_up_events = mem.up;
    s.scale_down_events = mem.down;
    recommend(hpa(&external_avg(), min, max, behavior), s)
        .await
        .expect("recommend")
}

fn cond<'a>(d: &'a Decision, t: &str) -> (&'a str, &'a str, &'a str) {
    let c = d
        .conditions
        .iter()
        .find(|c| c.r#type == t)
        .unwrap_or_else(|| panic!("no {t} in {:#?}", d.conditions));
    (c.status.as_str(), c.reason.as_str(), c.message.as_str())
}

/// Memory with a recent recommendation equal to `r` (so the first-sync memory is not added).
fn recent(r: i32) -> Mem {
    Mem {
        recs: vec![tr(r, -1)],
        ..Default::default()
    }
}

#[tokio::test]
async fn legacy_path_limits() {
    // Scale-up limit max(2x, 4): 1 -> 4.
    let d = decide(1, 10, 1, 100, "", recent(1)).await;
    assert_eq!(d.desired_replicas, 4);
    assert_eq!(
        cond(&d, "ScalingLimited"),
        (
            "True",
            "ScaleUpLimit",
            "the desired replica count is increasing faster than the maximum scale rate"
        )
    );
    // 3 -> 6 (twice the current).
    assert_eq!(
        decide(3, 20, 1, 100, "", recent(3)).await.desired_replicas,
        6
    );
    // Max below the rate limit: TooManyReplicas.
    let d = decide(3, 8, 1, 5, "", recent(3)).await;
    assert_eq!(d.desired_replicas, 5);
    assert_eq!(cond(&d, "ScalingLimited").1, "TooManyReplicas");
    // Below min.
    let d = decide(5, 2, 3, 10, "", recent(2)).await;
    assert_eq!(d.desired_replicas, 3);
    assert_eq!(
        cond(&d, "ScalingLimited"),
        (
            "True",
            "TooFewReplicas",
            "the desired replica count is less than the minimum replica count"
        )
    );
    assert_eq!(d.rescale_reason, "All metrics below target");
    assert_eq!(
        d.events[0].message,
        "New size: 3; reason: All metrics below target"
    );
}

#[tokio::test]
async fn legacy_downscale_stabilization() {
    // The highest recommendation of the last 5 minutes wins; older ones do not count.
    let mem = Mem {
        recs: vec![tr(8, -60), tr(9, -400)],
        ..Default::default()
    };
    let d = decide(8, 4, 1, 10, "", mem).await;
    assert_eq!(d.desired_replicas, 8);
    assert!(!d.rescale);
    assert_eq!(cond(&d, "AbleToScale"), ("True", "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation"));
    let s = d.stabilization.unwrap();
    assert_eq!(
        (s.mode.as_str(), s.recommendation, s.window.len()),
        ("legacy", 8, 2)
    );
    // The first sync remembers the current replicas: no scale-down on it.
    let d = decide(6, 2, 1, 10, "", Mem::default()).await;
    assert_eq!(d.desired_replicas, 6);
    // Past the window.
    let d = decide(
        8,
        4,
        1,
        10,
        "",
        Mem {
            recs: vec![tr(8, -301)],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(d.desired_replicas, 4);
    assert_eq!(
        cond(&d, "AbleToScale"),
        (
            "True",
            "SucceededRescale",
            "the HPA controller was able to update the target scale to 4"
        )
    );
}

const DEFAULT_BEHAVIOR: &str =
    "  behavior:\n    scaleUp: {}\n    scaleDown:\n      stabilizationWindowSeconds: 0\n";

#[tokio::test]
async fn behavior_scale_up_policies() {
    // Defaults: Pods 4 and Percent 100 per 15 s, Max: 2 -> max(6, 4) = 6.
    let d = decide(2, 20, 1, 100, DEFAULT_BEHAVIOR, recent(2)).await;
    assert_eq!(d.desired_replicas, 6);
    let l = d.limit.unwrap();
    assert_eq!(
        (l.reason.as_str(), l.limiting_policy.as_str(), l.rate_limit),
        ("ScaleUpLimit", "Pods 4 per 15s", 6)
    );
    // 10 -> max(14, 20) = 20.
    assert_eq!(
        decide(10, 100, 1, 100, DEFAULT_BEHAVIOR, recent(10))
            .await
            .desired_replicas,
        20
    );
    // selectPolicy Min: min(14, 20) = 14.
    let min = "  behavior:\n    scaleUp:\n      selectPolicy: Min\n      policies:\n      - type: Pods\n        value: 4\n        periodSeconds: 15\n      - type: Percent\n        value: 100\n        periodSeconds: 15\n";
    assert_eq!(
        decide(10, 100, 1, 100, min, recent(10))
            .await
            .desired_replicas,
        14
    );
    // Disabled: no scale-up at all.
    let disabled = "  behavior:\n    scaleUp:\n      selectPolicy: Disabled\n";
    let d = decide(3, 8, 1, 100, disabled, recent(3)).await;
    assert_eq!((d.desired_replicas, d.rescale), (3, false));
    assert_eq!(cond(&d, "ScalingLimited").1, "ScaleUpLimit");
    // Scale events within the period count against the policy: +4 15 s ago used it up.
    let mem = Mem {
        recs: vec![tr(6, -1)],
        up: vec![tr(4, -10)],
        ..Default::default()
    };
    let pods_only = "  behavior:\n    scaleUp:\n      policies:\n      - type: Pods\n        value: 4\n        periodSeconds: 15\n";
    let d = decide(6, 20, 1, 100, pods_only, mem).await;
    assert_eq!(d.desired_replicas, 6);
    assert_eq!(d.limit.unwrap().policies[0].period_start_replicas, 2);
}

#[tokio::test]
async fn behavior_scale_down_policies() {
    // Pods 1 per 60 s, one replica removed 30 s ago: no further scale-down yet.
    let b = "  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 0\n      policies:\n      - type: Pods\n        value: 1\n        periodSeconds: 60\n";
    let mem = Mem {
        recs: vec![tr(4, -1)],
        down: vec![tr(1, -30)],
        ..Default::default()
    };
    let d = decide(4, 1, 1, 10, b, mem).await;
    assert_eq!((d.desired_replicas, d.rescale), (4, false));
    assert_eq!(
        cond(&d, "ScalingLimited"),
        (
            "True",
            "ScaleDownLimit",
            "the desired replica count is decreasing faster than the maximum scale rate"
        )
    );
    // The event left the period: one replica.
    let mem = Mem {
        recs: vec![tr(4, -1)],
        down: vec![tr(1, -61)],
        ..Default::default()
    };
    assert_eq!(decide(4, 1, 1, 10, b, mem).await.desired_replicas, 3);
    // Percent 50 per 60 s: 10 -> 5.
    let pct = "  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 0\n      policies:\n      - type: Percent\n        value: 50\n        periodSeconds: 60\n";
    assert_eq!(
        decide(10, 1, 1, 10, pct, recent(1)).await.desired_replicas,
        5
    );
}

#[tokio::test]
async fn behavior_stabilization_windows() {
    // Up window 60 s with a lower recommendation 30 s ago: held.
    let up = "  behavior:\n    scaleUp:\n      stabilizationWindowSeconds: 60\n";
    let d = decide(
        3,
        8,
        1,
        10,
        up,
        Mem {
            recs: vec![tr(3, -30)],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(d.desired_replicas, 3);
    assert_eq!(cond(&d, "AbleToScale").1, "ScaleUpStabilized");
    // Down window 60 s: the highest recent recommendation (7) wins over 4.
    let down = "  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 60\n";
    let d = decide(
        8,
        4,
        1,
        10,
        down,
        Mem {
            recs: vec![tr(7, -30), tr(9, -90)],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(d.desired_replicas, 7);
    // The rescale then sets AbleToScale to SucceededRescale; the step keeps its reason.
    assert_eq!(cond(&d, "AbleToScale").1, "SucceededRescale");
    let s = d.stabilization.unwrap();
    assert_eq!(s.reason, "ScaleDownStabilized");
    assert_eq!(
        (s.down_recommendation, s.up_recommendation, s.recommendation),
        (7, 4, 7)
    );
    // scaleDown without a window gets the controller's --horizontal-pod-autoscaler-downscale-
    // stabilization (5 minutes).
    let d = decide(
        8,
        4,
        1,
        10,
        "  behavior:\n    scaleDown:\n      selectPolicy: Max\n",
        Mem {
            recs: vec![tr(8, -200)],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(d.desired_replicas, 8);
}

#[tokio::test]
async fn tolerance_default_and_per_hpa() {
    // 10 replicas, 9.5 per pod on a target of 1: within the default 0.1.
    let mut s = scenario(10, pods("cpu", &vec![P::default(); 10]), None);
    s.external_metrics.insert(
        "qps".into(),
        ExternalMetricValueList {
            items: vec![ExternalMetricValue {
                metric_name: "qps".into(),
                timestamp: NOW.into(),
                value: "9500m".into(),
                ..Default::default()
            }],
        },
    );
    s.recommendations = vec![tr(10, -1)];
    let d = recommend(hpa(&external_avg(), 1, 20, ""), s.clone())
        .await
        .unwrap();
    assert_eq!(d.metrics[0].replicas, Some(10));
    assert_eq!(d.metrics[0].outcome, "within tolerance");
    // 6 per pod: 0.6 is outside 0.1, inside a per-HPA scale-down tolerance of 0.5.
    s.external_metrics.get_mut("qps").unwrap().items[0].value = "6".into();
    assert_eq!(
        recommend(hpa(&external_avg(), 1, 20, ""), s.clone())
            .await
            .unwrap()
            .metrics[0]
            .replicas,
        Some(6)
    );
    let tol = "  behavior:\n    scaleDown:\n      tolerance: '0.5'\n";
    let d = recommend(hpa(&external_avg(), 1, 20, tol), s)
        .await
        .unwrap();
    assert_eq!(d.metrics[0].replicas, Some(10));
    assert_eq!(d.metrics[0].tolerance_down, 0.5);
}

#[tokio::test]
async fn replica_count_branches() {
    // The target at 0: scaling disabled.
    let d = decide(0, 5, 1, 10, "", Mem::default()).await;
    assert_eq!(
        (d.desired_replicas, d.rescale, d.path.as_str()),
        (0, false, "ScalingDisabled")
    );
    assert_eq!(
        cond(&d, "ScalingActive"),
        (
            "False",
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero"
        )
    );
    // Above max.
    let d = decide(12, 12, 1, 10, "", Mem::default()).await;
    assert_eq!(
        (d.desired_replicas, d.rescale_reason.as_str()),
        (10, "Current number of replicas above Spec.MaxReplicas")
    );
    // Below min.
    let d = decide(1, 1, 3, 10, "", Mem::default()).await;
    assert_eq!(
        (d.desired_replicas, d.rescale_reason.as_str()),
        (3, "Current number of replicas below Spec.MinReplicas")
    );
    assert_eq!(
        d.events[0].message,
        "New size: 3; reason: Current number of replicas below Spec.MinReplicas"
    );
    // A successful scale-up's Event names the metric.
    let d = decide(2, 3, 1, 10, "", recent(2)).await;
    assert_eq!(d.events[0].reason, "SuccessfulRescale");
    assert_eq!(
        d.events[0].message,
        "New size: 3; reason: external metric qps(nil) above target"
    );
    assert_eq!(cond(&d, "ScalingActive"), ("True", "ValidMetricFound", "the HPA was able to successfully calculate a replica count from external metric qps(nil)"));
}

#[tokio::test]
async fn invalid_metrics() {
    let two = format!("{}  - type: Pods\n    pods:\n      metric:\n        name: rps\n      target:\n        type: AverageValue\n        averageValue: '1'\n", external_avg());
    // One valid metric proposing a scale-up: scale, and report the invalid one.
    let d = decide_manifest(hpa(&two, 1, 10, ""), 2, 5).await;
    assert_eq!(d.desired_replicas, 4);
    assert_eq!(d.error, "invalid metrics (1 invalid out of 2), first error is: failed to get pods metric value: unable to get metric rps: no metrics returned from custom metrics API");
    assert!(d.events.iter().any(|e| e.reason == "FailedGetPodsMetric"
        && e.message == "unable to get metric rps: no metrics returned from custom metrics API"));
    // Proposing a scale-down: nothing changes, ScalingActive False from the invalid metric.
    let d = decide_manifest(hpa(&two, 1, 10, ""), 4, 1).await;
    assert_eq!(d.path, "FailedComputeMetricsReplicas");
    assert!(!d.rescale);
    assert_eq!(cond(&d, "ScalingActive"), ("False", "FailedGetPodsMetric", "the HPA was unable to compute the replica count: unable to get metric rps: no metrics returned from custom metrics API"));
    assert!(d
        .events
        .iter()
        .any(|e| e.reason == "FailedComputeMetricsReplicas"));
}

async fn decide_manifest(manifest: String, current: i32, desired: i32) -> Decision {
    let mut s = scenario(
        current,
        pods("cpu", &vec![P::default(); current as usize]),
        None,
    );
    s.external_metrics.insert(
        "qps".into(),
        ExternalMetricValueList {
            items: vec![ExternalMetricValue {
                metric_name: "qps".into(),
                timestamp: NOW.into(),
                value: desired.to_string(),
                ..Default::default()
            }],
        },
    );
    s.pods_metrics.insert("rps".into(), Default::default());
    s.recommendations = vec![tr(current, -1)];
    recommend(manifest, s).await.unwrap()
}

#[tokio::test]
async fn missing_cpu_request_condition_and_events() {
    let d = recommend(
        hpa(&cpu_utilization(50), 1, 10, ""),
        scenario(
            1,
            pods(
                "cpu",
                &[P {
                    request: None,
                    ..P::default()
                }],
            ),
            Some(pod_metrics("cpu", &[100], NOW)),
        ),
    )
    .await
    .unwrap();
    assert_eq!(cond(&d, "ScalingActive"), ("False", "FailedGetResourceMetric", "the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu in container container0 of Pod test-pod-0"));
    let reasons: Vec<&str> = d.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["FailedGetResourceMetric", "FailedComputeMetricsReplicas"]
    );
    assert_eq!(d.events[1].message, "invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: failed to get cpu utilization: missing request for cpu in container container0 of Pod test-pod-0");
}

#[tokio::test]
async fn bad_input_is_invalid_argument_with_the_field() {
    let svc = service();
    let call = |manifest: String, scenario| {
        let svc = svc.clone();
        async move {
            svc.recommend(tonic::Request::new(RecommendRequest {
                manifest,
                scenario,
                ..Default::default()
            }))
            .await
            .expect_err("must fail")
        }
    };
    let e = call(hpa(&cpu_utilization(50), 5, 3, ""), None).await;
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().contains(
            "spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`"
        ),
        "{}",
        e.message()
    );
    let e = call(hpa(&cpu_utilization(50), 1, 0, ""), None).await;
    assert!(
        e.message()
            .contains("spec.maxReplicas: Invalid value: 0: must be greater than 0"),
        "{}",
        e.message()
    );
    let e = call(hpa("  - type: Magic\n", 1, 3, ""), None).await;
    assert!(
        e.message()
            .contains("spec.metrics[0].type: Unsupported value: \"Magic\""),
        "{}",
        e.message()
    );
    let e = call(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n".into(),
        None,
    )
    .await;
    assert!(
        e.message()
            .starts_with("manifest.kind: Unsupported value: \"ConfigMap\""),
        "{}",
        e.message()
    );
    let mut s = scenario(1, vec![], None);
    s.now = "yesterday".into();
    let e = call(hpa(&cpu_utilization(50), 1, 3, ""), Some(s)).await;
    assert_eq!(
        e.message(),
        "scenario.now: Invalid value: \"yesterday\": must be an RFC 3339 time"
    );
    let mut s = scenario(1, vec![], None);
    s.recommendations = vec![TimedReplicas {
        replicas: 1,
        time: "x".into(),
    }];
    let e = call(hpa(&cpu_utilization(50), 1, 3, ""), Some(s)).await;
    assert!(
        e.message()
            .starts_with("scenario.recommendations[0].time: Invalid value"),
        "{}",
        e.message()
    );
    let e = svc
        .recommend(tonic::Request::new(RecommendRequest::default()))
        .await
        .expect_err("no name");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().starts_with("name: Required value"));
}
