//! Name, label and value syntax (k8s.io/apimachinery/pkg/util/validation) and the checks built
//! on it: labels, annotations, port numbers and names, quantities.
use super::*;

pub(super) const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
pub(super) const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
pub(super) const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
pub(super) const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
pub(super) const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

pub(super) fn is_dns1123_label(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric();
    if !ok {
        out.push(DNS1123_LABEL_MSG.to_string());
    }
    out
}

pub(super) fn is_dns1035_label(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1].is_ascii_alphanumeric();
    if !ok {
        out.push(DNS1035_LABEL_MSG.to_string());
    }
    out
}

pub(super) fn is_dns1123_subdomain(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 253 {
        out.push("must be no more than 253 characters".to_string());
    }
    let ok = !s.is_empty()
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
        });
    if !ok {
        out.push(DNS1123_SUBDOMAIN_MSG.to_string());
    }
    out
}

pub(super) fn is_label_value_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    b.is_empty()
        || (b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric())
}

pub fn is_valid_label_value(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    if !is_label_value_syntax(s) {
        out.push(LABEL_VALUE_MSG.to_string());
    }
    out
}

/// A qualified name (label or annotation key): `[prefix/]name`.
pub fn is_qualified_name(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if name.contains('/') {
        out.push(format!("a qualified name {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"));
        return out;
    }
    if let Some(p) = prefix {
        if p.is_empty() {
            out.push("prefix part must be non-empty".to_string());
        } else {
            out.extend(
                is_dns1123_subdomain(p)
                    .into_iter()
                    .map(|m| format!("prefix part {m}")),
            );
        }
    }
    if name.is_empty() {
        out.push("name part must be non-empty".to_string());
    } else {
        if name.len() > 63 {
            out.push("name part must be no more than 63 characters".to_string());
        }
        if !is_label_value_syntax(name) {
            out.push(format!("name part {QUALIFIED_NAME_MSG}"));
        }
    }
    out
}

/// IANA service name: a named port.
pub(super) fn is_valid_port_name(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 15 {
        out.push("must be no more than 15 characters".to_string());
    }
    let b = s.as_bytes();
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    {
        out.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !b.iter().any(|c| c.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)".to_string());
    }
    if s.contains("--") {
        out.push("must not contain consecutive hyphens".to_string());
    }
    if s.starts_with('-') || s.ends_with('-') {
        out.push("must not begin or end with a hyphen".to_string());
    }
    out
}

pub(super) fn check(errs: &mut Errs, path: impl IntoPath + Copy, value: &str, msgs: Vec<String>) {
    for m in msgs {
        invalid_str(errs, path, value, &m);
    }
}

pub(super) fn validate_labels(
    errs: &mut Errs,
    path: impl IntoPath + Copy,
    labels: &BTreeMap<String, String>,
) {
    for (k, v) in labels {
        check(errs, path, k, is_qualified_name(k));
        check(errs, path, v, is_valid_label_value(v));
    }
}

pub(super) fn validate_annotations(
    errs: &mut Errs,
    path: impl IntoPath + Copy,
    ann: &BTreeMap<String, String>,
) {
    let mut total = 0;
    for (k, v) in ann {
        // Checked lower-cased, as upstream does; most keys already are.
        let lower: std::borrow::Cow<'_, str> = if k.bytes().any(|c| c.is_ascii_uppercase()) {
            k.to_ascii_lowercase().into()
        } else {
            k.as_str().into()
        };
        let msgs = is_qualified_name(&lower);
        check(errs, path, &lower, msgs);
        total += k.len() + v.len();
    }
    if total > 256 * 1024 {
        errs.push(FieldError::new(
            path.into_path(),
            format!("Too long: may not be more than {} bytes", 256 * 1024),
        ));
    }
}

pub(super) fn validate_port_number(errs: &mut Errs, path: impl IntoPath + Copy, port: i32) {
    if !(1..=65535).contains(&port) {
        invalid(errs, path, port, "must be between 1 and 65535, inclusive");
    }
}

pub(super) fn validate_int_or_port_name(
    errs: &mut Errs,
    path: impl IntoPath + Copy,
    port: Option<&IntOrString>,
) {
    match port {
        None => required(errs, path, ""),
        Some(p) if p.is_string => {
            if p.str_val.is_empty() {
                required(errs, path, "");
            } else {
                check(errs, path, &p.str_val, is_valid_port_name(&p.str_val));
            }
        }
        Some(p) => validate_port_number(errs, path, p.int_val),
    }
}

pub(super) fn validate_quantity(
    errs: &mut Errs,
    path: impl IntoPath + Copy,
    value: &str,
) -> Option<Quantity> {
    match Quantity::parse(value) {
        Ok(q) => Some(q),
        Err(e) => {
            invalid_str(errs, path, value, &e);
            None
        }
    }
}
