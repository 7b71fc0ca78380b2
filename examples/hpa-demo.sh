#!/usr/bin/env bash
# Seed S49 in one command: a fresh `coxswain up` with shortened HPA windows (1 s sync and metric
# resolution, 30 s downscale stabilization), nginx requesting cpu=200m behind a NodePort Service,
# an HPA at 2% CPU (min 1, max 10), then `loadgen hpa` drives the load and draws the scale-out
# and the scale-in. Finishes in under 3 minutes; the plot is OUT/timeline.svg and OUT/timeline.png.
#
#   bash examples/hpa-demo.sh            # BIN=target/release OUT=hpa-demo STAGES=10s:200,50s:200
#
# Every window is an environment variable (defaults above and below): SYNC (the HPA's sync
# period), RESOLUTION (the metrics server's resolution), STABILIZATION (downscale
# stabilization), SETTLE (how long loadgen waits for minReplicas after the load).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
OUT=${OUT:-hpa-demo}
STAGES=${STAGES:-10s:200,50s:200}
SYNC=${SYNC:-1s}
RESOLUTION=${RESOLUTION:-1s}
STABILIZATION=${STABILIZATION:-30s}
SETTLE=${SETTLE:-100s}
profile=$([ "$BIN" = target/debug ] && echo "" || echo "--release")
for b in coxswain coxctl loadgen; do
  [ -x "$BIN/$b" ] || cargo build $profile -p coxswain -p coxctl -p loadgen
done

data=$(mktemp -d)
"$BIN/coxswain" up --in-memory --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data-dir "$data" \
  --nodes 2 --metrics-resolution 500ms --metric-resolution "$RESOLUTION" \
  --horizontal-pod-autoscaler-sync-period "$SYNC" \
  --horizontal-pod-autoscaler-downscale-stabilization "$STABILIZATION" \
  --horizontal-pod-autoscaler-cpu-initialization-period 1s \
  --horizontal-pod-autoscaler-initial-readiness-delay 1s >"$data/stdout" 2>"$data/up.log" &
up=$!
trap 'kill $up 2>/dev/null; wait $up 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 300); do grep -q "coxswain ready" "$data/stdout" 2>/dev/null && break; sleep 0.1; done
addr=$(grep -o 'grpc=[^ ]*' "$data/stdout" | head -1 | cut -d= -f2)
# Under --auth (TLS and client credentials) `up` writes the admin's kubeconfig: coxctl and
# loadgen read it through COXCONFIG; with --auth=false the store speaks plain gRPC.
if [ -f "$data/admin.conf" ]; then
  export COXCONFIG="$data/admin.conf" COXSWAIN_SERVER="https://$addr"
else
  export COXSWAIN_SERVER="http://$addr"
fi
echo "coxswain up at $COXSWAIN_SERVER"

"$BIN/coxctl" apply -f - <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: mayikt-sit
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
  namespace: mayikt-sit
  labels:
    run: nginx
spec:
  replicas: 1
  selector:
    matchLabels:
      run: nginx
  template:
    metadata:
      labels:
        run: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.17.9
        resources:
          requests:
            cpu: 200m
EOF
"$BIN/coxctl" expose deployment nginx --type=NodePort --port=80 -n mayikt-sit
"$BIN/coxctl" create -f - <<'EOF'
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: mayikt-hpa
  namespace: mayikt-sit
spec:
  minReplicas: 1
  maxReplicas: 10
  targetCPUUtilizationPercentage: 2
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: nginx
EOF
"$BIN/coxctl" rollout status deployment/nginx -n mayikt-sit --timeout=60s 2>/dev/null ||
  for _ in $(seq 100); do "$BIN/coxctl" get deploy nginx -n mayikt-sit --no-headers | grep -q ' 1/1 ' && break; sleep 0.2; done
"$BIN/coxctl" get deploy,svc,hpa -n mayikt-sit

"$BIN/loadgen" hpa svc/nginx --hpa mayikt-hpa -n mayikt-sit --via node-port \
  --stages "$STAGES" --settle-timeout "$SETTLE" --out "$OUT"
"$BIN/coxctl" get hpa -n mayikt-sit
