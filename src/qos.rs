//! A pod's quality-of-service class, as upstream's `ComputePodQOS`
//! (pkg/apis/core/helper/qos): the API server writes it to `status.qosClass` when the pod is
//! created, and `describe pod` prints it.
//!
//! - BestEffort: no container (init containers included) requests or limits any CPU or memory.
//! - Guaranteed: every container limits both CPU and memory, and the pod's summed requests equal
//!   its summed limits for each of them.
//! - Burstable: anything else.
//!
//! Only `cpu` and `memory` count; zero and unparsable quantities are ignored, as upstream skips
//! what is not greater than zero.
use std::collections::BTreeMap;

use crate::quantity::Quantity;
use crate::v1;

pub const GUARANTEED: &str = "Guaranteed";
pub const BURSTABLE: &str = "Burstable";
pub const BEST_EFFORT: &str = "BestEffort";

fn supported(name: &str) -> bool {
    name == "cpu" || name == "memory"
}

/// Adds the positive cpu/memory quantities of `list` into `sum`; the names found.
fn accumulate(
    sum: &mut BTreeMap<&'static str, Quantity>,
    list: &BTreeMap<String, String>,
) -> Vec<&'static str> {
    let mut found = vec![];
    for (name, value) in list {
        if !supported(name) {
            continue;
        }
        let Ok(q) = Quantity::parse(value) else {
            continue;
        };
        if q.sign() <= 0 {
            continue;
        }
        let key = if name == "cpu" { "cpu" } else { "memory" };
        found.push(key);
        let total = sum.get(key).map(|t| t.add(&q)).unwrap_or(q);
        sum.insert(key, total);
    }
    found
}

/// The QoS class of a pod with this spec.
pub fn pod_qos(spec: &v1::PodSpec) -> &'static str {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    let mut guaranteed = true;
    for c in spec.containers.iter().chain(spec.init_containers.iter()) {
        let Some(r) = c.resources.as_ref() else {
            guaranteed = false;
            continue;
        };
        accumulate(&mut requests, &r.requests);
        let found = accumulate(&mut limits, &r.limits);
        if !(found.contains(&"cpu") && found.contains(&"memory")) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return BEST_EFFORT;
    }
    if guaranteed
        && requests.len() == limits.len()
        && requests.iter().all(|(k, v)| limits.get(k) == Some(v))
    {
        return GUARANTEED;
    }
    BURSTABLE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> v1::Container {
        let map = |l: &[(&str, &str)]| {
            l.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        v1::Container {
            name: "c".into(),
            resources: Some(v1::ResourceRequirements {
                requests: map(requests),
                limits: map(limits),
            }),
            ..Default::default()
        }
    }

    fn spec(containers: Vec<v1::Container>, init: Vec<v1::Container>) -> v1::PodSpec {
        v1::PodSpec {
            containers,
            init_containers: init,
            ..Default::default()
        }
    }

    /// Cases from upstream's TestComputePodQOS.
    #[test]
    fn classes_as_upstream() {
        let cases: Vec<(v1::PodSpec, &str)> = vec![
            (spec(vec![container(&[], &[])], vec![]), BEST_EFFORT),
            (spec(vec![v1::Container::default()], vec![]), BEST_EFFORT),
            // Only unsupported resources: still BestEffort.
            (
                spec(
                    vec![container(
                        &[("nvidia.com/gpu", "1")],
                        &[("nvidia.com/gpu", "1")],
                    )],
                    vec![],
                ),
                BEST_EFFORT,
            ),
            (
                spec(
                    vec![container(
                        &[("cpu", "100m"), ("memory", "100Mi")],
                        &[("cpu", "100m"), ("memory", "100Mi")],
                    )],
                    vec![],
                ),
                GUARANTEED,
            ),
            // The same amount written differently is equal.
            (
                spec(
                    vec![container(
                        &[("cpu", "1"), ("memory", "1Gi")],
                        &[("cpu", "1000m"), ("memory", "1024Mi")],
                    )],
                    vec![],
                ),
                GUARANTEED,
            ),
            // Limits only (requests default from limits on the pod, but not here): not equal.
            (
                spec(
                    vec![container(&[], &[("cpu", "100m"), ("memory", "100Mi")])],
                    vec![],
                ),
                BURSTABLE,
            ),
            (
                spec(vec![container(&[("cpu", "100m")], &[])], vec![]),
                BURSTABLE,
            ),
            // A CPU limit but no memory limit.
            (
                spec(
                    vec![container(&[("cpu", "100m")], &[("cpu", "100m")])],
                    vec![],
                ),
                BURSTABLE,
            ),
            // One guaranteed container and one best-effort one.
            (
                spec(
                    vec![
                        container(
                            &[("cpu", "100m"), ("memory", "100Mi")],
                            &[("cpu", "100m"), ("memory", "100Mi")],
                        ),
                        container(&[], &[]),
                    ],
                    vec![],
                ),
                BURSTABLE,
            ),
            // An init container counts.
            (
                spec(
                    vec![container(&[], &[])],
                    vec![container(&[("memory", "10Mi")], &[])],
                ),
                BURSTABLE,
            ),
            // Zero quantities are ignored.
            (
                spec(vec![container(&[("cpu", "0")], &[("memory", "0")])], vec![]),
                BEST_EFFORT,
            ),
        ];
        for (i, (s, want)) in cases.into_iter().enumerate() {
            assert_eq!(pod_qos(&s), want, "case {i}");
        }
    }
}
