//! The store's RBAC snapshot, re-read only when an RBAC object changed.

use coxswain_api::{Kind, Object};

use super::Snapshot;

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
