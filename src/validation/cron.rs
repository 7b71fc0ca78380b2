//! CronJob schedules (robfig/cron's `ParseStandard`), time zones and Go durations.
use super::*;

/// robfig/cron's `ParseStandard`, including its `TZ=`/`CRON_TZ=` prefix (whose location must
/// load).
pub(super) fn validate_cron_with_tz(schedule: &str) -> Result<(), String> {
    let s = schedule.trim();
    if s.starts_with("TZ=") || s.starts_with("CRON_TZ=") {
        let (prefix, rest) = s.split_once(' ').unwrap_or((s, ""));
        let loc = prefix.split_once('=').map_or("", |(_, l)| l);
        if let Err(err) = crate::tz::load(loc) {
            return Err(format!("provided bad location {loc}: {err}"));
        }
        return validate_cron_schedule(rest);
    }
    validate_cron_schedule(s)
}

/// Kubernetes' `validateTimeZone`: each `/`-separated part is 1–14 of `[A-Za-z.\-_0-9+]`, not
/// `.`/`..` and not starting with `-`; `Local` is refused; and the zone must load from the tz
/// database ([`crate::tz::load`], Go's `time.LoadLocation`).
pub(super) fn validate_time_zone(e: &mut Errs, path: &str, tz: &str) {
    if tz.is_empty() {
        invalid_str(e, path, tz, "timeZone must be nil or non-empty string");
        return;
    }
    let part_ok = |p: &str| {
        p != "."
            && p != ".."
            && !p.starts_with('-')
            && (1..=14).contains(&p.len())
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'+'))
    };
    if !tz.split('/').all(part_ok) {
        invalid_str(e, path, tz, &format!("unknown time zone {tz}"));
        return;
    }
    if tz.eq_ignore_ascii_case("Local") {
        invalid_str(
            e,
            path,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        );
        if tz == "Local" {
            // Go's LoadLocation("Local") succeeds.
            return;
        }
    }
    if let Err(err) = crate::tz::load(tz) {
        invalid_str(e, path, tz, &err);
    }
}

/// Check a standard 5-field cron schedule (minute hour day-of-month month day-of-week) or a
/// macro (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @every <duration>),
/// as the cron library Kubernetes uses accepts them.
pub fn validate_cron_schedule(schedule: &str) -> Result<(), String> {
    let s = schedule.trim();
    if let Some(m) = s.strip_prefix('@') {
        return match m {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ if m.starts_with("every ") => {
                let d = m["every ".len()..].trim();
                if is_go_duration(d) {
                    Ok(())
                } else {
                    Err(format!("failed to parse duration {d}"))
                }
            }
            _ => Err(format!("unrecognized descriptor: {s}")),
        };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: {s}",
            fields.len()
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let specs: [(u32, u32, &[&str], u32, bool); 5] = [
        (0, 59, &[], 0, false),
        (0, 23, &[], 0, false),
        (1, 31, &[], 0, true),
        (1, 12, MONTHS, 1, false),
        (0, 6, DAYS, 0, true),
    ];
    for (field, (min, max, names, name_base, question)) in fields.iter().zip(specs) {
        for part in field.split(',') {
            parse_cron_part(part, min, max, names, name_base, question)?;
        }
    }
    Ok(())
}

pub(super) fn parse_cron_part(
    part: &str,
    min: u32,
    max: u32,
    names: &[&str],
    base: u32,
    question: bool,
) -> Result<(), String> {
    let (range, step) = match part.split_once('/') {
        Some((r, s)) => {
            let step: u32 = s
                .parse()
                .map_err(|_| format!("failed to parse int from {s}"))?;
            if step == 0 {
                return Err(format!("step of range should be a positive number: {part}"));
            }
            (r, Some(step))
        }
        None => (part, None),
    };
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + base);
        }
        s.parse::<u32>()
            .map_err(|_| format!("failed to parse int from {s}"))
    };
    let (lo, hi) = if range == "*" || (question && range == "?") {
        (min, max)
    } else if let Some((a, b)) = range.split_once('-') {
        (value(a)?, value(b)?)
    } else {
        let v = value(range)?;
        // "5/10" means from 5 to the maximum by 10.
        (v, if step.is_some() { max } else { v })
    };
    if lo < min {
        return Err(format!(
            "beginning of range ({lo}) below minimum ({min}): {part}"
        ));
    }
    if hi > max {
        return Err(format!("end of range ({hi}) above maximum ({max}): {part}"));
    }
    if lo > hi {
        return Err(format!(
            "beginning of range ({lo}) beyond end of range ({hi}): {part}"
        ));
    }
    Ok(())
}

pub(super) fn is_go_duration(d: &str) -> bool {
    let mut rest = d;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        if n == 0 {
            return false;
        }
        rest = &rest[n..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .find(|u| rest.starts_with(**u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}
