//! Issue 15 §1: the series a user reads when something happens, each from a real `coxswain up`
//! (sim runtime) scraped over HTTP: a NotReady node evicting its pods
//! (`node_collector_evictions_total`), an agent starting a pod and probing it
//! (`kubelet_pod_start_duration_seconds`, `prober_probe_total`), and an HPA's object state
//! (`kube_horizontalpodautoscaler_*`). Each waits on the condition, never on a sleep.
use std::time::Duration;

use coxswain_test_support::metrics::{samples, scrape, sum};
use coxswain_test_support::objects::nginx_deployment;
use coxswain_test_support::{sim_agent as agent, wait_until, Coxswain};

const T: Duration = Duration::from_secs(60);

#[test]
fn a_not_ready_node_evicting_its_pods_counts_node_collector_evictions() {
    let c = Coxswain::start_fast_up(&[
        "--nodes",
        "1",
        "--runtime",
        "sim",
        "--no-controllers",
        "--node-monitor-period",
        "200ms",
        "--node-monitor-grace-period",
        "2s",
        "--default-unreachable-toleration-seconds",
        "1",
        "--default-not-ready-toleration-seconds",
        "1",
        "--node-eviction-rate",
        "100",
    ])
    .unwrap();
    let agent = agent(&c.url(), "node9");
    wait_until("node9 Ready", T, || {
        let out = c.coxctl(&["get", "nodes"]).stdout;
        out.lines()
            .any(|l| l.starts_with("node9 ") && l.contains(" Ready "))
            .then_some(())
    })
    .unwrap();
    c.apply(
        "apiVersion: v1
kind: Pod
metadata: {name: doomed}
spec:
  nodeName: node9
  containers: [{name: c, image: nginx}]
",
    )
    .success();
    wait_until("doomed Running", T, || {
        let out = c.coxctl(&["get", "pod", "doomed"]).stdout;
        out.contains(" Running ").then_some(())
    })
    .unwrap();
    assert_eq!(
        sum(
            &scrape(&c.metrics).unwrap(),
            "node_collector_evictions_total",
            &[]
        ),
        0.0,
        "no eviction while every node is Ready"
    );

    drop(agent);
    // The lifecycle controller marks node9 unreachable and taints it NoExecute (one eviction
    // counted), and the taint manager deletes the pod once its 1 s toleration has run out.
    wait_until("node9 NotReady", T, || {
        let out = c.coxctl(&["get", "nodes"]).stdout;
        out.lines()
            .any(|l| l.starts_with("node9 ") && l.contains(" NotReady "))
            .then_some(())
    })
    .unwrap();
    let line = wait_until("an eviction counted", T, || {
        samples(
            &scrape(&c.metrics).unwrap(),
            "node_collector_evictions_total",
            &[],
        )
        .into_iter()
        .find(|(_, v)| *v >= 1.0)
    })
    .unwrap();
    assert!(line.0.contains("zone=\"\""), "{line:?}");
    wait_until("doomed evicted", T, || {
        let out = c.coxctl(&["get", "pod", "doomed", "-o", "json"]);
        let gone = !out.ok || out.stdout.contains("\"deletionTimestamp\"");
        gone.then_some(())
    })
    .unwrap();
    // One node went NotReady once: one eviction, not one per monitor pass.
    let body = scrape(&c.metrics).unwrap();
    assert_eq!(
        sum(&body, "node_collector_evictions_total", &[]),
        1.0,
        "{body}"
    );
}

#[test]
fn an_agent_records_pod_start_latency_and_probe_results() {
    let c = Coxswain::start_fast_up(&["--nodes", "1", "--runtime", "sim"]).unwrap();
    let before = scrape(&c.metrics).unwrap();
    assert_eq!(
        sum(&before, "kubelet_pod_start_duration_seconds_count", &[]),
        0.0
    );
    // Readiness fails until 1.5 s after start, then succeeds; liveness always succeeds.
    c.apply(
        "apiVersion: v1
kind: Pod
metadata:
  name: probed
  annotations: {sim.coxswain.io/ready-after: 1500ms}
spec:
  containers:
  - name: web
    image: nginx
    readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
    livenessProbe: {tcpSocket: {port: 80}, periodSeconds: 1}
",
    )
    .success();
    wait_until("probed Ready", T, || {
        let out = c.coxctl(&["get", "pod", "probed"]).stdout;
        out.lines()
            .any(|l| l.starts_with("probed ") && l.contains(" 1/1 "))
            .then_some(())
    })
    .unwrap();
    let body = wait_until("a successful liveness probe counted", T, || {
        let b = scrape(&c.metrics).unwrap();
        (sum(
            &b,
            "prober_probe_total",
            &["probe_type=\"Liveness\"", "result=\"successful\""],
        ) >= 1.0)
            .then_some(b)
    })
    .unwrap();
    assert!(
        sum(
            &body,
            "prober_probe_total",
            &["probe_type=\"Readiness\"", "result=\"failed\""]
        ) >= 1.0,
        "the readiness probes before ready-after failed: {body}"
    );
    assert!(
        sum(
            &body,
            "prober_probe_total",
            &["probe_type=\"Readiness\"", "result=\"successful\""]
        ) >= 1.0,
        "{body}"
    );
    assert_eq!(
        sum(
            &body,
            "prober_probe_total",
            &["result=\"failed\"", "Liveness"]
        ),
        0.0
    );
    // One pod started: one observation, its duration within the histogram's buckets.
    assert_eq!(
        sum(&body, "kubelet_pod_start_duration_seconds_count", &[]),
        1.0,
        "{body}"
    );
    let secs = sum(&body, "kubelet_pod_start_duration_seconds_sum", &[]);
    assert!(secs > 0.0 && secs < T.as_secs_f64(), "{secs}");
    assert!(body.contains("# TYPE kubelet_pod_start_duration_seconds histogram"));
}

#[test]
fn an_hpa_shows_its_spec_and_status_as_kube_state_metrics_does() {
    let c = Coxswain::start_fast_up(&[
        "--nodes",
        "2",
        "--runtime",
        "sim",
        "--metrics-resolution",
        "300ms",
        "--metric-resolution",
        "1s",
        "--horizontal-pod-autoscaler-sync-period",
        "1s",
        "--horizontal-pod-autoscaler-cpu-initialization-period",
        "10s",
    ])
    .unwrap();
    // Every pod uses 200m of its 100m request: 200 % against a 50 % target → max replicas.
    c.apply(
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: busy}
spec:
  replicas: 1
  selector: {matchLabels: {app: busy}}
  template:
    metadata:
      labels: {app: busy}
      annotations: {sim.coxswain.io/cpu: 200m}
    spec:
      containers:
      - name: c
        image: nginx
        resources: {requests: {cpu: 100m}}
",
    )
    .success();
    c.coxctl(&[
        "autoscale",
        "deployment",
        "busy",
        "--min=1",
        "--max=3",
        "--cpu-percent=50",
    ])
    .success();
    let hpa = "horizontalpodautoscaler=\"busy\"";
    let body = wait_until("the spec series", T, || {
        let b = scrape(&c.metrics).unwrap();
        (!samples(&b, "kube_horizontalpodautoscaler_spec_max_replicas", &[hpa]).is_empty())
            .then_some(b)
    })
    .unwrap();
    let one = |b: &str, family: &str, labels: &[&str]| {
        let mut all = vec![hpa, "namespace=\"default\""];
        all.extend_from_slice(labels);
        let s = samples(b, family, &all);
        assert_eq!(s.len(), 1, "{family} {labels:?}: {s:?}");
        s[0].1
    };
    assert_eq!(
        one(&body, "kube_horizontalpodautoscaler_spec_min_replicas", &[]),
        1.0
    );
    assert_eq!(
        one(&body, "kube_horizontalpodautoscaler_spec_max_replicas", &[]),
        3.0
    );
    assert_eq!(
        one(
            &body,
            "kube_horizontalpodautoscaler_spec_target_metric",
            &["metric_name=\"cpu\"", "metric_target_type=\"utilization\""]
        ),
        50.0
    );
    // The controller's verdict shows up as the status series: desired 3, then 3 current.
    let body = wait_until("desired and current replicas 3", T, || {
        let b = scrape(&c.metrics).unwrap();
        let get = |f: &str| samples(&b, f, &[hpa]).first().map(|s| s.1);
        (get("kube_horizontalpodautoscaler_status_desired_replicas") == Some(3.0)
            && get("kube_horizontalpodautoscaler_status_current_replicas") == Some(3.0))
        .then_some(b)
    })
    .unwrap();
    let cur = one(
        &body,
        "kube_horizontalpodautoscaler_status_target_metric",
        &["metric_name=\"cpu\"", "metric_target_type=\"utilization\""],
    );
    assert!(cur >= 100.0, "current utilization {cur}");
    // As kube-state-metrics: gauges with HELP and TYPE.
    for f in [
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_status_desired_replicas",
        "kube_horizontalpodautoscaler_spec_target_metric",
    ] {
        assert!(body.contains(&format!("# TYPE {f} gauge")), "{f}");
        assert!(body.contains(&format!("# HELP {f} ")), "{f}");
    }
}

#[test]
fn the_scheduler_times_extension_points_and_sampled_plugins_and_counts_preemption_attempts() {
    // Every cycle sampled, so one pod is enough to see the plugin series.
    let c = Coxswain::start_fast_up(&[
        "--nodes",
        "2",
        "--runtime",
        "sim",
        "--plugin-metrics-sample-percent",
        "100",
    ])
    .unwrap();
    // Both nodes first: with one feasible node a cycle picks it without scoring.
    wait_until("two Ready nodes", T, || {
        let out = c.coxctl(&["get", "nodes"]).stdout;
        (out.lines().filter(|l| l.contains(" Ready ")).count() == 2).then_some(())
    })
    .unwrap();
    c.apply(
        "apiVersion: v1
kind: Pod
metadata: {name: fits}
spec:
  containers: [{name: c, image: nginx, resources: {requests: {cpu: 100m}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: too-big}
spec:
  containers: [{name: c, image: nginx, resources: {requests: {cpu: '1000'}}}]
",
    )
    .success();
    let body = wait_until("a scheduled pod and a preemption attempt", T, || {
        let b = scrape(&c.metrics).unwrap();
        (sum(
            &b,
            "scheduler_schedule_attempts_total",
            &["result=\"scheduled\""],
        ) >= 1.0
            && sum(&b, "scheduler_preemption_attempts_total", &[]) >= 1.0
            && sum(
                &b,
                "scheduler_framework_extension_point_duration_seconds_count",
                &["extension_point=\"Bind\""],
            ) >= 1.0)
            .then_some(b)
    })
    .unwrap();
    let point = |p: &str, status: &str| {
        sum(
            &body,
            "scheduler_framework_extension_point_duration_seconds_count",
            &[
                &format!("extension_point=\"{p}\""),
                &format!("status=\"{status}\""),
                "profile=\"default-scheduler\"",
            ],
        )
    };
    // Both pods ran PreFilter; only the one that fits was scored (two feasible nodes) and
    // bound; only the one that does not ran PostFilter (DefaultPreemption: no victims).
    assert!(point("PreFilter", "Success") >= 2.0, "{body}");
    assert!(point("PreScore", "Success") >= 1.0, "{body}");
    assert!(point("Score", "Success") >= 1.0, "{body}");
    assert!(point("Bind", "Success") >= 1.0, "{body}");
    assert!(point("PostFilter", "Unschedulable") >= 1.0, "{body}");
    assert_eq!(
        point("Filter", "Success"),
        0.0,
        "no Filter series, as upstream"
    );
    let plugin = |p: &str, point: &str, status: &str| {
        sum(
            &body,
            "scheduler_plugin_execution_duration_seconds_count",
            &[
                &format!("plugin=\"{p}\""),
                &format!("extension_point=\"{point}\""),
                &format!("status=\"{status}\""),
            ],
        )
    };
    assert!(
        plugin("NodeResourcesFit", "Filter", "Success") >= 1.0,
        "{body}"
    );
    assert!(
        plugin("NodeResourcesFit", "Filter", "Unschedulable") >= 1.0,
        "{body}"
    );
    assert!(
        plugin("NodeResourcesFit", "PreFilter", "Success") >= 2.0,
        "{body}"
    );
    assert!(
        plugin("DefaultPreemption", "PostFilter", "Unschedulable") >= 1.0,
        "{body}"
    );
    assert!(plugin("DefaultBinder", "Bind", "Success") >= 1.0, "{body}");
    // Upstream's buckets: 0.1 ms doubling (12), 10 µs × 1.5 (20).
    assert!(body.contains(
        "scheduler_framework_extension_point_duration_seconds_bucket{extension_point=\"PreFilter\",status=\"Success\",profile=\"default-scheduler\",le=\"0.0001\"}"
    ), "{body}");
    assert!(body.contains("le=\"0.00001\""), "{body}");
    for f in [
        "scheduler_framework_extension_point_duration_seconds",
        "scheduler_plugin_execution_duration_seconds",
    ] {
        assert!(body.contains(&format!("# TYPE {f} histogram")), "{f}");
    }
    assert!(body.contains("# TYPE scheduler_preemption_attempts_total counter"));
}

/// The JSON log lines of `c` whose message is `message`.
fn log_lines(c: &Coxswain, message: &str) -> Vec<serde_json::Value> {
    c.log()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == message)
        .collect()
}

#[test]
fn a_coxctl_request_id_is_in_the_stores_log_line_for_its_write() {
    let c = Coxswain::start_fast_up(&["--log-format", "json", "--nodes", "1", "--runtime", "sim"])
        .unwrap();
    c.coxctl_in(
        &["--request-id", "apply-web-42", "apply", "-f", "-"],
        None,
        Some(&nginx_deployment("web", 1)),
    )
    .success();
    let line = wait_until("the store's line for the apply", T, || {
        log_lines(&c, "request").into_iter().find(|l| {
            l["fields"]["request_id"] == "apply-web-42" && l["fields"]["resource"] == "deployments"
        })
    })
    .unwrap();
    let f = &line["fields"];
    assert!(
        f["verb"] == "APPLY" || f["verb"] == "CREATE" || f["verb"] == "PATCH",
        "{line}"
    );
    assert_eq!(f["code"], "200", "{line}");
    assert_eq!(line["level"], "INFO", "{line}");
    // Every line of that kind names an id: requests without one (the components' own) are
    // not logged.
    for l in log_lines(&c, "request") {
        assert!(l["fields"]["request_id"].is_string(), "{l}");
    }
    // Without --request-id, coxctl sends a random UUID of its own per invocation.
    c.coxctl(&["get", "deployment", "web"]).success();
    wait_until("a generated id", T, || {
        log_lines(&c, "request").into_iter().find(|l| {
            l["fields"]["verb"] == "GET"
                && l["fields"]["request_id"]
                    .as_str()
                    .is_some_and(|id| id.len() == 36 && id != "apply-web-42")
        })
    })
    .unwrap();
    // A malformed id is refused by coxctl before anything is sent.
    let e = c
        .coxctl(&["--request-id", "has spaces", "get", "pods"])
        .failure();
    assert!(e.stderr.contains("--request-id"), "{}", e.stderr);
    let e = c
        .coxctl(&["--request-id", &"x".repeat(65), "get", "pods"])
        .failure();
    assert!(e.stderr.contains("64"), "{}", e.stderr);
}
