//! Durations, with one parser for the whole project: Go's `time.ParseDuration`, as Kubernetes
//! reads durations in flags, objects and configuration ("1m30s", "250ms", "1.5h", "-1.5h",
//! "1µs", "0"). Every flag and config field goes through [`parse`] (a duration that may not be
//! negative) or [`parse_signed`] (Go's full range, in nanoseconds).
//!
//! The arithmetic is Go's own: integers of nanoseconds, a fraction scaled through a float64 only
//! for the fractional part, and the same overflow bound (2^63 - 1 ns, about 292 years).
use std::time::Duration;

/// Parse a Go duration into signed nanoseconds, exactly as `time.ParseDuration`: an optional
/// sign, then one or more `<decimal><unit>` parts with units ns, us, µs (U+00B5 or U+03BC), ms,
/// s, m, h. "0" (signed or not) needs no unit. The error text is Go's.
pub fn parse_signed(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(c) = s.chars().next() {
        if c == '-' || c == '+' {
            neg = c == '-';
            s = &s[1..];
        }
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut d: u64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes()[0];
        if !(b == b'.' || b.is_ascii_digit()) {
            return Err(invalid());
        }
        // [0-9]*
        let before = s.len();
        let (v, rest) = leading_int(s).ok_or_else(invalid)?;
        s = rest;
        let pre = before != s.len();
        // (\.[0-9]*)?
        let mut post = false;
        let (mut f, mut scale) = (0u64, 1f64);
        if let Some(rest) = s.strip_prefix('.') {
            let before = rest.len();
            let (ff, sc, rest) = leading_fraction(rest);
            f = ff;
            scale = sc;
            post = before != rest.len();
            s = rest;
        }
        if !pre && !post {
            return Err(invalid());
        }
        // The unit: everything up to the next digit or '.'.
        let i = s
            .bytes()
            .position(|c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if i == 0 {
            return Err(format!("time: missing unit in duration {}", quote(orig)));
        }
        let (u, rest) = s.split_at(i);
        s = rest;
        let unit: u64 = match u {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    quote(u),
                    quote(orig)
                ))
            }
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        let mut v = v * unit;
        if f > 0 {
            // A float64 keeps fractions of an hour nanosecond-accurate (at most 3.6e12).
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(d as i64)
}

/// A Go duration that may not be negative, as a `Duration` (every period, timeout and window
/// of our flags and configuration).
pub fn parse(s: &str) -> Result<Duration, String> {
    let ns = parse_signed(s)?;
    if ns < 0 {
        return Err(format!(
            "invalid duration {}: must not be negative",
            quote(s)
        ));
    }
    Ok(Duration::from_nanos(ns as u64))
}

/// [`parse`], or a bare number of seconds ("3", "0.5"), for the few inputs whose peers take
/// one (loadgen's `-t 5`, as hey's; a pushed metric's TTL). Coxswain's own flags use [`parse`].
pub fn parse_flag(s: &str) -> Result<Duration, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return parse(&format!("{s}s"));
    }
    parse(s)
}

/// Go's leadingInt: the digits at the start, or None when they overflow 2^63.
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let mut x: u64 = 0;
    let mut i = 0;
    for &c in s.as_bytes() {
        if !c.is_ascii_digit() {
            break;
        }
        if x > (1 << 63) / 10 {
            return None;
        }
        x = x * 10 + u64::from(c - b'0');
        if x > 1 << 63 {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// Go's leadingFraction: the digits after a '.', as an integer and its scale; digits past what
/// fits are consumed and ignored.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let (mut x, mut scale, mut overflow) = (0u64, 1f64, false);
    let mut i = 0;
    for &c in s.as_bytes() {
        if !c.is_ascii_digit() {
            break;
        }
        i += 1;
        if overflow {
            continue;
        }
        if x > ((1u64 << 63) - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > 1 << 63 {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[i..])
}

/// Go's `quote`: the text in double quotes, with `"` and `\` escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const MS: i64 = 1_000_000;
    const US: i64 = 1_000;
    const MIN: i64 = 60 * S;
    const H: i64 = 60 * MIN;

    /// Go's own table (src/time/time_test.go, parseDurationTests).
    #[test]
    fn go_parse_duration_table() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600 * MS),
            ("5.s", 5 * S),
            (".5s", 500 * MS),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4 * MS),
            ("1.0040s", S + 4 * MS),
            ("100.00100s", 100 * S + MS),
            ("10ns", 10),
            ("11us", 11 * US),
            ("12\u{b5}s", 12 * US),
            ("12\u{3bc}s", 12 * US),
            ("13ms", 13 * MS),
            ("14s", 14 * S),
            ("15m", 15 * MIN),
            ("16h", 16 * H),
            ("3h30m", 3 * H + 30 * MIN),
            ("10.5s4m", 4 * MIN + 10 * S + 500 * MS),
            ("-2m3.4s", -(2 * MIN + 3 * S + 400 * MS)),
            ("1h2m3s4ms5us6ns", H + 2 * MIN + 3 * S + 4 * MS + 5 * US + 6),
            ("39h9m14.425s", 39 * H + 9 * MIN + 14 * S + 425 * MS),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * MIN),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * MIN),
            ("0.830103483285477580700h", 49 * MIN + 48 * S + 372_539_827),
            // The project's own uses.
            ("1m30s", 90 * S),
            ("1.5h", 90 * MIN),
            ("-1.5h", -90 * MIN),
            ("300ms", 300 * MS),
            ("2h45m", 2 * H + 45 * MIN),
            ("1us", US),
            ("1\u{b5}s", US),
        ];
        for (text, want) in cases {
            assert_eq!(parse_signed(text), Ok(*want), "{text:?}");
        }
    }

    /// Go's parseDurationErrorTests, with Go's messages.
    #[test]
    fn go_parse_duration_errors() {
        let cases: &[(&str, &str)] = &[
            ("", r#"time: invalid duration """#),
            ("3", r#"time: missing unit in duration "3""#),
            ("-", r#"time: invalid duration "-""#),
            ("s", r#"time: invalid duration "s""#),
            (".", r#"time: invalid duration ".""#),
            ("-.", r#"time: invalid duration "-.""#),
            (".s", r#"time: invalid duration ".s""#),
            ("+.s", r#"time: invalid duration "+.s""#),
            ("1d", r#"time: unknown unit "d" in duration "1d""#),
            ("9223372036854775808ns", "time: invalid duration"),
            ("9223372036854775.808us", "time: invalid duration"),
            ("9223372036854ms775us808ns", "time: invalid duration"),
            ("-9223372036854775809ns", "time: invalid duration"),
            (" 1s", "time: invalid duration"),
        ];
        for (text, want) in cases {
            let err = parse_signed(text).expect_err(text);
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn flags_and_configs_take_no_negative_durations() {
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("-0"), Ok(Duration::ZERO));
        assert_eq!(parse("1us"), Ok(Duration::from_micros(1)));
        let err = parse("-1.5h").unwrap_err();
        assert!(err.contains("must not be negative"), "{err}");
        assert!(parse("3").is_err());
    }

    #[test]
    fn parse_flag_also_takes_bare_seconds() {
        assert_eq!(parse_flag("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_flag("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_flag("10s"), Ok(Duration::from_secs(10)));
        for bad in ["", "3x", "-3", "1.2.3", "."] {
            assert!(parse_flag(bad).is_err(), "{bad:?}");
        }
    }
}
