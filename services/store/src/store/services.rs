//! Services' ClusterIPs and NodePorts: the allocators' bitmaps as the cache holds them, and the
//! ops that write them in the same transaction as the Service.
use super::*;

/// How many times in a row a Service write re-allocates after losing a race on the bitmaps.
pub(super) const RANGE_ATTEMPTS: u32 = 64;

/// The allocators' bitmaps and their stored records (bytes, mod_revision; None: not stored).
pub(super) struct Ranges {
    pub(super) taken: Taken,
    pub(super) ips: Option<(Bytes, i64)>,
    pub(super) ports: Option<(Bytes, i64)>,
}

impl Store {
    /// The allocators' bitmaps as this replica's cache holds them, with the mod_revisions a
    /// write of them compares against. A record that is missing (first start) or covers another
    /// range is rebuilt from the cached Services, as upstream's repair controller does; its
    /// write then compares against the revision it was read at, so only one replica's rebuild
    /// lands.
    pub(super) fn service_ranges(&self) -> Ranges {
        let range = self.inner.config.service_cluster_ip_range;
        let c = self.cache();
        let ips = c.range_allocation(SERVICE_IPS_KEY);
        let ports = c.range_allocation(NODE_PORTS_KEY);
        let ips_map = Taken::decode_ips(range, ips.as_ref().map(|(b, _)| &b[..]));
        let ports_map = Taken::decode_node_ports(ports.as_ref().map(|(b, _)| &b[..]));
        let mut taken = Taken::new(range);
        if ips_map.is_none() || ports_map.is_none() {
            for s in c.range(Kind::Service, None, None) {
                if let Object::Service(svc) = s.decode() {
                    taken.add(&svc);
                }
            }
        }
        if let Some(b) = ips_map {
            taken.ips = b;
        }
        if let Some(b) = ports_map {
            taken.node_ports = b;
        }
        Ranges { taken, ips, ports }
    }

    /// Add to `txn` the bitmap writes that replacing `old` by `new` (None: absent) makes, each
    /// guarded by the revision the bitmap was read at. Nothing for bitmaps that stay the same.
    pub(super) fn add_range_ops(
        ranges: &Ranges,
        txn: &mut Txn,
        old: Option<&Object>,
        new: Option<&Object>,
    ) {
        let mut t = ranges.taken.clone();
        if let Some(Object::Service(o)) = old {
            t.remove(o);
        }
        if let Some(Object::Service(n)) = new {
            t.add(n);
        }
        for (key, bytes, stored) in [
            (SERVICE_IPS_KEY, t.encode_ips(), &ranges.ips),
            (NODE_PORTS_KEY, t.encode_node_ports(), &ranges.ports),
        ] {
            if stored.as_ref().map(|(b, _)| b) != Some(&bytes) {
                txn.compares
                    .push((key.to_string(), stored.as_ref().map_or(0, |(_, r)| *r)));
                txn.ops.push(Op::Put {
                    key: key.to_string(),
                    value: bytes,
                });
            }
        }
    }

    /// Another writer (this or another replica) changed an allocator's bitmap first: allocate
    /// again from the new one, a bounded number of times.
    pub(super) fn range_conflict(r: &TxnResult, attempts: &mut u32) -> Result<bool> {
        match r {
            TxnResult::Conflict { key, .. } if key.starts_with(RANGES_PREFIX) => {
                *attempts += 1;
                if *attempts > RANGE_ATTEMPTS {
                    return Err(StoreError::Backend(BackendError::Unavailable(format!(
                        "the Service address allocators changed under {RANGE_ATTEMPTS} attempts in a row; retry"
                    ))));
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Whether the allocators' bitmaps in the backend moved past the revisions `ranges` was
    /// read at; if so, this replica's cache has caught up with them when this returns.
    ///
    /// With several store replicas on one etcd, a replica's cached bitmap can lag behind a
    /// release made through another replica (the watch has not delivered it yet), so a refusal
    /// from the cached bitmap ("range is full", "already allocated") may be stale. Upstream reads
    /// the bitmap from etcd on every allocation; we check only when an allocation fails, with a
    /// compare-only transaction on the cached revisions (no write, no new revision), and the
    /// caller allocates again when they moved.
    pub(super) async fn ranges_moved(&self, ranges: &Ranges) -> Result<bool> {
        let compares = [
            (SERVICE_IPS_KEY, &ranges.ips),
            (NODE_PORTS_KEY, &ranges.ports),
        ]
        .into_iter()
        .map(|(key, stored)| (key.to_string(), stored.as_ref().map_or(0, |(_, r)| *r)))
        .collect();
        let probe = Txn {
            compares,
            ops: Vec::new(),
        };
        Ok(matches!(
            self.commit(probe).await?,
            TxnResult::Conflict { .. }
        ))
    }

    /// An allocation from `ranges` failed with `err`: Ok(()) to allocate again (the bitmaps had
    /// moved, see [`Store::ranges_moved`]; bounded by `attempts`), else the refusal stands.
    pub(super) async fn retry_allocation(
        &self,
        ranges: &Ranges,
        attempts: &mut u32,
        err: StoreError,
    ) -> Result<()> {
        if *attempts >= RANGE_ATTEMPTS || !self.ranges_moved(ranges).await? {
            return Err(err);
        }
        *attempts += 1;
        Ok(())
    }

    /// Give a Service its ClusterIP and NodePorts (kept from `old` on update) from the
    /// bitmaps in `ranges`.
    pub(super) fn allocate_service(
        &self,
        obj: &mut Object,
        old: Option<&Object>,
        taken: &Taken,
    ) -> Result<()> {
        let name = obj.name().to_string();
        let Object::Service(svc) = obj else {
            return Ok(());
        };
        let old = match old {
            Some(Object::Service(o)) => Some(o),
            _ => None,
        };
        crate::alloc::allocate(
            svc,
            old,
            taken,
            &self.inner.config.service_cluster_ip_range,
            rand::random(),
        )
        .map_err(|errs| StoreError::Invalid {
            kind: Kind::Service,
            name,
            source: coxswain_api::Error::Invalid(errs),
        })
    }
}
