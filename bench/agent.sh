#!/usr/bin/env bash
# Node agent benchmarks (BENCHMARKS.md, "Node agents"):
#   sim:     one `coxswain agent --sim-nodes NODES` process against `coxswain store`; PODS pods
#            bound round-robin at RATE/s; plus a 1-node agent for the baseline RSS.
#   process: `coxswain up --nodes 1` and built-in web server pods one at a time.
# Usage: bench/agent.sh [NODES] [PODS] [RATE] [PROCESS_PODS]   (ROUNDS=3, PROFILE=release, IDLE=30,
#   CLUSTER=0 to skip the whole-cluster step: `coxswain up` + the sim agent, RSS of both per pod;
#   PROCESS=0 to skip the process-runtime step; BIN=dir with a `coxswain` to measure instead of
#   target/$PROFILE's, e.g. a saved "before" binary, coxswain-bench still from target/$PROFILE;
#   AGENT_WRAP="heaptrack -o /tmp/x" runs the sim agent under a profiler, whose RSS is then
#   not the agent's alone; HEAP=FILE runs it under valgrind's massif with mimalloc's entry points
#   redirected to libc's (bench/massif-mimalloc.c: otherwise massif sees no Rust allocation) and
#   writes a detailed snapshot of the live heap to FILE.nodes once the nodes are Ready and to
#   FILE.pods once the pods run (read with ms_print; slow: use few nodes and pods, e.g.
#   `HEAP=/tmp/h ROUNDS=1 CLUSTER=0 PROCESS=0 IDLE=2 bash bench/agent.sh 10 500 100 5`; live bytes
#   per pod = (pods − nodes snapshot) / pods, RSS figures are valgrind's then))
set -euo pipefail
# Plain gRPC, as these figures were first measured (bench/auth.sh measures TLS + authentication).
export COXSWAIN_AUTH=false
cd "$(dirname "$0")/.."
NODES=${1:-1000}
PODS=${2:-10000}
RATE=${3:-1000}
PPODS=${4:-50}
ROUNDS=${ROUNDS:-3}
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ] && [ -z "${NO_BUILD:-}" ]; then
  # The one release feature set every bench uses, so they share one build.
  cargo build --release -q -p coxswain -p coxswain-bench --features coxswain-bench/etcd -p coxctl
fi
BENCH=${BENCH:-target/$PROFILE/coxswain-bench}
BIN=${BIN:-target/$PROFILE}
WORK=$(mktemp -d)
if [ -n "${HEAP:-}" ]; then
  cc -O1 -shared -fPIC -o "$WORK/massif-mimalloc.so" bench/massif-mimalloc.c
  # The replaced functions and Rust's allocator shims are allocation functions: a site is
  # named by its caller.
  AGENT_WRAP="env LD_PRELOAD=$WORK/massif-mimalloc.so valgrind --tool=massif --vgdb=yes \
    --massif-out-file=$WORK/massif.out --threshold=0.02 --depth=40 \
    --alloc-fn=mi_malloc_aligned --alloc-fn=mi_zalloc_aligned --alloc-fn=mi_realloc_aligned \
    --alloc-fn=aligned --alloc-fn=__rust_alloc --alloc-fn=__rust_realloc \
    --alloc-fn=__rust_alloc_zeroed"
fi
# A detailed snapshot of the massif-run agent's live heap (HEAP=FILE): FILE.$1.
heap_snapshot() {
  [ -z "${HEAP:-}" ] && return
  vgdb --pid="$AG_PID" detailed_snapshot "$HEAP.$1" > /dev/null 2>&1
  HEAP_B[$1]=$(awk -F= '/^mem_heap_B=/ {b=$2} END {print b}' "$HEAP.$1")
  HEAP_IO[$1]=$(heap_in_flight "$HEAP.$1")
}
# Bytes of a detailed snapshot's leaves under a frame of h2, hyper or tonic's codec (the function
# itself, not a generic parameter: the informer's decoded pods sit under a closure generic over
# tonic's Streaming): the gRPC transfer buffers at the snapshot's moment, which vary run to run
# with timing (up to ±300 B per pod at 500 pods), so the per-pod figure is also printed without them.
heap_in_flight() {
  awk '/^heap_tree=detailed/ {on = 1; h = 0; delete st; next}
    on && /^ *n[0-9]+: [0-9]+ / {
      ind = match($0, /n/) - 1; line = substr($0, ind + 1); split(line, f, " ")
      st[ind] = line
      if (substr(f[1], 2) + 0 == 0) {
        for (i = 0; i <= ind; i++) if ((i in st) && st[i] ~ /^n[0-9]+: [0-9]+ (0x[0-9A-F]+: )?(h2::|hyper::|tonic::codec::)/) { h += f[2]; break }
      }
      next
    }
    on {on = 0}
    END {print h + 0}' "$1"
}
declare -A HEAP_B HEAP_IO
cleanup() { kill -9 $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

start_store() {
  rm -rf "$WORK/cx"; : > "$WORK/cx.out"
  $BIN/coxswain store --in-memory --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --data-dir "$WORK/cx" > "$WORK/cx.out" 2> "$WORK/cx.err" &
  CX_PID=$!
  for _ in $(seq 100); do grep -q "coxswain ready" "$WORK/cx.out" && break; sleep 0.1; done
  CX=http://$(grep -o 'grpc=[^ ]*' "$WORK/cx.out" | cut -d= -f2)
  MX=$(grep -o 'metrics=[^ ]*' "$WORK/cx.out" | cut -d= -f2)
}

start_agent() { # nodes
  : > "$WORK/agent.out"
  ${AGENT_WRAP:-} $BIN/coxswain agent --sim-nodes "$1" --server "$CX" --listen 127.0.0.1:0 --no-events \
    > "$WORK/agent.out" 2> "$WORK/agent.err" &
  AG_PID=$!
  for _ in $(seq 600); do grep -q "coxswain agent ready" "$WORK/agent.out" && break; sleep 0.1; done
}

rss() { awk '/VmRSS/ {print $2}' /proc/"$1"/status; }

echo "== machine: $(nproc) cores, $(grep MemTotal /proc/meminfo | awk '{print $2/1048576 " GiB"}')"
for round in $(seq "$ROUNDS"); do
  echo "== round $round: baseline, 1 sim node"
  start_store; start_agent 1; sleep 2
  echo "agent RSS with 1 sim node: $(rss $AG_PID) KiB"
  kill -9 $AG_PID $CX_PID; wait 2>/dev/null || true
  echo "== round $round: $NODES sim nodes, $PODS pods at $RATE/s"
  start_store; start_agent "$NODES"
  if [ -n "${HEAP:-}" ]; then
    # Nodes first (their snapshot), then the pods (theirs).
    $BENCH agent-sim --server "$CX" --metrics "$MX" --agent-pid "$AG_PID" \
      --nodes "$NODES" --pods 0 --rate "$RATE" --idle-secs 1 > /dev/null
    heap_snapshot nodes
  fi
  $BENCH agent-sim --server "$CX" --metrics "$MX" --agent-pid "$AG_PID" \
    --nodes "$NODES" --pods "$PODS" --rate "$RATE" --idle-secs "${IDLE:-30}"
  heap_snapshot pods
  if [ -n "${HEAP:-}" ]; then
    echo "agent live heap (massif): ${HEAP_B[nodes]} B with $NODES nodes, ${HEAP_B[pods]} B with" \
      "$PODS pods: $(( (HEAP_B[pods] - HEAP_B[nodes]) / PODS )) B per pod ($HEAP.nodes, $HEAP.pods);" \
      "without the in-flight h2/tonic buffers ($(( HEAP_IO[nodes] )), $(( HEAP_IO[pods] )) B):" \
      "$(( (HEAP_B[pods] - HEAP_IO[pods] - HEAP_B[nodes] + HEAP_IO[nodes]) / PODS )) B per pod"
  fi
  kill -9 $AG_PID $CX_PID; wait 2>/dev/null || true
  if [ "${CLUSTER:-1}" != 0 ]; then
    # The whole cluster (issue 17 §3): `coxswain up` (store, scheduler, controllers, node
    # lifecycle) plus the sim agent; RSS of each before and after the pods.
    echo "== round $round: whole cluster, coxswain up + $NODES sim nodes, $PODS pods at $RATE/s"
    rm -rf "$WORK/upc"; : > "$WORK/upc.out"
    $BIN/coxswain up --in-memory --runtime sim --nodes 0 --listen 127.0.0.1:0 \
      --metrics-listen 127.0.0.1:0 --data-dir "$WORK/upc" > "$WORK/upc.out" 2> "$WORK/upc.err" &
    CX_PID=$!
    for _ in $(seq 100); do grep -q "coxswain ready" "$WORK/upc.out" && break; sleep 0.1; done
    CX=http://$(grep -o 'grpc=[^ ]*' "$WORK/upc.out" | cut -d= -f2)
    MX=$(grep -o 'metrics=[^ ]*' "$WORK/upc.out" | cut -d= -f2)
    start_agent "$NODES"
    sleep 2
    UP_BEFORE=$(rss $CX_PID)
    $BENCH agent-sim --server "$CX" --metrics "$MX" --agent-pid "$AG_PID" \
      --nodes "$NODES" --pods "$PODS" --rate "$RATE" --idle-secs 1 | grep -E 'Running|RSS'
    sleep 2
    UP_AFTER=$(rss $CX_PID)
    echo "coxswain up RSS: $UP_BEFORE KiB with $NODES nodes, $UP_AFTER KiB with $PODS pods:" \
      "$(( (UP_AFTER - UP_BEFORE) * 100 / PODS / 100 )).$(( (UP_AFTER - UP_BEFORE) * 100 / PODS % 100 )) KiB per pod (agent's above)"
    kill -9 $AG_PID $CX_PID; wait 2>/dev/null || true
  fi
  [ "${PROCESS:-1}" = 0 ] && continue
  echo "== round $round: process runtime, $PPODS built-in web server pods"
  rm -rf "$WORK/up"; : > "$WORK/up.out"
  $BIN/coxswain up --in-memory --nodes 1 --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --data-dir "$WORK/up" > "$WORK/up.out" 2> "$WORK/up.err" &
  UP_PID=$!
  for _ in $(seq 100); do grep -q "coxswain ready" "$WORK/up.out" && break; sleep 0.1; done
  UP=http://$(grep -o 'grpc=[^ ]*' "$WORK/up.out" | cut -d= -f2)
  sleep 1
  $BENCH agent-process --server "$UP" --node node1 --pods "$PPODS"
  kill -9 $UP_PID; wait 2>/dev/null || true
done
