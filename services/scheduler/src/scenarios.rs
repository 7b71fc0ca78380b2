//! Framework-level tests: whole cycles through the default profile, the aggregate FitError
//! message, node sampling, and the seed placement scenarios.
use std::collections::BTreeMap;
use std::sync::Arc;

use coxswain_api::v1;

use crate::framework::*;
use crate::plugins::testutil::*;
use crate::snapshot::Snapshot;

const HOST: &str = "kubernetes.io/hostname";
const CP: &str = "node-role.kubernetes.io/control-plane";

/// The seed cluster: a tainted control-plane node and two workers labelled `nodev`.
fn cluster(pods: Vec<v1::Pod>) -> Snapshot {
    snapshot(
        vec![
            with_taints(
                node("control-plane", &[(HOST, "control-plane"), (CP, "")]),
                vec![taint(CP, "", "NoSchedule")],
            ),
            node("node1", &[(HOST, "node1"), ("nodev", "v1")]),
            node("node2", &[(HOST, "node2"), ("nodev", "v2")]),
        ],
        pods,
    )
}

fn required_nodev(values: &[&str]) -> v1::Pod {
    let mut p = pod("p", &[]);
    affinity(&mut p).node_affinity = Some(v1::NodeAffinity {
        required_during_scheduling_ignored_during_execution: Some(v1::NodeSelector {
            node_selector_terms: vec![v1::NodeSelectorTerm {
                match_expressions: vec![req("nodev", "In", values)],
                ..Default::default()
            }],
        }),
        ..Default::default()
    });
    p
}

fn place(p: &v1::Pod, snap: &Snapshot) -> String {
    match schedule_one(&Profile::default_profile(), snap, p) {
        Ok(r) => r.node,
        Err(e) => panic!("unschedulable: {e}"),
    }
}

#[test]
fn node_selector_picks_the_labelled_node() {
    let mut p = pod("p", &[]);
    spec(&mut p).node_selector = labels(&[("nodev", "v2")]);
    assert_eq!(place(&p, &cluster(vec![])), "node2");
}

#[test]
fn required_affinity_with_no_matching_node_reports_the_aggregate() {
    let err = schedule_one(
        &Profile::default_profile(),
        &cluster(vec![]),
        &required_nodev(&["v3", "v4"]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
         2 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."
    );
    let err = err.fit().unwrap();
    assert_eq!(err.num_all_nodes, 3);
    assert_eq!(err.diagnosis["node1"].plugin, "NodeAffinity");
    assert_eq!(err.diagnosis["control-plane"].plugin, "TaintToleration");
    assert_eq!(
        err.unschedulable_plugins
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["NodeAffinity", "TaintToleration"]
    );
}

#[test]
fn required_affinity_in_picks_the_matching_node() {
    assert_eq!(
        place(&required_nodev(&["v1", "v4"]), &cluster(vec![])),
        "node1"
    );
}

#[test]
fn preferred_affinity_matching_nothing_still_schedules() {
    let mut p = pod("p", &[]);
    affinity(&mut p).node_affinity = Some(v1::NodeAffinity {
        preferred_during_scheduling_ignored_during_execution: vec![v1::PreferredSchedulingTerm {
            weight: 1,
            preference: Some(v1::NodeSelectorTerm {
                match_expressions: vec![req("nodev", "In", &["v5", "v6"])],
                ..Default::default()
            }),
        }],
        ..Default::default()
    });
    let r = schedule_one(&Profile::default_profile(), &cluster(vec![]), &p).unwrap();
    assert!(r.node == "node1" || r.node == "node2");
    assert_eq!(r.feasible, ["node1".into(), "node2".into()]);
}

#[test]
fn preferred_affinity_wins_when_it_matches() {
    let mut p = pod("p", &[]);
    affinity(&mut p).node_affinity = Some(v1::NodeAffinity {
        preferred_during_scheduling_ignored_during_execution: vec![v1::PreferredSchedulingTerm {
            weight: 1,
            preference: Some(v1::NodeSelectorTerm {
                match_expressions: vec![req("nodev", "In", &["v2"])],
                ..Default::default()
            }),
        }],
        ..Default::default()
    });
    let r = schedule_one(&Profile::default_profile(), &cluster(vec![]), &p).unwrap();
    assert_eq!(r.node, "node2");
    let na = |n: usize| {
        r.scores[n]
            .plugins
            .iter()
            .find(|s| s.plugin == "NodeAffinity")
            .unwrap()
            .clone()
    };
    assert_eq!((na(0).raw, na(0).normalized, na(0).weighted), (0, 0, 0));
    assert_eq!((na(1).raw, na(1).normalized, na(1).weighted), (1, 100, 200));
}

fn pod01() -> v1::Pod {
    on(pod("pod01", &[("app", "pod01")]), "node2")
}

#[test]
fn pod_affinity_joins_pod01() {
    let mut p = pod("p", &[]);
    affinity(&mut p).pod_affinity = Some(v1::PodAffinity {
        required_during_scheduling_ignored_during_execution: vec![pod_term(
            &[("app", "pod01")],
            HOST,
        )],
        ..Default::default()
    });
    assert_eq!(place(&p, &cluster(vec![pod01()])), "node2");
    // Preferred affinity also draws the pod there.
    let mut q = pod("q", &[]);
    affinity(&mut q).pod_affinity = Some(v1::PodAffinity {
        preferred_during_scheduling_ignored_during_execution: vec![v1::WeightedPodAffinityTerm {
            weight: 100,
            pod_affinity_term: Some(pod_term(&[("app", "pod01")], HOST)),
        }],
        ..Default::default()
    });
    assert_eq!(place(&q, &cluster(vec![pod01()])), "node2");
}

#[test]
fn pod_anti_affinity_avoids_pod01() {
    let mut p = pod("p", &[]);
    affinity(&mut p).pod_anti_affinity = Some(v1::PodAntiAffinity {
        required_during_scheduling_ignored_during_execution: vec![pod_term(
            &[("app", "pod01")],
            HOST,
        )],
        ..Default::default()
    });
    let r = schedule_one(&Profile::default_profile(), &cluster(vec![pod01()]), &p).unwrap();
    assert_eq!(r.node, "node1");
    assert_eq!(
        r.rejected
            .iter()
            .find(|(i, _)| cluster(vec![]).nodes[*i].name() == "node2")
            .unwrap()
            .1
            .message(),
        "node(s) didn't match pod anti-affinity rules"
    );
}

#[test]
fn control_plane_taint_keeps_pods_off() {
    let mut snap = cluster(vec![]);
    for i in 0..6 {
        let p = pod(&format!("p{i}"), &[]);
        let node = place(&p, &snap);
        assert_ne!(node, "control-plane");
        assert!(snap.assume(&p, &node));
    }
    // Spread by LeastAllocated/BalancedAllocation: 3 each.
    assert_eq!(snap.get("node1").unwrap().pods.len(), 3);
    assert_eq!(snap.get("node2").unwrap().pods.len(), 3);
    // Pinned to the control plane by selector: the taint is the reason.
    let mut p = pod("pinned", &[]);
    spec(&mut p).node_selector = labels(&[(HOST, "control-plane")]);
    let err = schedule_one(&Profile::default_profile(), &snap, &p).unwrap_err();
    assert_eq!(
        err.to_string(),
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
         2 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."
    );
    // Tolerating it lets the pod in.
    spec(&mut p).tolerations = vec![v1::Toleration {
        key: CP.into(),
        operator: "Exists".into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    }];
    assert_eq!(place(&p, &snap), "control-plane");
}

#[test]
fn resources_steer_placement_and_reject() {
    let snap = snapshot(
        vec![
            with_alloc(
                node("small", &[]),
                &[("cpu", "1"), ("memory", "1Gi"), ("pods", "10")],
            ),
            with_alloc(
                node("big", &[]),
                &[("cpu", "8"), ("memory", "16Gi"), ("pods", "10")],
            ),
        ],
        vec![],
    );
    let mut p = pod("p", &[]);
    spec(&mut p).containers = vec![container(&[("cpu", "500m"), ("memory", "256Mi")])];
    assert_eq!(place(&p, &snap), "big");
    spec(&mut p).containers = vec![container(&[("cpu", "16"), ("memory", "256Mi")])];
    let err = schedule_one(&Profile::default_profile(), &snap, &p).unwrap_err();
    assert_eq!(
        err.to_string(),
        // As kube-scheduler prints it, double period included.
        "0/2 nodes are available: 2 Insufficient cpu. \
         preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.."
    );
}

#[test]
fn fit_error_counts_and_sorts_reasons_as_strings() {
    let mut diagnosis = BTreeMap::new();
    let mut add = |n: usize, s: Status| {
        diagnosis.insert(format!("n{n:02}"), s);
    };
    for i in 0..10 {
        add(i, Status::unschedulable("b reason"));
    }
    add(
        10,
        Status::new(
            Code::Unschedulable,
            vec!["Insufficient cpu".into(), "Insufficient memory".into()],
        ),
    );
    add(11, Status::unschedulable("Insufficient cpu"));
    add(12, Status::unschedulable("a reason"));
    let e = FitError {
        pod: "default/p".into(),
        num_all_nodes: 13,
        diagnosis,
        pre_filter_msg: String::new(),
        post_filter_msg: String::new(),
        unschedulable_plugins: Default::default(),
    };
    // Sorted as strings, counts included: "10 ..." sorts before "2 ...".
    assert_eq!(
        e.to_string(),
        "0/13 nodes are available: 1 Insufficient memory, 1 a reason, 10 b reason, 2 Insufficient cpu."
    );
    let none = FitError {
        num_all_nodes: 0,
        diagnosis: BTreeMap::new(),
        ..e.clone()
    };
    assert_eq!(none.to_string(), "no nodes available to schedule pods");
    let pre = FitError {
        pre_filter_msg: "pod has unbound PVCs".into(),
        post_filter_msg: "preemption: not eligible".into(),
        ..e
    };
    assert_eq!(
        pre.to_string(),
        "0/13 nodes are available: pod has unbound PVCs. preemption: not eligible."
    );
}

#[test]
fn no_nodes() {
    let err = schedule_one(
        &Profile::default_profile(),
        &snapshot(vec![], vec![]),
        &pod("p", &[]),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "no nodes available to schedule pods");
}

#[test]
fn percentage_of_nodes_to_score() {
    for (nodes, pct, want) in [
        (0, None, 0),
        (50, None, 50),
        (99, None, 99),
        (100, None, 100),   // 50% of 100 = 50, raised to the minimum 100
        (150, None, 100),   // 49% = 73 → 100
        (250, None, 120),   // 48% of 250
        (1000, None, 420),  // 42%
        (5000, None, 500),  // 10%
        (6000, None, 300),  // 50 - 48 = 2% → floor 5%
        (10000, None, 500), // 50 - 80 < 5 → 5%
        (1000, Some(0), 420),
        (1000, Some(30), 300),
        (1000, Some(5), 100), // 50 → 100
        (1000, Some(100), 1000),
        (1000, Some(150), 1000),
        (50, Some(10), 50),
    ] {
        assert_eq!(
            num_feasible_nodes_to_find(nodes, pct),
            want,
            "{nodes} nodes at {pct:?}"
        );
    }
}

#[test]
fn evaluation_stops_early_and_rotates() {
    let nodes: Vec<v1::Node> = (0..200).map(|i| node(&format!("n{i:03}"), &[])).collect();
    let snap = snapshot(nodes, vec![]);
    let mut profile = Profile::default_profile();
    profile.percentage_of_nodes_to_score = Some(10); // 20 → at least 100
    let mut next = 0;
    let r = schedule_one_at(&profile, &snap, &pod("p", &[]), &mut next).unwrap();
    assert_eq!((r.evaluated, r.feasible.len(), next), (100, 100, 100));
    assert_eq!(&*r.feasible[0], "n000");
    let r = schedule_one_at(&profile, &snap, &pod("q", &[]), &mut next).unwrap();
    assert_eq!(&*r.feasible[0], "n100");
    assert_eq!(next, 0);
    // Every node evaluated ties: the pick is one of those evaluated in this cycle.
    let picked: usize = r.node[1..].parse().unwrap();
    assert!((100..200).contains(&picked), "{}", r.node);
}

#[test]
fn a_single_feasible_node_is_chosen_without_scoring() {
    let r = schedule_one(
        &Profile::default_profile(),
        &cluster(vec![]),
        &required_nodev(&["v1"]),
    )
    .unwrap();
    assert_eq!(r.node, "node1");
    assert!(r.scores.is_empty());
    assert_eq!(r.evaluated, 3);
}

#[test]
fn weights_are_applied_and_totals_summed() {
    let mut p = pod("p", &[]);
    spec(&mut p).containers = vec![container(&[("cpu", "1"), ("memory", "1Gi")])];
    let r = schedule_one(&Profile::default_profile(), &cluster(vec![]), &p).unwrap();
    for ns in &r.scores {
        let sum: i64 = ns.plugins.iter().map(|s| s.weighted).sum();
        assert_eq!(ns.total, sum);
        for s in &ns.plugins {
            let w = crate::plugins::DEFAULT_SCORES
                .iter()
                .find(|(n, _)| *n == s.plugin)
                .unwrap()
                .1;
            assert_eq!(s.weighted, s.normalized * w);
        }
    }
}

#[test]
fn snapshot_assume_and_remove() {
    let mut snap = cluster(vec![]);
    let mut p = pod("p", &[]);
    spec(&mut p).containers = vec![container(&[("cpu", "1500m"), ("memory", "1Gi")])];
    assert!(snap.assume(&p, "node1"));
    let n1 = snap.get("node1").unwrap();
    assert_eq!(
        (n1.requested.milli_cpu, n1.requested.memory, n1.pods.len()),
        (1500, 1 << 30, 1)
    );
    let bound = on(p.clone(), "node1");
    assert!(snap.remove_pod(&bound));
    let n1 = snap.get("node1").unwrap();
    assert_eq!((n1.requested.milli_cpu, n1.pods.len()), (0, 0));
    assert!(!snap.remove_pod(&bound));
    assert!(!snap.assume(&p, "nowhere"));
    // Terminal pods are not counted.
    let mut done = on(pod("done", &[]), "node1");
    done.status = Some(v1::PodStatus {
        phase: "Succeeded".into(),
        ..Default::default()
    });
    assert!(!snap.add_pod(Arc::new(done)));
}

#[test]
fn registry_and_profiles() {
    let r = crate::plugins::in_tree_registry();
    assert_eq!(r.names().count(), 11);
    assert!(Profile::new("x", &r, &["Nope"], &[]).is_err());
    assert!(Profile::new("x", &r, &[], &[("NodeAffinity", 0)]).is_err());
    let mut r2 = r.clone();
    assert!(r2
        .register("NodeName", |_| Ok(Arc::new(
            crate::plugins::node_name::NodeName
        )))
        .is_err());
    let p = Profile::default_profile();
    assert_eq!(p.scheduler_name, DEFAULT_SCHEDULER_NAME);
    // A profile with only NodeName: everything else is ignored.
    let only = Profile::new("only", &r, &["NodeName"], &[]).unwrap();
    let tainted = pod("p", &[]);
    let r = schedule_one(&only, &cluster(vec![]), &tainted).unwrap();
    // The control plane's NoSchedule taint is not filtered: every node is feasible and ties.
    let feasible: Vec<&str> = r.feasible.iter().map(|n| &**n).collect();
    assert_eq!(feasible, ["control-plane", "node1", "node2"]);
    assert!(feasible.contains(&&*r.node), "{}", r.node);
}

/// A test plugin whose PreFilter rejects every pod.
struct RejectAll;

impl Plugin for RejectAll {
    fn name(&self) -> &'static str {
        "RejectAll"
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilter> {
        Some(self)
    }
}

impl PreFilter for RejectAll {
    fn pre_filter(&self, _: &mut CycleState, _: &v1::Pod, _: &Snapshot) -> Status {
        Status::unresolvable("pod has unbound immediate PersistentVolumeClaims")
    }
}

#[test]
fn a_pre_filter_rejection_fails_every_node_and_is_reported_once() {
    let mut r = crate::plugins::in_tree_registry();
    r.register("RejectAll", |_| Ok(Arc::new(RejectAll)))
        .unwrap();
    let profile = Profile::new("x", &r, &["NodeName", "RejectAll"], &[]).unwrap();
    let err = schedule_one(&profile, &cluster(vec![]), &pod("p", &[])).unwrap_err();
    let err = err.fit().unwrap();
    assert_eq!(err.diagnosis.len(), 3);
    assert!(err.diagnosis.values().all(|s| s.plugin == "RejectAll"));
    assert_eq!(
        err.to_string(),
        "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    );
    let quiet = FitError {
        pre_filter_msg: String::new(),
        diagnosis: BTreeMap::new(),
        ..err.clone()
    };
    assert_eq!(quiet.to_string(), "0/3 nodes are available:");
}
