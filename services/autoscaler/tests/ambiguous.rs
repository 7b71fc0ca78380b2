//! Recommend checks the ambiguous selector as the controller does (upstream's
//! validateAndParseSelector): another HPA whose target selector selects any of these pods makes
//! both ScalingActive=False/AmbiguousSelector, and the what-if files nothing.
mod common;

use std::sync::Arc;

use common::*;
use coxswain_autoscaler::service::AutoscalerService;

#[tokio::test]
async fn another_hpa_selecting_the_pods_is_an_ambiguous_selector() {
    let engine = engine();
    let svc = AutoscalerService::new(engine.clone());
    let run = || {
        recommend_with(
            &svc,
            hpa(&cpu_utilization(50), 1, 10, ""),
            scenario(
                2,
                pods("cpu", &[P::default(), P::default()]),
                Some(pod_metrics("cpu", &[500, 500], NOW)),
            ),
        )
    };
    // Alone: a proposal.
    let d = run().await.expect("recommend");
    assert_eq!(d.desired_replicas, 2, "{d:?}");
    assert!(d.conditions.iter().any(|c| c.reason == "ValidMetricFound"));

    // The controller has filed another HPA whose target selects the same pods.
    let live: Vec<_> = pods("cpu", &[P::default()])
        .into_iter()
        .map(Arc::new)
        .collect();
    let both = engine.controlling("test-namespace/other", "test-namespace", "name", &live);
    assert_eq!(both, ["test-namespace/other"]);
    let d = run().await.expect("recommend");
    let c = d
        .conditions
        .iter()
        .find(|c| c.r#type == "ScalingActive")
        .expect("ScalingActive");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "AmbiguousSelector")
    );
    assert_eq!(
        c.message,
        "pods by selector name=test-pod are controlled by multiple HPAs: [test-namespace/h test-namespace/other]"
    );
    assert!(d.events.iter().any(|e| e.reason == "AmbiguousSelector"));
    let failed = d
        .events
        .iter()
        .find(|e| e.reason == "FailedComputeMetricsReplicas")
        .expect("FailedComputeMetricsReplicas");
    assert_eq!(failed.message, "selector is ambiguous");
    assert_eq!(
        d.desired_replicas, 0,
        "the status' desired replicas are kept"
    );

    // The what-if filed nothing: only the controller's own HPA is known to select the pods.
    let labels: Vec<_> = live
        .iter()
        .map(|p| &p.metadata.as_ref().unwrap().labels)
        .collect();
    assert_eq!(
        engine.controlling_peek("test-namespace/x", "test-namespace", "name=none", labels),
        ["test-namespace/other"]
    );

    // Pods the other HPA does not select are not ambiguous.
    let mut other_pods = pods("cpu", &[P::default(), P::default()]);
    for p in &mut other_pods {
        let m = p.metadata.as_mut().unwrap();
        m.labels = [("app".to_string(), "solo".to_string())]
            .into_iter()
            .collect();
    }
    let mut s = scenario(2, other_pods, Some(pod_metrics("cpu", &[500, 500], NOW)));
    s.selector = Some("app=solo".into());
    engine.controlling(
        "test-namespace/other",
        "test-namespace",
        "name=test-pod",
        &live,
    );
    let d = recommend_with(&svc, hpa(&cpu_utilization(50), 1, 10, ""), s)
        .await
        .expect("recommend");
    assert!(
        d.conditions.iter().all(|c| c.reason != "AmbiguousSelector"),
        "{:?}",
        d.conditions
    );
}
