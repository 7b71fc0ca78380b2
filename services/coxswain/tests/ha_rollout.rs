//! Kill -9 the leading controller-manager during a rollout (issue 18 §4), on a real etcd with
//! real processes: a store on etcd, the scheduler, simulated nodes (`coxswain agent
//! --sim-nodes`), and two `coxswain controllers --leader-elect` replicas. A Deployment rolls
//! out a new template; once part of it is done the replica holding `kube-controller-manager`
//! is killed with SIGKILL. The standby takes the Lease within leaseDuration + retryPeriod (plus
//! the test's slack) and completes the rollout, and at every list the test took the pods stayed
//! within the Deployment's bounds: at most replicas + maxSurge pods not terminating, at least
//! replicas − maxUnavailable of them Ready.
//!
//! The test rolls `HA_ROLLOUT_REPLICAS` replicas (default 40, so the suite stays fast) with
//! maxSurge `HA_ROLLOUT_MAX_SURGE` (3) and maxUnavailable `HA_ROLLOUT_MAX_UNAVAILABLE` (2);
//! `bench/ha-rollout.sh` runs it with the 1,000 at upstream's default 25 % / 25 %.
use std::path::Path;
use std::time::{Duration, Instant};

use coxswain_api::v1::Pod;
use coxswain_client::{Client, ListParams};
use coxswain_test_support::component::Component;
use coxswain_test_support::etcd::Etcd;
use coxswain_test_support::{held_lease, lease_spec, wait_for, Coxswain};

/// leaseDuration, renewDeadline, retryPeriod: short for the suite's small rollout; upstream's
/// defaults for large ones, whose load on a small machine can hold a renewal past 2 s (the
/// leader then stops leading and exits, as upstream's does).
fn lease_timing(n: usize) -> (Duration, Duration, Duration) {
    if n <= 100 {
        (
            Duration::from_secs(3),
            Duration::from_secs(2),
            Duration::from_millis(500),
        )
    } else {
        (
            Duration::from_secs(15),
            Duration::from_secs(10),
            Duration::from_secs(2),
        )
    }
}

fn secs(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}
/// Polling, process start-up and a busy machine.
const SLACK: Duration = Duration::from_secs(5);

/// A count from the environment (the bench script's), else `default`.
fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A controller-manager replica and the identity it campaigns with.
fn controllers(server: &str, log: &Path, n: usize) -> (Component, String) {
    let (lease, renew, retry) = lease_timing(n);
    let mut p = Component::start(
        &[
            "controllers",
            "--server",
            server,
            "--leader-elect",
            "--leader-elect-lease-duration",
            &secs(lease),
            "--leader-elect-renew-deadline",
            &secs(renew),
            "--leader-elect-retry-period",
            &secs(retry),
        ],
        log,
    );
    let (_, line) = p
        .next_line("coxswain controllers candidate ", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no candidate line: {}", p.log()));
    let identity = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("identity="))
        .expect("identity=")
        .to_string();
    (p, identity)
}

fn deployment(replicas: usize, image: &str, surge: usize, unavailable: usize) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: roll\n  namespace: default\nspec:\n  replicas: {replicas}\n  strategy:\n    type: RollingUpdate\n    rollingUpdate: {{maxSurge: {surge}, maxUnavailable: {unavailable}}}\n  selector:\n    matchLabels: {{app: roll}}\n  template:\n    metadata:\n      labels: {{app: roll}}\n      annotations: {{sim.coxswain.io/ready-after: 200ms}}\n    spec:\n      containers:\n      - name: c\n        image: {image}\n        resources: {{requests: {{cpu: 1m, memory: 1Mi}}}}\n"
    )
}

/// What one list of the Deployment's pods shows.
#[derive(Debug, Clone, Copy, Default)]
struct Count {
    /// Not terminating.
    live: usize,
    /// Not terminating and Ready.
    ready: usize,
    /// Not terminating, Ready, of the new template.
    new_ready: usize,
    /// Not terminating, of the old template.
    old: usize,
}

fn count(pods: &[Pod], new_image: &str) -> Count {
    let mut c = Count::default();
    for p in pods {
        let meta = p.metadata.as_ref();
        if meta.is_some_and(|m| !m.deletion_timestamp.is_empty()) {
            continue;
        }
        c.live += 1;
        let new = p
            .spec
            .as_ref()
            .is_some_and(|s| s.containers.iter().any(|k| k.image == new_image));
        if !new {
            c.old += 1;
        }
        let ready = p.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|k| k.r#type == "Ready" && k.status == "True")
        });
        if ready {
            c.ready += 1;
            if new {
                c.new_ready += 1;
            }
        }
    }
    c
}

async fn pods(client: &Client) -> Option<Vec<Pod>> {
    let params = ListParams {
        label_selector: "app=roll".into(),
        ..Default::default()
    };
    client
        .list::<Pod>("default", &params)
        .await
        .ok()
        .map(|l| l.0)
}

async fn holder(client: &Client) -> Option<String> {
    held_lease(client, "kube-controller-manager")
        .await?
        .holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_controller_manager_completes_a_rollout_after_the_leader_is_killed() {
    let n = env_count("HA_ROLLOUT_REPLICAS", 40);
    let max_surge = env_count("HA_ROLLOUT_MAX_SURGE", 3);
    let max_unavailable = env_count("HA_ROLLOUT_MAX_UNAVAILABLE", 2);
    // Generous for the 1,000-replica run; the default count takes seconds.
    let t = Duration::from_secs(60 + n as u64 / 4);
    let etcd = Etcd::start().expect("start etcd");
    let store = Coxswain::start_with(&["store"], &["--etcd-servers", &etcd.url]).expect("store");
    let server = store.url();
    let tmp = tempfile::tempdir().expect("tmp");
    let sim_nodes = (n / 50 + 2).to_string();
    let _agent = Component::start(
        &[
            "agent",
            "--server",
            &server,
            "--sim-nodes",
            &sim_nodes,
            "--listen",
            "127.0.0.1:0",
        ],
        &tmp.path().join("agent.log"),
    );
    let _scheduler = Component::start(
        &["scheduler", "--server", &server],
        &tmp.path().join("scheduler.log"),
    );
    let (a, a_id) = controllers(&server, &tmp.path().join("a.log"), n);
    let (b, b_id) = controllers(&server, &tmp.path().join("b.log"), n);
    let client = Client::connect(&server).await.expect("client");

    let first = wait_for("a holder of kube-controller-manager", t, || holder(&client))
        .await
        .expect("a leader");
    assert!(first == a_id || first == b_id, "{first}");
    let standby_id = if first == a_id { b_id } else { a_id.clone() };
    let (mut leader, _standby) = if first == a_id { (a, b) } else { (b, a) };

    // The first template, all Ready.
    store
        .apply(&deployment(n, "nginx:1.17.9", max_surge, max_unavailable))
        .success();
    wait_for("every pod of the first template Ready", t, || async {
        let c = count(&pods(&client).await?, "none");
        (c.ready == n && c.live == n).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\nstore log:\n{}", store.log()));

    // Roll out a new image; watch every list against the bounds.
    let new_image = "nginx:1.19.0";
    store
        .apply(&deployment(n, new_image, max_surge, max_unavailable))
        .success();
    let mut worst = (0usize, usize::MAX);
    let mut check = |c: Count| {
        worst = (worst.0.max(c.live), worst.1.min(c.ready));
        assert!(
            c.live <= n + max_surge,
            "{} pods not terminating, over replicas {n} + maxSurge {max_surge}: {c:?}",
            c.live
        );
        assert!(
            c.ready + max_unavailable >= n,
            "{} pods Ready, under replicas {n} - maxUnavailable {max_unavailable}: {c:?}",
            c.ready
        );
    };
    // Kill the leader once a fifth of the new template is Ready (well before the end).
    let fifth = (n / 5).max(1);
    let deadline = Instant::now() + t;
    let mut last = None;
    loop {
        if let Some(p) = pods(&client).await {
            let c = count(&p, new_image);
            check(c);
            if c.new_ready >= fifth {
                assert!(c.old > 0, "the rollout ended before the kill: {c:?}");
                break;
            }
            last = Some(c);
        }
        assert!(
            Instant::now() < deadline,
            "the rollout did not progress: {last:?}\nstore log:\n{}",
            store.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    leader.kill9();
    let killed = Instant::now();

    // The standby takes over within leaseDuration + retryPeriod.
    let mut taken = None;
    let deadline = Instant::now() + t;
    let mut done = false;
    while !done {
        if let Some(p) = pods(&client).await {
            let c = count(&p, new_image);
            check(c);
            done = c.old == 0 && c.live == n && c.new_ready == n;
        }
        if taken.is_none() && holder(&client).await.as_deref() == Some(standby_id.as_str()) {
            taken = Some(killed.elapsed());
        }
        assert!(
            Instant::now() < deadline,
            "the rollout did not complete after the kill\nstore log:\n{}",
            store.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let taken = match taken {
        Some(t) => t,
        None => {
            assert_eq!(holder(&client).await.as_deref(), Some(standby_id.as_str()));
            killed.elapsed()
        }
    };
    let (lease, _, retry) = lease_timing(n);
    assert!(
        taken <= lease + retry + SLACK,
        "the standby took the Lease {taken:?} after the kill"
    );
    let l = lease_spec(&client, "kube-controller-manager")
        .await
        .expect("lease");
    assert_eq!(l.lease_transitions, Some(1));
    eprintln!(
        "rollout of {n}: standby leading {taken:?} after the kill; at most {} pods, at least {} Ready",
        worst.0, worst.1
    );
}
