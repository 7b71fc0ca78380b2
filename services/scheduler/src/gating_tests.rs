//! The filter loop's skipping through [`Filter::candidates`] (NodeAffinity's node sets from the
//! label index) changes nothing observable: bounded random clusters and pods (fixed seeds),
//! each scheduled by the default profile and by the same profile with the candidate sets
//! hidden, must give the same feasible nodes, the same number evaluated, the same next start
//! index, the same rejected nodes with the same statuses, and, when no node fits, the same
//! unschedulable plugins. NodeAffinity's set must also equal its per-node verdicts, while the
//! snapshot's nodes come, change labels and go.
use std::sync::Arc;

use coxswain_api::v1;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::framework::{
    find_feasible, ClusterEvent, CycleState, Filter, Plugin, PreFilter, Profile, Status,
};
use crate::plugins::node_affinity::NodeAffinity;
use crate::plugins::testutil::*;
use crate::snapshot::{NodeInfo, Snapshot};

const KEYS: &[&str] = &["zone", "disk", "gen", "team"];
const VALUES: &[&str] = &["a", "b", "c", "1", "7", "12"];

fn pick<'a>(r: &mut StdRng, xs: &[&'a str]) -> &'a str {
    xs[r.random_range(0..xs.len())]
}

fn random_node(r: &mut StdRng, i: usize) -> v1::Node {
    let name = format!("n{i}");
    let mut kv = vec![("kubernetes.io/hostname".to_string(), name.clone())];
    for k in KEYS {
        if r.random_bool(0.7) {
            kv.push((k.to_string(), pick(r, VALUES).to_string()));
        }
    }
    let kv: Vec<(&str, &str)> = kv.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut n = with_alloc(
        node(&name, &kv),
        &[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")],
    );
    if r.random_bool(0.2) {
        n = with_taints(n, vec![taint("dedicated", "x", "NoSchedule")]);
    }
    n.spec.as_mut().unwrap().unschedulable = r.random_bool(0.1);
    n
}

fn random_req(r: &mut StdRng) -> v1::NodeSelectorRequirement {
    let key = pick(r, &["zone", "disk", "gen", "team", "absent"]);
    let op = pick(
        r,
        &["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "Bogus"],
    );
    let values: Vec<&str> = match op {
        "In" | "NotIn" => (0..r.random_range(0..3)).map(|_| pick(r, VALUES)).collect(),
        "Gt" | "Lt" => vec![pick(r, &["1", "7", "x"])],
        _ if r.random_bool(0.1) => vec!["a"],
        _ => vec![],
    };
    req(key, op, &values)
}

fn random_pod(r: &mut StdRng, i: usize, nodes: usize) -> v1::Pod {
    let mut p = pod(&format!("p{i}"), &[]);
    spec(&mut p).containers = vec![container(&[("cpu", "100m"), ("memory", "100Mi")])];
    if r.random_bool(0.3) {
        spec(&mut p).node_selector = labels(&[(pick(r, KEYS), pick(r, VALUES))]);
    }
    if r.random_bool(0.8) {
        let terms = (0..r.random_range(0..3))
            .map(|_| v1::NodeSelectorTerm {
                match_expressions: (0..r.random_range(0..3)).map(|_| random_req(r)).collect(),
                match_fields: if r.random_bool(0.15) {
                    let name = format!("n{}", r.random_range(0..nodes + 2));
                    vec![req("metadata.name", pick(r, &["In", "NotIn"]), &[&name])]
                } else {
                    vec![]
                },
            })
            .collect();
        affinity(&mut p).node_affinity = Some(v1::NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(v1::NodeSelector {
                node_selector_terms: terms,
            }),
            ..Default::default()
        });
    }
    if r.random_bool(0.3) {
        spec(&mut p).tolerations = vec![v1::Toleration {
            key: "dedicated".into(),
            operator: "Exists".into(),
            ..Default::default()
        }];
    }
    p
}

/// A plugin as it is, except that its Filter names no candidate set.
struct Hidden(Arc<dyn Plugin>);

impl Plugin for Hidden {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn events(&self) -> &'static [ClusterEvent] {
        self.0.events()
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilter> {
        self.0.as_pre_filter()
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        self.0.as_filter().map(|_| self as &dyn Filter)
    }
}

impl Filter for Hidden {
    fn filter(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Status {
        self.0
            .as_filter()
            .expect("a filter")
            .filter(state, pod, node)
    }
}

fn hidden(p: &Profile) -> Profile {
    Profile {
        scheduler_name: p.scheduler_name.clone(),
        filters: p
            .filters
            .iter()
            .map(|f| Arc::new(Hidden(f.clone())) as Arc<dyn Plugin>)
            .collect(),
        post_filters: p.post_filters.clone(),
        scores: p.scores.clone(),
        percentage_of_nodes_to_score: p.percentage_of_nodes_to_score,
        extenders: p.extenders.clone(),
    }
}

#[test]
fn skipping_through_candidate_sets_changes_nothing() {
    let mut compared = (0, 0);
    for seed in 0..12u64 {
        let mut r = StdRng::seed_from_u64(seed);
        let n = [40, 130, 260][seed as usize % 3];
        let mut snap: Snapshot = snapshot((0..n).map(|i| random_node(&mut r, i)).collect(), vec![]);
        let mut gated = Profile::default_profile();
        gated.percentage_of_nodes_to_score =
            [None, Some(5), Some(50), Some(100)][seed as usize % 4];
        let plain = hidden(&gated);
        let (mut s1, mut s2) = (0, 0);
        for i in 0..60 {
            let p = random_pod(&mut r, i, n);
            let a = find_feasible(&gated, &snap, &p, &mut s1);
            let b = find_feasible(&plain, &snap, &p, &mut s2);
            assert_eq!(s1, s2, "seed {seed} pod {i}: next start");
            let (a, b) = match (a, b) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(a), Err(b)) => {
                    assert_eq!(format!("{a:?}"), format!("{b:?}"), "seed {seed} pod {i}");
                    continue;
                }
                (a, b) => panic!("seed {seed} pod {i}: {:?} vs {:?}", a.is_ok(), b.is_ok()),
            };
            assert_eq!(a.feasible, b.feasible, "seed {seed} pod {i}: feasible");
            assert_eq!(a.evaluated, b.evaluated, "seed {seed} pod {i}: evaluated");
            assert_eq!(
                a.rejected(&gated, &p, &snap),
                b.rejected(&plain, &p, &snap),
                "seed {seed} pod {i}: rejected nodes"
            );
            if a.feasible.is_empty() {
                compared.1 += 1;
                assert_eq!(
                    a.fit_error.unschedulable_plugins, b.fit_error.unschedulable_plugins,
                    "seed {seed} pod {i}: unschedulable plugins"
                );
            } else {
                compared.0 += 1;
                let node = snap.nodes[a.feasible[0]].name().to_string();
                snap.assume(&p, &node);
            }
            // Nodes change under the index now and then.
            if r.random_bool(0.1) {
                let j = r.random_range(0..n + 5);
                if r.random_bool(0.5) {
                    snap.remove_node(&format!("n{j}"));
                } else {
                    snap.upsert_node(Arc::new(random_node(&mut r, j)));
                }
            }
        }
    }
    assert!(compared.0 > 100 && compared.1 > 50, "{compared:?}");
}

#[test]
fn node_affinity_sets_equal_its_verdicts() {
    let mut sets = 0;
    for seed in 0..20u64 {
        let mut r = StdRng::seed_from_u64(100 + seed);
        let n = 70;
        let mut snap: Snapshot = snapshot((0..n).map(|i| random_node(&mut r, i)).collect(), vec![]);
        let plugin = NodeAffinity::default();
        for i in 0..40 {
            for _ in 0..3 {
                let j = r.random_range(0..n + 10);
                match r.random_range(0..3) {
                    0 => {
                        snap.remove_node(&format!("n{j}"));
                    }
                    _ => {
                        snap.upsert_node(Arc::new(random_node(&mut r, j)));
                    }
                }
            }
            let p = random_pod(&mut r, i, n);
            let mut state = CycleState::new();
            if plugin.pre_filter(&mut state, &p, &snap).code != crate::framework::Code::Success {
                continue;
            }
            let Some(set) = plugin.candidates(&state) else {
                continue;
            };
            sets += 1;
            assert_eq!(set.len(), snap.len());
            for (k, ni) in snap.nodes.iter().enumerate() {
                assert_eq!(
                    set.contains(k),
                    plugin.filter(&state, &p, ni).is_success(),
                    "seed {seed} pod {i} node {}",
                    ni.name()
                );
            }
        }
    }
    assert!(sets > 300, "{sets}");
}
