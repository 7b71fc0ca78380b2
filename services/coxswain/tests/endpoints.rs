//! Endpoints, EndpointSlices and `coxctl expose` end to end on the real binary: S30 (readiness
//! probes move pods between `addresses` and `notReadyAddresses`, with real nginx-like pods), a
//! sim pod turning ready, named targetPorts resolved per pod, the headless StatefulSet of
//! S50–S52 (hostnames), slices split at a small `--max-endpoints-per-slice`, the expose half of
//! S49, and bad Service/EndpointSlice input rejected with the field named and nothing stored.
use std::time::Duration;

use coxswain_test_support::{scenarios_dir, wait_until, Coxswain};
use serde_json::Value;

const T: Duration = Duration::from_secs(40);

fn cluster(extra: &[&str]) -> Coxswain {
    Coxswain::start_fast_up(extra).expect("start coxswain up")
}

fn apply(c: &Coxswain, yaml: &str) {
    c.apply(yaml);
}

fn scenario(file: &str) -> String {
    std::fs::read_to_string(scenarios_dir().join(file)).expect("scenario file")
}

fn get_json(c: &Coxswain, args: &[&str]) -> Option<Value> {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "json"]);
    let out = c.coxctl(&a);
    if !out.ok {
        return None;
    }
    serde_json::from_str(&out.stdout).ok()
}

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => &v[k],
    })
}

fn arr<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    at(v, path)
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn pod_ip(c: &Coxswain, ns: &str, name: &str) -> String {
    wait_until(&format!("pod {name} has an IP"), T, || {
        let p = get_json(c, &["pod", name, "-n", ns])?;
        let ip = at(&p, "status.podIP").as_str()?.to_string();
        (!ip.is_empty()).then_some(ip)
    })
    .expect("pod IP")
}

/// (ready IPs, not-ready IPs, ports) of an Endpoints object, sorted.
fn ep_ips(ep: &Value) -> (Vec<String>, Vec<String>, Vec<i64>) {
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

fn wait_ep(
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
fn slices(c: &Coxswain, ns: &str, svc: &str) -> Vec<Value> {
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
fn slice_endpoints(sl: &[Value]) -> Vec<(String, bool, bool, bool)> {
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

#[test]
fn s30_readiness_probes_decide_addresses_and_not_ready_addresses() {
    let c = cluster(&["--runtime", "process"]);
    c.coxctl(&["create", "namespace", "mayikt-sit"]).success();
    apply(&c, &scenario("25-pod-readiness-service.yaml"));
    let ready_ip = pod_ip(&c, "mayikt-sit", "mayikt-pod-ready");
    let other_ip = pod_ip(&c, "mayikt-sit", "mayikt-pod-not-ready");
    let ep = wait_ep(
        &c,
        "mayikt-sit",
        "mayikt-readiness-svc",
        "only the ready pod under addresses",
        |(r, n, p)| *r == [ready_ip.as_str()] && *n == [other_ip.as_str()] && p == &[80],
    );
    let ss = &arr(&ep, "subsets")[0];
    let a = &arr(ss, "addresses")[0];
    assert_eq!(at(a, "targetRef.kind"), "Pod");
    assert_eq!(at(a, "targetRef.name"), "mayikt-pod-ready");
    assert!(
        at(a, "nodeName")
            .as_str()
            .is_some_and(|n| n.starts_with("node")),
        "{a}"
    );
    assert_eq!(at(ss, "ports.0.name"), "http");
    let out = c
        .coxctl(&[
            "get",
            "endpoints",
            "mayikt-readiness-svc",
            "-n",
            "mayikt-sit",
        ])
        .success()
        .stdout;
    assert!(out.starts_with("NAME"), "{out}");
    assert!(out.contains(&format!("{ready_ip}:80")), "{out}");
    assert!(!out.contains(&other_ip), "{out}");
    let out = c
        .coxctl(&[
            "describe",
            "svc",
            "mayikt-readiness-svc",
            "-n",
            "mayikt-sit",
        ])
        .success()
        .stdout;
    assert!(
        out.lines()
            .any(|l| l.starts_with("Endpoints:") && l.ends_with(&format!("{ready_ip}:80"))),
        "{out}"
    );
    // The slice shows both, with their conditions.
    let want = {
        let mut w = vec![
            (ready_ip.clone(), true, true, false),
            (other_ip.clone(), false, false, false),
        ];
        w.sort();
        w
    };
    wait_until("the slice shows both pods", T, || {
        (slice_endpoints(&slices(&c, "mayikt-sit", "mayikt-readiness-svc")) == want).then_some(())
    })
    .expect("slice");
    let out = c
        .coxctl(&["get", "endpointslices", "-n", "mayikt-sit"])
        .success()
        .stdout;
    assert!(out.starts_with("NAME"), "{out}");
    assert!(out.contains("ADDRESSTYPE") && out.contains("IPv4"), "{out}");

    // Deleting the ready pod leaves no ready address; the not-ready pod is not promoted.
    c.coxctl(&["delete", "pod", "mayikt-pod-ready", "-n", "mayikt-sit"])
        .success();
    wait_ep(
        &c,
        "mayikt-sit",
        "mayikt-readiness-svc",
        "no ready address left",
        |(r, n, _)| r.is_empty() && *n == [other_ip.as_str()],
    );
    let out = c
        .coxctl(&["get", "ep", "mayikt-readiness-svc", "-n", "mayikt-sit"])
        .success()
        .stdout;
    assert!(out.contains("<none>"), "{out}");
    // Deleting the Service deletes its Endpoints (and, by ownership, its slices).
    c.coxctl(&["delete", "svc", "mayikt-readiness-svc", "-n", "mayikt-sit"])
        .success();
    wait_until("the Endpoints and slices go with the Service", T, || {
        (get_json(
            &c,
            &["endpoints", "mayikt-readiness-svc", "-n", "mayikt-sit"],
        )
        .is_none()
            && slices(&c, "mayikt-sit", "mayikt-readiness-svc").is_empty())
        .then_some(())
    })
    .expect("cleanup");
}

#[test]
fn a_pod_turning_ready_moves_to_addresses_and_named_target_ports_resolve_per_pod() {
    let c = cluster(&["--runtime", "sim"]);
    apply(
        &c,
        "apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Pod
metadata:
  name: a
  labels: {app: web}
  annotations: {sim.coxswain.io/ready-after: 2s}
spec:
  containers:
  - name: c
    image: nginx
    ports: [{name: http, containerPort: 8080}]
    readinessProbe: {httpGet: {path: /, port: http}}
---
apiVersion: v1
kind: Pod
metadata: {name: b, labels: {app: web}}
spec:
  containers:
  - name: c
    image: nginx
    ports: [{name: http, containerPort: 9090}]
---
apiVersion: v1
kind: Pod
metadata: {name: c, labels: {app: web}}
spec:
  containers: [{name: c, image: nginx}]
",
    );
    let (a, b) = (pod_ip(&c, "default", "a"), pod_ip(&c, "default", "b"));
    let ep = wait_ep(
        &c,
        "default",
        "web",
        "a not ready yet, b ready",
        |(r, n, _)| *r == [b.as_str()] && *n == [a.as_str()],
    );
    // Each pod's own number for the name "http"; pod c has no such port and is left out.
    let mut by_ip: Vec<(String, i64)> = arr(&ep, "subsets")
        .into_iter()
        .flat_map(|ss| {
            let port = at(ss, "ports.0.port").as_i64().unwrap_or(0);
            arr(ss, "addresses")
                .into_iter()
                .chain(arr(ss, "notReadyAddresses"))
                .map(move |x| (at(x, "ip").as_str().unwrap_or("").to_string(), port))
        })
        .collect();
    by_ip.sort();
    let mut want = vec![(a.clone(), 8080), (b.clone(), 9090)];
    want.sort();
    assert_eq!(by_ip, want);
    wait_ep(&c, "default", "web", "a turned ready", |(r, n, _)| {
        n.is_empty() && r.len() == 2 && r.contains(&a)
    });
    // Slices: one per port set, each with its own number; pod c, whose port does not
    // resolve, is in a slice without ports (as upstream).
    let c_ip = pod_ip(&c, "default", "c");
    let sl = wait_until("three slices, all ready", T, || {
        let sl = slices(&c, "default", "web");
        let eps = slice_endpoints(&sl);
        (sl.len() == 3 && eps.len() == 3 && eps.iter().all(|e| e.1)).then_some(sl)
    })
    .unwrap_or_else(|e| panic!("{e}: {:#?}", slices(&c, "default", "web")));
    let mut ports: Vec<(String, i64)> = sl
        .iter()
        .map(|s| {
            (
                at(s, "endpoints.0.addresses.0")
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                at(s, "ports.0.port").as_i64().unwrap_or(0),
            )
        })
        .collect();
    ports.sort();
    let mut want3 = want.clone();
    want3.push((c_ip, 0));
    want3.sort();
    assert_eq!(ports, want3);
    for s in &sl {
        let labels = at(s, "metadata.labels");
        assert_eq!(
            labels["endpointslice.kubernetes.io/managed-by"],
            "endpointslice-controller.k8s.io"
        );
        assert_eq!(labels["kubernetes.io/service-name"], "web");
        assert_eq!(at(s, "metadata.ownerReferences.0.kind"), "Service");
    }
}

#[test]
fn a_headless_statefulset_service_lists_pods_with_their_hostnames() {
    let c = cluster(&["--runtime", "sim"]);
    apply(&c, &scenario("52-statefulset-nginx-headless.yaml"));
    let names = ["stateful-nginx-0", "stateful-nginx-1", "stateful-nginx-2"];
    let hostnames = |ep: &Value| -> Vec<String> {
        let mut h: Vec<String> = arr(ep, "subsets")
            .into_iter()
            .flat_map(|ss| arr(ss, "addresses"))
            .map(|a| at(a, "hostname").as_str().unwrap_or("").to_string())
            .collect();
        h.sort();
        h
    };
    let ep = wait_until("three ready addresses with hostnames", T, || {
        let ep = get_json(&c, &["endpoints", "nginx"])?;
        (hostnames(&ep) == names).then_some(ep)
    })
    .expect("endpoints");
    assert_eq!(
        at(&ep, "metadata.labels")["service.kubernetes.io/headless"],
        ""
    );
    for a in arr(&ep, "subsets.0.addresses") {
        let ip = at(a, "ip").as_str().unwrap_or("");
        let name = at(a, "targetRef.name").as_str().unwrap_or("");
        assert_eq!(pod_ip(&c, "default", name), ip);
        assert_eq!(at(a, "hostname").as_str(), Some(name));
    }
    let out = c.coxctl(&["get", "svc", "nginx"]).success().stdout;
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.split_whitespace().nth(2) == Some("None")),
        "{out}"
    );
    // S52: a replaced pod comes back under the same hostname.
    let old_uid = at(
        &get_json(&c, &["pod", "stateful-nginx-1"]).expect("pod"),
        "metadata.uid",
    )
    .clone();
    c.coxctl(&["delete", "pod", "stateful-nginx-1"]).success();
    wait_until("stateful-nginx-1 is back in the Endpoints", T, || {
        let ep = get_json(&c, &["endpoints", "nginx"])?;
        let back = arr(&ep, "subsets")
            .into_iter()
            .flat_map(|ss| arr(ss, "addresses"))
            .any(|a| at(a, "hostname") == "stateful-nginx-1" && at(a, "targetRef.uid") != &old_uid);
        (back && hostnames(&ep) == names).then_some(())
    })
    .expect("replacement");
    let sl = slices(&c, "default", "nginx");
    let mut h: Vec<String> = sl
        .iter()
        .flat_map(|s| arr(s, "endpoints"))
        .map(|e| at(e, "hostname").as_str().unwrap_or("").to_string())
        .collect();
    h.sort();
    assert_eq!(h, names);
}

#[test]
fn slices_hold_at_most_max_endpoints_per_slice() {
    let c = cluster(&["--runtime", "sim", "--max-endpoints-per-slice", "3"]);
    apply(
        &c,
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 7
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, labels: {tier: front}}
spec:
  selector: {app: web}
  ports: [{port: 80}]
",
    );
    let check = |want: usize| {
        wait_until(
            &format!("{want} ready endpoints in slices of ≤ 3"),
            T,
            || {
                let sl = slices(&c, "default", "web");
                let eps = slice_endpoints(&sl);
                let sizes: Vec<usize> = sl.iter().map(|s| arr(s, "endpoints").len()).collect();
                (eps.len() == want
                    && eps.iter().all(|e| e.1)
                    && sizes.iter().all(|n| *n <= 3)
                    && sl.len() == want.div_ceil(3).max(1))
                .then_some(sl)
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {:?}", slices(&c, "default", "web")))
    };
    let sl = check(7);
    for s in &sl {
        assert_eq!(at(s, "metadata.labels")["tier"], "front");
        assert_eq!(at(s, "addressType"), "IPv4");
    }
    // The Endpoints object holds all seven.
    wait_ep(
        &c,
        "default",
        "web",
        "seven ready addresses",
        |(r, n, _)| r.len() == 7 && n.is_empty(),
    );
    // Scale down to 2: emptied slices go; what is left is at most one slice per 3.
    c.coxctl(&["scale", "deployment", "web", "--replicas", "2"])
        .success();
    wait_until("two endpoints left", T, || {
        let sl = slices(&c, "default", "web");
        let eps = slice_endpoints(&sl);
        (eps.len() == 2 && sl.iter().all(|s| !arr(s, "endpoints").is_empty())).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", slices(&c, "default", "web")));
    // Scale to 0: one empty placeholder slice remains.
    c.coxctl(&["scale", "deployment", "web", "--replicas", "0"])
        .success();
    wait_until("one placeholder slice", T, || {
        let sl = slices(&c, "default", "web");
        (sl.len() == 1 && arr(&sl[0], "endpoints").is_empty()).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", slices(&c, "default", "web")));
}

#[test]
fn a_readiness_flip_rewrites_only_the_slice_holding_the_pod() {
    let c = cluster(&["--runtime", "sim", "--max-endpoints-per-slice", "3"]);
    let mut yaml = String::from(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n",
    );
    for i in 0..5 {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, labels: {{app: web}}}}\nspec:\n  containers: [{{name: c, image: nginx}}]\n"
        ));
    }
    yaml.push_str("---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: late\n  labels: {app: web}\n  annotations: {sim.coxswain.io/ready-after: 8s}\nspec:\n  containers: [{name: c, image: nginx}]\n");
    apply(&c, &yaml);
    let late = pod_ip(&c, "default", "late");
    // Steady state: six endpoints in slices of at most 3 (two, or three when the pods came in
    // several syncs: as upstream, new endpoints only fill slices that are rewritten anyway),
    // only `late` not ready.
    let holds_late = |s: &Value| {
        arr(s, "endpoints")
            .iter()
            .any(|e| at(e, "addresses.0").as_str() == Some(late.as_str()))
    };
    let before = wait_until("five ready endpoints and late not ready", T, || {
        let sl = slices(&c, "default", "web");
        let eps = slice_endpoints(&sl);
        let ok = sl.iter().all(|s| arr(s, "endpoints").len() <= 3)
            && eps.len() == 6
            && eps.iter().all(|e| e.1 == (e.0 != late));
        ok.then_some(sl)
    })
    .unwrap_or_else(|e| panic!("{e}: {:#?}", slices(&c, "default", "web")));
    let rv = |s: &Value| {
        at(s, "metadata.resourceVersion")
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let name = |s: &Value| at(s, "metadata.name").as_str().unwrap_or("").to_string();
    let other = before
        .iter()
        .find(|s| !holds_late(s))
        .expect("a slice without late");
    let (other_name, other_rv) = (name(other), rv(other));
    let with_late = before.iter().find(|s| holds_late(s)).expect("late's slice");
    let (late_slice, late_rv) = (name(with_late), rv(with_late));
    let after = wait_until("late turned ready", T, || {
        let sl = slices(&c, "default", "web");
        let eps = slice_endpoints(&sl);
        (eps.len() == 6 && eps.iter().all(|e| e.1)).then_some(sl)
    })
    .unwrap_or_else(|e| panic!("{e}: {:#?}", slices(&c, "default", "web")));
    let find = |n: &str| after.iter().find(|s| name(s) == n).expect("slice kept");
    assert_eq!(
        rv(find(&other_name)),
        other_rv,
        "the other slice was not rewritten"
    );
    assert_ne!(rv(find(&late_slice)), late_rv, "late's slice was rewritten");
}

/// `coxswain controllers --server URL --max-endpoints-per-slice N` keeps Endpoints and slices
/// as its own process (here next to a `coxswain up --no-controllers`).
#[test]
fn the_controllers_process_keeps_endpoints_and_slices() {
    let c = cluster(&["--runtime", "sim", "--no-controllers"]);
    let mut child = std::process::Command::new(coxswain_test_support::bin("coxswain"))
        .args([
            "controllers",
            "--server",
            &c.url(),
            "--max-endpoints-per-slice",
            "2",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("coxswain controllers");
    let mut yaml = String::from(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n",
    );
    for i in 0..5 {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, labels: {{app: web}}}}\nspec:\n  containers: [{{name: c, image: nginx}}]\n"
        ));
    }
    apply(&c, &yaml);
    let res = wait_until("5 ready endpoints in 3 slices of ≤ 2", T, || {
        let sl = slices(&c, "default", "web");
        let eps = slice_endpoints(&sl);
        let ep = get_json(&c, &["endpoints", "web"])?;
        (sl.len() == 3
            && eps.len() == 5
            && eps.iter().all(|e| e.1)
            && sl.iter().all(|s| arr(s, "endpoints").len() <= 2)
            && ep_ips(&ep).0.len() == 5)
            .then_some(())
    });
    let _ = child.kill();
    let _ = child.wait();
    res.unwrap_or_else(|e| panic!("{e}: {:#?}", slices(&c, "default", "web")));
}

#[test]
fn s49_expose_a_deployment_as_a_node_port_service() {
    let c = cluster(&["--runtime", "sim"]);
    c.coxctl(&["create", "namespace", "mayikt-sit"]).success();
    apply(&c, &scenario("44-deployment-nginx-hpa-target.yaml"));
    let out = c
        .coxctl(&[
            "expose",
            "deployment",
            "nginx",
            "--type=NodePort",
            "--port=80",
            "-n",
            "mayikt-sit",
        ])
        .success()
        .stdout;
    assert_eq!(out, "service/nginx exposed\n");
    let svc = get_json(&c, &["svc", "nginx", "-n", "mayikt-sit"]).expect("service");
    assert_eq!(at(&svc, "spec.selector.run"), "nginx");
    assert_eq!(at(&svc, "spec.ports.0.targetPort"), 80);
    let node_port = at(&svc, "spec.ports.0.nodePort")
        .as_i64()
        .expect("nodePort");
    let out = c
        .coxctl(&["get", "svc", "-n", "mayikt-sit", "-o", "wide"])
        .success()
        .stdout;
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ]
    );
    let row: Vec<&str> = out
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(row[0], "nginx");
    assert_eq!(row[1], "NodePort");
    assert_eq!(row[2], at(&svc, "spec.clusterIP").as_str().unwrap_or("?"));
    assert_eq!(row[3], "<none>");
    assert_eq!(row[4], format!("80:{node_port}/TCP"));
    assert_eq!(row[6], "run=nginx");
    // Its Endpoints: the deployment's pod on port 80.
    let pod = wait_until("the nginx pod", T, || {
        let l = get_json(&c, &["pods", "-n", "mayikt-sit", "-l", "run=nginx"])?;
        let name = at(&l, "items.0.metadata.name").as_str()?.to_string();
        Some(name)
    })
    .expect("pod");
    let ip = pod_ip(&c, "mayikt-sit", &pod);
    wait_ep(
        &c,
        "mayikt-sit",
        "nginx",
        "the pod on port 80",
        |(r, _, p)| *r == [ip.as_str()] && p == &[80],
    );
    let out = c
        .coxctl(&["get", "ep", "-n", "mayikt-sit"])
        .success()
        .stdout;
    assert!(out.contains(&format!("{ip}:80")), "{out}");
    // Exposing again: the Service exists.
    let e = c
        .coxctl(&[
            "expose",
            "deployment",
            "nginx",
            "--port=80",
            "-n",
            "mayikt-sit",
        ])
        .failure();
    assert!(e.stderr.contains("AlreadyExists"), "{}", e.stderr);
    // Nothing to take a port from.
    let e = c
        .coxctl(&[
            "expose",
            "deployment",
            "nginx",
            "--name",
            "x",
            "-n",
            "mayikt-sit",
        ])
        .failure();
    assert!(
        e.stderr
            .contains("couldn't find port via --port flag or introspection"),
        "{}",
        e.stderr
    );
    assert!(get_json(&c, &["svc", "x", "-n", "mayikt-sit"]).is_none());
}

#[test]
fn bad_service_and_slice_input_names_the_field_and_stores_nothing() {
    let c = cluster(&["--runtime", "sim", "--nodes", "1"]);
    let bad = |yaml: &str, want: &[&str], name: &str, kind: &str| {
        let e = c
            .coxctl_in(&["apply", "-f", "-"], None, Some(yaml))
            .failure();
        assert!(e.stderr.contains("(Invalid)"), "{}", e.stderr);
        for w in want {
            assert!(e.stderr.contains(w), "want {w:?} in {}", e.stderr);
        }
        assert!(get_json(&c, &[kind, name]).is_none(), "{name} was stored");
    };
    bad(
        "apiVersion: v1\nkind: Service\nmetadata: {name: p0}\nspec:\n  selector: {a: b}\n  ports: [{port: 0}]\n",
        &["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"],
        "p0",
        "svc",
    );
    bad(
        "apiVersion: v1\nkind: Service\nmetadata: {name: p1}\nspec:\n  selector: {a: b}\n  ports: [{port: 70000, targetPort: \"-web\"}]\n",
        &[
            "spec.ports[0].port: Invalid value: 70000",
            "spec.ports[0].targetPort",
        ],
        "p1",
        "svc",
    );
    bad(
        "apiVersion: v1\nkind: Service\nmetadata: {name: dup}\nspec:\n  selector: {a: b}\n  ports: [{name: web, port: 80}, {name: web, port: 81}]\n",
        &["spec.ports[1].name: Duplicate value: \"web\""],
        "dup",
        "svc",
    );
    bad(
        "apiVersion: v1\nkind: Service\nmetadata: {name: np}\nspec:\n  selector: {a: b}\n  ports: [{port: 80, nodePort: 30080}]\n",
        &["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
        "np",
        "svc",
    );
    bad(
        "apiVersion: v1\nkind: Service\nmetadata: {name: en}\nspec: {type: ExternalName, externalName: example.com, ipFamilyPolicy: SingleStack}\n",
        &["spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services"],
        "en",
        "svc",
    );
    bad(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s1}\nendpoints: [{addresses: []}]\n",
        &[
            "addressType: Required value",
            "endpoints[0].addresses: Required value: must contain at least 1 address",
        ],
        "s1",
        "endpointslices",
    );
    bad(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s2}\naddressType: IPv4\nendpoints: [{addresses: [\"not-an-ip\"]}]\n",
        &["endpoints[0].addresses[0]: Invalid value: \"not-an-ip\": must be a valid IPv4 address"],
        "s2",
        "endpointslices",
    );

    // clusterIP is immutable once set; the Service keeps its address.
    apply(
        &c,
        "apiVersion: v1\nkind: Service\nmetadata: {name: keep}\nspec:\n  selector: {a: b}\n  ports: [{port: 80}]\n",
    );
    let ip = at(
        &get_json(&c, &["svc", "keep"]).expect("svc"),
        "spec.clusterIP",
    )
    .as_str()
    .expect("clusterIP")
    .to_string();
    let other = if ip.ends_with(".7") {
        format!("{}.8", ip.rsplit_once('.').expect("dotted").0)
    } else {
        format!("{}.7", ip.rsplit_once('.').expect("dotted").0)
    };
    let e = c
        .coxctl_in(
            &["apply", "-f", "-"],
            None,
            Some(&format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: keep}}\nspec:\n  clusterIP: {other}\n  selector: {{a: b}}\n  ports: [{{port: 80}}]\n"
            )),
        )
        .failure();
    assert!(e.stderr.contains("spec.clusterIP"), "{}", e.stderr);
    assert!(e.stderr.contains("field is immutable"), "{}", e.stderr);
    assert_eq!(
        at(
            &get_json(&c, &["svc", "keep"]).expect("svc"),
            "spec.clusterIP"
        ),
        ip.as_str()
    );

    // An ExternalName Service with a selector is accepted (as upstream) but gets no Endpoints
    // or slices; a selectorless Service keeps the Endpoints its user writes, and the
    // EndpointSliceMirroring controller mirrors them into a slice of its own.
    apply(
        &c,
        "apiVersion: v1
kind: Service
metadata: {name: ext}
spec: {type: ExternalName, externalName: example.com, selector: {app: web}}
---
apiVersion: v1
kind: Service
metadata: {name: manual}
spec:
  ports: [{port: 80}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: manual}
subsets: [{addresses: [{ip: 127.9.9.9}], ports: [{port: 80}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers: [{name: c, image: nginx}]
---
apiVersion: v1
kind: Service
metadata: {name: sentinel}
spec:
  selector: {app: web}
  ports: [{port: 80}]
",
    );
    // Once the controller has handled the later Service, it has seen the earlier ones too.
    wait_ep(
        &c,
        "default",
        "sentinel",
        "the sentinel Service's pod",
        |(r, _, _)| r.len() == 1,
    );
    wait_until("the sentinel's slice", T, || {
        (!slices(&c, "default", "sentinel").is_empty()).then_some(())
    })
    .expect("slice");
    assert!(get_json(&c, &["endpoints", "ext"]).is_none());
    assert!(slices(&c, "default", "ext").is_empty());
    let ep = get_json(&c, &["endpoints", "manual"]).expect("manual endpoints");
    assert_eq!(ep_ips(&ep).0, ["127.9.9.9"]);
    let mirrored = wait_until("the mirrored slice", T, || {
        let sl = slices(&c, "default", "manual");
        (!sl.is_empty()).then_some(sl)
    })
    .expect("mirrored");
    assert_eq!(mirrored.len(), 1);
    assert_eq!(
        mirrored[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslicemirroring-controller.k8s.io"
    );
    assert_eq!(
        arr(&mirrored[0], "endpoints")
            .iter()
            .map(|e| (
                e["addresses"][0].as_str(),
                e["conditions"]["ready"].as_bool()
            ))
            .collect::<Vec<_>>(),
        vec![(Some("127.9.9.9"), Some(true))]
    );
}
