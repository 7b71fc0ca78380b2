//! `describe service` (kubectl's describeService).
use serde_json::Value;

use crate::jv::{arr, format_labels, i, map, s};

use super::{header, Related, W};
use crate::printers::core as pcore;

pub(super) fn describe_service(w: &mut W, o: &Value, rel: &Related) {
    header(w, o, true, false);
    w.line(
        0,
        format!("Selector:\t{}", format_labels(&map(o, "spec.selector"))),
    );
    let ty = s(o, "spec.type");
    w.line(
        0,
        format!(
            "Type:\t{}",
            if ty.is_empty() {
                "ClusterIP".into()
            } else {
                ty.into_owned()
            }
        ),
    );
    let policy = s(o, "spec.ipFamilyPolicy");
    if !policy.is_empty() {
        w.line(0, format!("IP Family Policy:\t{policy}"));
    }
    let families: Vec<String> = arr(o, "spec.ipFamilies")
        .iter()
        .map(|f| f.as_str().unwrap_or_default().to_string())
        .collect();
    w.line(
        0,
        format!(
            "IP Families:\t{}",
            if families.is_empty() {
                "<none>".into()
            } else {
                families.join(",")
            }
        ),
    );
    let ip = s(o, "spec.clusterIP");
    w.line(
        0,
        format!(
            "IP:\t{}",
            if ip.is_empty() {
                "<none>".into()
            } else {
                ip.into_owned()
            }
        ),
    );
    let ips: Vec<String> = arr(o, "spec.clusterIPs")
        .iter()
        .map(|f| f.as_str().unwrap_or_default().to_string())
        .collect();
    if !ips.is_empty() {
        w.line(0, format!("IPs:\t{}", ips.join(",")));
    }
    let strs = |path: &str| -> Vec<String> {
        arr(o, path)
            .iter()
            .map(|f| f.as_str().unwrap_or_default().to_string())
            .collect()
    };
    let external = strs("spec.externalIPs");
    if !external.is_empty() {
        w.line(0, format!("External IPs:\t{}", external.join(",")));
    }
    let lb_ip = s(o, "spec.loadBalancerIP");
    if !lb_ip.is_empty() {
        w.line(0, format!("Desired LoadBalancer IP:\t{lb_ip}"));
    }
    let ext_name = s(o, "spec.externalName");
    if !ext_name.is_empty() {
        w.line(0, format!("External Name:\t{ext_name}"));
    }
    let ingress = pcore::load_balancer_ingress(o);
    if !ingress.is_empty() {
        w.line(0, format!("LoadBalancer Ingress:\t{}", ingress.join(", ")));
    }
    let eps = rel.endpoints.as_ref();
    let ports = arr(o, "spec.ports");
    for p in ports {
        let name = s(p, "name");
        let name = if name.is_empty() {
            "<unset>".into()
        } else {
            name.into_owned()
        };
        let proto = s(p, "protocol");
        let proto = if proto.is_empty() {
            "TCP".into()
        } else {
            proto.into_owned()
        };
        w.line(0, format!("Port:\t{name}\t{}/{proto}", i(p, "port")));
        let tp = s(p, "targetPort");
        let tp = if tp.is_empty() {
            i(p, "port").to_string()
        } else {
            tp.into_owned()
        };
        w.line(0, format!("TargetPort:\t{tp}/{proto}"));
        if i(p, "nodePort") > 0 {
            w.line(
                0,
                format!("NodePort:\t{name}\t{}/{proto}", i(p, "nodePort")),
            );
        }
        let list = eps
            .map(|e| pcore::endpoints_list_for(e, Some(&s(p, "name"))))
            .unwrap_or_else(|| "<none>".into());
        w.line(0, format!("Endpoints:\t{list}"));
    }
    if ports.is_empty() {
        let list = eps
            .map(pcore::endpoints_list)
            .unwrap_or_else(|| "<none>".into());
        w.line(0, format!("Endpoints:\t{list}"));
    }
    let sa = s(o, "spec.sessionAffinity");
    w.line(
        0,
        format!(
            "Session Affinity:\t{}",
            if sa.is_empty() {
                "None".into()
            } else {
                sa.into_owned()
            }
        ),
    );
    let etp = s(o, "spec.externalTrafficPolicy");
    if !etp.is_empty() {
        w.line(0, format!("External Traffic Policy:\t{etp}"));
    }
    let itp = s(o, "spec.internalTrafficPolicy");
    if !itp.is_empty() {
        w.line(0, format!("Internal Traffic Policy:\t{itp}"));
    }
    let hc = i(o, "spec.healthCheckNodePort");
    if hc != 0 {
        w.line(0, format!("HealthCheck NodePort:\t{hc}"));
    }
    let ranges = arr(o, "spec.loadBalancerSourceRanges");
    if !ranges.is_empty() {
        let r: Vec<&str> = ranges.iter().filter_map(|v| v.as_str()).collect();
        w.line(0, format!("LoadBalancer Source Ranges:\t{}", r.join(",")));
    }
}
