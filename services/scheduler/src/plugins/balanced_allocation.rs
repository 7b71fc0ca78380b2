//! NodeResourcesBalancedAllocation: favors nodes whose cpu and memory would be used in equal
//! fractions after placing the pod: `(1 - std) * 100`, where `std` is the standard deviation of
//! the requested/allocatable fractions (each capped at 1; for two resources `|a - b| / 2`).
//! Uses actual requests (not the non-zero defaults); a best-effort pod skips this plugin.
use coxswain_api::v1;

use crate::framework::{CycleState, Plugin, PreScore, Score, Status, MAX_NODE_SCORE};
use crate::snapshot::{pod_spec, NodeInfo, Resources, Snapshot};

pub const NAME: &str = "NodeResourcesBalancedAllocation";

pub struct BalancedAllocation;

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_score(&self) -> Option<&dyn PreScore> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn Score> {
        Some(self)
    }
}

/// The pod's (cpu millis, memory bytes) requests, computed once per cycle.
struct PreScoreState(i64, i64);

impl PreScore for BalancedAllocation {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &v1::Pod,
        _: &Snapshot,
        _: &[&NodeInfo],
    ) -> Status {
        let r = Resources::for_pod(pod_spec(pod));
        if r.milli_cpu == 0 && r.memory == 0 {
            return Status::skip();
        }
        state.write(PreScoreState(r.milli_cpu, r.memory));
        Status::success()
    }
}

/// The score for (requested, allocatable) pairs; pairs with nothing allocatable are ignored.
pub fn balanced_score(pairs: &[(i64, i64)]) -> i64 {
    // Iterated rather than collected: no allocation per node scored (same arithmetic, same
    // order).
    let fractions = || {
        pairs
            .iter()
            .filter(|(_, alloc)| *alloc != 0)
            .map(|(req, alloc)| (*req as f64 / *alloc as f64).min(1.0))
    };
    let std = match fractions().count() {
        0 | 1 => 0.0,
        2 => {
            let mut f = fractions();
            let (a, b) = (f.next().unwrap_or(0.0), f.next().unwrap_or(0.0));
            ((a - b) / 2.0).abs()
        }
        n => {
            let mean = fractions().sum::<f64>() / n as f64;
            (fractions().map(|f| (f - mean) * (f - mean)).sum::<f64>() / n as f64).sqrt()
        }
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

impl Score for BalancedAllocation {
    fn score(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> i64 {
        let (cpu, mem) = match state.read::<PreScoreState>() {
            Some(s) => (s.0, s.1),
            None => {
                let r = Resources::for_pod(pod_spec(pod));
                (r.milli_cpu, r.memory)
            }
        };
        balanced_score(&[
            (node.requested.milli_cpu + cpu, node.allocatable.milli_cpu),
            (node.requested.memory + mem, node.allocatable.memory),
        ])
    }

    /// The cycle state read once, and [`balanced_cpu_memory`] per node.
    fn score_all(&self, state: &CycleState, pod: &v1::Pod, nodes: &[&NodeInfo], out: &mut [i64]) {
        let (cpu, mem) = match state.read::<PreScoreState>() {
            Some(s) => (s.0, s.1),
            None => {
                let r = Resources::for_pod(pod_spec(pod));
                (r.milli_cpu, r.memory)
            }
        };
        for (o, n) in out.iter_mut().zip(nodes) {
            let h = n.hot();
            *o = balanced_cpu_memory(
                (h.requested_cpu + cpu, h.alloc_cpu),
                (h.requested_memory + mem, h.alloc_memory),
            );
        }
    }
}

/// [`balanced_score`] for exactly two (requested, allocatable) pairs, with the same floating
/// point operations in the same order (so the same result to the bit).
#[inline]
pub fn balanced_cpu_memory(cpu: (i64, i64), mem: (i64, i64)) -> i64 {
    let std = if cpu.1 != 0 && mem.1 != 0 {
        let a = (cpu.0 as f64 / cpu.1 as f64).min(1.0);
        let b = (mem.0 as f64 / mem.1 as f64).min(1.0);
        ((a - b) / 2.0).abs()
    } else {
        0.0
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;

    #[test]
    fn table() {
        for (pairs, want) in [
            (vec![(3000, 4000), (5000, 10000)], 87), // |0.75 - 0.5| / 2 = 0.125
            (vec![(2000, 4000), (5000, 10000)], 100),
            (vec![(4000, 4000), (0, 10000)], 50),
            (vec![(8000, 4000), (0, 10000)], 50),  // capped at 1
            (vec![(1000, 0), (5000, 10000)], 100), // nothing allocatable: ignored
        ] {
            assert_eq!(balanced_score(&pairs), want, "{pairs:?}");
        }
    }

    #[test]
    fn best_effort_pods_skip() {
        let snap = snapshot(vec![], vec![]);
        let p = pod("p", &[]);
        assert!(BalancedAllocation
            .pre_score(&mut CycleState::new(), &p, &snap, &[])
            .is_skip());
        let mut p2 = pod("p", &[]);
        spec(&mut p2).containers = vec![container(&[("cpu", "1")])];
        assert!(BalancedAllocation
            .pre_score(&mut CycleState::new(), &p2, &snap, &[])
            .is_success());
    }
}
