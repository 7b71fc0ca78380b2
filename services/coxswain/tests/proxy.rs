//! The service proxy end to end on the real binary: `coxswain up` (proxy in-process) and
//! `coxswain proxy` against a remote store. Real HTTP GETs to ClusterIPs, NodePorts and
//! LoadBalancer IPs; nginx pods of the process runtime, and, for the routing rules, selectorless
//! Services whose hand-made Endpoints point at small HTTP/UDP servers of this test process (each
//! answers its own name, so every request shows which endpoint served it).
use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use coxswain_test_support::component::{field, Component};
use coxswain_test_support::{wait_until, Coxswain};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn cluster(extra: &[&str]) -> Coxswain {
    Coxswain::start_fast_up(extra).expect("start coxswain up")
}

fn apply(c: &Coxswain, yaml: &str) {
    c.apply(yaml);
}

fn json(c: &Coxswain, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&c.coxctl(&a).success().stdout).expect("json")
}

fn cluster_ip(c: &Coxswain, svc: &str) -> String {
    json(c, &["get", "svc", svc])["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP")
        .to_string()
}

fn node_port(c: &Coxswain, svc: &str) -> u16 {
    json(c, &["get", "svc", svc])["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .expect("nodePort") as u16
}

/// The node's InternalIP, once its agent has registered it (`up` serves before every agent
/// has written its Node).
fn internal_ip(c: &Coxswain, node: &str) -> String {
    wait_until(&format!("node {node}'s InternalIP"), T, || {
        let out = c.coxctl(&["get", "node", node, "-o", "json"]);
        let v: Value = serde_json::from_str(&out.stdout).ok().filter(|_| out.ok)?;
        v["status"]["addresses"]
            .as_array()?
            .iter()
            .find(|a| a["type"] == "InternalIP")
            .and_then(|a| a["address"].as_str())
            .map(str::to_string)
    })
    .expect("InternalIP")
}

/// An HTTP server on 127.0.0.1 answering its own name; runs until the test process ends.
fn backend(name: &str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let name = name.to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let name = name.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = write!(
                    s,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{name}",
                    name.len()
                );
            });
        }
    });
    port
}

/// A UDP server on 127.0.0.1 answering every datagram with its name and the datagram.
fn udp_backend(name: &str) -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = s.local_addr().expect("addr").port();
    let name = name.to_string();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let mut reply = name.as_bytes().to_vec();
            reply.push(b':');
            reply.extend_from_slice(&buf[..n]);
            let _ = s.send_to(&reply, from);
        }
    });
    port
}

/// GET / over HTTP/1.0; the body, or the error.
fn get(addr: &str) -> std::io::Result<String> {
    let sa: SocketAddr = addr.parse().expect("socket address");
    get_on(TcpStream::connect_timeout(&sa, Duration::from_secs(2))?)
}

/// GET / from source address `from` (as a pod with that IP would).
fn get_from(from: &str, addr: &str) -> std::io::Result<String> {
    let src: SocketAddr = format!("{from}:0").parse().expect("source address");
    let dst: SocketAddr = addr.parse().expect("socket address");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let s = rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4()?;
        s.bind(src)?;
        tokio::time::timeout(Duration::from_secs(2), s.connect(dst))
            .await
            .map_err(|_| std::io::Error::other("connect timed out"))??
            .into_std()
    })?;
    s.set_nonblocking(false)?;
    get_on(s)
}

fn get_on(mut s: TcpStream) -> std::io::Result<String> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    match out.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
            Ok(body.to_string())
        }
        _ => Err(std::io::Error::other(format!("bad response: {out:?}"))),
    }
}

fn wait_get(addr: &str, want: impl Fn(&str) -> bool) -> String {
    wait_until(&format!("GET {addr}"), T, || {
        get(addr).ok().filter(|b| want(b))
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A selectorless Service with hand-made Endpoints: (name, port, nodeName) per endpoint.
fn selectorless(name: &str, spec: &str, endpoints: &[(&str, u16, &str)]) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n{spec}\n---\n{}",
        endpoints_yaml(name, endpoints, &[])
    )
}

/// Endpoints: ready (name, port, node) and not-ready ones, port name "http".
fn endpoints_yaml(
    name: &str,
    ready: &[(&str, u16, &str)],
    not_ready: &[(&str, u16, &str)],
) -> String {
    let mut subsets = String::new();
    for (list, eps) in [("addresses", ready), ("notReadyAddresses", not_ready)] {
        for (_, port, node) in eps {
            subsets.push_str(&format!(
                "- {list}: [{{ip: 127.0.0.1, nodeName: {node}}}]\n  ports: [{{name: http, port: {port}, protocol: TCP}}]\n"
            ));
        }
    }
    if subsets.is_empty() {
        format!("apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: {name}\nsubsets: []\n")
    } else {
        format!("apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: {name}\nsubsets:\n{subsets}")
    }
}

fn served_by(addr: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| get(addr).unwrap_or_else(|e| panic!("GET {addr}: {e}")))
        .collect()
}

fn refused(addr: &str) -> bool {
    let sa: SocketAddr = addr.parse().expect("addr");
    matches!(
        TcpStream::connect_timeout(&sa, Duration::from_secs(2)),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused
    )
}

fn metrics(c: &Coxswain) -> String {
    let mut s = TcpStream::connect(&c.metrics).expect("metrics");
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

const NGINX: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx
        ports:
        - containerPort: 80
---
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
    json(c, &["get", "pods", "-l", "app=web"])["items"]
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

    apply(&c, NGINX);
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
        metrics(&c)
            .lines()
            .filter(|l| {
                l.starts_with(&format!("{name}{{"))
                    && l.contains("service=\"web\"")
                    && l.contains("namespace=\"default\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
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
    apply(&c, NGINX);
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
        let eps = json(&c, &["get", "ep", "web"]);
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

#[test]
fn round_robin_readiness_and_refusal() {
    let c = cluster(&[]);
    let (a, b, d) = (backend("a"), backend("b"), backend("d"));
    apply(
        &c,
        &selectorless(
            "rr",
            "  ports:\n  - {name: http, port: 8080, protocol: TCP}",
            &[("a", a, "node1"), ("b", b, "node1"), ("d", d, "node2")],
        ),
    );
    let addr = format!("{}:8080", cluster_ip(&c, "rr"));
    // The mirroring controller writes a slice per subset, so the proxy's table fills in steps:
    // wait until it holds all three (three picks in a row reach three backends only then).
    let all: BTreeSet<String> = ["a", "b", "d"].map(String::from).into();
    wait_until("all three endpoints in rotation", T, || {
        let three: Result<BTreeSet<String>, _> = (0..3).map(|_| get(&addr)).collect();
        three.ok().filter(|got| *got == all)
    })
    .expect("three endpoints");
    let got = served_by(&addr, 9);
    let counts = got.iter().fold(BTreeMap::new(), |mut m, n| {
        *m.entry(n.clone()).or_insert(0) += 1;
        m
    });
    assert_eq!(
        counts,
        BTreeMap::from([
            ("a".to_string(), 3),
            ("b".to_string(), 3),
            ("d".to_string(), 3)
        ]),
        "round-robin: {got:?}"
    );
    // b turns not ready: out of rotation within one watch event.
    apply(
        &c,
        &endpoints_yaml(
            "rr",
            &[("a", a, "node1"), ("d", d, "node2")],
            &[("b", b, "node1")],
        ),
    );
    wait_until("b out of rotation", T, || {
        (!served_by(&addr, 4).contains(&"b".to_string())).then_some(())
    })
    .expect("b leaves");
    let got: BTreeSet<String> = served_by(&addr, 10).into_iter().collect();
    assert_eq!(got, BTreeSet::from(["a".to_string(), "d".to_string()]));
    // A dead endpoint (nothing listens): the connection goes to the next one.
    let dead = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    apply(
        &c,
        &endpoints_yaml("rr", &[("a", a, "node1"), ("x", dead, "node1")], &[]),
    );
    // The slices change one by one: wait until x is in the proxy's table (a dial error is
    // counted) and d has left it (four requests in a row all reach a).
    wait_until("dead endpoint in the table, d gone", T, || {
        let only_a = (0..4).all(|_| get(&addr).is_ok_and(|b| b == "a"));
        let dialed_x = metrics(&c).lines().any(|l| {
            l.starts_with("coxswain_proxy_endpoint_dial_errors_total{")
                && l.contains("service=\"rr\"")
                && !l.ends_with(" 0")
        });
        (only_a && dialed_x).then_some(())
    })
    .expect("a dial error is counted");
    assert_eq!(
        served_by(&addr, 6),
        vec!["a"; 6],
        "every request served by a"
    );
    // No endpoints: connections are refused; they come back with an endpoint.
    apply(&c, &endpoints_yaml("rr", &[], &[("a", a, "node1")]));
    wait_until("refused", T, || refused(&addr).then_some(())).expect("refused");
    apply(&c, &endpoints_yaml("rr", &[("d", d, "node2")], &[]));
    assert_eq!(wait_get(&addr, |_| true), "d");
    // A Service that never had endpoints refuses too.
    apply(
        &c,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: none\nspec:\n  ports:\n  - {port: 8081}\n",
    );
    assert!(refused(&format!("{}:8081", cluster_ip(&c, "none"))));
}

#[test]
fn session_affinity_client_ip() {
    let c = cluster(&[]);
    let eps = [
        ("a", backend("a"), "node1"),
        ("b", backend("b"), "node1"),
        ("d", backend("d"), "node2"),
    ];
    apply(
        &c,
        &selectorless(
            "sticky",
            "  sessionAffinity: ClientIP\n  ports:\n  - {name: http, port: 8080, protocol: TCP}",
            &eps,
        ),
    );
    let svc = json(&c, &["get", "svc", "sticky"]);
    assert_eq!(
        svc["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"], 10800,
        "defaulted: {svc}"
    );
    let addr = format!("{}:8080", cluster_ip(&c, "sticky"));
    let first = wait_get(&addr, |_| true);
    assert_eq!(
        served_by(&addr, 10),
        vec![first.clone(); 10],
        "one client, one endpoint"
    );
    // Turned off (recreated: apply keeps the defaulted sessionAffinityConfig, which Kubernetes
    // forbids with None, just as kubectl apply would): round-robin again.
    c.coxctl(&["delete", "svc", "sticky"]).success();
    apply(
        &c,
        &selectorless(
            "sticky",
            "  sessionAffinity: None\n  ports:\n  - {name: http, port: 8080, protocol: TCP}",
            &eps,
        ),
    );
    let addr = format!("{}:8080", cluster_ip(&c, "sticky"));
    // Until the proxy has the recreated Service's slices a connection may be refused.
    wait_until("round-robin again", T, || {
        let three: Result<BTreeSet<String>, _> = (0..3).map(|_| get(&addr)).collect();
        three.ok().filter(|got| got.len() == 3)
    })
    .expect("spread");
    // Bad input: a timeout outside (0, 86400].
    let bad = c.coxctl_in(
        &["apply", "-f", "-"],
        None,
        Some("apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}\n  ports:\n  - {port: 80}\n"),
    );
    assert!(
        !bad.ok
            && bad
                .stderr
                .contains("spec.sessionAffinityConfig.clientIP.timeoutSeconds"),
        "{}",
        bad.stderr
    );
}

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
        json(&c, &["get", "svc", "local"])["status"]["loadBalancer"]["ingress"][0]["ip"]
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

#[test]
fn an_open_connection_outlives_its_endpoint_leaving() {
    let c = cluster(&[]);
    let a = backend("a");
    let svc = "  ports:\n  - {name: http, port: 8080, protocol: TCP}";
    apply(&c, &selectorless("keep", svc, &[("a", a, "node1")]));
    let addr = format!("{}:8080", cluster_ip(&c, "keep"));
    assert_eq!(wait_get(&addr, |_| true), "a");
    // A connection spliced to the endpoint, its request not sent yet.
    let mut open = TcpStream::connect(&addr).expect("connect");
    open.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // The endpoint leaves: new connections are refused (no endpoints, no listener)…
    apply(&c, &endpoints_yaml("keep", &[], &[]));
    wait_until("no endpoints: refused", T, || refused(&addr).then_some(())).expect("refused");
    // …and the open one still carries its request and answer.
    open.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        .expect("write");
    let mut out = String::new();
    open.read_to_string(&mut out).expect("read");
    assert!(out.ends_with("\r\n\r\na"), "{out:?}");
}

#[test]
fn udp_is_carried_per_client() {
    let c = cluster(&[]);
    let port = udp_backend("dns1");
    apply(
        &c,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: udp\nspec:\n  ports:\n  - {{name: dns, port: 53, protocol: UDP}}\n---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: udp\nsubsets:\n- addresses: [{{ip: 127.0.0.1}}]\n  ports: [{{name: dns, port: {port}, protocol: UDP}}]\n"
        ),
    );
    let target = format!("{}:53", cluster_ip(&c, "udp"));
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    let reply = wait_until("a UDP reply through the ClusterIP", T, || {
        s.send_to(b"query", &target).ok()?;
        let (n, from) = s.recv_from(&mut buf).ok()?;
        Some((String::from_utf8_lossy(&buf[..n]).to_string(), from))
    })
    .expect("reply");
    assert_eq!(reply.0, "dns1:query");
    assert_eq!(
        reply.1.to_string(),
        target,
        "the reply comes from the Service address"
    );
    for i in 0..20 {
        let q = format!("q{i}");
        s.send_to(q.as_bytes(), &target).expect("send");
        let (n, _) = s.recv_from(&mut buf).expect("reply");
        assert_eq!(&buf[..n], format!("dns1:{q}").as_bytes());
    }
}

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
    let mut s = TcpStream::connect(&metrics_addr).expect("metrics");
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .expect("write");
    let mut m = String::new();
    s.read_to_string(&mut m).expect("read");
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
    json(c, &["get", "svc", svc])["status"]["loadBalancer"]["ingress"][0]["ip"]
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
