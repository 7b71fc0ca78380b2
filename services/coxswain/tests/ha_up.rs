//! `coxswain up --etcd-servers URL --replicas 2` (issue 18 §3): one command runs two store
//! replicas on one etcd and two `--leader-elect` replicas each of the scheduler, the controllers
//! and the node lifecycle controller. Checked end to end:
//! - each of the three Leases has a holder, one of that component's two candidates;
//! - a Deployment made through the second store replica is scheduled onto `up`'s nodes and runs;
//! - after kill -9 of the leading controller-manager the standby takes the Lease within
//!   leaseDuration + retryPeriod (plus the test's slack) and scales the Deployment;
//! - kill -9 of `up` itself ends every replica it started (nothing is left running);
//! - a store replica killed with -9 is restarted by `up` after its restart backoff, on the same
//!   address, and serves again (reads what was written through the other replica, takes writes).
use std::time::{Duration, Instant};

use coxswain_api::v1::{ConfigMap, Deployment, Pod, ReplicaSet};
use coxswain_client::{Client, ListParams};
use coxswain_test_support::etcd::Etcd;
use coxswain_test_support::{configmap, held_lease, wait_for, wait_until, Coxswain};

const LEASE: Duration = Duration::from_secs(3);
const RETRY: Duration = Duration::from_millis(500);
/// Polling, process start-up and a busy machine.
const SLACK: Duration = Duration::from_secs(5);

/// One replicated cluster (etcd and eight processes) at a time: the two tests of this file
/// do not load the machine for each other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The log without its colours (ANSI escape sequences).
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // ESC [ ... final byte in @..~
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) && d != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The value of `key=` in a log line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// The pids of the replicas `up` started, from its log (each child's lines carry `pid=`).
fn replica_pids(log: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = log
        .lines()
        .filter(|l| l.contains("replica="))
        .filter_map(|l| field(l, "pid")?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The pid of the replica that printed `candidate identity=<identity>`.
fn pid_of(log: &str, identity: &str) -> Option<u32> {
    log.lines()
        .find(|l| l.contains(" candidate ") && field(l, "identity") == Some(identity))
        .and_then(|l| field(l, "pid")?.parse().ok())
}

/// Gone: no /proc entry, or a zombie nobody reaped yet.
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|s| s == "Z" || s == "X"),
    }
}

/// Running pods labelled app=web, listed through `client`.
async fn running(client: &Client) -> Option<usize> {
    let (pods, _) = client
        .list::<Pod>("default", &ListParams::labels("app=web"))
        .await
        .ok()?;
    Some(
        pods.iter()
            .filter(|p| p.status.as_ref().is_some_and(|s| s.phase == "Running"))
            .filter(|p| {
                p.metadata
                    .as_ref()
                    .is_none_or(|m| m.deletion_timestamp.is_empty())
            })
            .count(),
    )
}

/// What each store replica holds of the web Deployment, its ReplicaSets and pods (for a
/// failure's message: which step stopped, and whether the replicas agree).
async fn state(servers: &[String]) -> String {
    let mut out = String::new();
    for s in servers {
        let Ok(c) = Client::connect(s).await else {
            out.push_str(&format!("\n{s}: cannot connect"));
            continue;
        };
        let lp = ListParams::default();
        let d = c.list::<Deployment>("default", &lp).await;
        let r = c.list::<ReplicaSet>("default", &lp).await;
        let p = c
            .list::<Pod>("default", &ListParams::labels("app=web"))
            .await;
        out.push_str(&format!("\n{s}:"));
        if let Ok((d, rv)) = d {
            out.push_str(&format!("\n  deployments at {rv}:"));
            for d in d {
                let m = d.metadata.unwrap_or_default();
                let st = d.status.unwrap_or_default();
                out.push_str(&format!(
                    " {} rv={} gen={} observed={} replicas={};",
                    m.name, m.resource_version, m.generation, st.observed_generation, st.replicas
                ));
            }
        }
        if let Ok((r, rv)) = r {
            out.push_str(&format!("\n  replicasets at {rv}:"));
            for r in r {
                let m = r.metadata.unwrap_or_default();
                let want = r.spec.and_then(|s| s.replicas).unwrap_or_default();
                let st = r.status.unwrap_or_default();
                out.push_str(&format!(
                    " {} rv={} want={want} have={} ready={};",
                    m.name, m.resource_version, st.replicas, st.ready_replicas
                ));
            }
        }
        if let Ok((p, rv)) = p {
            out.push_str(&format!("\n  pods at {rv}:"));
            for p in p {
                let m = p.metadata.unwrap_or_default();
                let node = p.spec.map(|s| s.node_name).unwrap_or_default();
                let phase = p.status.map(|s| s.phase).unwrap_or_default();
                out.push_str(&format!(
                    " {} rv={} node={node:?} phase={phase:?};",
                    m.name, m.resource_version
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_replicas_runs_two_stores_and_two_of_each_leader() {
    let _serial = SERIAL.lock().await;
    let etcd = Etcd::start().expect("etcd");
    let mut up = Coxswain::start_fast_up(&[
        "--etcd-servers",
        &etcd.url,
        "--replicas",
        "2",
        "--runtime",
        "sim",
        "--leader-elect-lease-duration",
        "3s",
        "--leader-elect-renew-deadline",
        "2s",
        "--leader-elect-retry-period",
        "500ms",
    ])
    .expect("up --replicas 2");

    // Two store replicas: up's own and one more, on the same etcd.
    let servers = replica_servers(&up);
    assert_eq!(servers.len(), 2, "{servers:?}");
    assert_eq!(servers[0], up.url());
    let second = servers[1].clone();
    let b = Client::connect(&second).await.expect("client of replica 2");

    // Each component's Lease is held by one of its two candidates.
    for (lease_name, component) in [
        ("kube-scheduler", "scheduler"),
        ("kube-controller-manager", "controllers"),
        ("coxswain-node-lifecycle", "node-lifecycle"),
    ] {
        let s = wait_for(
            &format!("a holder of {lease_name}"),
            Duration::from_secs(60),
            || held_lease(&b, lease_name),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", plain(&up.log())));
        let holder = s.holder_identity.unwrap_or_default();
        // Both candidates have said so (the second may start after the first took the Lease).
        let candidates: Vec<String> = wait_until(
            &format!("two {component} candidates"),
            Duration::from_secs(30),
            || {
                let c: Vec<String> = plain(&up.log())
                    .lines()
                    .filter(|l| l.contains(&format!("coxswain {component} candidate ")))
                    .filter_map(|l| field(l, "identity").map(str::to_string))
                    .collect();
                (c.len() >= 2).then_some(c)
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {}", plain(&up.log())));
        assert_eq!(candidates.len(), 2, "{candidates:?}");
        assert!(
            candidates.contains(&holder),
            "{holder} not in {candidates:?}"
        );
    }
    let children = replica_pids(&plain(&up.log()));
    // One more store and two each of three components.
    assert_eq!(children.len(), 7, "{children:?}\n{}", plain(&up.log()));

    // Made through replica 2, scheduled and run on up's nodes.
    up.coxctl(&[
        "--server",
        &second,
        "create",
        "deployment",
        "web",
        "--image",
        "busybox:1.30",
        "--replicas",
        "2",
    ])
    .success();
    if let Err(e) = wait_for("2 web pods running", Duration::from_secs(60), || async {
        (running(&b).await? == 2).then_some(())
    })
    .await
    {
        panic!("{e}: {}\n{}", state(&servers).await, plain(&up.log()));
    }

    // kill -9 the leading controller-manager: the standby takes over and acts.
    let first = held_lease(&b, "kube-controller-manager")
        .await
        .expect("lease");
    let holder = first.holder_identity.clone().unwrap_or_default();
    let pid = pid_of(&plain(&up.log()), &holder).expect("the leader's pid");
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(killed, "kill -9 {pid}");
    let at = Instant::now();
    let taken = wait_for(
        "the standby holds kube-controller-manager",
        LEASE + RETRY * 2 + SLACK * 2,
        || async {
            let s = held_lease(&b, "kube-controller-manager").await?;
            (s.holder_identity.as_deref() != Some(holder.as_str())).then_some(s)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {}", plain(&up.log())));
    let took = at.elapsed();
    assert!(took <= LEASE + RETRY.mul_f64(1.2) + SLACK, "took {took:?}");
    assert_eq!(
        taken.lease_transitions,
        Some(first.lease_transitions.unwrap_or(0) + 1)
    );
    up.coxctl(&[
        "--server",
        &second,
        "scale",
        "deployment",
        "web",
        "--replicas",
        "3",
    ])
    .success();
    if let Err(e) = wait_for("3 web pods running", Duration::from_secs(60), || async {
        (running(&b).await? == 3).then_some(())
    })
    .await
    {
        panic!("{e}: {}\n{}", state(&servers).await, plain(&up.log()));
    }

    // kill -9 of up ends every replica it started.
    up.kill9();
    wait_until("every replica gone", Duration::from_secs(20), || {
        children.iter().all(|p| gone(*p)).then_some(())
    })
    .unwrap_or_else(|e| {
        let left: Vec<&u32> = children.iter().filter(|p| !gone(**p)).collect();
        panic!("{e}: still running {left:?}")
    });
}

/// The `--server` list `up --replicas` logs once its store replicas are ready.
fn replica_servers(up: &Coxswain) -> Vec<String> {
    wait_until("the replicas' server list", Duration::from_secs(30), || {
        plain(&up.log())
            .lines()
            .find_map(|l| field(l, "servers"))
            .map(|s| s.split(',').map(str::to_string).collect())
    })
    .expect("servers")
}

/// The `pid=` of the log lines of `replica` that contain `what`.
fn pids_saying(log: &str, replica: &str, what: &str) -> Vec<u32> {
    log.lines()
        .filter(|l| field(l, "replica") == Some(replica) && l.contains(what))
        .filter_map(|l| field(l, "pid")?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_restarts_a_store_replica_killed_with_sigkill() {
    let _serial = SERIAL.lock().await;
    let etcd = Etcd::start().expect("etcd");
    let mut up = Coxswain::start_fast_up(&[
        "--etcd-servers",
        &etcd.url,
        "--replicas",
        "2",
        "--runtime",
        "sim",
        "--replica-restart-backoff",
        "300ms",
    ])
    .expect("up --replicas 2");
    let servers = replica_servers(&up);
    assert_eq!(servers.len(), 2, "{servers:?}");
    let second = servers[1].clone();
    let a = Client::connect(&up.url())
        .await
        .expect("client of replica 1");

    // store-2's pid: the one on its ready line.
    let old = wait_until("store-2's ready line", Duration::from_secs(30), || {
        pids_saying(&plain(&up.log()), "store-2", "coxswain ready ")
            .first()
            .copied()
    })
    .expect("store-2 pid");
    let killed = std::process::Command::new("kill")
        .args(["-9", &old.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(killed, "kill -9 {old}: {}", plain(&up.log()));

    // up saw it exit (with the backoff it waits) and started it again under a new pid.
    let exited = wait_until("store-2's exit logged", Duration::from_secs(30), || {
        plain(&up.log())
            .lines()
            .find(|l| {
                field(l, "replica") == Some("store-2")
                    && l.contains("replica exited")
                    && field(l, "pid") == Some(old.to_string().as_str())
            })
            .map(str::to_string)
    })
    .unwrap_or_else(|e| panic!("{e}: {}", plain(&up.log())));
    assert_eq!(field(&exited, "restart_in"), Some("300ms"), "{exited}");
    let new = wait_until("store-2 restarted", Duration::from_secs(60), || {
        pids_saying(&plain(&up.log()), "store-2", "replica restarted")
            .first()
            .copied()
    })
    .unwrap_or_else(|e| panic!("{e}: {}", plain(&up.log())));
    assert_ne!(new, old);
    assert!(!gone(new), "the restarted store-2 ({new}) is not running");
    // The new process printed its ready line (it serves; "replica restarted" follows it).
    assert!(
        pids_saying(&plain(&up.log()), "store-2", "coxswain ready ").contains(&new),
        "{}",
        plain(&up.log())
    );

    // On the same address: a write through replica 1 is read through replica 2, and replica 2
    // takes writes that replica 1 reads.
    a.create(&configmap("from-one"))
        .await
        .expect("create via 1");
    let b = Client::connect(&second).await.expect("client of replica 2");
    wait_for(
        "from-one through the restarted store-2",
        Duration::from_secs(30),
        || async { b.get::<ConfigMap>("default", "from-one").await.ok()? },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {}", plain(&up.log())));
    b.create(&configmap("from-two"))
        .await
        .expect("create via 2");
    wait_for(
        "from-two through store 1",
        Duration::from_secs(30),
        || async { a.get::<ConfigMap>("default", "from-two").await.ok()? },
    )
    .await
    .expect("from-two");

    // Stopping up stops store-2 for good: it is not restarted.
    up.kill9();
    wait_until("store-2 gone", Duration::from_secs(20), || {
        gone(new).then_some(())
    })
    .expect("store-2 ends with up");
}
