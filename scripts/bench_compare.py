#!/usr/bin/env python3
"""Before/after benchmark of the CPU and memory per unit of work (`make bench-compare`).

Builds the server at BASE (a commit, in a temporary git worktree, with the shared target
directory) and at the working tree, then runs each scenario on the base's server and at once
on the tree's, each on a server of its own, in each profile, and writes the "Before and after"
section of docs/BENCHMARKS.md (raw results in docs/benchmarks-compare.json). Throughput on a
shared machine drifts from day to day and the load drifts within minutes; the CPU time per
unit of work, read from /proc by `ecto-load --pid`, does much less, and the two binaries of a
scenario are measured seconds apart.

Usage: scripts/bench_compare.py --base COMMIT [--profiles self-hosted,managed] [--no-build]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

ROOT = bench.ROOT

# What is compared: (key, ecto-load arguments), run in this order, each on a server of its own
# (see main); keys in bench.RESTART_BEFORE also restart it once before they start.
SCENARIOS = [
    ("send-seq", ["send-seq", "--count", "2000"]),
    ("fanout-1000", ["fanout", "--subscribers", "1000", "--rate", "200", "--duration", "10"]),
    ("fanout-1000-50", ["fanout", "--subscribers", "1000", "--rate", "50", "--duration", "10"]),
    ("connect-1000", ["connect", "--sessions", "1000", "--concurrency", "64"]),
    ("idle-10000", ["idle", "--sessions", "10000", "--concurrency", "64"]),
    ("signin-burst-32", ["signin-burst", "--count", "32", "--settle", "60"]),
]


def _lat(name, key):
    return lambda r: (r.get(name) or {}).get(key)


def _ms(key):
    return lambda r: None if r.get(key) is None else r[key] / 1000


def _pair(r, first, second):
    """`a / b`, or None when the run did not report them (an older ecto-load)."""
    if r.get(first) is None or r.get(second) is None:
        return None
    return f"{r[first]} / {r[second]}"


def _loss(r):
    if r.get("lost") is None:
        return None
    return f"{r.get('lost')} / {r.get('duplicated')} of {r.get('expected_deliveries'):,}"


# The rows (issue 20's targets): (work, scenario key, metric, getter, unit, self-hosted bound);
# the managed bound is 1.5 × the self-hosted one. A bound of None: shown, not judged.
ROWS = [
    ("one delivery, fan-out 1,000 × 200 msg/s", "fanout-1000", "server CPU per delivery",
     lambda r: r.get("server_cpu_us_per_delivery"), " µs", 2.5),
    ("", "fanout-1000", "delivery p99", _lat("delivery_latency", "p99_ms"), " ms", 50),
    ("", "fanout-1000", "lost / duplicated", _loss, "", "0 / 0"),
    ("one delivery, fan-out 1,000 × 50 msg/s", "fanout-1000-50", "server CPU per delivery",
     lambda r: r.get("server_cpu_us_per_delivery"), " µs", 5),
    ("", "fanout-1000-50", "delivery p99", _lat("delivery_latency", "p99_ms"), " ms", None),
    ("", "fanout-1000-50", "lost / duplicated", _loss, "", "0 / 0"),
    ("one sequential messages.send", "send-seq", "server CPU per send",
     _ms("server_cpu_us_per_send"), " ms", 0.1),
    ("", "send-seq", "send p50", _lat("send_latency", "p50_ms"), " ms", None),
    ("one idle identified session (10,000)", "idle-10000", "server RSS per session",
     lambda r: r.get("server_kib_per_session"), " KiB", 16),
    ("RSS 60 s after 32 sign-ins at once", "signin-burst-32", "server RSS 60 s after",
     lambda r: r.get("server_rss_after_mib"), " MiB", 25),
    ("", "signin-burst-32", "RSS before / peak",
     lambda r: f"{r.get('server_rss_before_mib')} / {r.get('server_rss_peak_mib')}", " MiB", None),
    ("", "signin-burst-32", "of which the process's own (RssAnon) before / after",
     lambda r: _pair(r, "server_rss_anon_before_mib", "server_rss_anon_after_mib"), " MiB", None),
    ("", "signin-burst-32", "of which mapped files (RssFile, the executable) before / after",
     lambda r: _pair(r, "server_rss_file_before_mib", "server_rss_file_after_mib"), " MiB", None),
    ("", "signin-burst-32", "burst answered in", lambda r: r.get("burst_s"), " s", None),
    ("connect → ready, 1,000 sessions 64 at a time", "connect-1000", "p99",
     _lat("connect_to_ready", "p99_ms"), " ms", 15),
    ("", "connect-1000", "server CPU per session", _ms("server_cpu_us_per_session"), " ms", None),
    ("", "connect-1000", "load tool's CPU per session", lambda r: _client_ms(r, "ready"), " ms",
     None),
    ("", "connect-1000", "mean / sessions ready per second",
     lambda r: f"{_lat('connect_to_ready', 'mean_ms')(r)} ms / {r.get('ready_per_s'):,.0f}", "",
     None),
]


def _client_ms(r, per):
    """The load tool's own CPU time per unit of `per`, in ms."""
    if r.get("client_cpu_s") is None or not r.get(per):
        return None
    return round(r["client_cpu_s"] * 1000 / r[per], 3)


def connect_floor(saved, profile, after):
    """What the two processes' CPU allows the connect scenario on this machine: both share its
    cores, so sessions are ready at most cores / (server + load tool CPU per session) per
    second, and with `concurrency` in flight the mean connect → ready is at least `concurrency`
    divided by that rate (Little's law). `None` when the run did not report the figures."""
    r = ((after.get("connect-1000") or {}).get("report") or {}).get("results") or {}
    server, client = r.get("server_cpu_us_per_session"), _client_ms(r, "ready")
    latency = r.get("connect_to_ready") or {}
    if not server or not client or latency.get("mean_ms") is None:
        return None
    per_session_ms = server / 1000 + client
    rate = saved["machine"]["cpus"] * 1000 / per_session_ms
    concurrency = _connect_concurrency()
    return (f"{profile}: the after server's {server / 1000:.2f} ms and the load tool's "
            f"{client:.2f} ms of CPU per session allow at most {rate:,.0f} sessions ready per "
            f"second on {saved['machine']['cpus']} cores, so with {concurrency} in flight the mean "
            f"connect → ready is at least {concurrency * 1000 / rate:.1f} ms (measured: mean "
            f"{latency['mean_ms']} ms, p99 {latency.get('p99_ms')} ms)")


def _connect_concurrency():
    """The sockets the connect scenario keeps in flight."""
    args = dict(SCENARIOS)["connect-1000"]
    return int(args[args.index("--concurrency") + 1])


def build_base(base, target_dir, cargo):
    """The server at `base`, built once into target/baseline/ (in a target directory of its
    own: the workspace's crates build to the same file names from any checkout, so a build of
    another tree in the shared one leaves the next build of this tree linking the base's)."""
    sha = subprocess.run(["git", "rev-parse", "--short=12", base], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    out = os.path.join(target_dir, "baseline", f"ecto-server-{sha}")
    if os.path.exists(out):
        return sha, out
    build_dir = os.path.join(target_dir, "baseline", "build")
    with tempfile.TemporaryDirectory(prefix="ecto-base-") as tree:
        subprocess.run(["git", "worktree", "add", "--detach", tree, sha], cwd=ROOT, check=True)
        try:
            bench.say(f"cargo build --release -p ecto-server at {sha}")
            subprocess.run([cargo, "build", "--release", "-p", "ecto-server"], cwd=tree, check=True,
                           env=dict(os.environ, CARGO_TARGET_DIR=build_dir))
            os.makedirs(os.path.dirname(out), exist_ok=True)
            subprocess.run(["cp", os.path.join(build_dir, "release", "ecto-server"), out], check=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=ROOT)
    return sha, out


def value(rows, profile, scenarios):
    out = []
    for work, key, metric, get, unit, bound in rows:
        sc = scenarios.get(key)
        rep = (sc or {}).get("report") or {}
        try:
            v = get(rep.get("results") or {}) if rep else None
        except Exception:
            v = None
        out.append((work, metric, v, unit, bound))
    return out


def judge(v, bound, profile):
    if bound is None or v is None:
        return ""
    if isinstance(bound, str):
        return "yes" if isinstance(v, str) and v.startswith(bound + " ") else "**no**"
    limit = bound * (1.5 if profile == "managed" else 1)
    return "yes" if v <= limit else "**no**"


def bound_text(bound, unit, profile):
    if bound is None:
        return ""
    if isinstance(bound, str):
        return bound
    return f"≤ {bound * (1.5 if profile == 'managed' else 1):g}{unit}"


def section(saved):
    L = ["## Before and after (performance round 2)", ""]
    L.append(f"Generated by `make bench-compare BASE={saved['base']}` (`scripts/bench_compare.py`) "
             f"on {saved['machine']['date']}: the server at {saved['base']} (before) and at "
             f"{saved['machine']['commit']} (after), release builds, in one run: each scenario on "
             "the before server and at once on the after one, each on a server process of its "
             "own with a fresh data directory (and in the managed profile a fresh database and "
             "Redis prefix). CPU is the server's user + "
             "system time over the measured phase, read from /proc by `ecto-load --pid`, divided "
             "by the work done; the split is in [benchmarks-compare.json](benchmarks-compare.json). "
             "Managed targets are 1.5 × the self-hosted ones. Server settings are those of "
             "the tables above; each server keeps its own defaults for the rest. Since "
             "performance round 2 that includes `WS_WRITE_DELAY_MS=20`: in a steady stream a "
             "socket's events are written together at most 20 ms after dispatch, which is "
             "most of the CPU saved per delivery at 200 msg/s and what the delivery p99 rows "
             "add at 50 msg/s (events 20 ms apart seldom share a write).")
    L.append("")
    L.append("| Scenario | ecto-load arguments |")
    L.append("|---|---|")
    for key, args in SCENARIOS:
        restart = " (on a freshly restarted server process)" if key in bench.RESTART_BEFORE else ""
        L.append(f"| {key} | `{' '.join(args)}`{restart} |")
    for prof in saved["profiles"]:
        profile = prof["profile"]
        before = value(ROWS, profile, {s["key"]: s for s in prof["before"]["scenarios"]})
        after = value(ROWS, profile, {s["key"]: s for s in prof["after"]["scenarios"]})
        L += ["", f"### {profile}", "", "| Work | Metric | Before | After | Target | Met |",
              "|---|---|---|---|---|---|"]
        for (work, metric, b, unit, bound), (_, _, a, _, _) in zip(before, after):
            L.append(f"| {work} | {metric} | {bench.fmt(b, unit)} | {bench.fmt(a, unit)} | "
                     f"{bound_text(bound, unit, profile)} | {judge(a, bound, profile)} |")
        errs = []
        for side in ("before", "after"):
            for s in prof[side]["scenarios"]:
                e = ((s.get("report") or {}).get("errors")) or {}
                if e or s.get("exit") != 0:
                    errs.append(f"{side} {s['key']}: exit {s.get('exit')}, {bench.errors_text(s.get('report') or {})}")
        L.append("")
        L.append("Errors: " + ("; ".join(errs) if errs else "none") + ".")
    floors = [f for f in (connect_floor(saved, p["profile"],
                                        {s["key"]: s for s in p["after"]["scenarios"]})
                          for p in saved["profiles"]) if f]
    if floors:
        L += ["", "### Connect → ready and the machine", "",
              f"The connect scenario is closed-loop: {_connect_concurrency()} sockets are in "
              "flight, and a new one opens as soon as one has its `system.ready`. The load tool "
              "runs on the same cores as the server (in the managed profile PostgreSQL and Redis "
              "too), and its own CPU per session (the WebSocket handshake, and parsing each "
              "`system.ready`, which carries every online member's presence) is of the order of "
              "the server's. Their sum bounds the rate, and the rate bounds the mean latency "
              "(Little's law):", ""]
        L += [f"- {f}." for f in floors]
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", help="the commit to compare with")
    ap.add_argument("--profiles", default="self-hosted,managed")
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    ap.add_argument("--render", action="store_true",
                    help="only write the section from docs/benchmarks-compare.json")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "BENCHMARKS.md"))
    ap.add_argument("--only", metavar="KEYS",
                    help="run only these scenarios (comma-separated) and print the results, "
                         "without writing the page")
    args = ap.parse_args()
    results_file = os.path.join(os.path.dirname(args.out), "benchmarks-compare.json")
    if args.render:
        with open(results_file) as f:
            saved = json.load(f)
        with open(args.out) as f:
            bench.write_page(args.out, f.read(), replace=("compare", section(saved)))
        return
    if not args.base:
        raise SystemExit("bench_compare: --base COMMIT is needed")
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    if "managed" in profiles and not os.environ.get("ECTO_TEST_DATABASE_URL"):
        script = os.path.join(ROOT, "scripts", "with-test-services.sh")
        os.execv(script, [script, sys.executable] + sys.argv)
    bench.raise_nofile()
    cargo = os.environ.get("CARGO", "cargo")
    meta_json = subprocess.run([cargo, "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout
    target_dir = json.loads(meta_json)["target_directory"]
    base_sha, base_bin = build_base(args.base, target_dir, cargo)
    if not args.no_build:
        bench.say("cargo build --release -p ecto-server -p ecto-load")
        subprocess.run([cargo, "build", "--release", "-p", "ecto-server", "-p", "ecto-load"],
                       cwd=ROOT, check=True)
    load = os.path.join(target_dir, "release", "ecto-load")
    now = {"ecto-server": os.path.join(target_dir, "release", "ecto-server"), "ecto-load": load}
    was = {"ecto-server": base_bin, "ecto-load": load}
    scenarios = SCENARIOS
    if args.only:
        keys = args.only.split(",")
        scenarios = [(k, a) for k, a in SCENARIOS if k in keys]
    meta = bench.machine()
    saved = {"base": base_sha, "machine": meta, "profiles": []}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ecto-compare-") as work:
        for profile in profiles:
            # Each scenario runs on the base's server and at once on this tree's, each time on a
            # server of its own (fresh data, database and Redis prefix): the machine's load
            # drifts over minutes, and a comparison of two phases minutes apart measured it.
            sides = {"before": None, "after": None}
            for key, load_args in scenarios:
                for side, bins in (("before", was), ("after", now)):
                    run = bench.run_profile(profile, bins, [(key, load_args)], work, False,
                                            tag=f"-{side}-{key}")
                    if sides[side] is None:
                        sides[side] = run
                    else:
                        sides[side]["scenarios"] += run["scenarios"]
            saved["profiles"].append({"profile": profile, **sides})
    bench.say(f"compared in {time.monotonic() - started:.0f} s")
    if args.only:
        print(section(saved))
        return
    with open(results_file, "w") as f:
        json.dump(saved, f, indent=1)
        f.write("\n")
    with open(args.out) as f:
        bench.write_page(args.out, f.read(), replace=("compare", section(saved)))
    bench.say(f"wrote {os.path.relpath(args.out, ROOT)}")


if __name__ == "__main__":
    main()
