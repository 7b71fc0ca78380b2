//! Which pods an Endpoints object lists and how: readiness (S30, a sim pod turning ready), named
//! targetPorts per pod, a headless StatefulSet's hostnames (S50–S52).
use coxswain_test_support::wait_until;
use serde_json::Value;

use crate::common::{
    apply, arr, at, cluster, get_json, pod_ip, scenario, slice_endpoints, slices, wait_ep, T,
};

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
