//! The serviceaccounts controller (upstream's ServiceAccountsController): every namespace that
//! is not terminating has a ServiceAccount named `default`; one deleted is made again. Pods
//! get `serviceAccountName: default` from the store's ServiceAccount admission.
use std::sync::Arc;

use coxswain_api::v1::{Namespace, ObjectMeta, ServiceAccount};
use coxswain_api::Resource;
use coxswain_client::{Client, RateLimit};

use crate::ns_publisher::{self, Publisher, Spec};

/// The name of the ServiceAccount every namespace has.
pub const DEFAULT: &str = "default";

/// The ServiceAccount to make in a namespace, if any: none while the namespace is
/// terminating (or gone), or when it has one already.
pub fn wanted(ns: Option<&Namespace>, existing: Option<&ServiceAccount>) -> Option<ServiceAccount> {
    let ns = ns?;
    let terminating = crate::runtime::namespace_terminating(ns);
    if terminating || existing.is_some() {
        return None;
    }
    Some(ServiceAccount {
        metadata: Some(ObjectMeta {
            name: DEFAULT.into(),
            namespace: ns.metadata().name.clone(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Start the informers (namespaces, `default` ServiceAccounts) and the workers.
pub fn start(client: Client, rl: RateLimit, workers: usize) -> Arc<Publisher<ServiceAccount>> {
    ns_publisher::start(
        client,
        rl,
        workers,
        Spec {
            controller: "serviceaccount",
            object: DEFAULT,
            wanted: Box::new(wanted),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(name: &str, phase: &str) -> Namespace {
        Namespace {
            metadata: Some(ObjectMeta {
                name: name.into(),
                ..Default::default()
            }),
            status: Some(coxswain_api::v1::NamespaceStatus {
                phase: phase.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn every_active_namespace_gets_a_default_account_once() {
        let sa = wanted(Some(&ns("team", "Active")), None).expect("made");
        assert_eq!(sa.metadata().name, "default");
        assert_eq!(sa.metadata().namespace, "team");
        assert!(wanted(Some(&ns("team", "Active")), Some(&sa)).is_none());
        assert!(wanted(Some(&ns("team", "Terminating")), None).is_none());
        assert!(wanted(None, None).is_none());
    }
}
