//! The API crate's error enum.

/// One problem with a field, named by its path (`spec.template.spec.containers[0].image`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest text is not valid YAML/JSON (with its location).
    #[error("{0}")]
    Parse(String),
    /// Fields are invalid; every problem found is listed.
    #[error("{}", join_field_errors(.0))]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    UnknownKind(String),
    #[error("decoding object: {0}")]
    Decode(String),
    #[error("invalid selector {0}")]
    Selector(String),
}

fn join_field_errors(errs: &[FieldError]) -> String {
    errs.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
