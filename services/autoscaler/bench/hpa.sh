#!/usr/bin/env bash
# HPA benchmark (BENCHMARKS.md, "HorizontalPodAutoscaler"): `coxswain up` with no in-process
# nodes and no HPA controller, one `coxswain agent --sim-nodes NODES` process, and the HPA
# controller alone in its own process (`coxswain controllers --no-controllers`, debug log of
# every evaluation), then the driver (services/autoscaler/examples/hpa_bench.rs): HPAS
# Deployments × REPLICAS sim pods with one HPA each; coverage of every sync period and the
# controller's CPU per period; reaction time from a usage change to the scale write.
# Usage: services/autoscaler/bench/hpa.sh [NODES] [HPAS] [REPLICAS]
#   SYNC=15s RES=15s AGENT_RES=15s PERIODS=4 ROUNDS=3 ROUND=50 PROFILE=release SKIP_BUILD=
#   KEEP=DIR (keep the processes' logs) HPA_FLAGS='--concurrent-horizontal-pod-autoscaler-syncs 20'
set -euo pipefail
cd "$(dirname "$0")/../../.."
NODES=${1:-1000}
HPAS=${2:-1000}
REPLICAS=${3:-10}
SYNC=${SYNC:-15s}
RES=${RES:-15s}
AGENT_RES=${AGENT_RES:-15s}
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ] && [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -q -p coxswain
  cargo build --release -q -p coxswain-autoscaler --example hpa_bench
fi
BIN=target/$PROFILE
WORK=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$WORK"/*.out "$WORK"/*.err "$KEEP"/; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
secs() { echo "$1" | sed 's/s$//'; }

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $NODES sim nodes, $HPAS HPAs x $REPLICAS pods; --horizontal-pod-autoscaler-sync-period $SYNC, --metric-resolution $RES, agent --metrics-resolution $AGENT_RES ${HPA_FLAGS:-}"
$BIN/coxswain up --in-memory --nodes 0 --no-autoscaler --no-proxy --no-dns --no-events \
  --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data-dir "$WORK/cx" \
  --metric-resolution "$RES" > "$WORK/cx.out" 2> "$WORK/cx.err" &
for _ in $(seq 300); do grep -q "coxswain ready" "$WORK/cx.out" && break; sleep 0.1; done
CX=http://$(grep -o 'grpc=[^ ]*' "$WORK/cx.out" | cut -d= -f2)
$BIN/coxswain agent --sim-nodes "$NODES" --server "$CX" --listen 127.0.0.1:0 --no-events \
  --metrics-resolution "$AGENT_RES" > "$WORK/agent.out" 2> "$WORK/agent.err" &
for _ in $(seq 600); do grep -q "coxswain agent ready" "$WORK/agent.out" && break; sleep 0.1; done
RUST_LOG=coxswain_autoscaler=debug,warn $BIN/coxswain controllers --server "$CX" --no-controllers \
  --horizontal-pod-autoscaler-sync-period "$SYNC" ${HPA_FLAGS:-} > "$WORK/hpa.out" 2> "$WORK/hpa.err" &
HPA_PID=$!
for _ in $(seq 300); do grep -q "ready" "$WORK/hpa.out" && break; sleep 0.1; done
echo "HPA controller idle RSS: $(awk '/VmRSS/ {print $2}' /proc/$HPA_PID/status) KiB"
SERVER="$CX" HPA_PID=$HPA_PID HPA_LOG="$WORK/hpa.err" SYNC_SECS=$(secs "$SYNC") HPAS=$HPAS \
  REPLICAS=$REPLICAS PERIODS=${PERIODS:-4} ROUNDS=${ROUNDS:-3} ROUND=${ROUND:-50} \
  TIMEOUT_SECS=${TIMEOUT_SECS:-180} $BIN/examples/hpa_bench
echo "HPA controller RSS: $(awk '/VmRSS/ {print $2}' /proc/$HPA_PID/status) KiB"
echo "rescales: $(grep -c "rescaled" "$WORK/hpa.err" || true) (the reaction rounds' Deployments: $((${ROUNDS:-3} * ${ROUND:-50})))"
