#!/usr/bin/env bash
# Issue 11 §5 in instructions (steady on a shared machine, where wall-clock is noise): the store
# under callgrind, OPS creates then OPS gets from coxswain-bench at CLIENTS clients, in memory,
# in bench/auth.sh's modes (off: plain; tls: TLS + the admin's certificate, system:masters;
# rbac: TLS + a client certificate of user "bench" + RBAC through a RoleBinding). Prints each run's total and the difference per request
# against off (startup and the TLS handshakes included; they are the same few in every run).
# Usage: bash bench/auth-instructions.sh [OPS] [CLIENTS]   (BIN=target/release; build first:
# cargo build --release -p coxswain -p coxswain-bench -p coxctl)
set -euo pipefail
cd "$(dirname "$0")/.."
OPS=${1:-2000}
CLIENTS=${2:-16}
BIN=${BIN:-target/release}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
WORK=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
run() { # mode
  local mode=$1 flags scheme=https conf="$WORK/$1.config"
  case $mode in
    off) flags=(--auth=false); scheme=http ;;
    tls) flags=(--auth --merge-kubeconfig "$conf") ;;
    rbac) flags=(--auth --merge-kubeconfig "$WORK/rbac.admin") ;;
  esac
  valgrind --tool=callgrind --callgrind-out-file="$WORK/$mode.cg" \
    $BIN/coxswain store --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --in-memory \
    --data-dir "$WORK/$mode.data" "${flags[@]}" > "$WORK/$mode.out" 2> "$WORK/$mode.err" &
  local pid=$!
  for _ in $(seq 600); do grep -q "coxswain ready" "$WORK/$mode.out" && break; sleep 0.1; done
  local addr; addr=$(grep -o 'grpc=[^ ]*' "$WORK/$mode.out" | cut -d= -f2)
  if [ "$mode" = rbac ]; then
    COXCONFIG="$WORK/rbac.admin" $BIN/coxctl --server "https://$addr" apply -f - > /dev/null <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: bench-writer}
rules:
- {apiGroups: [""], resources: [pods], verbs: [create, get, list, delete]}
- {apiGroups: [apps], resources: [replicasets], verbs: [create, get, list, patch, update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bench-writer, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: bench-writer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bench}]
YAML
    printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' > "$WORK/v3.ext"  # a v3 certificate (webpki refuses v1)
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/bench.key" 2>/dev/null
    openssl req -new -key "$WORK/bench.key" -subj /CN=bench -out "$WORK/bench.csr"
    openssl x509 -req -in "$WORK/bench.csr" -CA "$WORK/$mode.data/pki/ca.crt" \
      -CAkey "$WORK/$mode.data/pki/ca.key" -CAcreateserial -days 1 -extfile "$WORK/v3.ext" -out "$WORK/bench.crt" 2>/dev/null
    cat > "$conf" <<CONF
apiVersion: v1
kind: Config
clusters:
- name: b
  cluster: {server: "https://$addr", certificate-authority-data: $(base64 -w0 < "$WORK/$mode.data/pki/ca.crt")}
users:
- name: b
  user: {client-certificate-data: $(base64 -w0 < "$WORK/bench.crt"), client-key-data: $(base64 -w0 < "$WORK/bench.key")}
contexts:
- name: b
  context: {cluster: b, user: b}
current-context: b
CONF
  fi
  COXCONFIG="$conf" $BIN/coxswain-bench store --server "$scheme://$addr" --ops "$OPS" --clients "$CLIENTS" > "$WORK/$mode.bench"
  kill -INT $pid; wait $pid 2>/dev/null || true
  grep -o 'summary: [0-9]*' "$WORK/$mode.cg" | awk '{print $2}'
}
off=$(run off)
echo "instructions, store process, $OPS creates + $OPS gets at $CLIENTS clients: off $off"
for mode in tls rbac; do
  n=$(run $mode)
  awk -v m="$mode" -v a="$n" -v b="$off" -v n="$OPS" 'BEGIN { printf "%s: %s, %+.0f instructions per request against off (%+.2f%% of the run)\n", m, a, (a - b) / (2 * n), 100 * (a - b) / b }'
done
if [ -n "${KEEP:-}" ]; then cp "$WORK"/*.cg "$KEEP"/; fi
