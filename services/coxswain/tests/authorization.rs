//! Authorization end to end on a real `coxswain`: upstream's bootstrap policy (reconciled at
//! start), RBAC's escalation prevention, and the Node authorizer with NodeRestriction for an
//! agent authenticated as its node.
use std::path::Path;
use std::time::Duration;

use coxswain_test_support::component::{self, Component};
use coxswain_test_support::{grpcurl, grpcurl_at, wait_until, Coxswain};

const T: Duration = Duration::from_secs(30);

#[test]
fn the_bootstrap_policy_grants_version_and_self_reviews_and_is_reconciled_at_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tokens = tmp.path().join("tokens.csv");
    std::fs::write(&tokens, "tok-bob,bob,u-bob\n").expect("write tokens");
    let mut c = Coxswain::start_with(
        &[
            "store",
            "--token-auth-file",
            tokens.to_str().expect("utf-8"),
        ],
        &[],
    )
    .expect("start coxswain");
    let bob = ["-H", "authorization: Bearer tok-bob"];

    // Upstream's default roles and bindings are there.
    let out = c.coxctl(&["get", "clusterroles"]).success().stdout;
    for role in [
        "cluster-admin",
        "system:kube-scheduler",
        "system:kube-controller-manager",
        "system:node",
        "system:node-proxier",
        "system:controller:deployment-controller",
    ] {
        assert!(out.contains(role), "{role} missing: {out}");
    }
    // Any authenticated user may read the version (system:public-info-viewer, system:discovery)
    // and review its own access (system:basic-user), and nothing else.
    let (ok, out) = grpcurl(&c, &bob, "coxswain.v1.ObjectStore/Version", "{}");
    assert!(ok && out.contains("gitVersion"), "{out}");
    let (ok, out) = grpcurl(
        &c,
        &bob,
        "coxswain.v1.ObjectStore/AccessReview",
        r#"{"verb":"list","resource":"pods","namespace":"default"}"#,
    );
    assert!(ok && !out.contains("allowed"), "{out}");
    let (ok, out) = grpcurl(
        &c,
        &bob,
        "coxswain.v1.ObjectStore/List",
        r#"{"kind":"pods","namespace":"default"}"#,
    );
    assert!(!ok && out.contains("PermissionDenied"), "{out}");

    // Without the bindings that grant it, /version is forbidden...
    c.coxctl(&[
        "delete",
        "clusterrolebinding",
        "system:public-info-viewer",
        "system:discovery",
    ])
    .success();
    let (ok, out) = grpcurl(&c, &bob, "coxswain.v1.ObjectStore/Version", "{}");
    assert!(!ok && out.contains("cannot get path"), "{out}");
    // ...and a restart reconciles them back, as kube-apiserver's bootstrap hook does.
    c.restart().expect("restart");
    let (ok, out) = grpcurl(&c, &bob, "coxswain.v1.ObjectStore/Version", "{}");
    assert!(ok && out.contains("gitVersion"), "{out}");
}

const BINDER: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: binder, namespace: default}
rules:
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, list, create, update, patch]
- apiGroups: [\"\"]
  resources: [pods]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: jane-binder, namespace: default}
subjects: [{kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: Role, name: binder, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pod-admin}
rules:
- apiGroups: [\"\"]
  resources: [pods]
  verbs: [\"*\"]
";

fn binding_to(name: &str, kind: &str, role: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: {name}, namespace: default}}
subjects: [{{kind: User, name: mallory, apiGroup: rbac.authorization.k8s.io}}]
roleRef: {{kind: {kind}, name: {role}, apiGroup: rbac.authorization.k8s.io}}
"
    )
}

#[test]
fn a_user_may_only_grant_what_it_holds_or_may_bind() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let c = Coxswain::start_with(&["store"], &[]).expect("start coxswain");
    c.apply(BINDER);
    let jane = c.user_kubeconfig(tmp.path(), "jane", &[]);
    let as_jane = |args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["--kubeconfig", jane.as_str()];
        all.extend_from_slice(args);
        c.coxctl_in(&all, None, stdin)
    };

    // Binding pod-admin (every verb on pods) would grant more than jane holds.
    let out = as_jane(
        &["apply", "-f", "-"],
        Some(&binding_to("b1", "ClusterRole", "pod-admin")),
    )
    .failure();
    assert!(
        out.stderr.contains("Forbidden")
            && out.stderr.contains(
                r#"user "jane" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held"#
            )
            && out.stderr.contains(r#"Verbs:["*"]"#),
        "{}",
        out.stderr
    );
    // A role with no more than what she holds: she may write it and bind it.
    let reader = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: default}
rules:
- {apiGroups: [\"\"], resources: [pods], verbs: [get]}
";
    as_jane(&["apply", "-f", "-"], Some(reader)).success();
    as_jane(
        &["apply", "-f", "-"],
        Some(&binding_to("b2", "Role", "reader")),
    )
    .success();
    // A role with more is refused.
    let deleter = reader.replace("verbs: [get]", "verbs: [get, delete]");
    let out = as_jane(&["apply", "-f", "-"], Some(&deleter)).failure();
    assert!(
        out.stderr
            .contains("is attempting to grant RBAC permissions not currently held"),
        "{}",
        out.stderr
    );
    // The bind verb on that one ClusterRole (upstream's way to delegate) lets her bind it.
    c.apply(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: bind-pod-admin}
rules:
- {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind], resourceNames: [pod-admin]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: jane-bind-pod-admin, namespace: default}
subjects: [{kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: ClusterRole, name: bind-pod-admin, apiGroup: rbac.authorization.k8s.io}
",
    );
    as_jane(
        &["apply", "-f", "-"],
        Some(&binding_to("b1", "ClusterRole", "pod-admin")),
    )
    .success();
    // ...and the escalate verb lets her write a role with more than she holds.
    c.apply(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: jane-escalate, namespace: default}
subjects: [{kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: ClusterRole, name: escalate-roles, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: escalate-roles}
rules:
- {apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [escalate]}
",
    );
    as_jane(&["apply", "-f", "-"], Some(&deleter)).success();
    let out = c
        .coxctl(&["get", "rolebindings", "-n", "default"])
        .success()
        .stdout;
    assert!(out.contains("b1") && out.contains("b2"), "{out}");
}

/// A `coxswain agent` process for one node, with its own kubeconfig, ready; SIGKILLed on drop.
fn start_agent(kubeconfig: &str, server: &str, node: &str, root: &Path) -> Component {
    let global = ["--kubeconfig", kubeconfig];
    component::start_agent(&global, server, node, "127.231.1.0", root, &[]).0
}

const NODE_PODS: &str = "apiVersion: v1
kind: Secret
metadata: {name: used}
stringData: {password: s3cret}
---
apiVersion: v1
kind: Secret
metadata: {name: unrelated}
stringData: {password: other}
---
apiVersion: v1
kind: Pod
metadata: {name: mine}
spec:
  nodeName: edge1
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: [\"/bin/sh\", \"-c\", \"echo $PASSWORD\"]
    env:
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: used, key: password}}
---
apiVersion: v1
kind: Pod
metadata: {name: theirs}
spec:
  nodeName: ghost
  containers: [{name: c, image: busybox}]
";

#[test]
fn an_agent_with_its_node_identity_reaches_only_its_node_lease_pods_and_their_secrets() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let c = Coxswain::start_fast_up(&["--nodes", "0"]).expect("start coxswain");
    let node = c.user_kubeconfig(tmp.path(), "system:node:edge1", &["system:nodes"]);
    let root = tmp.path().join("agent");
    let _agent = start_agent(&node, &c.url(), "edge1", &root);
    c.apply(NODE_PODS);

    // The agent registers its Node, renews its Lease and runs its pod with the secret it uses.
    let phase = wait_until("the node's pod finishes", T, || {
        let out = c.coxctl(&["get", "pod", "mine", "-o", "json"]);
        serde_json::from_str::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| v["status"]["phase"].as_str().map(String::from))
            .filter(|p| p == "Succeeded" || p == "Failed")
    })
    .expect("pod finished");
    assert_eq!(phase, "Succeeded");
    c.coxctl(&["get", "lease", "edge1", "-n", "kube-node-lease"])
        .success();

    let as_node = |args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["--kubeconfig", node.as_str()];
        all.extend_from_slice(args);
        c.coxctl_in(&all, None, stdin)
    };
    as_node(&["get", "node", "edge1"], None).success();
    as_node(&["get", "pod", "mine"], None).success();
    as_node(&["get", "secret", "used"], None).success();
    for (args, reason) in [
        (
            vec!["get", "secret", "unrelated"],
            "no relationship found between node 'edge1' and this object",
        ),
        (
            vec!["get", "pod", "theirs"],
            "node \"edge1\" can only access pods bound to it",
        ),
        (
            vec!["get", "pods"],
            "can only list/watch pods with spec.nodeName=edge1 field selector",
        ),
        (vec!["get", "nodes"], "can only list/watch its own node"),
        (
            vec!["delete", "pod", "theirs"],
            "can only access pods bound to it",
        ),
        (
            vec!["get", "deployments"],
            "cannot list resource \"deployments\"",
        ),
    ] {
        let out = as_node(&args, None).failure();
        assert!(
            out.stderr.contains("Forbidden") && out.stderr.contains(reason),
            "{args:?}: {}",
            out.stderr
        );
    }
    // NodeRestriction: another node's Node or Lease may not be written.
    let other_node = "apiVersion: v1
kind: Node
metadata: {name: edge2}
";
    let out = as_node(&["apply", "-f", "-"], Some(other_node)).failure();
    assert!(
        out.stderr
            .contains("node \"edge1\" is not allowed to modify node \"edge2\""),
        "{}",
        out.stderr
    );
    let other_lease = "apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: edge2, namespace: kube-node-lease}
spec: {holderIdentity: edge2}
";
    let out = as_node(&["apply", "-f", "-"], Some(other_lease)).failure();
    assert!(
        out.stderr
            .contains("can only access node lease with the same name as the requesting node"),
        "{}",
        out.stderr
    );
}

const WORKLOADS: &str = "apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec: {containers: [{name: app, image: nginx}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec: {containers: [{name: app, image: nginx}]}
";

/// What jane may do from the start: read pods (kubectl logs and exec get the pod first).
const JANE_READER: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: default}
rules:
- {apiGroups: [\"\"], resources: [pods], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: jane-pod-reader, namespace: default}
subjects: [{kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}
";

/// What jane is granted in `default` next: each right one of the calls below needs.
const JANE_ROLE: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: operator, namespace: default}
rules:
- {apiGroups: [apps], resources: [deployments/scale], verbs: [patch]}
- {apiGroups: [apps], resources: [deployments], verbs: [get]}
- {apiGroups: [apps], resources: [replicasets], verbs: [list]}
- {apiGroups: [\"\"], resources: [pods/log], verbs: [get]}
- {apiGroups: [\"\"], resources: [pods/exec], verbs: [create]}
- {apiGroups: [metrics.k8s.io], resources: [pods], verbs: [list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: jane-operator, namespace: default}
subjects: [{kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: Role, name: operator, apiGroup: rbac.authorization.k8s.io}
";

#[test]
fn every_service_authorizes_its_calls_as_kubernetes_would_see_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let c = Coxswain::start_fast_up(&["--nodes", "1", "--metric-resolution", "1s"])
        .expect("start coxswain up");
    c.apply(WORKLOADS);
    wait_until("pod web Running", T, || {
        let out = c.coxctl(&["get", "pod", "web", "-o", "jsonpath={.status.phase}"]);
        (out.stdout.trim() == "Running").then_some(())
    })
    .expect("web runs");
    // The metrics pipeline scrapes the agents as metrics-server (nodes/stats), not as a
    // master: the admin sees the pod's usage once a second scrape gave a rate.
    wait_until("metrics for pod web", T, || {
        let out = c.coxctl(&["top", "pods"]);
        (out.ok && out.stdout.contains("web")).then_some(())
    })
    .expect("top pods as the admin");

    c.apply(JANE_READER);
    let jane = c.user_kubeconfig(tmp.path(), "jane", &[]);
    let as_jane = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", jane.as_str()];
        all.extend_from_slice(args);
        c.coxctl_in(&all, None, None)
    };
    // (call, what upstream's Forbidden message names)
    let calls: [(&[&str], &str); 5] = [
        (
            &["scale", "deployment", "app", "--replicas", "2"],
            r#"cannot patch resource "deployments/scale" in API group "apps" in the namespace "default""#,
        ),
        (
            &["rollout", "history", "deployment/app"],
            r#"cannot get resource "deployments" in API group "apps""#,
        ),
        (
            &["logs", "web"],
            r#"cannot get resource "pods/log" in API group "" in the namespace "default""#,
        ),
        (
            &["exec", "web", "--", "true"],
            r#"cannot create resource "pods/exec" in API group """#,
        ),
        (
            &["top", "pods"],
            r#"cannot list resource "pods" in API group "metrics.k8s.io""#,
        ),
    ];
    for (args, message) in calls {
        let out = as_jane(args).failure();
        assert!(
            out.stderr.contains("Forbidden") && out.stderr.contains(message),
            "{args:?}: {}",
            out.stderr
        );
    }
    // Nothing was changed by the refused scale.
    let replicas = c.coxctl(&["get", "deploy", "app", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas.stdout.trim(), "1");

    // With the role each call needs, the same calls succeed; the Workloads service then
    // reads and writes under its own least-privilege identity.
    c.apply(JANE_ROLE);
    let out = as_jane(&["scale", "deployment", "app", "--replicas", "2"]).success();
    assert!(out.stdout.contains("scaled"), "{}", out.stdout);
    let replicas = c.coxctl(&["get", "deploy", "app", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas.stdout.trim(), "2");
    let out = as_jane(&["rollout", "history", "deployment/app"]).success();
    assert!(out.stdout.contains("REVISION"), "{}", out.stdout);
    as_jane(&["logs", "web"]).success();
    as_jane(&["exec", "web", "--", "true"]).success();
    let out = as_jane(&["top", "pods"]).success();
    assert!(out.stdout.contains("web"), "{}", out.stdout);
    // Still nothing beyond the role: other namespaces, other verbs.
    let out = as_jane(&["top", "pods", "-A"]).failure();
    assert!(
        out.stderr.contains("at the cluster scope"),
        "{}",
        out.stderr
    );
    let out = as_jane(&["rollout", "restart", "deployment/app"]).failure();
    assert!(
        out.stderr
            .contains(r#"cannot patch resource "deployments""#),
        "{}",
        out.stderr
    );
}

/// The rules of a ClusterRole, as `group/resource:verb` strings.
fn cluster_role_rules(c: &Coxswain, name: &str) -> Option<Vec<String>> {
    let out = c.coxctl(&["get", "clusterrole", name, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
    let mut got = Vec::new();
    for r in v["rules"].as_array()? {
        for g in r["apiGroups"].as_array().into_iter().flatten() {
            for res in r["resources"].as_array().into_iter().flatten() {
                for verb in r["verbs"].as_array().into_iter().flatten() {
                    got.push(format!(
                        "{}/{}:{}",
                        g.as_str()?,
                        res.as_str()?,
                        verb.as_str()?
                    ));
                }
            }
        }
    }
    Some(got)
}

const WIDGETS: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: widget-viewer
  labels: {rbac.authorization.k8s.io/aggregate-to-view: \"true\"}
rules:
- {apiGroups: [example.com], resources: [widgets], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: jane-views}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: jane}]
";

#[test]
fn admin_edit_and_view_are_aggregated_from_the_roles_their_labels_select() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let c = Coxswain::start_fast_up(&["--nodes", "0"]).expect("start coxswain");
    // view holds system:aggregate-to-view's rules, edit view's and its own, admin all three.
    let has = |role: &str, rule: &str| {
        cluster_role_rules(&c, role).is_some_and(|r| r.iter().any(|x| x == rule))
    };
    wait_until("view, edit and admin aggregated", T, || {
        (has("view", "/pods:get")
            && has("edit", "/pods:get")
            && has("edit", "/secrets:create")
            && has("admin", "/secrets:create")
            && has("admin", "rbac.authorization.k8s.io/rolebindings:create"))
        .then_some(())
    })
    .expect("aggregated");
    assert!(!has("view", "/secrets:get"), "view must not read secrets");
    assert!(!has("edit", "rbac.authorization.k8s.io/roles:create"));

    // A role labelled aggregate-to-view joins view, and through it edit and admin.
    c.apply(WIDGETS).success();
    wait_until("widgets in view, edit and admin", T, || {
        ["view", "edit", "admin"]
            .iter()
            .all(|r| has(r, "example.com/widgets:get"))
            .then_some(())
    })
    .expect("widgets aggregated");

    // A user bound to view in default reads pods there but may not create them.
    let jane = c.user_kubeconfig(tmp.path(), "jane", &[]);
    let as_jane = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", jane.as_str()];
        all.extend_from_slice(args);
        c.coxctl(&all)
    };
    as_jane(&["get", "pods"]).success();
    let out = as_jane(&["run", "x", "--image", "busybox"]).failure();
    assert!(out.stderr.contains("Forbidden"), "{}", out.stderr);

    // Unlabelled, it leaves them again.
    c.coxctl(&[
        "label",
        "clusterrole",
        "widget-viewer",
        "rbac.authorization.k8s.io/aggregate-to-view-",
    ])
    .success();
    wait_until("widgets gone from admin", T, || {
        (!has("admin", "example.com/widgets:get") && has("admin", "/pods:get")).then_some(())
    })
    .expect("widgets removed");
}

const AGENT_POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  nodeName: edge1
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: [\"/bin/sh\", \"-c\", \"echo hello from edge1\"]
";

/// grpcurl against the separately run agent at `addr` for node edge1.
fn grpcurl_agent(c: &Coxswain, addr: &str, extra: &[&str], method: &str) -> (bool, String) {
    grpcurl_at(c, addr, extra, method, r#"{"nodeName":"edge1"}"#)
}

#[test]
fn a_separate_agent_authenticates_and_authorizes_its_callers_through_the_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let c = Coxswain::start_fast_up(&["--nodes", "0"]).expect("start coxswain");
    // The agent runs as its node: the store signs its serving certificate and answers its
    // TokenReviews and SubjectAccessReviews (upstream's node rules).
    let node = c.user_kubeconfig(tmp.path(), "system:node:edge1", &["system:nodes"]);
    let _agent = start_agent(&node, &c.url(), "edge1", &tmp.path().join("agent"));
    let endpoint = wait_until("the node names its https endpoint", T, || {
        let out = c.coxctl(&["get", "node", "edge1", "-o", "json"]);
        serde_json::from_str::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| {
                v["metadata"]["annotations"]["coxswain.io/agent-endpoint"]
                    .as_str()
                    .map(String::from)
            })
    })
    .expect("endpoint");
    let addr = endpoint
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("not https: {endpoint}"))
        .to_string();
    let stats = "coxswain.v1.NodeAgent/Stats";

    // No credentials: refused (the agent's certificate verifies against the cluster CA).
    let (ok, out) = grpcurl_agent(&c, &addr, &[], stats);
    assert!(!ok && out.contains("Unauthenticated"), "{out}");
    // A made-up token: the store's TokenReview does not know it.
    let (ok, out) = grpcurl_agent(&c, &addr, &["-H", "authorization: Bearer nope"], stats);
    assert!(!ok && out.contains("Unauthenticated"), "{out}");

    // A ServiceAccount's token, without any RBAC on nodes: authenticated, then Forbidden.
    let admin = format!(
        "authorization: Bearer {}",
        coxswain_test_support::pki().admin.token
    );
    let token = wait_until("a token of the default ServiceAccount", T, || {
        let (ok, out) = grpcurl(
            &c,
            &["-H", &admin],
            "coxswain.v1.ServiceAccountTokens/CreateToken",
            r#"{"namespace":"default","name":"default"}"#,
        );
        ok.then(|| serde_json::from_str::<serde_json::Value>(&out).ok())
            .flatten()
            .and_then(|v| v["token"].as_str().map(String::from))
    })
    .expect("token");
    let bearer = format!("authorization: Bearer {token}");
    let (ok, out) = grpcurl_agent(&c, &addr, &["-H", &bearer], stats);
    assert!(!ok && out.contains("PermissionDenied"), "{out}");
    assert!(
        out.contains(
            "Forbidden (user=system:serviceaccount:default:default, verb=get, resource=nodes, \
             subresource(s)=[stats])"
        ),
        "{out}"
    );

    // The admin, by its token (TokenReview) and by its certificate: allowed.
    let (ok, out) = grpcurl_agent(&c, &addr, &["-H", &admin], stats);
    assert!(ok && out.contains("edge1"), "{out}");
    let (cert, key) = (
        c.data_dir.join("pki/admin.crt"),
        c.data_dir.join("pki/admin.key"),
    );
    let (ok, out) = grpcurl_agent(
        &c,
        &addr,
        &[
            "-cert",
            cert.to_str().unwrap(),
            "-key",
            key.to_str().unwrap(),
        ],
        stats,
    );
    assert!(ok && out.contains("edge1"), "{out}");

    // coxctl logs reaches the agent with the admin's kubeconfig, as before.
    c.apply(AGENT_POD);
    let logs = wait_until("the pod's log through the agent", T, || {
        let out = c.coxctl(&["logs", "hello"]);
        out.stdout
            .contains("hello from edge1")
            .then_some(out.stdout)
    });
    assert!(logs.is_ok(), "{}", c.coxctl(&["logs", "hello"]).stderr);
}
