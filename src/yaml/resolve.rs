//! What a plain YAML scalar means, by YAML 1.1's rules as go-yaml v2 applies them (the library
//! under sigs.k8s.io/yaml, so under every Kubernetes decoder): `yes`/`no`/`on`/`off` are
//! booleans, `0644` is octal, `0x1F` hex, `0b101` binary, `1_000` an integer, `.inf` a float,
//! `~` null; a timestamp-shaped value stays a string when decoded into a generic value.

/// A resolved scalar, before it becomes JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
}

/// The kind a plain scalar resolves to (go-yaml's resolve with no tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    Null,
    Bool,
    Int,
    Float,
    Timestamp,
    Merge,
    Str,
}

/// go-yaml v2's resolve(tag="", in): the value of an untagged plain scalar.
pub fn resolve_plain(s: &str) -> (Resolved, Scalar) {
    if let Some(v) = lookup(s) {
        return v;
    }
    let hint = s.as_bytes().first().copied();
    match hint {
        // Looked up above and not found: a string.
        None => {}
        Some(b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~') => {}
        Some(b'.') => {
            if let Some(f) = go_parse_float(s) {
                return (Resolved::Float, Scalar::Float(f));
            }
        }
        Some(b'0'..=b'9' | b'+' | b'-') => {
            if is_timestamp(s) {
                // Into a generic value go-yaml keeps a timestamp as its text.
                return (Resolved::Timestamp, Scalar::Str(s.to_string()));
            }
            let plain: String = s.chars().filter(|&c| c != '_').collect();
            match go_parse_int(&plain, true) {
                Ok(i) => return (Resolved::Int, Scalar::Int(i)),
                Err(range) => {
                    if let Ok(u) = go_parse_uint(&plain) {
                        return (Resolved::Int, Scalar::Uint(u));
                    }
                    if is_yaml_style_float(&plain) {
                        if let Some(f) = go_parse_float(&plain) {
                            return (Resolved::Float, Scalar::Float(f));
                        }
                    }
                    if range {
                        // Beyond 64 bits: go-yaml keeps a big integer; JSON carries it as a
                        // number, which only a float field can take.
                        if let Some(f) = big_int_as_float(&plain) {
                            return (Resolved::Int, Scalar::Float(f));
                        }
                    }
                }
            }
        }
        Some(_) => {}
    }
    (Resolved::Str, Scalar::Str(s.to_string()))
}

fn lookup(s: &str) -> Option<(Resolved, Scalar)> {
    Some(match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            (Resolved::Bool, Scalar::Bool(true))
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            (Resolved::Bool, Scalar::Bool(false))
        }
        "" | "~" | "null" | "Null" | "NULL" => (Resolved::Null, Scalar::Null),
        ".nan" | ".NaN" | ".NAN" => (Resolved::Float, Scalar::Float(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            (Resolved::Float, Scalar::Float(f64::INFINITY))
        }
        "-.inf" | "-.Inf" | "-.INF" => (Resolved::Float, Scalar::Float(f64::NEG_INFINITY)),
        "<<" => (Resolved::Merge, Scalar::Str("<<".to_string())),
        _ => return None,
    })
}

/// Go's strconv.ParseInt(s, 0, 64) (with `signed`) or the magnitude part of ParseUint: an
/// optional sign, then `0x`/`0o`/`0b` or a leading `0` (octal) or decimal digits. Err(true) is
/// a range error, Err(false) a syntax error.
pub fn go_parse_int(s: &str, signed: bool) -> Result<i64, bool> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') if signed => (true, &s[1..]),
        Some(b'+') if signed => (false, &s[1..]),
        _ => (false, s),
    };
    let mag = parse_magnitude(body)?;
    if neg {
        if mag > 1 << 63 {
            return Err(true);
        }
        Ok((mag as i64).wrapping_neg())
    } else {
        if mag > i64::MAX as u64 {
            return Err(true);
        }
        Ok(mag as i64)
    }
}

/// Go's strconv.ParseUint(s, 0, 64): no sign.
pub fn go_parse_uint(s: &str) -> Result<u64, bool> {
    parse_magnitude(s)
}

fn parse_magnitude(body: &str) -> Result<u64, bool> {
    let b = body.as_bytes();
    let (base, digits) = if b.len() >= 2 && b[0] == b'0' {
        match b[1] {
            b'x' | b'X' => (16, &body[2..]),
            b'o' | b'O' => (8, &body[2..]),
            b'b' | b'B' => (2, &body[2..]),
            _ => (8, &body[1..]),
        }
    } else {
        (10, body)
    };
    if digits.is_empty() && !(base == 8 && body.len() == 1) {
        return Err(false);
    }
    let mut v: u64 = 0;
    let mut overflow = false;
    for c in digits.chars() {
        let d = c.to_digit(base).ok_or(false)?;
        match v
            .checked_mul(u64::from(base))
            .and_then(|x| x.checked_add(u64::from(d)))
        {
            Some(x) => v = x,
            None => overflow = true,
        }
    }
    if overflow {
        return Err(true);
    }
    Ok(v)
}

/// go-yaml's yamlStyleFloat: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's strconv.ParseFloat for the decimal forms YAML reaches it with; None for a syntax error
/// or an out-of-range value (Go reports ErrRange, and go-yaml then keeps the text).
fn go_parse_float(s: &str) -> Option<f64> {
    let ok = s
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !ok || !is_yaml_style_float(s) {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

fn big_int_as_float(s: &str) -> Option<f64> {
    let body = s.trim_start_matches(['+', '-']);
    if !body.is_empty() && body.bytes().all(|c| c.is_ascii_digit()) {
        s.parse::<f64>().ok().filter(|f| f.is_finite())
    } else {
        None
    }
}

/// go-yaml v2's parseTimestamp: `YYYY-M-D`, `YYYY-M-D[Tt]h:m:s[.frac](Z|±hh:mm)` or
/// `YYYY-M-D h:m:s[.frac]`, with calendar-valid fields.
pub fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let mut i = 5;
    // 1 or 2 digits.
    let num = |i: &mut usize, max_len: usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && *i - start < max_len && b[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i == start {
            return None;
        }
        s[start..*i].parse().ok()
    };
    let year: u32 = s[..4].parse().unwrap_or(0);
    let Some(month) = num(&mut i, 2) else {
        return false;
    };
    if b.get(i) != Some(&b'-') {
        return false;
    }
    i += 1;
    let Some(day) = num(&mut i, 2) else {
        return false;
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return false;
    }
    if i == b.len() {
        return true;
    }
    let zoned = match b[i] {
        b'T' | b't' => true,
        b' ' => false,
        _ => return false,
    };
    i += 1;
    let (Some(h), true) = (num(&mut i, 2), b.get(i) == Some(&b':')) else {
        return false;
    };
    i += 1;
    let (Some(m), true) = (num(&mut i, 2), b.get(i) == Some(&b':')) else {
        return false;
    };
    i += 1;
    let Some(sec) = num(&mut i, 2) else {
        return false;
    };
    if h > 23 || m > 59 || sec > 59 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if !zoned {
        return i == b.len();
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            let z = &b[i + 1..];
            z.len() == 5
                && z[0].is_ascii_digit()
                && z[1].is_ascii_digit()
                && z[2] == b':'
                && z[3].is_ascii_digit()
                && z[4].is_ascii_digit()
                && s[i + 1..i + 3].parse::<u32>().is_ok_and(|h| h < 24)
                && s[i + 4..i + 6].parse::<u32>().is_ok_and(|m| m < 60)
        }
        _ => false,
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Go's strconv.FormatFloat(f, 'g', -1, bits) with go-yaml's names for the specials.
pub fn format_float_g(f: f64, bits32: bool) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // The shortest digits that round-trip, and the decimal exponent.
    let e = if bits32 {
        format!("{:e}", f as f32)
    } else {
        format!("{f:e}")
    };
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let sign = if neg { "-" } else { "" };
    // Go's 'g' with the shortest precision switches to %e at exponents < -4 or >= 6.
    if !(-4..6).contains(&exp) {
        let rest = &digits[1..];
        let m = if rest.is_empty() {
            digits[..1].to_string()
        } else {
            format!("{}.{rest}", &digits[..1])
        };
        let es = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{es}{:02}", exp.abs());
    }
    let n = digits.len() as i32;
    if exp >= n - 1 {
        format!("{sign}{digits}{}", "0".repeat((exp - n + 1) as usize))
    } else if exp >= 0 {
        let (a, b) = digits.split_at((exp + 1) as usize);
        format!("{sign}{a}.{b}")
    } else {
        format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_1_1_scalars_resolve_as_go_yaml_v2() {
        let cases: &[(&str, Scalar)] = &[
            ("0644", Scalar::Int(420)),
            ("0o644", Scalar::Int(420)),
            ("0x1F", Scalar::Int(31)),
            ("0b101", Scalar::Int(5)),
            ("-0b101", Scalar::Int(-5)),
            ("1_000", Scalar::Int(1000)),
            ("+12", Scalar::Int(12)),
            ("-0", Scalar::Int(0)),
            ("0", Scalar::Int(0)),
            ("08", Scalar::Float(8.0)),
            ("1e3", Scalar::Float(1000.0)),
            ("1.5", Scalar::Float(1.5)),
            (".5", Scalar::Float(0.5)),
            ("18446744073709551615", Scalar::Uint(u64::MAX)),
            ("yes", Scalar::Bool(true)),
            ("Y", Scalar::Bool(true)),
            ("on", Scalar::Bool(true)),
            ("NO", Scalar::Bool(false)),
            ("off", Scalar::Bool(false)),
            ("~", Scalar::Null),
            ("", Scalar::Null),
            ("Null", Scalar::Null),
            ("yES", Scalar::Str("yES".into())),
            ("2001-12-14", Scalar::Str("2001-12-14".into())),
            ("1.2.3", Scalar::Str("1.2.3".into())),
            ("-", Scalar::Str("-".into())),
            ("0x", Scalar::Str("0x".into())),
            ("12:30", Scalar::Str("12:30".into())),
            ("1e400", Scalar::Str("1e400".into())),
            ("nginx:1.25", Scalar::Str("nginx:1.25".into())),
        ];
        for (text, want) in cases {
            assert_eq!(&resolve_plain(text).1, want, "{text:?}");
        }
        assert_eq!(resolve_plain("<<").0, Resolved::Merge);
        assert!(matches!(resolve_plain(".inf").1, Scalar::Float(f) if f.is_infinite()));
    }

    #[test]
    fn timestamps_follow_go_yamls_formats() {
        for ts in [
            "2001-12-14",
            "2001-1-2",
            "2023-06-01T10:00:00Z",
            "2023-06-01t10:00:00.5+02:00",
            "2001-12-14 21:59:43.10",
        ] {
            assert!(is_timestamp(ts), "{ts}");
        }
        for not in [
            "2001-02-30",
            "2001-12",
            "20011-12-14",
            "2023-06-01T10:00:00",
            "2001-12-14x",
        ] {
            assert!(!is_timestamp(not), "{not}");
        }
    }

    #[test]
    fn floats_format_as_go_does() {
        assert_eq!(format_float_g(1.5, false), "1.5");
        assert_eq!(format_float_g(0.0001, false), "0.0001");
        assert_eq!(format_float_g(0.00001, false), "1e-05");
        assert_eq!(format_float_g(1e21, false), "1e+21");
        assert_eq!(format_float_g(123456789.0, false), "1.23456789e+08");
        assert_eq!(format_float_g(100000.0, false), "100000");
        assert_eq!(format_float_g(1000000.0, false), "1e+06");
    }
}
