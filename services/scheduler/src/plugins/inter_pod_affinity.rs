//! InterPodAffinity: required pod affinity and anti-affinity by topology domain (filter), and
//! preferred terms (score), as kube-scheduler's plugin.
//!
//! Filter, for a node with value `v` for a term's `topologyKey`:
//! - affinity: every required affinity term needs a pod matching *all* of the pod's affinity
//!   terms in the domain `(key, v)`; the node must have every term's key. Exception: when no
//!   pod anywhere matches and the pod matches its own terms, it may go anywhere that has the
//!   keys (the first pod of a group). Reason `node(s) didn't match pod affinity rules`
//!   (unresolvable).
//! - anti-affinity: no pod matching a required anti-affinity term in the node's domain for
//!   that term (a node without the key is fine). Reason
//!   `node(s) didn't match pod anti-affinity rules`.
//! - symmetry: an existing pod's required anti-affinity term that matches the incoming pod
//!   keeps it out of that pod's domain. Reason
//!   `node(s) didn't satisfy existing pods anti-affinity rules`.
//!
//! A term's namespaces default to its owner pod's namespace; a `namespaceSelector` matches
//! namespaces by the snapshot's namespace labels (`{}` matches every namespace); a missing
//! `labelSelector` matches no pod.
//!
//! Score: per topology domain, + weight for each existing pod matching one of the pod's
//! preferred affinity terms, - weight per preferred anti-affinity term; plus existing pods'
//! terms that match the incoming pod (required affinity at `hard_pod_affinity_weight`,
//! preferred affinity +weight, preferred anti-affinity -weight). A node scores the sum over its
//! domains; normalized by min-max to 0..=100.

use coxswain_api::v1;

use crate::affinity::{terms, DomainCounts, Term, Terms};
use crate::framework::{
    CycleState, Filter, NodeScore, Plugin, PreFilter, PreScore, Score, ScoreExtensions, Status,
    MAX_NODE_SCORE,
};
use crate::snapshot::{NodeInfo, Snapshot};

pub const NAME: &str = "InterPodAffinity";
pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

pub struct InterPodAffinity {
    /// Score for each existing pod whose *required* affinity matches the incoming pod
    /// (kube-scheduler's `hardPodAffinityWeight`, default 1).
    pub hard_pod_affinity_weight: i64,
}

impl InterPodAffinity {
    /// From `pluginConfig` args: `hardPodAffinityWeight` (0..=100, default 1).
    pub fn from_args(args: &serde_json::Value) -> Result<InterPodAffinity, String> {
        let mut p = InterPodAffinity::default();
        if let Some(w) = args.get("hardPodAffinityWeight") {
            match w.as_i64() {
                Some(w @ 0..=100) => p.hard_pod_affinity_weight = w,
                _ => {
                    return Err(format!(
                        "hardPodAffinityWeight: Invalid value: {w}: not in valid range [0, 100]"
                    ))
                }
            }
        }
        Ok(p)
    }
}

impl Default for InterPodAffinity {
    fn default() -> Self {
        InterPodAffinity {
            hard_pod_affinity_weight: 1,
        }
    }
}

type Counts = DomainCounts;

fn bump(counts: &mut Counts, node: &NodeInfo, key: u32, by: i64) {
    counts.add_for(node, key, by);
}

fn matches_all(terms: &[Term], pod: &v1::Pod, snapshot: Option<&Snapshot>) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(pod, snapshot))
}

struct PreFilterState {
    required_affinity: Vec<Term>,
    required_anti: Vec<Term>,
    affinity_counts: Counts,
    anti_counts: Counts,
    existing_anti_counts: Counts,
    matches_own_affinity: bool,
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilter> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
    fn as_pre_score(&self) -> Option<&dyn PreScore> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn Score> {
        Some(self)
    }
}

impl PreFilter for InterPodAffinity {
    fn pre_filter(&self, state: &mut CycleState, pod: &v1::Pod, snapshot: &Snapshot) -> Status {
        let t = terms(pod);
        if t.required_affinity.is_empty()
            && t.required_anti.is_empty()
            && !snapshot.may_have_affinity_pods()
        {
            // Nothing to count: no own required terms and no existing pod's terms.
            return Status::skip();
        }
        let (affinity_counts, anti_counts, existing_anti_counts) =
            pre_filter_counts(&t, pod, snapshot);
        if t.required_affinity.is_empty()
            && t.required_anti.is_empty()
            && existing_anti_counts.is_empty()
        {
            return Status::skip();
        }
        state.write(PreFilterState {
            matches_own_affinity: matches_all(&t.required_affinity, pod, Some(snapshot)),
            required_affinity: t.required_affinity,
            required_anti: t.required_anti,
            affinity_counts,
            anti_counts,
            existing_anti_counts,
        });
        Status::success()
    }
}

/// PreFilter's counts for `pod` with parsed terms `t`: (existing pods matching all of the
/// pod's required affinity terms, per term's domain; existing pods matching each required
/// anti-affinity term, per domain; existing pods' required anti-affinity terms matching the
/// pod, per domain). From the snapshot's [`AffinityIndex`](crate::affinity_index): each label
/// class and term set is matched once and adds its per-node pod counts.
pub(crate) fn pre_filter_counts(
    t: &Terms,
    pod: &v1::Pod,
    snapshot: &Snapshot,
) -> (Counts, Counts, Counts) {
    let mut existing_anti_counts = Counts::default();
    let mut affinity_counts = Counts::default();
    let mut anti_counts = Counts::default();
    let index = snapshot.affinity_index();
    for e in index.term_sets() {
        for term in &e.terms.value.required_anti {
            if term.matches(pod, Some(snapshot)) {
                for (&n, &c) in &e.nodes {
                    let node = &snapshot.nodes[n as usize];
                    bump(
                        &mut existing_anti_counts,
                        node,
                        term.topology_key_id,
                        c.into(),
                    );
                }
            }
        }
    }
    if !t.required_affinity.is_empty() || !t.required_anti.is_empty() {
        for e in index.classes() {
            let existing = &*e.pod;
            let affinity = matches_all(&t.required_affinity, existing, Some(snapshot));
            let anti: Vec<&Term> = t
                .required_anti
                .iter()
                .filter(|term| term.matches(existing, Some(snapshot)))
                .collect();
            if !affinity && anti.is_empty() {
                continue;
            }
            for (&n, &c) in &e.nodes {
                let node = &snapshot.nodes[n as usize];
                if affinity {
                    for term in &t.required_affinity {
                        bump(&mut affinity_counts, node, term.topology_key_id, c.into());
                    }
                }
                for term in &anti {
                    bump(&mut anti_counts, node, term.topology_key_id, c.into());
                }
            }
        }
    }
    (affinity_counts, anti_counts, existing_anti_counts)
}

impl InterPodAffinity {
    /// PreScore's per-domain scores for `pod` with parsed terms `t`; None when no pod exists
    /// (Skip). From the snapshot's [`AffinityIndex`](crate::affinity_index), as
    /// [`pre_filter_counts`]: a class or term set that matches adds `weight × pods` per node.
    pub(crate) fn pre_score_counts(
        &self,
        t: &Terms,
        pod: &v1::Pod,
        snapshot: &Snapshot,
    ) -> Option<DomainCounts> {
        let index = snapshot.affinity_index();
        let mut scores = DomainCounts::default();
        let mut any = false;
        let has_constraints = !t.preferred_affinity.is_empty() || !t.preferred_anti.is_empty();
        let add_all = |scores: &mut DomainCounts,
                       nodes: &crate::affinity::FastMap<u32, u32>,
                       term: &Term,
                       w: i64| {
            for (&n, &c) in nodes {
                scores.add_for(
                    &snapshot.nodes[n as usize],
                    term.topology_key_id,
                    w * i64::from(c),
                );
            }
        };
        for e in index.classes().filter(|_| has_constraints) {
            any = true;
            let existing = &*e.pod;
            for term in &t.preferred_affinity {
                if term.matches(existing, Some(snapshot)) {
                    add_all(&mut scores, &e.nodes, term, term.weight);
                }
            }
            for term in &t.preferred_anti {
                if term.matches(existing, Some(snapshot)) {
                    add_all(&mut scores, &e.nodes, term, -term.weight);
                }
            }
        }
        for e in index.term_sets() {
            any = true;
            let et = &e.terms.value;
            if self.hard_pod_affinity_weight > 0 {
                for term in &et.required_affinity {
                    if term.matches(pod, Some(snapshot)) {
                        add_all(&mut scores, &e.nodes, term, self.hard_pod_affinity_weight);
                    }
                }
            }
            for term in &et.preferred_affinity {
                if term.matches(pod, Some(snapshot)) {
                    add_all(&mut scores, &e.nodes, term, term.weight);
                }
            }
            for term in &et.preferred_anti {
                if term.matches(pod, Some(snapshot)) {
                    add_all(&mut scores, &e.nodes, term, -term.weight);
                }
            }
        }
        any.then_some(scores)
    }
}

impl PreFilterState {
    fn satisfies_affinity(&self, node: &NodeInfo) -> bool {
        let mut pods_exist = true;
        for term in &self.required_affinity {
            let Some(c) = self.affinity_counts.get_for(node, term.topology_key_id) else {
                return false;
            };
            if c <= 0 {
                pods_exist = false;
            }
        }
        pods_exist || (self.affinity_counts.is_empty() && self.matches_own_affinity)
    }

    fn satisfies_anti_affinity(&self, node: &NodeInfo) -> bool {
        self.required_anti.iter().all(|term| {
            self.anti_counts
                .get_for(node, term.topology_key_id)
                .is_none_or(|c| c <= 0)
        })
    }

    fn satisfies_existing_anti_affinity(&self, node: &NodeInfo) -> bool {
        !self.existing_anti_counts.any_positive(node)
    }
}

impl Filter for InterPodAffinity {
    fn filter(&self, state: &CycleState, _: &v1::Pod, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>() else {
            return Status::success();
        };
        if !s.satisfies_affinity(node) {
            return Status::unresolvable(ERR_AFFINITY);
        }
        if !s.satisfies_anti_affinity(node) {
            return Status::unschedulable(ERR_ANTI_AFFINITY);
        }
        if !s.satisfies_existing_anti_affinity(node) {
            return Status::unschedulable(ERR_EXISTING_ANTI_AFFINITY);
        }
        Status::success()
    }
}

/// topologyKey → topology value → score.
struct PreScoreState(DomainCounts);

impl PreScore for InterPodAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &v1::Pod,
        snapshot: &Snapshot,
        _: &[&NodeInfo],
    ) -> Status {
        let t = terms(pod);
        let has_constraints = !t.preferred_affinity.is_empty() || !t.preferred_anti.is_empty();
        if !has_constraints && !snapshot.may_have_affinity_pods() {
            // No own preferred terms and no existing pod's terms: nothing scores.
            return Status::skip();
        }
        let Some(scores) = self.pre_score_counts(&t, pod, snapshot) else {
            return Status::skip();
        };
        state.write(PreScoreState(scores));
        Status::success()
    }
}

impl Score for InterPodAffinity {
    fn score(&self, state: &CycleState, _: &v1::Pod, node: &NodeInfo) -> i64 {
        let Some(s) = state.read::<PreScoreState>() else {
            return 0;
        };
        s.0.sum_for(node)
    }
    fn score_extensions(&self) -> Option<&dyn ScoreExtensions> {
        Some(self)
    }
}

impl ScoreExtensions for InterPodAffinity {
    fn normalize(&self, state: &CycleState, _: &v1::Pod, scores: &mut [NodeScore]) {
        if state.read::<PreScoreState>().is_none_or(|s| s.0.is_empty()) {
            return;
        }
        let min = scores.iter().map(|s| s.score).min().unwrap_or(0);
        let max = scores.iter().map(|s| s.score).max().unwrap_or(0);
        let diff = max - min;
        for s in scores {
            s.score = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((s.score - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
    }
}

#[cfg(test)]
#[path = "inter_pod_affinity_walk.rs"]
mod walk;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;

    const HOST: &str = "kubernetes.io/hostname";
    const ZONE: &str = "zone";

    fn nodes() -> Vec<v1::Node> {
        vec![
            node("n1", &[(HOST, "n1"), (ZONE, "z1")]),
            node("n2", &[(HOST, "n2"), (ZONE, "z1")]),
            node("n3", &[(HOST, "n3"), (ZONE, "z2")]),
            node("nolabels", &[]),
        ]
    }

    /// Filter codes for every node, in `nodes()` order.
    fn run(p: &v1::Pod, existing: Vec<v1::Pod>) -> Vec<(Code, String)> {
        let snap = snapshot(nodes(), existing);
        let mut st = CycleState::new();
        let pf = InterPodAffinity::default().pre_filter(&mut st, p, &snap);
        snap.nodes
            .iter()
            .map(|n| {
                if pf.is_skip() {
                    return (Code::Success, String::new());
                }
                let s = InterPodAffinity::default().filter(&st, p, n);
                (s.code, s.message())
            })
            .collect()
    }

    fn codes(r: &[(Code, String)]) -> Vec<bool> {
        r.iter().map(|(c, _)| *c == Code::Success).collect()
    }

    fn with_affinity(mut p: v1::Pod, terms: Vec<v1::PodAffinityTerm>) -> v1::Pod {
        affinity(&mut p).pod_affinity = Some(v1::PodAffinity {
            required_during_scheduling_ignored_during_execution: terms,
            ..Default::default()
        });
        p
    }

    fn with_anti(mut p: v1::Pod, terms: Vec<v1::PodAffinityTerm>) -> v1::Pod {
        affinity(&mut p).pod_anti_affinity = Some(v1::PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: terms,
            ..Default::default()
        });
        p
    }

    #[test]
    fn required_affinity() {
        let db = on(pod("db", &[("app", "db")]), "n1");
        // Same host.
        let p = with_affinity(pod("p", &[]), vec![pod_term(&[("app", "db")], HOST)]);
        let r = run(&p, vec![db.clone()]);
        assert_eq!(codes(&r), [true, false, false, false]);
        assert_eq!(
            r[1],
            (Code::UnschedulableAndUnresolvable, ERR_AFFINITY.to_string())
        );
        // Same zone.
        let p = with_affinity(pod("p", &[]), vec![pod_term(&[("app", "db")], ZONE)]);
        assert_eq!(
            codes(&run(&p, vec![db.clone()])),
            [true, true, false, false]
        );
        // Another namespace's pod does not count.
        let mut other = db.clone();
        other.metadata.as_mut().unwrap().namespace = "other".into();
        assert_eq!(
            codes(&run(&p, vec![other.clone()])),
            [false, false, false, false]
        );
        // ...unless the term names its namespace.
        let mut t = pod_term(&[("app", "db")], ZONE);
        t.namespaces = vec!["other".into()];
        let p2 = with_affinity(pod("p", &[]), vec![t]);
        assert_eq!(codes(&run(&p2, vec![other])), [true, true, false, false]);
        // A nil label selector matches nothing.
        let mut t = pod_term(&[], ZONE);
        t.label_selector = None;
        let p3 = with_affinity(pod("p", &[]), vec![t]);
        assert_eq!(codes(&run(&p3, vec![db])), [false, false, false, false]);
    }

    #[test]
    fn first_pod_of_a_group_may_satisfy_its_own_affinity() {
        let p = with_affinity(
            pod("p", &[("app", "web")]),
            vec![pod_term(&[("app", "web")], ZONE)],
        );
        // No pod matches anywhere: any node with the key.
        assert_eq!(codes(&run(&p, vec![])), [true, true, true, false]);
        // A pod that does not match its own term stays pending.
        let q = with_affinity(
            pod("q", &[("app", "other")]),
            vec![pod_term(&[("app", "web")], ZONE)],
        );
        assert_eq!(codes(&run(&q, vec![])), [false, false, false, false]);
        // Once a matching pod exists, only its domain.
        let web = on(pod("web", &[("app", "web")]), "n3");
        assert_eq!(codes(&run(&p, vec![web])), [false, false, true, false]);
    }

    #[test]
    fn required_anti_affinity() {
        let web = on(pod("web", &[("app", "web")]), "n1");
        let p = with_anti(pod("p", &[]), vec![pod_term(&[("app", "web")], ZONE)]);
        let r = run(&p, vec![web.clone()]);
        // A node without the topology key is fine.
        assert_eq!(codes(&r), [false, false, true, true]);
        assert_eq!(r[0], (Code::Unschedulable, ERR_ANTI_AFFINITY.to_string()));
        let p = with_anti(pod("p", &[]), vec![pod_term(&[("app", "web")], HOST)]);
        assert_eq!(codes(&run(&p, vec![web])), [false, true, true, true]);
    }

    #[test]
    fn existing_pods_anti_affinity_is_symmetric() {
        let guard = on(
            with_anti(pod("guard", &[]), vec![pod_term(&[("app", "web")], ZONE)]),
            "n1",
        );
        let p = pod("p", &[("app", "web")]);
        let r = run(&p, vec![guard.clone()]);
        assert_eq!(codes(&r), [false, false, true, true]);
        assert_eq!(
            r[1],
            (Code::Unschedulable, ERR_EXISTING_ANTI_AFFINITY.to_string())
        );
        // A pod the guard's term does not match is unaffected.
        assert_eq!(
            codes(&run(&pod("q", &[("app", "db")]), vec![guard])),
            [true, true, true, true]
        );
    }

    #[test]
    fn preferred_score() {
        let mut p = pod("p", &[]);
        affinity(&mut p).pod_affinity = Some(v1::PodAffinity {
            preferred_during_scheduling_ignored_during_execution: vec![
                v1::WeightedPodAffinityTerm {
                    weight: 10,
                    pod_affinity_term: Some(pod_term(&[("app", "db")], ZONE)),
                },
            ],
            ..Default::default()
        });
        affinity(&mut p).pod_anti_affinity = Some(v1::PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: vec![
                v1::WeightedPodAffinityTerm {
                    weight: 5,
                    pod_affinity_term: Some(pod_term(&[("app", "noisy")], HOST)),
                },
            ],
            ..Default::default()
        });
        let snap = snapshot(
            nodes(),
            vec![
                on(pod("db", &[("app", "db")]), "n1"),
                on(pod("noisy", &[("app", "noisy")]), "n2"),
            ],
        );
        let pl = InterPodAffinity::default();
        let mut st = CycleState::new();
        assert!(pl.pre_score(&mut st, &p, &snap, &[]).is_success());
        let mut scores: Vec<NodeScore> = snap
            .nodes
            .iter()
            .map(|n| NodeScore {
                name: n.name().into(),
                score: pl.score(&st, &p, n),
            })
            .collect();
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [10, 5, 0, 0]
        );
        pl.normalize(&st, &p, &mut scores);
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [100, 50, 0, 0]
        );
    }
}
