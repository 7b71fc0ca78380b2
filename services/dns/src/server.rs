//! The DNS server loops: UDP (a few receive loops sharing one socket) and TCP (a task per
//! connection, two-byte length framing, idle timeout). The wire format is hickory-proto's.
//!
//! The in-zone path answers inline from the index (no await, no lock held across one); only
//! forwarding waits, and it runs in its own task under a concurrency cap, so a slow upstream
//! never stalls the loop.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use crate::records::{Answer, Outcome};
use crate::upstream::Upstream;
use crate::Dns;

/// Bind UDP and TCP on one port. Port 0: a free port both protocols can have.
pub async fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // A free UDP port whose TCP twin is taken: try another (only for port 0).
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Forward names outside the zone here; None: answer them REFUSED.
    pub upstream: Option<Upstream>,
    /// A TCP connection with no query for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// Open TCP connections at most (more wait in the accept queue).
    pub max_tcp_connections: usize,
    /// Forwarded queries in flight at most; beyond it, SERVFAIL at once.
    pub max_forwards: usize,
    /// UDP receive loops sharing the socket.
    pub udp_workers: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            upstream: None,
            tcp_idle_timeout: Duration::from_secs(10),
            max_tcp_connections: 1024,
            max_forwards: 512,
            udp_workers: 2,
        }
    }
}

/// The largest UDP answer without EDNS (RFC 1035), and the cap on an EDNS buffer we honour.
const UDP_MIN: u16 = 512;
const UDP_MAX: u16 = 4096;

/// What to do after the fast path.
enum Step {
    /// `out` holds the reply.
    Reply,
    /// Nothing to send (not a query, unreadable).
    Drop,
    /// Needs the upstream: forward the packet as is.
    Forward,
    /// An answer to complete with the upstream's records for `chase` before encoding.
    Chase(Box<Pending>),
}

struct Pending {
    reply: Message,
    chase: Name,
    qtype: RecordType,
    max: u16,
}

/// Answer one packet without waiting. `out` is cleared and reused.
fn respond(
    dns: &Dns,
    cfg: &ServerConfig,
    packet: &[u8],
    udp: bool,
    scratch: &mut String,
    out: &mut Vec<u8>,
) -> Step {
    out.clear();
    let req = match Message::from_vec(packet) {
        Ok(m) => m,
        Err(_) => {
            // A readable header still gets FORMERR; anything shorter is dropped.
            if packet.len() < 12 || packet[2] & 0x80 != 0 {
                return Step::Drop;
            }
            let id = u16::from_be_bytes([packet[0], packet[1]]);
            let m = Message::error_msg(id, OpCode::Query, ResponseCode::FormErr);
            encode(&m, UDP_MIN, out);
            return Step::Reply;
        }
    };
    if req.metadata.message_type != MessageType::Query {
        return Step::Drop;
    }
    let max = if udp {
        req.edns
            .as_ref()
            .map_or(UDP_MIN, |e| e.max_payload().clamp(UDP_MIN, UDP_MAX))
    } else {
        u16::MAX
    };
    let mut reply = Message::response(req.metadata.id, req.metadata.op_code);
    reply.metadata.recursion_desired = req.metadata.recursion_desired;
    reply.metadata.checking_disabled = req.metadata.checking_disabled;
    reply.metadata.recursion_available = cfg.upstream.is_some();
    if let Some(e) = &req.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(e.max_payload().clamp(UDP_MIN, UDP_MAX));
        edns.set_version(0);
        reply.set_edns(edns);
        if e.version() > 0 {
            // RFC 6891: BADVERS (an extended rcode) for a version we do not speak.
            reply.metadata.response_code = ResponseCode::BADVERS;
            encode(&reply, max, out);
            return Step::Reply;
        }
    }
    if req.metadata.op_code != OpCode::Query {
        reply.metadata.response_code = ResponseCode::NotImp;
        encode(&reply, max, out);
        return Step::Reply;
    }
    let [q] = req.queries.as_slice() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        encode(&reply, max, out);
        return Step::Reply;
    };
    reply.add_query(q.clone());
    match dns.answer(q.name(), q.query_type(), scratch) {
        Outcome::NotOurs if cfg.upstream.is_some() => Step::Forward,
        Outcome::NotOurs | Outcome::Refused => {
            reply.metadata.response_code = ResponseCode::Refused;
            encode(&reply, max, out);
            Step::Reply
        }
        Outcome::Answer(a) => {
            let chase = fill(&mut reply, a);
            match chase {
                Some(chase) if cfg.upstream.is_some() => Step::Chase(Box::new(Pending {
                    reply,
                    chase,
                    qtype: q.query_type(),
                    max,
                })),
                _ => {
                    encode(&reply, max, out);
                    Step::Reply
                }
            }
        }
    }
}

fn fill(reply: &mut Message, a: Answer) -> Option<Name> {
    reply.metadata.authoritative = true;
    reply.metadata.response_code = a.rcode;
    reply.answers = a.answers;
    reply.authorities = a.authorities;
    reply.additionals = a.additionals;
    a.chase
}

/// Encode `m` into `out` within `max` bytes; records that do not fit are left out and the
/// TC bit is set (hickory's encoder does both), so the client retries over TCP.
fn encode(m: &Message, max: u16, out: &mut Vec<u8>) {
    out.clear();
    let mut enc = BinEncoder::new(out);
    enc.set_max_size(max);
    if let Err(e) = m.emit(&mut enc) {
        tracing::warn!(error = %e, "encoding a DNS answer");
        out.clear();
        let mut fail =
            Message::error_msg(m.metadata.id, m.metadata.op_code, ResponseCode::ServFail);
        fail.queries = m.queries.clone();
        let mut enc = BinEncoder::new(out);
        let _ = fail.emit(&mut enc);
    }
}

fn servfail(packet: &[u8], out: &mut Vec<u8>) {
    match Message::from_vec(packet) {
        Ok(req) => {
            let mut m = Message::error_msg(
                req.metadata.id,
                req.metadata.op_code,
                ResponseCode::ServFail,
            );
            m.metadata.recursion_desired = req.metadata.recursion_desired;
            m.metadata.recursion_available = true;
            m.queries = req.queries;
            encode(&m, UDP_MIN, out);
        }
        Err(_) => out.clear(),
    }
}

/// The slow path: forward, or complete a CNAME with the upstream's records.
async fn slow(step: Step, packet: Vec<u8>, upstream: &Upstream, tcp: bool) -> Vec<u8> {
    let mut out = Vec::new();
    match step {
        Step::Forward => match upstream.exchange(&packet, tcp).await {
            Some(resp) => out = resp,
            None => servfail(&packet, &mut out),
        },
        Step::Chase(p) => {
            let Pending {
                mut reply,
                chase,
                qtype,
                max,
            } = *p;
            let mut q = Message::query();
            q.metadata.recursion_desired = true;
            q.add_query(Query::query(chase, qtype));
            if let Ok(bytes) = q.to_vec() {
                if let Some(resp) = upstream.exchange(&bytes, tcp).await {
                    if let Ok(m) = Message::from_vec(&resp) {
                        reply.answers.extend(m.answers);
                    }
                }
            }
            encode(&reply, max, &mut out);
        }
        Step::Reply | Step::Drop => {}
    }
    out
}

/// Serve UDP on `socket` until the task is dropped.
pub async fn serve_udp(socket: Arc<UdpSocket>, dns: Arc<Dns>, cfg: Arc<ServerConfig>) {
    let forwards = Arc::new(Semaphore::new(cfg.max_forwards.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..cfg.udp_workers.max(1) {
        let (socket, dns, cfg, forwards) =
            (socket.clone(), dns.clone(), cfg.clone(), forwards.clone());
        tasks.spawn(async move { udp_loop(socket, dns, cfg, forwards).await });
    }
    while tasks.join_next().await.is_some() {}
}

async fn udp_loop(
    socket: Arc<UdpSocket>,
    dns: Arc<Dns>,
    cfg: Arc<ServerConfig>,
    forwards: Arc<Semaphore>,
) {
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::with_capacity(UDP_MAX as usize);
    let mut scratch = String::with_capacity(256);
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(v) => v,
            Err(e) => {
                // ICMP errors for earlier replies surface here on some systems; keep serving.
                tracing::debug!(error = %e, "dns udp recv");
                continue;
            }
        };
        let packet = &buf[..n];
        let step = respond(&dns, &cfg, packet, true, &mut scratch, &mut out);
        match step {
            Step::Reply => {
                let _ = socket.send_to(&out, peer).await;
            }
            Step::Drop => {}
            step => spawn_slow(step, packet, peer, &socket, &cfg, &forwards, &mut out).await,
        }
    }
}

async fn spawn_slow(
    step: Step,
    packet: &[u8],
    peer: SocketAddr,
    socket: &Arc<UdpSocket>,
    cfg: &ServerConfig,
    forwards: &Arc<Semaphore>,
    out: &mut Vec<u8>,
) {
    let (Some(upstream), Ok(permit)) = (cfg.upstream.clone(), forwards.clone().try_acquire_owned())
    else {
        servfail(packet, out);
        let _ = socket.send_to(out, peer).await;
        return;
    };
    let socket = socket.clone();
    let packet = packet.to_vec();
    tokio::spawn(async move {
        let resp = slow(step, packet, &upstream, false).await;
        if !resp.is_empty() {
            let _ = socket.send_to(&resp, peer).await;
        }
        drop(permit);
    });
}

/// Serve TCP on `listener` until the task is dropped.
pub async fn serve_tcp(listener: TcpListener, dns: Arc<Dns>, cfg: Arc<ServerConfig>) {
    let conns = Arc::new(Semaphore::new(cfg.max_tcp_connections.max(1)));
    loop {
        let Ok(permit) = conns.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::debug!(error = %e, "dns tcp accept");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (dns, cfg) = (dns.clone(), cfg.clone());
        tokio::spawn(async move {
            let _ = tcp_conn(stream, &dns, &cfg).await;
            drop(permit);
        });
    }
}

async fn tcp_conn(mut stream: TcpStream, dns: &Dns, cfg: &ServerConfig) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut scratch = String::new();
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(cfg.tcp_idle_timeout, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return Ok(()),
        }
        let n = u16::from_be_bytes(len) as usize;
        buf.resize(n, 0);
        match tokio::time::timeout(cfg.tcp_idle_timeout, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            _ => return Ok(()),
        }
        let step = respond(dns, cfg, &buf, false, &mut scratch, &mut out);
        let resp = match step {
            Step::Reply => std::mem::take(&mut out),
            Step::Drop => continue,
            step => match &cfg.upstream {
                Some(up) => slow(step, buf.clone(), up, true).await,
                None => {
                    servfail(&buf, &mut out);
                    std::mem::take(&mut out)
                }
            },
        };
        if resp.is_empty() {
            continue;
        }
        let len = u16::try_from(resp.len()).unwrap_or(u16::MAX);
        stream.write_all(&len.to_be_bytes()).await?;
        stream.write_all(&resp[..len as usize]).await?;
        out = resp;
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
