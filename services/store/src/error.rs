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
    /// A list at a revision no longer held (HTTP 410 Expired, as kube-apiserver's list): with,
    /// for a paged list, the token that continues it at the most recent revision instead
    /// (upstream's `ListMeta.Continue` of the Status), in the ErrorInfo's "continue".
    #[error("{message}")]
    Expired {
        message: String,
        continue_token: Option<String>,
    },
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
            StoreError::TooOld { .. }
            | StoreError::TooLarge { .. }
            | StoreError::Expired { .. } => tonic::Code::OutOfRange,
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

/// The most bytes of field paths and descriptions sent as BadRequest violations.
pub const MAX_VIOLATION_BYTES: usize = 1024;

/// The `domain` of the ErrorInfo every store error carries.
pub const ERROR_DOMAIN: &str = "coxswain.io";

impl StoreError {
    /// Kubernetes' StatusReason (`metav1.StatusReason`) of this error, as kubectl prints it in
    /// "Error from server (Reason)".
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::NotFound { .. } => "NotFound",
            StoreError::AlreadyExists { .. } => "AlreadyExists",
            StoreError::Conflict { .. } => "Conflict",
            StoreError::Invalid { .. } | StoreError::InvalidManifest(_) => "Invalid",
            StoreError::BadRequest(_) => "BadRequest",
            StoreError::Forbidden(_) => "Forbidden",
            StoreError::TooOld { .. } | StoreError::Expired { .. } => "Expired",
            StoreError::TooLarge { .. } => "Timeout",
            StoreError::Backend(BackendError::Io(_)) => "InternalError",
            StoreError::Backend(_) => "ServiceUnavailable",
        }
    }

    /// The structured details: an ErrorInfo (reason, domain, and the StatusDetails' name,
    /// group and kind when the error is about one object) and, for invalid objects, a BadRequest
    /// field violation per field error.
    pub fn details(&self) -> tonic_types::ErrorDetails {
        let mut meta = std::collections::HashMap::new();
        let mut violations: &[coxswain_api::error::FieldError] = &[];
        match self {
            StoreError::NotFound { resource, name }
            | StoreError::AlreadyExists { resource, name }
            | StoreError::Conflict { resource, name, .. } => {
                let (kind, group) = resource.split_once('.').unwrap_or((resource, ""));
                meta.insert("name".to_string(), name.clone());
                meta.insert("kind".to_string(), kind.to_string());
                meta.insert("group".to_string(), group.to_string());
            }
            StoreError::Invalid { kind, name, source } => {
                meta.insert("name".to_string(), name.clone());
                meta.insert("kind".to_string(), kind.as_str().to_string());
                meta.insert("group".to_string(), kind.group().to_string());
                if let coxswain_api::Error::Invalid(errs) = source {
                    violations = errs;
                }
            }
            StoreError::InvalidManifest(coxswain_api::Error::Invalid(errs)) => violations = errs,
            StoreError::Expired {
                continue_token: Some(t),
                ..
            } => {
                meta.insert("continue".to_string(), t.clone());
            }
            _ => {}
        }
        let mut d = tonic_types::ErrorDetails::new();
        d.set_error_info(self.reason(), ERROR_DOMAIN, meta);
        // Details travel in a header too (base64, beside the message): as many violations as
        // fit in MAX_VIOLATION_BYTES; the message names every one anyway.
        let mut budget = MAX_VIOLATION_BYTES;
        for v in violations {
            let cost = v.path.len() + v.message.len();
            if cost > budget {
                break;
            }
            budget -= cost;
            d.add_bad_request_violation(v.path.clone(), v.message.clone());
        }
        d
    }
}

impl From<StoreError> for tonic::Status {
    fn from(e: StoreError) -> tonic::Status {
        use tonic_types::StatusExt;
        tonic::Status::with_error_details(e.code(), cap_message(e.to_string()), e.details())
    }
}

/// A status built outside [`StoreError`] (a malformed request, an RBAC refusal, an internal
/// failure) with the same structured details: an ErrorInfo carrying Kubernetes' StatusReason.
pub fn status(code: tonic::Code, reason: &str, message: impl Into<String>) -> tonic::Status {
    use tonic_types::StatusExt;
    let mut d = tonic_types::ErrorDetails::new();
    d.set_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new());
    tonic::Status::with_error_details(code, cap_message(message.into()), d)
}

/// INVALID_ARGUMENT with reason BadRequest.
pub fn bad_request(message: impl Into<String>) -> tonic::Status {
    status(tonic::Code::InvalidArgument, "BadRequest", message)
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

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::error::FieldError;
    use tonic_types::StatusExt;

    #[test]
    fn statuses_built_outside_store_errors_carry_the_reason() {
        let st = bad_request("kind: Required value");
        assert_eq!(st.code(), tonic::Code::InvalidArgument);
        assert_eq!(st.message(), "kind: Required value");
        let d = st.get_error_details();
        assert_eq!(d.error_info().expect("ErrorInfo").reason, "BadRequest");
        let st = status(tonic::Code::PermissionDenied, "Forbidden", "no");
        assert_eq!(
            st.get_error_details().error_info().unwrap().reason,
            "Forbidden"
        );
    }

    #[test]
    fn statuses_carry_the_reason_and_field_violations() {
        let st = tonic::Status::from(StoreError::AlreadyExists {
            resource: "deployments.apps".into(),
            name: "web".into(),
        });
        assert_eq!(st.code(), tonic::Code::AlreadyExists);
        let d = st.get_error_details();
        let info = d.error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "AlreadyExists");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(info.metadata["kind"], "deployments");
        assert_eq!(info.metadata["group"], "apps");
        assert_eq!(info.metadata["name"], "web");
        assert!(d.bad_request().is_none());

        let st = tonic::Status::from(StoreError::Invalid {
            kind: Kind::Pod,
            name: "p".into(),
            source: coxswain_api::Error::Invalid(vec![
                FieldError::new("spec.containers[0].image", "Required value"),
                FieldError::new("metadata.name", "Invalid value: \"A\""),
            ]),
        });
        assert_eq!(st.code(), tonic::Code::InvalidArgument);
        let d = st.get_error_details();
        assert_eq!(d.error_info().map(|i| i.reason.as_str()), Some("Invalid"));
        let v = &d.bad_request().expect("BadRequest").field_violations;
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].field, "spec.containers[0].image");
        assert_eq!(v[0].description, "Required value");

        // Many long violations stay within the header budget.
        let many = (0..1000)
            .map(|i| FieldError::new(format!("spec.f{i}"), "x".repeat(100)))
            .collect();
        let st = tonic::Status::from(StoreError::InvalidManifest(coxswain_api::Error::Invalid(
            many,
        )));
        let n = st
            .get_error_details()
            .bad_request()
            .map_or(0, |b| b.field_violations.len());
        assert!(n > 0 && n < 11, "{n}");
        assert!(st.details().len() < MAX_STATUS_MESSAGE + MAX_VIOLATION_BYTES + 512);

        for (e, reason) in [
            (StoreError::Forbidden("no".into()), "Forbidden"),
            (
                StoreError::TooOld {
                    requested: 1,
                    oldest: 5,
                },
                "Expired",
            ),
            (StoreError::BadRequest("bad".into()), "BadRequest"),
        ] {
            let st = tonic::Status::from(e);
            assert_eq!(
                st.get_error_details()
                    .error_info()
                    .map(|i| i.reason.clone()),
                Some(reason.to_string())
            );
        }
    }
}
