#!/usr/bin/env bash
# Issue 11 §5 in instructions (steady on a shared machine, where wall-clock is noise): the store
# under callgrind, OPS creates then OPS gets from coxswain-bench at CLIENTS clients, in memory,
# in bench/auth.sh's modes (off: plain; tls: TLS + the admin's certificate, system:masters;
# rbac: TLS + a client certificate of user "bench" + RBAC through a RoleBinding). Prints each run's total and the difference per request
# against off (startup and the TLS handshakes included; they are the same few in every run).
# Usage: bash bench/auth-instructions.sh [OPS] [CLIENTS]   (BIN=target/release; build first:
# cargo build --release -p coxswain -p coxswain-bench -p coxctl)
set -euo pipefail
cd "$(dirname "$0")/.."
OPS=${1:-2000}
CLIENTS=${2:-16}
BIN=${BIN:-target/release}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
WORK=$(mktemp -d)
# bench_user: the bench user's certificate, RBAC and kubeconfig.
. bench/auth-lib.sh
trap 'kill -9 $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
run() { # mode
  local mode=$1 flags scheme=https conf="$WORK/$1.config"
  case $mode in
    off) flags=(--auth=false); scheme=http ;;
    tls) flags=(--auth --merge-kubeconfig "$conf") ;;
    rbac) flags=(--auth --merge-kubeconfig "$WORK/rbac.admin") ;;
  esac
  valgrind --tool=callgrind --callgrind-out-file="$WORK/$mode.cg" \
    $BIN/coxswain store --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --in-memory \
    --data-dir "$WORK/$mode.data" "${flags[@]}" > "$WORK/$mode.out" 2> "$WORK/$mode.err" &
  local pid=$!
  for _ in $(seq 600); do grep -q "coxswain ready" "$WORK/$mode.out" && break; sleep 0.1; done
  local addr; addr=$(grep -o 'grpc=[^ ]*' "$WORK/$mode.out" | cut -d= -f2)
  if [ "$mode" = rbac ]; then
    bench_user "$BIN" "$WORK/rbac.admin" "$addr" "$WORK/$mode.data/pki" "$WORK" "$conf"
  fi
  COXCONFIG="$conf" $BIN/coxswain-bench store --server "$scheme://$addr" --ops "$OPS" --clients "$CLIENTS" > "$WORK/$mode.bench"
  kill -INT $pid; wait $pid 2>/dev/null || true
  grep -o 'summary: [0-9]*' "$WORK/$mode.cg" | awk '{print $2}'
}
off=$(run off)
echo "instructions, store process, $OPS creates + $OPS gets at $CLIENTS clients: off $off"
for mode in tls rbac; do
  n=$(run $mode)
  awk -v m="$mode" -v a="$n" -v b="$off" -v n="$OPS" 'BEGIN { printf "%s: %s, %+.0f instructions per request against off (%+.2f%% of the run)\n", m, a, (a - b) / (2 * n), 100 * (a - b) / b }'
done
if [ -n "${KEEP:-}" ]; then cp "$WORK"/*.cg "$KEEP"/; fi
