#!/usr/bin/env python3
"""Many communities on a managed deployment of two instances (`make bench-communities`).

Starts two release ecto-server processes of one managed deployment (one PostgreSQL database,
one Redis key prefix, the S3 emulator), first on one Redis and then on the three-node Redis
Cluster of scripts/with-test-services.sh, and runs `ecto-load communities` against them:
1,000 provisioned community servers, 10,000 sessions, traffic in 5 of them whose sessions are
all on the first instance. Writes the "Many communities" section of docs/BENCHMARKS.md (raw
results in docs/benchmarks-communities.json).

Usage: scripts/bench_communities.py [--no-build] [--servers N] [--sessions N] [--busy N]
       [--rate R] [--duration S] [--redis single,cluster]
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

ROOT = bench.ROOT


def start_pair(bins, work, mode):
    """Two instances of one deployment: the first made by bench.Server (its own database and
    prefix), the second with the same settings on another port and data directory."""
    first = bench.Server(bins["ecto-server"], "managed", work, tag=f"-communities-{mode}")
    if mode == "cluster":
        first.env["REDIS_URL"] = os.environ["ECTO_TEST_REDIS_CLUSTER_URL"]
        first.env["REDIS_CLUSTER"] = "true"
        first.shown["REDIS_URL"] = "<the three masters of the cluster, comma-separated>"
        first.shown["REDIS_CLUSTER"] = "true"
    first.migrate()
    second = bench.Server(bins["ecto-server"], "managed", work, tag=f"-communities-{mode}-b")
    port, data = second.port, second.env["DATA_DIR"]
    second.env = dict(first.env, PORT=str(port), DATA_DIR=data)
    first.start()
    second.start()
    return first, second


def run(bins, work, mode, args):
    bench.say(f"--- communities on {mode} Redis ---")
    first, second = start_pair(bins, work, mode)
    redis = os.environ["ECTO_TEST_REDIS_CLUSTER_URL"] if mode == "cluster" else os.environ["ECTO_TEST_REDIS_URL"]
    scenario = ["communities", "--servers", str(args.servers), "--sessions", str(args.sessions),
                "--busy", str(args.busy), "--rate", str(args.rate), "--duration", str(args.duration)]
    cmd = [bins["ecto-load"], "--url", f"http://127.0.0.1:{first.port}", "--label", f"managed, {mode} Redis",
           "--json", "--pid", str(first.proc.pid), "--join-concurrency", "16"] + scenario + [
           "--other-url", f"http://127.0.0.1:{second.port}", "--other-pid", str(second.proc.pid),
           "--managed-key", first.env["MANAGED_API_KEY"], "--redis-url", redis]
    shown = ["target/release/ecto-load", "--url", "http://127.0.0.1:<first port>", "--label",
             f"managed, {mode} Redis", "--json", "--pid", "<first pid>", "--join-concurrency", "16"] + scenario + [
             "--other-url", "http://127.0.0.1:<second port>", "--other-pid", "<second pid>",
             "--managed-key", "<key>", "--redis-url", "<redis>"]
    bench.say(shlex.join(shown))
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=1200)
        out = p.stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    entry = {"redis": mode, "command": shlex.join(shown), "wall_s": round(time.monotonic() - t0, 1),
             "env": first.shown}
    try:
        entry["report"] = json.loads(out.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        entry["report"] = None
    first.stop()
    second.stop()
    return entry


def section(results):
    L = ["## Many communities", "",
         "`make bench-communities` (scripts/bench_communities.py): two managed instances of one deployment "
         "(one PostgreSQL database, one Redis key prefix), 1,000 community servers provisioned through "
         "`POST /internal/servers`, each with an owner and a channel; 10,000 sessions spread evenly over the "
         "servers, those of the 5 busy servers all on the first instance and every other server's alternately "
         "on both. Both instances' CPU is read over an idle phase and over a traffic phase of the same length "
         "(messages to the busy servers through the first instance); \"for traffic\" is the traffic phase's CPU "
         "minus the idle rate over the same time. Redis's operations are `INFO commandstats` calls (summed over "
         "the masters of the cluster), the idle rate subtracted likewise.", ""]
    L.append(f"Run of {results['date']} on commit `{results['commit']}`; {results['machine']}.")
    L.append("")
    rows = [
        ("communities / sessions ready", lambda r: f"{r.get('communities_ready')} / {r.get('sessions_ready')}"),
        ("sessions on the first / second instance", lambda r: f"{r.get('sessions_first_instance')} / {r.get('sessions_second_instance')}"),
        ("messages sent, busy sessions", lambda r: f"{r.get('sent_ok')}, {r.get('busy_sessions')}"),
        ("deliveries expected / lost / duplicated", lambda r: f"{r.get('expected_deliveries')} / {r.get('lost')} / {r.get('duplicated')}"),
        ("delivery p50 / p99", lambda r: "{} / {} ms".format((r.get('delivery_latency') or {}).get('p50_ms'), (r.get('delivery_latency') or {}).get('p99_ms'))),
        ("first instance CPU, idle phase / traffic phase", lambda r: f"{r.get('first_instance_cpu_idle_s')} s / {r.get('first_instance_cpu_traffic_s')} s"),
        ("second instance CPU, idle phase / traffic phase", lambda r: f"{r.get('second_instance_cpu_idle_s')} s / {r.get('second_instance_cpu_traffic_s')} s"),
        ("first instance CPU for the traffic, per message / per delivery", lambda r: f"{r.get('first_instance_cpu_us_per_message')} µs / {r.get('first_instance_cpu_us_per_delivery')} µs"),
        ("second instance CPU for the traffic, per message", lambda r: f"{r.get('second_instance_cpu_us_per_message')} µs"),
        ("Redis scripts run per message", lambda r: f"{r.get('redis_evalsha_per_message')}"),
        ("Redis operations for the traffic, per message / per delivery (idle rate subtracted)", lambda r: f"{r.get('redis_calls_per_message')} / {r.get('redis_calls_per_delivery')}"),
        ("Redis operations, idle phase / traffic phase", lambda r: f"{r.get('redis_calls_idle_phase')} / {r.get('redis_calls_traffic_phase')}"),
        ("Redis commands in the idle phase", lambda r: ", ".join(f"{k} {v}" for k, v in sorted((r.get('redis_commands_idle_phase') or {}).items(), key=lambda kv: -kv[1]))),
        ("Redis commands in the traffic phase", lambda r: ", ".join(f"{k} {v}" for k, v in sorted((r.get('redis_commands_traffic_phase') or {}).items(), key=lambda kv: -kv[1]))),
        ("setup (provisioning, owners, channels)", lambda r: f"{r.get('setup_s')} s"),
    ]
    head = "| | " + " | ".join(f"{e['redis']} Redis" for e in results["runs"]) + " |"
    L.append(head)
    L.append("|---|" + "---|" * len(results["runs"]))
    for name, get in rows:
        cells = []
        for e in results["runs"]:
            r = (e.get("report") or {}).get("results") or {}
            cells.append(get(r) if r else "(no report)")
        L.append(f"| {name} | " + " | ".join(cells) + " |")
    L.append("")
    for e in results["runs"]:
        errs = (e.get("report") or {}).get("errors") or {}
        L.append(f"- {e['redis']} Redis: `{e['command']}`; errors: {', '.join(f'{k} {v}' for k, v in errs.items()) or 'none'}")
    L.append("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--busy", type=int, default=5)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--redis", default="single,cluster")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "BENCHMARKS.md"))
    args = ap.parse_args()
    bench.raise_nofile()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "ecto-server", "-p", "ecto-load"], cwd=ROOT, check=True)
    bins = {b: os.path.join(ROOT, "target", "release", b) for b in ("ecto-server", "ecto-load")}
    m = bench.machine()
    results = {"date": m["date"], "commit": m["commit"],
               "machine": f"{m['cpus']} × {m['cpu']}, {m['ram_gib']} GiB, {m['kernel']}",
               "runs": []}
    with tempfile.TemporaryDirectory() as work:
        for mode in args.redis.split(","):
            results["runs"].append(run(bins, work, mode, args))
    default_out = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    raw = (os.path.join(ROOT, "docs", "benchmarks-communities.json") if os.path.abspath(args.out) == default_out
           else os.path.splitext(args.out)[0] + "-communities.json")
    with open(raw, "w") as f:
        json.dump(results, f, indent=1)
    try:
        with open(args.out) as f:
            page = f.read()
    except OSError:
        page = "# Benchmarks\n"
    bench.write_page(args.out, page, replace=("communities", section(results)))
    print(section(results))


if __name__ == "__main__":
    main()
