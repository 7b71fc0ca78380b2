//! Counting HTTP/1.x requests in a client's byte stream without changing it, so the proxy's
//! per-Service request counter shows requests, not only connections, when clients keep
//! connections alive (an HPA reading a request rate needs that). Request heads are parsed with
//! httparse; bodies are skipped by Content-Length or chunked framing. A stream that is not
//! HTTP/1.x (TLS, HTTP/2, a protocol upgrade, CONNECT, a head over 64 KiB) stops being counted
//! from that point; the bytes pass through untouched either way. Pure; O(1) per byte.

/// Longest request head looked at.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers a counted request may have (more: the stream stops being counted).
const MAX_HEADERS: usize = 100;
/// Longest chunk-size or trailer line looked at.
const MAX_LINE: usize = 4096;

#[derive(Debug)]
enum State {
    /// Waiting for (the rest of) a request head, kept in `head`.
    Head,
    /// Skipping this many body bytes, then a head.
    Body(u64),
    /// Reading a chunk-size line (in `head`).
    ChunkSize,
    /// Skipping a chunk's data and its CRLF.
    ChunkData(u64),
    /// Reading trailer lines after the last chunk (in `head`), until an empty line.
    Trailers,
    /// Not HTTP/1.x (any more): nothing is counted.
    Off,
}

/// Counts the requests of one client→server byte stream.
#[derive(Debug)]
pub struct RequestCounter {
    state: State,
    head: Vec<u8>,
}

impl Default for RequestCounter {
    fn default() -> Self {
        RequestCounter {
            state: State::Head,
            head: Vec::new(),
        }
    }
}

impl RequestCounter {
    /// Feed the next bytes the client sent; returns how many requests began in them.
    pub fn feed(&mut self, mut data: &[u8]) -> u64 {
        let mut count = 0;
        while !data.is_empty() {
            match self.state {
                State::Off => return count,
                State::Body(n) | State::ChunkData(n) => {
                    let take = (n as usize).min(data.len());
                    data = &data[take..];
                    let left = n - take as u64;
                    self.state = match (&self.state, left) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), l) => State::Body(l),
                        (_, 0) => State::ChunkSize,
                        (_, l) => State::ChunkData(l),
                    };
                }
                State::Head => {
                    if self.head.is_empty() {
                        // Empty lines before a request line are allowed (RFC 9112 §2.2).
                        let skip = data.iter().take_while(|b| **b == b'\r' || **b == b'\n');
                        data = &data[skip.count()..];
                        match data.first() {
                            None => continue,
                            // A method is a token; anything else (TLS, binary) is not HTTP/1.
                            Some(b) if !b.is_ascii_alphabetic() => {
                                self.state = State::Off;
                                continue;
                            }
                            Some(_) => {}
                        }
                        // Fast path: a whole head in this read (the usual case) is parsed in
                        // place, with no copy and no separate search for its end.
                        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                        let mut req = httparse::Request::new(&mut headers);
                        match req.parse(data) {
                            Ok(httparse::Status::Complete(n)) => {
                                count += 1;
                                self.state = Self::framing(&req);
                                data = &data[n..];
                                continue;
                            }
                            // The rest comes in later reads: buffered below.
                            Ok(httparse::Status::Partial) => {}
                            Err(_) => {
                                self.state = State::Off;
                                continue;
                            }
                        }
                    }
                    let (used, done) = self.fill_head(data, MAX_HEAD, b"\r\n\r\n");
                    data = &data[used..];
                    if !done {
                        continue;
                    }
                    let (request, next) = self.after_head();
                    count += u64::from(request);
                    self.state = next;
                    self.head.clear();
                }
                State::ChunkSize => {
                    let (used, done) = self.fill_head(data, MAX_LINE, b"\r\n");
                    data = &data[used..];
                    if !done {
                        continue;
                    }
                    self.state = match chunk_size(&self.head) {
                        // The size line's CRLF is consumed; the data's trailing CRLF is skipped
                        // with the data.
                        Some(0) => State::Trailers,
                        Some(n) => State::ChunkData(n.saturating_add(2)),
                        None => State::Off,
                    };
                    self.head.clear();
                }
                State::Trailers => {
                    let (used, done) = self.fill_head(data, MAX_LINE, b"\r\n");
                    data = &data[used..];
                    if !done {
                        continue;
                    }
                    if self.head == b"\r\n" {
                        self.state = State::Head;
                    }
                    self.head.clear();
                }
            }
        }
        count
    }

    /// Append bytes to `head` up to and including the first `end`; returns the bytes used and
    /// whether `end` was found. Past `max` bytes the stream is given up on.
    fn fill_head(&mut self, data: &[u8], max: usize, end: &[u8]) -> (usize, bool) {
        // Search from where a match could start, including the tail already buffered.
        let from = self.head.len().saturating_sub(end.len() - 1);
        let room = max.saturating_sub(self.head.len()).max(1);
        let window = &data[..data.len().min(room)];
        self.head.extend_from_slice(window);
        if let Some(pos) = self.head[from..].windows(end.len()).position(|w| w == end) {
            let end_at = from + pos + end.len();
            let over = self.head.len() - end_at;
            self.head.truncate(end_at);
            return (window.len() - over, true);
        }
        if self.head.len() >= max {
            self.state = State::Off;
            self.head = Vec::new();
        }
        (window.len(), false)
    }

    /// Whether the complete head in `head` is an HTTP/1.x request, and the state after it.
    fn after_head(&self) -> (bool, State) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&self.head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return (false, State::Off),
        }
        (true, Self::framing(&req))
    }

    /// Where the next request starts after this one's head.
    fn framing(req: &httparse::Request<'_, '_>) -> State {
        if req.method == Some("CONNECT") {
            return State::Off;
        }
        let mut length: Option<u64> = None;
        let mut chunked = false;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("upgrade") {
                return State::Off;
            }
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = std::str::from_utf8(h.value).is_ok_and(|v| {
                    v.rsplit(',')
                        .next()
                        .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
                });
                if !chunked {
                    // A request body without a length: cannot be framed.
                    return State::Off;
                }
            }
            if h.name.eq_ignore_ascii_case("content-length") {
                match std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                {
                    Some(n) if length.is_none_or(|l| l == n) => length = Some(n),
                    _ => return State::Off,
                }
            }
        }
        if chunked {
            State::ChunkSize
        } else {
            match length {
                Some(n) if n > 0 => State::Body(n),
                _ => State::Head,
            }
        }
    }
}

/// The size of a chunk-size line ("1a;ext=x\r\n").
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r\n")?;
    let hex = line.split(|b| *b == b';').next()?;
    let hex = std::str::from_utf8(hex).ok()?.trim();
    if hex.is_empty() || hex.len() > 15 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `stream` in pieces of `step` bytes.
    fn count(stream: &[u8], step: usize) -> u64 {
        let mut c = RequestCounter::default();
        stream.chunks(step).map(|p| c.feed(p)).sum()
    }

    #[test]
    fn keep_alive_and_pipelined_requests_count_once_each() {
        let mut s = Vec::new();
        for _ in 0..5 {
            s.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        }
        s.extend_from_slice(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nGET / HTTP");
        s.extend_from_slice(b"PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        s.extend_from_slice(b"4;x=y\r\nGET \r\n10\r\nGET / HTTP/1.1\r\n\r\n0\r\nX-T: 1\r\n\r\n");
        s.extend_from_slice(b"HEAD / HTTP/1.0\r\n\r\n");
        for step in [1, 2, 3, 7, 64, s.len()] {
            assert_eq!(count(&s, step), 8, "in pieces of {step}");
        }
    }

    #[test]
    fn streams_that_are_not_http1_stop_counting() {
        // HTTP/2's preface, TLS, an upgrade, CONNECT, a bad length: counted up to there.
        assert_eq!(count(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 5), 0);
        assert_eq!(count(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01], 1), 0);
        let up = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(count(up, 4), 1);
        assert_eq!(
            count(b"CONNECT a:443 HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", 4),
            1
        );
        let bad = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxGET / HTTP/1.1\r\n\r\n";
        assert_eq!(count(bad, 3), 1);
        // A head that never ends is given up at 64 KiB: bounded memory.
        let mut c = RequestCounter::default();
        let mut s = b"GET / HTTP/1.1\r\n".to_vec();
        s.extend(std::iter::repeat_n(b'a', 200_000));
        assert_eq!(c.feed(&s), 0);
        assert!(c.head.capacity() <= MAX_HEAD * 2);
        assert_eq!(c.feed(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 0);
        assert_eq!(
            count(b"\r\nGET / HTTP/1.1\r\n\r\n", 1),
            1,
            "a leading empty line"
        );
    }
}
