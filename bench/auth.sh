#!/usr/bin/env bash
# Issue 11 §5: the cost of TLS, authentication and authorization on store creates/s, every mode
# in the same run, alternating round by round on fresh durable data dirs:
#   off   `store --auth=false`: plain gRPC, nobody authenticated or authorized;
#   tls   `store --auth` dialled as the admin (client certificate, system:masters): TLS and
#         authentication on every request, authorization short-circuited by system:masters;
#   rbac  `store --auth` dialled with a client certificate of user "bench" (no group; openssl
#         signs it with the cluster CA), allowed by a RoleBinding in "default" to a ClusterRole
#         naming exactly what the bench does: TLS, authentication and the RBAC authorizer (the
#         bootstrap policy's ClusterRoleBindings scanned, then the namespace's RoleBindings) on
#         every request. (coxswain's clients send client certificates, not bearer tokens.)
# usage: bash bench/auth.sh [OPS per client count]   ROUNDS=3 by default; SKIP_BUILD=1 to reuse
# target/release; MODES="off tls rbac" by default; CLIENTS=1,16,64 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
OPS=${1:-20000}
ROUNDS=${ROUNDS:-3}
MODES=${MODES:-off tls rbac}
CLIENTS=${CLIENTS:-1,16,64}
BIN=${BIN:-target/release}
# The one feature set of every bench script (bench/all.sh builds it once; another set rebuilds).
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p coxswain -p coxswain-bench --features coxswain-bench/etcd -p coxctl
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
# The bench user's RBAC and kubeconfig (bench/auth-lib.sh).
. bench/auth-lib.sh
echo "== machine: $(nproc) cores"
for round in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    echo "== round $round: $mode ($OPS creates per client count, durable)"
    case $mode in
      off)
        start_store --auth=false
        $BIN/coxswain-bench store --server "http://$ADDR" --ops "$OPS" --clients "$CLIENTS" ;;
      tls)
        start_store --auth --merge-kubeconfig "$WORK/config"
        COXCONFIG="$WORK/config" $BIN/coxswain-bench store --server "https://$ADDR" --ops "$OPS" --clients "$CLIENTS" ;;
      rbac)
        start_store --auth --merge-kubeconfig "$WORK/config"
        bench_user "$BIN" "$WORK/config" "$ADDR" "$WORK/cx/pki" "$WORK" "$WORK/bench.conf"
        COXCONFIG="$WORK/bench.conf" $BIN/coxswain-bench store --server "https://$ADDR" --ops "$OPS" --clients "$CLIENTS" ;;
    esac
    kill $CX_PID; wait $CX_PID 2>/dev/null || true
  done
done
