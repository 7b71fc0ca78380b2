//! End-to-end tests of the workload controllers with pods that really run: `coxswain up
//! --runtime sim` (simulated node agents, scripted by `sim.coxswain.io/*` annotations) and the
//! scheduler. Invariants are checked on every poll: one DaemonSet pod per node, StatefulSet
//! ordering, CronJob concurrency.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::v1::{
    ControllerRevision, CronJob, DaemonSet, Job, PersistentVolumeClaim, Pod, StatefulSet,
};
use coxswain_api::Resource;
use coxswain_client::{Client, DeleteParams, ListParams};
use coxswain_test_support::{scenarios_dir, wait_for, Coxswain};

const T: Duration = Duration::from_secs(40);

fn up(extra: &[&str]) -> Coxswain {
    for b in ["coxswain", "coxctl"] {
        assert!(
            coxswain_test_support::bin(b).exists(),
            "{b} is not built: run `cargo build -p coxswain -p coxctl` first"
        );
    }
    let mut args = vec!["--in-memory", "--runtime", "sim", "--nodes", "3"];
    args.extend_from_slice(extra);
    Coxswain::start_with(&["up"], &args).expect("coxswain up")
}

fn phase(p: &Pod) -> &str {
    p.status.as_ref().map_or("", |s| s.phase.as_str())
}

fn ready(p: &Pod) -> bool {
    p.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.r#type == "Ready" && c.status == "True")
    })
}

fn deleting(p: &Pod) -> bool {
    !p.metadata().deletion_timestamp.is_empty()
}

fn node_of(p: &Pod) -> String {
    p.spec
        .as_ref()
        .map(|s| s.node_name.clone())
        .unwrap_or_default()
}

async fn pods(c: &Client, ns: &str, sel: &str) -> Vec<Pod> {
    c.list::<Pod>(ns, &ListParams::labels(sel))
        .await
        .map(|x| x.0)
        .unwrap_or_default()
}

/// S07/S08/S09: one pod per eligible node, never two on a node; relabelling adds and removes
/// the pod; a cordoned node keeps (and gets back) its pod; a rolling update replaces every pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_runs_one_pod_per_eligible_node() {
    let cx = up(&["--control-plane-node", "k8s-master"]);
    let c = Client::connect(&cx.url()).await.unwrap();
    let d = scenarios_dir();
    let d = d.to_str().unwrap();
    let twice = Arc::new(AtomicBool::new(false));
    // Continuous invariant: never two live pods of one DaemonSet on one node.
    let watcher = {
        let c = c.clone();
        let twice = twice.clone();
        tokio::spawn(async move {
            loop {
                for sel in ["app=prometheus", "app=ssd-monitor"] {
                    let mut per: BTreeMap<String, usize> = BTreeMap::new();
                    for p in pods(&c, "default", sel).await {
                        let n = node_of(&p);
                        if !n.is_empty()
                            && !deleting(&p)
                            && !matches!(phase(&p), "Failed" | "Succeeded")
                        {
                            *per.entry(n).or_default() += 1;
                        }
                    }
                    if per.values().any(|v| *v > 1) {
                        twice.store(true, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    };
    cx.coxctl(&[
        "apply",
        "-f",
        &format!("{d}/02-daemonset-node-exporter.yaml"),
    ])
    .success();
    let running = wait_for("3 running exporter pods", T, || async {
        let ps: Vec<Pod> = pods(&c, "default", "app=prometheus").await;
        (ps.len() == 3 && ps.iter().all(|p| phase(p) == "Running")).then_some(ps)
    })
    .await
    .unwrap();
    let nodes: BTreeSet<String> = running.iter().map(node_of).collect();
    assert_eq!(
        nodes,
        ["node1", "node2", "node3"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        "one per worker, none on the tainted control plane"
    );
    for p in &running {
        let m = p.metadata();
        assert_eq!(
            m.name.len(),
            "node-exporter-daemonset-".len() + 5,
            "{}",
            m.name
        );
        assert!(p
            .spec
            .as_ref()
            .unwrap()
            .tolerations
            .iter()
            .any(|t| t.key == "node.kubernetes.io/unschedulable"));
    }
    wait_for("ds status 3/3", T, || async {
        let ds = c
            .get::<DaemonSet>("default", "node-exporter-daemonset")
            .await
            .ok()??;
        let st = ds.status?;
        (st.desired_number_scheduled == 3
            && st.current_number_scheduled == 3
            && st.number_ready == 3
            && st.updated_number_scheduled == 3
            && st.number_available == 3)
            .then_some(())
    })
    .await
    .unwrap();

    // ssd-monitor: nothing until a node is labelled disk=ssd.
    cx.coxctl(&[
        "create",
        "-f",
        &format!("{d}/56-daemonset-ssd-monitor.yaml"),
    ])
    .success();
    wait_for("ssd-monitor observed", T, || async {
        let ds = c.get::<DaemonSet>("default", "ssd-monitor").await.ok()??;
        (ds.status?.observed_generation >= 1).then_some(())
    })
    .await
    .unwrap();
    let out = cx.coxctl(&["get", "ds", "ssd-monitor"]).success().stdout;
    assert!(out.contains("disk=ssd"), "{out}");
    assert!(pods(&c, "default", "app=ssd-monitor").await.is_empty());
    cx.coxctl(&["label", "node", "node1", "disk=ssd"]).success();
    wait_for("ssd-monitor on node1", T, || async {
        let ps = pods(&c, "default", "app=ssd-monitor").await;
        (ps.len() == 1 && node_of(&ps[0]) == "node1" && phase(&ps[0]) == "Running").then_some(())
    })
    .await
    .unwrap();
    cx.coxctl(&["label", "node", "node1", "disk=hdd", "--overwrite"])
        .success();
    wait_for("ssd-monitor gone", T, || async {
        pods(&c, "default", "app=ssd-monitor")
            .await
            .is_empty()
            .then_some(())
    })
    .await
    .unwrap();

    // Cordon node2, delete its exporter pod: it comes back on node2.
    cx.coxctl(&["cordon", "node2"]).success();
    let victim = running.iter().find(|p| node_of(p) == "node2").unwrap();
    c.delete::<Pod>("default", &victim.metadata().name, &DeleteParams::default())
        .await
        .unwrap();
    wait_for("replacement on cordoned node2", T, || async {
        let ps = pods(&c, "default", "app=prometheus").await;
        ps.iter()
            .any(|p| {
                node_of(p) == "node2"
                    && p.metadata().name != victim.metadata().name
                    && phase(p) == "Running"
            })
            .then_some(())
    })
    .await
    .unwrap();

    // Rolling update to a new image: every pod replaced, one at a time (maxUnavailable 1).
    cx.coxctl(&[
        "set",
        "image",
        "ds",
        "node-exporter-daemonset",
        "node-exporter=prom/node-exporter:v2",
    ])
    .success();
    cx.coxctl(&["rollout", "status", "ds", "node-exporter-daemonset"])
        .success();
    let ps: Vec<Pod> = pods(&c, "default", "app=prometheus")
        .await
        .into_iter()
        .filter(|p| !deleting(p))
        .collect();
    assert_eq!(ps.len(), 3);
    assert!(ps
        .iter()
        .all(|p| p.spec.as_ref().unwrap().containers[0].image == "prom/node-exporter:v2"));
    let hist = cx
        .coxctl(&["rollout", "history", "ds", "node-exporter-daemonset"])
        .success()
        .stdout;
    assert!(hist.lines().any(|l| l.starts_with("2 ")), "{hist}");

    // Deleting the DaemonSet deletes its pods.
    cx.coxctl(&["delete", "ds", "node-exporter-daemonset"])
        .success();
    wait_for("exporter pods gone", T, || async {
        pods(&c, "default", "app=prometheus")
            .await
            .is_empty()
            .then_some(())
    })
    .await
    .unwrap();
    watcher.abort();
    assert!(
        !twice.load(Ordering::SeqCst),
        "two pods of a DaemonSet on one node"
    );
}

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
    wait_for("first set's pods gone", T, || async {
        pods(&c, "default", "app=ss-nginx")
            .await
            .is_empty()
            .then_some(())
    })
    .await
    .unwrap();
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

    // Scale down to 1: -2 goes before -1; claims stay.
    deleted_order.lock().unwrap().clear();
    cx.coxctl(&["scale", "statefulset", "stateful-nginx", "--replicas=1"])
        .success();
    wait_for("one pod", T, || async {
        (pods(&c, "default", "app=ss-nginx").await.len() == 1
            && deleted_order
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.contains(" gone "))
                .count()
                >= 2)
            .then_some(())
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
            && deleted_order
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.contains(" gone "))
                .count()
                >= 3
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

/// S19/S21: with the CronJob clock at 60× (a minute per second), `*/1 * * * *` starts a Job per
/// (controller) minute named `<cronjob>-<minutes>`, history is trimmed to 3; Forbid never has
/// two active Jobs; Replace never lets a long run complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_schedules_with_a_fast_clock() {
    let cx = up(&["--cron-clock-rate", "60", "--cron-resync", "200ms"]);
    let c = Client::connect(&cx.url()).await.unwrap();
    let d = scenarios_dir();
    let d = d.to_str().unwrap();
    // The seed's Job echoes and exits: in the sim runtime that is a run of 100 ms.
    let manifest = std::fs::read_to_string(format!("{d}/12-cronjob-hello-v2alpha1.yaml"))
        .unwrap()
        .replace(
            "      template:\n        spec:\n",
            "      template:\n        metadata:\n          annotations:\n            sim.coxswain.io/run-duration: 100ms\n        spec:\n",
        );
    assert!(manifest.contains("run-duration"));
    let out = cx
        .coxctl_in(&["apply", "-f", "-"], None, Some(&manifest))
        .success()
        .stdout;
    assert!(out.contains("cronjob.batch/hello"), "{out}");
    // Jobs complete at once in the sim runtime: at least 4 runs happen, 3 successful kept.
    let jobs = wait_for("several runs", T, || async {
        let cj = c.get::<CronJob>("default", "hello").await.ok()??;
        let st = cj.status?;
        let (jobs, _) = c
            .list::<Job>("default", &ListParams::default())
            .await
            .ok()?;
        let minutes: Vec<i64> = jobs
            .iter()
            .filter_map(|j| j.metadata().name.strip_prefix("hello-")?.parse().ok())
            .collect();
        (!st.last_successful_time.is_empty()
            && minutes.len() == 3
            && minutes.iter().max()? - minutes.iter().min()? >= 2)
            .then_some(jobs)
    })
    .await
    .unwrap();
    for j in &jobs {
        assert_eq!(j.metadata().owner_references[0].kind, "CronJob");
    }
    let out = cx.coxctl(&["get", "cronjob", "hello"]).success().stdout;
    assert!(
        out.contains("*/1 * * * *") && out.contains("False"),
        "{out}"
    );
    let desc = cx
        .coxctl(&["describe", "cronjob", "hello"])
        .success()
        .stdout;
    for want in [
        "Schedule:",
        "*/1 * * * *",
        "Concurrency Policy:",
        "Allow",
        "Last Schedule Time:",
        "SuccessfulCreate",
        "SawCompletedJob",
    ] {
        assert!(desc.contains(want), "{want:?} missing in\n{desc}");
    }
    // create job --from
    let out = cx
        .coxctl(&["create", "job", "manual-1", "--from=cronjob/hello"])
        .success()
        .stdout;
    assert_eq!(out.trim(), "job.batch/manual-1 created");
    cx.coxctl(&["delete", "cronjob", "hello"]).success();

    // Forbid and Replace with runs longer than the schedule (sim run-duration 3 s = 3 minutes).
    for (name, policy) in [("forbid", "Forbid"), ("replace", "Replace")] {
        let m = format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\nspec:\n  schedule: \"* * * * *\"\n  concurrencyPolicy: {policy}\n  jobTemplate:\n    spec:\n      template:\n        metadata:\n          annotations:\n            sim.coxswain.io/run-duration: 3s\n        spec:\n          restartPolicy: Never\n          containers:\n          - name: c\n            image: busybox\n"
        );
        cx.coxctl_in(&["apply", "-f", "-"], None, Some(&m))
            .success();
    }
    let max_active: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let seen: Arc<Mutex<BTreeMap<String, BTreeSet<String>>>> = Arc::default();
    wait_for(
        "forbid skipped and replace replaced",
        Duration::from_secs(20),
        || {
            let c = c.clone();
            let max_active = max_active.clone();
            let seen = seen.clone();
            async move {
                let (jobs, _) = c
                    .list::<Job>("default", &ListParams::default())
                    .await
                    .ok()?;
                let mut per: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
                for j in &jobs {
                    let Some(owner) = j.metadata().owner_references.first() else {
                        continue;
                    };
                    let e = per.entry(owner.name.clone()).or_default();
                    seen.lock()
                        .unwrap()
                        .entry(owner.name.clone())
                        .or_default()
                        .insert(j.metadata().name.clone());
                    let st = j.status.clone().unwrap_or_default();
                    let done = st.conditions.iter().any(|c| c.status == "True");
                    if !done && j.metadata().deletion_timestamp.is_empty() {
                        e.1 += 1;
                    }
                    if st
                        .conditions
                        .iter()
                        .any(|c| c.r#type == "Complete" && c.status == "True")
                    {
                        e.2 += 1;
                    }
                }
                let mut m = max_active.lock().unwrap();
                for (k, v) in &per {
                    let x = m.entry(k.clone()).or_default();
                    *x = (*x).max(v.1);
                }
                let forbid = per.get("forbid").copied().unwrap_or_default();
                let replaced = seen.lock().unwrap().get("replace").map_or(0, |s| s.len());
                // Replace has started at least 3 Jobs (each replacing the last); Forbid let one finish.
                (replaced >= 3 && forbid.2 >= 1).then_some(())
            }
        },
    )
    .await
    .unwrap();
    let m = max_active.lock().unwrap().clone();
    assert!(
        m.get("forbid").copied().unwrap_or(0) <= 1,
        "Forbid ran two Jobs at once: {m:?}"
    );
    assert!(
        m.get("replace").copied().unwrap_or(0) <= 1,
        "Replace ran two Jobs at once: {m:?}"
    );
    let (jobs, _) = c
        .list::<Job>("default", &ListParams::default())
        .await
        .unwrap();
    assert!(
        !jobs.iter().any(|j| j
            .metadata()
            .owner_references
            .first()
            .is_some_and(|o| o.name == "replace")
            && j.status
                .as_ref()
                .is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Complete"))),
        "a replaced run completed"
    );
}

fn job_condition(j: &Job, t: &str) -> Option<String> {
    j.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.r#type == t && c.status == "True")
        .map(|c| c.reason.clone())
}

/// S13/S17: OnFailure restarts in place and the restarts count toward backoffLimit (one pod
/// only); activeDeadlineSeconds fails the Job with DeadlineExceeded and kills its pods;
/// ttlSecondsAfterFinished 0 deletes a finished Job and its pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_onfailure_deadline_and_ttl() {
    let cx = up(&["--backoff-initial", "100ms", "--backoff-max", "200ms"]);
    let c = Client::connect(&cx.url()).await.unwrap();
    let job = |name: &str, spec: &str, ann: &str, policy: &str| {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n{spec}  template:\n    metadata:\n      labels:\n        app: {name}\n      annotations:\n{ann}    spec:\n      restartPolicy: {policy}\n      containers:\n      - name: c\n        image: busybox\n"
        )
    };
    let onfailure = job(
        "onfailure",
        "  backoffLimit: 2\n",
        "        sim.coxswain.io/run-duration: 50ms\n        sim.coxswain.io/exit-code: \"1\"\n",
        "OnFailure",
    );
    let deadline = job(
        "deadline",
        "  activeDeadlineSeconds: 2\n  parallelism: 2\n  completions: 4\n",
        "        sim.coxswain.io/ready-after: 0s\n",
        "Never",
    );
    let ttl = job(
        "ttl",
        "  ttlSecondsAfterFinished: 0\n  completions: 2\n",
        "        sim.coxswain.io/run-duration: 50ms\n",
        "Never",
    );
    for m in [&onfailure, &deadline, &ttl] {
        cx.coxctl_in(&["apply", "-f", "-"], None, Some(m)).success();
    }
    // TTL 0: completes, then the Job and its pods disappear.
    wait_for("ttl job deleted with its pods", T, || async {
        let gone = c.get::<Job>("default", "ttl").await.ok()?.is_none();
        (gone && pods(&c, "default", "app=ttl").await.is_empty()).then_some(())
    })
    .await
    .unwrap();
    // OnFailure: one pod, restarted in place, then BackoffLimitExceeded.
    let j = wait_for("onfailure failed", T, || async {
        let j = c.get::<Job>("default", "onfailure").await.ok()??;
        (job_condition(&j, "Failed")? == "BackoffLimitExceeded").then_some(j)
    })
    .await
    .unwrap();
    assert_eq!(j.status.unwrap().succeeded, 0);
    let ps = pods(&c, "default", "app=onfailure").await;
    assert!(
        ps.len() <= 1,
        "OnFailure must not create new pods: {}",
        ps.len()
    );
    // activeDeadlineSeconds: Failed/DeadlineExceeded, no pod left running, none succeeded.
    let j = wait_for("deadline exceeded", T, || async {
        let j = c.get::<Job>("default", "deadline").await.ok()??;
        (job_condition(&j, "Failed")? == "DeadlineExceeded").then_some(j)
    })
    .await
    .unwrap();
    let st = j.status.unwrap();
    assert_eq!((st.succeeded, st.active), (0, 0));
    wait_for("deadline pods stopped", T, || async {
        pods(&c, "default", "app=deadline")
            .await
            .iter()
            .all(|p| deleting(p) || matches!(phase(p), "Failed" | "Succeeded"))
            .then_some(())
    })
    .await
    .unwrap();
    let desc = cx.coxctl(&["describe", "job", "deadline"]).success().stdout;
    assert!(desc.contains("DeadlineExceeded"), "{desc}");
}

/// spec.timeZone: an unknown zone is refused at admission with Kubernetes' message, and a named
/// zone's schedule runs in its local time: `30 9 * * *` in Asia/Kolkata (+05:30) is 04:00 UTC.
/// The controller's clock is started a minute before the next 04:00Z and runs at 10×.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_runs_in_its_time_zone() {
    assert!(
        coxswain_api::tz::database_present(),
        "the tz database is missing (no America/New_York under {:?}): install tzdata or set ZONEINFO",
        coxswain_api::tz::search_dirs()
    );
    let now = coxswain_api::time::now_secs();
    let day = 86_400;
    let four = 4 * 3600;
    // The next 04:00Z at least a minute away.
    let target = (now + 60 - four).div_euclid(day) * day + day + four;
    let offset = format!("{}s", target - now - 60);
    let cx = up(&[
        "--cron-clock-offset",
        &offset,
        "--cron-clock-rate",
        "10",
        "--cron-resync",
        "200ms",
    ]);
    let c = Client::connect(&cx.url()).await.unwrap();
    let cj = |name: &str, tz: &str| {
        format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\nspec:\n  schedule: \"30 9 * * *\"\n  timeZone: {tz}\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - name: c\n            image: busybox\n"
        )
    };
    let out = cx
        .coxctl_in(&["apply", "-f", "-"], None, Some(&cj("bad", "Nope/Zone")))
        .failure();
    assert!(
        out.stderr
            .contains("spec.timeZone: Invalid value: \"Nope/Zone\": unknown time zone Nope/Zone"),
        "{}",
        out.stderr
    );
    cx.coxctl_in(&["apply", "-f", "-"], None, Some(&cj("tz", "Asia/Kolkata")))
        .success();
    let want = format!("tz-{}", target / 60);
    wait_for("the 09:30 IST run", T, || async {
        let (jobs, _) = c
            .list::<Job>("default", &ListParams::default())
            .await
            .ok()?;
        jobs.iter().any(|j| j.metadata().name == want).then_some(())
    })
    .await
    .unwrap();
    // The controller creates the Job, then records the run in the CronJob's status.
    let want_time = coxswain_api::time::format_rfc3339(target);
    wait_for("lastScheduleTime of the 09:30 IST run", T, || async {
        let cj = c.get::<CronJob>("default", "tz").await.ok()??;
        (cj.status?.last_schedule_time == want_time).then_some(())
    })
    .await
    .unwrap();
    let (jobs, _) = c
        .list::<Job>("default", &ListParams::default())
        .await
        .unwrap();
    let names: Vec<&str> = jobs.iter().map(|j| j.metadata().name.as_str()).collect();
    assert_eq!(names, vec![want.as_str()], "exactly one run");
}
