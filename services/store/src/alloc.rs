//! Service address allocation, as the API server's registry does it: a ClusterIP from the
//! service range (`--service-cluster-ip-range`, 10.96.0.0/12 by default; its first address
//! reserved for the `kubernetes` Service) and NodePorts from 30000–32767, both unique across the
//! cluster. Pure functions; the store serializes their use.
use std::collections::HashSet;
use std::net::Ipv4Addr;

use coxswain_api::error::FieldError;
use coxswain_api::v1;

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

    /// `a.b.c.d/n` with 8 <= n <= 30 and no host bits set.
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
        if !(8..=30).contains(&prefix) {
            return Err(format!("{s:?}: the prefix length must be 8..30"));
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

    fn size(&self) -> u32 {
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

/// Addresses and ports already in use by other services.
#[derive(Debug, Default)]
pub struct Taken {
    pub ips: HashSet<Ipv4Addr>,
    pub node_ports: HashSet<i32>,
}

impl Taken {
    pub fn add(&mut self, svc: &v1::Service) {
        let Some(spec) = &svc.spec else { return };
        if let Ok(ip) = spec.cluster_ip.parse::<Ipv4Addr>() {
            self.ips.insert(ip);
        }
        for p in &spec.ports {
            if p.node_port != 0 {
                self.node_ports.insert(p.node_port);
            }
        }
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
            let usable = range.size() - 3;
            let found = (0..usable)
                .map(|i| Ipv4Addr::from(range.base + 2 + (start.wrapping_add(i)) % usable))
                .find(|ip| !taken.ips.contains(ip));
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
                Ok(ip) if taken.ips.contains(&ip) => errs.push(FieldError::new(
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
                let span = (*NODE_PORTS.end() - *NODE_PORTS.start() + 1) as u32;
                let found = (0..span)
                    .map(|k| *NODE_PORTS.start() + (start.wrapping_add(k) % span) as i32)
                    .find(|p| !taken.node_ports.contains(p) && !used.contains(p));
                match found {
                    Some(p) => port.node_port = p,
                    None => errs.push(FieldError::new(
                        format!("spec.ports[{i}].nodePort"),
                        "Internal error: range is full",
                    )),
                }
            } else if (!kept && taken.node_ports.contains(&port.node_port))
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
        let mut taken = Taken::default();
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
        allocate(&mut h, None, &Taken::default(), &ServiceRange::DEFAULT, 7).expect("ok");
        assert_eq!(h.spec.expect("spec").cluster_ip, "None");
        let mut e = svc("ExternalName", "", &[]);
        allocate(&mut e, None, &Taken::default(), &ServiceRange::DEFAULT, 7).expect("ok");
        assert_eq!(e.spec.expect("spec").cluster_ip, "");
    }

    #[test]
    fn requested_values_are_checked() {
        let mut taken = Taken::default();
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
        assert!(allocate(&mut out, None, &Taken::default(), &ServiceRange::DEFAULT, 0).is_err());
    }

    #[test]
    fn updates_keep_what_was_allocated() {
        let old = svc("NodePort", "10.96.0.9", &[31000]);
        let mut new = svc("NodePort", "", &[0]);
        let mut taken = Taken::default();
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
        let mut taken = Taken::default();
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
        let errs = allocate(&mut out, None, &Taken::default(), &r, 0).expect_err("outside");
        assert!(
            errs[0].message.contains("127.255.42.0/24"),
            "{}",
            errs[0].message
        );
        assert!(ServiceRange::parse("127.255.42.1/24").is_err());
        assert!(ServiceRange::parse("127.255.42.0/31").is_err());
        assert!(ServiceRange::parse("nope").is_err());
    }
}
