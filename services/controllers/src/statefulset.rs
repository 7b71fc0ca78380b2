//! StatefulSet logic, after Kubernetes' `pkg/controller/statefulset` (`updateStatefulSet`):
//! ordinal pod names, claim names, ControllerRevision data, and the per-sync plan
//! ([`plan`]) for OrderedReady and Parallel pod management, scale-down from the highest
//! ordinal, and RollingUpdate in reverse ordinal order down to the partition.
use coxswain_api::v1::{ControllerRevision, PodTemplateSpec};

/// Pod label: the ControllerRevision the pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// Pod label: the pod's name.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Pod label: the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// `<set>-<ordinal>`.
pub fn pod_name(set: &str, ordinal: i32) -> String {
    format!("{set}-{ordinal}")
}

/// The ordinal of a pod of `set` (`<set>-<n>`), if the name has that form.
pub fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    let rest = pod.strip_prefix(set)?.strip_prefix('-')?;
    if rest.is_empty()
        || !rest.bytes().all(|b| b.is_ascii_digit())
        || (rest.len() > 1 && rest.starts_with('0'))
    {
        return None;
    }
    rest.parse().ok()
}

/// `<claim template>-<pod>`.
pub fn claim_name(claim: &str, pod: &str) -> String {
    format!("{claim}-{pod}")
}

/// ControllerRevision data for a template: `{"spec":{"template":…}}` (Kubernetes stores a patch
/// of that shape).
pub fn revision_data(template: &PodTemplateSpec) -> String {
    serde_json::json!({"spec": {"template": template}}).to_string()
}

/// The template a ControllerRevision holds.
pub fn template_from_revision(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let v: serde_json::Value = serde_json::from_str(&rev.data).ok()?;
    serde_json::from_value(v.get("spec")?.get("template")?.clone()).ok()
}

/// What the plan knows about one existing pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    pub ordinal: i32,
    /// Its controller-revision-hash label.
    pub revision: String,
    /// Running with Ready=True.
    pub running_ready: bool,
    /// Succeeded or Failed: to be deleted and re-created.
    pub terminal: bool,
    /// Has a deletionTimestamp.
    pub terminating: bool,
}

/// One step of a StatefulSet sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create the pod with this ordinal (from the update revision, or the current revision
    /// below the partition).
    Create(i32),
    /// Delete the pod with this ordinal (terminal, condemned by a scale-down, or out of date).
    Delete(i32),
}

/// Inputs of [`plan`].
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    pub replicas: i32,
    /// podManagementPolicy Parallel.
    pub parallel: bool,
    /// updateStrategy OnDelete.
    pub on_delete: bool,
    /// RollingUpdate partition.
    pub partition: i32,
    pub update_revision: &'a str,
    pub pods: &'a [PodView],
}

/// The steps of one sync. OrderedReady: creation in ordinal order, each only once every lower
/// ordinal is Running and Ready (one step per sync); scale-down removes the highest ordinal
/// first, one at a time, and only when everything else is healthy. Parallel: every missing pod
/// is created and every condemned pod deleted at once. Rolling update (not OnDelete): once every
/// pod is Running and Ready, the highest-ordinal out-of-date pod at or above the partition is
/// deleted (it is re-created from the update revision by a later sync).
pub fn plan(input: &PlanInput<'_>) -> Vec<Step> {
    let monotonic = !input.parallel;
    let mut steps = Vec::new();
    let by_ord = |o: i32| input.pods.iter().find(|p| p.ordinal == o);
    // Replicas in ordinal order.
    for o in 0..input.replicas {
        match by_ord(o) {
            None => {
                steps.push(Step::Create(o));
                if monotonic {
                    return steps;
                }
            }
            Some(p) if p.terminal && !p.terminating => {
                steps.push(Step::Delete(o));
                if monotonic {
                    return steps;
                }
            }
            Some(p) => {
                if monotonic && (p.terminating || !p.running_ready) {
                    return steps;
                }
            }
        }
    }
    // Condemned pods, highest ordinal first.
    let mut condemned: Vec<&PodView> = input
        .pods
        .iter()
        .filter(|p| p.ordinal >= input.replicas)
        .collect();
    condemned.sort_by_key(|p| std::cmp::Reverse(p.ordinal));
    for p in condemned {
        if p.terminating {
            if monotonic {
                return steps;
            }
            continue;
        }
        steps.push(Step::Delete(p.ordinal));
        if monotonic {
            return steps;
        }
    }
    if !steps.is_empty() || input.on_delete {
        return steps;
    }
    // Rolling update, highest ordinal first, down to the partition.
    let all_healthy =
        (0..input.replicas).all(|o| by_ord(o).is_some_and(|p| p.running_ready && !p.terminating));
    if !all_healthy {
        return steps;
    }
    for o in (input.partition.max(0)..input.replicas).rev() {
        if let Some(p) = by_ord(o) {
            if p.revision != input.update_revision {
                steps.push(Step::Delete(o));
                return steps;
            }
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(ordinal: i32, rev: &str, ready: bool) -> PodView {
        PodView {
            ordinal,
            revision: rev.into(),
            running_ready: ready,
            terminal: false,
            terminating: false,
        }
    }

    fn input<'a>(replicas: i32, parallel: bool, pods: &'a [PodView]) -> PlanInput<'a> {
        PlanInput {
            replicas,
            parallel,
            on_delete: false,
            partition: 0,
            update_revision: "r1",
            pods,
        }
    }

    #[test]
    fn names_and_ordinals() {
        assert_eq!(pod_name("web", 2), "web-2");
        assert_eq!(ordinal_of("web", "web-2"), Some(2));
        assert_eq!(ordinal_of("web", "web-10"), Some(10));
        assert_eq!(ordinal_of("web", "web-02"), None);
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "webx-1"), None);
        assert_eq!(ordinal_of("web", "web-"), None);
        assert_eq!(claim_name("www", "web-0"), "www-web-0");
    }

    #[test]
    fn revision_round_trip() {
        let mut t = PodTemplateSpec::default();
        t.metadata
            .get_or_insert_with(Default::default)
            .labels
            .insert("app".into(), "x".into());
        let rev = ControllerRevision {
            data: revision_data(&t),
            ..Default::default()
        };
        assert_eq!(template_from_revision(&rev), Some(t));
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time() {
        // (pods present, expected steps)
        let cases: Vec<(Vec<PodView>, Vec<Step>)> = vec![
            (vec![], vec![Step::Create(0)]),
            (vec![pv(0, "r1", false)], vec![]), // wait for 0 to be ready
            (vec![pv(0, "r1", true)], vec![Step::Create(1)]),
            (
                vec![pv(0, "r1", true), pv(1, "r1", true)],
                vec![Step::Create(2)],
            ),
            (
                vec![pv(0, "r1", true), pv(2, "r1", true)],
                vec![Step::Create(1)],
            ),
            (
                vec![pv(0, "r1", true), pv(1, "r1", true), pv(2, "r1", true)],
                vec![],
            ),
        ];
        for (pods, want) in cases {
            assert_eq!(plan(&input(3, false, &pods)), want, "pods {pods:?}");
        }
    }

    #[test]
    fn parallel_creates_and_deletes_everything_at_once() {
        assert_eq!(
            plan(&input(3, true, &[])),
            vec![Step::Create(0), Step::Create(1), Step::Create(2)]
        );
        let pods = [
            pv(0, "r1", true),
            pv(1, "r1", false),
            pv(2, "r1", true),
            pv(3, "r1", true),
        ];
        assert_eq!(
            plan(&input(1, true, &pods)),
            vec![Step::Delete(3), Step::Delete(2), Step::Delete(1)]
        );
    }

    #[test]
    fn ordered_scale_down_highest_first_one_at_a_time() {
        let pods = [pv(0, "r1", true), pv(1, "r1", true), pv(2, "r1", true)];
        assert_eq!(plan(&input(1, false, &pods)), vec![Step::Delete(2)]);
        let mut terminating = pods.clone();
        terminating[2].terminating = true;
        assert_eq!(
            plan(&input(1, false, &terminating)),
            vec![],
            "wait for 2 to be gone"
        );
        assert_eq!(plan(&input(1, false, &pods[..2])), vec![Step::Delete(1)]);
    }

    #[test]
    fn terminal_pods_are_replaced() {
        let mut pods = vec![pv(0, "r1", true), pv(1, "r1", false)];
        pods[1].terminal = true;
        assert_eq!(plan(&input(2, false, &pods)), vec![Step::Delete(1)]);
    }

    #[test]
    fn rolling_update_reverse_ordinal_with_partition() {
        let pods = [pv(0, "r0", true), pv(1, "r0", true), pv(2, "r0", true)];
        let mut i = input(3, false, &pods);
        assert_eq!(plan(&i), vec![Step::Delete(2)]);
        let pods2 = [pv(0, "r0", true), pv(1, "r0", true), pv(2, "r1", false)];
        i.pods = &pods2;
        assert_eq!(plan(&i), vec![], "wait until the updated pod is ready");
        let pods3 = [pv(0, "r0", true), pv(1, "r0", true), pv(2, "r1", true)];
        i.pods = &pods3;
        assert_eq!(plan(&i), vec![Step::Delete(1)]);
        i.partition = 2;
        assert_eq!(
            plan(&i),
            vec![],
            "ordinals below the partition are not updated"
        );
        i.partition = 0;
        i.on_delete = true;
        assert_eq!(plan(&i), vec![], "OnDelete never deletes for updates");
    }
}
