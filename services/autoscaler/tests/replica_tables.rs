//! Upstream's replica calculator tables (replica_calculator_test.go), re-expressed: each case
//! goes through `Autoscaler.Recommend` with the pods and metric samples as a scenario, and the
//! metric's proposal, current value and the pods set aside are checked.
mod common;

use common::*;
use coxswain_autoscaler::v1::{
    ExternalMetricValue, ExternalMetricValueList, MetricValue, MetricValueList, ObjectReference,
};

struct Case {
    name: &'static str,
    current: i32,
    pods: Vec<P>,
    levels: Vec<i64>,
    target: i32,
    /// (replicas, utilization, raw average per pod in milli)
    expect: Option<(i32, i32, i64)>,
    error: Option<&'static str>,
}

fn p(ready: &'static str) -> P {
    P {
        ready,
        ..P::default()
    }
}

fn phase(phase: &'static str, ready: &'static str) -> P {
    P {
        phase,
        ready,
        ..P::default()
    }
}

fn started(start: String, ready: &'static str) -> P {
    P {
        start,
        ready,
        ..P::default()
    }
}

fn n(k: usize) -> Vec<P> {
    vec![P::default(); k]
}

async fn run(c: Case) {
    let d = recommend(
        hpa(&cpu_utilization(c.target), 1, 100, ""),
        scenario(
            c.current,
            pods("cpu", &c.pods),
            Some(pod_metrics("cpu", &c.levels, NOW)),
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("{}: {e}", c.name));
    let m = &d.metrics[0];
    if let Some(err) = c.error {
        assert!(m.replicas.is_none(), "{}: {m:?}", c.name);
        assert!(
            m.error.contains(err),
            "{}: {:?} should contain {err:?}",
            c.name,
            m.error
        );
        assert_eq!(m.error_reason, "FailedGetResourceMetric", "{}", c.name);
        return;
    }
    let (replicas, util, value) = c.expect.expect("expectation");
    assert_eq!(m.replicas, Some(replicas), "{}: {m:#?}", c.name);
    let cur = m
        .current
        .as_ref()
        .and_then(|s| s.resource.as_ref())
        .and_then(|r| r.current.as_ref())
        .expect("current");
    assert_eq!(cur.average_utilization, Some(util), "{}", c.name);
    assert_eq!(
        cur.average_value,
        coxswain_api::quantity::Quantity::from_milli(value).canonical(),
        "{}",
        c.name
    );
}

#[tokio::test]
async fn resource_utilization_tables() {
    let cases = vec![
        Case {
            name: "ScaleUp",
            current: 3,
            pods: n(3),
            levels: vec![300, 500, 700],
            target: 30,
            expect: Some((5, 50, 2 * 500)),
            error: None,
        },
        Case {
            name: "ScaleUpUnreadyLessScale",
            current: 3,
            pods: vec![p("False"), p("True"), p("True")],
            levels: vec![300, 500, 700],
            target: 30,
            expect: Some((4, 60, 2 * 600)),
            error: None,
        },
        Case {
            name: "ScaleUpHotCpuLessScale",
            current: 3,
            pods: vec![
                started(hot(), "True"),
                started(cool(), "True"),
                started(cool(), "True"),
            ],
            levels: vec![300, 500, 700],
            target: 30,
            expect: Some((4, 60, 2 * 600)),
            error: None,
        },
        Case {
            name: "ScaleUpUnreadyNoScale",
            current: 3,
            pods: vec![p("True"), p("False"), p("False")],
            levels: vec![400, 500, 700],
            target: 30,
            expect: Some((3, 40, 2 * 400)),
            error: None,
        },
        Case {
            name: "ScaleHotCpuNoScale",
            current: 3,
            pods: vec![
                started(cool(), "True"),
                started(hot(), "False"),
                started(hot(), "False"),
            ],
            levels: vec![400, 500, 700],
            target: 30,
            expect: Some((3, 40, 2 * 400)),
            error: None,
        },
        Case {
            name: "ScaleUpIgnoresFailedPods",
            current: 2,
            pods: vec![
                p("True"),
                p("True"),
                phase("Failed", "False"),
                phase("Failed", "False"),
            ],
            levels: vec![500, 700],
            target: 30,
            expect: Some((4, 60, 2 * 600)),
            error: None,
        },
        Case {
            name: "ScaleUpIgnoresDeletionPods",
            current: 2,
            pods: vec![
                p("True"),
                p("True"),
                P {
                    deleted: true,
                    ready: "False",
                    ..P::default()
                },
                P {
                    deleted: true,
                    ready: "False",
                    ..P::default()
                },
            ],
            levels: vec![500, 700],
            target: 30,
            expect: Some((4, 60, 2 * 600)),
            error: None,
        },
        Case {
            name: "ScaleDown",
            current: 5,
            pods: n(5),
            levels: vec![100, 300, 500, 250, 250],
            target: 50,
            expect: Some((3, 28, 2 * 280)),
            error: None,
        },
        Case {
            name: "ScaleDownIncludeUnreadyPods",
            current: 5,
            pods: vec![p("True"), p("True"), p("True"), p("False"), p("False")],
            levels: vec![100, 300, 500, 250, 250],
            target: 50,
            expect: Some((2, 30, 2 * 300)),
            error: None,
        },
        Case {
            name: "ScaleDownExcludeUnscheduledPods",
            current: 5,
            pods: vec![
                p("True"),
                phase("Pending", "False"),
                phase("Pending", "False"),
                phase("Pending", "False"),
                phase("Pending", "False"),
            ],
            levels: vec![100],
            target: 50,
            expect: Some((1, 10, 2 * 100)),
            error: None,
        },
        Case {
            name: "ScaleDownIgnoreHotCpuPods",
            current: 5,
            pods: vec![
                started(cool(), "True"),
                started(cool(), "True"),
                started(cool(), "True"),
                started(hot(), "True"),
                started(hot(), "True"),
            ],
            levels: vec![100, 300, 500, 250, 250],
            target: 50,
            expect: Some((2, 30, 2 * 300)),
            error: None,
        },
        Case {
            name: "ScaleDownIgnoresFailedPods",
            current: 5,
            pods: vec![
                p("True"),
                p("True"),
                p("True"),
                p("True"),
                p("True"),
                phase("Failed", "False"),
                phase("Failed", "False"),
            ],
            levels: vec![100, 300, 500, 250, 250],
            target: 50,
            expect: Some((3, 28, 2 * 280)),
            error: None,
        },
        Case {
            name: "Tolerance",
            current: 3,
            pods: n(3),
            levels: vec![1010, 1030, 1020],
            target: 100,
            expect: Some((3, 102, 2 * 1020)),
            error: None,
        },
        Case {
            name: "SuperfluousMetrics",
            current: 4,
            pods: n(4),
            levels: vec![4000, 9500, 3000, 7000, 3200, 2000],
            target: 100,
            expect: Some((24, 587, 2 * 5875)),
            error: None,
        },
        // Missing pods: on scale-down they count at 100% of their request.
        Case {
            name: "MissingMetricsNoChangeEq",
            current: 2,
            pods: n(2),
            levels: vec![1000],
            target: 100,
            expect: Some((2, 100, 2 * 1000)),
            error: None,
        },
        Case {
            name: "MissingMetricsNoChangeGt",
            current: 2,
            pods: n(2),
            levels: vec![1900],
            target: 100,
            expect: Some((2, 190, 2 * 1900)),
            error: None,
        },
        Case {
            name: "MissingMetricsNoChangeLt",
            current: 2,
            pods: n(2),
            levels: vec![600],
            target: 100,
            expect: Some((2, 60, 2 * 600)),
            error: None,
        },
        Case {
            name: "MissingMetricsUnreadyChange",
            current: 3,
            pods: vec![p("False"), p("True"), p("True")],
            levels: vec![100, 450],
            target: 50,
            expect: Some((3, 45, 2 * 450)),
            error: None,
        },
        Case {
            name: "MissingMetricsUnreadyScaleUp",
            current: 3,
            pods: vec![p("False"), p("True"), p("True")],
            levels: vec![100, 2000],
            target: 50,
            expect: Some((4, 200, 2 * 2000)),
            error: None,
        },
        Case {
            name: "MissingMetricsUnreadyScaleDown",
            current: 4,
            pods: vec![p("False"), p("True"), p("True"), p("True")],
            levels: vec![100, 100, 100],
            target: 50,
            expect: Some((3, 10, 2 * 100)),
            error: None,
        },
        Case {
            name: "DuringRollingUpdateWithMaxSurge",
            current: 2,
            pods: n(3),
            levels: vec![100, 100],
            target: 50,
            expect: Some((2, 10, 2 * 100)),
            error: None,
        },
        Case {
            name: "NoMetricsForAnyPod",
            current: 3,
            pods: n(3),
            levels: vec![],
            target: 100,
            expect: None,
            error: Some("no metrics returned from resource metrics API"),
        },
        Case {
            name: "AllPodsUnready",
            current: 3,
            pods: vec![p("False"), p("False"), p("False")],
            levels: vec![100, 100, 100],
            target: 50,
            expect: None,
            error: Some("did not receive metrics for targeted pods (pods might be unready)"),
        },
        Case {
            name: "MissingRequest",
            current: 1,
            pods: vec![P {
                request: None,
                ..P::default()
            }],
            levels: vec![100],
            target: 50,
            expect: None,
            error: Some("missing request for cpu in container container0 of Pod test-pod-0"),
        },
    ];
    for c in cases {
        run(c).await;
    }
}

#[tokio::test]
async fn set_aside_pods_are_named_with_reason_and_stand_in() {
    let d = recommend(
        hpa(&cpu_utilization(50), 1, 100, ""),
        scenario(
            3,
            pods("cpu", &[p("False"), p("True"), p("True")]),
            Some(pod_metrics("cpu", &[100, 2000], NOW)),
        ),
    )
    .await
    .unwrap();
    let m = &d.metrics[0];
    // test-pod-0 is unready (Ready=False, never ready); test-pod-2 has no metrics.
    let aside: Vec<(String, String, Option<i64>)> = m
        .set_aside
        .iter()
        .map(|s| (s.name.clone(), s.reason.clone(), s.stand_in))
        .collect();
    assert!(
        aside.contains(&("test-pod-2".into(), "missing".into(), Some(0))),
        "{aside:?}"
    );
    assert!(
        aside.contains(&("test-pod-0".into(), "unready".into(), Some(0))),
        "{aside:?}"
    );
    assert_eq!(m.usage_ratio, Some(4.0));
    assert!(m.new_usage_ratio.is_some());
}

fn values(levels: &[i64]) -> MetricValueList {
    MetricValueList {
        items: levels
            .iter()
            .enumerate()
            .map(|(i, l)| MetricValue {
                described_object: Some(ObjectReference {
                    kind: "Pod".into(),
                    name: format!("test-pod-{i}"),
                    namespace: "test-namespace".into(),
                    ..Default::default()
                }),
                metric_name: "qps".into(),
                timestamp: NOW.into(),
                value: format!("{l}m"),
                ..Default::default()
            })
            .collect(),
    }
}

fn pods_metric(target_milli: i64) -> String {
    format!("  - type: Pods\n    pods:\n      metric:\n        name: qps\n      target:\n        type: AverageValue\n        averageValue: {target_milli}m\n")
}

#[tokio::test]
#[allow(clippy::type_complexity)]
async fn custom_metric_tables() {
    // (name, current, readiness/start, levels, target, expected replicas, expected average)
    let cases: Vec<(&str, i32, Vec<P>, Vec<i64>, i64, i32, &str)> = vec![
        (
            "ScaleUpCM",
            3,
            n(3),
            vec![20000, 10000, 30000],
            15000,
            4,
            "20",
        ),
        (
            "ScaleUpCMUnreadyHotCpuNoLessScale",
            3,
            vec![
                started(cool(), "True"),
                started(cool(), "True"),
                started(hot(), "False"),
            ],
            vec![50000, 10000, 30000],
            15000,
            6,
            "30",
        ),
        (
            "ScaleUpCMUnreadyHotCpuScaleWouldScaleDown",
            3,
            vec![
                started(hot(), "False"),
                started(cool(), "True"),
                started(hot(), "False"),
            ],
            vec![50000, 15000, 30000],
            15000,
            7,
            "31666m",
        ),
        (
            "ScaleDownCM",
            5,
            n(5),
            vec![12000, 12000, 12000, 12000, 12000],
            20000,
            3,
            "12",
        ),
        // At target with a pod missing: the missing pod counts as 0, the recomputed ratio is
        // below 1 and the pods counted give 2.
        (
            "MissingMetricsCMAtTarget",
            3,
            n(3),
            vec![20000, 10000],
            15000,
            2,
            "15",
        ),
    ];
    for (name, current, ps, levels, target, want, avg) in cases {
        let mut s = scenario(current, pods("cpu", &ps), None);
        s.pods_metrics.insert("qps".into(), values(&levels));
        let d = recommend(hpa(&pods_metric(target), 1, 100, ""), s)
            .await
            .unwrap();
        let m = &d.metrics[0];
        assert_eq!(m.replicas, Some(want), "{name}: {m:#?}");
        let cur = m
            .current
            .as_ref()
            .and_then(|s| s.pods.as_ref())
            .and_then(|p| p.current.as_ref())
            .unwrap();
        assert_eq!(cur.average_value, avg, "{name}");
        assert_eq!(m.metric_name, "pods metric qps", "{name}");
    }
}

#[tokio::test]
async fn object_and_external_metric_tables() {
    let object = |ty: &str, field: &str, v: i64| {
        format!("  - type: Object\n    object:\n      describedObject:\n        apiVersion: apps/v1\n        kind: Deployment\n        name: some-deployment\n      metric:\n        name: qps\n      target:\n        type: {ty}\n        {field}: {v}m\n")
    };
    let external = |field: &str, ty: &str, v: i64| {
        format!("  - type: External\n    external:\n      metric:\n        name: qps\n        selector:\n          matchLabels:\n            label: value\n      target:\n        type: {ty}\n        {field}: {v}m\n")
    };
    let obj_value = |v: i64| MetricValue {
        metric_name: "qps".into(),
        timestamp: NOW.into(),
        value: format!("{v}m"),
        ..Default::default()
    };
    let ext_value = |v: i64| ExternalMetricValueList {
        items: vec![ExternalMetricValue {
            metric_name: "qps".into(),
            timestamp: NOW.into(),
            value: format!("{v}m"),
            ..Default::default()
        }],
    };
    // (name, manifest metric, current, readiness, object value, external value, expected, current value)
    struct C {
        name: &'static str,
        metric: String,
        current: i32,
        ready: Vec<P>,
        obj: Option<i64>,
        ext: Option<i64>,
        want: i32,
        value: &'static str,
        avg: bool,
    }
    let cases = vec![
        C {
            name: "ScaleUpCMObject",
            metric: object("Value", "value", 15000),
            current: 3,
            ready: n(3),
            obj: Some(20000),
            ext: None,
            want: 4,
            value: "20",
            avg: false,
        },
        C {
            name: "ScaleUpCMPerPodObject",
            metric: object("AverageValue", "averageValue", 5000),
            current: 3,
            ready: n(3),
            obj: Some(20000),
            ext: None,
            want: 4,
            value: "6667m",
            avg: true,
        },
        C {
            name: "ScaleUpCMObjectIgnoresUnreadyPods",
            metric: object("Value", "value", 10000),
            current: 3,
            ready: vec![p("False"), p("True"), p("False")],
            obj: Some(50000),
            ext: None,
            want: 5,
            value: "50",
            avg: false,
        },
        C {
            name: "ScaleDownCMObject",
            metric: object("Value", "value", 20000),
            current: 5,
            ready: n(5),
            obj: Some(12000),
            ext: None,
            want: 3,
            value: "12",
            avg: false,
        },
        C {
            name: "ScaleDownPerPodCMObject",
            metric: object("AverageValue", "averageValue", 2000),
            current: 5,
            ready: n(5),
            obj: Some(6000),
            ext: None,
            want: 3,
            value: "1200m",
            avg: true,
        },
        C {
            name: "ScaleUpCMExternalIgnoresUnreadyPods",
            metric: external("value", "Value", 4400),
            current: 3,
            ready: vec![p("False"), p("True"), p("False")],
            obj: None,
            ext: Some(8600),
            want: 2,
            value: "8600m",
            avg: false,
        },
        C {
            name: "ScaleUpPerPodCMExternal",
            metric: external("averageValue", "AverageValue", 2150),
            current: 3,
            ready: n(3),
            obj: None,
            ext: Some(8600),
            want: 4,
            value: "2867m",
            avg: true,
        },
        C {
            name: "ScaleDownCMExternal",
            metric: external("value", "Value", 14334),
            current: 5,
            ready: n(5),
            obj: None,
            ext: Some(8600),
            want: 3,
            value: "8600m",
            avg: false,
        },
        C {
            name: "ScaleDownPerPodCMExternal",
            metric: external("averageValue", "AverageValue", 2867),
            current: 5,
            ready: n(5),
            obj: None,
            ext: Some(8600),
            want: 3,
            value: "1720m",
            avg: true,
        },
    ];
    for c in cases {
        let mut s = scenario(c.current, pods("cpu", &c.ready), None);
        if let Some(v) = c.obj {
            s.object_metrics.insert("qps".into(), obj_value(v));
        }
        if let Some(v) = c.ext {
            s.external_metrics.insert("qps".into(), ext_value(v));
        }
        let d = recommend(hpa(&c.metric, 1, 100, ""), s).await.unwrap();
        let m = &d.metrics[0];
        assert_eq!(m.replicas, Some(c.want), "{}: {m:#?}", c.name);
        let st = m.current.clone().unwrap();
        let cur = st
            .object
            .and_then(|o| o.current)
            .or_else(|| st.external.and_then(|e| e.current))
            .unwrap();
        let got = if c.avg { cur.average_value } else { cur.value };
        assert_eq!(got, c.value, "{}", c.name);
    }
}
