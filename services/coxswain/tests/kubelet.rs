//! What a node agent keeps and shows as a kubelet does, end to end on the real binaries: restart
//! counts that survive an agent restart, probe messages in the container's paths, `coxctl logs
//! --timestamps/--since`, and `coxctl exec`.
//!
//! Each test uses its own pod network octet so parallel clusters never share pod IPs.
use std::time::Duration;

use coxswain_test_support::{wait_until, Coxswain};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn cluster(octet: u8, extra: &[&str]) -> Coxswain {
    let octet = octet.to_string();
    let mut args = vec![
        "--in-memory",
        "--nodes",
        "1",
        "--pod-network-octet",
        &octet,
        "--pod-time-scale",
        "0.1",
        "--backoff-initial",
        "300ms",
        "--backoff-max",
        "600ms",
        "--lease-renew-interval",
        "300ms",
        "--node-status-update-frequency",
        "500ms",
    ];
    for flag in extra.iter().filter(|f| f.starts_with("--")) {
        if let Some(i) = args.iter().position(|a| a == flag) {
            args.drain(i..i + 2);
        }
    }
    args.extend_from_slice(extra);
    Coxswain::start_with(&["up"], &args).expect("start coxswain up")
}

fn pod(c: &Coxswain, name: &str) -> Option<Value> {
    let out = c.coxctl(&["get", "pod", name, "-o", "json"]);
    if !out.ok {
        return None;
    }
    serde_json::from_str(&out.stdout).ok()
}

fn container_status(p: &Value) -> &Value {
    &p["status"]["containerStatuses"][0]
}

fn restarts(p: &Value) -> i64 {
    container_status(p)["restartCount"].as_i64().unwrap_or(0)
}

fn running(p: &Value) -> bool {
    container_status(p)["state"]["running"].is_object()
}

/// A `coxswain agent` process; SIGKILLed on drop.
struct AgentProc {
    child: std::process::Child,
}

impl AgentProc {
    fn start(server: &str, node: &str, cidr: &str, root: &std::path::Path) -> AgentProc {
        use std::io::BufRead;
        let mut child = std::process::Command::new(coxswain_test_support::bin("coxswain"))
            .args(["agent", "--listen", "127.0.0.1:0", "--node-name", node])
            .args(["--server", server, "--pod-cidr", cidr])
            .arg("--root-dir")
            .arg(root)
            .args(["--pod-time-scale", "0.1", "--lease-renew-interval", "300ms"])
            .args(["--backoff-initial", "300ms", "--backoff-max", "600ms"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn coxswain agent");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(T).expect("agent ready line");
        assert!(line.starts_with("coxswain agent ready"), "{line}");
        AgentProc { child }
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn restart_counts_survive_an_agent_restart() {
    let c = cluster(221, &["--nodes", "0"]);
    let root = tempfile::tempdir().unwrap();
    let agent = AgentProc::start(&c.url(), "edge1", "127.221.1.0", root.path());
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  nodeName: edge1
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "sleep 0.2; exit 3"]
---
apiVersion: v1
kind: Pod
metadata: {name: steady}
spec:
  nodeName: edge1
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "while true; do sleep 0.2; done"]
"#,
    );
    wait_until("crasher restarted 3 times", T, || {
        pod(&c, "crasher").filter(|p| restarts(p) >= 3)
    })
    .unwrap();
    wait_until("steady running", T, || {
        pod(&c, "steady").filter(|p| running(p))
    })
    .unwrap();
    drop(agent);
    let before = restarts(&pod(&c, "crasher").unwrap());
    assert_eq!(restarts(&pod(&c, "steady").unwrap()), 0);

    let _agent = AgentProc::start(&c.url(), "edge1", "127.221.1.0", root.path());
    // The new agent takes over: counts go on from the stored ones, never backwards.
    let mut seen = vec![];
    let p = wait_until("crasher restarted after the agent restart", T, || {
        let p = pod(&c, "crasher")?;
        seen.push(restarts(&p));
        (restarts(&p) > before).then_some(p)
    })
    .unwrap();
    assert!(
        seen.iter().all(|&n| n >= before),
        "restartCount went backwards from {before}: {seen:?}"
    );
    assert_eq!(
        container_status(&p)["lastState"]["terminated"]["exitCode"],
        3,
        "{p}"
    );
    // The container that was running was killed with the agent: one more restart, and
    // upstream's ContainerStatusUnknown as its last state.
    let p = wait_until("steady running again", T, || {
        pod(&c, "steady").filter(|p| running(p) && restarts(p) == 1)
    })
    .unwrap();
    let last = &container_status(&p)["lastState"]["terminated"];
    assert_eq!(last["reason"], "ContainerStatusUnknown", "{p}");
    assert_eq!(last["exitCode"], 137, "{p}");
}

#[test]
fn an_exec_probe_failure_names_the_container_path() {
    let c = cluster(222, &[]);
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: mayikt-pod}
spec:
  nodeName: node1
  containers:
  - name: nginx
    image: nginx:1.17.9
    ports: [{name: nginx-port, containerPort: 80}]
    livenessProbe:
      exec:
        command: ["/bin/cat", "/tmp/mayikt.txt"]
      periodSeconds: 1
"#,
    );
    let msg = wait_until("Unhealthy event", T, || {
        let out = c.coxctl(&["get", "events", "-o", "json"]);
        let v: Value = serde_json::from_str(&out.stdout).ok()?;
        v["items"]
            .as_array()?
            .iter()
            .find(|e| e["reason"] == "Unhealthy")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
    })
    .unwrap();
    assert!(
        msg.starts_with("Liveness probe failed: /bin/cat: ")
            && msg.contains(" /tmp/mayikt.txt: No such file or directory")
            || msg.contains("'/tmp/mayikt.txt'"),
        "{msg}"
    );
    let data_dir = c.data_dir.to_string_lossy().to_string();
    assert!(
        !msg.contains(&data_dir) && !msg.contains("/agent/"),
        "a host path in {msg}"
    );
}
