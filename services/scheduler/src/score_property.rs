//! Property test (bounded, fixed seeds) of the scoring fast path: random clusters (some nodes
//! with no cpu or memory allocatable, some overcommitted, some tainted PreferNoSchedule) and
//! random pods (some without requests, some with preferred node affinity or tolerations).
//! For every pod, against straightforward reference implementations written from upstream's
//! formulas:
//! - each score plugin's [`Score::score_all`] equals its per-node [`Score::score`];
//! - NodeResourcesFit (`LeastAllocated`, `MostAllocated`, weighted) and BalancedAllocation
//!   equal `leastResourceScorer` / `mostResourceScorer` / `balancedResourceScorer` computed
//!   from the nodes' `Resources` with vectors and no shortcuts;
//! - NodeResourcesFit's quick filter (`fits`) agrees with the full `insufficient_resources`;
//! - the framework's totals (with and without the per-plugin breakdown) equal a reference
//!   cycle: every plugin's PreScore, raw score per node, normalize over named scores, clamp,
//!   weight and sum, with a skipped plugin adding 0; and the chosen node is the first highest.
use std::sync::Arc;

use coxswain_api::v1;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::framework::{
    score_nodes_with, select_host, CycleState, NodeScore, Profile, Score, MAX_NODE_SCORE,
    MIN_NODE_SCORE,
};
use crate::plugins::node_resources_fit::NodeResourcesFit;
use crate::plugins::testutil::*;
use crate::snapshot::{pod_spec, NodeInfo, Resources, Snapshot};

const ZONE: &str = "topology.kubernetes.io/zone";

fn random_node(r: &mut StdRng, i: usize) -> v1::Node {
    let name = format!("n{i}");
    let zone = ["a", "b", "c"][r.random_range(0..3)];
    let mut alloc = vec![("pods".to_string(), r.random_range(1..=12).to_string())];
    // Now and then a node without cpu or memory allocatable (the resource leaves the average).
    if !r.random_bool(0.1) {
        alloc.push(("cpu".into(), format!("{}m", r.random_range(1..=8000))));
    }
    if !r.random_bool(0.1) {
        alloc.push(("memory".into(), format!("{}Mi", r.random_range(1..=16384))));
    }
    let kv: Vec<(&str, &str)> = alloc.iter().map(|(k, v)| (&**k, &**v)).collect();
    let mut n = with_alloc(
        node(&name, &[("kubernetes.io/hostname", &name), (ZONE, zone)]),
        &kv,
    );
    if r.random_bool(0.3) {
        let mut taints = vec![taint("soft", "", "PreferNoSchedule")];
        if r.random_bool(0.5) {
            taints.push(taint("spot", "yes", "PreferNoSchedule"));
        }
        n = with_taints(n, taints);
    }
    n
}

fn random_pod(r: &mut StdRng, i: usize) -> v1::Pod {
    let mut p = pod(&format!("p{i}"), &[("app", "x")]);
    let mut c = Vec::new();
    for _ in 0..r.random_range(1..=2) {
        let mut req = Vec::new();
        if r.random_bool(0.8) {
            req.push(("cpu", format!("{}m", r.random_range(0..=3000))));
        }
        if r.random_bool(0.8) {
            req.push(("memory", format!("{}Mi", r.random_range(0..=6000))));
        }
        let kv: Vec<(&str, &str)> = req.iter().map(|(k, v)| (*k, &**v)).collect();
        c.push(container(&kv));
    }
    spec(&mut p).containers = c;
    if r.random_bool(0.3) {
        spec(&mut p).tolerations = vec![v1::Toleration {
            key: "soft".into(),
            operator: "Exists".into(),
            effect: "PreferNoSchedule".into(),
            ..Default::default()
        }];
    }
    if r.random_bool(0.3) {
        affinity(&mut p).node_affinity = Some(v1::NodeAffinity {
            preferred_during_scheduling_ignored_during_execution: vec![
                v1::PreferredSchedulingTerm {
                    weight: r.random_range(1..=100),
                    preference: Some(v1::NodeSelectorTerm {
                        match_expressions: vec![req(ZONE, "In", &["a"])],
                        ..Default::default()
                    }),
                },
            ],
            ..Default::default()
        });
    }
    p
}

/// upstream's `leastRequestedScore` / `mostRequestedScore` and `leastResourceScorer` /
/// `mostResourceScorer`, over (requested, allocatable, weight) vectors.
fn reference_fit(most: bool, v: &[(i64, i64, i64)]) -> i64 {
    let (mut node_score, mut weight_sum) = (0, 0);
    for &(req, alloc, w) in v {
        if alloc == 0 {
            continue;
        }
        let s = if most {
            if req > alloc {
                MAX_NODE_SCORE
            } else {
                req * MAX_NODE_SCORE / alloc
            }
        } else if req > alloc {
            0
        } else {
            (alloc - req) * MAX_NODE_SCORE / alloc
        };
        node_score += s * w;
        weight_sum += w;
    }
    if weight_sum == 0 {
        0
    } else {
        node_score / weight_sum
    }
}

/// upstream's `balancedResourceScorer`, as written there.
fn reference_balanced(requested: &[i64], allocable: &[i64]) -> i64 {
    let mut fractions: Vec<f64> = Vec::new();
    let mut total = 0.0;
    for i in 0..requested.len() {
        if allocable[i] == 0 {
            continue;
        }
        let mut f = requested[i] as f64 / allocable[i] as f64;
        if f > 1.0 {
            f = 1.0;
        }
        total += f;
        fractions.push(f);
    }
    let mut std = 0.0;
    if fractions.len() == 2 {
        std = ((fractions[0] - fractions[1]) / 2.0).abs();
    } else if fractions.len() > 2 {
        let mean = total / fractions.len() as f64;
        let sum: f64 = fractions.iter().map(|f| (f - mean) * (f - mean)).sum();
        std = (sum / fractions.len() as f64).sqrt();
    }
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

/// A reference cycle's totals: PreScore, then per plugin the raw scores one node at a time,
/// normalize over named scores, clamp, weight, sum.
fn reference_totals(profile: &Profile, snap: &Snapshot, pod: &v1::Pod) -> Vec<i64> {
    let infos: Vec<&NodeInfo> = snap.nodes.iter().collect();
    let mut state = CycleState::new();
    let mut skipped = Vec::new();
    for (p, _) in &profile.scores {
        if let Some(ps) = p.as_pre_score() {
            skipped.push(ps.pre_score(&mut state, pod, snap, &infos).is_skip());
        } else {
            skipped.push(false);
        }
    }
    let mut totals = vec![0; infos.len()];
    for ((p, w), skip) in profile.scores.iter().zip(skipped) {
        let Some(sp) = p.as_score() else { continue };
        if skip {
            continue;
        }
        let mut scores: Vec<NodeScore> = infos
            .iter()
            .map(|ni| NodeScore {
                name: ni.name_arc(),
                score: sp.score(&state, pod, ni),
            })
            .collect();
        if let Some(ext) = sp.score_extensions() {
            ext.normalize(&state, pod, &mut scores);
        }
        for (t, s) in totals.iter_mut().zip(&scores) {
            *t += s.score.clamp(MIN_NODE_SCORE, MAX_NODE_SCORE) * w;
        }
    }
    totals
}

#[test]
fn fast_scoring_matches_the_reference_formulas() {
    let default = Profile::default_profile();
    let most = NodeResourcesFit::from_args(&serde_json::json!({
        "scoringStrategy": {"type": "MostAllocated", "resources": [
            {"name": "cpu", "weight": 3}, {"name": "memory", "weight": 2}]}
    }))
    .unwrap();
    let weighted = NodeResourcesFit::from_args(&serde_json::json!({
        "scoringStrategy": {"type": "LeastAllocated", "resources": [
            {"name": "cpu", "weight": 5}, {"name": "memory", "weight": 1}]}
    }))
    .unwrap();
    let mut checked_nodes = 0;
    for seed in 0..60u64 {
        let mut r = StdRng::seed_from_u64(seed);
        let nodes: Vec<v1::Node> = (0..r.random_range(2..=20))
            .map(|i| random_node(&mut r, i))
            .collect();
        let names: Vec<String> = (0..nodes.len()).map(|i| format!("n{i}")).collect();
        let mut snap = Snapshot::new(nodes.into_iter().map(Arc::new), std::iter::empty());
        // Existing pods, placed anywhere (overcommitting some nodes).
        for i in 0..r.random_range(0..=40) {
            let n = &names[r.random_range(0..names.len())];
            assert!(snap.add_pod(Arc::new(on(random_pod(&mut r, 1000 + i), n))));
        }
        let all: Vec<usize> = (0..snap.len()).collect();
        let infos: Vec<&NodeInfo> = snap.nodes.iter().collect();
        for i in 0..10 {
            let p = random_pod(&mut r, i);
            // Each plugin's batch equals its per-node score.
            let mut state = CycleState::new();
            for (pl, _) in &default.scores {
                if let Some(ps) = pl.as_pre_score() {
                    ps.pre_score(&mut state, &p, &snap, &infos);
                }
            }
            for (pl, _) in &default.scores {
                let Some(sp) = pl.as_score() else { continue };
                let one: Vec<i64> = infos.iter().map(|n| sp.score(&state, &p, n)).collect();
                let mut all_at_once = vec![-1; infos.len()];
                sp.score_all(&state, &p, &infos, &mut all_at_once);
                assert_eq!(one, all_at_once, "seed {seed} pod {i}: {}", pl.name());
            }
            // The resource formulas, from the nodes' Resources.
            let nz = Resources::non_zero_for_pod(pod_spec(&p));
            let actual = Resources::for_pod(pod_spec(&p));
            let fit = NodeResourcesFit::default();
            let balanced = crate::plugins::balanced_allocation::BalancedAllocation;
            for (plugin, is_most, wc, wm) in [
                (&fit, false, 1, 1),
                (&most, true, 3, 2),
                (&weighted, false, 5, 1),
            ] {
                let mut st = CycleState::new();
                crate::framework::PreScore::pre_score(plugin, &mut st, &p, &snap, &infos);
                let mut got = vec![-1; infos.len()];
                plugin.score_all(&st, &p, &infos, &mut got);
                for (ni, g) in infos.iter().zip(&got) {
                    let want = reference_fit(
                        is_most,
                        &[
                            (
                                ni.non_zero_requested.milli_cpu + nz.milli_cpu,
                                ni.allocatable.milli_cpu,
                                wc,
                            ),
                            (
                                ni.non_zero_requested.memory + nz.memory,
                                ni.allocatable.memory,
                                wm,
                            ),
                        ],
                    );
                    assert_eq!(*g, want, "seed {seed} pod {i} {}", ni.name());
                    assert_eq!(plugin.score(&st, &p, ni), want);
                }
            }
            if actual.milli_cpu != 0 || actual.memory != 0 {
                let mut st = CycleState::new();
                crate::framework::PreScore::pre_score(&balanced, &mut st, &p, &snap, &infos);
                let mut got = vec![-1; infos.len()];
                balanced.score_all(&st, &p, &infos, &mut got);
                for (ni, g) in infos.iter().zip(&got) {
                    let want = reference_balanced(
                        &[
                            ni.requested.milli_cpu + actual.milli_cpu,
                            ni.requested.memory + actual.memory,
                        ],
                        &[ni.allocatable.milli_cpu, ni.allocatable.memory],
                    );
                    assert_eq!(*g, want, "seed {seed} pod {i} {}", ni.name());
                }
            }
            // NodeResourcesFit's quick filter answers as the full check.
            for ni in &infos {
                assert_eq!(
                    crate::plugins::node_resources_fit::fits(&actual, ni),
                    crate::plugins::node_resources_fit::insufficient_resources(&actual, ni)
                        .is_empty(),
                    "seed {seed} pod {i} {}",
                    ni.name()
                );
            }
            // The framework's totals and choice against the reference cycle.
            let want = reference_totals(&default, &snap, &p);
            for breakdown in [false, true] {
                let got =
                    score_nodes_with(&default, &mut CycleState::new(), &p, &snap, &all, breakdown);
                let totals: Vec<i64> = got.iter().map(|s| s.total).collect();
                assert_eq!(totals, want, "seed {seed} pod {i} breakdown {breakdown}");
                let names: Vec<&str> = got.iter().map(|s| &*s.node).collect();
                let node_names: Vec<&str> = infos.iter().map(|n| n.name()).collect();
                assert_eq!(names, node_names);
                if breakdown {
                    for s in &got {
                        assert_eq!(s.plugins.len(), default.scores.len());
                        assert_eq!(s.plugins.iter().map(|p| p.weighted).sum::<i64>(), s.total);
                    }
                }
                let best = want.iter().max().unwrap();
                assert_eq!(want[select_host(&got)], *best);
            }
            // The loop's path: the totals alone, and the same choice.
            let totals = crate::framework::score_totals_observed(
                &default,
                &mut CycleState::new(),
                &p,
                &snap,
                &all,
                &mut crate::metrics::Observer::off(),
            );
            assert_eq!(totals, want, "seed {seed} pod {i} totals only");
            let best = want.iter().max().unwrap();
            assert_eq!(want[crate::framework::select_best(&totals)], *best);
            checked_nodes += infos.len();
        }
    }
    assert!(checked_nodes > 3000, "{checked_nodes}");
}
