#!/usr/bin/env bash
# loadgen vs wrk, hey (and oha when installed), in the same run, against the same target:
# coxswain's built-in web server (`coxswain builtin web`, what the nginx image runs) on loopback.
#
#   apt-get install -y wrk hey time     # oha: cargo install oha (optional)
#   bash bench/loadgen.sh    # ROUNDS=5 DUR=5 CONNS=64 CLOSE_CONNS=1000 THREADS=2 RATES="1000 4000 8000"
#
# One command: it first builds what it runs (`cargo build --release -p loadgen -p coxswain
# --examples`, a no-op when up to date; BUILD=0 skips it, BIN=DIR runs prebuilt binaries).
#
# Modes (issue 14 §3): keep-alive with CONNS connections, and no keep-alive with CLOSE_CONNS
# connections (the seed's `ab -c 1000`). loadgen runs twice per round: its default HTTP/1.1 path
# and `--engine hyper`. Rounds interleave the tools, the order reversed every other round (so
# drift on a shared machine hits all of them alike); the table gives each configuration's median
# req/s and the ratio to wrk's median. Then: loadgen's memory
# (max RSS) at 1,000 connections, its constant-rate accuracy, and the statistics' cost per request.
#
# INSTR=1 adds what a loaded machine cannot blur: user-space instructions per request of loadgen
# and wrk in both modes under callgrind (valgrind), the marginal cost between a short and a long
# run (loadgen: -n INSTR_N1 / INSTR_N2; wrk, which has no request count: -d3s / -d9s, divided by
# the requests it reports), so start-up is not counted. About two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
DUR=${DUR:-5}
CONNS=${CONNS:-64}
CLOSE_CONNS=${CLOSE_CONNS:-1000}
THREADS=${THREADS:-2}
RATES=${RATES:-"1000 4000 8000"}
BIN=${BIN:-target/release}
OUT=${OUT:-$(mktemp -d)}; mkdir -p "$OUT"
if [ "${BUILD:-1}" = 1 ] && [ "$BIN" = target/release ]; then
  cargo build --release -p loadgen -p coxswain --examples
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

# tool mode → command; every command prints its own report to $OUT/<tool>-<mode>-<round>.
run() {
  local tool=$1 mode=$2 round=$3 f="$OUT/$1-$2-$3"
  local ka=() ; local c=$CONNS
  [ "$mode" = close ] && c=$CLOSE_CONNS
  case $tool in
    wrk)
      [ "$mode" = close ] && ka=(-H "Connection: close")
      wrk -t"$THREADS" -c"$c" -d"${DUR}s" "${ka[@]}" "$URL" >"$f" 2>&1 ;;
    hey)
      [ "$mode" = close ] && ka=(-disable-keepalive)
      hey -z "${DUR}s" -c "$c" -cpus "$THREADS" "${ka[@]}" "$URL" >"$f" 2>&1 ;;
    oha)
      [ "$mode" = close ] && ka=(--disable-keepalive)
      oha -z "${DUR}s" -c "$c" --no-tui --output-format json "${ka[@]}" "$URL" >"$f" 2>&1 ;;
    loadgen|loadgen-hyper)
      [ "$mode" = close ] && ka=(--disable-keepalive)
      [ "$tool" = loadgen-hyper ] && ka+=(--engine hyper)
      "$BIN/loadgen" "$URL" -z "${DUR}s" -c "$c" --threads "$THREADS" "${ka[@]}" -o json --quiet >"$f" 2>&1 ;;
  esac
}

tools="${TOOLS:-loadgen wrk loadgen-hyper hey}"
[ $have_oha = 1 ] && tools="$tools oha"
reversed=$(echo $tools | tr ' ' '\n' | tac | tr '\n' ' ')
[ "${SKIP_COMPARE:-0}" = 1 ] && ROUNDS=0
for mode in keepalive close; do
  for r in $(seq "$ROUNDS"); do
    order=$tools; [ $((r % 2)) = 0 ] && order=$reversed
    for t in $order; do run "$t" "$mode" "$r"; done
  done
done

[ "$ROUNDS" -gt 0 ] && python3 - "$OUT" "$ROUNDS" "$tools" "$CONNS" "$CLOSE_CONNS" "$THREADS" "$DUR" <<'PY'
import json, re, statistics, sys
out, rounds, tools = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
conns, close_conns, threads, dur = sys.argv[4:8]
def rps(tool, mode, r):
    text = open(f"{out}/{tool}-{mode}-{r}").read()
    if tool.startswith("loadgen"):
        return json.loads(text)["rps"]
    if tool == "oha":
        return json.loads(text)["summary"]["requestsPerSec"]
    m = re.search(r"Requests/sec:\s*([\d.]+)", text)
    return float(m.group(1)) if m else float("nan")
print(f"\n| mode ({threads} threads, {dur} s) | tool | req/s per round | median | × wrk | per-round × wrk (min–max) |")
print("|---|---|---|---|---|---|")
for mode, c in [("keepalive", conns), ("close", close_conns)]:
    med = {t: statistics.median([rps(t, mode, r) for r in range(1, rounds + 1)]) for t in tools}
    for t in tools:
        rounds_s = " / ".join(f"{rps(t, mode, r):,.0f}" for r in range(1, rounds + 1))
        ratios = [rps(t, mode, r) / rps("wrk", mode, r) for r in range(1, rounds + 1)]
        label = "keep-alive" if mode == "keepalive" else "no keep-alive"
        print(f"| {label}, {c} connections | {t} | {rounds_s} | {med[t]:,.0f} | {med[t] / med['wrk']:.2f} | {min(ratios):.2f}–{max(ratios):.2f} |")
PY

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
