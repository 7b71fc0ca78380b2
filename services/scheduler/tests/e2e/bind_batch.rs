//! BindBatch: a batch with one conflicting binding binds the others; the bound pods'
//! `Scheduled` Events ride in the batch.
use coxswain_client::Client;
use coxswain_test_support::metrics::{scrape, sum};
use coxswain_test_support::{wait_for, Coxswain};

use crate::common::*;

/// Issue 17 §2: the scheduler sends its bindings to the store in batches (BindBatch). In a
/// batch where one binding conflicts (its pod was bound by someone else while the binding
/// waited), the others are bound, and the conflicting pod gets upstream's handling of a failed
/// binding: forgotten, a FailedScheduling event, and requeued only if the informer still shows
/// it unbound (upstream's handleSchedulingFailure) — here it is bound, so it is not scheduled
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_one_conflicting_binding_binds_the_others() {
    // A linger long enough for the test to bind one of the pods itself before the batch goes.
    let c = start_up(&["--bind-batch-linger", "5s", "--bind-batch-size", "10"]);
    let client = Client::connect(&c.url()).await.expect("client");
    seed_nodes(&client).await;
    let ns = "batch";
    let pods: String = ["a", "b", "c"]
        .iter()
        .map(|p| bare_pod(ns, p, "default-scheduler"))
        .collect::<Vec<_>>()
        .join("---\n");
    create(&c, ns, &pods);
    let attempts = |b: &str| {
        sum(
            b,
            "scheduler_schedule_attempts_total",
            &["result=\"scheduled\""],
        )
    };
    // All three are decided (assumed), and their bindings wait in one batch.
    wait_for("three pods decided", T, || async {
        (attempts(&scrape(&c.metrics).unwrap_or_default()) >= 3.0).then_some(())
    })
    .await
    .expect("decided");
    let b = pod(&client, ns, "b").await;
    assert!(
        node_of(&b).is_empty(),
        "b was bound before the linger passed"
    );
    let uid = b.metadata.as_ref().unwrap().uid.clone();
    client
        .bind(ns, "b", &uid, "node1")
        .await
        .expect("the test binds b first");
    let a = wait_bound(&client, ns, "a").await;
    let cn = wait_bound(&client, ns, "c").await;
    assert!(a != "control-plane" && cn != "control-plane", "{a} {cn}");
    assert_eq!(node_of(&pod(&client, ns, "b").await), "node1");
    let ev = wait_event(&client, ns, "b", "FailedScheduling").await;
    assert!(
        ev.message.starts_with("Binding rejected: ")
            && ev.message.contains("already assigned to node \"node1\""),
        "{}",
        ev.message
    );
    let body = wait_for("the batch's outcome in the metrics", T, || async {
        let b = scrape(&c.metrics).unwrap_or_default();
        (sum(&b, "coxswain_scheduler_binds_total", &["result=\"error\""]) >= 1.0).then_some(b)
    })
    .await
    .expect("metrics");
    assert_eq!(
        sum(&body, "coxswain_scheduler_binds_total", &["result=\"ok\""]),
        2.0,
        "{body}"
    );
    assert_eq!(
        sum(
            &body,
            "coxswain_scheduler_binds_total",
            &["result=\"error\""]
        ),
        1.0
    );
    // One batch of three.
    assert_eq!(
        sum(&body, "coxswain_scheduler_bind_batch_size_sum", &[]),
        3.0,
        "{body}"
    );
    assert_eq!(
        sum(&body, "coxswain_scheduler_bind_batch_size_count", &[]),
        1.0
    );
    // b is bound, so it was not requeued: a later pod is the only further attempt (with the
    // test's 100 ms back-off, a requeued b would have been tried again by then).
    create_pod(&c, ns, "d");
    let dn = wait_bound(&client, ns, "d").await;
    assert_eq!(attempts(&scrape(&c.metrics).expect("metrics")), 4.0);
    // Each bound pod has its Scheduled Event exactly once, as the recorder writes it; a and c's
    // rode in the batch, d's (a batch of one is a single Bind) was a Create of its own; b's
    // failed binding wrote none.
    for (name, node) in [("a", &a), ("c", &cn), ("d", &dn)] {
        let p = pod(&client, ns, name).await;
        wait_event(&client, ns, name, "Scheduled").await;
        let evs: Vec<_> = events(&client, ns, name)
            .await
            .into_iter()
            .filter(|e| e.reason == "Scheduled")
            .collect();
        assert_eq!(evs.len(), 1, "{name}: {evs:?}");
        let e = &evs[0];
        assert_eq!(
            e.message,
            format!("Successfully assigned {ns}/{name} to {node}")
        );
        assert_eq!((e.r#type.as_str(), e.count), ("Normal", 1), "{e:?}");
        assert_eq!(
            e.source.as_ref().map(|s| s.component.as_str()),
            Some("default-scheduler")
        );
        assert_eq!(e.reporting_component, "default-scheduler");
        let o = e.involved_object.clone().unwrap_or_default();
        let m = p.metadata.clone().unwrap_or_default();
        assert_eq!(
            (
                o.kind.as_str(),
                o.namespace.as_str(),
                o.name.as_str(),
                o.uid.as_str()
            ),
            ("Pod", ns, name, m.uid.as_str())
        );
        let em = e.metadata.clone().unwrap_or_default();
        assert!(em.name.starts_with(&format!("{name}.")), "{em:?}");
        assert_eq!(em.namespace, ns);
        assert!(!e.first_timestamp.is_empty() && e.first_timestamp == e.last_timestamp);
    }
    assert!(!events(&client, ns, "b")
        .await
        .iter()
        .any(|e| e.reason == "Scheduled"));
    // Events written by Create calls: b's FailedScheduling and d's Scheduled only.
    let body = scrape(&c.metrics).expect("metrics");
    assert_eq!(
        sum(
            &body,
            "apiserver_request_total",
            &["verb=\"CREATE\"", "resource=\"events\""]
        ),
        2.0,
        "{body}"
    );
}

fn create_pod(c: &Coxswain, ns: &str, name: &str) {
    c.coxctl_in(
        &["create", "-f", "-"],
        None,
        Some(&bare_pod(ns, name, "default-scheduler")),
    )
    .success();
}
