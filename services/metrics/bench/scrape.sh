#!/usr/bin/env bash
# Metrics pipeline benchmark (BENCHMARKS.md, "Metrics pipeline"): a store, one
# `coxswain agent --sim-nodes NODES` process and PODS pods bound round-robin to its nodes
# (`coxswain-bench agent-sim`), then `coxswain metrics-server --metric-resolution RES` as its own
# process for SCRAPES scrapes. Reports every scrape's wall time and size (its debug log), the
# metrics-server's CPU per scrape and RSS, the agent's CPU per scrape above its idle baseline,
# and how many pods `coxctl top pods -A` lists.
# Usage: services/metrics/bench/scrape.sh [NODES] [PODS]   (RES=15 SCRAPES=4 PROFILE=release SKIP_BUILD=)
set -euo pipefail
cd "$(dirname "$0")/../../.."
NODES=${1:-1000}
PODS=${2:-10000}
RES=${RES:-15}
SCRAPES=${SCRAPES:-4}
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ] && [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -q -p coxswain -p coxctl -p coxswain-bench
fi
BIN=target/$PROFILE
WORK=$(mktemp -d)
cleanup() { kill -9 $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
TCK=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' /proc/"$1"/stat; }   # utime + stime, clock ticks
rss() { awk '/VmRSS/ {print $2}' /proc/"$1"/status; }
secs() { awk -v t="$1" -v k="$TCK" 'BEGIN {printf "%.2f", t / k}'; }

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
$BIN/coxswain store --in-memory --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --data-dir "$WORK/cx" > "$WORK/cx.out" 2> "$WORK/cx.err" &
for _ in $(seq 100); do grep -q "coxswain ready" "$WORK/cx.out" && break; sleep 0.1; done
CX=http://$(grep -o 'grpc=[^ ]*' "$WORK/cx.out" | cut -d= -f2)
MX=$(grep -o 'metrics=[^ ]*' "$WORK/cx.out" | cut -d= -f2)
$BIN/coxswain agent --sim-nodes "$NODES" --server "$CX" --listen 127.0.0.1:0 --no-events \
  --metrics-resolution "${RES}s" > "$WORK/agent.out" 2> "$WORK/agent.err" &
AG_PID=$!
for _ in $(seq 600); do grep -q "coxswain agent ready" "$WORK/agent.out" && break; sleep 0.1; done
$BIN/coxswain-bench agent-sim --server "$CX" --metrics "$MX" --agent-pid "$AG_PID" \
  --nodes "$NODES" --pods "$PODS" --rate 1000 --idle-secs 0 | sed 's/^/  bench: /'

echo "== agent idle baseline over one period (${RES}s)"
a0=$(cpu $AG_PID); sleep "$RES"; a1=$(cpu $AG_PID)
echo "agent CPU idle: $(secs $((a1 - a0))) s per ${RES}s"

RUST_LOG=coxswain_metrics=debug $BIN/coxswain metrics-server --server "$CX" \
  --listen 127.0.0.1:0 --metric-resolution "${RES}s" > "$WORK/ms.out" 2> "$WORK/ms.err" &
MS_PID=$!
for _ in $(seq 100); do grep -q "ready" "$WORK/ms.out" && break; sleep 0.1; done
MSX=$(grep -o 'grpc=[^ ]*' "$WORK/ms.out" | cut -d= -f2)
count() { grep -c "scraped the agents" "$WORK/ms.err" || true; }
for _ in $(seq 1200); do [ "$(count)" -ge 1 ] && break; sleep 0.1; done
m0=$(cpu $MS_PID); a2=$(cpu $AG_PID)
for _ in $(seq $((SCRAPES * RES * 20 + 600))); do [ "$(count)" -ge $((SCRAPES + 1)) ] && break; sleep 0.1; done
m1=$(cpu $MS_PID); a3=$(cpu $AG_PID)
echo "== $SCRAPES scrapes of $NODES nodes / $PODS pods at --metric-resolution ${RES}s"
grep "scraped the agents" "$WORK/ms.err" | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^.*scraped the agents */  /'
echo "metrics-server CPU: $(secs $((m1 - m0))) s over $SCRAPES periods ($(secs $(((m1 - m0) / SCRAPES))) s per scrape)"
echo "agent CPU: $(secs $((a3 - a2))) s over $SCRAPES periods (idle baseline $(secs $(((a1 - a0) * SCRAPES))) s)"
echo "metrics-server RSS: $(rss $MS_PID) KiB"
t0=$(date +%s.%N)
rows=$($BIN/coxctl -s "$MSX" top pods -A --no-headers | wc -l)
t1=$(date +%s.%N)
echo "coxctl top pods -A: $rows rows in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s"
