#!/usr/bin/env bash
# Workload controller benchmark (BENCHMARKS.md, "Workload controllers"):
#   `coxswain up --runtime sim --nodes 0` (store, scheduler, controllers in one process) plus one
#   `coxswain agent --sim-nodes NODES` process (in-process `up` is limited to 255 nodes), then
#   the rollout_bench example: a REPLICAS Deployment from create to every pod Running+Ready, and
#   a rolling update with its surge/unavailable bounds checked continuously.
# Usage: [SEPARATE=1] [EVENTS=1] [ETCD_SERVERS=URL] bench/workloads.sh [REPLICAS] [NODES]
#   ETCD_SERVERS=URL: the store on that etcd (bench/etcd.sh DEPLOY=N starts one) instead of in memory.
#   SEPARATE=1: store, scheduler, controllers and node lifecycle as separate processes.
#   EVENTS=1: the simulated kubelets record their events too.
#   BIN=DIR: the `coxswain` (and examples/rollout_bench) of DIR instead of target/release, for an A/B.
set -euo pipefail
# Plain gRPC, as these figures were first measured (bench/auth.sh measures TLS + authentication).
export COXSWAIN_AUTH=false
cd "$(dirname "$0")/.."
REPLICAS=${1:-10000}
NODES=${2:-1000}
if [ -z "${NO_BUILD:-}" ]; then
  # The one feature set of every bench script (bench/all.sh builds it once; another set rebuilds).
  cargo build --release -q -p coxswain -p coxswain-bench --features coxswain-bench/etcd -p coxctl
  cargo build --release -q -p coxswain-controllers --example rollout_bench
fi
BIN=${BIN:-target/release}
STORE_FLAGS="--in-memory"
if [ -n "${ETCD_SERVERS:-}" ]; then STORE_FLAGS="--etcd-servers $ETCD_SERVERS"; fi
WORK=$(mktemp -d)
cleanup() { kill -9 $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

if [ -n "${SEPARATE:-}" ]; then
  # Every service its own process: store, scheduler, controllers, node lifecycle, agent.
  $BIN/coxswain store $STORE_FLAGS --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --data-dir "$WORK/cx" > "$WORK/cx.out" 2> "$WORK/cx.err" &
  for _ in $(seq 100); do grep -q "coxswain ready" "$WORK/cx.out" && break; sleep 0.1; done
  CX=http://$(grep -o 'grpc=[^ ]*' "$WORK/cx.out" | cut -d= -f2)
  $BIN/coxswain scheduler --server "$CX" --listen 127.0.0.1:0 > "$WORK/sched.out" 2> "$WORK/sched.err" &
  $BIN/coxswain controllers --server "$CX" > "$WORK/ctrl.out" 2> "$WORK/ctrl.err" &
  $BIN/coxswain node-lifecycle --server "$CX" > "$WORK/nlc.out" 2> "$WORK/nlc.err" &
else
  $BIN/coxswain up $STORE_FLAGS --runtime sim --nodes 0 --listen 127.0.0.1:0 \
    --metrics-listen 127.0.0.1:0 --data-dir "$WORK/cx" > "$WORK/cx.out" 2> "$WORK/cx.err" &
  for _ in $(seq 100); do grep -q "coxswain ready" "$WORK/cx.out" && break; sleep 0.1; done
  CX=http://$(grep -o 'grpc=[^ ]*' "$WORK/cx.out" | cut -d= -f2)
fi
# The simulated kubelets' own events (Pulled, Created, Started per pod) are off unless EVENTS=1.
AGENT_EVENTS="--no-events"
if [ -n "${EVENTS:-}" ]; then AGENT_EVENTS=""; fi
$BIN/coxswain agent --sim-nodes "$NODES" --server "$CX" --listen 127.0.0.1:0 $AGENT_EVENTS \
  > "$WORK/agent.out" 2> "$WORK/agent.err" &
for _ in $(seq 600); do grep -q "coxswain agent ready" "$WORK/agent.out" && break; sleep 0.1; done
$BIN/examples/rollout_bench "$CX" "$REPLICAS" "$NODES"
