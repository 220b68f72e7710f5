#!/usr/bin/env python3
"""Time from process start to the first successful /health, and idle RSS 2 s later.

Usage: scripts/measure-startup.py [BINARY] [RUNS]   (default target/release/ecto-server, 3)
Runs the self-hosted profile in a temporary data directory, migrated beforehand.
"""
import os, subprocess, sys, tempfile, time, urllib.request

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/ecto-server"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
with tempfile.TemporaryDirectory() as data:
    env = dict(os.environ, DATA_DIR=data, PORT="3998", LOG_LEVEL="warn")
    subprocess.run([binary, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    for _ in range(runs):
        t0 = time.monotonic()
        proc = subprocess.Popen([binary, "serve"], env=env)
        while True:
            try:
                urllib.request.urlopen("http://127.0.0.1:3998/health", timeout=0.5).read()
                break
            except Exception:
                time.sleep(0.002)
        t1 = time.monotonic()
        time.sleep(2)
        with open(f"/proc/{proc.pid}/status") as f:
            rss = next(l.split()[1] for l in f if l.startswith("VmRSS"))
        print(f"start to first /health: {(t1 - t0) * 1000:.1f} ms, idle RSS: {int(rss) / 1024:.1f} MiB")
        proc.terminate()
        proc.wait()
