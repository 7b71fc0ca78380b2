#!/usr/bin/env bash
# A/B of two coxswain binaries' store creates/s (durable, plain gRPC), runs alternating
# old/new/new/old so the machine's swings hit both; the same coxswain-bench for both.
# Usage: bash bench/ab-store.sh OLD_COXSWAIN [NEW_COXSWAIN (target/release/coxswain)]
#        ROUNDS=2 OPS=10000 CLIENTS=1,64
# ROLLOUT=1: instead, the store's CPU (/proc utime+stime) per 10,000-replica Deployment create +
#   rolling update (issue 17 §4), the store as its own process (--in-memory) and the rest of the
#   cluster (scheduler, controllers, node lifecycle, a 1,000-node sim agent) OLD_COXSWAIN's, the
#   same for both sides, then target/release/examples/rollout_bench (RB=PATH: another build of
#   it); ENVS="K=V ..." for the store.
# It builds first with the one feature set every bench script uses (the release build is shared:
# cargo build --release -p coxswain -p coxswain-bench --features coxswain-bench/etcd -p coxctl);
# SKIP_BUILD=1 skips that.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p coxswain -p coxswain-bench --features coxswain-bench/etcd -p coxctl
OLD=${1:?usage: bench/ab-store.sh OLD_COXSWAIN [NEW_COXSWAIN]}
NEW=${2:-target/release/coxswain}
ROUNDS=${ROUNDS:-2}
export COXSWAIN_AUTH=false
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
run() { # binary label
  rm -rf "$W/d"; : > "$W/out"
  "$1" store --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data-dir "$W/d" > "$W/out" 2> "$W/err" &
  local pid=$!
  for _ in $(seq 100); do grep -q "coxswain ready" "$W/out" && break; sleep 0.1; done
  local addr; addr=http://$(grep -o 'grpc=[^ ]*' "$W/out" | cut -d= -f2)
  echo "== $2"
  target/release/coxswain-bench store --server "$addr" --clients "${CLIENTS:-1,64}" --ops "${OPS:-10000}"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
rollout() { # binary label
  rm -rf "$W/d"; : > "$W/out"; : > "$W/a.out"
  env ${ENVS:-} "$1" store --in-memory --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --data-dir "$W/d" > "$W/out" 2> "$W/err" &
  local pid=$! rest=()
  for _ in $(seq 100); do grep -q "coxswain ready" "$W/out" && break; sleep 0.1; done
  local addr; addr=http://$(grep -o 'grpc=[^ ]*' "$W/out" | cut -d= -f2)
  "$OLD" scheduler --server "$addr" --listen 127.0.0.1:0 > /dev/null 2>&1 & rest+=($!)
  "$OLD" controllers --server "$addr" > /dev/null 2>&1 & rest+=($!)
  "$OLD" node-lifecycle --server "$addr" > /dev/null 2>&1 & rest+=($!)
  "$OLD" agent --sim-nodes 1000 --server "$addr" --listen 127.0.0.1:0 --no-events \
    > "$W/a.out" 2> /dev/null & rest+=($!)
  for _ in $(seq 600); do grep -q "coxswain agent ready" "$W/a.out" && break; sleep 0.1; done
  local t0 t1; t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  local out; out=$("${RB:-target/release/examples/rollout_bench}" "$addr" 10000 1000 2>&1 | tail -2 | tr '\n' ' ')
  t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  echo "$2 store_cpu_s=$(echo "scale=2; ($t1 - $t0) / $(getconf CLK_TCK)" | bc) | $out"
  kill -9 "$pid" "${rest[@]}"; wait "$pid" "${rest[@]}" 2>/dev/null || true
}
if [ -n "${ROLLOUT:-}" ]; then
  [ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p coxswain-controllers --example rollout_bench
  for _ in $(seq "$ROUNDS"); do rollout "$OLD" old; rollout "$NEW" new; done
  exit 0
fi
for _ in $(seq "$ROUNDS"); do
  run "$OLD" old; run "$NEW" new
  run "$NEW" new; run "$OLD" old
done
