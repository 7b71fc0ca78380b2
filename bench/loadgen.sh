#!/usr/bin/env bash
# loadgen vs wrk, hey (and oha when installed), in the same run, against the same target:
# coxswain's built-in web server (`coxswain builtin web`, what the nginx image runs) on loopback.
#
#   apt-get install -y wrk hey time     # oha: cargo install oha (optional); perf (optional)
#   bash bench/loadgen.sh    # ROUNDS=7 DUR=5 CONNS=64 CLOSE_CONNS=1000 THREADS=2 RATES="1000 4000 8000"
#
# One command: it first builds what it runs (`cargo build --release -p loadgen -p coxswain
# --examples`, a no-op when up to date; BUILD=0 skips it, BIN=DIR runs prebuilt binaries).
#
# Modes (issue 14 §3): keep-alive with CONNS connections, and no keep-alive with CLOSE_CONNS
# connections (the seed's `ab -c 1000`).
#
# Pairs, not medians: on a shared machine both tools swing by ±15% from run to run, and the
# median of each tool's own runs compares two noisy distributions. Each round therefore runs
# loadgen and wrk back to back, alternating which goes first (A B | B A | A B ...), so whatever
# slows the machine in that window slows both; the report gives each pair's ratio and the
# MEDIAN OF THE RATIOS (the headline figure), next to the medians. The other peers (EXTRA,
# default `loadgen-hyper hey`, plus oha when installed, and BASE=PATH's loadgen binary as
# `loadgen-base`) run after the pair in each round and are compared with that round's wrk.
#
# CPU per request, per run (a loaded machine blurs req/s much more than what a request costs):
# the tool's user and system time (/usr/bin/time) and the server's (utime + stime from
# /proc/<server>/stat), each divided by the requests served. With perf and its syscall
# tracepoints (SYSCALLS=1, the default when they work): one more run each of loadgen and wrk per
# mode, counting system calls and context switches per request, of the tool and of the server.
#
# Then: loadgen's memory (max RSS) at 1,000 connections, its constant-rate accuracy, and the
# statistics' cost per request.
#
# SCHED=batch adds two peers per round, loadgen and wrk each run as SCHED_BATCH (`chrt -b 0`):
# "loadgen-batch" and "wrk-batch", and their own median ratio. On these 2 cores a client woken
# by each response preempts the server it measures in the middle of its turn (SCHED_BATCH
# tasks never preempt on wake-up); the default rows, both tools under the normal policy, stay
# the headline that bench/all.sh reads.
#
# INSTR=1 adds user-space instructions per request of loadgen and wrk in both modes under
# callgrind (valgrind), the marginal cost between a short and a long run (loadgen: -n INSTR_N1 /
# INSTR_N2; wrk, which has no request count: -d3s / -d9s, divided by the requests it reports), so
# start-up is not counted. About two minutes. Under callgrind the run is serialized and slow, so
# every event-loop turn finds many connections ready: it counts the work per request but not the
# cost per wake-up that a real run pays every few requests (the CPU columns above include it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-7}
DUR=${DUR:-5}
CONNS=${CONNS:-64}
CLOSE_CONNS=${CLOSE_CONNS:-1000}
THREADS=${THREADS:-2}
RATES=${RATES:-"1000 4000 8000"}
BIN=${BIN:-target/release}
OUT=${OUT:-$(mktemp -d)}; mkdir -p "$OUT"
if [ "${BUILD:-1}" = 1 ] && [ "$BIN" = target/release ]; then
  # The one feature set of every bench script (bench/all.sh builds it once), then loadgen and
  # the examples: `--examples` alone builds no binary, so loadgen was never (re)built here.
  cargo build --release -q -p coxswain -p coxswain-bench --features coxswain-bench/etcd -p coxctl
  cargo build --release -q -p loadgen --bin loadgen
  cargo build --release -q -p coxswain --examples
fi

for t in wrk hey python3 /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install -y wrk hey time python3)"; exit 1; }
done
have_oha=0; command -v oha >/dev/null && have_oha=1

root=$(mktemp -d)
printf '<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n<body>\n<h1>Welcome to nginx!</h1>\n</body>\n</html>\n' >"$root/index.html"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/coxswain" builtin web --addr 127.0.0.1 --port "$port" --root "$root" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$root"' EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
URL="http://127.0.0.1:$port/"
echo "target: coxswain builtin web at $URL (pid $server); results in $OUT"
# The server's CPU time so far (utime + stime, clock ticks).
server_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }

# run TOOL MODE ROUND: the tool's report goes to $OUT/<tool>-<mode>-<round>, its user and system
# seconds and context switches to .time, the server's CPU ticks before and after to .srv. WRAP
# (an array) is put in front of the command (perf stat for the syscall counts).
WRAP=()
run() {
  local tool=$1 mode=$2 round=$3 f="$OUT/$1-$2-$3"
  local ka=() c=$CONNS cmd=() wrap=("${WRAP[@]}")
  [ "$mode" = close ] && c=$CLOSE_CONNS
  # loadgen-batch, wrk-batch: the tool as SCHED_BATCH (SCHED=batch).
  case $tool in *-batch) tool=${tool%-batch}; wrap+=(chrt -b 0) ;; esac
  case $tool in
    wrk)
      [ "$mode" = close ] && ka=(-H "Connection: close")
      cmd=(wrk -t"$THREADS" -c"$c" -d"${DUR}s" "${ka[@]}" "$URL") ;;
    hey)
      [ "$mode" = close ] && ka=(-disable-keepalive)
      cmd=(hey -z "${DUR}s" -c "$c" -cpus "$THREADS" "${ka[@]}" "$URL") ;;
    oha)
      [ "$mode" = close ] && ka=(--disable-keepalive)
      cmd=(oha -z "${DUR}s" -c "$c" --no-tui --output-format json "${ka[@]}" "$URL") ;;
    loadgen|loadgen-hyper|loadgen-base)
      local lg=$BIN/loadgen
      [ "$mode" = close ] && ka=(--disable-keepalive)
      [ "$tool" = loadgen-hyper ] && ka+=(--engine hyper)
      [ "$tool" = loadgen-base ] && lg=$BASE
      cmd=("$lg" "$URL" -z "${DUR}s" -c "$c" --threads "$THREADS" "${ka[@]}" -o json --quiet) ;;
  esac
  local s0; s0=$(server_ticks)
  "${wrap[@]}" /usr/bin/time -f "%U %S %w %c" -o "$f.time" "${cmd[@]}" >"$f" 2>&1 || true
  echo "$s0 $(server_ticks)" >"$f.srv"
}

extra="${EXTRA-loadgen-hyper hey}"
[ $have_oha = 1 ] && extra="$extra oha"
# BASE=PATH: another loadgen binary (a "before" build) as one more peer, "loadgen-base", run
# right after the pair in each round: before and after compared with the same rounds' wrk.
[ -n "${BASE:-}" ] && extra="loadgen-base $extra"
if [ "${SCHED:-}" = batch ]; then
  command -v chrt >/dev/null || { echo "SCHED=batch needs chrt (util-linux)"; exit 1; }
  extra="loadgen-batch wrk-batch $extra"
fi
[ "${SKIP_COMPARE:-0}" = 1 ] && ROUNDS=0
for mode in keepalive close; do
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then run loadgen "$mode" "$r"; run wrk "$mode" "$r"
    else run wrk "$mode" "$r"; run loadgen "$mode" "$r"; fi
    for t in $extra; do run "$t" "$mode" "$r"; done
  done
done

[ "$ROUNDS" -gt 0 ] && python3 - "$OUT" "$ROUNDS" "loadgen wrk $extra" "$CONNS" "$CLOSE_CONNS" "$THREADS" "$DUR" "$(getconf CLK_TCK)" <<'PY'
import json, re, statistics, sys
out, rounds, tools = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
conns, close_conns, threads = sys.argv[4:7]
dur, hz = float(sys.argv[7]), float(sys.argv[8])
nan = float("nan")
def report(tool, mode, r):
    """(req/s, requests served) of one run."""
    try:
        text = open(f"{out}/{tool}-{mode}-{r}").read()
        if tool.startswith("loadgen"):
            j = json.loads(text)
            return j["rps"], j["requests"]
        if tool == "oha":
            j = json.loads(text)["summary"]
            return j["requestsPerSec"], j["requestsPerSec"] * j["total"]
        rps = float(re.search(r"Requests/sec:\s*([\d.]+)", text).group(1))
        m = re.search(r"(\d+) requests in", text)  # wrk
        return rps, (int(m.group(1)) if m else rps * dur)
    except Exception:
        return nan, nan
def cpu(tool, mode, r):
    """µs per request: the tool's user and system time, the server's user + system."""
    try:
        _, n = report(tool, mode, r)
        u, s = map(float, open(f"{out}/{tool}-{mode}-{r}.time").read().split()[-4:-2])
        s0, s1 = map(float, open(f"{out}/{tool}-{mode}-{r}.srv").read().split())
        return u * 1e6 / n, s * 1e6 / n, (s1 - s0) / hz * 1e6 / n
    except Exception:
        return nan, nan, nan
def med(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else nan
R = range(1, rounds + 1)
modes = [("keepalive", f"keep-alive, {conns} conns"), ("close", f"no keep-alive, {close_conns} conns")]
print(f"\nreq/s, {threads} threads, {dur:g} s per run; loadgen and wrk back to back in every round (AB, BA, AB, ...)")
print("\n| mode | tool | req/s per round | median | × wrk per round | median of ratios | × wrk of medians |")
print("|---|---|---|---|---|---|---|")
for mode, label in modes:
    wrk = [report("wrk", mode, r)[0] for r in R]
    for t in tools:
        xs = [report(t, mode, r)[0] for r in R]
        ratios = [x / w for x, w in zip(xs, wrk)]
        per = " / ".join(f"{x:,.0f}" for x in xs)
        rs = " ".join(f"{x:.2f}" for x in ratios)
        print(f"| {label} | {t} | {per} | {med(xs):,.0f} | {rs} | **{med(ratios):.2f}** | {med(xs) / med(wrk):.2f} |")
if "wrk-batch" in tools:
    print("\nBoth as SCHED_BATCH (chrt -b 0), loadgen-batch × wrk-batch in the same rounds:")
    for mode, label in modes:
        lb = [report("loadgen-batch", mode, r)[0] for r in R]
        wb = [report("wrk-batch", mode, r)[0] for r in R]
        rs = [x / w for x, w in zip(lb, wb)]
        print(f"  {label}: " + " ".join(f"{x:.2f}" for x in rs) + f", median of ratios **{med(rs):.2f}**")
print("\nCPU per request, µs (medians over the rounds): the tool's own user and system time, and the server's")
print("\n| mode | tool | tool user | tool system | tool total | server | tool + server |")
print("|---|---|---|---|---|---|---|")
for mode, label in modes:
    for t in tools:
        cs = [cpu(t, mode, r) for r in R]
        u, s, v = (med([x[i] for x in cs]) for i in range(3))
        tot = med([x[0] + x[1] for x in cs])
        both = med([x[0] + x[1] + x[2] for x in cs])
        print(f"| {label} | {t} | {u:.2f} | {s:.2f} | {tot:.2f} | {v:.1f} | {both:.1f} |")
PY

# System calls and context switches per request, of loadgen and wrk and of the server under each
# (perf's syscall tracepoints; one run per tool and mode, the tool's counts include /usr/bin/time's
# few).
if [ "${SYSCALLS:-auto}" = auto ]; then
  SYSCALLS=0
  command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1 && SYSCALLS=1
fi
if [ "$SYSCALLS" = 1 ]; then
  ev=raw_syscalls:sys_enter
  for s in read write recvfrom sendto epoll_wait epoll_pwait epoll_ctl futex socket connect close setsockopt getsockopt fcntl; do
    ev="$ev,syscalls:sys_enter_$s"
  done
  ev="$ev,context-switches"
  for mode in keepalive close; do
    for tool in loadgen wrk; do
      f="$OUT/$tool-$mode-sys"
      perf stat -x, -e "$ev" -p "$server" -o "$f.server-perf" -- sleep "$((DUR + 1))" &
      sp=$!
      WRAP=(perf stat -x, -e "$ev" -o "$f.perf" --)
      run "$tool" "$mode" sys
      WRAP=()
      wait "$sp" || true
    done
  done
  python3 - "$OUT" "$CONNS" "$CLOSE_CONNS" <<'PY'
import json, re, sys
out, conns, close_conns = sys.argv[1:4]
def counts(p):
    d = {}
    for line in open(p):
        f = line.strip().split(",")
        if len(f) > 3 and f[0][:1].isdigit():
            name = f[2].split(":")[-1].replace("sys_enter_", "").replace("sys_enter", "all")
            d[name] = d.get(name, 0) + float(f[0])
    return d
def requests(tool, mode):
    text = open(f"{out}/{tool}-{mode}-sys").read()
    if tool == "loadgen":
        return json.loads(text)["requests"]
    return int(re.search(r"(\d+) requests in", text).group(1))
cols = ["all", "read", "recvfrom", "write", "sendto", "epoll_wait", "epoll_pwait", "epoll_ctl", "futex",
        "socket", "connect", "close", "setsockopt", "getsockopt", "fcntl", "context-switches"]
print("\nsystem calls and context switches per request (perf stat, one run each)")
print("\n| mode | tool | whose | " + " | ".join(cols) + " |")
print("|---|---|---|" + "---|" * len(cols))
for mode, label in [("keepalive", f"keep-alive, {conns} conns"), ("close", f"no keep-alive, {close_conns} conns")]:
    for tool in ["loadgen", "wrk"]:
        try:
            n = requests(tool, mode)
            for whose, suffix in [("tool", "perf"), ("server", "server-perf")]:
                c = counts(f"{out}/{tool}-{mode}-sys.{suffix}")
                print(f"| {label} | {tool} | {whose} | " + " | ".join(f"{c.get(k, 0) / n:.2f}" for k in cols) + " |")
        except Exception as e:
            print(f"| {label} | {tool} | - | no counts: {e} |")
PY
fi

echo
echo "loadgen memory at 1,000 connections (max RSS, KiB), keep-alive and not:"
for ka in "" "--disable-keepalive"; do
  /usr/bin/time -f "%M KiB max RSS" "$BIN/loadgen" "$URL" -z "${DUR}s" -c 1000 --threads "$THREADS" $ka -o json --quiet \
    >"$OUT/rss$ka.json" 2>"$OUT/rss$ka.err" || true
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); r=j["rps"]; e=j["errors"]; p=j["latency_ms"]["p99"]; m=open(sys.argv[2]).read().strip().splitlines()[-1]; print(f"  -c 1000 {sys.argv[3]}: {r:,.0f} req/s, errors {e}, p99 {p:.1f} ms, {m}")' \
    "$OUT/rss$ka.json" "$OUT/rss$ka.err" "${ka:-keep-alive}"
done

echo
echo "constant-rate accuracy (--rate R -z ${DUR}s -c $CONNS):"
for r in $RATES; do
  "$BIN/loadgen" "$URL" --rate "$r" -z "${DUR}s" -c "$CONNS" --threads "$THREADS" -o json --quiet >"$OUT/rate-$r.json" || true
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); r=float(sys.argv[2]); a=j["rps"]; n=j["requests"]; s=j["scheduled"]; e=j["errors"]; l=j["latency_ms"]; p50=l["p50"]; p99=l["p99"]; print(f"  asked {r:,.0f}/s: achieved {a:,.1f}/s ({(a/r-1)*100:+.2f}%), sent {n}/{s}, errors {e}, p50 {p50:.2f} ms, p99 {p99:.2f} ms")' "$OUT/rate-$r.json" "$r"
done

if [ -x "$BIN/examples/stats_cost" ]; then
  echo; echo "statistics cost:"; "$BIN/examples/stats_cost"
fi

if [ "${INSTR:-0}" = 1 ]; then
  command -v valgrind >/dev/null || { echo "INSTR=1 needs valgrind (apt-get install -y valgrind)"; exit 1; }
  N1=${INSTR_N1:-10000}; N2=${INSTR_N2:-30000}
  echo
  echo "user-space instructions per request (callgrind, marginal between two run lengths):"
  # Total instructions of one run under callgrind, and its request count.
  instr() {
    local f=$OUT/callgrind.$1; shift
    valgrind --tool=callgrind --callgrind-out-file="$f" "$@" >"$f.out" 2>/dev/null || true
    grep -E '^(summary|totals):' "$f" | head -1 | awk '{print $2}'
  }
  for mode in keepalive close; do
    la=(-c "$CONNS"); wa=(-c"$CONNS")
    if [ "$mode" = close ]; then
      la=(-c "$CLOSE_CONNS" --disable-keepalive); wa=(-c"$CLOSE_CONNS" -H "Connection: close")
    fi
    a=$(instr "lg-$mode-1" "$BIN/loadgen" "$URL" -n "$N1" "${la[@]}" --threads "$THREADS" -o json --quiet)
    b=$(instr "lg-$mode-2" "$BIN/loadgen" "$URL" -n "$N2" "${la[@]}" --threads "$THREADS" -o json --quiet)
    wa1=$(instr "wrk-$mode-1" wrk -t"$THREADS" "${wa[@]}" -d3s "$URL")
    wb1=$(instr "wrk-$mode-2" wrk -t"$THREADS" "${wa[@]}" -d9s "$URL")
    wn1=$(grep -oE '^ *[0-9]+ requests' "$OUT/callgrind.wrk-$mode-1.out" | awk '{print $1}')
    wn2=$(grep -oE '^ *[0-9]+ requests' "$OUT/callgrind.wrk-$mode-2.out" | awk '{print $1}')
    python3 -c 'import sys; a,b,n1,n2,wa,wb,w1,w2=map(int,sys.argv[2:]); l=(b-a)/(n2-n1); w=(wb-wa)/(w2-w1); print(f"  {sys.argv[1]}: loadgen {l:,.0f}, wrk {w:,.0f} ({l/w:.2f}x wrk)")' \
      "$mode" "$a" "$b" "$N1" "$N2" "$wa1" "$wb1" "$wn1" "$wn2"
  done
fi
