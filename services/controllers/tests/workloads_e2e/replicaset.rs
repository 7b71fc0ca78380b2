//! ReplicaSets: create, scale, self-heal, orphan and re-adopt.
use coxswain_api::v1::{Pod, ReplicaSet};
use coxswain_api::Resource;
use coxswain_client::{Client, DeleteParams};
use coxswain_test_support::{scenarios_dir, wait_for};

use crate::common::{events, fake_kubelet, names, pods, up, Fate, NS, T};

/// S39/S40: ReplicaSet create, scale, self-heal, orphan and re-adopt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_scales_self_heals_orphans_and_adopts() {
    let cx = up();
    let c = Client::connect(&cx.url()).await.unwrap();
    let dir = scenarios_dir();
    let d = dir.to_str().unwrap();
    cx.coxctl(&["apply", "-f", &format!("{d}/00-namespace-mayikt-sit.yaml")])
        .success();
    cx.coxctl(&["create", "-f", &format!("{d}/38-replicaset-mayikt-rp.yaml")])
        .success();
    let _k = fake_kubelet(c.clone(), NS, Fate::RunReady);
    let first = wait_for("3 pods", T, || async {
        let ps = pods(&c, NS).await;
        (ps.len() == 3).then_some(ps)
    })
    .await
    .unwrap();
    for p in &first {
        let m = p.metadata();
        let suffix = m
            .name
            .strip_prefix("mayikt-rp-")
            .expect("name = owner + suffix");
        assert_eq!(suffix.len(), 5, "5 random characters: {}", m.name);
        let r = &m.owner_references[0];
        assert_eq!(
            (
                r.kind.as_str(),
                r.name.as_str(),
                r.controller,
                r.block_owner_deletion
            ),
            ("ReplicaSet", "mayikt-rp", Some(true), Some(true))
        );
        assert_eq!(m.labels.get("app").map(String::as_str), Some("nginx-pod"));
    }
    // Status catches up: replicas 3, ready 3, observedGeneration.
    wait_for("rs status 3/3", T, || async {
        let rs = c.get::<ReplicaSet>(NS, "mayikt-rp").await.ok()??;
        let st = rs.status.clone()?;
        (st.replicas == 3
            && st.ready_replicas == 3
            && st.available_replicas == 3
            && st.fully_labeled_replicas == 3
            && st.observed_generation == rs.metadata().generation)
            .then_some(())
    })
    .await
    .unwrap();
    let out = cx.coxctl(&["get", "rs", "-n", NS]).success().stdout;
    assert!(
        out.contains("DESIRED") && out.contains("mayikt-rp"),
        "{out}"
    );

    // Scale to 6 keeps the 3 and adds exactly 3.
    let out = cx
        .coxctl(&["scale", "rs", "mayikt-rp", "--replicas=6", "-n", NS])
        .success()
        .stdout;
    assert_eq!(out.trim(), "replicaset.apps/mayikt-rp scaled");
    let six = wait_for("6 pods", T, || async {
        let ps = pods(&c, NS).await;
        (ps.len() == 6).then_some(ps)
    })
    .await
    .unwrap();
    assert!(names(&first).is_subset(&names(&six)));
    // Scale to 2 removes 4.
    cx.coxctl(&["scale", "rs/mayikt-rp", "--replicas=2", "-n", NS])
        .success();
    let two = wait_for("2 pods", T, || async {
        let ps = pods(&c, NS).await;
        (ps.len() == 2).then_some(ps)
    })
    .await
    .unwrap();
    // Self-heal: a deleted pod is replaced under a new name.
    let victim = two[0].metadata().name.clone();
    c.delete::<Pod>(NS, &victim, &DeleteParams::now())
        .await
        .unwrap();
    let healed = wait_for("replacement", T, || async {
        let ps = pods(&c, NS).await;
        (ps.len() == 2 && !names(&ps).contains(&victim)).then_some(ps)
    })
    .await
    .unwrap();
    // Events: SuccessfulCreate / SuccessfulDelete on the ReplicaSet.
    let evs = events(&c, NS).await;
    assert!(evs.iter().any(
        |e| e.reason == "SuccessfulCreate" && e.message.starts_with("Created pod: mayikt-rp-")
    ));
    assert!(evs.iter().any(|e| e.reason == "SuccessfulDelete"));

    // Orphan: the pods stay without an owner; re-creating the RS adopts them, creating none.
    cx.coxctl(&["delete", "rs", "mayikt-rp", "-n", NS, "--cascade=orphan"])
        .success();
    wait_for("orphaned", T, || async {
        let ps = pods(&c, NS).await;
        (ps.len() == 2 && ps.iter().all(|p| p.metadata().owner_references.is_empty())).then_some(())
    })
    .await
    .unwrap();
    cx.coxctl(&["apply", "-f", &format!("{d}/38-replicaset-mayikt-rp.yaml")])
        .success();
    let adopted = wait_for("adopted + 1 new", T, || async {
        let ps = pods(&c, NS).await;
        (ps.len() == 3
            && ps.iter().all(|p| {
                p.metadata()
                    .owner_references
                    .first()
                    .is_some_and(|r| r.controller == Some(true))
            }))
        .then_some(ps)
    })
    .await
    .unwrap();
    assert!(
        names(&healed).is_subset(&names(&adopted)),
        "orphans adopted, not replaced"
    );
}
