//! Rows of the core kinds: Service, Endpoints, EndpointSlice, Node, Namespace,
//! PersistentVolumeClaim, Event, ConfigMap, Secret, ServiceAccount, Lease.
use serde_json::Value;

use crate::age;
use crate::jv::{arr, format_labels, i, len_obj, map, or_none, s};
use crate::printers::storage::access_modes;

fn name(o: &Value) -> String {
    s(o, "metadata.name").into_owned()
}

fn age_of(o: &Value, now: i64) -> String {
    age::since(&s(o, "metadata.creationTimestamp"), now)
}

/// Service PORT(S): "80/TCP", "80:31503/TCP", joined by ","; "<none>" without ports.
pub fn service_ports(svc: &Value) -> String {
    let pieces: Vec<String> = arr(svc, "spec.ports")
        .iter()
        .map(|p| {
            let proto = s(p, "protocol");
            let proto = if proto.is_empty() {
                "TCP".into()
            } else {
                proto
            };
            let node_port = i(p, "nodePort");
            if node_port > 0 {
                format!("{}:{node_port}/{proto}", i(p, "port"))
            } else {
                format!("{}/{proto}", i(p, "port"))
            }
        })
        .collect();
    or_none(pieces.join(","))
}

fn strings(v: &Value, path: &str) -> Vec<String> {
    arr(v, path)
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// Each `status.loadBalancer.ingress` entry of a Service as kubectl names it: its IP, or its
/// hostname when it has no IP (describe's buildIngressString; get's loadBalancerStatusStringer
/// then leaves out the empty ones).
pub fn load_balancer_ingress(svc: &Value) -> Vec<String> {
    arr(svc, "status.loadBalancer.ingress")
        .iter()
        .map(|g| {
            let ip = s(g, "ip");
            if ip.is_empty() {
                s(g, "hostname").into_owned()
            } else {
                ip.into_owned()
            }
        })
        .collect()
}

/// kubectl's loadBalancerStatusStringer: the ingress names, sorted and without duplicates,
/// joined by ","; cut to 13 bytes and "..." past 16 unless `wide`.
fn load_balancer_status(svc: &Value, wide: bool) -> String {
    const LOAD_BALANCER_WIDTH: usize = 16;
    let set: std::collections::BTreeSet<String> = load_balancer_ingress(svc)
        .into_iter()
        .filter(|x| !x.is_empty())
        .collect();
    let r = set.into_iter().collect::<Vec<_>>().join(",");
    if wide || r.len() <= LOAD_BALANCER_WIDTH {
        return r;
    }
    let mut end = LOAD_BALANCER_WIDTH - 3;
    while !r.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &r[..end])
}

/// Service EXTERNAL-IP, as kubectl's getServiceExternalIP.
pub fn service_external_ip(svc: &Value, wide: bool) -> String {
    let external = strings(svc, "spec.externalIPs");
    match s(svc, "spec.type").as_ref() {
        "ClusterIP" | "NodePort" | "" => or_none(external.join(",")),
        "LoadBalancer" => {
            let lb = load_balancer_status(svc, wide);
            if !external.is_empty() {
                let mut all: Vec<String> = if lb.is_empty() {
                    vec![]
                } else {
                    lb.split(',').map(str::to_string).collect()
                };
                all.extend(external);
                return all.join(",");
            }
            if lb.is_empty() {
                "<pending>".into()
            } else {
                lb
            }
        }
        "ExternalName" => s(svc, "spec.externalName").into_owned(),
        _ => "<unknown>".into(),
    }
}

pub const SERVICE: &[&str] = &[
    "NAME",
    "TYPE",
    "CLUSTER-IP",
    "EXTERNAL-IP",
    "PORT(S)",
    "AGE",
];
pub const SERVICE_WIDE: &[&str] = &["SELECTOR"];

pub fn service(o: &Value, now: i64, wide: bool) -> Vec<String> {
    let mut cluster_ip = strings(o, "spec.clusterIPs")
        .into_iter()
        .next()
        .unwrap_or_default();
    if cluster_ip.is_empty() {
        cluster_ip = s(o, "spec.clusterIP").into_owned();
    }
    let ty = s(o, "spec.type");
    let mut row = vec![
        name(o),
        if ty.is_empty() {
            "ClusterIP".into()
        } else {
            ty.into_owned()
        },
        or_none(cluster_ip),
        service_external_ip(o, wide),
        service_ports(o),
        age_of(o, now),
    ];
    if wide {
        row.push(format_labels(&map(o, "spec.selector")));
    }
    row
}

/// Endpoints ENDPOINTS: up to three "ip:port", then " + N more...".
pub fn endpoints_list(o: &Value) -> String {
    endpoints_list_for(o, None)
}

/// kubectl's formatEndpoints: like [`endpoints_list`], counting only the ports named `port`
/// when given (`describe svc` lists each Service port's own endpoints).
pub fn endpoints_list_for(o: &Value, port: Option<&str>) -> String {
    let subsets = arr(o, "subsets");
    if subsets.is_empty() {
        return "<none>".into();
    }
    let max = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addrs = arr(ss, "addresses");
        let ports = arr(ss, "ports");
        if ports.is_empty() {
            count += addrs.len();
            for a in addrs {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(s(a, "ip").into_owned());
            }
            continue;
        }
        for p in ports
            .iter()
            .filter(|p| port.is_none_or(|n| s(p, "name") == n))
        {
            count += addrs.len();
            for a in addrs {
                if list.len() == max {
                    more = true;
                    break;
                }
                let ip = s(a, "ip");
                let port = i(p, "port");
                if ip.contains(':') {
                    list.push(format!("[{ip}]:{port}"));
                } else {
                    list.push(format!("{ip}:{port}"));
                }
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - max)
    } else {
        or_none(ret)
    }
}

pub const ENDPOINTS: &[&str] = &["NAME", "ENDPOINTS", "AGE"];

pub fn endpoints(o: &Value, now: i64, _wide: bool) -> Vec<String> {
    vec![name(o), endpoints_list(o), age_of(o, now)]
}

pub const ENDPOINT_SLICE: &[&str] = &["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"];

/// kubectl's listWithMoreString: up to three items, then " + N more..."; "<unset>" when empty.
fn list_with_more(items: impl Iterator<Item = String>) -> String {
    let max = 3;
    let mut list = Vec::new();
    let mut count = 0;
    for x in items {
        if list.len() < max {
            list.push(x);
        }
        count += 1;
    }
    let ret = list.join(",");
    if count > max {
        format!("{ret} + {} more...", count - max)
    } else if ret.is_empty() {
        "<unset>".into()
    } else {
        ret
    }
}

/// EndpointSlice NAME ADDRESSTYPE PORTS ENDPOINTS AGE (kubectl's printEndpointSlice).
pub fn endpoint_slice(o: &Value, now: i64, _wide: bool) -> Vec<String> {
    let ports = list_with_more(
        arr(o, "ports")
            .iter()
            .map(|p| match crate::jv::opt_i(p, "port") {
                Some(n) => n.to_string(),
                None if p.get("name").is_some() => s(p, "name").into_owned(),
                None => "*".into(),
            }),
    );
    let endpoints = list_with_more(arr(o, "endpoints").iter().flat_map(|e| {
        arr(e, "addresses")
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect::<Vec<_>>()
    }));
    vec![
        name(o),
        s(o, "addressType").into_owned(),
        ports,
        endpoints,
        age_of(o, now),
    ]
}

/// Node STATUS: Ready/NotReady from the Ready condition ("Unknown" without one), plus
/// ",SchedulingDisabled" when unschedulable.
pub fn node_status(o: &Value) -> String {
    let mut status: Vec<&str> = Vec::new();
    if let Some(c) = arr(o, "status.conditions")
        .iter()
        .rev()
        .find(|c| s(c, "type") == "Ready")
    {
        status.push(if s(c, "status") == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if status.is_empty() {
        status.push("Unknown");
    }
    if crate::jv::b(o, "spec.unschedulable") {
        status.push("SchedulingDisabled");
    }
    status.join(",")
}

/// Node ROLES from `node-role.kubernetes.io/<role>` and `kubernetes.io/role` labels.
pub fn node_roles(o: &Value) -> String {
    let mut roles = std::collections::BTreeSet::new();
    for (k, v) in map(o, "metadata.labels") {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == "kubernetes.io/role" && !v.is_empty() {
            roles.insert(v);
        }
    }
    or_none(roles.into_iter().collect::<Vec<_>>().join(","))
}

fn node_address(o: &Value, ty: &str) -> String {
    arr(o, "status.addresses")
        .iter()
        .find(|a| s(a, "type") == ty)
        .map(|a| s(a, "address").into_owned())
        .unwrap_or_else(|| "<none>".into())
}

pub const NODE: &[&str] = &["NAME", "STATUS", "ROLES", "AGE", "VERSION"];
pub const NODE_WIDE: &[&str] = &[
    "INTERNAL-IP",
    "EXTERNAL-IP",
    "OS-IMAGE",
    "KERNEL-VERSION",
    "CONTAINER-RUNTIME",
];

pub fn node(o: &Value, now: i64, wide: bool) -> Vec<String> {
    let mut row = vec![
        name(o),
        node_status(o),
        node_roles(o),
        age_of(o, now),
        s(o, "status.nodeInfo.kubeletVersion").into_owned(),
    ];
    if wide {
        let unknown = |p: &str| {
            let v = s(o, p);
            if v.is_empty() {
                "<unknown>".to_string()
            } else {
                v.into_owned()
            }
        };
        row.push(node_address(o, "InternalIP"));
        row.push(node_address(o, "ExternalIP"));
        row.push(unknown("status.nodeInfo.osImage"));
        row.push(unknown("status.nodeInfo.kernelVersion"));
        row.push(unknown("status.nodeInfo.containerRuntimeVersion"));
    }
    row
}

pub const NAMESPACE: &[&str] = &["NAME", "STATUS", "AGE"];

pub fn namespace(o: &Value, now: i64, _wide: bool) -> Vec<String> {
    let phase = s(o, "status.phase");
    let phase = if phase.is_empty() {
        if s(o, "metadata.deletionTimestamp").is_empty() {
            "Active".into()
        } else {
            "Terminating".into()
        }
    } else {
        phase.into_owned()
    };
    vec![name(o), phase, age_of(o, now)]
}

pub const PVC: &[&str] = &[
    "NAME",
    "STATUS",
    "VOLUME",
    "CAPACITY",
    "ACCESS MODES",
    "STORAGECLASS",
    "VOLUMEATTRIBUTESCLASS",
    "AGE",
];
pub const PVC_WIDE: &[&str] = &["VOLUMEMODE"];

pub fn pvc(o: &Value, now: i64, wide: bool) -> Vec<String> {
    let mut phase = s(o, "status.phase").into_owned();
    if !s(o, "metadata.deletionTimestamp").is_empty() {
        phase = "Terminating".into();
    }
    let volume = s(o, "spec.volumeName").into_owned();
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            s(o, "status.capacity.storage").into_owned(),
            access_modes(arr(o, "status.accessModes")),
        )
    };
    let mut class = s(o, "spec.storageClassName").into_owned();
    if class.is_empty() {
        class = crate::jv::at(o, "metadata.annotations")
            .get("volume.beta.kubernetes.io/storage-class")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
    }
    let mut row = vec![
        name(o),
        phase,
        volume,
        capacity,
        modes,
        class,
        // spec.volumeAttributesClassName, which coxswain's claims do not have.
        "<unset>".into(),
        age_of(o, now),
    ];
    if wide {
        let vm = s(o, "spec.volumeMode");
        row.push(if vm.is_empty() {
            "<unset>".into()
        } else {
            vm.into_owned()
        });
    }
    row
}

/// The order events are listed in: last seen, then (within the same second) the time the
/// recorder made them — the hex nanoseconds ending their name, `pod.17f0a…` — then the order
/// the store wrote them, so Scheduled comes before Pulled as it happened.
pub fn event_order(o: &Value) -> (i64, u64, u64) {
    let name = s(o, "metadata.name");
    let nanos = name
        .rsplit_once('.')
        .and_then(|(_, x)| u64::from_str_radix(x, 16).ok())
        .unwrap_or(0);
    (
        event_last_seen(o).unwrap_or(i64::MIN),
        nanos,
        s(o, "metadata.resourceVersion").parse().unwrap_or(0),
    )
}

/// The time an event was last seen (for sorting and LAST SEEN).
pub fn event_last_seen(o: &Value) -> Option<i64> {
    for p in [
        "lastTimestamp",
        "eventTime",
        "firstTimestamp",
        "metadata.creationTimestamp",
    ] {
        if let Some(t) = age::parse_rfc3339(&s(o, p)) {
            return Some(t);
        }
    }
    None
}

pub const EVENT: &[&str] = &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"];
pub const EVENT_WIDE_ALL: &[&str] = &[
    "LAST SEEN",
    "TYPE",
    "REASON",
    "OBJECT",
    "SUBOBJECT",
    "SOURCE",
    "MESSAGE",
    "FIRST SEEN",
    "COUNT",
    "NAME",
];

pub fn event_source(o: &Value) -> String {
    let comp = s(o, "source.component");
    let comp = if comp.is_empty() {
        s(o, "reportingComponent")
    } else {
        comp
    };
    let host = s(o, "source.host");
    if host.is_empty() {
        comp.into_owned()
    } else {
        format!("{comp}, {host}")
    }
}

pub fn event(o: &Value, now: i64, wide: bool) -> Vec<String> {
    let first = {
        let f = s(o, "firstTimestamp");
        if f.is_empty() {
            age::since(&s(o, "eventTime"), now)
        } else {
            age::since(&f, now)
        }
    };
    let last = {
        let l = s(o, "lastTimestamp");
        if l.is_empty() {
            first.clone()
        } else {
            age::since(&l, now)
        }
    };
    let kind = s(o, "involvedObject.kind").to_ascii_lowercase();
    let iname = s(o, "involvedObject.name");
    let target = if iname.is_empty() {
        kind
    } else {
        format!("{kind}/{iname}")
    };
    if wide {
        vec![
            last,
            s(o, "type").into_owned(),
            s(o, "reason").into_owned(),
            target,
            s(o, "involvedObject.fieldPath").into_owned(),
            event_source(o),
            s(o, "message").trim().to_string(),
            first,
            i(o, "count").to_string(),
            name(o),
        ]
    } else {
        vec![
            last,
            s(o, "type").into_owned(),
            s(o, "reason").into_owned(),
            target,
            s(o, "message").trim().to_string(),
        ]
    }
}

pub const CONFIGMAP: &[&str] = &["NAME", "DATA", "AGE"];

pub fn configmap(o: &Value, now: i64, _wide: bool) -> Vec<String> {
    let n = len_obj(o, "data") + len_obj(o, "binaryData");
    vec![name(o), n.to_string(), age_of(o, now)]
}

pub const SECRET: &[&str] = &["NAME", "TYPE", "DATA", "AGE"];

pub fn secret(o: &Value, now: i64, _wide: bool) -> Vec<String> {
    let ty = s(o, "type");
    let ty = if ty.is_empty() {
        "Opaque".into()
    } else {
        ty.into_owned()
    };
    vec![name(o), ty, len_obj(o, "data").to_string(), age_of(o, now)]
}

pub const SERVICE_ACCOUNT: &[&str] = &["NAME", "SECRETS", "AGE"];

pub fn service_account(o: &Value, now: i64, _wide: bool) -> Vec<String> {
    vec![name(o), arr(o, "secrets").len().to_string(), age_of(o, now)]
}

pub const LEASE: &[&str] = &["NAME", "HOLDER", "AGE"];

pub fn lease(o: &Value, now: i64, _wide: bool) -> Vec<String> {
    vec![
        name(o),
        s(o, "spec.holderIdentity").into_owned(),
        age_of(o, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_704_164_645 + 45;

    fn meta() -> Value {
        json!({"name": "x", "creationTimestamp": "2024-01-02T03:04:05Z"})
    }

    #[test]
    fn service_ports_and_ips() {
        let svc = json!({"metadata": meta(), "spec": {"type": "NodePort", "clusterIP": "10.96.0.12",
            "clusterIPs": ["10.96.0.12"],
            "ports": [{"port": 80, "nodePort": 31503, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}});
        assert_eq!(service_ports(&svc), "80:31503/TCP,53/UDP");
        assert_eq!(
            service(&svc, NOW, false),
            vec![
                "x",
                "NodePort",
                "10.96.0.12",
                "<none>",
                "80:31503/TCP,53/UDP",
                "45s"
            ]
        );
        let headless = json!({"metadata": meta(), "spec": {"type": "ClusterIP", "clusterIP": "None",
            "ports": [{"port": 80}], "selector": {"app": "nginx"}}});
        assert_eq!(
            service(&headless, NOW, true),
            vec![
                "x",
                "ClusterIP",
                "None",
                "<none>",
                "80/TCP",
                "45s",
                "app=nginx"
            ]
        );
        let lb = json!({"spec": {"type": "LoadBalancer"}});
        assert_eq!(service_external_ip(&lb, false), "<pending>");
        // Sorted, without duplicates, cut past 16 bytes unless wide; externalIPs after.
        let lb = json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [
            {"ip": "10.0.0.20"}, {"hostname": "a.example.com"}, {"ip": "10.0.0.20"}]}}});
        assert_eq!(service_external_ip(&lb, true), "10.0.0.20,a.example.com");
        assert_eq!(service_external_ip(&lb, false), "10.0.0.20,a.e...");
        let mut with_ext = lb.clone();
        with_ext["spec"]["externalIPs"] = json!(["1.2.3.4"]);
        assert_eq!(
            service_external_ip(&with_ext, false),
            "10.0.0.20,a.e...,1.2.3.4"
        );
        let short = json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [
            {"ip": "1.1.1.9"}, {"ip": "1.1.1.10"}]}}});
        assert_eq!(service_external_ip(&short, false), "1.1.1.10,1.1.1.9");
        assert_eq!(service_ports(&lb), "<none>");
    }

    #[test]
    fn endpoints_list_like_kubectl() {
        let ep = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}],
            "ports": [{"port": 80}]}]});
        assert_eq!(
            endpoints_list(&ep),
            "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more..."
        );
        assert_eq!(endpoints_list(&json!({})), "<none>");
        let two = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}],
            "ports": [{"name": "http", "port": 80}, {"name": "metrics", "port": 9100}]}]});
        assert_eq!(endpoints_list(&two), "10.0.0.1:80,10.0.0.1:9100");
        assert_eq!(endpoints_list_for(&two, Some("metrics")), "10.0.0.1:9100");
        assert_eq!(endpoints_list_for(&two, Some("other")), "<none>");
        assert_eq!(
            endpoints_list(
                &json!({"subsets": [{"notReadyAddresses": [{"ip": "1.1.1.1"}], "ports": [{"port": 80}]}]})
            ),
            "<none>"
        );
    }

    #[test]
    fn node_status_and_roles() {
        let n = json!({"metadata": {"name": "k8s-master", "creationTimestamp": "2024-01-02T03:04:05Z",
            "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": "", "kubernetes.io/hostname": "k8s-master"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                       "nodeInfo": {"kubeletVersion": "v1.30.0"},
                       "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}]}});
        assert_eq!(node_status(&n), "Ready,SchedulingDisabled");
        assert_eq!(node_roles(&n), "control-plane,master");
        assert_eq!(
            node(&n, NOW, true),
            vec![
                "k8s-master",
                "Ready,SchedulingDisabled",
                "control-plane,master",
                "45s",
                "v1.30.0",
                "192.168.1.10",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ]
        );
        let n = json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(node_status(&n), "NotReady");
        assert_eq!(node_roles(&n), "<none>");
        assert_eq!(node_status(&json!({})), "Unknown");
    }

    #[test]
    fn events_and_small_kinds() {
        let e = json!({"metadata": meta(), "type": "Normal", "reason": "Scheduled",
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "Successfully assigned default/p to node1",
            "lastTimestamp": "2024-01-02T03:04:05Z"});
        assert_eq!(
            event(&e, NOW, false),
            vec![
                "45s",
                "Normal",
                "Scheduled",
                "pod/p",
                "Successfully assigned default/p to node1"
            ]
        );
        let cm = json!({"metadata": meta(), "data": {"a": "1", "b": "2"}});
        assert_eq!(configmap(&cm, NOW, false), vec!["x", "2", "45s"]);
        let sec = json!({"metadata": meta(), "data": {"a": "MQ=="}});
        assert_eq!(secret(&sec, NOW, false), vec!["x", "Opaque", "1", "45s"]);
        let pvc_o = json!({"metadata": meta(), "spec": {"volumeName": "pv-1", "storageClassName": "standard"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}});
        assert_eq!(
            pvc(&pvc_o, NOW, false),
            vec!["x", "Bound", "pv-1", "1Gi", "RWO", "standard", "<unset>", "45s"]
        );
    }
}
