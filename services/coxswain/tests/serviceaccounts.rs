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

/// The uid of `kind/name` in namespace `ns`, once it exists.
fn uid(c: &Coxswain, kind: &str, ns: &str, name: &str) -> Option<String> {
    let out = c.coxctl(&["get", kind, name, "-n", ns, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
    v["metadata"]["uid"].as_str().map(str::to_string)
}

#[test]
fn a_new_namespace_gets_its_default_account_and_root_ca_and_both_come_back_when_deleted() {
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain");
    c.coxctl(&["create", "namespace", "team"]).success();
    let sa = wait_until("team's default ServiceAccount", T, || {
        uid(&c, "serviceaccount", "team", "default")
    })
    .expect("default made");
    let cm = wait_until("team's kube-root-ca.crt", T, || {
        uid(&c, "configmap", "team", "kube-root-ca.crt")
    })
    .expect("kube-root-ca.crt made");

    // Deleted, each is made again: a new object, a new uid.
    c.coxctl(&["delete", "serviceaccount", "default", "-n", "team"])
        .success();
    c.coxctl(&["delete", "configmap", "kube-root-ca.crt", "-n", "team"])
        .success();
    wait_until("default made again", T, || {
        uid(&c, "serviceaccount", "team", "default").filter(|u| *u != sa)
    })
    .expect("default made again");
    wait_until("kube-root-ca.crt made again", T, || {
        uid(&c, "configmap", "team", "kube-root-ca.crt").filter(|u| *u != cm)
    })
    .expect("kube-root-ca.crt made again");

    // Edited, the CA bundle is put back.
    c.coxctl(&[
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "team",
        "-p",
        r#"{"data":{"ca.crt":"forged"}}"#,
    ])
    .success();
    wait_until("the CA put back", T, || {
        let out = c.coxctl(&[
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            "team",
            "-o",
            "json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        v["data"]["ca.crt"]
            .as_str()
            .is_some_and(|s| s.starts_with("-----BEGIN CERTIFICATE-----"))
            .then_some(())
    })
    .expect("restored");
}

const NEIGHBOURS: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: owner}
spec:
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo OWN-TOKEN-READABLE; exec sleep 3600"]
    lifecycle:
      postStart:
        exec: {command: ["/bin/sh", "-c", "id -u > /tmp/hooked"]}
    readinessProbe:
      exec: {command: ["/bin/sh", "-c", "test -s /tmp/hooked && test -s /var/run/secrets/kubernetes.io/serviceaccount/token"]}
      periodSeconds: 1
"#;

/// A pod whose command tries to read `target` (a host path, given in the environment so that
/// no path is rewritten) and to list `dir`.
fn snooper(target: &str, dir: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: snooper}}
spec:
  containers:
  - name: c
    image: busybox
    env:
    - {{name: TARGET, value: "{target}"}}
    - {{name: DIR, value: "{dir}"}}
    command: ["/bin/sh", "-c", "if cat \"$TARGET\" >/dev/null 2>&1; then echo NEIGHBOUR-TOKEN-READ; else echo NEIGHBOUR-TOKEN-HIDDEN; fi; if ls \"$DIR/pki\" >/dev/null 2>&1; then echo PKI-LISTED; else echo PKI-HIDDEN; fi; echo PIDS=$(ls /proc | grep -c '^[0-9]'); echo PID1=$(tr '\\0' ' ' < /proc/1/cmdline); exec sleep 3600"]
"#
    )
}

#[test]
fn pods_sharing_the_default_uid_cannot_read_each_others_tokens_where_namespaces_allow() {
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain");
    c.apply(NEIGHBOURS).success();
    let owner = wait_until("owner runs", T, || {
        pod_json(&c, "owner").filter(|p| p["status"]["phase"] == "Running")
    })
    .expect("owner");
    wait_until("owner reads its own token", T, || {
        c.coxctl(&["logs", "owner"])
            .stdout
            .contains("OWN-TOKEN-READABLE")
            .then_some(())
    })
    .expect("own token");
    let uid = owner["metadata"]["uid"].as_str().expect("uid").to_string();
    let vol = owner["spec"]["volumes"]
        .as_array()
        .and_then(|v| {
            v.iter()
                .filter_map(|v| v["name"].as_str())
                .find(|n| n.starts_with("kube-api-access-"))
                .map(String::from)
        })
        .expect("the projected volume");
    let data = std::fs::canonicalize(&c.data_dir).expect("data dir");
    let token = data.join(format!("agent/{uid}/volumes/{vol}/token"));
    assert!(token.is_file(), "{}", token.display());

    // What the agent detected at start decides what the other pod may see.
    let isolated = wait_until("the agent's isolation decision", T, || {
        let log = c.log();
        if log.contains("containers get a private mount namespace") {
            Some(true)
        } else if log.contains("no private mount namespaces for containers") {
            Some(false)
        } else if !rustix_is_root() {
            // A non-root agent runs every container as itself: nothing to isolate from.
            Some(false)
        } else {
            None
        }
    })
    .expect("decision");
    c.apply(&snooper(&token.to_string_lossy(), &data.to_string_lossy()))
        .success();
    let out = wait_until("the snooper's answers", T, || {
        let out = c.coxctl(&["logs", "snooper"]).stdout;
        (out.contains("NEIGHBOUR-TOKEN-") && out.contains("PKI-") && out.contains("PID1="))
            .then_some(out)
    })
    .expect("snooper log");
    // Where PID namespaces are allowed too, the snooper sees its own processes only: its pid 1
    // is its own supervisor, and `exec` joins that view.
    if isolated && !c.log().contains("no PID namespaces for containers") {
        let pids: usize = out
            .lines()
            .find_map(|l| l.strip_prefix("PIDS="))
            .and_then(|n| n.trim().parse().ok())
            .expect("PIDS=");
        assert!(pids <= 10, "{out}");
        assert!(out.contains("PID1=coxswain builtin supervise"), "{out}");
        let seen = c
            .coxctl(&[
                "exec",
                "snooper",
                "--",
                "sh",
                "-c",
                "tr '\\0' ' ' < /proc/1/cmdline",
            ])
            .success()
            .stdout;
        assert!(seen.starts_with("coxswain builtin supervise"), "{seen}");
    }
    use std::os::unix::fs::PermissionsExt;
    let data_mode = std::fs::metadata(&data)
        .expect("data dir")
        .permissions()
        .mode()
        & 0o777;
    // The owner's postStart hook and exec readiness probe ran as its user, in its view: the
    // hook wrote the container's /tmp, the probe read it and the token at its mount path.
    wait_until("owner ready", T, || {
        (pod_json(&c, "owner")?["status"]["containerStatuses"][0]["ready"] == true).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", pod_json(&c, "owner")));
    let hooked = std::fs::read_to_string(data.join(format!("agent/{uid}/c/tmp/hooked")))
        .expect("the hook's file");
    let expect_uid = if rustix_is_root() { "65534" } else { "" };
    assert!(hooked.trim() == expect_uid || !rustix_is_root(), "{hooked}");
    // With the private view every process of a container (command, probes, hooks, exec) gets
    // it, so the data directory stays 0700 on the host; without it, the containers' uid
    // reaches its pods' directories by their host paths: traversable (0711). Its files are
    // 0600 and pki/ 0700 either way.
    match (isolated, rustix_is_root()) {
        (true, _) => assert_eq!(data_mode, 0o700, "{data_mode:o}"),
        (false, true) => assert_eq!(data_mode, 0o711, "{data_mode:o}"),
        (false, false) => assert_eq!(data_mode, 0o700, "{data_mode:o}"),
    }
    assert!(out.contains("PKI-HIDDEN"), "{out}");
    if isolated {
        // A private view: the data directory is a tmpfs holding only the pod's own directory.
        assert!(out.contains("NEIGHBOUR-TOKEN-HIDDEN"), "{out}");
    } else {
        // The documented fallback (docs/security.md): the same uid reads the neighbour's token
        // by its host path.
        assert!(out.contains("NEIGHBOUR-TOKEN-READ"), "{out}");
    }
}

fn rustix_is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
