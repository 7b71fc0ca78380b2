//! Cluster DNS end to end on the real binary with the real `dig` (Debian's bind9-dnsutils):
//! `coxswain up` (DNS in-process, its listener published as the kube-dns Service) and
//! `coxswain dns` as its own process against a remote store. Services are selectorless with
//! hand-made Endpoints (hostnames set, as the endpoints controller sets them for StatefulSet
//! pods), plus S50–S52 with a real StatefulSet.
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use coxswain_test_support::{bin, scenarios_dir, wait_until, Coxswain};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

/// `dig @server -p port ARGS` with short timeouts. A missing dig fails the test: CI installs
/// it (bind9-dnsutils in .ci/run).
fn dig(server: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+time=2", "+tries=1"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `dig` ({e}): install bind9-dnsutils (bash .ci/run does)")
        });
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `+short` answers, sorted.
fn short(server: SocketAddr, name: &str, qtype: &str) -> BTreeSet<String> {
    dig(server, &["+short", name, qtype])
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(";;"))
        .map(str::to_string)
        .collect()
}

/// The status of the header (NOERROR, NXDOMAIN, REFUSED…) and the full output.
fn status(server: SocketAddr, args: &[&str]) -> (String, String) {
    let out = dig(server, args);
    let st = out
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .map(|s| s.split(',').next().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("no answer from {server}: {out}"));
    (st, out)
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn apply(c: &Coxswain, yaml: &str) {
    c.apply(yaml);
}

fn cluster_ip(c: &Coxswain, ns: &str, svc: &str) -> String {
    c.try_json(&["get", "svc", svc, "-n", ns]).expect("service")["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP")
        .to_string()
}

/// The DNS listener `up` published as the kube-dns Service: 127.0.0.1:<targetPort>.
fn kube_dns(c: &Coxswain) -> SocketAddr {
    wait_until("the kube-dns Service", T, || {
        let svc = c.try_json(&["get", "svc", "kube-dns", "-n", "kube-system"])?;
        let ports = svc["spec"]["ports"].as_array()?.clone();
        let names: Vec<&str> = ports.iter().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(names, ["dns", "dns-tcp"], "{svc}");
        assert!(ports.iter().all(|p| p["port"] == 53), "{svc}");
        let port = ports[0]["targetPort"].as_u64()?;
        Some(SocketAddr::from(([127, 0, 0, 1], port as u16)))
    })
    .expect("kube-dns")
}

fn up(extra: &[&str]) -> Coxswain {
    let mut args = vec![
        "--in-memory",
        "--nodes",
        "1",
        "--runtime",
        "sim",
        "--dns-listen",
        "127.0.0.1:0",
        "--dns-outside",
        "refuse",
    ];
    args.extend_from_slice(extra);
    Coxswain::start_with(&["up"], &args).expect("start coxswain up")
}

/// web: ClusterIP with named ports http/TCP 80 and metrics/UDP 9000; nginx: headless and
/// selectorless with three hand-made endpoints (hostnames web-0..2) and a not-ready one;
/// db: ExternalName db.example.com.
const OBJECTS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports:
  - {name: http, port: 80, protocol: TCP}
  - {name: metrics, port: 9000, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: nginx}
spec:
  clusterIP: None
  ports:
  - {name: web, port: 80}
---
apiVersion: v1
kind: Endpoints
metadata: {name: nginx}
subsets:
- addresses:
  - {ip: 10.77.0.10, hostname: web-0}
  - {ip: 10.77.0.11, hostname: web-1}
  - {ip: 10.77.0.12, hostname: web-2}
  notReadyAddresses:
  - {ip: 10.77.0.13, hostname: web-3}
  ports:
  - {name: web, port: 80, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  type: ExternalName
  externalName: db.example.com
"#;

/// Everything a client asks of the cluster DNS, against `server`; `c` is the store.
fn check_records(c: &Coxswain, server: SocketAddr) {
    apply(c, OBJECTS);
    let web_ip = cluster_ip(c, "default", "web");
    // A for a ClusterIP Service (waits for the watch to deliver it).
    wait_until("web's A record", T, || {
        (short(server, "web.default.svc.cluster.local", "A") == set(&[&web_ip])).then_some(())
    })
    .unwrap();
    // Case-insensitive; TTL 5; authoritative.
    let (st, out) = status(
        server,
        &[
            "WEB.Default.SVC.cluster.LOCAL.",
            "A",
            "+noall",
            "+answer",
            "+comments",
        ],
    );
    assert_eq!(st, "NOERROR", "{out}");
    assert!(out.contains(" aa"), "{out}");
    let want = [
        "WEB.Default.SVC.cluster.LOCAL.",
        "5",
        "IN",
        "A",
        web_ip.as_str(),
    ];
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().eq(want.iter().copied())),
        "{out}"
    );
    // Headless: one A per ready endpoint, never the not-ready one.
    wait_until("nginx's endpoints", T, || {
        (short(server, "nginx.default.svc.cluster.local", "A")
            == set(&["10.77.0.10", "10.77.0.11", "10.77.0.12"]))
        .then_some(())
    })
    .unwrap();
    // The pod hostname form.
    assert_eq!(
        short(server, "web-1.nginx.default.svc.cluster.local", "A"),
        set(&["10.77.0.11"])
    );
    // SRV for a named port, the same over TCP.
    assert_eq!(
        short(server, "_http._tcp.web.default.svc.cluster.local", "SRV"),
        set(&["0 100 80 web.default.svc.cluster.local."])
    );
    assert_eq!(
        dig(
            server,
            &[
                "+tcp",
                "+short",
                "_metrics._udp.web.default.svc.cluster.local",
                "SRV"
            ]
        )
        .trim(),
        "0 100 9000 web.default.svc.cluster.local."
    );
    assert_eq!(
        short(server, "_web._tcp.nginx.default.svc.cluster.local", "SRV"),
        set(&[
            "0 33 80 web-0.nginx.default.svc.cluster.local.",
            "0 33 80 web-1.nginx.default.svc.cluster.local.",
            "0 33 80 web-2.nginx.default.svc.cluster.local."
        ])
    );
    // PTR for the ClusterIP and for an endpoint.
    assert_eq!(
        dig(server, &["+short", "-x", &web_ip]).trim(),
        "web.default.svc.cluster.local."
    );
    assert_eq!(
        dig(server, &["+short", "-x", "10.77.0.12"]).trim(),
        "web-2.nginx.default.svc.cluster.local."
    );
    // ExternalName → CNAME.
    assert_eq!(
        short(server, "db.default.svc.cluster.local", "CNAME"),
        set(&["db.example.com."])
    );
    // The pod form.
    assert_eq!(
        short(server, "10-77-0-99.default.pod.cluster.local", "A"),
        set(&["10.77.0.99"])
    );
    // NXDOMAIN and NODATA, both with the SOA.
    let (st, out) = status(server, &["nope.default.svc.cluster.local", "A"]);
    assert_eq!(st, "NXDOMAIN", "{out}");
    assert!(
        out.contains("SOA\tns.dns.cluster.local. hostmaster.cluster.local."),
        "{out}"
    );
    let (st, out) = status(server, &["web-3.nginx.default.svc.cluster.local", "A"]);
    assert_eq!(st, "NXDOMAIN", "a not-ready endpoint has no record: {out}");
    let (st, out) = status(server, &["web.default.svc.cluster.local", "AAAA"]);
    assert_eq!(st, "NOERROR", "{out}");
    assert!(out.contains("ANSWER: 0"), "{out}");
    assert!(out.contains("SOA"), "{out}");

    // A change is answered as soon as its watch event arrives: web-1 moves, web-2 leaves.
    apply(
        c,
        "apiVersion: v1\nkind: Endpoints\nmetadata: {name: nginx}\nsubsets:\n- addresses:\n  - {ip: 10.77.0.10, hostname: web-0}\n  - {ip: 10.77.0.21, hostname: web-1}\n  ports:\n  - {name: web, port: 80, protocol: TCP}\n",
    );
    wait_until("web-1's new address", T, || {
        (short(server, "web-1.nginx.default.svc.cluster.local", "A") == set(&["10.77.0.21"]))
            .then_some(())
    })
    .unwrap();
    assert_eq!(
        short(server, "nginx.default.svc.cluster.local", "A"),
        set(&["10.77.0.10", "10.77.0.21"])
    );
    // A deleted Service is gone.
    c.coxctl(&["delete", "svc", "db"]).success();
    wait_until("db to be NXDOMAIN", T, || {
        (status(server, &["db.default.svc.cluster.local", "CNAME"]).0 == "NXDOMAIN").then_some(())
    })
    .unwrap();
}

#[test]
fn up_serves_cluster_dns_to_dig() {
    let c = up(&[]);
    let server = kube_dns(&c);
    check_records(&c, server);
    // kube-dns names itself, and outside names are REFUSED with --dns-outside refuse.
    let dns_ip = cluster_ip(&c, "kube-system", "kube-dns");
    assert_eq!(
        short(server, "kube-dns.kube-system.svc.cluster.local", "A"),
        set(&[&dns_ip])
    );
    let (st, out) = status(server, &["example.com", "A"]);
    assert_eq!(st, "REFUSED", "{out}");
    // Through the kube-dns ClusterIP on port 53 (the service proxy), UDP and TCP, as a pod's
    // resolver would ask.
    let via_svc: SocketAddr = format!("{dns_ip}:53").parse().unwrap();
    let web_ip = cluster_ip(&c, "default", "web");
    wait_until("an answer through the kube-dns ClusterIP", T, || {
        (short(via_svc, "web.default.svc.cluster.local", "A") == set(&[&web_ip])).then_some(())
    })
    .unwrap();
    assert_eq!(
        dig(
            via_svc,
            &["+tcp", "+short", "web.default.svc.cluster.local"]
        )
        .trim(),
        web_ip
    );
}

#[test]
fn names_outside_the_zone_are_forwarded_upstream() {
    // The upstream is a second cluster's DNS (domain other.local): a real DNS server on
    // loopback, so forwarding is checked without leaving the machine.
    let other = up(&["--cluster-domain", "other.local"]);
    let upstream = kube_dns(&other);
    apply(&other, "apiVersion: v1\nkind: Service\nmetadata: {name: far}\nspec:\n  ports:\n  - {name: http, port: 80}\n");
    let far_ip = cluster_ip(&other, "default", "far");
    wait_until("far in the other cluster", T, || {
        (short(upstream, "far.default.svc.other.local", "A") == set(&[&far_ip])).then_some(())
    })
    .unwrap();

    let up_arg = upstream.to_string();
    let c = Coxswain::start_with(
        &["up"],
        &[
            "--in-memory",
            "--nodes",
            "1",
            "--runtime",
            "sim",
            "--dns-listen",
            "127.0.0.1:0",
            "--dns-upstream",
            &up_arg,
            "--dns-upstream-timeout",
            "1s",
        ],
    )
    .expect("start");
    let server = kube_dns(&c);
    assert_eq!(
        short(server, "far.default.svc.other.local", "A"),
        set(&[&far_ip])
    );
    assert_eq!(
        dig(server, &["+tcp", "+short", "far.default.svc.other.local"]).trim(),
        far_ip
    );
    let (st, out) = status(server, &["nope.default.svc.other.local", "A"]);
    assert_eq!(st, "NXDOMAIN", "the upstream's answer is relayed: {out}");
    // An ExternalName to a name outside the zone: the CNAME plus the upstream's records.
    apply(&c, "apiVersion: v1\nkind: Service\nmetadata: {name: alias}\nspec:\n  type: ExternalName\n  externalName: far.default.svc.other.local\n");
    wait_until("the CNAME chased upstream", T, || {
        let got = short(server, "alias.default.svc.cluster.local", "A");
        (got == set(&["far.default.svc.other.local.", &far_ip])).then_some(())
    })
    .unwrap();
}

/// `coxswain dns` started by hand; stops with the test.
struct DnsProcess(Child, SocketAddr);

impl Drop for DnsProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dns_process(store: &Coxswain, extra: &[&str]) -> DnsProcess {
    let mut child = Command::new(bin("coxswain"))
        .args([
            "dns",
            "--server",
            &store.url(),
            "--dns-listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start coxswain dns");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("ready line");
    let addr = line
        .split_whitespace()
        .find_map(|p| p.strip_prefix("dns="))
        .unwrap_or_else(|| panic!("no dns= in {line:?}"))
        .parse()
        .expect("dns address");
    DnsProcess(child, addr)
}

/// As a user runs it: `coxswain up --no-dns` (store, controllers — whose EndpointSlice
/// mirroring turns hand-made Endpoints into the slices DNS reads — and the proxy) and
/// `coxswain dns --server URL` beside it, published as kube-dns and reached through its
/// ClusterIP too.
#[test]
fn dns_runs_as_its_own_process_against_a_remote_store() {
    let store = up(&["--no-dns"]);
    let p = dns_process(
        &store,
        &[
            "--dns-outside",
            "refuse",
            "--cluster-domain",
            "corp.example",
        ],
    );
    // It publishes itself as kube-dns, pointing at its own listener.
    let ep = wait_until("kube-dns Endpoints", T, || {
        store.try_json(&["get", "endpoints", "kube-dns", "-n", "kube-system"])
    })
    .unwrap();
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "127.0.0.1", "{ep}");
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], p.1.port(), "{ep}");
    apply(&store, OBJECTS);
    wait_until("nginx in corp.example", T, || {
        (short(p.1, "web-0.nginx.default.svc.corp.example", "A") == set(&["10.77.0.10"]))
            .then_some(())
    })
    .unwrap();
    let (st, _) = status(p.1, &["web.default.svc.cluster.local", "A"]);
    assert_eq!(st, "REFUSED", "cluster.local is not this cluster's domain");
    // up's proxy carries the kube-dns ClusterIP to this process.
    let via_svc: SocketAddr = format!("{}:53", cluster_ip(&store, "kube-system", "kube-dns"))
        .parse()
        .unwrap();
    wait_until("an answer through the kube-dns ClusterIP", T, || {
        (short(via_svc, "web-1.nginx.default.svc.corp.example", "A") == set(&["10.77.0.11"]))
            .then_some(())
    })
    .unwrap();
}

#[test]
fn a_malformed_packet_gets_formerr_and_the_server_keeps_serving() {
    let store = Coxswain::start_with(&["store"], &["--in-memory"]).expect("start store");
    let p = dns_process(&store, &["--dns-outside", "refuse"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // A header claiming one question, then garbage.
    sock.send_to(&[0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff], p.1)
        .unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = sock.recv_from(&mut buf).expect("an answer");
    assert!(n >= 12);
    assert_eq!(&buf[..2], &[0xab, 0xcd]);
    assert_eq!(buf[3] & 0x0f, 1, "FORMERR");
    // Too short to answer: dropped; the server still answers the next query.
    sock.send_to(&[1, 2, 3], p.1).unwrap();
    let (st, out) = status(p.1, &["kube-dns.kube-system.svc.cluster.local", "A"]);
    assert!(st == "NOERROR" || st == "SERVFAIL", "{out}");
}

/// S50–S52: the StatefulSet's pods resolve by `<pod>.<svc>.<ns>.svc.cluster.local`, the
/// headless name lists exactly the pod IPs, and a replaced pod's name follows its new IP.
#[test]
fn s51_s52_statefulset_pods_resolve_by_name() {
    let c = up(&["--pod-time-scale", "0.1"]);
    let server = kube_dns(&c);
    let yaml = std::fs::read_to_string(scenarios_dir().join("52-statefulset-nginx-headless.yaml"))
        .expect("manifest 52");
    apply(&c, &yaml);
    let pod_ip = |name: &str| -> Option<String> {
        let p = c.try_json(&["get", "pod", name])?;
        let ready = p["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        let ip = p["status"]["podIP"].as_str()?.to_string();
        (ready && !ip.is_empty()).then_some(ip)
    };
    let names = ["stateful-nginx-0", "stateful-nginx-1", "stateful-nginx-2"];
    let ips: BTreeSet<String> = wait_until("three ready pods", T, || {
        names
            .iter()
            .map(|n| pod_ip(n))
            .collect::<Option<BTreeSet<_>>>()
    })
    .unwrap();
    wait_until("nginx to list the three pod IPs", T, || {
        (short(server, "nginx.default.svc.cluster.local", "A") == ips).then_some(())
    })
    .unwrap();
    let ip1 = pod_ip("stateful-nginx-1").unwrap();
    assert_eq!(
        short(
            server,
            "stateful-nginx-1.nginx.default.svc.cluster.local",
            "A"
        ),
        set(&[&ip1])
    );
    // S52: delete the pod; its replacement (same name) resolves, to its own IP.
    let uid = c.try_json(&["get", "pod", "stateful-nginx-1"]).unwrap()["metadata"]["uid"].clone();
    c.coxctl(&["delete", "pod", "stateful-nginx-1"]).success();
    let new_ip = wait_until("the replacement pod", T, || {
        let p = c.try_json(&["get", "pod", "stateful-nginx-1"])?;
        (p["metadata"]["uid"] != uid).then_some(())?;
        pod_ip("stateful-nginx-1")
    })
    .unwrap();
    wait_until("the name to follow the replacement", T, || {
        (short(
            server,
            "stateful-nginx-1.nginx.default.svc.cluster.local",
            "A",
        ) == set(&[&new_ip]))
        .then_some(())
    })
    .unwrap();
}

/// A pod whose readiness probe never passes (nginx serves port 80; the probe asks port 81)
/// behind Services that publish not-ready addresses and Services that do not.
const NOT_READY: &str = "apiVersion: v1
kind: Pod
metadata:
  name: nr
  labels: {app: nr}
spec:
  containers:
  - name: nginx
    image: nginx
    ports: [{containerPort: 80}]
    readinessProbe: {httpGet: {path: /, port: 81}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: pub}
spec:
  publishNotReadyAddresses: true
  selector: {app: nr}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: hidden}
spec:
  selector: {app: nr}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: pub-hl}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {app: nr}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: hidden-hl}
spec:
  clusterIP: None
  selector: {app: nr}
  ports: [{name: http, port: 80}]
";

/// GET / over HTTP/1.0: the response, or the error.
fn http_get(addr: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let sa: SocketAddr = addr.parse().expect("socket address");
    let mut s = std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn is_empty_list(v: &Value) -> bool {
    v.as_array().is_none_or(|a| a.is_empty())
}

/// The ready condition of `svc`'s slice endpoint with address `ip`.
fn slice_ready(c: &Coxswain, svc: &str, ip: &str) -> Option<bool> {
    let label = format!("kubernetes.io/service-name={svc}");
    let list = c.try_json(&["get", "endpointslices", "-l", &label])?;
    list["items"].as_array()?.iter().find_map(|s| {
        s["endpoints"].as_array()?.iter().find_map(|e| {
            (e["addresses"][0] == ip).then(|| e["conditions"]["ready"].as_bool().unwrap_or(true))
        })
    })
}

/// publishNotReadyAddresses: true puts a not-ready pod under `addresses` (ready in its slice),
/// so the proxy carries traffic to it and DNS answers with it; the Services over the same pod
/// that do not publish keep it under notReadyAddresses: connection refused, NXDOMAIN.
#[test]
fn publish_not_ready_addresses_are_served_by_the_proxy_and_dns() {
    let c = Coxswain::start_fast_up(&["--dns-listen", "127.0.0.1:0", "--dns-outside", "refuse"])
        .expect("start coxswain up");
    let server = kube_dns(&c);
    apply(&c, NOT_READY);
    let ip = wait_until("nr running with an IP, not ready", T, || {
        let p = c.try_json(&["get", "pod", "nr"])?;
        let ip = p["status"]["podIP"].as_str().filter(|s| !s.is_empty())?;
        let ready = p["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")?;
        (p["status"]["phase"] == "Running" && ready["status"] == "False").then(|| ip.to_string())
    })
    .unwrap();
    let published = wait_until("pub's Endpoints list nr as an address", T, || {
        let e = c.try_json(&["get", "endpoints", "pub"])?;
        let ss = &e["subsets"][0];
        (ss["addresses"][0]["ip"] == ip.as_str() && is_empty_list(&ss["notReadyAddresses"]))
            .then_some(e)
    })
    .unwrap();
    assert_eq!(published["subsets"][0]["ports"][0]["port"], 80);
    wait_until("hidden's Endpoints list nr as not ready", T, || {
        let e = c.try_json(&["get", "endpoints", "hidden"])?;
        let ss = &e["subsets"][0];
        (ss["notReadyAddresses"][0]["ip"] == ip.as_str() && is_empty_list(&ss["addresses"]))
            .then_some(())
    })
    .unwrap();
    wait_until("the slices: ready for pub, not for hidden", T, || {
        (slice_ready(&c, "pub", &ip)? && !slice_ready(&c, "hidden", &ip)?).then_some(())
    })
    .unwrap();
    // The proxy serves the published pod; the other Service has no ready endpoint: refused.
    let pub_addr = format!("{}:80", cluster_ip(&c, "default", "pub"));
    let body = wait_until("nginx through pub's ClusterIP", T, || {
        http_get(&pub_addr)
            .ok()
            .filter(|b| b.contains("Welcome to nginx!"))
    })
    .unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let hidden_addr = format!("{}:80", cluster_ip(&c, "default", "hidden"));
    let e = http_get(&hidden_addr).expect_err("no endpoint: refused");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    // DNS: the headless Service that publishes answers with the pod; the other has no ready
    // endpoint: NXDOMAIN.
    wait_until("pub-hl's A record", T, || {
        (short(server, "pub-hl.default.svc.cluster.local", "A") == set(&[&ip])).then_some(())
    })
    .unwrap();
    let srv = short(server, "_http._tcp.pub-hl.default.svc.cluster.local", "SRV");
    let dashed = ip.replace('.', "-");
    assert_eq!(
        srv,
        set(&[&format!(
            "0 100 80 {dashed}.pub-hl.default.svc.cluster.local."
        )])
    );
    let (st, out) = status(server, &["hidden-hl.default.svc.cluster.local", "A"]);
    assert_eq!(st, "NXDOMAIN", "{out}");
    // Still not ready at the end: what was served was a not-ready pod.
    let p = c.try_json(&["get", "pod", "nr"]).expect("pod");
    assert!(
        p["status"]["conditions"].as_array().is_some_and(|cs| cs
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "False")),
        "{p}"
    );
}
