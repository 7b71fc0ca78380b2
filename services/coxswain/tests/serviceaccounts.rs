//! ServiceAccount tokens end to end: the admission's `kube-api-access-*` volume, the agent's
//! projected files (token, ca.crt, namespace) at the container's
//! `/var/run/secrets/kubernetes.io/serviceaccount`, the store authenticating the token as the
//! pod's ServiceAccount (RBAC deciding), and the token refused once its pod is gone.
use std::time::Duration;

use coxswain_test_support::{grpcurl, wait_until, Coxswain};

const T: Duration = Duration::from_secs(60);

/// grpcurl against `c` with a bearer token; returns (success, output).
fn grpcurl_as(c: &Coxswain, token: &str, method: &str, body: &str) -> (bool, String) {
    grpcurl(
        c,
        &["-H", &format!("authorization: Bearer {token}")],
        method,
        body,
    )
}

fn pod_json(c: &Coxswain, name: &str) -> Option<serde_json::Value> {
    let out = c.coxctl(&["get", "pod", name, "-o", "json"]);
    serde_json::from_str(&out.stdout).ok()
}

const PODS: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm-reader}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: default-reads-cms}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-reader}
subjects:
- {kind: ServiceAccount, name: default, namespace: default}
---
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; head -n 1 /var/run/secrets/kubernetes.io/serviceaccount/ca.crt; cat /var/run/secrets/kubernetes.io/serviceaccount/token; echo; exec sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: opted-out}
spec:
  automountServiceAccountToken: false
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "exec sleep 3600"]
"#;

#[test]
fn a_pod_reads_its_bound_token_and_the_store_authenticates_it_as_its_service_account() {
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain");
    c.apply(PODS).success();

    // The admission's volume, in the pod that did not opt out only.
    let reader = wait_until("reader's spec", T, || pod_json(&c, "reader")).expect("reader");
    let vols = reader["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let vol = vols
        .iter()
        .find(|v| {
            v["name"]
                .as_str()
                .unwrap_or("")
                .starts_with("kube-api-access-")
        })
        .unwrap_or_else(|| panic!("no kube-api-access volume: {reader}"));
    assert_eq!(
        vol["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"], 3607,
        "{vol}"
    );
    assert_eq!(
        reader["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    assert_eq!(reader["spec"]["serviceAccountName"], "default");
    let opted = pod_json(&c, "opted-out").expect("opted-out");
    assert!(
        opted["spec"]["volumes"]
            .as_array()
            .is_none_or(|v| v.is_empty()),
        "{opted}"
    );

    // What the container read at its mount path: the namespace, the CA, the token.
    let lines = wait_until("reader's three lines", T, || {
        let out = c.coxctl(&["logs", "reader"]);
        let got: Vec<String> = out.stdout.lines().map(str::to_string).collect();
        (got.len() >= 3).then_some(got)
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", pod_json(&c, "reader")));
    assert_eq!(lines[0], "default");
    assert_eq!(lines[1], "-----BEGIN CERTIFICATE-----");
    let token = lines[2].trim().to_string();
    assert!(
        token.starts_with("eyJ") && token.matches('.').count() == 2,
        "{token}"
    );

    // The token is the ServiceAccount's: the Role lets it read ConfigMaps, not Secrets.
    let (ok, out) = grpcurl_as(
        &c,
        &token,
        "coxswain.v1.ObjectStore/Get",
        r#"{"kind":"ConfigMap","namespace":"default","name":"kube-root-ca.crt"}"#,
    );
    assert!(ok, "{out}");
    let (ok, out) = grpcurl_as(
        &c,
        &token,
        "coxswain.v1.ObjectStore/List",
        r#"{"kind":"Secret","namespace":"default"}"#,
    );
    assert!(!ok, "{out}");
    assert!(out.contains("PermissionDenied"), "{out}");
    assert!(
        out.contains("system:serviceaccount:default:default"),
        "{out}"
    );
    // A forged token (its signature cut) is refused outright.
    let forged = format!("{}x", &token[..token.len() - 2]);
    let (ok, out) = grpcurl_as(
        &c,
        &forged,
        "coxswain.v1.ObjectStore/List",
        r#"{"kind":"ConfigMap","namespace":"default"}"#,
    );
    assert!(!ok && out.contains("Unauthenticated"), "{out}");

    // The pod gone, its token no longer authenticates.
    c.coxctl(&["delete", "pod", "reader", "--grace-period=0", "--force"])
        .success();
    let out = wait_until("the token refused", T, || {
        let (ok, out) = grpcurl_as(
            &c,
            &token,
            "coxswain.v1.ObjectStore/Get",
            r#"{"kind":"ConfigMap","namespace":"default","name":"kube-root-ca.crt"}"#,
        );
        (!ok && out.contains("Unauthenticated")).then_some(out)
    })
    .expect("refused");
    assert!(out.contains("invalid bearer token"), "{out}");
}
