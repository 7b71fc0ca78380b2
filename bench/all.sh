#!/usr/bin/env bash
# Every benchmark of BENCHMARKS.md in one command (issue 17 §5), each script against its peer in
# the same run as that script already does (etcd for the store, dnsmasq for DNS, wrk/hey for
# the proxy and loadgen, kube-scheduler's published scheduler_perf floors for the scheduler).
# Builds once, runs the scripts one after another (never two at once: they would measure each
# other), keeps each full log, then prints one table: the header (date, commit, machine) and
# per benchmark its peer, exit status, wall time and the summary lines the script printed
# (its medians and ratios).
#
#   bash bench/all.sh                 # everything, at each script's default (BENCHMARKS.md) size
#   ONLY="store scheduler" bash bench/all.sh
#   QUICK=1 bash bench/all.sh         # smaller sizes, ROUNDS=1: checks the scripts run (minutes)
#   LOG=/tmp/bench-logs bash bench/all.sh   # where the logs go (default: a new temp dir)
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=${LOG:-$(mktemp -d /tmp/coxswain-bench.XXXXXX)}
mkdir -p "$LOG"
if [ -n "${QUICK:-}" ]; then export ROUNDS=1 RUNS=1 IDLE=2; fi
q() { if [ -n "${QUICK:-}" ]; then echo "$1"; else echo "$2"; fi; }

# name | peer | command (run from the repository root)
BENCHES=(
  "store|etcd 3.4 puts/s (same run)|bash bench/run.sh $(q '2000 10000' '')"
  "store-cpu|— (instructions per create, callgrind)|bash bench/create-cpu.sh $(q 200 1000)"
  "store-on-etcd|etcd puts/s (same run)|bash bench/etcd.sh $(q 2000 '')"
  "auth|the same store without TLS/auth|bash bench/auth.sh $(q 2000 '')"
  "metrics|the same store with --no-metrics|bash bench/obs.sh $(q '2000 100 1000' '')"
  "scheduler|kube-scheduler scheduler_perf floors (5,000 nodes)|bash bench/scheduler.sh $(q '500 1000' '')"
  "agent|— (RSS per sim pod, pods/s)|bash bench/agent.sh $(q '100 1000 500 5' '')"
  "workloads|— (10,000-replica Deployment: Running, rollout)|bash bench/workloads.sh $(q '1000 100' '')"
  "dns|dnsmasq (same run)|bash bench/dns.sh"
  "proxy|direct to the backends, wrk (same run)|bash services/proxy/bench/wrk.sh"
  "propagation|— (p99 vs the 100 ms bound)|bash services/proxy/bench/propagation.sh"
  "loadgen|wrk, hey (same run)|bash bench/loadgen.sh"
)

echo "== building (release) once"
cargo build --release -q -p coxswain -p coxswain-bench -p coxctl 2>&1 | tail -5
# Each script still builds what it alone needs (its examples); up to date, that is a no-op.

ROWS=()
for b in "${BENCHES[@]}"; do
  IFS='|' read -r name peer cmd <<<"$b"
  if [ -n "${ONLY:-}" ] && ! [[ " $ONLY " == *" $name "* ]]; then continue; fi
  echo "== $name: $cmd   (log: $LOG/$name.log)"
  start=$(date +%s)
  timeout "${TIMEOUT:-3600}" bash -c "$cmd" >"$LOG/$name.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  # The summary: lines with a median, a ratio or a table row, as each script prints them.
  summary=$(grep -E '×|ratio|median|^\|' "$LOG/$name.log" | tail -12 | sed 's/^/    /')
  ROWS+=("$name|$peer|$rc|${secs}s|$summary")
  tail -3 "$LOG/$name.log"
done

echo
echo "# coxswain benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)"
echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '| benchmark | peer | exit | wall |\n|---|---|---:|---:|\n'
for r in "${ROWS[@]}"; do
  IFS='|' read -r name peer rc secs _ <<<"$r"
  printf '| %s | %s | %s | %s |\n' "$name" "$peer" "$rc" "$secs"
done
echo
for r in "${ROWS[@]}"; do
  name=${r%%|*}
  echo "## $name"
  echo "${r#*|*|*|*|}"
done
echo
echo "full logs: $LOG"
