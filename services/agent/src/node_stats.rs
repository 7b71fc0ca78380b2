//! A real node's own usage, as kubelet's node summary reports it (cAdvisor's root cgroup): the
//! machine's cumulative CPU time from /proc/stat and its memory working set from /proc/meminfo.
//! The parsers are pure; [`read`] is the only I/O (two small procfs files, no blocking device).
use crate::runtime::Usage;

/// Linux reports /proc/stat in USER_HZ ticks, 100 per second on every architecture's ABI.
const TICK_NANOS: u64 = 10_000_000;

/// CPU time every CPU of the machine spent busy since boot, in nanoseconds: the first `cpu`
/// line's user, nice, system, irq, softirq and steal (guest time is already inside user and
/// nice; idle and iowait are not usage).
pub fn parse_proc_stat(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse::<u64>())
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal guest guest_nice
    if f.len() < 4 {
        return None;
    }
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    busy.checked_mul(TICK_NANOS)
}

/// The machine's working set in bytes: memory in use (MemTotal − MemFree) less the inactive
/// file pages (Inactive(file)), as cAdvisor computes it for the root cgroup.
pub fn parse_meminfo(text: &str) -> Option<u64> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(':'))
        })?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    };
    let total = field("MemTotal")?;
    let free = field("MemFree")?;
    let inactive_file = field("Inactive(file)").unwrap_or(0);
    Some(total.saturating_sub(free).saturating_sub(inactive_file))
}

/// The machine's usage now, or None where procfs is not there.
pub fn read() -> Option<Usage> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    Some(Usage {
        cpu_nanos: parse_proc_stat(&stat)?,
        memory_bytes: parse_meminfo(&meminfo)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_time_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 20 30 5000 40 5 6 7 50 0\n\
                    cpu0 50 10 15 2500 20 3 3 4 25 0\n\
                    intr 12345\n";
        // 100 + 20 + 30 + 5 + 6 + 7 = 168 ticks of 10 ms.
        assert_eq!(parse_proc_stat(stat), Some(1_680_000_000));
        // Old kernels have fewer columns.
        assert_eq!(parse_proc_stat("cpu 1 2 3 4\n"), Some(60_000_000));
        assert_eq!(parse_proc_stat("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_proc_stat("cpu x 2 3 4\n"), None);
    }

    #[test]
    fn working_set_is_used_memory_less_inactive_file() {
        let meminfo = "MemTotal:       16000000 kB\n\
                       MemFree:         4000000 kB\n\
                       MemAvailable:   10000000 kB\n\
                       Inactive:        3000000 kB\n\
                       Inactive(anon):  1000000 kB\n\
                       Inactive(file):  2000000 kB\n";
        assert_eq!(parse_meminfo(meminfo), Some(10_000_000 * 1024));
        assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn this_machine_reports_usage() {
        if !std::path::Path::new("/proc/stat").exists() {
            return;
        }
        let u = read().expect("procfs readable");
        assert!(u.cpu_nanos > 0 && u.memory_bytes > 0, "{u:?}");
    }
}
