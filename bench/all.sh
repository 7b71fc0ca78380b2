#!/usr/bin/env bash
# Every benchmark of BENCHMARKS.md in one command (issue 17 §5), each script against its peer in
# the same run as that script already does (etcd for the store, dnsmasq for DNS, wrk/hey for
# the proxy and loadgen, kube-scheduler's published scheduler_perf floors for the scheduler).
# Builds once, runs the scripts one after another (never two at once: they would measure each
# other), keeps each full log, then prints ONE table parsed from the logs: per figure ours, the
# peer's in the same run, the ratio, the target and whether it is met, under the date, the
# commit and the machine. The table is also written to $TABLE (default bench/latest.md), the
# file BENCHMARKS.md leads with; then a short table of each script's exit status and wall time.
#
#   bash bench/all.sh                 # everything, at each script's default (BENCHMARKS.md) size
#   ONLY="store scheduler" bash bench/all.sh
#   QUICK=1 bash bench/all.sh         # smaller sizes, ROUNDS=1: checks the scripts run (minutes)
#   LOG=/tmp/bench-logs bash bench/all.sh   # where the logs go (default: a new temp dir)
#   TABLE_ONLY=1 LOG=/tmp/bench-logs bash bench/all.sh   # the table again from kept logs
set -uo pipefail
cd "$(dirname "$0")/.."
# All of it in one function, read whole before it runs: editing this file during a run (hours
# long) does not change the run.
main() {
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
  "dns|dnsmasq (same run)|$(q 'DURATION=3 SERVICES=100 ' '')bash bench/dns.sh"
  "proxy|direct to the backends, wrk (same run)|$(q 'DURATION=3s ' '')bash services/proxy/bench/wrk.sh"
  "propagation|— (p99 vs the 100 ms bound)|$(q 'SERVICES=100 PODS=1000 FLIPS=200 HEADLESS=10 ' '')bash services/proxy/bench/propagation.sh"
  "loadgen|wrk, hey (same run)|$(q 'DUR=2 RATES=1000 SYSCALLS=0 ' '')bash bench/loadgen.sh"
)

ROWS=()
if [ -z "${TABLE_ONLY:-}" ]; then
echo "== building (release) once"
# The one feature set every bench script builds with (a build without it relinks the bench).
cargo build --release -q -p coxswain -p coxswain-bench --features coxswain-bench/etcd -p coxctl 2>&1 | tail -5
# Each script still builds what it alone needs (its examples); up to date, that is a no-op.

for b in "${BENCHES[@]}"; do
  IFS='|' read -r name peer cmd <<<"$b"
  if [ -n "${ONLY:-}" ] && ! [[ " $ONLY " == *" $name "* ]]; then continue; fi
  echo "== $name: $cmd   (log: $LOG/$name.log)"
  start=$(date +%s)
  timeout "${TIMEOUT:-3600}" bash -c "$cmd" >"$LOG/$name.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  ROWS+=("$name|$peer|$rc|${secs}s")
  # For the table: a row without a figure says why (kept with the logs for TABLE_ONLY).
  echo "$rc ${secs}" >"$LOG/$name.rc"
  tail -3 "$LOG/$name.log"
done
fi

TABLE=${TABLE:-bench/latest.md}
{
  echo "# coxswain benchmarks: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$( [ -n "$(git status --porcelain -uno 2>/dev/null)" ] && echo ' (with local changes)')"
  echo
  echo "Machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | sort -u | paste -sd/)), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r); load average at the end $(cut -d' ' -f1-3 /proc/loadavg).$( [ -n "${QUICK:-}" ] && echo ' QUICK=1: smaller sizes, one round: a check that the scripts run, not figures to quote.')"
  echo "Command: \`${QUICK:+QUICK=1 }${ONLY:+ONLY=\"$ONLY\" }bash bench/all.sh\`; each script's log in $LOG. Ratios are ours ÷ the peer measured in the same run (medians of the per-round ratios where a script pairs rounds)."
  echo
  python3 - "$LOG" <<'PY'
# The one table of all.sh: each benchmark's figure, its peer's in the same run, the ratio, the
# target and whether it is met, parsed from the scripts' logs in LOG. Missing figures print
# "—" (the script failed or was skipped): the row stays, marked "no figure".
import os, re, statistics, sys

log_dir = sys.argv[1]
rows = []


def text(name):
    p = os.path.join(log_dir, name + ".log")
    return open(p, errors="replace").read() if os.path.exists(p) else None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def row(bench, what, ours, peer, ratio, target, met, unit=""):
    rows.append((bench, what, ours, peer, ratio, target, met, unit))


def why_none(bench):
    """Why a row of `bench` has no figure: the script's exit status, or that it did not run."""
    p = os.path.join(log_dir, bench + ".rc")
    if not os.path.exists(p):
        return "no figure (not run)" if text(bench) is None else "no figure (no line to parse)"
    rc, secs = (open(p).read().split() + ["?", "?"])[:2]
    if rc == "0":
        return "no figure (exit 0: no line to parse; see its log)"
    if rc == "124":
        return f"no figure (timed out after {secs} s)"
    return f"no figure (exit {rc}; see {bench}.log)"


def fmt(v, unit=""):
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    s = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"
    return f"{s} {unit}".strip()


def tables(t, header_re):
    """{section label: [{clients: (a, b)}]} from the scripts' 'clients  x/s  [y/s]' tables
    under '== round N: <label>' headers matching header_re (group 1 = label)."""
    out = {}
    cur = None
    for line in t.splitlines():
        m = re.match(r"== round \d+: (.*)", line)
        if m:
            lm = re.match(header_re, m.group(1))
            cur = out.setdefault(lm.group(1), []) if lm else None
            if cur is not None:
                cur.append({})
            continue
        f = line.split()
        if cur is not None and len(f) >= 2 and f[0].isdigit() and f[1].isdigit():
            cur[-1][int(f[0])] = tuple(float(x) for x in f[1:3])
    return out


def paired(peer_rounds, our_rounds, clients, col=0):
    """median peer, median ours, median of the per-round ratios."""
    ps = [r.get(clients, (None,))[0] for r in peer_rounds]
    os_ = [r.get(clients, (None,))[col] if clients in r else None for r in our_rounds]
    rs = [o / p for p, o in zip(ps, os_) if p and o is not None]
    return med(os_), med(ps), med(rs)


def ge(ratio, goal):
    return None if ratio is None else ratio >= goal


def le(v, goal):
    return None if v is None else v <= goal


# store: creates/s against etcd puts/s (bench/run.sh)
t = text("store")
if t is not None:
    tb = tables(t, r"(etcd puts|coxswain creates)")
    for c in (1, 16, 64):
        o, p, r = paired(tb.get("etcd puts", []), tb.get("coxswain creates", []), c)
        row("store", f"creates/s, {c} client{'s' if c > 1 else ''}", o, p, r, "≥ 1.0× etcd puts", ge(r, 1.0))
    p99 = re.findall(r"== watch delivery latency: (.*?)\n(?:.*\n)*?.*?latency ms .*?p99 ([\d.]+)", t)
    for label, v in p99:
        row("store", f"watch p99 ms, {label}", float(v), None, None, "≤ 10 ms", le(float(v), 10), "ms")
    m = re.search(r"(\d+) bytes per pod;", t)
    v = float(m.group(1)) if m else None
    row("store", "RSS bytes per stored pod", v, None, None, "≤ 2,048 B", le(v, 2048), "B")

# store on etcd (bench/etcd.sh)
t = text("store-on-etcd")
if t is not None:
    tb = tables(t, r"(etcd's own puts|creates through coxswain store --etcd-servers)")
    for c in (1, 16, 64):
        o, p, r = paired(tb.get("etcd's own puts", []),
                         tb.get("creates through coxswain store --etcd-servers", []), c)
        row("store-on-etcd", f"creates/s, {c} client{'s' if c > 1 else ''}", o, p, r, "≥ 0.8× etcd puts", ge(r, 0.8))
    two = [float(x) for x in re.findall(r"replica B.*\n.*\n.*?p99 ([\d.]+)", t)]
    one = [float(x) for x in re.findall(r"on one replica.*\n.*\n.*?p99 ([\d.]+)", t)]
    a, b = med(two), med(one)
    row("store-on-etcd", "watch fan-out p99 ms, 2 replicas vs 1", a, b, a / b if a and b else None, "≤ 10 ms", le(a, 10), "ms")
    put = med([float(x) for x in re.findall(r"etcd (\d+) us per put", t)])
    cre = med([float(x) for x in re.findall(r"etcd (\d+) us per create", t)])
    st = med([float(x) for x in re.findall(r"store (\d+) us per create\+get$", t, re.M)])
    emb = med([float(x) for x in re.findall(r"store (\d+) us per create\+get \(embedded\)", t)])
    row("store-on-etcd", "etcd's CPU µs per create through the store vs per put", cre, put,
        cre / put if cre and put else None, "—", None, "µs")
    row("store-on-etcd", "the store's CPU µs per create + get, on etcd vs embedded", st, emb,
        st / emb if st and emb else None, "—", None, "µs")

# TLS and authentication (bench/auth.sh)
t = text("auth")
if t is not None:
    tb = tables(t, r"(off|tls|rbac)\b")
    for mode in ("tls", "rbac"):
        o, p, r = paired(tb.get("off", []), tb.get(mode, []), 64)
        row("auth", f"creates/s with {mode}, 64 clients", o, p, r, "≥ 0.9× without", ge(r, 0.9))

# metrics (bench/obs.sh)
t = text("metrics")
if t is not None:
    for c, off, on, r in re.findall(r"creates/s at (\d+) clients, median of \d+: off ([\d.]+), on ([\d.]+), on/off ([\d.]+)", t):
        row("metrics", f"creates/s with metrics, {c} clients", float(on), float(off), float(r), "≥ 0.97× without", ge(float(r), 0.97))

# scheduler (bench/scheduler.sh)
t = text("scheduler")
if t is not None:
    for w, ip, e, f, rip in re.findall(r"ratio (\S+)\s+in-process\s+(\d+) pods/s, e2e\s+(\d+) pods/s(?:.*?floor (\d+): in-process ([\d.]+)×)?", t):
        ip, e = float(ip), float(e)
        if f:
            row("scheduler", f"{w} in-process pods/s", ip, float(f), ip / float(f), "≥ 1.0× kube-scheduler floor", ge(ip / float(f), 1.0))
        if w == "basic":
            row("scheduler", "basic e2e pods/s vs in-process", e, ip, e / ip if ip else None, "≥ 0.7×", ge(e / ip if ip else None, 0.7))
        if w == "node-affinity":
            row("scheduler", "node-affinity in-process pods/s (issue 17 §2 goal)", ip, None, None, "≥ 8,000", ge(ip, 8000))

# agent (bench/agent.sh)
t = text("agent")
if t is not None:
    v = med([float(x) for x in re.findall(r"agent RSS with pods .*?: ([\d.]+) KiB per pod", t)])
    row("agent", "agent RSS KiB per sim pod", v, None, None, "≤ 8 KiB", le(v, 8), "KiB")

# workloads (bench/workloads.sh)
t = text("workloads")
if t is not None:
    n = re.search(r"deployment (\d+) replicas", t)
    n = n.group(1) if n else "?"
    run = med([float(x) for x in re.findall(r"all Running\+Ready ([\d.]+)s", t)])
    roll = med([float(x) for x in re.findall(r"rolling update: ([\d.]+)s", t)])
    row("workloads", f"{n}-replica Deployment: all Running s", run, None, None, "≤ 5 s", le(run, 5), "s")
    row("workloads", f"{n}-replica rollout s", roll, None, None, "≤ 10 s", le(roll, 10), "s")

# DNS (bench/dns.sh)
t = text("dns")
if t is not None:
    m = re.search(r"median coxswain dns: ([\d.]+) q/s; dnsmasq: (?:([\d.]+) q/s|(skipped \(.*\)))", t)
    if m and m.group(2):
        o, p = float(m.group(1)), float(m.group(2))
        row("dns", "UDP queries/s vs dnsmasq", o, p, o / p, "≥ 20,000 q/s", ge(o, 20000))
    elif m:
        # dns.sh says why dnsmasq has no figure: shown as the peer, never a 0.
        o = float(m.group(1))
        row("dns", "UDP queries/s vs dnsmasq", o, "dnsmasq " + m.group(3), None, "≥ 20,000 q/s", ge(o, 20000))
    else:
        row("dns", "UDP queries/s vs dnsmasq", None, None, None, "≥ 20,000 q/s", None)

# proxy (services/proxy/bench/wrk.sh)
t = text("proxy")
if t is not None:
    for c, d, dp, p, pp, r, added in re.findall(
            r"^c=?(\d+)\s+direct\s+(\d+) req/s p50\s+(\d+) us \| proxy\s+(\d+) req/s p50\s+(\d+) us \| proxy/direct ([\d.]+)x, added p50 ([+-]\d+) us", t, re.M):
        if c == "64":
            row("proxy", "req/s through the proxy, 64 conns", float(p), float(d), float(r), "≥ 0.8× direct", ge(float(r), 0.8))
        if c == "1":
            row("proxy", "added p50 µs, 1 conn", float(added), None, None, "≤ 100 µs", le(float(added), 100), "µs")

# propagation (services/proxy/bench/propagation.sh)
t = text("propagation")
if t is not None:
    p99s = [float(x) for x in re.findall(r"p99=([\d.]+) ms", t)]
    v = max(p99s) if p99s else None
    row("propagation", "Ready flip → routing, worst stage p99 ms", v, None, None, "≤ 100 ms", le(v, 100), "ms")

# loadgen (bench/loadgen.sh)
t = text("loadgen")
if t is not None:
    for label, r in re.findall(r"^\| ([^|]+?) \| loadgen \|[^\n]*?\| \*\*([\d.]+)\*\* \|", t, re.M):
        row("loadgen", f"req/s vs wrk, {label}", None, None, float(r), "≥ 1.0× wrk", ge(float(r), 1.0))

# instructions per create (bench/create-cpu.sh): no peer, the figure the others follow
t = text("store-cpu")
if t is not None:
    m = re.search(r"^\| create \| (\d+) \|", t, re.M)
    row("store-cpu", "instructions per Store::create", float(m.group(1)) if m else None, None, None, "—", None)

print("| benchmark | figure | ours | peer (same run) | ratio | goal | met? |")
print("|---|---|---:|---:|---:|---|---|")
for bench, what, ours, peer, ratio, target, met, unit in rows:
    if ours is None and peer is None and ratio is None:
        verdict = why_none(bench)
    else:
        verdict = {True: "**met**", False: "not met", None: "—"}[met]
    r = "—" if ratio is None else f"{ratio:.2f}×"
    print(f"| {bench} | {what} | {fmt(ours, unit)} | {fmt(peer, unit)} | {r} | {target} | {verdict} |")
PY
} > "$TABLE.tmp"
mv "$TABLE.tmp" "$TABLE"
echo
cat "$TABLE"
echo
printf '| script | peer | exit | wall |\n|---|---|---:|---:|\n'
for r in "${ROWS[@]}"; do
  IFS='|' read -r name peer rc secs <<<"$r"
  printf '| %s | %s | %s | %s |\n' "$name" "$peer" "$rc" "$secs"
done
echo
echo "table: $TABLE; full logs: $LOG"
}
main "$@"
exit
