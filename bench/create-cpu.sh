#!/usr/bin/env bash
# The create path's CPU in instructions per operation (issue 17 §1), steady whatever the load:
# services/store/benches/creates.rs run under callgrind at two counts; the difference in
# instructions over the difference in count leaves start-up out.
#   create:   Store::create of a Deployment-like pod on the in-memory backend (admission,
#             defaults, validation, encode, commit, watch-cache apply), no gRPC, no disk;
#   validate: defaults + validation of the same pod only.
# Usage: bash bench/create-cpu.sh [N]   (N=1000: runs N and 2N of each)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo bench -q -p coxswain-store --bench creates --no-run
# The newest bench binary (no '| head' under pipefail: head exiting first could kill ls).
BIN=$(ls -t target/release/deps/creates-* | grep -v '\.d$')
BIN=${BIN%%$'\n'*}
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" "$1" "$2" 2>&1 | grep -o 'Collected : [0-9]*' | awk '{print $3}'; }
printf '| operation | instructions per op |\n|---|---:|\n'
for mode in validate create; do
  a=$(ir "$mode" "$N"); b=$(ir "$mode" $((2 * N)))
  printf '| %s | %s |\n' "$mode" $(( (b - a) / N ))
done
