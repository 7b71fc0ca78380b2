use super::*;
use crate::test_builders::{attrs, rule, user};
use coxswain_api::Kind;

fn meta(ns: &str, name: &str) -> Option<v1::ObjectMeta> {
    Some(v1::ObjectMeta {
        name: name.into(),
        namespace: ns.into(),
        ..Default::default()
    })
}

fn subject(kind: &str, name: &str, ns: &str) -> v1::Subject {
    v1::Subject {
        kind: kind.into(),
        api_group: String::new(),
        name: name.into(),
        namespace: ns.into(),
    }
}

fn role_ref(kind: &str, name: &str) -> Option<v1::RoleRef> {
    Some(v1::RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name: name.into(),
    })
}

#[test]
fn rules_match_verbs_groups_resources_subresources_and_names_as_upstream() {
    let cases = [
        // (rule, request, allowed)
        (
            rule(&["get"], &[""], &["pods"], &[]),
            attrs("get", "", "pods", "", "d", "p"),
            true,
        ),
        (
            rule(&["get"], &[""], &["pods"], &[]),
            attrs("list", "", "pods", "", "d", ""),
            false,
        ),
        (
            rule(&["*"], &["*"], &["*"], &[]),
            attrs("delete", "apps", "deployments", "", "d", "x"),
            true,
        ),
        (
            rule(&["get"], &["apps"], &["pods"], &[]),
            attrs("get", "", "pods", "", "d", "p"),
            false,
        ),
        // A subresource is its own resource: pods does not grant pods/log.
        (
            rule(&["get"], &[""], &["pods"], &[]),
            attrs("get", "", "pods", "log", "d", "p"),
            false,
        ),
        (
            rule(&["get"], &[""], &["pods/log"], &[]),
            attrs("get", "", "pods", "log", "d", "p"),
            true,
        ),
        (
            rule(&["update"], &[""], &["*/status"], &[]),
            attrs("update", "", "nodes", "status", "", "n"),
            true,
        ),
        (
            rule(&["update"], &[""], &["*/status"], &[]),
            attrs("update", "", "nodes", "", "", "n"),
            false,
        ),
        // resourceNames limit to the named objects; a list has no name.
        (
            rule(&["get", "list"], &[""], &["configmaps"], &["a"]),
            attrs("get", "", "configmaps", "", "d", "a"),
            true,
        ),
        (
            rule(&["get", "list"], &[""], &["configmaps"], &["a"]),
            attrs("get", "", "configmaps", "", "d", "b"),
            false,
        ),
        (
            rule(&["get", "list"], &[""], &["configmaps"], &["a"]),
            attrs("list", "", "configmaps", "", "d", ""),
            false,
        ),
    ];
    for (i, (r, a, want)) in cases.iter().enumerate() {
        assert_eq!(rule_allows(r, a), *want, "case {i}: {r:?} {a:?}");
    }
}

#[test]
fn rules_for_visits_each_binding_once_in_order_whichever_subjects_name_the_user() {
    let cr = |name: &str, verb: &str| v1::ClusterRole {
        metadata: meta("", name),
        rules: vec![rule(&[verb], &[""], &["pods"], &[])],
        ..Default::default()
    };
    let crb = |name: &str, subjects: Vec<v1::Subject>, role: &str| v1::ClusterRoleBinding {
        metadata: meta("", name),
        subjects,
        role_ref: role_ref("ClusterRole", role),
        ..Default::default()
    };
    let snap = Snapshot {
        cluster_roles: vec![cr("a", "get"), cr("b", "list"), cr("c", "watch")],
        cluster_role_bindings: vec![
            crb("1", vec![subject("Group", "g", "")], "b"),
            // Named three ways: still one visit.
            crb(
                "2",
                vec![
                    subject("User", "u", ""),
                    subject("Group", "g", ""),
                    subject("User", "u", ""),
                ],
                "a",
            ),
            crb("3", vec![subject("User", "other", "")], "c"),
            crb("4", vec![subject("User", "u", "")], "missing"),
        ],
        ..Default::default()
    };
    let verbs: Vec<String> = snap
        .rules_for(&user("u", &["g"]), "")
        .into_iter()
        .flat_map(|r| r.verbs)
        .collect();
    assert_eq!(verbs, ["list", "get"]);
    assert!(snap.allows(&user("u", &[]), &attrs("get", "", "pods", "", "", "")));
    assert!(!snap.allows(&user("u", &[]), &attrs("list", "", "pods", "", "", "")));
    assert!(!snap.allows(&user("u", &["g"]), &attrs("watch", "", "pods", "", "", "")));
}

#[test]
fn bindings_grant_roles_to_users_groups_and_service_accounts_in_their_scope() {
    let snap = Snapshot {
        roles: vec![v1::Role {
            metadata: meta("dev", "pod-reader"),
            rules: vec![rule(&["get", "list", "watch"], &[""], &["pods"], &[])],
            ..Default::default()
        }],
        cluster_roles: vec![v1::ClusterRole {
            metadata: meta("", "node-viewer"),
            rules: vec![rule(&["get", "list"], &[""], &["nodes", "secrets"], &[])],
            ..Default::default()
        }],
        role_bindings: vec![
            v1::RoleBinding {
                metadata: meta("dev", "read-pods"),
                subjects: vec![
                    subject("User", "jane", ""),
                    subject("ServiceAccount", "bot", ""),
                ],
                role_ref: role_ref("Role", "pod-reader"),
                ..Default::default()
            },
            // A ClusterRole granted in one namespace only.
            v1::RoleBinding {
                metadata: meta("dev", "view-secrets"),
                subjects: vec![subject("Group", "auditors", "")],
                role_ref: role_ref("ClusterRole", "node-viewer"),
                ..Default::default()
            },
        ],
        cluster_role_bindings: vec![v1::ClusterRoleBinding {
            metadata: meta("", "ops-nodes"),
            subjects: vec![subject("Group", "ops", "")],
            role_ref: role_ref("ClusterRole", "node-viewer"),
            ..Default::default()
        }],
        ..Default::default()
    };
    let jane = user("jane", &["system:authenticated"]);
    let bot = user("system:serviceaccount:dev:bot", &[]);
    let auditor = user("al", &["auditors"]);
    let ops = user("olga", &["ops"]);
    let admin = user("kubernetes-admin", &[MASTERS]);
    let list_pods_dev = attrs("list", "", "pods", "", "dev", "");
    assert!(snap.allows(&jane, &list_pods_dev));
    assert!(snap.allows(&bot, &list_pods_dev));
    // The ServiceAccount's whole name, not a prefix of it or of its namespace.
    for other in [
        "system:serviceaccount:dev:botx",
        "system:serviceaccount:dev:bo",
        "system:serviceaccount:devx:bot",
        "system:serviceaccount:de:bot",
        "system:serviceaccount:dev",
    ] {
        assert!(!snap.allows(&user(other, &[]), &list_pods_dev), "{other}");
    }
    assert!(!snap.allows(&jane, &attrs("list", "", "pods", "", "prod", "")));
    assert!(!snap.allows(&jane, &attrs("delete", "", "pods", "", "dev", "p")));
    assert!(!snap.allows(&jane, &attrs("list", "", "pods", "", "", "")));
    assert!(snap.allows(&auditor, &attrs("get", "", "secrets", "", "dev", "s")));
    assert!(!snap.allows(&auditor, &attrs("get", "", "secrets", "", "prod", "s")));
    assert!(!snap.allows(&auditor, &attrs("list", "", "nodes", "", "", "")));
    assert!(snap.allows(&ops, &attrs("list", "", "nodes", "", "", "")));
    assert!(snap.allows(&ops, &attrs("get", "", "secrets", "", "prod", "s")));
    assert!(snap.allows(
        &admin,
        &attrs("delete", "", "namespaces", "", "", "kube-system")
    ));
    // A binding to a role that does not exist grants nothing.
    let mut dangling = snap.clone();
    dangling.roles.clear();
    assert!(!dangling.allows(&jane, &list_pods_dev));
}

#[test]
fn non_resource_urls_match_exactly_or_by_a_star_prefix() {
    let mut r = rule(&["get"], &[], &[], &[]);
    r.non_resource_urls = vec!["/version".into(), "/apis/*".into()];
    let get = |path: &str| Attributes {
        verb: "get".into(),
        path: path.into(),
        ..Default::default()
    };
    assert!(rule_allows(&r, &get("/version")));
    assert!(rule_allows(&r, &get("/apis/apps/v1")));
    assert!(!rule_allows(&r, &get("/versions")));
    assert!(!rule_allows(&r, &get("/healthz")));
    let mut post = get("/version");
    post.verb = "post".into();
    assert!(!rule_allows(&r, &post));
    // A resource rule never grants a path, and a URL rule never a resource.
    assert!(!rule_allows(
        &rule(&["*"], &["*"], &["*"], &[]),
        &get("/version")
    ));
    assert!(!rule_allows(&r, &attrs("get", "", "pods", "", "d", "p")));
    assert_eq!(
        forbidden_message(&user("x", &[]), &get("/version")),
        r#"forbidden: User "x" cannot get path "/version""#
    );
}

#[test]
fn remembered_decisions_keep_resource_names_apart() {
    let snap = Snapshot {
        cluster_roles: vec![
            v1::ClusterRole {
                metadata: meta("", "one-cm"),
                rules: vec![rule(&["get"], &[""], &["configmaps"], &["a"])],
                ..Default::default()
            },
            v1::ClusterRole {
                metadata: meta("", "pods"),
                rules: vec![rule(&["get"], &[""], &["pods"], &[])],
                ..Default::default()
            },
        ],
        cluster_role_bindings: vec![
            v1::ClusterRoleBinding {
                metadata: meta("", "b1"),
                subjects: vec![subject("User", "u", "")],
                role_ref: role_ref("ClusterRole", "one-cm"),
                ..Default::default()
            },
            v1::ClusterRoleBinding {
                metadata: meta("", "b2"),
                subjects: vec![subject("Group", "g", "")],
                role_ref: role_ref("ClusterRole", "pods"),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let u = user("u", &["g"]);
    let cm = |name: &str| attrs("get", "", "configmaps", "", "d", name);
    // Asked twice each, in both orders: the name decides every time.
    for _ in 0..2 {
        assert!(!snap.allows(&u, &cm("b")));
        assert!(snap.allows(&u, &cm("a")));
        assert!(!snap.allows(&u, &cm("c")));
    }
    // A decision without resourceNames holds for every name; another user is its own.
    for name in ["x", "y", "x"] {
        assert!(snap.allows(&u, &attrs("get", "", "pods", "", "d", name)));
        assert!(!snap.allows(&user("v", &[]), &attrs("get", "", "pods", "", "d", name)));
        assert!(!snap.allows(&user("u", &[]), &attrs("get", "", "pods", "", "d", name)));
    }
}

#[test]
fn the_forbidden_message_is_kubectls() {
    let u = user("x", &[]);
    assert_eq!(
        forbidden_message(&u, &attrs("list", "", "pods", "", "default", "")),
        r#"pods is forbidden: User "x" cannot list resource "pods" in API group "" in the namespace "default""#
    );
    assert_eq!(
        forbidden_message(&u, &attrs("get", "apps", "deployments", "", "d", "web")),
        r#"deployments.apps "web" is forbidden: User "x" cannot get resource "deployments" in API group "apps" in the namespace "d""#
    );
    assert_eq!(
        forbidden_message(&u, &attrs("list", "", "nodes", "", "", "")),
        r#"nodes is forbidden: User "x" cannot list resource "nodes" in API group "" at the cluster scope"#
    );
}

#[tokio::test]
async fn the_snapshot_follows_rbac_changes_and_is_kept_across_other_writes() {
    let backend = std::sync::Arc::new(crate::backend::EmbeddedBackend::memory());
    let store = crate::Store::open(backend, Default::default())
        .await
        .expect("store");
    let parse = |text: &str| {
        coxswain_api::manifest::parse_manifests(text)
            .expect("manifest")
            .remove(0)
            .object
    };
    let cache = Cache::default();
    let jane = user("jane", &[]);
    let get_cm = attrs("get", "", "configmaps", "", "default", "x");
    let first = cache.snapshot(&store);
    assert!(!first.allows(&jane, &get_cm));
    // Writes of other kinds keep the snapshot.
    for i in 0..3 {
        let cm = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}, namespace: default}}\n"
        );
        store.create(parse(&cm), false).await.expect("cm");
    }
    let again = cache.snapshot(&store);
    assert!(std::sync::Arc::ptr_eq(&first, &again));
    // A Role and its binding are seen at once.
    store
        .create(
            parse("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r, namespace: default}\nrules: [{apiGroups: [\"\"], resources: [configmaps], verbs: [get]}]\n"),
            false,
        )
        .await
        .expect("role");
    store
        .create(
            parse("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b, namespace: default}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}\nsubjects: [{kind: User, name: jane}]\n"),
            false,
        )
        .await
        .expect("binding");
    assert!(cache.snapshot(&store).allows(&jane, &get_cm));
    store
        .delete(Kind::RoleBinding, "default", "b", &Default::default())
        .await
        .expect("delete");
    assert!(!cache.snapshot(&store).allows(&jane, &get_cm));
}
