//! Client errors, by the gRPC status the store returned.
use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A stale resourceVersion or a failed precondition (ABORTED / FAILED_PRECONDITION).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
    /// The requested resourceVersion has left the store's watch window (OUT_OF_RANGE).
    #[error("gone: {0}")]
    Gone(String),
    #[error("transport: {0}")]
    Transport(tonic::Status),
    #[error("decode: {0}")]
    Decode(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
    }
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Error::AlreadyExists(_))
    }
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict(_))
    }
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::Gone(_))
    }
    /// The store has not reached the resourceVersion asked for (upstream's
    /// `isTooLargeResourceVersionError`, which also reads the message): list again with none.
    pub fn is_too_large_resource_version(&self) -> bool {
        matches!(self, Error::Gone(m) if m.contains("Too large resource version"))
    }
    /// A create refused because its namespace is terminating (upstream's
    /// `NamespaceTerminatingCause`): the store's Forbidden message is the only carrier the
    /// client keeps.
    pub fn is_namespace_terminating(&self) -> bool {
        self.to_string().contains("because it is being terminated")
    }
    /// A label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "not_found",
            Error::AlreadyExists(_) => "already_exists",
            Error::Conflict(_) => "conflict",
            Error::Invalid(_) => "invalid",
            Error::Gone(_) => "gone",
            Error::Transport(_) => "transport",
            Error::Decode(_) => "decode",
        }
    }
}

impl Error {
    /// A failed connect: the server's wrong scheme when that is why ([`crate::scheme`]),
    /// otherwise the transport error with its causes.
    pub fn connect(e: &tonic::transport::Error) -> Self {
        let m = crate::scheme::find(e).unwrap_or_else(|| {
            let mut m = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(c) = src {
                m = format!("{m}: {c}");
                src = c.source();
            }
            m
        });
        Error::Transport(tonic::Status::unavailable(m))
    }
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        // A connection refused for its scheme ("the server at H:P speaks TLS: use https://"),
        // rather than the bare "transport error" the status says.
        if let Some(m) = crate::scheme::find(&s) {
            return Error::Transport(tonic::Status::new(s.code(), m));
        }
        let m = s.message().to_string();
        match s.code() {
            Code::NotFound => Error::NotFound(m),
            Code::AlreadyExists => Error::AlreadyExists(m),
            Code::Aborted | Code::FailedPrecondition => Error::Conflict(m),
            Code::InvalidArgument => Error::Invalid(m),
            Code::OutOfRange => Error::Gone(m),
            _ => Error::Transport(s),
        }
    }
}

impl From<coxswain_api::Error> for Error {
    fn from(e: coxswain_api::Error) -> Self {
        Error::Decode(e.to_string())
    }
}
