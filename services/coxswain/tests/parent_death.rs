//! A container's processes never outlive the agent: the `run-as` wrapper, and the first process
//! of the container's PID namespace it starts, die with their parent even when it dies while
//! they start (before they could ask the kernel for a parent-death signal). Run against the
//! real binary, as root on a machine that allows PID namespaces (skipped elsewhere).
//!
//! Each wrapper runs in a marker directory of its own; a process whose working directory is
//! under it after the wrapper (or its parent) died is a leak.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coxswain_test_support::bin;

/// How long the kernel and the processes get to die after their parent did.
const GONE_WITHIN: Duration = Duration::from_secs(10);

/// Whether this machine gives containers PID namespaces: root, and the agent's own probe says
/// so (`coxswain builtin ns-probe`).
fn pid_namespaces(tmp: &Path) -> bool {
    if !is_root() {
        eprintln!("skipped: PID namespaces for containers need a root agent");
        return false;
    }
    let dir = tmp.join("probe");
    std::fs::create_dir_all(dir.join("keep")).expect("probe dir");
    let out = Command::new(bin("coxswain"))
        .args(["builtin", "ns-probe", "--dir"])
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run ns-probe");
    let ok = out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "pid-namespace";
    if !ok {
        eprintln!(
            "skipped: no PID namespaces here: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ok
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// Every process whose working directory is `marker` or under it: (pid, its argv).
fn processes_in(marker: &Path) -> Vec<(i32, String)> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cwd) = std::fs::read_link(e.path().join("cwd")) else {
            continue;
        };
        // A deleted directory reads as "PATH (deleted)".
        let cwd = cwd.to_string_lossy();
        let cwd = cwd.trim_end_matches(" (deleted)");
        if Path::new(cwd).starts_with(marker) {
            let argv = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            out.push((pid, String::from_utf8_lossy(&argv).replace('\0', " ")));
        }
    }
    out
}

/// Waits until no process is left under `marker`; otherwise kills what is left (so a failing
/// run leaks nothing either) and fails naming it.
fn assert_none_left(marker: &Path, what: &str) {
    let deadline = Instant::now() + GONE_WITHIN;
    loop {
        let left = processes_in(marker);
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            for (pid, _) in &left {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            panic!("{what}: still running {GONE_WITHIN:?} after their parent died: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The first child of `pid` (the wrapper's: the first process of the container's namespace).
fn first_child(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The wrapper's arguments as the agent gives them for a container with a private mount
/// namespace over `cover` and a PID namespace, running `cmd` as nobody.
fn wrapper_args(cover: &Path, cmd: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "builtin",
        "run-as",
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--no-new-privs",
        "--private-dir",
    ]
    .map(String::from)
    .to_vec();
    a.push(cover.to_string_lossy().into_owned());
    a.push("--pid-namespace".into());
    a.push("--".into());
    a.extend(cmd.iter().map(|s| s.to_string()));
    a
}

/// A fresh marker directory (the wrapper's working directory) and the covered directory.
fn dirs(tmp: &Path, name: &str) -> (PathBuf, PathBuf) {
    let marker = tmp.join(name);
    let cover = tmp.join(format!("{name}-cover"));
    std::fs::create_dir_all(&marker).expect("marker dir");
    std::fs::create_dir_all(&cover).expect("cover dir");
    (marker, cover)
}

/// When the wrapper is killed: as soon as its child (the namespace's first process) exists, or
/// once that child has become the container's program (its argv no longer the wrapper's).
#[derive(Clone, Copy, Debug)]
enum KillAt {
    ChildStarting,
    ProgramRunning,
}

/// Starts the wrapper for `cmd`, kills it at `at`, and checks nothing is left.
fn kill_wrapper(tmp: &Path, name: &str, cmd: &[&str], at: KillAt, program: &str) {
    let (marker, cover) = dirs(tmp, name);
    let mut wrapper = Command::new(bin("coxswain"))
        .args(wrapper_args(&cover, cmd))
        .current_dir(&marker)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the wrapper");
    let pid = wrapper.id();
    // A tight poll: the window is the first process's start, a few milliseconds.
    let deadline = Instant::now() + GONE_WITHIN;
    let reached = loop {
        let ready = first_child(pid).is_some_and(|child| match at {
            KillAt::ChildStarting => true,
            KillAt::ProgramRunning => std::fs::read_to_string(format!("/proc/{child}/cmdline"))
                .is_ok_and(|c| !c.contains("run-as") && c.contains(program)),
        });
        if ready || Instant::now() > deadline {
            break ready;
        }
        if matches!(at, KillAt::ProgramRunning) {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wrapper.kill().expect("kill the wrapper");
    let _ = wrapper.wait();
    assert!(reached, "{name}: the wrapper never reached {at:?}");
    assert_none_left(&marker, &format!("{name} (wrapper killed at {at:?})"));
}

#[test]
fn a_containers_namespace_dies_with_its_wrapper_whenever_the_wrapper_dies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    if !pid_namespaces(tmp.path()) {
        return;
    }
    // As the agent names it: the wrapper's own binary, which the container's user may run
    // whatever the directories above it allow.
    let exe = "/proc/self/exe";
    let cases: [(&str, Vec<&str>, &str); 3] = [
        // A plain program as the namespace's pid 1: it never asks for a death signal itself.
        ("plain", vec!["sleep", "3600"], "sleep"),
        // The supervisor the agent wraps user commands in.
        (
            "supervise",
            vec![exe, "builtin", "supervise", "--", "sleep", "3600"],
            "supervise",
        ),
        // A built-in workload.
        ("idle", vec![exe, "builtin", "idle"], "idle"),
    ];
    for round in 0..3 {
        for (name, cmd, program) in &cases {
            for at in [KillAt::ChildStarting, KillAt::ProgramRunning] {
                kill_wrapper(
                    tmp.path(),
                    &format!("{name}-{at:?}-{round}"),
                    cmd,
                    at,
                    program,
                );
            }
        }
    }
}

#[test]
fn a_wrapper_whose_agent_died_before_it_started_runs_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    if !pid_namespaces(tmp.path()) {
        return;
    }
    for round in 0..5 {
        let (marker, cover) = dirs(tmp.path(), &format!("orphan-{round}"));
        // The agent (here a shell) starts the wrapper naming itself as its parent, as the
        // agent does, and is gone at once: before the wrapper could ask for a death signal.
        let mut args = wrapper_args(&cover, &["sleep", "3600"]);
        args.splice(2..2, ["--parent-pid".to_string(), "$$".to_string()]);
        let script = format!(
            "\"$0\" {} </dev/null >/dev/null 2>&1 & exit 0",
            args.iter()
                .map(|a| if a == "$$" {
                    a.clone()
                } else {
                    format!("'{a}'")
                })
                .collect::<Vec<_>>()
                .join(" ")
        );
        let st = Command::new("/bin/sh")
            .args(["-c", &script])
            .arg(bin("coxswain"))
            .current_dir(&marker)
            .status()
            .expect("run the shell");
        assert!(st.success());
        assert_none_left(&marker, &format!("orphan-{round}"));
    }
}

#[test]
fn a_root_agent_that_is_pid_1_keeps_the_builtins_it_wraps() {
    // The agent as a container's entrypoint, pid 1 of its PID namespace (here a shell under
    // `unshare`): a builtin the wrapper execs has pid 1 as its parent and must not take that
    // for a dead agent.
    let tmp = tempfile::tempdir().expect("tempdir");
    if !is_root() || Command::new("unshare").arg("--help").output().is_err() {
        eprintln!("skipped: needs root and util-linux unshare");
        return;
    }
    let (marker, _) = dirs(tmp.path(), "agent-is-pid-1");
    let script = "\"$0\" builtin run-as --parent-pid 1 --uid 65534 --gid 65534 -- \
                  /proc/self/exe builtin print --message still-here --interval-millis 20; echo exited $?";
    let mut agent = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "/bin/sh", "-c", script])
        .arg(bin("coxswain"))
        .current_dir(&marker)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run unshare");
    let out = agent.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + GONE_WITHIN;
    let mut lines = vec![];
    while lines.iter().filter(|l| *l == "still-here").count() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    agent.kill().expect("kill the agent");
    let _ = agent.wait();
    assert_none_left(&marker, "agent-is-pid-1");
    assert!(
        lines.iter().filter(|l| *l == "still-here").count() >= 3,
        "the builtin did not keep running: {lines:?}"
    );
}
