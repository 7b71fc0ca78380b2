//! LoadBalancer Services and the proxy's address pool.
use coxswain_test_support::component::Component;
use coxswain_test_support::{wait_until, Coxswain};

use crate::common::*;

/// The EXTERNAL-IP column of `coxctl get svc NAME`.
fn external_ip_column(c: &Coxswain, svc: &str) -> String {
    let out = c.coxctl(&["get", "svc", svc]).success().stdout;
    let mut lines = out.lines();
    let head = lines.next().unwrap_or("");
    let col = head
        .split_whitespace()
        .position(|h| h == "EXTERNAL-IP")
        .unwrap_or_else(|| panic!("no EXTERNAL-IP column: {out}"));
    lines
        .next()
        .and_then(|l| l.split_whitespace().nth(col))
        .unwrap_or_else(|| panic!("no row: {out}"))
        .to_string()
}

fn ingress_ip(c: &Coxswain, svc: &str) -> Option<String> {
    c.json(&["get", "svc", svc])["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()
        .map(String::from)
}

/// LoadBalancer Services show `<pending>` until a pool gives them an ingress IP: with no proxy
/// at all, then with a standalone `coxswain proxy` whose `--load-balancer-ip-range` has two
/// usable addresses for three Services (one stays pending); deleting a Service frees its
/// address for the pending one, which then carries traffic on it.
#[test]
fn load_balancer_pending_until_the_pool_has_an_address() {
    let c = cluster(&["--no-proxy"]);
    let a = backend("lb");
    for name in ["lb-a", "lb-b", "lb-c"] {
        apply(
            &c,
            &selectorless(
                name,
                "  type: LoadBalancer\n  ports:\n  - {name: http, port: 8080, protocol: TCP}",
                &[("a", a, "node1")],
            ),
        );
    }
    for name in ["lb-a", "lb-b", "lb-c"] {
        assert_eq!(external_ip_column(&c, name), "<pending>", "no proxy yet");
    }
    // This cluster's own octet O (ClusterIPs are 127.255.O.x): the pool 127.0.O.200/30 is in
    // the LoadBalancer range no other cluster on this machine uses.
    let o = cluster_ip(&c, "lb-a")
        .split('.')
        .nth(2)
        .expect("octet")
        .to_string();
    let pool = format!("127.0.{o}.200/30");
    let _proxy = Component::start_temp(&[
        "proxy",
        "--server",
        &c.url(),
        "--load-balancer-ip-range",
        &pool,
    ]);
    let usable = [format!("127.0.{o}.201"), format!("127.0.{o}.202")];
    let (given, pending) = wait_until("two of three Services get an address", T, || {
        let ips: Vec<(&str, Option<String>)> = ["lb-a", "lb-b", "lb-c"]
            .into_iter()
            .map(|n| (n, ingress_ip(&c, n)))
            .collect();
        let given: Vec<(&str, String)> = ips
            .iter()
            .filter_map(|(n, ip)| Some((*n, ip.clone()?)))
            .collect();
        let pending: Vec<&str> = ips
            .iter()
            .filter(|(_, ip)| ip.is_none())
            .map(|(n, _)| *n)
            .collect();
        (given.len() == 2).then_some((given, pending))
    })
    .expect("ingress IPs");
    let mut got: Vec<&str> = given.iter().map(|(_, ip)| ip.as_str()).collect();
    got.sort();
    assert_eq!(got, [usable[0].as_str(), usable[1].as_str()]);
    for (name, ip) in &given {
        assert_eq!(&external_ip_column(&c, name), ip);
        assert_eq!(wait_get(&format!("{ip}:8080"), |_| true), "lb");
    }
    let waiting = pending[0];
    assert_eq!(
        external_ip_column(&c, waiting),
        "<pending>",
        "the pool is exhausted"
    );
    // Freed: the pending Service gets the address and carries traffic on it.
    let (gone, freed) = &given[0];
    c.coxctl(&["delete", "svc", gone]).success();
    let ip = wait_until("the freed address reassigned", T, || {
        ingress_ip(&c, waiting)
    })
    .expect("reassigned");
    assert_eq!(&ip, freed);
    assert_eq!(&external_ip_column(&c, waiting), freed);
    assert_eq!(wait_get(&format!("{ip}:8080"), |_| true), "lb");
}
