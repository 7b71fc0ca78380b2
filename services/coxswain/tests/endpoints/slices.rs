//! EndpointSlices: split at `--max-endpoints-per-slice`, a readiness flip rewriting only its
//! slice, and the controllers as their own process keeping both objects.
use coxswain_test_support::wait_until;
use serde_json::Value;

use crate::common::{
    apply, arr, at, cluster, ep_ips, get_json, pod_ip, slice_endpoints, slices, wait_ep, T,
};

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
