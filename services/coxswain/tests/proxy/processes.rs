//! Where the proxy runs: two clusters side by side on one machine, and `coxswain proxy` as its
//! own process against a remote store.
use std::time::Duration;

use coxswain_test_support::component::{field, Component};
use coxswain_test_support::wait_until;

use crate::common::*;

#[test]
fn two_clusters_side_by_side() {
    let one = cluster(&[]);
    let two = cluster(&[]);
    let (a, b) = (backend("one"), backend("two"));
    let svc = "  ports:\n  - {name: http, port: 8080, protocol: TCP}";
    apply(&one, &selectorless("same", svc, &[("a", a, "node1")]));
    apply(&two, &selectorless("same", svc, &[("b", b, "node1")]));
    let (ip1, ip2) = (cluster_ip(&one, "same"), cluster_ip(&two, "same"));
    let (k1, k2) = (
        cluster_ip(&one, "kubernetes"),
        cluster_ip(&two, "kubernetes"),
    );
    assert_ne!(k1, k2, "each cluster has its own service range");
    assert_eq!(wait_get(&format!("{ip1}:8080"), |_| true), "one");
    assert_eq!(wait_get(&format!("{ip2}:8080"), |_| true), "two");
    for (c, k) in [(&one, &k1), (&two, &k2)] {
        let via = format!("https://{k}:443");
        wait_until("API via its own kubernetes Service", T, || {
            let out = c.coxctl(&["--server", &via, "get", "svc", "same", "-o", "json"]);
            out.ok.then_some(out.stdout)
        })
        .expect("api");
    }
}

#[test]
fn proxy_runs_as_its_own_process() {
    let c = cluster(&["--no-proxy"]);
    let a = backend("remote");
    apply(
        &c,
        &selectorless(
            "apart",
            "  type: NodePort\n  ports:\n  - {name: http, port: 8080, protocol: TCP}",
            &[("a", a, "node1")],
        ),
    );
    let addr = format!("{}:8080", cluster_ip(&c, "apart"));
    assert!(refused(&addr), "no proxy yet");
    let mut proxy = Component::start_temp(&["proxy", "--server", &c.url()]);
    let metrics_addr = field(
        &proxy.ready("coxswain proxy ready", Duration::from_secs(30)),
        "metrics",
    );
    assert_eq!(wait_get(&addr, |_| true), "remote");
    let np = node_port(&c, "apart");
    assert_eq!(
        wait_get(&format!("{}:{np}", internal_ip(&c, "node2")), |_| true),
        "remote"
    );
    let m = coxswain_test_support::metrics::scrape(&metrics_addr).expect("metrics");
    assert!(
        m.lines()
            .any(|l| l.starts_with("coxswain_proxy_connections_total{")
                && l.contains("service=\"apart\"")),
        "{m}"
    );
    // The one telemetry setup every process has: HELP text and the process_* families.
    assert!(
        m.contains("# HELP coxswain_proxy_connections_total ")
            && m.contains("process_resident_memory_bytes")
            && m.contains("coxswain_build_info{"),
        "{m}"
    );
}
