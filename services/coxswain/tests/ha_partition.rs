//! A leader cut off from the store, simulated by SIGSTOP (issue 18 §4): two `coxswain
//! controllers --leader-elect` replicas on one store, with short, flag-set lease timings. The
//! leader is frozen; the standby takes `kube-controller-manager` within leaseDuration +
//! retryPeriod (plus the test's slack) and acts on Deployments made while the old leader is
//! still frozen. Then the old leader resumes, with those Deployments' events waiting in its
//! watches. Its writes are gated on its lease (refused once the renew deadline of its last
//! renewal passed), so it sends nothing, stops leading and exits (upstream's
//! OnStoppedLeading).
//!
//! The record checked is the old leader's own write log: with `coxswain_client::writes=debug`
//! every write the client sends is logged ("write sent") and every write the fence stops too
//! ("write refused"). Everything the process logged after SIGCONT is after its lease expired: no
//! "write sent" may be in it. Each Deployment has exactly one ReplicaSet and one pod (nothing
//! made twice), and the new leader keeps acting.
use std::time::{Duration, Instant};

use coxswain_api::v1::{Pod, ReplicaSet};
use coxswain_client::{Client, ListParams};
use coxswain_test_support::{leader_candidate, wait_for, wait_lease_holder, wait_until, Coxswain};

const LEASE: Duration = Duration::from_secs(3);
const RETRY: Duration = Duration::from_millis(500);
/// Polling, process start-up and a busy machine.
const SLACK: Duration = Duration::from_secs(5);
/// Deployments made while the old leader is frozen.
const AFTER: usize = 8;

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: c\n        image: busybox:1.30\n        resources: {{requests: {{cpu: 1m, memory: 1Mi}}}}\n"
    )
}

/// The pods and ReplicaSets labelled app=`name` (not terminating pods only).
async fn owned(client: &Client, name: &str) -> Option<(usize, usize)> {
    let lp = ListParams::labels(format!("app={name}"));
    let (pods, _) = client.list::<Pod>("default", &lp).await.ok()?;
    let (rss, _) = client.list::<ReplicaSet>("default", &lp).await.ok()?;
    let live = pods
        .iter()
        .filter(|p| {
            p.metadata
                .as_ref()
                .is_none_or(|m| m.deletion_timestamp.is_empty())
        })
        .count();
    Some((rss.len(), live))
}

/// SIGSTOP or SIGCONT.
fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

/// Has every thread of `pid` stopped (state T)?
fn all_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut any = false;
    for t in tasks.flatten() {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // "tid (comm) S ...": the state follows the last ')'.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        if state != Some("T") {
            return false;
        }
        any = true;
    }
    any
}

#[test]
fn a_frozen_leader_writes_nothing_after_its_lease_expired() {
    // Every candidate logs each write its client sends or refuses (set before any is started).
    std::env::set_var("RUST_LOG", "info,coxswain_client::writes=debug");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(frozen_leader());
}

async fn frozen_leader() {
    let up = Coxswain::start_fast_up(&["--no-controllers", "--runtime", "sim"]).expect("up");
    let tmp = tempfile::tempdir().expect("tmp");
    let a = leader_candidate("controllers", &up.url(), &tmp.path().join("a.log"));
    let b = leader_candidate("controllers", &up.url(), &tmp.path().join("b.log"));
    let client = Client::connect(&up.url()).await.expect("client");

    let first = wait_lease_holder(
        &client,
        "kube-controller-manager",
        None,
        Duration::from_secs(30),
    )
    .await
    .expect("a leader");
    let holder = first.holder_identity.clone().unwrap_or_default();
    let (mut leader, mut standby) = if holder == a.identity {
        (a, b)
    } else {
        assert_eq!(holder, b.identity, "the holder is one of the candidates");
        (b, a)
    };
    assert!(
        leader
            .proc
            .next_line("coxswain controllers leading ", Duration::from_secs(10))
            .is_some(),
        "the holder says it leads: {}",
        leader.proc.log()
    );

    // The leader acts, and its writes are in its log: the record read below.
    up.apply(&deployment("before"));
    wait_for(
        "before: one ReplicaSet, one pod",
        Duration::from_secs(30),
        || async { (owned(&client, "before").await? == (1, 1)).then_some(()) },
    )
    .await
    .expect("the leader acts");
    assert!(
        leader.proc.log().contains("write sent"),
        "the leader's writes are logged: {}",
        leader.proc.log()
    );

    // Freeze the leader.
    let pid = leader.proc.pid();
    signal(pid, "-STOP");
    wait_until("every thread stopped", Duration::from_secs(10), || {
        all_stopped(pid).then_some(())
    })
    .expect("SIGSTOP took effect");
    let stopped = Instant::now();

    // The standby takes the Lease within leaseDuration + retryPeriod.
    let standby_id = Some(standby.identity.as_str());
    let taken = wait_lease_holder(
        &client,
        "kube-controller-manager",
        standby_id,
        LEASE + RETRY * 2 + SLACK * 2,
    )
    .await
    .expect("takeover");
    let took = stopped.elapsed();
    assert!(
        took <= LEASE + RETRY.mul_f64(1.2) + SLACK,
        "took {took:?}; standby log:\n{}",
        standby.proc.log()
    );
    assert_eq!(
        taken.lease_transitions,
        Some(first.lease_transitions.unwrap_or(0) + 1)
    );
    assert!(standby
        .proc
        .next_line("coxswain controllers leading ", Duration::from_secs(10))
        .is_some());

    // Work the frozen leader will find waiting in its watches when it resumes, done meanwhile
    // by the new leader.
    for i in 0..AFTER {
        up.apply(&deployment(&format!("after-{i}")));
    }
    for i in 0..AFTER {
        let name = format!("after-{i}");
        wait_for(
            &format!("{name}: one ReplicaSet, one pod"),
            Duration::from_secs(30),
            || async { (owned(&client, &name).await? == (1, 1)).then_some(()) },
        )
        .await
        .expect("the new leader acts");
    }

    // Resume the old leader: all it logs from here on is after its lease expired.
    let before = leader.proc.log().len();
    signal(pid, "-CONT");
    // It stops leading and exits, as upstream's OnStoppedLeading.
    let status = wait_until("the old leader exits", Duration::from_secs(20), || {
        leader.proc.try_wait()
    })
    .unwrap_or_else(|e| panic!("{e}: {}", leader.proc.log()));
    let log = leader.proc.log();
    let after = &log[before..];
    assert_eq!(
        status.code(),
        Some(1),
        "exit status; log after SIGCONT:\n{after}"
    );
    assert!(
        after.contains("leaderelection lost"),
        "it saw the loss:\n{after}"
    );
    let sent: Vec<&str> = after.lines().filter(|l| l.contains("write sent")).collect();
    assert!(
        sent.is_empty(),
        "writes sent after the lease expired:\n{}",
        sent.join("\n")
    );
    let refused = after
        .lines()
        .filter(|l| l.contains("write refused"))
        .count();
    eprintln!("old leader: {refused} write(s) refused after SIGCONT");

    // Nothing was made twice, and the new leader keeps acting.
    for i in 0..AFTER {
        let name = format!("after-{i}");
        assert_eq!(owned(&client, &name).await, Some((1, 1)), "{name}");
    }
    up.coxctl(&["scale", "deployment", "after-0", "--replicas", "2"])
        .success();
    wait_for(
        "after-0 scaled to 2 by the new leader",
        Duration::from_secs(30),
        || async { (owned(&client, "after-0").await? == (1, 2)).then_some(()) },
    )
    .await
    .expect("the new leader acts on");
}
