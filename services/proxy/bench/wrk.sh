#!/usr/bin/env bash
# Through the service proxy vs straight to the pod, in one run: `coxswain up` (release build) with
# one nginx pod (the process runtime's built-in web server) behind a ClusterIP Service; wrk with
# 64 connections against the pod IP and the ClusterIP, alternating, ROUNDS times each; then one
# connection (unloaded latency). Ends with the medians, the proxy/direct req/s ratio (target
# >= 0.8) and the p50 the proxy adds (target <= 100 us). Builds the release binaries first
# unless BIN is given or SKIP_BUILD=1.
#   bash services/proxy/bench/wrk.sh            # DURATION=10s ROUNDS=3 THREADS=2 CONNS=64
set -euo pipefail
cd "$(dirname "$0")/../../.."
DURATION=${DURATION:-10s}; ROUNDS=${ROUNDS:-3}; THREADS=${THREADS:-2}; CONNS=${CONNS:-64}
if [ -z "${BIN:-}" ] && [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -q -p coxswain -p coxctl
fi
BIN=${BIN:-target/release}
COXCTL=${COXCTL:-$BIN/coxctl}; [ -x "$COXCTL" ] || COXCTL=target/debug/coxctl
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
tmp=$(mktemp -d)
"$BIN/coxswain" up --auth=false --in-memory --nodes 1 --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --data-dir "$tmp/data" >"$tmp/out" 2>"$tmp/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do grep -q "coxswain ready" "$tmp/out" && break; sleep 0.1; done
export COXSWAIN_SERVER="http://$(sed -n 's/.*grpc=\([^ ]*\).*/\1/p' "$tmp/out")"
"$COXCTL" apply -f - >/dev/null <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: nginx, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
YAML
cip=$("$COXCTL" get svc web -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["spec"]["clusterIP"])')
for _ in $(seq 300); do curl -sf -o /dev/null "http://$cip/" && break; sleep 0.1; done
pod=$("$COXCTL" get pods -l app=web -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["status"]["podIP"])')
echo "pod $pod  ClusterIP $cip  wrk -t$THREADS -c$CONNS -d$DURATION --latency"
run() { local t=$THREADS; [ "$3" -lt "$t" ] && t=$3; wrk -t"$t" -c"$3" -d"$DURATION" --latency "http://$1/" | awk -v what="$2 c=$3" '
  /Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx|Socket errors/ {err=err" "$0}
  END {printf "%-12s req/s %10s  p50 %8s  p99 %8s %s\n", what, rps, p50, p99, err}' | tee -a "$tmp/results"; }
for r in $(seq "$ROUNDS"); do run "$pod" direct "$CONNS"; run "$cip" proxy "$CONNS"; done
# Unloaded latency: one connection.
for r in $(seq "$ROUNDS"); do run "$pod" direct 1; run "$cip" proxy 1; done
# Medians per kind, the ratio and the added p50 (wrk prints latencies as 812.00us, 1.20ms, 2.01s).
python3 - "$tmp/results" <<'PY'
import statistics, sys
def us(v):
    for unit, f in (("us", 1), ("ms", 1e3), ("s", 1e6)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f
    return float("nan")
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 8:
        rows.setdefault((f[0], f[1]), []).append((float(f[3]), us(f[5]), us(f[7])))
print("== medians")
for c in sorted({k[1] for k in rows}, key=lambda c: -int(c[2:])):
    d, p = rows.get(("direct", c)), rows.get(("proxy", c))
    if not d or not p:
        continue
    med = lambda r, i: statistics.median(x[i] for x in r)
    print(f"{c:<6} direct {med(d,0):10.0f} req/s p50 {med(d,1):7.0f} us | proxy {med(p,0):10.0f} req/s "
          f"p50 {med(p,1):7.0f} us | proxy/direct {med(p,0)/med(d,0):.2f}x, added p50 {med(p,1)-med(d,1):+.0f} us")
PY
