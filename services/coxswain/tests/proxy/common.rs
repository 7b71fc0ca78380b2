//! Helpers every test of this binary shares: a cluster, Service lookups, small HTTP/UDP
//! backends answering their own name, selectorless Services with hand-made Endpoints, GETs
//! (also from a pod's source address) and the proxy's metrics.
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use coxswain_test_support::{wait_until, Coxswain};
use serde_json::Value;

pub const T: Duration = Duration::from_secs(30);

pub fn cluster(extra: &[&str]) -> Coxswain {
    Coxswain::start_fast_up(extra).expect("start coxswain up")
}

pub fn apply(c: &Coxswain, yaml: &str) {
    c.apply(yaml);
}

pub fn cluster_ip(c: &Coxswain, svc: &str) -> String {
    c.json(&["get", "svc", svc])["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP")
        .to_string()
}

pub fn node_port(c: &Coxswain, svc: &str) -> u16 {
    c.json(&["get", "svc", svc])["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .expect("nodePort") as u16
}

/// The node's InternalIP, once its agent has registered it (`up` serves before every agent
/// has written its Node).
pub fn internal_ip(c: &Coxswain, node: &str) -> String {
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
pub fn backend(name: &str) -> u16 {
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
pub fn udp_backend(name: &str) -> u16 {
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
pub fn get(addr: &str) -> std::io::Result<String> {
    let sa: SocketAddr = addr.parse().expect("socket address");
    get_on(TcpStream::connect_timeout(&sa, Duration::from_secs(2))?)
}

/// GET / from source address `from` (as a pod with that IP would).
pub fn get_from(from: &str, addr: &str) -> std::io::Result<String> {
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

pub fn wait_get(addr: &str, want: impl Fn(&str) -> bool) -> String {
    wait_until(&format!("GET {addr}"), T, || {
        get(addr).ok().filter(|b| want(b))
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A selectorless Service with hand-made Endpoints: (name, port, nodeName) per endpoint.
pub fn selectorless(name: &str, spec: &str, endpoints: &[(&str, u16, &str)]) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n{spec}\n---\n{}",
        endpoints_yaml(name, endpoints, &[])
    )
}

/// Endpoints: ready (name, port, node) and not-ready ones, port name "http".
pub fn endpoints_yaml(
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

pub fn served_by(addr: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| get(addr).unwrap_or_else(|e| panic!("GET {addr}: {e}")))
        .collect()
}

pub fn refused(addr: &str) -> bool {
    let sa: SocketAddr = addr.parse().expect("addr");
    matches!(
        TcpStream::connect_timeout(&sa, Duration::from_secs(2)),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused
    )
}

pub fn metrics(c: &Coxswain) -> String {
    coxswain_test_support::metrics::scrape(&c.metrics).expect("metrics")
}
