//! The HTTP/1.1 fast path: one request serialized once per run, written as is on every
//! exchange, and responses framed in place by a [`Reader`] that does no I/O of its own, so the
//! closed loop's event loop ([`evloop`](crate::evloop)) and the open loop's tokio tasks
//! ([`Conn`]) frame alike — the load generator spends its CPU on the wire and not on itself.
//!
//! Why not hyper here: on the 2 cores this project runs on, the client and the server share the
//! CPU, so every microsecond the client spends per request is taken from the server it measures.
//! Through hyper's client a keep-alive request cost ~24 µs of user CPU (a `Request` and its
//! `HeaderMap` built per request, a hand-off through a channel to a spawned connection task and
//! back, the response head copied into a `HeaderMap`, the body walked frame by frame) against
//! wrk's ~4 µs, and loadgen reached 0.74–0.90× wrk's req/s (BENCHMARKS.md). This path does only
//! what a load generator needs: a `write` of prepared bytes, `read`s into one reusable buffer,
//! the head parsed by `httparse` (hyper's own parser: no hand-written header tokenizer) and the
//! body skipped, counted, by its framing (RFC 9112 §6.3): none for HEAD, 1xx, 204 and 304;
//! `Transfer-Encoding: chunked` (chunk sizes by `httparse::parse_chunk_size`); `Content-Length`;
//! otherwise to the end of the connection. Interim 1xx responses are skipped.
//!
//! hyper stays the general path: HTTP/2 (`--http2`), requests with a user-given
//! `Transfer-Encoding`, and `--engine hyper` for HTTP/1.1 as a cross-check.
use std::io;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderMap, CONTENT_LENGTH};
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response head (and chunked trailer section) accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Response headers parsed at most (more is an invalid response, as in hyper's default).
const MAX_HEADERS: usize = 100;
const BUF: usize = 16 * 1024;

/// A request as it goes on the wire.
#[derive(Clone, Debug)]
pub struct Wire {
    bytes: Bytes,
    /// A HEAD request: responses have no body whatever their headers say.
    head: bool,
}

impl Wire {
    /// The request line, `headers` (which carry Host, User-Agent and Connection as the caller
    /// wants them) and the body with its Content-Length. None when the request needs framing
    /// this path does not write (a user-given Transfer-Encoding).
    pub fn new(method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> Option<Wire> {
        if headers.contains_key(http::header::TRANSFER_ENCODING) {
            return None;
        }
        let mut b = BytesMut::with_capacity(256 + body.len());
        b.put_slice(method.as_str().as_bytes());
        b.put_u8(b' ');
        b.put_slice(path.as_bytes());
        b.put_slice(b" HTTP/1.1\r\n");
        for (k, v) in headers {
            if k == CONTENT_LENGTH {
                continue;
            }
            b.put_slice(k.as_str().as_bytes());
            b.put_slice(b": ");
            b.put_slice(v.as_bytes());
            b.put_slice(b"\r\n");
        }
        // As hyper: a length for any body, and an explicit 0 for methods that expect one.
        if !body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
            b.put_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        b.put_slice(b"\r\n");
        b.put_slice(body);
        Some(Wire {
            bytes: b.freeze(),
            head: *method == Method::HEAD,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A HEAD request (its responses have no body).
    pub fn is_head(&self) -> bool {
        self.head
    }
}

/// What one exchange got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Body bytes (after chunked decoding).
    pub bytes: u64,
    /// The connection may carry the next request.
    pub reusable: bool,
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum Error {
    /// Reading or writing failed (reset, broken pipe...).
    Io(io::Error),
    /// The server closed the connection before the response was complete.
    Closed,
    /// Not a valid HTTP/1.x response.
    Invalid(String),
}

/// A response being read, without I/O: the read buffer, the last head parsed, and where the
/// framing of the current response stands. The caller reads into [`Reader::space`], reports the
/// bytes with [`Reader::filled`] and asks [`Reader::advance`] whether the response is complete,
/// so the same framing serves the async [`Conn`] and the event loop of
/// [`evloop`](crate::evloop), which reads whatever a wake-up brought on any connection.
///
/// A reader outlives its connections: without keep-alive every request has a new connection,
/// and its buffer and memo go on to the next (no allocation, zeroing or parse per request).
pub struct Reader {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    memo: Memo,
    st: St,
    head_request: bool,
    status: u16,
    keep: bool,
    bytes: u64,
    /// Some byte of the current response arrived (a failure before that on a reused
    /// connection is the server having closed it while idle).
    received: bool,
}

/// Where the current response's framing stands.
#[derive(Clone, Copy)]
enum St {
    Head,
    /// Body bytes still to come.
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkCrlf,
    /// The trailer section after the last chunk; how many bytes of it were seen.
    Trailers(usize),
    ToClose,
}

/// The last final response head parsed, byte for byte, and what it parsed to. A server answers
/// the same request with the same head (a Date header changes it once a second), so a head that
/// starts with exactly these bytes — which end with the empty line that ends a head — parses to
/// the same status, framing and connection decision without running the parser again.
#[derive(Default)]
struct Memo {
    head: Vec<u8>,
    /// (status, framing, keep-alive, for a HEAD request); None: nothing memoized.
    parsed: Option<(u16, Framing, bool, bool)>,
}

/// Heads longer than this are parsed every time (copying them would cost more than it saves).
const MEMO_MAX: usize = 1024;

#[derive(Clone, Copy)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    ToClose,
}

impl Default for Reader {
    fn default() -> Self {
        Reader::new()
    }
}

impl Reader {
    pub fn new() -> Reader {
        Reader {
            // Zeroed by the allocator (calloc): pages a short response never reaches are not
            // touched, so 1,000 idle readers do not cost 16 MiB of memory.
            buf: vec![0u8; BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            memo: Memo::default(),
            st: St::Head,
            head_request: false,
            status: 0,
            keep: false,
            bytes: 0,
            received: false,
        }
    }

    /// A new connection: nothing buffered (what the last one left is dropped).
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Starts reading the response to the request just sent (a HEAD request's responses have
    /// no body). Bytes left over from the previous response mean the server sent more than it
    /// framed: an invalid response.
    pub fn begin(&mut self, head_request: bool) -> Result<(), Error> {
        self.received = false;
        if self.start != self.end {
            return Err(Error::Invalid(
                "bytes after the end of the previous response".into(),
            ));
        }
        self.start = 0;
        self.end = 0;
        self.st = St::Head;
        self.head_request = head_request;
        self.bytes = 0;
        Ok(())
    }

    /// Nothing of the current response arrived.
    pub fn nothing_received(&self) -> bool {
        !self.received
    }

    /// Where the next read goes: the buffer's free end, made room for by moving the unparsed
    /// bytes to the front, or by growing the buffer up to [`MAX_HEAD`] for a long head.
    pub fn space(&mut self) -> Result<&mut [u8], Error> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < MAX_HEAD {
                let mut bigger = vec![0u8; MAX_HEAD].into_boxed_slice();
                bigger[..self.end].copy_from_slice(&self.buf[..self.end]);
                self.buf = bigger;
            } else {
                return Err(Error::Invalid(format!(
                    "response head over {} KiB",
                    MAX_HEAD / 1024
                )));
            }
        }
        Ok(&mut self.buf[self.end..])
    }

    /// `n` (> 0) bytes were read into [`Reader::space`].
    pub fn filled(&mut self, n: usize) {
        self.end += n;
        self.received |= n > 0;
    }

    /// Frames what was read so far: Some(response) once it is complete (the bytes after it stay
    /// buffered), None while more is needed.
    pub fn advance(&mut self) -> Result<Option<Response>, Error> {
        loop {
            let avail = self.end - self.start;
            match self.st {
                St::Head => {
                    if avail == 0 {
                        return Ok(None);
                    }
                    let Some((status, framing, keep)) = self.head()? else {
                        return Ok(None);
                    };
                    if status == 101 {
                        return Err(Error::Invalid(
                            "101 Switching Protocols is not supported".into(),
                        ));
                    }
                    // Interim responses are skipped.
                    if (100..200).contains(&status) {
                        continue;
                    }
                    self.status = status;
                    self.keep = keep;
                    self.st = match framing {
                        Framing::None => return Ok(Some(self.done(keep))),
                        Framing::Length(n) => {
                            self.bytes = n;
                            St::Length(n)
                        }
                        Framing::Chunked => St::ChunkSize,
                        Framing::ToClose => St::ToClose,
                    };
                }
                St::Length(n) => {
                    let left = self.skip(n);
                    if left > 0 {
                        self.st = St::Length(left);
                        return Ok(None);
                    }
                    return Ok(Some(self.done(self.keep)));
                }
                St::ChunkSize => {
                    match httparse::parse_chunk_size(&self.buf[self.start..self.end]) {
                        Ok(httparse::Status::Complete((used, 0))) => {
                            self.start += used;
                            self.st = St::Trailers(0);
                        }
                        Ok(httparse::Status::Complete((used, size))) => {
                            self.start += used;
                            self.bytes += size;
                            self.st = St::ChunkData(size);
                        }
                        Ok(httparse::Status::Partial) => {
                            if avail >= MAX_HEAD {
                                return Err(Error::Invalid("chunk size line too long".into()));
                            }
                            return Ok(None);
                        }
                        Err(_) => return Err(Error::Invalid("invalid chunk size".into())),
                    }
                }
                St::ChunkData(n) => {
                    let left = self.skip(n);
                    if left > 0 {
                        self.st = St::ChunkData(left);
                        return Ok(None);
                    }
                    self.st = St::ChunkCrlf;
                }
                St::ChunkCrlf => {
                    if avail < 2 {
                        return Ok(None);
                    }
                    if &self.buf[self.start..self.start + 2] != b"\r\n" {
                        return Err(Error::Invalid("chunk data not followed by CRLF".into()));
                    }
                    self.start += 2;
                    self.st = St::ChunkSize;
                }
                St::Trailers(seen) => {
                    let rest = &self.buf[self.start..self.end];
                    let Some(i) = rest.windows(2).position(|w| w == b"\r\n") else {
                        if seen + rest.len() > MAX_HEAD {
                            return Err(Error::Invalid("trailers too long".into()));
                        }
                        return Ok(None);
                    };
                    self.start += i + 2;
                    if i == 0 {
                        return Ok(Some(self.done(self.keep)));
                    }
                    if seen + i + 2 > MAX_HEAD {
                        return Err(Error::Invalid("trailers too long".into()));
                    }
                    self.st = St::Trailers(seen + i + 2);
                }
                St::ToClose => {
                    self.bytes += avail as u64;
                    self.start = self.end;
                    return Ok(None);
                }
            }
        }
    }

    /// The connection reached its end: the response is complete if its body was delimited by
    /// the close, cut short otherwise.
    pub fn eof(&mut self) -> Result<Response, Error> {
        match self.st {
            St::ToClose => Ok(self.done(false)),
            _ => Err(Error::Closed),
        }
    }

    fn done(&mut self, keep: bool) -> Response {
        let reusable = keep && !matches!(self.st, St::ToClose);
        self.st = St::Head;
        Response {
            status: self.status,
            bytes: self.bytes,
            reusable,
        }
    }

    /// Skips up to `n` buffered bytes; returns how many are still to come.
    fn skip(&mut self, n: u64) -> u64 {
        let have = ((self.end - self.start) as u64).min(n);
        self.start += have as usize;
        n - have
    }

    /// Parses a response head: (status, body framing, whether the connection stays open), or
    /// None when it is not all here yet.
    fn head(&mut self) -> Result<Option<(u16, Framing, bool)>, Error> {
        let head_request = self.head_request;
        let avail = &self.buf[self.start..self.end];
        if let Some((status, framing, keep, head)) = self.memo.parsed {
            let n = self.memo.head.len();
            if head == head_request && avail.len() >= n && avail[..n] == self.memo.head[..] {
                self.start += n;
                return Ok(Some((status, framing, keep)));
            }
        }
        // Uninitialized: zeroing 100 headers per response cost more than parsing them.
        let mut hs = [std::mem::MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
        let mut r = httparse::Response::new(&mut []);
        match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut r, avail, &mut hs)
        {
            Ok(httparse::Status::Complete(len)) => {
                let status = r.code.unwrap_or(0);
                let v11 = r.version == Some(1);
                let (framing, keep) = framing(status, v11, head_request, r.headers)?;
                if status >= 200 && len <= MEMO_MAX {
                    self.memo.head.clear();
                    self.memo.head.extend_from_slice(&avail[..len]);
                    self.memo.parsed = Some((status, framing, keep, head_request));
                }
                self.start += len;
                Ok(Some((status, framing, keep)))
            }
            Ok(httparse::Status::Partial) => {
                if avail.len() >= MAX_HEAD {
                    return Err(Error::Invalid(format!(
                        "response head over {} KiB",
                        MAX_HEAD / 1024
                    )));
                }
                Ok(None)
            }
            Err(e) => Err(Error::Invalid(format!("response head: {e}"))),
        }
    }
}

/// One connection and its [`Reader`], driven by tokio (the open loop's fast path).
pub struct Conn {
    s: TcpStream,
    r: Reader,
}

impl Conn {
    /// A connection reading with a previous connection's reader (see [`Conn::into_reader`]) or
    /// a new one.
    pub fn new(s: TcpStream, reader: Option<Reader>) -> Conn {
        let mut r = reader.unwrap_or_default();
        r.reset();
        Conn { s, r }
    }

    /// Closes the connection, keeping its reader for the next one.
    pub fn into_reader(self) -> Reader {
        self.r
    }

    /// Nothing of the last exchange's response arrived.
    pub fn nothing_received(&self) -> bool {
        self.r.nothing_received()
    }

    /// Sends the request and reads its whole response.
    pub async fn exchange(&mut self, w: &Wire) -> Result<Response, Error> {
        self.exchange_after(w, 0).await
    }

    /// [`Conn::exchange`] when the first `sent` bytes of the request were already written on
    /// this connection's socket.
    pub async fn exchange_after(&mut self, w: &Wire, sent: usize) -> Result<Response, Error> {
        self.r.begin(w.head)?;
        if sent < w.bytes.len() {
            self.s
                .write_all(&w.bytes[sent..])
                .await
                .map_err(Error::Io)?;
        }
        loop {
            if let Some(resp) = self.r.advance()? {
                return Ok(resp);
            }
            let n = self.s.read(self.r.space()?).await.map_err(Error::Io)?;
            if n == 0 {
                return self.r.eof();
            }
            self.r.filled(n);
        }
    }
}

/// The body's framing and whether the connection stays open (RFC 9112 §6.3, §9.3).
fn framing(
    status: u16,
    v11: bool,
    head_request: bool,
    headers: &[httparse::Header<'_>],
) -> Result<(Framing, bool), Error> {
    let (mut close, mut keep_alive) = (false, false);
    let mut chunked = None;
    let mut length: Option<u64> = None;
    for h in headers {
        let name = h.name;
        // The length first: most headers are none of the three. The spellings servers send
        // are compared as is before ignoring case, byte by byte.
        if name.len() == 14
            && (name == "Content-Length"
                || name == "content-length"
                || name.eq_ignore_ascii_case("content-length"))
        {
            let v = content_length(h.value)
                .ok_or_else(|| Error::Invalid("invalid Content-Length".into()))?;
            if length.is_some_and(|l| l != v) {
                return Err(Error::Invalid("conflicting Content-Length values".into()));
            }
            length = Some(v);
        } else if name.len() == 17
            && (name == "Transfer-Encoding"
                || name == "transfer-encoding"
                || name.eq_ignore_ascii_case("transfer-encoding"))
        {
            // The final coding decides: chunked, or a body delimited by the close.
            let last = h.value.rsplit(|b| *b == b',').next().unwrap_or(b"");
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.len() == 10
            && (name == "Connection"
                || name == "connection"
                || name.eq_ignore_ascii_case("connection"))
        {
            match h.value {
                b"keep-alive" => keep_alive = true,
                b"close" => close = true,
                v => {
                    for t in v.split(|b| *b == b',') {
                        let t = t.trim_ascii();
                        close |= t.eq_ignore_ascii_case(b"close");
                        keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
                    }
                }
            }
        }
    }
    let keep = if v11 { !close } else { keep_alive && !close };
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        Framing::None
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) => Framing::ToClose,
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::ToClose,
        }
    };
    Ok((framing, keep))
}

/// A Content-Length value: ASCII digits (optional whitespace around), no sign, no overflow.
fn content_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |n, b| {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use tokio::net::TcpListener;

    fn wire(method: Method, body: &[u8]) -> Wire {
        let mut h = HeaderMap::new();
        h.insert(http::header::HOST, HeaderValue::from_static("a:1"));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("99"));
        Wire::new(&method, "/p?q=1", &h, body).unwrap()
    }

    #[test]
    fn content_lengths_are_digits_only() {
        assert_eq!(content_length(b" 121 "), Some(121));
        assert_eq!(content_length(b"0"), Some(0));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"1 2",
            b"0x10",
            b"99999999999999999999",
        ] {
            assert_eq!(
                content_length(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn requests_are_serialized_once_with_their_length() {
        assert_eq!(
            wire(Method::GET, b"").as_bytes(),
            b"GET /p?q=1 HTTP/1.1\r\nhost: a:1\r\n\r\n"
        );
        assert_eq!(
            wire(Method::POST, b"xyz").as_bytes(),
            b"POST /p?q=1 HTTP/1.1\r\nhost: a:1\r\ncontent-length: 3\r\n\r\nxyz"
        );
        assert_eq!(
            wire(Method::PUT, b"").as_bytes(),
            b"PUT /p?q=1 HTTP/1.1\r\nhost: a:1\r\ncontent-length: 0\r\n\r\n"
        );
        let mut h = HeaderMap::new();
        h.insert(
            http::header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        assert!(Wire::new(&Method::POST, "/", &h, b"").is_none());
    }

    /// Serves `replies` in order on one connection (each after a request head arrives), then
    /// closes; returns the client's connection.
    async fn serve(replies: Vec<&'static [u8]>) -> Conn {
        serve_as(replies, true).await
    }

    /// [`serve`], writing each reply byte by byte or in one write.
    async fn serve_as(replies: Vec<&'static [u8]>, byte_by_byte: bool) -> Conn {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            for r in replies {
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                // Byte by byte: every partial state of the parser is exercised.
                let _ = s.set_nodelay(true);
                if !byte_by_byte {
                    if s.write_all(r).await.is_err() {
                        return;
                    }
                    continue;
                }
                for b in r {
                    if s.write_all(&[*b]).await.is_err() {
                        return;
                    }
                }
            }
        });
        Conn::new(TcpStream::connect(addr).await.unwrap(), None)
    }

    #[tokio::test]
    async fn frames_every_kind_of_response_body() {
        let mut c = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
        ])
        .await;
        let get = wire(Method::GET, b"");
        let r = |status, bytes, reusable| Response {
            status,
            bytes,
            reusable,
        };
        assert_eq!(c.exchange(&get).await.unwrap(), r(200, 5, true));
        assert_eq!(c.exchange(&get).await.unwrap(), r(201, 19, true));
        assert_eq!(c.exchange(&get).await.unwrap(), r(204, 0, true));
        assert_eq!(c.exchange(&get).await.unwrap(), r(304, 0, true));
        assert_eq!(c.exchange(&get).await.unwrap(), r(200, 2, true));
        assert_eq!(c.exchange(&get).await.unwrap(), r(503, 1, false));
        // The server is gone: nothing arrives.
        assert!(matches!(
            c.exchange(&get).await,
            Err(Error::Closed | Error::Io(_))
        ));
        assert!(c.nothing_received());
    }

    #[tokio::test]
    async fn a_repeated_head_comes_from_the_memo_and_any_other_is_parsed() {
        const A: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        // The same head but for one digit of the length, and a head A's is a prefix of.
        const B: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhello!!";
        const C: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n01234567890123456789012345678901234567890123456789";
        const HEAD_A: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        const CLOSE: &[u8] =
            b"HTTP/1.1 503 Busy\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        let mut c = serve_as(vec![A, A, B, A, C, HEAD_A, A], false).await;
        let (get, head) = (wire(Method::GET, b""), wire(Method::HEAD, b""));
        let r = |status, bytes, reusable| Response {
            status,
            bytes,
            reusable,
        };
        assert_eq!(c.exchange(&get).await.unwrap(), r(200, 5, true));
        assert_eq!(c.r.memo.head, HEAD_A);
        assert_eq!(c.exchange(&get).await.unwrap(), r(200, 5, true));
        assert_eq!(c.exchange(&get).await.unwrap(), r(200, 7, true));
        assert_eq!(c.exchange(&get).await.unwrap(), r(200, 5, true));
        assert_eq!(c.exchange(&get).await.unwrap(), r(200, 50, true));
        // The same head for a HEAD request: no body, whatever the memo says for a GET.
        assert_eq!(c.exchange(&head).await.unwrap(), r(200, 0, true));
        assert_eq!(c.exchange(&get).await.unwrap(), r(200, 5, true));
        // The memo goes with the buffer to the next connection.
        let spare = c.into_reader();
        assert_eq!(spare.memo.head, HEAD_A);
        let mut c = serve_as(vec![A, CLOSE], false).await;
        c.r.memo = spare.memo;
        assert_eq!(c.exchange(&get).await.unwrap(), r(200, 5, true));
        assert_eq!(c.exchange(&get).await.unwrap(), r(503, 5, false));
    }

    #[tokio::test]
    async fn head_responses_and_close_delimited_bodies() {
        let mut c = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\nuntil the end",
        ])
        .await;
        let head = wire(Method::HEAD, b"");
        let r = c.exchange(&head).await.unwrap();
        assert_eq!((r.status, r.bytes, r.reusable), (200, 0, true));
        let r = c.exchange(&wire(Method::GET, b"")).await.unwrap();
        assert_eq!((r.status, r.bytes, r.reusable), (200, 13, false));
    }

    #[tokio::test]
    async fn broken_responses_are_errors_not_panics() {
        let cases: Vec<(&'static [u8], &str)> = vec![
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
                "closed",
            ),
            (b"SSH-2.0-OpenSSH\r\n\r\n", "invalid"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "invalid",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "invalid",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
                "invalid",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                "closed",
            ),
            (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "invalid"),
            (b"HTTP/1.1 200 OK\r\nContent-Le", "closed"),
        ];
        for (reply, want) in cases {
            let mut c = serve(vec![reply]).await;
            let got = c.exchange(&wire(Method::GET, b"")).await;
            let kind = match &got {
                Err(Error::Closed) => "closed",
                Err(Error::Invalid(_)) => "invalid",
                _ => "other",
            };
            assert_eq!(kind, want, "{:?}: {got:?}", String::from_utf8_lossy(reply));
        }
    }
}
