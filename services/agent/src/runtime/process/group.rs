//! A container is its process group: signalling it, its CPU and memory, and the groups a
//! previous agent left.
use std::path::Path;

use crate::runtime::Usage;

/// Kills container process groups a previous agent left under `root` (their pgid files), and
/// clears the directory.
pub fn kill_leftovers(root: &Path) {
    let Ok(pods) = std::fs::read_dir(root) else {
        return;
    };
    for pod in pods.flatten() {
        // Per-claim volume data outlives pods and agents.
        if pod.file_name() == "pvc" {
            continue;
        }
        let Ok(containers) = std::fs::read_dir(pod.path()) else {
            continue;
        };
        for c in containers.flatten() {
            let Some(pgid) = std::fs::read_to_string(c.path().join("pgid"))
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            else {
                continue;
            };
            // Only if that process still lives in this container's directory.
            let cwd = std::fs::read_link(format!("/proc/{pgid}/cwd")).ok();
            if cwd.as_deref() == Some(c.path().as_path()) {
                kill_group(pgid, true);
            }
        }
        let _ = std::fs::remove_dir_all(pod.path());
    }
}

/// A process's exit code as a shell reports it (and the kubelet shows a container's): its own
/// code, else 128 + the signal that ended it.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Signals process group `pgid`: SIGKILL, else SIGTERM.
pub fn kill_group(pgid: i32, kill: bool) {
    if let Some(pid) = rustix::process::Pid::from_raw(pgid) {
        let sig = if kill {
            rustix::process::Signal::KILL
        } else {
            rustix::process::Signal::TERM
        };
        let _ = rustix::process::kill_process_group(pid, sig);
    }
}

/// CPU time and RSS of every process in a process group, from /proc.
pub fn group_usage(pgid: i32) -> Option<Usage> {
    const TICK_NANOS: u64 = 10_000_000; // USER_HZ is 100 on Linux
    const PAGE: u64 = 4096;
    let mut usage = Usage::default();
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesised command name.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // rest[0] = state (field 3); pgrp is field 5 → f[2]; utime 14 → f[11]; stime 15 → f[12]; rss 24 → f[21].
        if f.len() < 22 || f[2].parse::<i32>().ok() != Some(pgid) {
            continue;
        }
        found = true;
        let ticks = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
        usage.cpu_nanos += ticks * TICK_NANOS;
        usage.memory_bytes += f[21].parse::<u64>().unwrap_or(0) * PAGE;
    }
    found.then_some(usage)
}
