//! Authorization by RBAC, as kube-apiserver's `--authorization-mode=RBAC` (upstream's
//! `plugin/pkg/auth/authorizer/rbac`): a request (user, verb, API group, resource,
//! subresource, namespace, name) is allowed when a rule of a role bound to the user allows it.
//! Members of `system:masters` are allowed everything, as upstream's privileged-group
//! authorizer does before RBAC is asked.
//!
//! Pure logic over a snapshot of the four RBAC kinds; the gRPC edge (`server.rs`) gathers the
//! attributes of each call and the snapshot from the store's cache.
use std::collections::HashMap;
use std::sync::OnceLock;

use coxswain_api::{v1, Kind, Object};

use crate::authn::UserInfo;

/// What a request does to what (upstream's `authorizer.Attributes`), shared with every
/// service's authorization.
pub use coxswain_client::authz::Attributes;

/// The RBAC objects a decision reads.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub roles: Vec<v1::Role>,
    pub cluster_roles: Vec<v1::ClusterRole>,
    pub role_bindings: Vec<v1::RoleBinding>,
    pub cluster_role_bindings: Vec<v1::ClusterRoleBinding>,
    /// Built on first use, from the fields above (which must not change after it).
    index: OnceLock<Index>,
    /// Decisions already taken on this snapshot ([`Snapshot::allows`]).
    decisions: Decisions,
}

/// The decisions of one snapshot, by user and attributes: a repeated request (the same user
/// creating or reading in the same place) is answered by one hash and one comparison instead
/// of the bindings' walk. The name is part of the key only for decisions a rule with
/// `resourceNames` took part in. Bounded: a full cache is emptied.
#[derive(Default)]
struct Decisions {
    map: std::sync::RwLock<HashMap<u64, Vec<Decided>, BuildFx>>,
}

/// A multiply-rotate hash (rustc's FxHash) for the decisions' keys: they are hashed at every
/// request, SipHash cost more than the rest of a remembered decision, and a bucket is
/// matched field by field, so a collision costs a walk, never a wrong answer (buckets are
/// bounded).
#[derive(Default, Clone, Copy)]
struct Fx(u64);

type BuildFx = std::hash::BuildHasherDefault<Fx>;

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let mut last = [0u8; 8];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(last));
    }

    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The most decisions kept per snapshot.
const MAX_DECISIONS: usize = 4096;

struct Decided {
    user: String,
    groups: Vec<String>,
    verb: String,
    api_group: String,
    resource: String,
    subresource: String,
    namespace: String,
    path: String,
    /// Some: the decision held for this name only.
    name: Option<String>,
    allowed: bool,
}

impl Decided {
    fn matches(&self, user: &UserInfo, a: &Attributes) -> bool {
        self.user == user.name
            && self.groups == user.groups
            && self.verb == a.verb
            && self.api_group == a.api_group
            && self.resource == a.resource
            && self.subresource == a.subresource
            && self.namespace == a.namespace
            && self.path == a.path
            && self.name.as_ref().is_none_or(|n| *n == a.name)
    }
}

/// The key of a decision's bucket: everything it may depend on but the name.
fn decision_hash(user: &UserInfo, a: &Attributes) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = Fx::default();
    user.name.hash(&mut h);
    user.groups.hash(&mut h);
    (&a.verb, &a.api_group, &a.resource, &a.subresource).hash(&mut h);
    (&a.namespace, &a.path).hash(&mut h);
    h.finish()
}

impl Clone for Decisions {
    fn clone(&self) -> Decisions {
        Decisions::default()
    }
}

impl std::fmt::Debug for Decisions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decisions")
    }
}

/// Roles by name and bindings by the subjects they name, so that a decision looks up the
/// bindings of the user and its groups instead of testing every subject of every binding
/// (upstream scans them; with ~100 bootstrap bindings that was most of RBAC's cost per call).
#[derive(Debug, Clone, Default)]
struct Index {
    cluster_roles: HashMap<String, usize>,
    /// namespace → name → index in `roles`.
    roles: HashMap<String, HashMap<String, usize>>,
    cluster_bindings: Subjects,
    /// namespace → the RoleBindings of that namespace.
    bindings: HashMap<String, Subjects>,
}

/// Bindings (indexes into one of the binding lists) by subject, as upstream's `appliesToUser`
/// matches them: a User by its name, a ServiceAccount by its user name `system:serviceaccount:<ns>:<name>`, a Group by its name.
#[derive(Debug, Clone, Default)]
struct Subjects {
    users: HashMap<String, Vec<usize>>,
    groups: HashMap<String, Vec<usize>>,
}

impl Subjects {
    fn add(&mut self, i: usize, subjects: &[v1::Subject], binding_ns: &str) {
        for s in subjects {
            let list = match s.kind.as_str() {
                "User" => self.users.entry(s.name.clone()).or_default(),
                "Group" => self.groups.entry(s.name.clone()).or_default(),
                "ServiceAccount" => {
                    let ns = if s.namespace.is_empty() {
                        binding_ns
                    } else {
                        &s.namespace
                    };
                    let name = format!("system:serviceaccount:{ns}:{}", s.name);
                    self.users.entry(name).or_default()
                }
                _ => continue,
            };
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }

    /// The bindings naming `user` or one of its groups (an index may repeat).
    fn of<'a>(&'a self, user: &'a UserInfo) -> impl Iterator<Item = usize> + 'a {
        let by_groups = user.groups.iter().filter_map(|g| self.groups.get(g));
        self.users
            .get(&user.name)
            .into_iter()
            .chain(by_groups)
            .flatten()
            .copied()
    }

    /// [`Subjects::of`] in the bindings' order, each once (upstream visits them in order).
    fn of_in_order(&self, user: &UserInfo) -> Vec<usize> {
        let mut v: Vec<usize> = self.of(user).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

pub const MASTERS: &str = "system:masters";

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == "*" || x == want)
}

/// Upstream's `NonResourceURLMatches`: an exact path, or a prefix ending in `*`.
fn url_matches(rule: &str, path: &str) -> bool {
    rule == "*"
        || rule == path
        || rule
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix))
}

/// Upstream's `RuleAllows`, for resource and non-resource requests.
pub fn rule_allows(rule: &v1::PolicyRule, a: &Attributes) -> bool {
    rule_allows_traced(rule, a, &mut false)
}

/// [`rule_allows`], setting `by_name` when the answer turned on the rule's `resourceNames`.
fn rule_allows_traced(rule: &v1::PolicyRule, a: &Attributes, by_name: &mut bool) -> bool {
    if !a.path.is_empty() {
        return has(&rule.verbs, &a.verb)
            && rule
                .non_resource_urls
                .iter()
                .any(|u| url_matches(u, &a.path));
    }
    if !has(&rule.verbs, &a.verb) || !has(&rule.api_groups, &a.api_group) {
        return false;
    }
    let combined = match a.subresource.is_empty() {
        true => a.resource.clone(),
        false => format!("{}/{}", a.resource, a.subresource),
    };
    let resource = rule.resources.iter().any(|r| {
        r == "*"
            || *r == combined
            || (!a.subresource.is_empty() && r.strip_prefix("*/") == Some(a.subresource.as_str()))
    });
    if !resource {
        return false;
    }
    if rule.resource_names.is_empty() {
        return true;
    }
    *by_name = true;
    rule.resource_names.contains(&a.name)
}

impl Snapshot {
    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            let mut ix = Index::default();
            for (i, r) in self.cluster_roles.iter().enumerate() {
                ix.cluster_roles
                    .entry(meta_name(&r.metadata).to_string())
                    .or_insert(i);
            }
            for (i, r) in self.roles.iter().enumerate() {
                ix.roles
                    .entry(meta_ns(&r.metadata).to_string())
                    .or_default()
                    .entry(meta_name(&r.metadata).to_string())
                    .or_insert(i);
            }
            for (i, b) in self.cluster_role_bindings.iter().enumerate() {
                ix.cluster_bindings.add(i, &b.subjects, "");
            }
            for (i, b) in self.role_bindings.iter().enumerate() {
                let ns = meta_ns(&b.metadata);
                ix.bindings
                    .entry(ns.to_string())
                    .or_default()
                    .add(i, &b.subjects, ns);
            }
            ix
        })
    }

    fn cluster_role(&self, name: &str) -> Option<&v1::ClusterRole> {
        let i = *self.index().cluster_roles.get(name)?;
        self.cluster_roles.get(i)
    }

    fn role(&self, ns: &str, name: &str) -> Option<&v1::Role> {
        let i = *self.index().roles.get(ns)?.get(name)?;
        self.roles.get(i)
    }

    /// The rules of a binding's roleRef (None: it names a role that does not exist).
    fn rules_of(&self, ns: &str, r: &v1::RoleRef) -> Option<&[v1::PolicyRule]> {
        match r.kind.as_str() {
            "ClusterRole" => self.cluster_role(&r.name).map(|c| c.rules.as_slice()),
            "Role" if !ns.is_empty() => self.role(ns, &r.name).map(|c| c.rules.as_slice()),
            _ => None,
        }
    }

    /// Every rule granted to `user` in `namespace` (empty: cluster scope only), upstream's
    /// `RulesFor`: its ClusterRoleBindings' roles, then its RoleBindings' in the namespace.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<v1::PolicyRule> {
        let ix = self.index();
        let mut out = Vec::new();
        for i in ix.cluster_bindings.of_in_order(user) {
            let b = &self.cluster_role_bindings[i];
            if let Some(rules) = b.role_ref.as_ref().and_then(|r| self.rules_of("", r)) {
                out.extend_from_slice(rules);
            }
        }
        if let Some(subjects) = ix.bindings.get(namespace).filter(|_| !namespace.is_empty()) {
            for i in subjects.of_in_order(user) {
                let b = &self.role_bindings[i];
                if let Some(rules) = b
                    .role_ref
                    .as_ref()
                    .and_then(|r| self.rules_of(namespace, r))
                {
                    out.extend_from_slice(rules);
                }
            }
        }
        out
    }

    /// The rules a binding's roleRef names, from the binding's namespace (None: no such role).
    pub fn role_rules(&self, namespace: &str, r: &v1::RoleRef) -> Option<Vec<v1::PolicyRule>> {
        self.rules_of(namespace, r).map(<[_]>::to_vec)
    }

    /// Whether `user` may do `a`: cluster role bindings first, then the role bindings of the
    /// request's namespace (upstream's `VisitRulesFor` order).
    pub fn allows(&self, user: &UserInfo, a: &Attributes) -> bool {
        if user.groups.iter().any(|g| g == MASTERS) {
            return true;
        }
        let hash = decision_hash(user, a);
        if let Ok(map) = self.decisions.map.read() {
            if let Some(d) = map
                .get(&hash)
                .and_then(|b| b.iter().find(|d| d.matches(user, a)))
            {
                return d.allowed;
            }
        }
        let mut by_name = false;
        let allowed = self.walk(user, a, &mut by_name);
        if let Ok(mut map) = self.decisions.map.write() {
            if map.len() >= MAX_DECISIONS {
                map.clear();
            }
            let bucket = map.entry(hash).or_default();
            if bucket.len() >= 64 {
                bucket.clear();
            }
            bucket.push(Decided {
                user: user.name.clone(),
                groups: user.groups.clone(),
                verb: a.verb.clone(),
                api_group: a.api_group.clone(),
                resource: a.resource.clone(),
                subresource: a.subresource.clone(),
                namespace: a.namespace.clone(),
                path: a.path.clone(),
                name: by_name.then(|| a.name.clone()),
                allowed,
            });
        }
        allowed
    }

    /// The bindings' walk of [`Snapshot::allows`]; `by_name` is set when a rule's
    /// `resourceNames` took part.
    fn walk(&self, user: &UserInfo, a: &Attributes, by_name: &mut bool) -> bool {
        let mut granted = |ns: &str, r: &Option<v1::RoleRef>| {
            r.as_ref()
                .and_then(|r| self.rules_of(ns, r))
                .is_some_and(|rules| {
                    rules
                        .iter()
                        .any(|rule| rule_allows_traced(rule, a, by_name))
                })
        };
        let ix = self.index();
        if ix
            .cluster_bindings
            .of(user)
            .any(|i| granted("", &self.cluster_role_bindings[i].role_ref))
        {
            return true;
        }
        if a.namespace.is_empty() {
            return false;
        }
        ix.bindings.get(&a.namespace).is_some_and(|subjects| {
            subjects
                .of(user)
                .any(|i| granted(&a.namespace, &self.role_bindings[i].role_ref))
        })
    }
}

fn meta_name(m: &Option<v1::ObjectMeta>) -> &str {
    m.as_ref().map_or("", |m| m.name.as_str())
}

fn meta_ns(m: &Option<v1::ObjectMeta>) -> &str {
    m.as_ref().map_or("", |m| m.namespace.as_str())
}

/// Upstream's Forbidden message: `pods is forbidden: User "x" cannot list resource "pods" in
/// API group "" in the namespace "default"` (`pods "web" is forbidden: …` with a name,
/// `… at the cluster scope` without a namespace; the resource is `deployments.apps` outside
/// the core group).
pub fn forbidden_message(user: &UserInfo, a: &Attributes) -> String {
    if !a.path.is_empty() {
        return format!(
            "forbidden: User {:?} cannot {} path {:?}",
            user.name, a.verb, a.path
        );
    }
    let gr = match a.api_group.is_empty() {
        true => a.resource.clone(),
        false => format!("{}.{}", a.resource, a.api_group),
    };
    let head = match a.name.is_empty() {
        true => format!("{gr} is forbidden"),
        false => format!("{gr} {:?} is forbidden", a.name),
    };
    let resource = match a.subresource.is_empty() {
        true => a.resource.clone(),
        false => format!("{}/{}", a.resource, a.subresource),
    };
    let scope = match a.namespace.is_empty() {
        true => "at the cluster scope".to_string(),
        false => format!("in the namespace {:?}", a.namespace),
    };
    format!(
        "{head}: User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
        user.name, a.verb, a.api_group
    )
}

/// The decoded RBAC objects of a store, re-read only when one of them changed.
///
/// Per request: the revisions of the last change to each of the four kinds, which the store's
/// cache records before it publishes a write ([`crate::cache::KindRevisions`]), against those
/// the snapshot was read at. They only grow, so their highest is a generation: equal, the
/// snapshot holds every RBAC write acknowledged so far, and a decision takes no lock of the
/// store (before, every write of any kind sent the next decision through a mutex and the
/// store cache's lock to look at what had changed). A new generation lists the four kinds
/// again, once, under a mutex.
#[derive(Default)]
pub struct Cache {
    inner: std::sync::Mutex<()>,
    /// (generation read before listing, the snapshot then); None before the first listing.
    fast: std::sync::RwLock<Option<(i64, std::sync::Arc<Snapshot>)>>,
    /// The store cache's per-kind revisions.
    revisions: std::sync::OnceLock<std::sync::Arc<crate::cache::KindRevisions>>,
}

const KINDS: [Kind; 4] = [
    Kind::Role,
    Kind::ClusterRole,
    Kind::RoleBinding,
    Kind::ClusterRoleBinding,
];

impl Cache {
    pub fn snapshot(&self, store: &crate::Store) -> std::sync::Arc<Snapshot> {
        let revisions = self
            .revisions
            .get_or_init(|| store.cache().kind_revisions());
        let generation = || KINDS.iter().map(|k| revisions.get(*k)).max().unwrap_or(0);
        let now = generation();
        if let Ok(f) = self.fast.read() {
            if let Some((g, snap)) = &*f {
                if *g == now {
                    return snap.clone();
                }
            }
        }
        let _one = self.inner.lock();
        // Another request may have listed meanwhile.
        let now = generation();
        if let Ok(f) = self.fast.read() {
            if let Some((g, snap)) = &*f {
                if *g == now {
                    return snap.clone();
                }
            }
        }
        // Read before listing: a change after it raises it again, and is listed next time.
        let stored: Vec<_> = KINDS.iter().map(|k| store.cached(*k)).collect();
        let snap = std::sync::Arc::new(decode(&stored));
        if let Ok(mut f) = self.fast.write() {
            *f = Some((now, snap.clone()));
        }
        snap
    }
}

fn decode(stored: &[Vec<std::sync::Arc<crate::cache::Stored>>]) -> Snapshot {
    let mut snap = Snapshot::default();
    for s in stored.iter().flatten() {
        match s.decode() {
            Object::Role(r) => snap.roles.push(r),
            Object::ClusterRole(r) => snap.cluster_roles.push(r),
            Object::RoleBinding(b) => snap.role_bindings.push(b),
            Object::ClusterRoleBinding(b) => snap.cluster_role_bindings.push(b),
            _ => {}
        }
    }
    snap
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_builders::{attrs, rule, user};

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
}
