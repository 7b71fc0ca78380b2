//! Timestamps with sub-second precision (nanoseconds since the epoch, as `i128`) and Go-style
//! durations ("15s", "1.002s", "1m0.5s"), the way metrics-server prints its windows.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coxswain_api::time::{format_rfc3339, parse_rfc3339};

/// Nanoseconds since the Unix epoch.
pub type Nanos = i128;

pub const NANOS_PER_SEC: i128 = 1_000_000_000;

/// The wall clock, in nanoseconds since the epoch.
pub fn now_nanos() -> Nanos {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// RFC 3339 with the fraction Go's RFC3339Nano prints (trailing zeros trimmed).
pub fn format_nanos(t: Nanos) -> String {
    let secs = t.div_euclid(NANOS_PER_SEC);
    let frac = t.rem_euclid(NANOS_PER_SEC);
    let base = format_rfc3339(secs as i64);
    if frac == 0 {
        return base;
    }
    let digits = format!("{frac:09}");
    let digits = digits.trim_end_matches('0');
    format!("{}.{digits}Z", base.trim_end_matches('Z'))
}

/// Parse RFC 3339 keeping the fraction (up to nanoseconds). `None` when malformed.
pub fn parse_nanos(s: &str) -> Option<Nanos> {
    let secs = parse_rfc3339(s)?;
    let mut frac: i128 = 0;
    if s.as_bytes().get(19) == Some(&b'.') {
        let digits: String = s[20..].chars().take_while(char::is_ascii_digit).collect();
        let mut scale = NANOS_PER_SEC;
        for d in digits.chars().take(9) {
            scale /= 10;
            frac += i128::from(d.to_digit(10).unwrap_or(0)) * scale;
        }
    }
    Some(i128::from(secs) * NANOS_PER_SEC + frac)
}

/// Go's `time.Duration.String()` for non-negative durations: "0s", "500ms", "15s", "1.5s",
/// "1m0s", "1h2m3.5s".
pub fn go_duration(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0s".into();
    }
    if n < 1_000_000_000 {
        // Below a second Go picks ns, µs or ms.
        let (unit, scale) = if n < 1_000 {
            ("ns", 1u128)
        } else if n < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", frac_str(n, scale));
    }
    let total_secs = n / 1_000_000_000;
    let h = total_secs / 3600;
    let m = (total_secs / 60) % 60;
    let s_nanos = n - (h * 3600 + m * 60) * 1_000_000_000;
    let s = frac_str(s_nanos, 1_000_000_000);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// `n / scale` with the fraction's trailing zeros trimmed.
fn frac_str(n: u128, scale: u128) -> String {
    let whole = n / scale;
    let frac = n % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let f = format!("{frac:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// A duration as pushed by clients ("60s", "1.5m", "500ms", "1m30s"; bare numbers are seconds),
/// at most 10^9 s.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = coxswain_api::duration::parse_flag(s)?;
    if d > Duration::from_secs(1_000_000_000) {
        return Err(format!("invalid duration {s:?}: too long"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_matches_go() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_secs(15)), "15s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(1002)), "1.002s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(60)), "1m0s");
        assert_eq!(go_duration(Duration::from_millis(3_723_500)), "1h2m3.5s");
        assert_eq!(go_duration(Duration::from_nanos(1_500)), "1.5µs");
    }

    #[test]
    fn nanos_round_trip() {
        let t = 1_700_000_000 * NANOS_PER_SEC + 123_000_000;
        let s = format_nanos(t);
        assert_eq!(s, "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_nanos(&s), Some(t));
        assert_eq!(parse_nanos("2023-11-14T22:13:20Z"), Some(t - 123_000_000));
        assert_eq!(
            parse_nanos("2023-11-14T22:13:20.000000001Z"),
            Some(t - 122_999_999)
        );
        assert_eq!(parse_nanos("yesterday"), None);
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1d").is_err());
    }
}
