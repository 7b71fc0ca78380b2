//! Service address allocation, as the API server's registry does it: a ClusterIP from the
//! service range (`--service-cluster-ip-range`, 10.96.0.0/12 by default; its first address
//! reserved for the `kubernetes` Service) and NodePorts from 30000–32767, both unique across the
//! cluster.
//!
//! What is taken is a bitmap per range, stored beside the objects as upstream's RangeAllocation
//! records (`/registry/ranges/serviceips`, `/registry/ranges/servicenodeports`: the range and
//! the bitmap). The store writes the bitmaps in the same compare-and-swap transaction as the
//! Service that claims or frees a value, guarded by their mod_revisions, so several store
//! replicas on one etcd never hand out one address twice and nothing leaks when a write fails:
//! a replica that lost the race re-reads the bitmaps and allocates again. A missing or
//! mismatched record (first start, or a changed range) is rebuilt from the Services, as
//! upstream's repair controller does. Pure functions here; the store does the transactions.
use std::collections::HashSet;
use std::net::Ipv4Addr;

use bytes::Bytes;
use coxswain_api::error::FieldError;
use coxswain_api::v1;
use prost::Message;

/// Where the allocators' RangeAllocation records live (not objects: the cache keeps them apart).
pub const RANGES_PREFIX: &str = "/registry/ranges/";
/// The ClusterIP bitmap.
pub const SERVICE_IPS_KEY: &str = "/registry/ranges/serviceips";
/// The NodePort bitmap.
pub const NODE_PORTS_KEY: &str = "/registry/ranges/servicenodeports";

/// upstream's `RangeAllocation` (core/v1) without its metadata: the range it covers and the
/// bitmap of what is taken (bit i: byte i/8, bit i%8; trailing zero bytes trimmed).
#[derive(Clone, PartialEq, prost::Message)]
struct RangeAllocation {
    #[prost(string, tag = "2")]
    range: String,
    #[prost(bytes = "vec", tag = "3")]
    data: Vec<u8>,
}

/// A fixed-size bitmap of taken offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    size: u32,
    bits: Vec<u8>,
}

impl Bitmap {
    pub fn new(size: u32) -> Bitmap {
        Bitmap {
            size,
            bits: vec![0; size.div_ceil(8) as usize],
        }
    }

    pub fn has(&self, i: u32) -> bool {
        i < self.size && self.bits[(i / 8) as usize] & (1 << (i % 8)) != 0
    }

    pub fn set(&mut self, i: u32) {
        if i < self.size {
            self.bits[(i / 8) as usize] |= 1 << (i % 8);
        }
    }

    pub fn clear(&mut self, i: u32) {
        if i < self.size {
            self.bits[(i / 8) as usize] &= !(1 << (i % 8));
        }
    }

    pub fn count(&self) -> u32 {
        self.bits.iter().map(|b| b.count_ones()).sum()
    }

    /// The first free offset in `lo..hi` at or after `lo + start % (hi - lo)`, wrapping around
    /// (upstream's random-scan strategy). Full bytes are skipped whole.
    pub fn find_free(&self, lo: u32, hi: u32, start: u32) -> Option<u32> {
        let hi = hi.min(self.size);
        if lo >= hi {
            return None;
        }
        let first = lo + start % (hi - lo);
        self.scan(first, hi).or_else(|| self.scan(lo, first))
    }

    fn scan(&self, from: u32, to: u32) -> Option<u32> {
        let mut i = from;
        while i < to {
            if i.is_multiple_of(8) && i + 8 <= to && self.bits[(i / 8) as usize] == 0xff {
                i += 8;
                continue;
            }
            if !self.has(i) {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    /// The stored record for this bitmap over `range`.
    pub fn encode(&self, range: &str) -> Bytes {
        let used = self.bits.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
        Bytes::from(
            RangeAllocation {
                range: range.to_string(),
                data: self.bits[..used].to_vec(),
            }
            .encode_to_vec(),
        )
    }

    /// A stored record, if it covers `range` with `size` offsets (None: rebuild it).
    pub fn decode(raw: &[u8], range: &str, size: u32) -> Option<Bitmap> {
        let r = RangeAllocation::decode(raw).ok()?;
        let mut b = Bitmap::new(size);
        if r.range != range || r.data.len() > b.bits.len() {
            return None;
        }
        b.bits[..r.data.len()].copy_from_slice(&r.data);
        Some(b)
    }
}

/// An IPv4 service range (`--service-cluster-ip-range`), e.g. 10.96.0.0/12.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceRange {
    base: u32,
    prefix: u8,
}

impl ServiceRange {
    /// Kubernetes' usual default, 10.96.0.0/12.
    pub const DEFAULT: ServiceRange = ServiceRange {
        base: u32::from_be_bytes([10, 96, 0, 0]),
        prefix: 12,
    };

    /// `a.b.c.d/n` with 12 <= n <= 30 (upstream's limit: the bitmap of a /12 is 128 KiB) and
    /// no host bits set.
    pub fn parse(s: &str) -> Result<ServiceRange, String> {
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR (a.b.c.d/n)"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("{s:?}: {ip:?} is not an IPv4 address"))?;
        let prefix: u8 = len
            .parse()
            .map_err(|_| format!("{s:?}: {len:?} is not a prefix length"))?;
        if !(12..=30).contains(&prefix) {
            return Err(format!(
                "{s:?}: the prefix length must be 12..30 (a larger range is too large to allocate from)"
            ));
        }
        let r = ServiceRange {
            base: u32::from(ip),
            prefix,
        };
        if r.base & (r.size() - 1) != 0 {
            return Err(format!(
                "{s:?} has host bits set (the network is {}/{prefix})",
                Ipv4Addr::from(r.base & !(r.size() - 1))
            ));
        }
        Ok(r)
    }

    pub fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base)
    }

    /// The first usable address: the `kubernetes` Service's ClusterIP.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (self.base..self.base + self.size()).contains(&u32::from(ip))
    }
}

impl Default for ServiceRange {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl std::fmt::Display for ServiceRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

impl std::str::FromStr for ServiceRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

const NODE_PORTS: std::ops::RangeInclusive<i32> = 30000..=32767;
/// The NodePort range as upstream's RangeAllocation names it.
const NODE_PORT_RANGE: &str = "30000-32767";

fn node_port_span() -> u32 {
    (*NODE_PORTS.end() - *NODE_PORTS.start() + 1) as u32
}

/// What is taken: the ClusterIP bitmap over the service range and the NodePort bitmap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    range: ServiceRange,
    pub ips: Bitmap,
    pub node_ports: Bitmap,
}

impl Taken {
    pub fn new(range: ServiceRange) -> Taken {
        Taken {
            range,
            ips: Bitmap::new(range.size()),
            node_ports: Bitmap::new(node_port_span()),
        }
    }

    /// The ClusterIP bitmap from its stored record; None when the record is missing or covers
    /// another range (the caller rebuilds it from the Services).
    pub fn decode_ips(range: ServiceRange, raw: Option<&[u8]>) -> Option<Bitmap> {
        Bitmap::decode(raw?, &range.to_string(), range.size())
    }

    /// The NodePort bitmap from its stored record, as `decode_ips`.
    pub fn decode_node_ports(raw: Option<&[u8]>) -> Option<Bitmap> {
        Bitmap::decode(raw?, NODE_PORT_RANGE, node_port_span())
    }

    pub fn encode_ips(&self) -> Bytes {
        self.ips.encode(&self.range.to_string())
    }

    pub fn encode_node_ports(&self) -> Bytes {
        self.node_ports.encode(NODE_PORT_RANGE)
    }

    fn ip_offset(&self, ip: Ipv4Addr) -> Option<u32> {
        self.range
            .contains(ip)
            .then(|| u32::from(ip) - self.range.base)
    }

    fn port_offset(port: i32) -> Option<u32> {
        NODE_PORTS
            .contains(&port)
            .then(|| (port - *NODE_PORTS.start()) as u32)
    }

    pub fn has_ip(&self, ip: Ipv4Addr) -> bool {
        self.ip_offset(ip).is_some_and(|o| self.ips.has(o))
    }

    pub fn has_node_port(&self, port: i32) -> bool {
        Self::port_offset(port).is_some_and(|o| self.node_ports.has(o))
    }

    /// The offsets `svc` holds: its ClusterIP's, its NodePorts'.
    fn held(&self, svc: &v1::Service) -> (Option<u32>, Vec<u32>) {
        let Some(spec) = &svc.spec else {
            return (None, Vec::new());
        };
        let ip = spec
            .cluster_ip
            .parse::<Ipv4Addr>()
            .ok()
            .and_then(|a| self.ip_offset(a));
        let ports = spec
            .ports
            .iter()
            .filter_map(|p| Self::port_offset(p.node_port))
            .collect();
        (ip, ports)
    }

    /// Mark what `svc` holds as taken.
    pub fn add(&mut self, svc: &v1::Service) {
        let (ip, ports) = self.held(svc);
        ip.into_iter().for_each(|o| self.ips.set(o));
        ports.into_iter().for_each(|o| self.node_ports.set(o));
    }

    /// Free what `svc` held.
    pub fn remove(&mut self, svc: &v1::Service) {
        let (ip, ports) = self.held(svc);
        ip.into_iter().for_each(|o| self.ips.clear(o));
        ports.into_iter().for_each(|o| self.node_ports.clear(o));
    }
}

fn wants_cluster_ip(spec: &v1::ServiceSpec) -> bool {
    spec.r#type != "ExternalName" && spec.cluster_ip != "None"
}

fn wants_node_ports(spec: &v1::ServiceSpec) -> bool {
    matches!(spec.r#type.as_str(), "NodePort" | "LoadBalancer")
}

/// Fill in `svc`'s ClusterIP and NodePorts: kept from `old` on update, checked when the user
/// gave them, allocated otherwise. `start` picks where the search for a free value begins
/// (random in production, fixed in tests).
pub fn allocate(
    svc: &mut v1::Service,
    old: Option<&v1::Service>,
    taken: &Taken,
    range: &ServiceRange,
    start: u32,
) -> Result<(), Vec<FieldError>> {
    let Some(spec) = svc.spec.as_mut() else {
        return Ok(());
    };
    let old_spec = old.and_then(|o| o.spec.as_ref());
    let mut errs = Vec::new();
    if wants_cluster_ip(spec) {
        if spec.cluster_ip.is_empty() {
            if let Some(o) = old_spec.filter(|o| !o.cluster_ip.is_empty()) {
                spec.cluster_ip = o.cluster_ip.clone();
            }
        }
        let unchanged = old_spec.is_some_and(|o| o.cluster_ip == spec.cluster_ip);
        if spec.cluster_ip.is_empty() {
            // 0 is the network address, 1 the API service's, the last the broadcast address;
            // search the rest from `start`.
            let found = taken
                .ips
                .find_free(2, range.size() - 1, start)
                .map(|off| Ipv4Addr::from(range.base + off));
            match found {
                Some(ip) => spec.cluster_ip = ip.to_string(),
                None => errs.push(FieldError::new(
                    "spec.clusterIP",
                    "Internal error: range is full",
                )),
            }
        } else if !unchanged {
            match spec.cluster_ip.parse::<Ipv4Addr>() {
                Ok(ip) if !range.contains(ip) => errs.push(FieldError::new(
                    "spec.clusterIP",
                    format!(
                        "Invalid value: {:?}: provided IP is not in the valid range. The range of valid IPs is {range}",
                        spec.cluster_ip
                    ),
                )),
                Ok(ip) if taken.has_ip(ip) => errs.push(FieldError::new(
                    "spec.clusterIP",
                    format!("Invalid value: {:?}: provided IP is already allocated", spec.cluster_ip),
                )),
                _ => {}
            }
        }
        if !spec.cluster_ip.is_empty() {
            spec.cluster_ips = vec![spec.cluster_ip.clone()];
        }
    } else if spec.cluster_ip == "None" {
        spec.cluster_ips = vec!["None".into()];
    }
    if wants_node_ports(spec) {
        // This Service's own ports count as taken for its next port.
        let mut ports = taken.node_ports.clone();
        let mut used: HashSet<i32> = HashSet::new();
        for (i, port) in spec.ports.iter_mut().enumerate() {
            if port.node_port == 0 {
                // An update keeps the port's existing nodePort.
                if let Some(o) = old_spec.and_then(|o| {
                    o.ports
                        .iter()
                        .find(|p| p.port == port.port && p.protocol == port.protocol)
                }) {
                    port.node_port = o.node_port;
                }
            }
            let kept =
                old_spec.is_some_and(|o| o.ports.iter().any(|p| p.node_port == port.node_port));
            if port.node_port == 0 {
                let found = ports
                    .find_free(0, node_port_span(), start)
                    .map(|off| *NODE_PORTS.start() + off as i32);
                match found {
                    Some(p) => port.node_port = p,
                    None => errs.push(FieldError::new(
                        format!("spec.ports[{i}].nodePort"),
                        "Internal error: range is full",
                    )),
                }
            } else if (!kept && taken.has_node_port(port.node_port))
                || used.contains(&port.node_port)
            {
                errs.push(FieldError::new(
                    format!("spec.ports[{i}].nodePort"),
                    format!(
                        "Invalid value: {}: provided port is already allocated",
                        port.node_port
                    ),
                ));
            }
            used.insert(port.node_port);
            if let Some(o) = Taken::port_offset(port.node_port) {
                ports.set(o);
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(typ: &str, cluster_ip: &str, node_ports: &[i32]) -> v1::Service {
        v1::Service {
            spec: Some(v1::ServiceSpec {
                r#type: typ.into(),
                cluster_ip: cluster_ip.into(),
                ports: node_ports
                    .iter()
                    .enumerate()
                    .map(|(i, np)| v1::ServicePort {
                        port: 80 + i as i32,
                        protocol: "TCP".into(),
                        node_port: *np,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn allocates_a_free_cluster_ip_and_node_port() {
        let mut taken = Taken::new(ServiceRange::DEFAULT);
        taken.add(&svc("ClusterIP", "10.96.0.2", &[]));
        taken.add(&svc("NodePort", "10.96.0.3", &[30000]));
        let mut s = svc("NodePort", "", &[0]);
        allocate(&mut s, None, &taken, &ServiceRange::DEFAULT, 0).expect("allocates");
        let spec = s.spec.expect("spec");
        assert_eq!(spec.cluster_ip, "10.96.0.4");
        assert_eq!(spec.cluster_ips, vec!["10.96.0.4"]);
        assert_eq!(spec.ports[0].node_port, 30001);
    }

    #[test]
    fn headless_and_external_name_get_no_ip() {
        let mut h = svc("ClusterIP", "None", &[]);
        allocate(
            &mut h,
            None,
            &Taken::new(ServiceRange::DEFAULT),
            &ServiceRange::DEFAULT,
            7,
        )
        .expect("ok");
        assert_eq!(h.spec.expect("spec").cluster_ip, "None");
        let mut e = svc("ExternalName", "", &[]);
        allocate(
            &mut e,
            None,
            &Taken::new(ServiceRange::DEFAULT),
            &ServiceRange::DEFAULT,
            7,
        )
        .expect("ok");
        assert_eq!(e.spec.expect("spec").cluster_ip, "");
    }

    #[test]
    fn requested_values_are_checked() {
        let mut taken = Taken::new(ServiceRange::DEFAULT);
        taken.add(&svc("NodePort", "10.96.0.10", &[31503]));
        let mut dup = svc("NodePort", "10.96.0.10", &[31503]);
        let errs =
            allocate(&mut dup, None, &taken, &ServiceRange::DEFAULT, 0).expect_err("conflicts");
        assert!(errs
            .iter()
            .any(|e| e.path == "spec.clusterIP" && e.message.contains("already allocated")));
        assert!(
            errs.iter()
                .any(|e| e.path == "spec.ports[0].nodePort"
                    && e.message.contains("already allocated"))
        );
        let mut out = svc("ClusterIP", "192.168.0.1", &[]);
        assert!(allocate(
            &mut out,
            None,
            &Taken::new(ServiceRange::DEFAULT),
            &ServiceRange::DEFAULT,
            0
        )
        .is_err());
    }

    #[test]
    fn updates_keep_what_was_allocated() {
        let old = svc("NodePort", "10.96.0.9", &[31000]);
        let mut new = svc("NodePort", "", &[0]);
        let mut taken = Taken::new(ServiceRange::DEFAULT);
        taken.add(&svc("ClusterIP", "10.96.0.11", &[]));
        allocate(&mut new, Some(&old), &taken, &ServiceRange::DEFAULT, 0).expect("ok");
        let spec = new.spec.expect("spec");
        assert_eq!(
            (spec.cluster_ip.as_str(), spec.ports[0].node_port),
            ("10.96.0.9", 31000)
        );
    }

    #[test]
    fn configurable_ranges() {
        let r = ServiceRange::parse("127.255.42.0/24").expect("parses");
        assert_eq!(r.first(), Ipv4Addr::new(127, 255, 42, 1));
        assert_eq!(r.to_string(), "127.255.42.0/24");
        let mut taken = Taken::new(r);
        let mut seen = HashSet::new();
        // 256 addresses: network, .1 (kubernetes), broadcast are never handed out.
        for i in 0..253u32 {
            let mut s = svc("ClusterIP", "", &[]);
            allocate(&mut s, None, &taken, &r, i * 7).expect("allocates");
            let ip: Ipv4Addr = s
                .spec
                .as_ref()
                .expect("spec")
                .cluster_ip
                .parse()
                .expect("ip");
            assert!(
                r.contains(ip) && ip.octets()[3] >= 2 && ip.octets()[3] <= 254,
                "{ip}"
            );
            assert!(seen.insert(ip));
            taken.add(&s);
        }
        let mut full = svc("ClusterIP", "", &[]);
        let errs = allocate(&mut full, None, &taken, &r, 0).expect_err("full");
        assert!(errs[0].message.contains("range is full"));
        let mut out = svc("ClusterIP", "10.96.0.5", &[]);
        let errs = allocate(&mut out, None, &Taken::new(r), &r, 0).expect_err("outside");
        assert!(
            errs[0].message.contains("127.255.42.0/24"),
            "{}",
            errs[0].message
        );
        assert!(ServiceRange::parse("127.255.42.1/24").is_err());
        assert!(ServiceRange::parse("127.255.42.0/31").is_err());
        assert!(ServiceRange::parse("nope").is_err());
    }

    #[test]
    fn bitmaps_round_trip_and_free_what_was_taken() {
        let r = ServiceRange::parse("10.0.0.0/16").expect("parses");
        let mut t = Taken::new(r);
        let a = svc("NodePort", "10.0.3.7", &[30005, 32767]);
        t.add(&a);
        assert!(t.has_ip(Ipv4Addr::new(10, 0, 3, 7)) && t.has_node_port(32767));
        let ips = Taken::decode_ips(r, Some(&t.encode_ips())).expect("decodes");
        let ports = Taken::decode_node_ports(Some(&t.encode_node_ports())).expect("decodes");
        assert_eq!((&ips, &ports), (&t.ips, &t.node_ports));
        assert_eq!((ips.count(), ports.count()), (1, 2));
        // Trailing zeros are not stored; a record of another range is rebuilt.
        assert!(t.encode_ips().len() < 3 * 256 + 16);
        let other = ServiceRange::parse("10.1.0.0/16").expect("parses");
        assert!(Taken::decode_ips(other, Some(&t.encode_ips())).is_none());
        assert!(Taken::decode_ips(r, None).is_none());
        t.remove(&a);
        assert_eq!((t.ips.count(), t.node_ports.count()), (0, 0));
    }

    #[test]
    fn find_free_wraps_and_skips_full_bytes() {
        let mut b = Bitmap::new(40);
        for i in 0..40 {
            if i != 3 {
                b.set(i);
            }
        }
        assert_eq!(b.find_free(0, 40, 20), Some(3));
        b.set(3);
        assert_eq!(b.find_free(0, 40, 0), None);
        b.clear(39);
        assert_eq!(b.find_free(2, 39, 5), None, "39 is outside 2..39");
        assert_eq!(b.find_free(2, 40, 5), Some(39));
    }
}
