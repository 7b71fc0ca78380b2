#!/usr/bin/env bash
# Issue 11 §5: the cost of TLS + authentication on store creates/s, on and off in the same run.
# usage: bash bench/auth.sh [OPS per client count] ; ROUNDS=3 by default; SKIP_BUILD=1 to reuse
# target/release. Each round runs the plain store (`--auth=false`), then `store --auth` (TLS, client
# certificate verified and mapped to a user on every request), on fresh durable data dirs.
set -euo pipefail
cd "$(dirname "$0")/.."
OPS=${1:-20000}
ROUNDS=${ROUNDS:-3}
BIN=${BIN:-target/release}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p coxswain -p coxswain-bench
WORK=$(mktemp -d)
trap 'kill $CX_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
CX_PID=
start_store() { # extra flags
  rm -rf "$WORK/cx"; : > "$WORK/cx.out"
  $BIN/coxswain store --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --data-dir "$WORK/cx" "$@" > "$WORK/cx.out" 2> "$WORK/cx.err" &
  CX_PID=$!
  for _ in $(seq 100); do grep -q "coxswain ready" "$WORK/cx.out" && break; sleep 0.1; done
  ADDR=$(grep -o 'grpc=[^ ]*' "$WORK/cx.out" | cut -d= -f2)
}
echo "== machine: $(nproc) cores"
for round in $(seq "$ROUNDS"); do
  for mode in off on; do
    echo "== round $round: auth $mode ($OPS creates per client count, durable)"
    if [ $mode = off ]; then
      start_store --auth=false
      $BIN/coxswain-bench store --server "http://$ADDR" --ops "$OPS" --clients 1,16,64
    else
      start_store --auth --merge-kubeconfig "$WORK/config"
      COXCONFIG="$WORK/config" $BIN/coxswain-bench store --server "https://$ADDR" --ops "$OPS" --clients 1,16,64
    fi
    kill $CX_PID; wait $CX_PID 2>/dev/null || true
  done
done
