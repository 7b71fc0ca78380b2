//! Writes in flight, as the watch cache sees them: the request id and the prebuilt entry a
//! write leaves for the change that commits it.
use std::sync::Arc;

use bytes::Bytes;

use super::{Cache, Stored};

/// What a write in flight leaves for the change that commits it.
#[derive(Default)]
pub(super) struct Pending {
    /// A write carrying a request id: (the mod_revision it compares against, the id). The
    /// change that replaces exactly that revision takes it.
    id: Option<(i64, Arc<str>)>,
    /// The entry the writer built from its decoded object ([`Stored::prebuilt`]), its `bytes`
    /// the exact value written. The change of that key with exactly those bytes takes it
    /// instead of decoding them.
    built: Option<Stored>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.id.is_none() && self.built.is_none()
    }
}

/// At most this many request ids wait for their writes (one per write in flight).
pub(super) const MAX_PENDING_IDS: usize = 4096;

impl Cache {
    /// A write of backend `key` over its revision `prev` (0: absent) carries request `id`: the
    /// change that commits it is stamped with the id (see [`Stored::request_id`]).
    pub fn expect_request_id(&mut self, key: &str, prev: i64, id: &Arc<str>) {
        if let Some(p) = self.pending_slot(key) {
            p.id = Some((prev, id.clone()));
        }
    }

    /// The pending slot of `key`, made if there is room (one per write in flight).
    fn pending_slot(&mut self, key: &str) -> Option<&mut Pending> {
        if self.pending.len() >= MAX_PENDING_IDS && !self.pending.contains_key(key) {
            return None;
        }
        Some(self.pending.entry(key.to_string()).or_default())
    }

    /// Take what `pick` takes from `key`'s slot, dropping the slot once it is empty.
    fn take_pending<T>(
        &mut self,
        key: &str,
        pick: impl FnOnce(&mut Pending) -> Option<T>,
    ) -> Option<T> {
        if self.pending.is_empty() {
            return None;
        }
        let p = self.pending.get_mut(key)?;
        let taken = pick(p);
        if p.is_empty() {
            self.pending.remove(key);
        }
        taken
    }

    /// The write of `key` carrying `id` is over (committed and applied, or failed).
    pub fn forget_request_id(&mut self, key: &str, id: &Arc<str>) {
        self.take_pending(key, |p| p.id.take_if(|(_, i)| Arc::ptr_eq(i, id)));
    }

    /// A write of backend `key` with the value `built.bytes` is in flight, and `built` is the
    /// entry for it ([`Stored::prebuilt`]).
    pub fn expect_built(&mut self, key: &str, built: Stored) {
        if let Some(p) = self.pending_slot(key) {
            p.built = Some(built);
        }
    }

    /// The write of `key` with value `raw` is over (committed and applied, or failed).
    pub fn forget_built(&mut self, key: &str, raw: &Bytes) {
        self.take_pending(key, |p| {
            p.built
                .take_if(|b| b.bytes.as_ptr() == raw.as_ptr() && b.bytes.len() == raw.len())
        });
    }

    /// The entry built by the writer of this very value of `key`, if one waits (the bytes
    /// must be equal: a racing writer's entry for another value is not taken).
    pub(super) fn take_built(&mut self, key: &str, raw: &Bytes) -> Option<Stored> {
        self.take_pending(key, |p| {
            p.built.take_if(|b| {
                (b.bytes.as_ptr() == raw.as_ptr() && b.bytes.len() == raw.len()) || b.bytes == *raw
            })
        })
    }

    /// The id waiting for the change of `key` that replaces revision `prev` (0: a create).
    pub(super) fn take_request_id(&mut self, key: &str, prev: i64) -> Option<Arc<str>> {
        self.take_pending(key, |p| p.id.take_if(|(p, _)| *p == prev).map(|(_, id)| id))
    }
}
