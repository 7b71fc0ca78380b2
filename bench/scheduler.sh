#!/usr/bin/env bash
# The scheduler benchmark (BENCHMARKS.md, "Scheduler"): in-process medians of 3 runs; in-process
# again with EXISTING pods already bound (default 6 per node: 30,000 at 5,000 nodes; issue 17:
# the incremental pod-affinity counts); then end to end with one fresh in-memory `coxswain up`
# per workload (so no workload sees another's pods) and the e2e/in-process ratios. Usage:
#   [RUNS=3] [EXISTING=6*NODES] [E2E=1] [INPROC=1] [FULL_UP=0] [NO_BUILD=0] bash bench/scheduler.sh [NODES] [PODS]
# E2E=0 skips the end-to-end runs (and the ratio lines); INPROC=0 the in-process runs (only the
# end-to-end lines then, for an A/B of two builds: BIN=dir).
#
# End to end, `coxswain up` runs what scheduler_perf runs: the store and the scheduler (no
# controllers, node lifecycle, DNS, HPA, metrics pipeline or proxy: each of those with a pod
# informer decodes every pod event on the same two cores). FULL_UP=1 keeps DNS, HPA, metrics
# pipeline and proxy, as the e2e figures before 2026-12-07 10:00 UTC did. The nodes are created
# before the clock (a first run with --pods 0); each e2e line then ends with the CPU the
# `coxswain up` process (/proc) and the bench client (time) spent per pod in the timed run:
# pods/s × (server + client µs per pod) ≈ 2,000,000 on two cores means the run was CPU-bound.
set -euo pipefail
# Plain gRPC, as these figures were first measured (bench/auth.sh measures TLS + authentication).
export COXSWAIN_AUTH=false
cd "$(dirname "$0")/.."
NODES=${1:-5000}
PODS=${2:-10000}
EXISTING=${EXISTING:-$((NODES * 6))}
# The one feature set of every bench script (bench/all.sh builds it once; another set rebuilds).
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release -q -p coxswain -p coxswain-bench --features coxswain-bench/etcd -p coxctl
BIN=${BIN:-target/release}
LEAN=(--no-dns --no-autoscaler --no-metrics-server --no-proxy)
[ "${FULL_UP:-0}" = 1 ] && LEAN=()
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# kube-scheduler's scheduler_perf CI floors on 5,000 nodes (pods/s), the peer of this benchmark.
floor() { case $1 in basic) echo 270 ;; node-affinity) echo 220 ;; anti-affinity) echo 60 ;; affinity) echo 35 ;; *) echo "" ;; esac; }
touch "$tmp/inproc"
if [ "${INPROC:-1}" != 0 ]; then
  echo "== in-process (framework + cache + queue), median of ${RUNS:-3}"
  $BIN/coxswain-bench scheduler --runs "${RUNS:-3}" --nodes "$NODES" --pods "$PODS" | tee "$tmp/inproc"
  echo "== in-process with $EXISTING existing pods bound first, median of ${RUNS:-3}"
  $BIN/coxswain-bench scheduler --runs "${RUNS:-3}" --nodes "$NODES" --pods "$PODS" \
    --existing-pods "$EXISTING" --workloads basic,anti-affinity,affinity,preferred
fi
[ "${E2E:-1}" = 0 ] && exit 0
echo "== end to end (store over gRPC, 64 creating clients; up ${LEAN[*]:-with DNS, HPA, metrics, proxy})"
# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"; }
WORKLOADS=${WORKLOADS:-basic node-affinity taint anti-affinity affinity preferred}
for w in $WORKLOADS; do
  $BIN/coxswain up --in-memory --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --nodes 0 --no-node-lifecycle --no-controllers "${LEAN[@]}" >"$tmp/out" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do grep -q ready "$tmp/out" 2>/dev/null && break; sleep 0.1; done
  url=http://$(grep -o 'grpc=[^ ]*' "$tmp/out" | cut -d= -f2)
  $BIN/coxswain-bench scheduler --mode e2e --server "$url" --workloads "$w" \
    --nodes "$NODES" --pods 0 >/dev/null
  c0=$(cpu_s "$pid")
  /usr/bin/time -f "%U %S" -o "$tmp/client" $BIN/coxswain-bench scheduler --mode e2e \
    --server "$url" --workloads "$w" --nodes "$NODES" --pods "$PODS" | tail -n 1 >"$tmp/line"
  c1=$(cpu_s "$pid")
  awk -v c0="$c0" -v c1="$c1" -v p="$PODS" -v cl="$(cat "$tmp/client")" '{
    split(cl, c, " ");
    printf "%s   cpu µs/pod: server %.0f, client %.0f\n", $0, (c1 - c0) * 1e6 / p, (c[1] + c[2]) * 1e6 / p }' \
    "$tmp/line" | tee -a "$tmp/e2e"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
done
echo "== ratios (peer: kube-scheduler's scheduler_perf floors at 5,000 nodes; e2e ÷ in-process)"
for w in basic node-affinity taint anti-affinity affinity preferred; do
  ip=$(awk -v w="$w" '$1 == w {print $5}' "$tmp/inproc")
  e2e=$(awk -v w="$w" '$1 == w {print $5}' "$tmp/e2e")
  f=$(floor "$w")
  awk -v w="$w" -v ip="${ip:-0}" -v e="${e2e:-0}" -v f="$f" 'BEGIN {
    line = sprintf("ratio %-14s in-process %6d pods/s, e2e %6d pods/s (e2e/in-process %.2f×)", w, ip, e, (ip > 0 ? e / ip : 0));
    if (f != "") line = line sprintf("; vs kube-scheduler floor %d: in-process %.1f×, e2e %.1f×", f, ip / f, e / f);
    print line }'
done
