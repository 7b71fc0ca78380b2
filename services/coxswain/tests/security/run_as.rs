//! Containers' users: the node's unprivileged default, runAsUser/runAsGroup/fsGroup, and
//! runAsNonRoot enforced as the kubelet does.
use coxswain_test_support::Coxswain;

/// This test process's uid (`id -u`): the agents of the clusters it starts run as it.
fn own_uid() -> u32 {
    let out = std::process::Command::new("id")
        .arg("-u")
        .output()
        .expect("run id -u");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a uid")
}

fn pod_json(c: &Coxswain, name: &str) -> Option<serde_json::Value> {
    let out = c.coxctl(&["get", "pod", name, "-o", "json"]);
    serde_json::from_str(&out.stdout).ok()
}

/// Waits for the first container of `name` to be waiting with `reason`; returns its message.
fn wait_waiting(c: &Coxswain, name: &str, reason: &str) -> String {
    coxswain_test_support::wait_until(
        &format!("{name} waiting with {reason}"),
        std::time::Duration::from_secs(60),
        || {
            let p = pod_json(c, name)?;
            let w = &p["status"]["containerStatuses"][0]["state"]["waiting"];
            (w["reason"] == reason).then(|| w["message"].as_str().unwrap_or("").to_string())
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", pod_json(c, name)))
}

/// Waits for `coxctl logs name` to hold `lines` lines; returns them.
fn wait_log_lines(c: &Coxswain, name: &str, lines: usize) -> Vec<String> {
    coxswain_test_support::wait_until(
        &format!("{lines} log lines of {name}"),
        std::time::Duration::from_secs(60),
        || {
            let out = c.coxctl(&["logs", name]);
            let got: Vec<String> = out.stdout.lines().map(str::to_string).collect();
            (got.len() >= lines).then_some(got)
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", pod_json(c, name)))
}

const RUN_AS_PODS: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: who}
spec:
  volumes: [{name: scratch, emptyDir: {}}]
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "id -u; id -g; echo t > /tmp/t && echo v > /data/v && cat /tmp/t /data/v; exec sleep 3600"]
    volumeMounts: [{name: scratch, mountPath: /data}]
    readinessProbe:
      exec: {command: ["/bin/sh", "-c", "test \"$(id -u)\" = \"$EXPECT\""]}
      periodSeconds: 1
    env: [{name: EXPECT, value: "UID"}]
---
apiVersion: v1
kind: Pod
metadata: {name: as1234}
spec:
  securityContext: {runAsUser: 1000, runAsGroup: 2345, fsGroup: 3456}
  containers:
  - name: c
    image: busybox
    securityContext: {runAsUser: 1234}
    command: ["/bin/sh", "-c", "id -u; id -g; id -G; exec sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: explicit-root}
spec:
  containers:
  - name: c
    image: busybox
    securityContext: {runAsUser: 0}
    command: ["/bin/sh", "-c", "id -u; exec sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: nonroot-but-0}
spec:
  securityContext: {runAsNonRoot: true}
  containers:
  - name: c
    image: busybox
    securityContext: {runAsUser: 0}
    command: ["/bin/sh", "-c", "id -u; exec sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: nginx
    image: nginx
    ports: [{containerPort: 80}]
    readinessProbe:
      httpGet: {path: /, port: 80}
      periodSeconds: 1
"#;

#[test]
fn containers_run_as_an_unprivileged_user_and_run_as_non_root_is_enforced() {
    let me = own_uid();
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain");
    // As root the agent gives an image the node's default user, nobody; otherwise its own.
    let expect = if me == 0 { 65534 } else { me };
    let manifest = RUN_AS_PODS.replace("\"UID\"", &format!("\"{expect}\""));
    let manifest = if me == 0 {
        manifest
    } else {
        // A non-root agent cannot run as 1234 or 0: keep the pods it can run.
        manifest
            .split("\n---\n")
            .filter(|d| !d.contains("{name: as1234}") && !d.contains("{name: explicit-root}"))
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    c.apply(&manifest).success();

    // The process, its exec probe and `exec` all run as the container's user, and its /tmp
    // and emptyDir are writable by it.
    let lines = wait_log_lines(&c, "who", 4);
    assert_eq!(
        lines[..4],
        [
            expect.to_string(),
            expect.to_string(),
            "t".into(),
            "v".into()
        ],
        "{lines:?}"
    );
    coxswain_test_support::wait_until("who ready", std::time::Duration::from_secs(60), || {
        (pod_json(&c, "who")?["status"]["containerStatuses"][0]["ready"] == true).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", pod_json(&c, "who")));
    let out = c.coxctl(&["exec", "who", "--", "id", "-u"]).success();
    assert_eq!(out.stdout.trim(), expect.to_string());

    // A non-root user still serves port 80 (as in a container's own network namespace).
    coxswain_test_support::wait_until("web ready", std::time::Duration::from_secs(60), || {
        (pod_json(&c, "web")?["status"]["containerStatuses"][0]["ready"] == true).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", pod_json(&c, "web")));

    // runAsNonRoot with runAsUser 0: the kubelet's refusal, before anything runs.
    let msg = wait_waiting(&c, "nonroot-but-0", "CreateContainerConfigError");
    let uid = pod_json(&c, "nonroot-but-0").expect("pod")["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    assert_eq!(
        msg,
        format!(
            "container's runAsUser breaks non-root policy (pod: \"nonroot-but-0_default({uid})\", container: c)"
        )
    );
    assert_eq!(c.coxctl(&["logs", "nonroot-but-0"]).stdout, "");

    if me == 0 {
        // The container's runAsUser over the pod's; the pod's group and fsGroup.
        let lines = wait_log_lines(&c, "as1234", 3);
        assert_eq!(lines[..3], ["1234", "2345", "2345 3456"], "{lines:?}");
        // Root only when asked for.
        let lines = wait_log_lines(&c, "explicit-root", 1);
        assert_eq!(lines[0], "0");
    }
}

#[test]
fn run_as_non_root_refuses_an_image_that_runs_as_root() {
    if own_uid() != 0 {
        // Only a root agent can make root an image's user.
        return;
    }
    let c = Coxswain::start_fast_up(&["--nodes", "1", "--default-run-as-user", "0"])
        .expect("start coxswain");
    c.apply(
        r#"apiVersion: v1
kind: Pod
metadata: {name: strict}
spec:
  securityContext: {runAsNonRoot: true}
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "id -u; exec sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: lax}
spec:
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "id -u; exec sleep 3600"]
"#,
    )
    .success();
    let msg = wait_waiting(&c, "strict", "CreateContainerConfigError");
    assert!(
        msg.starts_with(
            "container has runAsNonRoot and image will run as root (pod: \"strict_default("
        ),
        "{msg}"
    );
    assert_eq!(wait_log_lines(&c, "lax", 1)[0], "0");
}

/// `runAsUser: 0` with a `runAsGroup`: root's uid with the container's group in every process
/// of the container, as runc gives them: its command, its exec probe, and `exec`, both with
/// pipes and on a terminal.
#[test]
fn a_root_container_keeps_its_group_in_probes_and_exec() {
    if own_uid() != 0 {
        // Only a root agent can give root another group.
        return;
    }
    if !std::path::Path::new("/usr/bin/script").is_file() {
        panic!("util-linux `script` is needed to give coxctl a terminal");
    }
    let c = Coxswain::start_fast_up(&["--nodes", "1"]).expect("start coxswain");
    c.apply(
        r#"apiVersion: v1
kind: Pod
metadata: {name: rootgrp}
spec:
  securityContext: {runAsGroup: 2345}
  containers:
  - name: c
    image: busybox
    securityContext: {runAsUser: 0}
    command: ["/bin/sh", "-c", "id -u; id -g; exec sleep 3600"]
    readinessProbe:
      exec: {command: ["/bin/sh", "-c", "test \"$(id -u):$(id -g)\" = 0:2345"]}
      periodSeconds: 1
"#,
    )
    .success();
    assert_eq!(wait_log_lines(&c, "rootgrp", 2)[..2], ["0", "2345"]);
    coxswain_test_support::wait_until("rootgrp ready", std::time::Duration::from_secs(60), || {
        (pod_json(&c, "rootgrp")?["status"]["containerStatuses"][0]["ready"] == true).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", pod_json(&c, "rootgrp")));

    let ids = r#"echo "ids=$(id -u):$(id -g) tty=$(test -t 0 && echo yes)""#;
    let out = c
        .coxctl(&["exec", "rootgrp", "--", "/bin/sh", "-c", ids])
        .success();
    assert_eq!(out.stdout, "ids=0:2345 tty=\n");

    // On a terminal: `script` runs coxctl on a pseudo-terminal.
    let cmdline = format!(
        "{} exec -it rootgrp -- /bin/sh -c '{ids}'",
        coxswain_test_support::bin("coxctl").to_string_lossy()
    );
    let mut child = std::process::Command::new("/usr/bin/script")
        .args(["-q", "-e", "-c", &cmdline, "/dev/null"])
        .env("COXSWAIN_SERVER", c.url())
        .env("COXCONFIG", &coxswain_test_support::pki().kubeconfig)
        .env_remove("COXSWAIN_NAMESPACE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn script");
    // Input stays open until the command is done (its end is the session's).
    let input = child.stdin.take();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            panic!("exec -it did not end");
        })
        .expect("script");
    drop(input);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ids=0:2345 tty=yes"), "{text}");
    assert!(out.status.success(), "{text}");
}
