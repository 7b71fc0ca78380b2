#!/usr/bin/env python3
"""Generate coxctl/src/explain_docs.json: upstream's field documentation for `coxctl explain`.

The descriptions are Kubernetes' own OpenAPI descriptions, as the npm package
`kubernetes-types` (generated from the upstream OpenAPI spec) carries them in its .d.ts files.
Only the messages and fields that coxswain's schema (proto/coxswain/v1) has are kept.

    cd /tmp && npm pack kubernetes-types@1.30.0 && tar xzf kubernetes-types-1.30.0.tgz
    python3 coxctl/explain/gen_docs.py /tmp/package > coxctl/src/explain_docs.json
"""
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Where a type name exists in several groups, the first listed wins.
ORDER = [
    "core/v1", "apps/v1", "batch/v1", "autoscaling/v2", "meta/v1", "coordination/v1",
    "discovery/v1", "storage/v1", "policy/v1", "rbac/v1", "networking/v1", "scheduling/v1",
    "node/v1", "events/v1", "autoscaling/v1",
]


def proto_messages():
    """{message: {json field name}} of every message in proto/coxswain/v1."""
    out = {}
    for f in sorted((ROOT / "proto/coxswain/v1").glob("*.proto")):
        stack = []
        for line in f.read_text().splitlines():
            s = line.split("//")[0].strip()
            m = re.match(r"message (\w+)\s*\{", s)
            if m:
                stack.append(m.group(1))
                out.setdefault(m.group(1), set())
                if s.endswith("}"):
                    stack.pop()
                continue
            if s.startswith("oneof ") or s.startswith("enum "):
                stack.append(None)
                continue
            if s == "}":
                if stack:
                    stack.pop()
                continue
            fm = re.match(r"(?:optional |repeated )?(?:map<[^>]+>|[\w.]+)\s+(\w+)\s*=", s)
            if fm:
                owner = next((x for x in reversed(stack) if x), None)
                if owner:
                    name = fm.group(1)
                    parts = name.split("_")
                    out[owner].add(parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:]))
    return out


DOC = re.compile(r"/\*\*(.*?)\*/\s*", re.S)


def clean(doc):
    lines = [re.sub(r"^\s*\* ?", "", l) for l in doc.strip().splitlines()]
    return "\n".join(lines).strip()


def parse(text):
    """{interface: {"doc": str, "fields": {name: {"doc": str, "required": bool}}}}."""
    types = {}
    for m in re.finditer(r"(?:/\*\*((?:(?!\*/).)*?)\*/\s*)?export interface (\w+)[^{]*\{(.*?)\n\}", text, re.S):
        doc, name, body = m.group(1) or "", m.group(2), m.group(3)
        fields = {}
        for fm in re.finditer(r"(?:/\*\*((?:(?!\*/).)*?)\*/\s*)?(\w+)(\??):", body, re.S):
            fdoc, fname, opt = fm.group(1) or "", fm.group(2), fm.group(3)
            fields[fname] = {"doc": clean(fdoc), "required": opt != "?"}
        types[name] = {"doc": clean(doc), "fields": fields}
    return types


def main():
    pkg = pathlib.Path(sys.argv[1])
    upstream = {}
    for gv in ORDER:
        path = pkg / (gv + ".d.ts")
        for name, t in parse(path.read_text()).items():
            upstream.setdefault(name, t)
    out = {}
    for msg, fields in sorted(proto_messages().items()):
        t = upstream.get(msg)
        if not t:
            continue
        kept = {f: t["fields"][f] for f in sorted(fields) if f in t["fields"]}
        out[msg] = {"doc": t["doc"], "fields": kept}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
