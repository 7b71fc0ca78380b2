//! The store's error enum, and its mapping to gRPC status codes at the edge.
use coxswain_api::Kind;

use crate::backend::BackendError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{resource} \"{name}\" not found")]
    NotFound { resource: String, name: String },
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists { resource: String, name: String },
    /// A write lost a race or named a stale resourceVersion.
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {message}")]
    Conflict {
        resource: String,
        name: String,
        message: String,
    },
    #[error("{kind} \"{name}\" is invalid: {source}")]
    Invalid {
        kind: Kind,
        name: String,
        source: coxswain_api::Error,
    },
    /// Manifest text that does not parse, or names no known kind, or has fields no kind has.
    #[error("{0}")]
    InvalidManifest(coxswain_api::Error),
    /// The request itself is malformed (bad selector, unknown kind, undecodable object).
    #[error("{0}")]
    BadRequest(String),
    /// The request is well-formed but not allowed (deleting the default namespace, creating in
    /// a terminating namespace).
    #[error("{0}")]
    Forbidden(String),
    /// A watch asked for a resourceVersion that left the retained window.
    #[error("too old resource version: {requested} (oldest retained: {oldest})")]
    TooOld { requested: i64, oldest: i64 },
    /// A watch asked for a resourceVersion the store has not reached (it waited for it first).
    /// Like TooOld, the client relists.
    #[error("Too large resource version: {requested}, current: {current}")]
    TooLarge { requested: i64, current: i64 },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl StoreError {
    pub fn not_found(kind: Kind, name: &str) -> StoreError {
        StoreError::NotFound {
            resource: resource_name(kind),
            name: name.to_string(),
        }
    }

    /// A label for metrics.
    pub fn code(&self) -> tonic::Code {
        match self {
            StoreError::NotFound { .. } => tonic::Code::NotFound,
            StoreError::AlreadyExists { .. } => tonic::Code::AlreadyExists,
            StoreError::Conflict { .. } => tonic::Code::Aborted,
            StoreError::Invalid { .. }
            | StoreError::InvalidManifest(_)
            | StoreError::BadRequest(_) => tonic::Code::InvalidArgument,
            StoreError::Forbidden(_) => tonic::Code::FailedPrecondition,
            StoreError::TooOld { .. } | StoreError::TooLarge { .. } => tonic::Code::OutOfRange,
            StoreError::Backend(BackendError::Io(_)) => tonic::Code::Internal,
            StoreError::Backend(_) => tonic::Code::Unavailable,
        }
    }
}

/// "pods", "deployments.apps": how Kubernetes names a resource in messages.
pub fn resource_name(kind: Kind) -> String {
    match kind.group() {
        "" => kind.plural().to_string(),
        g => format!("{}.{g}", kind.plural()),
    }
}

/// The longest status message sent: it travels in a header, and clients refuse large headers
/// (many at 8–16 KiB in all). Longer messages — some echo their input — are cut.
pub const MAX_STATUS_MESSAGE: usize = 4096;

impl From<StoreError> for tonic::Status {
    fn from(e: StoreError) -> tonic::Status {
        tonic::Status::new(e.code(), cap_message(e.to_string()))
    }
}

/// Cut a message to [`MAX_STATUS_MESSAGE`] bytes, saying how much was cut.
pub fn cap_message(mut m: String) -> String {
    if m.len() > MAX_STATUS_MESSAGE {
        let mut end = MAX_STATUS_MESSAGE;
        while !m.is_char_boundary(end) {
            end -= 1;
        }
        let cut = m.len() - end;
        m.truncate(end);
        m.push_str(&format!("...(truncated {cut} bytes)"));
    }
    m
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
