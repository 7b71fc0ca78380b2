//! The EndpointSlices of a Service, as upstream's `pkg/controller/endpointslice` reconciler
//! computes them (pure: the Service, its selected pods and its current slices in, the slices to
//! create, update and delete out).
//!
//! - Every pod with an IP that is not terminal is an endpoint (terminating ones too, with
//!   `terminating: true`); `serving` is the pod's readiness, `ready` is serving and not
//!   terminating (always true with `publishNotReadyAddresses`).
//! - Endpoints are grouped by their resolved port set (named targetPorts resolve per pod); each
//!   group fills slices of at most `max_per_slice` endpoints.
//! - Incremental, as upstream: an existing slice keeps its endpoints while they are desired; a
//!   slice changes only when one of its own endpoints changed or went away (a readiness flip
//!   rewrites the one slice holding that pod), new endpoints go first into slices being updated
//!   anyway, then into the unchanged slice they fit best, and only then into new slices.
//! - A Service without endpoints keeps one empty placeholder slice.
use std::collections::BTreeMap;

use coxswain_api::v1::{
    Endpoint, EndpointConditions, EndpointSlice, EndpointSlicePort, ObjectMeta, OwnerReference,
    Pod, Service,
};

use crate::endpoints::{
    find_port, is_headless, is_ready, is_terminating, pod_ip, should_pod_be_in_endpoints,
    should_set_hostname, target_ref, HEADLESS_LABEL,
};

/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming who manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's managed-by value.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// The default of `--max-endpoints-per-slice`.
pub const DEFAULT_MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// The node label a zone comes from.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// A slice group: address type and port set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortMapKey {
    pub address_type: String,
    pub ports: Vec<(String, i32, String, Option<String>)>,
}

impl PortMapKey {
    pub(crate) fn of_ports(address_type: &str, ports: &[EndpointSlicePort]) -> PortMapKey {
        let mut ports: Vec<_> = ports
            .iter()
            .map(|p| {
                (
                    p.name.clone().unwrap_or_default(),
                    p.port.unwrap_or_default(),
                    p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    p.app_protocol.clone(),
                )
            })
            .collect();
        ports.sort();
        PortMapKey {
            address_type: address_type.to_string(),
            ports,
        }
    }

    fn slice_ports(&self) -> Vec<EndpointSlicePort> {
        self.ports
            .iter()
            .map(|(n, p, pr, ap)| EndpointSlicePort {
                name: Some(n.clone()),
                port: Some(*p),
                protocol: Some(pr.clone()),
                app_protocol: ap.clone(),
            })
            .collect()
    }
}

/// What identifies an endpoint across updates (upstream's endpoint hash): its addresses,
/// hostname and target.
pub fn endpoint_key(e: &Endpoint) -> String {
    let mut a = e.addresses.clone();
    a.sort();
    let (ns, name) = e
        .target_ref
        .as_ref()
        .map(|r| (r.namespace.as_str(), r.name.as_str()))
        .unwrap_or_default();
    format!(
        "{}|{}|{ns}/{name}",
        a.join(","),
        e.hostname.as_deref().unwrap_or("")
    )
}

/// The endpoint of a pod for a Service (upstream's `podToEndpoint`).
pub fn pod_to_endpoint(pod: &Pod, svc: &Service, zone: Option<String>) -> Endpoint {
    let serving = is_ready(pod);
    let terminating = is_terminating(pod);
    let publish = svc
        .spec
        .as_ref()
        .is_some_and(|s| s.publish_not_ready_addresses);
    let ready = publish || (serving && !terminating);
    let spec = pod.spec.clone().unwrap_or_default();
    Endpoint {
        addresses: vec![pod_ip(pod).to_string()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: should_set_hostname(pod, svc).then(|| spec.hostname.clone()),
        target_ref: Some(target_ref(pod)),
        node_name: Some(spec.node_name).filter(|n| !n.is_empty()),
        zone,
        hints: None,
        deprecated_topology: Default::default(),
    }
}

fn address_type(ip: &str) -> &'static str {
    if ip.contains(':') {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// The desired endpoints of a Service, grouped by slice group, each group sorted by key.
/// `zone_of(node)` gives a node's zone label.
pub fn desired(
    svc: &Service,
    pods: &[&Pod],
    zone_of: impl Fn(&str) -> Option<String>,
) -> BTreeMap<PortMapKey, BTreeMap<String, Endpoint>> {
    let spec = svc.spec.clone().unwrap_or_default();
    let mut out: BTreeMap<PortMapKey, BTreeMap<String, Endpoint>> = BTreeMap::new();
    for pod in pods {
        if !should_pod_be_in_endpoints(pod, true) {
            continue;
        }
        let ports: Vec<EndpointSlicePort> = if spec.ports.is_empty() && is_headless(svc) {
            vec![]
        } else {
            spec.ports
                .iter()
                .filter_map(|sp| {
                    find_port(pod, sp).map(|n| EndpointSlicePort {
                        name: Some(sp.name.clone()),
                        port: Some(n),
                        protocol: Some(if sp.protocol.is_empty() {
                            "TCP".into()
                        } else {
                            sp.protocol.clone()
                        }),
                        app_protocol: sp.app_protocol.clone(),
                    })
                })
                .collect()
        };
        let node = pod
            .spec
            .as_ref()
            .map(|s| s.node_name.as_str())
            .unwrap_or("");
        let zone = if node.is_empty() { None } else { zone_of(node) };
        let ep = pod_to_endpoint(pod, svc, zone);
        let key = PortMapKey::of_ports(address_type(pod_ip(pod)), &ports);
        out.entry(key).or_default().insert(endpoint_key(&ep), ep);
    }
    out
}

/// The labels a slice of `svc` carries: the Service's own (but the reserved ones), the headless
/// label for a headless Service, the service-name and managed-by labels.
pub fn slice_labels(svc: &Service) -> BTreeMap<String, String> {
    let sm = svc.metadata.clone().unwrap_or_default();
    let mut l: BTreeMap<String, String> = sm
        .labels
        .into_iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                SERVICE_NAME_LABEL | MANAGED_BY_LABEL | HEADLESS_LABEL
            )
        })
        .collect();
    if is_headless(svc) {
        l.insert(HEADLESS_LABEL.into(), String::new());
    }
    l.insert(SERVICE_NAME_LABEL.into(), sm.name);
    l.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    l
}

/// Upstream's slice name prefix: "<service>-" (or the bare name when that would be too long).
fn prefix(name: &str) -> String {
    if name.len() + 1 > 253 - 5 {
        name.to_string()
    } else {
        format!("{name}-")
    }
}

/// A new (unnamed, generateName set) slice of `svc` for a group.
pub fn new_slice(svc: &Service, key: &PortMapKey) -> EndpointSlice {
    let sm = svc.metadata.clone().unwrap_or_default();
    EndpointSlice {
        api_version: "discovery.k8s.io/v1".into(),
        kind: "EndpointSlice".into(),
        metadata: Some(ObjectMeta {
            generate_name: prefix(&sm.name),
            namespace: sm.namespace.clone(),
            labels: slice_labels(svc),
            owner_references: vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Service".into(),
                name: sm.name.clone(),
                uid: sm.uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }],
            ..Default::default()
        }),
        address_type: key.address_type.clone(),
        endpoints: vec![],
        ports: key.slice_ports(),
    }
}

/// What to write.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<EndpointSlice>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

fn name_of(s: &EndpointSlice) -> &str {
    s.metadata.as_ref().map_or("", |m| m.name.as_str())
}

fn is_placeholder(s: &EndpointSlice) -> bool {
    s.endpoints.is_empty() && s.ports.is_empty()
}

/// Upstream's `reconcile` for one Service: `existing` are the slices it manages.
pub fn reconcile(
    svc: &Service,
    mut desired: BTreeMap<PortMapKey, BTreeMap<String, Endpoint>>,
    existing: &[&EndpointSlice],
    max_per_slice: usize,
) -> Plan {
    let max = max_per_slice.max(1);
    let labels = slice_labels(svc);
    let mut by_key: BTreeMap<PortMapKey, Vec<&EndpointSlice>> = BTreeMap::new();
    let mut plan = Plan::default();
    let mut sorted: Vec<&EndpointSlice> = existing.to_vec();
    sorted.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    for s in sorted {
        let k = PortMapKey::of_ports(&s.address_type, &s.ports);
        if desired.contains_key(&k) {
            by_key.entry(k).or_default().push(s);
        } else {
            plan.delete.push(s.clone());
        }
    }
    for (key, want) in desired.iter_mut() {
        let slices = by_key.remove(key).unwrap_or_default();
        reconcile_group(svc, key, want, &slices, &labels, max, &mut plan);
    }
    // No endpoints at all: keep (or make) one placeholder slice.
    if existing.len() == plan.delete.len() && plan.create.is_empty() {
        if plan.delete.len() == 1 && is_placeholder(&plan.delete[0]) {
            let mut keep = plan.delete.remove(0);
            if keep.metadata.as_ref().map(|m| &m.labels) != Some(&labels) {
                keep.metadata.get_or_insert_with(Default::default).labels = labels.clone();
                plan.update.push(keep);
            }
        } else {
            plan.create.push(new_slice(
                svc,
                &PortMapKey {
                    address_type: "IPv4".into(),
                    ports: vec![],
                },
            ));
        }
    }
    // Reuse slices about to be deleted for creations (an update instead of delete + create).
    let mut i = 0;
    while i < plan.create.len() && !plan.delete.is_empty() {
        if plan.create[i].address_type == plan.delete[0].address_type {
            let old = plan.delete.remove(0);
            let mut new = plan.create.remove(i);
            let nm = new.metadata.get_or_insert_with(Default::default);
            let om = old.metadata.clone().unwrap_or_default();
            nm.name = om.name;
            nm.generate_name.clear();
            nm.resource_version = om.resource_version;
            nm.uid = om.uid;
            nm.creation_timestamp = om.creation_timestamp;
            plan.update.push(new);
        } else {
            i += 1;
        }
    }
    plan
}

fn reconcile_group(
    svc: &Service,
    key: &PortMapKey,
    want: &mut BTreeMap<String, Endpoint>,
    slices: &[&EndpointSlice],
    labels: &BTreeMap<String, String>,
    max: usize,
    plan: &mut Plan,
) {
    let mut to_update: Vec<EndpointSlice> = Vec::new();
    let mut unchanged: Vec<EndpointSlice> = Vec::new();
    // 1. Keep desired endpoints where they are; drop the others; note changed slices.
    for s in slices {
        let mut kept = Vec::with_capacity(s.endpoints.len());
        let mut changed = false;
        for e in &s.endpoints {
            if let Some(got) = want.remove(&endpoint_key(e)) {
                changed |= got != *e;
                kept.push(got);
            }
        }
        let labels_changed = s.metadata.as_ref().map(|m| &m.labels) != Some(labels);
        if changed || kept.len() != s.endpoints.len() {
            if kept.is_empty() {
                plan.delete.push((*s).clone());
            } else {
                let mut n = (*s).clone();
                n.endpoints = kept;
                n.metadata.get_or_insert_with(Default::default).labels = labels.clone();
                to_update.push(n);
            }
        } else if labels_changed {
            let mut n = (*s).clone();
            n.metadata.get_or_insert_with(Default::default).labels = labels.clone();
            to_update.push(n);
        } else {
            unchanged.push((*s).clone());
        }
    }
    let mut remaining: Vec<Endpoint> = std::mem::take(want).into_values().collect();
    remaining.reverse(); // pop() takes them in key order
                         // 2. Fill the slices being updated anyway, fullest first.
    to_update.sort_by_key(|s| std::cmp::Reverse(s.endpoints.len()));
    for s in to_update.iter_mut() {
        while !remaining.is_empty() && s.endpoints.len() < max {
            s.endpoints.extend(remaining.pop());
        }
    }
    // 3. The rest: into the unchanged slice it fits best, else new slices.
    while !remaining.is_empty() {
        let mut target: Option<usize> = None;
        if remaining.len() < max {
            let mut closest = max;
            for (i, s) in unchanged.iter().enumerate() {
                let need = remaining.len() + s.endpoints.len();
                if need <= max && max - need < closest {
                    closest = max - need;
                    target = Some(i);
                }
            }
        }
        let mut s = match target {
            Some(i) => unchanged.remove(i),
            None => new_slice(svc, key),
        };
        while !remaining.is_empty() && s.endpoints.len() < max {
            s.endpoints.extend(remaining.pop());
        }
        if name_of(&s).is_empty() {
            plan.create.push(s);
        } else {
            to_update.push(s);
        }
    }
    plan.update.extend(to_update);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::tests_support::{pod, port, svc};
    use coxswain_api::v1::IntOrString;

    fn named(mut s: EndpointSlice, name: &str) -> EndpointSlice {
        s.metadata.get_or_insert_with(Default::default).name = name.into();
        s
    }

    /// Apply a plan to a set of slices, as the store would (names for creations).
    fn apply(existing: &mut Vec<EndpointSlice>, plan: Plan, next: &mut usize) {
        for d in &plan.delete {
            existing.retain(|s| name_of(s) != name_of(d));
        }
        for u in plan.update {
            let i = existing
                .iter()
                .position(|s| name_of(s) == name_of(&u))
                .expect("updates an existing slice");
            existing[i] = u;
        }
        for c in plan.create {
            *next += 1;
            existing.push(named(c, &format!("web-{next}")));
        }
    }

    fn run(
        s: &Service,
        pods: &[Pod],
        existing: &mut Vec<EndpointSlice>,
        max: usize,
        next: &mut usize,
    ) -> Plan {
        let refs: Vec<&Pod> = pods.iter().collect();
        let ex: Vec<&EndpointSlice> = existing.iter().collect();
        let plan = reconcile(s, desired(s, &refs, |_| None), &ex, max);
        apply(existing, plan.clone(), next);
        plan
    }

    fn pods(n: usize) -> Vec<Pod> {
        (0..n)
            .map(|i| pod(&format!("p{i:03}"), &format!("127.3.0.{}", i + 1), true))
            .collect()
    }

    #[test]
    fn endpoints_split_into_slices_of_at_most_max() {
        let s = svc(vec![port("http", 80, IntOrString::int(8080))]);
        let mut slices = vec![];
        let mut next = 0;
        let plan = run(&s, &pods(25), &mut slices, 10, &mut next);
        assert_eq!(plan.create.len(), 3);
        let mut sizes: Vec<usize> = slices.iter().map(|s| s.endpoints.len()).collect();
        sizes.sort();
        assert_eq!(sizes, [5, 10, 10]);
        let sl = &slices[0];
        let m = sl.metadata.as_ref().expect("m");
        assert_eq!(m.labels.get(SERVICE_NAME_LABEL), Some(&"web".to_string()));
        assert_eq!(
            m.labels.get(MANAGED_BY_LABEL),
            Some(&CONTROLLER_NAME.to_string())
        );
        assert_eq!(m.labels.get("tier"), Some(&"front".to_string()));
        assert_eq!(m.generate_name, "web-");
        assert_eq!(m.owner_references[0].kind, "Service");
        assert_eq!(sl.address_type, "IPv4");
        assert_eq!(sl.ports[0].port, Some(8080));
        assert_eq!(sl.ports[0].name.as_deref(), Some("http"));
        // A second pass with nothing changed writes nothing.
        assert!(run(&s, &pods(25), &mut slices, 10, &mut next).is_empty());
    }

    #[test]
    fn a_readiness_flip_rewrites_only_the_slice_holding_the_pod() {
        let s = svc(vec![port("", 80, IntOrString::int(80))]);
        let mut slices = vec![];
        let mut next = 0;
        let mut ps = pods(30);
        run(&s, &ps, &mut slices, 10, &mut next);
        assert_eq!(slices.len(), 3);
        let c = ps[17].status.as_mut().expect("st");
        c.conditions[0].status = "False".into();
        let plan = run(&s, &ps, &mut slices, 10, &mut next);
        assert!(plan.create.is_empty() && plan.delete.is_empty());
        assert_eq!(plan.update.len(), 1, "{plan:?}");
        let e = plan.update[0]
            .endpoints
            .iter()
            .find(|e| e.addresses == ["127.3.0.18"])
            .expect("the flipped pod");
        let c = e.conditions.as_ref().expect("conditions");
        assert_eq!(
            (c.ready, c.serving, c.terminating),
            (Some(false), Some(false), Some(false))
        );
    }

    #[test]
    fn terminating_pods_stay_as_terminating_endpoints() {
        let s = svc(vec![port("", 80, IntOrString::int(80))]);
        let mut p = pod("t", "127.1.0.1", true);
        p.metadata.as_mut().expect("m").deletion_timestamp = "2026-01-01T00:00:00Z".into();
        let e = pod_to_endpoint(&p, &s, None);
        let c = e.conditions.as_ref().expect("c");
        assert_eq!(
            (c.ready, c.serving, c.terminating),
            (Some(false), Some(true), Some(true))
        );
        let mut s2 = s.clone();
        s2.spec.as_mut().expect("spec").publish_not_ready_addresses = true;
        let c = pod_to_endpoint(&p, &s2, None).conditions.expect("c");
        assert_eq!(c.ready, Some(true));
    }

    #[test]
    fn removals_shrink_slices_and_new_pods_fill_the_best_fitting_slice() {
        let s = svc(vec![port("", 80, IntOrString::int(80))]);
        let mut slices = vec![];
        let mut next = 0;
        let all = pods(20);
        run(&s, &all, &mut slices, 10, &mut next);
        // Remove one pod: its slice is updated, the other unchanged.
        let fewer: Vec<Pod> = all
            .iter()
            .filter(|p| p.metadata.as_ref().expect("m").name != "p003")
            .cloned()
            .collect();
        let plan = run(&s, &fewer, &mut slices, 10, &mut next);
        assert_eq!(
            (plan.create.len(), plan.update.len(), plan.delete.len()),
            (0, 1, 0)
        );
        // A new pod goes into the slice with room, not a new slice.
        let mut more = fewer.clone();
        more.push(pod("zz", "127.3.1.1", true));
        let plan = run(&s, &more, &mut slices, 10, &mut next);
        assert_eq!((plan.create.len(), plan.update.len()), (0, 1), "{plan:?}");
        assert!(slices.iter().all(|s| s.endpoints.len() == 10));
    }

    #[test]
    fn named_target_ports_group_pods_into_slices_by_port_set() {
        let s = svc(vec![port("web", 80, IntOrString::string("http"))]);
        let a = pod("a", "127.1.0.1", true);
        let mut b = pod("b", "127.1.0.2", true);
        b.spec.as_mut().expect("s").containers[0].ports[0].container_port = 9090;
        let mut slices = vec![];
        let mut next = 0;
        run(&s, &[a, b], &mut slices, 100, &mut next);
        let mut ports: Vec<(Option<i32>, Vec<String>)> = slices
            .iter()
            .map(|s| {
                (
                    s.ports[0].port,
                    s.endpoints.iter().map(|e| e.addresses[0].clone()).collect(),
                )
            })
            .collect();
        ports.sort();
        assert_eq!(
            ports,
            [
                (Some(8080), vec!["127.1.0.1".to_string()]),
                (Some(9090), vec!["127.1.0.2".to_string()])
            ]
        );
    }

    #[test]
    fn no_endpoints_keep_one_placeholder_and_emptied_slices_are_reused() {
        let s = svc(vec![port("", 80, IntOrString::int(80))]);
        let mut slices = vec![];
        let mut next = 0;
        let plan = run(&s, &[], &mut slices, 10, &mut next);
        assert_eq!(plan.create.len(), 1);
        assert!(slices[0].endpoints.is_empty() && slices[0].ports.is_empty());
        assert!(
            run(&s, &[], &mut slices, 10, &mut next).is_empty(),
            "placeholder kept"
        );
        // Pods appear: the placeholder is reused (updated), not deleted and recreated.
        let plan = run(&s, &pods(3), &mut slices, 10, &mut next);
        assert_eq!(
            (plan.create.len(), plan.update.len(), plan.delete.len()),
            (0, 1, 0),
            "{plan:?}"
        );
        assert_eq!(slices.len(), 1);
        assert_eq!(slices[0].endpoints.len(), 3);
        // And gone again: back to a placeholder in the same slice.
        let plan = run(&s, &[], &mut slices, 10, &mut next);
        assert_eq!(
            (plan.create.len(), plan.update.len(), plan.delete.len()),
            (0, 1, 0),
            "{plan:?}"
        );
        assert!(slices[0].endpoints.is_empty());
    }

    #[test]
    fn headless_hostnames_and_labels() {
        let mut s = svc(vec![]);
        s.spec.as_mut().expect("spec").cluster_ip = "None".into();
        let mut a = pod("web-0", "127.1.0.1", true);
        let sp = a.spec.as_mut().expect("s");
        sp.hostname = "web-0".into();
        sp.subdomain = "web".into();
        let mut slices = vec![];
        let mut next = 0;
        run(&s, &[a], &mut slices, 10, &mut next);
        assert_eq!(slices[0].endpoints[0].hostname.as_deref(), Some("web-0"));
        assert!(slices[0].ports.is_empty());
        assert_eq!(
            slices[0]
                .metadata
                .as_ref()
                .expect("m")
                .labels
                .get(HEADLESS_LABEL),
            Some(&String::new())
        );
        // The service's labels change: every slice is relabelled.
        s.metadata
            .as_mut()
            .expect("m")
            .labels
            .insert("v".into(), "2".into());
        let plan = run(&s, &[], &mut slices, 10, &mut next);
        assert!(!plan.is_empty());
    }
}
