//! Connections: TCP within the connect timeout, and the fast HTTP/1.1 path's exchange over its
//! kept-alive connection or a newly dialed one.
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::{Config, Failure};
use crate::h1;
use crate::stats::ErrorKind;

pub(super) async fn tcp(cfg: &Config) -> Result<TcpStream, Failure> {
    let addr: SocketAddr = cfg.target.addr;
    connected(tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(addr)).await)
}

/// A new connection for the fast path, with the request already written when it could be.
///
/// A non-blocking connect, then the request written at once: on loopback the kernel has done the
/// handshake by the time `connect` returns, so the write goes out without a turn of the event
/// loop to learn that the socket became writable (tokio's `TcpStream::connect` and wrk both wait
/// for that event). When the handshake is not done yet the write finds nothing to write to
/// (EAGAIN) and this waits for the connection as `TcpStream::connect` does, on the caller's timer
/// (one per worker, moved forward: no timer registered and removed per connection). Returns the
/// stream and how many bytes of the request went out.
async fn dial(
    cfg: &Config,
    mut timer: Pin<&mut Sleep>,
    w: &h1::Wire,
) -> Result<(TcpStream, usize), Failure> {
    use std::io::Write;
    let addr = cfg.target.addr;
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM.nonblocking(),
        Some(socket2::Protocol::TCP),
    )
    .map_err(Failure::connect)?;
    let _ = sock.set_tcp_nodelay(true);
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(Failure::connect(e)),
    }
    let std: std::net::TcpStream = sock.into();
    let sent = match (&std).write(w.as_bytes()) {
        Ok(n) => Some(n),
        // Still connecting.
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
        // A write can only fail here because the connection was not made (refused...).
        Err(e) => return Err(Failure::connect(e)),
    };
    let s = TcpStream::from_std(std).map_err(Failure::connect)?;
    if let Some(n) = sent {
        return Ok((s, n));
    }
    timer.as_mut().reset(Instant::now() + cfg.connect_timeout);
    let r = tokio::select! {
        biased;
        r = s.writable() => r,
        _ = timer => return Err(Failure::Timeout(ErrorKind::ConnectTimeout)),
    };
    r.map_err(Failure::connect)?;
    if let Some(e) = s.take_error().map_err(Failure::connect)? {
        return Err(Failure::connect(e));
    }
    Ok((s, 0))
}

fn connected<E>(r: Result<std::io::Result<TcpStream>, E>) -> Result<TcpStream, Failure> {
    match r {
        Err(_) => Err(Failure::Timeout(ErrorKind::ConnectTimeout)),
        Ok(Err(e)) => Err(Failure::connect(e)),
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
    }
}

/// One request on the fast HTTP/1.1 path, over the kept-alive connection when there is one.
pub(super) async fn fast_exchange(
    kept: &mut Option<h1::Conn>,
    spare: &mut Option<h1::Reader>,
    mut timer: Pin<&mut Sleep>,
    cfg: &Config,
    w: &h1::Wire,
) -> Result<(u16, u64), Failure> {
    let r = match kept.take() {
        Some(mut c) => match c.exchange(w).await {
            // A kept-alive connection that fails before any byte of the response came back was
            // closed by the server while idle: not this request's failure; it goes on a new one.
            Err(h1::Error::Closed | h1::Error::Io(_)) if c.nothing_received() => {
                let (s, sent) = dial(cfg, timer, w).await?;
                c = h1::Conn::new(s, Some(c.into_reader()));
                let r = c.exchange_after(w, sent).await;
                r.map(|r| (r, c))
            }
            r => r.map(|r| (r, c)),
        },
        None => {
            let (s, sent) = dial(cfg, timer.as_mut(), w).await?;
            let mut c = h1::Conn::new(s, spare.take());
            let r = c.exchange_after(w, sent).await;
            r.map(|r| (r, c))
        }
    };
    let (r, c) = r.map_err(Failure::Fast)?;
    if cfg.keepalive && r.reusable {
        *kept = Some(c);
    } else {
        *spare = Some(c.into_reader());
    }
    Ok((r.status, r.bytes))
}
