#!/usr/bin/env bash
# A/B of two coxswain binaries' store creates/s (durable, plain gRPC), runs alternating
# old/new/new/old so the machine's swings hit both; the same coxswain-bench for both.
# Usage: bash bench/ab-store.sh OLD_COXSWAIN [NEW_COXSWAIN (target/release/coxswain)]
#        ROUNDS=2 OPS=10000 CLIENTS=1,64
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
for _ in $(seq "$ROUNDS"); do
  run "$OLD" old; run "$NEW" new
  run "$NEW" new; run "$OLD" old
done
