//! Where the plugin reads claims, volumes and classes: the scheduler's informer caches, or fixed
//! objects in tests.
use std::fmt;
use std::sync::Arc;

use coxswain_api::v1;

/// Where the plugin reads claims, volumes and classes.
pub trait VolumeLister: Send + Sync {
    fn claim(&self, namespace: &str, name: &str) -> Option<Arc<v1::PersistentVolumeClaim>>;
    fn volume(&self, name: &str) -> Option<Arc<v1::PersistentVolume>>;
    fn volumes(&self) -> Vec<Arc<v1::PersistentVolume>>;
    fn class(&self, name: &str) -> Option<Arc<v1::StorageClass>>;
}

/// The lister the snapshot carries.
#[derive(Clone)]
pub struct Volumes(pub Arc<dyn VolumeLister>);

impl fmt::Debug for Volumes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Volumes")
    }
}

/// A lister over fixed objects (tests, dry runs).
#[derive(Default)]
pub struct StaticVolumes {
    pub claims: Vec<Arc<v1::PersistentVolumeClaim>>,
    pub volumes: Vec<Arc<v1::PersistentVolume>>,
    pub classes: Vec<Arc<v1::StorageClass>>,
}

pub(super) fn meta_of(m: &Option<v1::ObjectMeta>) -> (&str, &str) {
    m.as_ref()
        .map_or(("", ""), |m| (m.namespace.as_str(), m.name.as_str()))
}

impl VolumeLister for StaticVolumes {
    fn claim(&self, namespace: &str, name: &str) -> Option<Arc<v1::PersistentVolumeClaim>> {
        self.claims
            .iter()
            .find(|c| meta_of(&c.metadata) == (namespace, name))
            .cloned()
    }
    fn volume(&self, name: &str) -> Option<Arc<v1::PersistentVolume>> {
        self.volumes
            .iter()
            .find(|v| meta_of(&v.metadata).1 == name)
            .cloned()
    }
    fn volumes(&self) -> Vec<Arc<v1::PersistentVolume>> {
        self.volumes.clone()
    }
    fn class(&self, name: &str) -> Option<Arc<v1::StorageClass>> {
        self.classes
            .iter()
            .find(|c| meta_of(&c.metadata).1 == name)
            .cloned()
    }
}

/// A lister over the scheduler's informer caches.
#[derive(Clone)]
pub struct InformerVolumes {
    pub claims: coxswain_client::Cache<v1::PersistentVolumeClaim>,
    pub volumes: coxswain_client::Cache<v1::PersistentVolume>,
    pub classes: coxswain_client::Cache<v1::StorageClass>,
}

impl InformerVolumes {
    pub fn stop(&self) {
        self.claims.stop();
        self.volumes.stop();
        self.classes.stop();
    }
}

impl VolumeLister for InformerVolumes {
    fn claim(&self, namespace: &str, name: &str) -> Option<Arc<v1::PersistentVolumeClaim>> {
        self.claims.get(namespace, name)
    }
    fn volume(&self, name: &str) -> Option<Arc<v1::PersistentVolume>> {
        self.volumes.get("", name)
    }
    fn volumes(&self) -> Vec<Arc<v1::PersistentVolume>> {
        self.volumes.list()
    }
    fn class(&self, name: &str) -> Option<Arc<v1::StorageClass>> {
        self.classes.get("", name)
    }
}
