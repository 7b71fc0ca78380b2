//! `process_*` as the Prometheus client libraries export them, read from /proc at scrape time.
use crate::text::{header, sample, Type};

/// Linux reports CPU times in USER_HZ ticks, 100 per second on every architecture's ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// What /proc says about this process.
#[derive(Debug, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: f64,
    pub virtual_bytes: f64,
    pub open_fds: f64,
    pub max_fds: Option<f64>,
    pub start_time_seconds: f64,
}

/// Parse /proc/self/stat, the `btime` line of /proc/stat and /proc/self/status.
pub fn parse(stat: &str, proc_stat: &str, status: &str) -> Option<ProcessStats> {
    // Fields after the command name in parentheses (which may hold spaces and parentheses).
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state); field n is f[n - 3].
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let utime = num(14)?;
    let stime = num(15)?;
    let starttime = num(22)?;
    let vsize = num(23)?;
    let btime = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<f64>().ok())?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    Some(ProcessStats {
        cpu_seconds: (utime + stime) / TICKS_PER_SECOND,
        resident_bytes: rss_kib * 1024.0,
        virtual_bytes: vsize,
        open_fds: 0.0,
        max_fds: None,
        start_time_seconds: btime + starttime / TICKS_PER_SECOND,
    })
}

/// The soft "Max open files" limit from /proc/self/limits.
pub fn parse_max_fds(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Read this process's stats (None off Linux).
pub fn read() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let proc_stat = std::fs::read_to_string("/proc/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut s = parse(&stat, &proc_stat, &status)?;
    s.open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as f64)
        .unwrap_or(0.0);
    s.max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| parse_max_fds(&l));
    Some(s)
}

/// Append the process families.
pub fn collect(out: &mut String) {
    let Some(s) = read() else { return };
    let families: [(&str, Type, &str, Option<f64>); 6] = [
        (
            "process_cpu_seconds_total",
            Type::Counter,
            "Total user and system CPU time spent in seconds.",
            Some(s.cpu_seconds),
        ),
        (
            "process_resident_memory_bytes",
            Type::Gauge,
            "Resident memory size in bytes.",
            Some(s.resident_bytes),
        ),
        (
            "process_virtual_memory_bytes",
            Type::Gauge,
            "Virtual memory size in bytes.",
            Some(s.virtual_bytes),
        ),
        (
            "process_open_fds",
            Type::Gauge,
            "Number of open file descriptors.",
            Some(s.open_fds),
        ),
        (
            "process_max_fds",
            Type::Gauge,
            "Maximum number of open file descriptors.",
            s.max_fds,
        ),
        (
            "process_start_time_seconds",
            Type::Gauge,
            "Start time of the process since unix epoch in seconds.",
            Some(s.start_time_seconds),
        ),
    ];
    for (name, typ, help, v) in families {
        if let Some(v) = v {
            header(out, name, typ, help);
            sample(out, name, &[], v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_with_spaces_in_the_command_name() {
        let stat = "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 \
                    1000 123456789 2048 18446744073709551615";
        let s = parse(
            stat,
            "cpu  1 2 3\nbtime 1700000000\n",
            "Name:\tx\nVmRSS:\t  8192 kB\n",
        )
        .unwrap();
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.start_time_seconds, 1_700_000_010.0);
        assert_eq!(s.virtual_bytes, 123456789.0);
        assert_eq!(s.resident_bytes, 8192.0 * 1024.0);
    }

    #[test]
    fn max_fds_is_the_soft_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024.0));
    }

    #[test]
    fn this_process_reads() {
        let s = read().unwrap();
        assert!(s.open_fds > 0.0 && s.resident_bytes > 0.0 && s.start_time_seconds > 1e9);
    }
}
