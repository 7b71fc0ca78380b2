//! `describe node` in kubectl's layout (pkg/describe/describe.go describeNode, kubernetes/kubectl
//! 365ecee): head, Lease, Conditions, Addresses, Capacity/Allocatable, System Info (always),
//! PodCIDR(s), ProviderID, then the node's non-terminated pods and their summed requests and
//! limits (describeNodeResource).
use std::collections::BTreeMap;

use coxswain_api::quantity::Quantity;
use serde_json::Value;

use super::{annotations, pairs, taint, ts, W};
use crate::age;
use crate::jv::{arr, at, b, map, s};
use crate::printers::core as pcore;

/// The node's Lease as the describer found it: the object, or the error text.
pub type LeaseLookup = Option<std::result::Result<Value, String>>;

fn lease(w: &mut W, l: &LeaseLookup) {
    match l {
        None => {}
        Some(Err(e)) => w.line(0, format!("Lease:\tFailed to get lease: {e}")),
        Some(Ok(lease)) => {
            w.line(0, "Lease:");
            let holder = s(lease, "spec.holderIdentity");
            let unset = |v: &str| {
                if v.is_empty() {
                    "<unset>".to_string()
                } else {
                    v.to_string()
                }
            };
            w.line(1, format!("HolderIdentity:\t{}", unset(&holder)));
            let t = |path: &str| {
                if s(lease, path).is_empty() {
                    "<unset>".to_string()
                } else {
                    ts(lease, path)
                }
            };
            w.line(1, format!("AcquireTime:\t{}", t("spec.acquireTime")));
            w.line(1, format!("RenewTime:\t{}", t("spec.renewTime")));
        }
    }
}

/// kubectl's SortableResourceNames order is plain string order.
fn resource_list(w: &mut W, o: &Value, path: &str) {
    let mut m = map(o, path);
    m.sort();
    for (k, v) in m {
        let shown = Quantity::parse(&v).map(|q| q.canonical()).unwrap_or(v);
        w.line(1, format!("{k}:\t{shown}"));
    }
}

type Resources = BTreeMap<String, Quantity>;

fn container_list(c: &Value, what: &str) -> Resources {
    map(c, &format!("resources.{what}"))
        .into_iter()
        .filter_map(|(k, v)| Quantity::parse(&v).ok().map(|q| (k, q)))
        .collect()
}

/// resourcehelper.PodRequestsAndLimits: the containers' sum, at least each (non-sidecar) init
/// container's own value, plus the pod overhead.
pub fn pod_requests_and_limits(pod: &Value) -> (Resources, Resources) {
    let mut out = (Resources::new(), Resources::new());
    for (i, what) in ["requests", "limits"].into_iter().enumerate() {
        let acc = if i == 0 { &mut out.0 } else { &mut out.1 };
        for c in arr(pod, "spec.containers") {
            for (k, q) in container_list(c, what) {
                let sum = acc.get(&k).map_or(q, |a| a.add(&q));
                acc.insert(k, sum);
            }
        }
        let mut sidecars = Resources::new();
        for c in arr(pod, "spec.initContainers") {
            let sidecar = s(c, "restartPolicy") == "Always";
            for (k, q) in container_list(c, what) {
                if sidecar {
                    let sum = sidecars.get(&k).map_or(q, |a| a.add(&q));
                    sidecars.insert(k, sum);
                    continue;
                }
                let with_sidecars = sidecars.get(&k).map_or(q, |a| a.add(&q));
                if acc.get(&k).is_none_or(|a| *a < with_sidecars) {
                    acc.insert(k, with_sidecars);
                }
            }
        }
        for (k, q) in sidecars {
            let sum = acc.get(&k).map_or(q, |a| a.add(&q));
            acc.insert(k, sum);
        }
        for (k, v) in map(pod, "spec.overhead") {
            if let Ok(q) = Quantity::parse(&v) {
                if acc.contains_key(&k) || i == 0 {
                    let sum = acc.get(&k).map_or(q, |a| a.add(&q));
                    acc.insert(k, sum);
                }
            }
        }
    }
    out
}

fn get(r: &Resources, k: &str) -> Quantity {
    r.get(k).cloned().unwrap_or_else(Quantity::zero)
}

/// int64(float64(part)/float64(whole)*100) as Go computes it (0 when whole is 0, as kubectl
/// guards the totals; the per-pod lines share the guard here instead of printing Go's NaN).
fn percent(part: i64, whole: i64) -> i64 {
    if whole == 0 {
        return 0;
    }
    (part as f64 / whole as f64 * 100.0) as i64
}

fn node_resources(w: &mut W, o: &Value, pods: &[Value], now: i64) {
    w.line(
        0,
        format!("Non-terminated Pods:\t({} in total)", pods.len()),
    );
    w.line(
        1,
        "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge",
    );
    w.line(
        1,
        "---------\t----\t\t------------\t----------\t---------------\t-------------\t---",
    );
    let alloc_path = if map(o, "status.allocatable").is_empty() {
        "status.capacity"
    } else {
        "status.allocatable"
    };
    let allocatable: Resources = map(o, alloc_path)
        .into_iter()
        .filter_map(|(k, v)| Quantity::parse(&v).ok().map(|q| (k, q)))
        .collect();
    let cpu = get(&allocatable, "cpu").milli_value();
    let mem = get(&allocatable, "memory").value();
    let mut reqs = Resources::new();
    let mut limits = Resources::new();
    for p in pods {
        let (r, l) = pod_requests_and_limits(p);
        let (cr, cl, mr, ml) = (
            get(&r, "cpu"),
            get(&l, "cpu"),
            get(&r, "memory"),
            get(&l, "memory"),
        );
        w.line(
            1,
            format!(
                "{}\t{}\t\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{}",
                s(p, "metadata.namespace"),
                s(p, "metadata.name"),
                cr.canonical(),
                percent(cr.milli_value(), cpu),
                cl.canonical(),
                percent(cl.milli_value(), cpu),
                mr.canonical(),
                percent(mr.value(), mem),
                ml.canonical(),
                percent(ml.value(), mem),
                age::since(&s(p, "metadata.creationTimestamp"), now)
            ),
        );
        for (acc, part) in [(&mut reqs, r), (&mut limits, l)] {
            for (k, q) in part {
                let sum = acc.get(&k).map_or(q, |a| a.add(&q));
                acc.insert(k, sum);
            }
        }
    }
    w.line(0, "Allocated resources:");
    w.line(
        1,
        "(Total limits may be over 100 percent, i.e., overcommitted.)",
    );
    w.line(1, "Resource\tRequests\tLimits");
    w.line(1, "--------\t--------\t------");
    for (name, whole) in [
        ("cpu", cpu),
        ("memory", mem),
        (
            "ephemeral-storage",
            get(&allocatable, "ephemeral-storage").value(),
        ),
    ] {
        let (r, l) = (get(&reqs, name), get(&limits, name));
        let (rv, lv) = if name == "cpu" {
            (r.milli_value(), l.milli_value())
        } else {
            (r.value(), l.value())
        };
        w.line(
            1,
            format!(
                "{name}\t{} ({}%)\t{} ({}%)",
                r.canonical(),
                percent(rv, whole),
                l.canonical(),
                percent(lv, whole)
            ),
        );
    }
    let standard = |k: &str| {
        matches!(
            k,
            "cpu" | "memory" | "ephemeral-storage" | "storage" | "pods"
        ) || k.starts_with("requests.")
            || k.starts_with("limits.")
    };
    let huge: Vec<&String> = allocatable
        .keys()
        .filter(|k| k.starts_with("hugepages-"))
        .collect();
    for k in huge {
        let (r, l, a) = (get(&reqs, k), get(&limits, k), get(&allocatable, k).value());
        w.line(
            1,
            format!(
                "{k}\t{} ({}%)\t{} ({}%)",
                r.canonical(),
                percent(r.value(), a),
                l.canonical(),
                percent(l.value(), a)
            ),
        );
    }
    let ext: Vec<&String> = allocatable
        .keys()
        .filter(|k| !k.starts_with("hugepages-") && !standard(k))
        .collect();
    for k in ext {
        w.line(
            1,
            format!(
                "{k}\t{}\t{}",
                get(&reqs, k).canonical(),
                get(&limits, k).canonical()
            ),
        );
    }
}

/// `pods`: the node's pods that are neither Succeeded nor Failed.
pub fn describe_node(w: &mut W, o: &Value, lease_lookup: &LeaseLookup, pods: &[Value], now: i64) {
    w.line(0, format!("Name:\t{}", s(o, "metadata.name")));
    w.line(0, format!("Roles:\t{}", pcore::node_roles(o)));
    w.multiline(0, "Labels", &pairs(o, "metadata.labels"));
    w.multiline(0, "Annotations", &annotations(o, "metadata.annotations"));
    w.line(
        0,
        format!(
            "CreationTimestamp:\t{}",
            ts(o, "metadata.creationTimestamp")
        ),
    );
    let taints: Vec<String> = arr(o, "spec.taints").iter().map(taint).collect();
    w.multiline(0, "Taints", &taints);
    w.line(0, format!("Unschedulable:\t{}", b(o, "spec.unschedulable")));
    lease(w, lease_lookup);
    let conds = arr(o, "status.conditions");
    if !conds.is_empty() {
        w.line(0, "Conditions:");
        w.line(
            1,
            "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage",
        );
        w.line(
            1,
            "----\t------\t-----------------\t------------------\t------\t-------",
        );
        for c in conds {
            w.line(
                1,
                format!(
                    "{} \t{} \t{} \t{} \t{} \t{}",
                    s(c, "type"),
                    s(c, "status"),
                    ts(c, "lastHeartbeatTime"),
                    ts(c, "lastTransitionTime"),
                    s(c, "reason"),
                    s(c, "message")
                ),
            );
        }
    }
    w.line(0, "Addresses:");
    for a in arr(o, "status.addresses") {
        w.line(1, format!("{}:\t{}", s(a, "type"), s(a, "address")));
    }
    for (label, path) in [
        ("Capacity", "status.capacity"),
        ("Allocatable", "status.allocatable"),
    ] {
        if !map(o, path).is_empty() {
            w.line(0, format!("{label}:"));
            resource_list(w, o, path);
        }
    }
    let info = at(o, "status.nodeInfo");
    w.line(0, "System Info:");
    for (label, key) in [
        ("Machine ID", "machineID"),
        ("System UUID", "systemUUID"),
        ("Boot ID", "bootID"),
        ("Kernel Version", "kernelVersion"),
        ("OS Image", "osImage"),
        ("Operating System", "operatingSystem"),
        ("Architecture", "architecture"),
        ("Container Runtime Version", "containerRuntimeVersion"),
        ("Kubelet Version", "kubeletVersion"),
        ("Kube-Proxy Version", "kubeProxyVersion"),
    ] {
        w.line(1, format!("{label}:\t{}", s(info, key)));
    }
    let cidr = s(o, "spec.podCIDR");
    if !cidr.is_empty() {
        w.line(0, format!("PodCIDR:\t{cidr}"));
    }
    let cidrs: Vec<String> = arr(o, "spec.podCIDRs")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    if !cidrs.is_empty() {
        w.line(0, format!("PodCIDRs:\t{}", cidrs.join(",")));
    }
    let provider = s(o, "spec.providerID");
    if !provider.is_empty() {
        w.line(0, format!("ProviderID:\t{provider}"));
    }
    node_resources(w, o, pods, now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_sum_containers_and_take_the_larger_init_container() {
        let p = json!({"spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1"}}},
                {"resources": {"requests": {"cpu": "200m"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "500m", "memory": "32Mi"}}}]}});
        let (r, l) = pod_requests_and_limits(&p);
        assert_eq!(r["cpu"].canonical(), "500m");
        assert_eq!(r["memory"].canonical(), "64Mi");
        assert_eq!(l["cpu"].canonical(), "1");
        assert!(!l.contains_key("memory"));
    }

    #[test]
    fn node_layout_has_lease_system_info_and_allocated_resources() {
        let node = json!({"metadata": {"name": "n1", "creationTimestamp": "2024-01-02T03:04:05Z"},
            "status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "110"}}});
        let pod = json!({"metadata": {"namespace": "default", "name": "web",
                "creationTimestamp": "2024-01-02T03:04:05Z"},
            "spec": {"containers": [{"resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}}]}});
        let mut w = W::new();
        describe_node(
            &mut w,
            &node,
            &Some(Err("leases.coordination.k8s.io \"n1\" not found".into())),
            &[pod],
            1_704_164_645 + 60,
        );
        let out = w.finish();
        assert!(
            out.contains("Lease:              Failed to get lease: leases.coordination.k8s.io \"n1\" not found\n"),
            "{out}"
        );
        assert!(out.contains("System Info:\n  Machine ID:"), "{out}");
        assert!(out.contains("  Kube-Proxy Version:         \n"), "{out}");
        assert!(
            out.contains("Non-terminated Pods:          (1 in total)\n"),
            "{out}"
        );
        assert!(
            out.contains("  default                     web     ")
                && out.contains("500m (25%)    0 (0%)      256Mi (25%)      0 (0%)         60s\n"),
            "{out}"
        );
        assert!(
            out.contains("  cpu                500m (25%)   0 (0%)\n  memory             256Mi (25%)  0 (0%)\n  ephemeral-storage  0 (0%)       0 (0%)\n"),
            "{out}"
        );
    }
}
