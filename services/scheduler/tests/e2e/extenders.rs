//! Extenders: the example extender steering placement, and failing extenders ignorable or not.
use std::time::Duration;

use coxswain_client::Client;
use coxswain_test_support::wait_for;

use crate::common::*;

async fn start_extender(policy: coxswain_example_extender::Policy) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(coxswain_example_extender::serve(
        l,
        policy,
        std::future::pending(),
    ));
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extenders_steer_placement_and_fail_per_ignorable() {
    // "steer" filters out nodes without disk=ssd and prefers zone=b.
    let steer = start_extender(coxswain_example_extender::Policy {
        require: Some(("disk".into(), "ssd".into())),
        prefer: Some(("zone".into(), "b".into())),
        ..Default::default()
    })
    .await;
    let failing = start_extender(coxswain_example_extender::Policy {
        fail: true,
        ..Default::default()
    })
    .await;
    let slow = start_extender(coxswain_example_extender::Policy {
        delay: Duration::from_secs(5),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sched.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: steered
  extenders:
  - urlPrefix: {steer}
    filterVerb: filter
    prioritizeVerb: prioritize
    weight: 10
- schedulerName: strict
  extenders:
  - urlPrefix: {failing}
    filterVerb: filter
    httpTimeout: 1s
- schedulerName: lenient
  extenders:
  - urlPrefix: {failing}
    filterVerb: filter
    ignorable: true
  - urlPrefix: {slow}
    filterVerb: filter
    httpTimeout: 200ms
    ignorable: true
- schedulerName: too-slow
  extenders:
  - urlPrefix: {slow}
    filterVerb: filter
    httpTimeout: 200ms
"#
        ),
    )
    .unwrap();
    let c = start_up(&["--scheduler-config", cfg.to_str().unwrap()]);
    let client = Client::connect(&c.url()).await.expect("client");
    for n in [
        node("a", &[("disk", "ssd"), ("zone", "a")], vec![]),
        node("b", &[("disk", "ssd"), ("zone", "b")], vec![]),
        node("c", &[("disk", "hdd"), ("zone", "b")], vec![]),
    ] {
        client.create(&n).await.unwrap();
    }
    c.coxctl(&["create", "namespace", "ext"]).success();
    for i in 0..3 {
        c.coxctl_in(
            &["create", "-f", "-"],
            None,
            Some(&bare_pod("ext", &format!("steered-{i}"), "steered")),
        )
        .success();
    }
    for i in 0..3 {
        // Filter drops c (hdd); Prioritize (weight 10 × 100) outweighs the spreading
        // scores, so every pod goes to b.
        assert_eq!(
            wait_bound(&client, "ext", &format!("steered-{i}")).await,
            "b"
        );
    }
    let out = c
        .coxctl(&["schedule", "explain", "steered-0", "-n", "ext"])
        .success()
        .stdout;
    assert!(
        out.contains("node(s) didn't have label disk=ssd (example extender)"),
        "{out}"
    );
    assert!(out.contains(&format!("extender {steer}")), "{out}");
    let out = c.coxctl(&["schedule", "profiles"]).success().stdout;
    assert!(
        out.contains(&format!(
            "extender: {steer} verbs=filter,prioritize weight=10"
        )),
        "{out}"
    );

    // A failing, non-ignorable extender: FailedScheduling naming it; the pod stays Pending.
    c.coxctl_in(
        &["create", "-f", "-"],
        None,
        Some(&bare_pod("ext", "strict", "strict")),
    )
    .success();
    let ev = wait_event(&client, "ext", "strict", "FailedScheduling").await;
    assert!(
        ev.message.contains(&format!("extender {failing} Filter"))
            && ev.message.contains("failing on purpose"),
        "{}",
        ev.message
    );
    let cond = wait_for("SchedulerError condition", T, || async {
        scheduled_condition(&pod(&client, "ext", "strict").await).filter(|c| c.status == "False")
    })
    .await
    .unwrap();
    assert_eq!(cond.reason, "SchedulerError");
    // A slow, non-ignorable one: the timeout is the reason.
    c.coxctl_in(
        &["create", "-f", "-"],
        None,
        Some(&bare_pod("ext", "slow", "too-slow")),
    )
    .success();
    let ev = wait_event(&client, "ext", "slow", "FailedScheduling").await;
    assert!(
        ev.message.contains("no answer within 200ms"),
        "{}",
        ev.message
    );
    // Ignorable failing and slow extenders are skipped.
    c.coxctl_in(
        &["create", "-f", "-"],
        None,
        Some(&bare_pod("ext", "lenient", "lenient")),
    )
    .success();
    wait_bound(&client, "ext", "lenient").await;
    // ... and the pod carries a Warning event naming each skipped extender and why.
    let ev = wait_event(&client, "ext", "lenient", "SchedulerExtenderIgnored").await;
    assert_eq!(ev.r#type, "Warning");
    assert!(
        ev.message.contains(&format!("extender {failing} Filter"))
            && ev.message.contains("failing on purpose")
            && ev.message.contains(&format!("extender {slow} Filter"))
            && ev.message.contains("no answer within 200ms"),
        "{}",
        ev.message
    );
    // The pod was scheduled despite them: no FailedScheduling for it.
    assert!(
        !events(&client, "ext", "lenient")
            .await
            .iter()
            .any(|e| e.reason == "FailedScheduling"),
        "lenient got FailedScheduling"
    );
    assert!(node_of(&pod(&client, "ext", "strict").await).is_empty());
}
