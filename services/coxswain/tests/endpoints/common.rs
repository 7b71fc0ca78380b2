//! Helpers the tests of this binary share: the cluster, objects as JSON, and the addresses of
//! Endpoints and EndpointSlices.
use std::time::Duration;

use coxswain_test_support::{scenarios_dir, wait_until, Coxswain};
use serde_json::Value;

pub const T: Duration = Duration::from_secs(40);

pub fn cluster(extra: &[&str]) -> Coxswain {
    Coxswain::start_fast_up(extra).expect("start coxswain up")
}

pub fn apply(c: &Coxswain, yaml: &str) {
    c.apply(yaml);
}

pub fn scenario(file: &str) -> String {
    std::fs::read_to_string(scenarios_dir().join(file)).expect("scenario file")
}

pub fn get_json(c: &Coxswain, args: &[&str]) -> Option<Value> {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "json"]);
    let out = c.coxctl(&a);
    if !out.ok {
        return None;
    }
    serde_json::from_str(&out.stdout).ok()
}

pub fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => &v[k],
    })
}

pub fn arr<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    at(v, path)
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

pub fn pod_ip(c: &Coxswain, ns: &str, name: &str) -> String {
    wait_until(&format!("pod {name} has an IP"), T, || {
        let p = get_json(c, &["pod", name, "-n", ns])?;
        let ip = at(&p, "status.podIP").as_str()?.to_string();
        (!ip.is_empty()).then_some(ip)
    })
    .expect("pod IP")
}

/// (ready IPs, not-ready IPs, ports) of an Endpoints object, sorted.
pub fn ep_ips(ep: &Value) -> (Vec<String>, Vec<String>, Vec<i64>) {
    let mut ready = vec![];
    let mut not_ready = vec![];
    let mut ports = vec![];
    for ss in arr(ep, "subsets") {
        for a in arr(ss, "addresses") {
            ready.push(at(a, "ip").as_str().unwrap_or("").to_string());
        }
        for a in arr(ss, "notReadyAddresses") {
            not_ready.push(at(a, "ip").as_str().unwrap_or("").to_string());
        }
        for p in arr(ss, "ports") {
            ports.push(at(p, "port").as_i64().unwrap_or(0));
        }
    }
    ready.sort();
    not_ready.sort();
    ports.sort();
    ports.dedup();
    (ready, not_ready, ports)
}

pub fn wait_ep(
    c: &Coxswain,
    ns: &str,
    name: &str,
    what: &str,
    f: impl Fn(&(Vec<String>, Vec<String>, Vec<i64>)) -> bool,
) -> Value {
    wait_until(what, T, || {
        let ep = get_json(c, &["endpoints", name, "-n", ns])?;
        f(&ep_ips(&ep)).then_some(ep)
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {:?}",
            get_json(c, &["endpoints", name, "-n", ns]).map(|v| ep_ips(&v))
        )
    })
}

/// The managed slices of a Service.
pub fn slices(c: &Coxswain, ns: &str, svc: &str) -> Vec<Value> {
    get_json(
        c,
        &[
            "endpointslices",
            "-n",
            ns,
            "-l",
            &format!("kubernetes.io/service-name={svc}"),
        ],
    )
    .map(|l| arr(&l, "items").into_iter().cloned().collect())
    .unwrap_or_default()
}

/// (address, ready, serving, terminating) of every endpoint in the slices, sorted.
pub fn slice_endpoints(sl: &[Value]) -> Vec<(String, bool, bool, bool)> {
    let mut out: Vec<_> = sl
        .iter()
        .flat_map(|s| arr(s, "endpoints"))
        .map(|e| {
            (
                at(e, "addresses.0").as_str().unwrap_or("").to_string(),
                at(e, "conditions.ready").as_bool().unwrap_or(false),
                at(e, "conditions.serving").as_bool().unwrap_or(false),
                at(e, "conditions.terminating").as_bool().unwrap_or(false),
            )
        })
        .collect();
    out.sort();
    out
}
