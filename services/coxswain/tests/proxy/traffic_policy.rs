//! externalTrafficPolicy and internalTrafficPolicy: Local keeps traffic on the node it
//! reached (or the pod's node), Cluster spreads it.
use std::collections::BTreeSet;

use coxswain_test_support::{wait_until, Coxswain};
use serde_json::Value;

use crate::common::*;

#[test]
fn external_traffic_policy_local_and_load_balancer() {
    let c = cluster(&[]);
    let (a, b) = (backend("on-node1"), backend("on-node2"));
    apply(
        &c,
        &selectorless(
            "local",
            "  type: LoadBalancer\n  externalTrafficPolicy: Local\n  ports:\n  - {name: http, port: 8080, protocol: TCP}",
            &[("a", a, "node1"), ("b", b, "node2")],
        ),
    );
    let np = node_port(&c, "local");
    let n1 = format!("{}:{np}", internal_ip(&c, "node1"));
    let n2 = format!("{}:{np}", internal_ip(&c, "node2"));
    wait_get(&n1, |_| true);
    assert_eq!(served_by(&n1, 4), vec!["on-node1"; 4]);
    assert_eq!(served_by(&n2, 4), vec!["on-node2"; 4]);
    // The ClusterIP is not external traffic: both.
    let ip = format!("{}:8080", cluster_ip(&c, "local"));
    assert_eq!(
        served_by(&ip, 4).into_iter().collect::<BTreeSet<_>>().len(),
        2
    );
    // The LoadBalancer ingress IP from up's loopback pool carries traffic.
    let lb = wait_until("ingress IP", T, || {
        c.json(&["get", "svc", "local"])["status"]["loadBalancer"]["ingress"][0]["ip"]
            .as_str()
            .map(String::from)
    })
    .expect("ingress");
    assert!(lb.starts_with("127.0.") && lb != "127.0.0.1", "{lb}");
    wait_get(&format!("{lb}:8080"), |_| true);
    // Cluster: every node's NodePort uses every endpoint.
    apply(
        &c,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: local\nspec:\n  type: LoadBalancer\n  externalTrafficPolicy: Cluster\n  ports:\n  - {name: http, port: 8080, protocol: TCP}\n",
    );
    wait_until("Cluster policy", T, || {
        (served_by(&n1, 4).into_iter().collect::<BTreeSet<_>>().len() == 2).then_some(())
    })
    .expect("both endpoints via node1");
    // Deleted: every listener closes.
    c.coxctl(&["delete", "svc", "local"]).success();
    wait_until("listeners closed", T, || {
        (refused(&n1) && refused(&n2) && refused(&ip) && refused(&format!("{lb}:8080")))
            .then_some(())
    })
    .expect("closed");
}

/// An address in `node`'s pod range (a pod there would have it).
fn pod_address_on(c: &Coxswain, node: &str) -> String {
    // Once the node is registered and has its range (`up` serves before every agent has
    // written its Node, and the range is allocated after).
    let cidr = wait_until(&format!("node {node}'s podCIDR"), T, || {
        let out = c.coxctl(&["get", "node", node, "-o", "json"]);
        let v: Value = serde_json::from_str(&out.stdout).ok().filter(|_| out.ok)?;
        v["spec"]["podCIDR"].as_str().map(str::to_string)
    })
    .expect("podCIDR");
    let net: std::net::Ipv4Addr = cidr
        .split('/')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("network");
    std::net::Ipv4Addr::from(u32::from(net) + 250).to_string()
}

#[test]
fn internal_traffic_policy_local_keeps_pod_traffic_on_its_node() {
    let c = cluster(&["--nodes", "3"]);
    let (a, b) = (backend("on-node1"), backend("on-node2"));
    apply(
        &c,
        &selectorless(
            "itp",
            "  internalTrafficPolicy: Local\n  ports:\n  - {name: http, port: 8080, protocol: TCP}",
            &[("a", a, "node1"), ("b", b, "node2")],
        ),
    );
    let ip = format!("{}:8080", cluster_ip(&c, "itp"));
    let (p1, p2, p3) = (
        pod_address_on(&c, "node1"),
        pod_address_on(&c, "node2"),
        pod_address_on(&c, "node3"),
    );
    wait_until("the ClusterIP from a pod on node1", T, || {
        get_from(&p1, &ip).ok()
    })
    .expect("served");
    for _ in 0..6 {
        assert_eq!(get_from(&p1, &ip).expect("from node1"), "on-node1");
        assert_eq!(get_from(&p2, &ip).expect("from node2"), "on-node2");
    }
    // node3 has no endpoint of the Service: its pods' connections are not served.
    assert!(get_from(&p3, &ip).is_err(), "no local endpoint on node3");
    // From the host (on no node's range): every endpoint.
    assert_eq!(
        served_by(&ip, 4).into_iter().collect::<BTreeSet<_>>().len(),
        2
    );
    // Cluster: a pod on node1 reaches both endpoints.
    apply(
        &c,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: itp\nspec:\n  internalTrafficPolicy: Cluster\n  ports:\n  - {name: http, port: 8080, protocol: TCP}\n",
    );
    wait_until("Cluster policy from node1", T, || {
        let seen: BTreeSet<String> = (0..4).filter_map(|_| get_from(&p1, &ip).ok()).collect();
        (seen.len() == 2).then_some(())
    })
    .expect("both endpoints from node1");
    assert_eq!(get_from(&p3, &ip).map(|_| ()).ok(), Some(()), "node3 too");
}
