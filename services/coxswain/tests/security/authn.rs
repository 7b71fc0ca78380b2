//! Authentication: client certificates and bearer tokens with `--auth`, kubeconfigs and
//! coxctl's configuration, plain text refused off loopback, anonymous auth, and rotated
//! service-account signing keys.
use coxswain_test_support::{grpcurl, Coxswain};

use crate::common::*;

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
