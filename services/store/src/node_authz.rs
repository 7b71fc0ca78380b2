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
        ("", "services") if matches!(verb, "get" | "list" | "watch") && sub.is_empty() => {
            Decision::Allow
        }
        ("", "endpoints") if verb == "get" && sub.is_empty() => Decision::Allow,
        ("" | "events.k8s.io", "events") if matches!(verb, "create" | "update" | "patch") => {
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
    }
    if resource == "secrets" {
        out.extend(spec.image_pull_secrets.iter().map(|s| s.name.clone()));
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

/// The graph over a store's cache.
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
                    .any(|claim| {
                        self.0
                            .get_stored(Kind::PersistentVolumeClaim, ns, claim)
                            .ok()
                            .map(|s| s.decode())
                            .is_some_and(|o| match o {
                                Object::PersistentVolumeClaim(c) => {
                                    c.spec.as_ref().is_some_and(|s| s.volume_name == name)
                                }
                                _ => false,
                            })
                    })
            });
        }
        self.pods_on(node, Some(namespace))
            .iter()
            .any(|p| pod_references(p, resource).iter().any(|n| n == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn a(verb: &str, group: &str, res: &str, sub: &str, ns: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            api_group: group.into(),
            resource: res.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    fn node(name: &str) -> UserInfo {
        UserInfo {
            name: format!("system:node:{name}"),
            uid: String::new(),
            groups: vec![NODES_GROUP.into(), "system:authenticated".into()],
        }
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
}
