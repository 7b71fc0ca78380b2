//! Table tests of the answer rules against CoreDNS' behaviour.
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};

use super::*;
use crate::index::{endpoint_hostname, Addr, Eps, Index, Port, Subset, Svc, SvcKind};

fn port(name: &str, proto: &str, port: i32) -> Port {
    Port {
        name: name.into(),
        protocol: proto.into(),
        port,
    }
}

fn addr(ip: &str, hostname: &str) -> Addr {
    let ip: IpAddr = ip.parse().unwrap();
    Addr {
        hostname: endpoint_hostname(hostname, &ip),
        ip,
    }
}

/// default: web (ClusterIP 127.1.0.10, ports http 80/TCP and dns 53/UDP), nginx (headless,
/// web-0/web-1 plus an address without hostname, port web 80), empty (headless, no
/// endpoints), db (ExternalName db.example.com), alias (ExternalName to web in-zone);
/// namespace "other" exists but has no Services.
fn index() -> Index {
    let mut ix = Index::default();
    for ns in ["default", "other", "kube-system"] {
        ix.set_namespace(ns, true);
    }
    ix.set_service(
        "default",
        "web",
        Some(Svc {
            kind: SvcKind::ClusterIp(vec!["127.1.0.10".parse().unwrap()]),
            ports: vec![port("http", "TCP", 80), port("dns", "UDP", 53)],
        }),
    );
    ix.set_service(
        "default",
        "nginx",
        Some(Svc {
            kind: SvcKind::Headless,
            ports: vec![port("web", "TCP", 80)],
        }),
    );
    ix.set_slice(
        "default",
        "nginx-abcde",
        Some((
            "nginx",
            Eps {
                subsets: vec![Subset {
                    addresses: vec![
                        addr("10.0.1.1", "web-0"),
                        addr("10.0.1.2", "web-1"),
                        addr("10.0.1.3", ""),
                    ],
                    ports: vec![port("web", "TCP", 80)],
                }],
            },
        )),
    );
    ix.set_service(
        "default",
        "empty",
        Some(Svc {
            kind: SvcKind::Headless,
            ports: vec![],
        }),
    );
    ix.set_service(
        "default",
        "db",
        Some(Svc {
            kind: SvcKind::ExternalName("db.example.com".into()),
            ports: vec![],
        }),
    );
    ix.set_service(
        "default",
        "alias",
        Some(Svc {
            kind: SvcKind::ExternalName("web.default.svc.cluster.local".into()),
            ports: vec![],
        }),
    );
    ix.serial = 42;
    ix
}

fn ask(ix: &Index, pods: PodMode, synced: bool, name: &str, qtype: RecordType) -> Outcome {
    let zone = Zone::new("cluster.local", 5, pods).unwrap();
    let r = Resolver {
        index: ix,
        zone: &zone,
        synced,
    };
    let mut scratch = String::new();
    r.answer(&Name::from_ascii(name).unwrap(), qtype, &mut scratch)
}

fn answer(name: &str, qtype: RecordType) -> Answer {
    match ask(&index(), PodMode::Insecure, true, name, qtype) {
        Outcome::Answer(a) => a,
        o => panic!("{name} {qtype}: {o:?}"),
    }
}

/// The answer section as "type data" strings.
fn data(a: &Answer) -> Vec<String> {
    a.answers
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect()
}

fn assert_nxdomain(name: &str, qtype: RecordType) {
    let a = answer(name, qtype);
    assert_eq!(a.rcode, ResponseCode::NXDomain, "{name} {qtype}: {a:?}");
    assert!(a.answers.is_empty());
    assert_eq!(a.authorities.len(), 1, "SOA in authority");
    assert_eq!(a.authorities[0].record_type(), RecordType::SOA);
}

fn assert_nodata(name: &str, qtype: RecordType) {
    let a = answer(name, qtype);
    assert_eq!(a.rcode, ResponseCode::NoError, "{name} {qtype}: {a:?}");
    assert!(a.answers.is_empty(), "{name} {qtype}: {a:?}");
    assert_eq!(a.authorities.len(), 1, "SOA in authority");
    assert_eq!(a.authorities[0].record_type(), RecordType::SOA);
}

#[test]
fn cluster_ip_service_answers_its_cluster_ip_with_ttl_5() {
    let a = answer("web.default.svc.cluster.local.", RecordType::A);
    assert_eq!(a.rcode, ResponseCode::NoError);
    assert_eq!(data(&a), ["A 127.1.0.10"]);
    assert_eq!(a.answers[0].ttl, 5);
    assert_eq!(
        a.answers[0].name.to_ascii(),
        "web.default.svc.cluster.local."
    );
    assert!(a.authorities.is_empty());
}

#[test]
fn names_match_case_insensitively_and_keep_the_question_spelling() {
    let a = answer("WeB.Default.SVC.Cluster.Local.", RecordType::A);
    assert_eq!(data(&a), ["A 127.1.0.10"]);
    assert_eq!(
        a.answers[0].name.to_ascii(),
        "WeB.Default.SVC.Cluster.Local."
    );
}

#[test]
fn a_name_without_the_trailing_dot_is_the_same_name() {
    let a = answer("web.default.svc.cluster.local", RecordType::A);
    assert_eq!(data(&a), ["A 127.1.0.10"]);
}

#[test]
fn headless_service_answers_one_record_per_ready_endpoint() {
    let a = answer("nginx.default.svc.cluster.local.", RecordType::A);
    assert_eq!(data(&a), ["A 10.0.1.1", "A 10.0.1.2", "A 10.0.1.3"]);
}

#[test]
fn headless_service_without_endpoints_is_nxdomain() {
    assert_nxdomain("empty.default.svc.cluster.local.", RecordType::A);
}

#[test]
fn endpoint_hostname_and_dashed_ip_forms() {
    let a = answer("web-1.nginx.default.svc.cluster.local.", RecordType::A);
    assert_eq!(data(&a), ["A 10.0.1.2"]);
    let a = answer("10-0-1-3.nginx.default.svc.cluster.local.", RecordType::A);
    assert_eq!(data(&a), ["A 10.0.1.3"]);
    assert_nxdomain("web-9.nginx.default.svc.cluster.local.", RecordType::A);
}

#[test]
fn srv_for_a_named_port_of_a_cluster_ip_service() {
    let a = answer("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(data(&a), ["SRV 0 100 80 web.default.svc.cluster.local."]);
    assert_eq!(a.additionals.len(), 1);
    assert_eq!(
        a.additionals[0].name.to_ascii(),
        "web.default.svc.cluster.local."
    );
    assert_eq!(a.additionals[0].data.to_string(), "127.1.0.10");
    // The protocol must match too; an unknown port name is NXDOMAIN.
    assert_nxdomain("_http._udp.web.default.svc.cluster.local.", RecordType::SRV);
    assert_nxdomain("_nope._tcp.web.default.svc.cluster.local.", RecordType::SRV);
    // Without port and protocol: every port.
    let a = answer("web.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(
        data(&a),
        [
            "SRV 0 50 80 web.default.svc.cluster.local.",
            "SRV 0 50 53 web.default.svc.cluster.local."
        ]
    );
}

#[test]
fn srv_for_a_headless_service_names_each_endpoint() {
    let a = answer(
        "_web._tcp.nginx.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        data(&a),
        [
            "SRV 0 33 80 web-0.nginx.default.svc.cluster.local.",
            "SRV 0 33 80 web-1.nginx.default.svc.cluster.local.",
            "SRV 0 33 80 10-0-1-3.nginx.default.svc.cluster.local."
        ]
    );
    let extra: Vec<String> = a
        .additionals
        .iter()
        .map(|r| format!("{} {}", r.name, r.data))
        .collect();
    assert_eq!(
        extra,
        [
            "web-0.nginx.default.svc.cluster.local. 10.0.1.1",
            "web-1.nginx.default.svc.cluster.local. 10.0.1.2",
            "10-0-1-3.nginx.default.svc.cluster.local. 10.0.1.3"
        ]
    );
}

#[test]
fn ptr_for_cluster_ips_and_endpoints() {
    let a = answer("10.0.1.127.in-addr.arpa.", RecordType::PTR);
    assert_eq!(data(&a), ["PTR web.default.svc.cluster.local."]);
    let a = answer("2.1.0.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(data(&a), ["PTR web-1.nginx.default.svc.cluster.local."]);
    let a = answer("3.1.0.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(data(&a), ["PTR 10-0-1-3.nginx.default.svc.cluster.local."]);
}

#[test]
fn unknown_reverse_names_fall_through() {
    for (name, t) in [
        ("9.9.9.10.in-addr.arpa.", RecordType::PTR),
        ("10.0.1.127.in-addr.arpa.", RecordType::A),
        ("0.10.in-addr.arpa.", RecordType::PTR),
    ] {
        assert!(
            matches!(
                ask(&index(), PodMode::Insecure, true, name, t),
                Outcome::NotOurs
            ),
            "{name}"
        );
    }
}

#[test]
fn ipv6_reverse_names_parse() {
    let lower = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
    assert_eq!(
        reverse_ip(lower),
        Some(Some("fd00::1".parse::<IpAddr>().unwrap()))
    );
    assert_eq!(reverse_ip("1.ip6.arpa"), Some(None));
    assert_eq!(reverse_ip("example.com"), None);
}

#[test]
fn external_name_is_a_cname() {
    let a = answer("db.default.svc.cluster.local.", RecordType::CNAME);
    assert_eq!(data(&a), ["CNAME db.example.com."]);
    // An A question gets the CNAME and the target to chase upstream.
    let a = answer("db.default.svc.cluster.local.", RecordType::A);
    assert_eq!(data(&a), ["CNAME db.example.com."]);
    assert_eq!(a.chase.unwrap().to_ascii(), "db.example.com.");
    // No SRV records for an ExternalName Service: NODATA.
    assert_nodata("db.default.svc.cluster.local.", RecordType::SRV);
}

#[test]
fn an_in_zone_cname_is_followed() {
    let a = answer("alias.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        data(&a),
        ["CNAME web.default.svc.cluster.local.", "A 127.1.0.10"]
    );
    assert!(a.chase.is_none());
}

#[test]
fn nxdomain_for_names_that_do_not_exist() {
    assert_nxdomain("nope.default.svc.cluster.local.", RecordType::A);
    assert_nxdomain("web.nope.svc.cluster.local.", RecordType::A);
    assert_nxdomain("nope.svc.cluster.local.", RecordType::A);
    assert_nxdomain("web.default.nope.cluster.local.", RecordType::A);
    assert_nxdomain(
        "a.b._http._tcp.web.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_nxdomain("nope.default.svc.cluster.local.", RecordType::MX);
}

#[test]
fn nodata_for_names_that_exist_without_that_type() {
    assert_nodata("web.default.svc.cluster.local.", RecordType::AAAA);
    assert_nodata("web.default.svc.cluster.local.", RecordType::TXT);
    assert_nodata("web.default.svc.cluster.local.", RecordType::MX);
    assert_nodata("web.default.svc.cluster.local.", RecordType::CNAME);
    assert_nodata("other.svc.cluster.local.", RecordType::A);
    assert_nodata("svc.cluster.local.", RecordType::A);
    assert_nodata("cluster.local.", RecordType::A);
}

#[test]
fn the_soa_names_the_zone_and_carries_the_ttl() {
    let a = answer("cluster.local.", RecordType::SOA);
    assert_eq!(
        data(&a),
        ["SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5"]
    );
    assert_eq!(a.answers[0].ttl, 5);
}

#[test]
fn dns_version_txt() {
    let a = answer("dns-version.cluster.local.", RecordType::TXT);
    assert_eq!(data(&a), ["TXT 1.1.0"]);
}

#[test]
fn pod_names_by_mode() {
    let a = answer("10-0-9-9.default.pod.cluster.local.", RecordType::A);
    assert_eq!(data(&a), ["A 10.0.9.9"]);
    assert_nxdomain("10-0-9-9.nope.pod.cluster.local.", RecordType::A);
    assert_nxdomain("not-an-ip.default.pod.cluster.local.", RecordType::A);
    assert_nxdomain("010-0-9-9.default.pod.cluster.local.", RecordType::A);
    assert_nodata("default.pod.cluster.local.", RecordType::A);

    let mut ix = index();
    let q = "10-0-9-9.default.pod.cluster.local.";
    assert!(matches!(
        ask(&ix, PodMode::Disabled, true, q, RecordType::A),
        Outcome::Answer(Answer {
            rcode: ResponseCode::NXDomain,
            ..
        })
    ));
    assert!(matches!(
        ask(&ix, PodMode::Verified, true, q, RecordType::A),
        Outcome::Answer(Answer {
            rcode: ResponseCode::NXDomain,
            ..
        })
    ));
    ix.pod_ip("default", "10.0.9.9".parse().unwrap(), true);
    let Outcome::Answer(a) = ask(&ix, PodMode::Verified, true, q, RecordType::A) else {
        panic!()
    };
    assert_eq!(data(&a), ["A 10.0.9.9"]);
}

#[test]
fn outside_the_zone_is_not_ours_and_transfers_are_refused() {
    for name in ["example.com.", "local.", "xcluster.local."] {
        assert!(matches!(
            ask(&index(), PodMode::Insecure, true, name, RecordType::A),
            Outcome::NotOurs
        ));
    }
    assert!(matches!(
        ask(
            &index(),
            PodMode::Insecure,
            true,
            "cluster.local.",
            RecordType::AXFR
        ),
        Outcome::Refused
    ));
}

#[test]
fn before_the_first_sync_a_name_error_is_servfail() {
    let Outcome::Answer(a) = ask(
        &index(),
        PodMode::Insecure,
        false,
        "nope.default.svc.cluster.local.",
        RecordType::A,
    ) else {
        panic!()
    };
    assert_eq!(a.rcode, ResponseCode::ServFail);
}

#[test]
fn a_change_is_answered_at_once() {
    let mut ix = index();
    ix.set_slice(
        "default",
        "nginx-abcde",
        Some((
            "nginx",
            Eps {
                subsets: vec![Subset {
                    addresses: vec![addr("10.0.1.7", "web-1")],
                    ports: vec![port("web", "TCP", 80)],
                }],
            },
        )),
    );
    let Outcome::Answer(a) = ask(
        &ix,
        PodMode::Insecure,
        true,
        "web-1.nginx.default.svc.cluster.local.",
        RecordType::A,
    ) else {
        panic!()
    };
    assert_eq!(data(&a), ["A 10.0.1.7"]);
    ix.set_service("default", "web", None);
    assert!(matches!(
        ask(
            &ix,
            PodMode::Insecure,
            true,
            "web.default.svc.cluster.local.",
            RecordType::A
        ),
        Outcome::Answer(Answer {
            rcode: ResponseCode::NXDomain,
            ..
        })
    ));
}

#[test]
fn endpoints_without_ports_answer_a_but_not_srv() {
    let mut ix = index();
    ix.set_slice(
        "default",
        "empty-abcde",
        Some((
            "empty",
            Eps {
                subsets: vec![Subset {
                    addresses: vec![addr("10.0.2.1", "")],
                    ports: vec![port("", "", -1)],
                }],
            },
        )),
    );
    let q = "empty.default.svc.cluster.local.";
    let Outcome::Answer(a) = ask(&ix, PodMode::Insecure, true, q, RecordType::A) else {
        panic!()
    };
    assert_eq!(data(&a), ["A 10.0.2.1"]);
    let Outcome::Answer(a) = ask(&ix, PodMode::Insecure, true, q, RecordType::SRV) else {
        panic!()
    };
    assert!(a.answers.is_empty());
    assert_eq!(a.rcode, ResponseCode::NoError);
}

#[test]
fn request_parsing() {
    assert_eq!(parse("").unwrap(), None);
    assert_eq!(parse("svc").unwrap(), None);
    let r = parse("_http._tcp.web.default.svc").unwrap().unwrap();
    assert_eq!(
        (r.port, r.protocol, r.service, r.namespace),
        ("http", "tcp", "web", "default")
    );
    let r = parse("web-0.nginx.default.svc").unwrap().unwrap();
    assert_eq!((r.endpoint, r.service), ("web-0", "nginx"));
    assert!(parse("web.default.nope").is_err());
    assert!(parse("a.b.c.d.e.f.svc").is_err());
    let _ = RData::A(hickory_proto::rr::rdata::A("1.2.3.4".parse().unwrap()));
}

#[test]
fn ns_dns_names_the_kube_dns_service() {
    let mut ix = index();
    ix.set_service(
        "kube-system",
        "kube-dns",
        Some(Svc {
            kind: SvcKind::ClusterIp(vec!["127.1.0.53".parse().unwrap()]),
            ports: vec![port("dns", "UDP", 53)],
        }),
    );
    let Outcome::Answer(a) = ask(
        &ix,
        PodMode::Insecure,
        true,
        "ns.dns.cluster.local.",
        RecordType::A,
    ) else {
        panic!()
    };
    assert_eq!(data(&a), ["A 127.1.0.53"]);
    let Outcome::Answer(a) = ask(
        &ix,
        PodMode::Insecure,
        true,
        "cluster.local.",
        RecordType::NS,
    ) else {
        panic!()
    };
    assert_eq!(data(&a), ["NS ns.dns.cluster.local."]);
    assert_eq!(a.additionals.len(), 1);
    let Outcome::Answer(a) = ask(
        &ix,
        PodMode::Insecure,
        true,
        "ns.dns.cluster.local.",
        RecordType::MX,
    ) else {
        panic!()
    };
    assert_eq!((a.rcode, a.answers.len()), (ResponseCode::NoError, 0));
}

#[test]
fn a_headless_service_answers_from_all_its_slices() {
    let mut ix = index();
    // A second slice of nginx: one new endpoint, one already in the first slice (a pod moving
    // between slices is briefly in both): answered once.
    ix.set_slice(
        "default",
        "nginx-fghij",
        Some((
            "nginx",
            Eps {
                subsets: vec![Subset {
                    addresses: vec![addr("10.0.1.4", "web-3"), addr("10.0.1.2", "web-1")],
                    ports: vec![port("web", "TCP", 80)],
                }],
            },
        )),
    );
    let q = "nginx.default.svc.cluster.local.";
    let Outcome::Answer(a) = ask(&ix, PodMode::Insecure, true, q, RecordType::A) else {
        panic!()
    };
    assert_eq!(
        data(&a),
        ["A 10.0.1.1", "A 10.0.1.2", "A 10.0.1.3", "A 10.0.1.4"]
    );
    let Outcome::Answer(a) = ask(
        &ix,
        PodMode::Insecure,
        true,
        "web-3.nginx.default.svc.cluster.local.",
        RecordType::A,
    ) else {
        panic!()
    };
    assert_eq!(data(&a), ["A 10.0.1.4"]);
    let Outcome::Answer(a) = ask(
        &ix,
        PodMode::Insecure,
        true,
        "4.1.0.10.in-addr.arpa.",
        RecordType::PTR,
    ) else {
        panic!()
    };
    assert_eq!(data(&a), ["PTR web-3.nginx.default.svc.cluster.local."]);
    // The first slice goes: its endpoints leave the answer, the second slice's stay.
    ix.set_slice("default", "nginx-abcde", None);
    let Outcome::Answer(a) = ask(&ix, PodMode::Insecure, true, q, RecordType::A) else {
        panic!()
    };
    assert_eq!(data(&a), ["A 10.0.1.4", "A 10.0.1.2"]);
}
