//! The agent's node: registration, lease, capacity admission, and a relative data dir.
use coxswain_test_support::{wait_until, Coxswain};
use serde_json::Value;

use crate::common::*;

#[test]
fn nodes_register_with_labels_taints_capacity_and_a_renewed_lease() {
    let c = cluster(
        201,
        &[
            "--control-plane-node",
            "master",
            "--node-labels",
            "disktype=ssd",
        ],
    );
    let out = wait_until("three Ready nodes", T, || {
        let out = c.coxctl(&["get", "nodes"]).stdout;
        (out.matches(" Ready ").count() == 3).then_some(out)
    })
    .unwrap();
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("master") && l.contains("control-plane")),
        "{out}"
    );
    let wide = c.coxctl(&["get", "nodes", "-o", "wide"]).success().stdout;
    assert!(wide.contains("INTERNAL-IP"), "{wide}");
    assert!(
        wide.contains("127.201.1.1") && wide.contains("127.201.2.1"),
        "{wide}"
    );
    assert!(wide.contains("coxswain-process://"), "{wide}");

    let n: Value =
        serde_json::from_str(&c.coxctl(&["get", "node", "node1", "-o", "json"]).stdout).unwrap();
    let labels = s(&n, "metadata.labels");
    assert_eq!(labels["kubernetes.io/hostname"], "node1");
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert!(labels["kubernetes.io/arch"].is_string());
    assert_eq!(labels["disktype"], "ssd");
    assert_eq!(s(&n, "status.capacity.pods"), "110");
    assert_eq!(s(&n, "status.allocatable.pods"), "110");
    let ready = s(&n, "status.conditions")
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["reason"], "KubeletReady");
    assert!(n["metadata"]["annotations"]["coxswain.io/agent-endpoint"]
        .as_str()
        .unwrap()
        .ends_with(&c.grpc));

    let m: Value =
        serde_json::from_str(&c.coxctl(&["get", "node", "master", "-o", "json"]).stdout).unwrap();
    let taints = s(&m, "spec.taints").as_array().unwrap();
    assert!(taints.iter().any(
        |t| t["key"] == "node-role.kubernetes.io/control-plane" && t["effect"] == "NoSchedule"
    ));

    // The Lease is renewed.
    let renew = |c: &Coxswain| {
        let l: Value = serde_json::from_str(
            &c.coxctl(&[
                "get",
                "lease",
                "node1",
                "-n",
                "kube-node-lease",
                "-o",
                "json",
            ])
            .stdout,
        )
        .ok()?;
        Some((
            l["spec"]["renewTime"].as_str()?.to_string(),
            l["spec"]["holderIdentity"].as_str()?.to_string(),
            l["metadata"]["resourceVersion"].as_str()?.to_string(),
        ))
    };
    let (_, holder, rv) = wait_until("lease", T, || renew(&c)).unwrap();
    assert_eq!(holder, "node1");
    wait_until("lease renewed", T, || {
        renew(&c).filter(|(_, _, rv2)| *rv2 != rv).map(|_| ())
    })
    .unwrap();
}

#[test]
fn admission_rejects_pods_beyond_the_node_capacity() {
    let c = cluster(215, &["--max-pods", "2", "--node-cpu", "2"]);
    let mut yaml = String::new();
    for name in ["a", "b"] {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: node1\n  containers: [{{name: c, image: nginx}}]\n"
        ));
    }
    apply(&c, &yaml);
    wait_status(&c, "default", "a", "Running");
    wait_status(&c, "default", "b", "Running");
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: third}
spec:
  nodeName: node1
  containers: [{name: c, image: nginx}]
---
apiVersion: v1
kind: Pod
metadata: {name: big}
spec:
  nodeName: node2
  containers:
  - {name: c, image: nginx, resources: {requests: {cpu: "3"}}}
"#,
    );
    wait_status(&c, "default", "third", "OutOfpods");
    let p = pod(&c, "default", "third").unwrap();
    assert_eq!(s(&p, "status.phase"), "Failed");
    assert_eq!(
        s(&p, "status.message"),
        "Node didn't have enough resource: pods, requested: 1, used: 2, capacity: 2"
    );
    wait_status(&c, "default", "big", "OutOfcpu");
    let p = pod(&c, "default", "big").unwrap();
    assert_eq!(
        s(&p, "status.message"),
        "Node didn't have enough resource: cpu, requested: 3000, used: 0, capacity: 2000"
    );
}

#[test]
fn a_relative_data_dir_still_serves_the_nginx_page() {
    // The README runs `coxswain up` with the default, relative `--data-dir coxswain-data`;
    // containers run in their own directories, so every path handed to them must be absolute.
    let c = Coxswain::start_relative(
        &["up"],
        &["--in-memory", "--nodes", "1", "--pod-network-octet", "231"],
    )
    .expect("start coxswain up");
    namespace(&c, "rel");
    apply(
        &c,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: rel\nspec:\n  nodeName: node1\n  containers:\n  - name: nginx\n    image: nginx\n    ports:\n    - containerPort: 80\n",
    );
    let ip = wait_until("the pod running with an IP", T, || {
        let p = pod(&c, "rel", "web")?;
        let ip = s(&p, "status.podIP").as_str()?.to_string();
        (s(&p, "status.phase") == "Running" && !ip.is_empty()).then_some(ip)
    })
    .expect("running");
    let (code, body) = http_get_answered(&ip, 80, "/");
    assert_eq!(code, 200, "{body}");
}
