//! Windows and policies over time, on tokio's paused clock: the controller's [`Clock`] moves
//! only when the test advances it, and each sync is [`decide`] on that clock's `now` with the
//! scale written back and remembered as the loop does.
mod common;

use std::time::Duration;

use common::*;
use coxswain_api::manifest::parse_manifests;
use coxswain_api::Object;
use coxswain_autoscaler::behavior::Memory;
use coxswain_autoscaler::calc::PodInfo;
use coxswain_autoscaler::decide::{
    decide, record_rescale, DecideConfig, Inputs, MetricInput, Scale,
};
use coxswain_autoscaler::engine::Clock;
use coxswain_autoscaler::v1::{ExternalMetricValue, HorizontalPodAutoscaler};

fn parse(manifest: &str) -> HorizontalPodAutoscaler {
    let mut o = parse_manifests(manifest)
        .expect("manifest")
        .remove(0)
        .object;
    coxswain_api::defaults::apply_defaults(&mut o);
    match o {
        Object::HorizontalPodAutoscaler(h) => h,
        _ => panic!("not an HPA"),
    }
}

/// A controller over one HPA whose External AverageValue metric proposes `want` replicas.
struct Sim {
    hpa: HorizontalPodAutoscaler,
    mem: Memory,
    cfg: DecideConfig,
    clock: Clock,
    replicas: i32,
}

impl Sim {
    fn new(behavior: &str, min: i32, max: i32, replicas: i32) -> Sim {
        let metric = "  - type: External\n    external:\n      metric:\n        name: qps\n      target:\n        type: AverageValue\n        averageValue: '1'\n";
        Sim {
            hpa: parse(&hpa(metric, min, max, behavior)),
            mem: Memory::default(),
            cfg: DecideConfig::default(),
            clock: Clock::at(NOW_SECS * 1000),
            replicas,
        }
    }

    /// One sync with the metric at `want` per pod-unit; returns the replicas after it.
    fn sync(&mut self, want: i32) -> i32 {
        let now_ms = self.clock.now_ms();
        let inputs = Inputs {
            scale: Ok(Scale {
                spec_replicas: self.replicas,
                status_replicas: self.replicas,
                selector: "name=test-pod".into(),
            }),
            pods: pods("cpu", &vec![P::default(); self.replicas as usize])
                .iter()
                .map(PodInfo::from_pod)
                .collect(),
            metrics: vec![MetricInput::External(Ok(vec![ExternalMetricValue {
                metric_name: "qps".into(),
                value: want.to_string(),
                timestamp: NOW.into(),
                ..Default::default()
            }]))],
            now_ms,
            controlling: vec![],
        };
        let d = decide(&self.hpa, &inputs, &mut self.mem, &self.cfg);
        if d.rescale {
            record_rescale(&self.hpa, &d, &mut self.mem, &self.cfg, now_ms);
            self.replicas = d.desired_replicas;
        }
        self.replicas
    }
}

const SYNC: Duration = Duration::from_secs(15);

#[tokio::test(start_paused = true)]
async fn default_behavior_scales_up_by_the_larger_policy_each_period() {
    let mut s = Sim::new("  behavior:\n    scaleUp: {}\n", 1, 100, 1);
    let mut seen = vec![s.sync(100)];
    for _ in 0..5 {
        tokio::time::advance(SYNC).await;
        seen.push(s.sync(100));
    }
    // max(+4 pods, +100%) per 15 s: 1 -> 5 -> 10 -> 20 -> 40 -> 80 -> 100.
    assert_eq!(seen, [5, 10, 20, 40, 80, 100]);
}

#[tokio::test(start_paused = true)]
async fn scale_events_inside_the_period_limit_the_next_step() {
    // Pods 2 per 60 s: syncs every 15 s may add 2 in total per minute.
    let b = "  behavior:\n    scaleUp:\n      policies:\n      - type: Pods\n        value: 2\n        periodSeconds: 60\n";
    let mut s = Sim::new(b, 1, 100, 1);
    let mut seen = vec![s.sync(50)];
    for _ in 0..8 {
        tokio::time::advance(SYNC).await;
        seen.push(s.sync(50));
    }
    assert_eq!(seen, [3, 3, 3, 3, 5, 5, 5, 5, 7]);
}

#[tokio::test(start_paused = true)]
async fn legacy_downscale_waits_for_the_window() {
    let mut s = Sim::new("", 1, 10, 8);
    s.cfg.downscale_stabilization_ms = 60_000;
    assert_eq!(s.sync(8), 8);
    // The load drops: nothing happens while the 8 recommended 0..60 s ago is in the window.
    let mut t = 0;
    while t < 60 {
        tokio::time::advance(SYNC).await;
        t += 15;
        assert_eq!(s.sync(2), 8, "at +{t}s");
    }
    // One more sync: the window holds only 2s now.
    tokio::time::advance(SYNC).await;
    assert_eq!(s.sync(2), 2);
}

#[tokio::test(start_paused = true)]
async fn scale_down_policy_percent_per_period_and_min() {
    // Percent 50 per 30 s, no window: 16 -> 8 -> (period) 4 -> 2 -> 1 (min) .
    let b = "  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 0\n      policies:\n      - type: Percent\n        value: 50\n        periodSeconds: 30\n";
    let mut s = Sim::new(b, 1, 20, 16);
    s.sync(16);
    tokio::time::advance(SYNC).await;
    let mut seen = vec![s.sync(1)];
    for _ in 0..7 {
        tokio::time::advance(SYNC).await;
        seen.push(s.sync(1));
    }
    assert_eq!(seen, [8, 8, 4, 4, 2, 2, 1, 1]);
}

#[tokio::test(start_paused = true)]
async fn up_window_holds_the_lowest_recent_recommendation() {
    let b = "  behavior:\n    scaleUp:\n      stabilizationWindowSeconds: 45\n";
    let mut s = Sim::new(b, 1, 20, 2);
    assert_eq!(s.sync(2), 2);
    let mut seen = vec![];
    for _ in 0..4 {
        tokio::time::advance(SYNC).await;
        seen.push(s.sync(6));
    }
    // The 2 recommended at 0 s leaves the 45 s window after 45 s.
    assert_eq!(seen, [2, 2, 6, 6]);
}
