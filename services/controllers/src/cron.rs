//! CronJob logic: a 5-field cron engine and the CronJob controller's decisions, after Kubernetes'
//! `pkg/controller/cronjob` and the robfig/cron parser it uses (`cron.ParseStandard`).
//!
//! Schedule syntax: `minute hour day-of-month month day-of-week`, each field a comma-separated
//! list of `*`, `?`, `N`, `A-B`, with an optional `/step` (`*/5`, `1-10/2`, and `N/step` meaning
//! `N-max/step`); months may be `JAN`–`DEC` and weekdays `SUN`–`SAT` (case-insensitive, 0 =
//! Sunday, 0–6). Macros: `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`,
//! `@hourly`. As in robfig, when both day-of-month and day-of-week are restricted (neither is a
//! bare `*`/`?`) a day matches if EITHER matches; otherwise both must.
//!
//! Not supported (rejected by [`Schedule::parse`]): `@every`, `TZ=`/`CRON_TZ=` prefixes (the
//! API's `timeZone` field is the way), seconds fields.
//!
//! Time zones: [`parse_time_zone`] accepts unset, `UTC`, `Etc/UTC`, `GMT`, `Etc/GMT`, `Z` and
//! fixed offsets (`+05:30`, `-0800`, `+09`); named zones such as `Europe/Berlin` need the tz
//! database (with its daylight-saving rules) and are rejected for now.
use crate::time::{civil_from_days, days_in_month, weekday};

/// Kubernetes gives up counting missed start times beyond this many.
pub const MAX_MISSED: u32 = 100;
/// How far ahead [`Schedule::next_after`] searches (like robfig: five years).
const SEARCH_DAYS: i64 = 5 * 366 + 1;

/// A parsed schedule. Times are seconds since the epoch (UTC); matching happens in the
/// schedule's fixed zone offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    dom_star: bool,
    dow_star: bool,
    offset: i64,
}

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

/// Parse a time zone into a fixed offset from UTC in seconds (east positive). See the module
/// docs for what is accepted.
pub fn parse_time_zone(tz: Option<&str>) -> Result<i64, String> {
    let tz = tz.unwrap_or("").trim();
    if matches!(
        tz,
        "" | "UTC" | "Etc/UTC" | "GMT" | "Etc/GMT" | "Z" | "Etc/Zulu" | "Zulu"
    ) {
        return Ok(0);
    }
    let bad = || {
        format!(
            "unknown time zone {tz:?}: only UTC and fixed offsets such as +05:30 are supported (named zones need tz data)"
        )
    };
    let (sign, rest) = match tz.as_bytes().first() {
        Some(b'+') => (1, &tz[1..]),
        Some(b'-') => (-1, &tz[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|c| c.is_ascii_digit())
        || !matches!(digits.len(), 2 | 4)
        || (rest.contains(':') && rest.len() != 5)
    {
        return Err(bad());
    }
    let h: i64 = digits[..2].parse().map_err(|_| bad())?;
    let m: i64 = if digits.len() == 4 {
        digits[2..].parse().map_err(|_| bad())?
    } else {
        0
    };
    if h > 14 || m > 59 {
        return Err(bad());
    }
    Ok(sign * (h * 3600 + m * 60))
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
            offset: 0,
        })
    }

    /// Parse a schedule evaluated in `time_zone` (see [`parse_time_zone`]).
    pub fn parse_in(expr: &str, time_zone: Option<&str>) -> Result<Schedule, String> {
        let offset = parse_time_zone(time_zone)?;
        Ok(Schedule {
            offset,
            ..Schedule::parse(expr)?
        })
    }

    /// The zone offset in seconds.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    fn day_matches(&self, days: i64) -> bool {
        let (y, m, d) = civil_from_days(days);
        if self.month & (1 << m) == 0 {
            return false;
        }
        debug_assert!(d <= days_in_month(y, m));
        let dom = self.dom & (1 << d) != 0;
        let dow = self.dow & (1 << weekday(days)) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// First matching minute of day `days` at or after minute-of-day `from` (or at or before,
    /// searching down, when `down`).
    fn minute_in_day(&self, from: i64, down: bool) -> Option<i64> {
        let ok = |mod_: i64| {
            self.hour & (1 << (mod_ / 60)) != 0 && self.minute & (1 << (mod_ % 60)) != 0
        };
        if down {
            (0..=from).rev().find(|m| ok(*m))
        } else {
            (from..1440).find(|m| ok(*m))
        }
    }

    /// The minute `t` (rounded down to the minute) matches.
    pub fn matches(&self, t: i64) -> bool {
        let local = t + self.offset;
        let days = local.div_euclid(86_400);
        let mod_ = local.rem_euclid(86_400) / 60;
        self.day_matches(days) && self.minute_in_day(mod_, false) == Some(mod_)
    }

    /// The first matching time strictly after `t` (a whole minute), or `None` if nothing
    /// matches within five years (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, t: i64) -> Option<i64> {
        let local = (t + self.offset).div_euclid(60) * 60 + 60;
        let first = local.div_euclid(86_400);
        let mut from = local.rem_euclid(86_400) / 60;
        for days in first..first + SEARCH_DAYS {
            if self.day_matches(days) {
                if let Some(m) = self.minute_in_day(from, false) {
                    return Some(days * 86_400 + m * 60 - self.offset);
                }
            }
            from = 0;
        }
        None
    }

    /// The last matching time at or before `t` (within five years).
    pub fn prev_at_or_before(&self, t: i64) -> Option<i64> {
        let local = (t + self.offset).div_euclid(60) * 60;
        let mut days = local.div_euclid(86_400);
        let mut from = local.rem_euclid(86_400) / 60;
        for _ in 0..SEARCH_DAYS {
            if self.day_matches(days) {
                if let Some(m) = self.minute_in_day(from, true) {
                    return Some(days * 86_400 + m * 60 - self.offset);
                }
            }
            days -= 1;
            from = 1439;
        }
        None
    }
}

/// Start times missed since the last run (Kubernetes' `mostRecentScheduleTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missed {
    /// The latest start time in (earliest, now], if any.
    pub most_recent: Option<i64>,
    /// How many start times fall in (earliest, now], counted up to `MAX_MISSED + 1`.
    pub count: u32,
    /// More than [`MAX_MISSED`] start times were missed. Kubernetes then emits a warning
    /// ("too many missed start times … Set or decrease .spec.startingDeadlineSeconds or check
    /// clock skew") but still starts the most recent one.
    pub too_many: bool,
}

/// The start times in (earliest, now]. `earliest` is status.lastScheduleTime or else the
/// CronJob's creationTimestamp; with startingDeadlineSeconds, times before `now − deadline` are
/// not considered at all.
pub fn most_recent_missed(
    schedule: &Schedule,
    earliest: i64,
    now: i64,
    starting_deadline: Option<i64>,
) -> Missed {
    let earliest = match starting_deadline {
        Some(d) => earliest.max(now - d),
        None => earliest,
    };
    let mut count = 0;
    let mut t = earliest;
    while count <= MAX_MISSED {
        match schedule.next_after(t) {
            Some(n) if n <= now => {
                count += 1;
                t = n;
            }
            _ => break,
        }
    }
    let most_recent = if count == 0 {
        None
    } else {
        schedule.prev_at_or_before(now).filter(|t| *t > earliest)
    };
    Missed {
        most_recent,
        count,
        too_many: count > MAX_MISSED,
    }
}

/// The Job a CronJob creates for `scheduled`: `<cronjob>-<minutes since the epoch>`.
pub fn job_name(cronjob: &str, scheduled: i64) -> String {
    format!("{cronjob}-{}", scheduled.div_euclid(60))
}

/// spec.concurrencyPolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConcurrencyPolicy {
    Allow,
    Forbid,
    Replace,
}

impl ConcurrencyPolicy {
    /// Parse the API value; empty is the default, Allow.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "" | "Allow" => Ok(Self::Allow),
            "Forbid" => Ok(Self::Forbid),
            "Replace" => Ok(Self::Replace),
            other => Err(format!("unsupported concurrencyPolicy {other:?}")),
        }
    }
}

/// What to do about a due run given the Jobs still active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// Create the Job.
    Start,
    /// Skip this run (Forbid with an active Job); it is not queued.
    Skip,
    /// Delete the active Jobs (and their pods), then create the Job.
    ReplaceActive,
}

/// The concurrencyPolicy decision for a due run.
pub fn concurrency_decision(policy: ConcurrencyPolicy, active_jobs: usize) -> Concurrency {
    match policy {
        _ if active_jobs == 0 => Concurrency::Start,
        ConcurrencyPolicy::Allow => Concurrency::Start,
        ConcurrencyPolicy::Forbid => Concurrency::Skip,
        ConcurrencyPolicy::Replace => Concurrency::ReplaceActive,
    }
}

/// One sync's decision for a CronJob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronAction {
    /// Nothing is due (or the CronJob is suspended). Runs due more than
    /// startingDeadlineSeconds ago are never considered, so they end up here too.
    Nothing,
    /// Forbid with an active Job: skip this run.
    Forbidden { scheduled: i64 },
    /// Create Job [`job_name`]`(cronjob, scheduled)`, after deleting the active Jobs when
    /// `replace_active`. The caller sets status.lastScheduleTime to `scheduled`.
    Start {
        scheduled: i64,
        replace_active: bool,
    },
}

/// The full decision of a CronJob sync plus when to look again (`next`: the next start time
/// after `now`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronDecision {
    pub action: CronAction,
    pub missed: Missed,
    pub next: Option<i64>,
}

/// Decide a CronJob sync (Kubernetes' `syncCronJob`). `earliest` as in [`most_recent_missed`];
/// `active_jobs` is the number of the CronJob's Jobs that have not finished. The caller also
/// treats an already-existing Job of the same name as "already started".
pub fn cron_decision(
    schedule: &Schedule,
    earliest: i64,
    now: i64,
    starting_deadline: Option<i64>,
    suspended: bool,
    policy: ConcurrencyPolicy,
    active_jobs: usize,
) -> CronDecision {
    let next = schedule.next_after(now);
    let missed = most_recent_missed(schedule, earliest, now, starting_deadline);
    let action = match missed.most_recent {
        _ if suspended => CronAction::Nothing,
        None => CronAction::Nothing,
        Some(scheduled) => match concurrency_decision(policy, active_jobs) {
            Concurrency::Start => CronAction::Start {
                scheduled,
                replace_active: false,
            },
            Concurrency::Skip => CronAction::Forbidden { scheduled },
            Concurrency::ReplaceActive => CronAction::Start {
                scheduled,
                replace_active: true,
            },
        },
    };
    CronDecision {
        action,
        missed,
        next,
    }
}

/// Which finished Jobs to delete to keep at most `limit` (successfulJobsHistoryLimit or
/// failedJobsHistoryLimit; `None` keeps all). `jobs` are (name, start time) of the finished
/// Jobs of one kind (all succeeded or all failed); the oldest by start time go first, Jobs
/// without a start time count as newest, ties by name. The result is oldest first.
pub fn history_to_delete(jobs: &[(String, Option<i64>)], limit: Option<i32>) -> Vec<String> {
    let Some(limit) = limit else {
        return vec![];
    };
    let limit = limit.max(0) as usize;
    if jobs.len() <= limit {
        return vec![];
    }
    let mut sorted: Vec<&(String, Option<i64>)> = jobs.iter().collect();
    sorted.sort_by(|a, b| match (a.1, b.1) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.0.cmp(&b.0)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.0.cmp(&b.0),
    });
    sorted[..jobs.len() - limit]
        .iter()
        .map(|(n, _)| n.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{format_rfc3339, parse_rfc3339};

    fn t(s: &str) -> i64 {
        parse_rfc3339(s).unwrap_or_else(|| panic!("bad time {s}"))
    }

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
    fn next_times() {
        let cases = [
            // every minute (S19)
            (
                "*/1 * * * *",
                "2026-11-22T16:01:38Z",
                "2026-11-22T16:02:00Z",
            ),
            ("* * * * *", "2026-11-22T16:02:00Z", "2026-11-22T16:03:00Z"),
            (
                "*/5 * * * *",
                "2026-11-22T16:01:00Z",
                "2026-11-22T16:05:00Z",
            ),
            (
                "*/5 * * * *",
                "2026-11-22T16:55:00Z",
                "2026-11-22T17:00:00Z",
            ),
            (
                "1-10/2 * * * *",
                "2026-11-22T16:03:00Z",
                "2026-11-22T16:05:00Z",
            ),
            (
                "1-10/2 * * * *",
                "2026-11-22T16:09:00Z",
                "2026-11-22T17:01:00Z",
            ),
            (
                "50/5 * * * *",
                "2026-11-22T16:51:00Z",
                "2026-11-22T16:55:00Z",
            ),
            (
                "0,30 9-17 * * *",
                "2026-11-22T17:30:00Z",
                "2026-11-23T09:00:00Z",
            ),
            (
                "0 0 * * MON-FRI",
                "2026-11-21T12:00:00Z",
                "2026-11-23T00:00:00Z",
            ), // Sat → Mon
            (
                "0 0 1 jan *",
                "2026-11-22T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
            (
                "0 12 29 FEB *",
                "2026-11-22T00:00:00Z",
                "2028-02-29T12:00:00Z",
            ),
            // day-of-month OR day-of-week when both are restricted: 13th or Friday
            ("0 0 13 * 5", "2026-11-22T00:00:00Z", "2026-11-27T00:00:00Z"),
            ("0 0 13 * 5", "2026-11-27T00:00:00Z", "2026-12-04T00:00:00Z"),
            ("0 0 24 * 5", "2026-11-22T00:00:00Z", "2026-11-24T00:00:00Z"),
            // AND when one is a star
            ("0 0 * * 5", "2026-11-22T00:00:00Z", "2026-11-27T00:00:00Z"),
            ("0 0 13 * *", "2026-11-22T00:00:00Z", "2026-12-13T00:00:00Z"),
            ("0 0 13 * ?", "2026-11-22T00:00:00Z", "2026-12-13T00:00:00Z"),
            // */2 in day-of-week is a restriction (no star bit)
            (
                "0 0 13 * */7",
                "2026-11-22T00:00:00Z",
                "2026-11-29T00:00:00Z",
            ),
            // macros
            ("@hourly", "2026-11-22T16:01:38Z", "2026-11-22T17:00:00Z"),
            ("@daily", "2026-11-22T16:01:38Z", "2026-11-23T00:00:00Z"),
            ("@midnight", "2026-11-22T16:01:38Z", "2026-11-23T00:00:00Z"),
            ("@weekly", "2026-11-22T16:01:38Z", "2026-11-29T00:00:00Z"),
            ("@monthly", "2026-11-22T16:01:38Z", "2026-12-01T00:00:00Z"),
            ("@yearly", "2026-11-22T16:01:38Z", "2027-01-01T00:00:00Z"),
            ("@annually", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"),
            ("0 0 31 * *", "2026-11-22T00:00:00Z", "2026-12-31T00:00:00Z"),
        ];
        for (expr, from, want) in cases {
            let s = Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let got = s.next_after(t(from)).map(format_rfc3339);
            assert_eq!(got.as_deref(), Some(want), "{expr} after {from}");
            assert!(s.matches(t(want)), "{expr} matches {want}");
        }
        assert_eq!(Schedule::parse("0 0 30 2 *").unwrap().next_after(0), None);
    }

    #[test]
    fn prev_times() {
        let s = Schedule::parse("*/5 * * * *").unwrap();
        let cases = [
            ("2026-11-22T16:07:10Z", "2026-11-22T16:05:00Z"),
            ("2026-11-22T16:05:00Z", "2026-11-22T16:05:00Z"),
            ("2026-11-22T00:01:00Z", "2026-11-22T00:00:00Z"),
            ("2026-11-21T23:59:00Z", "2026-11-21T23:55:00Z"),
        ];
        for (at, want) in cases {
            assert_eq!(
                s.prev_at_or_before(t(at)).map(format_rfc3339).as_deref(),
                Some(want),
                "{at}"
            );
        }
    }

    #[test]
    fn zones() {
        let cases = [
            (None, Ok(0)),
            (Some("UTC"), Ok(0)),
            (Some("Etc/UTC"), Ok(0)),
            (Some("+05:30"), Ok(19_800)),
            (Some("-0800"), Ok(-28_800)),
            (Some("+09"), Ok(32_400)),
        ];
        for (tz, want) in cases {
            assert_eq!(parse_time_zone(tz), want, "{tz:?}");
        }
        for bad in ["Europe/Berlin", "+5", "+25:00", "+05:3", "local"] {
            assert!(parse_time_zone(Some(bad)).is_err(), "{bad}");
        }
        // 09:00 at +02:00 is 07:00 UTC
        let s = Schedule::parse_in("0 9 * * *", Some("+02:00")).unwrap();
        assert_eq!(
            s.next_after(t("2026-11-22T08:00:00Z"))
                .map(format_rfc3339)
                .as_deref(),
            Some("2026-11-23T07:00:00Z")
        );
        assert_eq!(
            s.next_after(t("2026-11-22T06:00:00Z"))
                .map(format_rfc3339)
                .as_deref(),
            Some("2026-11-22T07:00:00Z")
        );
    }

    #[test]
    fn missed_runs() {
        let every = Schedule::parse("* * * * *").unwrap();
        let base = t("2026-11-22T16:00:00Z");
        let cases = [
            // nothing due yet
            (base, base + 30, None, None, 0, false),
            // one due
            (base, base + 60, None, Some(base + 60), 1, false),
            (base + 10, base + 75, None, Some(base + 60), 1, false),
            // several missed: the most recent is started
            (base, base + 300, None, Some(base + 300), 5, false),
            // more than 100 missed
            (
                base,
                base + 200 * 60,
                None,
                Some(base + 200 * 60),
                101,
                true,
            ),
            // a starting deadline limits how far back we look
            (
                base,
                base + 200 * 60 + 30,
                Some(90),
                Some(base + 200 * 60),
                1,
                false,
            ),
            (base, base + 200 * 60 + 30, Some(10), None, 0, false),
        ];
        for (earliest, now, deadline, want, count, too_many) in cases {
            let m = most_recent_missed(&every, earliest, now, deadline);
            assert_eq!(
                (m.most_recent, m.count, m.too_many),
                (want, count, too_many),
                "{earliest} {now} {deadline:?}"
            );
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            job_name("hello", t("2026-11-22T16:02:00Z")),
            "hello-29922722"
        );
        assert_eq!(job_name("hello", 0), "hello-0");
    }

    #[test]
    fn concurrency() {
        use ConcurrencyPolicy::*;
        let cases = [
            (Allow, 0, Concurrency::Start),
            (Allow, 2, Concurrency::Start),
            (Forbid, 0, Concurrency::Start),
            (Forbid, 1, Concurrency::Skip),
            (Replace, 0, Concurrency::Start),
            (Replace, 1, Concurrency::ReplaceActive),
        ];
        for (p, n, want) in cases {
            assert_eq!(concurrency_decision(p, n), want, "{p:?} {n}");
        }
        assert_eq!(ConcurrencyPolicy::parse(""), Ok(Allow));
        assert!(ConcurrencyPolicy::parse("Sometimes").is_err());
    }

    #[test]
    fn decisions() {
        use ConcurrencyPolicy::*;
        let every = Schedule::parse("*/1 * * * *").unwrap();
        let base = t("2026-11-22T16:00:00Z");
        let start = |s| CronAction::Start {
            scheduled: s,
            replace_active: false,
        };
        let cases = [
            (base, base + 20, None, false, Allow, 0, CronAction::Nothing),
            (base, base + 61, None, false, Allow, 1, start(base + 60)),
            (base, base + 61, None, true, Allow, 0, CronAction::Nothing),
            (
                base,
                base + 61,
                None,
                false,
                Forbid,
                1,
                CronAction::Forbidden {
                    scheduled: base + 60,
                },
            ),
            (
                base,
                base + 61,
                None,
                false,
                Replace,
                1,
                CronAction::Start {
                    scheduled: base + 60,
                    replace_active: true,
                },
            ),
            // S21: startingDeadlineSeconds 20, the run due at +60 is not started at +90
            (
                base,
                base + 90,
                Some(20),
                false,
                Allow,
                0,
                CronAction::Nothing,
            ),
            (base, base + 90, Some(40), false, Allow, 0, start(base + 60)),
            (base, base + 75, Some(20), false, Allow, 0, start(base + 60)),
        ];
        for (earliest, now, deadline, suspended, policy, active, want) in cases {
            let d = cron_decision(&every, earliest, now, deadline, suspended, policy, active);
            assert_eq!(d.action, want, "{now} {deadline:?} {policy:?} {active}");
            assert_eq!(d.next, Some((now / 60 + 1) * 60));
        }
    }

    #[test]
    fn history() {
        let jobs = |v: &[(&str, Option<i64>)]| -> Vec<(String, Option<i64>)> {
            v.iter().map(|(n, t)| (n.to_string(), *t)).collect()
        };
        let five = jobs(&[
            ("e", Some(50)),
            ("a", Some(10)),
            ("c", Some(30)),
            ("x", None),
            ("b", Some(20)),
        ]);
        let cases = [
            (Some(3), vec!["a", "b"]),
            (Some(1), vec!["a", "b", "c", "e"]),
            (Some(0), vec!["a", "b", "c", "e", "x"]),
            (Some(5), vec![]),
            (Some(10), vec![]),
            (None, vec![]),
        ];
        for (limit, want) in cases {
            assert_eq!(history_to_delete(&five, limit), want, "{limit:?}");
        }
    }
}
