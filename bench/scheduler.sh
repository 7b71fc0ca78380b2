#!/usr/bin/env bash
# The scheduler benchmark (BENCHMARKS.md, "Scheduler"): in-process medians of 3 runs, then end
# to end with one fresh in-memory `coxswain up` per workload (so no workload sees another's
# pods). Usage: bash bench/scheduler.sh [NODES] [PODS]
set -euo pipefail
# Plain gRPC, as these figures were first measured (bench/auth.sh measures TLS + authentication).
export COXSWAIN_AUTH=false
cd "$(dirname "$0")/.."
NODES=${1:-5000}
PODS=${2:-10000}
cargo build --release -p coxswain -p coxswain-bench
BIN=target/release
echo "== in-process (framework + cache + queue), median of 3"
$BIN/coxswain-bench scheduler --runs 3 --nodes "$NODES" --pods "$PODS"
echo "== end to end (store over gRPC, 64 creating clients)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for w in basic node-affinity taint anti-affinity affinity preferred; do
  $BIN/coxswain up --in-memory --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --nodes 0 --no-node-lifecycle --no-controllers >"$tmp/out" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do grep -q ready "$tmp/out" 2>/dev/null && break; sleep 0.1; done
  url=http://$(grep -o 'grpc=[^ ]*' "$tmp/out" | cut -d= -f2)
  $BIN/coxswain-bench scheduler --mode e2e --server "$url" --workloads "$w" \
    --nodes "$NODES" --pods "$PODS" | tail -1
  kill "$pid"
  wait "$pid" 2>/dev/null || true
done
