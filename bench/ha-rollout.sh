#!/usr/bin/env bash
# The issue-18 §4 rollout at full size: a 1,000-replica Deployment on etcd (store, scheduler,
# simulated nodes, two `coxswain controllers --leader-elect`) rolls out a new template at
# upstream's default maxSurge/maxUnavailable of 25 %, and the leading controller-manager is
# killed with SIGKILL once a fifth of the new pods are Ready. The e2e test
# services/coxswain/tests/ha_rollout.rs is the harness (the suite runs it with 40 replicas);
# it checks every list of pods against the bounds, the takeover time and the end state, and
# prints the worst counts it saw.
# Usage: bench/ha-rollout.sh [replicas]   (default 1000; debug build, as the suite's)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq etcd-server etcd-client >/dev/null
fi
cargo build -q -p coxswain -p coxctl
QUARTER=$(( (N + 3) / 4 ))
start=$(date +%s)
HA_ROLLOUT_REPLICAS=$N HA_ROLLOUT_MAX_SURGE=$QUARTER HA_ROLLOUT_MAX_UNAVAILABLE=$(( N / 4 )) \
  cargo test -q -p coxswain --test ha_rollout -- --nocapture 2>&1 | grep -E "rollout of|test result|panicked"
echo "wall: $(( $(date +%s) - start )) s for $N replicas (including start-up)"
