#!/usr/bin/env bash
# Issue 15 §4, the metrics' cost in instructions (what guides the optimisation; wall-clock on a
# shared machine is noise): the store under callgrind with metrics off (`--no-metrics`) and on,
# OPS creates then OPS gets from coxswain-bench at CLIENTS clients, in memory. Prints each
# run's total instructions (startup included, the same in both) and the difference per request.
# Usage: bench/obs-instructions.sh [OPS] [CLIENTS]   (BIN=target/release)
set -euo pipefail
export COXSWAIN_AUTH=false
cd "$(dirname "$0")/.."
OPS=${1:-2000}
CLIENTS=${2:-16}
BIN=${BIN:-target/release}
WORK=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
run() { # name, extra store flags
  local name=$1; shift
  valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.cg" \
    $BIN/coxswain store --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --in-memory "$@" \
    > "$WORK/$name.out" 2> "$WORK/$name.err" &
  local pid=$!
  for _ in $(seq 600); do grep -q "coxswain ready" "$WORK/$name.out" && break; sleep 0.1; done
  local cx=http://$(grep -o 'grpc=[^ ]*' "$WORK/$name.out" | cut -d= -f2)
  $BIN/coxswain-bench store --server "$cx" --ops "$OPS" --clients "$CLIENTS" > "$WORK/$name.bench"
  kill -INT $pid; wait $pid 2>/dev/null || true
  grep -o 'summary: [0-9]*' "$WORK/$name.cg" | awk '{print $2}'
}
off=$(run off --no-metrics)
on=$(run on)
echo "instructions, store process, $OPS creates + $OPS gets at $CLIENTS clients: off $off, on $on"
awk -v a="$on" -v b="$off" -v n="$OPS" 'BEGIN { printf "metrics cost: %.0f instructions per request (%.2f%% of the run)\n", (a - b) / (2 * n), 100 * (a - b) / b }'
if [ -n "${KEEP:-}" ]; then cp "$WORK"/*.cg "$KEEP"/; fi
