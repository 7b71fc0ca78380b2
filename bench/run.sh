#!/usr/bin/env bash
# Same-session benchmark of the coxswain store against etcd on loopback.
# Usage: bench/run.sh [ops-per-client-count] [pods-for-memory]
# Installs etcd (Debian etcd-server) and protoc (the etcd-client crate needs it) if missing.
set -euo pipefail
# Plain gRPC, as these figures were first measured (bench/auth.sh measures TLS + authentication).
export COXSWAIN_AUTH=false
cd "$(dirname "$0")/.."
OPS=${1:-20000}
PODS=${2:-100000}
ROUNDS=${ROUNDS:-3}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
if ! command -v etcd >/dev/null || ! command -v protoc >/dev/null; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq etcd-server protobuf-compiler >/dev/null
fi
# The one feature set every bench script builds with, so the release build is shared.
cargo build --release -q -p coxswain -p coxswain-bench --features coxswain-bench/etcd -p coxctl
BENCH=target/release/coxswain-bench
WORK=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

start_coxswain() {
  rm -rf "$WORK/cx"; : > "$WORK/cx.out"
  target/release/coxswain store --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --data-dir "$WORK/cx" "$@" > "$WORK/cx.out" 2> "$WORK/cx.err" &
  CX_PID=$!
  for _ in $(seq 100); do grep -q "coxswain ready" "$WORK/cx.out" && break; sleep 0.1; done
  CX=http://$(grep -o 'grpc=[^ ]*' "$WORK/cx.out" | cut -d= -f2)
}

echo "== machine: $(nproc) cores, $(grep MemTotal /proc/meminfo | awk '{print $2/1048576 " GiB"}'); etcd $(etcd --version | sed -n 1p)"
for round in $(seq "$ROUNDS"); do
  rm -rf "$WORK/etcd"
  etcd --name bench --data-dir "$WORK/etcd" --listen-client-urls http://127.0.0.1:23790 \
    --advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800 \
    --initial-advertise-peer-urls http://127.0.0.1:23800 --initial-cluster bench=http://127.0.0.1:23800 \
    --quota-backend-bytes 8589934592 > "$WORK/etcd.log" 2>&1 &
  ETCD_PID=$!
  sleep 2
  echo "== round $round: etcd puts (durable: fsync per commit batch)"
  $BENCH etcd --endpoint 127.0.0.1:23790 --ops "$OPS"
  kill $ETCD_PID; wait $ETCD_PID 2>/dev/null || true

  echo "== round $round: coxswain creates and gets (embedded: write-ahead log fdatasync before ack, redb checkpointed behind)"
  start_coxswain
  $BENCH store --server "$CX" --ops "$OPS"
  kill $CX_PID; wait $CX_PID 2>/dev/null || true
done

echo "== watch delivery latency: 1000 selective watches, 1000 writes/s"
start_coxswain
$BENCH watch --server "$CX" --watches 1000 --rate 1000 --seconds 10
kill $CX_PID; wait $CX_PID 2>/dev/null || true

echo "== watch delivery latency: 1000 selective + 10 broad watches, 1000 writes/s"
start_coxswain
$BENCH watch --server "$CX" --watches 1000 --broad 10 --rate 1000 --seconds 10
kill $CX_PID; wait $CX_PID 2>/dev/null || true

echo "== memory per stored pod ($PODS pods)"
start_coxswain
$BENCH memory --server "$CX" --pid "$CX_PID" --pods "$PODS"
kill $CX_PID; wait $CX_PID 2>/dev/null || true
