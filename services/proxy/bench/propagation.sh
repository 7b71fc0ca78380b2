#!/usr/bin/env bash
# Propagation benchmark (BENCHMARKS.md, "Service proxy", issue: service networking §5): a Ready
# flip of one pod → Endpoints, EndpointSlice, the proxy's routing and a headless Service's DNS
# answer, with SERVICES Services and PODS pods. `coxswain store` (service range RANGE, larger
# than up's /24), `coxswain controllers` and `coxswain dns` run as their own processes; the
# `propagation` example creates the objects (plus HEADLESS headless Services over the first
# Services' pods), runs the proxy in-process with an observer, flips FLIPS pods one at a time,
# asks DNS with real UDP queries (every DNS_POLL_MS) until the headless answer shows each flip
# of those Services, and prints percentiles and the proxy's memory. Then `coxswain proxy` alone: its RSS against the empty store
# (measured first) and once it serves every Service (memory per endpoint, whole process).
#   bash services/proxy/bench/propagation.sh     # SERVICES=1000 PODS=10000 FLIPS=2000 HEADLESS=100 SKIP_BUILD= BIN=
set -euo pipefail
cd "$(dirname "$0")/../../.."
SERVICES=${SERVICES:-1000}; PODS=${PODS:-10000}; FLIPS=${FLIPS:-2000}
HEADLESS=${HEADLESS:-100}; DNS_POLL_MS=${DNS_POLL_MS:-1}
RANGE=${RANGE:-127.255.200.0/21}   # never one of up's 127.255.O.0/24 (O is 1..199)
# BIN=target/debug runs the debug binaries (built by the caller), e.g. for a quick check.
if [ -z "${SKIP_BUILD:-}" ] && [ -z "${BIN:-}" ]; then
  cargo build --release -q -p coxswain -p coxctl -p coxswain-proxy --example propagation
fi
BIN=${BIN:-target/release}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
rss() { awk '/VmRSS/ {print $2}' /proc/"$1"/status; }
ready() { for _ in $(seq 300); do grep -q "ready" "$1" && return; sleep 0.1; done; echo "no ready line in $1" >&2; exit 1; }

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
$BIN/coxswain store --auth=false --in-memory --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --service-cluster-ip-range "$RANGE" --data-dir "$WORK/cx" >"$WORK/cx.out" 2>"$WORK/cx.err" &
PIDS+=($!)
ready "$WORK/cx.out"
CX=http://$(grep -o 'grpc=[^ ]*' "$WORK/cx.out" | cut -d= -f2)

# The standalone proxy against the empty store: baseline RSS.
$BIN/coxswain proxy --server "$CX" --metrics-listen 127.0.0.1:0 >"$WORK/px0.out" 2>"$WORK/px0.err" &
PX=$!
ready "$WORK/px0.out"; sleep 2
BASE=$(rss $PX); kill $PX; wait $PX 2>/dev/null || true

$BIN/coxswain controllers --server "$CX" >"$WORK/ctl.out" 2>"$WORK/ctl.err" &
PIDS+=($!)
$BIN/coxswain dns --server "$CX" --dns-listen 127.0.0.1:0 --dns-outside refuse \
  --no-kube-dns-service --metrics-listen 127.0.0.1:0 >"$WORK/dns.out" 2>"$WORK/dns.err" &
PIDS+=($!)
ready "$WORK/dns.out"
DNS=$(grep -o 'dns=[^ ]*' "$WORK/dns.out" | cut -d= -f2)
$BIN/examples/propagation --server "$CX" --services "$SERVICES" --pods "$PODS" --flips "$FLIPS" \
  --dns "$DNS" --headless "$HEADLESS" --dns-poll-ms "$DNS_POLL_MS" | sed 's/^/  /'

# The standalone proxy with everything: RSS once the last Service answers.
$BIN/coxswain proxy --server "$CX" --metrics-listen 127.0.0.1:0 >"$WORK/px1.out" 2>"$WORK/px1.err" &
PX=$!
PIDS+=($PX)
ready "$WORK/px1.out"
LAST=$(python3 - "$CX" "$SERVICES" "$BIN" <<'PY'
import json, subprocess, sys
out = subprocess.run([sys.argv[3] + "/coxctl",
                      "--server", sys.argv[1], "get", "svc", f"svc-{int(sys.argv[2]) - 1}", "-n", "bench", "-o", "json"],
                     capture_output=True, text=True, check=True).stdout
print(json.loads(out)["spec"]["clusterIP"])
PY
)
t0=$(date +%s.%N)
for _ in $(seq 600); do (exec 3<>"/dev/tcp/$LAST/80") 2>/dev/null && break; sleep 0.1; done
t1=$(date +%s.%N)
sleep 2
FULL=$(rss $PX)
ENDPOINTS=$(( PODS / SERVICES * SERVICES ))
echo "  coxswain proxy alone: serving all $SERVICES Services $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s after its ready line (connection refused until then: ok)"
echo "  coxswain proxy RSS: ${BASE} KiB empty, ${FULL} KiB with $SERVICES Services / $ENDPOINTS endpoints: $(awk -v a="$BASE" -v b="$FULL" -v n="$ENDPOINTS" 'BEGIN {printf "%.2f", (b - a) / n}') KiB per endpoint"
