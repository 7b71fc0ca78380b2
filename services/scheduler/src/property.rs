//! Property test (bounded, fixed seeds): random clusters and random pods with every kind of
//! constraint, scheduled one after another with assume. For every pod placed:
//! - every enabled Filter plugin, re-run from scratch (fresh PreFilter state) against the
//!   snapshot the pod was placed in, passes on the chosen node;
//! - Explain (which runs every filter on every node) agrees the node is feasible;
//! - independent checks hold: requests within allocatable, pod count, no host-port clash,
//!   untolerated NoSchedule/NoExecute taints absent, nodeSelector matched.
//!
//! And at the end, no two placed pods violate a required anti-affinity in either direction.
//! A pod the cycle rejects must be rejected by Explain too (no node feasible).
use std::collections::BTreeMap;
use std::sync::Arc;

use coxswain_api::selector::LabelSelector;
use coxswain_api::v1;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::explain::explain;
use crate::framework::{schedule_one_at, CycleState, Profile, ScheduleError};
use crate::plugins::taint_toleration::first_untolerated;
use crate::plugins::testutil::*;
use crate::snapshot::{pod_spec, HostPort, Resources, Snapshot};

const ZONES: &[&str] = &["a", "b", "c"];
const APPS: &[&str] = &["web", "db", "cache"];
const HOST: &str = "kubernetes.io/hostname";
const ZONE: &str = "topology.kubernetes.io/zone";

fn pick<'a>(r: &mut StdRng, xs: &[&'a str]) -> &'a str {
    xs[r.random_range(0..xs.len())]
}

fn random_node(r: &mut StdRng, i: usize) -> v1::Node {
    let name = format!("n{i}");
    let zone = pick(r, ZONES);
    let disk = pick(r, &["ssd", "hdd"]);
    let mut n = node(&name, &[(HOST, &name), (ZONE, zone), ("disk", disk)]);
    n = with_alloc(
        n,
        &[
            ("cpu", &format!("{}", r.random_range(1..=4))),
            ("memory", &format!("{}Gi", r.random_range(1..=8))),
            ("pods", &format!("{}", r.random_range(2..=8))),
        ],
    );
    let mut taints = vec![];
    if r.random_bool(0.2) {
        taints.push(taint("dedicated", pick(r, APPS), "NoSchedule"));
    }
    if r.random_bool(0.1) {
        taints.push(taint("maint", "", "NoExecute"));
    }
    if r.random_bool(0.2) {
        taints.push(taint("soft", "", "PreferNoSchedule"));
    }
    n = with_taints(n, taints);
    n.spec.as_mut().unwrap().unschedulable = r.random_bool(0.05);
    n
}

fn random_pod(r: &mut StdRng, i: usize) -> v1::Pod {
    let app = pick(r, APPS);
    let mut p = pod(&format!("p{i}"), &[("app", app)]);
    let cpu = format!("{}m", r.random_range(0..=1500));
    let mem = format!("{}Mi", r.random_range(0..=2048));
    spec(&mut p).containers = vec![container(&[("cpu", &cpu), ("memory", &mem)])];
    if r.random_bool(0.15) {
        spec(&mut p).containers[0].ports = vec![v1::ContainerPort {
            host_port: *[80, 443].get(r.random_range(0..2)).unwrap(),
            container_port: 80,
            ..Default::default()
        }];
    }
    if r.random_bool(0.2) {
        spec(&mut p).node_selector = labels(&[("disk", pick(r, &["ssd", "hdd"]))]);
    }
    if r.random_bool(0.2) {
        let op = pick(r, &["In", "NotIn", "Exists", "DoesNotExist"]);
        let values: Vec<&str> = if matches!(op, "In" | "NotIn") {
            vec![pick(r, ZONES)]
        } else {
            vec![]
        };
        affinity(&mut p).node_affinity = Some(v1::NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(v1::NodeSelector {
                node_selector_terms: vec![v1::NodeSelectorTerm {
                    match_expressions: vec![req(ZONE, op, &values)],
                    ..Default::default()
                }],
            }),
            ..Default::default()
        });
    }
    if r.random_bool(0.3) {
        spec(&mut p).tolerations = vec![v1::Toleration {
            key: "dedicated".into(),
            operator: "Equal".into(),
            value: app.into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        }];
    }
    if r.random_bool(0.25) {
        let key = pick(r, &[HOST, ZONE]);
        affinity(&mut p).pod_anti_affinity = Some(v1::PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: vec![pod_term(
                &[("app", pick(r, APPS))],
                key,
            )],
            ..Default::default()
        });
    }
    if r.random_bool(0.15) {
        affinity(&mut p).pod_affinity = Some(v1::PodAffinity {
            required_during_scheduling_ignored_during_execution: vec![pod_term(
                &[("app", pick(r, APPS))],
                pick(r, &[HOST, ZONE]),
            )],
            ..Default::default()
        });
    }
    if r.random_bool(0.15) {
        spec(&mut p).topology_spread_constraints = vec![v1::TopologySpreadConstraint {
            max_skew: 1,
            topology_key: ZONE.into(),
            when_unsatisfiable: "DoNotSchedule".into(),
            label_selector: Some(selector(&[("app", app)])),
            ..Default::default()
        }];
    }
    p
}

/// Every filter plugin of the profile, from scratch, on one node.
fn passes_every_filter(profile: &Profile, snap: &Snapshot, pod: &v1::Pod, node: &str) -> bool {
    let mut state = CycleState::new();
    for pl in &profile.filters {
        if let Some(pf) = pl.as_pre_filter() {
            let s = pf.pre_filter(&mut state, pod, snap);
            if s.is_skip() {
                state.skip_filter.insert(pl.name());
            } else if !s.is_success() {
                return false;
            }
        }
    }
    let ni = snap.get(node).expect("chosen node exists");
    profile.filters.iter().all(|pl| {
        state.skip_filter.contains(pl.name())
            || pl
                .as_filter()
                .is_none_or(|f| f.filter(&state, pod, ni).is_success())
    })
}

fn independent_checks(snap: &Snapshot, pod: &v1::Pod, node: &str) {
    let ni = snap.get(node).unwrap();
    let want = Resources::for_pod(pod_spec(pod));
    assert!(ni.requested.milli_cpu + want.milli_cpu <= ni.allocatable.milli_cpu);
    assert!(ni.requested.memory + want.memory <= ni.allocatable.memory);
    assert!((ni.pods.len() as i64) < ni.allocatable.allowed_pods);
    for hp in HostPort::for_pod(pod_spec(pod)) {
        assert!(!ni.used_ports.iter().any(|u| u.conflicts(&hp)));
    }
    let taints = &ni.node.spec.as_ref().unwrap().taints;
    assert!(first_untolerated(
        taints,
        &pod_spec(pod).tolerations,
        &["NoSchedule", "NoExecute"]
    )
    .is_none());
    for (k, v) in &pod_spec(pod).node_selector {
        assert_eq!(ni.labels().get(k), Some(v));
    }
    assert!(!ni.node.spec.as_ref().unwrap().unschedulable);
}

fn anti_affinity_holds(snap: &Snapshot) {
    let placed: Vec<(&v1::Pod, &BTreeMap<String, String>)> = snap
        .nodes
        .iter()
        .flat_map(|ni| ni.pods.iter().map(move |p| (&**p, ni.labels())))
        .collect();
    for (p, pl) in &placed {
        let Some(anti) = pod_spec(p)
            .affinity
            .as_ref()
            .and_then(|a| a.pod_anti_affinity.as_ref())
        else {
            continue;
        };
        for term in &anti.required_during_scheduling_ignored_during_execution {
            let sel = LabelSelector::from_proto(term.label_selector.as_ref()).unwrap();
            for (q, ql) in &placed {
                if std::ptr::eq(*p, *q) {
                    continue;
                }
                let same = pl.get(&term.topology_key).is_some()
                    && pl.get(&term.topology_key) == ql.get(&term.topology_key);
                let matches = sel.matches(&q.metadata.as_ref().unwrap().labels);
                assert!(
                    !(same && matches),
                    "{:?} and {:?} share {} against anti-affinity",
                    p.metadata.as_ref().unwrap().name,
                    q.metadata.as_ref().unwrap().name,
                    term.topology_key
                );
            }
        }
    }
}

#[test]
fn every_bound_pod_passed_every_filter_in_the_snapshot_it_was_bound_in() {
    let profile = Profile::default_profile();
    let (mut placed, mut rejected) = (0, 0);
    for seed in 0..40u64 {
        let mut r = StdRng::seed_from_u64(seed);
        let nodes: Vec<v1::Node> = (0..r.random_range(1..=12))
            .map(|i| random_node(&mut r, i))
            .collect();
        let mut snap = Snapshot::new(nodes.into_iter().map(Arc::new), std::iter::empty());
        let mut next = 0;
        for i in 0..r.random_range(10..=60) {
            let p = random_pod(&mut r, i);
            match schedule_one_at(&profile, &snap, &p, &mut next) {
                Ok(res) => {
                    assert!(
                        passes_every_filter(&profile, &snap, &p, &res.node),
                        "seed {seed} pod {i} on {}",
                        res.node
                    );
                    let e = explain(&profile, &snap, &p);
                    assert!(
                        e.nodes.iter().any(|n| n.node == res.node && n.feasible),
                        "seed {seed} pod {i}: explain disagrees"
                    );
                    independent_checks(&snap, &p, &res.node);
                    assert!(snap.assume(&p, &res.node));
                    placed += 1;
                }
                Err(ScheduleError::Unschedulable(_)) => {
                    let e = explain(&profile, &snap, &p);
                    assert!(
                        e.chosen.is_none(),
                        "seed {seed} pod {i}: explain found {:?}",
                        e.chosen
                    );
                    rejected += 1;
                }
                Err(ScheduleError::Error(e)) => panic!("seed {seed} pod {i}: {e}"),
            }
        }
        anti_affinity_holds(&snap);
    }
    // The generator exercises both outcomes.
    assert!(
        placed > 300 && rejected > 50,
        "placed {placed} rejected {rejected}"
    );
}

/// Every filter's fast path (`Filter::rejection`, which the cycle calls on the nodes it does not
/// time) agrees with its status (None exactly when `filter` returns Success, else the same
/// status) on every node, for random pods in random clusters filling up as pods are assumed;
/// each plugin that overrides it both passes and rejects some nodes. (Those plugins answer
/// `filter` from `rejection`, so for them this guards the contract; their logic is checked by
/// their tables and by the property test above.)
#[test]
fn every_filter_s_fast_verdict_agrees_with_its_status() {
    let profile = Profile::default_profile();
    let mut verdicts: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    for seed in 0..40u64 {
        let mut r = StdRng::seed_from_u64(1000 + seed);
        let nodes: Vec<v1::Node> = (0..r.random_range(1..=12))
            .map(|i| random_node(&mut r, i))
            .collect();
        let mut snap = Snapshot::new(nodes.into_iter().map(Arc::new), std::iter::empty());
        let mut next = 0;
        for i in 0..r.random_range(10..=60) {
            let mut p = random_pod(&mut r, i);
            if r.random_bool(0.1) {
                let n = r.random_range(0..snap.nodes.len() + 1);
                spec(&mut p).node_name = format!("n{n}");
            }
            let mut state = CycleState::new();
            for pl in &profile.filters {
                if let Some(pf) = pl.as_pre_filter() {
                    if pf.pre_filter(&mut state, &p, &snap).is_skip() {
                        state.skip_filter.insert(pl.name());
                    }
                }
            }
            for pl in &profile.filters {
                let Some(f) = pl.as_filter() else { continue };
                if state.skip_filter.contains(pl.name()) {
                    continue;
                }
                for ni in &snap.nodes {
                    let fast = f.rejection(&state, &p, ni);
                    let status = f.filter(&state, &p, ni);
                    assert_eq!(
                        fast,
                        (!status.is_success()).then(|| status.clone()),
                        "seed {seed} pod {i} {} on {}",
                        pl.name(),
                        ni.name()
                    );
                    let v = verdicts.entry(pl.name()).or_default();
                    if fast.is_none() {
                        v.0 += 1;
                    } else {
                        v.1 += 1;
                    }
                }
            }
            if let Ok(res) = schedule_one_at(&profile, &snap, &p, &mut next) {
                snap.assume(&p, &res.node);
            }
        }
    }
    for name in [
        crate::plugins::node_unschedulable::NAME,
        crate::plugins::node_name::NAME,
        crate::plugins::taint_toleration::NAME,
        crate::plugins::node_ports::NAME,
        crate::plugins::node_resources_fit::NAME,
    ] {
        let (pass, reject) = verdicts.get(name).copied().unwrap_or_default();
        assert!(
            pass > 0 && reject > 0,
            "{name}: {pass} passed, {reject} rejected"
        );
    }
}

/// A node's summed requests (kept by adding each pod's requests when it comes and subtracting
/// the same amounts, remembered, when it goes) equal the sum over the pods it holds, after
/// random assumes and removals.
#[test]
fn node_request_sums_match_their_pods_after_random_adds_and_removes() {
    for seed in 0..30u64 {
        let mut r = StdRng::seed_from_u64(2000 + seed);
        let nodes: Vec<v1::Node> = (0..r.random_range(1..=6))
            .map(|i| random_node(&mut r, i))
            .collect();
        let mut snap = Snapshot::new(nodes.into_iter().map(Arc::new), std::iter::empty());
        let mut placed: Vec<v1::Pod> = Vec::new();
        for i in 0..120 {
            if !placed.is_empty() && r.random_bool(0.4) {
                let p = placed.swap_remove(r.random_range(0..placed.len()));
                assert!(snap.remove_pod(&p), "seed {seed} step {i}");
            } else {
                let mut p = random_pod(&mut r, i);
                if r.random_bool(0.2) {
                    spec(&mut p).containers[0].resources = None;
                }
                let node = format!("n{}", r.random_range(0..snap.nodes.len()));
                assert!(snap.assume(&p, &node));
                spec(&mut p).node_name = node;
                placed.push(p);
            }
            for ni in &snap.nodes {
                let (mut want, mut want_non_zero) = (Resources::default(), Resources::default());
                for p in &ni.pods {
                    want.add(&Resources::for_pod(pod_spec(p)));
                    want_non_zero.add(&Resources::non_zero_for_pod(pod_spec(p)));
                }
                assert_eq!(ni.requested, want, "seed {seed} step {i} {}", ni.name());
                assert_eq!(ni.non_zero_requested, want_non_zero, "seed {seed} step {i}");
            }
        }
    }
}
