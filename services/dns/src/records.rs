//! Answers one question from the [`Index`] the way CoreDNS' kubernetes plugin does
//! (`plugin/kubernetes` and `plugin/backend_lookup.go` upstream are the reference):
//!
//! - `<svc>.<ns>.svc.<zone>`: the ClusterIPs; a headless Service: one record per ready endpoint
//!   (NXDOMAIN when there is none); ExternalName: a CNAME.
//! - `<endpoint>.<svc>.<ns>.svc.<zone>`: the endpoint whose hostname (or dashed IP) matches.
//! - `_<port>._<proto>.<svc>.<ns>.svc.<zone>` SRV (port and protocol may be absent: any).
//! - `<a-b-c-d>.<ns>.pod.<zone>` (pod mode insecure / verified / disabled).
//! - PTR for ClusterIPs and endpoint addresses under in-addr.arpa / ip6.arpa.
//! - A name that does not exist: NXDOMAIN; one that exists without records of the type: NOERROR
//!   with an empty answer (NODATA). Both carry the zone's SOA in the authority section.
//!
//! Pure: no I/O, no clock. Names compare case-insensitively; the answer keeps the question's
//! spelling as owner name.
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::index::{Index, SvcKind};

/// The schema version `dns-version.<zone>` TXT answers (kubernetes/dns specification).
pub const SCHEMA_VERSION: &str = "1.1.0";

/// How `<ip>.<ns>.pod.<zone>` is answered (CoreDNS' `pods` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodMode {
    /// Never: NXDOMAIN.
    Disabled,
    /// Any well-formed IP in an existing namespace (kube-dns' behaviour; kubeadm's Corefile).
    Insecure,
    /// Only if a pod with that IP exists in that namespace.
    Verified,
}

/// The cluster zone and how answers are built.
#[derive(Debug, Clone)]
pub struct Zone {
    /// Lowercase, without the trailing dot ("cluster.local").
    domain: String,
    name: Name,
    pub ttl: u32,
    pub pods: PodMode,
}

impl Zone {
    pub fn new(domain: &str, ttl: u32, pods: PodMode) -> Result<Zone, String> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if domain.is_empty() {
            return Err("the cluster domain must not be empty".into());
        }
        let name = Name::from_ascii(format!("{domain}."))
            .map_err(|e| format!("invalid cluster domain {domain:?}: {e}"))?;
        Ok(Zone {
            domain,
            name,
            ttl,
            pods,
        })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The name relative to the zone ("" for the apex), or None outside it.
    fn relative<'a>(&self, lower: &'a str) -> Option<&'a str> {
        if lower == self.domain {
            return Some("");
        }
        let head = lower.strip_suffix(self.domain.as_str())?;
        head.strip_suffix('.')
    }

    fn soa(&self, serial: u32) -> Record {
        let mname = Name::from_ascii(format!("ns.dns.{}.", self.domain)).unwrap_or_default();
        let rname = Name::from_ascii(format!("hostmaster.{}.", self.domain)).unwrap_or_default();
        Record::from_rdata(
            self.name.clone(),
            self.ttl.min(300),
            RData::SOA(SOA::new(mname, rname, serial, 7200, 1800, 86400, self.ttl)),
        )
    }
}

/// What the server does with a question.
#[derive(Debug)]
pub enum Outcome {
    /// Outside the cluster zone (or a reverse name the cluster does not know): forward it to
    /// the upstream resolver, or refuse it.
    NotOurs,
    /// A question the zone refuses (zone transfers).
    Refused,
    Answer(Answer),
}

#[derive(Debug, Default)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    /// An ExternalName target outside the zone: a forwarding server appends its records of the
    /// question's type after the CNAME.
    pub chase: Option<Name>,
}

/// CoreDNS' name errors (errNoItems, errNsNotExposed, errInvalidRequest): all NXDOMAIN.
#[derive(Debug, PartialEq, Eq)]
struct NameError;

type Lookup<T> = Result<T, NameError>;

/// A parsed `...svc|pod.<zone>` name (CoreDNS' recordRequest).
#[derive(Debug, Default, PartialEq, Eq)]
struct Req<'a> {
    pod_or_svc: &'a str,
    namespace: &'a str,
    service: &'a str,
    endpoint: &'a str,
    port: &'a str,
    protocol: &'a str,
}

/// CoreDNS' parseRequest: None for the names that answer NODATA outright (apex, `svc`, `pod`).
fn parse(rel: &str) -> Lookup<Option<Req<'_>>> {
    if rel.is_empty() || rel == "svc" || rel == "pod" {
        return Ok(None);
    }
    let mut segs = rel.rsplit('.');
    let mut r = Req {
        pod_or_svc: segs.next().unwrap_or(""),
        ..Default::default()
    };
    if r.pod_or_svc != "pod" && r.pod_or_svc != "svc" {
        return Err(NameError);
    }
    let Some(ns) = segs.next() else {
        return Ok(Some(r));
    };
    r.namespace = ns;
    let Some(svc) = segs.next() else {
        return Ok(Some(r));
    };
    r.service = svc;
    match (segs.next(), segs.next(), segs.next()) {
        (None, _, _) => {}
        (Some(e), None, _) => r.endpoint = e,
        (Some(proto), Some(port), None) => {
            r.protocol = proto.strip_prefix('_').unwrap_or(proto);
            r.port = port.strip_prefix('_').unwrap_or(port);
        }
        _ => return Err(NameError),
    }
    Ok(Some(r))
}

/// An empty query part matches anything; otherwise case-insensitive equality.
fn matches(want: &str, have: &str) -> bool {
    want.is_empty() || want.eq_ignore_ascii_case(have)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Host<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

/// The name a record is known under (CoreDNS' msg.Service key), for SRV targets.
#[derive(Debug, Clone, Copy)]
enum Key<'a> {
    Svc(&'a str, &'a str),
    Endpoint(&'a str, &'a str, &'a str),
    /// `<ip>.<ns>.pod.<zone>`, named as asked.
    Pod,
}

#[derive(Debug, Clone, Copy)]
struct Item<'a> {
    host: Host<'a>,
    port: i32,
    key: Key<'a>,
}

impl Key<'_> {
    fn name(&self, zone: &Zone) -> Option<Name> {
        let d = &zone.domain;
        let s = match self {
            Key::Svc(ns, svc) => format!("{svc}.{ns}.svc.{d}."),
            Key::Endpoint(ns, svc, host) => format!("{host}.{svc}.{ns}.svc.{d}."),
            Key::Pod => return None,
        };
        Name::from_ascii(s).ok()
    }
}

/// Lowercase `name` into `out` without the trailing dot. Bytes that cannot occur in a
/// Kubernetes name (a '.' inside a label, non-ASCII) become '?', which matches nothing.
pub fn lowercase_into(name: &Name, out: &mut String) {
    out.clear();
    for (i, label) in name.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        for &b in label {
            out.push(if b.is_ascii() && b != b'.' && !b.is_ascii_control() {
                b.to_ascii_lowercase() as char
            } else {
                '?'
            });
        }
    }
}

/// The address a reverse name stands for (`4.3.2.1.in-addr.arpa`, 32 nibbles `.ip6.arpa`).
pub fn reverse_ip(lower: &str) -> Option<Option<IpAddr>> {
    if let Some(head) = lower.strip_suffix("in-addr.arpa") {
        let head = head.strip_suffix('.')?;
        let mut octets = [0u8; 4];
        let mut n = 0;
        for part in head.rsplit('.') {
            if n == 4 {
                return Some(None);
            }
            let Ok(o) = part.parse::<u8>() else {
                return Some(None);
            };
            if part.len() > 1 && part.starts_with('0') {
                return Some(None);
            }
            octets[n] = o;
            n += 1;
        }
        return Some((n == 4).then(|| IpAddr::from(octets)));
    }
    if let Some(head) = lower.strip_suffix("ip6.arpa") {
        let head = head.strip_suffix('.')?;
        let mut v: u128 = 0;
        let mut n = 0;
        for part in head.rsplit('.') {
            let d = match part.as_bytes() {
                [c] => (*c as char).to_digit(16),
                _ => None,
            };
            let Some(d) = d else {
                return Some(None);
            };
            if n == 32 {
                return Some(None);
            }
            v = (v << 4) | d as u128;
            n += 1;
        }
        return Some((n == 32).then(|| IpAddr::from(v.to_be_bytes())));
    }
    None
}

/// Answers questions from an index.
pub struct Resolver<'a> {
    pub index: &'a Index,
    pub zone: &'a Zone,
    /// Whether the informers have listed everything once; a name error before that is
    /// SERVFAIL (the answer could be wrong), as CoreDNS does.
    pub synced: bool,
}

impl<'a> Resolver<'a> {
    /// Answer `qname`/`qtype`. `scratch` is a reusable buffer for the lowercased name.
    pub fn answer(&self, qname: &Name, qtype: RecordType, scratch: &mut String) -> Outcome {
        lowercase_into(qname, scratch);
        let lower = scratch.as_str();
        if let Some(ip) = reverse_ip(lower) {
            // Reverse names the cluster does not know fall through to the upstream, as the
            // default Corefile's `fallthrough in-addr.arpa ip6.arpa`.
            let Some(ip) = ip else {
                return Outcome::NotOurs;
            };
            if qtype != RecordType::PTR {
                return Outcome::NotOurs;
            }
            let answers = self.reverse(qname, &ip);
            if answers.is_empty() {
                return Outcome::NotOurs;
            }
            return Outcome::Answer(Answer {
                answers,
                ..Default::default()
            });
        }
        let Some(rel) = self.zone.relative(lower) else {
            return Outcome::NotOurs;
        };
        let mut chase = None;
        let mut additionals = Vec::new();
        let result: Lookup<Vec<Record>> = match qtype {
            // `ns.dns.<zone>` (the SOA's name server) is the DNS Service itself.
            _ if rel == "ns.dns" => Ok(self.dns_addresses(qname, qtype)),
            RecordType::A | RecordType::AAAA => {
                let mut out = Vec::new();
                self.address(
                    qname,
                    rel,
                    qtype == RecordType::AAAA,
                    0,
                    &mut out,
                    &mut chase,
                )
                .map(|_| out)
            }
            RecordType::SRV => self.srv(qname, rel, &mut additionals),
            RecordType::CNAME => self.records(rel).map(|items| {
                items
                    .iter()
                    .take(1)
                    .filter_map(|it| match it.host {
                        Host::Name(t) => fqdn(t).map(|t| self.rec(qname, RData::CNAME(CNAME(t)))),
                        Host::Ip(_) => None,
                    })
                    .collect()
            }),
            RecordType::PTR => self.records(rel).map(|items| {
                let mut out: Vec<Record> = Vec::new();
                for it in &items {
                    if let Host::Name(t) = it.host {
                        if let Some(t) = fqdn(t) {
                            let r = self.rec(qname, RData::PTR(PTR(t)));
                            if !out.contains(&r) {
                                out.push(r);
                            }
                        }
                    }
                }
                out
            }),
            RecordType::TXT if rel == "dns-version" => Ok(vec![Record::from_rdata(
                qname.clone(),
                28800,
                RData::TXT(TXT::new(vec![SCHEMA_VERSION.to_string()])),
            )]),
            RecordType::SOA => Ok(if rel.is_empty() {
                vec![self.zone.soa(self.index.serial)]
            } else {
                Vec::new()
            }),
            RecordType::NS if rel.is_empty() => Ok(self.ns(&mut additionals)),
            RecordType::AXFR | RecordType::IXFR => return Outcome::Refused,
            // Any other type: a fake A lookup tells NODATA from NXDOMAIN.
            _ => self.records(rel).map(|_| Vec::new()),
        };
        let mut a = Answer::default();
        match result {
            Err(NameError) if !self.synced => a.rcode = ResponseCode::ServFail,
            Err(NameError) => {
                a.rcode = ResponseCode::NXDomain;
                a.authorities.push(self.zone.soa(self.index.serial));
            }
            Ok(answers) if answers.is_empty() => {
                a.authorities.push(self.zone.soa(self.index.serial));
            }
            Ok(answers) => {
                a.answers = answers;
                a.additionals = additionals;
                a.chase = chase;
            }
        }
        Outcome::Answer(a)
    }

    fn rec(&self, owner: &Name, data: RData) -> Record {
        Record::from_rdata(owner.clone(), self.zone.ttl, data)
    }

    /// CoreDNS' Records: the items a name stands for.
    fn records(&self, rel: &str) -> Lookup<Vec<Item<'a>>> {
        let Some(r) = parse(rel)? else {
            return Ok(Vec::new());
        };
        if !self.index.has_namespace(r.namespace) {
            return Err(NameError);
        }
        if r.pod_or_svc == "pod" {
            self.pods(&r)
        } else {
            self.services(&r)
        }
    }

    fn pods(&self, r: &Req<'_>) -> Lookup<Vec<Item<'a>>> {
        if self.zone.pods == PodMode::Disabled {
            return Err(NameError);
        }
        let pod = r.service;
        if pod.is_empty() {
            return Ok(Vec::new());
        }
        let parsed: Option<IpAddr> = if pod.matches('-').count() == 3 && !pod.contains("--") {
            pod.replace('-', ".").parse().ok()
        } else {
            pod.replace('-', ":").parse().ok()
        };
        let Some(ip) = parsed else {
            return Err(NameError);
        };
        if self.zone.pods == PodMode::Verified && !self.index.pod_has_ip(r.namespace, &ip) {
            return Err(NameError);
        }
        Ok(vec![Item {
            host: Host::Ip(ip),
            port: 0,
            key: Key::Pod,
        }])
    }

    fn services(&self, r: &Req<'_>) -> Lookup<Vec<Item<'a>>> {
        if r.service.is_empty() {
            return Ok(Vec::new());
        }
        let ix = self.index;
        let Some((ns, name, svc)) = ix.service_entry(r.namespace, r.service) else {
            return Err(NameError);
        };
        let mut found = false;
        let mut items = Vec::new();
        match &svc.kind {
            SvcKind::ExternalName(target) => {
                if r.endpoint.is_empty() && target.parse::<IpAddr>().is_err() {
                    found = true;
                    items.push(Item {
                        host: Host::Name(target),
                        port: 0,
                        key: Key::Svc(ns, name),
                    });
                }
            }
            kind if *kind == SvcKind::Headless || !r.endpoint.is_empty() => {
                for ss in ix.endpoint_subsets(ns, name) {
                    for addr in &ss.addresses {
                        if !r.endpoint.is_empty()
                            && !r.endpoint.eq_ignore_ascii_case(&addr.hostname)
                        {
                            continue;
                        }
                        for p in &ss.ports {
                            if !(matches(r.port, &p.name) && matches(r.protocol, &p.protocol)) {
                                continue;
                            }
                            found = true;
                            items.push(Item {
                                host: Host::Ip(addr.ip),
                                port: p.port,
                                key: Key::Endpoint(ns, name, &addr.hostname),
                            });
                        }
                    }
                }
            }
            SvcKind::ClusterIp(ips) => {
                for p in &svc.ports {
                    if !(matches(r.port, &p.name) && matches(r.protocol, &p.protocol)) {
                        continue;
                    }
                    found = true;
                    for ip in ips {
                        items.push(Item {
                            host: Host::Ip(*ip),
                            port: p.port,
                            key: Key::Svc(ns, name),
                        });
                    }
                }
            }
            SvcKind::Headless => {}
        }
        if found {
            Ok(items)
        } else {
            Err(NameError)
        }
    }

    /// CoreDNS' plugin.A / plugin.AAAA, following in-zone CNAMEs (up to 8).
    fn address(
        &self,
        owner: &Name,
        rel: &str,
        v6: bool,
        depth: usize,
        out: &mut Vec<Record>,
        chase: &mut Option<Name>,
    ) -> Lookup<()> {
        let items = self.records(rel)?;
        let mut seen: Vec<IpAddr> = Vec::new();
        for it in &items {
            match it.host {
                Host::Name(target) => {
                    let t = target.trim_end_matches('.');
                    let mut owner_lower = String::new();
                    lowercase_into(owner, &mut owner_lower);
                    if t.eq_ignore_ascii_case(&owner_lower) || depth > 7 {
                        continue;
                    }
                    let Some(tname) = fqdn(t) else { continue };
                    let cname = self.rec(owner, RData::CNAME(CNAME(tname.clone())));
                    let tl = t.to_ascii_lowercase();
                    match self.zone.relative(&tl) {
                        Some(trel) => {
                            let mut next = Vec::new();
                            let mut c = None;
                            if self
                                .address(&tname, trel, v6, depth + 1, &mut next, &mut c)
                                .is_ok()
                                && !next.is_empty()
                            {
                                out.push(cname);
                                out.append(&mut next);
                            }
                        }
                        None => {
                            out.push(cname);
                            *chase = Some(tname);
                        }
                    }
                }
                Host::Ip(ip) => {
                    if ip.is_ipv6() != v6 || seen.contains(&ip) {
                        continue;
                    }
                    seen.push(ip);
                    out.push(self.rec(
                        owner,
                        match ip {
                            IpAddr::V4(a) => RData::A(A(a)),
                            IpAddr::V6(a) => RData::AAAA(AAAA(a)),
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    /// CoreDNS' plugin.SRV: priority 0, equal weights summing to ~100, the targets' addresses
    /// in the additional section. ExternalName Services have no SRV records.
    fn srv(&self, owner: &Name, rel: &str, extra: &mut Vec<Record>) -> Lookup<Vec<Record>> {
        let mut items = self.records(rel)?;
        items.retain(|it| matches!(it.host, Host::Ip(_)));
        let weight = if items.is_empty() {
            0
        } else {
            ((100.0 / items.len() as f64).floor() as u16).max(1)
        };
        let mut out = Vec::new();
        let mut seen_srv: Vec<(Name, i32)> = Vec::new();
        let mut seen_addr: Vec<(Name, IpAddr)> = Vec::new();
        for it in &items {
            if it.port == -1 {
                continue;
            }
            let Host::Ip(ip) = it.host else { continue };
            let target = match it.key {
                // A pod's key is the name asked for.
                Key::Pod => parse(rel).ok().flatten().and_then(|r| {
                    fqdn(&format!(
                        "{}.{}.pod.{}",
                        r.service, r.namespace, self.zone.domain
                    ))
                }),
                k => k.name(self.zone),
            };
            let Some(target) = target else { continue };
            if !seen_srv.iter().any(|(t, p)| *t == target && *p == it.port) {
                seen_srv.push((target.clone(), it.port));
                out.push(self.rec(
                    owner,
                    RData::SRV(SRV::new(
                        0,
                        weight,
                        it.port.clamp(0, 65535) as u16,
                        target.clone(),
                    )),
                ));
            }
            if !seen_addr.iter().any(|(t, a)| *t == target && *a == ip) {
                seen_addr.push((target.clone(), ip));
                extra.push(self.rec(
                    &target,
                    match ip {
                        IpAddr::V4(a) => RData::A(A(a)),
                        IpAddr::V6(a) => RData::AAAA(AAAA(a)),
                    },
                ));
            }
        }
        Ok(out)
    }

    /// PTR for a ClusterIP (the first Service that has it), else every endpoint address.
    fn reverse(&self, owner: &Name, ip: &IpAddr) -> Vec<Record> {
        let d = &self.zone.domain;
        let mut names: Vec<String> = Vec::new();
        if let Some((ns, name)) = self.index.services_by_ip(ip).first() {
            names.push(format!("{name}.{ns}.svc.{d}."));
        } else {
            for (ns, name, slice) in self.index.endpoints_by_ip(ip) {
                let Some(eps) = self.index.slice(ns, name, slice) else {
                    continue;
                };
                for ss in &eps.subsets {
                    for a in ss.addresses.iter().filter(|a| a.ip == *ip) {
                        let n = format!("{}.{name}.{ns}.svc.{d}.", a.hostname);
                        if !names.contains(&n) {
                            names.push(n);
                        }
                    }
                }
            }
        }
        names
            .iter()
            .filter_map(|n| Name::from_ascii(n).ok())
            .map(|n| self.rec(owner, RData::PTR(PTR(n))))
            .collect()
    }

    /// The kube-dns Service's ClusterIPs of the asked family, owned by `owner`.
    fn dns_addresses(&self, owner: &Name, qtype: RecordType) -> Vec<Record> {
        let Some(svc) = self.index.service("kube-system", "kube-dns") else {
            return Vec::new();
        };
        let SvcKind::ClusterIp(ips) = &svc.kind else {
            return Vec::new();
        };
        ips.iter()
            .filter_map(|ip| match (ip, qtype) {
                (IpAddr::V4(a), RecordType::A) => Some(RData::A(A(*a))),
                (IpAddr::V6(a), RecordType::AAAA) => Some(RData::AAAA(AAAA(*a))),
                _ => None,
            })
            .map(|d| self.rec(owner, d))
            .collect()
    }

    /// The apex NS record (`ns.dns.<zone>`) with the kube-dns Service's addresses as glue.
    fn ns(&self, extra: &mut Vec<Record>) -> Vec<Record> {
        let Ok(ns_name) = Name::from_ascii(format!("ns.dns.{}.", self.zone.domain)) else {
            return Vec::new();
        };
        if let Some(svc) = self.index.service("kube-system", "kube-dns") {
            if let SvcKind::ClusterIp(ips) = &svc.kind {
                for ip in ips {
                    extra.push(self.rec(
                        &ns_name,
                        match ip {
                            IpAddr::V4(a) => RData::A(A(*a)),
                            IpAddr::V6(a) => RData::AAAA(AAAA(*a)),
                        },
                    ));
                }
            }
        }
        vec![self.rec(&self.zone.name, RData::NS(NS(ns_name)))]
    }
}

fn fqdn(s: &str) -> Option<Name> {
    let s = s.trim_end_matches('.');
    Name::from_ascii(format!("{s}.")).ok()
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
