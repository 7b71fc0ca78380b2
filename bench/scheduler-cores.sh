#!/usr/bin/env bash
# How the scheduler's end-to-end rate and its in-process rate scale with the cores they get
# (issue 17 §2: e2e ÷ in-process basic ≥ 0.7×). The in-process figure is one scheduling loop
# (framework + cache + queue on one thread); end to end, the store, the scheduler's informer and
# binder, and the 64 creating clients share the machine, so that rate is bounded by CPU per pod
# and grows with cores. Each round runs, under `taskset -c CPUS` for every process:
#   1. `coxswain-bench scheduler` in process, basic, --runs 1;
#   2. a fresh `coxswain up --in-memory` with the store and the scheduler only (bench/scheduler.sh's
#      e2e scope), the nodes created first, then the timed e2e basic run with 64 clients, and the
#      CPU µs per pod of the server (/proc) and the bench client (time).
# The CPU sets alternate within a round (1 core, then all), ROUNDS times; medians per CPU set.
# Usage: [ROUNDS=3] [NO_BUILD=0] [BIN=target/release] bash bench/scheduler-cores.sh [NODES] [PODS]
set -euo pipefail
export COXSWAIN_AUTH=false
cd "$(dirname "$0")/.."
NODES=${1:-5000}
PODS=${2:-10000}
ROUNDS=${ROUNDS:-3}
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release -q -p coxswain -p coxswain-bench --features coxswain-bench/etcd -p coxctl
BIN=${BIN:-target/release}
ncpu=$(nproc)
SETS=("0" "0-$((ncpu - 1))")
[ "$ncpu" -gt 1 ] || SETS=("0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"; }
# The pods/s column of a coxswain-bench scheduler result line.
rate() { tail -n 1 | awk '{print $5}'; }
for r in $(seq "$ROUNDS"); do
  for cpus in "${SETS[@]}"; do
    ts=(taskset -c "$cpus")
    ip=$("${ts[@]}" "$BIN/coxswain-bench" scheduler --runs 1 --nodes "$NODES" --pods "$PODS" \
      --workloads basic | rate)
    "${ts[@]}" "$BIN/coxswain" up --in-memory --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
      --nodes 0 --no-node-lifecycle --no-controllers --no-dns --no-autoscaler --no-metrics-server \
      --no-proxy >"$tmp/out" 2>/dev/null &
    pid=$!
    for _ in $(seq 100); do grep -q ready "$tmp/out" 2>/dev/null && break; sleep 0.1; done
    url=http://$(grep -o 'grpc=[^ ]*' "$tmp/out" | cut -d= -f2)
    "${ts[@]}" "$BIN/coxswain-bench" scheduler --mode e2e --server "$url" --workloads basic \
      --nodes "$NODES" --pods 0 >/dev/null
    c0=$(cpu_s "$pid")
    e2e=$(/usr/bin/time -f "%U %S" -o "$tmp/client" "${ts[@]}" "$BIN/coxswain-bench" scheduler \
      --mode e2e --server "$url" --workloads basic --nodes "$NODES" --pods "$PODS" | rate)
    c1=$(cpu_s "$pid")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    read -r cu cs <"$tmp/client"
    awk -v r="$r" -v cpus="$cpus" -v ip="$ip" -v e="$e2e" -v s="$(echo "$c1 - $c0" | bc)" \
      -v c="$(echo "$cu + $cs" | bc)" -v p="$PODS" 'BEGIN {
      printf "round %d cpus %-4s in-process %6d pods/s  e2e %6d pods/s  e2e/in-process %.2f  cpu µs/pod: server %.0f, client %.0f\n",
        r, cpus, ip, e, e / ip, s * 1e6 / p, c * 1e6 / p }' | tee -a "$tmp/rows"
  done
done
echo "== medians per CPU set (${ROUNDS} rounds, ${NODES} nodes, ${PODS} basic pods)"
# The median of column $2 among the rows of CPU set $1.
med() { awk -v cpus="$1" -v col="$2" '$4 == cpus { gsub(",", "", $col); print $col }' "$tmp/rows" |
  sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
for cpus in "${SETS[@]}"; do
  printf "cpus %-4s in-process %6.0f pods/s  e2e %6.0f pods/s  e2e/in-process %.2f  cpu µs/pod: server %.0f, client %.0f\n" \
    "$cpus" "$(med "$cpus" 6)" "$(med "$cpus" 9)" "$(med "$cpus" 12)" "$(med "$cpus" 16)" "$(med "$cpus" 18)"
done
