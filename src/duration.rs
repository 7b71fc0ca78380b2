//! Durations, with one parser for the whole project:
//! - [`parse`]: Go's `time.ParseDuration` syntax, as Kubernetes writes durations in objects and
//!   configuration ("1m30s", "250ms", "1.5h", "100us", "0");
//! - [`parse_flag`]: the same, and also bare seconds ("3"), as our command-line flags and pushed
//!   metric TTLs accept.
//!
//! Negative, non-finite and absurdly long durations (over 10^12 s) are errors.
use std::time::Duration;

/// The longest duration accepted, in seconds (about 31,700 years).
const MAX_SECS: f64 = 1e12;

/// A Go-style duration: one or more `<number><unit>` parts, units ns, us/µs, ms, s, m, h;
/// "0" alone needs no unit.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("invalid duration \"\": empty".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("invalid duration {s:?}: expected a number"));
        }
        let n: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: bad number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("invalid duration {s:?}: missing unit")),
            u => {
                return Err(format!(
                    "invalid duration {s:?}: unknown unit {u:?} (ns, us, ms, s, m, h)"
                ))
            }
        };
        total += n * mult;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > MAX_SECS {
        return Err(format!("invalid duration {s:?}: too long"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// [`parse`], or a bare number of seconds ("3", "0.5").
pub fn parse_flag(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let n: f64 = t
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: bad number"))?;
        if !n.is_finite() || n > MAX_SECS {
            return Err(format!("invalid duration {s:?}: too long"));
        }
        return Ok(Duration::from_secs_f64(n));
    }
    parse(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style() {
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        for bad in ["", "5", "5x", "-1s", "1d", "s", "1e400s", "99999999999999h"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flags_also_take_bare_seconds() {
        assert_eq!(parse_flag("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_flag("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_flag("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_flag("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "3x", "-3", "1.2.3"] {
            assert!(parse_flag(bad).is_err(), "{bad:?}");
        }
    }
}
