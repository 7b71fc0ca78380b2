//! nginx pods of the process runtime behind a ClusterIP and NodePorts: the kubernetes Service,
//! per-Service connection and request counters, and a ClusterIP that stays while a rollout
//! changes the pod IPs (S47).
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use coxswain_test_support::objects::nginx_deployment;
use coxswain_test_support::{wait_until, Coxswain};

use crate::common::*;

/// A NodePort Service beside two nginx pods of Deployment web.
const NODE_PORT: &str = "---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
";

/// Ready, not terminating web pods: name → pod IP.
fn ready_pods(c: &Coxswain) -> BTreeMap<String, String> {
    c.json(&["get", "pods", "-l", "app=web"])["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| {
            p["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .filter_map(|p| {
            Some((
                p["metadata"]["name"].as_str()?.to_string(),
                p["status"]["podIP"].as_str()?.to_string(),
            ))
        })
        .collect()
}

#[test]
fn cluster_ip_and_node_port_reach_nginx_and_the_api() {
    let c = cluster(&["--nodeport-addresses", "127.0.0.1"]);
    // The kubernetes Service: the range's first address, port 443, fronting the gRPC API.
    let api_ip = cluster_ip(&c, "kubernetes");
    assert!(
        api_ip.starts_with("127.255.") && api_ip.ends_with(".1"),
        "{api_ip}"
    );
    let via = format!("https://{api_ip}:443");
    let ns = wait_until("coxctl through the kubernetes Service", T, || {
        let out = c.coxctl(&["--server", &via, "get", "ns", "default"]);
        out.ok.then_some(out.stdout)
    })
    .expect("API through the proxy");
    assert!(ns.contains("Active"), "{ns}");

    apply(&c, &(nginx_deployment("web", 2) + NODE_PORT));
    let ip = cluster_ip(&c, "web");
    assert!(
        ip.starts_with("127.255."),
        "ClusterIP from up's loopback range: {ip}"
    );
    let body = wait_get(&format!("{ip}:80"), |b| b.contains("Welcome to nginx!"));
    assert!(body.contains("<h1>Welcome to nginx!</h1>"));
    let np = node_port(&c, "web");
    for node in ["node1", "node2"] {
        let addr = format!("{}:{np}", internal_ip(&c, node));
        wait_get(&addr, |b| b.contains("Welcome to nginx!"));
    }
    wait_get(&format!("127.0.0.1:{np}"), |b| {
        b.contains("Welcome to nginx!")
    });
    let m = metrics(&c);
    let line = m
        .lines()
        .find(|l| {
            l.starts_with("coxswain_proxy_connections_total{")
                && l.contains("service=\"web\"")
                && l.contains("namespace=\"default\"")
        })
        .unwrap_or_else(|| panic!("per-Service counter: {m}"));
    let n: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("value");
    assert!(n >= 4.0, "{line}");

    // Requests, not only connections: 5 keep-alive requests on one connection count 5.
    let counter = |name: &str| -> f64 {
        coxswain_test_support::metrics::sum(
            &metrics(&c),
            name,
            &["service=\"web\"", "namespace=\"default\""],
        )
    };
    let (conns0, reqs0) = (
        counter("coxswain_proxy_connections_total"),
        counter("coxswain_proxy_requests_total"),
    );
    let mut s = TcpStream::connect(format!("{ip}:80")).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    for i in 0..5 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
            .expect("write");
        // Read one whole response (its Content-Length) before the next request.
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).expect("read");
            assert!(n > 0, "response {i} cut short");
            got.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_string())
                    })
                    .and_then(|v| v.parse().ok())
                    .expect("content-length");
                if body.len() >= len {
                    break;
                }
            }
        }
    }
    drop(s);
    wait_until("5 requests on 1 connection counted", T, || {
        let (conns, reqs) = (
            counter("coxswain_proxy_connections_total"),
            counter("coxswain_proxy_requests_total"),
        );
        (conns - conns0 == 1.0 && reqs - reqs0 == 5.0).then_some(())
    })
    .expect("requests counted");
}

#[test]
fn s47_cluster_ip_stays_while_pod_ips_change() {
    let c = cluster(&[]);
    apply(&c, &(nginx_deployment("web", 2) + NODE_PORT));
    let ip = cluster_ip(&c, "web");
    let addr = format!("{ip}:80");
    wait_get(&addr, |b| b.contains("Welcome to nginx!"));
    let before = wait_until("2 ready pods", T, || {
        Some(ready_pods(&c)).filter(|s| s.len() == 2)
    })
    .expect("pods");
    // A rollout replaces both pods (new pod IPs); requests keep being served meanwhile.
    c.coxctl(&["set", "image", "deployment/web", "nginx=nginx:1.17.9"])
        .success();
    let mut served = 0;
    let mut failures = vec![];
    let after = wait_until("the rollout to new pod IPs", T, || {
        match get(&addr) {
            Ok(b) if b.contains("Welcome to nginx!") => served += 1,
            other => failures.push(format!("{other:?}")),
        }
        let now = ready_pods(&c);
        (now.len() == 2 && now.keys().all(|k| !before.contains_key(k))).then_some(now)
    })
    .expect("rollout");
    assert!(
        failures.is_empty(),
        "every request served during the rollout: {failures:?}"
    );
    assert!(served > 0);
    // The surge pod took an address no old pod had (old ones may be reused afterwards).
    let after: BTreeSet<String> = after.into_values().collect();
    assert_ne!(
        after,
        before.into_values().collect::<BTreeSet<_>>(),
        "pod IPs changed"
    );
    assert_eq!(cluster_ip(&c, "web"), ip, "the ClusterIP stays");
    // The Endpoints name the new pods and traffic reaches them.
    wait_until("Endpoints with the new pods", T, || {
        let eps = c.json(&["get", "ep", "web"]);
        let ips: BTreeSet<String> = eps["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["ip"].as_str().map(String::from))
            .collect();
        (ips == after).then_some(())
    })
    .expect("endpoints");
    for _ in 0..10 {
        assert!(get(&addr).expect("GET").contains("Welcome to nginx!"));
    }
}
