//! `coxctl expose` (the expose half of S49).
use coxswain_test_support::wait_until;

use crate::common::{apply, at, cluster, get_json, pod_ip, scenario, wait_ep, T};

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
