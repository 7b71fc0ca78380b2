//! The schedule's syntax: robfig/cron's parser (`cron.ParseStandard`: five fields, names,
//! ranges, steps, macros) and the time zone it is evaluated in.
use std::sync::Arc;

use coxswain_api::tz::Zone;

use super::Schedule;

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct Bounds {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    names_from: u32,
}

const MINUTE: Bounds = Bounds {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    names_from: 0,
};
const HOUR: Bounds = Bounds {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    names_from: 0,
};
const DOM: Bounds = Bounds {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
    names_from: 0,
};
const MONTH: Bounds = Bounds {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTHS,
    names_from: 1,
};
const DOW: Bounds = Bounds {
    name: "day of week",
    min: 0,
    max: 6,
    names: &DAYS,
    names_from: 0,
};

fn value(b: &Bounds, s: &str) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(b.names_from + i as u32);
    }
    let v: u32 = s
        .parse()
        .map_err(|_| format!("failed to parse {} {s:?}", b.name))?;
    if v < b.min || v > b.max {
        return Err(format!(
            "{} {v} out of range [{}, {}]",
            b.name, b.min, b.max
        ));
    }
    Ok(v)
}

/// One field: the bit set of allowed values and whether it is a bare `*`/`?`.
fn field(b: &Bounds, expr: &str) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for part in expr.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| format!("failed to parse step {s:?} in {part:?}"))?;
                if step == 0 {
                    return Err(format!(
                        "step of range should be a positive number: {part:?}"
                    ));
                }
                (r, Some(step))
            }
            None => (part, None),
        };
        let (start, end, is_star) = if range == "*" || range == "?" {
            (b.min, b.max, true)
        } else {
            match range.split_once('-') {
                Some((lo, hi)) => (value(b, lo)?, value(b, hi)?, false),
                None => {
                    let v = value(b, range)?;
                    // "N/step" means "N-max/step".
                    (v, if step.is_some() { b.max } else { v }, false)
                }
            }
        };
        if start > end {
            return Err(format!(
                "beginning of range ({start}) beyond end of range ({end}): {part:?}"
            ));
        }
        let step = step.unwrap_or(1);
        if is_star && step == 1 {
            star = true;
        }
        let mut v = start;
        while v <= end {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, star))
}

/// Load `spec.timeZone` (unset or empty: UTC) from the tz database. The error is Go's
/// `unknown time zone NAME`.
pub fn time_zone(tz: Option<&str>) -> Result<Arc<Zone>, String> {
    coxswain_api::tz::load(tz.unwrap_or(""))
}

impl Schedule {
    /// Parse a schedule in UTC.
    pub fn parse(expr: &str) -> Result<Schedule, String> {
        let expr = expr.trim();
        if expr.is_empty() {
            return Err("empty spec string".into());
        }
        if expr.starts_with("TZ=") || expr.starts_with("CRON_TZ=") {
            return Err(
                "TZ and CRON_TZ in the schedule are not supported; use spec.timeZone".into(),
            );
        }
        let expanded = match expr.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => return Err(format!("unrecognized descriptor: {expr}")),
            _ => expr,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: {expr:?}",
                fields.len()
            ));
        }
        let (minute, _) = field(&MINUTE, fields[0])?;
        let (hour, _) = field(&HOUR, fields[1])?;
        let (dom, dom_star) = field(&DOM, fields[2])?;
        let (month, _) = field(&MONTH, fields[3])?;
        let (dow, dow_star) = field(&DOW, fields[4])?;
        Ok(Schedule {
            minute,
            hour,
            dom,
            month,
            dow,
            dom_star,
            dow_star,
            zone: Arc::new(Zone::utc()),
        })
    }

    /// Parse a schedule evaluated in the named `time_zone` (see [`time_zone`]).
    pub fn parse_in(expr: &str, time_zone: Option<&str>) -> Result<Schedule, String> {
        let schedule = Schedule::parse(expr)?;
        Ok(Schedule {
            zone: self::time_zone(time_zone)?,
            ..schedule
        })
    }
}

/// Zone tests need the tz database; they fail (never skip) without it.
#[cfg(test)]
pub(super) fn in_zone(expr: &str, tz: &str) -> Schedule {
    assert!(
        coxswain_api::tz::database_present(),
        "the tz database is missing (no America/New_York under {:?}): install tzdata (apt-get install -y tzdata) or set ZONEINFO",
        coxswain_api::tz::search_dirs()
    );
    Schedule::parse_in(expr, Some(tz)).unwrap_or_else(|e| panic!("{expr} in {tz}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors() {
        for bad in [
            "",
            "* * * *",
            "* * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * 32 * *",
            "* * * 13 *",
            "* * * * 7",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
            "* * * FOO *",
            "@every 5m",
            "@reboot",
            "TZ=UTC * * * * *",
            "1,,2 * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn zone_names() {
        let utc = Schedule::parse_in("0 9 * * *", None).unwrap();
        assert_eq!(utc.zone().name(), "UTC");
        assert_eq!(in_zone("0 9 * * *", "Etc/UTC").zone().name(), "Etc/UTC");
        for bad in ["Nope/Zone", "+05:30", "Local", "../zoneinfo/UTC"] {
            assert_eq!(
                Schedule::parse_in("0 9 * * *", Some(bad)).err(),
                Some(format!("unknown time zone {bad}")),
                "{bad}"
            );
        }
    }
}
