//! Leader election across real processes (issue 18 §3): two `coxswain scheduler --leader-elect`
//! replicas on one store. One holds the `kube-system/kube-scheduler` Lease and schedules; after a
//! kill -9 of it the standby takes the Lease within leaseDuration + retryPeriod (plus the
//! test's polling slack), counts a transition, and schedules.
use std::path::Path;
use std::time::{Duration, Instant};

use coxswain_api::v1::Pod;
use coxswain_test_support::{leader_candidate, lease_spec, wait_for, wait_lease_holder, Coxswain};

const LEASE: Duration = Duration::from_secs(3);
const RETRY: Duration = Duration::from_millis(500);
/// Polling, process start-up and a busy machine.
const SLACK: Duration = Duration::from_secs(4);

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn pod(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - name: c\n    image: busybox:1.30\n    command: [\"/bin/sh\", \"-c\", \"sleep 30\"]\n"
    )
}

async fn wait_scheduled(client: &coxswain_client::Client, name: &str) -> String {
    wait_for(
        &format!("pod {name} bound to a node"),
        Duration::from_secs(30),
        || async {
            let p: Pod = client.get("default", name).await.ok()??;
            let node = p.spec?.node_name;
            (!node.is_empty()).then_some(node)
        },
    )
    .await
    .expect("scheduled")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_scheduler_takes_over_after_the_leader_is_killed() {
    let up = Coxswain::start_fast_up(&["--no-scheduler"]).expect("up");
    let tmp = tempfile::tempdir().expect("tmp");
    let a = leader_candidate("scheduler", &up.url(), &tmp.path().join("a.log"));
    let b = leader_candidate("scheduler", &up.url(), &tmp.path().join("b.log"));
    let client = coxswain_client::Client::connect(&up.url())
        .await
        .expect("client");

    // One of the two holds the Lease, with upstream's fields.
    let first = wait_lease_holder(&client, "kube-scheduler", None, Duration::from_secs(30))
        .await
        .expect("a leader");
    let holder = first.holder_identity.clone().unwrap_or_default();
    assert!(
        holder == a.identity || holder == b.identity,
        "{holder} is neither {} nor {}",
        a.identity,
        b.identity
    );
    assert_eq!(first.lease_duration_seconds, Some(3));
    let (mut leader, mut standby) = if holder == a.identity { (a, b) } else { (b, a) };
    assert!(
        leader
            .proc
            .next_line("coxswain scheduler leading ", Duration::from_secs(10))
            .is_some(),
        "the holder says it leads"
    );

    // The leader schedules.
    up.apply(&pod("before")).success();
    wait_scheduled(&client, "before").await;
    // It renews: renewTime moves on while the holder stays.
    wait_for("a renewal", Duration::from_secs(10), || async {
        let s = lease_spec(&client, "kube-scheduler").await?;
        (s.holder_identity == first.holder_identity && s.renew_time != first.renew_time)
            .then_some(())
    })
    .await
    .expect("renewed");

    // kill -9 the leader: the standby takes the Lease within leaseDuration + retryPeriod.
    leader.proc.kill9();
    let killed = Instant::now();
    let standby_id = Some(standby.identity.as_str());
    let taken = wait_lease_holder(
        &client,
        "kube-scheduler",
        standby_id,
        LEASE + RETRY * 2 + SLACK * 2,
    )
    .await
    .expect("takeover");
    let took = killed.elapsed();
    assert!(
        took <= LEASE + RETRY.mul_f64(1.2) + SLACK,
        "took {took:?}; logs:\n{}",
        read(&tmp.path().join("a.log")) + &read(&tmp.path().join("b.log"))
    );
    assert_eq!(
        taken.lease_transitions,
        Some(first.lease_transitions.unwrap_or(0) + 1),
        "one transition, no flapping before the kill"
    );
    // The standby did not lead before the leader died.
    let (at, _) = standby
        .proc
        .next_line("coxswain scheduler leading ", Duration::from_secs(10))
        .expect("the standby says it leads");
    assert!(at > killed, "the standby led while the leader was alive");

    // And now it schedules.
    up.apply(&pod("after")).success();
    wait_scheduled(&client, "after").await;
}
