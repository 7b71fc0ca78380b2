//! A separately run coxswain component (`coxswain scheduler|controllers|agent|store ...`) for
//! the multi-process e2e tests: its stdout lines arrive with the time they were read (so a test
//! can time a takeover from the line a process printed), its stderr goes to a log file, and it
//! is killed when dropped.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::{bin, pki};

pub struct Component {
    child: Child,
    lines: Receiver<(Instant, String)>,
    log: PathBuf,
    /// The directory of a log [`Component::start_temp`] chose, removed on drop.
    _tmp: Option<tempfile::TempDir>,
}

impl Component {
    /// `coxswain <args> --metrics-listen 127.0.0.1:0` with the test PKI's admin kubeconfig.
    pub fn start(args: &[&str], log: &Path) -> Component {
        let log_file = std::fs::File::create(log).expect("log file");
        let mut child = Command::new(bin("coxswain"))
            .args(args)
            .args(["--metrics-listen", "127.0.0.1:0"])
            .env("COXCONFIG", &pki().kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap_or_else(|e| panic!("start coxswain {args:?}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        // Reads every line, so the component never blocks on a full pipe, also once nobody
        // listens any more.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send((Instant::now(), line));
            }
        });
        Component {
            child,
            lines,
            log: log.to_path_buf(),
            _tmp: None,
        }
    }

    /// Like [`Component::start`], with the stderr log in a temporary directory of its own.
    pub fn start_temp(args: &[&str]) -> Component {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let mut c = Component::start(args, &tmp.path().join("component.log"));
        c._tmp = Some(tmp);
        c
    }

    /// The component's ready line (the first stdout line starting with `prefix`, e.g.
    /// `coxswain proxy ready`); panics with its log when none comes within `timeout`.
    pub fn ready(&mut self, prefix: &str, timeout: Duration) -> String {
        match self.next_line(prefix, timeout) {
            Some((_, line)) => line,
            None => panic!("no {prefix:?} line within {timeout:?}: {}", self.log()),
        }
    }

    /// The next stdout line starting with `prefix` within `timeout`, with the time it was read;
    /// the lines before it are consumed.
    pub fn next_line(&mut self, prefix: &str, timeout: Duration) -> Option<(Instant, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((t, l)) if l.starts_with(prefix) => return Some((t, l)),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// SIGKILL the process and reap it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process's stderr log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id (to signal it, e.g. SIGSTOP/SIGCONT).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status once it has exited (reaped), else None.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A ready `coxswain [GLOBAL] agent` for `node` against `server` (its own port 0, pod range
/// `cidr`, root `root`, pod durations ×0.1, Lease renewed every 300ms, then `extra`), and its
/// ready line.
pub fn start_agent(
    global: &[&str],
    server: &str,
    node: &str,
    cidr: &str,
    root: &Path,
    extra: &[&str],
) -> (Component, String) {
    let root = root.to_string_lossy();
    let mut args = global.to_vec();
    args.extend([
        "agent",
        "--listen",
        "127.0.0.1:0",
        "--node-name",
        node,
        "--server",
        server,
        "--pod-cidr",
        cidr,
        "--root-dir",
        &root,
        "--pod-time-scale",
        "0.1",
        "--lease-renew-interval",
        "300ms",
    ]);
    args.extend_from_slice(extra);
    let mut agent = Component::start_temp(&args);
    let line = agent.ready("coxswain agent ready", Duration::from_secs(30));
    (agent, line)
}

/// The value of `key=VALUE` in a ready line (`coxswain proxy ready metrics=127.0.0.1:9 ...`).
pub fn field(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|part| part.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        .to_string()
}
