//! The runtimes' reports: the sim runtime's scripted pods and usage, the process runtime's CPU.
use coxswain_test_support::wait_until;

use crate::common::*;

#[test]
fn sim_runtime_scripts_pods_by_annotation_and_reports_usage() {
    let c = cluster(207, &["--runtime", "sim"]);
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: job
  annotations: {sim.coxswain.io/run-duration: 1s}
spec:
  nodeName: node1
  restartPolicy: Never
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata:
  name: sick
  annotations: {sim.coxswain.io/fail-liveness-after: 0s}
spec:
  nodeName: node2
  containers:
  - name: c
    image: nginx
    livenessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1, failureThreshold: 1}
---
apiVersion: v1
kind: Pod
metadata:
  name: busy
  annotations: {sim.coxswain.io/cpu: 250m, sim.coxswain.io/memory: 64Mi, sim.coxswain.io/ready-after: 1s}
spec:
  nodeName: node1
  containers: [{name: c, image: nginx}]
"#,
    );
    wait_status(&c, "default", "job", "Completed");
    wait_until("sick restarted", T, || {
        pod(&c, "default", "sick").filter(|p| restarts(p) >= 1)
    })
    .unwrap();
    wait_until("busy ready", T, || {
        pod(&c, "default", "busy").filter(|p| s(p, "status.containerStatuses.0.ready") == true)
    })
    .unwrap();
    let wide = c.coxctl(&["get", "nodes", "-o", "wide"]).stdout;
    assert!(wide.contains("coxswain-sim://"), "{wide}");

    // Usage through the NodeAgent Stats RPC on the main port.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = c.url();
    let (cpu, mem) = rt.block_on(async move {
        let agent = coxswain_api::v1::node_agent_client::NodeAgentClient::new(
            coxswain_test_support::channel(&url).await.unwrap(),
        );
        coxswain_test_support::wait_for("busy usage", T, || {
            let mut agent = agent.clone();
            async move {
                let s = agent
                    .stats(coxswain_api::v1::StatsRequest {
                        node_name: "node1".into(),
                    })
                    .await
                    .ok()?
                    .into_inner();
                let p = s
                    .nodes
                    .first()?
                    .pods
                    .iter()
                    .find(|p| p.name == "busy")?
                    .clone();
                (p.cpu_usage_nano_cores > 0)
                    .then_some((p.cpu_usage_nano_cores, p.memory_working_set_bytes))
            }
        })
        .await
        .unwrap()
    });
    assert!((200_000_000..=300_000_000).contains(&cpu), "{cpu}");

    // Another component marks the pod not ready and adds its own condition (as the node
    // lifecycle controller does): the agent restores its Ready and keeps the other condition.
    let url = c.url();
    rt.block_on(async move {
        use coxswain_api::v1::{Condition, Pod};
        let client = coxswain_client::Client::connect(&url).await.unwrap();
        let mut p: Pod = client.get("default", "busy").await.unwrap().unwrap();
        let st = p.status.as_mut().unwrap();
        for c in st.conditions.iter_mut().filter(|c| c.r#type == "Ready") {
            c.status = "False".into();
        }
        st.conditions.push(Condition {
            r#type: "DisruptionTarget".into(),
            status: "True".into(),
            reason: "Test".into(),
            ..Default::default()
        });
        client.update_status(&p).await.unwrap();
        coxswain_test_support::wait_for("Ready restored, foreign condition kept", T, || {
            let client = client.clone();
            async move {
                let p: Pod = client.get("default", "busy").await.ok()??;
                let conds = p.status?.conditions;
                let ready = conds
                    .iter()
                    .any(|c| c.r#type == "Ready" && c.status == "True");
                let kept = conds.iter().any(|c| c.r#type == "DisruptionTarget");
                (ready && kept).then_some(())
            }
        })
        .await
        .unwrap();
    });
    assert_eq!(mem, 64 << 20);
}

#[test]
fn process_runtime_reports_cpu_of_the_burner_image() {
    let c = cluster(208, &[]);
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: burner
  annotations: {coxswain.io/burn-millis: "30"}
spec:
  nodeName: node1
  containers:
  - name: php
    image: registry.k8s.io/hpa-example
    ports: [{containerPort: 8080}]
"#,
    );
    wait_status(&c, "default", "burner", "Running");
    let p = pod(&c, "default", "burner").unwrap();
    let ip = s(&p, "status.podIP").as_str().unwrap().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = c.url();
    let cpu = rt.block_on(async move {
        let agent = coxswain_api::v1::node_agent_client::NodeAgentClient::new(
            coxswain_test_support::channel(&url).await.unwrap(),
        );
        coxswain_test_support::wait_for("burner CPU usage", T, || {
            let mut agent = agent.clone();
            let ip = ip.clone();
            async move {
                // Load: a few requests per poll.
                tokio::task::spawn_blocking(move || {
                    for _ in 0..5 {
                        let r = http_get(&ip, 8080, "/");
                        assert_eq!(r.map(|r| (r.0, r.1)), Some((200, "OK!".to_string())));
                    }
                })
                .await
                .ok()?;
                let s = agent
                    .stats(coxswain_api::v1::StatsRequest {
                        node_name: "node1".into(),
                    })
                    .await
                    .ok()?
                    .into_inner();
                let p = s
                    .nodes
                    .first()?
                    .pods
                    .iter()
                    .find(|p| p.name == "burner")?
                    .clone();
                let c = p.containers.first()?;
                (c.cpu_usage_nano_cores > 50_000_000 && c.memory_working_set_bytes > 0)
                    .then_some(c.cpu_usage_nano_cores)
            }
        })
        .await
        .unwrap()
    });
    assert!(cpu > 50_000_000, "{cpu}");
}
