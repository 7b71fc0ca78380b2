//! The walking reference for InterPodAffinity's counts (every pod of every node, every term
//! matched from scratch, no memo, no index), and a property test: after random pod and node
//! changes, [`pre_filter_counts`] and [`InterPodAffinity::pre_score_counts`] (from the
//! snapshot's incremental index) equal the walk, entry for entry.
use std::sync::Arc;

use coxswain_api::v1;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::plugins::testutil::*;

fn walk_pre_filter(t: &Terms, pod: &v1::Pod, snapshot: &Snapshot) -> (Counts, Counts, Counts) {
    let (mut aff, mut anti, mut existing_anti) =
        (Counts::default(), Counts::default(), Counts::default());
    for node in &snapshot.nodes {
        for (_, et) in &node.affinity {
            for term in &et.value.required_anti {
                if term.matches(pod, Some(snapshot)) {
                    existing_anti.add_for(node, term.topology_key_id, 1);
                }
            }
        }
        if t.required_affinity.is_empty() && t.required_anti.is_empty() {
            continue;
        }
        for existing in &node.pods {
            if matches_all(&t.required_affinity, existing, Some(snapshot)) {
                for term in &t.required_affinity {
                    aff.add_for(node, term.topology_key_id, 1);
                }
            }
            for term in &t.required_anti {
                if term.matches(existing, Some(snapshot)) {
                    anti.add_for(node, term.topology_key_id, 1);
                }
            }
        }
    }
    (aff, anti, existing_anti)
}

fn walk_pre_score(
    pl: &InterPodAffinity,
    t: &Terms,
    pod: &v1::Pod,
    snapshot: &Snapshot,
) -> Option<DomainCounts> {
    let mut scores = DomainCounts::default();
    let mut any = false;
    let has_constraints = !t.preferred_affinity.is_empty() || !t.preferred_anti.is_empty();
    for node in &snapshot.nodes {
        if has_constraints {
            for existing in &node.pods {
                any = true;
                for term in &t.preferred_affinity {
                    if term.matches(existing, Some(snapshot)) {
                        scores.add_for(node, term.topology_key_id, term.weight);
                    }
                }
                for term in &t.preferred_anti {
                    if term.matches(existing, Some(snapshot)) {
                        scores.add_for(node, term.topology_key_id, -term.weight);
                    }
                }
            }
        }
        for (_, et) in &node.affinity {
            any = true;
            let e = &et.value;
            if pl.hard_pod_affinity_weight > 0 {
                for term in &e.required_affinity {
                    if term.matches(pod, Some(snapshot)) {
                        scores.add_for(node, term.topology_key_id, pl.hard_pod_affinity_weight);
                    }
                }
            }
            for term in &e.preferred_affinity {
                if term.matches(pod, Some(snapshot)) {
                    scores.add_for(node, term.topology_key_id, term.weight);
                }
            }
            for term in &e.preferred_anti {
                if term.matches(pod, Some(snapshot)) {
                    scores.add_for(node, term.topology_key_id, -term.weight);
                }
            }
        }
    }
    any.then_some(scores)
}

const HOST: &str = "kubernetes.io/hostname";
const ZONE: &str = "topology.kubernetes.io/zone";
const GROUPS: &[&str] = &["g0", "g1", "g2"];

fn random_node(r: &mut StdRng, i: usize) -> v1::Node {
    let name = format!("n{i}");
    let zone = format!("z{}", r.random_range(0..3));
    if r.random_bool(0.1) {
        // No zone label: a term on the zone never counts here.
        return node(&name, &[(HOST, &name)]);
    }
    node(&name, &[(HOST, &name), (ZONE, &zone)])
}

fn random_term(r: &mut StdRng) -> v1::PodAffinityTerm {
    let g = GROUPS[r.random_range(0..GROUPS.len())];
    let mut t = pod_term(&[("group", g)], [HOST, ZONE][r.random_range(0..2)]);
    if r.random_bool(0.2) {
        t.namespaces = vec!["other".into()];
    }
    if r.random_bool(0.1) {
        t.namespace_selector = Some(v1::LabelSelector::default());
    }
    t
}

fn random_pod(r: &mut StdRng, i: usize) -> v1::Pod {
    let g = GROUPS[r.random_range(0..GROUPS.len())];
    let mut p = pod(&format!("p{i}"), &[("group", g)]);
    if r.random_bool(0.2) {
        p.metadata.as_mut().unwrap().namespace = "other".into();
    }
    let pick = |r: &mut StdRng, prob: f64| -> Vec<v1::PodAffinityTerm> {
        let mut v = Vec::new();
        for _ in 0..r.random_range(1..=2) {
            if r.random_bool(prob) {
                v.push(random_term(r));
            }
        }
        v
    };
    let weighted = |r: &mut StdRng, prob: f64| -> Vec<v1::WeightedPodAffinityTerm> {
        pick(r, prob)
            .into_iter()
            .map(|t| v1::WeightedPodAffinityTerm {
                weight: r.random_range(1..=100),
                pod_affinity_term: Some(t),
            })
            .collect()
    };
    let (ra, rn, pa, pn) = (
        pick(r, 0.2),
        pick(r, 0.3),
        weighted(r, 0.2),
        weighted(r, 0.2),
    );
    if !ra.is_empty() || !pa.is_empty() {
        affinity(&mut p).pod_affinity = Some(v1::PodAffinity {
            required_during_scheduling_ignored_during_execution: ra,
            preferred_during_scheduling_ignored_during_execution: pa,
        });
    }
    if !rn.is_empty() || !pn.is_empty() {
        affinity(&mut p).pod_anti_affinity = Some(v1::PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: rn,
            preferred_during_scheduling_ignored_during_execution: pn,
        });
    }
    p
}

fn same(a: &DomainCounts, b: &DomainCounts, what: &str, seed: u64, step: usize) {
    assert_eq!(
        a.canonical(),
        b.canonical(),
        "seed {seed} step {step}: {what}"
    );
}

#[test]
fn indexed_counts_equal_the_walk_after_random_changes() {
    let pl = InterPodAffinity::default();
    let mut compared = 0;
    for seed in 0..30u64 {
        let mut r = StdRng::seed_from_u64(seed);
        let n = r.random_range(1..=8);
        let mut snap = Snapshot::new((0..n).map(|i| Arc::new(random_node(&mut r, i))), []);
        snap.namespace_labels
            .insert("other".into(), labels(&[("team", "x")]));
        let mut placed: Vec<v1::Pod> = Vec::new();
        let mut next_node = n;
        for step in 0..120 {
            match r.random_range(0..10) {
                0..=5 if !snap.is_empty() => {
                    let node = snap.nodes[r.random_range(0..snap.len())].name().to_string();
                    let p = on(random_pod(&mut r, step), &node);
                    assert!(snap.add_pod(Arc::new(p.clone())));
                    placed.push(p);
                }
                6 if !placed.is_empty() => {
                    let p = placed.swap_remove(r.random_range(0..placed.len()));
                    snap.remove_pod(&p);
                }
                7 if snap.len() > 1 => {
                    // A node goes away with its pods.
                    let name = snap.nodes[r.random_range(0..snap.len())].name().to_string();
                    snap.remove_node(&name);
                    placed.retain(|p| p.spec.as_ref().unwrap().node_name != name);
                }
                8 if !snap.is_empty() => {
                    // A node's labels change (its pods stay).
                    let i = r.random_range(0..snap.len());
                    let name = snap.nodes[i].name().to_string();
                    let zone = format!("z{}", r.random_range(0..3));
                    snap.upsert_node(Arc::new(node(&name, &[(HOST, &name), (ZONE, &zone)])));
                }
                _ => {
                    snap.upsert_node(Arc::new(random_node(&mut r, next_node)));
                    next_node += 1;
                }
            }
            let on_nodes: usize = snap.nodes.iter().map(|n| n.pods.len()).sum();
            assert_eq!(snap.affinity_index().pod_count(), on_nodes, "seed {seed}");
            assert_eq!(on_nodes, placed.len(), "seed {seed} step {step}");
            for k in 0..3 {
                let p = random_pod(&mut r, 10_000 + k);
                let t = terms(&p);
                let (a, b, c) = pre_filter_counts(&t, &p, &snap);
                let (wa, wb, wc) = walk_pre_filter(&t, &p, &snap);
                same(&a, &wa, "affinity counts", seed, step);
                same(&b, &wb, "anti-affinity counts", seed, step);
                same(&c, &wc, "existing anti-affinity counts", seed, step);
                let s = pl.pre_score_counts(&t, &p, &snap);
                let ws = walk_pre_score(&pl, &t, &p, &snap);
                assert_eq!(s.is_some(), ws.is_some(), "seed {seed} step {step}: skip");
                if let (Some(s), Some(ws)) = (&s, &ws) {
                    same(s, ws, "scores", seed, step);
                }
                compared += 1;
            }
        }
    }
    assert!(compared >= 10_000, "{compared}");
}
