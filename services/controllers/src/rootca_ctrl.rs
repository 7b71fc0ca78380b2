//! The root-ca-cert-publisher (upstream's `pkg/controller/certificates/rootcacertpublisher`):
//! every namespace that is not terminating has a ConfigMap `kube-root-ca.crt` whose `ca.crt` is
//! the cluster CA, which pods read through their `kube-api-access-*` projected volume. One
//! deleted or changed is made right again. Without a CA (authentication off) it does nothing.
use std::sync::Arc;

use coxswain_api::v1::{ConfigMap, Namespace, ObjectMeta};
use coxswain_api::Resource;
use coxswain_client::{Client, RateLimit};

use crate::ns_publisher::{self, Publisher, Spec};

/// The ConfigMap's name.
pub const NAME: &str = "kube-root-ca.crt";
/// Upstream's description annotation.
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// What to write in a namespace: None (leave it), or the ConfigMap to create (no
/// resourceVersion) or to update (the existing one's).
pub fn wanted(ns: Option<&Namespace>, existing: Option<&ConfigMap>, ca: &str) -> Option<ConfigMap> {
    let ns = ns?;
    let terminating = crate::runtime::namespace_terminating(ns);
    if terminating {
        return None;
    }
    let data = [("ca.crt".to_string(), ca.to_string())].into();
    let annotation = (
        "kubernetes.io/description".to_string(),
        DESCRIPTION.to_string(),
    );
    match existing {
        Some(cm) if cm.data == data && cm.metadata().annotations.contains_key(&annotation.0) => {
            None
        }
        Some(cm) => {
            let mut cm = cm.clone();
            cm.data = data;
            cm.metadata
                .get_or_insert_with(Default::default)
                .annotations
                .insert(annotation.0, annotation.1);
            Some(cm)
        }
        None => Some(ConfigMap {
            metadata: Some(ObjectMeta {
                name: NAME.into(),
                namespace: ns.metadata().name.clone(),
                annotations: [annotation].into(),
                ..Default::default()
            }),
            data,
            ..Default::default()
        }),
    }
}

/// Start the publisher with the CA the client trusts (none: not started).
pub fn start(client: Client, rl: RateLimit, workers: usize) -> Option<Arc<Publisher<ConfigMap>>> {
    let ca = coxswain_client::config::installed_as("controller-manager")
        .map(|c| c.ca_pem)
        .filter(|c| !c.is_empty())?;
    Some(ns_publisher::start(
        client,
        rl,
        workers,
        Spec {
            controller: "root_ca_cert_publisher",
            object: NAME,
            wanted: Box::new(move |ns, existing| wanted(ns, existing, &ca)),
        },
    ))
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
    fn every_active_namespace_gets_the_ca_and_keeps_it_current() {
        let cm = wanted(Some(&ns("team", "Active")), None, "CA1").expect("made");
        assert_eq!(cm.metadata().name, NAME);
        assert_eq!(cm.data["ca.crt"], "CA1");
        assert!(wanted(Some(&ns("team", "Active")), Some(&cm), "CA1").is_none());
        let updated = wanted(Some(&ns("team", "Active")), Some(&cm), "CA2").expect("updated");
        assert_eq!(updated.data["ca.crt"], "CA2");
        assert!(wanted(Some(&ns("team", "Terminating")), None, "CA1").is_none());
        assert!(wanted(None, None, "CA1").is_none());
    }
}
