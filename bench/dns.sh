#!/usr/bin/env bash
# Cluster DNS benchmark (BENCHMARKS.md, "Cluster DNS"): UDP queries per second of `coxswain dns`
# (its own process against `coxswain store`) measured with dnsperf, and the same names served
# by dnsmasq (--host-record/--srv-host, no upstream) in the same run as a reference.
#
# The store holds SERVICES ClusterIP Services (port http/TCP 80) and one headless selectorless
# Service with ENDPOINTS hand-made endpoints. The query mix, cycled by dnsperf: A of every
# Service, SRV _http._tcp of every tenth, A of the headless name and of each endpoint
# hostname, and one NXDOMAIN per ten Services.
#
# Runs ROUNDS rounds of DURATION seconds each, alternating coxswain and dnsmasq; prints every
# round and the medians. Every run is bounded: dnsperf -l DURATION.
#
# dnsperf and dnsmasq are Debian's `dnsperf` and `dnsmasq-base`, installed when missing (as root,
# else with sudo). A figure is never made up: a dnsperf run that completes no query fails the
# script for coxswain, and for dnsmasq (the reference) the last line says
# "dnsmasq: skipped (<why>)" instead of a number (not installable, did not start or answer).
#
#   cargo build --release -p coxswain && bash bench/dns.sh
set -euo pipefail
# Plain gRPC, as these figures were first measured (bench/auth.sh measures TLS + authentication).
export COXSWAIN_AUTH=false
cd "$(dirname "$0")/.."

SERVICES=${SERVICES:-1000}
ENDPOINTS=${ENDPOINTS:-10}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-4}          # dnsperf -c: client sockets
OUTSTANDING=${OUTSTANDING:-200} # dnsperf -q: queries in flight
BIN=${BIN:-target/release/coxswain}
# coxctl only sets up the objects: a debug build will do.
COXCTL=${COXCTL:-$( [ -x target/release/coxctl ] && echo target/release/coxctl || echo target/debug/coxctl )}

# dnsmasq lives in /usr/sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
need=()
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
command -v dnsmasq >/dev/null 2>&1 || need+=(dnsmasq-base)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=$( [ "$(id -u)" -eq 0 ] || echo sudo )
  echo "installing ${need[*]} (Debian)" >&2
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need[@]}"; } >/dev/null 2>&1 ||
    echo "could not install ${need[*]}" >&2
fi
command -v dnsperf >/dev/null 2>&1 || { echo "needs dnsperf: apt-get install -y dnsperf" >&2; exit 1; }
# Why dnsmasq has no figure, when it has none ("" while it runs).
MASQ_SKIP=
command -v dnsmasq >/dev/null 2>&1 || MASQ_SKIP="dnsmasq not installed and apt-get install dnsmasq-base failed"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ready_field() { # file field: wait for the ready line, print FIELD=value's value
  for _ in $(seq 1 300); do
    if grep -q ' ready ' "$1" 2>/dev/null; then
      grep -o "$2=[^ ]*" "$1" | head -1 | cut -d= -f2
      return
    fi
    sleep 0.1
  done
  echo "no ready line in $1" >&2; cat "$1" >&2; exit 1
}

"$BIN" store --in-memory --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 >"$WORK/store.out" 2>"$WORK/store.err" &
PIDS+=($!)
GRPC=$(ready_field "$WORK/store.out" grpc)
export COXSWAIN_SERVER="http://$GRPC"

"$BIN" dns --server "$COXSWAIN_SERVER" --dns-listen 127.0.0.1:0 --dns-outside refuse >"$WORK/dns.out" 2>"$WORK/dns.err" &
PIDS+=($!)
DNS=$(ready_field "$WORK/dns.out" dns)
DNS_PORT=${DNS##*:}

echo "creating $SERVICES Services and a headless Service with $ENDPOINTS endpoints" >&2
"$COXCTL" create namespace bench >/dev/null
{
  for i in $(seq 1 "$SERVICES"); do
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: svc-%d, namespace: bench}\nspec:\n  ports:\n  - {name: http, port: 80, protocol: TCP}\n---\n' "$i"
  done
  printf 'apiVersion: v1\nkind: Service\nmetadata: {name: hl, namespace: bench}\nspec:\n  clusterIP: None\n  ports:\n  - {name: http, port: 80}\n---\n'
  printf 'apiVersion: v1\nkind: Endpoints\nmetadata: {name: hl, namespace: bench}\nsubsets:\n- addresses:\n'
  for i in $(seq 1 "$ENDPOINTS"); do
    printf '  - {ip: 10.99.0.%d, hostname: hl-%d}\n' "$i" "$i"
  done
  printf '  ports:\n  - {name: http, port: 80, protocol: TCP}\n'
} >"$WORK/objects.yaml"
"$COXCTL" apply -f "$WORK/objects.yaml" >/dev/null

# Service name → ClusterIP, for dnsmasq's records.
"$COXCTL" get svc -n bench -o json | python3 -c '
import json, sys
d = json.load(sys.stdin)
items = d.get("items", d if isinstance(d, list) else [])
for s in items:
    ip = s.get("spec", {}).get("clusterIP", "")
    if ip and ip != "None":
        print(s["metadata"]["name"], ip)
' >"$WORK/ips.txt"
test "$(wc -l <"$WORK/ips.txt")" -eq "$SERVICES" || { echo "expected $SERVICES ClusterIPs" >&2; exit 1; }

Z=cluster.local
: >"$WORK/queries.txt"
: >"$WORK/dnsmasq.conf"
n=0
while read -r name ip; do
  n=$((n + 1))
  echo "$name.bench.svc.$Z A" >>"$WORK/queries.txt"
  echo "host-record=$name.bench.svc.$Z,$ip,5" >>"$WORK/dnsmasq.conf"
  if [ $((n % 10)) -eq 0 ]; then
    echo "_http._tcp.$name.bench.svc.$Z SRV" >>"$WORK/queries.txt"
    echo "srv-host=_http._tcp.$name.bench.svc.$Z,$name.bench.svc.$Z,80,0,100" >>"$WORK/dnsmasq.conf"
    echo "missing-$n.bench.svc.$Z A" >>"$WORK/queries.txt"
  fi
done <"$WORK/ips.txt"
echo "hl.bench.svc.$Z A" >>"$WORK/queries.txt"
for i in $(seq 1 "$ENDPOINTS"); do
  echo "hl-$i.hl.bench.svc.$Z A" >>"$WORK/queries.txt"
  echo "host-record=hl.bench.svc.$Z,10.99.0.$i,5" >>"$WORK/dnsmasq.conf"
  echo "host-record=hl-$i.hl.bench.svc.$Z,10.99.0.$i,5" >>"$WORK/dnsmasq.conf"
done
{
  echo "local=/$Z/"
  echo "no-resolv"
  echo "no-hosts"
  echo "local-ttl=5"
} >>"$WORK/dnsmasq.conf"

# Wait until coxswain dns answers the last Service and the headless name (the watch caught up).
last=$(tail -1 "$WORK/ips.txt")
for _ in $(seq 1 300); do
  if [ "$(dig @127.0.0.1 -p "$DNS_PORT" +short "${last%% *}.bench.svc.$Z" A)" = "${last##* }" ] &&
     [ "$(dig @127.0.0.1 -p "$DNS_PORT" +short "hl.bench.svc.$Z" A | wc -l)" -eq "$ENDPOINTS" ]; then
    break
  fi
  sleep 0.1
done

# A port free for both UDP and TCP (dnsmasq listens on both; a port free for UDP alone can be
# some other process's TCP listener, and dnsmasq then exits at once).
MASQ_PORT=$(python3 -c '
import socket
for _ in range(100):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port)
    break
')
if [ -z "$MASQ_SKIP" ]; then
  dnsmasq --keep-in-foreground --conf-file="$WORK/dnsmasq.conf" --listen-address=127.0.0.1 \
    --bind-interfaces --port="$MASQ_PORT" --cache-size=0 --user="$(id -un)" --pid-file="$WORK/dnsmasq.pid" 2>"$WORK/dnsmasq.err" &
  MASQ_PID=$!
  PIDS+=("$MASQ_PID")
  MASQ_SKIP="dnsmasq did not answer on 127.0.0.1:$MASQ_PORT within 10 s"
  for _ in $(seq 1 100); do
    if ! kill -0 "$MASQ_PID" 2>/dev/null; then
      MASQ_SKIP="dnsmasq exited at start: $(tr '\n' ' ' <"$WORK/dnsmasq.err" | cut -c1-200)"
      break
    fi
    if dig @127.0.0.1 -p "$MASQ_PORT" +short +time=1 +tries=1 "svc-1.bench.svc.$Z" A | grep -q .; then
      MASQ_SKIP=
      break
    fi
    sleep 0.1
  done
  [ -z "$MASQ_SKIP" ] || echo "$MASQ_SKIP" >&2
fi

qps() { # port: one dnsperf run, prints queries/s and queries lost ("0 ?" when none completed)
  dnsperf -s 127.0.0.1 -p "$1" -d "$WORK/queries.txt" -l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" >"$WORK/perf.txt" 2>&1 || true
  local q lost
  q=$(awk '/Queries per second:/ {print $4}' "$WORK/perf.txt")
  lost=$(awk '/Queries lost:/ {print $3}' "$WORK/perf.txt")
  echo "${q:-0} ${lost:-?}"
}
answered() { python3 -c "import sys; sys.exit(0 if float('$1') > 0 else 1)" 2>/dev/null; }

echo "queries: $(wc -l <"$WORK/queries.txt") names; dnsperf -l $DURATION -c $CLIENTS -q $OUTSTANDING" >&2
COX=()
MASQ=()
for r in $(seq 1 "$ROUNDS"); do
  read -r q lost < <(qps "$DNS_PORT")
  if ! answered "$q"; then
    echo "round $r: coxswain dns answered no query; dnsperf said:" >&2
    tail -20 "$WORK/perf.txt" >&2
    exit 1
  fi
  COX+=("$q"); echo "round $r coxswain dns: $q q/s (lost $lost)"
  grep -E "Response codes" "$WORK/perf.txt" || true
  [ -z "$MASQ_SKIP" ] || continue
  read -r q lost < <(qps "$MASQ_PORT")
  if answered "$q"; then
    MASQ+=("$q"); echo "round $r dnsmasq:      $q q/s (lost $lost)"
  else
    MASQ_SKIP="dnsmasq answered no query in round $r: $(grep -m1 -iE 'error|lost|timed out' "$WORK/perf.txt" | cut -c1-120)"
    echo "$MASQ_SKIP" >&2
  fi
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mc=$(median "${COX[@]}")
if [ -z "$MASQ_SKIP" ]; then
  mm=$(median "${MASQ[@]}")
  echo "median coxswain dns: $mc q/s; dnsmasq: $mm q/s; ratio $(python3 -c "print(round($mc/$mm, 2))")"
else
  echo "median coxswain dns: $mc q/s; dnsmasq: skipped ($MASQ_SKIP)"
fi
echo "coxswain dns RSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/${PIDS[1]}/status")"
