//! The client against a real `coxswain store` on loopback: informers, bind, graceful pod
//! deletion, default tolerations, events.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::v1::{Container, Event as KEvent, Node, ObjectMeta, Pod, PodSpec};
use coxswain_client::{Client, DeleteParams, Event, Informer, ObjectRef, Recorder, Resource};
use coxswain_test_support::objects::node_index;
use coxswain_test_support::{wait_for, Coxswain};

const T: Duration = Duration::from_secs(10);

fn pod(name: &str, node: &str) -> Pod {
    Pod {
        metadata: Some(ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            labels: [("app".to_string(), "web".to_string())].into(),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            node_name: node.into(),
            containers: vec![Container {
                name: "c".into(),
                image: "nginx".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(name: &str) -> Node {
    Node {
        metadata: Some(ObjectMeta {
            name: name.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn informer_follows_the_store_and_indexes_by_node() -> anyhow::Result<()> {
    let cx = Coxswain::start()?;
    let client = Client::connect(&cx.url()).await?;
    client.create(&pod("before", "")).await?;
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let l = log.clone();
    let pods = Informer::<Pod>::new(client.clone())
        .index("node", node_index)
        .on_event(move |e: &Event<Pod>| {
            let s = match e {
                Event::Added(p) => format!("+{}", p.metadata().name),
                Event::Modified { new, .. } => format!("~{}", new.metadata().name),
                Event::Deleted(p) => format!("-{}", p.metadata().name),
                Event::Synced => "synced".into(),
            };
            l.lock().unwrap().push(s);
        })
        .start();
    pods.wait_synced().await;
    assert_eq!(pods.len(), 1);
    client.create(&node("n1")).await?;
    client.create(&pod("a", "n1")).await?;
    client.create(&pod("b", "")).await?;
    client.bind("default", "b", "", "n1").await?;
    wait_for("both pods on n1", T, || async {
        (pods.count_index("node", "n1") == 2).then_some(())
    })
    .await?;
    client
        .delete::<Pod>("default", "before", &DeleteParams::default())
        .await?;
    wait_for("the delete", T, || async {
        (pods.len() == 2).then_some(())
    })
    .await?;
    let got = log.lock().unwrap().clone();
    assert_eq!(got, ["+before", "synced", "+a", "+b", "~b", "-before"]);

    // A field-selected informer sees only its node's pods.
    let mine = Informer::<Pod>::new(client.clone())
        .field_selector("spec.nodeName=n1")
        .start();
    mine.wait_synced().await;
    assert_eq!(mine.len(), 2);
    Ok(())
}

#[tokio::test]
async fn bind_assigns_once_and_graceful_deletion_waits_for_the_node() -> anyhow::Result<()> {
    let cx = Coxswain::start()?;
    let client = Client::connect(&cx.url()).await?;
    client.create(&node("n1")).await?;
    let created = client.create(&pod("p", "")).await?;
    // Admission added the default NoExecute tolerations.
    let tol = &created.spec.as_ref().unwrap().tolerations;
    assert!(tol.iter().any(|t| t.key == "node.kubernetes.io/not-ready"
        && t.effect == "NoExecute"
        && t.toleration_seconds == Some(300)));
    assert!(tol
        .iter()
        .any(|t| t.key == "node.kubernetes.io/unreachable"));

    let err = client
        .bind("default", "p", "not-the-uid", "n1")
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    client
        .bind("default", "p", &created.metadata().uid, "n1")
        .await?;
    let bound: Pod = client.get("default", "p").await?.expect("exists");
    assert_eq!(bound.spec.as_ref().unwrap().node_name, "n1");
    let cond = &bound.status.as_ref().unwrap().conditions;
    assert!(cond
        .iter()
        .any(|c| c.r#type == "PodScheduled" && c.status == "True"));
    let err = client.bind("default", "p", "", "n2").await.unwrap_err();
    assert!(
        err.is_conflict() && err.to_string().contains("already assigned"),
        "{err}"
    );

    // Bound to an existing node: deletion marks the pod and waits for the agent.
    client
        .delete::<Pod>("default", "p", &DeleteParams::default())
        .await?;
    let marked: Pod = client.get("default", "p").await?.expect("still there");
    assert!(!marked.metadata().deletion_timestamp.is_empty());
    assert_eq!(marked.metadata().deletion_grace_period_seconds, Some(30));
    // A second delete with a shorter grace shortens it; grace 0 removes the pod.
    client
        .delete::<Pod>(
            "default",
            "p",
            &DeleteParams {
                grace_period_seconds: Some(5),
                ..Default::default()
            },
        )
        .await?;
    let marked: Pod = client.get("default", "p").await?.expect("still there");
    assert_eq!(marked.metadata().deletion_grace_period_seconds, Some(5));
    client
        .delete::<Pod>("default", "p", &DeleteParams::now())
        .await?;
    assert!(client.get::<Pod>("default", "p").await?.is_none());

    // Unbound pods, and pods of nodes that do not exist, go at once.
    client.create(&pod("u", "")).await?;
    client
        .delete::<Pod>("default", "u", &DeleteParams::default())
        .await?;
    assert!(client.get::<Pod>("default", "u").await?.is_none());
    client.create(&pod("o", "ghost")).await?;
    client
        .delete::<Pod>("default", "o", &DeleteParams::default())
        .await?;
    assert!(client.get::<Pod>("default", "o").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn repeated_events_fold_into_one_with_a_count() -> anyhow::Result<()> {
    let cx = Coxswain::start()?;
    let client = Client::connect(&cx.url()).await?;
    let p = client.create(&pod("p", "")).await?;
    let rec = Recorder::new(client.clone(), "test-component", "");
    let r = ObjectRef::from(&p);
    rec.warning(&r, "BackOff", "Back-off restarting failed container");
    // Let the first create land before the repeats, as repeats patch it.
    wait_for("the first event", T, || async {
        let (evs, _) = client
            .list::<KEvent>("default", &Default::default())
            .await
            .ok()?;
        (!evs.is_empty()).then_some(())
    })
    .await?;
    rec.warning(&r, "BackOff", "Back-off restarting failed container");
    rec.warning(&r, "BackOff", "Back-off restarting failed container");
    rec.normal(
        &r,
        "Pulled",
        "Container image \"nginx\" already present on machine",
    );
    let evs = wait_for("count 3 and a second event", T, || async {
        let (evs, _) = client
            .list::<KEvent>("default", &Default::default())
            .await
            .ok()?;
        (evs.len() == 2 && evs.iter().any(|e| e.count == 3)).then_some(evs)
    })
    .await?;
    let backoff = evs.iter().find(|e| e.reason == "BackOff").unwrap();
    assert_eq!(backoff.r#type, "Warning");
    assert_eq!(backoff.involved_object.as_ref().unwrap().name, "p");
    assert_eq!(backoff.source.as_ref().unwrap().component, "test-component");
    assert!(backoff.metadata().name.starts_with("p."));
    Ok(())
}

/// The regression test for racing event writes against a real store: a burst of 25 identical
/// events (the spam filter's burst) must end as one Event with count 25. When every patch was
/// its own task the stored count often went backwards and stayed lower.
#[tokio::test]
async fn a_burst_of_repeats_ends_with_the_full_count() -> anyhow::Result<()> {
    let cx = Coxswain::start()?;
    let client = Client::connect(&cx.url()).await?;
    let p = client.create(&pod("burst", "")).await?;
    let rec = Recorder::new(client.clone(), "test-component", "");
    let r = ObjectRef::from(&p);
    for _ in 0..25 {
        rec.warning(&r, "BackOff", "Back-off restarting failed container");
    }
    let evs = wait_for("one Event with count 25", T, || async {
        let (evs, _) = client
            .list::<KEvent>("default", &Default::default())
            .await
            .ok()?;
        (evs.len() == 1 && evs[0].count == 25).then_some(evs)
    })
    .await?;
    assert_eq!(evs[0].reason, "BackOff");
    Ok(())
}

#[tokio::test]
async fn a_watch_from_a_compacted_version_is_gone() -> anyhow::Result<()> {
    let cx = Coxswain::start_with(&["store"], &["--watch-history", "4"])?;
    let client = Client::connect(&cx.url()).await?;
    for i in 0..10 {
        client.create(&pod(&format!("p{i}"), "")).await?;
    }
    use tokio_stream::StreamExt;
    let r = match client.watch::<Pod>("", &Default::default(), "2").await {
        Err(e) => Err(e),
        Ok(mut s) => match s.next().await {
            Some(Err(e)) => Err(e),
            other => Ok(other.is_some()),
        },
    };
    let err = r.expect_err("too old");
    assert!(err.is_gone(), "{err}");
    Ok(())
}
