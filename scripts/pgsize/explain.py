#!/usr/bin/env python3
"""Runs queries.sql under EXPLAIN (ANALYZE, BUFFERS) a few times per target and prints, per
query: p50 / max execution time, buffers of the last run, and the plan's scan and sort nodes.

  scripts/pgsize/explain.py [--runs 5] [--db ecto_size] [--only 1,11] [--text] big small

Uses psql only (no driver needed). Parallel workers and JIT are off: single-backend timings."""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(db, target, fmt_json=True, only=None):
    explain = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)" if fmt_json else "EXPLAIN (ANALYZE, BUFFERS)"
    cmd = ["psql", "-h", os.environ.get("PGHOST", "127.0.0.1"), "-U", os.environ.get("PGUSER", "postgres"),
           "-X", "-At", "-d", db, "-v", f"target={target}", "-v", f"explain={explain}",
           "-c", "SET max_parallel_workers_per_gather = 0", "-c", "SET jit = off",
           "-f", os.path.join(HERE, "queries.sql")]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    chunks = {}
    name = None
    buf = []
    for line in out.splitlines():
        if line.startswith("@Q"):
            if name:
                chunks[name] = "\n".join(buf)
            name, buf = line, []
        elif name:
            buf.append(line)
    if name:
        chunks[name] = "\n".join(buf)
    res = {}
    for k, text in chunks.items():
        tag = k.split()[0]
        if only and tag.lstrip("@") not in only:
            continue
        res[k] = json.loads(text)[0] if fmt_json else text
    return res


def nodes(plan, acc):
    t = plan["Node Type"]
    rows = plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1)
    if "Scan" in t or t in ("Sort", "Incremental Sort", "Hash", "Aggregate"):
        desc = t
        if plan.get("Index Name"):
            desc += f"({plan['Index Name']})"
        elif plan.get("Relation Name"):
            desc += f"({plan['Relation Name']})"
        if t.endswith("Sort"):
            desc += f"[{plan.get('Sort Method', '')}]"
        if plan.get("Rows Removed by Filter"):
            desc += f" removed={int(plan['Rows Removed by Filter'] * plan.get('Actual Loops', 1))}"
        if plan.get("Rows Removed by Index Recheck"):
            desc += f" recheck-removed={plan['Rows Removed by Index Recheck']}"
        if plan.get("Heap Fetches"):
            desc += f" heapfetch={plan['Heap Fetches']}"
        if t != "Hash" and t != "Aggregate":
            acc.append(f"{desc} rows={int(rows)}")
    for p in plan.get("Plans", []):
        nodes(p, acc)
    return acc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("targets", nargs="*", default=["big", "small"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--db", default="ecto_size")
    ap.add_argument("--only", default="")
    ap.add_argument("--text", action="store_true", help="print the text plans of one run")
    args = ap.parse_args()
    only = {"Q" + x.strip().lstrip("Qq").zfill(2) for x in args.only.split(",") if x.strip()} or None
    for target in args.targets:
        if args.text:
            for k, v in run(args.db, target, fmt_json=False, only=only).items():
                print(f"== {target} {k}\n{v}\n")
            continue
        runs = [run(args.db, target, only=only) for _ in range(args.runs)]
        print(f"== target {target}: {args.runs} runs (first run included)")
        for k in runs[0]:
            times = [r[k]["Execution Time"] for r in runs]
            last = runs[-1][k]["Plan"]
            hit = last.get("Shared Hit Blocks", 0)
            read = last.get("Shared Read Blocks", 0)
            print(f"{k:55s} p50={statistics.median(times):9.3f}ms max={max(times):9.3f}ms "
                  f"rows={last.get('Actual Rows')} buf hit={hit} read={read}")
            print("      " + " | ".join(nodes(last, [])))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
