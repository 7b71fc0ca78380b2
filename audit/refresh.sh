#!/usr/bin/env bash
# Refreshes the vendored RustSec snapshot (audit/advisory-db, audit/manifest.toml) from a real clone
# of rustsec/advisory-db. Run it on a machine that reaches GitHub, after Cargo.lock changed or when
# audit/check.sh says the snapshot is too old, then run `bash audit/check.sh` and commit audit/.
#
#   bash audit/refresh.sh                # clones the live database
#   ADVISORY_DB=/path/to/clone bash audit/refresh.sh   # uses an existing clone (git pull it first)
#
# It copies crates/<name>/ for every registry crate in Cargo.lock, verbatim (assigned ids only:
# RUSTSEC-YYYY-NNNN.md), and rewrites the manifest: snapshot-date is the clone's HEAD commit date,
# checked is every registry crate name of Cargo.lock. Advisories of crates no longer locked are
# dropped. (The 2026-09-14 snapshot was harvested by hand from a stored index instead, because
# GitHub was unreachable: audit/manifest.toml's method says how.)
set -euo pipefail
cd "$(dirname "$0")/.."

clone="${ADVISORY_DB:-}"
if [ -z "$clone" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  clone="$tmp/advisory-db"
  git clone --quiet --depth 1 https://github.com/rustsec/advisory-db "$clone"
fi
test -d "$clone/crates" || { echo "refresh: $clone has no crates/ directory" >&2; exit 1; }
head_date="$(git -C "$clone" show -s --format=%cs HEAD)"
head_commit="$(git -C "$clone" rev-parse HEAD)"

python3 - "$clone" "$head_date" "$head_commit" <<'PY'
import os, re, shutil, sys
clone, head_date, head_commit = sys.argv[1:]
lock = open("Cargo.lock").read()
names = set()
for block in lock.split("[[package]]")[1:]:
    name = re.search(r'^name = "([^"]+)"', block, re.M)
    source = re.search(r'^source = "([^"]+)"', block, re.M)
    if name and source and source.group(1).startswith("registry+"):
        names.add(name.group(1))
names = sorted(names)
out = "audit/advisory-db"
shutil.rmtree(out, ignore_errors=True)
files = with_advisories = 0
newest = ""
for name in names:
    src = os.path.join(clone, "crates", name)
    if not os.path.isdir(src):
        continue
    ids = sorted(f for f in os.listdir(src) if re.fullmatch(r"RUSTSEC-\d{4}-\d{4}\.md", f)
                 and not f.startswith("RUSTSEC-0000-"))
    if not ids:
        continue
    with_advisories += 1
    os.makedirs(os.path.join(out, "crates", name))
    for f in ids:
        text = open(os.path.join(src, f), encoding="utf-8").read()
        date = re.search(r'^date = "([0-9-]+)"', text, re.M)
        if date and date.group(1) > newest:
            newest = date.group(1)
        with open(os.path.join(out, "crates", name, f), "w", encoding="utf-8") as w:
            w.write(text)
        files += 1
body = "\n".join(f'  "{n}",' for n in names)
with open("audit/manifest.toml", "w") as m:
    m.write(f'''# The vendored RustSec advisory snapshot in audit/advisory-db (read by audit/check.sh, the CI step).
# Written by audit/refresh.sh.

# The snapshot is current to this date: the HEAD commit date of the clone it was copied from
# (newest advisory in it: {newest}). audit/check.sh commits the copy with this date and prints its age.
snapshot-date = "{head_date}"

# How it was made.
source = "a clone of https://github.com/rustsec/advisory-db at {head_commit}"
method = """
audit/refresh.sh copied crates/<name>/RUSTSEC-*.md verbatim for every registry crate in Cargo.lock
({len(names)} names; {with_advisories} with advisories, {files} files). Unassigned drafts
(RUSTSEC-0000-0000) are not part of the database and are not copied.
"""

# Every registry crate of Cargo.lock that was looked up, with or without advisories. audit/check.sh
# fails when Cargo.lock holds a registry crate that is not listed here.
checked = [
{body}
]
''')
print(f"refresh: {len(names)} crates checked, {with_advisories} with advisories ({files} files); "
      f"snapshot of {head_date} (newest advisory {newest})")
PY
