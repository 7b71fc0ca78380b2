#!/usr/bin/env bash
# Workload controller benchmark (BENCHMARKS.md, "Workload controllers"):
#   `coxswain up --runtime sim --nodes 0` (store, scheduler, controllers in one process) plus one
#   `coxswain agent --sim-nodes NODES` process (in-process `up` is limited to 255 nodes), then
#   the rollout_bench example: a REPLICAS Deployment from create to every pod Running+Ready, and
#   a rolling update with its surge/unavailable bounds checked continuously. ROUNDS rounds, each
#   on a fresh cluster, then the medians.
# Usage: [ROUNDS=3] [IN_MEMORY=1] [BASE=DIR] [SEPARATE=1] [EVENTS=1] [ETCD_SERVERS=URL]
#        bench/workloads.sh [REPLICAS] [NODES]
#   The store is durable by default, as a user's `coxswain up`: the embedded store with its
#   write-ahead log in a fresh temporary --data-dir per round.
#   IN_MEMORY=1: `--in-memory` instead (nothing on disk).
#   ETCD_SERVERS=URL: the store on that etcd (bench/etcd.sh DEPLOY=N starts one); one round only,
#     since the Deployment stays in etcd.
#   SEPARATE=1: store, scheduler, controllers and node lifecycle as separate processes.
#   EVENTS=1: the simulated kubelets record their events too.
#   BIN=DIR: the `coxswain` of DIR instead of target/release.
#   BASE=DIR: an A/B: every round runs DIR's `coxswain` and BIN's, alternating which goes first,
#     and prints both medians and the median of the per-round ratios (BIN ÷ BASE).
#   HARNESS=FILE: the rollout_bench binary (default target/release/examples/rollout_bench; an
#     A/B uses the same harness for both sides).
# Each round also prints the CPU (user + system, /proc) of `up` (or of each service with
# SEPARATE=1) and of the agent from the create to all Running and in the rollout.
set -euo pipefail
# Plain gRPC, as these figures were first measured (bench/auth.sh measures TLS + authentication).
export COXSWAIN_AUTH=false
cd "$(dirname "$0")/.."
REPLICAS=${1:-10000}
NODES=${2:-1000}
ROUNDS=${ROUNDS:-3}
if [ -z "${NO_BUILD:-}" ]; then
  # The one feature set of every bench script (bench/all.sh builds it once; another set rebuilds).
  cargo build --release -q -p coxswain -p coxswain-bench --features coxswain-bench/etcd -p coxctl
  cargo build --release -q -p coxswain-controllers --example rollout_bench
fi
BIN=${BIN:-target/release}
HARNESS=${HARNESS:-target/release/examples/rollout_bench}
if [ -n "${ETCD_SERVERS:-}" ]; then
  STORE_FLAGS="--etcd-servers $ETCD_SERVERS"
  MODE="etcd at $ETCD_SERVERS"
  if [ "$ROUNDS" != 1 ]; then echo "ETCD_SERVERS: the Deployment stays in etcd; set ROUNDS=1" >&2; exit 2; fi
elif [ -n "${IN_MEMORY:-}" ]; then
  STORE_FLAGS="--in-memory"
  MODE="in memory (--in-memory)"
else
  STORE_FLAGS=""
  MODE="durable (embedded store + WAL, fresh --data-dir per round)"
fi
# The simulated kubelets' own events (Pulled, Created, Started per pod) are off unless EVENTS=1.
AGENT_EVENTS="--no-events"
if [ -n "${EVENTS:-}" ]; then AGENT_EVENTS=""; fi
OUT=$(mktemp -d)
WORK=""
stop() { kill -9 $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; [ -z "$WORK" ] || rm -rf "$WORK"; WORK=""; }
trap 'stop; rm -rf "$OUT"' EXIT

ready() { # FILE TEXT TENTHS: wait for TEXT in FILE
  for _ in $(seq "$3"); do grep -q "$2" "$1" && return 0; sleep 0.1; done
  echo "not ready: $2 not in $1" >&2; cat "$1" "${1%.out}.err" >&2 || true; return 1
}

# One round with the `coxswain` of $1, labelled $2: its output appended to $OUT/$2.
round() {
  local bin=$1 label=$2 pids
  WORK=$(mktemp -d)
  if [ -n "${SEPARATE:-}" ]; then
    # Every service its own process: store, scheduler, controllers, node lifecycle, agent.
    $bin/coxswain store $STORE_FLAGS --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
      --data-dir "$WORK/cx" > "$WORK/cx.out" 2> "$WORK/cx.err" &
    pids="store=$!"
    ready "$WORK/cx.out" "coxswain ready" 100
    CX=http://$(grep -o 'grpc=[^ ]*' "$WORK/cx.out" | cut -d= -f2)
    $bin/coxswain scheduler --server "$CX" --listen 127.0.0.1:0 > "$WORK/sched.out" 2> "$WORK/sched.err" &
    pids="$pids scheduler=$!"
    $bin/coxswain controllers --server "$CX" > "$WORK/ctrl.out" 2> "$WORK/ctrl.err" &
    pids="$pids controllers=$!"
    $bin/coxswain node-lifecycle --server "$CX" > "$WORK/nlc.out" 2> "$WORK/nlc.err" &
    pids="$pids node-lifecycle=$!"
  else
    $bin/coxswain up $STORE_FLAGS --runtime sim --nodes 0 --listen 127.0.0.1:0 \
      --metrics-listen 127.0.0.1:0 --data-dir "$WORK/cx" > "$WORK/cx.out" 2> "$WORK/cx.err" &
    pids="up=$!"
    ready "$WORK/cx.out" "coxswain ready" 100
    CX=http://$(grep -o 'grpc=[^ ]*' "$WORK/cx.out" | cut -d= -f2)
  fi
  $bin/coxswain agent --sim-nodes "$NODES" --server "$CX" --listen 127.0.0.1:0 $AGENT_EVENTS \
    > "$WORK/agent.out" 2> "$WORK/agent.err" &
  pids="$pids agent=$!"
  ready "$WORK/agent.out" "coxswain agent ready" 600
  CPU_PIDS="$pids" "$HARNESS" "$CX" "$REPLICAS" "$NODES" | sed "s|^|[$label] |" | tee -a "$OUT/$label"
  stop
}

echo "workloads: $REPLICAS replicas on $NODES sim nodes, store $MODE, $ROUNDS rounds; coxswain of $BIN${BASE:+ against $BASE}"
for r in $(seq "$ROUNDS"); do
  if [ -z "${BASE:-}" ]; then
    round "$BIN" ours
  elif [ $((r % 2)) = 1 ]; then
    round "$BASE" base; round "$BIN" ours
  else
    round "$BIN" ours; round "$BASE" base
  fi
done

# Medians per figure (and per-round ratios with BASE); one "median" line per figure.
python3 - "$OUT" "${BASE:+base}" <<'EOF'
import re, statistics, sys, os
out, base = sys.argv[1], sys.argv[2]
figs = [
    ("all Running+Ready s", r"all Running\+Ready ([\d.]+)s"),
    ("rolling update s", r"rolling update: ([\d.]+)s"),
]
def read(label):
    t = open(os.path.join(out, label)).read()
    v = {name: [float(x) for x in re.findall(rx, t)] for name, rx in figs}
    for phase in ("create to all Running", "rollout"):
        for line in re.findall(r"cpu " + phase + r": (.*)", t):
            for proc, x in re.findall(r"(\S+) ([\d.]+)s", line):
                v.setdefault(f"{proc} CPU s, {phase}", []).append(float(x))
    return v
ours = read("ours")
theirs = read("base") if base else None
fmt = lambda xs: " · ".join(f"{x:.2f}" for x in xs)
for name, xs in ours.items():
    if not xs:
        continue
    line = f"median {name}: {statistics.median(xs):.2f} ({fmt(xs)})"
    if theirs and theirs.get(name):
        ys = theirs[name]
        ratios = [x / y for x, y in zip(xs, ys) if y]
        line += f"; base {statistics.median(ys):.2f} ({fmt(ys)})"
        if ratios:
            line += f"; ratio {statistics.median(ratios):.2f}x ({fmt(ratios)})"
    print(line)
EOF
