//! StatefulSets on simulated nodes (S50/S52/S53/S54).
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::v1::{ControllerRevision, PersistentVolumeClaim, Pod, StatefulSet};
use coxswain_api::Resource;
use coxswain_client::{Client, DeleteParams, ListParams};
use coxswain_test_support::{scenarios_dir, wait_for};

use crate::common::*;

/// S50/S52/S53/S54: ordinal names, ordered creation (each after the previous is Ready),
/// hostname/subdomain, claims per pod kept across deletion and scale-down, scale-down from the
/// highest ordinal, rolling update in reverse ordinal order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_is_ordered_and_keeps_identity_and_claims() {
    let cx = up(&[]);
    let c = Client::connect(&cx.url()).await.unwrap();
    let d = scenarios_dir();
    let d = d.to_str().unwrap();
    // Creation order violations and deletion order seen by a continuous watcher.
    let violations = Arc::new(AtomicUsize::new(0));
    let deleted_order: Arc<Mutex<Vec<String>>> = Arc::default();
    // Every change of the set's status the watcher sees, for the failure message of the last
    // assertion (a flake once saw currentRevision != updateRevision after `rollout status`).
    let status_log: Arc<Mutex<Vec<String>>> = Arc::default();
    let watcher = {
        let c = c.clone();
        let v = violations.clone();
        let order = deleted_order.clone();
        let status_log = status_log.clone();
        tokio::spawn(async move {
            let mut last_status = String::new();
            let mut seen: BTreeSet<String> = BTreeSet::new();
            let mut prev: BTreeMap<String, (String, bool)> = BTreeMap::new();
            // Entries are "<poll> term|gone <name>": two changes seen by the same poll are
            // simultaneous as far as the test can tell.
            let mut poll: u64 = 0;
            loop {
                let ps = pods(&c, "default", "app=ss-nginx").await;
                let by: BTreeMap<String, &Pod> =
                    ps.iter().map(|p| (p.metadata().name.clone(), p)).collect();
                for name in by.keys() {
                    if !seen.contains(name) {
                        // A new ordinal k > 0 appears only when k-1 is Running and Ready.
                        let k: i32 = name.rsplit('-').next().unwrap().parse().unwrap();
                        if k > 0 {
                            let before = format!("stateful-nginx-{}", k - 1);
                            if !by.get(&before).is_some_and(|p| ready(p) && !deleting(p)) {
                                v.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        seen.insert(name.clone());
                    }
                }
                // Log ("term", name) when a pod (by uid) starts terminating, ("gone", name)
                // when it disappears.
                let now: BTreeMap<String, (String, bool)> = ps
                    .iter()
                    .map(|p| {
                        (
                            p.metadata().uid.clone(),
                            (p.metadata().name.clone(), deleting(p)),
                        )
                    })
                    .collect();
                for (uid, (name, term)) in &now {
                    if *term && !prev.get(uid).is_some_and(|x| x.1) {
                        order.lock().unwrap().push(format!("{poll} term {name}"));
                    }
                }
                for (uid, (name, _)) in &prev {
                    if !now.contains_key(uid) {
                        order.lock().unwrap().push(format!("{poll} gone {name}"));
                        if !by.contains_key(name) {
                            seen.remove(name);
                        }
                    }
                }
                prev = now;
                if let Ok(Some(set)) = c.get::<StatefulSet>("default", "stateful-nginx").await {
                    let st = set.status.clone().unwrap_or_default();
                    let line = format!(
                        "uid={} gen={} observed={} replicas={} ready={} current={}:{} updated={}:{}",
                        set.metadata().uid,
                        set.metadata().generation,
                        st.observed_generation,
                        st.replicas,
                        st.ready_replicas,
                        st.current_revision,
                        st.current_replicas,
                        st.update_revision,
                        st.updated_replicas
                    );
                    if line != last_status {
                        status_log.lock().unwrap().push(format!("{poll} {line}"));
                        last_status = line;
                    }
                }
                poll += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // The headless service from 52, then the set with claims from 53; pods are Ready 300 ms
    // after they start, so ordering is visible.
    cx.coxctl(&[
        "apply",
        "-f",
        &format!("{d}/52-statefulset-nginx-headless.yaml"),
    ])
    .success();
    cx.coxctl(&["delete", "statefulset", "stateful-nginx"])
        .success();
    wait_pods_gone(&c, "default", "app=ss-nginx", "first set's pods gone").await;
    let manifest = std::fs::read_to_string(format!("{d}/53-statefulset-nginx-storage.yaml"))
        .unwrap()
        .replace(
            "    metadata:\n      labels:\n        app: ss-nginx\n",
            "    metadata:\n      labels:\n        app: ss-nginx\n      annotations:\n        sim.coxswain.io/ready-after: 300ms\n",
        );
    assert!(manifest.contains("ready-after"));
    cx.coxctl_in(&["apply", "-f", "-"], None, Some(&manifest))
        .success();
    let ps = wait_for("3 ready pods", T, || async {
        let ps = pods(&c, "default", "app=ss-nginx").await;
        (ps.len() == 3 && ps.iter().all(ready)).then_some(ps)
    })
    .await
    .unwrap();
    for p in &ps {
        let m = p.metadata();
        let s = p.spec.as_ref().unwrap();
        assert_eq!(s.hostname, m.name);
        assert_eq!(s.subdomain, "nginx");
        let claim = s
            .volumes
            .iter()
            .find(|v| v.name == "www")
            .and_then(|v| v.persistent_volume_claim.as_ref())
            .unwrap();
        assert_eq!(claim.claim_name, format!("www-{}", m.name));
    }
    let names: BTreeSet<String> = ps.iter().map(|p| p.metadata().name.clone()).collect();
    assert_eq!(
        names,
        (0..3).map(|i| format!("stateful-nginx-{i}")).collect()
    );
    let pvc1 = c
        .get::<PersistentVolumeClaim>("default", "www-stateful-nginx-1")
        .await
        .unwrap()
        .expect("claim www-stateful-nginx-1");
    let out = cx
        .coxctl(&["get", "sts", "stateful-nginx"])
        .success()
        .stdout;
    assert!(out.contains("3/3"), "{out}");

    // Identity survives replacement: same name, same claim.
    c.delete::<Pod>("default", "stateful-nginx-1", &DeleteParams::default())
        .await
        .unwrap();
    let uid1 = ps
        .iter()
        .find(|p| p.metadata().name == "stateful-nginx-1")
        .unwrap()
        .metadata()
        .uid
        .clone();
    wait_for("stateful-nginx-1 back", T, || async {
        let p = c.get::<Pod>("default", "stateful-nginx-1").await.ok()??;
        (p.metadata().uid != uid1 && ready(&p)).then_some(())
    })
    .await
    .unwrap();
    let again = c
        .get::<PersistentVolumeClaim>("default", "www-stateful-nginx-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.metadata().uid,
        pvc1.metadata().uid,
        "same claim reused"
    );

    // How many pods the watcher saw disappear since the log was last cleared.
    let gone_count = || {
        deleted_order
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.contains(" gone "))
            .count()
    };
    // Scale down to 1: -2 goes before -1; claims stay.
    deleted_order.lock().unwrap().clear();
    cx.coxctl(&["scale", "statefulset", "stateful-nginx", "--replicas=1"])
        .success();
    wait_for("one pod", T, || async {
        (pods(&c, "default", "app=ss-nginx").await.len() == 1 && gone_count() >= 2).then_some(())
    })
    .await
    .unwrap();
    {
        let log = deleted_order.lock().unwrap().clone();
        let at = |e: &str| {
            log.iter()
                .find(|x| x.ends_with(e))
                .and_then(|x| x.split(' ').next()?.parse::<u64>().ok())
        };
        let gone2 = at("gone stateful-nginx-2").expect("-2 gone");
        let first1 = at("term stateful-nginx-1")
            .or(at("gone stateful-nginx-1"))
            .expect("-1 gone");
        assert!(gone2 <= first1, "-1 terminated before -2 was gone: {log:?}");
    }
    for i in 0..3 {
        assert!(c
            .get::<PersistentVolumeClaim>("default", &format!("www-stateful-nginx-{i}"))
            .await
            .unwrap()
            .is_some());
    }
    cx.coxctl(&["scale", "statefulset", "stateful-nginx", "--replicas=3"])
        .success();
    wait_for("3 ready again", T, || async {
        let ps = pods(&c, "default", "app=ss-nginx").await;
        (ps.len() == 3 && ps.iter().all(ready)).then_some(())
    })
    .await
    .unwrap();

    // Rolling update: reverse ordinal order, one at a time.
    deleted_order.lock().unwrap().clear();
    cx.coxctl(&[
        "set",
        "image",
        "statefulset",
        "stateful-nginx",
        "nginx=nginx:1.17.9",
    ])
    .success();
    cx.coxctl(&["rollout", "status", "statefulset", "stateful-nginx"])
        .success();
    wait_for("all updated", T, || async {
        let ps = pods(&c, "default", "app=ss-nginx").await;
        (ps.len() == 3
            && gone_count() >= 3
            && ps.iter().all(|p| {
                ready(p) && p.spec.as_ref().unwrap().containers[0].image == "nginx:1.17.9"
            }))
        .then_some(())
    })
    .await
    .unwrap();
    {
        let log = deleted_order.lock().unwrap().clone();
        // Replaced one at a time (the next only after the previous is back and Ready), so
        // each disappearance is seen by a later poll than the one before.
        let gone: Vec<(u64, &str)> = log
            .iter()
            .filter_map(|e| {
                let mut it = e.split(' ');
                let n = it.next()?.parse().ok()?;
                (it.next()? == "gone").then_some((n, it.next()?))
            })
            .collect();
        let names: Vec<&str> = gone.iter().map(|g| g.1).collect();
        assert_eq!(
            names,
            vec!["stateful-nginx-2", "stateful-nginx-1", "stateful-nginx-0"],
            "rolling update in reverse ordinal order: {log:?}"
        );
        assert!(
            gone.windows(2).all(|w| w[0].0 < w[1].0),
            "not one at a time: {log:?}"
        );
    }
    let sts = c
        .get::<StatefulSet>("default", "stateful-nginx")
        .await
        .unwrap()
        .unwrap();
    let st = sts.status.unwrap();
    if st.current_revision != st.update_revision {
        let revisions: Vec<String> = c
            .list::<ControllerRevision>("default", &ListParams::default())
            .await
            .unwrap()
            .0
            .iter()
            .map(|r| {
                let owners: Vec<&str> = r
                    .metadata()
                    .owner_references
                    .iter()
                    .map(|o| o.uid.as_str())
                    .collect();
                format!(
                    "{} revision={} owners={owners:?}",
                    r.metadata().name,
                    r.revision
                )
            })
            .collect();
        let pod_revisions: Vec<String> = pods(&c, "default", "app=ss-nginx")
            .await
            .iter()
            .map(|p| format!("{} {:?}", p.metadata().name, p.metadata().labels))
            .collect();
        panic!(
            "currentRevision {} != updateRevision {} after the rollout\nstatus seen: {:#?}\nrevisions: {revisions:#?}\npods: {pod_revisions:#?}",
            st.current_revision,
            st.update_revision,
            status_log.lock().unwrap()
        );
    }
    watcher.abort();
    assert_eq!(
        violations.load(Ordering::SeqCst),
        0,
        "a pod was created before its predecessor was Ready"
    );
}
