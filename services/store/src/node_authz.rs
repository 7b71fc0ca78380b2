//! The Node authorizer and the NodeRestriction admission rules, as kube-apiserver's
//! `--authorization-mode=Node` (upstream's `plugin/pkg/auth/authorizer/node`) and
//! `plugin/pkg/admission/noderestriction`: a node agent, authenticated as
//! `system:node:<name>` in group `system:nodes`, may
//! - read and write its own Node only (get, create, update, patch, delete, and its status;
//!   list/watch only with the field selector `metadata.name=<name>`);
//! - read and write its own Lease only (`kube-node-lease/<name>`);
//! - read the pods bound to it (get; list/watch only with `spec.nodeName=<name>`), write their
//!   status and delete them;
//! - get the ConfigMaps, Secrets and PersistentVolumeClaims that pods bound to it reference,
//!   and the PersistentVolumes of those claims (upstream's graph);
//! - read Services and Endpoints, and write Events (upstream's `NodeRules`).
//!
//! What these rules name and do not allow is denied with upstream's reason; anything else, and
//! any user that is not a node, is RBAC's to decide ([`Decision::NoOpinion`]), as with
//! `--authorization-mode=Node,RBAC`.
use coxswain_api::{v1, Kind, Object};

use crate::authn::UserInfo;
use crate::rbac::Attributes;

pub const NODES_GROUP: &str = "system:nodes";
pub const NODE_PREFIX: &str = "system:node:";
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
    NoOpinion,
}

/// The node a user is, upstream's `NodeIdentity`: a name `system:node:<name>` and the group
/// `system:nodes`.
pub fn node_identity(user: &UserInfo) -> Option<&str> {
    if !user.groups.iter().any(|g| g == NODES_GROUP) {
        return None;
    }
    user.name
        .strip_prefix(NODE_PREFIX)
        .filter(|n| !n.is_empty())
}

/// What the authorizer needs to know about the objects (upstream's graph).
pub trait Graph {
    /// The node a pod is bound to (None: no such pod).
    fn pod_node(&self, namespace: &str, name: &str) -> Option<String>;
    /// Whether a pod bound to `node` references the object (a ConfigMap, Secret or
    /// PersistentVolumeClaim in `namespace`, or a PersistentVolume through its claim).
    fn referenced(&self, node: &str, resource: &str, namespace: &str, name: &str) -> bool;
}

fn no_relationship(node: &str) -> Decision {
    Decision::Deny(format!(
        "no relationship found between node '{node}' and this object"
    ))
}

fn selector_is(selector: &str, field: &str, value: &str) -> bool {
    let want = format!("{field}={value}");
    selector
        .split(',')
        .map(str::trim)
        .any(|s| s == want || s == format!("{field}=={value}"))
}

/// The decision for `user` doing `a`.
pub fn authorize(user: &UserInfo, a: &Attributes, graph: &dyn Graph) -> Decision {
    let Some(node) = node_identity(user) else {
        return Decision::NoOpinion;
    };
    if !a.path.is_empty() {
        // Non-resource requests (version, discovery): RBAC's bootstrap bindings decide.
        return Decision::NoOpinion;
    }
    let verb = a.verb.as_str();
    let sub = a.subresource.as_str();
    match (a.api_group.as_str(), a.resource.as_str()) {
        ("", "nodes") => match (verb, sub) {
            ("list" | "watch", "") if selector_is(&a.field_selector, "metadata.name", node) => {
                Decision::Allow
            }
            ("list" | "watch", "") => Decision::Deny(format!(
                "can only list/watch its own node (fieldSelector metadata.name={node})"
            )),
            ("get" | "create" | "update" | "patch" | "delete", "" | "status") if a.name == node => {
                Decision::Allow
            }
            // A create carries no name in its attributes: the object's name is checked by the
            // caller (NodeRestriction) with `check_node_write`.
            ("create", "") if a.name.is_empty() => Decision::Allow,
            _ => Decision::Deny(format!(
                "node {node:?} is not allowed to modify node {:?}",
                a.name
            )),
        },
        ("coordination.k8s.io", "leases") => {
            let own = a.namespace == NODE_LEASE_NAMESPACE
                && (a.name == node || (verb == "create" && a.name.is_empty()));
            match verb {
                "get" | "create" | "update" | "patch" | "delete" if own && sub.is_empty() => {
                    Decision::Allow
                }
                _ => Decision::Deny(format!(
                    "can only access node lease with the same name as the requesting node \
                     ({NODE_LEASE_NAMESPACE}/{node})"
                )),
            }
        }
        ("", "pods") => match (verb, sub) {
            ("list" | "watch", "") if selector_is(&a.field_selector, "spec.nodeName", node) => {
                Decision::Allow
            }
            ("list" | "watch", "") => Decision::Deny(format!(
                "can only list/watch pods with spec.nodeName={node} field selector"
            )),
            ("get" | "delete", "") | ("update" | "patch", "status") => {
                match graph.pod_node(&a.namespace, &a.name) {
                    Some(n) if n == node => Decision::Allow,
                    Some(_) => {
                        Decision::Deny(format!("node {node:?} can only access pods bound to it"))
                    }
                    None => no_relationship(node),
                }
            }
            _ => Decision::Deny(format!("node {node:?} may not {verb} pods")),
        },
        ("", r @ ("configmaps" | "secrets" | "persistentvolumeclaims" | "persistentvolumes")) => {
            match (verb, sub) {
                ("get", "") if graph.referenced(node, r, &a.namespace, &a.name) => Decision::Allow,
                _ => no_relationship(node),
            }
        }
        // TokenRequest for the ServiceAccount of a pod bound to the node (NodeRestriction
        // then checks the token is bound to that pod: [`crate::tokens`]).
        ("", "serviceaccounts") => {
            if verb != "create" || a.name.is_empty() {
                Decision::Deny("can only create tokens for individual service accounts".into())
            } else if sub != "token" {
                Decision::Deny("can only create token subresource of serviceaccount".into())
            } else if graph.referenced(node, "serviceaccounts", &a.namespace, &a.name) {
                Decision::Allow
            } else {
                no_relationship(node)
            }
        }
        ("", "services") if matches!(verb, "get" | "list" | "watch") && sub.is_empty() => {
            Decision::Allow
        }
        ("", "endpoints") if verb == "get" && sub.is_empty() => Decision::Allow,
        ("" | "events.k8s.io", "events") if matches!(verb, "create" | "update" | "patch") => {
            Decision::Allow
        }
        // Upstream's NodeRules: reviews (the kubelet's webhook authentication and
        // authorization) and its own certificate requests.
        ("authentication.k8s.io", "tokenreviews") if verb == "create" && sub.is_empty() => {
            Decision::Allow
        }
        ("authorization.k8s.io", "subjectaccessreviews" | "localsubjectaccessreviews")
            if verb == "create" && sub.is_empty() =>
        {
            Decision::Allow
        }
        ("certificates.k8s.io", "certificatesigningrequests")
            if matches!(verb, "create" | "get" | "list" | "watch") && sub.is_empty() =>
        {
            Decision::Allow
        }
        // Anything else: upstream's static node rules do not reach it, RBAC decides (a node
        // has no binding by default, so it is denied).
        _ => Decision::NoOpinion,
    }
}

/// NodeRestriction for an object a node writes: a Node or a Lease must carry the node's own
/// name (a create's attributes have no name, so the object is checked here).
pub fn check_node_write(user: &UserInfo, obj: &Object) -> Result<(), String> {
    let Some(node) = node_identity(user) else {
        return Ok(());
    };
    match obj {
        Object::Node(n) if n.metadata.as_ref().map_or("", |m| m.name.as_str()) != node => {
            Err(format!(
                "node {node:?} is not allowed to modify node {:?}",
                obj.name()
            ))
        }
        Object::Lease(_) if obj.name() != node || obj.namespace() != NODE_LEASE_NAMESPACE => {
            Err(format!(
                "can only access node lease with the same name as the requesting node \
                 ({NODE_LEASE_NAMESPACE}/{node})"
            ))
        }
        _ => Ok(()),
    }
}

/// The names a pod references of a kind (`configmaps`, `secrets`, `persistentvolumeclaims`).
pub fn pod_references(pod: &v1::Pod, resource: &str) -> Vec<String> {
    let Some(spec) = pod.spec.as_ref() else {
        return vec![];
    };
    let mut out = Vec::new();
    for v in &spec.volumes {
        match resource {
            "configmaps" => out.extend(v.config_map.as_ref().map(|c| c.name.clone())),
            "secrets" => out.extend(v.secret.as_ref().map(|s| s.secret_name.clone())),
            "persistentvolumeclaims" => out.extend(
                v.persistent_volume_claim
                    .as_ref()
                    .map(|c| c.claim_name.clone()),
            ),
            _ => {}
        }
        // A projected volume's sources (the kube-api-access volume's kube-root-ca.crt).
        for s in v.projected.iter().flat_map(|p| &p.sources) {
            match resource {
                "configmaps" => out.extend(s.config_map.as_ref().map(|c| c.name.clone())),
                "secrets" => out.extend(s.secret.as_ref().map(|c| c.name.clone())),
                _ => {}
            }
        }
    }
    if resource == "secrets" {
        out.extend(spec.image_pull_secrets.iter().map(|s| s.name.clone()));
    }
    if resource == "serviceaccounts" && !spec.service_account_name.is_empty() {
        out.push(spec.service_account_name.clone());
    }
    for c in spec.init_containers.iter().chain(&spec.containers) {
        for e in &c.env {
            let Some(from) = e.value_from.as_ref() else {
                continue;
            };
            match resource {
                "configmaps" => {
                    out.extend(from.config_map_key_ref.as_ref().map(|r| r.name.clone()))
                }
                "secrets" => out.extend(from.secret_key_ref.as_ref().map(|r| r.name.clone())),
                _ => {}
            }
        }
        for e in &c.env_from {
            match resource {
                "configmaps" => out.extend(e.config_map_ref.as_ref().map(|r| r.name.clone())),
                "secrets" => out.extend(e.secret_ref.as_ref().map(|r| r.name.clone())),
                _ => {}
            }
        }
    }
    out
}

/// The graph by scanning a store's cache: the pods bound to a node are found by looking at
/// every pod. Used only while the [`NodeIndex`] has not caught up with the store.
pub struct StoreGraph<'a>(pub &'a crate::Store);

impl StoreGraph<'_> {
    fn pods_on(&self, node: &str, namespace: Option<&str>) -> Vec<v1::Pod> {
        self.0
            .cached(Kind::Pod)
            .iter()
            .filter(|s| namespace.is_none_or(|ns| s.namespace() == ns))
            .filter(|s| s.field("spec.nodeName").as_deref() == Some(node))
            .filter_map(|s| match s.decode() {
                Object::Pod(p) => Some(p),
                _ => None,
            })
            .collect()
    }
}

/// Whether the claim `namespace/claim` is bound to the volume `volume`.
fn claim_binds(store: &crate::Store, namespace: &str, claim: &str, volume: &str) -> bool {
    store
        .get_stored(Kind::PersistentVolumeClaim, namespace, claim)
        .ok()
        .map(|s| s.decode())
        .is_some_and(|o| match o {
            Object::PersistentVolumeClaim(c) => {
                c.spec.as_ref().is_some_and(|s| s.volume_name == volume)
            }
            _ => false,
        })
}

impl Graph for StoreGraph<'_> {
    fn pod_node(&self, namespace: &str, name: &str) -> Option<String> {
        let s = self.0.get_stored(Kind::Pod, namespace, name).ok()?;
        Some(s.field("spec.nodeName").unwrap_or_default())
    }

    fn referenced(&self, node: &str, resource: &str, namespace: &str, name: &str) -> bool {
        if resource == "persistentvolumes" {
            // A volume is reachable through a claim a pod on the node uses.
            return self.pods_on(node, None).iter().any(|p| {
                let ns = p.metadata.as_ref().map_or("", |m| m.namespace.as_str());
                pod_references(p, "persistentvolumeclaims")
                    .iter()
                    .any(|claim| claim_binds(self.0, ns, claim, name))
            });
        }
        self.pods_on(node, Some(namespace))
            .iter()
            .any(|p| pod_references(p, resource).iter().any(|n| n == name))
    }
}

/// The kinds of objects a pod references that the index keeps.
const REFERENCED: [&str; 4] = [
    "configmaps",
    "secrets",
    "persistentvolumeclaims",
    "serviceaccounts",
];

/// (resource, namespace, name) of a referenced object.
type RefKey = (&'static str, String, String);

/// What the index knows of one bound pod.
struct IndexedPod {
    uid: String,
    node: String,
    refs: Vec<RefKey>,
}

/// Upstream's graph, kept incrementally: per node, the objects its pods reference (with how
/// many of its pods reference each), fed by a watch of the store from a consistent list.
/// Answers only when it has applied every change the store has ([`NodeIndex::referenced`]
/// returns None otherwise, and the caller scans), so a pod bound a moment ago is never denied
/// its Secrets because the index lags. It is fed from the first question on, so a cluster
/// whose nodes never ask (no agent with a node identity) pays nothing for it.
#[derive(Default)]
pub struct NodeIndex {
    state: std::sync::RwLock<IndexState>,
    /// Set when the feeding task starts; dropped with the index, it ends the task.
    stop: std::sync::OnceLock<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Default)]
struct IndexState {
    /// The store revision every change up to which is applied (0: not listed yet).
    revision: i64,
    /// Bound pods by "namespace/name".
    pods: std::collections::HashMap<String, IndexedPod>,
    /// node -> referenced object -> how many of its pods reference it.
    nodes: std::collections::HashMap<String, std::collections::HashMap<RefKey, usize>>,
}

impl IndexState {
    fn remove(&mut self, key: &str) {
        let Some(old) = self.pods.remove(key) else {
            return;
        };
        if let Some(refs) = self.nodes.get_mut(&old.node) {
            for r in old.refs {
                if let std::collections::hash_map::Entry::Occupied(mut e) = refs.entry(r) {
                    *e.get_mut() -= 1;
                    if *e.get() == 0 {
                        e.remove();
                    }
                }
            }
            if refs.is_empty() {
                self.nodes.remove(&old.node);
            }
        }
    }

    /// Apply one pod's current state (None: deleted).
    fn apply(&mut self, s: &crate::cache::Stored, deleted: bool) {
        let key = format!("{}/{}", s.namespace(), s.name());
        let node = match deleted {
            true => String::new(),
            false => s.field("spec.nodeName").unwrap_or_default(),
        };
        // A pod's volumes, env and pull secrets are immutable: decode only when the pod or
        // its node changes.
        if let Some(p) = self.pods.get(&key) {
            if p.uid == *s.uid && p.node == node {
                return;
            }
        }
        self.remove(&key);
        if node.is_empty() {
            return;
        }
        let Object::Pod(pod) = s.decode() else {
            return;
        };
        let ns = s.namespace().to_string();
        let mut refs: Vec<RefKey> = Vec::new();
        for r in REFERENCED {
            for name in pod_references(&pod, r) {
                let k = (r, ns.clone(), name);
                if !refs.contains(&k) {
                    refs.push(k);
                }
            }
        }
        let counts = self.nodes.entry(node.clone()).or_default();
        for r in &refs {
            *counts.entry(r.clone()).or_default() += 1;
        }
        self.pods.insert(
            key,
            IndexedPod {
                uid: s.uid.to_string(),
                node,
                refs,
            },
        );
    }
}

impl NodeIndex {
    /// An index fed from `store` from now on.
    pub fn start(store: &crate::Store) -> std::sync::Arc<NodeIndex> {
        let index = std::sync::Arc::<NodeIndex>::default();
        index.feed_from(store);
        index
    }

    /// Start feeding the index from `store` by a task on the current runtime, once (outside a
    /// runtime it never catches up, so every question is answered by scanning).
    pub fn feed_from(self: &std::sync::Arc<Self>, store: &crate::Store) {
        if self.stop.get().is_some() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.stop.set(tx).is_ok() {
            rt.spawn(feed(store.clone(), std::sync::Arc::downgrade(self), rx));
        }
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, IndexState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, IndexState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a pod bound to `node` references the object; None when the index has not
    /// applied the store's revision `current` yet.
    pub fn referenced(
        &self,
        current: i64,
        node: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Option<bool> {
        let st = self.state();
        if st.revision == 0 || st.revision < current {
            return None;
        }
        let Some(refs) = st.nodes.get(node) else {
            return Some(false);
        };
        let key: RefKey = match REFERENCED.iter().find(|r| **r == resource) {
            Some(r) => (r, namespace.to_string(), name.to_string()),
            None => return Some(false),
        };
        Some(refs.contains_key(&key))
    }

    /// The claims (namespace, name) the pods bound to `node` use; None as for
    /// [`NodeIndex::referenced`].
    pub fn claims(&self, current: i64, node: &str) -> Option<Vec<(String, String)>> {
        let st = self.state();
        if st.revision == 0 || st.revision < current {
            return None;
        }
        Some(
            st.nodes
                .get(node)
                .into_iter()
                .flat_map(|refs| refs.keys())
                .filter(|(r, _, _)| *r == "persistentvolumeclaims")
                .map(|(_, ns, name)| (ns.clone(), name.clone()))
                .collect(),
        )
    }
}

/// List the pods, then apply every change after the list; relist when the watch ends (cut
/// or too old). Every event of every kind advances the applied revision, so the index can
/// tell when it is current.
async fn feed(
    store: crate::Store,
    index: std::sync::Weak<NodeIndex>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    use crate::store::{ListOptions, WatchEvent, WatchOptions};
    loop {
        let Ok(list) = store.list(Kind::Pod, &ListOptions::default()) else {
            return;
        };
        {
            let Some(ix) = index.upgrade() else {
                return;
            };
            let mut st = ix.state_mut();
            *st = IndexState::default();
            for s in &list.items {
                st.apply(s, false);
            }
            st.revision = list.revision;
        }
        let opts = WatchOptions {
            resource_version: Some(list.revision),
            bookmarks: true,
            ..Default::default()
        };
        let Ok(mut rx) = store.watch(opts) else {
            return;
        };
        loop {
            let ev = tokio::select! {
                _ = &mut stop => return,
                ev = rx.recv() => ev,
            };
            let Some(ix) = index.upgrade() else {
                return;
            };
            let (revision, pod) = match ev {
                Some(Ok(WatchEvent::Change { typ, object })) => {
                    let deleted = matches!(typ, crate::cache::EventType::Deleted);
                    (
                        object.revision,
                        (object.kind == Kind::Pod).then_some((object, deleted)),
                    )
                }
                Some(Ok(WatchEvent::Bookmark { revision, .. })) => (revision, None),
                // Cut, too old, or closed: relist.
                Some(Err(_)) | None => break,
            };
            let mut st = ix.state_mut();
            if let Some((object, deleted)) = pod {
                st.apply(&object, deleted);
            }
            st.revision = st.revision.max(revision);
        }
        // Not in a hot loop if the watch keeps failing.
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
        }
    }
}

/// The graph from the [`NodeIndex`] when it is current, else by scanning.
pub struct IndexedGraph<'a> {
    pub store: &'a crate::Store,
    pub index: &'a std::sync::Arc<NodeIndex>,
}

impl Graph for IndexedGraph<'_> {
    fn pod_node(&self, namespace: &str, name: &str) -> Option<String> {
        StoreGraph(self.store).pod_node(namespace, name)
    }

    fn referenced(&self, node: &str, resource: &str, namespace: &str, name: &str) -> bool {
        self.index.feed_from(self.store);
        let current = self.store.revision();
        let indexed = match resource {
            "persistentvolumes" => self.index.claims(current, node).map(|claims| {
                claims
                    .iter()
                    .any(|(ns, claim)| claim_binds(self.store, ns, claim, name))
            }),
            _ => self
                .index
                .referenced(current, node, resource, namespace, name),
        };
        match indexed {
            Some(answer) => answer,
            None => {
                metrics::counter!("coxswain_node_authorizer_index_misses_total").increment(1);
                StoreGraph(self.store).referenced(node, resource, namespace, name)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_builders::{attrs as a, user};

    struct Fake;
    impl Graph for Fake {
        fn pod_node(&self, _ns: &str, name: &str) -> Option<String> {
            match name {
                "mine" => Some("n1".into()),
                "theirs" => Some("n2".into()),
                _ => None,
            }
        }
        fn referenced(&self, node: &str, _r: &str, _ns: &str, name: &str) -> bool {
            node == "n1" && name == "used"
        }
    }

    fn node(name: &str) -> UserInfo {
        let name = format!("{NODE_PREFIX}{name}");
        user(&name, &[NODES_GROUP, "system:authenticated"])
    }

    #[test]
    fn a_node_reaches_its_own_node_lease_and_pods_only() {
        let n1 = node("n1");
        let allow = |x: &Attributes| authorize(&n1, x, &Fake) == Decision::Allow;
        assert!(allow(&a("get", "", "nodes", "", "", "n1")));
        assert!(allow(&a("update", "", "nodes", "status", "", "n1")));
        assert!(!allow(&a("update", "", "nodes", "status", "", "n2")));
        assert!(!allow(&a("delete", "", "nodes", "", "", "n2")));
        assert!(!allow(&a("list", "", "nodes", "", "", "")));
        let mut own = a("watch", "", "nodes", "", "", "");
        own.field_selector = "metadata.name=n1".into();
        assert!(allow(&own));
        let lease =
            |name: &str, ns: &str| a("update", "coordination.k8s.io", "leases", "", ns, name);
        assert!(allow(&lease("n1", NODE_LEASE_NAMESPACE)));
        assert!(!allow(&lease("n2", NODE_LEASE_NAMESPACE)));
        assert!(!allow(&lease("n1", "default")));
        assert!(allow(&a("get", "", "pods", "", "d", "mine")));
        assert!(allow(&a("update", "", "pods", "status", "d", "mine")));
        assert!(allow(&a("delete", "", "pods", "", "d", "mine")));
        assert!(!allow(&a("get", "", "pods", "", "d", "theirs")));
        assert!(!allow(&a("update", "", "pods", "status", "d", "theirs")));
        assert!(!allow(&a("update", "", "pods", "", "d", "mine")));
        assert!(!allow(&a("get", "", "pods", "", "d", "missing")));
        let mut pods = a("watch", "", "pods", "", "", "");
        assert!(!allow(&pods));
        pods.field_selector = "spec.nodeName=n1".into();
        assert!(allow(&pods));
        pods.field_selector = "spec.nodeName=n2".into();
        assert!(!allow(&pods));
        assert!(allow(&a("get", "", "secrets", "", "d", "used")));
        assert!(!allow(&a("get", "", "secrets", "", "d", "other")));
        assert!(!allow(&a("list", "", "secrets", "", "d", "")));
        assert!(allow(&a("list", "", "services", "", "", "")));
        assert!(allow(&a("create", "", "events", "", "d", "")));
        assert_eq!(
            authorize(&n1, &a("create", "apps", "deployments", "", "d", ""), &Fake),
            Decision::NoOpinion
        );
        // Not a node: RBAC decides.
        let jane = UserInfo {
            name: "system:node:n1".into(),
            ..Default::default()
        };
        assert_eq!(
            authorize(&jane, &a("get", "", "nodes", "", "", "n1"), &Fake),
            Decision::NoOpinion
        );
    }

    /// Wait (bounded) until the index answers `want` for `(node, resource, name)` in `d`.
    async fn index_says(
        store: &crate::Store,
        index: &NodeIndex,
        node: &str,
        resource: &str,
        name: &str,
        want: bool,
    ) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let got = index.referenced(store.revision(), node, resource, "default", name);
            if got == Some(want) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "index: {node} {resource} {name}: {got:?}, want {want}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn the_index_follows_pods_bound_and_deleted_and_answers_only_when_current() {
        let backend = std::sync::Arc::new(crate::backend::EmbeddedBackend::memory());
        let store = crate::Store::open(backend, Default::default())
            .await
            .expect("store");
        let index = NodeIndex::start(&store);
        let pod = |name: &str, node: &str, secret: &str| {
            let text = format!(
                "apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default}}
spec:
  nodeName: {node}
  volumes: [{{name: s, secret: {{secretName: {secret}}}}}, {{name: c, persistentVolumeClaim: {{claimName: data}}}}]
  containers:
  - name: app
    image: nginx
    envFrom: [{{configMapRef: {{name: settings}}}}]
"
            );
            coxswain_api::manifest::parse_manifests(&text)
                .expect("pod manifest")
                .remove(0)
                .object
        };
        store.create(pod("a", "n1", "s1"), false).await.expect("a");
        store.create(pod("b", "n1", "s1"), false).await.expect("b");
        store.create(pod("c", "n2", "s2"), false).await.expect("c");
        index_says(&store, &index, "n1", "secrets", "s1", true).await;
        index_says(&store, &index, "n1", "configmaps", "settings", true).await;
        index_says(&store, &index, "n1", "persistentvolumeclaims", "data", true).await;
        index_says(&store, &index, "n1", "secrets", "s2", false).await;
        index_says(&store, &index, "n2", "secrets", "s2", true).await;
        index_says(&store, &index, "n3", "secrets", "s1", false).await;
        assert_eq!(
            index.claims(store.revision(), "n2"),
            Some(vec![("default".to_string(), "data".to_string())])
        );
        // A revision the index has not applied yet: no answer (the caller scans).
        assert_eq!(
            index.referenced(store.revision() + 1, "n1", "secrets", "default", "s1"),
            None
        );
        // Two pods reference s1 on n1: it stays reachable until both are gone.
        let now = crate::store::DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        store
            .delete(Kind::Pod, "default", "a", &now)
            .await
            .expect("delete a");
        index_says(&store, &index, "n1", "secrets", "s1", true).await;
        store
            .delete(Kind::Pod, "default", "b", &now)
            .await
            .expect("delete b");
        index_says(&store, &index, "n1", "secrets", "s1", false).await;
        index_says(&store, &index, "n1", "configmaps", "settings", false).await;
        // The graph over the index gives the scan's answers.
        let graph = IndexedGraph {
            store: &store,
            index: &index,
        };
        assert!(graph.referenced("n2", "secrets", "default", "s2"));
        assert!(!graph.referenced("n1", "secrets", "default", "s2"));
        assert_eq!(
            graph.referenced("n2", "secrets", "default", "s2"),
            StoreGraph(&store).referenced("n2", "secrets", "default", "s2")
        );
    }
}
