//! Helpers every test of this binary shares: a cluster with shortened timers, scenario
//! manifests bound to a node, pod lookups, STATUS waits and plain HTTP GETs to pod IPs.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use coxswain_test_support::{fast_up_with, scenarios_dir, wait_until, Coxswain};
use serde_json::Value;

pub const T: Duration = Duration::from_secs(30);

pub fn cluster(octet: u8, extra: &[&str]) -> Coxswain {
    let octet = octet.to_string();
    let defaults = [
        "--pod-network-octet",
        &octet,
        "--backoff-initial",
        "1s",
        "--backoff-max",
        "2s",
        "--metrics-resolution",
        "300ms",
    ];
    // A flag given in `extra` replaces the default.
    fast_up_with(&defaults, extra).expect("start coxswain up")
}

/// A scenario manifest with every Pod bound to `node` and moved to namespace `ns`.
pub fn manifest(file: &str, node: &str, ns: &str) -> String {
    let text = std::fs::read_to_string(scenarios_dir().join(file)).expect("scenario file");
    text.split("\n---\n")
        .map(|doc| {
            let doc = doc.replace("namespace: mayikt-sit", &format!("namespace: {ns}"));
            if doc.contains("kind: Pod") {
                doc.replacen("\nspec:\n", &format!("\nspec:\n  nodeName: {node}\n"), 1)
            } else {
                doc
            }
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

pub fn apply(c: &Coxswain, yaml: &str) {
    c.apply(yaml);
}

pub fn namespace(c: &Coxswain, ns: &str) {
    c.coxctl(&["create", "namespace", ns]).success();
}

pub fn pod(c: &Coxswain, ns: &str, name: &str) -> Option<Value> {
    let out = c.coxctl(&["get", "pod", name, "-n", ns, "-o", "json"]);
    if !out.ok {
        return None;
    }
    serde_json::from_str(&out.stdout).ok()
}

pub fn s<'a>(v: &'a Value, path: &str) -> &'a Value {
    let mut v = v;
    for p in path.split('.') {
        v = match p.parse::<usize>() {
            Ok(i) => &v[i],
            Err(_) => &v[p],
        };
    }
    v
}

/// The STATUS column of `coxctl get pod`.
pub fn status_column(c: &Coxswain, ns: &str, name: &str) -> String {
    let out = c.coxctl(&["get", "pod", name, "-n", ns, "--no-headers"]);
    out.stdout
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string()
}

pub fn wait_status(c: &Coxswain, ns: &str, name: &str, want: &str) {
    wait_until(&format!("{ns}/{name} STATUS {want}"), T, || {
        (status_column(c, ns, name) == want).then_some(())
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{}\n{}",
            c.coxctl(&["get", "pod", name, "-n", ns]).stdout,
            c.coxctl(&["get", "pod", name, "-n", ns, "-o", "yaml"])
                .stdout
        )
    });
}

pub fn restarts(p: &Value) -> i64 {
    s(p, "status.containerStatuses.0.restartCount")
        .as_i64()
        .unwrap_or(0)
}

pub fn http_get(ip: &str, port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse().ok()?,
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// GET once the server answers: Running means the process started, not that it listens yet
/// (as in Kubernetes, where only a readiness probe says that).
pub fn http_get_answered(ip: &str, port: u16, path: &str) -> (u16, String) {
    wait_until("the server answered", T, || http_get(ip, port, path)).expect("answered")
}

pub fn events_of(c: &Coxswain, ns: &str, name: &str) -> String {
    c.coxctl(&["describe", "pod", name, "-n", ns]).stdout
}
