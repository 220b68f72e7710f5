#!/usr/bin/env python3
"""The cost of metrics: send-seq and fan-out against the release server with METRICS_ADDRESS
unset and set (Prometheus scraping it every second while the scenario runs), self-hosted
(and managed too under scripts/with-test-services.sh, with --profiles managed). Writes the
server CPU per unit into the "Cost of metrics" section of docs/BENCHMARKS.md (which
`scripts/bench.py` keeps when it writes the page again).

usage: scripts/bench-metrics.py [--profiles self-hosted,managed] [--runs N]
Needs target/release/ecto-server and target/release/ecto-load (`make release`,
`cargo build --release -p ecto-load`).
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the same server settings and helpers as make bench)

PAGE = os.path.join(bench.ROOT, "docs", "BENCHMARKS.md")
BEGIN, END = "<!-- metrics-cost:begin -->", "<!-- metrics-cost:end -->"
SCENARIOS = [
    # (key, ecto-load arguments, the unit the CPU is divided by, its result field)
    ("send-seq", ["send-seq", "--count", "2000"], "message sent", "sent_ok"),
    ("fanout-100", ["fanout", "--subscribers", "100", "--rate", "100", "--duration", "10"],
     "delivery", "received"),
]


def scraper(port, stop):
    """Scrapes /metrics every second, as Prometheus would."""
    while not stop.is_set():
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
        except OSError:
            pass
        stop.wait(1.0)


def run(profile, metrics_on, bins, work):
    server = bench.Server(bins["ecto-server"], profile, work)
    # The load tool registers the owner itself.
    server.env.setdefault("REQUIRE_SETUP_TOKEN", "false")
    metrics_port = None
    if metrics_on:
        metrics_port = bench.free_port()
        server.env["METRICS_ADDRESS"] = f"127.0.0.1:{metrics_port}"
    server.migrate()
    server.start()
    if profile == "managed":
        server.provision()
    out = {}
    stop = threading.Event()
    if metrics_on:
        threading.Thread(target=scraper, args=(metrics_port, stop), daemon=True).start()
    try:
        tokens = os.path.join(work, f"tokens-{profile}-{metrics_on}.json")
        for key, args, unit, field in SCENARIOS:
            cmd = [bins["ecto-load"], "--url", f"http://127.0.0.1:{server.port}",
                   "--token-cache", tokens, "--json", "--owner", "bench-owner:bench-owner-password",
                   "--user-prefix", "bench", "--pid", str(server.proc.pid)]
            if server.address:
                cmd += ["--server-address", server.address]
            p = subprocess.run(cmd + args, stdout=subprocess.PIPE, text=True, timeout=600)
            report = json.loads(p.stdout.strip().splitlines()[-1])
            res = report.get("results", report)
            cpu, count = res.get("server_cpu_s"), res.get(field)
            per_unit = cpu * 1e6 / count if cpu is not None and count else None
            out[key] = {"cpu_s": cpu, "count": count, "us_per_unit": per_unit, "unit": unit}
            bench.say(f"{profile} metrics {'on' if metrics_on else 'off'} {key}: "
                      f"server CPU {cpu} s for {count} ({per_unit and round(per_unit, 1)} µs per {unit})")
    finally:
        stop.set()
        server.stop()
    return out


def section(rows, meta, command):
    L = [BEGIN, "## Cost of metrics", "",
         f"Measured by `{command}` (commit {meta['commit']}, {meta['date']}): each scenario on a "
         "fresh release server with `METRICS_ADDRESS` unset (off) and set (on, with `/metrics` "
         "scraped every second during the run), the other settings as above. Server CPU is "
         "what `ecto-load --pid` reads from `/proc` (10 ms ticks) over the measured phase, "
         "divided by the messages sent (send-seq) or the deliveries received (fan-out); each "
         "figure is the median of the runs.", "",
         "| Profile | Scenario | CPU per unit, metrics off | CPU per unit, metrics on | Change |",
         "|---|---|---|---|---|"]
    for profile, key, unit, off, on in rows:
        change = f"{(on - off) / off * 100:+.1f} %" if off and on else ""
        L.append(f"| {profile} | {key} | {off:.1f} µs per {unit} | {on:.1f} µs per {unit} | {change} |")
    L += ["", END, ""]
    return "\n".join(L)


def write(text):
    with open(PAGE) as f:
        page = f.read()
    if BEGIN in page and END in page:
        head, rest = page.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        page = head + text + tail
    else:
        page = page.rstrip("\n") + "\n\n" + text
    with open(PAGE, "w") as f:
        f.write(page)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", default="self-hosted")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    bins = {b: os.path.join(bench.ROOT, "target", "release", b) for b in ("ecto-server", "ecto-load")}
    for b, path in bins.items():
        if not os.path.exists(path):
            raise SystemExit(f"bench-metrics: {path} is missing (build it in release first)")
    rows = []
    for profile in [p.strip() for p in args.profiles.split(",") if p.strip()]:
        figures = {}
        for i in range(args.runs):
            for on in (False, True):
                with tempfile.TemporaryDirectory() as work:
                    for key, value in run(profile, on, bins, work).items():
                        figures.setdefault((key, on), []).append(value)
        for key, _, unit, _ in SCENARIOS:
            med = lambda vals: sorted(v["us_per_unit"] for v in vals if v["us_per_unit"])[len(vals) // 2]
            rows.append((profile, key, unit, med(figures[(key, False)]), med(figures[(key, True)])))
    command = "scripts/bench-metrics.py " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "scripts/bench-metrics.py"
    write(section(rows, bench.machine(), command.strip()))
    bench.say(f"wrote the cost of metrics into {os.path.relpath(PAGE, bench.ROOT)}")


if __name__ == "__main__":
    main()
