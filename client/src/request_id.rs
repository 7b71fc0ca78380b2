//! The request id a client sends in the `x-request-id` gRPC metadata (kube-apiserver's
//! Audit-ID idea): the store logs it with the request and echoes it in the response
//! headers, so one `coxctl apply` can be found in the store's log.
//!
//! An id is 1 to [`MAX_LEN`] characters of `A-Z a-z 0-9 . _ : -`: bounded, and safe in a log
//! line and a header. A server ignores an id that is not (it never fails the request for it).

/// The metadata key.
pub const HEADER: &str = "x-request-id";

/// The longest id accepted.
pub const MAX_LEN: usize = 64;

/// Is `id` a well-formed request id?
pub fn valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A fresh random id in the UUID v4 text form (as the apiserver's Audit-ID).
pub fn generate() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bounded_and_of_a_safe_charset() {
        assert!(valid("my-apply-1"));
        assert!(valid("a.b_c:d-E9"));
        assert!(valid(&"x".repeat(MAX_LEN)));
        assert!(!valid(""));
        assert!(!valid(&"x".repeat(MAX_LEN + 1)));
        for bad in ["a b", "a\nb", "a\"b", "é", "a/b", "{}"] {
            assert!(!valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_are_valid_uuids_and_differ() {
        let a = generate();
        assert!(valid(&a), "{a}");
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, generate());
    }
}
