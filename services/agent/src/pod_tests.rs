//! The pod state machine over the sim runtime, on a paused tokio clock.
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::v1::{ContainerStatus, Pod, PodStatus};
use serde_json::json;

use crate::catalog::Catalog;
use crate::cell;
use crate::pod::{run_pod, Config, Ended, Instances, NodeCtx, PodSink};
use crate::runtime::sim::SimRuntime;
use crate::runtime::{MetaMap, PodInfo};
use crate::status::PackedStatus;

#[derive(Default)]
struct Recorded {
    status: Mutex<PodStatus>,
    phases: Mutex<Vec<String>>,
    events: Mutex<Vec<(bool, String, String)>>,
}

impl PodSink for Recorded {
    fn status(&self, _pod: &Pod, status: PackedStatus) {
        let status = status.unpack();
        *self.status.lock().unwrap() = status.clone();
        self.phases.lock().unwrap().push(status.phase.clone());
    }
    fn event(&self, _pod: &Pod, _path: &str, warning: bool, reason: &str, message: String) {
        self.events
            .lock()
            .unwrap()
            .push((warning, reason.to_string(), message));
    }
}

struct Harness {
    sink: Arc<Recorded>,
    term: cell::Sender<Option<Duration>>,
    latest: cell::Sender<Arc<Pod>>,
    task: tokio::task::JoinHandle<Ended>,
}

impl Harness {
    fn start(pod: serde_json::Value) -> Harness {
        let pod: Pod = serde_json::from_value(pod).expect("pod json");
        let sink = Arc::new(Recorded::default());
        let ctx = Arc::new(NodeCtx {
            runtime: Arc::new(SimRuntime::new(Catalog::default())),
            config: Config::default(),
            sink: sink.clone(),
            objects: None,
            images: Mutex::new(Default::default()),
        });
        let m = pod.metadata.clone().unwrap_or_default();
        let pod = Arc::new(pod);
        let (latest, latest_rx) = cell::channel(pod.clone());
        let info = PodInfo {
            uid: "uid-1".into(),
            namespace: m.namespace.clone(),
            name: m.name.clone(),
            node_name: "node1".into(),
            ip: Ipv4Addr::new(127, 1, 1, 2),
            host_ip: "127.1.1.1".into(),
            annotations: MetaMap::annotations(latest_rx.clone()),
            labels: MetaMap::labels(latest_rx.clone()),
            service_account: String::new(),
            volumes: vec![],
            security_context: None,
        };
        let (term, rx) = cell::channel(None);
        let task = tokio::spawn(run_pod(
            ctx,
            pod,
            Arc::new(info),
            Arc::new(Mutex::new(Instances::default())),
            latest_rx,
            rx,
        ));
        Harness {
            sink,
            term,
            latest,
            task,
        }
    }

    fn status(&self) -> PodStatus {
        self.sink.status.lock().unwrap().clone()
    }

    fn container(&self, name: &str) -> ContainerStatus {
        let st = self.status();
        st.container_statuses
            .iter()
            .chain(st.init_container_statuses.iter())
            .find(|c| c.name == name)
            .cloned()
            .unwrap_or_default()
    }

    fn state(&self, name: &str) -> String {
        let c = self.container(name);
        let s = c.state.unwrap_or_default();
        if let Some(w) = s.waiting {
            format!("waiting:{}", w.reason)
        } else if s.running.is_some() {
            "running".into()
        } else if let Some(t) = s.terminated {
            format!("terminated:{}:{}", t.reason, t.exit_code)
        } else {
            "none".into()
        }
    }

    fn condition(&self, ty: &str) -> String {
        self.status()
            .conditions
            .iter()
            .find(|c| c.r#type == ty)
            .map(|c| c.status.clone())
            .unwrap_or_default()
    }

    fn events(&self, reason: &str) -> Vec<String> {
        self.sink
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, r, _)| r == reason)
            .map(|(_, _, m)| m.clone())
            .collect()
    }
}

async fn at(secs: f64) {
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
}

fn pod(annotations: serde_json::Value, spec: serde_json::Value) -> serde_json::Value {
    json!({
        "metadata": {"name": "p", "namespace": "default", "uid": "uid-1", "annotations": annotations},
        "spec": spec,
    })
}

#[tokio::test(start_paused = true)]
async fn init_containers_run_in_order_before_the_containers() {
    let h = Harness::start(pod(
        json!({"sim.coxswain.io/init-duration": "5s"}),
        json!({
            "initContainers": [{"name": "mysql", "image": "busybox:1.30"}, {"name": "redis", "image": "busybox:1.30"}],
            "containers": [{"name": "main", "image": "nginx:1.17.9"}],
        }),
    ));
    at(1.0).await;
    assert_eq!(h.state("mysql"), "running");
    assert_eq!(h.state("redis"), "waiting:PodInitializing");
    assert_eq!(h.state("main"), "waiting:PodInitializing");
    assert_eq!(h.status().phase, "Pending");
    assert_eq!(h.condition("Initialized"), "False");
    at(5.0).await; // t=6
    assert_eq!(h.state("mysql"), "terminated:Completed:0");
    assert_eq!(h.state("redis"), "running");
    assert_eq!(h.state("main"), "waiting:PodInitializing");
    at(5.0).await; // t=11
    assert_eq!(h.state("redis"), "terminated:Completed:0");
    assert_eq!(h.state("main"), "running");
    assert_eq!(h.status().phase, "Running");
    assert_eq!(h.condition("Initialized"), "True");
    assert_eq!(h.condition("Ready"), "True");
    assert_eq!(h.condition("ContainersReady"), "True");
    assert_eq!(h.condition("PodScheduled"), "True");
    assert_eq!(h.status().pod_ip, "127.1.1.2");
}

#[tokio::test(start_paused = true)]
async fn a_failing_init_container_with_never_fails_the_pod_and_bad_images_back_off() {
    let h = Harness::start(pod(
        json!({"sim.coxswain.io/init.exit-code": "1"}),
        json!({
            "restartPolicy": "Never",
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "main", "image": "nginx"}],
        }),
    ));
    at(1.0).await;
    assert_eq!(h.state("init"), "terminated:Error:1");
    assert_eq!(h.state("main"), "waiting:PodInitializing");
    assert_eq!(h.status().phase, "Failed");
    at(60.0).await;
    assert_eq!(h.container("init").restart_count, 0);
    assert_eq!(h.state("main"), "waiting:PodInitializing");
    drop(h);
    let h = Harness::start(pod(
        json!({}),
        json!({
            "restartPolicy": "Never",
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "main", "image": "nginx:no-such-tag"}],
        }),
    ));
    at(0.2).await;
    assert_eq!(h.state("main"), "waiting:ErrImagePull");
    at(1.0).await;
    assert_eq!(h.state("main"), "waiting:ImagePullBackOff");
    assert_eq!(h.status().phase, "Pending");
    assert!(h
        .events("Failed")
        .iter()
        .any(|m| m.contains("nginx:no-such-tag") && m.contains("not found")));
    assert!(h
        .events("Failed")
        .iter()
        .any(|m| m == "Error: ErrImagePull"));
    assert!(h
        .events("Failed")
        .iter()
        .any(|m| m == "Error: ImagePullBackOff"));
}

#[tokio::test(start_paused = true)]
async fn job_style_pods_succeed_or_fail_under_never() {
    let ok = Harness::start(pod(
        json!({"sim.coxswain.io/run-duration": "3s"}),
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}),
    ));
    let bad = Harness::start(pod(
        json!({"sim.coxswain.io/run-duration": "3s", "sim.coxswain.io/exit-code": "2"}),
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}),
    ));
    at(1.0).await;
    assert_eq!(ok.status().phase, "Running");
    at(3.0).await;
    assert_eq!(ok.status().phase, "Succeeded");
    assert_eq!(ok.state("c"), "terminated:Completed:0");
    assert_eq!(ok.condition("Ready"), "False");
    assert_eq!(bad.status().phase, "Failed");
    assert_eq!(bad.state("c"), "terminated:Error:2");
    assert_eq!(bad.container("c").restart_count, 0);
}

#[tokio::test(start_paused = true)]
async fn crash_loop_back_off_doubles_from_ten_seconds() {
    let h = Harness::start(pod(
        json!({"sim.coxswain.io/run-duration": "1s", "sim.coxswain.io/exit-code": "1"}),
        json!({"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}),
    ));
    // t=1 exit → immediate restart (restart 1); t=2 exit → back-off 10 s; restart 2 at t=12;
    // t=13 exit → back-off 20 s; restart 3 at t=33.
    at(1.5).await;
    assert_eq!(h.container("c").restart_count, 1);
    assert_eq!(h.state("c"), "running");
    at(1.0).await; // t=2.5
    assert_eq!(h.state("c"), "waiting:CrashLoopBackOff");
    assert_eq!(h.status().phase, "Running");
    let last = h.container("c").last_state.unwrap_or_default();
    assert_eq!(last.terminated.unwrap_or_default().exit_code, 1);
    at(9.0).await; // t=11.5
    assert_eq!(h.container("c").restart_count, 1);
    at(1.0).await; // t=12.5
    assert_eq!(h.container("c").restart_count, 2);
    assert_eq!(h.state("c"), "running");
    at(20.0).await; // t=32.5
    assert_eq!(h.container("c").restart_count, 2);
    assert_eq!(h.state("c"), "waiting:CrashLoopBackOff");
    at(1.0).await; // t=33.5
    assert_eq!(h.container("c").restart_count, 3);
    assert!(h.events("BackOff")[0]
        .starts_with("Back-off restarting failed container c in pod p_default("));
}

#[tokio::test(start_paused = true)]
async fn exit_zero_is_not_restarted_under_on_failure_but_is_under_always() {
    let onf = Harness::start(pod(
        json!({"sim.coxswain.io/run-duration": "1s"}),
        json!({"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}),
    ));
    let always = Harness::start(pod(
        json!({"sim.coxswain.io/run-duration": "1s"}),
        json!({"containers": [{"name": "c", "image": "busybox"}]}),
    ));
    at(5.0).await;
    assert_eq!(onf.status().phase, "Succeeded");
    assert_eq!(onf.container("c").restart_count, 0);
    assert_eq!(always.status().phase, "Running");
    assert!(always.container("c").restart_count >= 1);
}

#[tokio::test(start_paused = true)]
async fn liveness_failure_restarts_the_container_with_probe_timing() {
    let h = Harness::start(pod(
        json!({"sim.coxswain.io/fail-liveness-after": "25s"}),
        json!({"containers": [{"name": "nginx", "image": "nginx:1.17.9",
            "livenessProbe": {"httpGet": {"path": "/", "port": 80}, "initialDelaySeconds": 10,
                "periodSeconds": 10, "failureThreshold": 2, "timeoutSeconds": 1}}]}),
    ));
    // Probes at t=10, 20 (ok), 30, 40 (fail) → killed at t=40.
    at(35.0).await;
    assert_eq!(h.events("Unhealthy").len(), 1);
    assert_eq!(h.container("nginx").restart_count, 0);
    at(6.0).await; // t=41
    assert_eq!(
        h.events("Unhealthy")[0],
        "Liveness probe failed: HTTP probe failed with statuscode: 500"
    );
    assert_eq!(
        h.events("Killing")[0],
        "Container nginx failed liveness probe, will be restarted"
    );
    assert_eq!(h.container("nginx").restart_count, 1);
    assert_eq!(h.state("nginx"), "running");
}

#[tokio::test(start_paused = true)]
async fn liveness_failure_under_never_ends_the_pod() {
    let h = Harness::start(pod(
        json!({"sim.coxswain.io/fail-liveness-after": "0s"}),
        json!({"restartPolicy": "Never", "containers": [{"name": "nginx", "image": "nginx",
            "livenessProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 10, "periodSeconds": 10, "failureThreshold": 2}}]}),
    ));
    at(15.0).await;
    assert_eq!(h.status().phase, "Running");
    at(10.0).await; // second failure at t=20
    assert!(h.status().phase == "Succeeded" || h.status().phase == "Failed");
    assert_eq!(h.container("nginx").restart_count, 0);
    at(60.0).await;
    assert_eq!(h.container("nginx").restart_count, 0);
}

#[tokio::test(start_paused = true)]
async fn readiness_drives_ready_without_restarts() {
    let h = Harness::start(pod(
        json!({"sim.coxswain.io/ready-after": "7s"}),
        json!({"containers": [{"name": "nginx", "image": "nginx",
            "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 2}}]}),
    ));
    at(1.0).await;
    assert_eq!(h.status().phase, "Running");
    assert_eq!(h.condition("Ready"), "False");
    assert!(!h.container("nginx").ready);
    at(8.0).await;
    assert_eq!(h.condition("Ready"), "True");
    assert!(h.container("nginx").ready);
    assert_eq!(h.container("nginx").restart_count, 0);
    assert!(h.events("Unhealthy")[0].starts_with("Readiness probe failed:"));
}

#[tokio::test(start_paused = true)]
async fn startup_probe_gates_started_and_readiness() {
    let h = Harness::start(pod(
        json!({}),
        json!({"containers": [{"name": "c", "image": "nginx",
            "startupProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 5, "periodSeconds": 1}}]}),
    ));
    at(1.0).await;
    assert_eq!(h.container("c").started, Some(false));
    assert!(!h.container("c").ready);
    at(5.0).await;
    assert_eq!(h.container("c").started, Some(true));
    assert!(h.container("c").ready);
}

#[tokio::test(start_paused = true)]
async fn graceful_termination_runs_pre_stop_then_stops() {
    let h = Harness::start(pod(
        json!({}),
        json!({"terminationGracePeriodSeconds": 30, "containers": [{"name": "c", "image": "nginx",
            "lifecycle": {"preStop": {"sleep": {"seconds": 5}}}}]}),
    ));
    at(1.0).await;
    assert_eq!(h.state("c"), "running");
    h.term.send_replace(Some(Duration::from_secs(30)));
    at(2.0).await;
    // preStop still sleeping: the container keeps running.
    assert_eq!(h.state("c"), "running");
    at(4.0).await;
    assert!(h.state("c").starts_with("terminated:"), "{}", h.state("c"));
    assert_eq!(
        h.events("Killing"),
        vec!["Stopping container c".to_string()]
    );
    assert_eq!(h.task.await.unwrap(), Ended::Terminated);
}

#[tokio::test(start_paused = true)]
async fn grace_period_bounds_pre_stop() {
    let h = Harness::start(pod(
        json!({}),
        json!({"containers": [{"name": "c", "image": "nginx",
            "lifecycle": {"preStop": {"sleep": {"seconds": 100}}}}]}),
    ));
    at(1.0).await;
    h.term.send_replace(Some(Duration::from_secs(3)));
    at(4.0).await;
    assert!(h.state("c").starts_with("terminated:"), "{}", h.state("c"));
    assert!(h.events("FailedPreStopHook")[0].contains("timed out"));
}

#[tokio::test(start_paused = true)]
async fn termination_during_back_off_ends_at_once() {
    let h = Harness::start(pod(
        json!({"sim.coxswain.io/run-duration": "1s", "sim.coxswain.io/exit-code": "1"}),
        json!({"containers": [{"name": "c", "image": "busybox"}]}),
    ));
    at(2.5).await;
    assert_eq!(h.state("c"), "waiting:CrashLoopBackOff");
    h.term.send_replace(Some(Duration::from_secs(30)));
    let ended = tokio::time::timeout(Duration::from_secs(1), h.task).await;
    assert_eq!(ended.unwrap().unwrap(), Ended::Terminated);
}

#[tokio::test(start_paused = true)]
async fn pull_policy_never_accepts_catalog_images_only() {
    let h = Harness::start(pod(
        json!({}),
        json!({"containers": [
            {"name": "ok", "image": "nginx:1.17.9", "imagePullPolicy": "Never"},
            {"name": "bad", "image": "nginx:no-such-tag", "imagePullPolicy": "Never"}]}),
    ));
    at(30.0).await;
    assert_eq!(h.state("ok"), "running");
    assert_eq!(h.state("bad"), "waiting:ErrImageNeverPull");
    assert!(h.events("Pulling").is_empty());
    assert_eq!(
        h.events("ErrImageNeverPull")[0],
        "Container image \"nginx:no-such-tag\" is not present with pull policy of Never"
    );
}

#[tokio::test(start_paused = true)]
async fn on_failure_restarts_a_container_killed_by_liveness_even_with_exit_zero() {
    let h = Harness::start(pod(
        json!({"sim.coxswain.io/fail-liveness-after": "0s"}),
        json!({"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "nginx",
            "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1, "failureThreshold": 1}}]}),
    ));
    // Sim containers exit 0 on SIGTERM; the kill still counts as a failure to restart, and the
    // pod never looks Succeeded in between.
    at(1.5).await;
    let phases = h.sink.phases.lock().unwrap().clone();
    assert!(!phases.iter().any(|p| p == "Succeeded"), "{phases:?}");
    assert!(
        h.container("c").restart_count >= 1,
        "{:?}",
        h.container("c")
    );
    assert_eq!(h.status().phase, "Running");
}

#[tokio::test(start_paused = true)]
async fn active_deadline_fails_the_pod_and_stops_its_containers() {
    let h = Harness::start(pod(
        json!({}),
        json!({"activeDeadlineSeconds": 5, "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "nginx"}]}),
    ));
    at(4.0).await;
    assert_eq!(h.status().phase, "Running");
    at(2.0).await;
    let st = h.status();
    assert_eq!(st.phase, "Failed");
    assert_eq!(st.reason, "DeadlineExceeded");
    assert!(h.state("c").starts_with("terminated:"), "{}", h.state("c"));
    assert_eq!(
        h.events("DeadlineExceeded"),
        vec!["Pod was active on the node longer than the specified deadline".to_string()]
    );
    // The pod object stays until it is deleted.
    at(60.0).await;
    assert!(!h.task.is_finished());
    assert_eq!(h.container("c").restart_count, 0);
    h.term.send_replace(Some(Duration::from_secs(30)));
    let ended = tokio::time::timeout(Duration::from_secs(1), h.task).await;
    assert_eq!(ended.unwrap().unwrap(), Ended::Terminated);
}

#[tokio::test(start_paused = true)]
async fn an_image_changed_in_place_restarts_the_container_whatever_the_policy() {
    let spec =
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "nginx:1.17.9"}]});
    let h = Harness::start(pod(json!({}), spec.clone()));
    at(1.0).await;
    assert_eq!(h.state("c"), "running");
    // A new version with the same image (a label, a status write) wakes the running
    // container's supervision, which goes back to waiting: nothing restarts.
    for i in 0..3 {
        let same: Pod =
            serde_json::from_value(pod(json!({"touch": i.to_string()}), spec.clone())).unwrap();
        h.latest.send_replace(Arc::new(same));
        at(0.5).await;
    }
    assert_eq!(h.state("c"), "running");
    assert_eq!(h.container("c").restart_count, 0);
    assert!(h.events("Killing").is_empty());
    let mut newer = spec.clone();
    newer["containers"][0]["image"] = json!("nginx:1.19");
    let p: Pod = serde_json::from_value(pod(json!({}), newer)).unwrap();
    h.latest.send_replace(Arc::new(p));
    at(1.0).await;
    let c = h.container("c");
    assert_eq!(h.state("c"), "running");
    assert_eq!(c.restart_count, 1);
    assert_eq!(c.image, "nginx:1.19");
    assert!(c.image_id.ends_with("nginx:1.19"), "{}", c.image_id);
    assert!(h
        .events("Killing")
        .contains(&"Container c definition changed, will be restarted".to_string()));
    assert_eq!(h.status().phase, "Running");
}

#[tokio::test(start_paused = true)]
async fn sidecars_start_before_the_next_init_container_and_stop_after_the_containers() {
    let h = Harness::start(pod(
        json!({"sim.coxswain.io/main.run-duration": "10s", "sim.coxswain.io/init-duration": "2s"}),
        json!({"restartPolicy": "Never",
            "initContainers": [
                {"name": "proxy", "image": "envoy", "restartPolicy": "Always",
                 "startupProbe": {"tcpSocket": {"port": 9901}, "initialDelaySeconds": 3, "periodSeconds": 1}},
                {"name": "setup", "image": "busybox"}],
            "containers": [{"name": "main", "image": "busybox"}]}),
    ));
    at(1.0).await;
    assert_eq!(h.state("proxy"), "running");
    assert_eq!(h.state("setup"), "waiting:PodInitializing");
    at(3.0).await; // proxy started at 3 s; setup runs 2 s
    assert_eq!(h.state("setup"), "running");
    at(2.5).await;
    assert_eq!(h.state("main"), "running");
    assert_eq!(h.state("proxy"), "running");
    assert_eq!(h.status().phase, "Running");
    at(11.0).await; // main exits 0 at about 16.5 s; then the sidecar is stopped
    assert_eq!(h.state("main"), "terminated:Completed:0");
    assert!(
        h.state("proxy").starts_with("terminated:"),
        "{}",
        h.state("proxy")
    );
    assert_eq!(h.status().phase, "Succeeded");
}

/// A running pod's worker is one future for the pod's life: what it holds across its waits is
/// memory per pod (sim pods' memory, issue 17). The start (status, init containers, pulls,
/// hooks) and the stops are boxed and let go, so a running plain container's worker holds its
/// loop, its running instance and one small wait; it was 1,584 bytes (debug) before that.
#[tokio::test]
async fn a_pod_worker_future_stays_small() {
    let pod: Pod = serde_json::from_value(pod(json!({}), json!({"containers": []}))).unwrap();
    let pod = Arc::new(pod);
    let ctx = Arc::new(NodeCtx {
        runtime: Arc::new(SimRuntime::new(Catalog::default())),
        config: Config::default(),
        sink: Arc::new(Recorded::default()) as Arc<dyn PodSink>,
        objects: None,
        images: Mutex::new(Default::default()),
    });
    let info = PodInfo {
        uid: "uid-1".into(),
        namespace: "default".into(),
        name: "p".into(),
        node_name: "node1".into(),
        ip: Ipv4Addr::new(127, 1, 1, 2),
        host_ip: "127.1.1.1".into(),
        annotations: Default::default(),
        labels: Default::default(),
        service_account: String::new(),
        volumes: vec![],
        security_context: None,
    };
    let (_term, rx) = cell::channel(None);
    let (_latest, latest_rx) = cell::channel(pod.clone());
    let worker = run_pod(
        ctx,
        pod,
        Arc::new(info),
        Arc::new(Mutex::new(Instances::default())),
        latest_rx,
        rx,
    );
    let size = std::mem::size_of_val(&worker);
    assert!(size <= 1024, "the pod worker's future is {size} bytes");
}
