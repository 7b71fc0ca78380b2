//! The 5-field cron engine: robfig/cron's `SpecSchedule.Next`, in a time zone (the parser is
//! `schedule/parse.rs`). The syntax and the daylight-saving rules are described in the parent
//! module.
use crate::time::{civil_from_days, days_from_civil, weekday};
use coxswain_api::tz::Zone;
use std::sync::Arc;

mod parse;

pub use parse::time_zone;

/// Kubernetes gives up counting missed start times beyond this many.
pub const MAX_MISSED: u32 = 100;
/// How far back [`Schedule::prev_at_or_before`] searches (five years, as far as `next_after`
/// looks ahead).
const SEARCH_SECS: i64 = (5 * 366 + 1) * 86_400;

/// A parsed schedule. Times are seconds since the epoch (UTC); matching happens in the
/// schedule's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    dom_star: bool,
    dow_star: bool,
    zone: Arc<Zone>,
}

/// Local calendar fields of an instant in a zone.
#[derive(Debug, Clone, Copy)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    /// Days since the epoch of the local date.
    days: i64,
}

impl Schedule {
    /// The schedule's zone.
    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    fn civil(&self, t: i64) -> Civil {
        let local = t + self.zone.offset_at(t);
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs % 3600 / 60,
            second: secs % 60,
            days,
        }
    }

    /// Go's `time.Date(year, month, day, hour, min, sec, 0, loc)`, month and day normalised.
    fn date(&self, year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64) -> i64 {
        let y = year + (month - 1).div_euclid(12);
        let m = (month - 1).rem_euclid(12) as u32 + 1;
        let days = days_from_civil(y, m, 1) + day - 1;
        self.zone
            .from_local(days * 86_400 + hour * 3600 + minute * 60 + second)
    }

    fn day_matches(&self, c: &Civil) -> bool {
        let dom = self.dom & (1 << c.day) != 0;
        let dow = self.dow & (1 << weekday(c.days)) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The minute `t` (rounded down to the minute) matches, in local time.
    pub fn matches(&self, t: i64) -> bool {
        let c = self.civil(t);
        self.month & (1 << c.month) != 0
            && self.day_matches(&c)
            && self.hour & (1 << c.hour) != 0
            && self.minute & (1 << c.minute) != 0
    }

    /// The next activation strictly after `t`: robfig/cron's `SpecSchedule.Next`, step by
    /// step (seconds field 0), in the schedule's zone; `None` if nothing matches within five
    /// years (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, t: i64) -> Option<i64> {
        // Start at the earliest possible time (the upcoming second).
        let mut t = t + 1;
        let mut added = false;
        let year_limit = self.civil(t).year + 5;
        'wrap: loop {
            if self.civil(t).year > year_limit {
                return None;
            }
            while self.month & (1 << self.civil(t).month) == 0 {
                let c = self.civil(t);
                if !added {
                    added = true;
                    t = self.date(c.year, c.month.into(), 1, 0, 0, 0);
                }
                // t.AddDate(0, 1, 0)
                let c = self.civil(t);
                t = self.date(
                    c.year,
                    i64::from(c.month) + 1,
                    c.day.into(),
                    c.hour,
                    c.minute,
                    c.second,
                );
                if self.civil(t).month == 1 {
                    continue 'wrap;
                }
            }
            while !self.day_matches(&self.civil(t)) {
                if !added {
                    added = true;
                    let c = self.civil(t);
                    t = self.date(c.year, c.month.into(), c.day.into(), 0, 0, 0);
                }
                // t.AddDate(0, 0, 1)
                let c = self.civil(t);
                t = self.date(
                    c.year,
                    c.month.into(),
                    i64::from(c.day) + 1,
                    c.hour,
                    c.minute,
                    c.second,
                );
                // Where midnight does not exist the hour may not be 0: robfig moves to the
                // nearest midnight-ish hour.
                let h = self.civil(t).hour;
                if h != 0 {
                    if h > 12 {
                        t += (24 - h) * 3600;
                    } else {
                        t -= h * 3600;
                    }
                }
                if self.civil(t).day == 1 {
                    continue 'wrap;
                }
            }
            while self.hour & (1 << self.civil(t).hour) == 0 {
                if !added {
                    added = true;
                    let c = self.civil(t);
                    t = self.date(c.year, c.month.into(), c.day.into(), c.hour, 0, 0);
                }
                t += 3600;
                if self.civil(t).hour == 0 {
                    continue 'wrap;
                }
            }
            while self.minute & (1 << self.civil(t).minute) == 0 {
                if !added {
                    added = true;
                    t -= t.rem_euclid(60);
                }
                t += 60;
                if self.civil(t).minute == 0 {
                    continue 'wrap;
                }
            }
            let second = self.civil(t).second;
            if second != 0 {
                // robfig adds one second at a time until the second is 0, then wraps; while the
                // zone's offset stays the same that is exactly the next local minute.
                added = true;
                let p = self.zone.lookup(t);
                if p.end > t + (60 - second) {
                    t += 60 - second;
                } else {
                    t += 1;
                    while self.civil(t).second != 0 {
                        t += 1;
                    }
                }
                continue 'wrap;
            }
            return Some(t);
        }
    }

    /// The last activation at or before `t` (within five years): the latest [`next_after`]
    /// result not after `t`, found by widening a window back from `t`.
    ///
    /// [`next_after`]: Schedule::next_after
    pub fn prev_at_or_before(&self, t: i64) -> Option<i64> {
        let floor = t - SEARCH_SECS;
        let mut w = 60;
        loop {
            let start = (t - w).max(floor);
            let mut x = self.next_after(start)?;
            if x <= t {
                let mut last = x;
                while let Some(n) = self.next_after(x) {
                    if n > t {
                        break;
                    }
                    last = n;
                    x = n;
                }
                return Some(last);
            }
            if start == floor {
                return None;
            }
            w *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse::in_zone;
    use super::*;
    use crate::cron::{job_name, most_recent_missed};
    use crate::time::{format_rfc3339, parse_rfc3339};

    fn t(s: &str) -> i64 {
        parse_rfc3339(s).unwrap_or_else(|| panic!("bad time {s}"))
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

    /// Next activations in real zones around daylight-saving changes, computed by hand from
    /// robfig/cron's `Next` (a skipped wall time does not run that day; a repeated one runs at
    /// both instants). 2026: New York springs forward on Mar 8 at 02:00 EST (07:00Z) and falls
    /// back on Nov 1 at 02:00 EDT (06:00Z); London on Mar 29 at 01:00Z and Oct 25 at 01:00Z.
    #[test]
    fn next_times_in_zones() {
        let ny = "America/New_York";
        let cases = [
            // spring forward: 02:30 does not exist on Mar 8 -> next is Mar 9 02:30 EDT
            (
                "30 2 * * *",
                ny,
                "2026-03-07T12:00:00Z",
                "2026-03-09T06:30:00Z",
            ),
            // hourly: 01:00 EST, then 03:00 EDT
            (
                "0 * * * *",
                ny,
                "2026-03-08T06:00:00Z",
                "2026-03-08T07:00:00Z",
            ),
            (
                "0 1 * * *",
                ny,
                "2026-03-08T06:00:00Z",
                "2026-03-09T05:00:00Z",
            ),
            (
                "30 3 * * *",
                ny,
                "2026-03-08T05:00:00Z",
                "2026-03-08T07:30:00Z",
            ),
            // robfig's own: "TZ=America/New_York 0 30 2 11 Mar ?" from 2012-03-11T00:00-0500
            (
                "30 2 11 Mar *",
                ny,
                "2012-03-11T05:00:00Z",
                "2013-03-11T06:30:00Z",
            ),
            // fall back: 01:30 happens twice and runs twice (EDT then EST)
            (
                "30 1 * * *",
                ny,
                "2026-11-01T04:00:00Z",
                "2026-11-01T05:30:00Z",
            ),
            (
                "30 1 * * *",
                ny,
                "2026-11-01T05:30:00Z",
                "2026-11-01T06:30:00Z",
            ),
            (
                "30 1 * * *",
                ny,
                "2026-11-01T06:30:00Z",
                "2026-11-02T06:30:00Z",
            ),
            (
                "0 * * * *",
                ny,
                "2026-11-01T05:00:00Z",
                "2026-11-01T06:00:00Z",
            ),
            (
                "0 * * * *",
                ny,
                "2026-11-01T06:00:00Z",
                "2026-11-01T07:00:00Z",
            ),
            (
                "0 2 * * *",
                ny,
                "2026-11-01T04:00:00Z",
                "2026-11-01T07:00:00Z",
            ),
            // robfig's own: "0 30 1 04 Nov ?" from 2012-11-04T01:45:00-0400
            (
                "30 1 4 Nov *",
                ny,
                "2012-11-04T05:45:00Z",
                "2012-11-04T06:30:00Z",
            ),
            // far future: only the TZif footer rule (EST5EDT,M3.2.0,M11.1.0) covers it;
            // 2040: Mar 11 spring forward, so 02:30 is skipped that day
            (
                "30 2 * * *",
                ny,
                "2040-03-10T12:00:00Z",
                "2040-03-12T06:30:00Z",
            ),
            (
                "0 9 * * *",
                ny,
                "2040-07-01T00:00:00Z",
                "2040-07-01T13:00:00Z",
            ),
            // Asia/Shanghai: UTC+8 all year; local days and weekdays
            (
                "0 9 * * *",
                "Asia/Shanghai",
                "2026-11-22T00:00:00Z",
                "2026-11-22T01:00:00Z",
            ),
            (
                "0 9 * * *",
                "Asia/Shanghai",
                "2026-11-22T01:00:00Z",
                "2026-11-23T01:00:00Z",
            ),
            (
                "@daily",
                "Asia/Shanghai",
                "2026-11-22T16:30:00Z",
                "2026-11-23T16:00:00Z",
            ),
            (
                "0 0 * * MON",
                "Asia/Shanghai",
                "2026-11-22T15:00:00Z",
                "2026-11-22T16:00:00Z",
            ),
            (
                "0 0 1 * *",
                "Asia/Shanghai",
                "2026-11-22T00:00:00Z",
                "2026-11-30T16:00:00Z",
            ),
            // Europe/London
            (
                "30 1 * * *",
                "Europe/London",
                "2026-03-28T12:00:00Z",
                "2026-03-30T00:30:00Z",
            ),
            (
                "0 9 * * *",
                "Europe/London",
                "2026-03-29T00:00:00Z",
                "2026-03-29T08:00:00Z",
            ),
            (
                "0 12 * * *",
                "Europe/London",
                "2026-07-01T00:00:00Z",
                "2026-07-01T11:00:00Z",
            ),
            (
                "30 1 * * *",
                "Europe/London",
                "2026-10-25T00:00:00Z",
                "2026-10-25T00:30:00Z",
            ),
            (
                "30 1 * * *",
                "Europe/London",
                "2026-10-25T00:30:00Z",
                "2026-10-25T01:30:00Z",
            ),
            (
                "0 12 * * *",
                "Europe/London",
                "2026-12-01T00:00:00Z",
                "2026-12-01T12:00:00Z",
            ),
            // America/Santiago: midnight of Sun 2026-09-06 does not exist (Sat 24:00 -04 is
            // 01:00 -03); a midnight job skips that day, as robfig (Sao Paulo note in spec.go)
            (
                "0 0 * * *",
                "America/Santiago",
                "2026-09-05T16:00:00Z",
                "2026-09-07T03:00:00Z",
            ),
            (
                "0 0 * * 0",
                "America/Santiago",
                "2026-09-01T12:00:00Z",
                "2026-09-13T03:00:00Z",
            ),
            (
                "0 1 * * *",
                "America/Santiago",
                "2026-09-05T16:00:00Z",
                "2026-09-06T04:00:00Z",
            ),
            // Etc/UTC is UTC
            (
                "0 9 * * *",
                "Etc/UTC",
                "2026-11-22T00:00:00Z",
                "2026-11-22T09:00:00Z",
            ),
        ];
        for (expr, tz, from, want) in cases {
            let s = in_zone(expr, tz);
            let got = s.next_after(t(from)).map(format_rfc3339);
            assert_eq!(got.as_deref(), Some(want), "{expr} in {tz} after {from}");
            assert!(s.matches(t(want)), "{expr} in {tz} matches {want}");
        }
        // 02:30 on the spring-forward day does not match (it is 03:30 EDT then)
        assert!(!in_zone("30 2 * * *", ny).matches(t("2026-03-08T07:30:00Z")));
        assert_eq!(in_zone("0 0 30 2 *", ny).next_after(0), None);
    }

    #[test]
    fn prev_and_missed_in_zones() {
        let ny = in_zone("30 2 * * *", "America/New_York");
        // The run of Mar 8 never existed: the one before Mar 9 is Mar 7 02:30 EST.
        assert_eq!(
            ny.prev_at_or_before(t("2026-03-09T00:00:00Z"))
                .map(format_rfc3339)
                .as_deref(),
            Some("2026-03-07T07:30:00Z")
        );
        let twice = in_zone("30 1 * * *", "America/New_York");
        assert_eq!(
            twice
                .prev_at_or_before(t("2026-11-01T07:00:00Z"))
                .map(format_rfc3339)
                .as_deref(),
            Some("2026-11-01T06:30:00Z")
        );
        // Both fall-back runs are due between 00:00 EDT and 02:00 EST; the latest is started,
        // and it gets its own Job name.
        let m = most_recent_missed(
            &twice,
            t("2026-11-01T04:00:00Z"),
            t("2026-11-01T07:00:00Z"),
            None,
        );
        assert_eq!(
            (m.most_recent.map(format_rfc3339).as_deref(), m.count),
            (Some("2026-11-01T06:30:00Z"), 2)
        );
        assert_eq!(
            job_name("nightly", t("2026-11-01T05:30:00Z")),
            "nightly-29891850"
        );
        assert_eq!(
            job_name("nightly", t("2026-11-01T06:30:00Z")),
            "nightly-29891910"
        );
        // More than 100 missed in Shanghai: the most recent is still found.
        let sh = in_zone("0 * * * *", "Asia/Shanghai");
        let m = most_recent_missed(
            &sh,
            t("2026-11-01T00:00:00Z"),
            t("2026-11-22T10:20:00Z"),
            None,
        );
        assert!(m.too_many);
        assert_eq!(
            m.most_recent.map(format_rfc3339).as_deref(),
            Some("2026-11-22T10:00:00Z")
        );
        // Every minute in New York in 2050 (footer rules only), across the spring-forward hour:
        // 01:59 EST is followed by 03:00 EDT, one minute later.
        let every = in_zone("* * * * *", "America/New_York");
        assert_eq!(
            every
                .next_after(t("2050-03-13T06:59:00Z"))
                .map(format_rfc3339)
                .as_deref(),
            Some("2050-03-13T07:00:00Z")
        );
        let m = most_recent_missed(
            &every,
            t("2050-03-13T05:00:00Z"),
            t("2050-03-13T09:00:30Z"),
            None,
        );
        assert!(m.too_many);
        assert_eq!(
            m.most_recent.map(format_rfc3339).as_deref(),
            Some("2050-03-13T09:00:00Z")
        );
    }
}
