//! `coxswain agent` as its own process: logs and deletions across a restart, many sim nodes
//! in one process.
use coxswain_test_support::component::{field, start_agent, Component};
use coxswain_test_support::wait_until;
use serde_json::Value;

use crate::common::*;

/// A `coxswain agent` process, ready; SIGKILLed on drop.
struct AgentProc {
    _process: Component,
    grpc: String,
}

impl AgentProc {
    fn start(server: &str, node: &str, root: &std::path::Path) -> AgentProc {
        let (process, line) = start_agent(&[], server, node, "127.209.1.0", root, &[]);
        AgentProc {
            _process: process,
            grpc: field(&line, "grpc"),
        }
    }

    fn start_args(args: &[&str]) -> AgentProc {
        let mut all = vec!["agent", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut process = Component::start_temp(&all);
        let line = process.ready("coxswain agent ready", T);
        AgentProc {
            _process: process,
            grpc: field(&line, "grpc"),
        }
    }
}

#[test]
fn a_separate_agent_serves_logs_and_finishes_deletions_after_a_restart() {
    let c = cluster(209, &["--nodes", "0"]);
    let root = tempfile::tempdir().unwrap();
    let agent = AgentProc::start(&c.url(), "edge1", root.path());
    wait_until("edge1 Ready", T, || {
        c.coxctl(&["get", "node", "edge1"])
            .stdout
            .contains(" Ready ")
            .then_some(())
    })
    .unwrap();
    let n: Value =
        serde_json::from_str(&c.coxctl(&["get", "node", "edge1", "-o", "json"]).stdout).unwrap();
    assert_eq!(
        n["metadata"]["annotations"]["coxswain.io/agent-endpoint"],
        // TLS when the store has it (the agent then authenticates its callers).
        format!("{}://{}", c.url().split("://").next().unwrap(), agent.grpc)
    );
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  nodeName: edge1
  terminationGracePeriodSeconds: 600
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "trap '' TERM; echo started; while true; do sleep 0.2; done"]
"#,
    );
    wait_status(&c, "default", "stubborn", "Running");
    let p = pod(&c, "default", "stubborn").unwrap();
    assert!(s(&p, "status.podIP")
        .as_str()
        .unwrap()
        .starts_with("127.209.1."));
    wait_until("log", T, || {
        let out = c.coxctl(&["logs", "stubborn"]);
        (out.stdout == "started\n").then_some(())
    })
    .unwrap();
    // Deleting: the container ignores SIGTERM and the grace period is long: Terminating.
    c.coxctl(&["delete", "pod", "stubborn", "--wait=false"])
        .success();
    wait_status(&c, "default", "stubborn", "Terminating");
    // The agent dies mid-deletion; a new one finishes it, and runs a pod bound meanwhile.
    drop(agent);
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: later}
spec:
  nodeName: edge1
  containers: [{name: web, image: nginx}]
"#,
    );
    let _agent = AgentProc::start(&c.url(), "edge1", root.path());
    wait_until("stubborn removed", T, || {
        pod(&c, "default", "stubborn").is_none().then_some(())
    })
    .unwrap();
    wait_status(&c, "default", "later", "Running");
    let p = pod(&c, "default", "later").unwrap();
    let ip = s(&p, "status.podIP").as_str().unwrap().to_string();
    assert_eq!(http_get_answered(&ip, 80, "/").0, 200);
}

#[test]
fn one_agent_process_hosts_many_sim_nodes() {
    let c = cluster(210, &["--nodes", "0"]);
    let url = c.url();
    let _agent = AgentProc::start_args(&[
        "--sim-nodes",
        "50",
        "--server",
        &url,
        "--sim-node-prefix",
        "kwok",
        "--no-events",
    ]);
    wait_until("50 Ready sim nodes", T, || {
        let out = c.coxctl(&["get", "nodes", "--no-headers"]).stdout;
        (out.lines().filter(|l| l.contains(" Ready ")).count() == 50).then_some(())
    })
    .unwrap();
    let mut yaml = String::new();
    for i in 0..200 {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, annotations: {{sim.coxswain.io/run-duration: 1s}}}}\nspec:\n  nodeName: kwok-{}\n  restartPolicy: Never\n  containers: [{{name: c, image: busybox}}]\n",
            i % 50 + 1
        ));
    }
    apply(&c, &yaml);
    wait_until("200 pods Succeeded", T, || {
        let out = c.coxctl(&["get", "pods", "--no-headers"]).stdout;
        (out.lines().filter(|l| l.contains("Completed")).count() == 200).then_some(())
    })
    .unwrap();
    let wide = c
        .coxctl(&["get", "pods", "-o", "wide", "--no-headers"])
        .stdout;
    assert!(
        wide.lines()
            .any(|l| l.starts_with("p49 ") && l.contains("kwok-50")),
        "{wide}"
    );
}
