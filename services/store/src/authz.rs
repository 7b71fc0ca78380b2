//! The server's authorizer, as kube-apiserver's `--authorization-mode=Node,RBAC` behind the
//! privileged-group check: members of `system:masters` may do everything; a node is decided by
//! the Node authorizer ([`crate::node_authz`]) where it has an opinion; everyone else by RBAC
//! ([`crate::rbac`]). The ObjectStore service and every other service of the server (through
//! the authentication layer's [`coxswain_client::authz::Authz`] extension) ask this one.
//!
//! A refusal is PERMISSION_DENIED with upstream's Forbidden message and an ErrorInfo whose
//! reason is `Forbidden`, as every store error carries.
use std::sync::Arc;

use coxswain_client::authz::{Attributes, Authorizer};

use crate::authn::UserInfo;
use crate::Store;

/// PERMISSION_DENIED with reason `Forbidden` ([`crate::error::status`]).
pub fn forbidden(message: impl Into<String>) -> tonic::Status {
    crate::error::status(tonic::Code::PermissionDenied, "Forbidden", message)
}

/// Whether a user is a member of `system:masters` (allowed everything).
pub fn is_master(user: &UserInfo) -> bool {
    user.groups.iter().any(|g| g == crate::rbac::MASTERS)
}

/// Node, then RBAC, over a store's cache.
pub struct StoreAuthorizer {
    store: Store,
    rbac: crate::rbac::Cache,
    nodes: Arc<crate::node_authz::NodeIndex>,
}

impl StoreAuthorizer {
    pub fn new(store: Store) -> StoreAuthorizer {
        StoreAuthorizer {
            nodes: Default::default(),
            store,
            rbac: Default::default(),
        }
    }

    /// The RBAC objects now (re-decoded only after one of them changed).
    pub fn rbac(&self) -> Arc<crate::rbac::Snapshot> {
        self.rbac.snapshot(&self.store)
    }

    /// The decision for `user` doing `a`.
    pub fn decide(&self, user: &UserInfo, a: &Attributes) -> Result<(), String> {
        if is_master(user) {
            return Ok(());
        }
        let graph = crate::node_authz::IndexedGraph {
            store: &self.store,
            index: &self.nodes,
        };
        match crate::node_authz::authorize(user, a, &graph) {
            crate::node_authz::Decision::Allow => Ok(()),
            crate::node_authz::Decision::Deny(reason) => Err(format!(
                "{}: {reason}",
                crate::rbac::forbidden_message(user, a)
            )),
            crate::node_authz::Decision::NoOpinion => match self.rbac().allows(user, a) {
                true => Ok(()),
                false => Err(crate::rbac::forbidden_message(user, a)),
            },
        }
    }
}

impl Authorizer for StoreAuthorizer {
    fn authorize(&self, user: &UserInfo, a: &Attributes) -> Result<(), tonic::Status> {
        self.decide(user, a).map_err(|message| {
            tracing::debug!(%message, "authorization: denied");
            forbidden(message)
        })
    }
}
