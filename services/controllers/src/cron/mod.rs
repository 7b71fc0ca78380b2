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
//! Time zones: `spec.timeZone` is an IANA name loaded from the system tz database
//! ([`coxswain_api::tz`], as Go's `time.LoadLocation`); unset is UTC. Matching happens in the
//! zone's local time with robfig/cron's `SpecSchedule.Next` algorithm, ported step by step, so
//! daylight-saving changes behave as in Kubernetes: a wall time that does not exist (in the
//! spring-forward gap) is skipped that day, and a wall time that happens twice (in the fall-back
//! overlap) fires twice, once per instant (robfig's own tests: "1am nightly job (runs twice)").
//! Fixed offsets such as `+05:30` are not zone names (Kubernetes rejects them too); `Etc/GMT-5`
//! style names are the way to get one.
//!
//! The engine is `schedule.rs`; this module holds the CronJob controller's decisions.
mod schedule;

pub use schedule::{time_zone, Schedule, MAX_MISSED};

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
    } else if count <= MAX_MISSED {
        Some(t)
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
    use crate::time::parse_rfc3339;

    fn t(s: &str) -> i64 {
        parse_rfc3339(s).unwrap_or_else(|| panic!("bad time {s}"))
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
