//! Which pods a ReplicaSet scale-down deletes (part of [`super`]).
//!
//! Upstream's order exactly: `getPodsToDelete` → `getPodsRankedByRelatedPodsOnSameNode` in
//! `pkg/controller/replicaset/replica_set.go` and `ActivePodsWithRanks.Less` in
//! `pkg/controller/controller_utils.go`, with the LogarithmicScaleDown feature (GA since 1.31,
//! no switch). When every pod goes, none is ranked. Otherwise each pod gets a co-location rank,
//! the number of *related* active pods on its node ([`active_pods_on_node`]; related = the pods
//! of every ReplicaSet with the same controller, so for a Deployment its old and new
//! ReplicaSets alike; none for a ReplicaSet without a controller), and pod `a` goes before `b`
//! by the first rule they differ in:
//!
//! 1. unassigned before assigned;
//! 2. phase Pending (or any phase other than the next two) before Unknown before Running;
//! 3. not Ready before Ready;
//! 4. lower `controller.kubernetes.io/pod-deletion-cost` first (an int32 without `+` or a
//!    leading zero; anything else counts 0);
//! 5. higher co-location rank first;
//! 6. both Ready with different Ready times (the Ready condition's lastTransitionTime): the
//!    time's logarithmic rank, `int64(log2(now - t in ns))` (-1 when not before now), lower
//!    first, and in the same rank the smaller UID (upstream's randomisation); a zero
//!    (unknown) time goes first and, without a `now`, the later time first;
//! 7. more restarts (of the container that restarted most) first;
//! 8. different creation times: as 6, by the creation timestamp.
//!
//! The keys are read once per pod, then compared. Upstream's `Less` is not a total order (in
//! one logarithmic rank, different times go by UID but equal times go on to rules 7 and 8), so
//! the sort is a merge sort that, like Go's `sort.Sort`, tolerates that; equal pods keep their
//! order.
use std::borrow::Borrow;
use std::collections::HashMap;

use coxswain_api::v1::Pod;

use super::{is_pod_active, is_pod_ready, phase, ready_since, POD_DELETION_COST_ANNOTATION};
use crate::time::parse_rfc3339;

fn restarts(pod: &Pod) -> i32 {
    pod.status.as_ref().map_or(0, |s| {
        s.container_statuses
            .iter()
            .map(|c| c.restart_count)
            .max()
            .unwrap_or(0)
            .max(0)
    })
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match phase(pod) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0, // Pending, and any other phase (upstream's map lookup yields 0)
    }
}

/// The pod's `controller.kubernetes.io/pod-deletion-cost`, as upstream's
/// `GetDeletionCostFromPodAnnotations`: a base-10 int32 with no `+` and no leading zero ("0"
/// itself is fine); anything else, or no annotation, is 0.
fn deletion_cost(pod: &Pod) -> i32 {
    let Some(v) = pod
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.get(POD_DELETION_COST_ANNOTATION))
    else {
        return 0;
    };
    let valid_first = match v.as_bytes().first() {
        Some(b'-') | Some(b'1'..=b'9') => true,
        Some(b'0') => v == "0",
        _ => false,
    };
    if !valid_first {
        return 0;
    }
    v.parse().unwrap_or(0)
}

fn creation(pod: &Pod) -> Option<i64> {
    pod.metadata
        .as_ref()
        .and_then(|m| parse_rfc3339(&m.creation_timestamp))
}

fn node_name(pod: &Pod) -> &str {
    pod.spec.as_ref().map_or("", |s| s.node_name.as_str())
}

fn uid(pod: &Pod) -> &str {
    pod.metadata.as_ref().map_or("", |m| m.uid.as_str())
}

/// The number of active pods among `related` on each node (unassigned pods count under ""):
/// upstream's `getPodsRankedByRelatedPodsOnSameNode` map. `related` are the pods of every
/// ReplicaSet with the same controller as the one scaling down (see
/// `replicaset_ctrl::related_pods_on_node`); a pod's rank is the count of its node.
pub fn active_pods_on_node<P: Borrow<Pod>>(related: &[P]) -> HashMap<&str, usize> {
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for p in related
        .iter()
        .map(Borrow::borrow)
        .filter(|p| is_pod_active(p))
    {
        *on_node.entry(node_name(p)).or_default() += 1;
    }
    on_node
}

/// Go's `int64(math.Log2(float64(d)))` for `d > 0`, computed the way Go's `math.Log2` does
/// (`Frexp`, exact for powers of two, else `Log(frac)/Ln2 + exp`), so a duration just below a
/// power of two falls in the same bucket as upstream's.
fn go_log2_bucket(d: i64) -> i64 {
    let x = d as f64; // d >= 1: a normal float
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64 - 1022; // x = frac * 2^exp, frac in [0.5, 1)
    let frac = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    if frac == 0.5 {
        return exp - 1;
    }
    (frac.ln() * (1.0 / std::f64::consts::LN_2) + exp as f64) as i64
}

/// Upstream's logarithmic rank of a time: `log2` of the nanoseconds from `t` to `now` (Go's
/// `now.Sub(t)`, saturating), or -1 when `t` is not before `now`.
fn log_rank(t_secs: i64, now_nanos: i64) -> i64 {
    let d = i128::from(now_nanos) - i128::from(t_secs) * 1_000_000_000;
    let d = d.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    if d > 0 {
        go_log2_bucket(d)
    } else {
        -1
    }
}

/// Everything [`less`] compares, read once per pod: a sort of 10,000 pods then compares these
/// instead of parsing timestamps and annotations at every comparison. A time of `None` is
/// upstream's zero time (absent or unparsable); a `*_rank` is that time's logarithmic rank,
/// set only when the ranking has a `now` and the time is known.
#[derive(Debug, Clone)]
struct DeletionKey<'a> {
    assigned: bool,
    phase: u8,
    ready: bool,
    cost: i32,
    colocated: usize,
    ready_time: Option<i64>,
    ready_rank: Option<i64>,
    restarts: i32,
    created: Option<i64>,
    created_rank: Option<i64>,
    uid: &'a str,
}

fn deletion_key<'a>(
    pod: &'a Pod,
    on_node: &HashMap<&str, usize>,
    now_nanos: Option<i64>,
) -> DeletionKey<'a> {
    let ready = is_pod_ready(pod);
    // podReadyTime: the Ready condition's lastTransitionTime when Ready, else the zero time.
    let ready_time = if ready { ready_since(pod) } else { None };
    let created = creation(pod);
    let rank = |t: Option<i64>| Some(log_rank(t?, now_nanos?));
    DeletionKey {
        assigned: !node_name(pod).is_empty(),
        phase: phase_ordinal(pod),
        ready,
        cost: deletion_cost(pod),
        colocated: on_node.get(node_name(pod)).copied().unwrap_or(0),
        ready_time,
        ready_rank: rank(ready_time),
        restarts: restarts(pod),
        created,
        created_rank: rank(created),
        uid: uid(pod),
    }
}

/// Upstream's `afterOrZero`: a zero time is "after" any other; else the later time is.
fn after_or_zero(t1: Option<i64>, t2: Option<i64>) -> bool {
    match (t1, t2) {
        (Some(a), Some(b)) => a > b,
        (t1, _) => t1.is_none(),
    }
}

/// Rules 6 and 8's time comparison once the two times differ: with both logarithmic ranks known
/// the smaller rank (the more recent time) first and, in the same rank, the smaller UID;
/// otherwise (no `now`, or a zero time) [`after_or_zero`].
fn time_less(
    (t1, r1, uid1): (Option<i64>, Option<i64>, &str),
    (t2, r2, uid2): (Option<i64>, Option<i64>, &str),
) -> bool {
    match (r1, r2) {
        (Some(r1), Some(r2)) if r1 == r2 => uid1 < uid2,
        (Some(r1), Some(r2)) => r1 < r2,
        _ => after_or_zero(t1, t2),
    }
}

/// Upstream's `ActivePodsWithRanks.Less` with LogarithmicScaleDown (GA since 1.31): `true` when
/// `a` should be deleted before `b`. Step by step as upstream, each step deciding only when the
/// two pods differ in it.
fn less(a: &DeletionKey, b: &DeletionKey) -> bool {
    // 1. Unassigned < assigned.
    if a.assigned != b.assigned {
        return !a.assigned;
    }
    // 2. Pending < Unknown < Running.
    if a.phase != b.phase {
        return a.phase < b.phase;
    }
    // 3. Not ready < ready.
    if a.ready != b.ready {
        return !a.ready;
    }
    // 4. Lower pod-deletion-cost < higher.
    if a.cost != b.cost {
        return a.cost < b.cost;
    }
    // 5. More related active pods on the same node < fewer ("doubled up" first).
    if a.colocated != b.colocated {
        return a.colocated > b.colocated;
    }
    // 6. Both ready: ready for a shorter time first (zero time first), by logarithmic rank.
    if a.ready && b.ready && a.ready_time != b.ready_time {
        return time_less(
            (a.ready_time, a.ready_rank, a.uid),
            (b.ready_time, b.ready_rank, b.uid),
        );
    }
    // 7. More restarts (in the container that restarted most) < fewer.
    if a.restarts != b.restarts {
        return a.restarts > b.restarts;
    }
    // 8. Newer first (zero creation time first), by logarithmic rank.
    if a.created != b.created {
        return time_less(
            (a.created, a.created_rank, a.uid),
            (b.created, b.created_rank, b.uid),
        );
    }
    false
}

/// A stable merge sort of `idx` that asks only `less(right, left)`: upstream's `Less` is not a
/// total order in one corner (within one logarithmic rank, pods with different times go by UID
/// but pods with equal times go on to restarts), which `slice::sort_by` may panic on; like Go's
/// `sort.Sort`, this never does, and it is O(n log n) for any `less`.
fn merge_sort(idx: &mut Vec<usize>, less: &impl Fn(usize, usize) -> bool) {
    let n = idx.len();
    let mut buf = vec![0usize; n];
    let mut width = 1;
    while width < n {
        let mut lo = 0;
        while lo < n {
            let mid = (lo + width).min(n);
            let hi = (lo + 2 * width).min(n);
            let (mut i, mut j, mut k) = (lo, mid, lo);
            while i < mid && j < hi {
                if less(idx[j], idx[i]) {
                    buf[k] = idx[j];
                    j += 1;
                } else {
                    buf[k] = idx[i];
                    i += 1;
                }
                k += 1;
            }
            buf[k..k + (mid - i)].copy_from_slice(&idx[i..mid]);
            k += mid - i;
            buf[k..k + (hi - j)].copy_from_slice(&idx[j..hi]);
            lo = hi;
        }
        std::mem::swap(idx, &mut buf);
        width *= 2;
    }
}

/// Indices into `pods`, the first to delete first, by upstream's `ActivePodsWithRanks`:
/// `on_node` from [`active_pods_on_node`] over the related pods, `now_nanos` the sort's `Now`
/// (Unix nanoseconds; `None` compares times without logarithmic ranks, upstream's zero `Now`).
pub fn rank_for_deletion<P: Borrow<Pod>>(
    pods: &[P],
    on_node: &HashMap<&str, usize>,
    now_nanos: Option<i64>,
) -> Vec<usize> {
    sorted(
        pods.iter()
            .map(|p| deletion_key(p.borrow(), on_node, now_nanos))
            .collect(),
    )
}

/// The pods' indices in the order of their keys.
fn sorted(keys: Vec<DeletionKey>) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..keys.len()).collect();
    merge_sort(&mut idx, &|i, j| less(&keys[i], &keys[j]));
    idx
}

/// Upstream's `getPodsToDelete`: the indices of the `n` pods to delete when scaling down. When
/// all of them go (`n >= pods.len()`) nothing is ranked and they keep their order.
pub fn replica_set_pods_to_delete<P: Borrow<Pod>>(
    pods: &[P],
    on_node: &HashMap<&str, usize>,
    now_nanos: Option<i64>,
    n: usize,
) -> Vec<usize> {
    if n >= pods.len() {
        return (0..pods.len()).collect();
    }
    let mut idx = rank_for_deletion(pods, on_node, now_nanos);
    idx.truncate(n);
    idx
}

/// The `n` pods a Job removes first: upstream's `controller.ActivePods` order (the Job
/// controller's `activePodsForRemoval` sorts with it), which is rules 1–3 and 6–8 above with
/// exact times: no pod-deletion-cost (rule 4), no co-location rank (rule 5), no logarithmic
/// ranks.
pub fn pods_to_delete<P: Borrow<Pod>>(pods: &[P], n: usize) -> Vec<usize> {
    let none = HashMap::new();
    let mut idx = sorted(
        pods.iter()
            .map(|p| DeletionKey {
                cost: 0,
                ..deletion_key(p.borrow(), &none, None)
            })
            .collect(),
    );
    idx.truncate(n);
    idx
}

/// Now as Unix nanoseconds (the `Now` of a deletion ranking).
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replicaset::tests::pod;
    use crate::time::format_rfc3339;

    const NOW: i64 = 1_000_000; // seconds
    const NOW_NS: i64 = NOW * 1_000_000_000;

    /// A Running pod on `node`, Ready since `NOW - ready_age` (None: not ready), created at
    /// `NOW - age`, with `restarts`, its UID `uid`.
    fn rpod(uid: &str, node: &str, ready_age: Option<i64>, restarts: i32, age: i64) -> Pod {
        let mut p = pod(
            uid,
            "Running",
            node,
            ready_age.map(|a| NOW - a),
            restarts,
            NOW - age,
        );
        p.metadata.as_mut().unwrap().uid = uid.into();
        p
    }

    fn with_cost(mut p: Pod, cost: &str) -> Pod {
        p.metadata
            .as_mut()
            .unwrap()
            .annotations
            .insert(POD_DELETION_COST_ANNOTATION.into(), cost.into());
        p
    }

    fn with_phase(mut p: Pod, phase: &str) -> Pod {
        p.status.as_mut().unwrap().phase = phase.into();
        p
    }

    /// Each rule of upstream's `ActivePodsWithRanks.Less`, in upstream's order: every row is a
    /// pair that ties on the rules above it and differs in its rule, with the later rules
    /// pulling the other way, so only that rule can put `first` first. Nodes: "crowded" holds 3
    /// related active pods, "n" 1, "" (unassigned) 1.
    #[test]
    fn deletion_rules_in_upstream_order() {
        let on_node: HashMap<&str, usize> = [("crowded", 3), ("n", 1), ("", 1)].into();
        let mut zero_ready = rpod("a", "n", Some(10), 0, 100);
        zero_ready.status.as_mut().unwrap().conditions[0].last_transition_time = String::new();
        let mut zero_created = rpod("z", "n", Some(10), 0, 100);
        zero_created.metadata.as_mut().unwrap().creation_timestamp = String::new();
        let cases: Vec<(&str, Pod, Pod)> = vec![
            (
                "1 unassigned < assigned",
                with_phase(rpod("z", "", Some(5000), 0, 9000), "Running"),
                with_phase(rpod("a", "crowded", None, 9, 1), "Pending"),
            ),
            (
                "2 Pending < Unknown",
                with_phase(rpod("z", "n", None, 0, 9000), "Pending"),
                with_phase(rpod("a", "crowded", None, 9, 1), "Unknown"),
            ),
            (
                "2 Unknown < Running",
                with_phase(rpod("z", "n", None, 0, 9000), "Unknown"),
                rpod("a", "crowded", None, 9, 1),
            ),
            (
                "2 an unknown phase string counts as Pending",
                with_phase(rpod("z", "n", None, 0, 9000), "Weird"),
                with_phase(rpod("a", "crowded", None, 9, 1), "Unknown"),
            ),
            (
                "3 not ready < ready",
                with_cost(rpod("z", "n", None, 0, 9000), "100"),
                rpod("a", "crowded", Some(1), 9, 1),
            ),
            (
                "4 lower deletion cost first",
                with_cost(rpod("z", "n", Some(5000), 0, 9000), "-5"),
                rpod("a", "crowded", Some(1), 9, 1),
            ),
            (
                "5 more co-located related pods first",
                rpod("z", "crowded", Some(5000), 0, 9000),
                rpod("a", "n", Some(1), 9, 1),
            ),
            (
                "6 ready in a more recent logarithmic rank first",
                rpod("z", "n", Some(10), 0, 9000), // 1e10 ns: rank 33
                rpod("a", "n", Some(20), 9, 1),    // 2e10 ns: rank 34
            ),
            (
                "6 same ready rank, different times: the smaller UID",
                rpod("a", "n", Some(12), 0, 9000), // 1.2e10 ns: rank 33
                rpod("z", "n", Some(10), 9, 1),
            ),
            (
                "6 a zero ready time first",
                zero_ready,
                rpod("z", "n", Some(1), 9, 1),
            ),
            (
                "7 same ready time: more restarts first",
                rpod("z", "n", Some(10), 2, 9000),
                rpod("a", "n", Some(10), 1, 1),
            ),
            (
                "8 created in a more recent logarithmic rank first",
                rpod("z", "n", Some(10), 0, 10),
                rpod("a", "n", Some(10), 0, 20),
            ),
            (
                "8 same creation rank, different times: the smaller UID",
                rpod("a", "n", Some(10), 0, 12),
                rpod("z", "n", Some(10), 0, 10),
            ),
            (
                "8 a zero creation time first",
                zero_created,
                rpod("a", "n", Some(10), 0, 1),
            ),
        ];
        for (rule, first, second) in cases {
            let pods = [second, first];
            assert_eq!(
                rank_for_deletion(&pods, &on_node, Some(NOW_NS)),
                [1, 0],
                "{rule}"
            );
            let swapped = [pods[1].clone(), pods[0].clone()];
            assert_eq!(
                rank_for_deletion(&swapped, &on_node, Some(NOW_NS)),
                [0, 1],
                "{rule} (swapped)"
            );
        }
    }

    /// Without a `now` (upstream's zero `Now`) times compare exactly: the later first, so the
    /// UID rule never applies.
    #[test]
    fn without_now_times_compare_exactly() {
        let none = HashMap::new();
        let pods = [
            rpod("a", "n", Some(12), 0, 100),
            rpod("z", "n", Some(10), 0, 100),
        ];
        assert_eq!(rank_for_deletion(&pods, &none, None), [1, 0]);
        assert_eq!(rank_for_deletion(&pods, &none, Some(NOW_NS)), [0, 1]);
        let pods = [
            rpod("a", "n", Some(10), 0, 12),
            rpod("z", "n", Some(10), 0, 10),
        ];
        assert_eq!(rank_for_deletion(&pods, &none, None), [1, 0]);
        assert_eq!(rank_for_deletion(&pods, &none, Some(NOW_NS)), [0, 1]);
    }

    #[test]
    fn equal_pods_keep_their_order_and_all_go_unranked() {
        let none = HashMap::new();
        let pods: Vec<Pod> = (0..5).map(|_| rpod("same", "n", Some(10), 0, 10)).collect();
        assert_eq!(
            rank_for_deletion(&pods, &none, Some(NOW_NS)),
            [0, 1, 2, 3, 4]
        );
        let pods = [
            rpod("old", "n", Some(500), 0, 900),
            pod("p", "Pending", "", None, 0, 0),
        ];
        assert_eq!(replica_set_pods_to_delete(&pods, &none, None, 1), [1]);
        assert_eq!(replica_set_pods_to_delete(&pods, &none, None, 2), [0, 1]);
        assert_eq!(replica_set_pods_to_delete(&pods, &none, None, 9), [0, 1]);
        assert_eq!(pods_to_delete(&pods, 1), [1]);
    }

    /// Upstream's `Less` is not transitive in one corner; the sort must still finish with a
    /// permutation, and never panic, on such input.
    #[test]
    fn an_intransitive_less_still_sorts() {
        let none = HashMap::new();
        // b < c (same rank, different ready times: UID), c < a (UID), a < b (equal ready time,
        // more restarts): a cycle.
        let a = rpod("z", "n", Some(10), 5, 10);
        let b = rpod("a", "n", Some(10), 0, 10);
        let c = rpod("m", "n", Some(12), 0, 10);
        let mut pods = Vec::new();
        for i in 0..300 {
            pods.push([&a, &b, &c][i % 3].clone());
        }
        let mut got = rank_for_deletion(&pods, &none, Some(NOW_NS));
        got.sort_unstable();
        assert_eq!(got, (0..300).collect::<Vec<_>>());
    }

    #[test]
    fn co_location_counts_active_related_pods_per_node() {
        let mut gone = rpod("g", "n1", Some(1), 0, 1);
        gone.status.as_mut().unwrap().phase = "Failed".into();
        let mut deleting = rpod("d", "n1", Some(1), 0, 1);
        deleting.metadata.as_mut().unwrap().deletion_timestamp = format_rfc3339(NOW);
        let related = vec![
            rpod("a", "n1", Some(1), 0, 1),
            rpod("b", "n1", Some(1), 0, 1),
            rpod("c", "n2", Some(1), 0, 1),
            pod("u", "Pending", "", None, 0, 0),
            gone,
            deleting,
        ];
        let on_node = active_pods_on_node(&related);
        assert_eq!(on_node, HashMap::from([("n1", 2), ("n2", 1), ("", 1)]));
        // The pods being ranked need not be among the related ones; a node none is on ranks 0.
        let pods = [
            rpod("x", "n3", Some(1), 0, 1),
            rpod("y", "n2", Some(1), 0, 1),
        ];
        assert_eq!(rank_for_deletion(&pods, &on_node, Some(NOW_NS)), [1, 0]);
    }

    #[test]
    fn a_job_removes_pods_in_active_pods_order_without_deletion_cost() {
        // Both Ready: ActivePods (a Job) takes the more recently ready pod first; a ReplicaSet
        // (ActivePodsWithRanks) takes the one with the lower pod-deletion-cost first (rule 4
        // before rule 6), here the pod ready longer.
        let pods = [
            with_cost(rpod("old", "n", Some(5000), 0, 9000), "-100"),
            rpod("new", "n", Some(4000), 0, 9000),
        ];
        assert_eq!(pods_to_delete(&pods, 1), vec![1]);
        assert_eq!(
            replica_set_pods_to_delete(&pods, &HashMap::new(), None, 1),
            vec![0]
        );
        // Not ready before ready, in both.
        let pods = [
            rpod("ready", "n", Some(100), 0, 9000),
            rpod("not-ready", "n", None, 0, 9000),
        ];
        assert_eq!(pods_to_delete(&pods, 1), vec![1]);
    }

    #[test]
    fn deletion_cost_parses_as_upstream() {
        for (v, want) in [
            ("-5", -5),
            ("0", 0),
            ("17", 17),
            ("-007", -7),
            ("2147483647", i32::MAX),
            ("-2147483648", i32::MIN),
            ("+5", 0),
            ("007", 0),
            ("", 0),
            ("-", 0),
            ("abc", 0),
            ("2147483648", 0),
            ("1.5", 0),
        ] {
            assert_eq!(
                deletion_cost(&with_cost(rpod("a", "n", None, 0, 0), v)),
                want,
                "{v:?}"
            );
        }
        assert_eq!(deletion_cost(&rpod("a", "n", None, 0, 0)), 0);
    }

    /// Go's `int64(math.Log2(float64(d)))`: exact at powers of two, the floor elsewhere except
    /// within a rounding error below a large power of two.
    #[test]
    fn logarithmic_ranks_match_go() {
        for (d, want) in [
            (1i64, 0i64),
            (2, 1),
            (3, 1),
            (4, 2),
            (1023, 9),
            (1024, 10),
            (1025, 10),
            (10_000_000_000, 33),
            (12_000_000_000, 33),
            (20_000_000_000, 34),
            // Go's Log2 is Log(frac)/Ln2 + exp: for 2^53 - 1 that is 53 - 1.6e-16, which
            // rounds to 53.0 (the true floor is 52); upstream ranks it 53, and so do we.
            ((1 << 53) - 1, 53),
            ((1 << 40) - 1, 39),
            (1 << 62, 62),
            (i64::MAX, 63), // float64(MaxInt64) is 2^63
        ] {
            assert_eq!(go_log2_bucket(d), want, "{d}");
        }
        assert_eq!(log_rank(NOW, NOW_NS), -1, "not before now");
        assert_eq!(log_rank(NOW + 5, NOW_NS), -1, "in the future");
        assert_eq!(log_rank(NOW - 10, NOW_NS), 33);
        assert_eq!(log_rank(i64::MIN, NOW_NS), 63, "saturates as Go's Sub");
    }
}
