//! Why a request failed: the source error, kept until its kind (for the summary) or its message
//! is needed.
use crate::h1;
use crate::stats::ErrorKind;

/// Why a request failed, kept as the source error until a message is needed.
pub(crate) enum Failure {
    Io(ErrorKind, std::io::Error),
    Hyper(hyper::Error),
    Timeout(ErrorKind),
    Fast(h1::Error),
}

impl Failure {
    /// A failure to connect: refused, or any other connect error.
    pub(crate) fn connect(e: std::io::Error) -> Failure {
        let kind = if e.kind() == std::io::ErrorKind::ConnectionRefused {
            ErrorKind::ConnectRefused
        } else {
            ErrorKind::Connect
        };
        Failure::Io(kind, e)
    }

    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Failure::Io(k, _) | Failure::Timeout(k) => *k,
            Failure::Hyper(e) => classify(e),
            Failure::Fast(h1::Error::Io(e)) => io_kind(e),
            Failure::Fast(h1::Error::Closed) => ErrorKind::ClosedMidResponse,
            Failure::Fast(h1::Error::Invalid(_)) => ErrorKind::InvalidResponse,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            Failure::Io(_, e) => e.to_string(),
            Failure::Hyper(e) => {
                let mut s = e.to_string();
                let mut src = std::error::Error::source(e);
                while let Some(c) = src {
                    s.push_str(": ");
                    s.push_str(&c.to_string());
                    src = c.source();
                }
                s
            }
            Failure::Timeout(k) => k.name().to_string(),
            Failure::Fast(h1::Error::Io(e)) => e.to_string(),
            Failure::Fast(h1::Error::Closed) => ErrorKind::ClosedMidResponse.name().to_string(),
            Failure::Fast(h1::Error::Invalid(m)) => m.clone(),
        }
    }
}

fn classify(e: &hyper::Error) -> ErrorKind {
    if e.is_incomplete_message() {
        return ErrorKind::ClosedMidResponse;
    }
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        return ErrorKind::InvalidResponse;
    }
    if e.is_timeout() {
        return ErrorKind::Timeout;
    }
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return io_kind(io);
        }
        src = c.source();
    }
    if e.is_canceled() || e.is_closed() {
        return ErrorKind::ClosedMidResponse;
    }
    ErrorKind::Other
}

fn io_kind(e: &std::io::Error) -> ErrorKind {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => ErrorKind::Reset,
        std::io::ErrorKind::UnexpectedEof => ErrorKind::ClosedMidResponse,
        _ => ErrorKind::Other,
    }
}
