//! What a node agent keeps and shows as a kubelet does, end to end on the real binaries: restart
//! counts that survive an agent restart, probe messages in the container's paths, `coxctl logs
//! --timestamps/--since`, `coxctl exec`, and the requests it sends on deletions and heartbeats.
//!
//! Each test uses its own pod network octet so parallel clusters never share pod IPs.
use std::time::Duration;

use coxswain_test_support::component::{self, Component};
use coxswain_test_support::{fast_up_with, wait_until, Coxswain};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn cluster(octet: u8, extra: &[&str]) -> Coxswain {
    // These tests are about the agent, not authentication: plain gRPC, whatever the default.
    std::env::set_var("COXSWAIN_AUTH", "false");
    let octet = octet.to_string();
    let defaults = [
        "--nodes",
        "1",
        "--pod-network-octet",
        &octet,
        "--backoff-initial",
        "300ms",
        "--backoff-max",
        "600ms",
    ];
    fast_up_with(&defaults, extra).expect("start coxswain up")
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

/// A `coxswain agent` process for `node`, ready; SIGKILLed on drop.
fn start_agent(server: &str, node: &str, cidr: &str, root: &std::path::Path) -> Component {
    let extra = ["--backoff-initial", "300ms", "--backoff-max", "600ms"];
    component::start_agent(&[], server, node, cidr, root, &extra).0
}

#[test]
fn restart_counts_survive_an_agent_restart() {
    let c = cluster(221, &["--nodes", "0"]);
    let root = tempfile::tempdir().unwrap();
    let agent = start_agent(&c.url(), "edge1", "127.221.1.0", root.path());
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
---
apiVersion: v1
kind: Pod
metadata: {name: mixed}
spec:
  nodeName: edge1
  restartPolicy: Never
  containers:
  - name: once
    image: busybox
    command: ["/bin/sh", "-c", "exit 0"]
  - name: keep
    image: busybox
    command: ["/bin/sh", "-c", "while true; do sleep 0.2; done"]
"#,
    );
    let once_done = |p: &Value| {
        p["status"]["containerStatuses"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == "once"))
            .filter(|s| s["state"]["terminated"]["exitCode"] == 0)
            .cloned()
    };
    let keep_running = |p: &Value| {
        p["status"]["containerStatuses"]
            .as_array()
            .is_some_and(|a| {
                a.iter()
                    .any(|s| s["name"] == "keep" && s["state"]["running"].is_object())
            })
    };
    let once_before = wait_until("mixed: once completed, keep running", T, || {
        let p = pod(&c, "mixed")?;
        once_done(&p).filter(|_| keep_running(&p))
    })
    .unwrap();
    wait_until("crasher restarted 3 times", T, || {
        pod(&c, "crasher").filter(|p| restarts(p) >= 3)
    })
    .unwrap();
    wait_until("steady running", T, || pod(&c, "steady").filter(running)).unwrap();
    drop(agent);
    let before = restarts(&pod(&c, "crasher").unwrap());
    assert_eq!(restarts(&pod(&c, "steady").unwrap()), 0);

    let _agent = start_agent(&c.url(), "edge1", "127.221.1.0", root.path());
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
    // A container that had completed under restartPolicy Never is not run again: the new
    // agent keeps its terminated state as it was, while the pod's other container runs.
    let p = wait_until("mixed: keep running under the new agent", T, || {
        pod(&c, "mixed").filter(|p| {
            keep_running(p)
                && p["status"]["containerStatuses"]
                    .as_array()
                    .is_some_and(|a| {
                        a.iter()
                            .any(|s| s["name"] == "keep" && s["restartCount"] == 1)
                    })
        })
    })
    .unwrap();
    assert_eq!(once_done(&p), Some(once_before), "{p}");
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

/// An RFC 3339 time with nine fraction digits as nanoseconds since the epoch.
fn nanos(ts: &str) -> i128 {
    assert_eq!(ts.len(), 30, "{ts}");
    assert!(ts.ends_with('Z') && &ts[19..20] == ".", "{ts}");
    let secs = coxswain_api::time::parse_rfc3339(ts).unwrap_or_else(|| panic!("{ts}"));
    secs as i128 * 1_000_000_000 + ts[20..29].parse::<i128>().unwrap()
}

#[test]
fn logs_with_timestamps_and_since() {
    let c = cluster(223, &[]);
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: talker}
spec:
  nodeName: node1
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "echo first; sleep 3; echo second >&2; while true; do sleep 1; done"]
"#,
    );
    wait_until("second line", T, || {
        let out = c.coxctl(&["logs", "talker"]);
        (out.stdout == "first\nsecond\n").then_some(())
    })
    .unwrap();
    let out = c
        .coxctl(&["logs", "talker", "--timestamps"])
        .success()
        .stdout;
    let lines: Vec<(&str, &str)> = out
        .lines()
        .map(|l| l.split_once(' ').expect("timestamp prefix"))
        .collect();
    assert_eq!(
        lines.iter().map(|l| l.1).collect::<Vec<_>>(),
        ["first", "second"]
    );
    let (t1, t2) = (nanos(lines[0].0), nanos(lines[1].0));
    assert!(t2 - t1 >= 2_500_000_000, "{out}");
    // --since-time: lines at or after it.
    let out = c
        .coxctl(&["logs", "talker", "--since-time", lines[1].0])
        .success()
        .stdout;
    assert_eq!(out, "second\n");
    let out = c
        .coxctl(&["logs", "talker", "--since-time", "2000-01-01T00:00:00Z"])
        .success()
        .stdout;
    assert_eq!(out, "first\nsecond\n");
    // --since: a window that holds the second line but not the first.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128;
    let secs = (now - t2) / 1_000_000_000 + 2;
    assert!(
        now - t1 > secs * 1_000_000_000 + 500_000_000,
        "too slow to test"
    );
    let out = c
        .coxctl(&["logs", "talker", &format!("--since={secs}s")])
        .success()
        .stdout;
    assert_eq!(out, "second\n");
    let out = c
        .coxctl(&["logs", "talker", "--since=1h", "--timestamps", "--tail=1"])
        .success()
        .stdout;
    assert_eq!(out, format!("{} second\n", lines[1].0));
    // kubectl's client-side checks.
    let err = c
        .coxctl(&["logs", "talker", "--since=1h", "--since-time", lines[1].0])
        .failure()
        .stderr;
    assert!(
        err.contains("at most one of `sinceTime` or `sinceSeconds` may be specified"),
        "{err}"
    );
    let err = c
        .coxctl(&["logs", "talker", "--since-time", "yesterday"])
        .failure()
        .stderr;
    assert!(err.contains("parsing time \"yesterday\""), "{err}");
}

/// `coxctl ARGS` against `c` with `stdin`: (exit code, stdout, stderr).
fn coxctl_status(c: &Coxswain, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(coxswain_test_support::bin("coxctl"))
        .args(args)
        .env("COXSWAIN_SERVER", c.url())
        .env_remove("COXSWAIN_NAMESPACE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn coxctl");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

const EXEC_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: shell}
spec:
  nodeName: node1
  containers:
  - name: main
    image: busybox
    workingDir: /tmp
    env: [{name: GREETING, value: mayikt}]
    command: ["/bin/sh", "-c", "echo $GREETING > /tmp/mayikt.txt; while true; do sleep 1; done"]
  - name: side
    image: nginx
"#;

fn exec_pod(c: &Coxswain) {
    c.apply(EXEC_POD);
    wait_until("shell running", T, || {
        pod(c, "shell").filter(|p| {
            p["status"]["containerStatuses"]
                .as_array()
                .is_some_and(|a| {
                    a.len() == 2 && a.iter().all(|s| s["state"]["running"].is_object())
                })
        })
    })
    .unwrap();
    wait_until("the file the container wrote", T, || {
        let (code, out, _) = coxctl_status(
            c,
            &[
                "exec",
                "shell",
                "-c",
                "main",
                "--",
                "cat",
                "/tmp/mayikt.txt",
            ],
            "",
        );
        (code == 0 && out == "mayikt\n").then_some(())
    })
    .unwrap();
}

#[test]
fn exec_runs_in_the_container_and_propagates_the_exit_code() {
    let c = cluster(224, &[]);
    exec_pod(&c);
    // The container's environment and mapped paths; the default container is the first one.
    let (code, out, err) = coxctl_status(
        &c,
        &[
            "exec",
            "shell",
            "--",
            "/bin/sh",
            "-c",
            "echo $GREETING $POD_NAME; ls /tmp; echo oops >&2",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "mayikt shell\nmayikt.txt\n");
    assert_eq!(
        err,
        "Defaulted container \"main\" out of: main, side\noops\n"
    );
    // The working directory and the paths it prints are the container's, not the agent's.
    for (container, want) in [("main", "/tmp\n"), ("side", "/\n")] {
        let (code, out, err) = coxctl_status(
            &c,
            &[
                "exec", "shell", "-c", container, "--", "/bin/sh", "-c", "pwd",
            ],
            "",
        );
        assert_eq!((code, out.as_str()), (0, want), "{container}: {err}");
    }
    let (_, out, _) = coxctl_status(
        &c,
        &[
            "exec",
            "shell",
            "-c",
            "main",
            "--",
            "/bin/sh",
            "-c",
            "cd /tmp && ls -d $PWD/mayikt.txt; readlink -f .",
        ],
        "",
    );
    assert_eq!(out, "/tmp/mayikt.txt\n/tmp\n");
    // Exit codes as kubectl shows them.
    let (code, out, err) = coxctl_status(
        &c,
        &[
            "exec",
            "shell",
            "-c",
            "main",
            "--",
            "/bin/sh",
            "-c",
            "echo bye; exit 3",
        ],
        "",
    );
    assert_eq!((code, out.as_str()), (3, "bye\n"), "{err}");
    assert_eq!(err, "command terminated with exit code 3\n");
    // stdin with -i.
    let (code, out, err) = coxctl_status(
        &c,
        &[
            "exec",
            "-i",
            "shell",
            "-c",
            "main",
            "--",
            "/bin/sh",
            "-c",
            "tr a-z A-Z > /tmp/up; cat /tmp/up",
        ],
        "hello\nworld\n",
    );
    assert_eq!((code, out.as_str()), (0, "HELLO\nWORLD\n"), "{err}");
    // Without -i the command's stdin is empty.
    let (code, out, _) =
        coxctl_status(&c, &["exec", "shell", "-c", "main", "--", "cat"], "ignored");
    assert_eq!((code, out.as_str()), (0, ""));
    // -t without a terminal: kubectl's warning, and no tty.
    let (code, out, err) = coxctl_status(
        &c,
        &[
            "exec",
            "-it",
            "shell",
            "-c",
            "main",
            "--",
            "/bin/sh",
            "-c",
            "test -t 0 || echo no tty",
        ],
        "",
    );
    assert_eq!((code, out.as_str()), (0, "no tty\n"), "{err}");
    assert!(
        err.starts_with("Unable to use a TTY - input is not a terminal"),
        "{err}"
    );
    // Errors.
    let (code, _, err) = coxctl_status(&c, &["exec", "shell", "-c", "nope", "--", "true"], "");
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: unable to upgrade connection: container not found (\"nope\")\n"
    );
    let (code, _, err) = coxctl_status(
        &c,
        &["exec", "shell", "-c", "main", "--", "no-such-tool"],
        "",
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("exec: \"no-such-tool\": executable file not found in $PATH"),
        "{err}"
    );
    let (code, _, err) = coxctl_status(&c, &["exec", "shell"], "");
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: you must specify at least one command for the container\n"
    );
    let (_, _, err) = coxctl_status(&c, &["exec", "ghost", "--", "true"], "");
    assert_eq!(
        err,
        "Error from server (NotFound): pods \"ghost\" not found\n"
    );
}

#[test]
fn exec_it_runs_a_shell_on_a_terminal() {
    if !std::path::Path::new("/usr/bin/script").is_file() {
        panic!("util-linux `script` is needed to give coxctl a terminal");
    }
    let c = cluster(225, &[]);
    exec_pod(&c);
    // `script` runs coxctl on a pseudo-terminal; what is typed goes to the remote shell.
    let coxctl = coxswain_test_support::bin("coxctl");
    let cmdline = format!(
        "{} exec -it shell -c main -- /bin/sh",
        coxctl.to_string_lossy()
    );
    use std::io::Write;
    let mut child = std::process::Command::new("/usr/bin/script")
        .args(["-q", "-e", "-c", &cmdline, "/dev/null"])
        .env("COXSWAIN_SERVER", c.url())
        .env_remove("COXSWAIN_NAMESPACE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn script");
    let mut input = child.stdin.take().unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&all).to_string();
            if text.contains("ANSWER=42") {
                let _ = done_tx.send(());
            }
        }
        String::from_utf8_lossy(&all).to_string()
    });
    input
        .write_all(b"tty; test -t 1 && echo ANSWER=$((6*7)) $GREETING\n")
        .unwrap();
    done_rx.recv_timeout(T).unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("no answer from the remote shell");
    });
    input.write_all(b"exit 5\n").unwrap();
    let status = child.wait().unwrap();
    drop(input);
    let out = reader.join().unwrap();
    assert!(
        out.contains("/dev/pts/"),
        "the remote shell has a terminal: {out}"
    );
    assert!(out.contains("ANSWER=42 mayikt"), "{out}");
    assert!(out.contains("command terminated with exit code 5"), "{out}");
    assert_eq!(status.code(), Some(5), "{out}");
}

/// A container's workingDir is a directory of the container (under its own root, made when
/// missing, as runc makes the cwd), never the host directory of the same name: the main
/// process, exec and exec probes all run there.
#[test]
fn working_dir_is_resolved_inside_the_container() {
    let c = cluster(226, &[]);
    assert!(
        !std::path::Path::new("/mayikt-app").exists(),
        "the test needs /mayikt-app to be absent on the host"
    );
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: wd}
spec:
  nodeName: node1
  containers:
  - name: main
    image: busybox
    workingDir: /mayikt-app
    command: ["/bin/sh", "-c", "echo made-here > out.txt; while true; do sleep 1; done"]
    readinessProbe:
      exec: {command: ["cat", "out.txt"]}
      periodSeconds: 1
"#,
    );
    // The probe reads the file relative to the working directory: Ready means it found it.
    wait_until("wd ready", T, || {
        pod(&c, "wd").filter(|p| p["status"]["containerStatuses"][0]["ready"] == true)
    })
    .unwrap();
    let (code, out, err) = coxctl_status(&c, &["exec", "wd", "--", "cat", "out.txt"], "");
    assert_eq!((code, out.as_str()), (0, "made-here\n"), "{err}");
    let (code, out, err) = coxctl_status(&c, &["exec", "wd", "--", "/bin/sh", "-c", "pwd"], "");
    assert_eq!((code, out.as_str()), (0, "/mayikt-app\n"), "{err}");
    assert!(
        !std::path::Path::new("/mayikt-app").exists(),
        "nothing was made on the host"
    );
}

/// The store's `apiserver_request_total` series as (series, count).
fn request_counts(c: &Coxswain) -> Vec<(String, f64)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(&c.metrics).expect("metrics");
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        c.metrics
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn count(counts: &[(String, f64)], verb: &str, resource: &str, sub: &str, code: &str) -> f64 {
    let want = format!(
        "apiserver_request_total{{verb=\"{verb}\",resource=\"{resource}\",subresource=\"{sub}\",code=\"{code}\"}}"
    );
    counts
        .iter()
        .filter(|(k, _)| *k == want)
        .map(|(_, v)| v)
        .sum()
}

/// The requests a node agent sends as a kubelet does: a deleted pod's final status is written
/// before the agent removes the pod (the status manager's order), so no status write finds the
/// pod gone and no pod is removed twice (404s for every deletion before, as the status write
/// raced the removal and the final status came back after the pod was forgotten); and the node
/// status check reads the node from the agent's informer (the node lister), not with a GET.
#[test]
fn deletions_and_heartbeats_send_no_request_that_finds_nothing() {
    let c = cluster(
        218,
        &[
            "--nodes",
            "4",
            "--runtime",
            "sim",
            "--lease-renew-interval",
            "200ms",
            "--node-status-update-frequency",
            "200ms",
        ],
    );
    let mut yaml = String::new();
    for i in 0..40 {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: d{i}}}\nspec:\n  nodeName: node{}\n  containers: [{{name: c, image: busybox}}]\n",
            i % 4 + 1
        ));
    }
    c.apply(&yaml);
    wait_until("40 pods Running", T, || {
        let out = c.coxctl(&["get", "pods", "--no-headers"]).stdout;
        (out.lines().filter(|l| l.contains(" Running ")).count() == 40).then_some(())
    })
    .unwrap();
    let before = request_counts(&c);
    c.coxctl(&["delete", "pods", "--all"]).success();
    wait_until("every pod gone", T, || {
        c.coxctl(&["get", "pods", "--no-headers"])
            .stdout
            .trim()
            .is_empty()
            .then_some(())
    })
    .unwrap();
    // Several rounds of heartbeats (4 nodes every 200 ms) after the deletions.
    let leases = count(&before, "UPDATE", "leases", "", "200");
    wait_until("20 more lease renewals", T, || {
        (count(&request_counts(&c), "UPDATE", "leases", "", "200") >= leases + 20.0).then_some(())
    })
    .unwrap();
    let after = request_counts(&c);
    let grew = |verb: &str, resource: &str, sub: &str, code: &str| {
        count(&after, verb, resource, sub, code) - count(&before, verb, resource, sub, code)
    };
    assert_eq!(grew("UPDATE", "pods", "status", "404"), 0.0, "{after:?}");
    assert_eq!(grew("DELETE", "pods", "", "404"), 0.0, "{after:?}");
    assert_eq!(grew("GET", "nodes", "", "200"), 0.0, "{after:?}");
    // Each pod: the graceful delete, then the agent's own removal after its final status.
    assert_eq!(grew("DELETE", "pods", "", "200"), 80.0, "{after:?}");
    assert!(grew("UPDATE", "pods", "status", "200") >= 40.0, "{after:?}");
}
