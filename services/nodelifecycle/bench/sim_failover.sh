#!/bin/bash
# Node failure at scale: `coxswain up` with one in-process node plus one `coxswain agent`
# process simulating N nodes; the agent is killed with SIGKILL and we time how long until
# every simulated node shows NotReady (Ready=Unknown) in `coxctl get nodes`.
# Usage: services/nodelifecycle/bench/sim_failover.sh [N] [BIN_DIR]   (default 1000, target/debug)
set -euo pipefail
N=${1:-1000}
B=${2:-$(cd "$(dirname "$0")/../../.." && pwd)/target/debug}
T=$(mktemp -d)
trap 'kill $UP ${AG:-} 2>/dev/null || true; rm -rf "$T"' EXIT
"$B/coxswain" up --in-memory --nodes 1 --runtime sim --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --lease-renew-interval 1s --node-monitor-period 1s --node-monitor-grace-period 5s >"$T/up.out" 2>"$T/up.err" &
UP=$!
for _ in $(seq 100); do grep -q ready "$T/up.out" && break; sleep 0.1; done
ADDR=$(grep -o 'grpc=[^ ]*' "$T/up.out" | cut -d= -f2)
"$B/coxswain" agent --server "http://$ADDR" --sim-nodes "$N" --listen 127.0.0.1:0 \
  --lease-renew-interval 2s --node-status-update-frequency 10s >"$T/agent.out" 2>"$T/agent.err" &
AG=$!
t0=$(date +%s.%N)
for _ in $(seq 600); do
  n=$("$B/coxctl" -s "$ADDR" get nodes --no-headers 2>/dev/null | grep -c ' Ready ' || true)
  [ "$n" -ge $((N + 1)) ] && break; sleep 0.2
done
echo "registered and Ready: $n nodes after $(echo "$(date +%s.%N) - $t0" | bc) s"
kill -9 $AG; t1=$(date +%s.%N)
for _ in $(seq 600); do
  n=$("$B/coxctl" -s "$ADDR" get nodes --no-headers 2>/dev/null | grep -c ' NotReady ' || true)
  [ "$n" -ge "$N" ] && break; sleep 0.2
done
echo "NotReady: $n nodes $(echo "$(date +%s.%N) - $t1" | bc) s after SIGKILL (lease renew 2s, grace 5s, period 1s)"
echo "coxswain up RSS: $(ps -o rss= -p $UP) KiB"
