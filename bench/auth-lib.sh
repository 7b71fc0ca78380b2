# Shared by bench/auth.sh and bench/auth-instructions.sh (sourced, not run).
# bench_user BIN ADMIN_CONFIG ADDR PKI_DIR WORK OUT_CONFIG: a client certificate CN=bench signed
# by the cluster CA in PKI_DIR (openssl), a ClusterRole naming exactly what coxswain-bench does
# bound to it by a RoleBinding in "default" (applied as the admin), and its kubeconfig.
bench_user() {
  local bin=$1 admin=$2 addr=$3 pki=$4 work=$5 out=$6
  printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' > "$work/v3.ext"  # a v3 certificate (webpki refuses v1)
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/bench.key" 2>/dev/null
  openssl req -new -key "$work/bench.key" -subj /CN=bench -out "$work/bench.csr"
  openssl x509 -req -in "$work/bench.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 1 -extfile "$work/v3.ext" -out "$work/bench.crt" 2>/dev/null
  COXCONFIG="$admin" "$bin/coxctl" --server "https://$addr" apply -f - > /dev/null <<'YAML'
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
  cat > "$out" <<CONF
apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster: {server: "https://$addr", certificate-authority-data: $(base64 -w0 < "$pki/ca.crt")}
users:
- name: bench
  user: {client-certificate-data: $(base64 -w0 < "$work/bench.crt"), client-key-data: $(base64 -w0 < "$work/bench.key")}
contexts:
- name: bench
  context: {cluster: bench, user: bench}
current-context: bench
CONF
}
