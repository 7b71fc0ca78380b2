//! RBAC: Roles, ClusterRoles and their bindings decide what a user may do, with kubectl's
//! Forbidden messages.
use coxswain_test_support::{grpcurl, Coxswain};

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
