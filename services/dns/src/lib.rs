//! Cluster DNS: CoreDNS' kubernetes plugin over coxswain's Services, EndpointSlices and pods.
//!
//! - [`index`]: the in-memory view (namespaces, Services, EndpointSlices, pod IPs), updated one
//!   informer event at a time.
//! - [`records`]: the pure rules — a question in, an answer (or "not ours") out.
//! - [`server`]: the UDP and TCP loops (wire format by hickory-proto), truncation, EDNS.
//! - [`upstream`]: forwarding names outside the zone to the host's resolver, time-bounded.
//! - [`watch`]: informers feeding the index.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use hickory_proto::rr::{Name, RecordType};

pub mod index;
pub mod records;
pub mod server;
pub mod upstream;
pub mod watch;

pub use index::Index;
pub use records::{Outcome, PodMode, Zone};

/// The state every query reads: the index, the zone, whether the informers have synced.
pub struct Dns {
    index: RwLock<Index>,
    zone: Zone,
    synced: AtomicBool,
}

impl Dns {
    pub fn new(zone: Zone) -> Dns {
        Dns {
            index: RwLock::new(Index::default()),
            zone,
            synced: AtomicBool::new(false),
        }
    }

    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_synced(&self, v: bool) {
        self.synced.store(v, Ordering::Release);
    }

    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Answer one question (see [`records::Resolver::answer`]); `scratch` is reused between
    /// calls so the lookup itself allocates nothing for the name.
    pub fn answer(&self, qname: &Name, qtype: RecordType, scratch: &mut String) -> Outcome {
        let index = self.read();
        records::Resolver {
            index: &index,
            zone: &self.zone,
            synced: self.is_synced(),
        }
        .answer(qname, qtype, scratch)
    }
}
