#!/usr/bin/env bash
# Issue 15 §4 (BENCHMARKS.md, "Observability"):
#   cost:   the store's creates/s with metrics off (`coxswain store --no-metrics`: no recorder,
#           every metrics macro a no-op) and on, alternating in each round of the same session;
#   scrape: `coxswain store` + one `coxswain agent --sim-nodes NODES` with PODS pods bound
#           (coxswain-bench agent-sim), then SCRAPES scrapes of each /metrics endpoint: time and
#           size, and `promtool check metrics` on each.
# Usage: bench/obs.sh [OPS] [NODES] [PODS]   (ROUNDS=3, SCRAPES=5, SKIP_BUILD=1 to reuse binaries)
set -euo pipefail
# Plain gRPC, as these figures were first measured (bench/auth.sh measures TLS + authentication).
export COXSWAIN_AUTH=false
cd "$(dirname "$0")/.."
OPS=${1:-20000}
NODES=${2:-1000}
PODS=${3:-10000}
ROUNDS=${ROUNDS:-3}
SCRAPES=${SCRAPES:-5}
if [ -z "${SKIP_BUILD:-}" ]; then
  # The one feature set of every bench script (bench/all.sh builds it once; another set rebuilds).
  cargo build --release -q -p coxswain -p coxswain-bench --features coxswain-bench/etcd -p coxctl
fi
BIN=${BIN:-target/release}
WORK=$(mktemp -d)
cleanup() { kill -9 $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

start_store() { # extra flags
  rm -rf "$WORK/cx"; : > "$WORK/cx.out"
  $BIN/coxswain store --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --data-dir "$WORK/cx" "$@" > "$WORK/cx.out" 2> "$WORK/cx.err" &
  CX_PID=$!
  for _ in $(seq 100); do grep -q "coxswain ready" "$WORK/cx.out" && break; sleep 0.1; done
  CX=http://$(grep -o 'grpc=[^ ]*' "$WORK/cx.out" | cut -d= -f2)
  MX=$(grep -o 'metrics=[^ ]*' "$WORK/cx.out" | cut -d= -f2)
}

echo "== machine: $(nproc) cores, $(grep MemTotal /proc/meminfo | awk '{print $2/1048576 " GiB"}')"
for round in $(seq "$ROUNDS"); do
  for mode in off on; do
    echo "== round $round: metrics $mode, creates then gets ($OPS per client count, durable)"
    if [ $mode = off ]; then start_store --no-metrics; else start_store; fi
    $BIN/coxswain-bench store --server "$CX" --ops "$OPS" --clients 16,64 | tee -a "$WORK/cost.$mode"
    kill $CX_PID; wait $CX_PID 2>/dev/null || true
  done
done
# Median creates/s per client count, metrics on ÷ off (the issue's budget: at least 0.97).
for c in 16 64; do
  med() { awk -v c="$c" '$1 == c { print $2 }' "$WORK/cost.$1" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
  off=$(med off); on=$(med on)
  echo "creates/s at $c clients, median of $ROUNDS: off $off, on $on, on/off $(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a / b }')"
done

echo "== scrape: $NODES sim nodes, $PODS pods"
start_store --in-memory
$BIN/coxswain agent --sim-nodes "$NODES" --server "$CX" --listen 127.0.0.1:0 --no-events \
  --metrics-listen 127.0.0.1:0 > "$WORK/agent.out" 2> "$WORK/agent.err" &
AG_PID=$!
for _ in $(seq 600); do grep -q "coxswain agent ready" "$WORK/agent.out" && break; sleep 0.1; done
AX=$(grep -o 'metrics=[^ ]*' "$WORK/agent.out" | cut -d= -f2)
$BIN/coxswain-bench agent-sim --server "$CX" --metrics "$MX" --agent-pid $AG_PID \
  --nodes "$NODES" --pods "$PODS" --idle-secs 2 > "$WORK/sim.out"
tail -3 "$WORK/sim.out"
sleep 20 # the agents' usage samples (15 s) of every pod
for ep in "store $MX" "agent $AX"; do
  set -- $ep
  for i in $(seq "$SCRAPES"); do
    curl -s -o "$WORK/$1.prom" -w "$1 scrape $i: %{time_total} s, %{size_download} bytes\n" "http://$2/metrics"
  done
  echo "$1: $(grep -vc '^#' "$WORK/$1.prom") series; promtool: $(promtool check metrics < "$WORK/$1.prom" 2>&1 && echo ok)"
done
echo "store process CPU seconds during the scrapes: see process_cpu_seconds_total"
grep '^process_cpu_seconds_total\|^process_resident_memory_bytes' "$WORK/store.prom"
