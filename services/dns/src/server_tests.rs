//! The server loops over real loopback sockets: truncation and the TCP retry, REFUSED outside
//! the zone, forwarding and its SERVFAIL when the upstream is silent.
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::*;
use crate::index::{endpoint_hostname, Addr, Eps, Port, Subset, Svc, SvcKind};
use crate::records::{PodMode, Zone};
use crate::upstream::Upstream;
use crate::Dns;

/// A DNS with namespace default and a headless Service `big` with `n` endpoints.
fn dns(n: u8) -> Arc<Dns> {
    let d = Dns::new(Zone::new("cluster.local", 5, PodMode::Insecure).unwrap());
    {
        let mut ix = d.write();
        ix.set_namespace("default", true);
        ix.set_service(
            "default",
            "big",
            Some(Svc {
                kind: SvcKind::Headless,
                ports: vec![],
            }),
        );
        let addresses = (1..=n)
            .map(|i| {
                let ip: IpAddr = format!("10.1.0.{i}").parse().unwrap();
                Addr {
                    hostname: endpoint_hostname("", &ip),
                    ip,
                }
            })
            .collect();
        ix.set_slice(
            "default",
            "big-abcde",
            Some((
                "big",
                Eps {
                    subsets: vec![Subset {
                        addresses,
                        ports: vec![Port {
                            name: "".into(),
                            protocol: "".into(),
                            port: -1,
                        }],
                    }],
                },
            )),
        );
    }
    d.set_synced(true);
    Arc::new(d)
}

async fn start(dns: Arc<Dns>, cfg: ServerConfig) -> SocketAddr {
    let (udp, tcp) = bind_pair("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = udp.local_addr().unwrap();
    let cfg = Arc::new(cfg);
    tokio::spawn(serve_udp(Arc::new(udp), dns.clone(), cfg.clone()));
    tokio::spawn(serve_tcp(tcp, dns, cfg));
    addr
}

fn query(name: &str, t: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

async fn udp(server: SocketAddr, packet: &[u8]) -> (Message, usize) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(packet, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(5), s.recv(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    (Message::from_vec(&buf[..n]).unwrap(), n)
}

async fn tcp(server: SocketAddr, packet: &[u8]) -> Message {
    let mut s = TcpStream::connect(server).await.unwrap();
    s.write_all(&(packet.len() as u16).to_be_bytes())
        .await
        .unwrap();
    s.write_all(packet).await.unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

#[tokio::test]
async fn a_large_udp_answer_is_truncated_and_complete_over_tcp() {
    let server = start(dns(100), ServerConfig::default()).await;
    let q = query("big.default.svc.cluster.local.", RecordType::A, None);
    let (m, n) = udp(server, &q).await;
    assert!(n <= 512, "{n} bytes");
    assert!(m.metadata.truncation, "TC set");
    assert!(m.answers.len() < 100);
    // With EDNS 4096 everything fits.
    let (m, _) = udp(
        server,
        &query("big.default.svc.cluster.local.", RecordType::A, Some(4096)),
    )
    .await;
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 100);
    assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(4096));
    // TCP: all 100, no TC.
    let m = tcp(server, &q).await;
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 100);
    assert!(m.metadata.authoritative);
}

#[tokio::test]
async fn outside_the_zone_is_refused_without_an_upstream() {
    let server = start(dns(1), ServerConfig::default()).await;
    let (m, _) = udp(server, &query("example.com.", RecordType::A, None)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.recursion_available);
    assert_eq!(m.queries.len(), 1);
}

#[tokio::test]
async fn outside_the_zone_is_forwarded_and_a_silent_upstream_is_servfail() {
    // The upstream is another server of this crate for zone "other.test".
    let other = Dns::new(Zone::new("other.test", 5, PodMode::Insecure).unwrap());
    other.write().set_namespace("ns", true);
    other.set_synced(true);
    let upstream = start(Arc::new(other), ServerConfig::default()).await;
    let cfg = ServerConfig {
        upstream: Some(Upstream {
            servers: vec![upstream],
            timeout: Duration::from_secs(2),
        }),
        ..Default::default()
    };
    let server = start(dns(1), cfg).await;
    let (m, _) = udp(
        server,
        &query("1-2-3-4.ns.pod.other.test.", RecordType::A, None),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].data.to_string(), "1.2.3.4");
    let m = tcp(
        server,
        &query("nope.ns.svc.other.test.", RecordType::A, None),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let cfg = ServerConfig {
        upstream: Some(Upstream {
            servers: vec![silent.local_addr().unwrap()],
            timeout: Duration::from_millis(100),
        }),
        ..Default::default()
    };
    let server = start(dns(1), cfg).await;
    let (m, _) = udp(server, &query("example.com.", RecordType::A, None)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    // The in-zone path keeps answering meanwhile.
    let (m, _) = udp(
        server,
        &query("big.default.svc.cluster.local.", RecordType::A, None),
    )
    .await;
    assert_eq!(m.answers.len(), 1);
}

#[tokio::test]
async fn unsupported_opcodes_and_question_counts() {
    let server = start(dns(1), ServerConfig::default()).await;
    let mut m = Message::query();
    m.metadata.op_code = hickory_proto::op::OpCode::Status;
    let (r, _) = udp(server, &m.to_vec().unwrap()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
    let m = Message::query();
    let (r, _) = udp(server, &m.to_vec().unwrap()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
}
