//! Forwarding to the host's resolver: the `nameserver` lines of /etc/resolv.conf, tried in
//! order, each with a bounded timeout, over the protocol the client used (as CoreDNS' forward
//! plugin does). Never blocks: every wait is a tokio timeout.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

#[derive(Debug, Clone)]
pub struct Upstream {
    pub servers: Vec<SocketAddr>,
    /// Per server.
    pub timeout: Duration,
}

/// The `nameserver` addresses of a resolv.conf text (port 53), leaving out `exclude` (our
/// own listener: forwarding to ourselves would loop).
pub fn parse_resolv_conf(text: &str, exclude: &[SocketAddr]) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "nameserver").then_some(())?;
            // A scoped IPv6 address ("fe80::1%eth0") is not usable from here.
            let ip: IpAddr = w.next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .filter(|a| !exclude.contains(a))
        .collect()
}

impl Upstream {
    /// Send `packet` (a whole DNS message) to each server in turn, over TCP when `tcp`, until
    /// one answers with the same id; None when none does in time.
    pub async fn exchange(&self, packet: &[u8], tcp: bool) -> Option<Vec<u8>> {
        if packet.len() < 2 {
            return None;
        }
        let id = [packet[0], packet[1]];
        for server in &self.servers {
            let attempt = async {
                if tcp {
                    exchange_tcp(*server, packet, id).await
                } else {
                    exchange_one(*server, packet, id).await
                }
            };
            match tokio::time::timeout(self.timeout, attempt).await {
                Ok(Ok(resp)) => return Some(resp),
                Ok(Err(e)) => tracing::debug!(%server, error = %e, "upstream failed"),
                Err(_) => tracing::debug!(%server, "upstream timed out"),
            }
        }
        None
    }
}

async fn exchange_one(server: SocketAddr, packet: &[u8], id: [u8; 2]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(server).await?;
    sock.send(packet).await?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).await?;
        // Anything but the answer to our id (a late reply, a spoof) is ignored; the caller's
        // timeout bounds the wait.
        if n >= 12 && buf[..2] == id {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn exchange_tcp(server: SocketAddr, packet: &[u8], id: [u8; 2]) -> std::io::Result<Vec<u8>> {
    let len = u16::try_from(packet.len()).map_err(std::io::Error::other)?;
    let mut s = TcpStream::connect(server).await?;
    s.write_all(&len.to_be_bytes()).await?;
    s.write_all(packet).await?;
    let mut n = [0u8; 2];
    s.read_exact(&mut n).await?;
    let mut buf = vec![0u8; u16::from_be_bytes(n) as usize];
    s.read_exact(&mut buf).await?;
    if buf.len() < 12 || buf[..2] != id {
        return Err(std::io::Error::other("an answer to another query"));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers() {
        let text = "# comment\nsearch example.com\nnameserver 127.0.0.53\nnameserver ::1\nnameserver fe80::1%eth0\noptions ndots:5\nnameserver 10.0.0.2\n";
        let own: SocketAddr = "10.0.0.2:53".parse().unwrap();
        assert_eq!(
            parse_resolv_conf(text, &[own]),
            vec![
                "127.0.0.53:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }

    #[tokio::test]
    async fn exchange_relays_the_answer_with_the_same_id() {
        let fake = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = fake.local_addr().unwrap();
        tokio::spawn(async move {
            let mut b = [0u8; 512];
            let (n, peer) = fake.recv_from(&mut b).await.unwrap();
            // A stray reply with another id first, then the real one.
            let mut other = b[..n].to_vec();
            other[0] ^= 0xff;
            fake.send_to(&other, peer).await.unwrap();
            fake.send_to(&b[..n], peer).await.unwrap();
        });
        let up = Upstream {
            servers: vec![addr],
            timeout: Duration::from_secs(5),
        };
        let q = [0x12, 0x34, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(up.exchange(&q, false).await.unwrap(), q.to_vec());
    }

    #[tokio::test(start_paused = true)]
    async fn exchange_gives_up_after_the_timeout_per_server() {
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let silent2 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let up = Upstream {
            servers: vec![silent.local_addr().unwrap(), silent2.local_addr().unwrap()],
            timeout: Duration::from_secs(2),
        };
        let q = [0x12, 0x34, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let start = tokio::time::Instant::now();
        assert!(up.exchange(&q, false).await.is_none());
        // Each server had its 2 s, no more.
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }
}
