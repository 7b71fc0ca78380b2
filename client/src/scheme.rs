//! A server URL with the wrong scheme, told by the server's first bytes.
//!
//! `http://` against a TLS listener (the default `coxswain up`) otherwise fails as an HTTP/2
//! protocol error: the client sends the HTTP/2 preface in plain text, the TLS server answers
//! with a TLS alert record, which the client reads as a malformed frame (and reports to the
//! request only as "transport error" / "broken pipe"). `https://` against a plain listener
//! fails inside the TLS handshake ("corrupt message"): the server answers the ClientHello with
//! its HTTP/2 SETTINGS frame. Both are plain to see in the first bytes the server sends, so
//! every connection made here ([`connect`], [`connect_lazy`]; the [`crate::Client`]
//! constructors and coxctl) looks at them (for `http://` before the connection is handed to
//! the HTTP/2 client, for `https://` below TLS) and fails with [`WrongScheme`] ("the server at
//! H:P speaks TLS: use https://H:P") when they are the other protocol's, or (for `http://`)
//! an HTTP/1 response: not a gRPC server at all (a /metrics listener). Nothing is guessed from
//! the port; bytes of no such kind pass through untouched.
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// The server speaks another protocol than the URL's scheme asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrongScheme {
    /// `host:port` as the URL names it.
    pub authority: String,
    /// What the server speaks.
    pub server: Speaks,
}

/// What a server answered in, other than what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaks {
    /// TLS, to `http://`.
    Tls,
    /// Plain HTTP/2, to `https://`.
    PlainHttp2,
    /// HTTP/1 (e.g. a /metrics listener), to `http://`: not a gRPC server at all.
    Http1,
}

impl std::fmt::Display for WrongScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = &self.authority;
        match self.server {
            Speaks::Tls => write!(f, "the server at {a} speaks TLS: use https://{a}"),
            Speaks::PlainHttp2 => write!(
                f,
                "the server at {a} speaks plain HTTP/2, not TLS: use http://{a}"
            ),
            Speaks::Http1 => write!(
                f,
                "the server at {a} answers in HTTP/1, not gRPC: is it the store's gRPC \
                 address (its --listen, not e.g. --metrics-listen)?"
            ),
        }
    }
}

impl std::error::Error for WrongScheme {}

/// The first bytes begin a TLS record: content type change_cipher_spec, alert, handshake or
/// application_data (20-23), then protocol version major 3. A TLS server's answer to a plain
/// HTTP/2 preface is an alert record (`15 03 03 00 02 02 32`: fatal, decode_error).
fn is_tls_record(first: &[u8]) -> bool {
    matches!(first, [20..=23, 3, ..])
}

/// The first bytes are an HTTP/2 SETTINGS frame header, which a server must send first: a
/// 24-bit length (a SETTINGS payload is far below 2^16, so its first byte is 0), type 4, and
/// (when the header is all there) flags 0 and stream 0.
fn is_h2_settings(first: &[u8]) -> bool {
    match first {
        [0, _, _, 4, 0, 0, 0, 0, 0, ..] => true,
        [0, _, _, 4, rest @ ..] => rest.len() < 5,
        _ => false,
    }
}

/// HTTP/2's client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection whose server's first bytes were (or will be) checked against the scheme.
///
/// `http://` ([`Checked::plain`]): the preface went out and the server's first bytes came
/// back before this was made (an HTTP/2 client's requests would otherwise race the server's
/// answer, and HTTP/2 reports a connection's read error to them only as "broken pipe"); the
/// client's own preface write is then taken as done and those bytes are its first reads.
/// `https://` ([`Checked::tls`]): the first read (the TLS handshake's) is checked; its error
/// ends the handshake, which reports it.
pub struct Checked<T> {
    io: T,
    /// Check the next read (`https://`).
    check_read: bool,
    /// Bytes read ahead, replayed before `io`'s.
    replay: Vec<u8>,
    replayed: usize,
    /// How much of [`PREFACE`] is still to be skipped from the client's writes.
    preface_left: usize,
    authority: String,
}

impl<T> Checked<T> {
    /// Below TLS: the server's first bytes are checked to begin a TLS record.
    pub fn tls(io: T, authority: impl Into<String>) -> Self {
        Checked {
            io,
            check_read: true,
            replay: Vec::new(),
            replayed: 0,
            preface_left: 0,
            authority: authority.into(),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Checked<T> {
    /// Plain HTTP/2: send the preface, read the server's first bytes (at least five, or to
    /// EOF) and fail with [`WrongScheme`] when they begin a TLS record or an HTTP/1 response
    /// (an HTTP/1 server reads the preface as a request: `PRI * HTTP/2.0`).
    pub async fn plain(mut io: T, authority: impl Into<String>) -> io::Result<Self> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let authority = authority.into();
        io.write_all(PREFACE).await?;
        let mut first = Vec::with_capacity(64);
        while first.len() < 5 {
            if io.read_buf(&mut first).await? == 0 {
                break;
            }
        }
        let server = if is_tls_record(&first) {
            Some(Speaks::Tls)
        } else if first.starts_with(b"HTTP/1.") {
            Some(Speaks::Http1)
        } else {
            None
        };
        if let Some(server) = server {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                WrongScheme { authority, server },
            ));
        }
        Ok(Checked {
            io,
            check_read: false,
            replay: first,
            replayed: 0,
            preface_left: PREFACE.len(),
            authority,
        })
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Checked<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.replayed < this.replay.len() {
            let rest = &this.replay[this.replayed..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.replayed += n;
            if this.replayed == this.replay.len() {
                this.replay = Vec::new();
                this.replayed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if !this.check_read {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        let first = &buf.filled()[before..];
        if first.is_empty() {
            return Poll::Ready(Ok(()));
        }
        this.check_read = false;
        if is_h2_settings(first) {
            buf.set_filled(before);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                WrongScheme {
                    authority: this.authority.clone(),
                    server: Speaks::PlainHttp2,
                },
            )));
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Checked<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.preface_left > 0 && !buf.is_empty() {
            // The client's preface, already sent: taken as written.
            let done = PREFACE.len() - this.preface_left;
            let n = buf.len().min(this.preface_left);
            if buf[..n] != PREFACE[done..done + n] {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the client's first bytes are not the HTTP/2 preface",
                )));
            }
            this.preface_left -= n;
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.preface_left > 0 {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &b[..]);
            return self.poll_write(cx, first);
        }
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The TCP connector of [`connect`]: TCP_NODELAY on, the endpoint's TLS (for `https://`) and
/// connect timeout laid over it by tonic, the server's first bytes checked below the TLS.
#[derive(Clone, Copy, Debug, Default)]
pub struct Connector;

impl tower::Service<Uri> for Connector {
    type Response = TokioIo<Checked<TcpStream>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(async move {
            let expect_tls = uri.scheme_str() == Some("https");
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host in URL"))?;
            let port = uri.port_u16().unwrap_or(if expect_tls { 443 } else { 80 });
            let authority = match uri.authority() {
                Some(a) if a.port().is_some() => a.to_string(),
                _ => format!("{host}:{port}"),
            };
            let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
            tcp.set_nodelay(true)?;
            let io = if expect_tls {
                Checked::tls(tcp, authority)
            } else {
                Checked::plain(tcp, authority).await?
            };
            Ok(TokioIo::new(io))
        })
    }
}

/// `endpoint.connect()` through [`Connector`].
pub async fn connect(endpoint: &Endpoint) -> Result<Channel, tonic::transport::Error> {
    endpoint.connect_with_connector(Connector).await
}

/// `endpoint.connect_lazy()` through [`Connector`].
pub fn connect_lazy(endpoint: &Endpoint) -> Channel {
    endpoint.connect_with_connector_lazy(Connector)
}

/// The message of the [`WrongScheme`] in `err`'s source chain, if any (an I/O error carries it
/// as its inner error, which `source()` skips).
pub fn find(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        let inner = e
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .map(|i| i as &(dyn std::error::Error + 'static));
        if let Some(w) = [Some(e), inner]
            .into_iter()
            .flatten()
            .find_map(|e| e.downcast_ref::<WrongScheme>())
        {
            return Some(w.to_string());
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A TLS server's answer to a plain HTTP/2 preface (rustls: fatal decode_error).
    const ALERT: &[u8] = &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32];
    /// A plain HTTP/2 server's first frame (hyper's SETTINGS, 24-byte payload, cut short).
    const SETTINGS: &[u8] = &[0, 0, 0x18, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 3, 0xe8];

    #[test]
    fn first_bytes_tell_tls_from_http2() {
        assert!(is_tls_record(ALERT));
        assert!(!is_tls_record(SETTINGS));
        assert!(is_h2_settings(SETTINGS));
        assert!(!is_h2_settings(ALERT));
        // A ServerHello record is TLS too; too few bytes to tell are not judged.
        assert!(is_tls_record(&[0x16, 0x03, 0x01, 0x00]));
        assert!(!is_tls_record(&[0x15]));
        assert!(!is_h2_settings(&[0, 0, 0x18]));
        // A frame of another type first, or one on a stream, is not a server's SETTINGS.
        assert!(!is_h2_settings(&[0, 0, 8, 7, 0, 0, 0, 0, 0]));
        assert!(!is_h2_settings(&[0, 0, 0, 4, 0, 0, 0, 0, 1]));
    }

    #[tokio::test]
    async fn http_to_a_tls_server_fails_the_connect_naming_https() {
        let (mut server, client) = tokio::io::duplex(256);
        let tls_server = tokio::spawn(async move {
            let mut got = [0u8; 24];
            server.read_exact(&mut got).await.unwrap();
            assert_eq!(got, PREFACE);
            server.write_all(ALERT).await.unwrap();
            server
        });
        let Err(e) = Checked::plain(client, "127.0.0.1:50051").await else {
            panic!("a TLS server's alert passed as HTTP/2");
        };
        tls_server.await.unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            find(&e).as_deref(),
            Some("the server at 127.0.0.1:50051 speaks TLS: use https://127.0.0.1:50051")
        );
    }

    #[tokio::test]
    async fn http_to_an_http1_server_fails_the_connect_saying_it_is_not_grpc() {
        let (mut server, client) = tokio::io::duplex(256);
        server
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        let Err(e) = Checked::plain(client, "127.0.0.1:9464").await else {
            panic!("an HTTP/1 answer passed as HTTP/2");
        };
        assert_eq!(
            find(&e).as_deref(),
            Some(
                "the server at 127.0.0.1:9464 answers in HTTP/1, not gRPC: is it the store's \
                 gRPC address (its --listen, not e.g. --metrics-listen)?"
            )
        );
    }

    /// Against an HTTP/2 server the connection is as if untouched: the server sees one
    /// preface, the client reads the server's bytes in order from the first.
    #[tokio::test]
    async fn http_to_an_http2_server_passes_every_byte_once() {
        let (mut server, client) = tokio::io::duplex(256);
        let h2_server = tokio::spawn(async move {
            server.write_all(SETTINGS).await.unwrap();
            let mut got = vec![0u8; PREFACE.len() + 3];
            server.read_exact(&mut got).await.unwrap();
            server.write_all(b"more").await.unwrap();
            got
        });
        let mut c = Checked::plain(client, "127.0.0.1:50051").await.unwrap();
        // The HTTP/2 client writes its preface (here in two pieces) and its first frame.
        c.write_all(&PREFACE[..10]).await.unwrap();
        c.write_all(&[&PREFACE[10..], b"abc"].concat())
            .await
            .unwrap();
        let got = h2_server.await.unwrap();
        assert_eq!(got, [PREFACE, b"abc"].concat());
        let mut read = vec![0u8; SETTINGS.len() + 4];
        c.read_exact(&mut read).await.unwrap();
        assert_eq!(read, [SETTINGS, b"more"].concat());
    }

    #[tokio::test]
    async fn https_to_a_plain_server_fails_the_first_read_naming_http() {
        for (sent, plain) in [(SETTINGS, true), (ALERT, false)] {
            let (mut server, client) = tokio::io::duplex(64);
            server.write_all(sent).await.unwrap();
            drop(server);
            let mut c = Checked::tls(client, "127.0.0.1:50051");
            let mut out = Vec::new();
            match c.read_to_end(&mut out).await {
                Err(e) => {
                    assert!(plain, "{e}");
                    assert_eq!(
                        e.to_string(),
                        "the server at 127.0.0.1:50051 speaks plain HTTP/2, not TLS: use \
                         http://127.0.0.1:50051"
                    );
                }
                // A TLS server's bytes pass through whole.
                Ok(_) => assert_eq!((plain, &out[..]), (false, sent)),
            }
        }
    }
}
