#!/usr/bin/env bash
# Same-session benchmark of `coxswain store` on etcd against etcd's own puts (issue 18 §5):
# creates/s of typical pods through the store (gRPC → admission → etcd Txn with a
# mod_revision compare → etcd watch → watch cache → answer) against raw puts/s of values the
# size of the encoded pod straight into etcd, at 1, 16 and 64 clients, on a fresh etcd each time.
# The embedded store is measured in the same run for reference. TXN=1 (the default) also runs
# the store's exact etcd operation for a create straight from the bench client (a Txn: compare
# mod_revision = 0, put; on one connection with a prefix watch open, as the store's), the ceiling
# of what creates through the store can reach on this etcd (BENCHMARKS.md, 2026-12-07 12:18).
# Then the watch fan-out across two store replicas on one etcd: WATCHES watches on replica B,
# writes at WRATE/s for WSECS s through replica A, against watches and writes on one replica
# (`coxswain-bench watch`, delivery latency from each write's send time to its event).
# With DEPLOY=N (e.g. 10000): the N-replica Deployment (bench/workloads.sh, NODES simulated
# nodes) on the embedded store and on etcd, in the same run.
# Each run also prints CPU time per operation (etcd's, the store's), averaged over the client
# counts. etcd's per-op CPU falls as its rate rises (it batches raft entries and fsyncs), so a
# create and a put compare only at the same rate: there a create costs etcd ~15-25 us more
# (its compare and the watch event; BENCHMARKS.md, 2026-12-07 09:30).
# Usage: bench/etcd.sh [ops-per-client-count]   (ROUNDS=3 by default)
#   e.g. ROUNDS=3 bash bench/etcd.sh 20000;  ROUNDS=1 DEPLOY=10000 bash bench/etcd.sh 20000
# PIN=1 (needs 2+ cores, taskset): etcd on core 0 and everything else (the store replicas, the
#   bench clients) on core 1, in the peer run and in ours alike, so etcd has the same one core
#   in both, as on a host of its own, and the store does not take etcd's CPU. Without it the
#   store and etcd share every core and the ratio also measures that contention. The
#   Deployment runs (DEPLOY) are not pinned.
# BIN=DIR: the coxswain and coxswain-bench of another build (an A/B); NO_BUILD=1: no build.
# Installs etcd (Debian etcd-server) and protoc (the bench's etcd-client crate needs it).
set -euo pipefail
cd "$(dirname "$0")/.."
OPS=${1:-20000}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-1,16,64}
WATCHES=${WATCHES:-1000}
WRATE=${WRATE:-1000}
WSECS=${WSECS:-10}
DEPLOY=${DEPLOY:-0}
NODES=${NODES:-1000}
PIN=${PIN:-0}
TXN=${TXN:-1}
BIN=${BIN:-target/release}
# Command prefixes: etcd's, and the store's and the bench client's.
ON_ETCD=""; ON_REST=""
if [ "$PIN" = 1 ]; then
  if [ "$(nproc)" -lt 2 ] || ! command -v taskset >/dev/null; then
    echo "bench/etcd.sh: PIN=1 needs 2 cores and taskset" >&2; exit 1
  fi
  ON_ETCD="taskset -c 0"; ON_REST="taskset -c 1"
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
if ! command -v etcd >/dev/null || ! command -v protoc >/dev/null; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq etcd-server protobuf-compiler >/dev/null
fi
# The one feature set every bench script builds with, so the release build is shared.
if [ "${NO_BUILD:-0}" != 1 ]; then
  cargo build --release -q -p coxswain -p coxswain-bench --features coxswain-bench/etcd -p coxctl
  if [ "$DEPLOY" -gt 0 ]; then cargo build --release -q -p coxswain-controllers --example rollout_bench; fi
fi
BENCH="$ON_REST $BIN/coxswain-bench"
WORK=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_etcd() {
  rm -rf "$WORK/etcd"
  EP=$(free_port); PP=$(free_port)
  $ON_ETCD etcd --name bench --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$EP" \
    --advertise-client-urls "http://127.0.0.1:$EP" --listen-peer-urls "http://127.0.0.1:$PP" \
    --initial-advertise-peer-urls "http://127.0.0.1:$PP" --initial-cluster "bench=http://127.0.0.1:$PP" \
    --quota-backend-bytes 8589934592 > "$WORK/etcd.log" 2>&1 &
  ETCD_PID=$!
  for _ in $(seq 200); do grep -q "ready to serve client requests" "$WORK/etcd.log" && break; sleep 0.05; done
}
stop_etcd() { kill $ETCD_PID; wait $ETCD_PID 2>/dev/null || true; }
# CPU time (user+system, ms) a process has used so far.
TICK=$(getconf CLK_TCK)
cpu_ms() { awk -v t="$TICK" '{print int(($14+$15)*1000/t)}' "/proc/$1/stat"; }
# Number of client counts in $CLIENTS: every count writes $OPS keys.
NCOUNTS=$(echo "$CLIENTS" | tr ',' '\n' | grep -c .)
per_op() { echo "$(( ($2 - $1) * 1000 / (OPS * NCOUNTS) ))"; }

# Wait up to 60 s for a store's ready line ($1.out); if it exits or never gets there, say so
# with the end of its log ($1.err) rather than stopping silently.
wait_ready() {
  for _ in $(seq 1200); do
    grep -q "coxswain ready" "$1.out" && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  echo "bench/etcd.sh: the store ($1) did not become ready; its last log lines:" >&2
  tail -n 20 "$1.err" >&2
  exit 1
}

start_coxswain() {
  rm -rf "$WORK/cx"; : > "$WORK/cx.out"
  # --auth=false: this measures the storage path; bench/auth.sh measures authentication's cost.
  $ON_REST "$BIN/coxswain" store --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --auth=false \
    --data-dir "$WORK/cx" "$@" > "$WORK/cx.out" 2> "$WORK/cx.err" &
  CX_PID=$!
  wait_ready "$WORK/cx" $CX_PID
  CX=http://$(grep -o 'grpc=[^ ]*' "$WORK/cx.out" | cut -d= -f2)
}
stop_coxswain() { kill $CX_PID; wait $CX_PID 2>/dev/null || true; }
# A second store replica (B) on the same etcd as the one start_coxswain started.
start_replica_b() {
  rm -rf "$WORK/cxb"; : > "$WORK/cxb.out"
  $ON_REST "$BIN/coxswain" store --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --auth=false \
    --data-dir "$WORK/cxb" "$@" > "$WORK/cxb.out" 2> "$WORK/cxb.err" &
  CXB_PID=$!
  wait_ready "$WORK/cxb" $CXB_PID
  CXB=http://$(grep -o 'grpc=[^ ]*' "$WORK/cxb.out" | cut -d= -f2)
}
stop_replica_b() { kill $CXB_PID; wait $CXB_PID 2>/dev/null || true; }

echo "== machine: $(nproc) cores; etcd $(etcd --version | sed -n 1p | awk '{print $3}'); $OPS ops per client count, $ROUNDS rounds; PIN=$PIN$([ "$PIN" = 1 ] && echo ' (etcd on core 0, stores and bench clients on core 1)')"
for round in $(seq "$ROUNDS"); do
  echo "== round $round: etcd's own puts"
  start_etcd
  E0=$(cpu_ms $ETCD_PID)
  $BENCH etcd --endpoint "127.0.0.1:$EP" --clients "$CLIENTS" --ops "$OPS"
  echo "cpu: etcd $(per_op $E0 $(cpu_ms $ETCD_PID)) us per put"
  stop_etcd

  if [ "$TXN" = 1 ]; then
    echo "== round $round: etcd's own compare-and-create Txns (the store's create, from the bench client)"
    start_etcd
    E0=$(cpu_ms $ETCD_PID)
    $BENCH etcd --endpoint "127.0.0.1:$EP" --clients "$CLIENTS" --ops "$OPS" --txn --connections 1 --watch
    echo "cpu: etcd $(per_op $E0 $(cpu_ms $ETCD_PID)) us per create Txn"
    stop_etcd
  fi

  echo "== round $round: creates through coxswain store --etcd-servers"
  start_etcd
  start_coxswain --etcd-servers "http://127.0.0.1:$EP"
  E0=$(cpu_ms $ETCD_PID); S0=$(cpu_ms $CX_PID)
  $BENCH store --server "$CX" --clients "$CLIENTS" --ops "$OPS"
  # etcd works for the creates only (gets are served from the watch cache); the store's figure
  # includes its gets.
  echo "cpu: etcd $(per_op $E0 $(cpu_ms $ETCD_PID)) us per create; store $(per_op $S0 $(cpu_ms $CX_PID)) us per create+get"
  stop_coxswain
  stop_etcd

  echo "== round $round: creates through coxswain store (embedded redb, for reference)"
  start_coxswain
  S0=$(cpu_ms $CX_PID)
  $BENCH store --server "$CX" --clients "$CLIENTS" --ops "$OPS"
  # The same store's CPU on its own backend: the difference to the line above is what the etcd
  # backend costs the store (its client, the Txn, the watch feed).
  echo "cpu: store $(per_op $S0 $(cpu_ms $CX_PID)) us per create+get (embedded)"
  stop_coxswain

  echo "== round $round: watch fan-out, $WATCHES watches on replica B, writes through replica A (one etcd)"
  start_etcd
  start_coxswain --etcd-servers "http://127.0.0.1:$EP"
  start_replica_b --etcd-servers "http://127.0.0.1:$EP"
  $BENCH watch --server "$CXB" --write-server "$CX" --watches "$WATCHES" --rate "$WRATE" --seconds "$WSECS"
  echo "== round $round: watch fan-out, watches and writes on one replica (same etcd)"
  $BENCH watch --server "$CX" --watches "$WATCHES" --rate "$WRATE" --seconds "$WSECS"
  stop_replica_b
  stop_coxswain
  stop_etcd

  if [ "$DEPLOY" -gt 0 ]; then
    echo "== round $round: $DEPLOY-replica Deployment on the embedded store ($NODES simulated nodes)"
    NO_BUILD=1 bash bench/workloads.sh "$DEPLOY" "$NODES"
    echo "== round $round: $DEPLOY-replica Deployment on etcd"
    start_etcd
    ETCD_SERVERS="http://127.0.0.1:$EP" NO_BUILD=1 bash bench/workloads.sh "$DEPLOY" "$NODES"
    stop_etcd
  fi
done
