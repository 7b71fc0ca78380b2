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

use coxswain_api::v1;

use crate::authn::UserInfo;

/// What a request does to what (upstream's `authorizer.Attributes`), shared with every
/// service's authorization.
pub use coxswain_client::authz::Attributes;

mod cache;
mod rules;
#[cfg(test)]
mod tests;

pub use cache::Cache;
use rules::rule_allows_traced;
pub use rules::{forbidden_message, rule_allows, MASTERS};

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
