//! Security defaults, end to end on a real `coxswain`: the data directory's permissions and
//! encryption at rest.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use coxswain_test_support::{grpcurl, Coxswain};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

const MANIFEST: &str = "apiVersion: v1
kind: Secret
metadata: {name: db, namespace: default}
data: {password: czNjcjN0LWF0LXJlc3QtNDcxMQ==}  # s3cr3t-at-rest-4711
---
apiVersion: v1
kind: ConfigMap
metadata: {name: plain, namespace: default}
data: {note: visible-at-rest-4711}
";

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn the_data_directory_is_0700_and_the_store_file_0600() {
    let c = Coxswain::start().expect("start coxswain");
    assert_eq!(mode(&c.data_dir), 0o700);
    assert_eq!(mode(&c.data_dir.join("coxswain.redb")), 0o600);
}

#[test]
fn secrets_are_encrypted_at_rest_and_keys_rotate_as_upstream() {
    let keys = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, providers: &str| {
        let p = keys.path().join(name);
        std::fs::write(
            &p,
            format!(
                "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n{providers}"
            ),
        )
        .expect("write config");
        p.to_string_lossy().into_owned()
    };
    let gcm = "      - aesgcm:\n          keys:\n            - {name: key1, secret: c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluaywgaXQgaXM=}\n";
    let cbc = "      - aescbc:\n          keys:\n            - {name: key2, secret: MDEyMzQ1Njc4OWFiY2RlZg==}\n";
    let first = write("first.yaml", &format!("{gcm}      - identity: {{}}\n"));
    let mut c = Coxswain::start_with(&["store", "--encryption-provider-config", &first], &[])
        .expect("start coxswain");
    c.apply(MANIFEST);
    let on_disk = store_files(&c.data_dir);
    assert!(
        contains(&on_disk, "visible-at-rest-4711"),
        "control: ConfigMaps are not encrypted"
    );
    assert!(
        !contains(&on_disk, "s3cr3t-at-rest-4711"),
        "the Secret is on disk in plain text"
    );
    assert!(
        !contains(&on_disk, "czNjcjN0LWF0LXJlc3QtNDcxMQ"),
        "the Secret is on disk in plain text"
    );
    assert!(contains(&on_disk, "k8s:enc:aesgcm:v1:key1:"));
    let got = c.coxctl(&["get", "secret", "db", "-o", "json"]).success();
    // base64("s3cr3t-at-rest-4711")
    assert!(
        got.stdout.contains("czNjcjN0LWF0LXJlc3QtNDcxMQ=="),
        "{}",
        got.stdout
    );

    // Rotation: a new aescbc key first, the old aesgcm key kept for reading.
    c.kill9();
    let rotated = write("rotated.yaml", &format!("{cbc}{gcm}"));
    c = restart_with(c, &rotated);
    let got = c.coxctl(&["get", "secret", "db", "-o", "json"]).success();
    assert!(
        got.stdout.contains("czNjcjN0LWF0LXJlc3QtNDcxMQ=="),
        "{}",
        got.stdout
    );
    c.apply(&MANIFEST.replace("name: db", "name: db2"));
    let on_disk = store_files(&c.data_dir);
    assert!(
        contains(&on_disk, "k8s:enc:aescbc:v1:key2:"),
        "new writes use the first provider"
    );

    // Without the key that wrote them, the data cannot be read: the server refuses to start.
    c.kill9();
    let only_cbc = write("cbc.yaml", cbc);
    c.set_args(&["store", "--encryption-provider-config", &only_cbc]);
    let e = c
        .restart()
        .expect_err("started without the key of the stored data");
    assert!(e.to_string().contains("no matching prefix found"), "{e}");
}

/// What the store keeps on disk: its redb file and its write-ahead log's segments (a write is in
/// the log when it is acknowledged, and in redb after the next checkpoint).
fn store_files(data_dir: &Path) -> Vec<u8> {
    let mut all = std::fs::read(data_dir.join("coxswain.redb")).expect("read the store file");
    for segment in std::fs::read_dir(data_dir.join("wal")).expect("the log directory") {
        // A segment redb holds may be deleted meanwhile: its contents are in redb then.
        if let Ok(bytes) = std::fs::read(segment.expect("a log entry").path()) {
            all.extend_from_slice(&bytes);
        }
    }
    all
}

/// A coxswain on `old`'s data directory with another encryption config.
fn restart_with(mut old: Coxswain, config: &str) -> Coxswain {
    old.set_args(&["store", "--encryption-provider-config", config]);
    old.restart().expect("restart");
    old
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_calls_need_a_token_or_a_client_certificate_and_health_stays_open() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let merged = tmp.path().join("home-config");
    let tokens = tmp.path().join("tokens.csv");
    std::fs::write(&tokens, "dev-token-1,alice,u-1,\"dev\"\n").expect("write tokens");
    let c = Coxswain::start_fast_up(&[
        "--auth",
        "--merge-kubeconfig",
        merged.to_str().expect("utf-8"),
        "--token-auth-file",
        tokens.to_str().expect("utf-8"),
    ])
    .expect("start coxswain up --auth");
    let conf = c.data_dir.join("admin.conf");
    assert_eq!(mode(&conf), 0o600);
    let admin = coxswain_client::config::Kubeconfig::load(&conf).expect("admin.conf");
    let resolved = admin.resolve(None).expect("current context");
    assert_eq!(resolved.server, format!("https://{}", c.grpc));
    let home = coxswain_client::config::Kubeconfig::load(&merged).expect("merged config");
    assert_eq!(home.current_context, "coxswain");

    // No credentials: UNAUTHENTICATED. Health and reflection: open.
    let (ok, out) = grpcurl(
        &c,
        &[],
        "coxswain.v1.ObjectStore/List",
        r#"{"kind":"secrets"}"#,
    );
    assert!(!ok && out.contains("Unauthenticated"), "{out}");
    let (ok, out) = grpcurl(&c, &[], "grpc.health.v1.Health/Check", "{}");
    assert!(ok && out.contains("SERVING"), "{out}");
    let (ok, out) = grpcurl(&c, &[], "list", "");
    assert!(ok || out.contains("coxswain.v1.ObjectStore"), "{out}");
    // A wrong token is refused; the admin's and the token file's are accepted.
    let bad = "authorization: Bearer nope";
    let (ok, out) = grpcurl(
        &c,
        &["-H", bad],
        "coxswain.v1.ObjectStore/List",
        r#"{"kind":"pods"}"#,
    );
    assert!(!ok && out.contains("Unauthenticated"), "{out}");
    let h = format!("authorization: Bearer {}", resolved.credentials.token);
    let (ok, out) = grpcurl(
        &c,
        &["-H", &h],
        "coxswain.v1.ObjectStore/List",
        r#"{"kind":"namespaces"}"#,
    );
    assert!(ok && out.contains("kube-system"), "{out}");
    // The token file's user is authenticated, and RBAC (no binding for alice) says no.
    let (ok, out) = grpcurl(
        &c,
        &["-H", "authorization: Bearer dev-token-1"],
        "coxswain.v1.ObjectStore/List",
        r#"{"kind":"namespaces"}"#,
    );
    assert!(!ok && out.contains("PermissionDenied"), "{out}");
    assert!(out.contains("alice"), "{out}");
    // A client certificate and a bearer token together: the certificate's user, as
    // kube-apiserver's union tries x509 before tokens and takes the first that authenticates.
    // A master's certificate with a wrong token is let in...
    let cert_args = |cn: &str, groups: &[&str]| {
        let (cert, key) = c.user_cert(cn, groups);
        let cert_path = tmp.path().join(format!("{cn}.crt"));
        let key_path = tmp.path().join(format!("{cn}.key"));
        std::fs::write(&cert_path, cert).expect("write cert");
        std::fs::write(&key_path, key).expect("write key");
        vec![
            "-cert".to_string(),
            cert_path.to_string_lossy().into_owned(),
            "-key".to_string(),
            key_path.to_string_lossy().into_owned(),
        ]
    };
    let mut args = cert_args("master-with-a-bad-token", &["system:masters"]);
    args.extend(["-H".to_string(), bad.to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = grpcurl(
        &c,
        &args,
        "coxswain.v1.ObjectStore/List",
        r#"{"kind":"namespaces"}"#,
    );
    assert!(ok && out.contains("kube-system"), "{out}");
    // ...and a certificate of a user with no rights stays that user beside the admin's token.
    let mut args = cert_args("carol", &[]);
    args.extend(["-H".to_string(), h.clone()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = grpcurl(
        &c,
        &args,
        "coxswain.v1.ObjectStore/List",
        r#"{"kind":"namespaces"}"#,
    );
    assert!(!ok && out.contains("PermissionDenied"), "{out}");
    assert!(out.contains("carol"), "{out}");
    // Plain text is not served at all.
    let (ok, out) = {
        let o = std::process::Command::new("grpcurl")
            .args([
                "-plaintext",
                "-d",
                "{}",
                &c.grpc,
                "grpc.health.v1.Health/Check",
            ])
            .output()
            .expect("grpcurl");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert!(!ok, "{out}");

    // coxctl reads the configuration: --kubeconfig, COXCONFIG, else ~/.coxswain/config.
    let coxctl = |args: &[&str], env: &[(&str, &str)]| {
        let o = std::process::Command::new(coxswain_test_support::bin("coxctl"))
            .args(args)
            .env_remove("COXSWAIN_SERVER")
            .env_remove("COXCONFIG")
            .env("HOME", tmp.path())
            .envs(env.iter().copied())
            .output()
            .expect("coxctl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.success(), text)
    };
    let conf_s = conf.to_str().expect("utf-8");
    let (ok, out) = coxctl(&["--kubeconfig", conf_s, "get", "ns", "kube-system"], &[]);
    assert!(ok && out.contains("kube-system"), "{out}");
    let (ok, out) = coxctl(&["get", "ns", "kube-system"], &[("COXCONFIG", conf_s)]);
    assert!(ok && out.contains("kube-system"), "{out}");
    std::fs::create_dir_all(tmp.path().join(".coxswain")).expect("mkdir");
    std::fs::copy(&merged, tmp.path().join(".coxswain/config")).expect("copy");
    let (ok, out) = coxctl(&["get", "ns", "kube-system"], &[]);
    assert!(
        ok && out.contains("kube-system"),
        "~/.coxswain/config: {out}"
    );
    // An explicit plain-text --server to a TLS server fails: no silent downgrade.
    let plain = format!("http://{}", c.grpc);
    let (ok, _) = coxctl(
        &["--kubeconfig", conf_s, "--server", &plain, "get", "ns"],
        &[],
    );
    assert!(!ok);
    let (ok, out) = coxctl(&["--kubeconfig", conf_s, "config", "get-contexts"], &[]);
    assert!(ok, "{out}");
    assert!(
        out.starts_with("CURRENT   NAME       CLUSTER    AUTHINFO"),
        "{out}"
    );
    assert!(
        out.contains("*         coxswain   coxswain   coxswain-admin"),
        "{out}"
    );
    let (ok, out) = coxctl(&["--kubeconfig", conf_s, "config", "view"], &[]);
    assert!(
        ok && out.contains("DATA+OMITTED") && out.contains("REDACTED"),
        "{out}"
    );
    assert!(
        !out.contains(&resolved.credentials.token),
        "view leaks the token: {out}"
    );
    let (ok, out) = coxctl(
        &["--kubeconfig", conf_s, "config", "use-context", "nope"],
        &[],
    );
    assert!(
        !ok && out.contains("no context exists with the name: \"nope\""),
        "{out}"
    );
    let (ok, out) = coxctl(
        &["--kubeconfig", conf_s, "--context", "nope", "get", "ns"],
        &[],
    );
    assert!(
        !ok && out.contains("context was not found for specified context: nope"),
        "{out}"
    );
    let (ok, out) = coxctl(&["--kubeconfig", conf_s, "config", "current-context"], &[]);
    assert!(ok && out.trim() == "coxswain", "{out}");

    // The client crate with the admin's client certificate: the in-process components work
    // (nodes registered through the same path), and so does a client of this process.
    coxswain_client::config::install(resolved.credentials.clone());
    let client = coxswain_client::Client::connect(&resolved.server)
        .await
        .expect("connect with the admin certificate");
    coxswain_test_support::wait_for(
        "2 nodes registered",
        std::time::Duration::from_secs(30),
        || {
            let client = client.clone();
            async move {
                let nodes = client
                    .list::<coxswain_client::v1::Node>("", &Default::default())
                    .await
                    .ok()?;
                (nodes.0.len() == 2).then_some(())
            }
        },
    )
    .await
    .expect("nodes");
}

#[test]
fn a_non_loopback_address_in_the_clear_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(coxswain_test_support::bin("coxswain"))
        .args(["store", "--auth=false", "--in-memory", "--data-dir"])
        .arg(tmp.path())
        .args(["--listen", "0.0.0.0:0", "--metrics-listen", "127.0.0.1:0"])
        .output()
        .expect("run coxswain");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve 0.0.0.0:0 without TLS and authentication"),
        "{err}"
    );
}

#[test]
fn anonymous_auth_lets_calls_without_credentials_in_but_not_wrong_tokens() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let merged = tmp.path().join("config");
    let c = Coxswain::start_with(
        &[
            "store",
            "--auth",
            "--anonymous-auth",
            "--merge-kubeconfig",
            merged.to_str().expect("utf-8"),
        ],
        &[],
    )
    .expect("start coxswain store --auth --anonymous-auth");
    let list = || {
        grpcurl(
            &c,
            &[],
            "coxswain.v1.ObjectStore/List",
            r#"{"kind":"namespaces"}"#,
        )
    };
    // In as system:anonymous, whom RBAC grants nothing by default...
    let (ok, out) = list();
    assert!(!ok && out.contains("PermissionDenied"), "{out}");
    assert!(out.contains("system:anonymous"), "{out}");
    // ...until a binding to its group does.
    c.apply(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ns-lister}
rules: [{apiGroups: [\"\"], resources: [namespaces], verbs: [list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: anonymous-ns-lister}
subjects: [{kind: Group, name: \"system:unauthenticated\"}]
roleRef: {kind: ClusterRole, name: ns-lister, apiGroup: rbac.authorization.k8s.io}
",
    );
    let (ok, out) = list();
    assert!(ok && out.contains("kube-system"), "{out}");
    let bad = "authorization: Bearer wrong";
    let (ok, out) = grpcurl(
        &c,
        &["-H", bad],
        "coxswain.v1.ObjectStore/List",
        r#"{"kind":"namespaces"}"#,
    );
    assert!(!ok && out.contains("Unauthenticated"), "{out}");
}

const POD_READER: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: default}
rules:
- apiGroups: [\"\"]
  resources: [pods]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods, namespace: default}
subjects:
- {kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}
roleRef: {kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: node-reader}
rules:
- apiGroups: [\"\"]
  resources: [nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ops-read-nodes}
subjects:
- {kind: Group, name: ops, apiGroup: rbac.authorization.k8s.io}
roleRef: {kind: ClusterRole, name: node-reader, apiGroup: rbac.authorization.k8s.io}
";

#[test]
fn rbac_roles_and_bindings_decide_what_a_user_may_do_with_kubectls_forbidden() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tokens = tmp.path().join("tokens.csv");
    std::fs::write(&tokens, "tok-bob,bob,u-bob\n").expect("write tokens");
    let c = Coxswain::start_with(
        &[
            "store",
            "--token-auth-file",
            tokens.to_str().expect("utf-8"),
        ],
        &[],
    )
    .expect("start coxswain");
    let jane = c.user_kubeconfig(tmp.path(), "jane", &[]);
    let olga = c.user_kubeconfig(tmp.path(), "olga", &["ops"]);
    let as_user = |conf: &str, args: &[&str]| {
        let mut all = vec!["--kubeconfig", conf];
        all.extend_from_slice(args);
        c.coxctl(&all)
    };

    // No binding yet: kubectl's Forbidden, with the user, verb, resource, group and scope.
    let out = as_user(&jane, &["get", "pods"]).failure();
    assert!(
        out.stderr.contains(
            r#"Error from server (Forbidden): pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default""#
        ),
        "{}",
        out.stderr
    );
    let out = as_user(&jane, &["auth", "can-i", "list", "pods"]).failure();
    assert_eq!(out.stdout.trim(), "no");

    c.apply(POD_READER);
    let out = as_user(&jane, &["get", "pods"]).success();
    assert!(out.stderr.contains("No resources found"), "{out:?}");
    assert_eq!(
        as_user(&jane, &["auth", "can-i", "watch", "pods"])
            .success()
            .stdout
            .trim(),
        "yes"
    );
    for denied in [
        vec!["auth", "can-i", "delete", "pods", "web"],
        vec!["auth", "can-i", "list", "pods", "-n", "kube-system"],
        vec!["auth", "can-i", "list", "pods", "-A"],
        vec!["auth", "can-i", "get", "pods/log"],
        vec!["auth", "can-i", "list", "secrets"],
    ] {
        let out = as_user(&jane, &denied).failure();
        assert_eq!(out.stdout.trim(), "no", "{denied:?}");
    }
    let out = as_user(&jane, &["get", "nodes"]).failure();
    assert!(
        out.stderr.contains(
            r#"nodes is forbidden: User "jane" cannot list resource "nodes" in API group "" at the cluster scope"#
        ),
        "{}",
        out.stderr
    );
    let out = as_user(&jane, &["delete", "pod", "web"]).failure();
    assert!(
        out.stderr
            .contains(r#"pods "web" is forbidden: User "jane" cannot delete resource "pods""#),
        "{}",
        out.stderr
    );

    // A ClusterRoleBinding to a group (the certificate's O): every namespace and cluster scope.
    as_user(&olga, &["get", "nodes"]).success();
    assert_eq!(
        as_user(&olga, &["auth", "can-i", "list", "nodes"])
            .success()
            .stdout
            .trim(),
        "yes"
    );
    as_user(&olga, &["get", "pods"]).failure();

    // A bearer token's user is authorized the same way.
    let (ok, out) = grpcurl(
        &c,
        &["-H", "authorization: Bearer tok-bob"],
        "coxswain.v1.ObjectStore/List",
        r#"{"kind":"secrets","namespace":"default"}"#,
    );
    assert!(!ok && out.contains("PermissionDenied"), "{out}");
    assert!(
        out.contains(r#"User \"bob\" cannot list resource \"secrets\""#)
            || out.contains(r#"User "bob" cannot list resource "secrets""#),
        "{out}"
    );

    // The admin (system:masters) may do everything, the RBAC kinds included.
    let out = c.coxctl(&["get", "roles,rolebindings"]).success();
    assert!(
        out.stdout.contains("pod-reader") && out.stdout.contains("read-pods"),
        "{}",
        out.stdout
    );
    let out = c.coxctl(&["get", "clusterrolebindings"]).success();
    assert!(out.stdout.contains("ops-read-nodes"), "{}", out.stdout);
    assert_eq!(
        c.coxctl(&["auth", "can-i", "delete", "namespaces"])
            .success()
            .stdout
            .trim(),
        "yes"
    );

    // Removing the binding takes the access away again.
    c.coxctl(&["delete", "rolebinding", "read-pods"]).success();
    as_user(&jane, &["get", "pods"]).failure();
}

/// This test process's uid (`id -u`): the agents of the clusters it starts run as it.
fn own_uid() -> u32 {
    let out = std::process::Command::new("id")
        .arg("-u")
        .output()
        .expect("run id -u");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a uid")
}

fn pod_json(c: &Coxswain, name: &str) -> Option<serde_json::Value> {
    let out = c.coxctl(&["get", "pod", name, "-o", "json"]);
    serde_json::from_str(&out.stdout).ok()
}

/// Waits for the first container of `name` to be waiting with `reason`; returns its message.
fn wait_waiting(c: &Coxswain, name: &str, reason: &str) -> String {
    coxswain_test_support::wait_until(
        &format!("{name} waiting with {reason}"),
        std::time::Duration::from_secs(60),
        || {
            let p = pod_json(c, name)?;
            let w = &p["status"]["containerStatuses"][0]["state"]["waiting"];
            (w["reason"] == reason).then(|| w["message"].as_str().unwrap_or("").to_string())
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", pod_json(c, name)))
}

/// Waits for `coxctl logs name` to hold `lines` lines; returns them.
fn wait_log_lines(c: &Coxswain, name: &str, lines: usize) -> Vec<String> {
    coxswain_test_support::wait_until(
        &format!("{lines} log lines of {name}"),
        std::time::Duration::from_secs(60),
        || {
            let out = c.coxctl(&["logs", name]);
            let got: Vec<String> = out.stdout.lines().map(str::to_string).collect();
            (got.len() >= lines).then_some(got)
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", pod_json(c, name)))
}

const RUN_AS_PODS: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: who}
spec:
  volumes: [{name: scratch, emptyDir: {}}]
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "id -u; id -g; echo t > /tmp/t && echo v > /data/v && cat /tmp/t /data/v; exec sleep 3600"]
    volumeMounts: [{name: scratch, mountPath: /data}]
    readinessProbe:
      exec: {command: ["/bin/sh", "-c", "test \"$(id -u)\" = \"$EXPECT\""]}
      periodSeconds: 1
    env: [{name: EXPECT, value: "UID"}]
---
apiVersion: v1
kind: Pod
metadata: {name: as1234}
spec:
  securityContext: {runAsUser: 1000, runAsGroup: 2345, fsGroup: 3456}
  containers:
  - name: c
    image: busybox
    securityContext: {runAsUser: 1234}
    command: ["/bin/sh", "-c", "id -u; id -g; id -G; exec sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: explicit-root}
spec:
  containers:
  - name: c
    image: busybox
    securityContext: {runAsUser: 0}
    command: ["/bin/sh", "-c", "id -u; exec sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: nonroot-but-0}
spec:
  securityContext: {runAsNonRoot: true}
  containers:
  - name: c
    image: busybox
    securityContext: {runAsUser: 0}
    command: ["/bin/sh", "-c", "id -u; exec sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: nginx
    image: nginx
    ports: [{containerPort: 80}]
    readinessProbe:
      httpGet: {path: /, port: 80}
      periodSeconds: 1
"#;

#[test]
fn containers_run_as_an_unprivileged_user_and_run_as_non_root_is_enforced() {
    let me = own_uid();
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain");
    // As root the agent gives an image the node's default user, nobody; otherwise its own.
    let expect = if me == 0 { 65534 } else { me };
    let manifest = RUN_AS_PODS.replace("\"UID\"", &format!("\"{expect}\""));
    let manifest = if me == 0 {
        manifest
    } else {
        // A non-root agent cannot run as 1234 or 0: keep the pods it can run.
        manifest
            .split("\n---\n")
            .filter(|d| !d.contains("{name: as1234}") && !d.contains("{name: explicit-root}"))
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    c.apply(&manifest).success();

    // The process, its exec probe and `exec` all run as the container's user, and its /tmp
    // and emptyDir are writable by it.
    let lines = wait_log_lines(&c, "who", 4);
    assert_eq!(
        lines[..4],
        [
            expect.to_string(),
            expect.to_string(),
            "t".into(),
            "v".into()
        ],
        "{lines:?}"
    );
    coxswain_test_support::wait_until("who ready", std::time::Duration::from_secs(60), || {
        (pod_json(&c, "who")?["status"]["containerStatuses"][0]["ready"] == true).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", pod_json(&c, "who")));
    let out = c.coxctl(&["exec", "who", "--", "id", "-u"]).success();
    assert_eq!(out.stdout.trim(), expect.to_string());

    // A non-root user still serves port 80 (as in a container's own network namespace).
    coxswain_test_support::wait_until("web ready", std::time::Duration::from_secs(60), || {
        (pod_json(&c, "web")?["status"]["containerStatuses"][0]["ready"] == true).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", pod_json(&c, "web")));

    // runAsNonRoot with runAsUser 0: the kubelet's refusal, before anything runs.
    let msg = wait_waiting(&c, "nonroot-but-0", "CreateContainerConfigError");
    let uid = pod_json(&c, "nonroot-but-0").expect("pod")["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    assert_eq!(
        msg,
        format!(
            "container's runAsUser breaks non-root policy (pod: \"nonroot-but-0_default({uid})\", container: c)"
        )
    );
    assert_eq!(c.coxctl(&["logs", "nonroot-but-0"]).stdout, "");

    if me == 0 {
        // The container's runAsUser over the pod's; the pod's group and fsGroup.
        let lines = wait_log_lines(&c, "as1234", 3);
        assert_eq!(lines[..3], ["1234", "2345", "2345 3456"], "{lines:?}");
        // Root only when asked for.
        let lines = wait_log_lines(&c, "explicit-root", 1);
        assert_eq!(lines[0], "0");
    }
}

#[test]
fn run_as_non_root_refuses_an_image_that_runs_as_root() {
    if own_uid() != 0 {
        // Only a root agent can make root an image's user.
        return;
    }
    let c = Coxswain::start_fast_up(&["--nodes", "1", "--default-run-as-user", "0"])
        .expect("start coxswain");
    c.apply(
        r#"apiVersion: v1
kind: Pod
metadata: {name: strict}
spec:
  securityContext: {runAsNonRoot: true}
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "id -u; exec sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: lax}
spec:
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "id -u; exec sleep 3600"]
"#,
    )
    .success();
    let msg = wait_waiting(&c, "strict", "CreateContainerConfigError");
    assert!(
        msg.starts_with(
            "container has runAsNonRoot and image will run as root (pod: \"strict_default("
        ),
        "{msg}"
    );
    assert_eq!(wait_log_lines(&c, "lax", 1)[0], "0");
}

/// `curl -s` of `url` with `extra` flags: (exit code, body).
fn curl(extra: &[&str], url: &str) -> (i32, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn metrics_tls_serves_metrics_over_https_that_prometheus_scrapes_with_the_cluster_ca() {
    let c = Coxswain::start_with(&["store", "--metrics-tls"], &[]).expect("start coxswain");
    let ca = c.data_dir.join("pki/ca.crt");
    let ca = ca.to_str().expect("utf-8");
    let (code, body) = curl(&["--cacert", ca], &format!("https://{}/metrics", c.metrics));
    assert_eq!(code, 0, "{body}");
    assert!(body.contains("# HELP coxswain_"), "{body}");
    // Not in the clear, and not to a client that does not trust the cluster CA.
    let (code, _) = curl(&[], &format!("http://{}/metrics", c.metrics));
    assert_ne!(code, 0, "plain HTTP answered");
    let (code, _) = curl(&[], &format!("https://{}/metrics", c.metrics));
    assert_ne!(code, 0, "verified without the cluster CA");

    // A real Prometheus scrapes it with tls_config.ca_file.
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: coxswain\n    scheme: https\n    tls_config: {{ca_file: \"{ca}\"}}\n    static_configs: [{{targets: [\"{}\"]}}]\n",
            c.metrics
        ),
    )
    .expect("write prometheus.yml");
    let log = dir.path().join("prometheus.log");
    let mut prom = std::process::Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("prometheus (Debian's prometheus package; .ci/run installs it)");
    let query = format!("http://127.0.0.1:{port}/api/v1/query?query=up%7Bjob%3D%22coxswain%22%7D");
    let mut last = String::new();
    let r = coxswain_test_support::wait_until(
        "prometheus scraping /metrics over TLS",
        std::time::Duration::from_secs(60),
        || {
            let (_, body) = curl(&[], &query);
            last = body;
            let v: serde_json::Value = serde_json::from_str(&last).ok()?;
            (v["data"]["result"][0]["value"][1] == "1").then_some(())
        },
    );
    let _ = prom.kill();
    let _ = prom.wait();
    r.unwrap_or_else(|e| {
        panic!(
            "{e}: last answer {last}; prometheus log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
}

#[test]
fn metrics_tls_on_a_separately_run_component_with_a_given_or_self_signed_certificate() {
    use coxswain_test_support::component::{field, Component};
    let c = Coxswain::start_with(&["store"], &[]).expect("start coxswain");
    let pki = c.data_dir.join("pki");
    let (cert, key, ca) = (
        pki.join("server.crt"),
        pki.join("server.key"),
        pki.join("ca.crt"),
    );
    let url = c.url();
    // With the cluster's serving certificate: verified with the cluster CA.
    let mut given = Component::start_temp(&[
        "scheduler",
        "--server",
        &url,
        "--metrics-tls",
        "--metrics-tls-cert-file",
        cert.to_str().expect("utf-8"),
        "--metrics-tls-key-file",
        key.to_str().expect("utf-8"),
    ]);
    let line = given.ready(
        "coxswain scheduler ready",
        std::time::Duration::from_secs(60),
    );
    let metrics = field(&line, "metrics");
    let (code, body) = curl(
        &["--cacert", ca.to_str().expect("utf-8")],
        &format!("https://{metrics}/metrics"),
    );
    assert_eq!(code, 0, "{body}");
    assert!(body.contains("# HELP "), "{body}");
    let (code, _) = curl(&[], &format!("http://{metrics}/metrics"));
    assert_ne!(code, 0, "plain HTTP answered");
    // Without files: a self-signed certificate, not one the cluster CA verifies.
    let mut own = Component::start_temp(&["scheduler", "--server", &url, "--metrics-tls"]);
    let line = own.ready(
        "coxswain scheduler ready",
        std::time::Duration::from_secs(60),
    );
    let metrics = field(&line, "metrics");
    let (code, body) = curl(&["--insecure"], &format!("https://{metrics}/metrics"));
    assert_eq!(code, 0, "{body}");
    assert!(body.contains("# HELP "), "{body}");
    let (code, _) = curl(
        &["--cacert", ca.to_str().expect("utf-8")],
        &format!("https://{metrics}/metrics"),
    );
    assert_ne!(
        code, 0,
        "a self-signed certificate verified by the cluster CA"
    );
}

#[test]
fn a_rotated_service_account_key_keeps_its_tokens_valid_while_it_is_listed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = Coxswain::start_with(&["store"], &[]).expect("start coxswain store");
    c.apply("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: bot, namespace: default}\n")
        .success();
    let admin = format!(
        "authorization: Bearer {}",
        coxswain_test_support::pki().admin.token
    );
    let (ok, out) = grpcurl(
        &c,
        &["-H", &admin],
        "coxswain.v1.ServiceAccountTokens/CreateToken",
        r#"{"namespace":"default","name":"bot"}"#,
    );
    assert!(ok, "{out}");
    let token = serde_json::from_str::<serde_json::Value>(&out).expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string();
    let bearer = format!("authorization: Bearer {token}");
    let review = |c: &Coxswain| {
        grpcurl(
            c,
            &["-H", &bearer],
            "coxswain.v1.ObjectStore/AccessReview",
            r#"{"verb":"get","resource":"configmaps","namespace":"default"}"#,
        )
    };
    let (ok, out) = review(&c);
    assert!(ok, "{out}");

    // A new signing key; the old one listed with --service-account-key-file: still accepted.
    let old = tmp.path().join("old-sa.key");
    std::fs::copy(c.data_dir.join("pki/sa.key"), &old).expect("copy the old key");
    std::fs::remove_file(c.data_dir.join("pki/sa.key")).expect("remove the old key");
    let old_arg = old.to_str().expect("utf-8").to_string();
    c.set_args(&["store", "--service-account-key-file", &old_arg]);
    c.restart().expect("restart with the old key listed");
    assert_ne!(
        std::fs::read(c.data_dir.join("pki/sa.key")).expect("the new key"),
        std::fs::read(&old).expect("the old key")
    );
    let (ok, out) = review(&c);
    assert!(ok, "{out}");

    // The old key no longer listed: its tokens are refused.
    c.set_args(&["store"]);
    c.restart().expect("restart without the old key");
    let (ok, out) = review(&c);
    assert!(!ok && out.contains("Unauthenticated"), "{out}");
}
