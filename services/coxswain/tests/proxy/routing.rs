//! Routing among endpoints: round-robin, readiness, refusal without endpoints, ClientIP
//! session affinity, open connections outliving their endpoint, and UDP per client.
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use coxswain_test_support::wait_until;

use crate::common::*;

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
    let svc = c.json(&["get", "svc", "sticky"]);
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
